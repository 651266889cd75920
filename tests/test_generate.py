"""The synthetic event generator: deterministic, batched, full of the cases that break models."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import fields
from datetime import datetime
from decimal import Decimal

import psycopg
import pytest
from conftest import query_one, run_sql

from sqlrunner.cli import main as cli_main
from sqlrunner.generate import (
    COLUMN_DEFINITIONS,
    COLUMNS,
    EventRates,
    GeneratorConfig,
    generate_batches,
    generate_events,
)
from sqlrunner.generate.events import as_dict
from sqlrunner.generate.load import copy_rows, create_events_table, load_generated

PYTHON_TYPES = {"varchar": str, "char": str, "timestamp": datetime, "int": int,
                "double precision": float, "boolean": bool, "decimal": Decimal}


def events(n: int = 20_000, **settings: object) -> list[dict]:
    return [as_dict(r) for r in generate_events(GeneratorConfig(events=n, **settings))]


@pytest.fixture(scope="module")
def stream() -> list[dict]:
    return events(20_000, seed=3, batches=5)


def test_the_same_configuration_gives_the_same_events() -> None:
    config = GeneratorConfig(events=3000, seed=42, batches=3)
    assert list(generate_events(config)) == list(generate_events(config))


def test_another_seed_gives_other_events() -> None:
    first = list(generate_events(GeneratorConfig(events=500, seed=1)))
    second = list(generate_events(GeneratorConfig(events=500, seed=2)))
    assert {r[COLUMNS.index("event_id")] for r in first}.isdisjoint(
        {r[COLUMNS.index("event_id")] for r in second})


@pytest.mark.parametrize("n", [0, 1, 7, 1000])
def test_it_generates_exactly_the_events_asked_for(n: int) -> None:
    assert len(list(generate_events(GeneratorConfig(events=n)))) == n


def test_rows_have_the_128_atomic_columns_with_their_types(stream: list[dict]) -> None:
    assert len(COLUMNS) == 128
    for row in stream[:2000]:
        assert len(row) == 128
        for name, definition in COLUMN_DEFINITIONS:
            value = row[name]
            base = definition.split("(")[0].replace(" NOT NULL", "")
            if value is not None:
                assert isinstance(value, PYTHON_TYPES[base]), (name, value)
        assert row["collector_tstamp"] is not None and row["event_id"] is not None


def test_batches_split_the_stream_with_distinct_increasing_etl_tstamps() -> None:
    config = GeneratorConfig(events=1000, seed=5, batches=4)
    batches = list(generate_batches(config))
    assert [b.index for b in batches] == [0, 1, 2, 3]
    assert [len(b.rows) for b in batches] == [250, 250, 250, 250]
    etl = COLUMNS.index("etl_tstamp")
    stamps = [b.etl_tstamp for b in batches]
    assert stamps == sorted(set(stamps))
    for batch in batches:
        assert {r[etl] for r in batch.rows} == {batch.etl_tstamp}
    assert [r for b in batches for r in b.rows] == list(generate_events(config))


def test_sessions_span_batches(stream: list[dict]) -> None:
    etls = defaultdict(set)
    for e in stream:
        etls[(e["domain_userid"], e["domain_sessionidx"])].add(e["etl_tstamp"])
    assert sum(len(s) > 1 for s in etls.values()) > 10


def _copies(stream: list[dict]) -> dict[str, list[dict]]:
    copies = defaultdict(list)
    for e in stream:
        copies[e["event_id"]].append(e)
    return {k: v for k, v in copies.items() if len(v) > 1}


def test_natural_duplicates_repeat_the_payload(stream: list[dict]) -> None:
    natural = [c for c in _copies(stream).values()
               if c[0]["event_fingerprint"] == c[1]["event_fingerprint"]]
    assert len(natural) > 100
    varying = {"collector_tstamp", "dvce_sent_tstamp", "etl_tstamp"}
    for first, second in (c[:2] for c in natural):
        assert {k for k in first if first[k] != second[k]} <= varying
    # resent (collected again later) and reprocessed (identical, in a later load)
    assert any(c[0]["collector_tstamp"] != c[1]["collector_tstamp"] for c in natural)
    assert any(c[0]["collector_tstamp"] == c[1]["collector_tstamp"]
               and c[0]["etl_tstamp"] != c[1]["etl_tstamp"] for c in natural)


def test_synthetic_duplicates_carry_another_payload(stream: list[dict]) -> None:
    synthetic = [c for c in _copies(stream).values()
                 if c[0]["event_fingerprint"] != c[1]["event_fingerprint"]]
    assert len(synthetic) > 20
    assert any(c[0]["domain_userid"] != c[1]["domain_userid"] for c in synthetic)


def test_every_kind_of_unusable_event_occurs(stream: list[dict]) -> None:
    assert any(e["domain_userid"] is None for e in stream)
    assert any(e["domain_userid"] == "" for e in stream)
    assert any(e["domain_sessionidx"] is None for e in stream)
    assert any(e["dvce_created_tstamp"] is None for e in stream)


def _sessions(stream: list[dict]) -> dict[tuple, list[dict]]:
    sessions = defaultdict(list)
    for e in stream:
        if e["domain_userid"] and e["domain_sessionidx"] and e["dvce_created_tstamp"]:
            sessions[(e["domain_userid"], e["domain_sessionidx"])].append(e)
    for s in sessions.values():
        s.sort(key=lambda e: (e["dvce_created_tstamp"], e["collector_tstamp"], e["event_id"]))
    return sessions


def test_pings_follow_page_views_and_some_come_before_any(stream: list[dict]) -> None:
    kinds = defaultdict(int)
    for e in stream:
        kinds[e["event"]] += 1
    assert kinds["page_ping"] > kinds["page_view"] > kinds["struct"] > 0
    assert kinds["unstruct"] > 0
    sessions = _sessions(stream)
    assert sum(s[0]["event"] == "page_ping" for s in sessions.values()) > 10


def test_logins_happen_mid_session_and_on_shared_devices(stream: list[dict]) -> None:
    sessions = _sessions(stream)
    mid_session = [s for s in sessions.values()
                   if not s[0]["user_id"] and any(e["user_id"] for e in s)]
    assert len(mid_session) > 10
    users = defaultdict(set)
    for e in stream:
        if e["user_id"] and e["domain_userid"]:
            users[e["domain_userid"]].add(e["user_id"])
    assert any(len(u) > 1 for u in users.values())
    assert any(e["user_id"] == "" for e in stream)


def test_clocks_are_skewed_late_and_tied(stream: list[dict]) -> None:
    with_dvce = [e for e in stream if e["dvce_created_tstamp"] is not None]
    offsets = [(e["collector_tstamp"] - e["dvce_created_tstamp"]).total_seconds()
               for e in with_dvce]
    assert any(o > 3600 * 3 for o in offsets) and any(o < -3600 * 3 for o in offsets)
    ties = sum(a["dvce_created_tstamp"] == b["dvce_created_tstamp"]
               for s in _sessions(stream).values() for a, b in zip(s, s[1:], strict=False))
    assert ties > 50
    assert any(e["event_id"].isupper() for e in stream)
    assert any(e["dvce_sent_tstamp"] is None and e["dvce_created_tstamp"] for e in stream)


def test_some_device_clocks_read_around_1970() -> None:
    rates = EventRates(clock_near_1970=0.3)
    sample = events(3000, seed=9, rates=rates)
    years = {e["dvce_created_tstamp"].year for e in sample if e["dvce_created_tstamp"]}
    assert 1969 in years and 1970 in years


def test_zero_rates_give_clean_events() -> None:
    zero = EventRates(**{f.name: 0.0 for f in fields(EventRates)})
    sample = events(3000, seed=4, rates=zero)
    assert not _copies(sample)
    assert all(e["domain_userid"] and e["domain_sessionidx"] and e["dvce_created_tstamp"]
               for e in sample)
    assert all(e["user_id"] is None for e in sample)


def test_rows_load_into_the_atomic_layout(database: str) -> None:
    rows = list(generate_events(GeneratorConfig(events=2000, seed=6)))
    with psycopg.connect(database) as conn:
        create_events_table(conn, "atomic")
        assert copy_rows(conn, "atomic", rows) == 2000
        back = conn.execute("SELECT * FROM atomic.events").fetchall()
    key = COLUMNS.index("event_fingerprint")
    assert sorted(back, key=lambda r: (r[key], str(r))) == sorted(
        rows, key=lambda r: (r[key], str(r)))


def test_load_generated_commits_each_batch(database: str) -> None:
    report = load_generated(database, GeneratorConfig(events=900, seed=2, batches=3),
                            "snowplow_landing")
    assert (report.events, report.batches) == (900, 3)
    counts = run_sql(database, "SELECT etl_tstamp, COUNT(*) FROM snowplow_landing.events "
                              "GROUP BY 1 ORDER BY 1")
    assert [c for _, c in counts] == [300, 300, 300]


def test_the_command_loads_landing(database: str, capsys: pytest.CaptureFixture) -> None:
    assert cli_main(["generate", "--events", "500", "--seed", "3", "--batches", "2",
                     "--dsn", database, "--rate", "unusable=0.5"]) == 0
    assert "loaded 500 events in 2 batch(es) into snowplow_landing.events" in (
        capsys.readouterr().out)
    unusable = query_one(database, "SELECT COUNT(*) FROM snowplow_landing.events WHERE "
                                "domain_userid IS NULL OR domain_userid = '' OR "
                                "domain_sessionidx IS NULL OR dvce_created_tstamp IS NULL")
    assert unusable > 150


@pytest.mark.parametrize("argv", [
    ["--rate", "nonsense=0.1"],
    ["--rate", "unusable=2"],
    ["--batches", "0"],
    ["--start", "yesterday"],
])
def test_the_command_refuses_bad_arguments(argv: list[str], capsys: pytest.CaptureFixture
                                           ) -> None:
    assert cli_main(["generate", *argv, "--dsn", "host=/nonexistent"]) == 2
    assert "error" in capsys.readouterr().err


def test_the_command_reports_a_database_error(capsys: pytest.CaptureFixture) -> None:
    assert cli_main(["generate", "--events", "10",
                     "--dsn", "host=127.0.0.1 port=1 connect_timeout=2"]) == 1
    assert capsys.readouterr().err
