"""``sqlrunner status``: the recent runs of a playbook on each target, and where an
unfinished one stopped."""

from __future__ import annotations

import os
from dataclasses import dataclass

import psycopg

from sqlrunner.errors import QueryError, SqlRunnerError
from sqlrunner.execute.checkpoints import UNFINISHED, CheckpointStore, RunRecord
from sqlrunner.execute.targets import connect, connection_for
from sqlrunner.plan import RunPlan


@dataclass(frozen=True)
class TargetStatus:
    """Recent runs on one target; for an unfinished latest run, what is done and what is next."""

    target: str
    runs: tuple[RunRecord, ...]
    done: tuple[str, ...] = ()
    next_query: str | None = None
    error: str | None = None
    gone: tuple[str, ...] = ()  # done, but a crash emptied unlogged tables they built


def playbook_status(plan: RunPlan, schema: str = "sqlrunner", limit: int = 10,
                    embedded_dir: str | None = None) -> list[TargetStatus]:
    """Read the run records of ``plan``'s playbook from every target."""
    playbook = os.path.realpath(plan.playbook.path)
    statuses = []
    for target_plan in plan.targets:
        name = target_plan.target.name
        if target_plan.init_error:
            statuses.append(TargetStatus(name, (), error=target_plan.init_error))
            continue
        try:
            connection = connection_for(target_plan.target, embedded_dir)
            with connect(connection) as conn:
                store = CheckpointStore(conn, schema)
                exists = conn.execute(
                    "SELECT count(*) FROM information_schema.tables "
                    "WHERE table_schema = %s AND table_name = 'runs'", (schema,)).fetchone()[0]
                runs = tuple(store.recent_runs(playbook, name, limit)) if exists else ()
                done: list[str] = []
                next_query = None
                gone: list[str] = []
                latest = next((r for r in runs if r.mode == "full"), None)
                if latest is not None and latest.status in UNFINISHED:
                    recorded = store.checkpoints(latest.run_id, name, connection.dialect)
                    gone = sorted({f"{step}/{query}" for step, query, _ in recorded.gone})
                    for query in target_plan.queries:
                        key = (query.step, query.query)
                        if key in recorded.done:
                            done.append(f"{query.step}/{query.query}")
                        elif next_query is None:
                            next_query = f"{query.step}/{query.query}"
                statuses.append(TargetStatus(name, runs, tuple(done), next_query,
                                             gone=tuple(gone)))
        except (SqlRunnerError, QueryError, psycopg.Error) as err:
            statuses.append(TargetStatus(name, (), error=str(err).strip().splitlines()[0]))
    return statuses



