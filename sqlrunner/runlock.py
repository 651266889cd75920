"""The run lock in the target database: one run of a playbook on a target at a time.

On PostgreSQL the lock is a session advisory lock held by the run's bookkeeping
connection, so it dies with the run's process. Every query connection of the
run also holds a *shared* "work" lock; a new run takes that one exclusively
before it starts, so it never runs beside a killed run's query that is still
executing on the server (a killed client's query runs on and commits). Stale
holders are terminated first, which rolls their work back.

Redshift has no advisory locks: there the lock is a row in ``sqlrunner.locks``
written under ``LOCK``, naming the backend that holds it; a row whose backend
is gone is stale and taken over, and the dead run's query backends (recorded
in ``sqlrunner.run_backends``) are terminated and awaited in the same way.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import zlib
from datetime import datetime

import psycopg

from sqlrunner.checkpoints import CheckpointStore, utc_now
from sqlrunner.errors import Interrupted, LockError

_RUN_SPACE = zlib.crc32(b"sqlrunner.run") & 0x7FFFFFFF
_WORK_SPACE = zlib.crc32(b"sqlrunner.work") & 0x7FFFFFFF

_TABLE_DDL = """
CREATE TABLE IF NOT EXISTS {schema}.locks (
    lock_key     varchar(64)  NOT NULL,
    run_id       varchar(32)  NOT NULL,
    backend_pid  integer      NOT NULL,
    host         varchar(256),
    pid          integer,
    acquired_at  timestamp    NOT NULL
);
CREATE TABLE IF NOT EXISTS {schema}.run_backends (
    lock_key     varchar(64)  NOT NULL,
    run_id       varchar(32)  NOT NULL,
    backend_pid  integer      NOT NULL
);
"""


def lock_key(playbook: str, target: str) -> int:
    """A signed 32-bit key naming (playbook, target)."""
    value = zlib.crc32(f"{playbook}\x00{target}".encode())
    return value - (1 << 32) if value >= (1 << 31) else value


def _describe(host: object, pid: object, since: object) -> str:
    when = since.isoformat(sep=" ", timespec="seconds") if isinstance(since, datetime) else since
    return f"{host} pid {pid} since {when} UTC"


class RunLock:
    """Held for a whole run; see the module docstring for how it is kept safe."""

    def __init__(self, store: CheckpointStore, dialect: str, playbook: str, target: str,
                 run_id: str) -> None:
        self.store = store
        self.conn = store.conn
        self.dialect = dialect
        self.playbook = playbook
        self.target = target
        self.run_id = run_id
        self.key = lock_key(playbook, target)
        self.held = False

    # -- acquiring -----------------------------------------------------------------
    def acquire(self, timeout: float = 0.0, stale_wait: float = 30.0,
                cancelled: threading.Event | None = None) -> None:
        """Take the lock, waiting up to ``timeout`` seconds; raise LockError (exit 3).

        ``cancelled`` (an interrupt) ends any wait at once with :class:`Interrupted`.
        """
        self.cancelled = cancelled or threading.Event()
        deadline = time.monotonic() + timeout
        while True:
            holder = self._try_acquire()
            if holder is None:
                self.held = True
                self._fence_stale_work(stale_wait)
                return
            if time.monotonic() >= deadline:
                raise LockError(f"playbook {self.playbook} is already running on target "
                                f"{self.target!r} ({holder})")
            self._pause(min(0.5, max(deadline - time.monotonic(), 0.05)))

    def _pause(self, seconds: float) -> None:
        if self.cancelled.wait(seconds):
            raise Interrupted("interrupted while waiting for the run lock")

    def _try_acquire(self) -> str | None:
        """None when acquired, else a description of the holder."""
        if self.dialect == "redshift":
            return self._try_acquire_row()
        got = self.conn.execute("SELECT pg_try_advisory_lock(%s, %s)",
                                (_RUN_SPACE, self.key)).fetchone()[0]
        if got:
            return None
        running = [r for r in self.store.recent_runs(self.playbook, self.target, limit=5)
                   if r.status == "running"]
        if running:
            run = running[0]
            return f"run {run.run_id[:8]} on {_describe(run.host, run.pid, run.started_at)}"
        return "held by another session"

    def _try_acquire_row(self) -> str | None:
        schema = self.store._schema_sql
        self.conn.execute(_TABLE_DDL.replace("{schema}", schema))
        key = self.store.literal(str(self.key))
        with self.conn.transaction():
            self.conn.execute(f"LOCK TABLE {schema}.locks")
            row = self.conn.execute(
                f"SELECT backend_pid, host, pid, acquired_at FROM {schema}.locks "
                f"WHERE lock_key = {key}").fetchone()
            if row is not None and self._alive([row[0]]):
                return f"held by {_describe(row[1], row[2], row[3])}"
            self.conn.execute(f"DELETE FROM {schema}.locks WHERE lock_key = {key}")
            values = ", ".join(self.store.literal(v) for v in (
                str(self.key), self.run_id, self.conn.info.backend_pid, socket.gethostname(),
                os.getpid(), utc_now()))
            self.conn.execute(f"INSERT INTO {schema}.locks (lock_key, run_id, backend_pid, host, "
                              f"pid, acquired_at) VALUES ({values})")
        return None

    # -- the work of dead runs -----------------------------------------------------
    def _stale_work_pids(self) -> list[int]:
        if self.dialect == "redshift":
            schema = self.store._schema_sql
            rows = self.conn.execute(
                f"SELECT backend_pid FROM {schema}.run_backends "
                f"WHERE lock_key = {self.store.literal(str(self.key))}").fetchall()
            return [r[0] for r in rows if self._alive([r[0]])]
        rows = self.conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = %s "
            "AND objid = %s AND objsubid = 2 AND pid <> pg_backend_pid()",
            (_WORK_SPACE, self.key & 0xFFFFFFFF)).fetchall()
        return sorted({r[0] for r in rows})

    def _fence_stale_work(self, wait: float) -> None:
        """Terminate what a dead run still runs on the server, and wait until it is gone."""
        pids = self._stale_work_pids()
        if not pids:
            return
        terminate_backends(self.conn, pids)
        deadline = time.monotonic() + wait
        while self._stale_work_pids() if self.dialect != "redshift" else self._alive(pids):
            if time.monotonic() > deadline:
                raise LockError(f"a previous run's queries are still running on target "
                                f"{self.target!r} (backends {pids}); try again later")
            self._pause(0.1)
        if self.dialect == "redshift":
            self.conn.execute(f"DELETE FROM {self.store._schema_sql}.run_backends WHERE "
                              f"lock_key = {self.store.literal(str(self.key))}")

    def _alive(self, pids: list[int]) -> bool:
        return bool(alive_backends(self.conn, self.dialect, pids))

    # -- query connections ---------------------------------------------------------
    def enlist(self, worker: psycopg.Connection) -> None:
        """Mark a query connection as doing this run's work (see the module docstring),
        after checking that this run still holds the lock: if its bookkeeping connection
        was lost, another run may have taken over, and no new work may start."""
        admin_pid = self.conn.info.backend_pid
        if self.dialect == "redshift":
            schema = self.store._schema_sql
            key = self.store.literal(str(self.key))
            owned = worker.execute(
                f"SELECT count(*) FROM {schema}.locks WHERE lock_key = {key} "
                f"AND run_id = {self.store.literal(self.run_id)} "
                f"AND backend_pid = {int(admin_pid):d}").fetchone()[0]
            if owned:
                values = ", ".join(self.store.literal(v) for v in (
                    str(self.key), self.run_id, worker.info.backend_pid))
                worker.execute(f"INSERT INTO {schema}.run_backends "
                               f"(lock_key, run_id, backend_pid) VALUES ({values})")
        else:
            owned = worker.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' "
                "AND classid = %s AND objid = %s AND objsubid = 2 AND granted AND pid = %s) "
                "FROM (SELECT pg_advisory_lock_shared(%s, %s)) AS work_lock_taken",
                (_RUN_SPACE, self.key & 0xFFFFFFFF, admin_pid, _WORK_SPACE, self.key),
            ).fetchone()[0]
        if not owned or self.conn.closed:
            raise LockError(f"this run lost its lock on target {self.target!r} (its "
                            "bookkeeping connection was closed); stopping before any more "
                            "work starts")

    def release(self) -> None:
        """Give the lock up (a dead process gives it up by losing its connection)."""
        if not self.held or self.conn.closed:
            return
        try:
            if self.dialect == "redshift":
                schema = self.store._schema_sql
                key = self.store.literal(str(self.key))
                self.conn.execute(f"DELETE FROM {schema}.locks WHERE lock_key = {key}")
                self.conn.execute(f"DELETE FROM {schema}.run_backends WHERE lock_key = {key}")
            else:
                self.conn.execute("SELECT pg_advisory_unlock(%s, %s)", (_RUN_SPACE, self.key))
        except psycopg.Error:
            pass
        self.held = False


def alive_backends(conn: psycopg.Connection, dialect: str, pids: list[int]) -> list[int]:
    """Which of ``pids`` still have a session on the server."""
    if not pids:
        return []
    listed = ", ".join(str(int(p)) for p in pids)
    if dialect == "redshift":
        query = f"SELECT process FROM stv_sessions WHERE process IN ({listed})"
    else:
        query = f"SELECT pid FROM pg_stat_activity WHERE pid IN ({listed})"
    return [r[0] for r in conn.execute(query).fetchall()]


def terminate_backends(conn: psycopg.Connection, pids: list[int]) -> None:
    """Ask the server to end these sessions (their open transactions roll back)."""
    for pid in pids:
        try:
            conn.execute("SELECT pg_terminate_backend(%s)", (int(pid),))
        except psycopg.Error:
            pass


def wait_until_gone(conn: psycopg.Connection, dialect: str, pids: list[int],
                    timeout: float = 30.0) -> bool:
    """Terminate ``pids`` and wait until none is left; False if some outlived ``timeout``."""
    terminate_backends(conn, pids)
    deadline = time.monotonic() + timeout
    while alive_backends(conn, dialect, pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
