"""What a checkpoint records beside the query: the unlogged tables its file built, which a
server crash empties and a resume must build again; and the store of an earlier version,
which gets what it lacks on first use."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import psycopg
import pytest
from conftest import query_one, run_sql, suite_database_name
from private_server import private_server

from sqlrunner.api import run_playbook
from sqlrunner.execute.checkpoints import CheckpointStore
from sqlrunner.execute.state import RunState, StateSettings
from sqlrunner.execute.targets import connection_for, target_from_dsn


def _recorded(database: str, sql: str) -> dict | None:
    """Run ``sql`` as a query file is run (the checkpoint appended, one transaction) and
    return the unlogged tables its checkpoint recorded."""
    state = RunState(connection_for(target_from_dsn(database)), "p.yml", "db", "run",
                     datetime.now(UTC), False, StateSettings())
    state.open()
    try:
        books = state.checkpointed(sql, "step", "query", "q.sql", "digest")
        assert books.after is None
        run_sql(database, books.text)
        recorded = query_one(database, "SELECT unlogged_tables FROM sqlrunner.run_queries")
    finally:
        state.close()
    return None if recorded is None else json.loads(recorded)


@pytest.mark.parametrize(("sql", "tables"), [
    ("CREATE UNLOGGED TABLE work AS SELECT 1 AS x", ["public.work"]),
    ("DROP TABLE IF EXISTS old; CREATE UNLOGGED TABLE work AS SELECT g FROM "
     "generate_series(1, 500) AS g; ANALYZE work; CREATE INDEX ON work (g)", ["public.work"]),
    ("TRUNCATE kept_unlogged; INSERT INTO kept_unlogged VALUES (2)", ["public.kept_unlogged"]),
    # nothing to build again: no rows, not unlogged, or nothing at all
    ("CREATE UNLOGGED TABLE work (x int)", None),
    ("CREATE TABLE work AS SELECT 1 AS x", None),
    ("CREATE TEMP TABLE work AS SELECT 1 AS x", None),
    ("SELECT count(*) FROM pg_class", None),
    # a file that also writes a logged table would repeat that write if it ran again
    ("CREATE UNLOGGED TABLE work AS SELECT 1 AS x; INSERT INTO kept VALUES (1)", None),
    ("TRUNCATE kept; CREATE UNLOGGED TABLE work AS SELECT 1 AS x", None),
])
def test_a_checkpoint_records_the_unlogged_tables_its_file_alone_built(database, sql, tables):
    run_sql(database, "CREATE TABLE kept (x int); CREATE UNLOGGED TABLE kept_unlogged (x int);"
                     "INSERT INTO kept_unlogged VALUES (1); CREATE TABLE old (x int)")
    recorded = _recorded(database, sql)
    assert (None if recorded is None else sorted(recorded)) == tables
    if recorded:
        oid = query_one(database, f"SELECT CAST(to_regclass('{tables[0]}') AS oid)")
        assert int(recorded[tables[0]]) == oid


def test_a_store_of_an_earlier_version_gets_the_new_column_and_keeps_its_runs(workdir,
                                                                          database):
    run_sql(database, "CREATE TABLE log (step text)")
    one = workdir.sql("one.sql", "INSERT INTO log VALUES ('one');")
    two = workdir.sql("two.sql", "INSERT INTO log VALUES ('two'); SELECT * FROM later;")
    playbook = workdir.playbook(workdir.steps(("a", [("one", one)]), ("b", [("two", two)])))
    assert run_playbook(playbook, retries=0).exit_code == 6
    run_sql(database, "ALTER TABLE sqlrunner.run_queries DROP COLUMN unlogged_tables; "
                     "DROP TABLE sqlrunner.locks; DROP TABLE sqlrunner.run_backends; "
                     "CREATE TABLE later (x int)")
    resumed = run_playbook(playbook)
    assert resumed.exit_code == 0, resumed.errors
    assert resumed.resumed_from is not None
    assert [r[0] for r in run_sql(database, "SELECT step FROM log ORDER BY 1")] == ["one", "two"]
    assert query_one(database, "SELECT count(*) FROM information_schema.columns WHERE "
                               "table_schema = 'sqlrunner' AND table_name = 'run_queries' "
                               "AND column_name = 'unlogged_tables'") == 1


@pytest.mark.slow
@pytest.mark.no_database
def test_a_user_who_cannot_complete_an_administrators_store_still_runs(workdir):
    # A role of its own: on a private server (roles belong to the whole server).
    with private_server() as server:
        name = suite_database_name("store_")
        database = server.create_database(name)
        with psycopg.connect(database, autocommit=True) as conn:
            CheckpointStore(conn).ensure_tables()
            conn.execute("ALTER TABLE sqlrunner.run_queries DROP COLUMN unlogged_tables; "
                         "DROP TABLE sqlrunner.locks; DROP TABLE sqlrunner.run_backends; "
                         "CREATE ROLE loader LOGIN; "
                         "GRANT USAGE ON SCHEMA sqlrunner TO loader; "
                         "GRANT SELECT, INSERT, UPDATE ON sqlrunner.runs, "
                         "sqlrunner.run_queries TO loader; "
                         "CREATE TABLE out (x int); GRANT INSERT ON out TO loader")
        work = workdir.sql("work.sql", "INSERT INTO out VALUES (1);")
        playbook = workdir.playbook(workdir.steps(("s", [("work", work)])))
        dsn = server.dsn(name).replace("user=postgres", "user=loader")
        result = run_playbook(playbook, target=dsn)
        assert result.exit_code == 0, result.errors
        assert query_one(database, "SELECT count(*) FROM sqlrunner.run_queries") == 1
        assert query_one(database, "SELECT count(*) FROM out") == 1
        # the history table the administrator made and did not grant: the run keeps none
        assert query_one(database, "SELECT count(*) FROM sqlrunner.query_history") == 0
        # a store without it, which this user cannot add to: runs go on without history
        run_sql(database, "DROP TABLE sqlrunner.query_history")
        again = run_playbook(playbook, target=dsn)
        assert again.exit_code == 0, again.errors
        assert query_one(database, "SELECT count(*) FROM out") == 2
        assert query_one(database, "SELECT to_regclass('sqlrunner.query_history')") is None
