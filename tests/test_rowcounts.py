"""Sending a file whose rows are not shown: counted as they arrive, never kept."""

from __future__ import annotations

import psycopg
import pytest

from sqlrunner.rowcounts import CHUNK_ROWS, NO_COPY_IN, can_drop_rows, send_counting_rows

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
