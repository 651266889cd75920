"""The run lock, both ways: PostgreSQL's advisory locks and the lock row used on Redshift
(tested here on PostgreSQL, with pg_stat_activity standing in for stv_sessions)."""

from __future__ import annotations

import psycopg
import pytest

from sqlrunner import runlock
from sqlrunner.checkpoints import CheckpointStore
from sqlrunner.errors import LockError


@pytest.fixture
def as_redshift(monkeypatch):
    """Make the Redshift code path's liveness check read pg_stat_activity."""
    original = runlock.alive_backends
    monkeypatch.setattr(runlock, "alive_backends",
                        lambda conn, dialect, pids: original(conn, "postgres", pids))


def _lock(database: str, dialect: str, run_id: str) -> runlock.RunLock:
    conn = psycopg.connect(database, autocommit=True)
    store = CheckpointStore(conn)
    store.ensure_tables()
    return runlock.RunLock(store, dialect, "/playbooks/p.yml", "db", run_id)


@pytest.mark.parametrize("dialect", ["postgres", "redshift"])
def test_a_second_holder_is_refused_until_the_first_lets_go(database, dialect, as_redshift):
    first, second = _lock(database, dialect, "run1"), _lock(database, dialect, "run2")
    first.acquire()
    with pytest.raises(LockError, match="already running"):
        second.acquire(timeout=0.2)
    first.release()
    second.acquire()
    assert second.held


@pytest.mark.parametrize("dialect", ["postgres", "redshift"])
def test_a_dead_holders_lock_is_taken_over_and_its_work_stopped(database, dialect,
                                                                 as_redshift):
    dead = _lock(database, dialect, "dead")
    dead.acquire()
    worker = psycopg.connect(database, autocommit=True)
    dead.enlist(worker)
    worker_pid = worker.info.backend_pid
    dead.conn.close()  # the runner died: its bookkeeping connection is gone
    heir = _lock(database, dialect, "heir")
    heir.acquire(stale_wait=10)
    # The dead run's query connection was terminated before the heir went on.
    with psycopg.connect(database, autocommit=True) as admin:
        assert runlock.alive_backends(admin, "postgres", [worker_pid]) == []
    assert heir.held
