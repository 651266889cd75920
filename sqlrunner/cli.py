"""The command line: parse flags (SQL Runner's spellings and ours), call the library, map
errors to SQL Runner's exit codes. Nothing else happens here."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

from sqlrunner import __version__
from sqlrunner.errors import (
    EXIT_LOCK_EXISTS,
    EXIT_NOTHING_RAN,
    EXIT_OK,
    EXIT_TARGET,
    EXIT_USAGE,
    SqlRunnerError,
    UsageError,
    exit_code_for,
)

BOOL_FLAGS = {
    "dryRun": "dry_run", "fillTemplates": "fill_templates",
    "showQueryOutput": "show_query_output", "version": "version",
    "dry-run": "dry_run", "fill-templates": "fill_templates",
    "show-query-output": "show_query_output",
}
SUBCOMMANDS: dict[str, Callable[[list[str]], int]] = {}


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises UsageError (exit 2, one line) instead of printing usage."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def _normalise_bool_flags(argv: Sequence[str]) -> list[str]:
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


def _parse_var(text: str) -> dict[str, str]:
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


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more seconds, got {text!r}")
    return value


def run_parser() -> ArgumentParser:
    """The parser of ``sqlrunner [run]``: every SQL Runner flag and our own."""
    from sqlrunner.execute.retry import DEFAULT_OUTAGE

    parser = ArgumentParser(
        prog="sqlrunner", allow_abbrev=False,
        description="Run a SQL Runner playbook against PostgreSQL, Redshift or the embedded "
                    "PostgreSQL. Subcommands: run (the default), status, check, generate, demo; "
                    "each has --help.",
    )
    add = parser.add_argument
    add("-p", "--playbook", "-playbook", dest="playbook", metavar="PLAYBOOK",
        help="the playbook (YAML) to run")
    add("--var", "-var", dest="var", action="append", default=[], metavar="KEY=VALUE",
        help="a template variable (repeatable); overrides the playbook's")
    add("--var-file", dest="var_file", metavar="FILE",
        help="a YAML file of template variables (typed as in playbooks)")
    add("--from-step", "-fromStep", "--fromStep", dest="from_step", metavar="STEP",
        help="start from the first step of this name")
    add("--run-query", "-runQuery", "--runQuery", dest="run_query", metavar="STEP::QUERY",
        help="run only this query")
    add("--dry-run", "-dryRun", "--dryRun", dest="dry_run", action="store_true",
        help="validate and render everything, check each target, execute nothing")
    add("--fill-templates", "-fillTemplates", "--fillTemplates", dest="fill_templates",
        action="store_true", help="print every rendered query and exit 8")
    add("--format", choices=("text", "json"), default="text",
        help="with --fill-templates: text (to stderr) or one JSON object per query (stdout)")
    add("--show-query-output", "-showQueryOutput", "--showQueryOutput",
        dest="show_query_output", action="store_true", help="print the rows queries return")
    add("--lock", "-lock", dest="lock", metavar="PATH",
        help="a lock file, kept if the run fails")
    add("--soft-lock", "-softLock", "--softLock", dest="soft_lock", metavar="PATH",
        help="a lock file, removed whatever the outcome")
    add("--check-lock", "-checkLock", "--checkLock", dest="check_lock", metavar="PATH",
        help="exit 3 if this lock file exists, else 0")
    add("--delete-lock", "-deleteLock", "--deleteLock", dest="delete_lock", metavar="PATH",
        help="delete this lock file (exit 1 if absent)")
    add("--sqlroot", "-sqlroot", dest="sqlroot", metavar="PLAYBOOK|BINARY|DIR",
        help="where query files are found (default: the playbook's folder)")
    add("--target", dest="target", metavar="DSN",
        help="run against this database instead of the playbook's targets "
             "(postgresql://..., redshift://..., key=value, or 'embedded'); "
             "also SQLRUNNER_TARGET")
    add("--max-parallel", dest="max_parallel", type=int, metavar="N",
        help="at most N queries of a step at once (default: all)")
    add("--report", dest="report", metavar="FILE", help="write a JSON run report")
    add("--template-missing", dest="template_missing", choices=("error", "novalue"),
        default="error", help="a missing variable printed into SQL: error, or Go's <no value>")
    add("--progress", choices=("auto", "live", "plain"), default="auto",
        help="live view on a terminal (auto), or plain log lines")
    add("--embedded-dir", dest="embedded_dir", metavar="DIR",
        help="data folder of the embedded PostgreSQL (default: .sqlrunner/)")
    add("--retries", type=_non_negative_int, default=3, metavar="N",
        help="retries of a query after a transient error (default 3; playbook, target and "
             "query settings win)")
    add("--retry-backoff", dest="retry_backoff", type=_seconds, default=1.0, metavar="S",
        help="seconds before the first retry; doubles with jitter (default 1)")
    add("--reconnect-timeout", dest="reconnect_timeout", type=_seconds,
        default=DEFAULT_OUTAGE, metavar="S",
        help="how long a target may stay unreachable (a server restart, crash or failover, "
             "a network outage, a server down when the run starts) while the run waits to "
             "reconnect and go on (default %(default)g; 0: give up at once)"),
    add("--timeout", dest="run_timeout", type=_seconds, metavar="S",
        help="cancel the whole run after S seconds")
    add("--lock-timeout", dest="lock_timeout", type=_seconds, default=0.0, metavar="S",
        help="wait up to S seconds for another run holding the playbook's lock on a target "
             "(its lock: name, else its file name; default 0)")
    add("--restart", action="store_true",
        help="ignore an unfinished previous run instead of resuming it")
    add("--no-checkpoints", dest="checkpoints", action="store_false",
        help="keep no state in the target: no resume, no run lock (SQL Runner's behaviour)")
    add("--state-schema", dest="state_schema", default="sqlrunner", metavar="SCHEMA",
        help="schema of the run records and checkpoints (default sqlrunner)")
    add("--version", "-version", dest="version", action="store_true", help="print the version")
    for consul in ("-consul", "--consul", "-consulOnlyForLock", "--consulOnlyForLock"):
        add(consul, dest="consul", nargs="?", const=True, help=argparse.SUPPRESS)
    return parser


def command_run(argv: list[str]) -> int:
    """``sqlrunner [run] ...``: SQL Runner's whole command line."""
    from sqlrunner import api, locks
    from sqlrunner.report import make_reporter
    from sqlrunner.secrets import SecretRegistry

    args = run_parser().parse_args(_normalise_bool_flags(argv))
    if args.version:
        print(f"sqlrunner {__version__}")
        return EXIT_OK
    if args.consul:
        raise UsageError("Consul locks are not supported; use --lock or --soft-lock")
    if args.check_lock:
        locks.LockFile(args.check_lock).check()
        return EXIT_OK
    if args.delete_lock:
        locks.delete_lock(args.delete_lock)
        return EXIT_OK
    if not args.playbook:
        raise UsageError("a playbook is required: sqlrunner -p PLAYBOOK")
    if args.lock and args.soft_lock:
        raise UsageError("use --lock or --soft-lock, not both")
    if args.max_parallel is not None and args.max_parallel < 1:
        raise UsageError("--max-parallel must be at least 1")
    lock = (locks.LockFile(args.lock) if args.lock else
            locks.LockFile(args.soft_lock, soft=True) if args.soft_lock else None)
    if lock is not None:
        lock.check()  # before the playbook is read, as SQL Runner does

    variables = _variables(args)
    options = api.RunOptions(
        variables=variables, target=args.target, sql_root=args.sqlroot,
        from_step=args.from_step, run_query=args.run_query, max_parallel=args.max_parallel,
        show_query_output=args.show_query_output, template_missing=args.template_missing,
        embedded_dir=args.embedded_dir, retries=args.retries, retry_backoff=args.retry_backoff,
        run_timeout=args.run_timeout, checkpoints=args.checkpoints,
        state_schema=args.state_schema, lock_timeout=args.lock_timeout, restart=args.restart,
        reconnect_timeout=args.reconnect_timeout,
    )
    secrets = SecretRegistry()
    plan = api.prepare(args.playbook, options, secrets)

    if args.fill_templates:
        return _fill_templates(plan, args.format, secrets)
    if plan.render_errors:
        for error in plan.render_errors:
            _error(secrets.mask(str(error)))
        return EXIT_TARGET
    if args.dry_run:
        return _dry_run(plan, options, secrets)

    if lock is not None:
        lock.acquire()
    if args.report:
        _check_writable(args.report)
    exit_code = None
    try:
        reporter = make_reporter(args.show_query_output,
                                 None if args.progress == "auto" else args.progress == "live")
        result = api.execute(plan, options, reporter, secrets)
        exit_code = result.exit_code
        if args.report:
            try:
                result.write_report(args.report)
            except OSError as err:
                _error(f"cannot write the report {args.report}: {err.strerror}")
        return exit_code
    finally:
        if lock is not None:
            # Another run holding the target (3) did no harm: don't wedge the pipeline.
            lock.release(0 if exit_code == EXIT_LOCK_EXISTS else
                         exit_code if exit_code is not None else EXIT_USAGE)


def _check_writable(path: str) -> None:
    """Fail before the run, not after it, when the report cannot be written."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK) or os.path.isdir(path):
        raise UsageError(f"--report {path}: cannot write there")


def _variables(args: argparse.Namespace) -> dict[str, Any]:
    variables: dict[str, Any] = {}
    if args.var_file:
        from sqlrunner.errors import PlaybookError
        from sqlrunner.playbook import plain
        from sqlrunner.playbook.sourcefile import NulByte, read_text
        from sqlrunner.playbook.yaml12 import load_yaml

        try:
            loaded = load_yaml(read_text(args.var_file), args.var_file)
        except FileNotFoundError:
            raise UsageError(f"variables file not found: {args.var_file}") from None
        except NulByte as err:
            raise PlaybookError("a NUL byte (\\0) in a variables file", file=args.var_file,
                                line=err.line, column=err.column) from None
        except (OSError, UnicodeDecodeError) as err:
            raise UsageError(f"cannot read variables file {args.var_file}: {err}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise PlaybookError("a variables file must be a mapping", file=args.var_file,
                                line=1)
        variables.update(plain(loaded or {}))
    for item in args.var:
        variables.update(_parse_var(item))
    return variables


def _fill_templates(plan: Any, output_format: str, secrets: Any) -> int:
    """Print every rendered query (credentials masked); exit 8, or 5 on render errors."""
    for target_plan in plan.targets:
        for query in target_plan.queries:
            if output_format == "json":
                record = {"target": query.target, "step": query.step, "query": query.query,
                          "file": query.file}
                if query.error is not None:
                    record["error"] = secrets.mask(str(query.error))
                else:
                    record["sql"] = secrets.mask(query.sql or "")
                print(json.dumps(record))
            elif query.error is not None:
                _error(secrets.mask(str(query.error)))
            else:
                sys.stderr.write(f"Target: {query.target}\nStep: {query.step}\n"
                                 f"Query: {query.query}\nPath: {query.file}\n"
                                 f"{secrets.mask(query.sql or '')}\n\n")
    if plan.render_errors:
        if output_format == "json":
            for error in plan.render_errors:
                _error(secrets.mask(str(error)))
        return EXIT_TARGET
    return EXIT_NOTHING_RAN


def _dry_run(plan: Any, options: Any, secrets: Any) -> int:
    """Everything rendered; check each target once and say what would run."""
    from sqlrunner import api

    queries = sum(len(t.queries) for t in plan.targets)
    sys.stderr.write(f"dry run: {queries} queries rendered without error\n")
    for check in api.check_reachability(plan, options, secrets):
        verdict = "reachable" if check.reachable else "NOT reachable"
        sys.stderr.write(f"dry run: target {check.target}: {verdict}: {check.detail}\n")
    # A target that cannot be initialised fails a dry run as it fails a run (5);
    # an unreachable database is only reported, since a dry run needs none.
    return EXIT_TARGET if any(t.init_error for t in plan.targets) else EXIT_OK


def command_status(argv: list[str]) -> int:
    """``sqlrunner status -p PLAYBOOK``: recent runs per target, and where one stopped."""
    from sqlrunner import api
    from sqlrunner.status import playbook_status

    parser = ArgumentParser(prog="sqlrunner status", allow_abbrev=False,
                            description="Show the recent runs of a playbook on its targets.")
    parser.add_argument("-p", "--playbook", "-playbook", dest="playbook", required=True)
    parser.add_argument("--var", "-var", dest="var", action="append", default=[])
    parser.add_argument("--var-file", dest="var_file")
    parser.add_argument("--target", dest="target")
    parser.add_argument("--sqlroot", "-sqlroot", dest="sqlroot")
    parser.add_argument("--state-schema", dest="state_schema", default="sqlrunner")
    parser.add_argument("--embedded-dir", dest="embedded_dir")
    parser.add_argument("--limit", type=_non_negative_int, default=10)
    args = parser.parse_args(argv)
    options = api.RunOptions(variables=_variables(args), target=args.target,
                             sql_root=args.sqlroot, embedded_dir=args.embedded_dir)
    plan = api.prepare(args.playbook, options)
    for status in playbook_status(plan, args.state_schema, args.limit, args.embedded_dir):
        print(f"target {status.target}:")
        if status.error:
            print(f"  cannot read its runs: {status.error}")
            continue
        if not status.runs:
            print("  no runs recorded")
        for run in status.runs:
            ended = f"{run.ended_at:%Y-%m-%d %H:%M:%S}" if run.ended_at else "-"
            print(f"  {run.run_id[:8]}  {run.status:<11} {run.mode:<7} started "
                  f"{run.started_at:%Y-%m-%d %H:%M:%S}  ended {ended}  attempts {run.attempts}"
                  f"  {run.host} pid {run.pid}")
        if status.next_query:
            print(f"  unfinished: {len(status.done)} queries done; the next run resumes at "
                  f"{status.next_query}")
        if status.gone:
            print(f"  the next run builds again what a server crash emptied: "
                  f"{', '.join(status.gone)}")
    return EXIT_OK


def command_check(argv: list[str]) -> int:
    """``sqlrunner check``: the portability check (loads sqlglot only when asked)."""
    from sqlrunner.check import main as check_main

    return check_main(argv)


def command_generate(argv: list[str]) -> int:
    """``sqlrunner generate``: synthetic Snowplow events into a database."""
    from sqlrunner.generate.cli import main as generate_main

    return generate_main(argv)


def command_demo(argv: list[str]) -> int:
    """``sqlrunner demo``: generated loads, the incremental playbook after each, the tables."""
    from sqlrunner.demo import main as demo_main

    return demo_main(argv)


SUBCOMMANDS["status"] = command_status
SUBCOMMANDS["demo"] = command_demo
SUBCOMMANDS["check"] = command_check
SUBCOMMANDS["generate"] = command_generate


def _error(message: str) -> None:
    sys.stderr.write(f"sqlrunner: error: {message}\n")


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sqlrunner`` command; returns the exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments and arguments[0] in ("-h", "--help", "-help", "help"):
        run_parser().print_help()
        return EXIT_OK
    command = command_run
    if arguments and arguments[0] == "run":
        arguments = arguments[1:]
    elif arguments and arguments[0] in SUBCOMMANDS:
        command = SUBCOMMANDS[arguments.pop(0)]
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return command(arguments)
    except SqlRunnerError as err:
        from sqlrunner.secrets import SecretRegistry

        _error(SecretRegistry().mask(str(err)))
        return exit_code_for(err)
    except KeyboardInterrupt as err:
        _error("interrupted")
        return exit_code_for(err)
    finally:
        signal.signal(signal.SIGTERM, previous)
