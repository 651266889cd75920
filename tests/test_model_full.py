"""The full-mode data model (playbooks/full.yml) against the Python reference, row by row.

Generated events (several seeds, every awkward case at its default rate and at high
rates) and hand-built events, one test per rule of docs/model.md. Every row and every column
of the four derived tables must equal tests/model_reference.py's, timestamps and floats
exactly.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace
from datetime import datetime, timedelta

import model_reference as reference
import psycopg
import pytest
from conftest import new_database, run_sql, suite_database_name
from private_server import private_server
from psycopg.rows import dict_row

from sqlrunner.api import run_playbook
from sqlrunner.generate import COLUMN_DEFINITIONS, COLUMNS, EventRates, GeneratorConfig
from sqlrunner.generate.events import as_dict, generate_events
from sqlrunner.generate.load import copy_rows, create_events_table

pytestmark = pytest.mark.slow  # not in the quick subset (-m "not slow")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FULL = os.path.join(ROOT, "playbooks", "full.yml")
NO_ICU_BUILD = "ICU is not supported in this build"  # the server's words
T0 = datetime(2024, 3, 1, 12, 0, 0)


# -- helpers -----------------------------------------------------------------------------

def load(dsn: str, events: list[dict], schema: str = "atomic") -> None:
    with psycopg.connect(dsn) as conn:
        create_events_table(conn, schema)
        copy_rows(conn, schema, (tuple(e[c] for c in COLUMNS) for e in events))


def run_full(dsn: str, **variables: object) -> None:
    result = run_playbook(FULL, variables={k: str(v) for k, v in variables.items()},
                          target=dsn)
    assert result.exit_code == 0, result.errors


def fetch(dsn: str, table: str, schema: str = "derived") -> list[dict]:
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        return conn.execute(f"SELECT * FROM {schema}.{table}").fetchall()


def derived_tables(dsn: str) -> reference.DerivedTables:
    sessions = fetch(dsn, "sessions")
    page_views = fetch(dsn, "page_views")
    visitors = fetch(dsn, "visitors")
    cookie_map = fetch(dsn, "cookie_id_to_user_id_map")
    tables = reference.DerivedTables(
        sessions={(r["domain_userid"], r["domain_sessionidx"]): r for r in sessions},
        page_views={r["page_view_id"]: r for r in page_views},
        visitors={r["domain_userid"]: r for r in visitors},
        cookie_id_to_user_id_map={r["domain_userid"]: r for r in cookie_map})
    # unique keys
    assert len(tables.sessions) == len(sessions)
    assert len(tables.page_views) == len(page_views)
    assert len(tables.visitors) == len(visitors)
    assert len(tables.cookie_id_to_user_id_map) == len(cookie_map)
    return tables


def assert_same_table(name: str, actual: dict, expected: dict, columns: tuple) -> None:
    missing = sorted(set(expected) - set(actual), key=repr)[:5]
    extra = sorted(set(actual) - set(expected), key=repr)[:5]
    assert not missing and not extra, f"{name}: rows missing {missing}, unexpected {extra}"
    differences = []
    for key, row in expected.items():
        got = actual[key]
        # the contract's columns first, in order (columns added for analysts follow them)
        assert tuple(got)[: len(columns)] == columns, f"{name}: columns {tuple(got)}"
        for column in columns:
            if got[column] != row[column] or type(got[column]) is not type(row[column]):
                differences.append(f"{key} {column}: got {got[column]!r}, "
                                   f"expected {row[column]!r}")
    assert not differences, f"{name}: {len(differences)} differences:\n" + "\n".join(
        differences[:20])


def assert_matches_reference(dsn: str, events: list[dict], heartbeat: int = 10,
                             min_visit_length: int = 5) -> reference.DerivedTables:
    expected = reference.derive(events, heartbeat, min_visit_length)
    actual = derived_tables(dsn)
    assert_same_table("sessions", actual.sessions, expected.sessions,
                      reference.SESSION_COLUMNS)
    assert_same_table("page_views", actual.page_views, expected.page_views,
                      reference.PAGE_VIEW_COLUMNS)
    assert_same_table("visitors", actual.visitors, expected.visitors,
                      reference.VISITOR_COLUMNS)
    assert_same_table("cookie_id_to_user_id_map", actual.cookie_id_to_user_id_map,
                      expected.cookie_id_to_user_id_map, reference.COOKIE_MAP_COLUMNS)
    return actual


def assert_invariants(tables: reference.DerivedTables) -> None:
    """Visitors sum their sessions; sessions count and sum their page views."""
    by_cookie: dict[str, list[dict]] = {}
    for (cookie, _), session in tables.sessions.items():
        by_cookie.setdefault(cookie, []).append(session)
    assert set(by_cookie) == set(tables.visitors)
    for cookie, visitor in tables.visitors.items():
        sessions = by_cookie[cookie]
        assert visitor["session_count"] == len(sessions)
        for column in ("event_count", "page_view_count", "time_engaged_in_s"):
            assert visitor[column] == sum(s[column] for s in sessions), (cookie, column)
        assert visitor["first_touch_tstamp"] == min(s["session_start_tstamp"] for s in sessions)
        assert visitor["last_touch_tstamp"] == max(s["session_end_tstamp"] for s in sessions)
    views_by_session: dict[tuple, list[dict]] = {}
    for view in tables.page_views.values():
        views_by_session.setdefault((view["domain_userid"], view["domain_sessionidx"]),
                                    []).append(view)
    for key, session in tables.sessions.items():
        views = views_by_session.get(key, [])
        assert session["page_view_count"] == len(views)
        assert session["time_engaged_in_s"] == sum(v["time_engaged_in_s"] for v in views)
        assert sorted(v["page_view_in_session_index"] for v in views) == list(
            range(1, len(views) + 1))
        assert session["event_count"] >= sum(v["event_count"] for v in views)
    assert set(tables.cookie_id_to_user_id_map) <= set(tables.visitors)


_ids = iter(range(1, 10**9))


def event_id(prefix: str = "") -> str:
    """A fresh 36-character event id, optionally starting with ``prefix``."""
    tail = uuid.UUID(int=next(_ids)).hex
    text = f"{tail[:8]}-{tail[8:12]}-{tail[12:16]}-{tail[16:20]}-{tail[20:]}"
    return prefix + text[len(prefix):]


def event(kind: str = "page_view", at: float = 0.0, **columns: object) -> dict:
    """A web event ``at`` seconds after T0 on cookie c1, session 1 (override anything)."""
    row = dict.fromkeys(COLUMNS)
    when = T0 + timedelta(seconds=at)
    row.update({
        "app_id": "site", "platform": "web", "etl_tstamp": T0 + timedelta(days=1),
        "collector_tstamp": when + timedelta(milliseconds=300), "dvce_created_tstamp": when,
        "dvce_sent_tstamp": when + timedelta(milliseconds=10), "event": kind,
        "event_id": event_id(), "v_collector": "ssc", "v_etl": "enrich",
        "domain_userid": "c1", "domain_sessionidx": 1, "domain_sessionid": "s1",
        "page_urlhost": "www.example.com", "page_urlpath": f"/at/{at}", "page_title": "Page",
        "geo_country": "GB", "geo_city": "London", "geo_latitude": 51.5142,
        "geo_longitude": -0.0931, "br_family": "Firefox", "dvce_ismobile": False,
    })
    row.update(columns)
    return row


@pytest.fixture
def icu_database(server_dsn: str) -> Iterator[str]:
    """A fresh database whose default collation is ICU en-US, where 'a' sorts before 'B'.

    Skipped only where the server cannot have one: before PostgreSQL 15 (no
    LOCALE_PROVIDER), or built without ICU. Any other refusal fails the test."""
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        version = admin.info.server_version
    if version < 150000:
        pytest.skip(f"PostgreSQL {version // 10000} has no LOCALE_PROVIDER (15 and newer)")
    with ExitStack() as stack:
        try:
            dsn = stack.enter_context(new_database(
                server_dsn, "TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"))
        except psycopg.errors.FeatureNotSupported as err:
            if NO_ICU_BUILD not in str(err):
                raise
            pytest.skip(f"the PostgreSQL server says: {NO_ICU_BUILD}")
        yield dsn


def run_events(dsn: str, events: list[dict], **variables: object) -> reference.DerivedTables:
    load(dsn, events)
    run_full(dsn, **variables)
    tables = assert_matches_reference(dsn, events, int(variables.get("heartbeat", 10)),
                                      int(variables.get("min_visit_length", 5)))
    assert_invariants(tables)
    return tables


# -- generated events ----------------------------------------------------------------------

HIGH_RATES = EventRates(
    natural_duplicate=0.15, synthetic_duplicate=0.05, stray_pings=0.3, late_event=0.1,
    clock_skew=0.3, clock_near_1970=0.1, login=0.8, shared_device=0.5, logout=0.5,
    empty_user_id=0.2, unusable=0.08, dvce_tie=0.2, collector_tie=0.5, uppercase_ids=0.3,
    null_dvce_sent=0.3, geo_change=0.3, return_visit=0.6)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_generated_events_match_the_reference(database: str, seed: int) -> None:
    events = [as_dict(r) for r in generate_events(GeneratorConfig(events=2500, seed=seed,
                                                                  batches=3))]
    tables = run_events(database, events)
    assert len(tables.sessions) > 50 and len(tables.page_views) > 100


@pytest.mark.parametrize("seed", [11, 12])
def test_generated_events_with_every_case_frequent_match_the_reference(
        database: str, seed: int) -> None:
    config = GeneratorConfig(events=2500, seed=seed, batches=4, rates=HIGH_RATES)
    events = [as_dict(r) for r in generate_events(config)]
    assert any(e["dvce_created_tstamp"] and e["dvce_created_tstamp"].year < 1970
               for e in events)
    tables = run_events(database, events)
    assert tables.cookie_id_to_user_id_map


def test_generated_events_in_a_database_with_a_linguistic_collation(icu_database: str) -> None:
    config = GeneratorConfig(events=2000, seed=5, rates=HIGH_RATES)
    run_events(icu_database, [as_dict(r) for r in generate_events(config)])


def test_other_heartbeat_and_min_visit_length(database: str) -> None:
    config = GeneratorConfig(events=1500, seed=8, rates=replace(HIGH_RATES, dvce_tie=0.05))
    run_events(database, [as_dict(r) for r in generate_events(config)],
               heartbeat=30, min_visit_length=7)


def test_a_second_run_replaces_the_first(database: str) -> None:
    events = [as_dict(r) for r in generate_events(GeneratorConfig(events=800, seed=4))]
    load(database, events)
    run_full(database)
    more = [as_dict(r) for r in generate_events(GeneratorConfig(events=800, seed=40))]
    load(database, more)
    run_full(database)
    assert_matches_reference(database, events + more)


def test_an_empty_atomic_gives_empty_tables(database: str) -> None:
    run_full(database)
    for table in ("sessions", "page_views", "visitors", "cookie_id_to_user_id_map"):
        assert fetch(database, table) == []


def test_the_first_run_creates_every_table_on_an_empty_database(database: str) -> None:
    run_full(database)
    with psycopg.connect(database) as conn:
        tables = {tuple(r) for r in conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema IN ('atomic', 'snowplow_landing', 'derived')")}
    assert tables == {("atomic", "events"), ("snowplow_landing", "events"),
                      ("derived", "sessions"), ("derived", "page_views"),
                      ("derived", "visitors"), ("derived", "cookie_id_to_user_id_map")}


def test_event_tables_have_snowplow_atomic_layout(database: str) -> None:
    run_full(database)
    expected = [(name, re.sub(r" NOT NULL$", "", definition))
                for name, definition in COLUMN_DEFINITIONS]
    with psycopg.connect(database) as conn:
        for schema in ("atomic", "snowplow_landing"):
            columns = conn.execute(
                "SELECT column_name, format_type(atttypid, atttypmod) FROM "
                "information_schema.columns JOIN pg_attribute ON attrelid = "
                "(table_schema || '.' || table_name)::regclass AND attname = column_name "
                "WHERE table_schema = %s AND table_name = 'events' ORDER BY ordinal_position",
                (schema,)).fetchall()
            assert len(columns) == 128
            assert [c[0] for c in columns] == [c[0] for c in expected]
            for (name, actual), (_, definition) in zip(columns, expected, strict=True):
                assert _normal_type(actual) == _normal_type(definition), name


def _normal_type(text: str) -> str:
    text = text.lower().replace("character varying", "varchar").replace("character", "char")
    text = text.replace("numeric", "decimal").replace("integer", "int")
    return text.replace("timestamp without time zone", "timestamp").replace(" ", "")


# -- hand-built events, one rule each -------------------------------------------------------

def test_deduplication_takes_the_first_collected_copy(database: str) -> None:
    shared = event_id()
    events = [
        event("page_view", 0, event_id=shared, page_urlpath="/late-copy",
              collector_tstamp=T0 + timedelta(seconds=9)),
        event("page_view", 0, event_id=shared, page_urlpath="/first-copy",
              collector_tstamp=T0 + timedelta(seconds=1)),
        event("page_ping", 6),
    ]
    tables = run_events(database, events)
    assert tables.page_views[shared]["page_urlpath"] == "/first-copy"
    assert tables.sessions[("c1", 1)]["event_count"] == 2


def test_deduplication_puts_null_tstamps_last(database: str) -> None:
    tied = T0 + timedelta(seconds=1)
    etl_id, sent_id = event_id(), event_id()
    events = [
        # same collector_tstamp: the copy with an etl_tstamp wins over the one without
        event("page_view", 0, event_id=etl_id, collector_tstamp=tied, etl_tstamp=None,
              page_urlpath="/no-etl"),
        event("page_view", 0, event_id=etl_id, collector_tstamp=tied, page_urlpath="/etl"),
        # same collector, etl and dvce_created: the copy with a dvce_sent_tstamp wins
        event("page_view", 30, event_id=sent_id, dvce_sent_tstamp=None, page_urlpath="/no-sent",
              domain_sessionidx=2),
        event("page_view", 30, event_id=sent_id, page_urlpath="/sent", domain_sessionidx=2),
    ]
    tables = run_events(database, events)
    assert tables.page_views[etl_id]["page_urlpath"] == "/etl"
    assert tables.sessions[("c1", 1)]["max_etl_tstamp"] == T0 + timedelta(days=1)
    assert tables.page_views[sent_id]["page_urlpath"] == "/sent"


def test_a_usable_copy_wins_over_an_earlier_unusable_one(database: str) -> None:
    shared = event_id()
    events = [
        event("page_view", 0, event_id=shared, domain_userid=None, page_urlpath="/unusable",
              collector_tstamp=T0),
        event("page_view", 0, event_id=shared, page_urlpath="/usable",
              collector_tstamp=T0 + timedelta(seconds=5)),
    ]
    tables = run_events(database, events)
    assert tables.page_views[shared]["page_urlpath"] == "/usable"


def test_a_synthetic_duplicate_moves_the_event_to_the_first_collected_cookie(
        database: str) -> None:
    shared = event_id()
    events = [
        event("page_view", 0, domain_userid="c2", domain_sessionidx=4, event_id=shared,
              collector_tstamp=T0 + timedelta(hours=1)),
        event("page_view", 100, domain_userid="c3", event_id=shared,
              collector_tstamp=T0 + timedelta(seconds=100)),
        event("page_view", 0, domain_userid="c2", domain_sessionidx=5),
    ]
    tables = run_events(database, events)
    assert tables.page_views[shared]["domain_userid"] == "c3"
    assert ("c2", 4) not in tables.sessions  # its only event went to c3
    assert tables.visitors["c2"]["session_count"] == 1


def test_ties_on_dvce_created_tstamp_break_on_collector_then_event_id_bytes(
        icu_database: str) -> None:
    same_dvce = T0
    lower, upper = event_id("a"), event_id("B")  # 'B' < 'a' byte-wise; not in en-US
    events = [
        event("page_view", 0, page_urlpath="/second-collected", dvce_created_tstamp=same_dvce,
              collector_tstamp=T0 + timedelta(seconds=2)),
        event("page_view", 0, page_urlpath="/first-collected", dvce_created_tstamp=same_dvce,
              collector_tstamp=T0 + timedelta(seconds=1)),
        # session 2: same dvce and collector, the event_ids decide
        event("page_view", 50, domain_sessionidx=2, event_id=lower, page_urlpath="/lower",
              collector_tstamp=T0 + timedelta(seconds=51)),
        event("page_view", 50, domain_sessionidx=2, event_id=upper, page_urlpath="/upper",
              collector_tstamp=T0 + timedelta(seconds=51)),
    ]
    tables = run_events(icu_database, events)
    assert tables.sessions[("c1", 1)]["landing_page_path"] == "/first-collected"
    assert tables.sessions[("c1", 1)]["exit_page_path"] == "/second-collected"
    assert tables.sessions[("c1", 2)]["landing_page_path"] == "/upper"
    assert tables.page_views[upper]["page_view_in_session_index"] == 1


def test_stray_pings_count_in_the_session_but_in_no_page_view(database: str) -> None:
    view = event_id()
    events = [
        event("page_ping", 0, page_urlpath="/stray"),
        event("page_ping", 10, page_urlpath="/stray"),
        event("page_view", 20, event_id=view),
        event("page_ping", 25),
    ]
    tables = run_events(database, events)
    session = tables.sessions[("c1", 1)]
    assert session["event_count"] == 4
    assert session["landing_page_path"] == "/stray"
    assert tables.page_views[view]["page_ping_count"] == 1
    assert tables.page_views[view]["time_engaged_in_s"] == 5


def test_pings_belong_to_the_last_page_view_before_them_in_the_session(database: str) -> None:
    first, second = event_id(), event_id()
    events = [
        event("page_view", 0, event_id=first),
        event("page_ping", 5), event("page_ping", 15),
        event("struct", 16),
        event("page_ping", 25),
        event("page_view", 30, event_id=second),
        event("page_ping", 35),
        # another session's ping, in between in time: not this page view's
        event("page_ping", 36, domain_sessionidx=2),
    ]
    tables = run_events(database, events)
    assert tables.page_views[first]["page_ping_count"] == 3
    assert tables.page_views[first]["event_count"] == 4
    assert tables.page_views[first]["time_engaged_in_s"] == 10 * 2 + 5
    assert tables.page_views[second]["page_ping_count"] == 1
    assert tables.sessions[("c1", 2)]["page_view_count"] == 0


def test_engaged_time_floors_ping_times_before_1970(database: str) -> None:
    view = event_id()
    epoch = datetime(1970, 1, 1)
    events = [
        event("page_view", 0, event_id=view, dvce_created_tstamp=epoch - timedelta(seconds=9)),
        # intervals of 10 s: -4.5 s and -0.1 s are in [-10, 0), 0.1 s in [0, 10)
        event("page_ping", 0, dvce_created_tstamp=epoch - timedelta(seconds=4.5)),
        event("page_ping", 0, dvce_created_tstamp=epoch - timedelta(seconds=0.1)),
        event("page_ping", 0, dvce_created_tstamp=epoch + timedelta(seconds=0.1)),
    ]
    tables = run_events(database, events)
    assert tables.page_views[view]["time_engaged_in_s"] == 10 * (2 - 1) + 5


def test_a_second_user_logging_in_on_a_shared_device_takes_the_cookie_over(
        database: str) -> None:
    view_a, view_b_before, view_b = event_id(), event_id(), event_id()
    events = [
        event("page_view", 0),
        event("page_view", 10, event_id=view_a, user_id="alice"),
        event("page_view", 1000, domain_sessionidx=2, event_id=view_b_before),
        event("page_view", 1010, domain_sessionidx=2, event_id=view_b, user_id="bob"),
        event("page_ping", 1015, domain_sessionidx=2),
    ]
    tables = run_events(database, events)
    assert tables.page_views[view_a]["inferred_user_id"] == "alice"
    assert tables.page_views[view_b_before]["inferred_user_id"] == "alice"
    assert tables.page_views[view_b]["blended_user_id"] == "bob"
    assert tables.sessions[("c1", 1)]["inferred_user_id"] == "alice"
    assert tables.sessions[("c1", 2)]["inferred_user_id"] == "bob"
    assert tables.visitors["c1"]["blended_user_id"] == "bob"
    assert tables.cookie_id_to_user_id_map["c1"]["user_id"] == "bob"
    assert tables.cookie_id_to_user_id_map["c1"]["last_login_dvce_tstamp"] == (
        T0 + timedelta(seconds=1010))


def test_a_login_only_in_a_later_session_leaves_earlier_sessions_anonymous(
        database: str) -> None:
    anonymous = event_id()
    events = [
        event("page_view", 0, event_id=anonymous, user_id=""),
        event("page_view", 5000, domain_sessionidx=2, user_id="carol"),
        event("page_ping", 5005, domain_sessionidx=2),  # trackers drop user_id: still carol
    ]
    tables = run_events(database, events)
    assert tables.sessions[("c1", 1)]["inferred_user_id"] is None
    assert tables.sessions[("c1", 1)]["blended_user_id"] == "c1"
    assert tables.page_views[anonymous]["blended_user_id"] == "c1"
    assert tables.sessions[("c1", 2)]["inferred_user_id"] == "carol"
    assert tables.visitors["c1"]["inferred_user_id"] == "carol"


def test_stitching_follows_event_order_across_interleaved_sessions(database: str) -> None:
    # session 2's device clock puts its login before session 1's last event
    events = [
        event("page_view", 0),
        event("page_view", 100),
        event("page_view", 50, domain_sessionidx=2, user_id="dave"),
    ]
    tables = run_events(database, events)
    assert tables.sessions[("c1", 1)]["inferred_user_id"] == "dave"
    assert tables.visitors["c1"]["landing_page_path"] == "/at/0"


def test_the_visitor_first_session_is_the_one_holding_the_cookie_first_event(
        database: str) -> None:
    events = [
        event("page_view", 100, domain_sessionidx=1, mkt_source="later"),
        event("page_view", 0, domain_sessionidx=2, mkt_source="earliest"),
    ]
    tables = run_events(database, events)
    assert tables.visitors["c1"]["mkt_source"] == "earliest"


def test_unusable_events_are_ignored(database: str) -> None:
    events = [
        event("page_view", 0),
        event("page_view", 1, domain_userid=None),
        event("page_view", 2, domain_userid=""),
        event("page_view", 3, domain_sessionidx=None),
        event("page_view", 4, dvce_created_tstamp=None),
        event("page_ping", 5, dvce_created_tstamp=None, user_id="eve"),
    ]
    tables = run_events(database, events)
    assert tables.sessions[("c1", 1)]["event_count"] == 1
    assert len(tables.page_views) == 1
    assert set(tables.visitors) == {"c1"}
    assert tables.cookie_id_to_user_id_map == {}


def test_the_commit_rebuilds_the_indexes_setup_creates(database: str) -> None:
    setup = open(os.path.join(ROOT, "sql", "setup", "04_derived_tables.sql")).read()
    declared = set(re.findall(r"CREATE (?:UNIQUE )?INDEX IF NOT EXISTS (\w+)", setup))
    query = ("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'derived' "
             "ORDER BY 1")
    run_full(database)
    after_first = run_sql(database, query)
    load(database, [event("page_view", 0)])
    run_full(database)
    after_second = run_sql(database, query)
    assert {name for name, _ in after_first} == declared
    assert after_second == after_first


def test_after_a_server_crash_the_next_run_rebuilds_the_emptied_work_tables(tmp_path) -> None:
    """PostgreSQL empties unlogged tables in crash recovery; the checkpoints survive. The
    next plain run builds the work tables again (not the derived tables' nothing), exactly.
    A real crash (pg_ctl stop -m immediate) of a private server."""
    first = [as_dict(r) for r in generate_events(GeneratorConfig(events=800, seed=21))]
    second = [as_dict(r) for r in generate_events(GeneratorConfig(events=800, seed=22))]
    with private_server() as server:
        database = server.create_database(suite_database_name("full_crash_"))
        load(database, first)
        run_full(database)
        load(database, second)
        log = tmp_path / "run.log"
        holder = psycopg.connect(database)
        try:
            # The commit's TRUNCATE waits for this reader: the server crashes meanwhile.
            holder.execute("LOCK TABLE derived.sessions IN ACCESS SHARE MODE")
            run = subprocess.Popen(
                [sys.executable, "-m", "sqlrunner", "-p", FULL, "--target", database,
                 "--progress", "plain", "--reconnect-timeout", "0"],
                stdout=subprocess.DEVNULL, stderr=log.open("w"), cwd=ROOT)
            deadline = time.monotonic() + 120
            while "] commit/commit started" not in log.read_text() or not holder.execute(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone()[0]:
                assert run.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
            server.stop("immediate")
        finally:
            holder.close()
        assert run.wait(timeout=120) == 6, log.read_text()
        server.start()
        with psycopg.connect(database) as conn:
            assert conn.execute("SELECT count(*) FROM snowplow_intermediary.events_this_run"
                                ).fetchone()[0] == 0  # emptied by the crash recovery
        assert_matches_reference(database, first)  # the first run's rows, untouched
        resumed = run_playbook(FULL, target=database)
        assert resumed.exit_code == 0, resumed.errors
        assert resumed.resumed_from is not None
        assert_matches_reference(database, first + second)
