"""The command line: SQL Runner's flags and exit codes, and our own spellings."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psycopg
import pytest
from conftest import query_one, run_sql, target_yaml, wait_for_query

from sqlrunner.cli import main


def _plain(*args: str) -> list[str]:
    return [*args, "--progress", "plain"]


def test_version_and_help_exit_0(capsys):
    assert main(["-version"]) == 0
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("sqlrunner ")
    assert main(["--help"]) == 0


def test_bad_flags_exit_2_with_one_line(capsys):
    assert main(["--no-such-flag"]) == 2
    assert main([]) == 2  # no playbook
    assert main(["-p", "x.yml", "--max-parallel", "0"]) == 2
    assert main(["-p", "x.yml", "-dryRun=maybe"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert all(line.startswith("sqlrunner: error: ") for line in err)


def test_consul_options_are_refused_clearly(capsys):
    assert main(["-p", "x.yml", "-consul", "localhost:8500"]) == 2
    assert "Consul" in capsys.readouterr().err


def test_missing_playbook_exits_1(tmp_path, capsys):
    assert main(["-p", str(tmp_path / "none.yml")]) == 1
    assert "playbook not found" in capsys.readouterr().err


def test_run_subcommand_and_plain_form_are_the_same(workdir, database):
    sql = workdir.sql("t.sql", "CREATE TABLE IF NOT EXISTS t (x int); INSERT INTO t VALUES (1);")
    playbook = workdir.playbook(workdir.steps(("s", [("t", sql)])))
    assert main(_plain("-p", playbook)) == 0
    assert main(_plain("run", "--playbook", playbook)) == 0
    assert query_one(database, "SELECT count(*) FROM t") == 2


def test_from_step_starts_at_that_step(workdir, database):
    one = workdir.sql("one.sql", "CREATE TABLE one (x int);")
    two = workdir.sql("two.sql", "CREATE TABLE two (x int);")
    playbook = workdir.playbook(workdir.steps(("first", [("one", one)]),
                                              ("second", [("two", two)])))
    assert main(_plain("-p", playbook, "-fromStep", "second")) == 0
    assert query_one(database, "SELECT to_regclass('one') IS NULL") is True
    assert query_one(database, "SELECT to_regclass('two') IS NOT NULL") is True


@pytest.mark.no_database
def test_unknown_from_step_exits_5_and_names_the_steps(workdir, capsys):
    one = workdir.sql("one.sql", "SELECT 1;")
    playbook = workdir.playbook(workdir.steps(("first", [("one", one)])))
    assert main(_plain("-p", playbook, "--from-step", "nope")) == 5
    assert "'first'" in capsys.readouterr().err


def test_run_query_runs_one_query_and_wins_over_from_step(workdir, database):
    a = workdir.sql("a.sql", "CREATE TABLE a (x int);")
    b = workdir.sql("b.sql", "CREATE TABLE b (x int);")
    playbook = workdir.playbook(workdir.steps(("s1", [("a", a)]), ("s2", [("b", b)])))
    assert main(_plain("-p", playbook, "-runQuery", "s1::a", "-fromStep", "s2")) == 0
    assert query_one(database, "SELECT to_regclass('a') IS NOT NULL") is True
    assert query_one(database, "SELECT to_regclass('b') IS NULL") is True


@pytest.mark.no_database
def test_malformed_or_unknown_run_query_exits_5(workdir):
    a = workdir.sql("a.sql", "SELECT 1;")
    playbook = workdir.playbook(workdir.steps(("s1", [("a", a)])))
    assert main(_plain("-p", playbook, "--run-query", "s1")) == 5
    assert main(_plain("-p", playbook, "--run-query", "s1::zz")) == 5
    assert main(_plain("-p", playbook, "--run-query", "zz::a")) == 5


def test_only_the_selected_steps_files_are_read(workdir, database):
    present = workdir.sql("present.sql", "CREATE TABLE present (x int);")
    playbook = workdir.playbook(workdir.steps(("gone", [("gone", "sql/missing.sql")]),
                                              ("here", [("present", present)])))
    assert main(_plain("-p", playbook)) == 5
    assert main(_plain("-p", playbook, "--from-step", "here")) == 0


def test_missing_sql_file_exits_5_before_any_sql_runs(workdir, database, capsys):
    ok = workdir.sql("ok.sql", "CREATE TABLE ok (x int);")
    playbook = workdir.playbook(workdir.steps(("s", [("ok", ok)]),
                                              ("t", [("gone", "sql/missing.sql")])))
    assert main(_plain("-p", playbook)) == 5
    # The playbook line of its file:, the step and the query, then the path.
    assert ("playbook.yml:18: step 't', query 'gone': SQL file not found: sql/missing.sql"
            in capsys.readouterr().err)
    assert query_one(database, "SELECT to_regclass('ok') IS NULL") is True


def test_an_absolute_looking_file_is_joined_under_the_sql_root(workdir, database):
    workdir.sql("abs.sql", "CREATE TABLE abs_t (x int);")
    playbook = workdir.playbook(workdir.steps(("s", [("abs", "/sql/abs.sql")])))
    assert main(_plain("-p", playbook)) == 0
    assert query_one(database, "SELECT to_regclass('abs_t') IS NOT NULL") is True


def test_sqlroot_points_at_another_folder(workdir, tmp_path, database):
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "x.sql").write_text("CREATE TABLE x (x int);")
    playbook = workdir.playbook(workdir.steps(("s", [("x", "x.sql")])))
    assert main(_plain("-p", playbook, "-sqlroot", str(other))) == 0
    assert query_one(database, "SELECT to_regclass('x') IS NOT NULL") is True


def test_empty_steps_execute_nothing_and_exit_8(workdir):
    playbook = workdir.playbook("  - name: nothing\n    queries: []\n")
    assert main(_plain("-p", playbook)) == 8


def test_dry_run_renders_and_checks_but_executes_nothing(workdir, database, capsys):
    sql = workdir.sql("t.sql", "CREATE TABLE t (x int);")
    playbook = workdir.playbook(workdir.steps(("s", [("t", sql)])))
    assert main(["-p", playbook, "-dryRun"]) == 0
    err = capsys.readouterr().err
    assert "1 queries rendered" in err and "reachable" in err and "NOT reachable" not in err
    assert query_one(database, "SELECT to_regclass('t') IS NULL") is True


@pytest.mark.no_database
def test_dry_run_without_a_database_still_validates(workdir, capsys):
    sql = workdir.sql("t.sql", "SELECT 1;")
    dead = {**workdir.params, "port": "1"}
    playbook = workdir.playbook(workdir.steps(("s", [("t", sql)])),
                                targets=target_yaml(dead, "dead"))
    assert main(["-p", playbook, "--dry-run"]) == 0
    assert "target dead: NOT reachable" in capsys.readouterr().err
    assert main(["-p", playbook, "-dryRun", "--from-step", "nope"]) == 5


def test_dry_run_false_is_a_real_run(workdir, database):
    sql = workdir.sql("t.sql", "CREATE TABLE t (x int);")
    playbook = workdir.playbook(workdir.steps(("s", [("t", sql)])))
    assert main(_plain("-p", playbook, "-dryRun=false")) == 0
    assert query_one(database, "SELECT to_regclass('t') IS NOT NULL") is True


def test_fill_templates_prints_queries_to_stderr_and_exits_8(workdir, database, capsys):
    sql = workdir.sql("t.sql", "CREATE TABLE t (x int);")
    playbook = workdir.playbook(workdir.steps(("s", [("t", sql)])))
    assert main(["-p", playbook, "-fillTemplates"]) == 8
    err = capsys.readouterr().err
    assert "Step: s" in err and "Query: t" in err and "CREATE TABLE t (x int);" in err
    assert query_one(database, "SELECT to_regclass('t') IS NULL") is True


@pytest.mark.no_database
def test_fill_templates_json_gives_one_object_per_query(workdir, capsys):
    a = workdir.sql("a.sql", "SELECT 'a';")
    b = workdir.sql("b.sql", "SELECT 'b';")
    playbook = workdir.playbook(workdir.steps(("s", [("a", a), ("b", b)])))
    assert main(["-p", playbook, "--fill-templates", "--format", "json"]) == 8
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["target"], r["step"], r["query"], r["file"], r["sql"]) for r in records] == [
        ("db", "s", "a", "sql/a.sql", "SELECT 'a';"), ("db", "s", "b", "sql/b.sql", "SELECT 'b';")]


@pytest.mark.no_database
def test_a_password_is_never_printed(workdir, capsys):
    sql = workdir.sql("t.sql", "SELECT 'Sup3rSecret!' AS leaked;")
    params = {**workdir.params, "port": "1"}
    targets = target_yaml(params, "dead").replace("password:\n", "password: Sup3rSecret!\n")
    playbook = workdir.playbook(workdir.steps(("s", [("t", sql)])), targets=targets)
    main(["-p", playbook, "--fill-templates"])
    main(["-p", playbook, "--fill-templates", "--format", "json"])
    main(["-p", playbook, "--dry-run"])
    main(["-p", playbook, "--progress", "plain", "--reconnect-timeout", "0"])
    captured = capsys.readouterr()
    assert "Sup3rSecret!" not in captured.out + captured.err
    assert "********" in captured.err


def test_var_sets_variables_and_splits_sql_runner_lists(workdir):
    from sqlrunner.cli.options import parse_var as _parse_var

    assert _parse_var("a=1,b=2") == {"a": "1", "b": "2"}
    assert _parse_var("ids=1,2,3") == {"ids": "1,2,3"}
    assert _parse_var("expr=a=b") == {"expr": "a=b"}
    assert main(["-p", "x.yml", "--var", "novalue"]) == 2


def test_lock_is_created_and_removed_after_success(workdir, tmp_path):
    sql = workdir.sql("t.sql", "SELECT 1;")
    playbook = workdir.playbook(workdir.steps(("s", [("t", sql)])))
    lock = tmp_path / "run.lock"
    assert main(_plain("-p", playbook, "-lock", str(lock))) == 0
    assert not lock.exists()


def test_lock_is_kept_after_failure_and_blocks_the_next_run(workdir, tmp_path, capsys):
    sql = workdir.sql("t.sql", "SELECT * FROM nowhere;")
    playbook = workdir.playbook(workdir.steps(("s", [("t", sql)])))
    lock = tmp_path / "run.lock"
    assert main(_plain("-p", playbook, "--lock", str(lock))) == 6
    holder = json.loads(lock.read_text())
    assert holder["pid"] == os.getpid() and holder["host"] and holder["owner"]
    assert main(_plain("-p", playbook, "--lock", str(lock))) == 3
    assert f"pid {os.getpid()}" in capsys.readouterr().err
    # The existence check comes before the playbook is read.
    assert main(_plain("-p", "no-such-playbook.yml", "--lock", str(lock))) == 3


def test_soft_lock_is_removed_whatever_the_outcome(workdir, tmp_path):
    sql = workdir.sql("t.sql", "SELECT * FROM nowhere;")
    playbook = workdir.playbook(workdir.steps(("s", [("t", sql)])))
    lock = tmp_path / "soft.lock"
    assert main(_plain("-p", playbook, "-softLock", str(lock))) == 6
    assert not lock.exists()


def test_check_lock_and_delete_lock(tmp_path):
    lock = tmp_path / "x.lock"
    assert main(["-checkLock", str(lock)]) == 0
    assert main(["-deleteLock", str(lock)]) == 1
    lock.write_text("{}")
    assert main(["--check-lock", str(lock)]) == 3
    assert main(["--delete-lock", str(lock)]) == 0
    assert not lock.exists()


@pytest.mark.no_database
def test_lock_is_not_created_when_validation_fails(workdir, tmp_path):
    playbook = workdir.playbook(workdir.steps(("s", [("t", "sql/missing.sql")])))
    lock = tmp_path / "run.lock"
    assert main(_plain("-p", playbook, "-lock", str(lock))) == 5
    assert not lock.exists()


def test_target_option_replaces_the_playbook_targets(workdir, database):
    sql = workdir.sql("t.sql", "CREATE TABLE t (x int);")
    dead = {**workdir.params, "port": "1"}
    playbook = workdir.playbook(workdir.steps(("s", [("t", sql)])),
                                targets=target_yaml(dead, "dead"))
    assert main(_plain("-p", playbook, "--target", database)) == 0
    assert query_one(database, "SELECT to_regclass('t') IS NOT NULL") is True


def test_the_installed_command_runs_as_a_process(workdir, database):
    sql = workdir.sql("t.sql", "CREATE TABLE t (x int);")
    playbook = workdir.playbook(workdir.steps(("s", [("t", sql)])))
    done = subprocess.run([sys.executable, "-m", "sqlrunner", "-playbook", playbook],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stderr  # not a terminal: plain lines, no control characters
    assert "1 queries executed against 1 targets" in done.stderr


def test_bad_report_path_and_var_file_are_usage_errors_before_anything_runs(workdir,
                                                                            database, capsys):
    sql = workdir.sql("t.sql", "CREATE TABLE t (x int);")
    playbook = workdir.playbook(workdir.steps(("s", [("t", sql)])))
    assert main(_plain("-p", playbook, "--report", "/nonexistent/r.json")) == 2
    assert main(_plain("-p", playbook, "--var-file", str(workdir.root))) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert query_one(database, "SELECT to_regclass('t') IS NULL") is True


@pytest.mark.no_database
def test_a_password_in_a_malformed_dsn_is_not_printed(workdir, capsys):
    sql = workdir.sql("t.sql", "SELECT 1;")
    playbook = workdir.playbook(workdir.steps(("s", [("t", sql)])))
    assert main(_plain("-p", playbook, "--target", "postgresql://u:TopSecret1@[::1/db")) == 5
    assert "TopSecret1" not in capsys.readouterr().err


@pytest.mark.no_database
def test_fill_templates_masks_secret_variables_and_credentials(workdir, capsys):
    sql = workdir.sql("t.sql", "COPY x FROM 's3://b' CREDENTIALS "
                               "'aws_access_key_id=AK;aws_secret_access_key={{.aws_secret}}';\n"
                               "SELECT '{{.db_password}}';")
    playbook = workdir.playbook(workdir.steps(("s", [("t", sql)]), template=True))
    assert main(["-p", playbook, "--fill-templates", "--var", "aws_secret=VerySecret123",
                 "--var", "db_password=Hunter22"]) == 8
    err = capsys.readouterr().err
    assert "VerySecret123" not in err and "Hunter22" not in err and "********" in err


@pytest.mark.no_database
def test_dry_run_with_a_target_that_cannot_start_exits_5(workdir):
    sql = workdir.sql("t.sql", "SELECT 1;")
    playbook = workdir.playbook(workdir.steps(("s", [("t", sql)])),
                                targets=target_yaml({**workdir.params, "port": ""}, "noport"))
    assert main(["-p", playbook, "--dry-run"]) == 5


def test_query_output_off_a_terminal_is_never_cut(workdir, capsys):
    sql = workdir.sql("q.sql", "SELECT repeat('x', 150) || 'END' AS long_value;")
    playbook = workdir.playbook(workdir.steps(("s", [("q", sql)])))
    assert main(_plain("-p", playbook, "--show-query-output")) == 0
    assert "x" * 150 + "END" in capsys.readouterr().out


def test_a_lock_file_is_removed_when_the_database_lock_turned_the_run_away(workdir, database,
                                                                           tmp_path):
    run_sql(database, "CREATE TABLE gate (x int)")
    held = workdir.sql("held.sql", "SELECT count(*) FROM gate;")
    playbook = workdir.playbook(workdir.steps(("s", [("held", held)])))
    with psycopg.connect(database) as gatekeeper:  # the first run waits here, lock held
        gatekeeper.execute("LOCK TABLE gate")
        first = subprocess.Popen([sys.executable, "-m", "sqlrunner", "-p", playbook],
                                 cwd=workdir.root, stderr=subprocess.PIPE, text=True)
        wait_for_query(database, "FROM gate")
        lock = tmp_path / "other-host.lock"
        assert main(_plain("-p", playbook, "--lock", str(lock))) == 3
        assert not lock.exists()
    assert first.wait(timeout=60) == 0


@pytest.mark.no_database
def test_output_read_by_a_reader_that_stopped_ends_quietly(workdir):
    """``sqlrunner check ... | head``: the reader gone, the command ends as one that SIGPIPE
    ended (141), with no traceback."""
    from sqlrunner.errors import EXIT_OUTPUT_CLOSED

    sql = workdir.sql("t.sql", "".join(f"SELECT now() AS t{n};\n" for n in range(200)))
    playbook = workdir.playbook(workdir.steps(("s", [("t", sql)])))
    read, write = os.pipe()
    os.close(read)  # nobody reads: the first write fails
    try:
        done = subprocess.run([sys.executable, "-m", "sqlrunner", "check", "-p", playbook],
                              stdout=write, stderr=subprocess.PIPE, text=True, timeout=120,
                              cwd=workdir.root)
    finally:
        os.close(write)
    assert done.returncode == EXIT_OUTPUT_CLOSED
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr
