"""Time the full-mode rebuild (playbooks/full.yml) against one GROUP BY of the same events.

    python bench/full_rebuild.py --dsn "host=127.0.0.1 user=postgres" --events 100000 1000000

For each size: a database ``sqlrunner_bench_full_<events>_<seed>`` holding that many
generated events in atomic.events (made once, reused after), a warm-up run (the first
one also builds atomic's indexes), then ``--runs`` rounds of the floor query and the
full rebuild, alternated. The floor is ``SELECT domain_userid, domain_sessionidx,
COUNT(*) FROM atomic.events GROUP BY 1, 2`` read by a sequential scan (index scans off:
with atomic's session index PostgreSQL would answer it from the index alone). Prints
medians with min and max, the ratio, and each step's median time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import defaultdict

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from sqlrunner.api import run_playbook  # noqa: E402
from sqlrunner.generate import GeneratorConfig  # noqa: E402
from sqlrunner.generate.load import load_generated  # noqa: E402

PLAYBOOK = os.path.join(ROOT, "playbooks", "full.yml")
FLOOR = ("SELECT domain_userid, domain_sessionidx, COUNT(*) FROM atomic.events "
         "GROUP BY 1, 2")


def database_for(server_dsn: str, events: int, seed: int, reload: bool) -> str:
    name = f"sqlrunner_bench_full_{events}_{seed}"
    params = conninfo_to_dict(server_dsn)
    params["dbname"] = name
    dsn = make_conninfo(**params)
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                               (name,)).fetchone()
        if exists and reload:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        if not exists:
            admin.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(dsn, autocommit=True) as conn:
        loaded = conn.execute("SELECT to_regclass('atomic.events') IS NOT NULL").fetchone()[0]
        count = conn.execute("SELECT COUNT(*) FROM atomic.events").fetchone()[0] if loaded else 0
    if count != events:
        report = load_generated(dsn, GeneratorConfig(events=events, seed=seed, batches=10),
                                "atomic")
        print(f"  generated and loaded {report.events} events in {report.seconds:.1f} s "
              f"({report.events_per_second:,.0f} events/s)", flush=True)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE atomic.events")
    return dsn


def time_floor(dsn: str) -> float:
    with psycopg.connect(dsn) as conn:
        for setting in ("enable_indexscan", "enable_indexonlyscan", "enable_bitmapscan"):
            conn.execute(f"SET {setting} = off")
        started = time.perf_counter()
        conn.execute(FLOOR).fetchall()
        return time.perf_counter() - started


def time_rebuild(dsn: str) -> tuple[float, dict[str, float]]:
    started = time.perf_counter()
    result = run_playbook(PLAYBOOK, target=dsn)
    seconds = time.perf_counter() - started
    if result.exit_code != 0:
        raise SystemExit(f"full rebuild failed: {result.errors}")
    steps: dict[str, float] = defaultdict(float)
    for query in result.queries:  # a step lasts as long as its slowest query
        steps[query.step] = max(steps[query.step], query.seconds)
    return seconds, dict(steps)


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):7.2f} s (min {min(values):.2f}, max {max(values):.2f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=os.environ.get("SQLRUNNER_BENCH_DSN",
                                                        "host=127.0.0.1 user=postgres"),
                        help="a superuser connection to the server (default %(default)r)")
    parser.add_argument("--events", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--reload", action="store_true", help="generate the events again")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)

    results = []
    for events in args.events:
        print(f"{events:,} events", flush=True)
        dsn = database_for(args.dsn, events, args.seed, args.reload)
        time_rebuild(dsn)  # warm-up (builds atomic's indexes the first time)
        floors, rebuilds, steps = [], [], defaultdict(list)
        for _ in range(args.runs):
            floors.append(time_floor(dsn))
            seconds, step_seconds = time_rebuild(dsn)
            rebuilds.append(seconds)
            for step, value in step_seconds.items():
                steps[step].append(value)
        ratio = statistics.median(rebuilds) / statistics.median(floors)
        print(f"  GROUP BY floor {summary(floors)}")
        print(f"  full rebuild   {summary(rebuilds)}  = {ratio:.1f} x the floor")
        for step, values in steps.items():
            print(f"    {step:32s} {statistics.median(values):6.2f} s")
        results.append({"events": events, "floor_seconds": floors,
                        "rebuild_seconds": rebuilds, "ratio": ratio,
                        "step_seconds": {s: statistics.median(v) for s, v in steps.items()}})
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
