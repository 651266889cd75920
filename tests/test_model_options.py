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

import model_reference as reference
import psycopg
import pytest
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
EVERY_OPTION = {
    "app_ids": ["site", "app2"],
    "start_date": "2024-03-05",
    "ua_bot_filter": True,
    "days_late_allowed": 2,
    "max_session_days": 1,
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
    assert_invariants(assert_matches_reference(database, kept(events, EVERY_OPTION)))


# -- incremental equals full, with the options on --------------------------------------------


@pytest.mark.parametrize("seed", [43, 44])
def test_incremental_with_every_option_equals_the_full_mode(database, seed):
    batches = [varied(b, seed) for b in generated(seed, events=2000, batches=5)]
    loaded: list[dict] = []
    for batch in batches:
        load(database, batch, LANDING)
        loaded += batch
        run(INCREMENTAL, database, **EVERY_OPTION)
        assert_matches_reference(database, kept(loaded, EVERY_OPTION))
    assert_moved_exactly(database, loaded)
    incremental = derived_tables(database)
    run(FULL, database, **EVERY_OPTION)
    assert derived_tables(database) == incremental


def test_late_events_and_sessions_spanning_batches_with_every_option(database):
    events = [
        event("page_view", 0),
        event("page_ping", 30),
        event("page_view", 86400 * 2),
        event("page_view", 60, app_id="other"),
        event("page_view", 90, useragent=BOTS[0]),
    ]
    late = event("page_view", -3600, page_urlpath="/late")  # becomes the session's first
    options = {**EVERY_OPTION, "start_date": "2024-02-01"}
    loaded: list[dict] = []
    for index, batch in enumerate(([events[0], events[2]], events[1:2] + events[3:], [late])):
        batch = with_etl(batch, T0 + timedelta(days=1 + index))
        load(database, batch, LANDING)
        loaded += batch
        run(INCREMENTAL, database, **options)
        assert_matches_reference(database, kept(loaded, options))
    assert derived_tables(database).sessions[("c1", 1)]["landing_page_path"] == "/late"


def test_full_to_incremental_with_every_option(database):
    history, first = (varied(b, 45) for b in generated(45, events=1500, batches=2))
    load(database, history)
    load(database, first, LANDING)
    run(SWITCH, database, **EVERY_OPTION)
    assert_matches_reference(database, kept(history, EVERY_OPTION))
    run(INCREMENTAL, database, **EVERY_OPTION)
    assert_matches_reference(database, kept(history + first, EVERY_OPTION))


def test_with_the_defaults_a_full_rebuild_after_incremental_runs_changes_nothing(database):
    for batch in generated(46, events=1200, batches=3):
        load(database, batch, LANDING)
        run(INCREMENTAL, database)
    assert_a_full_rebuild_gives_the_same(database)


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
