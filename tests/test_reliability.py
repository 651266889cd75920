"""Never lose work: retries, resume from checkpoints, the run lock, interrupts, timeouts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest
from conftest import query_one, run_sql

from sqlrunner.api import run_playbook
from sqlrunner.cli import main


def _steps_log(workdir, database, count: int = 3, sleep: float = 0.0) -> str:
    """A playbook of ``count`` steps; each appends its name to ``log`` once."""
    run_sql(database, "CREATE TABLE log (step text, at timestamptz DEFAULT clock_timestamp())")
    steps = []
    for i in range(1, count + 1):
        nap = f"SELECT pg_sleep({sleep});\n" if sleep else ""
        steps.append((f"s{i}", [(f"q{i}", workdir.sql(
            f"q{i}.sql", f"INSERT INTO log (step) VALUES ('s{i}');\n{nap}"))]))
    return workdir.playbook(workdir.steps(*steps))


def _log(database: str) -> list[str]:
    with psycopg.connect(database) as conn:
        return [r[0] for r in conn.execute("SELECT step FROM log ORDER BY at")]


def test_resumes_from_the_first_unfinished_query(workdir, database):
    run_sql(database, "CREATE TABLE log (step text)")
    one = workdir.sql("one.sql", "INSERT INTO log VALUES ('one');")
    two = workdir.sql("two.sql", "INSERT INTO log VALUES ('two'); INSERT INTO later VALUES (1);")
    three = workdir.sql("three.sql", "INSERT INTO log VALUES ('three');")
    playbook = workdir.playbook(workdir.steps(("a", [("one", one)]), ("b", [("two", two)]),
                                              ("c", [("three", three)])))
    first = run_playbook(playbook, retries=0)
    assert first.exit_code == 6
    run_sql(database, "CREATE TABLE later (x int)")
    second = run_playbook(playbook)
    assert second.exit_code == 0, second.errors
    assert second.resumed_from == first.run_id
    assert [(q.query, q.status) for q in second.queries] == [
        ("one", "skipped"), ("two", "succeeded"), ("three", "succeeded")]
    with psycopg.connect(database) as conn:
        assert sorted(r[0] for r in conn.execute("SELECT * FROM log")) == ["one", "three", "two"]


@pytest.mark.parametrize(("sql", "flushed"), [
    ("SELECT 1", False),
    ("SELECT count(*) FROM pg_class; SELECT 2", False),
    ("CREATE TABLE t (x int)", True),
    ("CREATE TEMP TABLE t AS SELECT 1 AS x", True),
])
def test_only_a_file_that_wrote_something_waits_for_its_commit_to_be_flushed(database, sql,
                                                                            flushed):
    from sqlrunner.execute.checkpoints import CheckpointStore

    with psycopg.connect(database, autocommit=True) as conn:
        store = CheckpointStore(conn)
        store.ensure_tables()
        checkpoint = store.checkpoint_sql("run", "db", "step", "query", "q.sql", "digest",
                                          lazy_if_read_only=True)
        with conn.transaction():  # the file and its checkpoint, in one transaction
            conn.execute(f"{sql};\n{checkpoint}")
            waits = conn.execute("SHOW synchronous_commit").fetchone()[0]
        assert waits == ("on" if flushed else "off")
        assert store.is_recorded("run", "db", "step", "query", "digest")


@pytest.mark.parametrize("extension", [None, "dblink", "postgres_fdw"])
def test_where_a_query_can_write_to_another_server_every_checkpoint_waits_for_the_flush(
        database, extension):
    # A write through dblink or a foreign table gives the local transaction no id: it
    # would look read-only, and a crash could lose its checkpoint and apply it twice.
    from datetime import UTC, datetime

    from sqlrunner.execute.state import RunState, StateSettings
    from sqlrunner.execute.targets import connection_for, target_from_dsn

    if extension is not None:
        with psycopg.connect(database, autocommit=True) as conn:
            if not conn.execute("SELECT EXISTS (SELECT 1 FROM pg_available_extensions "
                                "WHERE name = %s)", (extension,)).fetchone()[0]:
                pytest.skip(f"{extension} is not installed on this server")
            conn.execute(f"CREATE EXTENSION {extension}")
    state = RunState(connection_for(target_from_dsn(database)), "p.yml", "db", "run",
                     datetime.now(UTC), False, StateSettings())
    state.open()
    try:
        sql = state.checkpointed("SELECT 1", "step", "query", "q.sql", "digest").text
    finally:
        state.close()
    assert ("synchronous_commit" in sql) is (extension is None)


def test_a_read_only_step_is_checkpointed_and_skipped_on_resume(workdir, database):
    run_sql(database, "CREATE TABLE log (step text)")
    one = workdir.sql("one.sql", "INSERT INTO log VALUES ('one');")
    check = workdir.sql("check.sql", "SELECT count(*) FROM log;")
    two = workdir.sql("two.sql", "INSERT INTO log VALUES ('two'); INSERT INTO later VALUES (1);")
    playbook = workdir.playbook(workdir.steps(("a", [("one", one)]), ("b", [("check", check)]),
                                              ("c", [("two", two)])))
    first = run_playbook(playbook, retries=0)
    assert first.exit_code == 6
    run_sql(database, "CREATE TABLE later (x int)")
    second = run_playbook(playbook)
    assert [(q.query, q.status) for q in second.queries] == [
        ("one", "skipped"), ("check", "skipped"), ("two", "succeeded")]


def test_a_finished_run_is_not_resumed(workdir, database):
    playbook = _steps_log(workdir, database, count=2)
    assert run_playbook(playbook).exit_code == 0
    again = run_playbook(playbook)
    assert again.exit_code == 0 and again.resumed_from is None
    assert _log(database) == ["s1", "s2", "s1", "s2"]


def test_a_query_whose_sql_changed_runs_again_on_resume(workdir, database):
    run_sql(database, "CREATE TABLE log (step text)")
    one = workdir.sql("one.sql", "INSERT INTO log VALUES ('one');")
    two = workdir.sql("two.sql", "SELECT 1/0;")
    playbook = workdir.playbook(workdir.steps(("a", [("one", one)]), ("b", [("two", two)])))
    assert run_playbook(playbook, retries=0).exit_code == 6
    workdir.sql("one.sql", "INSERT INTO log VALUES ('one, edited');")
    workdir.sql("two.sql", "SELECT 1;")
    assert run_playbook(playbook).exit_code == 0
    assert query_one(database, "SELECT string_agg(step, '|' ORDER BY step) FROM log") == (
        "one|one, edited")


def test_restart_ignores_the_unfinished_run(workdir, database):
    run_sql(database, "CREATE TABLE log (step text)")
    one = workdir.sql("one.sql", "INSERT INTO log VALUES ('one');")
    two = workdir.sql("two.sql", "SELECT * FROM missing_table;")
    playbook = workdir.playbook(workdir.steps(("a", [("one", one)]), ("b", [("two", two)])))
    assert run_playbook(playbook, retries=0).exit_code == 6
    run_sql(database, "CREATE TABLE missing_table (x int)")
    assert main(["-p", playbook, "--restart", "--progress", "plain"]) == 0
    assert query_one(database, "SELECT count(*) FROM log") == 2
    statuses = query_one(database, "SELECT string_agg(status, ',' ORDER BY started_at) "
                                   "FROM sqlrunner.runs")
    assert statuses == "abandoned,succeeded"


def test_a_resumed_run_renders_with_the_original_run_id(workdir, database):
    run_sql(database, "CREATE TABLE ids (run_id text)")
    one = workdir.sql("one.sql", "INSERT INTO ids VALUES ('{{.run_id}}');")
    two = workdir.sql("two.sql", "INSERT INTO ids VALUES ('{{.run_id}}'); SELECT {{.divisor}};")
    playbook = workdir.playbook(workdir.steps(("a", [("one", one)]), ("b", [("two", two)]),
                                              template=True))
    assert run_playbook(playbook, {"divisor": "1/0"}, retries=0).exit_code == 6
    assert run_playbook(playbook, {"divisor": "1"}).exit_code == 0
    assert query_one(database, "SELECT count(DISTINCT run_id) FROM ids") == 1
    assert query_one(database, "SELECT count(*) FROM ids") == 2


@pytest.mark.parametrize("sqlstate", ["08006", "57P01", "53300", "40001", "40P01", "55P03"])
def test_transient_errors_are_retried_and_counted(workdir, database, sqlstate):
    run_sql(database, "CREATE SEQUENCE tries; CREATE TABLE t (x int)")
    flaky = workdir.sql("flaky.sql", f"""
        INSERT INTO t VALUES (1);
        DO $$ BEGIN
          IF nextval('tries') < 3 THEN
            RAISE EXCEPTION 'try again' USING ERRCODE = '{sqlstate}';
          END IF;
        END $$;
    """)
    result = run_playbook(workdir.playbook(workdir.steps(("s", [("flaky", flaky)]))),
                          retry_backoff=0.01)
    assert result.exit_code == 0, result.errors
    assert result.queries[0].retries == 2
    assert query_one(database, "SELECT count(*) FROM t") == 1


def test_retries_run_out(workdir, database):
    run_sql(database, "CREATE SEQUENCE tries")
    flaky = workdir.sql("flaky.sql", """
        DO $$ BEGIN
          PERFORM nextval('tries');
          RAISE EXCEPTION 'deadlock' USING ERRCODE = 'deadlock_detected';
        END $$;
    """)
    playbook = workdir.playbook(workdir.steps(("s", [("flaky", flaky)])))
    result = run_playbook(playbook, retries=2, retry_backoff=0.01)
    assert result.exit_code == 6 and result.queries[0].sqlstate == "40P01"
    assert query_one(database, "SELECT last_value FROM tries") == 3


def test_syntax_and_data_errors_are_never_retried(workdir, database):
    bad = workdir.sql("bad.sql", "SELEC 1;")
    data = workdir.sql("data.sql", "SELECT 1/0;")
    playbook = workdir.playbook(workdir.steps(("s", [("bad", bad), ("data", data)])))
    result = run_playbook(playbook, retry_backoff=5)
    assert sorted((q.sqlstate, q.retries) for q in result.queries) == [
        ("22012", 0), ("42601", 0)]


def test_retry_settings_come_from_query_then_target_then_playbook(workdir, database):
    run_sql(database, "CREATE SEQUENCE tries")
    flaky = workdir.sql("flaky.sql", "DO $$ BEGIN PERFORM nextval('tries'); RAISE EXCEPTION "
                                     "'x' USING ERRCODE = 'lock_not_available'; END $$;")
    steps = ("  - name: s\n    queries:\n      - name: flaky\n        file: " + flaky +
             "\n        retries: 1\n        retry_backoff: 0.01\n")
    playbook = workdir.playbook(steps)
    path = workdir.root / "playbook.yml"
    path.write_text("retries: 5\nretry_backoff: 0.01\n" + path.read_text())
    assert run_playbook(playbook).queries[0].retries == 1
    assert query_one(database, "SELECT last_value FROM tries") == 2


def test_a_terminated_backend_is_retried_on_a_fresh_connection_once(workdir, database):
    run_sql(database, "CREATE TABLE t (x int)")
    slow = workdir.sql("slow.sql", "INSERT INTO t VALUES (1); SELECT pg_sleep(1.5);")
    playbook = workdir.playbook(workdir.steps(("s", [("slow", slow)])))
    proc = subprocess.Popen([sys.executable, "-m", "sqlrunner", "-p", playbook,
                             "--retry-backoff", "0.1", "--report", "r.json"],
                            cwd=workdir.root, stderr=subprocess.PIPE, text=True)
    with psycopg.connect(database, autocommit=True) as admin:
        pid = _wait_for_query(admin, "pg_sleep(1.5)")
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    assert proc.wait(timeout=60) == 0, proc.stderr.read()
    report = json.loads((workdir.root / "r.json").read_text())
    assert report["queries"][0]["retries"] == 1
    assert query_one(database, "SELECT count(*) FROM t") == 1


def _wait_for_query(admin: psycopg.Connection, fragment: str, timeout: float = 20) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE state = 'active' AND query LIKE %s "
            "AND datname = current_database() AND pid <> pg_backend_pid()",
            (f"%{fragment}%",)).fetchone()
        if row:
            return row[0]
        time.sleep(0.02)
    raise AssertionError(f"query {fragment!r} never started")


def _running(playbook: str, cwd, database: str, fragment: str) -> subprocess.Popen:
    """A run of ``playbook`` as a process, once its query ``fragment`` runs."""
    proc = subprocess.Popen([sys.executable, "-m", "sqlrunner", "-p", playbook], cwd=cwd,
                            stderr=subprocess.PIPE, text=True)
    with psycopg.connect(database, autocommit=True) as admin:
        _wait_for_query(admin, fragment)
    return proc


@pytest.mark.slow
def test_a_second_run_of_the_same_playbook_exits_3_and_names_the_holder(workdir, database):
    slow = workdir.sql("slow.sql", "SELECT pg_sleep(2);")
    playbook = workdir.playbook(workdir.steps(("s", [("slow", slow)])))
    first = _running(playbook, workdir.root, database, "pg_sleep(2)")
    second = subprocess.run([sys.executable, "-m", "sqlrunner", "-p", playbook],
                            cwd=workdir.root, capture_output=True, text=True, timeout=60)
    assert second.returncode == 3
    assert f"pid {first.pid}" in second.stderr and "already running" in second.stderr
    assert first.wait(timeout=60) == 0
    waited = subprocess.run([sys.executable, "-m", "sqlrunner", "-p", playbook,
                             "--lock-timeout", "30"], cwd=workdir.root, capture_output=True,
                            text=True, timeout=60)
    assert waited.returncode == 0, waited.stderr


def test_copies_of_a_playbook_in_two_folders_are_one_writer(workdir, database):
    slow = workdir.sql("slow.sql", "SELECT pg_sleep(2);")
    playbook = workdir.playbook(workdir.steps(("s", [("slow", slow)])))
    copy = workdir.root / "second_deploy"
    copy.mkdir()
    (copy / "sql").mkdir()
    (copy / "sql" / "slow.sql").write_text("SELECT pg_sleep(2);")
    (copy / "playbook.yml").write_text((workdir.root / "playbook.yml").read_text())
    first = _running(playbook, workdir.root, database, "pg_sleep(2)")
    second = subprocess.run([sys.executable, "-m", "sqlrunner", "-p", "playbook.yml"],
                            cwd=copy, capture_output=True, text=True, timeout=60)
    assert second.returncode == 3, second.stderr
    assert f"pid {first.pid}" in second.stderr and playbook in second.stderr
    assert first.wait(timeout=60) == 0


def test_playbooks_that_declare_one_lock_are_one_writer(workdir, database):
    run_sql(database, "CREATE TABLE log (step text, at timestamptz DEFAULT clock_timestamp())")
    slow = workdir.sql("slow.sql", "INSERT INTO log (step) VALUES ('slow');\n"
                                   "SELECT pg_sleep(2);\n"
                                   "INSERT INTO log (step) VALUES ('slow done');")
    quick = workdir.sql("quick.sql", "INSERT INTO log (step) VALUES ('quick');")
    holder = workdir.playbook(workdir.steps(("s", [("slow", slow)])), name="nightly.yml")
    other = workdir.playbook(workdir.steps(("s", [("quick", quick)])), name="manual.yml")
    for path in (holder, other):
        with open(path) as handle:
            text = handle.read()
        with open(path, "w") as handle:
            handle.write("lock: warehouse-model\n" + text)
    first = _running(holder, workdir.root, database, "pg_sleep(2)")
    refused = subprocess.run([sys.executable, "-m", "sqlrunner", "-p", other],
                             cwd=workdir.root, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 3
    assert "warehouse-model" in refused.stderr and "nightly.yml is already running" in \
        refused.stderr and f"pid {first.pid}" in refused.stderr
    waited = subprocess.run([sys.executable, "-m", "sqlrunner", "-p", other,
                             "--lock-timeout", "60"], cwd=workdir.root, capture_output=True,
                            text=True, timeout=90)
    assert waited.returncode == 0, waited.stderr
    assert first.wait(timeout=60) == 0
    # The second writer ran after the first had finished, not beside it.
    assert _log(database) == ["slow", "slow done", "quick"]


def test_sigterm_cancels_on_the_server_and_records_the_run_interrupted(workdir, database,
                                                                      tmp_path):
    slow = workdir.sql("slow.sql", "SELECT pg_sleep(30);")
    playbook = workdir.playbook(workdir.steps(("s", [("slow", slow)])))
    lock = tmp_path / "soft.lock"
    proc = subprocess.Popen([sys.executable, "-m", "sqlrunner", "-p", playbook,
                             "--soft-lock", str(lock)], cwd=workdir.root,
                            stderr=subprocess.PIPE, text=True)
    with psycopg.connect(database, autocommit=True) as admin:
        _wait_for_query(admin, "pg_sleep(30)")
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 130
        assert time.monotonic() - started < 10
        still = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                              "AND datname = current_database() "
                              "AND query LIKE '%pg_sleep(30)%' AND pid <> pg_backend_pid()")
        assert still.fetchone()[0] == 0
    assert not lock.exists()
    assert query_one(database, "SELECT status FROM sqlrunner.runs") == "interrupted", \
        proc.stderr.read()


def test_query_timeout_cancels_that_query_without_retry(workdir, database):
    slow = workdir.sql("slow.sql", "SELECT pg_sleep(60);")
    steps = ("  - name: s\n    queries:\n      - name: slow\n        file: " + slow +
             "\n        timeout: 0.3\n")
    started = time.monotonic()
    result = run_playbook(workdir.playbook(steps))
    assert time.monotonic() - started < 20  # cancelled, not the query's 60 s
    assert result.exit_code == 6 and result.queries[0].sqlstate == "57014"
    assert result.queries[0].retries == 0


def test_run_timeout_cancels_the_run(workdir, database):
    slow = workdir.sql("slow.sql", "SELECT pg_sleep(60);")
    after = workdir.sql("after.sql", "CREATE TABLE after_t (x int);")
    playbook = workdir.playbook(workdir.steps(("s", [("slow", slow)]), ("t", [("a", after)])))
    started = time.monotonic()
    assert main(["-p", playbook, "--timeout", "0.5", "--progress", "plain"]) == 6
    assert time.monotonic() - started < 20  # cancelled, not the query's 60 s
    assert query_one(database, "SELECT to_regclass('after_t') IS NULL") is True


def test_no_checkpoints_keeps_no_state_in_the_target(workdir, database):
    playbook = _steps_log(workdir, database, count=1)
    assert main(["-p", playbook, "--no-checkpoints", "--progress", "plain"]) == 0
    assert query_one(database, "SELECT to_regnamespace('sqlrunner') IS NULL") is True


def test_a_killed_runner_is_resumed_without_applying_any_query_twice(workdir, database):
    playbook = _steps_log(workdir, database, count=4, sleep=0.3)
    proc = subprocess.Popen([sys.executable, "-m", "sqlrunner", "-p", playbook],
                            cwd=workdir.root, stderr=subprocess.DEVNULL)
    with psycopg.connect(database, autocommit=True) as admin:
        _wait_for_query(admin, "'s2'")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    result = run_playbook(playbook)
    assert result.exit_code == 0, result.errors
    assert result.resumed_from is not None
    assert sorted(_log(database)) == ["s1", "s2", "s3", "s4"]


def test_status_shows_recent_runs_and_where_a_failed_one_stopped(workdir, database, capsys):
    run_sql(database, "CREATE TABLE log (step text)")
    one = workdir.sql("one.sql", "INSERT INTO log VALUES ('one');")
    two = workdir.sql("two.sql", "SELECT * FROM not_yet;")
    playbook = workdir.playbook(workdir.steps(("a", [("one", one)]), ("b", [("two", two)])))
    assert main(["status", "-p", playbook]) == 0
    assert "no runs recorded" in capsys.readouterr().out
    run = run_playbook(playbook, retries=0)
    assert main(["status", "-p", playbook]) == 0
    out = capsys.readouterr().out
    assert run.run_id[:8] in out and "failed" in out
    assert "1 queries done; the next run resumes at b/two" in out


def test_resume_runs_every_step_after_the_first_one_with_work_left(workdir, database):
    run_sql(database, "CREATE TABLE staged (batch int); CREATE TABLE published (batch int)")
    stage = workdir.sql("stage.sql", "DELETE FROM staged; INSERT INTO staged VALUES ({{.batch}});")
    publish = workdir.sql("publish.sql", "INSERT INTO published SELECT batch FROM staged;")
    tail = workdir.sql("tail.sql", "SELECT * FROM {{.tail_table}};")
    playbook = workdir.playbook(workdir.steps(("stage", [("stage", stage)]),
                                              ("publish", [("publish", publish)]),
                                              ("tail", [("tail", tail)]), template=True))
    assert run_playbook(playbook, {"batch": "1", "tail_table": "nowhere"},
                        retries=0).exit_code == 6
    # Resumed with other variables: stage changed, so publish (unchanged) runs again too.
    result = run_playbook(playbook, {"batch": "2", "tail_table": "staged"})
    assert result.exit_code == 0, result.errors
    assert [q.status for q in result.queries] == ["succeeded"] * 3
    with psycopg.connect(database) as conn:
        assert [r[0] for r in conn.execute("SELECT batch FROM published ORDER BY 1")] == [1, 2]


def test_a_successful_partial_run_closes_the_unfinished_full_run(workdir, database):
    run_sql(database, "CREATE TABLE out (x int)")
    first = workdir.sql("first.sql", "INSERT INTO out VALUES (1);")
    last = workdir.sql("last.sql", "INSERT INTO out SELECT 100 FROM later;")
    playbook = workdir.playbook(workdir.steps(("first", [("first", first)]),
                                              ("last", [("last", last)])))
    assert run_playbook(playbook, retries=0).exit_code == 6
    run_sql(database, "CREATE TABLE later AS SELECT 1")
    assert run_playbook(playbook, from_step="last").exit_code == 0
    # The job was finished by hand: the next full run is a new run, not a resume.
    again = run_playbook(playbook)
    assert again.resumed_from is None
    assert query_one(database, "SELECT count(*) FILTER (WHERE x = 100) FROM out") == 2


def test_an_error_outside_a_query_fails_the_target_without_a_traceback(workdir, database,
                                                                        capsys):
    work = workdir.sql("work.sql", "SELECT 1;")
    playbook = workdir.playbook("  - name: s\n    skip_if_empty: 't t t'\n    queries:\n"
                                "      - name: work\n        file: " + work + "\n")
    assert main(["-p", playbook, "--progress", "plain"]) == 6
    err = capsys.readouterr().err
    assert "Traceback" not in err and "skip_if_empty" in err
    assert query_one(database, "SELECT status FROM sqlrunner.runs") == "failed"


def test_a_file_that_leaves_a_transaction_open_fails_and_its_work_is_undone(workdir,
                                                                             database):
    run_sql(database, "CREATE TABLE t (x int)")
    open_tx = workdir.sql("open.sql", "BEGIN; INSERT INTO t VALUES (1);")
    playbook = workdir.playbook(workdir.steps(("s", [("open", open_tx)])))
    result = run_playbook(playbook)
    assert result.exit_code == 6
    assert "left a transaction open" in result.queries[0].error
    assert query_one(database, "SELECT count(*) FROM t") == 0


def test_a_failed_querys_timeout_does_not_leak_into_the_next_query(workdir, database):
    bad = workdir.sql("bad.sql", "SELEC 1;")
    slow = workdir.sql("slow.sql", "SELECT pg_sleep(1.2);")
    steps = ("  - name: s\n    queries:\n      - name: bad\n        file: " + bad +
             "\n        timeout: 0.5\n  - name: t\n    queries:\n      - name: slow\n"
             "        file: " + slow + "\n")
    playbook = workdir.playbook(steps)
    first = run_playbook(playbook, retries=0)
    assert first.queries[0].sqlstate == "42601"
    result = run_playbook(playbook, run_query="t::slow", max_parallel=1)
    assert result.exit_code == 0, result.errors


def test_an_interrupt_during_a_retry_wait_sends_nothing_more(workdir, database):
    run_sql(database, "CREATE SEQUENCE tries")
    flaky = workdir.sql("flaky.sql", "DO $$ BEGIN PERFORM nextval('tries'); RAISE EXCEPTION "
                                     "'x' USING ERRCODE = 'serialization_failure'; END $$;")
    playbook = workdir.playbook(workdir.steps(("s", [("flaky", flaky)])))
    # A long wait before the retry (the backoff, up to its cap): the interrupt must end it.
    proc = subprocess.Popen([sys.executable, "-m", "sqlrunner", "-p", playbook,
                             "--retry-backoff", "60"], cwd=workdir.root,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while query_one(database, "SELECT last_value FROM tries") < 1 or \
            not query_one(database, "SELECT is_called FROM tries"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.3)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 130
    assert time.monotonic() - started < 15
    assert query_one(database, "SELECT last_value FROM tries") == 1


@pytest.mark.slow
def test_a_run_that_lost_its_lock_connection_never_applies_work_twice(workdir, database):
    run_sql(database, "CREATE TABLE log (step text)")
    # Long enough for the second run to start and take the lock while "one" still runs
    # (a run that finds the lock free when it reconnects goes on, and then it is done).
    one = workdir.sql("one.sql", "SELECT pg_sleep(5); INSERT INTO log VALUES ('one');")
    two = workdir.sql("two.sql", "INSERT INTO log VALUES ('two');")
    playbook = workdir.playbook(workdir.steps(("a", [("one", one)]), ("b", [("two", two)])))
    first = subprocess.Popen([sys.executable, "-m", "sqlrunner", "-p", playbook,
                              "--retry-backoff", "0.1"], cwd=workdir.root,
                             stderr=subprocess.PIPE, text=True)
    with psycopg.connect(database, autocommit=True) as admin:
        _wait_for_query(admin, "pg_sleep(5)")
        # The first run's bookkeeping connection (it holds the run lock) is lost.
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                      "datname = current_database() AND pid <> pg_backend_pid() "
                      "AND state = 'idle'")
    second = subprocess.run([sys.executable, "-m", "sqlrunner", "-p", playbook,
                             "--lock-timeout", "30"], cwd=workdir.root, capture_output=True,
                            text=True, timeout=60)
    first.wait(timeout=60)
    assert second.returncode == 0, second.stderr
    with psycopg.connect(database) as conn:
        assert sorted(r[0] for r in conn.execute("SELECT step FROM log")) == ["one", "two"]
