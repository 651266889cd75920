"""Split SQL text into statements without being fooled by what may hide a semicolon.

The runner never splits a file to run it (a file is sent whole); this is for
the portability check and for recognising statements that must run alone.
The scanner knows single-quoted strings (``''`` doubling; backslash escapes
in ``E'...'`` strings, and in every string on Redshift), quoted identifiers,
dollar-quoted bodies (``$$``, ``$tag$``), ``--`` and nested ``/* /* */ */``
comments, ``BEGIN ATOMIC ... END`` function bodies (with their ``CASE ...
END``), and Go template actions ``{{ ... }}``, whose strings and comments may
hold anything. ``BEGIN READ WRITE;`` and ``BEGIN ISOLATION LEVEL ...;`` are
ordinary statements (sqlparse 0.5.4 to 0.6.1 merge the rest of the file into
them).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

_WORD_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_WORD_PART = _WORD_START | frozenset("0123456789$")


@dataclass(frozen=True)
class Statement:
    """One statement of a SQL text: its text and where it starts in the whole text.

    ``text`` runs from the statement's first character that is not blank or a
    comment to the character before its terminating ``;`` (or the end of the
    input), trailing blanks removed. ``start`` and ``end`` are offsets in the
    whole text; ``line`` and ``column`` are 1-based.
    """

    text: str
    start: int
    end: int
    line: int
    column: int
    terminated: bool


class LineIndex:
    """Turns character offsets of a text into 1-based line and column numbers."""

    def __init__(self, text: str) -> None:
        self._starts = [0]
        self._starts.extend(i + 1 for i, ch in enumerate(text) if ch == "\n")

    def position(self, offset: int) -> tuple[int, int]:
        """The ``(line, column)`` of ``offset`` (both 1-based)."""
        line = bisect.bisect_right(self._starts, offset)
        return line, offset - self._starts[line - 1] + 1


def split_statements(sql: str, *, backslash_escapes: bool = False) -> list[Statement]:
    """The statements of ``sql``, in order; blank and comment-only pieces are dropped.

    ``backslash_escapes``: a backslash escapes the next character in every
    single-quoted string (Redshift's literals); otherwise only in ``E'...'``
    strings (PostgreSQL with ``standard_conforming_strings``).
    """
    return _Scanner(sql, backslash_escapes).statements()


class _Scanner:
    def __init__(self, sql: str, backslash_escapes: bool) -> None:
        self.sql = sql
        self.backslash_escapes = backslash_escapes
        self.lines = LineIndex(sql)

    def statements(self) -> list[Statement]:
        sql, n = self.sql, len(self.sql)
        found: list[Statement] = []
        first: int | None = None  # first significant character of the current statement
        last = 0  # just past its last significant character
        previous_word = ""  # the last word, if nothing but blanks and comments followed it
        block_depth = 0  # open BEGIN ATOMIC / CASE inside BEGIN ATOMIC
        i = 0
        while i < n:
            ch = sql[i]
            if ch in " \t\r\n\f\v":
                i += 1
                continue
            if sql.startswith("--", i):
                end = sql.find("\n", i)
                i = n if end < 0 else end + 1
                continue
            if sql.startswith("/*", i):
                i = self._block_comment_end(i)
                continue
            if ch == ";" and block_depth == 0:
                if first is not None:
                    found.append(self._statement(first, last, terminated=True))
                first, previous_word = None, ""
                i += 1
                continue
            if first is None:
                first = i
            if ch in _WORD_START or ord(ch) > 127:
                end = i + 1
                while end < n and (sql[end] in _WORD_PART or ord(sql[end]) > 127):
                    end += 1
                if end < n and sql[end] == "'" and sql[i:end] in ("E", "e"):
                    end = self._string_end(end, escapes=True)
                    previous_word = ""
                else:
                    word = sql[i:end].upper()
                    if word == "ATOMIC" and previous_word == "BEGIN":
                        block_depth += 1
                    elif block_depth and word == "CASE":
                        block_depth += 1
                    elif block_depth and word == "END":
                        block_depth -= 1
                    previous_word = word
                i = last = end
                continue
            previous_word = ""
            if ch == "'":
                end = self._string_end(i, escapes=self.backslash_escapes)
            elif ch == '"':
                end = self._quoted_end(i, '"')
            elif ch == "$":
                end = self._dollar_end(i)
            elif sql.startswith("{{", i):
                end = self._action_end(i)
            else:
                end = i + 1
            i = last = end
        if first is not None:
            found.append(self._statement(first, last, terminated=False))
        return found

    def _statement(self, start: int, end: int, *, terminated: bool) -> Statement:
        line, column = self.lines.position(start)
        return Statement(self.sql[start:end], start, end, line, column, terminated)

    def _block_comment_end(self, i: int) -> int:
        """Just past the ``*/`` closing the (nested) comment opened at ``i``."""
        sql, depth, i = self.sql, 1, i + 2
        while i < len(sql) and depth:
            if sql.startswith("/*", i):
                depth, i = depth + 1, i + 2
            elif sql.startswith("*/", i):
                depth, i = depth - 1, i + 2
            else:
                i += 1
        return i

    def _string_end(self, i: int, *, escapes: bool) -> int:
        """Just past the single-quoted string whose opening quote is at ``i``."""
        sql, i = self.sql, i + 1
        while i < len(sql):
            ch = sql[i]
            if escapes and ch == "\\":
                i += 2
            elif ch == "'":
                if sql.startswith("''", i):
                    i += 2
                else:
                    return i + 1
            else:
                i += 1
        return len(sql)

    def _quoted_end(self, i: int, quote: str) -> int:
        """Just past a quoted identifier (the quote doubled inside)."""
        sql, i = self.sql, i + 1
        while i < len(sql):
            if sql[i] == quote:
                if sql.startswith(quote * 2, i):
                    i += 2
                    continue
                return i + 1
            i += 1
        return len(sql)

    def _dollar_end(self, i: int) -> int:
        """Just past a ``$tag$ ... $tag$`` body at ``i``; ``i + 1`` for a lone ``$``
        or a parameter such as ``$1``."""
        sql = self.sql
        if i > 0 and sql[i - 1] in _WORD_PART:
            return i + 1  # inside an identifier such as a$b
        end = i + 1
        while end < len(sql) and (sql[end] in _WORD_START or ord(sql[end]) > 127
                                  or (end > i + 1 and sql[end].isdigit())):
            end += 1
        if end >= len(sql) or sql[end] != "$":
            return i + 1
        tag = sql[i:end + 1]
        close = sql.find(tag, end + 1)
        return len(sql) if close < 0 else close + len(tag)

    def _action_end(self, i: int) -> int:
        """Just past the Go template action ``{{ ... }}`` opened at ``i``."""
        sql, n = self.sql, len(self.sql)
        j = i + 2
        if sql.startswith("- ", j):
            j += 2
        if sql.startswith("/*", j):
            close = sql.find("*/", j + 2)
            if close < 0:
                return n
            end = sql.find("}}", close + 2)
            return n if end < 0 else end + 2
        while j < n:
            ch = sql[j]
            if sql.startswith("}}", j):
                return j + 2
            if ch == '"' or ch == "'":
                j += 1
                while j < n and sql[j] != ch:
                    j += 2 if sql[j] == "\\" else 1
                j += 1
            elif ch == "`":
                close = sql.find("`", j + 1)
                j = n if close < 0 else close + 1
            else:
                j += 1
        return n
