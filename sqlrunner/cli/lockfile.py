"""SQL Runner's lock files: created atomically, holding who took them, removed by rule.

``--lock`` stays after a failed run (a human must look); ``--soft-lock`` is
removed whatever the outcome.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlrunner.errors import EXIT_NOTHING_RAN, EXIT_OK, LockError, LockSetupError


@dataclass(frozen=True)
class LockFile:
    """A lock file at ``path``; ``soft`` ones are removed whatever the outcome."""

    path: str
    soft: bool = False

    def check(self) -> None:
        """Raise :class:`LockError` (exit 3) naming the holder if the lock exists."""
        if os.path.exists(self.path):
            raise LockError(f"lock file {self.path} exists{describe_holder(self.path)}")

    def acquire(self) -> None:
        """Create the lock file atomically (O_EXCL), recording owner, host, pid and time."""
        holder = {
            "owner": _user(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "soft": self.soft,
        }
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise LockError(f"lock file {self.path} exists{describe_holder(self.path)}") from None
        except OSError as err:
            raise LockSetupError(f"cannot create lock file {self.path}: {err.strerror}") from None
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(holder, handle)
            handle.write("\n")

    def release(self, exit_code: int) -> None:
        """Remove the lock: a soft lock always, a hard lock only after success (0 or 8)."""
        if self.soft or exit_code in (EXIT_OK, EXIT_NOTHING_RAN):
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass


def delete_lock(path: str) -> None:
    """``--delete-lock``: remove the file; raise LockSetupError (exit 1) if absent."""
    try:
        os.remove(path)
    except FileNotFoundError:
        raise LockSetupError(f"lock file {path} does not exist") from None
    except OSError as err:
        raise LockSetupError(f"cannot delete lock file {path}: {err.strerror}") from None


def describe_holder(path: str) -> str:
    """`` (held by user@host pid N since T)`` from the file's content, if readable."""
    try:
        with open(path, encoding="utf-8") as handle:
            holder = json.loads(handle.read())
        return (f" (held by {holder.get('owner')}@{holder.get('host')} pid {holder.get('pid')}"
                f" since {holder.get('time')})")
    except (OSError, ValueError, AttributeError):
        return ""


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())
