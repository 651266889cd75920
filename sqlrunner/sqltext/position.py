"""Turn a server error's character position into a file line, column and caret excerpt."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SourcePosition:
    """A 1-based line and column in a SQL text, with the line itself."""

    line: int
    column: int
    text: str

    def excerpt(self) -> str:
        """The failing line and a caret under the column."""
        prefix = self.text[: self.column - 1]
        pad = "".join("\t" if ch == "\t" else " " for ch in prefix)
        return f"{self.text}\n{pad}^"


def position_in(sql: str, statement_position: str | int | None) -> SourcePosition | None:
    """Where PostgreSQL's 1-based character offset ``statement_position`` falls in ``sql``."""
    offset = _offset(statement_position)
    if offset is None or offset < 0 or offset > len(sql):
        return None
    line_start = sql.rfind("\n", 0, offset) + 1
    line_end = sql.find("\n", offset)
    if line_end < 0:
        line_end = len(sql)
    line = sql.count("\n", 0, offset) + 1
    return SourcePosition(line=line, column=offset - line_start + 1,
                          text=sql[line_start:line_end].rstrip("\r"))


_NEAR = ' at or near "'
SYNTAX_ERROR = "42601"


def user_error(message: str, sqlstate: str | None, statement_position: str | int | None,
               start: int, user_sql: str) -> tuple[int | None, str]:
    """Where a server error falls in the user's SQL, and its message as the server words it
    when sent the user's SQL alone.

    The text sent holds ``user_sql`` (the file, rendered) at character ``start``, with the
    runner's own statements around it: an upsert's before it, a checkpoint or an upsert's
    after it. Returns the 0-based offset in ``user_sql`` (None when the error has no
    position or lies in the runner's statements) and the message on one line. A syntax
    error past the end of the user's SQL (the runner's statements are well formed) is the
    user's unfinished statement, or unclosed quote, meeting the runner's text: it is placed
    at the end of the user's SQL and worded as PostgreSQL words a bare end of input. A token
    that starts in the user's SQL and swallows the runner's text to its end (an unclosed
    comment or dollar quote) is quoted only up to the end of the user's SQL.
    """
    offset = _offset(statement_position)
    if offset is not None:
        offset -= start
    end = len(user_sql)
    if offset is None or offset < 0:
        return None, _one_line(message)
    if offset >= end and sqlstate == SYNTAX_ERROR:
        return end, "syntax error at end of input"
    if offset > end:
        return None, _one_line(message)
    near = message.rfind(_NEAR)
    if near >= 0 and message.endswith('"'):
        quoted = message[near + len(_NEAR):-1]
        rest = user_sql[offset:]
        if len(quoted) > len(rest) and quoted.startswith(rest):
            message = f"{message[:near]}{_NEAR}{rest}\""
    return offset, _one_line(message)


def _offset(statement_position: str | int | None) -> int | None:
    """PostgreSQL's 1-based character position as a 0-based offset, or None."""
    if statement_position in (None, ""):
        return None
    try:
        return int(statement_position) - 1  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _one_line(message: str) -> str:
    """A server message quoting SQL that spans lines, with its line breaks shown as \\n."""
    return message.replace("\r", "\\r").replace("\n", "\\n")
