"""Stress: kill the runner (SIGKILL) or its backends at random points, or restart, crash
or stop its server, re-run when needed, and check that every query's effect is applied
exactly once.

    python stress/kill_loop.py --seconds 120 [--dsn "host=127.0.0.1 user=postgres dbname=postgres"]
    python stress/kill_loop.py --seconds 600 --private   # also server faults

Each round uses a fresh database and a playbook of 6 steps (some with parallel
queries); every query inserts its own name into ``effects`` and then sleeps a
random while. One fault is injected at a random moment, the playbook is run
again until it succeeds, and ``effects`` must hold each name exactly once.
With ``--private`` the rounds run on a private server of their own
(tests/private_server.py), which they also restart (``pg_ctl restart -m fast``),
crash (``stop -m immediate``, then start), kill (SIGKILL of the postmaster, then
start) or keep down for up to 10 s when the run starts: those the run must ride
out by itself ("ridden out": its first run exits 0).
Bounded by --seconds; prints a line per round and a summary.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from effects_playbook import EVERY_QUERY, create_effects, effects, write_playbook  # noqa: E402

RUNNER_FAULTS = ["sigkill", "sigkill", "terminate-backend", "sigkill-twice"]
SERVER_FAULTS = ["restart", "crash", "kill-postmaster", "down-at-start"]


def finished(dsn: str) -> bool:
    """Whether the latest run recorded in the database succeeded."""
    with psycopg.connect(dsn) as conn:
        if conn.execute("SELECT to_regclass('sqlrunner.runs')").fetchone()[0] is None:
            return False
        row = conn.execute("SELECT status FROM sqlrunner.runs ORDER BY started_at DESC "
                           "LIMIT 1").fetchone()
    return row is not None and row[0] == "succeeded"


def run(playbook: Path) -> subprocess.Popen:
    log = open(playbook.parent / "runs.log", "a")  # noqa: SIM115 - closed with the folder
    log.write("--- run\n")
    log.flush()
    return subprocess.Popen([sys.executable, "-m", "sqlrunner", "-p", str(playbook),
                             "--retry-backoff", "0.05", "--lock-timeout", "30"],
                            stdout=log, stderr=log)


def server_fault(server, fault: str, playbook: Path, rng: random.Random) -> subprocess.Popen:
    """Start the run with ``fault`` done to its private server; the run's process."""
    if fault == "down-at-start":
        server.stop("fast")
        proc = run(playbook)
        time.sleep(rng.uniform(0.5, 10))
        server.start()
        return proc
    proc = run(playbook)
    time.sleep(rng.uniform(0.2, 1.6))
    if fault == "restart":
        server.restart("fast")
    elif fault == "crash":
        server.stop("immediate")
        time.sleep(rng.uniform(0, 3))
        server.start()
    else:
        server.kill()
        server.start()
    return proc


def one_round(server_dsn: str, rng: random.Random,
              server: object = None) -> tuple[str, int, bool, bool]:
    """One fault; (fault, reruns, ridden out: the first run exited 0, exactly once)."""
    name = f"sqlrunner_stress_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    params = conninfo_to_dict(server_dsn)
    params["dbname"] = name
    dsn = make_conninfo(**params)
    fault = rng.choice(RUNNER_FAULTS + (SERVER_FAULTS * 2 if server is not None else []))
    first_exit = None
    try:
        create_effects(dsn)
        with tempfile.TemporaryDirectory() as tmp:
            playbook = write_playbook(Path(tmp), dsn,
                                      lambda _: rng.choice([0, 0.05, 0.1, 0.2, 0.3]))
            if fault in SERVER_FAULTS:
                proc = server_fault(server, fault, playbook, rng)
                first_exit = proc.wait(timeout=180)
                if first_exit == 0:
                    proc = None
            else:
                proc = run(playbook)
            kills = 0 if fault in SERVER_FAULTS else 2 if fault == "sigkill-twice" else 1
            for _ in range(kills):
                time.sleep(rng.uniform(0.2, 1.6))
                if fault == "terminate-backend":
                    with psycopg.connect(dsn, autocommit=True) as conn:
                        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                     "WHERE datname = current_database() "
                                     "AND pid <> pg_backend_pid()")
                elif proc.poll() is None:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()
                    if finished(dsn):
                        # Killed after the run had recorded its success: there is nothing
                        # to resume, and a re-run would be a new run of the playbook.
                        fault += " (after success)"
                        proc = None
                        break
                    proc = run(playbook)
            reruns = 0
            while proc is not None and proc.wait(timeout=120) != 0:
                reruns += 1
                if reruns > 5:
                    break
                proc = run(playbook)
            counted = effects(dsn)
            if counted != EVERY_QUERY or (fault in SERVER_FAULTS and first_exit != 0):
                print(f"effects {dict(counted)}", flush=True)
                print((Path(tmp) / "runs.log").read_text(), flush=True)
        return fault, reruns, first_exit == 0, counted == EVERY_QUERY
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dsn", default="host=127.0.0.1 port=5432 user=postgres "
                                         "dbname=postgres")
    parser.add_argument("--private", action="store_true",
                        help="run on a private server, and add server faults")
    args = parser.parse_args()
    if args.private:
        from private_server import private_server

        with private_server() as server:
            return rounds(server.dsn(), args, server)
    return rounds(args.dsn, args)


def rounds(dsn: str, args: argparse.Namespace, server: object = None) -> int:
    rng = random.Random(args.seed)
    deadline = time.monotonic() + args.seconds
    outcomes: Counter[tuple[str, bool, bool]] = Counter()
    while time.monotonic() < deadline:
        fault, reruns, ridden_out, exact = one_round(dsn, rng, server)
        outcomes[(fault, ridden_out, exact)] += 1
        print(f"{fault:<18} reruns={reruns} exactly-once={'yes' if exact else 'NO'}"
              + (f" ridden-out={'yes' if ridden_out else 'NO'}"
                 if fault in SERVER_FAULTS else ""), flush=True)
    print("\nfault                    rounds  exactly-once  ridden-out")
    for fault in sorted({f for f, _, _ in outcomes}):
        counts = {key: n for key, n in outcomes.items() if key[0] == fault}
        total = sum(counts.values())
        exact = sum(n for key, n in counts.items() if key[2])
        ridden = (str(sum(n for key, n in counts.items() if key[1]))
                  if fault in SERVER_FAULTS else "-")
        print(f"{fault:<24} {total:>6}  {exact:>12}  {ridden:>10}")
    failed = any(not exact or (fault in SERVER_FAULTS and not ridden)
                 for fault, ridden, exact in outcomes)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
