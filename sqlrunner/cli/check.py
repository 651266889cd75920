"""``sqlrunner check -p PLAYBOOK [--dialect ...] [--var k=v] [--format ...]``: the
portability check's findings, one a line; exit 0 clean, 1 with findings."""

from __future__ import annotations

import json
import sys

from sqlrunner.cli.options import ArgumentParser, variables, warn_unused_variables
from sqlrunner.errors import EXIT_FINDINGS, EXIT_OK
from sqlrunner.secrets import SecretRegistry


def parser() -> ArgumentParser:
    """The parser of ``sqlrunner check``."""
    parser = ArgumentParser(
        prog="sqlrunner check", allow_abbrev=False,
        description="Render every query of a playbook for Redshift (or PostgreSQL) and flag "
                    "what that engine rejects or runs differently. Exit 0 when clean, 1 with "
                    "findings; playbook and template errors exit as a run would (1 or 5).")
    add = parser.add_argument
    add("-p", "--playbook", "-playbook", dest="playbook", metavar="PLAYBOOK", required=True,
        help="the playbook (YAML) to check")
    add("--dialect", choices=("redshift", "postgres", "postgresql", "all"), default="redshift",
        help="the engine to check for (default redshift; all: both)")
    add("--var", "-var", dest="var", action="append", default=[], metavar="KEY=VALUE",
        help="a template variable (repeatable); overrides the playbook's")
    add("--sqlroot", "-sqlroot", dest="sqlroot", metavar="PLAYBOOK|BINARY|DIR",
        help="where query files are found (default: the playbook's folder)")
    add("--format", choices=("text", "json"), default="text",
        help="text: FILE:LINE:COL: rule: message (suggestion: ...); json: one object a line")
    return parser


def command(argv: list[str], secrets: SecretRegistry) -> int:
    """Print the findings; exit 0 (clean), 1 (findings), or a render error's exit code."""
    from sqlrunner.check import DIALECTS, Finding, check_plan, dialect_named, prepare_for

    args = parser().parse_args(argv)
    found_variables = variables(args)
    dialects = DIALECTS if args.dialect == "all" else (dialect_named(args.dialect),)
    findings: list[Finding] = []
    files: set[str] = set()
    templated: set[str] = set()
    for dialect in dialects:
        plan = prepare_for(args.playbook, dialect, found_variables, args.sqlroot)
        if dialect == dialects[0]:
            warn_unused_variables(plan, found_variables, secrets)
        if plan.render_errors:
            for error in plan.render_errors:
                sys.stderr.write(f"sqlrunner: error: {error}\n")
            return plan.render_errors[0].exit_code
        files.update(q.file for t in plan.targets for q in t.queries)
        templated.update(q.file for t in plan.targets for q in t.queries if q.template)
        findings.extend(check_plan(plan, dialect))
    for finding in findings:
        print(json.dumps(finding.to_dict()) if args.format == "json" else str(finding))
    checked = "/".join(dialects)
    if findings:
        sys.stderr.write(f"sqlrunner check: {len(findings)} finding(s) for {checked} in "
                         f"{len({f.file for f in findings})} of {len(files)} file(s)\n")
        if templated & {f.file for f in findings}:
            sys.stderr.write("sqlrunner check: lines of templated files are those of the "
                             "rendered SQL (sqlrunner -p PLAYBOOK --fill-templates shows it)\n")
        return EXIT_FINDINGS
    sys.stderr.write(f"sqlrunner check: {len(files)} file(s) portable to {checked}\n")
    return EXIT_OK
