"""What a run produced: one record per query, the targets that could not start, the exit code.

The JSON run report (``--report``) that tells it is written by :mod:`sqlrunner.report`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlrunner.errors import (
    EXIT_INTERRUPTED,
    EXIT_LOCK_EXISTS,
    EXIT_NOTHING_RAN,
    EXIT_OK,
    EXIT_QUERY,
    EXIT_TARGET,
    EXIT_TARGET_AND_QUERY,
)

if TYPE_CHECKING:
    from sqlrunner.render import RenderedQuery

SUCCEEDED = "succeeded"
FAILED = "failed"
SKIPPED = "skipped"
INTERRUPTED = "interrupted"  # cancelled on the server by SIGINT/SIGTERM: not a failure
DONE_BEFORE = "done in the run being resumed"


@dataclass(frozen=True)
class QueryOutput:
    """The rows a query returned (for ``--show-query-output``)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    total: int | None = None  # rows the query returned, when ``rows`` holds only the first


@dataclass(frozen=True)
class QueryResult:
    """The outcome of one query on one target."""

    target: str
    step: str
    query: str
    file: str
    status: str
    rows: int | None = None
    seconds: float = 0.0
    error: str | None = None
    sqlstate: str | None = None
    line: int | None = None
    column: int | None = None
    excerpt: str | None = None
    retries: int = 0
    note: str | None = None  # why a query was skipped
    output: QueryOutput | None = field(default=None, repr=False)
    continue_on_error: bool = False  # its failure did not stop its target
    assertion: str | None = None  # a data test's assertion (``no_rows``)
    assertion_passed: bool | None = None  # None: not a data test, or it could not run
    failing_rows: QueryOutput | None = None  # a failed data test's first rows

    @classmethod
    def of(cls, query: RenderedQuery, status: str, **outcome: Any) -> QueryResult:
        """The result of ``query`` (its target, step, name and file) with this outcome."""
        outcome.setdefault("continue_on_error",
                           bool(query.settings.get("continue_on_error", False)))
        assertion = query.settings.get("assert")
        if assertion:
            outcome.setdefault("assertion", assertion)
            if status == SUCCEEDED:
                outcome.setdefault("assertion_passed", True)
        return cls(query.target, query.step, query.query, query.file, status, **outcome)


@dataclass(frozen=True)
class TargetFailure:
    """A target that could not be initialised (SQL Runner's exit-5 class)."""

    target: str
    error: str


@dataclass
class RunResult:
    """Everything a run did; ``exit_code`` is SQL Runner's."""

    run_id: str
    playbook: str
    queries: list[QueryResult] = field(default_factory=list)
    target_failures: list[TargetFailure] = field(default_factory=list)
    lock_conflicts: list[TargetFailure] = field(default_factory=list)
    unreachable: list[TargetFailure] = field(default_factory=list)  # never connected
    seconds: float = 0.0
    interrupted: bool = False
    timed_out: bool = False
    resumed_from: str | None = None

    @property
    def failed(self) -> list[QueryResult]:
        """The queries that failed."""
        return [q for q in self.queries if q.status == FAILED]

    @property
    def executed(self) -> list[QueryResult]:
        """The queries that were sent to a database (succeeded, failed or interrupted)."""
        return [q for q in self.queries if q.status in (SUCCEEDED, FAILED, INTERRUPTED)]

    @property
    def cancelled(self) -> list[QueryResult]:
        """The queries an interrupt cancelled while they ran."""
        return [q for q in self.queries if q.status == INTERRUPTED]

    @property
    def done_before(self) -> list[QueryResult]:
        """Queries skipped because the run being resumed had finished them."""
        return [q for q in self.queries if q.status == SKIPPED and q.note == DONE_BEFORE]

    @property
    def skipped_on_purpose(self) -> list[QueryResult]:
        """Queries skipped for a reason (done before, or their step had nothing to do)."""
        return [q for q in self.queries if q.status == SKIPPED and q.note]

    @property
    def errors(self) -> list[str]:
        """Every error as one line, for messages and tests."""
        lines = [f"target {f.target}: {f.error}"
                 for f in self.target_failures + self.lock_conflicts]
        lines += [f.error for f in self.unreachable]
        lines += [f"{q.target}/{q.step}/{q.query} ({q.file}): {q.error}" for q in self.failed]
        return lines

    @property
    def exit_code(self) -> int:
        """0 ok, 3 locked, 5 target errors, 6 query errors (a target that cannot be reached
        is one, as in SQL Runner), 7 both, 8 nothing executed, 130 interrupted."""
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.lock_conflicts:
            return EXIT_LOCK_EXISTS
        init, query = bool(self.target_failures), bool(self.failed or self.unreachable)
        if init and query:
            return EXIT_TARGET_AND_QUERY
        if init:
            return EXIT_TARGET
        if query:
            return EXIT_QUERY
        if self.timed_out:
            return EXIT_QUERY  # the run did not do all it should have
        if not self.executed and not self.skipped_on_purpose:
            return EXIT_NOTHING_RAN
        return EXIT_OK
