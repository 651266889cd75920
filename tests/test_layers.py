"""The layers of sqlrunner/ (README, "Layout") are a contract: import-linter checks the
layers, that the library never imports the command line, and that the template engine is
a leaf (pyproject.toml, [tool.importlinter]). Functions' own imports count too."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

LINT = ("import sys; from importlinter.cli import lint_imports; "
        "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True, "
        "no_logo=True))")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    """import-linter's contracts of pyproject.toml over the sqlrunner/ package in ``root``."""
    return subprocess.run([sys.executable, "-c", LINT], cwd=root, capture_output=True,
                          text=True, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
                          timeout=300)


def _copy(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(ROOT / "sqlrunner", tmp_path / "sqlrunner",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_the_package_keeps_every_import_contract() -> None:
    done = _lint(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 kept, 0 broken" in done.stdout


@pytest.mark.parametrize(("module", "line", "broken", "summary"), [
    # execute calling back into the portability check (the cycle this layout removed)
    ("execute/state.py", "def _shape():\n    from sqlrunner.check import check_sql\n",
     "The layers", "2 kept, 1 broken"),
    # the library reaching for the command line's helpers (an upward import as well)
    ("api.py", "def _var():\n    from sqlrunner.cli.options import parse_var\n",
     "The library never imports the command line", "1 kept, 2 broken"),
    # the template engine reaching out of its leaf
    ("template/values.py", "from sqlrunner.secrets import MASK\n",
     "The template engine is a leaf", "2 kept, 1 broken"),
])
def test_an_upward_import_breaks_a_contract(tmp_path: Path, module: str, line: str,
                                            broken: str, summary: str) -> None:
    root = _copy(tmp_path)
    path = root / "sqlrunner" / module
    path.write_text(path.read_text() + "\n\n" + line)
    done = _lint(root)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"Contracts: {summary}." in done.stdout
    assert broken in done.stdout.split("Broken contracts", 1)[1]
