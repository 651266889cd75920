"""Run history: when each query of a run started and ended, with its rows and status.

One row per execution of a query in ``query_history``, in the runner's schema beside the
checkpoints. A row is known only once its query has returned (its rows come back with
it), so it is not written with the query's own checkpoint, which travels ahead in the
same text: it waits in memory and rides along with a later checkpoint of the run (in its
round trip and transaction): the next one, unless rows left less than a second ago (then
once 64 wait), or the record of the run's end (state.py). A failed query's row is written
so too, by whatever commits next. History costs no round trip of its own; a crash loses
the rows still waiting or riding with the queries it stops (the last query's, or about
a second's worth).

A carried row whose carrier's outcome is unknown (a lost connection) is carried again:
it may then be stored twice, identically, and reading takes each distinct row once.

``sqlrunner status --history`` reads the rows back (:func:`read_history`) and orders a
run's steps and queries by duration, the slowest first (:func:`run_history`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlrunner.execute.checkpoints import CheckpointStore, RunRecord
    from sqlrunner.execute.results import QueryResult

HISTORY_TABLE = """
CREATE TABLE IF NOT EXISTS {schema}.query_history (
    run_id       varchar(32)   NOT NULL,
    target       varchar(256)  NOT NULL,
    attempt      integer       NOT NULL,
    step         varchar(256)  NOT NULL,
    query        varchar(256)  NOT NULL,
    file         varchar(1024) NOT NULL,
    status       varchar(16)   NOT NULL,
    started_at   timestamp     NOT NULL,
    ended_at     timestamp     NOT NULL,
    row_count    bigint,
    retries      integer       NOT NULL,
    error        varchar(4096)
);
"""
_COLUMNS = ("run_id, target, attempt, step, query, file, status, started_at, ended_at, "
            "row_count, retries, error")
_ERROR_CHARS = 1000  # varchar(4096) holds it in bytes on Redshift, whatever the text


def history_values(store: CheckpointStore, run_id: str, attempt: int, result: QueryResult,
                   started_at: datetime) -> str:
    """The row of ``query_history`` of a query's ``result`` in this run's ``attempt``, as a
    parenthesised list of literals (``started_at`` in UTC without tzinfo, as the
    checkpoints keep time)."""
    ended_at = started_at + timedelta(seconds=max(result.seconds, 0.0))
    literal = store.literal
    # Numbers written as they are: psycopg's quoting costs more than the rest of the row.
    rows = f"{result.rows:d}" if result.rows is not None and result.rows >= 0 else "NULL"
    error = (literal(result.error.splitlines()[0][:_ERROR_CHARS]) if result.error
             else "NULL")
    return (f"({literal(run_id)}, {literal(result.target[:256])}, {attempt:d}, "
            f"{literal(result.step[:256])}, {literal(result.query[:256])}, "
            f"{literal(result.file[:1024])}, {literal(result.status)}, {literal(started_at)}, "
            f"{literal(ended_at)}, {rows}, {result.retries:d}, {error})")


def history_insert(store: CheckpointStore, rows: list[str]) -> str:
    """The INSERT that stores ``rows`` (made by :func:`history_values`)."""
    return store.qualified(f"INSERT INTO {{schema}}.query_history ({_COLUMNS}) VALUES "
                           + ", ".join(rows))


@dataclass(frozen=True)
class QueryRun:
    """One execution of a query in a run (``attempt``: the run's attempt, 2 and more for
    a resumed run)."""

    run_id: str
    attempt: int
    step: str
    query: str
    file: str
    status: str
    started_at: datetime
    ended_at: datetime
    rows: int | None
    retries: int
    error: str | None

    @property
    def seconds(self) -> float:
        """How long the query took (with its retries)."""
        return (self.ended_at - self.started_at).total_seconds()

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready record (times in UTC, ISO 8601)."""
        return {"step": self.step, "query": self.query, "file": self.file,
                "status": self.status, "attempt": self.attempt,
                "started_at": _iso(self.started_at), "ended_at": _iso(self.ended_at),
                "seconds": round(self.seconds, 6), "rows": self.rows,
                "retries": self.retries, "error": self.error}


def read_history(store: CheckpointStore, target: str,
                 run_ids: list[str]) -> dict[str, list[QueryRun]]:
    """The recorded executions of the runs ``run_ids`` on ``target``, by run."""
    found: dict[str, list[QueryRun]] = {run_id: [] for run_id in run_ids}
    if not run_ids:
        return found
    ids = ", ".join(store.literal(run_id) for run_id in run_ids)
    rows = store.conn.execute(store.qualified(
        "SELECT DISTINCT run_id, attempt, step, query, file, status, started_at, ended_at, "
        "row_count, retries, error FROM {schema}.query_history "
        f"WHERE target = {store.literal(target[:256])} AND run_id IN ({ids})")).fetchall()
    for row in rows:
        found[row[0]].append(QueryRun(*row))
    return found


def _span(entries: list[QueryRun]) -> float:
    """Wall time of ``entries``: per attempt, the first start to the last end, summed (the
    queries of a step run in parallel; a resumed run's wait between attempts is left out)."""
    attempts: dict[int, list[QueryRun]] = {}
    for entry in entries:
        attempts.setdefault(entry.attempt, []).append(entry)
    return sum((max(e.ended_at for e in group) - min(e.started_at for e in group)
                ).total_seconds() for group in attempts.values())


def _status(entries: list[QueryRun]) -> str:
    """A step's status: each query's latest execution tells; failed before interrupted."""
    latest: dict[str, QueryRun] = {}
    for entry in sorted(entries, key=lambda e: (e.attempt, e.ended_at)):
        latest[entry.query] = entry
    statuses = {e.status for e in latest.values()}
    return next((s for s in ("failed", "interrupted") if s in statuses), "succeeded")


@dataclass(frozen=True)
class StepRun:
    """A step's executions in one run, its queries the slowest first."""

    step: str
    seconds: float
    status: str
    queries: tuple[QueryRun, ...]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready record."""
        return {"step": self.step, "status": self.status, "seconds": round(self.seconds, 6),
                "queries": [q.to_json() for q in self.queries]}


@dataclass(frozen=True)
class RunHistory:
    """A run's record and its steps, the slowest first."""

    run: RunRecord
    steps: tuple[StepRun, ...]
    seconds: float  # from the first query's start to the last one's end, per attempt

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready record (the run as recorded)."""
        run = self.run
        return {"run_id": run.run_id, "playbook": run.playbook, "mode": run.mode,
                "status": run.status, "started_at": _iso(run.started_at),
                "ended_at": _iso(run.ended_at) if run.ended_at else None,
                "attempts": run.attempts, "seconds": round(self.seconds, 6),
                "steps": [s.to_json() for s in self.steps]}


def run_history(run: RunRecord, entries: list[QueryRun]) -> RunHistory:
    """``run`` with its executions grouped by step; steps and queries the slowest first
    (ties in the order they started)."""
    by_step: dict[str, list[QueryRun]] = {}
    for entry in sorted(entries, key=lambda e: (e.started_at, e.step, e.query)):
        by_step.setdefault(entry.step, []).append(entry)
    steps = [StepRun(step, _span(group), _status(group),
                     tuple(sorted(group, key=lambda e: -e.seconds)))
             for step, group in by_step.items()]
    return RunHistory(run, tuple(sorted(steps, key=lambda s: -s.seconds)), _span(entries))


def _iso(moment: datetime) -> str:
    return moment.isoformat() + "Z"
