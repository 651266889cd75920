"""Execute a plan: targets in parallel, steps in order, the queries of a step in parallel.

Each SQL file is sent whole, in one round trip, on an autocommit connection,
so a file without its own BEGIN/COMMIT runs as one implicit transaction: it
either applies completely or not at all. A target stops after the first step
in which a query failed; the failed query's siblings still finish.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import psycopg

from sqlrunner.errorpos import position_in
from sqlrunner.errors import SqlRunnerError
from sqlrunner.plan import RunPlan, StepPlan, TargetPlan
from sqlrunner.render import RenderedQuery
from sqlrunner.results import (
    FAILED,
    SKIPPED,
    SUCCEEDED,
    QueryOutput,
    QueryResult,
    RunResult,
    TargetFailure,
)
from sqlrunner.secrets import SecretRegistry
from sqlrunner.targets import Connection, ConnectionPool, connection_for


class Reporter(Protocol):
    """Receives the events of a run (called from several threads)."""

    def run_started(self, plan: RunPlan) -> None: ...
    def step_started(self, target: str, step: StepPlan) -> None: ...
    def query_started(self, query: RenderedQuery) -> None: ...
    def query_finished(self, result: QueryResult) -> None: ...
    def target_failed(self, failure: TargetFailure) -> None: ...
    def run_finished(self, result: RunResult) -> None: ...


class SilentReporter:
    """A reporter that reports nothing (library use, tests)."""

    def run_started(self, plan: RunPlan) -> None: ...
    def step_started(self, target: str, step: StepPlan) -> None: ...
    def query_started(self, query: RenderedQuery) -> None: ...
    def query_finished(self, result: QueryResult) -> None: ...
    def target_failed(self, failure: TargetFailure) -> None: ...
    def run_finished(self, result: RunResult) -> None: ...


class Executor:
    """Runs a :class:`RunPlan` and collects a :class:`RunResult`."""

    def __init__(
        self,
        plan: RunPlan,
        *,
        reporter: Reporter | None = None,
        max_parallel: int | None = None,
        show_query_output: bool = False,
        secrets: SecretRegistry | None = None,
        embedded_dir: str | None = None,
        connection_factory: Callable[..., Connection] = connection_for,
    ) -> None:
        self.plan = plan
        self.reporter = reporter or SilentReporter()
        self.max_parallel = max_parallel
        self.show_query_output = show_query_output
        self.secrets = secrets or SecretRegistry()
        self.embedded_dir = embedded_dir
        self.connection_factory = connection_factory
        self._lock = threading.Lock()
        self._active: dict[int, psycopg.Connection] = {}
        self._cancelled = threading.Event()
        self._result = RunResult(run_id=plan.run_id, playbook=plan.playbook.path)

    def run(self) -> RunResult:
        """Execute every target's plan; returns when all targets are done."""
        started = time.perf_counter()
        self.reporter.run_started(self.plan)
        for target_plan in self.plan.targets:
            if target_plan.target.password:
                self.secrets.add(target_plan.target.password)
        threads = [threading.Thread(target=self._run_target, args=(tp,), daemon=True,
                                    name=f"target-{tp.target.name}")
                   for tp in self.plan.targets]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.05)
        except KeyboardInterrupt:
            # SIGINT (and SIGTERM, which the CLI turns into one): cancel on the server,
            # then wait for the targets to record what happened.
            self.cancel()
            for thread in threads:
                thread.join()
        self._result.seconds = time.perf_counter() - started
        self._result.interrupted = self._cancelled.is_set()
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

    def _record(self, result: QueryResult) -> None:
        with self._lock:
            self._result.queries.append(result)
        self.reporter.query_finished(result)

    def _run_target(self, target_plan: TargetPlan) -> None:
        name = target_plan.target.name
        if target_plan.init_error:
            self._fail_target(TargetFailure(name, target_plan.init_error))
            return
        try:
            connection = self.connection_factory(target_plan.target, self.embedded_dir)
        except SqlRunnerError as err:
            self._fail_target(TargetFailure(name, self.secrets.mask(str(err))))
            return
        pool = ConnectionPool(connection)
        workers = self.max_parallel or max((len(s.queries) for s in target_plan.steps), default=1)
        try:
            with ThreadPoolExecutor(max_workers=max(workers, 1),
                                    thread_name_prefix=f"{name}-query") as threads:
                stopped = False
                for step in target_plan.steps:
                    if stopped or self._cancelled.is_set():
                        for query in step.queries:
                            self._record(self._skipped(query))
                        continue
                    self.reporter.step_started(name, step)
                    if len(step.queries) == 1:
                        results = [self._run_query(pool, step.queries[0])]
                    else:
                        results = list(threads.map(lambda q: self._run_query(pool, q),
                                                   step.queries))
                    stopped = any(r.status == FAILED for r in results)
        finally:
            pool.close()

    def _fail_target(self, failure: TargetFailure) -> None:
        with self._lock:
            self._result.target_failures.append(failure)
        self.reporter.target_failed(failure)

    def _skipped(self, query: RenderedQuery) -> QueryResult:
        return QueryResult(query.target, query.step, query.query, query.file, SKIPPED)

    def _run_query(self, pool: ConnectionPool, query: RenderedQuery) -> QueryResult:
        if self._cancelled.is_set():
            result = self._skipped(query)
            self._record(result)
            return result
        self.reporter.query_started(query)
        started = time.perf_counter()
        try:
            conn = pool.acquire()
        except SqlRunnerError as err:
            result = QueryResult(query.target, query.step, query.query, query.file, FAILED,
                                 seconds=time.perf_counter() - started,
                                 error=self.secrets.mask(str(err)))
            self._record(result)
            return result
        key = id(conn)
        with self._lock:
            self._active[key] = conn
        try:
            rows, output = self._send(conn, query.sql or "")
            result = QueryResult(query.target, query.step, query.query, query.file, SUCCEEDED,
                                 rows=rows, seconds=time.perf_counter() - started,
                                 output=output)
        except psycopg.Error as err:
            result = self._failure(query, err, time.perf_counter() - started)
        finally:
            with self._lock:
                self._active.pop(key, None)
            pool.release(conn)
        self._record(result)
        return result

    def _send(self, conn: psycopg.Connection, sql: str) -> tuple[int | None, QueryOutput | None]:
        """Send ``sql`` whole; the rows of its last statement, and its output if asked."""
        with conn.cursor() as cur:
            cur.execute(sql)
            output = None
            while True:
                if self.show_query_output and cur.description is not None:
                    fetched = cur.fetchall()
                    if fetched:
                        output = QueryOutput(tuple(c.name for c in cur.description),
                                             tuple(tuple(r) for r in fetched))
                if not cur.nextset():
                    break
            rows = cur.rowcount
        return rows, output

    def _failure(self, query: RenderedQuery, err: psycopg.Error, seconds: float) -> QueryResult:
        diag = err.diag
        text = str(err).strip()
        message = diag.message_primary or (text.splitlines()[0] if text else type(err).__name__)
        where = position_in(query.sql or "", diag.statement_position)
        line = column = excerpt = None
        if where is not None:
            line, column, excerpt = where.line, where.column, where.excerpt()
        sqlstate = diag.sqlstate or getattr(err, "sqlstate", None)
        text = f"ERROR {sqlstate}: {message}" if sqlstate else message
        if line is not None:
            text = f"{query.file}:{line}:{column}: {text}"
            if query.template:
                text += " (line of the rendered SQL)"
        return QueryResult(query.target, query.step, query.query, query.file, FAILED,
                           seconds=seconds, error=self.secrets.mask(text), sqlstate=sqlstate,
                           line=line, column=column,
                           excerpt=self.secrets.mask(excerpt) if excerpt else None)
