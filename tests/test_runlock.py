"""The run lock, both ways: PostgreSQL's advisory locks and the lock row used on Redshift
(tested here on PostgreSQL, with pg_stat_activity standing in for stv_sessions)."""

from __future__ import annotations

import time

import psycopg
import pytest

from sqlrunner.errors import LockError
from sqlrunner.execute import runlock
from sqlrunner.execute.checkpoints import CheckpointStore


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


def _lose_connection(lock: runlock.RunLock, database: str) -> None:
    """The server ends the lock's session (what a restart or an outage does to it)."""
    pid = lock.conn.info.backend_pid
    with psycopg.connect(database, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        deadline = time.monotonic() + 10
        while runlock.alive_backends(admin, "postgres", [pid]):
            assert time.monotonic() < deadline
    lock.conn.close()


def _new_store(database: str) -> CheckpointStore:
    return CheckpointStore(psycopg.connect(database, autocommit=True))


@pytest.mark.parametrize("dialect", ["postgres", "redshift"])
def test_a_run_that_lost_its_connection_takes_its_lock_again(database, dialect, as_redshift):
    lock = _lock(database, dialect, "run1")
    lock.acquire()
    old = lock.conn.info.backend_pid
    _lose_connection(lock, database)
    lock.reacquire(_new_store(database), [old])
    assert lock.held
    with pytest.raises(LockError, match="already running"):
        _lock(database, dialect, "run2").acquire()


@pytest.mark.parametrize("dialect", ["postgres", "redshift"])
@pytest.mark.parametrize("other_still_holds", [True, False])
def test_a_run_whose_lock_another_run_took_meanwhile_stops(database, dialect, as_redshift,
                                                          other_still_holds):
    lock = _lock(database, dialect, "run1")
    lock.acquire()
    old = lock.conn.info.backend_pid
    _lose_connection(lock, database)
    other = _lock(database, dialect, "run2")
    other.acquire()
    if not other_still_holds:
        other.release()
    with pytest.raises(runlock.LockTaken, match="lost its lock .* another run took it meanwhile"):
        lock.reacquire(_new_store(database), [old])
    assert not lock.held


def test_the_lock_is_named_by_the_playbook_file_not_its_folder(database):
    first = runlock.RunLock(_new_store(database), "postgres", "/srv/a/incremental.yml", "db",
                            "run1")
    first.store.ensure_tables()
    first.acquire()
    copy = runlock.RunLock(_new_store(database), "postgres", "/srv/b/incremental.yml", "db",
                           "run2")
    with pytest.raises(LockError, match="'incremental.yml'"):
        copy.acquire()
    named = runlock.RunLock(_new_store(database), "postgres", "/srv/a/other.yml", "db",
                            "run3", name="incremental.yml")
    with pytest.raises(LockError):
        named.acquire()
    runlock.RunLock(_new_store(database), "postgres", "/srv/a/other.yml", "db",
                    "run4").acquire()  # another name, another lock
