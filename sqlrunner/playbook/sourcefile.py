"""Read a file the run is given (playbook, variables file, SQL file): a regular file, as text.

Two inputs would otherwise go wrong silently or forever. A FIFO (or a device, a
socket) named as a file blocks the reader until someone writes to it, so it is
refused before it is opened for reading, and checked again once open (it may
have been swapped in between). A NUL byte ends the C string libpq sends, so
PostgreSQL would run the SQL before it as if it were the whole file and the run
would succeed; :func:`nul_position` finds it, to refuse the file with its line.
"""

from __future__ import annotations

import errno
import os
import stat

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class NotRegularFile(OSError):
    """A path that names a directory, FIFO, device or socket rather than a file."""

    def __str__(self) -> str:
        return str(self.strerror)


class NulByte(ValueError):
    """Text holding a NUL character, at ``line`` and ``column`` (1-based)."""

    def __init__(self, line: int, column: int) -> None:
        super().__init__(f"a NUL byte at line {line}, column {column}")
        self.line = line
        self.column = column


def read_text(path: str) -> str:
    """The UTF-8 text of the regular file at ``path`` (newlines read as ``open`` reads them).

    Raises what ``open`` raises (``FileNotFoundError``, ``PermissionError``, ...),
    :class:`NotRegularFile` without blocking on a FIFO, ``UnicodeDecodeError``, and
    :class:`NulByte` for text holding a NUL character.
    """
    try:
        _require_regular(os.stat(path).st_mode, path)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except ValueError:  # a path holding a NUL (os functions refuse it)
        raise OSError(errno.EINVAL, "the path holds a NUL byte") from None
    try:
        _require_regular(os.fstat(fd).st_mode, path)
    except OSError:
        os.close(fd)
        raise
    with open(fd, encoding="utf-8") as handle:
        text = handle.read()
    where = nul_position(text)
    if where is not None:
        raise NulByte(*where)
    return text


def nul_position(text: str) -> tuple[int, int] | None:
    """The line and column (1-based, in characters) of the first NUL in ``text``, or None."""
    index = text.find("\x00")
    if index < 0:
        return None
    line_start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - line_start + 1


def _require_regular(mode: int, path: str) -> None:
    for test, kind in _KINDS:
        if test(mode):
            raise NotRegularFile(errno.EINVAL, f"{kind}, not a regular file", path)
