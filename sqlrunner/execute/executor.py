"""Execute a plan: targets in parallel, steps in order, the queries of a step in parallel.

Each SQL file is sent whole, in one round trip, on an autocommit connection,
so a file without its own BEGIN/COMMIT runs as one implicit transaction: it
either applies completely or not at all. Its checkpoint travels in the same
string (see checkpoints.py). Transient errors are retried on a fresh
connection. A lost connection (a killed backend, a server restart or crash, a
network outage) is ridden out by the target: once the step's other queries are
done, it reconnects, waiting up to ``reconnect_timeout`` seconds for the server,
takes its lock again, stops what it still ran on the server, reads its
checkpoints (which tell whether the lost queries committed) and goes on from
there, as a resumed run would: no file is ever applied twice.
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
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

import psycopg

from sqlrunner.errors import (
    Cancelled,
    ConnectFailed,
    ConnectionLost,
    DataTestFailed,
    LockError,
    LockLost,
    OutcomeUnknown,
    QueryError,
    SqlRunnerError,
    StateUnavailable,
    first_line,
)
from sqlrunner.execute import rowcounts
from sqlrunner.execute.checkpoints import fingerprint, utc_now
from sqlrunner.execute.datatest import SHOWN_ROWS, check_no_rows, offending_table
from sqlrunner.execute.results import (
    DONE_BEFORE,
    FAILED,
    INTERRUPTED,
    SKIPPED,
    SUCCEEDED,
    QueryOutput,
    QueryResult,
    RunResult,
    TargetFailure,
)
from sqlrunner.execute.retry import (
    DEFAULT_OUTAGE,
    RetryPolicy,
    call_through_outage,
    call_with_retries,
    is_connection_loss,
    is_unavailable,
)
from sqlrunner.execute.state import DONE, GONE, Bookkeeping, RunState, StateSettings
from sqlrunner.execute.targets import Connection, ConnectionPool, connection_for
from sqlrunner.plan import RunPlan, StepPlan, TargetPlan
from sqlrunner.render import RenderedQuery
from sqlrunner.secrets import SecretRegistry
from sqlrunner.sqltext.position import SourcePosition, position_in, user_error
from sqlrunner.sqltext.upsert import upsert_sql


class Reporter(Protocol):
    """Receives the events of a run (called from several threads). ``query_retrying``'s
    ``wait`` is None for a query whose connection was lost: it is settled, and retried if
    it did not commit, once the target has reconnected."""

    def run_started(self, plan: RunPlan) -> None: ...
    def step_started(self, target: str, step: StepPlan) -> None: ...
    def query_started(self, query: RenderedQuery) -> None: ...
    def query_retrying(self, query: RenderedQuery, attempt: int, error: str,
                       wait: float | None) -> None: ...
    def query_finished(self, result: QueryResult) -> None: ...
    def target_failed(self, failure: TargetFailure) -> None: ...
    def note(self, target: str, message: str) -> None: ...
    def run_finished(self, result: RunResult) -> None: ...


class SilentReporter(Reporter):
    """A reporter that reports nothing (library use, tests): the Protocol's methods,
    which do nothing."""


@dataclass(frozen=True)
class ExecutionSettings:
    """How queries are executed: parallelism, retries, timeouts, state."""

    max_parallel: int | None = None
    show_query_output: bool = False
    retries: int = 3
    retry_backoff: float = 1.0
    run_timeout: float | None = None
    checkpoints: bool = True  # checkpoints, resume and the run lock in the target
    state_schema: str = "sqlrunner"
    lock_timeout: float = 0.0
    restart: bool = False
    embedded_dir: str | None = None
    reconnect_timeout: float = DEFAULT_OUTAGE  # how long a target may stay unreachable

    @property
    def state(self) -> StateSettings:
        """The run state's share of the settings."""
        return StateSettings(schema=self.state_schema, lock_timeout=self.lock_timeout,
                             restart=self.restart)


# Renders a target's plan again as the run ``run_id`` that started at ``started_at`` did
# (a resumed run sends the SQL of the run it resumes): ``(target_plan, run_id, started_at)``.
Replan = Callable[[TargetPlan, str, datetime], TargetPlan]


def _cannot_replan(target_plan: TargetPlan, run_id: str, started_at: datetime) -> TargetPlan:
    raise SqlRunnerError("this run resumes an unfinished one, and its executor was given no "
                         "way to render the queries again (Executor(replan=...))")


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
        replan: Replan | None = None,
    ) -> None:
        self.plan = plan
        self.replan = replan or _cannot_replan
        self.reporter = reporter or SilentReporter()
        self.settings = settings or ExecutionSettings()
        self.secrets = secrets or SecretRegistry()
        self.connection_factory = connection_factory
        self._lock = threading.Lock()
        self._active: dict[int, psycopg.Connection] = {}
        self._cancelled = threading.Event()
        self._timed_out = False
        self._result = RunResult(run_id=plan.run_id, playbook=plan.playbook.path)
        self._positions: dict[tuple[str, str, str], int] = {}  # a query's place in results
        self._losses: dict[tuple[str, str, str], int] = {}  # connections lost per query
        self._lost_errors: dict[tuple[str, str, str], BaseException] = {}  # till settled
        # When a query whose connection was lost started (UTC) and ran until the loss: its
        # history if it turns out to have committed.
        self._lost_timing: dict[tuple[str, str, str], tuple[datetime, float]] = {}
        self._dialects = {tp.target.name: tp.target.dialect for tp in plan.targets}
        self._digests: dict[str, str] = {}

    # -- the run -----------------------------------------------------------------------
    def run(self) -> RunResult:
        """Execute every target's plan; returns when all targets are done."""
        started = time.perf_counter()
        self.reporter.run_started(self.plan)
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
        runs, state = self._open_state(connection, target_plan)
        if not runs:
            return
        pool = ConnectionPool(connection, on_connect=state.enlist if state else None)
        if state is None and not self._reach(name, connection, pool):
            return
        failed, finish = True, state is not None
        try:
            if state is not None and state.superseded is not None:
                self.reporter.note(name, f"not resuming run {state.superseded.run_id[:8]}: "
                                         "another playbook under the same lock ran since; "
                                         "starting afresh")
            if state is not None and state.resumed is not None:
                target_plan = self.replan(target_plan, state.run_id, state.started_at)
                broken = next((q.error for q in target_plan.queries if q.error), None)
                if broken is not None:
                    raise broken
                done = sum(len(v) for v in state.done.values())
                self.reporter.note(name, f"resuming run {state.run_id[:8]} of "
                                         f"{state.resumed.started_at:%Y-%m-%d %H:%M:%S} UTC "
                                         f"({done} queries already done)")
                self._note_gone(name, state)
                with self._lock:
                    self._result.resumed_from = state.run_id
            if state is not None:
                digest = fingerprint("\x00".join(self._digest(q.sql or "")
                                                 for q in target_plan.queries))
                state.begin(digest, len(target_plan.queries))
            failed = self._run_steps(target_plan, pool, state)
        except LockError as err:
            # Another run took the lock while this one was disconnected: it owns the run
            # now, and this one stops without writing anything more.
            self._lock_conflict(name, self.secrets.mask(str(err)))
            finish = False
        except Exception as err:  # noqa: BLE001 - a target thread must record, not die
            # Whatever broke outside a query (the state connection, a step's check, a
            # re-render, a server that did not come back) fails the target's queries not
            # yet recorded, not the process.
            self._fail_unrecorded(target_plan, self.secrets.mask(first_line(err)))
            finish = finish and not is_unavailable(err)
        finally:
            pool.close()
            if state is not None:
                if finish:
                    self._finish(name, state, failed)
                state.close()

    def _finish(self, name: str, state: RunState, failed: bool) -> None:
        """Record how the run ended, reconnecting first if the connection was lost."""
        interrupted = self._cancelled.is_set()
        try:
            state.finish(failed, interrupted)
            return
        except psycopg.Error as err:
            if interrupted or not is_unavailable(err):
                return
        try:
            self._reconnect(name, state, "the run finished, but its connection was lost")
            state.finish(failed, interrupted)
        except (SqlRunnerError, psycopg.Error):
            pass  # the next run finds this one unfinished, with every query done

    def _reach(self, name: str, connection: Connection, pool: ConnectionPool) -> bool:
        """Without checkpoints: open the target's first connection, waiting for a server
        that cannot be reached yet; False (recorded) if it never answers."""
        try:
            pool.release(call_through_outage(pool.acquire, self.settings.reconnect_timeout,
                                             self.settings.retry_backoff,
                                             self._waiting(name), sleep=self._sleep))
            return True
        except (SqlRunnerError, psycopg.Error) as err:
            self._unreachable(name, connection, err)
            return False

    def _unreachable(self, name: str, connection: Connection, err: BaseException) -> None:
        """A target that never answered: reported once, nothing counted as executed."""
        message = first_line(err)
        if not message.startswith("cannot connect to target"):
            message = f"cannot connect to target {name!r} ({connection.address()}): {message}"
        with self._lock:
            self._result.unreachable.append(TargetFailure(name, self.secrets.mask(message)))

    def _waiting(self, name: str) -> Callable[[BaseException, float], None]:
        """Tells, once, that a target cannot be reached yet and the run waits for it."""
        told = False

        def on_wait(err: BaseException, seconds: float) -> None:
            nonlocal told
            if not told:
                told = True
                reason = self.secrets.mask(first_line(err)).split("): ", 1)[-1]
                self.reporter.note(name, f"target unreachable ({reason}); trying again "
                                         f"for up to {self.settings.reconnect_timeout:g}s")
        return on_wait

    def _reconnect(self, name: str, state: RunState, why: str) -> None:
        """Make the target's state whole after a lost connection (see RunState.reconnect),
        waiting up to ``reconnect_timeout`` seconds for the server."""
        self.reporter.note(name, f"{why}: reconnecting")
        started = time.perf_counter()
        call_through_outage(state.reconnect, self.settings.reconnect_timeout,
                            self.settings.retry_backoff, self._waiting(name),
                            sleep=self._sleep)
        self.reporter.note(name, f"reconnected after {time.perf_counter() - started:.1f}s")

    def _note_gone(self, name: str, state: RunState) -> None:
        gone = len(state.checkpoints.gone)
        if gone:
            self.reporter.note(name, f"{gone} done queries built unlogged tables that are now "
                                     "empty or gone (a server crash empties them): they run "
                                     "again before the run goes on")

    def _lock_conflict(self, name: str, message: str) -> None:
        failure = TargetFailure(name, message)
        with self._lock:
            self._result.lock_conflicts.append(failure)
        self.reporter.target_failed(failure)

    def _fail_unrecorded(self, target_plan: TargetPlan, message: str) -> None:
        """Record every query of the target that has no result yet: the first failed."""
        with self._lock:
            seen = {(q.target, q.step, q.query) for q in self._result.queries}
        first = True
        for query in target_plan.queries:
            if (query.target, query.step, query.query) in seen:
                continue
            self._record(QueryResult.of(query, FAILED if first else SKIPPED,
                                        error=message if first else None))
            first = False

    def _open_state(self, connection: Connection,
                    target_plan: TargetPlan) -> tuple[bool, RunState | None]:
        """Whether the target can run (False: why not is recorded), and its run state (None
        without checkpoints, or where the target refuses the bookkeeping tables)."""
        if not self.settings.checkpoints:
            return True, None
        name = target_plan.target.name
        state = RunState(connection, os.path.realpath(self.plan.playbook.path), name,
                         self.plan.run_id, self.plan.started_at, self.plan.partial,
                         self.settings.state, self._cancelled, self.plan.playbook.lock)
        try:
            call_through_outage(state.open, self.settings.reconnect_timeout,
                                self.settings.retry_backoff, self._waiting(name),
                                sleep=self._sleep)
            return True, state
        except StateUnavailable as err:
            self.reporter.note(name, str(err))
            return True, None
        except LockError as err:
            state.close()
            self._lock_conflict(name, str(err))
            return False, None
        except (SqlRunnerError, psycopg.Error) as err:
            state.close()
            if isinstance(err, ConnectFailed) or is_unavailable(err):
                self._unreachable(name, connection, err)
                return False, None
            message = self.secrets.mask(first_line(err))
            for index, step in enumerate(target_plan.steps):
                for query in step.queries:
                    self._record(QueryResult.of(query, FAILED if index == 0 else SKIPPED,
                                                error=message if index == 0 else None))
            return False, None

    def _run_steps(self, target_plan: TargetPlan, pool: ConnectionPool,
                   state: RunState | None) -> bool:
        """Run the steps in order, reconnecting after a lost connection; True if a query
        failed."""
        name = target_plan.target.name
        workers = self.settings.max_parallel or max(
            (len(s.queries) for s in target_plan.steps), default=1)
        start, resuming = 0, state is not None and state.resumed is not None
        losses: dict[int, int] = {}  # reconnections per step
        with ThreadPoolExecutor(max_workers=max(workers, 1),
                                thread_name_prefix=f"{name}-query") as threads:
            while True:
                try:
                    failed = self._walk(name, target_plan.steps, start, resuming, pool,
                                        state, threads)
                    # A query that failed before a reconnection, and let the run go on
                    # (continue_on_error), fails the run too.
                    return failed or self._has_failed(name)
                except ConnectionLost as lost:
                    if lost.step is None or state is None:
                        raise
                    pool.close()
                    # A query's own losses are bounded by its retries; this bounds a
                    # step's check (skip_if_empty) that keeps losing its connection.
                    losses[lost.step] = losses.get(lost.step, 0) + 1
                    if losses[lost.step] > self.settings.retries + 1:
                        raise QueryError(f"step {target_plan.steps[lost.step].name}: the "
                                         f"connection was lost {losses[lost.step]} times "
                                         f"({first_line(lost.error)})") from None
                    self._reconnect(name, state, f"connection lost in step "
                                                 f"{target_plan.steps[lost.step].name} "
                                                 f"({self.secrets.mask(first_line(lost.error))})")
                    self._note_gone(name, state)
                    # Go on as a resumed run would, from the step that lost a query, or
                    # from an earlier one whose unlogged tables the server lost.
                    start = min([lost.step] + [
                        index for index, step in enumerate(target_plan.steps[:lost.step])
                        if any(self._checkpoint(state, q) == GONE for q in step.queries)])
                    resuming = True

    def _walk(self, name: str, steps: tuple[StepPlan, ...], start: int, resuming: bool,
              pool: ConnectionPool, state: RunState | None, threads: ThreadPoolExecutor
              ) -> bool:
        """Run ``steps[start:]``; True if a query failed. Raises :class:`ConnectionLost` (with the
        step's index) when a connection was lost and the target must reconnect."""
        failed = stop = False
        # Tables a skip_if_empty found empty since a step last ran: nothing has written
        # since (the run holds its lock), so the next step asking is answered without a
        # round trip (the model's empty run asks eight steps in a row).
        empty: set[str] = set()
        # Done queries are skipped only up to the first step with something left to do:
        # from there on everything runs, since later steps may read what it rewrites. A
        # done query whose unlogged tables a crash emptied runs again on the way.
        for index in range(start, len(steps)):
            step = steps[index]
            if step.skip_note is not None:  # a step for other targets only
                for query, file in step.skipped:
                    self._record(QueryResult(name, step.name, query, file, SKIPPED,
                                             note=step.skip_note))
                continue
            if stop or self._cancelled.is_set():
                for query in step.queries:
                    self._record(self._skipped(query))
                continue
            if step.skip_if_empty and resuming and self._skipped_before(state, steps, index):
                # Its table may have rows now (a later, done step filled it): running it
                # would end the resume and run every later done query again.
                for query in step.queries:
                    self._record(self._skipped(query, f"{step.skip_if_empty} had no rows "
                                                      "when the run got here first"))
                continue
            if step.skip_if_empty and (step.skip_if_empty in empty or self._is_empty(
                    pool, step.skip_if_empty, state, index)):
                empty.add(step.skip_if_empty)
                for query in step.queries:
                    self._record(self._skipped(query, f"{step.skip_if_empty} has no rows"))
                continue
            if self._upsert_keys_missing(pool, step):
                failed = stop = True
                continue
            empty.clear()
            self.reporter.step_started(name, step)
            work_left = not resuming or any(self._checkpoint(state, q) is None
                                            for q in step.queries)

            def run(query: RenderedQuery, may_skip: bool = resuming) -> QueryResult | None:
                return self._run_query(pool, query, state, may_skip)

            if len(step.queries) == 1:
                results = [run(step.queries[0])]
            else:
                results = list(threads.map(run, step.queries))
            # A failed query stops the target after its step, unless it may fail
            # (continue_on_error): then the run goes on, and still counts it as failed.
            stop = any(r is not None and r.status == FAILED and not r.continue_on_error
                       for r in results)
            failed = failed or any(r is not None and r.status == FAILED for r in results)
            lost = [(q, self._lost_errors.pop((q.target, q.step, q.query)))
                    for q, r in zip(step.queries, results, strict=True) if r is None]
            if lost and not stop:
                raise ConnectionLost(lost[0][1], step=index)
            for query, error in lost:
                # A sibling failed: the target stops here; the next run's resume settles
                # whether the lost query committed.
                self._record(QueryResult.of(query, FAILED, error=self.secrets.mask(
                    f"the connection was lost while the query ran ({first_line(error)})")))
                failed = True
            if work_left:
                resuming = False
        return failed

    def _upsert_keys_missing(self, pool: ConnectionPool, step: StepPlan) -> bool:
        """Check the step's upsert queries return their key columns; when one does not, the
        step fails before it runs (its query with the reason, the others skipped)."""
        from sqlrunner.execute.upsert_check import missing_key_message

        upserts = [q for q in step.queries if q.upsert is not None and q.sql is not None]
        if not upserts:
            return False
        try:
            conn = pool.acquire()
        except (SqlRunnerError, psycopg.Error):
            return False  # the queries meet the connection problem themselves
        try:
            problems = {q.query: message for q in upserts if (message := missing_key_message(
                conn, q, self._dialect(q), self.plan.playbook.path))}
        except psycopg.Error:
            pool.discard(conn)
            return False
        pool.release(conn)
        for query in step.queries:
            self._record(QueryResult.of(query, FAILED, error=problems[query.query])
                         if query.query in problems else self._skipped(query))
        return bool(problems)

    def _skipped_before(self, state: RunState | None, steps: tuple[StepPlan, ...],
                        index: int) -> bool:
        """Whether the run being resumed skipped ``steps[index]`` as empty: none of its
        queries has a checkpoint, while a later step's have (it got past this step)."""
        if any(self._checkpoint(state, q) is not None for q in steps[index].queries):
            return False
        return any(self._checkpoint(state, q) is not None
                   for later in steps[index + 1:] for q in later.queries)

    def _checkpoint(self, state: RunState | None, query: RenderedQuery) -> str | None:
        """DONE, GONE or None (see RunState.checkpoint_of)."""
        if state is None or query.sql is None or query.error is not None:
            return None
        return state.checkpoint_of(query.step, query.query, self._digest(query.sql))

    def _is_empty(self, pool: ConnectionPool, table: str, state: RunState | None = None,
                  step: int = 0) -> bool:
        """Whether ``table`` has no rows (or does not exist): the step skips itself.

        Any other error is raised as a QueryError naming the setting (a lost connection,
        with checkpoints, as :class:`ConnectionLost`).
        """
        try:
            conn = pool.acquire()
        except (SqlRunnerError, psycopg.Error) as err:
            if state is not None and (isinstance(err, LockLost) or is_unavailable(err)):
                raise ConnectionLost(err, step=step) from None
            raise
        try:
            with self._tracked(conn):
                return conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is None
        except psycopg.errors.UndefinedTable:
            return True
        except psycopg.Error as err:
            if state is not None and is_unavailable(err):
                raise ConnectionLost(err, step=step) from None
            raise QueryError(f"skip_if_empty: {table}: {first_line(err)}") from None
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
        """Add a query's result, or replace the one it had (it ran again after a lost
        connection)."""
        key = (result.target, result.step, result.query)
        with self._lock:
            position = self._positions.get(key)
            if position is None:
                self._positions[key] = len(self._result.queries)
                self._result.queries.append(result)
            else:
                self._result.queries[position] = result
        self.reporter.query_finished(result)

    def _has_failed(self, target: str) -> bool:
        """Whether a query of ``target`` is recorded as failed in this run."""
        with self._lock:
            return any(q.target == target and q.status == FAILED for q in self._result.queries)

    def _recorded(self, query: RenderedQuery) -> QueryResult | None:
        """The result this run already has for ``query``, if any."""
        with self._lock:
            position = self._positions.get((query.target, query.step, query.query))
            return None if position is None else self._result.queries[position]

    def _skipped(self, query: RenderedQuery, note: str | None = None) -> QueryResult:
        return QueryResult.of(query, SKIPPED, note=note)

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
        return self._dialects[query.target]

    def _policy(self, query: RenderedQuery) -> RetryPolicy:
        return RetryPolicy(retries=int(query.settings.get("retries", self.settings.retries)),
                           backoff=float(query.settings.get("retry_backoff",
                                                            self.settings.retry_backoff)),
                           outage=self.settings.reconnect_timeout)

    def _run_query(self, pool: ConnectionPool, query: RenderedQuery,
                   state: RunState | None, may_skip: bool = False) -> QueryResult | None:
        """Run one query (with retries) and record its result; None when its connection
        was lost and the target must reconnect before it can be settled."""
        if query.error is not None or query.sql is None:
            result = QueryResult.of(query, FAILED,
                                    error=self.secrets.mask(str(query.error or "not rendered")))
            self._record(result)
            return result
        sql = query.sql
        digest = self._digest(sql)
        key = (query.target, query.step, query.query)
        checkpoint = (state.checkpoint_of(query.step, query.query, digest)
                      if may_skip and state is not None else None)
        if checkpoint == DONE:
            return self._done(query, state)
        if checkpoint == GONE:
            self.reporter.note(query.target, f"{query.step}/{query.query}: an unlogged table "
                                             "it built is empty or gone: running it again")
            assert state is not None
            state.drop_emptied_tables(query.step, query.query, digest, sql)
        if self._cancelled.is_set():
            result = self._skipped(query)
            self._record(result)
            return result
        self.reporter.query_started(query)
        started, began = time.perf_counter(), utc_now()
        offset, length = 0, len(sql)  # where the file's SQL lies in the text sent
        if query.upsert is not None:
            try:
                wrapped = upsert_sql(sql, query.upsert, self._dialect(query))
            except SqlRunnerError as err:
                result = QueryResult.of(query, FAILED, error=f"{query.file}: {err}")
                self._record(result)
                return result
            sql, offset, length = wrapped.text, wrapped.select_offset, wrapped.select_length
        # A data test's checkpoint is written only once its rows are judged.
        books = (state.checkpointed(sql, query.step, query.query, query.file, digest,
                                    alone=bool(query.settings.get("assert")))
                 if state is not None else Bookkeeping(sql, None, 0, ()))
        policy = self._policy(query)
        losses = self._losses.get(key, 0)
        retries = losses

        def on_retry(attempt: int, err: BaseException, wait: float) -> None:
            nonlocal retries
            retries = losses + attempt
            self.reporter.query_retrying(query, retries, self.secrets.mask(first_line(err)),
                                         wait)

        def attempt(number: int) -> _Sent:
            return self._attempt(pool, query, books, state, fresh=number > 1)

        cancelled = False
        try:
            sent = call_with_retries(attempt, policy, on_retry,
                                     sleep=self._sleep,
                                     should_retry=lambda: not self._cancelled.is_set())
            result = QueryResult.of(query, SUCCEEDED, rows=sent.rows,
                                    seconds=time.perf_counter() - started, retries=retries,
                                    output=sent.output)
        except ConnectionLost as lost:
            if retries >= policy.retries:
                result = QueryResult.of(
                    query, FAILED, seconds=time.perf_counter() - started, retries=retries,
                    error=self.secrets.mask(f"the connection was lost while the query ran, "
                                            f"{retries + 1} times ({first_line(lost.error)}); "
                                            "the next run settles whether it committed"))
            else:
                # Settled once the target has reconnected: by its checkpoint.
                with self._lock:
                    self._losses[key] = retries + 1
                    self._lost_errors[key] = lost.error
                    self._lost_timing[key] = (began, time.perf_counter() - started)
                if state is not None:  # stored twice if they did commit: read once
                    state.carry_again(books.carried)
                self.reporter.query_retrying(query, retries + 1,
                                             self.secrets.mask(first_line(lost.error)), None)
                return None
        except psycopg.Error as err:
            result = self._failure(query, err, time.perf_counter() - started, retries, offset,
                                   length)
            cancelled = isinstance(err, psycopg.errors.QueryCanceled)
        except DataTestFailed as err:
            rows = tuple(tuple(self.secrets.mask(v) if isinstance(v, str) else v for v in row)
                         for row in err.rows)
            result = QueryResult.of(
                query, FAILED, rows=err.count, seconds=time.perf_counter() - started,
                retries=retries, error=self.secrets.mask(f"{query.file}: {err}"),
                excerpt=offending_table(err.columns, rows), assertion_passed=False,
                failing_rows=QueryOutput(err.columns, rows, err.count))
        except SqlRunnerError as err:
            result = QueryResult.of(query, FAILED, seconds=time.perf_counter() - started,
                                    retries=retries, error=self.secrets.mask(str(err)))
            cancelled = isinstance(err, Cancelled)
        if cancelled and self._cancelled.is_set() and not self._timed_out:
            # Ctrl-C (or SIGTERM) cancelled it: interrupted, not failed.
            result = replace(result, status=INTERRUPTED)
        if state is not None:
            if result.status != SUCCEEDED:
                state.carry_again(books.carried)
            state.record_history(result, began)
        self._record(result)
        return result

    def _sleep(self, seconds: float) -> None:
        """Tenacity's wait between attempts, cut short by an interrupt or timeout."""
        if self._cancelled.wait(seconds):
            raise Cancelled("the run was cancelled")

    def _done(self, query: RenderedQuery, state: RunState | None) -> QueryResult:
        """A query the checkpoints record as done: its result in this run if it has one;
        succeeded if this run lost its connection after it committed; else done in the
        run being resumed."""
        key = (query.target, query.step, query.query)
        result = self._recorded(query)
        if result is not None and result.status != FAILED:
            return result
        if key in self._losses:
            began, seconds = self._lost_timing.pop(key, (utc_now(), 0.0))
            result = QueryResult.of(query, SUCCEEDED, retries=self._losses[key],
                                    seconds=seconds,
                                    note="committed before its connection was lost")
            if state is not None:
                state.record_history(result, began)
        else:
            result = self._skipped(query, DONE_BEFORE)
        self._record(result)
        return result

    def _attempt(self, pool: ConnectionPool, query: RenderedQuery, books: Bookkeeping,
                 state: RunState | None, fresh: bool) -> _Sent:
        try:
            conn = pool.acquire(fresh=fresh)
        except (SqlRunnerError, psycopg.Error) as err:
            if state is not None and (isinstance(err, LockLost) or is_unavailable(err)):
                raise ConnectionLost(err) from None
            raise
        sent = False
        try:
            with self._tracked(conn):
                before, reset = self._session(query)
                try:
                    for statement in before:
                        conn.execute(statement)
                    sent = True
                    data_test = query.settings.get("assert") is not None
                    rows, output = self._send(conn, books.text, books.trailing,
                                              data_test=data_test)
                    _require_idle(conn)
                    if data_test:
                        rows = _judge(output)
                finally:
                    _reset_session(conn, reset, pool)
        except psycopg.Error as err:
            if is_connection_loss(err):
                pool.discard(conn)
                if state is not None:
                    raise ConnectionLost(err) from None
                if sent:
                    raise OutcomeUnknown(f"the connection was lost while the query ran, so "
                                         f"whether it committed is unknown: {first_line(err)}"
                                         ) from None
            raise
        finally:
            pool.release(conn)
        if books.after is not None and state is not None:
            try:
                state.write(books.after)
            except psycopg.Error as err:
                # The file ran (it runs alone, and may run again): its checkpoint waits for
                # the reconnection.
                if is_unavailable(err):
                    raise ConnectionLost(err) from None
                raise
        return _Sent(rows, output)

    def _send(self, conn: psycopg.Connection, sql: str, trailing: int,
              data_test: bool = False) -> tuple[int | None, QueryOutput | None]:
        """Send ``sql`` whole; the rows of the file's last statement, and its output if asked
        (for a data test: the first rows of its last SELECT, and how many it returned).

        The last ``trailing`` statements are the runner's (a checkpoint, history rows), not
        the file's.
        """
        output = None
        if not self.settings.show_query_output and not data_test and rowcounts.can_drop_rows():
            counts = rowcounts.send_counting_rows(conn, sql)
        else:
            counts, output = self._send_with_cursor(conn, sql, data_test)
        del counts[len(counts) - trailing:]
        # The rows of the last statement that has a count, as psql shows it (CREATE TABLE
        # AS, INSERT, UPDATE, DELETE, a SELECT), past trailing ANALYZE, COMMIT, DROP...;
        # -1 when none has one.
        counted = [count for count in counts if count >= 0]
        return (counted[-1] if counted else counts[-1] if counts else None), output

    def _send_with_cursor(self, conn: psycopg.Connection, sql: str,
                          data_test: bool = False) -> tuple[list[int], QueryOutput | None]:
        """Send ``sql`` through a cursor: each statement's row count, and the rows of the
        last statement that returned any, when query output is shown; for a data test, the
        first rows of the last statement that returns rows (a SELECT), even none."""
        counts: list[int] = []
        output = None
        with conn.cursor() as cur:
            cur.execute(sql)
            while True:
                counts.append(cur.rowcount)
                wanted = self.settings.show_query_output or data_test
                if wanted and cur.description is not None:
                    fetched = (cur.fetchall() if self.settings.show_query_output
                               else cur.fetchmany(SHOWN_ROWS))
                    if fetched or data_test:
                        output = QueryOutput(tuple(c.name for c in cur.description),
                                             tuple(tuple(r) for r in fetched), cur.rowcount)
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
        return QueryResult.of(query, FAILED, seconds=seconds, error=self.secrets.mask(text),
                              sqlstate=sqlstate, line=line, column=column, retries=retries,
                              excerpt=self.secrets.mask(excerpt) if excerpt else None)


def _judge(output: QueryOutput | None) -> int:
    """A data test's verdict on what its SELECT returned (:class:`DataTestFailed` when it
    returned rows); the count of its rows (none)."""
    if output is None:
        raise QueryError("a data test (assert: no_rows) must end with a SELECT; this file "
                         "returned no rows to judge")
    check_no_rows(output.columns, output.rows, output.total or 0)
    return 0


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
