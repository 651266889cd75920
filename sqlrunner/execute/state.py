"""A run's state in one target database: its lock, its run record, its checkpoints.

Opened before a target's first query and closed after its last, on a
connection of its own (the one that holds the run lock). When a connection is
lost (a server restart, a crash, a network outage) the run reconnects: it takes
its lock again, unless another run took it meanwhile, stops what it still had
running on the server, and reads its checkpoints again, which tell which
queries committed.
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg

from sqlrunner.errors import StateUnavailable
from sqlrunner.execute.checkpoints import (
    FAILED,
    INTERRUPTED,
    SUCCEEDED,
    UNFINISHED,
    Checkpoints,
    CheckpointStore,
    RunRecord,
)
from sqlrunner.execute.history import history_insert, history_values
from sqlrunner.execute.results import QueryResult
from sqlrunner.execute.runlock import RunLock
from sqlrunner.execute.targets import Connection, connect
from sqlrunner.sqltext.shape import ONE_TRANSACTION, RUNS_ALONE, transaction_shape

DONE, GONE = "done", "gone"
# A checkpoint carries the history rows waiting when this many wait or the last carrier
# left this long ago (seconds): a run of slow queries writes each row with the next
# checkpoint, a run of many quick ones in batches; the run's end record takes the rest.
HISTORY_BATCH, HISTORY_WAIT = 64, 1.0
# A file that can build an unlogged table says so (CREATE UNLOGGED TABLE, SELECT INTO
# UNLOGGED) or empties one to fill it again (TRUNCATE); only its checkpoint looks.
# A file that drops a table says so too: its checkpoint records what it released.
_MAY_BUILD_UNLOGGED = re.compile(r"\b(?:unlogged|truncate|drop)\b", re.IGNORECASE)
# The unlogged tables a file creates (their unqualified names).
_CREATES_UNLOGGED = re.compile(
    r"\bcreate\s+unlogged\s+table\s+(?:if\s+not\s+exists\s+)?"
    r"(?:(?:\w+|\"[^\"]+\")\s*\.\s*)?(\w+|\"[^\"]+\")", re.IGNORECASE)


@dataclass(frozen=True)
class Bookkeeping:
    """What goes with a query: the ``text`` to send (its SQL, then its checkpoint and the
    history rows it carries, when they can go along: ``trailing`` statements that are
    not the file's), or the statement to write ``after`` it; and the history rows
    ``carried``, waiting again if the query does not commit."""

    text: str
    after: str | None
    trailing: int
    carried: tuple[str, ...]


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
                 cancelled: threading.Event | None = None, lock_name: str | None = None
                 ) -> None:
        self.connection = connection
        self.dialect = connection.dialect
        self.playbook = playbook
        self.target = target
        self.run_id = run_id
        self.started_at = started_at
        self.partial = partial
        self.settings = settings
        self.cancelled = cancelled
        self.lock_name = lock_name
        self.resumed: RunRecord | None = None
        self.superseded: RunRecord | None = None  # an unfinished run given up at open
        self.checkpoints = Checkpoints()
        self.conn: psycopg.Connection | None = None
        self.store: CheckpointStore | None = None
        self.lock: RunLock | None = None
        self.lazy_read_only = False
        self.attempt = 1  # the run's attempt: a resumed run's is its record's attempts
        self._backends: list[int] = []  # every bookkeeping backend this run had
        self._history: list[str] = []  # history rows waiting for a carrier (history.py)
        self._history_carried = -HISTORY_WAIT  # when rows last left (time.monotonic)
        self._history_lock = threading.Lock()

    @property
    def done(self) -> dict[tuple[str, str], set[str]]:
        """(step, query) -> fingerprints of the SQL recorded as done in this run."""
        return self.checkpoints.done

    def _connect(self) -> None:
        self.conn = connect(self.connection)
        self._backends.append(self.conn.info.backend_pid)

    def open(self) -> None:
        """Connect, create the tables, take the lock, and find a run to resume."""
        self.close()
        self._connect()
        assert self.conn is not None
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
        self.lock = RunLock(self.store, self.dialect, self.playbook, self.target, self.run_id,
                            self.lock_name)
        self.lock.acquire(self.settings.lock_timeout, cancelled=self.cancelled)
        mode = "partial" if self.partial else "full"
        if self.settings.restart:
            self.store.abandon_unfinished(self.playbook, self.target)
        previous = None if self.partial else self._run_to_resume(mode)
        if previous is not None and previous.status in UNFINISHED:
            self.resumed = previous
            self.attempt = previous.attempts + 1
            self.run_id = previous.run_id
            self.started_at = previous.started_at.replace(tzinfo=UTC)
            self.checkpoints = self.store.checkpoints(previous.run_id, self.target,
                                                      self.dialect)

    def _run_to_resume(self, mode: str) -> RunRecord | None:
        """The latest run under this run's lock on this target, when it is this
        playbook's or a copy's (the same file name in another folder): copies are one
        writer and take over each other's unfinished runs. When the latest run under the
        lock is another playbook's (the full mode beside the incremental one), this
        playbook's own unfinished run is given up: resuming it would redo or undo what
        ran since."""
        assert self.store is not None and self.lock is not None
        own = self.store.latest_run(self.playbook, self.target, mode)
        latest = self.store.latest_run_under_lock(self.lock.name, self.target, mode)
        if latest is None or (own is not None and own.run_id == latest.run_id):
            return own
        if os.path.basename(latest.playbook) == os.path.basename(self.playbook):
            return latest
        if own is not None and own.status in UNFINISHED:
            self.store.abandon(own)
            self.superseded = own
        return None

    def reconnect(self) -> None:
        """After a lost connection: make the bookkeeping connection and the lock whole,
        stop and await whatever this run still runs on the server, and read the run's
        checkpoints again (they tell which of the lost queries committed).

        Raises :class:`~sqlrunner.execute.runlock.LockTaken` if another run took the lock
        meanwhile, and the connection's error while the server cannot be reached (the
        caller waits and calls again).
        """
        assert self.store is not None and self.lock is not None
        if self._healthy():
            self.lock.fence()
        else:
            if self.conn is not None:
                self.conn.close()
            previous = self.store
            self._connect()
            assert self.conn is not None
            self.store = CheckpointStore(self.conn, self.settings.schema)
            # what the first connection found the store to allow holds for this one too
            for found in ("tracks_unlogged", "tracks_lock_name", "has_lock_record",
                          "tracks_history"):
                setattr(self.store, found, getattr(previous, found))
            self.lock.reacquire(self.store, self._backends)
        self.checkpoints = self.store.checkpoints(self.run_id, self.target, self.dialect)

    def _healthy(self) -> bool:
        if self.conn is None or self.conn.closed or self.conn.broken:
            return False
        try:
            self.conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            return False

    def begin(self, run_fingerprint: str, query_count: int) -> None:
        """Record the run as running (a new record, or the resumed one)."""
        assert self.store is not None
        if self.resumed is not None:
            self.store.resume_run(self.resumed)
        else:
            self.store.start_run(self.run_id, self.playbook, self.target,
                                 "partial" if self.partial else "full", run_fingerprint,
                                 query_count, self.started_at,
                                 self.lock.name if self.lock is not None else None)

    def is_done(self, step: str, query: str, digest: str) -> bool:
        """Whether this query, with this SQL, finished in the run being resumed."""
        return digest in self.done.get((step, query), ())

    def checkpoint_of(self, step: str, query: str, digest: str) -> str | None:
        """DONE: the query, with this SQL, finished in this run and what it built is still
        there; GONE: it finished, but a crash emptied an unlogged table it built (it must
        run again before the run goes on); None: not done."""
        if not self.is_done(step, query, digest):
            return None
        return GONE if (step, query, digest) in self.checkpoints.gone else DONE

    def checkpointed(self, sql: str, step: str, query: str, file: str,
                     digest: str, alone: bool = False) -> Bookkeeping:
        """What to send for a query, and what to write after it when its checkpoint cannot
        go along (``alone``: never along, as for a data test, done only once its rows are
        judged). The history rows waiting go with the checkpoint."""
        assert self.store is not None
        shape = RUNS_ALONE if alone else transaction_shape(sql, self.dialect)
        checkpoint = self.store.checkpoint_sql(
            self.run_id, self.target, step, query, file, digest,
            lazy_if_read_only=self.lazy_read_only and shape == ONE_TRANSACTION,
            record_unlogged=(self.dialect == "postgres" and shape == ONE_TRANSACTION
                             and _MAY_BUILD_UNLOGGED.search(sql) is not None))
        carried = self._take_history()
        if carried:
            # After the checkpoint: its lazy commit looks whether the file wrote anything.
            checkpoint += ";\n" + history_insert(self.store, list(carried))
        if shape == RUNS_ALONE:
            return Bookkeeping(sql, checkpoint, 0, carried)
        # A newline ends a trailing -- comment; the semicolon ends the last statement.
        return Bookkeeping(f"{sql}\n;\n{checkpoint}", None, 2 if carried else 1, carried)

    def record_history(self, result: QueryResult, started_at: datetime) -> None:
        """Keep a finished query's history row until a checkpoint or the run's end takes
        it (``started_at``: UTC, without tzinfo)."""
        if self.store is None or not self.store.tracks_history:
            return
        row = history_values(self.store, self.run_id, self.attempt, result, started_at)
        with self._history_lock:
            self._history.append(row)

    def carry_again(self, carried: tuple[str, ...]) -> None:
        """History rows whose carrier did not commit (or may not have): they wait again."""
        if carried:
            with self._history_lock:
                self._history[:0] = carried

    def _take_history(self, every: bool = False) -> tuple[str, ...]:
        """The rows waiting, when ``every``, or enough wait, or the last left long ago."""
        now = time.monotonic()
        with self._history_lock:
            if not self._history or not (
                    every or len(self._history) >= HISTORY_BATCH
                    or now - self._history_carried >= HISTORY_WAIT):
                return ()
            carried, self._history = tuple(self._history), []
            self._history_carried = now
        return carried

    def drop_emptied_tables(self, step: str, query: str, digest: str, sql: str) -> None:
        """Before a query runs again because a crash emptied its unlogged tables: drop the
        emptied ones its file creates, so that a plain CREATE can run again."""
        assert self.store is not None
        names = {name.strip('"') for name in _CREATES_UNLOGGED.findall(sql)}
        self.store.drop_emptied_tables(self.run_id, self.target, step, query, digest, names)

    def write(self, statement: str) -> None:
        """Execute a bookkeeping statement on the state connection."""
        assert self.conn is not None
        self.conn.execute(statement)

    def enlist(self, worker: psycopg.Connection) -> None:
        """Tie a new query connection to this run (see runlock)."""
        if self.lock is not None:
            self.lock.enlist(worker)

    def finish(self, failed: bool, interrupted: bool) -> None:
        """Record how the run ended (errors are the caller's: it may reconnect and call
        again)."""
        if self.store is None or self.conn is None or self.conn.closed:
            return
        status = INTERRUPTED if interrupted else FAILED if failed else SUCCEEDED
        carried = self._take_history(every=True)
        try:
            self.store.finish_run(self.run_id, self.target, status, along=history_insert(
                self.store, list(carried)) if carried else None)
        except BaseException:
            self.carry_again(carried)
            raise
        if self.partial and status == SUCCEEDED:
            # A --from-step/--run-query run that succeeds finishes the job by hand: an
            # unfinished full run must not be resumed later and repeat that work.
            self.store.abandon_unfinished(self.playbook, self.target, mode="full")

    def close(self) -> None:
        """Release the lock and close the state connection."""
        if self.lock is not None:
            self.lock.release()
        if self.conn is not None:
            self.conn.close()
