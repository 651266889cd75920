"""``sqlrunner [run] ...``: SQL Runner's whole command line, with its Go spellings and ours."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from sqlrunner import __version__
from sqlrunner.cli.options import (
    ArgumentParser,
    error,
    non_negative_int,
    normalise_bool_flags,
    run_options,
    seconds,
    variables,
    warn_unused_variables,
)
from sqlrunner.errors import (
    EXIT_LOCK_EXISTS,
    EXIT_NOTHING_RAN,
    EXIT_OK,
    EXIT_TARGET,
    EXIT_USAGE,
    UsageError,
)
from sqlrunner.secrets import SecretRegistry


def parser() -> ArgumentParser:
    """The parser of ``sqlrunner [run]``: every SQL Runner flag and our own."""
    from sqlrunner.execute.retry import DEFAULT_OUTAGE

    parser = ArgumentParser(
        prog="sqlrunner", allow_abbrev=False,
        description="Run a SQL Runner playbook against PostgreSQL, Redshift or the embedded "
                    "PostgreSQL. Subcommands: run (the default), status, check, generate, demo, "
                    "psql; each has --help.",
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
    add("--sqlroot", "-sqlroot", dest="sql_root", metavar="PLAYBOOK|BINARY|DIR",
        help="where query files are found (default: the playbook's folder)")
    add("--target", dest="target", metavar="DSN",
        help="run against this database instead of the playbook's targets "
             "(postgresql://..., redshift://..., key=value, or 'embedded'). Without it: "
             "$SQLRUNNER_TARGET, else libpq's environment (PGHOST, PGDATABASE, PGSERVICE...) "
             "in place of an embedded target, else the playbook's targets")
    add("--max-parallel", dest="max_parallel", type=int, metavar="N",
        help="at most N queries of a step at once (default: all)")
    add("--report", dest="report", metavar="FILE", help="write a JSON run report")
    add("--template-missing", dest="template_missing", choices=("error", "novalue"),
        default="error", help="a missing variable printed into SQL: error, or Go's <no value>")
    add("--progress", choices=("auto", "live", "plain"), default="auto",
        help="live view on a terminal (auto), or plain log lines")
    add("--embedded-dir", dest="embedded_dir", metavar="DIR",
        help="data folder of the embedded PostgreSQL (default: .sqlrunner/)")
    add("--retries", type=non_negative_int, default=3, metavar="N",
        help="retries of a query after a transient error (default 3; playbook, target and "
             "query settings win)")
    add("--retry-backoff", dest="retry_backoff", type=seconds, default=1.0, metavar="S",
        help="seconds before the first retry; doubles with jitter (default 1)")
    add("--reconnect-timeout", dest="reconnect_timeout", type=seconds,
        default=DEFAULT_OUTAGE, metavar="S",
        help="how long a target may stay unreachable (a server restart, crash or failover, "
             "a network outage, a server down when the run starts) while the run waits to "
             "reconnect and go on (default %(default)g; 0: give up at once)"),
    add("--timeout", dest="run_timeout", type=seconds, metavar="S",
        help="cancel the whole run after S seconds")
    add("--lock-timeout", dest="lock_timeout", type=seconds, default=0.0, metavar="S",
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


def command(argv: list[str], secrets: SecretRegistry) -> int:
    """``sqlrunner [run] ...``: SQL Runner's whole command line."""
    from sqlrunner.cli import lockfile

    args = parser().parse_args(normalise_bool_flags(argv))
    if args.version:
        print(f"sqlrunner {__version__}")
        return EXIT_OK
    if args.consul:
        raise UsageError("Consul locks are not supported; use --lock or --soft-lock")
    if args.check_lock:
        lockfile.LockFile(args.check_lock).check()
        return EXIT_OK
    if args.delete_lock:
        lockfile.delete_lock(args.delete_lock)
        return EXIT_OK
    if not args.playbook:
        raise UsageError("a playbook is required: sqlrunner -p PLAYBOOK")
    if args.lock and args.soft_lock:
        raise UsageError("use --lock or --soft-lock, not both")
    if args.max_parallel is not None and args.max_parallel < 1:
        raise UsageError("--max-parallel must be at least 1")
    lock = (lockfile.LockFile(args.lock) if args.lock else
            lockfile.LockFile(args.soft_lock, soft=True) if args.soft_lock else None)
    if lock is not None:
        lock.check()  # before the playbook is read, as SQL Runner does

    # The library is loaded only now: --version and the lock-file flags need none of it.
    from sqlrunner import api
    from sqlrunner.report import make_reporter, write_report

    options = run_options(args, variables=variables(args))
    plan = api.prepare(args.playbook, options, secrets)
    warn_unused_variables(plan, options.variables or {}, secrets)

    if args.fill_templates:
        return _fill_templates(plan, args.format, secrets)
    if plan.render_errors:
        for render_error in plan.render_errors:
            error(secrets.mask(str(render_error)))
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
                                 None if args.progress == "auto" else args.progress == "live",
                                 args.embedded_dir)
        result = api.execute(plan, options, reporter, secrets)
        exit_code = result.exit_code
        if args.report:
            try:
                write_report(result, args.report)
            except OSError as err:
                error(f"cannot write the report {args.report}: {err.strerror}")
        return exit_code
    finally:
        if lock is not None:
            # Another run holding the target (3) did no harm: don't wedge the pipeline.
            lock.release(EXIT_OK if exit_code == EXIT_LOCK_EXISTS else
                         exit_code if exit_code is not None else EXIT_USAGE)


def _check_writable(path: str) -> None:
    """Fail before the run, not after it, when the report cannot be written."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK) or os.path.isdir(path):
        raise UsageError(f"--report {path}: cannot write there")


def _fill_templates(plan: Any, output_format: str, secrets: SecretRegistry) -> int:
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
                error(secrets.mask(str(query.error)))
            else:
                sys.stderr.write(f"Target: {query.target}\nStep: {query.step}\n"
                                 f"Query: {query.query}\nPath: {query.file}\n"
                                 f"{secrets.mask(query.sql or '')}\n\n")
    if plan.render_errors:
        if output_format == "json":
            for render_error in plan.render_errors:
                error(secrets.mask(str(render_error)))
        return EXIT_TARGET
    return EXIT_NOTHING_RAN


def _dry_run(plan: Any, options: Any, secrets: SecretRegistry) -> int:
    """Everything rendered; check each target once and say what would run."""
    from sqlrunner import api
    from sqlrunner.report import target_lines

    # Where the run would go, and which rule chose it, first: what a dry run is for.
    for line in target_lines(plan, options.embedded_dir):
        sys.stderr.write(f"dry run: {line}\n")
    queries = sum(len(t.queries) for t in plan.targets)
    sys.stderr.write(f"dry run: {queries} queries rendered without error\n")
    for check in api.check_reachability(plan, options, secrets):
        verdict = "reachable" if check.reachable else "NOT reachable"
        sys.stderr.write(f"dry run: target {check.target}: {verdict}: {check.detail}\n")
    # A target that cannot be initialised fails a dry run as it fails a run (5);
    # an unreachable database is only reported, since a dry run needs none.
    return EXIT_TARGET if any(t.init_error for t in plan.targets) else EXIT_OK
