"""The full rebuild (playbooks/full.yml) against the GROUP BY floor of the same events.

For each size: a clone of the size's data set (data.py: generated events modelled into
atomic.events and the derived tables, vacuumed and analysed; the clone's files are fresh
in the OS cache, and its first rebuild is no slower than the next ones), then rounds of:
the floor read with index-only scans allowed (PostgreSQL answers it from atomic's session
index), the floor read by a sequential scan (``enable_indexonlyscan``, ``enable_indexscan``
and ``enable_bitmapscan`` off), and the full rebuild, run as a user runs it (``python -m
sqlrunner -p playbooks/full.yml --target DSN --report FILE``, checkpoints on). Ratios are
taken within a round. Each query's seconds come from the runner's JSON report; a step
lasts as long as its slowest query (its queries run in parallel).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from bench import data, process
from bench.db import ROOT, fresh_database
from bench.stats import Figure, memory_figure, paired

PLAYBOOK = ROOT / "playbooks" / "full.yml"
FLOOR = ("SELECT domain_userid, domain_sessionidx, COUNT(*) FROM atomic.events "
         "GROUP BY 1, 2")
SEQUENTIAL = ("enable_indexonlyscan", "enable_indexscan", "enable_bitmapscan")


def time_floor(dsn: str, sequential: bool) -> tuple[float, str]:
    """Seconds of the floor query (rows fetched by the client), and its plan's scan node."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        if sequential:
            for setting in SEQUENTIAL:
                conn.execute(f"SET {setting} = off")
        plan = conn.execute("EXPLAIN (FORMAT JSON) " + FLOOR).fetchone()[0]
        started = time.perf_counter()
        conn.execute(FLOOR).fetchall()
        return time.perf_counter() - started, _scan_of(plan[0]["Plan"])


def _scan_of(node: dict[str, Any]) -> str:
    """The plan's top node and its scan, e.g. ``Aggregate (Hashed) over Seq Scan``."""
    top = node["Node Type"] + (f" ({node['Strategy']})" if node.get("Strategy") else "")
    while node.get("Plans"):
        node = node["Plans"][0]
    return f"{top} over {node['Node Type']}"


def time_rebuild(dsn: str, report: Path) -> dict[str, Any]:
    """Run the full playbook once as a child process; wall seconds, peak RSS, per query."""
    done = process.run(process.runner_command(
        "-p", str(PLAYBOOK), "--target", dsn, "--progress", "plain", "--report", str(report)),
        env=process.runner_env(), cwd=ROOT, memory=True)
    data = json.loads(report.read_text())
    if data["exit_code"] != 0:
        raise RuntimeError(f"full rebuild failed: {data}")
    queries = {f"{q['step']}/{q['query']}": q["seconds"] for q in data["queries"]}
    steps: dict[str, float] = {}
    for query in data["queries"]:
        steps[query["step"]] = max(steps.get(query["step"], 0.0), query["seconds"])
    return {"seconds": done.seconds, "cpu_seconds": done.cpu_seconds,
            "run_seconds": data["seconds"], "max_rss": done.max_rss, "steps": steps,
            "queries": queries}


def measure_size(server_dsn: str, work: Path, events: int, seed: int, runs: int,
                 regenerate: bool, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Floor and rebuild figures for one size."""
    template = data.template(server_dsn, events, seed, regenerate, log)
    report = work / f"full_{events}.json"
    with fresh_database(server_dsn, f"full_{events}", template) as dsn:
        with psycopg.connect(dsn) as conn:
            table_bytes = conn.execute(
                "SELECT pg_table_size('atomic.events')").fetchone()[0]
        floors_ios, floors_seq, rebuilds = [], [], []
        plans: dict[str, str] = {}
        steps: dict[str, list[float]] = defaultdict(list)
        queries: dict[str, list[float]] = defaultdict(list)
        overheads, rss, cpu = [], [], []
        for number in range(runs):
            seconds, plans["index_only_allowed"] = time_floor(dsn, sequential=False)
            floors_ios.append(seconds)
            seconds, plans["sequential"] = time_floor(dsn, sequential=True)
            floors_seq.append(seconds)
            run = time_rebuild(dsn, report)
            rebuilds.append(run["seconds"])
            rss.append(run["max_rss"])
            cpu.append(run["cpu_seconds"])
            # Outside the queries: start-up, state bookkeeping, waits between steps.
            overheads.append(run["seconds"] - sum(run["steps"].values()))
            for step, value in run["steps"].items():
                steps[step].append(value)
            for query, value in run["queries"].items():
                queries[query].append(value)
            log(f"    round {number + 1}/{runs}: floor {floors_ios[-1]:.2f} s (index-only "
                f"allowed), {floors_seq[-1]:.2f} s (sequential); rebuild {rebuilds[-1]:.2f} s")
    return {
        "events": events,
        "atomic_bytes": table_bytes,
        "floor_index_only_allowed": Figure.of(floors_ios).to_json(),
        "floor_sequential": Figure.of(floors_seq).to_json(),
        "floor_plans": plans,
        "rebuild": Figure.of(rebuilds).to_json(),
        "ratio_to_sequential_floor": paired(rebuilds, floors_seq).to_json(),
        "ratio_to_index_only_floor": paired(rebuilds, floors_ios).to_json(),
        "rebuild_per_million_events": Figure.of(
            [r * 1_000_000 / events for r in rebuilds]).to_json(),
        "outside_queries": Figure.of(overheads).to_json(),
        "runner_max_rss": memory_figure(rss),
        "runner_cpu": Figure.of(cpu).to_json(),
        "steps": {step: Figure.of(values).to_json() for step, values in steps.items()},
        "queries": {query: Figure.of(values).to_json() for query, values in queries.items()},
    }


def measure(server_dsn: str, work: Path, sizes: list[int], seed: int, runs: int,
            regenerate: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    """This section's figures, one entry per size."""
    results = []
    for events in sizes:
        log(f"  {events:,} events")
        results.append(measure_size(server_dsn, work, events, seed, runs, regenerate, log))
    return {"sizes": results}
