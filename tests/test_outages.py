"""A run rides out what happens to its server: a restart, a crash, a server that is down
when the run starts. Real faults on a private server (tests/private_server.py), a playbook
of 6 steps whose every query records itself once: each run ends with exit 0 and every
query applied exactly once, without a human."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest
from conftest import wait_for_query
from effects_playbook import (
    EVERY_QUERY,
    create_effects,
    effects,
    target_lines,
    write_playbook,
)

pytestmark = pytest.mark.slow  # not in the quick subset (-m "not slow")


@pytest.fixture
def target(fault_database: str) -> str:
    """A fresh database on the private server, with the table the queries write."""
    create_effects(fault_database)
    return fault_database


def start_run(playbook: Path, log: Path, *args: str) -> subprocess.Popen:
    """The CLI as cron runs it (default retry settings unless ``args`` say otherwise)."""
    return subprocess.Popen([sys.executable, "-m", "sqlrunner", "-p", str(playbook),
                             "--progress", "plain", *args], cwd=playbook.parent,
                            stdout=subprocess.DEVNULL, stderr=log.open("w"))


def run_until(tmp_path: Path, target: str, query: str, *args: str,
              nap: float = 0.3) -> tuple[subprocess.Popen, Path]:
    """Write the 6-step playbook, start it, and return once ``query`` runs: the run's
    process and its log."""
    log = tmp_path / "run.log"
    proc = start_run(write_playbook(tmp_path, target, nap), log, *args)
    wait_for_query(target, f"VALUES ('{query}')")
    return proc, log


def wait_for_log(log: Path, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text():
        assert time.monotonic() < deadline, f"{text!r} never logged:\n{log.read_text()}"
        time.sleep(0.05)


def history(dsn: str) -> Counter:
    """How many times the run's history shows each query succeeded (read as
    ``status --history`` reads it: a row carried again after a lost connection once)."""
    with psycopg.connect(dsn) as conn:
        return Counter(r[0] for r in conn.execute(
            "SELECT DISTINCT query, attempt, started_at, ended_at, row_count "
            "FROM sqlrunner.query_history WHERE status = 'succeeded'"))


def finished_run(proc: subprocess.Popen, log: Path) -> str:
    """Wait for the run; its log, after checking it exited 0."""
    code = proc.wait(timeout=180)
    text = log.read_text()
    assert code == 0, text
    return text


def test_a_server_restart_during_a_run_is_ridden_out_and_every_query_applies_once(
        fault_server, target, tmp_path):
    proc, log = run_until(tmp_path, target, "b2")
    fault_server.restart("fast")
    text = finished_run(proc, log)
    assert "reconnected" in text
    assert effects(target) == EVERY_QUERY
    assert history(target) == EVERY_QUERY
    with psycopg.connect(target) as conn:
        assert conn.execute("SELECT status FROM sqlrunner.runs").fetchall() == [("succeeded",)]


def test_a_server_crash_during_a_run_is_ridden_out_and_every_query_applies_once(
        fault_server, target, tmp_path):
    proc, log = run_until(tmp_path, target, "c")
    fault_server.stop("immediate")  # a crash: no shutdown checkpoint, recovery at start
    time.sleep(2)
    fault_server.start()
    text = finished_run(proc, log)
    assert "reconnected" in text
    assert effects(target) == EVERY_QUERY
    assert history(target) == EVERY_QUERY


def test_a_crash_between_two_queries_and_a_killed_postmaster_are_ridden_out(
        fault_server, target, tmp_path):
    proc, log = run_until(tmp_path, target, "b1", nap=0.2)
    fault_server.kill()  # SIGKILL of the postmaster: every backend goes with it
    fault_server.start()
    wait_for_query(target, "VALUES ('d1')")
    fault_server.stop("immediate")
    fault_server.start()
    finished_run(proc, log)
    assert effects(target) == EVERY_QUERY


def test_a_server_down_for_ten_seconds_when_the_run_starts_is_waited_for(
        fault_server, target, tmp_path):
    playbook = write_playbook(tmp_path, target, nap=0.05)
    log = tmp_path / "run.log"
    fault_server.stop("fast")
    down_since = time.monotonic()
    proc = start_run(playbook, log)
    wait_for_log(log, "target unreachable")
    time.sleep(max(0.0, 10 - (time.monotonic() - down_since)))
    fault_server.start()
    text = finished_run(proc, log)
    assert "cannot connect" not in text
    assert effects(target) == EVERY_QUERY


def test_a_server_that_stays_down_longer_than_the_reconnect_timeout_ends_the_run_with_exit_6(
        fault_server, target, tmp_path):
    proc, log = run_until(tmp_path, target, "c", "--reconnect-timeout", "2")
    fault_server.stop("immediate")
    try:
        assert proc.wait(timeout=120) == 6
    finally:
        fault_server.start()
    # The run gave up; the next one resumes it and applies what is left, once.
    rerun = start_run(tmp_path / "playbook.yml", log)
    finished_run(rerun, log)
    assert effects(target) == EVERY_QUERY


def test_after_a_crash_the_run_builds_again_only_the_unlogged_tables_it_lost(
        fault_server, target, tmp_path):
    # build makes an unlogged work table; publish writes a logged table from it (must
    # happen once); use reads the work table after the crash (must see its rows).
    files = {
        "build": "DROP TABLE IF EXISTS work;\n"
                 "CREATE UNLOGGED TABLE work AS SELECT g FROM generate_series(1, 100) AS g;\n",
        "publish": "INSERT INTO effects (name) SELECT 'published ' || count(*) FROM work;\n",
        "slow": "INSERT INTO effects (name) VALUES ('slow');\nSELECT pg_sleep(1);\n",
        "use": "INSERT INTO effects (name) SELECT 'used ' || sum(g) FROM work;\n",
    }
    (tmp_path / "sql").mkdir()
    lines = [*target_lines(target), "steps:"]
    for name, text in files.items():
        (tmp_path / "sql" / f"{name}.sql").write_text(text)
        lines += [f"  - name: {name}", "    queries:", f"      - name: {name}",
                  f"        file: sql/{name}.sql"]
    playbook = tmp_path / "playbook.yml"
    playbook.write_text("\n".join(lines) + "\n")
    log = tmp_path / "run.log"
    proc = start_run(playbook, log)
    wait_for_query(target, "VALUES ('slow')")
    fault_server.stop("immediate")
    fault_server.start()
    text = finished_run(proc, log)
    assert "build/build: an unlogged table it built is empty or gone" in text
    assert effects(target) == Counter({"published 100": 1, "slow": 1, "used 5050": 1})
