"""``python -m bench``: every benchmark of issue 10, its table, JSON results and plots.

    python -m bench --size quick            # under 5 minutes on 2 cores
    python -m bench --size large            # up to 3M events (40 minutes or more)
    python -m bench --only overhead,full    # some sections only
    python -m bench --only statistics       # issue 14: 10 batches on tables nobody analyses
    python -m bench --only runner,split     # issue 18: the runner against --baseline; halves
    python -m bench --only options          # issue 16: every model option on against none
    python -m bench --only sql              # issue 18: the model's SQL against --sql-baseline
    python -m bench --only incremental --shapes spanning   # issue 18: batches spanning history

Results go to ``docs/benchmarks/<size>.json`` and ``docs/benchmarks/<size>-*.png``.
Each benchmark uses a fresh database, created and dropped through ``--dsn`` (a
superuser connection to the server; default the local server). Generated events
are kept in template databases ``sqlrunner_bench_data_*`` between runs
(``--regenerate`` makes them again, ``--clean`` drops every ``sqlrunner_bench_*``
database and exits).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import (
    data,
    full_rebuild,
    generator,
    incremental,
    options,
    output,
    overhead,
    runner_changes,
    split,
    sql_changes,
    table_statistics,
)
from bench.db import DEFAULT_DSN, ROOT, drop_all, server_version

SHAPES = ("default", "spanning")  # the generator's (sqlrunner.generate.SHAPES)

SECTIONS = ("overhead", "generator", "full", "incremental", "statistics", "runner", "split",
            "options", "sql")


@dataclass(frozen=True)
class Size:
    """How much each section measures."""

    overhead_rounds: int
    heavy_rounds: int
    heavy_rows: int
    many_rows: int
    generator_events: int
    generator_runs: int
    full_sizes: list[int]
    full_runs: int
    histories: list[int]
    batches: list[float] = field(default_factory=lambda: [0.001, 0.01, 0.1])
    incremental_runs: int = 3
    full_per_batch: bool = True  # a full rebuild after every batch, not only the 1% one
    statistics_batches: int = 10  # issue 14: runs on tables nobody analyses
    statistics_batch_events: int = 10_000
    statistics_rounds: int = 3
    runner_rounds: int = 12  # issue 18: this runner against the --baseline commit's
    split_rounds: int = 3  # issue 18: a window pass whole, in two halves
    options_rounds: int = 3  # issue 16: every model option on against the defaults
    sql_rounds: int = 3  # issue 18: the model's SQL against --sql-baseline's
    sql_batches: list[float] = field(default_factory=lambda: [0.001, 0.01])


SIZES = {
    "quick": Size(overhead_rounds=12, heavy_rounds=3, heavy_rows=3_000_000,
                  many_rows=1_000_000, generator_events=100_000, generator_runs=3,
                  full_sizes=[100_000, 1_000_000], full_runs=3, histories=[1_000_000],
                  full_per_batch=False, statistics_rounds=2),
    "large": Size(overhead_rounds=40, heavy_rounds=5, heavy_rows=3_000_000,
                  many_rows=1_000_000, generator_events=300_000, generator_runs=3,
                  full_sizes=[100_000, 1_000_000, 3_000_000], full_runs=5,
                  histories=[1_000_000, 3_000_000], incremental_runs=3, runner_rounds=40,
                  split_rounds=5, sql_rounds=5),
}


def machine(dsn: str) -> dict[str, Any]:
    """What the figures were measured on."""
    memory = None
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            memory = int(handle.readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return {"cores": os.cpu_count(), "memory_bytes": memory, "python": platform.python_version(),
            "platform": platform.platform(), "postgresql": server_version(dsn),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), **_source()}


def _source() -> dict[str, Any]:
    """The commit measured, and whether the runner, SQL or playbooks differed from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    if os.environ.get("SQLRUNNER_BENCH_COMMIT"):  # a run from an exported tree (git archive)
        return {"commit": os.environ["SQLRUNNER_BENCH_COMMIT"], "modified": False}
    try:
        return {"commit": git("rev-parse", "HEAD"),
                "modified": bool(git("status", "--porcelain", "--", "sqlrunner", "sql",
                                     "playbooks", "bench"))}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "modified": None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0],
                                     allow_abbrev=False)
    parser.add_argument("--size", choices=sorted(SIZES), default="quick")
    parser.add_argument("--dsn", default=os.environ.get("SQLRUNNER_BENCH_DSN", DEFAULT_DSN),
                        help="superuser connection to the server (default %(default)r; "
                             "also SQLRUNNER_BENCH_DSN)")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections of {', '.join(SECTIONS)}")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks",
                        help="folder of the JSON results and plots (default docs/benchmarks)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated events")
    parser.add_argument("--statistics-before", default=table_statistics.BEFORE, metavar="REF",
                        help="the commit whose SQL the statistics section compares with "
                             "(default %(default)s, before the model kept its statistics)")
    parser.add_argument("--baseline", default=runner_changes.BASELINE, metavar="REF",
                        help="the commit whose runner the runner section compares with "
                             "(default %(default)s, before issue 18)")
    parser.add_argument("--sql-baseline", default=sql_changes.BASELINE, metavar="REF",
                        help="the commit whose SQL and playbooks the sql section compares with "
                             "(default %(default)s, before issue 18's model changes)")
    parser.add_argument("--shapes", default="default,spanning",
                        help="the generator's shapes the incremental section measures "
                             "(default %(default)s; spanning: on the first history size)")
    parser.add_argument("--regenerate", action="store_true",
                        help="generate the events again instead of reusing the templates")
    parser.add_argument("--clean", action="store_true",
                        help="drop every sqlrunner_bench_* database and exit")
    args = parser.parse_args(argv)
    if args.clean:
        for name in drop_all(args.dsn):
            print(f"dropped {name}")
        return 0
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    size = SIZES[args.size]
    shapes = tuple(s.strip() for s in args.shapes.split(",") if s.strip())
    if not shapes or set(shapes) - set(SHAPES):
        parser.error(f"--shapes: a comma-separated list of {', '.join(SHAPES)}")

    def log(message: str) -> None:
        print(message, flush=True)

    started = time.perf_counter()
    results: dict[str, Any] = {"size": args.size, "machine": machine(args.dsn)}
    with tempfile.TemporaryDirectory(prefix="sqlrunner-bench-") as folder:
        work = Path(folder)
        if "overhead" in sections:
            log("runner overhead")
            results["overhead"] = overhead.measure(
                args.dsn, work, size.overhead_rounds, size.heavy_rounds, size.heavy_rows,
                size.many_rows, log=log)
        if "generator" in sections:
            log("generator")
            results["generator"] = generator.measure(args.dsn, size.generator_events,
                                                     size.generator_runs, log=log)
        if "full" in sections:
            log("full rebuild")
            results["full_rebuild"] = full_rebuild.measure(
                args.dsn, work, size.full_sizes, args.seed, size.full_runs, args.regenerate,
                log=log)
        if "incremental" in sections:
            log("incremental")
            results["incremental"] = incremental.measure(
                args.dsn, work, size.histories, size.batches, args.seed,
                size.incremental_runs, args.regenerate, size.full_per_batch, log=log,
                shapes=shapes)
        if "statistics" in sections:
            log("statistics (autovacuum off)")
            results["statistics"] = table_statistics.measure(
                args.dsn, work, size.statistics_batches, size.statistics_batch_events,
                size.histories[0], size.batches, args.seed, size.statistics_rounds,
                args.statistics_before, args.regenerate, log=log)
        if "runner" in sections:
            log(f"runner against {args.baseline}")
            results["runner"] = runner_changes.measure(args.dsn, work, size.runner_rounds,
                                                       args.baseline, log=log)
        if "split" in sections:
            log("a window pass, whole and in halves (per-query variables)")
            results["split"] = split.measure(args.dsn, work, size.histories[0], args.seed,
                                             size.split_rounds, args.regenerate, log=log)
        if "options" in sections:
            log("the model's options: every option on against the defaults")
            results["options"] = options.measure(args.dsn, work, size.histories[0], args.seed,
                                                 size.options_rounds, args.regenerate, log=log)
        if "sql" in sections:
            log(f"the model's SQL against {args.sql_baseline}'s")
            results["sql"] = sql_changes.measure(
                args.dsn, work, size.histories[0], size.sql_batches, args.seed, size.sql_rounds,
                args.sql_baseline, args.regenerate, log=log)
    results["seconds"] = round(time.perf_counter() - started, 1)
    results["data_seconds"] = round(sum(data.BUILT.values()), 1)
    table = output.rows(results)
    results["table"] = [row.__dict__ | {"verdict": row.verdict} for row in table]
    json_path = args.out / f"{args.size}.json"
    output.write_json(results, json_path)
    plots = output.write_plots(results, args.out, args.size, log)
    print()
    print(output.format_table(table))
    print()
    made = (f" (of which {results['data_seconds']:.0f} s making data sets, once)"
            if results["data_seconds"] else "")
    print(f"{results['seconds']:.0f} s{made}; results in {_shown(json_path)}"
          + (f", plots {', '.join(_shown(p) for p in plots)}" if plots else ""))
    return 0


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
