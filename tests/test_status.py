"""``sqlrunner status``: a header for every column, what each run covered in words, a run
whose process is gone shown as died, and the database it looked at."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psycopg
from conftest import run_sql
from psycopg.conninfo import conninfo_to_dict

from sqlrunner.cli import main
from sqlrunner.cli.status import HEADERS


def _status(playbook: str, capsys) -> list[str]:
    capsys.readouterr()
    assert main(["status", "-p", playbook]) == 0
    return capsys.readouterr().out.splitlines()


def _row(lines: list[str], run_prefix: str) -> str:
    return next(line for line in lines if line.strip().startswith(run_prefix))


def _wait_for_query(dsn: str, fragment: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as admin:
        while time.monotonic() < deadline:
            if admin.execute("SELECT 1 FROM pg_stat_activity WHERE state = 'active' AND "
                             "query LIKE %s AND pid <> pg_backend_pid()",
                             (f"%{fragment}%",)).fetchone():
                return
            time.sleep(0.05)
    raise AssertionError(f"query {fragment!r} never started")


def test_every_column_has_a_header_and_runs_say_whole_playbook_or_partial(workdir, database,
                                                                         capsys):
    one = workdir.sql("one.sql", "CREATE TABLE IF NOT EXISTS one (x int);")
    two = workdir.sql("two.sql", "CREATE TABLE IF NOT EXISTS two (x int);")
    playbook = workdir.playbook(workdir.steps(("a", [("one", one)]), ("b", [("two", two)])))
    assert main(["-p", playbook, "--progress", "plain"]) == 0
    assert main(["-p", playbook, "--progress", "plain", "--from-step", "b"]) == 0
    lines = _status(playbook, capsys)
    # The database it looked at, first.
    assert lines[0].startswith("target db: ")
    assert f"/{conninfo_to_dict(database)['dbname']} as user " in lines[0]
    header = lines[1].split()
    assert " ".join(header) == " ".join(HEADERS)
    body = "\n".join(lines[2:])
    assert "whole playbook" in body and "partial" in body
    assert " full " not in body
    assert body.count("succeeded") == 2


def test_a_run_whose_process_was_killed_shows_as_died_not_running(workdir, database, capsys):
    slow = workdir.sql("slow.sql", "SELECT pg_sleep(60);")
    playbook = workdir.playbook(workdir.steps(("s", [("slow", slow)])))
    proc = subprocess.Popen([sys.executable, "-m", "sqlrunner", "-p", playbook], cwd=workdir.root,
                            stderr=subprocess.DEVNULL)
    try:
        _wait_for_query(database, "pg_sleep(60)")
        (run_id,) = run_sql(database, "SELECT run_id FROM sqlrunner.runs")[0]
        row = _row(_status(playbook, capsys), run_id[:8])
        assert " running " in row and str(proc.pid) in row
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        row = _row(_status(playbook, capsys), run_id[:8])
        assert " died " in row and " running " not in row
    finally:
        if proc.poll() is None:
            proc.kill()
        run_sql(database, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                          "datname = current_database() AND "
                          "query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()")


def test_a_run_recorded_as_running_on_another_host_died_when_its_lock_is_free(
        workdir, database, capsys):
    sql = workdir.sql("t.sql", "SELECT 1;")
    playbook = workdir.playbook(workdir.steps(("s", [("t", sql)])))
    assert main(["-p", playbook, "--progress", "plain"]) == 0
    run_sql(database, "UPDATE sqlrunner.runs SET status = 'running', ended_at = NULL, "
                      "host = 'another-host', pid = 4242")
    row = _row(_status(playbook, capsys), run_sql(database, "SELECT run_id FROM sqlrunner.runs"
                                                            )[0][0][:8])
    assert " died " in row and "another-host" in row
