"""Inputs that must never half-run, hang or crash: each is refused (or run whole) with one
line naming the file and line, SQL Runner's exit code, and a database left as it was."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest
from conftest import query_one

from sqlrunner.cli import main


def _plain(*args: str) -> list[str]:
    return [*args, "--progress", "plain"]


def _relations(dsn: str) -> list[str]:
    """Every table, view and sequence outside the system schemas: what a run could change."""
    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute(
            "SELECT n.nspname || '.' || c.relname FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%' ORDER BY 1")]


def _error_line(captured: str) -> str:
    """The one error line of a run's stderr (no traceback, nothing else in error)."""
    assert "Traceback" not in captured
    errors = [line for line in captured.splitlines() if line.startswith("sqlrunner: error: ")]
    assert len(errors) == 1, captured
    return errors[0].removeprefix("sqlrunner: error: ")


def _two_steps(workdir, second: str, template: bool = False) -> str:
    """A playbook whose first step would create table ``first``, then runs ``second``."""
    first = workdir.sql("first.sql", "CREATE TABLE first (x int);\n")
    return workdir.playbook(workdir.steps(("one", [("first", first)]),
                                          ("two", [("second", second)]), template=template))


# -- NUL bytes ---------------------------------------------------------------------------


def test_a_nul_byte_in_a_sql_file_is_refused_before_any_sql_runs(workdir, database, capsys):
    nul = workdir.sql("nul.sql", "CREATE TABLE a (x int);\nINSERT INTO a VALUES (1);\x00\n"
                                 "CREATE TABLE b (y int);\n")
    playbook = _two_steps(workdir, nul)
    assert main(_plain("-p", playbook)) == 5
    assert _error_line(capsys.readouterr().err) == (
        "sql/nul.sql:2:26: a NUL byte (\\0) in a SQL file: PostgreSQL would run only the SQL "
        "before it")
    assert _relations(database) == []  # not even the first step, nor a checkpoint


def test_a_template_printing_a_nul_byte_is_refused_at_the_action(workdir, database, capsys):
    sql = workdir.sql("t.sql", "CREATE TABLE a (x int);\nINSERT INTO a VALUES "
                               "({{printf \"%c\" 0}});\n")
    playbook = _two_steps(workdir, sql, template=True)
    assert main(_plain("-p", playbook)) == 5
    assert _error_line(capsys.readouterr().err) == (
        "sql/t.sql:2:23: this action prints a NUL byte (\\0) into the SQL: PostgreSQL would run "
        "only the SQL before it")
    assert _relations(database) == []


@pytest.mark.parametrize("value, marker, message", [
    ("web\x00", "\x00", "14: a NUL byte (\\0) in a playbook"),
    ('"web{{printf "%c" 0}}"', "{{printf",
     "15: this action prints a NUL byte (\\0) into the playbook"),
])
def test_a_nul_byte_in_the_playbook_or_printed_by_its_template_is_refused_with_its_line(
        workdir, database, capsys, value, marker, message):
    sql = workdir.sql("t.sql", "CREATE TABLE t (x int);\n")
    playbook = workdir.playbook(workdir.steps(("s", [("t", sql)])),
                                variables=f"  schema: {value}\n")
    line = open(playbook).read().split(marker)[0].count("\n") + 1
    assert main(_plain("-p", playbook)) == 1
    assert _error_line(capsys.readouterr().err) == f"{playbook}:{line}:{message}"
    assert _relations(database) == []


def test_a_nul_escape_in_a_playbook_or_variables_file_is_refused_with_its_line(
        workdir, database, capsys):
    sql = workdir.sql("t.sql", "CREATE TABLE t (x int);\n")
    playbook = workdir.playbook(workdir.steps(("s", [("t", sql)])),
                                variables='  ok: 1\n  schema: "web\\0"\n')
    line = open(playbook).read().splitlines().index('  schema: "web\\0"') + 1
    assert main(_plain("-p", playbook)) == 1
    assert _error_line(capsys.readouterr().err) == (
        f"{playbook}:{line}: a NUL character (\\0) in a value")
    clean = workdir.playbook(workdir.steps(("s", [("t", sql)])), name="clean.yml")
    var_file = workdir.root / "vars.yml"
    var_file.write_text('a: 1\nb: "x\\0"\n')
    assert main(_plain("-p", clean, "--var-file", str(var_file))) == 1
    assert _error_line(capsys.readouterr().err) == (
        f"{var_file}:2: a NUL character (\\0) in a value")
    var_file.write_text("a: 1\nb: x\x00\n")
    assert main(_plain("-p", clean, "--var-file", str(var_file))) == 1
    assert _error_line(capsys.readouterr().err) == (
        f"{var_file}:2:5: a NUL byte (\\0) in a variables file")
    assert _relations(database) == []


# -- files that are not regular files ------------------------------------------------------


def _run_process(workdir, *args: str) -> subprocess.CompletedProcess:
    """The CLI as a process: if it blocked on a FIFO, the timeout fails the test."""
    return subprocess.run([sys.executable, "-m", "sqlrunner", *_plain(*args)],
                          cwd=workdir.root, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo (POSIX)")
def test_a_fifo_as_a_sql_file_playbook_or_variables_file_is_refused_without_blocking(
        workdir, database):
    os.mkfifo(workdir.root / "pipe")
    playbook = _two_steps(workdir, "pipe")
    done = _run_process(workdir, "-p", playbook)
    assert done.returncode == 5
    assert _error_line(done.stderr) == (
        "pipe: cannot read SQL file: a FIFO (named pipe), not a regular file")
    done = _run_process(workdir, "-p", "pipe")
    assert done.returncode == 1
    assert _error_line(done.stderr) == (
        "cannot read playbook pipe: a FIFO (named pipe), not a regular file")
    clean = _two_steps(workdir, workdir.sql("t.sql", "SELECT 1;\n"))
    done = _run_process(workdir, "-p", clean, "--var-file", "pipe")
    assert done.returncode == 2
    assert _error_line(done.stderr) == (
        "cannot read variables file pipe: a FIFO (named pipe), not a regular file")
    assert _relations(database) == []


def test_a_directory_or_device_as_a_sql_file_is_refused(workdir, database, capsys):
    (workdir.root / "sql" / "folder.sql").mkdir(parents=True)
    assert main(_plain("-p", _two_steps(workdir, "sql/folder.sql"))) == 5
    assert _error_line(capsys.readouterr().err) == (
        "sql/folder.sql: cannot read SQL file: a directory, not a regular file")
    if os.path.exists("/dev/null"):
        device = workdir.playbook(workdir.steps(("s", [("devnull", "dev/null")])), name="dev.yml")
        assert main(_plain("-p", device, "--sqlroot", "/")) == 5
        assert _error_line(capsys.readouterr().err) == (
            "/dev/null: cannot read SQL file: a character device, not a regular file")
    assert _relations(database) == []


# -- deep templates ------------------------------------------------------------------------


def test_a_template_nested_20000_deep_renders_and_runs(workdir, database):
    depth = 20000
    sql = workdir.sql("deep.sql", "CREATE TABLE deep AS SELECT "
                      + "{{if true}}{{with .}}" * (depth // 2) + "{{.n}}"
                      + "{{end}}{{end}}" * (depth // 2) + " AS n;\n")
    playbook = workdir.playbook(workdir.steps(("s", [("deep", sql)]), template=True),
                                variables="  n: 7\n")
    assert main(_plain("-p", playbook)) == 0
    assert query_one(database, "SELECT n FROM deep") == 7


def test_5000_nested_parentheses_render_and_10001_are_gos_parse_error(workdir, database,
                                                                          capsys):
    sql = workdir.sql("parens.sql", "CREATE TABLE parens AS SELECT {{print "
                      + "(print " * 5000 + ".n" + ")" * 5000 + "}} AS n;\n")
    playbook = workdir.playbook(workdir.steps(("s", [("parens", sql)]), template=True),
                                variables="  n: 7\n")
    assert main(_plain("-p", playbook)) == 0
    assert query_one(database, "SELECT n FROM parens") == 7
    before = _relations(database)
    too_deep = workdir.sql("too_deep.sql", "SELECT 1;\nSELECT {{" + "(" * 10001 + "1"
                           + ")" * 10001 + "}};\n")
    assert main(_plain("-p", _two_steps(workdir, too_deep, template=True))) == 5
    assert _error_line(capsys.readouterr().err) == (
        "template: sql/too_deep.sql:2: max expression depth exceeded")
    assert _relations(database) == before


def test_a_deeply_nested_playbook_template_and_the_check_never_crash(workdir, database,
                                                                       capsys):
    sql = workdir.sql("t.sql", "SELECT {{" + "(" * 5000 + "1" + ")" * 5000 + "}};\n"
                      "SELECT " + "(" * 5000 + "1" + ")" * 5000 + ";\n")
    steps = workdir.steps(("s", [("t", sql)]), template=True)
    playbook = workdir.playbook("{{if true}}" * 5000 + steps + "{{end}}" * 5000)
    assert main(["check", "-p", playbook, "--dialect", "postgres"]) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    assert out.splitlines() == [
        "sql/t.sql:2:1: parse-error: this statement nests too deeply for sqlglot to parse it, "
        "so it was not checked (suggestion: add '-- sqlrunner: allow parse-error' on that line "
        "if it is valid SQL)"]
    assert main(_plain("-p", playbook, "--dry-run")) == 0
    assert "Traceback" not in capsys.readouterr().err
    assert _relations(database) == []


# -- YAML ----------------------------------------------------------------------------------


def _laughs(levels: int) -> str:
    """A "billion laughs": each anchor is a list of nine aliases of the one before."""
    text = '  l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    for level in range(1, levels):
        text += f"  l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 9) + "]\n"
    return text


def test_a_yaml_alias_bomb_is_refused_with_its_line(workdir, database, capsys):
    sql = workdir.sql("t.sql", "CREATE TABLE t (x int);\n")
    # Seven levels expand to 4.8 million values (nine, to 390 million: 40 s and 2.4 GB).
    playbook = workdir.playbook(workdir.steps(("s", [("t", sql)])), variables=_laughs(7))
    line = open(playbook).read().splitlines().index("  l5: &l5 [" + ", ".join(["*l4"] * 9)
                                                    + "]") + 1
    assert main(_plain("-p", playbook)) == 1
    assert _error_line(capsys.readouterr().err) == (
        f"{playbook}:{line}: invalid YAML: aliases expand this value to more than 100000 values")
    var_file = workdir.root / "vars.yml"
    var_file.write_text("laughs:\n" + _laughs(7))
    clean = workdir.playbook(workdir.steps(("s", [("t", sql)])), name="clean.yml")
    assert main(_plain("-p", clean, "--var-file", str(var_file))) == 1
    assert _error_line(capsys.readouterr().err) == (
        f"{var_file}:7: invalid YAML: aliases expand this value to more than 100000 values")
    assert _relations(database) == []


def test_aliases_that_share_a_value_still_work(workdir, database):
    sql = workdir.sql("t.sql", "CREATE TABLE t AS SELECT {{len .all}} AS n, "
                               "'{{(index .all 2).schema}}' AS s;\n")
    playbook = workdir.playbook(workdir.steps(("s", [("t", sql)]), template=True),
                                variables="  one: &one {schema: web}\n"
                                          "  all: [*one, *one, *one]\n")
    assert main(_plain("-p", playbook)) == 0
    assert query_one(database, "SELECT n || s FROM t") == "3web"


@pytest.mark.parametrize("variables, message", [
    ("  me: &me [1, *me]\n",
     "invalid YAML: an alias inside the value it names (a value that contains itself)"),
    ("  deep: " + "[" * 150 + "]" * 150 + "\n", "invalid YAML: values nested more than 100 deep"),
    ("  deeper: " + "[" * 2000 + "]" * 2000 + "\n",
     "invalid YAML: values nested more than 100 deep"),
    ("  n: !!int twelve\n", "invalid YAML: 'twelve' is not a valid !!int"),
    ("  when: !!timestamp soon\n", "invalid YAML: 'soon' is not a valid !!timestamp"),
    ('  ctrl: "a\x01"\n',
     "invalid YAML: unacceptable character #x0001: special characters are not allowed"),
])
def test_hostile_yaml_is_one_line_naming_the_playbook_line(workdir, database, capsys,
                                                           variables, message):
    sql = workdir.sql("t.sql", "CREATE TABLE t (x int);\n")
    playbook = workdir.playbook(workdir.steps(("s", [("t", sql)])), variables=variables)
    line = open(playbook).read().splitlines().index("variables:") + 2
    assert main(_plain("-p", playbook)) == 1
    error = _error_line(capsys.readouterr().err)
    assert error.startswith(f"{playbook}:{line}:") and error.endswith(f": {message}")
    assert _relations(database) == []


# -- error positions past the end of the file's SQL ----------------------------------------


UNFINISHED = "-- a file\nCREATE TABLE kept (x int);\n\nCREATE TABLE\n"


def _run_queries(dsn: str) -> int:
    """Checkpoints recorded in the target (none when the state schema does not exist)."""
    if query_one(dsn, "SELECT to_regclass('sqlrunner.run_queries')") is None:
        return 0
    return query_one(dsn, "SELECT count(*) FROM sqlrunner.run_queries")


@pytest.mark.parametrize("checkpoints", [True, False])
def test_an_unfinished_last_statement_is_reported_at_the_end_of_the_file(
        workdir, database, capsys, checkpoints):
    sql = workdir.sql("unfinished.sql", UNFINISHED)
    playbook = workdir.playbook(workdir.steps(("s", [("unfinished", sql)])))
    flags = () if checkpoints else ("--no-checkpoints",)
    assert main(_plain("-p", playbook, *flags)) == 6
    err = capsys.readouterr().err
    assert ("QUERY FAILURE: target db, step s, query unfinished: sql/unfinished.sql:5:1: "
            "ERROR 42601: syntax error at end of input") in err
    assert query_one(database, "SELECT to_regclass('kept')") is None  # one transaction
    assert _run_queries(database) == 0


def test_an_unfinished_template_is_reported_at_the_end_of_its_source(workdir, database,
                                                                      capsys):
    sql = workdir.sql("unfinished.sql", "{{/* a template */}}\nCREATE TABLE kept (x int);\n"
                                        "CREATE TABLE {{.schema}}.t (\n  x int\n")
    playbook = workdir.playbook(workdir.steps(("s", [("unfinished", sql)]), template=True),
                                variables="  schema: public\n")
    assert main(_plain("-p", playbook)) == 6
    assert ("sql/unfinished.sql:5:1: ERROR 42601: syntax error at end of input"
            in capsys.readouterr().err)
    assert query_one(database, "SELECT to_regclass('kept')") is None
    assert _run_queries(database) == 0


def test_an_unfinished_upsert_select_is_reported_at_its_end(workdir, database, capsys):
    sql = workdir.sql("select.sql", "SELECT 1 AS k,\n       2 AS v\nFROM\n")
    playbook = workdir.playbook(
        "  - name: s\n    queries:\n      - name: merge\n        file: " + sql +
        "\n        template: true\n        upsert:\n          table: public.merged\n"
        "          key: k\n")
    assert main(_plain("-p", playbook)) == 6
    assert ("sql/select.sql:3:5: ERROR 42601: syntax error at end of input"
            in capsys.readouterr().err)
    assert query_one(database, "SELECT to_regclass('public.merged')") is None
    assert _run_queries(database) == 0


def _failure_line(err: str) -> str:
    failures = [line for line in err.splitlines() if "QUERY FAILURE" in line]
    assert len(failures) == 1, err
    return failures[0]


def test_an_unclosed_quote_is_an_end_of_input_at_the_end_of_the_file(workdir, database,
                                                                     capsys):
    # The checkpoint's first quote closes the string: without this, the error was
    # "trailing junk after numeric literal" somewhere in the checkpoint, with no line.
    sql = workdir.sql("quote.sql", "CREATE TABLE kept (x int);\nSELECT 'abc\n")
    playbook = workdir.playbook(workdir.steps(("s", [("quote", sql)])))
    assert main(_plain("-p", playbook)) == 6
    assert _failure_line(capsys.readouterr().err).endswith(
        "sql/quote.sql:3:1: ERROR 42601: syntax error at end of input")
    assert query_one(database, "SELECT to_regclass('kept')") is None
    assert _run_queries(database) == 0


def test_an_unclosed_comment_is_quoted_without_the_checkpoint(workdir, database, capsys):
    sql = workdir.sql("comment.sql", "CREATE TABLE kept (x int);\n/* never closed\n")
    playbook = workdir.playbook(workdir.steps(("s", [("comment", sql)])))
    assert main(_plain("-p", playbook)) == 6
    assert _failure_line(capsys.readouterr().err).endswith(
        "sql/comment.sql:2:1: ERROR 42601: unterminated /* comment at or near "
        "\"/* never closed\\n\"")
    assert query_one(database, "SELECT to_regclass('kept')") is None
    assert _run_queries(database) == 0
