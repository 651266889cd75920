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
    if statement_position in (None, ""):
        return None
    try:
        offset = int(statement_position) - 1
    except (TypeError, ValueError):
        return None
    if offset < 0 or offset > len(sql):
        return None
    line_start = sql.rfind("\n", 0, offset) + 1
    line_end = sql.find("\n", offset)
    if line_end < 0:
        line_end = len(sql)
    line = sql.count("\n", 0, offset) + 1
    return SourcePosition(line=line, column=offset - line_start + 1,
                          text=sql[line_start:line_end].rstrip("\r"))
