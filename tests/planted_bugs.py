"""Plant known bugs in the product one at a time, run the tests that must catch each, and
put the code back: a check that the tests prove what they claim (tests/README.md).

    .venv/bin/python tests/planted_bugs.py                 # every bug
    .venv/bin/python tests/planted_bugs.py enlist tls-off  # some
    .venv/bin/python tests/planted_bugs.py --seeds 1,2,3   # hypothesis seeds to try

Each bug is one text replacement in one file. The file must have no uncommitted changes;
its text is restored whatever happens. The selected tests first run unplanted (they must
pass), then planted (at least one must fail). Exit status 1 if a bug went uncaught.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOUCHED = "sql/incremental/02_touched_cookies.sql"
# the second branch of touched_copies: the usable copies in atomic of the batch's event_ids
ATOMIC_BRANCH = r"(?s)\n  UNION ALL\n  SELECT a\.domain_userid\n.*?(?=\n\)\n)"


@dataclass(frozen=True)
class Bug:
    """A deliberate bug: ``pattern`` (a regular expression) in ``path`` becomes
    ``replacement``; ``tests`` are pytest arguments, run once per hypothesis seed when
    ``seeded``."""

    name: str
    what: str
    path: str
    pattern: str
    replacement: str
    tests: tuple[str, ...]
    seeded: bool = False


BUGS = (
    Bug("retry-08", "SQLSTATE class 08 (connection exceptions) is no longer retried",
        "sqlrunner/execute/retry.py", r'RETRY_SQLSTATE_CLASSES = frozenset\(\{"08"\}\)',
        "RETRY_SQLSTATE_CLASSES = frozenset()",
        ("tests/test_retry.py", "tests/test_reliability.py::"
         "test_transient_errors_are_retried_and_counted")),
    Bug("enlist", "RunLock.enlist skips its check that the run still holds its lock",
        "sqlrunner/execute/runlock.py", r"if not owned or self\.conn\.closed:",
        "if self.conn.closed:", ("tests/test_lost_lock.py", "tests/test_runlock.py")),
    Bug("unlogged", "checkpoints record no unlogged table, so a crash's losses are not rebuilt",
        "sqlrunner/execute/state.py", r"_MAY_BUILD_UNLOGGED\.search\(sql\) is not None", "False",
        ("tests/test_checkpoints.py", "tests/test_outages.py", "tests/test_model_incremental.py",
         "tests/test_model_full.py", "-k", "crash or records")),
    Bug("lock-record", "a run that lost its lock takes it again even after another run had it",
        "sqlrunner/execute/runlock.py", r"if row is None or row\[0\] != self\.run_id:", "if False:",
        ("tests/test_runlock.py",)),
    Bug("touched-cookies", "the touched-cookie SQL ignores the copies already in atomic",
        TOUCHED, ATOMIC_BRANCH, "",
        ("tests/test_model_incremental.py", "-k", "over_many_streams",
         "--hypothesis-profile=planted"), seeded=True),
    Bug("history-rows", "the history rows a checkpoint carries count as the file's rows",
        "sqlrunner/execute/state.py", r"None, 2 if carried else 1, carried\)", "None, 1, carried)",
        ("tests/test_history.py",)),
    Bug("history-carried", "history rows a failed query carried are dropped, not carried again",
        "sqlrunner/execute/state.py", r'(or may not have\): they wait again\."""\n)',
        r"\1        return\n", ("tests/test_history.py",)),
    Bug("tls-off", "sqlrunner drops the target's sslmode and sslrootcert",
        "sqlrunner/execute/connect_options.py", r"(\n    mode = options\.get\(\"sslmode\"\))",
        r"\n    return {}\1", ("tests/test_tls.py",)),
    Bug("tls-require", "sqlrunner connects with sslmode=require whatever the target says",
        "sqlrunner/execute/targets.py", r"(\n    params\.update\(settings\.tls\)\n)",
        r'\1    params["sslmode"] = "require"\n', ("tests/test_tls.py",)),
)


def _pytest(args: tuple[str, ...]) -> tuple[int, list[str], str]:
    """Run pytest; its exit code, the ids of the tests that failed, and how many
    hypothesis examples ran before the first failure (when it says)."""
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rf", "-p",
                           "no:cacheprovider", "--hypothesis-show-statistics", *args],
                          cwd=ROOT, capture_output=True, text=True, check=False)
    failed = [line.split()[1] for line in done.stdout.splitlines()
              if line.startswith(("FAILED ", "ERROR "))]
    examples = re.search(r"during generate phase.*?\n\s*- .*?\n\s*- (\d+) passing, "
                         r"(\d+) failing", done.stdout, re.S)
    found = f" (after {examples[1]} passing examples)" if examples and failed else ""
    return done.returncode, failed, found


def _runs(bug: Bug, seeds: list[int]) -> list[tuple[str, ...]]:
    if not bug.seeded:
        return [bug.tests]
    return [(*bug.tests, f"--hypothesis-seed={seed}") for seed in seeds]


def check(bug: Bug, seeds: list[int]) -> bool:
    """Plant ``bug``, run its tests, restore the file; True if every run caught it."""
    path = ROOT / bug.path
    if subprocess.run(["git", "diff", "--quiet", "--", bug.path], cwd=ROOT).returncode:
        raise SystemExit(f"{bug.path} has uncommitted changes: commit or stash them first")
    original = path.read_text()
    planted, count = re.subn(bug.pattern, bug.replacement, original, count=1)
    if count != 1:
        raise SystemExit(f"{bug.name}: {bug.pattern!r} not found in {bug.path} (the code "
                         "moved: update tests/planted_bugs.py)")
    print(f"== {bug.name}: {bug.what} ({bug.path})", flush=True)
    code, failed, _ = _pytest(bug.tests)
    if code != 0:
        print(f"   the tests fail without the bug: {failed}")
        return False
    caught = True
    try:
        path.write_text(planted)
        for args in _runs(bug, seeds):
            code, failed, found = _pytest(args)
            label = " ".join(a for a in args if a.startswith("--hypothesis-seed")) or "run"
            print(f"   {label}: {'caught' if failed else 'NOT CAUGHT'}{found} by "
                  f"{len(failed)} test(s){': ' if failed else ''}{', '.join(failed)}",
                  flush=True)
            caught = caught and bool(failed)
    finally:
        path.write_text(original)
    return caught


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bugs", nargs="*", help="the bugs to plant (default: all): "
                        + ", ".join(b.name for b in BUGS))
    parser.add_argument("--seeds", default="1,2,3,4,5",
                        help="hypothesis seeds for the property test (comma-separated)")
    options = parser.parse_args()
    seeds = [int(s) for s in options.seeds.split(",")]
    unknown = set(options.bugs) - {b.name for b in BUGS}
    if unknown:
        parser.error(f"unknown bugs: {', '.join(sorted(unknown))}")
    chosen = [b for b in BUGS if not options.bugs or b.name in options.bugs]
    results = {bug.name: check(bug, seeds) for bug in chosen}
    missed = [name for name, caught in results.items() if not caught]
    print("every planted bug was caught" if not missed else f"NOT CAUGHT: {missed}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
