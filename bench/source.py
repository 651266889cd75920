"""Trees of earlier commits, exported with ``git archive``, to measure against this one."""

from __future__ import annotations

import subprocess
import tarfile
from io import BytesIO
from pathlib import Path

from bench.db import ROOT


def export_tree(ref: str, paths: list[str], folder: Path) -> bool:
    """Export ``paths`` of commit ``ref`` into ``folder``; False when git or the commit is
    not there."""
    try:
        archive = subprocess.run(["git", "archive", ref, *paths], cwd=ROOT,
                                 capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return False
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return True
