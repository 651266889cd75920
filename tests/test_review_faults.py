"""Faults found in review of issue 14 (restarts, crashes, resume, lock): each test
reproduces one with the real fault."""

from __future__ import annotations

import subprocess
import sys
import time

import psycopg
from conftest import query_one
from test_reliability import _wait_for_query


def _cli(playbook: str, cwd, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sqlrunner", "-p", playbook,
                             "--retry-backoff", "0.1", *args], cwd=cwd,
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)


def test_a_work_table_that_a_later_step_dropped_is_not_built_again_after_a_lost_query(
        workdir, database):
    # build makes an unlogged work table from a staging table; publish consumes the
    # staging table; cleanup drops the work table; report is slow and loses its backend.
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("CREATE TABLE staging AS SELECT g FROM generate_series(1, 10) AS g")
        conn.execute("CREATE TABLE published (n bigint)")
    files = {
        "build": "CREATE UNLOGGED TABLE work AS SELECT g FROM staging;",
        "publish": "INSERT INTO published SELECT sum(g) FROM work; DROP TABLE staging;",
        "cleanup": "DROP TABLE work;",
        "report": "SELECT pg_sleep(1.5);",
    }
    steps = workdir.steps(*[(name, [(name, workdir.sql(f"{name}.sql", text))])
                            for name, text in files.items()])
    playbook = workdir.playbook(steps)
    proc = _cli(playbook, workdir.root)
    with psycopg.connect(database, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)",
                      (_wait_for_query(admin, "pg_sleep(1.5)"),))
    _, err = proc.communicate(timeout=60)
    # The lost query is settled and run again; nothing before it has work left: the
    # staging table is gone, so building 'work' again can only fail.
    assert proc.returncode == 0, err
    assert query_one(database, "SELECT count(*) FROM published") == 1
    assert query_one(database, "SELECT to_regclass('work') IS NULL")


def test_two_targets_of_one_playbook_on_one_database_both_run(workdir, database):
    # Worked before issue 14 (the lock was keyed by playbook and target): the lock now
    # ignores the target, so the second target of the same run finds the first holding it.
    from conftest import target_yaml

    from sqlrunner.api import run_playbook

    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (target text)")
    sql = workdir.sql("t.sql", "INSERT INTO t VALUES (current_user);\nSELECT pg_sleep(0.5);")
    targets = target_yaml(workdir.params, "first") + target_yaml(workdir.params, "second")
    result = run_playbook(workdir.playbook(workdir.steps(("s", [("t", sql)])),
                                           targets=targets))
    assert result.exit_code == 0, result.errors
    assert query_one(database, "SELECT count(*) FROM t") == 2


def test_a_step_name_the_checkpoints_cannot_hold_is_refused_before_anything_runs(
        workdir, database):
    # The checkpoints stored step[:256] while a resume looked up the whole name: a killed
    # run's done step with a longer name ran again on resume (applied twice).
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (x int)")
    insert = workdir.sql("insert.sql", "INSERT INTO t VALUES (1);")
    playbook = workdir.playbook(workdir.steps(("load_" + "x" * 300, [("insert", insert)])))
    proc = _cli(playbook, workdir.root)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert "playbook.yml:11: step name is longer than 256 bytes" in err, err
    assert query_one(database, "SELECT count(*) FROM t") == 0
    assert query_one(database, "SELECT to_regclass('sqlrunner.runs')") is None


def _private_playbook(folder, dsn: str, steps: list[tuple[str, str, str | None]]) -> str:
    """A playbook of one query per step: (name, SQL, skip_if_empty table or None)."""
    from effects_playbook import target_lines

    (folder / "sql").mkdir()
    lines = [*target_lines(dsn), "steps:"]
    for name, text, skip in steps:
        (folder / "sql" / f"{name}.sql").write_text(text)
        lines += [f"  - name: {name}"]
        if skip:
            lines += [f"    skip_if_empty: {skip}"]
        lines += ["    queries:", f"      - name: {name}", f"        file: sql/{name}.sql"]
    path = folder / "playbook.yml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _crashed_during(playbook: str, folder, server, dsn: str,
                    fragment: str) -> subprocess.Popen:
    """A run of ``playbook``, its server crashed (and started) while ``fragment`` runs."""
    proc = _cli(playbook, folder)
    with psycopg.connect(dsn, autocommit=True) as admin:
        _wait_for_query(admin, fragment)
    server.stop("immediate")
    server.start()
    return proc


def test_a_crash_does_not_run_again_the_steps_after_a_step_skipped_as_empty(
        fault_server, fault_database, tmp_path):
    # 'retry' is skipped (its queue is empty when it is reached); 'enqueue' fills the
    # queue later. After the crash the run rebuilds 'work' and walks again from there: the
    # queue is no longer empty, 'retry' runs, which ends the resume, and 'enqueue' (done
    # and committed before the crash) runs a second time.
    with psycopg.connect(fault_database, autocommit=True) as conn:
        conn.execute("CREATE TABLE log (name text); CREATE TABLE queue (x int)")
    playbook = _private_playbook(tmp_path, fault_database, [
        ("build", "DROP TABLE IF EXISTS work;\n"
                  "CREATE UNLOGGED TABLE work AS SELECT g FROM generate_series(1, 10) g;",
         None),
        ("retry", "INSERT INTO log VALUES ('retry');", "queue"),
        ("enqueue", "INSERT INTO queue VALUES (1); INSERT INTO log VALUES ('enqueue');",
         None),
        ("use", "INSERT INTO log SELECT 'use ' || sum(g) FROM work;\n"
                "SELECT pg_sleep(3);", None),
    ])
    proc = _crashed_during(playbook, tmp_path, fault_server, fault_database, "pg_sleep(3)")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    names = sorted(r[0] for r in psycopg.connect(fault_database).execute(
        "SELECT name FROM log").fetchall())
    assert names == ["enqueue", "use 55"], err


def test_after_a_crash_a_work_table_file_without_drop_or_if_not_exists_runs_again(
        fault_server, fault_database, tmp_path):
    # 'build' creates its unlogged table without DROP/IF NOT EXISTS. The crash empties
    # it but leaves it there; before 'build' runs again the run drops the emptied table
    # it built itself (same oid, no rows), so the plain CREATE succeeds.
    playbook = _private_playbook(tmp_path, fault_database, [
        ("build", "CREATE UNLOGGED TABLE work AS SELECT g FROM generate_series(1, 10) g;",
         None),
        ("use", "CREATE TABLE result AS SELECT sum(g) AS total FROM work;\n"
                "SELECT pg_sleep(3);", None),
    ])
    run = _crashed_during(playbook, tmp_path, fault_server, fault_database, "pg_sleep(3)")
    _, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    assert "running it again" in err
    assert query_one(fault_database, "SELECT total FROM result") == 55


def test_a_resumed_run_skips_again_a_step_the_killed_run_skipped_as_empty(workdir, database):
    import signal

    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("CREATE TABLE log (name text); CREATE TABLE queue (x int)")
    retry = workdir.sql("retry.sql", "INSERT INTO log VALUES ('retry');")
    enqueue = workdir.sql("enqueue.sql", "INSERT INTO queue VALUES (1);\n"
                                         "INSERT INTO log VALUES ('enqueue');")
    slow = workdir.sql("slow.sql", "INSERT INTO log VALUES ('slow');\nSELECT pg_sleep(30);")
    steps = ("  - name: retry\n    skip_if_empty: queue\n    queries:\n"
             f"      - name: retry\n        file: {retry}\n"
             + workdir.steps(("enqueue", [("enqueue", enqueue)]), ("slow", [("slow", slow)])))
    playbook = workdir.playbook(steps)
    proc = _cli(playbook, workdir.root)
    with psycopg.connect(database, autocommit=True) as admin:
        _wait_for_query(admin, "pg_sleep(30)")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    (workdir.root / "sql" / "slow.sql").write_text("INSERT INTO log VALUES ('slow');")
    rerun = _cli(playbook, workdir.root)
    _, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 0, err
    names = sorted(r[0] for r in psycopg.connect(database).execute(
        "SELECT name FROM log").fetchall())
    assert names == ["enqueue", "slow"], err


def test_a_copy_of_a_playbook_does_not_resume_a_run_that_another_copy_has_since_finished(
        workdir, database, tmp_path):
    import shutil
    import signal

    # A high-water mark moved to the run's start time: the stale run, resumed after the
    # other copy moved the mark on, moves it back, and the next run processes again what
    # the other copy processed.
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("CREATE TABLE events (t timestamp); CREATE TABLE processed (t timestamp);"
                     "CREATE TABLE mark (hwm timestamp);"
                     "INSERT INTO mark VALUES ('2000-01-01');")
    now = '{{nowWithFormat "2006-01-02 15:04:05.000000"}}'
    process = workdir.sql("process.sql", "INSERT INTO processed SELECT t FROM events WHERE "
                          f"t > (SELECT hwm FROM mark) AND t <= '{now}';")
    advance = workdir.sql("advance.sql", f"UPDATE mark SET hwm = '{now}';\n"
                                         "SELECT pg_sleep({{.nap}});")
    steps = workdir.steps(("process", [("process", process)]),
                          ("advance", [("advance", advance)]), template=True)
    first = workdir.playbook(steps, variables="  nap: 30\n")
    other = tmp_path / "copy"
    shutil.copytree(workdir.root / "sql", other / "sql")
    second = str(other / "playbook.yml")
    shutil.copy(first, second)

    def insert_event() -> None:
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute("INSERT INTO events VALUES (clock_timestamp())")
        time.sleep(0.05)

    insert_event()
    proc = _cli(first, workdir.root)  # killed while it advances the mark
    with psycopg.connect(database, autocommit=True) as admin:
        _wait_for_query(admin, "pg_sleep(30)")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    insert_event()
    for playbook, folder in ((second, other), (first, workdir.root), (second, other)):
        run = _cli(playbook, folder, "--var", "nap=0")
        _, err = run.communicate(timeout=60)
        assert run.returncode == 0, err
        insert_event()
    assert query_one(database, "SELECT count(*) - count(DISTINCT t) FROM processed") == 0


def test_runs_of_one_playbook_in_two_databases_of_one_server_never_stop_each_other(
        server_dsn, tmp_path):
    # Advisory locks belong to a database, but pg_locks lists every database's: a run
    # starting in one database must not take another database's run for a dead one of
    # its own and terminate its queries.
    from conftest import PlaybookDir, new_database
    from psycopg.conninfo import conninfo_to_dict

    with new_database(server_dsn) as first, new_database(server_dsn) as second:
        runs = []
        for index, dsn in enumerate((first, second)):
            folder = tmp_path / f"deploy{index}"
            folder.mkdir()
            workdir = PlaybookDir(folder, {k: str(v) for k, v in
                                           conninfo_to_dict(dsn).items()})
            sleep = workdir.sql("slow.sql", "CREATE TABLE done AS SELECT 1 AS n FROM pg_sleep(3);")
            runs.append(_cli(workdir.playbook(workdir.steps(("slow", [("slow", sleep)]))),
                             folder))
            if index == 0:
                with psycopg.connect(first, autocommit=True) as admin:
                    _wait_for_query(admin, "pg_sleep(3)")
        for run in runs:
            _, err = run.communicate(timeout=60)
            assert run.returncode == 0, err
            assert "terminat" not in err
        assert query_one(first, "SELECT count(*) FROM done") == 1
        assert query_one(second, "SELECT count(*) FROM done") == 1
