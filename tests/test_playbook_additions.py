"""The playbook additions of issue 19 on a real PostgreSQL: optional queries
(``continue_on_error``), steps for some targets only (``targets:``), data tests
(``assert: no_rows``)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from conftest import new_database, run_sql, target_yaml
from psycopg.conninfo import conninfo_to_dict

from sqlrunner.api import run_playbook
from sqlrunner.cli import main
from sqlrunner.errors import PlaybookError
from sqlrunner.playbook import load_playbook


@pytest.fixture
def two_databases(server_dsn: str) -> Iterator[dict[str, str]]:
    """Two fresh databases of the test's own: target name -> DSN."""
    with new_database(server_dsn) as one, new_database(server_dsn) as two:
        for dsn in (one, two):
            run_sql(dsn, "CREATE TABLE done (q text)")
        yield {"one": one, "two": two}


def targets_of(databases: dict[str, str]) -> str:
    """The ``targets:`` entries of a playbook over ``databases``."""
    return "".join(target_yaml({k: str(v) for k, v in conninfo_to_dict(dsn).items()}, name)
                   for name, dsn in databases.items())


def done_in(dsn: str) -> list[str]:
    """What the queries recorded in ``done``, sorted."""
    return sorted(r[0] for r in run_sql(dsn, "SELECT q FROM done"))


def insert(workdir, name: str) -> str:
    """A SQL file that records ``name`` in ``done``."""
    return workdir.sql(f"{name}.sql", f"INSERT INTO done VALUES ('{name}');")


# -- continue_on_error ---------------------------------------------------------------------

def test_a_failing_optional_query_lets_both_targets_go_on_and_the_run_exits_6(
        workdir, two_databases, tmp_path):
    bad = workdir.sql("bad.sql", "INSERT INTO done SELECT q FROM nowhere;")
    steps = ("  - name: load\n    queries:\n"
             f"      - name: bad\n        file: {bad}\n        continue_on_error: true\n"
             f"      - name: good\n        file: {insert(workdir, 'good')}\n"
             "  - name: after\n    queries:\n"
             f"      - name: later\n        file: {insert(workdir, 'later')}\n")
    playbook = workdir.playbook(steps, targets=targets_of(two_databases))
    report = tmp_path / "report.json"
    code = main(["--playbook", playbook, "--report", str(report)])
    assert code == 6
    for dsn in two_databases.values():
        assert done_in(dsn) == ["good", "later"]
    records = {(q["target"], q["query"]): q for q in json.loads(report.read_text())["queries"]}
    assert records[("one", "bad")]["status"] == "failed"
    assert records[("one", "bad")]["continue_on_error"] is True
    assert "nowhere" in records[("two", "bad")]["error"]
    assert records[("two", "later")]["status"] == "succeeded"


def test_continue_on_error_on_a_step_covers_each_of_its_queries(workdir, database):
    run_sql(database, "CREATE TABLE done (q text)")
    bad = workdir.sql("bad.sql", "SELECT 1/0;")
    steps = ("  - name: load\n    continue_on_error: true\n    queries:\n"
             f"      - name: bad\n        file: {bad}\n"
             "  - name: after\n    queries:\n"
             f"      - name: later\n        file: {insert(workdir, 'later')}\n")
    result = run_playbook(workdir.playbook(steps))
    assert result.exit_code == 6
    assert [q.query for q in result.failed] == ["bad"]
    assert done_in(database) == ["later"]


def test_a_failed_query_without_it_still_stops_its_target(workdir, database):
    run_sql(database, "CREATE TABLE done (q text)")
    bad = workdir.sql("bad.sql", "SELECT 1/0;")
    steps = ("  - name: load\n    queries:\n"
             f"      - name: bad\n        file: {bad}\n        continue_on_error: false\n"
             "  - name: after\n    queries:\n"
             f"      - name: later\n        file: {insert(workdir, 'later')}\n")
    result = run_playbook(workdir.playbook(steps))
    assert result.exit_code == 6
    assert done_in(database) == []


def test_a_resumed_run_runs_the_failed_optional_query_again(workdir, database):
    run_sql(database, "CREATE TABLE done (q text)")
    first = insert(workdir, "first")
    flaky = workdir.sql("flaky.sql", "INSERT INTO done SELECT 'flaky' FROM source;")
    steps = ("  - name: start\n    queries:\n"
             f"      - name: first\n        file: {first}\n"
             "  - name: load\n    queries:\n"
             f"      - name: flaky\n        file: {flaky}\n        continue_on_error: true\n")
    playbook = workdir.playbook(steps)
    assert run_playbook(playbook).exit_code == 6
    run_sql(database, "CREATE TABLE source AS SELECT 1 AS x")
    again = run_playbook(playbook)
    assert again.exit_code == 0, again.errors
    assert again.resumed_from is not None
    assert {q.query: q.status for q in again.queries} == {"first": "skipped",
                                                          "flaky": "succeeded"}
    assert done_in(database) == ["first", "flaky"]


@pytest.mark.no_database
@pytest.mark.parametrize("where", ["step", "query"])
def test_continue_on_error_must_be_true_or_false(workdir, where):
    sql = workdir.sql("a.sql", "SELECT 1;")
    step_key = "    continue_on_error: yes\n" if where == "step" else ""
    query_key = "        continue_on_error: yes\n" if where == "query" else ""
    playbook = workdir.playbook(f"  - name: s\n{step_key}    queries:\n"
                                f"      - name: a\n        file: {sql}\n{query_key}")
    with pytest.raises(PlaybookError) as caught:
        load_playbook(playbook)
    line = 12 if where == "step" else 15
    assert f"playbook.yml:{line}" in str(caught.value)
    assert "'continue_on_error' must be true or false" in str(caught.value)


# -- targets: --------------------------------------------------------------------------------

def test_a_step_for_target_two_runs_there_only_and_is_skipped_on_purpose_on_one(
        workdir, two_databases, capsys):
    steps = ("  - name: both\n    queries:\n"
             f"      - name: everywhere\n        file: {insert(workdir, 'everywhere')}\n"
             "  - name: unload\n    targets: [two]\n    queries:\n"
             f"      - name: only_two\n        file: {insert(workdir, 'only_two')}\n"
             "  - name: last\n    queries:\n"
             f"      - name: after\n        file: {insert(workdir, 'after')}\n")
    playbook = workdir.playbook(steps, targets=targets_of(two_databases))
    assert main(["--playbook", playbook, "--progress", "plain"]) == 0
    assert done_in(two_databases["one"]) == ["after", "everywhere"]
    assert done_in(two_databases["two"]) == ["after", "everywhere", "only_two"]
    log = capsys.readouterr().err
    assert "[one] unload/only_two skipped (the step runs on two only)" in log
    assert "[two] unload/only_two succeeded" in log


def test_a_target_whose_only_step_is_for_another_target_exits_0(workdir, two_databases):
    steps = ("  - name: unload\n    targets: two\n    queries:\n"
             f"      - name: only_two\n        file: {insert(workdir, 'only_two')}\n")
    result = run_playbook(workdir.playbook(steps, targets=targets_of(two_databases)))
    assert result.exit_code == 0, result.errors
    assert {(q.target, q.status) for q in result.queries} == {("one", "skipped"),
                                                               ("two", "succeeded")}
    assert done_in(two_databases["one"]) == []


@pytest.mark.no_database
@pytest.mark.parametrize(("value", "line", "message"), [
    ("[one, tow]", 20, "targets: no target named 'tow' (did you mean 'two'?)"),
    ("\n      - one\n      - three", 22, "targets: no target named 'three'"),
    ("[]", 20, "targets: name at least one target"),
    ("[{name: one}]", 20, "targets: expected a target's name, got a mapping"),
    ("{one: 1}", 20, "step 'targets' must be a list or str"),
])
def test_a_step_naming_an_unknown_target_is_a_playbook_error_with_its_line(
        workdir, value, line, message, capsys):
    sql = workdir.sql("a.sql", "SELECT 1;")
    targets = (target_yaml(workdir.params, "one") + target_yaml(workdir.params, "two"))
    playbook = workdir.playbook(f"  - name: s\n    targets: {value}\n    queries:\n"
                                f"      - name: a\n        file: {sql}\n", targets=targets)
    with pytest.raises(PlaybookError) as caught:
        load_playbook(playbook)
    assert f"playbook.yml:{line}" in str(caught.value)
    assert message in str(caught.value)
    assert main(["--playbook", playbook]) == 1
    assert message in capsys.readouterr().err
