"""The checkpoint's Python work per query (issue 18, item 4): its literals quoted without a
round through psycopg where libpq would return them as they are, and a file's transaction
shape decided without splitting it when no word that could change it is there. Both
shortcuts must give exactly what the long way gives."""

from __future__ import annotations

from datetime import datetime

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from sqlrunner.execute.checkpoints import CheckpointStore
from sqlrunner.sqltext import shape


def _by_psycopg(conn: psycopg.Connection, value: object) -> str:
    if isinstance(value, datetime):
        return f"CAST({sql.Literal(value.isoformat(sep=' ')).as_string(conn)} AS timestamp)"
    return sql.Literal(value).as_string(conn)


VALUES = [
    "", "plain", "/srv/playbooks/incremental.yml", "it's", "back\\slash", "tab\there",
    "new\nline", "é", "名前", "a%b$c{d}", '"quoted"', "~!@#$%^&*()_+{}|:<>?[];,./`", "x" * 300,
    "\x7f", 7, -1, None, datetime(2026, 12, 5, 8, 0, 1, 123456), datetime(2026, 1, 1),
]  # fmt: skip


def test_a_literal_is_quoted_as_psycopg_quotes_it(database):
    with psycopg.connect(database, autocommit=True) as conn:
        store = CheckpointStore(conn)
        for value in VALUES:
            assert store.literal(value) == _by_psycopg(conn, value), value


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
)
def test_any_string_is_quoted_as_psycopg_quotes_it(database, text):
    with psycopg.connect(database, autocommit=True) as conn:
        store = CheckpointStore(conn)
        assert store.literal(text) == _by_psycopg(conn, text)
        assert conn.execute(f"SELECT {store.literal(text)}").fetchone()[0] == text


def _slow_shape(text: str, dialect: str) -> str:
    """transaction_shape without its shortcut."""
    statements = shape.split_statements(text, backslash_escapes=dialect == "redshift")
    if (
        len(statements) == 1
        and shape.must_run_alone_reason(statements[0].text, dialect) is not None
    ):
        return shape.RUNS_ALONE
    if any(shape.controls_transaction(s.text) for s in statements):
        return shape.OWN_TRANSACTIONS
    return shape.ONE_TRANSACTION


WORDS = [
    "SELECT",
    "1",
    "begin",
    "Begin",
    "COMMIT",
    "end",
    "vacuum",
    "VACUUM",
    "create",
    "index",
    "concurrently",
    "alter",
    "table",
    "append",
    "from",
    "x",
    "rollback",
    "to",
    "savepoint",
    "start",
    "transaction",
    "prepare",
    "database",
    "drop",
    "reindex",
    "system",
    "external",
    "library",
    "column",
    "type",
    "subscription",
    "abort",
    "9",
    "_end",
    "end$",
    "weekend",
    ";",
    ";\n",
    "--",
    "/*",
    "*/",
    "\n",
    "'",
    '"',
    "$$",
    "(",
    ")",
    ",",
    " ",
]


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.sampled_from(WORDS), max_size=14).map(" ".join),
    st.sampled_from(["postgres", "redshift"]),
)
def test_the_shortcut_gives_the_shape_the_statements_give(text, dialect):
    assert shape.transaction_shape(text, dialect) == _slow_shape(text, dialect)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SELECT 1;", shape.ONE_TRANSACTION),
        ("INSERT INTO t SELECT * FROM s; DELETE FROM s;", shape.ONE_TRANSACTION),
        ("VACUUM t", shape.RUNS_ALONE),
        ("begin; SELECT 1; commit;", shape.OWN_TRANSACTIONS),
        ("SELECT 'weekend'", shape.ONE_TRANSACTION),  # a word inside another: the long way
    ],
)
def test_shapes_of_common_files(text, expected):
    assert shape.transaction_shape(text, "postgres") == expected
