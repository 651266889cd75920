"""The runner's own costs: per-query overhead and start-up against ``psql -f``, a step of
parallel heavy queries against the same queries in series, and peak memory.

Everything runs as a child process, as a user runs it (``python -m sqlrunner -p ...``,
log lines to a discarded stderr; ``psql -X -q -f ...`` with its output discarded), in
rounds: each round runs every command once, in a shuffled order, so that a slow spell
of the shared machine hits all of them alike. Ratios and differences are taken within a
round, then summarised over the rounds.
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import process
from bench.db import Endpoint, fresh_database
from bench.stats import Figure, marginal_per_query, memory_figure, paired

QUERIES = 200
STEPS_OF_TEN = 20
HEAVY_QUERIES = 4
HEAVY_SQL = "SELECT SUM(g) FROM generate_series(1, {n}) AS g;\n"
FEW_ROWS = "SELECT g, md5(g::text) FROM generate_series(1, 10) AS g;\n"
MANY_ROWS = "SELECT g, md5(g::text) FROM generate_series(1, {n}) AS g;\n"
MODES = {"no_checkpoints": ["--no-checkpoints"], "checkpoints": []}


def _playbook(endpoint: Endpoint, steps: list[list[str]]) -> str:
    """A playbook whose steps hold the given query files."""
    lines = [endpoint.playbook_target(), "steps:"]
    for number, files in enumerate(steps, 1):
        lines.append(f"  - name: step_{number:03d}")
        lines.append("    queries:")
        for file in files:
            lines.append(f"      - name: {Path(file).stem}")
            lines.append(f"        file: {file}")
    return "\n".join(lines) + "\n"


def write_fixtures(folder: Path, endpoint: Endpoint, heavy_rows: int,
                   many_rows: int) -> dict[str, Path]:
    """The SQL files and playbooks of this section; returns the playbooks by name."""
    sql = folder / "sql"
    sql.mkdir(parents=True, exist_ok=True)
    files = []
    for number in range(1, QUERIES + 1):
        path = sql / f"q{number:03d}.sql"
        path.write_text("SELECT 1;\n")
        files.append(f"sql/{path.name}")
    for number in range(1, HEAVY_QUERIES + 1):
        (sql / f"heavy{number}.sql").write_text(HEAVY_SQL.format(n=heavy_rows))
    (sql / "few_rows.sql").write_text(FEW_ROWS)
    (sql / "many_rows.sql").write_text(MANY_ROWS.format(n=many_rows))
    heavy = [f"sql/heavy{n}.sql" for n in range(1, HEAVY_QUERIES + 1)]
    playbooks = {
        "one": [files[:1]],
        "steps_of_one": [[f] for f in files],
        "steps_of_ten": [files[i:i + QUERIES // STEPS_OF_TEN]
                         for i in range(0, QUERIES, QUERIES // STEPS_OF_TEN)],
        "heavy_parallel": [heavy],
        "heavy_series": [[f] for f in heavy],
        "few_rows": [["sql/few_rows.sql"]],
        "many_rows": [["sql/many_rows.sql"]],
    }
    paths = {}
    for name, steps in playbooks.items():
        path = folder / f"{name}.yml"
        path.write_text(_playbook(endpoint, steps))
        paths[name] = path
    return paths


def run_rounds(commands: dict[str, Callable[[], process.Completed]], rounds: int,
            seed: int) -> dict[str, list[process.Completed]]:
    """Run every command once per round, in a shuffled order; one warm-up round first."""
    order = list(commands)
    for name in order:
        commands[name]()
    shuffle = random.Random(seed)
    done: dict[str, list[process.Completed]] = {name: [] for name in order}
    for _ in range(rounds):
        shuffle.shuffle(order)
        for name in order:
            done[name].append(commands[name]())
    return done


def measure(server_dsn: str, work: Path, rounds: int, heavy_rounds: int, heavy_rows: int,
            many_rows: int, seed: int = 1, log: Callable[[str], None] = print
            ) -> dict[str, Any]:
    """Measure this section; returns its figures (seconds, bytes, ratios) as JSON-ready data."""
    results: dict[str, Any] = {}
    psql = shutil.which("psql")
    with fresh_database(server_dsn, "overhead") as dsn:
        endpoint = Endpoint.of(dsn)
        folder = work / "overhead"
        playbooks = write_fixtures(folder, endpoint, heavy_rows, many_rows)
        env = process.runner_env()

        def runner(playbook: str, *flags: str, environment: dict[str, str] = env,
                   memory: bool = False) -> Callable[[], process.Completed]:
            command = process.runner_command("-p", str(playbooks[playbook]), "--progress",
                                             "plain", *flags)
            return lambda: process.run(command, env=environment, cwd=folder, memory=memory)

        commands: dict[str, Callable[[], process.Completed]] = {}
        for mode, flags in MODES.items():
            for shape in ("one", "steps_of_one", "steps_of_ten"):
                commands[f"runner.{mode}.{shape}"] = runner(shape, *flags)
        if os.environ.get("PYTHONDONTWRITEBYTECODE"):
            # This shell's own environment: the runner's modules compiled on every start.
            commands["runner.no_checkpoints.one.uncached"] = runner(
                "one", "--no-checkpoints", environment=process.runner_env(cached_bytecode=False))
        if psql:
            psql_env = {**os.environ, **endpoint.psql_env()}
            base = [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", *endpoint.psql_args()]
            all_files = [f"sql/q{n:03d}.sql" for n in range(1, QUERIES + 1)]
            every = [arg for f in all_files for arg in ("-f", f)]
            commands["psql.one"] = lambda: process.run(base + ["-f", all_files[0]],
                                                       env=psql_env, cwd=folder)
            commands["psql.many"] = lambda: process.run(base + every, env=psql_env, cwd=folder)
        else:
            log("  psql not found: no per-query overhead against psql")
        log(f"  {len(commands)} commands x {rounds} rounds (after a warm-up round)")
        done = run_rounds(commands, rounds, seed)
        seconds = {name: [c.seconds for c in runs] for name, runs in done.items()}
        results["commands"] = {name: Figure.of(values).to_json()
                               for name, values in seconds.items()}
        for mode in MODES:
            results[f"startup.{mode}"] = Figure.of(seconds[f"runner.{mode}.one"]).to_json()
            if psql:
                for shape in ("steps_of_one", "steps_of_ten"):
                    results[f"per_query.{mode}.{shape}"] = marginal_per_query(
                        seconds[f"runner.{mode}.{shape}"], seconds[f"runner.{mode}.one"],
                        seconds["psql.many"], seconds["psql.one"], QUERIES).to_json()
        if "runner.no_checkpoints.one.uncached" in seconds:
            results["startup.no_checkpoints.uncached"] = Figure.of(
                seconds["runner.no_checkpoints.one.uncached"]).to_json()
        if psql:
            results["startup.psql"] = Figure.of(seconds["psql.one"]).to_json()
            results["per_query.psql"] = Figure.of(
                [(m - o) / (QUERIES - 1) for m, o in
                 zip(seconds["psql.many"], seconds["psql.one"], strict=True)]).to_json()

        log(f"  parallel: {HEAVY_QUERIES} queries of generate_series(1, {heavy_rows:,}), "
            f"{heavy_rounds} rounds")
        heavy = run_rounds({"series": runner("heavy_series", "--no-checkpoints"),
                         "parallel": runner("heavy_parallel", "--no-checkpoints")},
                        heavy_rounds, seed)
        series = [c.seconds for c in heavy["series"]]
        parallel = [c.seconds for c in heavy["parallel"]]
        results["parallel"] = {
            "queries": HEAVY_QUERIES, "cores": os.cpu_count(),
            "series": Figure.of(series).to_json(), "parallel": Figure.of(parallel).to_json(),
            "speedup": paired(series, parallel).to_json(),
        }

        log(f"  memory: a query returning 10 rows and one returning {many_rows:,} rows")
        memory = run_rounds({"few_rows": runner("few_rows", "--no-checkpoints", memory=True),
                          "many_rows": runner("many_rows", "--no-checkpoints", memory=True)},
                         heavy_rounds, seed)
        results["memory"] = {
            "many_rows": many_rows,
            "few_rows_rss": memory_figure([c.max_rss for c in memory["few_rows"]]),
            "many_rows_rss": memory_figure([c.max_rss for c in memory["many_rows"]]),
            "few_rows_seconds": Figure.of([c.seconds for c in memory["few_rows"]]).to_json(),
            "many_rows_seconds": Figure.of([c.seconds for c in memory["many_rows"]]).to_json(),
        }
    return results
