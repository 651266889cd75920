"""Synthetic Snowplow web events for tests and benchmarks: generate them, load them with COPY."""

from sqlrunner.generate.columns import COLUMN_DEFINITIONS, COLUMNS
from sqlrunner.generate.events import (
    SHAPES,
    Batch,
    EventRates,
    GeneratorConfig,
    generate_batches,
    generate_events,
)

__all__ = [
    "COLUMNS",
    "COLUMN_DEFINITIONS",
    "Batch",
    "EventRates",
    "GeneratorConfig",
    "SHAPES",
    "generate_batches",
    "generate_events",
]
