"""Execute a plan: targets in parallel, steps in order, the queries of a step in parallel.

Each SQL file is sent whole, in one round trip, on an autocommit connection,
so a file without its own BEGIN/COMMIT runs as one implicit transaction: it
either applies completely or not at all. Its checkpoint travels in the same
string (see checkpoints.py). Transient errors are retried on a fresh
connection; a lost connection is settled first (the old query is stopped on
the server and its checkpoint looked up), so no file is ever applied twice.
A target stops after the first step in which a query failed; the failed
query's siblings still finish.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import psycopg

from sqlrunner import rowcounts
from sqlrunner.checkpoints import fingerprint
from sqlrunner.errorpos import SourcePosition, position_in, user_error
from sqlrunner.errors import LockError, QueryError, SqlRunnerError
from sqlrunner.plan import RunPlan, StepPlan, TargetPlan, replan_target
from sqlrunner.render import RenderedQuery
from sqlrunner.results import (
    DONE_BEFORE,
    FAILED,
    SKIPPED,
    SUCCEEDED,
    QueryOutput,
    QueryResult,
    RunResult,
    TargetFailure,
)
from sqlrunner.retry import RetryPolicy, call_with_retries, is_connection_loss
from sqlrunner.secrets import SecretRegistry
from sqlrunner.state import RunState, StateSettings, StateUnavailable
from sqlrunner.targets import Connection, ConnectionPool, connection_for
from sqlrunner.upsert import upsert_sql


class Reporter(Protocol):
    """Receives the events of a run (called from several threads)."""

    def run_started(self, plan: RunPlan) -> None: ...
    def step_started(self, target: str, step: StepPlan) -> None: ...
    def query_started(self, query: RenderedQuery) -> None: ...
    def query_retrying(self, query: RenderedQuery, attempt: int, error: str,
                       wait: float) -> None: ...
    def query_finished(self, result: QueryResult) -> None: ...
    def target_failed(self, failure: TargetFailure) -> None: ...
    def note(self, target: str, message: str) -> None: ...
    def run_finished(self, result: RunResult) -> None: ...


class SilentReporter:
    """A reporter that reports nothing (library use, tests)."""

    def run_started(self, plan: RunPlan) -> None: ...
    def step_started(self, target: str, step: StepPlan) -> None: ...
    def query_started(self, query: RenderedQuery) -> None: ...
    def query_retrying(self, query: RenderedQuery, attempt: int, error: str,
                       wait: float) -> None: ...
    def query_finished(self, result: QueryResult) -> None: ...
    def target_failed(self, failure: TargetFailure) -> None: ...
    def note(self, target: str, message: str) -> None: ...
    def run_finished(self, result: RunResult) -> None: ...


@dataclass(frozen=True)
class ExecutionSettings:
    """How queries are executed: parallelism, retries, timeouts, state."""

    max_parallel: int | None = None
    show_query_output: bool = False
    retries: int = 3
    retry_backoff: float = 1.0
    run_timeout: float | None = None
    checkpoints: bool = True
    state: StateSettings = StateSettings()
    embedded_dir: str | None = None


class _Sent:
    """What one attempt at a query produced."""

    def __init__(self, rows: int | None, output: QueryOutput | None):
        self.rows, self.output = rows, output


class Executor:
    """Runs a :class:`RunPlan` and collects a :class:`RunResult`."""

    def __init__(
        self,
        plan: RunPlan,
        *,
        reporter: Reporter | None = None,
        settings: ExecutionSettings | None = None,
        secrets: SecretRegistry | None = None,
        connection_factory: Callable[..., Connection] = connection_for,
    ) -> None:
        self.plan = plan
        self.reporter = reporter or SilentReporter()
        self.settings = settings or ExecutionSettings()
        self.secrets = secrets or SecretRegistry()
        self.connection_factory = connection_factory
        self._lock = threading.Lock()
        self._active: dict[int, psycopg.Connection] = {}
        self._cancelled = threading.Event()
        self._timed_out = False
        self._result = RunResult(run_id=plan.run_id, playbook=plan.playbook.path)
        self._types = {tp.target.name: tp.target.type for tp in plan.targets}
        self._digests: dict[str, str] = {}

    # -- the run -----------------------------------------------------------------------
    def run(self) -> RunResult:
        """Execute every target's plan; returns when all targets are done."""
        started = time.perf_counter()
        self.reporter.run_started(self.plan)
        for target_plan in self.plan.targets:
            self.secrets.add(target_plan.target.password)
        timer = None
        if self.settings.run_timeout:
            timer = threading.Timer(self.settings.run_timeout, self._time_out)
            timer.daemon = True
            timer.start()
        finished = [threading.Event() for _ in self.plan.targets]

        def run_target(target_plan: TargetPlan, done: threading.Event) -> None:
            try:
                self._run_target(target_plan)
            finally:
                done.set()

        for target_plan, done in zip(self.plan.targets, finished, strict=True):
            threading.Thread(target=run_target, args=(target_plan, done), daemon=True,
                             name=f"target-{target_plan.target.name}").start()
        # Waiting on events, not Thread.join: a KeyboardInterrupt inside join() can leave
        # a live thread marked as stopped (CPython), and the run would end too early.
        try:
            _wait_all(finished)
        except KeyboardInterrupt:
            # SIGINT (and SIGTERM, which the CLI turns into one): cancel on the server,
            # then wait for the targets to record what happened.
            self.cancel()
            _wait_all(finished)
        finally:
            if timer is not None:
                timer.cancel()
        self._result.seconds = time.perf_counter() - started
        self._result.interrupted = self._cancelled.is_set() and not self._timed_out
        self._result.timed_out = self._timed_out
        self.reporter.run_finished(self._result)
        return self._result

    def cancel(self) -> None:
        """Stop starting queries and cancel the running ones on the server."""
        self._cancelled.set()
        with self._lock:
            active = list(self._active.values())
        for conn in active:
            try:
                conn.cancel_safe(timeout=5)
            except (psycopg.Error, OSError):
                pass

    def _time_out(self) -> None:
        self._timed_out = True
        self.reporter.note("*", f"run timed out after {self.settings.run_timeout}s: "
                                "cancelling")
        self.cancel()

    # -- one target ----------------------------------------------------------------------
    def _run_target(self, target_plan: TargetPlan) -> None:
        name = target_plan.target.name
        if target_plan.init_error:
            self._fail_target(TargetFailure(name, target_plan.init_error))
            return
        try:
            connection = self.connection_factory(target_plan.target,
                                                 self.settings.embedded_dir)
        except SqlRunnerError as err:
            self._fail_target(TargetFailure(name, self.secrets.mask(str(err))))
            return
        state = self._open_state(connection, target_plan)
        if state is False:
            return
        failed = True
        try:
            if state is not None and state.resumed is not None:
                target_plan = replan_target(self.plan, target_plan, state.run_id,
                                            state.started_at)
                broken = next((q.error for q in target_plan.queries if q.error), None)
                if broken is not None:
                    raise broken
                done = sum(len(v) for v in state.done.values())
                self.reporter.note(name, f"resuming run {state.run_id[:8]} of "
                                         f"{state.resumed.started_at:%Y-%m-%d %H:%M:%S} UTC "
                                         f"({done} queries already done)")
                with self._lock:
                    self._result.resumed_from = state.run_id
            if state is not None:
                digest = fingerprint("\x00".join(self._digest(q.sql or "")
                                                 for q in target_plan.queries))
                state.begin(digest, len(target_plan.queries))
            failed = self._run_steps(target_plan, connection, state)
        except Exception as err:  # noqa: BLE001 - a target thread must record, not die
            # Whatever broke outside a query (the state connection, a step's check, a
            # re-render) fails the target's queries not yet recorded, not the process.
            self._fail_unrecorded(target_plan, self.secrets.mask(_one_line(err)))
            failed = True
        finally:
            if state is not None:
                state.finish(failed, self._cancelled.is_set())
                state.close()

    def _fail_unrecorded(self, target_plan: TargetPlan, message: str) -> None:
        """Record every query of the target that has no result yet: the first failed."""
        with self._lock:
            seen = {(q.target, q.step, q.query) for q in self._result.queries}
        first = True
        for query in target_plan.queries:
            if (query.target, query.step, query.query) in seen:
                continue
            self._record(QueryResult(query.target, query.step, query.query, query.file,
                                     FAILED if first else SKIPPED,
                                     error=message if first else None))
            first = False

    def _open_state(self, connection: Connection,
                    target_plan: TargetPlan) -> RunState | None | bool:
        """The run's state on this target; None without checkpoints; False if it cannot run."""
        if not self.settings.checkpoints:
            return None
        name = target_plan.target.name
        state = RunState(connection, os.path.realpath(self.plan.playbook.path), name,
                         self.plan.run_id, self.plan.started_at, self.plan.partial,
                         self.settings.state, self._cancelled)
        try:
            state.open()
            return state
        except StateUnavailable as err:
            self.reporter.note(name, str(err))
            return None
        except LockError as err:
            state.close()
            with self._lock:
                self._result.lock_conflicts.append(TargetFailure(name, str(err)))
            self.reporter.target_failed(TargetFailure(name, str(err)))
            return False
        except (SqlRunnerError, psycopg.Error) as err:
            state.close()
            message = self.secrets.mask(str(err).strip().splitlines()[0])
            for index, step in enumerate(target_plan.steps):
                for query in step.queries:
                    self._record(QueryResult(query.target, query.step, query.query, query.file,
                                             FAILED if index == 0 else SKIPPED,
                                             error=message if index == 0 else None))
            return False

    def _run_steps(self, target_plan: TargetPlan, connection: Connection,
                   state: RunState | None) -> bool:
        """Run the steps in order; True if a query failed."""
        name = target_plan.target.name
        pool = ConnectionPool(connection, on_connect=state.enlist if state else None)
        workers = self.settings.max_parallel or max(
            (len(s.queries) for s in target_plan.steps), default=1)
        failed = False
        # Done queries are skipped only up to the first step with something left to do:
        # from there on everything runs, since later steps may read what it rewrites.
        resuming = state is not None and state.resumed is not None
        try:
            with ThreadPoolExecutor(max_workers=max(workers, 1),
                                    thread_name_prefix=f"{name}-query") as threads:
                for step in target_plan.steps:
                    if failed or self._cancelled.is_set():
                        for query in step.queries:
                            self._record(self._skipped(query))
                        continue
                    if step.skip_if_empty and self._is_empty(pool, step.skip_if_empty):
                        for query in step.queries:
                            self._record(self._skipped(
                                query, f"{step.skip_if_empty} has no rows"))
                        continue
                    self.reporter.step_started(name, step)

                    def run(query: RenderedQuery, may_skip: bool = resuming) -> QueryResult:
                        return self._run_query(pool, query, state, may_skip)

                    if len(step.queries) == 1:
                        results = [run(step.queries[0])]
                    else:
                        results = list(threads.map(run, step.queries))
                    failed = any(r.status == FAILED for r in results)
                    if any(r.note != DONE_BEFORE for r in results):
                        resuming = False
        finally:
            pool.close()
        return failed

    def _is_empty(self, pool: ConnectionPool, table: str) -> bool:
        """Whether ``table`` has no rows (or does not exist): the step skips itself.

        Any other error is raised as a QueryError naming the setting.
        """
        conn = pool.acquire()
        try:
            with self._tracked(conn):
                return conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is None
        except psycopg.errors.UndefinedTable:
            return True
        except psycopg.Error as err:
            raise QueryError(f"skip_if_empty: {table}: {_one_line(err)}") from None
        finally:
            pool.release(conn)

    @contextmanager
    def _tracked(self, conn: psycopg.Connection) -> Iterator[None]:
        """Register ``conn`` as busy, so that an interrupt or timeout cancels its query."""
        key = id(conn)
        with self._lock:
            self._active[key] = conn
        try:
            if self._cancelled.is_set():
                raise Cancelled("the run was cancelled")
            yield
        finally:
            with self._lock:
                self._active.pop(key, None)

    def _fail_target(self, failure: TargetFailure) -> None:
        with self._lock:
            self._result.target_failures.append(failure)
        self.reporter.target_failed(failure)

    def _record(self, result: QueryResult) -> None:
        with self._lock:
            self._result.queries.append(result)
        self.reporter.query_finished(result)

    def _skipped(self, query: RenderedQuery, note: str | None = None) -> QueryResult:
        return QueryResult(query.target, query.step, query.query, query.file, SKIPPED,
                           note=note)

    # -- one query -----------------------------------------------------------------------
    def _session(self, query: RenderedQuery) -> tuple[list[str], list[str]]:
        """SET commands around one query (its timeout, its Redshift query group)."""
        before = list(query.settings.get("session_before", ()))
        after = list(query.settings.get("session_after", ()))
        timeout = query.settings.get("timeout")
        if timeout:
            before.append(f"SET statement_timeout = {int(float(timeout) * 1000):d}")
            after.append("RESET statement_timeout")
        return before, after

    def _digest(self, sql: str) -> str:
        """The fingerprint of a query's SQL, computed once per text. Masked: rotating
        credentials rendered into SQL must not make a done query new."""
        digest = self._digests.get(sql)
        if digest is None:
            digest = self._digests[sql] = fingerprint(self.secrets.mask(sql))
        return digest

    def _dialect(self, query: RenderedQuery) -> str:
        return "redshift" if self._types.get(query.target) == "redshift" else "postgres"

    def _policy(self, query: RenderedQuery) -> RetryPolicy:
        return RetryPolicy(retries=int(query.settings.get("retries", self.settings.retries)),
                           backoff=float(query.settings.get("retry_backoff",
                                                            self.settings.retry_backoff)))

    def _run_query(self, pool: ConnectionPool, query: RenderedQuery,
                   state: RunState | None, may_skip: bool = False) -> QueryResult:
        if query.error is not None or query.sql is None:
            result = QueryResult(query.target, query.step, query.query, query.file, FAILED,
                                 error=self.secrets.mask(str(query.error or "not rendered")))
            self._record(result)
            return result
        sql = query.sql
        digest = self._digest(sql)
        if may_skip and state is not None and state.is_done(query.step, query.query, digest):
            result = self._skipped(query, DONE_BEFORE)
            self._record(result)
            return result
        if self._cancelled.is_set():
            result = self._skipped(query)
            self._record(result)
            return result
        self.reporter.query_started(query)
        started = time.perf_counter()
        offset, length = 0, len(sql)  # where the file's SQL lies in the text sent
        if query.upsert is not None:
            try:
                wrapped = upsert_sql(sql, query.upsert, self._dialect(query))
            except SqlRunnerError as err:
                result = QueryResult(query.target, query.step, query.query, query.file, FAILED,
                                     error=f"{query.file}: {err}")
                self._record(result)
                return result
            sql, offset, length = wrapped.text, wrapped.select_offset, wrapped.select_length
        text, after = (state.checkpointed(sql, query.step, query.query, query.file, digest)
                       if state is not None else (sql, None))
        retries = 0

        def on_retry(attempt: int, err: BaseException, wait: float) -> None:
            nonlocal retries
            retries = attempt
            self.reporter.query_retrying(query, attempt, self.secrets.mask(_one_line(err)),
                                         wait)

        def attempt(number: int) -> _Sent:
            return self._attempt(pool, query, text, after, digest, state, fresh=number > 1)

        try:
            sent = call_with_retries(attempt, self._policy(query), on_retry,
                                     sleep=self._sleep,
                                     should_retry=lambda: not self._cancelled.is_set())
            result = QueryResult(query.target, query.step, query.query, query.file, SUCCEEDED,
                                 rows=sent.rows, seconds=time.perf_counter() - started,
                                 retries=retries, output=sent.output)
        except psycopg.Error as err:
            result = self._failure(query, err, time.perf_counter() - started, retries, offset,
                                   length)
        except SqlRunnerError as err:
            result = QueryResult(query.target, query.step, query.query, query.file, FAILED,
                                 seconds=time.perf_counter() - started, retries=retries,
                                 error=self.secrets.mask(str(err)))
        self._record(result)
        return result

    def _sleep(self, seconds: float) -> None:
        """Tenacity's wait between attempts, cut short by an interrupt or timeout."""
        if self._cancelled.wait(seconds):
            raise Cancelled("the run was cancelled")

    def _attempt(self, pool: ConnectionPool, query: RenderedQuery, text: str,
                 after: str | None, digest: str, state: RunState | None,
                 fresh: bool) -> _Sent:
        conn = pool.acquire(fresh=fresh)
        backend_pid = conn.info.backend_pid
        sent = False
        try:
            with self._tracked(conn):
                before, reset = self._session(query)
                try:
                    for statement in before:
                        conn.execute(statement)
                    sent = True
                    rows, output = self._send(conn, text,
                                              checkpointed=state is not None and not after)
                    _require_idle(conn)
                finally:
                    _reset_session(conn, reset, pool)
            if after is not None and state is not None:
                state.write(after)
            return _Sent(rows, output)
        except psycopg.Error as err:
            if sent and is_connection_loss(err):
                pool.discard(conn)
                if state is None:
                    raise OutcomeUnknown(f"the connection was lost while the query ran, so "
                                         f"whether it committed is unknown: {_one_line(err)}"
                                         ) from None
                if self._settle(state, backend_pid, query, digest):
                    return _Sent(None, None)
            raise
        finally:
            pool.release(conn)

    def _settle(self, state: RunState, backend_pid: int | None, query: RenderedQuery,
                digest: str) -> bool:
        """After a lost connection: True if the query committed; False if it surely did not
        (then it may be retried); OutcomeUnknown when that cannot be told."""
        try:
            return state.settle_lost_query(backend_pid, query.step, query.query, digest)
        except Exception as err:  # noqa: BLE001 - any doubt means: do not send it again
            raise OutcomeUnknown(f"the connection was lost while the query ran and its "
                                 f"outcome cannot be checked: {_one_line(err)}") from None

    def _send(self, conn: psycopg.Connection, sql: str,
              checkpointed: bool) -> tuple[int | None, QueryOutput | None]:
        """Send ``sql`` whole; the rows of the file's last statement, and its output if asked.

        With a checkpoint appended, the file's own last statement is the one before it.
        """
        output = None
        if not self.settings.show_query_output and rowcounts.can_drop_rows():
            counts = rowcounts.send_counting_rows(conn, sql)
        else:
            counts, output = self._send_with_cursor(conn, sql)
        if checkpointed:
            counts.pop()
        return (counts[-1] if counts else None), output

    def _send_with_cursor(self, conn: psycopg.Connection,
                          sql: str) -> tuple[list[int], QueryOutput | None]:
        """Send ``sql`` through a cursor: each statement's row count, and the rows of the
        last statement that returned any, when query output is shown."""
        counts: list[int] = []
        output = None
        with conn.cursor() as cur:
            cur.execute(sql)
            while True:
                counts.append(cur.rowcount)
                if self.settings.show_query_output and cur.description is not None:
                    fetched = cur.fetchall()
                    if fetched:
                        output = QueryOutput(tuple(c.name for c in cur.description),
                                             tuple(tuple(r) for r in fetched))
                if not cur.nextset():
                    return counts, output

    def _failure(self, query: RenderedQuery, err: psycopg.Error, seconds: float,
                 retries: int, offset: int = 0, length: int | None = None) -> QueryResult:
        """A failed query's record. The file's SQL, as sent, is ``length`` characters from
        ``offset`` (the runner's statements may come before and after it)."""
        diag = err.diag
        text = str(err).strip()
        message = diag.message_primary or (text.splitlines()[0] if text else type(err).__name__)
        sqlstate = diag.sqlstate or getattr(err, "sqlstate", None)
        sent = (query.sql or "")[:length]
        rendered, message = user_error(message, sqlstate, diag.statement_position, offset, sent)
        where = _where(query, rendered)
        line = column = excerpt = None
        if where is not None:
            line, column, excerpt = where.line, where.column, where.excerpt()
        text = f"ERROR {sqlstate}: {message}" if sqlstate else message
        if line is not None:
            text = f"{query.file}:{line}:{column}: {text}"
        return QueryResult(query.target, query.step, query.query, query.file, FAILED,
                           seconds=seconds, error=self.secrets.mask(text), sqlstate=sqlstate,
                           line=line, column=column, retries=retries,
                           excerpt=self.secrets.mask(excerpt) if excerpt else None)


class Cancelled(QueryError):
    """The run was interrupted or timed out before this query could finish."""


class OutcomeUnknown(QueryError):
    """A query's connection broke mid-flight and whether it committed cannot be known."""


def _require_idle(conn: psycopg.Connection) -> None:
    """A file must not leave a transaction open: its work (and checkpoint) would be lost."""
    status = conn.info.transaction_status
    if status != psycopg.pq.TransactionStatus.IDLE:
        try:
            conn.rollback()
        finally:
            conn.close()
        raise QueryError("the file left a transaction open (BEGIN without COMMIT); "
                         "it was rolled back")


def _reset_session(conn: psycopg.Connection, statements: list[str],
                   pool: ConnectionPool) -> None:
    """Undo a query's own SETs; a connection that cannot be reset is not reused."""
    if not statements or conn.closed:
        return
    try:
        for statement in statements:
            conn.execute(statement)
    except psycopg.Error:
        pool.discard(conn)


def _where(query: RenderedQuery, rendered: int | None) -> SourcePosition | None:
    """Where the 0-based offset ``rendered`` in the query's SQL falls in its *file*.

    For a template, the rendered position is mapped back to the source.
    """
    sql = query.sql or ""
    if rendered is None or not 0 <= rendered <= len(sql):
        return None
    if query.source_map is not None and query.source is not None:
        return position_in(query.source, query.source_map.source_offset(rendered) + 1)
    return position_in(sql, rendered + 1)


def _wait_all(events: list[threading.Event]) -> None:
    for event in events:
        while not event.wait(0.05):
            pass


def _one_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__

