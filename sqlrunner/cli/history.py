"""``sqlrunner status --history``: each recent run's steps and queries with their durations,
the slowest first, as a table with a header for every column or as one JSON document."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlrunner.api import TargetHistory
from sqlrunner.cli.status import MODES, run_state, table
from sqlrunner.execute.history import QueryRun, RunHistory

HEADERS = ("STEP / QUERY", "STATUS", "SECONDS", "ROWS", "ATTEMPT", "STARTED (UTC)")
_RIGHT = frozenset({"SECONDS", "ROWS", "ATTEMPT"})
NO_TABLE = ("no history recorded: the runner's schema predates it, and this user cannot add "
            "its table (a run by a user who can adds it)")


def print_history(headings: Sequence[str], targets: Sequence[TargetHistory],
                  form: str) -> None:
    """Print every target's history: under the line saying where it went (``headings``), or
    as JSON (``form`` ``json``)."""
    if form == "json":
        print(json.dumps({"targets": [_target_json(heading, target) for heading, target
                                      in zip(headings, targets, strict=True)]}, indent=2))
        return
    for heading, target in zip(headings, targets, strict=True):
        print(heading)
        for line in target_lines(target):
            print(f"  {line}")


def target_lines(target: TargetHistory) -> list[str]:
    """One target's history as text lines: per run, a line, then its table."""
    if target.error:
        return [f"cannot read its runs: {target.error}"]
    if not target.runs:
        return ["no runs recorded"]
    lines = [] if target.recorded else [NO_TABLE]
    for run in target.runs:
        lines.append(_run_line(run, run_state(run.run, target.lock_held)))
        lines += [f"  {line}" for line in run_lines(run)]
    return lines


def _run_line(history: RunHistory, status: str) -> str:
    run = history.run
    attempts = f"{run.attempts} attempt{'s' if run.attempts != 1 else ''}"
    return (f"run {run.run_id[:8]}: {status}, {MODES.get(run.mode, run.mode)}, started "
            f"{run.started_at:%Y-%m-%d %H:%M:%S} UTC, {attempts}; queries took "
            f"{history.seconds:.3f} s")


def run_lines(history: RunHistory) -> list[str]:
    """A run's steps, each followed by its queries, the slowest first, under a header; then
    the first line of each failed query's error."""
    if not history.steps:
        return ["no query recorded (none ran, or the run predates the history)"]
    rows: list[tuple[str, ...]] = []
    failures = []
    for step in history.steps:
        rows.append((step.step, step.status, f"{step.seconds:.3f}", "", "", ""))
        for query in step.queries:
            rows.append(_query_row(query))
            if query.status == "failed" and query.error:
                failures.append(f"{query.step}/{query.query} failed (attempt {query.attempt}): "
                                f"{query.error}")
    return table(HEADERS, rows, right=_RIGHT) + failures


def _query_row(query: QueryRun) -> tuple[str, ...]:
    return (f"  {query.query}", query.status, f"{query.seconds:.3f}",
            "" if query.rows is None else f"{query.rows:,}", str(query.attempt),
            f"{query.started_at:%Y-%m-%d %H:%M:%S}")


def _target_json(heading: str, target: TargetHistory) -> dict[str, Any]:
    runs = []
    for run in target.runs:
        record = run.to_json()
        record["status"] = run_state(run.run, target.lock_held)
        runs.append(record)
    return {"target": target.target, "where": heading, "error": target.error,
            "history_recorded": target.recorded, "runs": runs}
