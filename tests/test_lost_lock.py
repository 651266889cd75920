"""A run that lost its run lock starts no more work.

The lock is held by the run's bookkeeping connection. When that connection's backend is
terminated (pg_terminate_backend), the lock goes with it and another run may take it
over; the first run does not notice until it next uses that connection. Every query
connection it opens after that must be refused: RunLock.enlist checks, on the server,
that the run's bookkeeping backend still holds the lock.
"""

from __future__ import annotations

import os

import psycopg
import pytest
from conftest import run_sql
from test_runlock import _lock, as_redshift  # noqa: F401 - a fixture

from sqlrunner.api import run_playbook
from sqlrunner.errors import LockError
from sqlrunner.execute import runlock
from sqlrunner.execute.checkpoints import CheckpointStore
from sqlrunner.execute.executor import SilentReporter


def _terminate(database: str, pid: int) -> None:
    """pg_terminate_backend ``pid`` and wait until it has left the server."""
    with psycopg.connect(database, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        assert runlock.wait_until_gone(admin, "postgres", [pid], timeout=30)


@pytest.mark.usefixtures("as_redshift")
@pytest.mark.parametrize("dialect", ["postgres", "redshift"])
def test_a_run_whose_lock_was_taken_over_may_open_no_query_connection(database, dialect):
    run = _lock(database, dialect, "lost")
    run.acquire()
    _terminate(database, run.conn.info.backend_pid)
    heir = _lock(database, dialect, "heir")
    heir.acquire(stale_wait=10)
    assert heir.held
    assert not run.conn.closed  # the client has not noticed: only the server can tell
    worker = psycopg.connect(database, autocommit=True)
    try:
        with pytest.raises(LockError, match="lost its lock"):
            run.enlist(worker)
    finally:
        worker.close()
        heir.release()


def test_a_run_whose_lock_is_still_held_may_open_query_connections(database):
    run = _lock(database, "postgres", "kept")
    run.acquire()
    with psycopg.connect(database, autocommit=True) as worker:
        run.enlist(worker)  # no error: the run still holds its lock
    run.release()


class TakeOverBefore(SilentReporter):
    """When the run reaches ``step``: terminate its bookkeeping backend, then take its lock
    as the next run would (which also terminates the backends doing the old run's work)."""

    def __init__(self, database: str, playbook: str, step: str) -> None:
        self.database = database
        self.playbook = playbook
        self.step = step
        self.heir: runlock.RunLock | None = None

    def step_started(self, target: str, step) -> None:
        if step.name != self.step:
            return
        [(holder,)] = run_sql(
            self.database, "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND mode = 'ExclusiveLock' AND database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())")
        _terminate(self.database, holder)
        store = CheckpointStore(psycopg.connect(self.database, autocommit=True))
        self.heir = runlock.RunLock(store, "postgres", os.path.realpath(self.playbook), target,
                                    "heir")
        self.heir.acquire(stale_wait=10)

    def release(self) -> None:
        if self.heir is not None:
            self.heir.release()
            self.heir.conn.close()


@pytest.mark.parametrize(("step", "done_before"), [("first", []), ("second", ["first"])],
                         ids=["before-the-first-step", "between-steps"])
def test_a_run_whose_lock_was_taken_over_runs_nothing_more(workdir, database, step,
                                                           done_before):
    # Before the first step every query needs a new connection (only enlist can stop it);
    # between steps one reuses the first step's connection, which the heir terminated.
    run_sql(database, "CREATE TABLE done (query text)")
    first = workdir.sql("first.sql", "INSERT INTO done VALUES ('first');")
    later = [(name, workdir.sql(f"{name}.sql", f"INSERT INTO done VALUES ('{name}');"))
             for name in ("second_a", "second_b", "second_c")]
    playbook = workdir.playbook(workdir.steps(("first", [("first", first)]),
                                              ("second", later)))
    takeover = TakeOverBefore(database, playbook, step)
    try:
        result = run_playbook(playbook, reporter=takeover, retry_backoff=0.01)
    finally:
        takeover.release()
    assert takeover.heir is not None, f"the run never reached step {step}"
    with psycopg.connect(database) as conn:
        assert [r[0] for r in conn.execute("SELECT query FROM done")] == done_before
    assert result.exit_code != 0
    assert any("lost its lock" in error for error in result.errors), result.errors
