"""Issue 18's model items: this tree's SQL and playbooks against an earlier commit's, in the
same shuffled rounds, on the same data, run by this tree's runner.

- **Incremental batches**: each batch share (0.1%, 1% of the history) moved into landing of
  a fresh clone of the data set (data.py), then one run of ``playbooks/incremental.yml``
  of one tree; both trees' runs in a shuffled order per round.
- **Full rebuild**: ``playbooks/full.yml`` of each tree on one clone of the data set (each
  run rebuilds every derived table from atomic, so the runs do not depend on each other),
  in a shuffled order per round.

Both trees model the same events: the data set is made by this tree's SQL, which gives
the same derived rows as the earlier one (the incremental-equals-full tests).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import data
from bench.db import ROOT, fresh_database
from bench.incremental import run_playbook
from bench.source import export_tree
from bench.stats import Figure, paired

BASELINE = "b28df2f"  # main before issue 18's model changes, with the data tests' hash joins
TREES = ("this", "baseline")


def _steps(runs: list[dict[str, Any]]) -> dict[str, Any]:
    values: dict[str, list[float]] = defaultdict(list)
    for run in runs:
        for step, seconds in run["steps"].items():
            values[step].append(seconds)
    return {step: Figure.of(v).to_json() for step, v in values.items()}


def _compare(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Each tree's wall seconds, runner CPU and steps, and this tree's over the baseline's."""
    result: dict[str, Any] = {}
    for tree in TREES:
        result[tree] = {"run": Figure.of([r["seconds"] for r in runs[tree]]).to_json(),
                        "runner_cpu": Figure.of([r["cpu_seconds"] for r in runs[tree]]).to_json(),
                        "steps": _steps(runs[tree])}
    result["this_over_baseline"] = paired([r["seconds"] for r in runs["this"]],
                                          [r["seconds"] for r in runs["baseline"]]).to_json()
    return result


def measure(server_dsn: str, work: Path, history: int, shares: list[float], seed: int,
            rounds: int, baseline: str = BASELINE, regenerate: bool = False,
            log: Callable[[str], None] = print) -> dict[str, Any]:
    """This section's figures, or ``{"skipped": reason}``."""
    exported = work / f"sql-{baseline}"
    if not export_tree(baseline, ["sql", "playbooks"], exported):
        log(f"  the SQL of {baseline} could not be exported (git archive): not measured")
        return {"skipped": f"git archive {baseline} failed"}
    playbooks = {"this": ROOT / "playbooks", "baseline": exported / "playbooks"}
    template = data.template(server_dsn, history, seed, regenerate, log)
    report = work / "sql_changes.json"
    order = random.Random(seed)
    batches: dict[float, dict[str, list[dict[str, Any]]]] = {
        share: {tree: [] for tree in TREES} for share in shares}
    fulls: dict[str, list[dict[str, Any]]] = {tree: [] for tree in TREES}
    events: dict[float, int] = {}
    for number in range(rounds):
        runs = [(tree, share) for tree in TREES for share in shares]
        order.shuffle(runs)
        for tree, share in runs:
            with fresh_database(server_dsn, "sql_incr", template) as dsn:
                events[share] = data.move_to_landing(
                    dsn, max(1, round(share * data.LOADS_PER_HISTORY)))
                batches[share][tree].append(
                    run_playbook(playbooks[tree] / "incremental.yml", dsn, report))
        with fresh_database(server_dsn, "sql_full", template) as dsn:
            for tree in order.sample(TREES, len(TREES)):
                fulls[tree].append(run_playbook(playbooks[tree] / "full.yml", dsn, report))
        log(f"    round {number + 1}/{rounds}: " + "; ".join(
            f"{share:.1%} " + ", ".join(f"{tree} {batches[share][tree][-1]['seconds']:.2f} s"
                                        for tree in TREES) for share in shares)
            + "; full " + ", ".join(f"{tree} {fulls[tree][-1]['seconds']:.2f} s"
                                    for tree in TREES))
    return {"baseline_ref": baseline, "history": history, "rounds": rounds,
            "batches": [{"share": share, "events": events[share], **_compare(batches[share])}
                        for share in shares],
            "full_rebuild": _compare(fulls)}
