"""What every command's parser shares: argparse that raises UsageError, Go's boolean flags,
``--var``, number types, the playbook options, and the one place errors become exit codes."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import Any

from sqlrunner.errors import SqlRunnerError, UsageError, exit_code_for
from sqlrunner.secrets import SecretRegistry

# A command: its arguments and the run's secrets (to mask in its output) -> exit code.
Command = Callable[[list[str], SecretRegistry], int]

BOOL_FLAGS = {
    "dryRun": "dry_run", "fillTemplates": "fill_templates",
    "showQueryOutput": "show_query_output", "version": "version",
    "dry-run": "dry_run", "fill-templates": "fill_templates",
    "show-query-output": "show_query_output",
}


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises UsageError (exit 2, one line) instead of printing usage."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def normalise_bool_flags(argv: Sequence[str]) -> list[str]:
    """Go accepts ``-dryRun=false``; turn ``-flag=true`` into ``-flag`` and drop ``=false``."""
    out = []
    for arg in argv:
        name, sep, value = arg.lstrip("-").partition("=")
        if arg.startswith("-") and sep and name in BOOL_FLAGS:
            lowered = value.lower()
            if lowered in ("1", "t", "true"):
                out.append(arg.split("=", 1)[0])
            elif lowered in ("0", "f", "false"):
                continue
            else:
                raise UsageError(f"invalid boolean value {value!r} for -{name}")
        else:
            out.append(arg)
    return out


def parse_var(text: str) -> dict[str, str]:
    """``k=v``; also SQL Runner's ``a=1,b=2`` when every comma-separated part has a ``=``."""
    parts = text.split(",")
    if len(parts) > 1 and all("=" in p for p in parts):
        pairs = parts
    else:
        pairs = [text]
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--var expects KEY=VALUE, got {pair!r}")
        result[key] = value
    return result


def non_negative_int(text: str) -> int:
    """An argparse type: a whole number, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {text!r}")
    return value


def seconds(text: str) -> float:
    """An argparse type: a number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more seconds, got {text!r}")
    return value


def variables(args: argparse.Namespace) -> dict[str, Any]:
    """The template variables of ``--var-file`` (if the command has it) and ``--var``."""
    from sqlrunner.api import load_variables

    found = load_variables(getattr(args, "var_file", None))
    for item in args.var:
        found.update(parse_var(item))
    return found


def run_options(args: argparse.Namespace, **given: Any) -> Any:
    """The library's RunOptions from the parsed flags whose names are its fields."""
    from sqlrunner.api import RunOptions

    names = {f.name for f in fields(RunOptions)} & vars(args).keys()
    return RunOptions(**{name: getattr(args, name) for name in names}, **given)


def error(message: str) -> None:
    """Print one error line as SQL Runner does."""
    sys.stderr.write(f"sqlrunner: error: {message}\n")


def warning(message: str) -> None:
    """Print one warning line; the command goes on."""
    sys.stderr.write(f"sqlrunner: warning: {message}\n")


def warn_unused_variables(plan: Any, given: dict[str, Any], secrets: SecretRegistry) -> None:
    """Point out each ``--var``/``--var-file`` variable that nothing reads, with the closest
    name that something does (every command that takes them: run, status, check)."""
    from sqlrunner.api import unused_variable_warnings

    for message in unused_variable_warnings(plan, given):
        warning(secrets.mask(message))


def run_command(command: Command, argv: list[str]) -> int:
    """Run a command and map what ends it to SQL Runner's exit code: the one place."""
    secrets = SecretRegistry()
    try:
        return command(argv, secrets)
    except SqlRunnerError as err:
        error(secrets.mask(str(err)))
        return exit_code_for(err)
    except KeyboardInterrupt as err:
        error("interrupted")
        return exit_code_for(err)
    except BrokenPipeError as err:
        # Whoever read the output stopped (``| head``): end quietly, as a command that
        # SIGPIPE ended, with no traceback and no error about flushing at exit.
        _discard_output()
        return exit_code_for(err)


def _discard_output() -> None:
    """Point stdout and stderr at /dev/null, so that nothing more is written to a pipe
    nobody reads (Python flushes both at exit)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            os.dup2(devnull, stream.fileno())
        except (OSError, ValueError):
            pass  # not a real file (a test's capture): nothing to flush there
    os.close(devnull)
