"""What a run loads and asks (issue 18, item 3): a run imports only what it needs, and
steps that skip themselves on one empty table ask the database once while nothing ran."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

from conftest import query_one, run_sql

from sqlrunner.api import run_playbook
from sqlrunner.plan import new_run_id

# Run a playbook in a fresh interpreter and print which of these modules it loaded.
LOADED = """\
import json, sys
from sqlrunner.cli import main
code = main(["-p", sys.argv[1], "--progress", "plain"])
names = ["tenacity", "sqlrunner.template", "sqlrunner.execute.connect_options", "difflib",
         "uuid", "rich", "sqlglot", "boto3", "sqlrunner.check", "sqlrunner.generate",
         "sqlrunner.modeloptions", "sqlrunner.cli.check", "sqlrunner.cli.status",
         "sqlrunner.cli.history", "sqlrunner.cli.demo", "sqlrunner.cli.generate",
         "sqlrunner.cli.psql"]
print(json.dumps({"exit": code, "loaded": [n for n in names if n in sys.modules]}))
"""


def _loaded(playbook: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", LOADED, playbook], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.splitlines()[-1])


def test_a_plain_run_imports_no_retry_template_tls_aws_linter_or_other_commands(workdir,
                                                                                 database):
    sql = workdir.sql("one.sql", "CREATE TABLE one AS SELECT 1 AS x;")
    playbook = workdir.playbook(workdir.steps(("s", [("one", sql)])))
    assert _loaded(playbook) == {"exit": 0, "loaded": []}
    assert query_one(database, "SELECT x FROM one") == 1


def test_a_templated_file_loads_the_template_engine_and_a_failure_the_retries(workdir, database):
    sql = workdir.sql("t.sql", "SELECT 1 / {{.zero}};")
    playbook = workdir.playbook(
        workdir.steps(("s", [("t", sql)]), template=True), variables="  zero: 0\n"
    )
    outcome = _loaded(playbook)
    assert outcome["exit"] == 6  # division by zero: not transient, but asked whether it is
    # a playbook with variables also has them checked for the model's options
    assert outcome["loaded"] == ["sqlrunner.template", "sqlrunner.modeloptions"]


def test_a_transient_error_is_still_retried_through_tenacity(workdir, database):
    run_sql(database, "CREATE TABLE tries (n int); CREATE SEQUENCE attempts")
    # a serialization failure (40001) on the first attempt only (a sequence is not rolled back)
    sql = workdir.sql(
        "flaky.sql",
        """\
INSERT INTO tries VALUES (1);
DO $$ BEGIN
  IF nextval('attempts') = 1 THEN
    RAISE EXCEPTION 'try again' USING ERRCODE = '40001';
  END IF;
END $$;
""",
    )
    playbook = workdir.playbook(workdir.steps(("s", [("flaky", sql)])))
    result = run_playbook(playbook, retry_backoff=0.01)
    assert result.exit_code == 0, result.errors
    assert [(q.status, q.retries) for q in result.queries] == [("succeeded", 1)]
    assert query_one(database, "SELECT count(*) FROM tries") == 1  # the first rolled back


def test_run_ids_are_version_4_uuids_in_hex():
    ids = {new_run_id() for _ in range(200)}
    assert len(ids) == 200
    for run_id in ids:
        assert uuid.UUID(hex=run_id).hex == run_id
        assert uuid.UUID(hex=run_id).version == 4
        assert uuid.UUID(hex=run_id).variant == uuid.RFC_4122


def _skips(workdir, fill: str) -> str:
    """Steps a (fill), b, c, d: b and d skip themselves while ``queue`` is empty, c logs."""
    a = workdir.sql("a.sql", fill)
    b = workdir.sql("b.sql", "INSERT INTO log VALUES ('b');")
    c = workdir.sql("c.sql", "INSERT INTO log VALUES ('c'); INSERT INTO queue VALUES (1);")
    d = workdir.sql("d.sql", "INSERT INTO log VALUES ('d');")
    return workdir.playbook(
        f"  - name: a\n    queries:\n      - name: a\n        file: {a}\n"
        f"  - name: b\n    skip_if_empty: queue\n    queries:\n      - name: b\n"
        f"        file: {b}\n"
        f"  - name: b2\n    skip_if_empty: queue\n    queries:\n      - name: b2\n"
        f"        file: {b}\n"
        f"  - name: c\n    queries:\n      - name: c\n        file: {c}\n"
        f"  - name: d\n    skip_if_empty: queue\n    queries:\n      - name: d\n"
        f"        file: {d}\n"
    )


def test_a_table_found_empty_is_asked_again_once_a_step_has_run(workdir, database):
    run_sql(database, "CREATE TABLE log (step text); CREATE TABLE queue (n int)")
    result = run_playbook(_skips(workdir, "SELECT 1;"))
    assert result.exit_code == 0, result.errors
    assert [(q.step, q.status) for q in result.queries] == [
        ("a", "succeeded"),
        ("b", "skipped"),
        ("b2", "skipped"),
        ("c", "succeeded"),
        ("d", "succeeded"),
    ]  # c filled the queue after b and b2 found it empty
    assert sorted(r[0] for r in run_sql(database, "SELECT step FROM log")) == ["c", "d"]


def test_a_table_a_step_filled_is_not_found_empty(workdir, database):
    run_sql(database, "CREATE TABLE log (step text); CREATE TABLE queue (n int)")
    result = run_playbook(_skips(workdir, "INSERT INTO queue VALUES (0);"))
    assert result.exit_code == 0, result.errors
    assert [q.status for q in result.queries] == ["succeeded"] * 5
    assert sorted(r[0] for r in run_sql(database, "SELECT step FROM log")) == ["b", "b", "c", "d"]
