"""The live view at 80 columns, read as a user sees it: names in full, no target column
for one target, an interrupted query shown as interrupted, and the rows column filled as
psql counts rows."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time

import psycopg
from conftest import target_yaml
from rich.console import Console

from sqlrunner.api import run_playbook
from sqlrunner.report import LiveReporter

LONG_STEP = "sessions_and_their_page_views"
LONG_QUERIES = ("events_per_session_aggregates", "events_per_session_boundaries")


def _live_run(playbook: str) -> str:
    """Run ``playbook`` with the live view on an 80-column console; what it printed."""
    out = io.StringIO()
    console = Console(file=out, width=80, force_terminal=False, color_system=None)
    result = run_playbook(playbook, reporter=LiveReporter(console))
    assert result.exit_code == 0, result.errors
    return out.getvalue()


def _table_rows(text: str) -> tuple[list[str], list[list[str]]]:
    """The headers and the rows of the summary table, each cell's text in full (a cell
    folded over several lines is joined again)."""
    lines = text[text.index("summary"):].splitlines()
    cells = [[c.strip() for c in line.replace("┃", "│").split("│")[1:-1]]
             for line in lines if "│" in line or "┃" in line]
    headers, body = cells[0], cells[1:]
    rows: list[list[str]] = []
    state = headers.index("state")
    for line in body:
        if line[state] or not rows:  # a new row; else the rest of folded cells
            rows.append(line)
        else:
            rows[-1] = [a + b for a, b in zip(rows[-1], line, strict=True)]
    return headers, rows


def test_at_80_columns_names_are_whole_and_one_target_has_no_column(workdir, database):
    files = [(name, workdir.sql(f"{name}.sql", "SELECT 1;")) for name in LONG_QUERIES]
    playbook = workdir.playbook(workdir.steps((LONG_STEP, files)))
    text = _live_run(playbook)
    assert max(len(line) for line in text.splitlines()) <= 80
    # The first line says where the run goes, as the plain log's does.
    params = workdir.params
    first = f"{params['host']}:{params['port']}/{params['dbname']} as user {params['user']}"
    assert " ".join(text.split()).startswith(f"target db: {first} (chosen by the playbook")
    headers, rows = _table_rows(text)
    assert headers == ["step", "query", "state", "seconds", "rows"]
    assert sorted(row[1] for row in rows) == sorted(LONG_QUERIES)
    assert {row[0] for row in rows} == {LONG_STEP}


def test_with_two_targets_the_target_column_shows_each_name_whole(workdir, database):
    names = ("warehouse_primary_eu_west_1", "warehouse_primary_eu_west_2")
    files = [(name, workdir.sql(f"{name}.sql", "SELECT 1;")) for name in LONG_QUERIES]
    playbook = workdir.playbook(workdir.steps((LONG_STEP, files)), targets="".join(
        target_yaml(workdir.params, name=name) for name in names))
    text = _live_run(playbook)
    assert max(len(line) for line in text.splitlines()) <= 80
    headers, rows = _table_rows(text)
    assert headers == ["target", "step", "query", "state", "seconds", "rows"]
    assert sorted((row[0], row[2]) for row in rows) == sorted(
        (name, query) for name in names for query in LONG_QUERIES)


def test_the_rows_column_counts_as_psql_does(workdir, database):
    ctas = workdir.sql("ctas.sql", "DROP TABLE IF EXISTS t;\n"
                                   "CREATE TABLE t AS SELECT g AS x FROM generate_series(1, 7) g;"
                                   "\nANALYZE t;\n")
    insert = workdir.sql("insert.sql", "BEGIN;\nINSERT INTO t SELECT generate_series(1, 5);\n"
                                       "COMMIT;\n")
    update = workdir.sql("update.sql", "UPDATE t SET x = x + 1 WHERE x <= 3;\nANALYZE t;\n")
    delete = workdir.sql("delete.sql", "DELETE FROM t WHERE x > 6;")
    playbook = workdir.playbook(workdir.steps(
        ("a", [("ctas", ctas)]), ("b", [("insert", insert)]), ("c", [("update", update)]),
        ("d", [("delete", delete)])))
    _, rows = _table_rows(_live_run(playbook))
    # psql: SELECT 7, INSERT 0 5, UPDATE 6 (1, 2, 3 of each), DELETE 1 (the 7 left).
    counted = {row[1]: row[4] for row in rows}
    assert (counted["ctas"], counted["insert"], counted["update"], counted["delete"]) == (
        "7", "5", "6", "1")
    with psycopg.connect(database) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 11


def test_ctrl_c_shows_the_cancelled_query_as_interrupted_not_failed(workdir, database):
    slow = workdir.sql("slow.sql", "SELECT pg_sleep(60);")
    playbook = workdir.playbook(workdir.steps(("s", [("slow", slow)])))
    proc = subprocess.Popen([sys.executable, "-m", "sqlrunner", "-p", playbook,
                             "--progress", "live"], cwd=workdir.root, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "COLUMNS": "80"})
    try:
        with psycopg.connect(database, autocommit=True) as admin:
            deadline = time.monotonic() + 30
            while not admin.execute("SELECT 1 FROM pg_stat_activity WHERE state = 'active' "
                                    "AND datname = current_database() "
                                    "AND query LIKE '%pg_sleep(60)%' AND pid <> "
                                    "pg_backend_pid()").fetchone():
                assert time.monotonic() < deadline, "the query never started"
                time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert "QUERY FAILURE" not in err
    _, rows = _table_rows(err)
    assert [(row[1], row[2]) for row in rows] == [("slow", "interrupted")]
    assert "INTERRUPTED: target db, step s, query slow" in err
