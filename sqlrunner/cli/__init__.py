"""The command line: each command parses its flags, calls the library (:mod:`sqlrunner.api`,
:mod:`sqlrunner.check`, :mod:`sqlrunner.generate`) and prints; :func:`main` dispatches
and maps what ends a command to SQL Runner's exit code, in one place
(:func:`~sqlrunner.cli.options.run_command`). Nothing else happens here, and nothing
below imports it.
"""

from __future__ import annotations

import importlib
import signal
import sys
from collections.abc import Sequence
from typing import Any

from sqlrunner.cli import run
from sqlrunner.cli.options import Command, run_command
from sqlrunner.errors import EXIT_OK

# Each command's module, imported only when that command runs: a plain run must not pay for
# the linter, the generator, psql or status at start-up (tests/test_startup.py).
COMMANDS: dict[str, str] = {
    "run": "sqlrunner.cli.run",
    "status": "sqlrunner.cli.status",
    "check": "sqlrunner.cli.check",
    "generate": "sqlrunner.cli.generate",
    "demo": "sqlrunner.cli.demo",
    "psql": "sqlrunner.cli.psql",
}


def command(name: str) -> Command:
    """The ``command`` function of the command called ``name``, importing its module."""
    module = importlib.import_module(COMMANDS[name])
    found: Command = module.command
    return found


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
        return run_command(command(name), arguments)
    finally:
        signal.signal(signal.SIGTERM, previous)
