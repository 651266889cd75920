"""Run a command as a child process: its wall time, exit code and peak memory (RSS).

Peak RSS is taken by GNU time (``/usr/bin/time -f %M``), not from ``wait4``: Linux counts in
a child's ``ru_maxrss`` the memory of the process that forked it (the copy made before
``exec``), so a child of this Python process would seem to use whatever this process
holds. GNU time is small, so the figure is the command's own.
"""

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
GNU_TIME = "/usr/bin/time"


@dataclass(frozen=True)
class Completed:
    """One finished child: wall seconds from spawn to reaped, exit code, peak RSS in bytes
    (None unless asked for and GNU time is installed), and the CPU seconds (user + system)
    of the child and its own children, from ``wait4`` (GNU time's, when it wraps it, are
    a millisecond or so)."""

    seconds: float
    returncode: int
    max_rss: int | None
    stderr: str
    cpu_seconds: float = 0.0


def can_measure_memory() -> bool:
    """Whether peak RSS can be measured (GNU time is installed)."""
    return os.access(GNU_TIME, os.X_OK)


def run(command: Sequence[str], env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None, check: bool = True,
        memory: bool = False) -> Completed:
    """Run ``command`` with output discarded (stderr kept for errors) and time it; with
    ``memory``, also its peak RSS (through GNU time, which adds about a millisecond)."""
    with tempfile.TemporaryFile() as errors, tempfile.NamedTemporaryFile("r") as rss:
        argv = list(command)
        if memory and can_measure_memory():
            argv = [GNU_TIME, "-f", "%M", "-o", rss.name, *argv]
        started = time.perf_counter()
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=errors, cwd=cwd,
                                 env=dict(env) if env is not None else None)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        errors.seek(0)
        stderr = errors.read().decode("utf-8", "replace")
        kilobytes = rss.read().strip().splitlines()
    max_rss = int(kilobytes[-1]) * 1024 if kilobytes and kilobytes[-1].isdigit() else None
    done = Completed(seconds, child.returncode, max_rss, stderr,
                     usage.ru_utime + usage.ru_stime)
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
