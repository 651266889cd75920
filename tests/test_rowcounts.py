"""Sending a file whose rows are not shown: counted as they arrive, never kept."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from sqlrunner.cli import main
from sqlrunner.execute.rowcounts import CHUNK_ROWS, NO_COPY_IN, can_drop_rows, send_counting_rows

pytestmark = pytest.mark.skipif(not can_drop_rows(), reason="libpq older than 17")

MIXED = f"""
CREATE TABLE t (x int);
INSERT INTO t SELECT generate_series(1, 5);
SELECT * FROM generate_series(1, {CHUNK_ROWS * 2 + 7});
SELECT * FROM t WHERE x > 100;
UPDATE t SET x = x + 1 WHERE x < 3;
DO $$ BEGIN PERFORM 1; END $$;
SELECT x FROM t ORDER BY x LIMIT {CHUNK_ROWS};
DELETE FROM t
"""


def cursor_counts(dsn: str, sql: str) -> list[int]:
    """What ``cursor.execute`` reports, statement by statement."""
    counts = []
    with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(sql)
        while True:
            counts.append(cur.rowcount)
            if not cur.nextset():
                return counts


def test_each_statement_counts_as_the_cursor_counts_it(database):
    expected = cursor_counts(database, MIXED)
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("DROP TABLE t")
        assert send_counting_rows(conn, MIXED) == expected
    assert expected == [-1, 5, CHUNK_ROWS * 2 + 7, 0, 2, -1, 5, 5]


def test_an_error_keeps_its_diagnostics_and_leaves_the_connection_usable(database):
    with psycopg.connect(database, autocommit=True) as conn:
        sql = "SELECT * FROM generate_series(1, 30000);\nSELECT x FROM missing"
        with pytest.raises(psycopg.errors.UndefinedTable) as caught:
            send_counting_rows(conn, sql)
        assert caught.value.diag.sqlstate == "42P01"
        assert caught.value.diag.statement_position == str(sql.index("missing") + 1)
        assert send_counting_rows(conn, "SELECT 1") == [1]


def test_the_statements_of_a_failed_file_are_rolled_back_together(database):
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (x int)")
        with pytest.raises(psycopg.errors.DivisionByZero):
            send_counting_rows(conn, "INSERT INTO t VALUES (1); SELECT 1 / 0")
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 0


def test_copy_from_stdin_is_refused_and_undone(database):
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (x int); INSERT INTO t VALUES (1)")
        with pytest.raises(psycopg.ProgrammingError) as caught:
            send_counting_rows(conn, "INSERT INTO t VALUES (2); COPY t FROM STDIN; SELECT 1")
        assert str(caught.value) == NO_COPY_IN
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 1


def test_copy_to_stdout_is_read_and_dropped(database):
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("CREATE TABLE t AS SELECT generate_series(1, 30000) AS x")
        assert send_counting_rows(conn, "COPY t TO STDOUT; SELECT 1") == [30000, 1]
        assert send_counting_rows(conn, "SELECT 2") == [1]


# Each row is bigger than the server's 8 KB send buffer, so it is flushed as it is made.
SLOW_COPY = ("COPY (SELECT repeat('x', 20000), pg_sleep(2) FROM generate_series(1, 5)) "
             "TO STDOUT")


@pytest.mark.slow
def test_other_threads_keep_running_while_a_copy_to_stdout_is_dropped(database):
    ticks: list[float] = []
    stop = threading.Event()

    def ticker() -> None:
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.05)

    thread = threading.Thread(target=ticker)
    thread.start()
    try:
        with psycopg.connect(database, autocommit=True) as conn:
            send_counting_rows(conn, SLOW_COPY)
    finally:
        stop.set()
        thread.join()
    gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    assert max(gaps) < 1.5  # a blocking read holds the GIL for the 2 s between rows


def test_run_timeout_cancels_a_slow_copy_to_stdout(workdir, database):
    # The first row comes at once, the second after 30 s: the run's timeout must end it.
    slow = workdir.sql("slow.sql", "COPY (SELECT repeat('x', 20000), pg_sleep(CASE WHEN x = 1 "
                       "THEN 0 ELSE 30 END) FROM generate_series(1, 3) x) TO STDOUT;")
    playbook = workdir.playbook(workdir.steps(("s", [("slow", slow)])))
    started = time.monotonic()
    assert main(["-p", playbook, "--timeout", "0.5", "--progress", "plain"]) == 6
    assert time.monotonic() - started < 20  # not the 60 s the COPY would take


@pytest.mark.parametrize("sql", ["EXPLAIN SELECT 1", "SHOW work_mem",
                                 "CREATE PROCEDURE p(INOUT x int) LANGUAGE sql AS 'SELECT 1';"
                                 " CALL p(0)"])
def test_a_statement_whose_tag_has_no_count_counts_its_rows_like_the_cursor(database, sql):
    with psycopg.connect(database, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(sql)
        expected = [cur.rowcount]
        while cur.nextset():
            expected.append(cur.rowcount)
        conn.execute("DROP PROCEDURE IF EXISTS p")
        assert send_counting_rows(conn, sql) == expected
