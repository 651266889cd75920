"""A run's state in one target database: its lock, its run record, its checkpoints.

Opened before a target's first query and closed after its last, on a
connection of its own (the one that holds the run lock).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg

from sqlrunner.check import ONE_TRANSACTION, RUNS_ALONE, transaction_shape
from sqlrunner.checkpoints import (
    FAILED,
    INTERRUPTED,
    SUCCEEDED,
    UNFINISHED,
    CheckpointStore,
    RunRecord,
)
from sqlrunner.errors import SqlRunnerError
from sqlrunner.runlock import RunLock, wait_until_gone
from sqlrunner.targets import Connection, connect


class StateUnavailable(SqlRunnerError):
    """The target refuses the bookkeeping tables (e.g. no CREATE privilege)."""


@dataclass(frozen=True)
class StateSettings:
    """How a run keeps state: schema, lock patience, resume or restart."""

    schema: str = "sqlrunner"
    lock_timeout: float = 0.0
    restart: bool = False


class RunState:
    """The lock, run record and checkpoints of one run on one target."""

    def __init__(self, connection: Connection, playbook: str, target: str, run_id: str,
                 started_at: datetime, partial: bool, settings: StateSettings,
                 cancelled: threading.Event | None = None) -> None:
        self.connection = connection
        self.dialect = connection.dialect
        self.playbook = playbook
        self.target = target
        self.run_id = run_id
        self.started_at = started_at
        self.partial = partial
        self.settings = settings
        self.cancelled = cancelled
        self.resumed: RunRecord | None = None
        self.done: dict[tuple[str, str], set[str]] = {}
        self.conn: psycopg.Connection | None = None
        self.store: CheckpointStore | None = None
        self.lock: RunLock | None = None
        self.lazy_read_only = False

    def open(self) -> None:
        """Connect, create the tables, take the lock, and find a run to resume."""
        self.conn = connect(self.connection)
        self.store = CheckpointStore(self.conn, self.settings.schema)
        try:
            self.store.ensure_tables()
        except psycopg.errors.InsufficientPrivilege as err:
            self.close()
            raise StateUnavailable(f"cannot create the {self.settings.schema} schema "
                                   f"({err.diag.message_primary}); running without "
                                   "checkpoints, resume or run lock") from None
        # A file that wrote nothing here may still have written elsewhere, through dblink
        # or a foreign table, which gives this transaction no id: where either is
        # possible, every checkpoint keeps the durable commit.
        self.lazy_read_only = (self.dialect == "postgres"
                               and not self.store.can_write_elsewhere())
        self.lock = RunLock(self.store, self.dialect, self.playbook, self.target, self.run_id)
        self.lock.acquire(self.settings.lock_timeout, cancelled=self.cancelled)
        mode = "partial" if self.partial else "full"
        if self.settings.restart:
            self.store.abandon_unfinished(self.playbook, self.target)
        previous = None if self.partial else self.store.latest_run(self.playbook, self.target,
                                                                   mode)
        if previous is not None and previous.status in UNFINISHED:
            self.resumed = previous
            self.run_id = previous.run_id
            self.started_at = previous.started_at.replace(tzinfo=UTC)
            self.done = self.store.done_queries(previous.run_id, self.target)

    def begin(self, run_fingerprint: str, query_count: int) -> None:
        """Record the run as running (a new record, or the resumed one)."""
        assert self.store is not None
        if self.resumed is not None:
            self.store.resume_run(self.resumed)
        else:
            self.store.start_run(self.run_id, self.playbook, self.target,
                                 "partial" if self.partial else "full", run_fingerprint,
                                 query_count, self.started_at)

    def is_done(self, step: str, query: str, digest: str) -> bool:
        """Whether this query, with this SQL, finished in the run being resumed."""
        return digest in self.done.get((step, query), ())

    def checkpointed(self, sql: str, step: str, query: str, file: str,
                     digest: str) -> tuple[str, str | None]:
        """The text to send, and a checkpoint to write afterwards if it cannot go along."""
        assert self.store is not None
        shape = transaction_shape(sql, self.dialect)
        checkpoint = self.store.checkpoint_sql(
            self.run_id, self.target, step, query, file, digest,
            lazy_if_read_only=self.lazy_read_only and shape == ONE_TRANSACTION)
        if shape == RUNS_ALONE:
            return sql, checkpoint
        # A newline ends a trailing -- comment; the semicolon ends the last statement.
        return f"{sql}\n;\n{checkpoint}", None

    def write(self, statement: str) -> None:
        """Execute a bookkeeping statement on the state connection."""
        assert self.conn is not None
        self.conn.execute(statement)

    def enlist(self, worker: psycopg.Connection) -> None:
        """Tie a new query connection to this run (see runlock)."""
        if self.lock is not None:
            self.lock.enlist(worker)

    def settle_lost_query(self, backend_pid: int | None, step: str, query: str,
                          digest: str) -> bool:
        """After a lost connection: make sure its query is no longer running on the server,
        then tell whether it committed (its checkpoint is there)."""
        assert self.conn is not None and self.store is not None
        if backend_pid and not wait_until_gone(self.conn, self.dialect, [backend_pid]):
            raise StateUnavailable(f"the lost query's backend {backend_pid} is still running")
        return self.store.is_recorded(self.run_id, self.target, step, query, digest)

    def finish(self, failed: bool, interrupted: bool) -> None:
        """Record how the run ended and release the lock."""
        if self.store is None or self.conn is None or self.conn.closed:
            return
        status = INTERRUPTED if interrupted else FAILED if failed else SUCCEEDED
        try:
            self.store.finish_run(self.run_id, self.target, status)
            if self.partial and status == SUCCEEDED:
                # A --from-step/--run-query run that succeeds finishes the job by hand: an
                # unfinished full run must not be resumed later and repeat that work.
                self.store.abandon_unfinished(self.playbook, self.target, mode="full")
        except psycopg.Error:
            pass

    def close(self) -> None:
        """Release the lock and close the state connection."""
        if self.lock is not None:
            self.lock.release()
        if self.conn is not None:
            self.conn.close()
