"""``sqlrunner status -p PLAYBOOK``: where each target goes, its recent runs (a table with a
header for every column; a run whose process is gone shows as died), and where one stopped.
With ``--history``, each run's steps and queries with their durations, the slowest first
(``--format json`` for tools; see history.py)."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from typing import Any

from sqlrunner.cli.options import (
    ArgumentParser,
    non_negative_int,
    run_options,
    variables,
    warn_unused_variables,
)
from sqlrunner.errors import EXIT_OK, UsageError
from sqlrunner.secrets import SecretRegistry

HEADERS = ("RUN", "STATUS", "RAN", "STARTED (UTC)", "ENDED (UTC)", "ATTEMPTS", "HOST", "PID")
# What a run covered: the whole playbook (what a resume continues), or a part of it
# (--from-step, --run-query). Not "full": a Snowplow user reads that as the full model.
MODES = {"full": "whole playbook", "partial": "partial"}
DIED = "died"


def process_gone(host: str | None, pid: int | None) -> bool:
    """Whether the process ``pid`` on ``host`` is certainly gone: only this host can tell."""
    if not pid or host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def run_state(run: Any, lock_held: bool | None) -> str:
    """A run's status as recorded, except that a run recorded as running whose process is
    gone (its pid dead on this host, or nobody holding the playbook's lock) has died."""
    if run.status != "running":
        return run.status
    if lock_held is False or process_gone(run.host, run.pid):
        return DIED
    return run.status


def table(headers: Sequence[str], rows: Sequence[Sequence[str]],
          right: frozenset[str] = frozenset({"ATTEMPTS", "PID"})) -> list[str]:
    """Lines of a plain table: a header for every column, columns as wide as their text
    (those headed by a name in ``right`` aligned to the right)."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows,
                                                                         strict=True)]
    return ["  ".join(cell.rjust(width) if header in right else cell.ljust(width)
                      for cell, width, header in zip(line, widths, headers, strict=True)
                      ).rstrip()
            for line in (headers, *rows)]


def command(argv: list[str], secrets: SecretRegistry) -> int:
    """Print the recent runs of a playbook on each of its targets."""
    from sqlrunner import api
    from sqlrunner.report import target_lines

    parser = ArgumentParser(prog="sqlrunner status", allow_abbrev=False,
                            description="Show the recent runs of a playbook on its targets.")
    parser.add_argument("-p", "--playbook", "-playbook", dest="playbook", required=True)
    parser.add_argument("--var", "-var", dest="var", action="append", default=[])
    parser.add_argument("--var-file", dest="var_file")
    parser.add_argument("--target", dest="target")
    parser.add_argument("--sqlroot", "-sqlroot", dest="sql_root", metavar="SQLROOT")
    parser.add_argument("--state-schema", dest="state_schema", default="sqlrunner")
    parser.add_argument("--embedded-dir", dest="embedded_dir")
    parser.add_argument("--limit", type=non_negative_int, default=10,
                        help="how many recent runs to show (default 10)")
    parser.add_argument("--history", action="store_true",
                        help="each run's steps and queries with their durations, rows and "
                             "status, the slowest first")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="with --history: json prints one JSON document for tools")
    args = parser.parse_args(argv)
    if args.format == "json" and not args.history:
        raise UsageError("--format json goes with --history")
    options = run_options(args, variables=variables(args))
    plan = api.prepare(args.playbook, options, secrets)
    warn_unused_variables(plan, options.variables or {}, secrets)
    if args.history:
        from sqlrunner.cli.history import print_history

        print_history(target_lines(plan, args.embedded_dir),
                      api.history(plan, options, args.limit), args.format)
        return EXIT_OK
    # Each target's section starts with where it went and which rule chose it.
    for heading, status in zip(target_lines(plan, args.embedded_dir),
                               api.status(plan, options, args.limit), strict=True):
        print(heading)
        if status.error:
            print(f"  cannot read its runs: {status.error}")
            continue
        if not status.runs:
            print("  no runs recorded")
            continue
        rows = [(run.run_id[:8], run_state(run, status.lock_held), MODES.get(run.mode, run.mode),
                 f"{run.started_at:%Y-%m-%d %H:%M:%S}",
                 f"{run.ended_at:%Y-%m-%d %H:%M:%S}" if run.ended_at else "-",
                 str(run.attempts), run.host or "-", str(run.pid or "-"))
                for run in status.runs]
        for line in table(HEADERS, rows):
            print(f"  {line}")
        if status.next_query:
            print(f"  unfinished: {len(status.done)} queries done; the next run resumes at "
                  f"{status.next_query}")
        if status.gone:
            print(f"  the next run builds again what a server crash emptied: "
                  f"{', '.join(status.gone)}")
    return EXIT_OK
