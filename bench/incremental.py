"""Incremental runs (playbooks/incremental.yml) against the full rebuild of the same data, and
the move from landing to atomic against a bare ``INSERT ... SELECT`` plus ``DELETE``.

The hook of issue 10: while playbooks/incremental.yml does not exist, this section
reports itself as skipped and says why.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.db import ROOT

PLAYBOOK = ROOT / "playbooks" / "incremental.yml"


def available() -> str | None:
    """None when the incremental mode can be benchmarked, else the reason it cannot."""
    if not PLAYBOOK.exists():
        return "playbooks/incremental.yml does not exist yet"
    return None


def measure(server_dsn: str, work: Path, histories: list[int], batches: list[float],
            seed: int, runs: int, regenerate: bool = False,
            log: Callable[[str], None] = print) -> dict[str, Any]:
    """This section's figures, or ``{"skipped": reason}``."""
    reason = available()
    if reason is not None:
        log(f"  skipped: {reason}")
        return {"skipped": reason}
    return {"skipped": "the incremental playbook exists but this benchmark does not run it "
                       "yet"}
