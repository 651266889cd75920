"""The setup DDL that is repeated on purpose stays in step.

``sql/setup/03_landing_events.sql`` repeats the 128 column definitions of
``sql/setup/02_atomic_events.sql`` rather than using ``LIKE`` (its header says why). The
model's contract needs the two tables to have the same columns, types and ``NOT NULL``s
on both engines; the PostgreSQL layout test only sees PostgreSQL and ignores ``NOT NULL``,
so this compares the source text.
"""

from __future__ import annotations

import re
from pathlib import Path

SETUP = Path(__file__).resolve().parent.parent / "sql" / "setup"


def _column_block(name: str) -> str:
    text = (SETUP / name).read_text()
    match = re.search(r"^CREATE TABLE IF NOT EXISTS \S+ \(\n(.*?)^\)", text, re.S | re.M)
    assert match, f"{name}: no CREATE TABLE column list found"
    return match.group(1)


def test_landing_repeats_atomic_column_definitions_exactly() -> None:
    atomic = _column_block("02_atomic_events.sql")
    landing = _column_block("03_landing_events.sql")
    assert len(re.findall(r"^\s+[a-z_0-9]+\s+[A-Z]", atomic, re.M)) == 128
    assert landing == atomic
