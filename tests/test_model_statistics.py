"""The model's cost follows the batch whatever the server's statistics (issue 14, item 1).

The shared server runs with autovacuum off, as some production servers do; these tests also
switch it off on every table of the model (``autovacuum_enabled = false``), so that nothing
but the model itself analyses them. Without statistics on atomic.events PostgreSQL planned
the incremental run's lookup of the touched cookies as a loop over all of atomic, and each
run grew with the history. Time is not asserted here (bench/table_statistics.py measures it);
what makes the cost follow the batch is, deterministically:

- before each read, the statistics of every durable table the run reads describe it
  (sql/statistics/analyze_stale.sql): taken at most ``autovacuum_analyze_scale_factor``
  (10%) of growth ago, row count within autovacuum's threshold, key columns analysed;
- the rows a run reads from atomic.events (by any scan) are only those of the cookies and
  event_ids its batch touches, each once, not the history (sql/incremental/02 and 03 probe
  atomic's indexes per event_id and per touched cookie);
- that holds even when the model cannot analyse atomic (another session holds its lock);
- the derived tables stay exactly what the reference and a full rebuild give.

The cumulative statistics (pg_stat_user_tables) are written by a backend when it ends
(PostgreSQL 15 on; before, a collector process received them asynchronously): each reading
waits until the run's connections are gone, then reads in a fresh transaction.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import model_reference as reference
import psycopg
import pytest
from test_model_full import load
from test_model_incremental import (
    LANDING,
    assert_a_full_rebuild_gives_the_same,
    assert_models,
    assert_moved_exactly,
    generated,
    rows,
    run_incremental,
)

from bench.table_statistics import disable_autovacuum

pytestmark = pytest.mark.slow  # not in the quick subset (-m "not slow")

# The durable tables the incremental run reads, and the columns its plans rely on.
READ_TABLES = {
    "atomic.events": ("event_id", "domain_userid", "domain_sessionidx", "dvce_created_tstamp"),
    "derived.sessions": ("domain_userid", "domain_sessionidx"),
    "derived.page_views": ("page_view_id", "domain_userid", "domain_sessionidx"),
    "derived.visitors": ("domain_userid",),
    "derived.cookie_id_to_user_id_map": ("domain_userid",),
    "derived.events_per_session": ("domain_userid", "domain_sessionidx"),
}


@pytest.fixture(autouse=True)
def _cumulative_statistics_in_shared_memory(server_dsn: str) -> None:
    if int(rows(server_dsn, "SHOW server_version_num")[0][0]) < 150_000:
        pytest.skip("needs PostgreSQL 15 or later (statistics written as a backend ends)")


@dataclass(frozen=True)
class Statistics:
    """What the planner knows of a table, and the cumulative counters of its reads."""

    pages: int  # now
    relpages: int  # at its last ANALYZE (or VACUUM)
    reltuples: float  # at its last ANALYZE (or VACUUM); -1: never
    analysed_columns: frozenset[str]
    rows_read: int  # rows read so far by sequential scans and fetched through its indexes


def wait_for_other_connections_to_end(dsn: str, keep: tuple[int, ...] = ()) -> None:
    """Wait until no other client is connected to the database (but ``keep``): a backend
    writes its cumulative statistics as it ends, before it leaves pg_stat_activity."""
    deadline = time.monotonic() + 30
    with psycopg.connect(dsn, autocommit=True) as conn:
        while conn.execute(
                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
                "AND backend_type = 'client backend' AND pid <> pg_backend_pid() "
                "AND pid <> ALL(%s)", (list(keep),)).fetchone():
            assert time.monotonic() < deadline, "other connections did not end"
            time.sleep(0.02)


def statistics(dsn: str, keep: tuple[int, ...] = ()) -> dict[str, Statistics]:
    """Each table of READ_TABLES as the planner and the counters see it, once every other
    connection has ended; reads the catalogue and the counters only (no table)."""
    wait_for_other_connections_to_end(dsn, keep)
    states = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        for table, columns in READ_TABLES.items():
            schema, name = table.split(".")
            pages, relpages, reltuples, rows_read = conn.execute(
                "SELECT pg_relation_size(c.oid) / current_setting('block_size')::int, "
                "c.relpages, c.reltuples, s.seq_tup_read + COALESCE(s.idx_tup_fetch, 0) "
                "FROM pg_class AS c JOIN pg_stat_user_tables AS s ON s.relid = c.oid "
                "WHERE c.oid = %s::regclass", (table,)).fetchone()
            analysed = {r[0] for r in conn.execute(
                "SELECT attname FROM pg_stats WHERE schemaname = %s AND tablename = %s "
                "AND attname = ANY(%s)", (schema, name, list(columns)))}
            states[table] = Statistics(pages, relpages, reltuples, frozenset(analysed),
                                       rows_read)
    return states


def row_counts(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in READ_TABLES}


def analyse_settings(dsn: str) -> tuple[int, float]:
    """The server's autovacuum_analyze_threshold and autovacuum_analyze_scale_factor."""
    threshold, scale = rows(dsn, "SELECT current_setting('autovacuum_analyze_threshold')::int, "
                                 "current_setting('autovacuum_analyze_scale_factor')::float8")[0]
    return threshold, scale


def rows_a_run_must_read(atomic: list[dict], batch: list[dict]) -> int:
    """The rows of atomic (``atomic``: every event in it) that a run over ``batch`` has to
    read: every copy of a batch event_id (to find the touched cookies), every row of the
    cookies holding a usable copy of one (their history), and every copy of those rows'
    event_ids (the rivals); and after the move, every row of the batch's etl_tstamps (the
    data test that atomic holds each moved event once, sql/tests/atomic_moved_once.sql)."""
    batch_ids = {e["event_id"] for e in batch}
    touched = {e["domain_userid"] for e in batch + atomic
               if e["event_id"] in batch_ids and reference.is_usable(e)}
    history_ids = {e["event_id"] for e in atomic if e["domain_userid"] in touched}
    batch_etl_tstamps = {e["etl_tstamp"] for e in batch}
    return (sum(e["event_id"] in batch_ids for e in atomic)
            + sum(e["domain_userid"] in touched for e in atomic)
            + sum(e["event_id"] in history_ids for e in atomic)
            + sum(e["etl_tstamp"] in batch_etl_tstamps for e in atomic + batch))


def assert_statistics_describe(rows_read: dict[str, int], pages_read: dict[str, int],
                               planned: dict[str, Statistics], threshold: int,
                               scale: float) -> None:
    """The statistics a run planned with (``planned``, read after it: the last ANALYZE's,
    taken in the run or earlier) describe each table as it was when the run read it (its
    rows and pages before the run: only the run's commit writes to them)."""
    for table, rows_then in rows_read.items():
        stats = planned[table]
        assert stats.reltuples >= 0, f"{table} has no statistics"
        if rows_then:
            assert stats.analysed_columns == frozenset(READ_TABLES[table]), table
        assert pages_read[table] <= (1 + scale) * stats.relpages, (
            f"{table}: {pages_read[table]} pages when read, statistics of {stats.relpages}")
        assert abs(rows_then - stats.reltuples) <= threshold + scale * stats.reltuples, (
            f"{table}: {rows_then} rows when read, statistics of {stats.reltuples}")


@dataclass(frozen=True)
class Run:
    """One incremental run over one batch: the tables as it read them, the statistics it
    planned with, and the rows of atomic it read against those it needed."""

    rows_then: dict[str, int]
    pages_then: dict[str, int]
    planned: dict[str, Statistics]
    atomic_rows_read: int
    atomic_rows_needed: int


def run_batch(dsn: str, atomic: list[dict], batch: list[dict], keep: tuple[int, ...] = (),
              **settings: object) -> Run:
    """Load ``batch`` into landing and run the incremental playbook once (with ``settings``)
    on ``atomic`` (the events already in it), reading the counters before and after
    (``keep``: connections of the test that stay open)."""
    load(dsn, batch, LANDING)
    needed = rows_a_run_must_read(atomic, batch)
    rows_then = row_counts(dsn)
    before = statistics(dsn, keep)
    run_incremental(dsn, **settings)
    after = statistics(dsn, keep)
    return Run(rows_then, {table: state.pages for table, state in before.items()}, after,
               after["atomic.events"].rows_read - before["atomic.events"].rows_read, needed)


def assert_reads_follow_the_batch(runs: list[Run]) -> None:
    """Each run read from atomic only rows its batch needed (each once), never the history:
    a plan that scanned atomic, or looped over it, would read all of it at least once."""
    for number, run in enumerate(runs, start=1):
        assert run.atomic_rows_read <= run.atomic_rows_needed, (
            f"run {number} read {run.atomic_rows_read} rows of atomic, needed "
            f"{run.atomic_rows_needed}")
    last = runs[-1]
    assert last.atomic_rows_needed < last.rows_then["atomic.events"]  # the check can fail


@pytest.mark.slow
def test_ten_batches_on_tables_without_autovacuum_are_planned_from_fresh_statistics(
        database):
    run_incremental(database)  # the model's tables
    assert "atomic.events" in disable_autovacuum(database)
    threshold, scale = analyse_settings(database)
    loaded: list[dict] = []
    runs = []
    for batch in generated(141, events=15_000, batches=10):
        runs.append(run_batch(database, loaded, batch))
        loaded += batch
        assert_statistics_describe(runs[-1].rows_then, runs[-1].pages_then, runs[-1].planned,
                                   threshold, scale)
    assert_reads_follow_the_batch(runs)
    assert_models(database, loaded)
    assert_moved_exactly(database, loaded)
    assert_a_full_rebuild_gives_the_same(database)


def test_atomic_is_read_through_its_indexes_when_its_statistics_cannot_be_taken(database):
    """The model cannot always analyse atomic: its ANALYZE passes over a table whose
    maintenance lock another session holds (SKIP_LOCKED: a long manual VACUUM, CREATE INDEX
    CONCURRENTLY) or that the model's user does not own. Here another session holds the lock
    for the whole test, so atomic is never analysed, and the lookups' plans must not depend
    on its statistics. The runs start at the claim: the setup steps, which only find the
    tables there, would wait for that lock (CREATE INDEX IF NOT EXISTS takes it first)."""
    run_incremental(database)  # the model's tables; nothing to model, nothing analysed
    disable_autovacuum(database)
    with psycopg.connect(database) as holder:
        holder.execute("LOCK TABLE atomic.events IN SHARE UPDATE EXCLUSIVE MODE")
        keep = (holder.info.backend_pid,)
        loaded: list[dict] = []
        runs = []
        for batch in generated(142, events=7_500, batches=5):
            runs.append(run_batch(database, loaded, batch, keep, from_step="claim"))
            loaded += batch
            assert runs[-1].planned["atomic.events"].reltuples < 0  # never analysed
        holder.rollback()
    assert_reads_follow_the_batch(runs)
    assert_models(database, loaded)
    assert_moved_exactly(database, loaded)
