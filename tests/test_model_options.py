"""The model's options (docs/model.md, "Options"): each is a rule over events, so the model
with an option on equals, row by row, the model without options over the events the rule
keeps (tests/model_reference.py over them), in the full mode and in the incremental mode
after every batch. Bad options are refused before any SQL runs.
"""

from __future__ import annotations

import os
import random
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal

import model_reference as reference
import psycopg
import pytest
from conftest import run_sql
from test_model_full import (
    T0,
    assert_invariants,
    assert_matches_reference,
    derived_tables,
    event,
    load,
)
from test_model_incremental import (
    LANDING,
    assert_a_full_rebuild_gives_the_same,
    assert_moved_exactly,
    generated,
    with_etl,
)

from sqlrunner.api import run_playbook
from sqlrunner.cli import main
from sqlrunner.errors import PlaybookError

pytestmark = pytest.mark.slow  # not in the quick subset (-m "not slow")

MICRO = Decimal("0.000001")  # a conversion's value is DECIMAL(38, 6)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLAYBOOKS = os.path.join(ROOT, "playbooks")
FULL = os.path.join(PLAYBOOKS, "full.yml")
INCREMENTAL = os.path.join(PLAYBOOKS, "incremental.yml")
SWITCH = os.path.join(PLAYBOOKS, "full_to_incremental.yml")

BOTS = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "facebookexternalhit/1.1",
    "curl/8.5.0",
    "python-requests/2.31.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/120.0.0.0",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
)
BROWSERS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
    None,
)
# the passthroughs and conversions, each with its value in Python (over an event's columns)
COLUMNS_OPTIONS = {
    "page_view_passthroughs": [
        "page_urlquery",
        {"sql": "LENGTH(page_urlpath) * 2", "alias": "path_length_2", "type": "INT"},
    ],
    "session_passthroughs": [
        "useragent",
        {"sql": "UPPER(br_family)", "alias": "browser_upper"},  # the default type
    ],
    "visitor_passthroughs": [
        {
            "sql": "COALESCE(mkt_source, refr_source)",
            "alias": "first_source",
            "type": "VARCHAR(255)",
        },
        {"sql": "dvce_ismobile", "alias": "first_on_mobile", "type": "BOOLEAN"},  # no MAX
    ],
    "conversions": [
        {
            "name": "cart_add",
            "condition": "event = 'struct' AND se_action = 'add'",
            "value": "se_value",
        },
        {"name": "form_submit", "condition": "se_category = 'form'"},  # no value: 0
    ],
}
PASSTHROUGH_VALUES = {
    "page_views": {
        "page_urlquery": lambda e: e["page_urlquery"],
        "path_length_2": lambda e: None if e["page_urlpath"] is None else 2 * len(
            e["page_urlpath"]
        ),
    },
    "sessions": {
        "useragent": lambda e: e["useragent"],
        "browser_upper": lambda e: None if e["br_family"] is None else e["br_family"].upper(),
    },
    "visitors": {
        "first_source": lambda e: (
            e["mkt_source"] if e["mkt_source"] is not None else e["refr_source"]
        ),
        "first_on_mobile": lambda e: e["dvce_ismobile"],
    },
}
CONVERSIONS = {  # name: (condition, value)
    "cart_add": (
        lambda e: e["event"] == "struct" and e["se_action"] == "add",
        lambda e: e["se_value"],
    ),
    "form_submit": (lambda e: e["se_category"] == "form", lambda e: 0),
}
EVERY_OPTION = {
    "app_ids": ["site", "app2"],
    "start_date": "2024-03-05",
    "ua_bot_filter": True,
    "days_late_allowed": 2,
    "max_session_days": 1,
    **COLUMNS_OPTIONS,
}


# -- the rules, in Python ------------------------------------------------------------------


def kept(events: list[dict], options: dict) -> list[dict]:
    """The events the options keep: the per-event rules before deduplication, the session
    cap after it (over the used events)."""

    def passes(e: dict) -> bool:
        if options.get("app_ids") and e["app_id"] not in options["app_ids"]:
            return False
        if options.get("start_date") and e["collector_tstamp"] < datetime.fromisoformat(
            options["start_date"]
        ):
            return False
        if (
            options.get("days_late_allowed")
            and e["dvce_created_tstamp"] is not None
            and (
                e["collector_tstamp"]
                > e["dvce_created_tstamp"] + timedelta(days=int(options["days_late_allowed"]))
            )
        ):
            return False
        return not (options.get("ua_bot_filter") and e["useragent"] in BOTS)

    events = [e for e in events if passes(e)]
    if not options.get("max_session_days"):
        return events
    used = reference.used_events(events)
    first: dict[tuple, datetime] = defaultdict(lambda: datetime.max)
    for e in used:
        key = (e["domain_userid"], e["domain_sessionidx"])
        first[key] = min(first[key], e["dvce_created_tstamp"])
    cap = timedelta(days=int(options["max_session_days"]))
    return [
        e
        for e in used
        if e["dvce_created_tstamp"] <= first[(e["domain_userid"], e["domain_sessionidx"])] + cap
    ]


def assert_option_columns(tables: reference.DerivedTables, events: list[dict]) -> None:
    """The passthroughs and conversions of COLUMNS_OPTIONS in ``tables`` are their rules
    over ``events`` (the events the options keep): a page view's from its page_view event, a
    session's from its first event, a visitor's from its first event, conversions over the
    session's events."""
    used = sorted(reference.used_events(events), key=reference.event_order)
    sessions: dict[tuple, list[dict]] = defaultdict(list)
    for e in used:
        sessions[(e["domain_userid"], e["domain_sessionidx"])].append(e)
    first_of_cookie: dict[str, dict] = {}
    for e in used:
        first_of_cookie.setdefault(e["domain_userid"], e)
    page_view_events = {e["event_id"]: e for e in used if e["event"] == "page_view"}
    assert set(tables.page_views) == set(page_view_events)
    for view_id, view in tables.page_views.items():
        for alias, value in PASSTHROUGH_VALUES["page_views"].items():
            assert view[alias] == value(page_view_events[view_id]), (view_id, alias)
    assert set(tables.sessions) == set(sessions)
    for key, session in tables.sessions.items():
        for alias, value in PASSTHROUGH_VALUES["sessions"].items():
            assert session[alias] == value(sessions[key][0]), (key, alias)
        for name, (condition, value) in CONVERSIONS.items():
            hits = [e for e in sessions[key] if condition(e)]
            amounts = [Decimal(repr(float(value(e) or 0))).quantize(MICRO) for e in hits]
            assert session[f"cv_{name}_volume"] == len(hits), (key, name)
            assert session[f"cv_{name}_value"] == sum(amounts, Decimal(0)), (key, name)
            assert session[f"cv_{name}_converted"] is bool(hits), (key, name)
            assert session[f"cv_{name}_first_tstamp"] == (
                min(e["collector_tstamp"] for e in hits) if hits else None
            ), (key, name)
            if hits:
                assert session["is_engaged"] is True, key
    for cookie, visitor in tables.visitors.items():
        for alias, value in PASSTHROUGH_VALUES["visitors"].items():
            assert visitor[alias] == value(first_of_cookie[cookie]), (cookie, alias)


def run(playbook: str, dsn: str, **options: object) -> None:
    result = run_playbook(playbook, variables=options, target=dsn)
    assert result.exit_code == 0, result.errors


def varied(events: list[dict], seed: int) -> list[dict]:
    """``events`` with other app_ids and bots' user agents on some cookies."""
    rng = random.Random(seed)
    cookies = sorted({str(e["domain_userid"]) for e in events})
    bots = {c for c in cookies if rng.random() < 0.15}
    apps = {c: rng.choice(("site", "site", "app2", "other", None)) for c in cookies}
    out = []
    for e in events:
        cookie = str(e["domain_userid"])
        # the same for identical copies (copies that tie must carry the same payload)
        keep_app = random.Random(f"{seed} {cookie} {e['event_id']}").random() < 0.1
        changed = {} if keep_app else {"app_id": apps[cookie]}
        if cookie in bots:
            changed["useragent"] = rng.choice(BOTS)
        out.append({**e, **changed})
    return out


# -- each option, in the full mode ----------------------------------------------------------


def test_app_ids_keep_only_those_apps(database):
    events = [
        event("page_view", 0),
        event("page_view", 10, app_id="other"),
        event("page_view", 20, app_id=None),
        event("page_view", 30, app_id="app2"),
    ]
    load(database, events)
    run(FULL, database, app_ids=["site", "app2"])
    tables = assert_matches_reference(database, kept(events, {"app_ids": ["site", "app2"]}))
    assert tables.sessions[("c1", 1)]["page_view_count"] == 2


def test_a_copy_of_a_filtered_app_does_not_win_the_deduplication(database):
    first = event("page_view", 0, app_id="other", domain_userid="c2")
    later = {
        **first,
        "app_id": "site",
        "domain_userid": "c1",
        "collector_tstamp": first["collector_tstamp"] + timedelta(hours=1),
    }
    load(database, [first, later])
    run(FULL, database, app_ids=["site"])
    tables = assert_matches_reference(database, [later])
    assert set(tables.visitors) == {"c1"}


def test_start_date_ignores_events_collected_before_it(database):
    events = [event("page_view", 0), event("page_view", 86400 * 3)]
    load(database, events)
    start = (T0 + timedelta(days=2)).date().isoformat()
    run(FULL, database, start_date=start)
    tables = assert_matches_reference(database, kept(events, {"start_date": start}))
    assert tables.sessions[("c1", 1)]["page_view_count"] == 1


def test_ua_bot_filter_ignores_bots_and_keeps_browsers(database):
    events = [
        event("page_view", i, domain_userid=f"b{i}", useragent=ua) for i, ua in enumerate(BOTS)
    ]
    events += [
        event("page_view", i, domain_userid=f"h{i}", useragent=ua) for i, ua in enumerate(BROWSERS)
    ]
    load(database, events)
    run(FULL, database, ua_bot_filter=True)
    tables = assert_matches_reference(database, kept(events, {"ua_bot_filter": True}))
    assert set(tables.visitors) == {f"h{i}" for i in range(len(BROWSERS))}
    run(FULL, database)  # off by default
    assert len(derived_tables(database).visitors) == len(BOTS) + len(BROWSERS)


def test_days_late_allowed_ignores_events_collected_too_long_after_they_were_created(database):
    late = event("page_view", 10)
    late["collector_tstamp"] = late["dvce_created_tstamp"] + timedelta(days=3, minutes=1)
    just_in_time = event("page_view", 20)
    just_in_time["collector_tstamp"] = just_in_time["dvce_created_tstamp"] + timedelta(days=3)
    events = [event("page_view", 0), late, just_in_time]
    load(database, events)
    run(FULL, database, days_late_allowed=3)
    tables = assert_matches_reference(database, kept(events, {"days_late_allowed": 3}))
    assert tables.sessions[("c1", 1)]["page_view_count"] == 2


def test_max_session_days_ignores_a_session_events_created_after_the_cap(database):
    events = [
        event("page_view", 0),
        event("page_ping", 86400 - 1),
        event("page_view", 86400),
        event("page_view", 86400 + 1),
        event("page_view", 86400 * 5, domain_sessionidx=2),
    ]
    load(database, events)
    run(FULL, database, max_session_days=1)
    tables = assert_matches_reference(database, kept(events, {"max_session_days": 1}))
    assert tables.sessions[("c1", 1)]["event_count"] == 3
    assert tables.sessions[("c1", 2)]["event_count"] == 1


@pytest.mark.parametrize("seed", [41, 42])
def test_generated_events_with_every_option_match_the_rules(database, seed):
    events = varied([e for b in generated(seed, events=2000, batches=1) for e in b], seed)
    load(database, events)
    run(FULL, database, **EVERY_OPTION)
    tables = assert_matches_reference(database, kept(events, EVERY_OPTION))
    assert_invariants(tables)
    assert_option_columns(tables, kept(events, EVERY_OPTION))


# -- incremental equals full, with the options on --------------------------------------------


@pytest.mark.parametrize("seed", [43, 44])
def test_incremental_with_every_option_equals_the_full_mode(database, seed):
    batches = [varied(b, seed) for b in generated(seed, events=2000, batches=5)]
    loaded: list[dict] = []
    for batch in batches:
        load(database, batch, LANDING)
        loaded += batch
        run(INCREMENTAL, database, **EVERY_OPTION)
        tables = assert_matches_reference(database, kept(loaded, EVERY_OPTION))
        assert_option_columns(tables, kept(loaded, EVERY_OPTION))
    assert_moved_exactly(database, loaded)
    incremental = derived_tables(database)
    run(FULL, database, **EVERY_OPTION)
    assert derived_tables(database) == incremental


def test_incremental_with_passthroughs_and_conversions_equals_the_full_mode(database):
    # the filters off, so that most events are kept and many sessions convert
    loaded: list[dict] = []
    for batch in generated(47, events=2500, batches=5):
        load(database, batch, LANDING)
        loaded += batch
        run(INCREMENTAL, database, **COLUMNS_OPTIONS)
        tables = assert_matches_reference(database, loaded)
        assert_option_columns(tables, loaded)
    for name in CONVERSIONS:
        assert any(s[f"cv_{name}_converted"] for s in tables.sessions.values()), name
    assert any(v["first_on_mobile"] for v in tables.visitors.values())
    assert any(v["page_urlquery"] for v in tables.page_views.values())
    run(FULL, database, **COLUMNS_OPTIONS)
    assert derived_tables(database) == tables


def test_late_events_and_sessions_spanning_batches_with_every_option(database):
    events = [
        event("page_view", 0),
        event("page_ping", 30),
        event("page_view", 86400 * 2),
        event("page_view", 60, app_id="other"),
        event("page_view", 90, useragent=BOTS[0]),
    ]
    events += [
        event("struct", 40, se_category="cart", se_action="add", se_value=19.99),
        event("struct", 50, se_category="form", se_action="submit"),
    ]
    # becomes the session's (and the visitor's) first event, and converts
    late = event(
        "page_view", -3600, page_urlpath="/late", mkt_source="news", br_family="Chrome",
        useragent="late agent", dvce_ismobile=True,
    )
    late_cart = event("struct", -3000, se_category="cart", se_action="add", se_value=5.5)
    options = {**EVERY_OPTION, "start_date": "2024-02-01"}
    loaded: list[dict] = []
    batches = ([events[0], events[2], events[5]], events[1:2] + events[3:5] + events[6:],
               [late, late_cart])
    for index, batch in enumerate(batches):
        batch = with_etl(batch, T0 + timedelta(days=1 + index))
        load(database, batch, LANDING)
        loaded += batch
        run(INCREMENTAL, database, **options)
        tables = assert_matches_reference(database, kept(loaded, options))
        assert_option_columns(tables, kept(loaded, options))
    session = tables.sessions[("c1", 1)]
    assert session["landing_page_path"] == "/late"
    assert (session["browser_upper"], session["useragent"]) == ("CHROME", "late agent")
    assert (session["cv_cart_add_volume"], session["cv_cart_add_value"]) == (2, Decimal("25.49"))
    assert session["cv_cart_add_first_tstamp"] == late_cart["collector_tstamp"]
    assert (session["cv_form_submit_volume"], session["cv_form_submit_value"]) == (1, 0)
    assert (tables.visitors["c1"]["first_source"], tables.visitors["c1"]["first_on_mobile"]) == (
        "news",
        True,
    )
    run(FULL, database, **options)
    assert derived_tables(database) == tables


def test_full_to_incremental_with_every_option(database):
    history, first = (varied(b, 45) for b in generated(45, events=1500, batches=2))
    load(database, history)
    load(database, first, LANDING)
    run(SWITCH, database, **EVERY_OPTION)
    tables = assert_matches_reference(database, kept(history, EVERY_OPTION))
    assert_option_columns(tables, kept(history, EVERY_OPTION))
    run(INCREMENTAL, database, **EVERY_OPTION)
    tables = assert_matches_reference(database, kept(history + first, EVERY_OPTION))
    assert_option_columns(tables, kept(history + first, EVERY_OPTION))
    run(FULL, database, **EVERY_OPTION)
    assert derived_tables(database) == tables


def test_with_the_defaults_a_full_rebuild_after_incremental_runs_changes_nothing(database):
    for batch in generated(46, events=1200, batches=3):
        load(database, batch, LANDING)
        run(INCREMENTAL, database)
    assert_a_full_rebuild_gives_the_same(database)


# -- passthroughs and conversions ------------------------------------------------------------


def test_conversions_make_a_session_engaged_and_leave_the_other_columns_alone(database):
    events = [
        event("page_view", 0),
        event("struct", 1, se_category="cart", se_action="add", se_value=None),
        event("page_view", 3600, domain_sessionidx=2),
    ]
    load(database, events)
    run(FULL, database)
    without = derived_tables(database)
    assert without.sessions[("c1", 1)]["is_engaged"] is False
    run(FULL, database, **COLUMNS_OPTIONS)
    tables = derived_tables(database)
    assert_option_columns(tables, events)
    first, second = tables.sessions[("c1", 1)], tables.sessions[("c1", 2)]
    # a converting event without a value counts, with 0
    assert (first["cv_cart_add_volume"], first["cv_cart_add_value"]) == (1, 0)
    assert first["is_engaged"] is True and second["is_engaged"] is False
    assert (second["cv_cart_add_volume"], second["cv_cart_add_converted"]) == (0, False)
    assert second["cv_cart_add_first_tstamp"] is None
    # every other column as without the options, is_engaged or'ed with the conversions
    for old_rows, new_rows in (
        (without.sessions, tables.sessions),
        (without.page_views, tables.page_views),
        (without.visitors, tables.visitors),
    ):
        for key, old in old_rows.items():
            new = {column: new_rows[key][column] for column in old}
            if "is_engaged" in old:
                converted = new_rows[key]["cv_cart_add_converted"]
                old = {**old, "is_engaged": old["is_engaged"] or converted}
            assert new == old, key


def test_options_added_later_add_their_columns_to_the_existing_tables(database):
    events = [event("page_view", 0, page_urlquery="q=1"), event("page_view", 10)]
    load(database, events[:1], LANDING)
    run(INCREMENTAL, database)  # the tables, without the options' columns
    load(database, events[1:], LANDING)
    run(INCREMENTAL, database, **COLUMNS_OPTIONS)
    tables = derived_tables(database)
    assert_option_columns(tables, events)
    assert tables.page_views[events[0]["event_id"]]["page_urlquery"] == "q=1"
    types = dict(
        run_sql(
            database,
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'derived' AND table_name = 'sessions' "
            "AND column_name IN ('browser_upper', 'cv_cart_add_value', 'cv_cart_add_converted')",
        )
    )
    assert types == {
        "browser_upper": "character varying",
        "cv_cart_add_value": "numeric",
        "cv_cart_add_converted": "boolean",
    }
    run(INCREMENTAL, database)  # options removed: their columns stay, and nothing fails
    run(FULL, database)
    assert derived_tables(database).sessions[("c1", 1)]["cv_cart_add_volume"] is None


# -- bad options: refused before any SQL runs -------------------------------------------------

BAD_OPTIONS = [
    ({"app_ids": "[site, 'it''s']"}, "--var app_ids: an app_id may not hold a quote"),
    ({"start_date": "2024-02-30"}, "--var start_date: expected a date"),
    ({"ua_bot_filter": "yes"}, "--var ua_bot_filter: expected true or false"),
    ({"days_late_allowed": "0"}, "--var days_late_allowed: expected a whole number"),
    ({"max_session_days": "-1"}, "--var max_session_days: expected a whole number"),
    (
        {"page_view_passthroughs": "[no_such_column]"},
        "--var page_view_passthroughs: unknown column 'no_such_column'",
    ),
    (
        {"session_passthroughs": [{"sql": "1", "alias": "Not An Identifier"}]},
        "--var session_passthroughs: alias must be a lower-case SQL identifier",
    ),
    (
        {"visitor_passthroughs": [{"sql": "app_id"}]},
        "--var visitor_passthroughs: a passthrough is a column name or {sql",
    ),
    (
        {"conversions": [{"condition": "event = 'page_view'"}]},
        "--var conversions: a conversion without a name",
    ),
    (
        {"conversions": [{"name": "Buy!", "condition": "TRUE"}]},
        "--var conversions: a conversion's name must be a lower-case SQL identifier",
    ),
    (
        {"conversions": [{"name": "buy", "condition": "TRUE; DROP TABLE atomic.events"}]},
        "--var conversions: condition may not hold a ';'",
    ),
    (
        {"page_view_passthroughs": [{"sql": "1", "alias": "page_title"}]},
        "--var page_view_passthroughs: alias 'page_title' is a column of the table already",
    ),
    (
        {"session_passthroughs": [{"sql": "1", "alias": "x", "type": "INT); DROP"}]},
        "--var session_passthroughs: type must be a SQL type",
    ),
    (
        {"visitor_passthroughs": [{"sql": "1", "alias": "order"}]},
        "--var visitor_passthroughs: alias 'order' is a reserved SQL word",
    ),
    (
        {
            "session_passthroughs": [{"sql": "1", "alias": "cv_buy_value"}],
            "conversions": [{"name": "buy", "condition": "TRUE"}],
        },
        "--var session_passthroughs: alias 'cv_buy_value' is a column of one of the conversions",
    ),
]


@pytest.mark.parametrize(("options", "message"), BAD_OPTIONS)
def test_a_bad_option_is_refused_before_any_sql_runs(database, options, message):
    with pytest.raises(PlaybookError) as caught:
        run_playbook(FULL, variables=options, target=database)
    assert str(caught.value).startswith(message)
    with psycopg.connect(database) as conn:  # nothing ran: not even setup
        assert (
            conn.execute(
                "SELECT count(*) FROM pg_namespace WHERE nspname IN ('atomic', 'derived')"
            ).fetchone()[0]
            == 0
        )


def test_a_bad_option_in_the_playbook_names_its_file_and_line(tmp_path, capsys):
    text = (
        open(FULL, encoding="utf-8")
        .read()
        .replace("  max_session_days: ''", "  max_session_days: soon")
    )
    os.makedirs(tmp_path / "playbooks")
    playbook = tmp_path / "playbooks" / "full.yml"
    playbook.write_text(text, encoding="utf-8")
    line = (
        text.splitlines().index(
            next(x for x in text.splitlines() if x.startswith("  max_session_days:"))
        )
        + 1
    )
    assert main(["check", "-p", str(playbook)]) == 1
    assert f"full.yml:{line}: variable max_session_days: expected a whole number" in (
        capsys.readouterr().err
    )
