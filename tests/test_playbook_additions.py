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


# -- assert: no_rows -------------------------------------------------------------------------

def data_test_steps(workdir, optional: bool = False) -> str:
    """A step of two data tests over ``done`` (one passes, one finds the duplicate 'dup'),
    then a step that records 'after'."""
    unique = workdir.sql("unique.sql", "-- each q once\nSELECT q, count(*) AS copies "
                                       "FROM done GROUP BY q HAVING count(*) > 1;")
    no_nulls = workdir.sql("no_nulls.sql", "SELECT * FROM done WHERE q IS NULL;")
    more = "        continue_on_error: true\n" if optional else ""
    return ("  - name: tests\n    queries:\n"
            f"      - name: unique_q\n        file: {unique}\n        assert: no_rows\n{more}"
            f"      - name: no_null_q\n        file: {no_nulls}\n        assert: no_rows\n"
            "  - name: after\n    queries:\n"
            f"      - name: later\n        file: {insert(workdir, 'later')}\n")


def test_a_failing_data_test_shows_its_offending_row_and_stops_its_target(
        workdir, two_databases, tmp_path, capsys):
    run_sql(two_databases["two"], "INSERT INTO done VALUES ('dup'), ('dup'), ('single')")
    playbook = workdir.playbook(data_test_steps(workdir), targets=targets_of(two_databases))
    report = tmp_path / "report.json"
    assert main(["--playbook", playbook, "--report", str(report), "--progress", "plain"]) == 6
    log = capsys.readouterr().err
    assert "QUERY FAILURE: target two, step tests, query unique_q" in log
    assert "it returned 1 row; the first: q=dup, copies=2" in log
    assert "    dup | 2" in log  # the offending rows, as a table under the failure
    records = {(q["target"], q["query"]): q for q in json.loads(report.read_text())["queries"]}
    failed = records[("two", "unique_q")]
    assert (failed["status"], failed["assertion"], failed["assertion_passed"]) == (
        "failed", "no_rows", False)
    assert failed["failing_rows"]["columns"] == ["q", "copies"]
    assert failed["failing_rows"]["rows"] == [["dup", 2]]
    assert records[("two", "no_null_q")]["assertion_passed"] is True
    assert records[("one", "unique_q")]["assertion_passed"] is True
    assert records[("two", "later")]["status"] == "skipped"  # target two stopped
    assert done_in(two_databases["one"]) == ["later"]
    assert "later" not in done_in(two_databases["two"])


def test_a_failing_data_test_shows_at_most_10_offending_rows_and_counts_them_all(
        workdir, database, tmp_path, capsys):
    run_sql(database, "CREATE TABLE done (q text); INSERT INTO done SELECT 'k' || g "
                      "FROM generate_series(1, 25) AS g, generate_series(1, 2)")
    unique = workdir.sql("unique.sql", "SELECT q, count(*) AS copies FROM done "
                                       "GROUP BY q HAVING count(*) > 1 ORDER BY q;")
    playbook = workdir.playbook(f"  - name: tests\n    queries:\n      - name: unique_q\n"
                                f"        file: {unique}\n        assert: no_rows\n")
    report = tmp_path / "report.json"
    assert main(["--playbook", playbook, "--report", str(report), "--progress", "plain"]) == 6
    log = capsys.readouterr().err
    assert "it returned 25 rows; the first: q=k1, copies=2" in log
    # the offending rows under the failure (each log line starts with its time)
    shown = [line.split()[1] for line in log.splitlines() if line.endswith(" | 2")]
    assert shown == sorted(f"k{g}" for g in range(1, 26))[:10]
    (record,) = json.loads(report.read_text())["queries"]
    failing = record["failing_rows"]
    assert len(failing["rows"]) == 10 and failing["total"] == 25
    assert failing["rows"][0] == ["k1", 2]


def test_a_failing_data_test_with_continue_on_error_lets_the_run_go_on(workdir, database):
    run_sql(database, "CREATE TABLE done (q text); INSERT INTO done VALUES ('dup'), ('dup')")
    result = run_playbook(workdir.playbook(data_test_steps(workdir, optional=True)))
    assert result.exit_code == 6
    assert [q.query for q in result.failed] == ["unique_q"]
    assert done_in(database) == ["dup", "dup", "later"]


def test_a_failed_data_test_records_no_checkpoint_and_runs_again_on_resume(
        workdir, database):
    run_sql(database, "CREATE TABLE done (q text); INSERT INTO done VALUES ('dup'), ('dup')")
    playbook = workdir.playbook(data_test_steps(workdir))
    assert run_playbook(playbook).exit_code == 6
    run_sql(database, "DELETE FROM done")
    again = run_playbook(playbook)
    assert again.exit_code == 0, again.errors
    assert again.resumed_from is not None
    statuses = {q.query: (q.status, q.note) for q in again.queries}
    assert statuses["unique_q"] == ("succeeded", None)
    assert statuses["no_null_q"] == ("skipped", "done in the run being resumed")
    assert done_in(database) == ["later"]


def test_a_data_test_whose_file_returns_no_rows_to_judge_fails(workdir, database):
    run_sql(database, "CREATE TABLE done (q text)")
    sql = workdir.sql("write.sql", "INSERT INTO done VALUES ('x');")
    result = run_playbook(workdir.playbook(
        f"  - name: s\n    queries:\n      - name: t\n        file: {sql}\n"
        "        assert: no_rows\n"))
    assert result.exit_code == 6
    assert "must end with a SELECT" in result.failed[0].error


def test_a_data_test_judges_rows_without_checkpoints_too(workdir, database):
    run_sql(database, "CREATE TABLE done (q text); INSERT INTO done VALUES ('dup'), ('dup')")
    result = run_playbook(workdir.playbook(data_test_steps(workdir)), checkpoints=False)
    assert result.exit_code == 6
    assert result.failed[0].failing_rows.rows == (("dup", 2),)


@pytest.mark.no_database
def test_an_unknown_assertion_is_a_playbook_error_with_its_line(workdir):
    sql = workdir.sql("a.sql", "SELECT 1;")
    playbook = workdir.playbook(f"  - name: s\n    queries:\n      - name: a\n"
                                f"        file: {sql}\n        assert: empty\n")
    with pytest.raises(PlaybookError, match=r"playbook.yml:15: assert: unknown assertion "
                                            r"'empty'; expected one of: no_rows"):
        load_playbook(playbook)


# -- the issue's "must show", on one two-target playbook ----------------------------------------

def test_the_issues_must_show_on_one_two_target_playbook(workdir, two_databases, tmp_path,
                                                         capsys):
    run_sql(two_databases["two"], "INSERT INTO done VALUES ('dup'), ('dup')")
    bad = workdir.sql("bad.sql", "INSERT INTO done SELECT q FROM nowhere;")
    unique = workdir.sql("unique.sql", "SELECT q, count(*) AS copies FROM done "
                                       "GROUP BY q HAVING count(*) > 1;")
    no_nulls = workdir.sql("no_nulls.sql", "SELECT * FROM done WHERE q IS NULL;")
    steps = ("  - name: load\n    queries:\n"
             f"      - name: bad\n        file: {bad}\n        continue_on_error: true\n"
             "  - name: unload\n    targets: [two]\n    queries:\n"
             f"      - name: only_two\n        file: {insert(workdir, 'only_two')}\n"
             "  - name: tests\n    continue_on_error: true\n    queries:\n"
             f"      - name: unique_q\n        file: {unique}\n        assert: no_rows\n"
             f"      - name: no_null_q\n        file: {no_nulls}\n        assert: no_rows\n"
             "  - name: after\n    queries:\n"
             f"      - name: later\n        file: {insert(workdir, 'later')}\n")
    playbook = workdir.playbook(steps, targets=targets_of(two_databases))
    report = tmp_path / "report.json"
    assert main(["--playbook", playbook, "--report", str(report), "--progress", "plain"]) == 6
    assert done_in(two_databases["one"]) == ["later"]
    assert done_in(two_databases["two"]) == ["dup", "dup", "later", "only_two"]
    log = capsys.readouterr().err
    assert "[one] unload/only_two skipped (the step runs on two only)" in log
    assert ("QUERY FAILURE: target two, step tests, query unique_q (continue_on_error: the run "
            "went on)") in log
    assert "the first: q=dup, copies=2" in log
    records = {(q["target"], q["query"]): q for q in json.loads(report.read_text())["queries"]}
    assert records[("two", "unique_q")]["failing_rows"]["rows"] == [["dup", 2]]
    assert records[("two", "no_null_q")]["assertion_passed"] is True
    assert records[("one", "unique_q")]["assertion_passed"] is True
    assert [records[(t, "bad")]["status"] for t in ("one", "two")] == ["failed", "failed"]
