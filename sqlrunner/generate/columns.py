"""The 128 columns of Snowplow's atomic.events table, as the generator writes them (the
definitions are in :mod:`sqlrunner.atomic_events`, which the model's options check too)."""

from __future__ import annotations

from sqlrunner.atomic_events import COLUMN_DEFINITIONS

__all__ = ["COLUMNS", "COLUMN_DEFINITIONS", "COLUMN_INDEX"]

COLUMNS: tuple[str, ...] = tuple(name for name, _ in COLUMN_DEFINITIONS)
COLUMN_INDEX: dict[str, int] = {name: i for i, name in enumerate(COLUMNS)}

assert len(COLUMNS) == 128, "Snowplow's atomic.events 0.11.0 has 128 columns"
