"""``sqlrunner psql [-d DATABASE] [psql arguments]``: psql on the database every command
would use (``--target``, ``SQLRUNNER_TARGET``, libpq's environment, else the embedded
server, which runs as long as psql does): the way into the demo's and the playbooks' data."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import replace

from sqlrunner.cli.options import ArgumentParser
from sqlrunner.errors import TargetError, UsageError
from sqlrunner.secrets import SecretRegistry


def parser() -> ArgumentParser:
    """The parser of ``sqlrunner psql``; what it does not know goes to psql."""
    parser = ArgumentParser(
        prog="sqlrunner psql", allow_abbrev=False,
        description="Run psql on the database sqlrunner would use: --target, "
                    "$SQLRUNNER_TARGET, libpq's PGHOST/PGDATABASE/PGSERVICE..., else the "
                    "embedded PostgreSQL (started if needed, kept running while psql runs). "
                    "Other arguments go to psql (-c 'SELECT ...', -f FILE, ...).")
    add = parser.add_argument
    add("-d", "--database", dest="database", metavar="NAME",
        help="another database of that server (the demo's: sqlrunner_demo)")
    add("--target", dest="target", metavar="DSN", help="a libpq DSN, or 'embedded'")
    add("--embedded-dir", dest="embedded_dir", metavar="DIR",
        help="data folder of the embedded PostgreSQL (default: .sqlrunner/)")
    return parser


def psql_binary() -> str:
    """psql on the PATH, else the one the embedded server's package ships."""
    found = shutil.which("psql")
    if found:
        return found
    from sqlrunner.execute import embedded

    bundled = embedded.client_program("psql")
    if bundled.exists():
        return str(bundled)
    raise TargetError("psql not found: install PostgreSQL's client (psql)")


def command(argv: list[str], secrets: SecretRegistry) -> int:
    """Run psql on the resolved database; psql's exit code."""
    from sqlrunner.execute.targets import resolve_targets, server_dsn, target_lines

    args, rest = parser().parse_known_args(argv)
    if rest and rest[0] == "--":
        rest = rest[1:]
    if any(arg.startswith("--target") or arg.startswith("--embedded-dir") for arg in rest):
        raise UsageError("--target and --embedded-dir come before psql's arguments")
    (target,) = resolve_targets((), args.target)
    if args.database:
        target = replace(target, database=args.database)
    secrets.add(target.password)
    for line in target_lines((target,), args.embedded_dir):
        sys.stderr.write(f"sqlrunner psql: {line}\n")
    dsn = server_dsn(target, args.embedded_dir)
    binary = psql_binary()
    sys.stderr.flush()
    # psql runs as a child so that this process, a user of the embedded server, keeps it
    # running until psql ends.
    return subprocess.call([binary, dsn, *rest], env=os.environ.copy())
