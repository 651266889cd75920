"""Which database errors are transient, and how a query is retried (tenacity).

The first attempt runs without tenacity: a run whose queries all succeed never imports
it (start-up) nor builds its retry state (per query). A failure worth a retry hands the
error to tenacity as its first attempt's, so waits, stops and reports are its own.

Errors are classified by SQLSTATE, never by message text, except where the
server gives none: connection-time failures carry no SQLSTATE, and Redshift
reports its serializable isolation violation as the catch-all ``XX000``.

Two budgets: a transient error of a query (a deadlock, a serialization failure)
is retried ``retries`` times; a server that cannot be reached or went away (a
restart, a crash, a failover, a network outage) is waited for up to ``outage``
seconds, however many attempts that takes.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg

from sqlrunner.errors import ConnectFailed

if TYPE_CHECKING:
    from tenacity import RetryCallState

T = TypeVar("T")


RETRY_SQLSTATES = frozenset({
    "40001",  # serialization_failure
    "40P01",  # deadlock_detected
    "55P03",  # lock_not_available
    "57P01",  # admin_shutdown
    "57P02",  # crash_shutdown
    "57P03",  # cannot_connect_now
    "53300",  # too_many_connections
})
RETRY_SQLSTATE_CLASSES = frozenset({"08"})  # connection exceptions
# Redshift's XX000 messages that are worth another try: its error 1023 (the message is
# the number, its detail the serializable isolation violation), and a relation dropped
# and made again by a concurrent transaction.
REDSHIFT_TRANSIENT = re.compile(
    r"^\s*(?:error:\s*)?1023\b|serializable isolation violation|"
    r"could not open relation with oid", re.IGNORECASE)
# Connection failures without SQLSTATE that will not go away by waiting.
PERMANENT_CONNECTION_FAILURES = (
    "password authentication failed", "no pg_hba.conf entry", "does not exist",
    "could not translate host name", "invalid sslmode", "certificate", "permission denied",
    "authentication", "unsupported",
)


DEFAULT_OUTAGE = 60.0  # seconds a target may stay unreachable before a run gives up
OUTAGE_MAX_WAIT = 5.0  # the longest pause between two attempts to reach a server


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry a query (``retries`` extra attempts), and how
    long to wait for a server that cannot be reached (``outage`` seconds)."""

    retries: int = 3
    backoff: float = 1.0  # seconds before the first retry; doubles, with jitter
    max_backoff: float = 30.0
    outage: float = DEFAULT_OUTAGE


def is_transient(err: BaseException) -> bool:
    """True for errors that another attempt on a fresh connection may not meet."""
    if isinstance(err, ConnectFailed):
        return err.__cause__ is not None and is_transient(err.__cause__)
    if not isinstance(err, psycopg.Error):
        return False
    sqlstate = err.sqlstate or (err.diag.sqlstate if err.diag else None)
    if sqlstate:
        if sqlstate in RETRY_SQLSTATES or sqlstate[:2] in RETRY_SQLSTATE_CLASSES:
            return True
        if sqlstate == "XX000":
            return REDSHIFT_TRANSIENT.search(str(err)) is not None
        return False
    if isinstance(err, psycopg.OperationalError):
        message = str(err).lower()
        return not any(marker in message for marker in PERMANENT_CONNECTION_FAILURES)
    return False


def is_unavailable(err: BaseException) -> bool:
    """True when the server cannot be reached or went away (refused or lost connections,
    shutting down, starting up, too many clients): waited for, not counted as a retry."""
    if isinstance(err, ConnectFailed):
        return err.__cause__ is not None and is_transient(err.__cause__)
    if not isinstance(err, psycopg.OperationalError):
        return False
    sqlstate = err.sqlstate
    if sqlstate is None:
        return is_transient(err)
    return sqlstate[:2] == "08" or sqlstate in ("57P01", "57P02", "57P03", "53300")


def is_connection_loss(err: BaseException) -> bool:
    """True when the connection broke, so whether the query committed is unknown."""
    if not isinstance(err, psycopg.OperationalError):
        return False
    sqlstate = err.sqlstate
    return sqlstate is None or sqlstate.startswith("08") or sqlstate in ("57P01", "57P02")


def call_with_retries(
    attempt: Callable[[int], T],
    policy: RetryPolicy,
    on_retry: Callable[[int, BaseException, float], Any] | None = None,
    *,
    sleep: Callable[[float], None] = time.sleep,
    should_retry: Callable[[], bool] = lambda: True,
) -> T:
    """Call ``attempt(n)`` (n = 1, 2, ...) until it returns, retrying transient errors.

    ``sleep`` waits between attempts (it may raise to stop waiting); ``should_retry``
    is asked before each retry (False after an interrupt).
    """

    def retry(err: BaseException) -> bool:
        return is_transient(err) and should_retry()

    try:
        return attempt(1)
    except Exception as err:  # noqa: BLE001 - tenacity's own rule decides, as before
        if not retry(err):
            raise
        first = err
    from tenacity import Retrying, retry_if_exception

    def before_sleep(state: RetryCallState) -> None:
        if on_retry is not None and state.outcome is not None:
            wait = state.next_action.sleep if state.next_action else 0.0
            on_retry(state.attempt_number, state.outcome.exception(), wait)

    budget = _Budget(policy)
    retrying = Retrying(
        stop=budget.stop,
        wait=budget.wait,
        retry=retry_if_exception(retry),
        before_sleep=before_sleep,
        sleep=sleep,
        reraise=True,
    )
    for attempt_state in retrying:
        with attempt_state:
            return _again(attempt, attempt_state.retry_state.attempt_number, first)
    raise AssertionError("unreachable")  # pragma: no cover


def _again(attempt: Callable[[int], T], number: int, first: BaseException) -> T:
    """Attempt ``number`` under tenacity: the first already ran and raised ``first``."""
    if number == 1:
        raise first
    return attempt(number)


def call_through_outage(
    attempt: Callable[[], T],
    outage: float,
    backoff: float = 1.0,
    on_wait: Callable[[BaseException, float], Any] | None = None,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``attempt()`` until it returns, while it fails because the server cannot be
    reached, for up to ``outage`` seconds; any other error, or the last one, is raised.

    ``on_wait(error, seconds)`` is told of each pause.
    """

    try:
        return attempt()
    except Exception as err:  # noqa: BLE001 - tenacity's own rule decides, as before
        if not is_unavailable(err):
            raise
        first = err
    from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential_jitter

    def before_sleep(state: RetryCallState) -> None:
        if on_wait is not None and state.outcome is not None:
            wait = state.next_action.sleep if state.next_action else 0.0
            on_wait(state.outcome.exception(), wait)

    retrying = Retrying(
        stop=stop_after_delay(outage),
        wait=wait_exponential_jitter(multiplier=backoff, max=OUTAGE_MAX_WAIT, jitter=backoff),
        retry=retry_if_exception(is_unavailable),
        before_sleep=before_sleep,
        sleep=sleep,
        reraise=True,
    )
    for attempt_state in retrying:
        with attempt_state:
            return _again(lambda _: attempt(), attempt_state.retry_state.attempt_number, first)
    raise AssertionError("unreachable")  # pragma: no cover


class _Budget:
    """Tenacity's stop and wait for one query: ``retries`` attempts after ordinary
    transient errors; attempts for ``outage`` seconds while the server is unavailable."""

    def __init__(self, policy: RetryPolicy) -> None:
        from tenacity import wait_exponential_jitter

        self.policy = policy
        self.failures = 0  # ordinary transient errors so far
        self.outage_since: float | None = None
        self._wait = wait_exponential_jitter(multiplier=policy.backoff,
                                             max=policy.max_backoff, jitter=policy.backoff)

    def stop(self, state: RetryCallState) -> bool:
        error = state.outcome.exception() if state.outcome is not None else None
        if error is not None and is_unavailable(error):
            now = time.monotonic()
            if self.outage_since is None:
                self.outage_since = now
            return now - self.outage_since >= self.policy.outage
        self.outage_since = None
        self.failures += 1
        return self.failures > self.policy.retries

    def wait(self, state: RetryCallState) -> float:
        seconds = self._wait(state)
        if self.outage_since is not None:
            return min(seconds, OUTAGE_MAX_WAIT)
        return seconds
