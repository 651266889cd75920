"""Data tests (a query's ``assert: no_rows``): judge what the test's SELECT returned, and
tell a failure with its first offending rows."""

from __future__ import annotations

from typing import Any

from sqlrunner.errors import DataTestFailed
from sqlrunner.playbook import NO_ROWS

SHOWN_ROWS = 10  # offending rows kept in the log and the JSON report


def check_no_rows(columns: tuple[str, ...], rows: list[tuple[Any, ...]] | tuple[Any, ...],
                  count: int) -> None:
    """Raise :class:`DataTestFailed` when the test's SELECT returned rows (``count`` of them,
    ``rows`` holding at least the first few)."""
    if count <= 0 and not rows:
        return
    count = max(count, len(rows))
    shown = tuple(tuple(row) for row in rows[:SHOWN_ROWS])
    first = ", ".join(f"{c}={_value(v)}" for c, v in zip(columns, shown[0], strict=False))
    noun = "row" if count == 1 else "rows"
    raise DataTestFailed(f"data test failed (assert: {NO_ROWS}): it returned {count} {noun}; "
                         f"the first: {first}", columns, shown, count)


def offending_table(columns: tuple[str, ...], rows: tuple[tuple[Any, ...], ...]) -> str:
    """The offending rows as a small text table (header, then one line per row)."""
    cells = [list(columns)] + [[_value(v) for v in row] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join(" | ".join(cell.ljust(width) for cell, width in zip(line, widths,
                                                                          strict=False)).rstrip()
                     for line in cells)


def _value(value: Any) -> str:
    return "NULL" if value is None else str(value)
