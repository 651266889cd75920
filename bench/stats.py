"""A measured figure: every value of its runs, reported as median with min and max."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Figure:
    """The values of one quantity over several runs, in ``unit``."""

    values: tuple[float, ...]
    unit: str = "s"

    @classmethod
    def of(cls, values: Sequence[float], unit: str = "s") -> Figure:
        """A figure from a list of run values (at least one)."""
        if not values:
            raise ValueError("a figure needs at least one value")
        return cls(tuple(float(v) for v in values), unit)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def min(self) -> float:
        return min(self.values)

    @property
    def max(self) -> float:
        return max(self.values)

    def to_json(self) -> dict[str, Any]:
        """``{"unit", "median", "min", "max", "runs", "values"}``, rounded for reading."""
        return {"unit": self.unit, "median": _round(self.median), "min": _round(self.min),
                "max": _round(self.max), "runs": len(self.values),
                "values": [_round(v) for v in self.values]}

    def text(self, scale: float = 1.0, unit: str | None = None, digits: int = 2) -> str:
        """``median unit (min–max)``, values multiplied by ``scale``."""
        unit = self.unit if unit is None else unit
        return (f"{self.median * scale:.{digits}f} {unit} "
                f"({self.min * scale:.{digits}f}–{self.max * scale:.{digits}f})")


def paired(numerators: Sequence[float], denominators: Sequence[float],
           unit: str = "x") -> Figure:
    """Per-run ratios of two series measured in the same rounds (run i against run i)."""
    if len(numerators) != len(denominators):
        raise ValueError("paired series must have the same number of runs")
    return Figure.of([n / d for n, d in zip(numerators, denominators, strict=True)], unit)


def marginal_per_query(runner_many: Sequence[float], runner_one: Sequence[float],
                       psql_many: Sequence[float], psql_one: Sequence[float],
                       queries: int) -> Figure:
    """Issue 10's per-query overhead, per round, in seconds:
    ``((T_many - T_one) - (psql_many - psql_one)) / (queries - 1)``."""
    rounds = zip(runner_many, runner_one, psql_many, psql_one, strict=True)
    return Figure.of([((tm - t1) - (pm - p1)) / (queries - 1) for tm, t1, pm, p1 in rounds])


def memory_figure(values: Sequence[int | None]) -> dict[str, Any] | None:
    """Peak RSS values (bytes) as JSON, or None when they were not measured."""
    if not values or any(v is None for v in values):
        return None
    return Figure.of([float(v) for v in values if v is not None], "B").to_json()


def _round(value: float) -> float:
    return float(f"{value:.6g}")
