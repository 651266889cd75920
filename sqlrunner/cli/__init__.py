"""The command line: each command parses its flags, calls the library (:mod:`sqlrunner.api`,
:mod:`sqlrunner.check`, :mod:`sqlrunner.generate`) and prints; :func:`main` dispatches
and maps what ends a command to SQL Runner's exit code, in one place
(:func:`~sqlrunner.cli.options.run_command`). Nothing else happens here, and nothing
below imports it.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence
from typing import Any

from sqlrunner.cli import check, demo, generate, psql, run, status
from sqlrunner.cli.options import Command, run_command
from sqlrunner.errors import EXIT_OK

COMMANDS: dict[str, Command] = {
    "run": run.command,
    "status": status.command,
    "check": check.command,
    "generate": generate.command,
    "demo": demo.command,
    "psql": psql.command,
}


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sqlrunner`` command; returns the exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments and arguments[0] in ("-h", "--help", "-help", "help"):
        run.parser().print_help()
        return EXIT_OK
    name = "run"
    if arguments and arguments[0] in COMMANDS:
        name = arguments.pop(0)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return run_command(COMMANDS[name], arguments)
    finally:
        signal.signal(signal.SIGTERM, previous)
