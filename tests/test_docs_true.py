"""What the README says about the shipped playbooks and the suite holds: read from the
playbooks' rendered SQL and from pytest's own count, so that a change that makes a sentence
false fails here."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from sqlrunner.check import prepare_for

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
MODEL_TABLES = {"derived.sessions", "derived.page_views", "derived.visitors",
                "derived.cookie_id_to_user_id_map"}
# Statements that change a table's rows or the table itself (CREATE ... IF NOT EXISTS, which
# every playbook's setup runs, changes neither).
WRITE = re.compile(r"\b(?:INSERT\s+INTO|DELETE\s+FROM|TRUNCATE(?:\s+TABLE)?|UPDATE|"
                   r"DROP\s+TABLE(?:\s+IF\s+EXISTS)?|ALTER\s+TABLE(?:\s+IF\s+EXISTS)?)"
                   r"\s+([\w.\"]+)", re.IGNORECASE)
COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)


def written_tables(playbook: str) -> set[str]:
    """The tables a shipped playbook writes: its statements' and its upserts' tables."""
    plan = prepare_for(str(ROOT / "playbooks" / playbook), "postgres")
    written: set[str] = set()
    for query in plan.targets[0].queries:
        written.update(WRITE.findall(COMMENT.sub("", query.sql or "")))
        if query.upsert is not None:
            written.add(query.upsert.table)
    return written


@pytest.mark.no_database
def test_full_rebuilds_the_four_model_tables_and_nothing_the_readme_says_it_leaves():
    assert "`playbooks/full.yml` rebuilds the four model tables" in README
    written = written_tables("full.yml")
    assert MODEL_TABLES <= written
    assert not written & {"derived.events_per_session", "derived.etl_tstamps",
                          "snowplow_landing.events", "snowplow_landing.events_in_progress"}


@pytest.mark.no_database
def test_full_to_incremental_rebuilds_the_custom_models_and_the_manifest_too():
    assert "run `playbooks/full_to_incremental.yml`" in README
    written = written_tables("full_to_incremental.yml")
    assert MODEL_TABLES | {"derived.events_per_session", "derived.etl_tstamps"} <= written


def _about(pattern: str) -> int:
    match = re.search(pattern, README)
    assert match, f"the README no longer says {pattern!r}"
    return int(match.group(1).replace(",", ""))


@pytest.mark.no_database
def test_the_readme_counts_the_tests_as_pytest_does():
    """Within a tenth: the figures are rounded ("about"), and branches add tests."""
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                           "-p", "no:cacheprovider", "-m", "not slow"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    counted = re.search(r"(\d+)/(\d+) tests collected \((\d+) deselected\)", done.stdout)
    assert counted, done.stdout[-2000:] + done.stderr[-2000:]
    quick, everything, slow = (int(n) for n in counted.groups())
    for said, real in ((_about(r"runs about ([\d,]+) tests"), everything),
                       (_about(r"slow tests \(about ([\d,]+) of them"), slow),
                       (_about(r"# about ([\d,]+) tests"), quick)):
        assert abs(said - real) <= real / 10, (said, real)
