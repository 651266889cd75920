"""The statement splitter: the pitfalls of sqlparse, sqlglot and pglast, and a few more."""

from __future__ import annotations

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sqlrunner.sqltext.split import LineIndex, split_statements


def texts(sql: str, **options) -> list[str]:
    return [s.text for s in split_statements(sql, **options)]


def test_splits_on_semicolons_and_keeps_a_last_unterminated_statement():
    assert texts("SELECT 1;\nSELECT 2;\n  SELECT 3  \n") == ["SELECT 1", "SELECT 2", "SELECT 3"]


def test_drops_empty_and_comment_only_pieces():
    assert texts(";;\n-- nothing here\n;/* still nothing */;  SELECT 1;\n-- trailing\n") == [
        "SELECT 1"]


def test_begin_read_write_is_a_statement_of_its_own():
    sql = "BEGIN READ WRITE;\nDELETE FROM t;\nINSERT INTO t SELECT 1;\nCOMMIT;\n"
    assert texts(sql) == ["BEGIN READ WRITE", "DELETE FROM t", "INSERT INTO t SELECT 1",
                          "COMMIT"]


def test_begin_isolation_level_is_a_statement_of_its_own():
    sql = "BEGIN ISOLATION LEVEL SERIALIZABLE;\nLOCK t;\nEND;"
    assert texts(sql) == ["BEGIN ISOLATION LEVEL SERIALIZABLE", "LOCK t", "END"]


def test_nested_block_comments_hide_semicolons():
    sql = "SELECT 1 /* outer /* inner; */ still a comment; */ AS one;\nSELECT 2;"
    assert texts(sql) == ["SELECT 1 /* outer /* inner; */ still a comment; */ AS one",
                          "SELECT 2"]


def test_begin_atomic_body_is_one_statement():
    sql = (
        "CREATE FUNCTION f(x int) RETURNS int LANGUAGE sql\n"
        "BEGIN ATOMIC\n"
        "  SELECT CASE WHEN x > 0 THEN 1 ELSE 0 END;\n"
        "  SELECT x;\n"
        "END;\n"
        "SELECT f(1);\n"
    )
    statements = texts(sql)
    assert len(statements) == 2
    assert statements[0].startswith("CREATE FUNCTION") and statements[0].endswith("END")
    assert statements[1] == "SELECT f(1)"


def test_a_transaction_begin_is_not_an_atomic_block():
    assert texts("BEGIN;\nSELECT 1;\nEND;\nSELECT 2;") == ["BEGIN", "SELECT 1", "END",
                                                           "SELECT 2"]


def test_quotes_hide_semicolons_and_comment_markers():
    sql = "SELECT 'a;b', 'it''s -- not a comment', \"odd;\"\"name\" FROM t;\nSELECT 2;"
    assert texts(sql) == ["SELECT 'a;b', 'it''s -- not a comment', \"odd;\"\"name\" FROM t",
                          "SELECT 2"]


def test_dollar_quoted_bodies_hide_semicolons():
    sql = ("DO $$ BEGIN PERFORM 1; END $$;\n"
           "CREATE FUNCTION g() RETURNS int AS $body$ SELECT 1; $$ nested $$ $body$ "
           "LANGUAGE sql;\nSELECT $1, a$b$ FROM t;")
    statements = texts(sql)
    assert statements[0] == "DO $$ BEGIN PERFORM 1; END $$"
    assert statements[1].endswith("$body$ LANGUAGE sql")
    assert statements[2] == "SELECT $1, a$b$ FROM t"


def test_backslash_escapes_in_e_strings_and_on_redshift_only():
    sql = "SELECT E'it\\'s;', 'C:\\';\nSELECT 2;"
    assert texts(sql) == ["SELECT E'it\\'s;', 'C:\\'", "SELECT 2"]
    redshift = "SELECT 'it\\'s; fine';\nSELECT 2;"
    assert texts(redshift, backslash_escapes=True) == ["SELECT 'it\\'s; fine'", "SELECT 2"]


def test_go_template_actions_are_opaque():
    sql = ('SELECT 1 {{if eq .target_type "redshift;"}}AS a{{else}}AS b{{end}};\n'
           "{{/* a comment; with }} and \"quotes */}}\n"
           "SELECT {{printf \"%s;\" `raw;`}};")
    assert texts(sql) == [
        'SELECT 1 {{if eq .target_type "redshift;"}}AS a{{else}}AS b{{end}}',
        "{{/* a comment; with }} and \"quotes */}}\nSELECT {{printf \"%s;\" `raw;`}}",
    ]


def test_line_comments_end_at_the_line_end():
    # A trailing comment is not part of the statement's text.
    assert texts("SELECT 1 -- ; not here\n; SELECT 2") == ["SELECT 1", "SELECT 2"]


def test_unterminated_constructs_run_to_the_end():
    assert texts("SELECT 'open; string") == ["SELECT 'open; string"]
    assert texts("SELECT 1 /* open; comment") == ["SELECT 1"]


def test_positions_point_at_the_statement_start():
    sql = "-- header\n\n  /* c */ SELECT 1;\n\tSELECT\n 2;"
    first, second = split_statements(sql)
    assert (first.line, first.column) == (3, 11)
    assert sql[first.start:first.end] == first.text == "SELECT 1"
    assert (second.line, second.column) == (4, 2)
    assert second.terminated


def test_line_index_maps_offsets_to_lines_and_columns():
    index = LineIndex("ab\ncd\n\nef")
    assert index.position(0) == (1, 1)
    assert index.position(4) == (2, 2)
    assert index.position(6) == (3, 1)
    assert index.position(7) == (4, 1)


TRICKY_FILE = """\
-- a file that naive splitters get wrong
BEGIN READ WRITE;
CREATE TABLE split_demo (id int, note text);
/* nested /* comment; */ with a semicolon; */
INSERT INTO split_demo VALUES (1, 'semi;colon'), (2, $q$dollar; quoted$q$), (3, E'it\\'s');
CREATE FUNCTION split_demo_count() RETURNS bigint LANGUAGE sql
BEGIN ATOMIC
  SELECT CASE WHEN count(*) > 0 THEN count(*) ELSE 0 END FROM split_demo;
END;
COMMIT;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT split_demo_count();
END
"""


def test_each_split_statement_runs_alone_on_postgresql(database):
    statements = texts(TRICKY_FILE)
    assert len(statements) == 8
    with psycopg.connect(database, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)
        assert conn.execute("SELECT split_demo_count()").fetchone()[0] == 3
        notes = [r[0] for r in conn.execute("SELECT note FROM split_demo ORDER BY id")]
    assert notes == ["semi;colon", "dollar; quoted", "it's"]


@pytest.mark.parametrize("sql", ["", "   \n", "-- only\n", "/* only */", ";"])
def test_nothing_to_split(sql):
    assert split_statements(sql) == []


# -- any file made of well-formed pieces splits back into those pieces ----------------------

_FRAGMENTS = st.sampled_from([
    "SELECT 1", "a", "'x;y'", "'it''s; -- no'", '"q;""x"', "$$ a; b $$", "$t$ ; $t$",
    "/* c; /* nested; */ ; */", "-- line; comment\n", "E'\\';'", '{{if eq .x ";"}}a{{end}}',
    "(1, 2)", "CASE WHEN a THEN b END", "BEGIN READ WRITE", "$1", "a$b",
])


@given(st.lists(st.lists(_FRAGMENTS, min_size=1, max_size=6), min_size=1, max_size=6))
def test_statements_joined_by_semicolons_split_back(pieces):
    statements = [" ".join(["SELECT"] + fragments) for fragments in pieces]
    sql = ";\n".join(statements) + ";"
    found = split_statements(sql)
    assert len(found) == len(statements)
    for statement, expected in zip(found, statements, strict=True):
        assert expected.startswith(statement.text)
        assert sql[statement.start:statement.end] == statement.text
