"""Running playbooks against a real PostgreSQL: order, parallelism, transactions, failures."""

from __future__ import annotations

import json
import time

import psycopg
import pytest
from conftest import query_one, run_sql, suite_database_name, target_yaml

from sqlrunner.api import run_playbook
from sqlrunner.cli import main


def test_runs_steps_in_order_and_counts_rows(workdir, database):
    create = workdir.sql("create.sql", "CREATE TABLE t (x int);")
    insert = workdir.sql("insert.sql", "INSERT INTO t SELECT generate_series(1, 7);")
    playbook = workdir.playbook(workdir.steps(("create", [("create", create)]),
                                              ("fill", [("insert", insert)])))
    result = run_playbook(playbook)
    assert result.exit_code == 0, result.errors
    assert [(q.step, q.rows) for q in result.queries] == [("create", -1), ("fill", 7)]
    assert query_one(database, "SELECT count(*) FROM t") == 7


def test_queries_of_a_step_run_at_the_same_time(workdir, database):
    run_sql(database, "CREATE TABLE spans (q text, started timestamptz, ended timestamptz)")
    body = ("INSERT INTO spans SELECT '{q}', clock_timestamp(), NULL;"
            "SELECT pg_sleep(0.4);"
            "UPDATE spans SET ended = clock_timestamp() WHERE q = '{q}';")
    files = [(q, workdir.sql(f"{q}.sql", body.format(q=q))) for q in ("a", "b", "c")]
    result = run_playbook(workdir.playbook(workdir.steps(("sleepers", files))))
    assert result.exit_code == 0, result.errors
    overlap = query_one(database, "SELECT max(started) < min(ended) FROM spans")
    assert overlap is True


def test_max_parallel_one_runs_a_step_in_series(workdir, database):
    run_sql(database, "CREATE TABLE spans (q text, started timestamptz, ended timestamptz)")
    body = ("INSERT INTO spans SELECT '{q}', clock_timestamp(), NULL;"
            "SELECT pg_sleep(0.2);"
            "UPDATE spans SET ended = clock_timestamp() WHERE q = '{q}';")
    files = [(q, workdir.sql(f"{q}.sql", body.format(q=q))) for q in ("a", "b")]
    result = run_playbook(workdir.playbook(workdir.steps(("sleepers", files))), max_parallel=1)
    assert result.exit_code == 0, result.errors
    assert query_one(database, "SELECT max(started) > min(ended) FROM spans") is True


def test_a_file_is_one_implicit_transaction(workdir, database):
    run_sql(database, "CREATE TABLE t (x int)")
    bad = workdir.sql("bad.sql", "INSERT INTO t VALUES (1);\nINSERT INTO missing VALUES (2);\n")
    result = run_playbook(workdir.playbook(workdir.steps(("load", [("bad", bad)]))))
    assert result.exit_code == 6
    assert query_one(database, "SELECT count(*) FROM t") == 0


def test_a_file_with_its_own_transactions_keeps_them(workdir, database):
    run_sql(database, "CREATE TABLE t (x int)")
    sql = workdir.sql("own.sql", "BEGIN; INSERT INTO t VALUES (1); COMMIT;\nSELECT 1/0;\n")
    result = run_playbook(workdir.playbook(workdir.steps(("load", [("own", sql)]))))
    assert result.exit_code == 6
    assert query_one(database, "SELECT count(*) FROM t") == 1


def test_target_stops_after_the_failing_step_but_siblings_finish(workdir, database):
    run_sql(database, "CREATE TABLE done (q text)")
    slow = workdir.sql("slow.sql", "SELECT pg_sleep(0.3); INSERT INTO done VALUES ('slow');")
    bad = workdir.sql("bad.sql", "SELECT * FROM nowhere;")
    later = workdir.sql("later.sql", "INSERT INTO done VALUES ('later');")
    playbook = workdir.playbook(workdir.steps(("first", [("slow", slow), ("bad", bad)]),
                                              ("second", [("later", later)])))
    result = run_playbook(playbook)
    assert result.exit_code == 6
    statuses = {q.query: q.status for q in result.queries}
    assert statuses == {"slow": "succeeded", "bad": "failed", "later": "skipped"}
    with psycopg.connect(database) as conn:
        assert [r[0] for r in conn.execute("SELECT q FROM done")] == ["slow"]


def test_a_database_error_names_file_line_column_and_shows_a_caret(workdir, capsys):
    sql = workdir.sql("broken.sql", "SELECT 1;\n\nSELECT *\n  FROM  nowhere_table;\n")
    playbook = workdir.playbook(workdir.steps(("s", [("broken", sql)])))
    assert main(["-p", playbook, "--progress", "plain"]) == 6
    err = capsys.readouterr().err
    assert "sql/broken.sql:4:9: ERROR 42P01: relation \"nowhere_table\" does not exist" in err
    lines = err.splitlines()
    failing = next(i for i, line in enumerate(lines) if line.endswith("  FROM  nowhere_table;"))
    assert lines[failing + 1].index("^") == lines[failing].index("nowhere_table")


def test_two_targets_run_in_parallel_and_each_gets_the_work(workdir, database, server_dsn):
    other = suite_database_name("second_")
    run_sql(server_dsn, f'CREATE DATABASE "{other}"')
    try:
        sql = workdir.sql("t.sql", "CREATE TABLE t AS SELECT current_database() AS db;")
        targets = target_yaml(workdir.params, "first") + target_yaml(
            {**workdir.params, "dbname": other}, "second")
        result = run_playbook(workdir.playbook(workdir.steps(("s", [("t", sql)])),
                                               targets=targets))
        assert result.exit_code == 0, result.errors
        assert sorted(q.target for q in result.queries) == ["first", "second"]
        assert query_one(database, "SELECT db FROM t") == workdir.params["dbname"]
        other_dsn = database.replace(workdir.params["dbname"], other)
        assert query_one(other_dsn, "SELECT db FROM t") == other
    finally:
        run_sql(server_dsn, f'DROP DATABASE IF EXISTS "{other}" WITH (FORCE)')


def test_one_target_failing_to_start_does_not_stop_the_other(workdir, database):
    sql = workdir.sql("t.sql", "CREATE TABLE t (x int);")
    bad = {**workdir.params, "host": ""}
    targets = target_yaml(workdir.params, "good") + target_yaml(bad, "nohost")
    result = run_playbook(workdir.playbook(workdir.steps(("s", [("t", sql)])), targets=targets))
    assert result.exit_code == 5
    assert [f.target for f in result.target_failures] == ["nohost"]
    assert "missing host" in result.target_failures[0].error
    assert query_one(database, "SELECT count(*) FROM t") == 0


def test_target_and_query_failures_together_exit_7(workdir):
    sql = workdir.sql("t.sql", "SELECT * FROM nowhere;")
    targets = target_yaml(workdir.params, "good") + target_yaml(
        {**workdir.params, "port": ""}, "noport")
    result = run_playbook(workdir.playbook(workdir.steps(("s", [("t", sql)])), targets=targets))
    assert result.exit_code == 7


@pytest.mark.no_database
@pytest.mark.parametrize("checkpoints", [[], ["--no-checkpoints"]])
def test_an_unreachable_database_is_retried_then_reported_once_with_exit_6(workdir, capsys,
                                                                        checkpoints):
    first = workdir.sql("first.sql", "SELECT 1;")
    second = workdir.sql("second.sql", "SELECT 2;")
    dead = {**workdir.params, "host": "127.0.0.1", "port": "1"}
    playbook = workdir.playbook(workdir.steps(("s", [("first", first)]),
                                              ("t", [("second", second)])),
                                targets=target_yaml(dead, "dead"))
    report = workdir.root / "report.json"
    assert main(["-p", playbook, "--progress", "plain", "--reconnect-timeout", "1.5",
                 "--retry-backoff", "0.1", "--report", str(report), *checkpoints]) == 6
    err = capsys.readouterr().err
    # Retried as transient while the budget lasted, then said once; nothing ran.
    assert "target unreachable" in err and "trying again" in err
    address = f"127.0.0.1:1/{workdir.params['dbname']}"
    assert err.count(f"cannot connect to target 'dead' ({address})") == 1, err
    assert "skipped" not in err and "QUERY FAILURE" not in err
    assert "0 queries executed" in err
    written = json.loads(report.read_text())
    assert written["queries"] == [] and written["exit_code"] == 6
    assert written["unreachable"][0]["target"] == "dead"


@pytest.mark.no_database
def test_a_database_that_does_not_exist_is_not_waited_for(workdir, capsys):
    sql = workdir.sql("t.sql", "SELECT 1;")
    missing = {**workdir.params, "dbname": "sqlrunner_no_such_database"}
    playbook = workdir.playbook(workdir.steps(("s", [("t", sql)])),
                                targets=target_yaml(missing, "missing"))
    started = time.monotonic()
    assert main(["-p", playbook, "--progress", "plain"]) == 6
    assert time.monotonic() - started < 30  # the default budget (60 s) was not spent
    err = capsys.readouterr().err
    assert err.count("cannot connect to target 'missing'") == 1
    assert "does not exist" in err and "trying again" not in err


def test_show_query_output_prints_rows_with_upper_case_headers(workdir, capsys):
    sql = workdir.sql("q.sql", "SELECT 'hello' AS greeting, 42 AS answer;")
    playbook = workdir.playbook(workdir.steps(("s", [("q", sql)])))
    assert main(["-playbook", playbook, "-showQueryOutput", "--progress", "plain"]) == 0
    out = capsys.readouterr().out
    assert "GREETING" in out and "ANSWER" in out and "hello" in out and "42" in out


def test_percent_signs_and_dollar_quotes_reach_the_server_untouched(workdir, database):
    sql = workdir.sql("q.sql", "CREATE TABLE t AS SELECT 'a%b' AS v, $$it's$$ AS w;\n"
                               "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;")
    result = run_playbook(workdir.playbook(workdir.steps(("s", [("q", sql)]))))
    assert result.exit_code == 0, result.errors
    assert query_one(database, "SELECT v || w FROM t") == "a%bit's"


def test_report_file_records_every_query(workdir, tmp_path):
    ok = workdir.sql("ok.sql", "SELECT 1;")
    bad = workdir.sql("bad.sql", "SELEC 1;")
    playbook = workdir.playbook(workdir.steps(("s", [("ok", ok), ("bad", bad)])))
    report = tmp_path / "report.json"
    assert main(["-p", playbook, "--report", str(report), "--progress", "plain"]) == 6
    data = json.loads(report.read_text())
    assert data["exit_code"] == 6
    by_name = {q["query"]: q for q in data["queries"]}
    assert by_name["ok"]["status"] == "succeeded" and by_name["ok"]["rows"] == 1
    assert by_name["bad"]["status"] == "failed" and by_name["bad"]["sqlstate"] == "42601"
    assert by_name["bad"]["line"] == 1 and by_name["bad"]["column"] == 1
    assert set(by_name["ok"]) >= {"target", "step", "query", "file", "status", "rows",
                                  "seconds", "error"}


def test_live_view_renders_a_summary_table(workdir, capsys):
    sql = workdir.sql("q.sql", "SELECT 1;")
    playbook = workdir.playbook(workdir.steps(("s", [("q", sql)])))
    assert main(["-p", playbook, "--progress", "live"]) == 0
    err = capsys.readouterr().err
    assert "summary" in err and "succeeded" in err and "1 queries executed" in err


def test_an_error_in_a_template_names_the_line_of_the_file_not_of_the_rendered_sql(workdir):
    sql = workdir.sql("t.sql", "SELECT\n{{- range $i, $c := .columns}}\n  {{$c}},\n{{- end}}\n"
                               "  1\nFROM {{.schema}}.nowhere_at_all;\n")
    playbook = workdir.playbook(workdir.steps(("s", [("t", sql)]), template=True))
    variables = "  columns: [1, 2, 3, 4, 5]\n  schema: public\n"
    playbook = workdir.playbook(workdir.steps(("s", [("t", sql)]), template=True),
                                variables=variables)
    result = run_playbook(playbook, retries=0)
    (query,) = result.queries
    assert query.sqlstate == "42P01"
    assert (query.line, query.column) == (6, 6)  # the {{.schema}} action in the file
    assert query.excerpt.splitlines()[0] == "FROM {{.schema}}.nowhere_at_all;"
