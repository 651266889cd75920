"""The run lock in the target database: one writer at a time on a target.

The lock protects what is written, not the file that writes it: it is named by
the playbook's ``lock:`` (the model's playbooks share one), else by the
playbook file's name, never by its folder, so copies of a playbook deployed in
two places are one writer; and by the target's name, so the targets of one
playbook are two locks even when they are one database (``--target`` keeps the
first target's name, so the model's playbooks agree on it). PostgreSQL's advisory
locks belong to one database: runs in two databases of one server never meet.

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

On both, the row in ``sqlrunner.locks`` names the process that took the lock
last: a run that lost its connection (a server restart, a crash, a network
outage) takes the lock again only if nobody else took it meanwhile.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import zlib
from datetime import datetime

import psycopg

from sqlrunner.errors import Interrupted, LockError, LockLost, LockTaken
from sqlrunner.execute.checkpoints import CheckpointStore, utc_now

_RUN_SPACE = zlib.crc32(b"sqlrunner.run") & 0x7FFFFFFF
_WORK_SPACE = zlib.crc32(b"sqlrunner.work") & 0x7FFFFFFF
# pg_locks lists every database's advisory locks; only this database's are this lock.
_THIS_DATABASE = (" AND database = (SELECT oid FROM pg_catalog.pg_database "
                  "WHERE datname = current_database())")


def default_lock_name(playbook: str) -> str:
    """The lock of a playbook that names none: its file name, whatever its folder."""
    return os.path.basename(playbook)


def lock_key(name: str, target: str) -> int:
    """A signed 32-bit key naming a lock on a target."""
    value = zlib.crc32(f"{name}\x00{target}".encode())
    return value - (1 << 32) if value >= (1 << 31) else value


def _describe(host: object, pid: object, since: object) -> str:
    when = since.isoformat(sep=" ", timespec="seconds") if isinstance(since, datetime) else since
    return f"{host} pid {pid} since {when} UTC"


class RunLock:
    """Held for a whole run; see the module docstring for how it is kept safe."""

    def __init__(self, store: CheckpointStore, dialect: str, playbook: str, target: str,
                 run_id: str, name: str | None = None) -> None:
        self.store = store
        self.conn = store.conn
        self.dialect = dialect
        self.playbook = playbook
        self.target = target
        self.run_id = run_id  # this process's run id: the token in the lock record
        self.name = name or default_lock_name(playbook)
        self.key = lock_key(self.name, target)
        self.held = False
        self.cancelled = threading.Event()

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
                raise LockError(f"lock {self.name!r} on target {self.target!r} is held: "
                                f"{holder}")
            self._pause(min(0.5, max(deadline - time.monotonic(), 0.05)))

    def reacquire(self, store: CheckpointStore, own_backends: list[int],
                  stale_wait: float = 30.0) -> None:
        """Take the lock again on a new connection after this run lost its own
        (``own_backends``: every bookkeeping backend the run had); raise
        :class:`LockTaken` if another run took it meanwhile.

        A lost session may still hold the lock (a network outage the server has not
        noticed yet): it is ended first. Then the run's backends that still work are
        stopped and awaited, as a new run stops a dead one's.
        """
        self.store, self.conn, self.held = store, store.conn, False
        if not self.store.has_lock_record:
            raise LockTaken(f"this run lost its lock on target {self.target!r}, and the "
                            f"{self.store.schema}.locks table that would tell whether "
                            "another run took it meanwhile is missing; stopping")
        lost = [pid for pid in self._holder_pids() if pid in own_backends
                and pid != self.conn.info.backend_pid]
        if lost and not wait_until_gone(self.conn, self.dialect, lost, stale_wait):
            raise LockError(f"this run's lost connection (backend {lost[0]}) is still "
                            f"open on target {self.target!r}; stopping")
        if self.dialect == "redshift":
            holder = self._try_acquire_row(reacquire=True)
        else:
            got = self.conn.execute("SELECT pg_try_advisory_lock(%s, %s)",
                                    (_RUN_SPACE, self.key)).fetchone()[0]
            holder = None if got else self._holder()
            if holder is None:
                holder = self._claim(reacquire=True)
        if holder is not None:
            raise LockTaken(f"this run lost its lock {self.name!r} on target "
                            f"{self.target!r} and another run took it meanwhile ({holder}); "
                            "stopping")
        self.held = True
        self._fence_stale_work(stale_wait)

    def _holder_pids(self) -> list[int]:
        """The backends holding the lock now (only ever one, or none)."""
        if self.dialect == "redshift":
            rows = self.conn.execute(
                f"SELECT backend_pid FROM {self.store._schema_sql}.locks WHERE lock_key = "
                f"{self.store.literal(str(self.key))} AND run_id = "
                f"{self.store.literal(self.run_id)}").fetchall()
            return alive_backends(self.conn, self.dialect, [r[0] for r in rows])
        rows = self.conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = %s "
            "AND objid = %s AND objsubid = 2 AND granted" + _THIS_DATABASE,
            (_RUN_SPACE, self.key & 0xFFFFFFFF)).fetchall()
        return [r[0] for r in rows]

    def _pause(self, seconds: float) -> None:
        if self.cancelled.wait(seconds):
            raise Interrupted("interrupted while waiting for the run lock")

    def _try_acquire(self) -> str | None:
        """None when acquired, else a description of the holder."""
        if self.dialect == "redshift":
            return self._try_acquire_row()
        got = self.conn.execute("SELECT pg_try_advisory_lock(%s, %s)",
                                (_RUN_SPACE, self.key)).fetchone()[0]
        if not got:
            return self._holder()
        if self.store.has_lock_record:
            self._claim()
        return None

    def _claim(self, reacquire: bool = False) -> str | None:
        """PostgreSQL, with the advisory lock held: record this process as the holder.
        Again after a lost connection only if the record still names this run: else
        release the lock and describe who took it meanwhile."""
        schema = self.store._schema_sql
        key = self.store.literal(str(self.key))
        if reacquire:
            row = self.conn.execute(
                f"SELECT run_id, host, pid, acquired_at FROM {schema}.locks "
                f"WHERE lock_key = {key}").fetchone()
            if row is None or row[0] != self.run_id:
                self.conn.execute("SELECT pg_advisory_unlock(%s, %s)", (_RUN_SPACE, self.key))
                return (self._who(row[1], row[2], row[3]) if row is not None
                        else "its lock record was removed")
            self.conn.execute(f"UPDATE {schema}.locks SET backend_pid = "
                              f"{int(self.conn.info.backend_pid):d} WHERE lock_key = {key}")
            return None
        # Without waiting for the WAL flush: the run record written next waits for it.
        self.conn.execute(f"SET LOCAL synchronous_commit = off;\n"
                          f"DELETE FROM {schema}.locks WHERE lock_key = {key};\n"
                          f"INSERT INTO {schema}.locks (lock_key, run_id, backend_pid, host, "
                          f"pid, acquired_at) VALUES ({self._record_values()})")
        return None

    def _record_values(self) -> str:
        return ", ".join(self.store.literal(v) for v in (
            str(self.key), self.run_id, self.conn.info.backend_pid, socket.gethostname(),
            os.getpid(), utc_now()))

    def _holder(self) -> str:
        """Who holds the lock (PostgreSQL): from the lock record, else this playbook's
        running run."""
        row = None
        if self.store.has_lock_record:
            row = self.conn.execute(
                f"SELECT host, pid, acquired_at FROM {self.store._schema_sql}.locks "
                f"WHERE lock_key = {self.store.literal(str(self.key))}").fetchone()
        if row is not None:
            return self._who(*row)
        running = [r for r in self.store.recent_runs(self.playbook, self.target, limit=5)
                   if r.status == "running"]
        if running:
            run = running[0]
            return (f"playbook {run.playbook} is already running (run {run.run_id[:8]} on "
                    f"{_describe(run.host, run.pid, run.started_at)})")
        return "already running in another session"

    def _who(self, host: object, pid: object, since: object) -> str:
        """The holder (host, pid): its running run's playbook, if it has one."""
        run = self.store.running_run_of(host, pid)
        if run is None:
            return f"already running on {_describe(host, pid, since)}"
        return (f"playbook {run.playbook} is already running (run {run.run_id[:8]} on "
                f"{_describe(host, pid, since)})")

    def _try_acquire_row(self, reacquire: bool = False) -> str | None:
        """Redshift: take the lock row if it is free or stale (again after a lost
        connection: only if it still names this run)."""
        schema = self.store._schema_sql
        key = self.store.literal(str(self.key))
        with self.conn.transaction():
            self.conn.execute(f"LOCK TABLE {schema}.locks")
            row = self.conn.execute(
                f"SELECT backend_pid, host, pid, acquired_at, run_id FROM {schema}.locks "
                f"WHERE lock_key = {key}").fetchone()
            if reacquire and (row is None or row[4] != self.run_id):
                return (self._who(row[1], row[2], row[3]) if row is not None
                        else "its lock record was removed")
            if not reacquire and row is not None and self._alive([row[0]]):
                return self._who(row[1], row[2], row[3])
            self.conn.execute(f"DELETE FROM {schema}.locks WHERE lock_key = {key}")
            self.conn.execute(f"INSERT INTO {schema}.locks (lock_key, run_id, backend_pid, host, "
                              f"pid, acquired_at) VALUES ({self._record_values()})")
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
            "AND objid = %s AND objsubid = 2 AND pid <> pg_backend_pid()" + _THIS_DATABASE,
            (_WORK_SPACE, self.key & 0xFFFFFFFF)).fetchall()
        return sorted({r[0] for r in rows})

    def fence(self, wait: float = 30.0) -> None:
        """Stop and await every backend that still does this lock's work (after this run
        lost a query's connection, its own)."""
        self._fence_stale_work(wait)

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
            # Registered before the ownership check, as the work lock is taken before it
            # on PostgreSQL: a run taking the lock over between the two then sees this
            # backend and stops it, instead of missing it.
            values = ", ".join(self.store.literal(v) for v in (
                str(self.key), self.run_id, worker.info.backend_pid))
            worker.execute(f"INSERT INTO {schema}.run_backends "
                           f"(lock_key, run_id, backend_pid) VALUES ({values})")
            owned = worker.execute(
                f"SELECT count(*) FROM {schema}.locks WHERE lock_key = {key} "
                f"AND run_id = {self.store.literal(self.run_id)} "
                f"AND backend_pid = {int(admin_pid):d}").fetchone()[0]
            if not owned:
                worker.execute(f"DELETE FROM {schema}.run_backends WHERE lock_key = {key} "
                               f"AND backend_pid = {int(worker.info.backend_pid):d}")
        else:
            owned = worker.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' "
                "AND classid = %s AND objid = %s AND objsubid = 2 AND granted AND pid = %s) "
                "FROM (SELECT pg_advisory_lock_shared(%s, %s)) AS work_lock_taken",
                (_RUN_SPACE, self.key & 0xFFFFFFFF, admin_pid, _WORK_SPACE, self.key),
            ).fetchone()[0]
        if not owned or self.conn.closed:
            raise LockLost(f"this run lost its lock on target {self.target!r} (its "
                           "bookkeeping connection was closed); no more work starts until "
                           "it holds the lock again")

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


def lock_held(conn: psycopg.Connection, dialect: str, name: str, target: str) -> bool | None:
    """Whether some run holds the lock ``name`` on ``target`` now (``sqlrunner status``:
    a run recorded as running while nobody holds its lock has died). None on Redshift,
    whose lock rows only tell with the backends they name."""
    if dialect == "redshift":
        return None
    row = conn.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s "
        "AND objid = %s AND objsubid = 2 AND granted" + _THIS_DATABASE,
        (_RUN_SPACE, lock_key(name, target) & 0xFFFFFFFF)).fetchone()
    return bool(row and row[0])


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
