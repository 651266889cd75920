"""Run a command as a child process: its wall time, exit code and peak memory (RSS)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# Bytecode of the runner's modules is kept here, so that the runner starts as it does
# once installed (pip compiles every module), also where PYTHONDONTWRITEBYTECODE is set.
PYCACHE = Path(tempfile.gettempdir()) / "sqlrunner-bench-pycache"


@dataclass(frozen=True)
class Completed:
    """One finished child: wall seconds from spawn to reaped, exit code, peak RSS in bytes."""

    seconds: float
    returncode: int
    max_rss: int
    stderr: str


def run(command: Sequence[str], env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None, check: bool = True) -> Completed:
    """Run ``command`` with output discarded (stderr kept for errors) and time it."""
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        child = subprocess.Popen(list(command), stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=errors, cwd=cwd,
                                 env=dict(env) if env is not None else None)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        errors.seek(0)
        stderr = errors.read().decode("utf-8", "replace")
    done = Completed(seconds, child.returncode, usage.ru_maxrss * 1024, stderr)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{stderr[-2000:]}")
    return done


def runner_env(extra: Mapping[str, str] | None = None, cached_bytecode: bool = True
               ) -> dict[str, str]:
    """The environment the runner is benchmarked in: plain log lines, cached bytecode."""
    env = dict(os.environ)
    env.pop("SQLRUNNER_TARGET", None)
    for name in ("FORCE_COLOR", "TTY_INTERACTIVE", "TTY_COMPATIBLE"):
        env.pop(name, None)
    if cached_bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    env.update(extra or {})
    return env


def runner_command(*args: str) -> list[str]:
    """``python -m sqlrunner ARGS``, with this interpreter."""
    return [sys.executable, "-m", "sqlrunner", *args]
