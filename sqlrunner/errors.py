"""The typed error hierarchy; every error knows where it happened and its exit code.

Exit codes follow SQL Runner 0.11 (see README, "Exit codes"); the CLI maps
exceptions to codes in one place, :func:`exit_code_for`. Every exception class
sqlrunner raises to its callers is defined here.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_SETUP = 1
EXIT_USAGE = 2
EXIT_LOCK_EXISTS = 3
EXIT_TARGET = 5
EXIT_QUERY = 6
EXIT_TARGET_AND_QUERY = 7
EXIT_NOTHING_RAN = 8
EXIT_INTERRUPTED = 130
# The reader of the output went away (``sqlrunner status | head``): what a shell reports
# for a command that SIGPIPE ended (128 + 13).
EXIT_OUTPUT_CLOSED = 141
EXIT_FINDINGS = 1  # sqlrunner check: the playbook is not portable


class SqlRunnerError(Exception):
    """Base of every error sqlrunner reports to a user.

    ``str(err)`` is one line: ``FILE:LINE:COL: message`` with the location
    parts that are known.
    """

    exit_code = EXIT_SETUP

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.column = column

    @property
    def location(self) -> str:
        """``file:line:col`` with whatever parts are known, or ``""``."""
        parts = [p for p in (self.file, self.line, self.column) if p is not None]
        return ":".join(str(p) for p in parts)

    def __str__(self) -> str:
        loc = self.location
        return f"{loc}: {self.message}" if loc else self.message


class UsageError(SqlRunnerError):
    """A bad command line."""

    exit_code = EXIT_USAGE


class PlaybookError(SqlRunnerError):
    """A playbook that is missing, unparsable or invalid."""

    exit_code = EXIT_SETUP


class TemplateError(SqlRunnerError):
    """A Go template that cannot be parsed or executed.

    Printed in Go's form: ``template: NAME:LINE:COL: message``.
    """

    exit_code = EXIT_TARGET

    def __str__(self) -> str:
        loc = self.location
        return f"template: {loc}: {self.message}" if loc else f"template: {self.message}"


class TargetError(SqlRunnerError):
    """A target that cannot be initialised (bad type, missing fields, bad selection,
    a SQL file that is missing or does not render)."""

    exit_code = EXIT_TARGET


class SqlFileMissing(TargetError):
    """A query's SQL file does not exist; named by the playbook line of its ``file:``."""


class QueryError(SqlRunnerError):
    """A query that failed on the database, or a target that could not be reached."""

    exit_code = EXIT_QUERY


class DataTestFailed(QueryError):
    """A data test (``assert: no_rows``) whose query returned rows: ``count`` of them, the
    first (at most 10) in ``rows`` under ``columns``."""

    def __init__(self, message: str, columns: tuple[str, ...],
                 rows: tuple[tuple[object, ...], ...], count: int) -> None:
        super().__init__(message)
        self.columns, self.rows, self.count = columns, rows, count


class LockError(SqlRunnerError):
    """A lock that is held by someone else."""

    exit_code = EXIT_LOCK_EXISTS


class LockSetupError(SqlRunnerError):
    """A lock file that cannot be created or deleted."""

    exit_code = EXIT_SETUP


class Interrupted(SqlRunnerError):
    """The run was stopped by SIGINT or SIGTERM."""

    exit_code = EXIT_INTERRUPTED


class ConnectFailed(QueryError):
    """A connection could not be opened; transient when its cause is."""


class ConnectionLost(QueryError):
    """A query's connection, or the run's lock, was lost while the run keeps checkpoints:
    the target reconnects, and the query's checkpoint settles whether it committed.

    The executor's signal; users see the error it carries. ``step`` is the index of the
    step that lost it, once known.
    """

    def __init__(self, error: BaseException, step: int | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.step = step


class Cancelled(QueryError):
    """The run was interrupted or timed out before this query could finish."""


class OutcomeUnknown(QueryError):
    """A query's connection broke mid-flight and whether it committed cannot be known."""


class StateUnavailable(SqlRunnerError):
    """The target refuses the bookkeeping tables (e.g. no CREATE privilege): the run goes
    on without checkpoints, resume or run lock."""


class LockTaken(LockError):
    """Another run took the lock while this run had lost its connection."""


class LockLost(LockError):
    """This run's bookkeeping connection, which holds the lock, is gone."""


class LoadError(SqlRunnerError):
    """Generated events could not be loaded into the database (``sqlrunner generate``)."""

    exit_code = EXIT_SETUP


def first_line(error: BaseException) -> str:
    """An error's message on one line (its first), or its type's name when it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def exit_code_for(error: BaseException) -> int:
    """SQL Runner's exit code for an error that ends a command."""
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(error, BrokenPipeError):
        return EXIT_OUTPUT_CLOSED
    if isinstance(error, SqlRunnerError):
        return error.exit_code
    raise TypeError(f"no exit code for {type(error).__name__}") from error
