"""Issue 18's runner items, this tree's runner against an earlier commit's in the same rounds:
start-up of a 1-query playbook, the per-query overhead beyond ``psql -f`` with checkpoints
(200 steps of 1, 20 steps of 10: overhead.py's fixtures and formula), and the incremental
model's run with nothing new.

The earlier runner is ``sqlrunner/`` of ``--baseline`` (default: the commit before issue 18),
exported with ``git archive`` and put first on ``PYTHONPATH``; both run the same playbooks
of ``SELECT 1`` files, in the same shuffled rounds, beside the same ``psql`` runs. The empty
run uses a database holding the model's tables with nothing in landing (made once, by this
tree's runner), as ``playbooks/incremental.yml`` finds it between loads; each runner runs
its own commit's playbook and SQL there (an earlier runner may not read today's playbook:
``assert:`` came later), so that figure is the whole product's, then and now.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import overhead, process
from bench.db import ROOT, Endpoint, fresh_database
from bench.source import export_tree
from bench.stats import Figure, marginal_per_query, paired

BASELINE = "d325c2b"  # the last commit before issue 18's runner changes
INCREMENTAL = ROOT / "playbooks" / "incremental.yml"
SHAPES = ("steps_of_one", "steps_of_ten")


def measure(server_dsn: str, work: Path, rounds: int, baseline: str = BASELINE,
            seed: int = 18, log: Callable[[str], None] = print) -> dict[str, Any]:
    """This section's figures: each runner's, and this one's against the baseline's."""
    exported = work / f"runner-{baseline}"
    if not export_tree(baseline, ["sqlrunner", "sql", "playbooks"], exported):
        log(f"  the runner of {baseline} could not be exported (git archive): not measured")
        return {"skipped": f"git archive {baseline} failed"}
    psql = shutil.which("psql")
    if psql is None:
        log("  psql not found: not measured")
        return {"skipped": "psql not found"}
    runners = {"this": process.runner_env(),
               "baseline": process.runner_env({"PYTHONPATH": str(exported)})}
    empty_playbooks = {"this": INCREMENTAL,
                       "baseline": exported / "playbooks" / INCREMENTAL.name}
    with fresh_database(server_dsn, "runner") as dsn, \
            fresh_database(server_dsn, "runner_model") as model_dsn:
        endpoint = Endpoint.of(dsn)
        folder = work / "runner"
        playbooks = overhead.write_fixtures(folder, endpoint, 1, 1)
        # The model's tables, and one run with nothing to do, by this tree's runner.
        process.run(process.runner_command("-p", str(INCREMENTAL), "--target", model_dsn,
                                           "--progress", "plain"),
                    env=runners["this"], cwd=ROOT)

        def runner(env: dict[str, str], *args: str) -> Callable[[], process.Completed]:
            command = process.runner_command(*args, "--progress", "plain")
            return lambda: process.run(command, env=env, cwd=folder)

        commands: dict[str, Callable[[], process.Completed]] = {}
        for name, env in runners.items():
            for shape in ("one", *SHAPES):
                commands[f"{name}.{shape}"] = runner(env, "-p", str(playbooks[shape]))
            commands[f"{name}.empty_run"] = runner(env, "-p", str(empty_playbooks[name]),
                                                   "--target", model_dsn)
        psql_env = {**os.environ, **endpoint.psql_env()}
        base = [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", *endpoint.psql_args()]
        every = [arg for n in range(1, overhead.QUERIES + 1)
                 for arg in ("-f", f"sql/q{n:03d}.sql")]
        commands["psql.one"] = lambda: process.run(base + ["-f", "sql/q001.sql"],
                                                   env=psql_env, cwd=folder)
        commands["psql.many"] = lambda: process.run(base + every, env=psql_env, cwd=folder)
        log(f"  {len(commands)} commands x {rounds} rounds (after a warm-up round), "
            f"this runner against {baseline}'s")
        done = overhead.run_rounds(commands, rounds, seed)
    seconds = {name: [c.seconds for c in runs] for name, runs in done.items()}
    cpu = {name: [c.cpu_seconds for c in runs] for name, runs in done.items()}
    results: dict[str, Any] = {"baseline_ref": baseline, "rounds": rounds,
                               "psql_startup": Figure.of(seconds["psql.one"]).to_json()}
    for name in runners:
        results[name] = {
            "startup": Figure.of(seconds[f"{name}.one"]).to_json(),
            "empty_run": Figure.of(seconds[f"{name}.empty_run"]).to_json(),
            "startup_cpu": Figure.of(cpu[f"{name}.one"]).to_json(),
            "empty_run_cpu": Figure.of(cpu[f"{name}.empty_run"]).to_json(),
            **{f"per_query.{shape}": marginal_per_query(
                seconds[f"{name}.{shape}"], seconds[f"{name}.one"], seconds["psql.many"],
                seconds["psql.one"], overhead.QUERIES).to_json() for shape in SHAPES},
        }
    results["this_over_baseline"] = {
        "startup": paired(seconds["this.one"], seconds["baseline.one"]).to_json(),
        "empty_run": paired(seconds["this.empty_run"], seconds["baseline.empty_run"]).to_json(),
    }
    return results
