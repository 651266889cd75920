"""``sqlrunner status -p PLAYBOOK``: recent runs per target, and where one stopped."""

from __future__ import annotations

from sqlrunner.cli.options import ArgumentParser, non_negative_int, run_options, variables
from sqlrunner.errors import EXIT_OK
from sqlrunner.secrets import SecretRegistry


def command(argv: list[str], secrets: SecretRegistry) -> int:
    """Print the recent runs of a playbook on each of its targets."""
    from sqlrunner import api

    parser = ArgumentParser(prog="sqlrunner status", allow_abbrev=False,
                            description="Show the recent runs of a playbook on its targets.")
    parser.add_argument("-p", "--playbook", "-playbook", dest="playbook", required=True)
    parser.add_argument("--var", "-var", dest="var", action="append", default=[])
    parser.add_argument("--var-file", dest="var_file")
    parser.add_argument("--target", dest="target")
    parser.add_argument("--sqlroot", "-sqlroot", dest="sql_root", metavar="SQLROOT")
    parser.add_argument("--state-schema", dest="state_schema", default="sqlrunner")
    parser.add_argument("--embedded-dir", dest="embedded_dir")
    parser.add_argument("--limit", type=non_negative_int, default=10)
    args = parser.parse_args(argv)
    options = run_options(args, variables=variables(args))
    plan = api.prepare(args.playbook, options, secrets)
    for status in api.status(plan, options, args.limit):
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
