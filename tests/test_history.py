"""Run history (issue 19, item 4): each query's start, end, rows and status recorded beside
the checkpoints, and ``sqlrunner status --history`` showing recent runs with the duration
of each step and query, the slowest first, as a table and as JSON."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from conftest import query_one, run_sql

from sqlrunner.api import run_playbook
from sqlrunner.cli import main
from sqlrunner.cli.history import HEADERS
from sqlrunner.execute.checkpoints import RunRecord
from sqlrunner.execute.history import QueryRun, run_history


def _text(playbook: str, capsys, *flags: str) -> list[str]:
    capsys.readouterr()
    assert main(["status", "-p", playbook, "--history", *flags]) == 0
    return capsys.readouterr().out.splitlines()


def _json(playbook: str, capsys, *flags: str) -> dict:
    capsys.readouterr()
    assert main(["status", "-p", playbook, "--history", "--format", "json", *flags]) == 0
    return json.loads(capsys.readouterr().out)


def _runs(playbook: str, capsys, *flags: str) -> list[dict]:
    (target,) = _json(playbook, capsys, *flags)["targets"]
    return target["runs"]


def _set_seconds(database: str, durations: dict[str, float]) -> None:
    """Give recorded queries the durations ``durations`` (query -> seconds), each starting
    where it did: what a slow query looks like, without a test that waits for one."""
    for query, seconds in durations.items():
        run_sql(database, "UPDATE sqlrunner.query_history SET ended_at = started_at + "
                          "%s * interval '1 second' WHERE query = %s", (seconds, query))


def _model(workdir) -> str:
    """Two steps: a load of two queries (5 and 2 rows), then a report (1 row)."""
    big = workdir.sql("big.sql", "INSERT INTO t SELECT g FROM generate_series(1, 5) AS g;")
    small = workdir.sql("small.sql", "INSERT INTO t VALUES (6), (7);")
    report = workdir.sql("report.sql", "CREATE TABLE report AS SELECT count(*) AS n FROM t;")
    return workdir.playbook(workdir.steps(("load", [("big", big), ("small", small)]),
                                          ("report", [("report", report)])))


def test_a_runs_history_shows_its_steps_and_queries_with_durations_and_rows(
        workdir, database, capsys):
    run_sql(database, "CREATE TABLE t (x int)")
    playbook = _model(workdir)
    assert main(["-p", playbook, "--progress", "plain"]) == 0
    recorded = run_sql(database, "SELECT query, status, row_count, attempt, started_at, "
                                 "ended_at FROM sqlrunner.query_history ORDER BY query")
    assert [(q, s, n, a) for q, s, n, a, _, _ in recorded] == [
        ("big", "succeeded", 5, 1), ("report", "succeeded", 1, 1),
        ("small", "succeeded", 2, 1)]
    assert all(start <= end for *_, start, end in recorded)
    (run_id,) = run_sql(database, "SELECT run_id FROM sqlrunner.runs")[0]
    lines = _text(playbook, capsys)
    assert lines[0].startswith("target db: ")
    assert lines[1].startswith(f"  run {run_id[:8]}: succeeded, whole playbook, started ")
    assert lines[2].split() == " ".join(HEADERS).split()
    rows = {line.split()[0]: line.split() for line in lines[3:]}
    assert rows["load"][1] == "succeeded" and rows["report"][1] == "succeeded"
    assert rows["big"][1:2] + rows["big"][3:5] == ["succeeded", "5", "1"]
    assert rows["small"][3] == "2" and rows["report"][3] == "1"
    # each figure is a duration in seconds
    assert all(float(rows[name][2]) >= 0 for name in ("load", "big", "small", "report"))


def test_steps_and_queries_are_listed_the_slowest_first(workdir, database, capsys):
    run_sql(database, "CREATE TABLE t (x int)")
    playbook = _model(workdir)
    assert main(["-p", playbook, "--progress", "plain"]) == 0
    _set_seconds(database, {"big": 1.0, "small": 3.0, "report": 30.0})
    names = [line.split()[0] for line in _text(playbook, capsys)[3:]]
    assert names == ["report", "report", "load", "small", "big"]
    _set_seconds(database, {"big": 60.0})
    (run,) = _runs(playbook, capsys)
    assert [s["step"] for s in run["steps"]] == ["load", "report"]
    assert [q["query"] for q in run["steps"][0]["queries"]] == ["big", "small"]
    # the step's queries ran side by side: the step took as long as the slower one
    assert run["steps"][0]["seconds"] >= 60.0 > run["steps"][0]["seconds"] - 1.0


def test_the_json_holds_what_the_table_shows(workdir, database, capsys):
    run_sql(database, "CREATE TABLE t (x int)")
    playbook = _model(workdir)
    assert main(["-p", playbook, "--progress", "plain"]) == 0
    document = _json(playbook, capsys)
    (target,) = document["targets"]
    assert target["target"] == "db" and target["error"] is None
    assert target["where"].startswith("target db: ")
    (run,) = target["runs"]
    assert run["status"] == "succeeded" and run["mode"] == "full" and run["attempts"] == 1
    assert run["run_id"] == query_one(database, "SELECT run_id FROM sqlrunner.runs")
    table = {line.split()[0]: line.split() for line in _text(playbook, capsys)[3:]}
    for step in run["steps"]:
        assert table[step["step"]][1:3] == [step["status"], f"{step['seconds']:.3f}"]
        for query in step["queries"]:
            row = table[query["query"]]
            assert row[1:5] == [query["status"], f"{query['seconds']:.3f}",
                                f"{query['rows']:,}", str(query["attempt"])]
            start = datetime.fromisoformat(query["started_at"].removesuffix("Z"))
            end = datetime.fromisoformat(query["ended_at"].removesuffix("Z"))
            assert abs((end - start).total_seconds() - query["seconds"]) < 1e-5
            assert query["file"].endswith(f"{query['query']}.sql")
    assert sorted(q["query"] for s in run["steps"] for q in s["queries"]) == [
        "big", "report", "small"]


def test_limit_shows_the_latest_runs_newest_first(workdir, database, capsys):
    sql = workdir.sql("one.sql", "SELECT 1;")
    playbook = workdir.playbook(workdir.steps(("s", [("one", sql)])))
    for _ in range(3):
        assert main(["-p", playbook, "--progress", "plain"]) == 0
    ids = [r[0] for r in run_sql(database, "SELECT run_id FROM sqlrunner.runs "
                                           "ORDER BY started_at DESC")]
    assert [r["run_id"] for r in _runs(playbook, capsys)] == ids
    assert [r["run_id"] for r in _runs(playbook, capsys, "--limit", "2")] == ids[:2]
    text = _text(playbook, capsys, "--limit", "1")
    assert sum(line.startswith("  run ") for line in text) == 1
    assert text[1].startswith(f"  run {ids[0][:8]}: ")


def test_a_database_with_no_runs_says_so(workdir, database, capsys):
    sql = workdir.sql("one.sql", "SELECT 1;")
    playbook = workdir.playbook(workdir.steps(("s", [("one", sql)])))
    assert _text(playbook, capsys)[1:] == ["  no runs recorded"]
    assert _runs(playbook, capsys) == []
    # status creates nothing in the database
    assert query_one(database, "SELECT count(*) FROM pg_namespace "
                               "WHERE nspname = 'sqlrunner'") == 0


def test_a_failed_query_shows_as_failed_with_its_error(workdir, database, capsys):
    run_sql(database, "CREATE TABLE t (x int)")
    good = workdir.sql("good.sql", "INSERT INTO t VALUES (1);")
    bad = workdir.sql("bad.sql", "INSERT INTO t SELECT x FROM missing;")
    playbook = workdir.playbook(workdir.steps(("load", [("good", good), ("bad", bad)])))
    assert main(["-p", playbook, "--progress", "plain", "--retries", "0"]) == 6
    (run,) = _runs(playbook, capsys)
    assert run["status"] == "failed"
    (step,) = run["steps"]
    assert step["status"] == "failed"
    queries = {q["query"]: q for q in step["queries"]}
    assert queries["good"]["status"] == "succeeded" and queries["good"]["rows"] == 1
    assert queries["bad"]["status"] == "failed" and queries["bad"]["rows"] is None
    assert '"missing" does not exist' in queries["bad"]["error"]
    lines = _text(playbook, capsys)
    assert next(line for line in lines if line.split()[0] == "bad").split()[1] == "failed"
    assert any(line.strip().startswith("load/bad failed (attempt 1): ") and "missing" in line
               for line in lines)


def test_a_resumed_run_shows_the_failed_attempt_and_the_one_that_finished_it(
        workdir, database, capsys):
    run_sql(database, "CREATE TABLE t (x int)")
    one = workdir.sql("one.sql", "INSERT INTO t VALUES (1);")
    two = workdir.sql("two.sql", "INSERT INTO t SELECT x FROM later;")
    three = workdir.sql("three.sql", "INSERT INTO t VALUES (3);")
    playbook = workdir.playbook(workdir.steps(("a", [("one", one)]), ("b", [("two", two)]),
                                              ("c", [("three", three)])))
    assert run_playbook(playbook, retries=0).exit_code == 6
    run_sql(database, "CREATE TABLE later AS SELECT 2 AS x")
    resumed = run_playbook(playbook)
    assert resumed.exit_code == 0 and resumed.resumed_from is not None
    (run,) = _runs(playbook, capsys)
    assert run["status"] == "succeeded" and run["attempts"] == 2
    executions = sorted((q["attempt"], q["query"], q["status"])
                        for s in run["steps"] for q in s["queries"])
    # one ran once (the resume skipped it); two failed, then succeeded on the resume
    assert executions == [(1, "one", "succeeded"), (1, "two", "failed"),
                          (2, "three", "succeeded"), (2, "two", "succeeded")]
    assert {s["step"]: s["status"] for s in run["steps"]} == {
        "a": "succeeded", "b": "succeeded", "c": "succeeded"}
    lines = _text(playbook, capsys)
    assert ", 2 attempts;" in lines[1]
    # status and attempt (a failed query has no rows; the start is a date and a time)
    assert sorted((line.split()[1], line.split()[-3]) for line in lines[3:]
                  if line.split()[0] == "two") == [("failed", "1"), ("succeeded", "2")]


def test_a_store_made_before_the_history_gets_its_table_on_the_next_run(
        workdir, database, capsys):
    run_sql(database, "CREATE TABLE t (x int)")
    playbook = _model(workdir)
    assert main(["-p", playbook, "--progress", "plain"]) == 0
    run_sql(database, "DROP TABLE sqlrunner.query_history; DROP TABLE report")
    (target,) = _json(playbook, capsys)["targets"]
    assert target["history_recorded"] is False and len(target["runs"]) == 1
    assert target["runs"][0]["steps"] == []
    assert main(["-p", playbook, "--progress", "plain"]) == 0
    newest, older = _runs(playbook, capsys)
    assert sorted(q["query"] for s in newest["steps"] for q in s["queries"]) == [
        "big", "report", "small"]
    assert older["steps"] == []
    assert "no query recorded" in "\n".join(_text(playbook, capsys))


def test_history_rows_ride_along_with_the_next_checkpoint(workdir, database, monkeypatch):
    # Every row carried by the next checkpoint (not batched): while the third query runs,
    # the first one's row is stored, carried by the second query's transaction.
    monkeypatch.setattr("sqlrunner.execute.state.HISTORY_BATCH", 1)
    run_sql(database, "CREATE TABLE t (x int)")
    five = workdir.sql("five.sql", "INSERT INTO t SELECT g FROM generate_series(1, 5) AS g;")
    two = workdir.sql("two.sql", "INSERT INTO t VALUES (6), (7);")
    seen = workdir.sql("seen.sql", "SELECT count(*) FROM sqlrunner.query_history "
                                   "HAVING count(*) <> 1;")
    three = workdir.sql("three.sql", "INSERT INTO t VALUES (8), (9), (10);")
    playbook = workdir.playbook(
        workdir.steps(("a", [("five", five)]), ("b", [("two", two)])) +
        f"  - name: c\n    queries:\n      - name: seen\n        file: {seen}\n"
        "        assert: no_rows\n" + workdir.steps(("d", [("three", three)])))
    result = run_playbook(playbook)
    assert result.exit_code == 0, result.errors
    # the rows of each file's own last statement, with a checkpoint and a history row after it
    assert {q.query: q.rows for q in result.queries} == {"five": 5, "two": 2, "seen": 0,
                                                          "three": 3}
    assert sorted(run_sql(database, "SELECT query, row_count FROM sqlrunner.query_history")) == [
        ("five", 5), ("seen", 0), ("three", 3), ("two", 2)]


def test_rows_a_failed_query_carried_are_written_by_the_next_carrier(workdir, database,
                                                                     monkeypatch):
    monkeypatch.setattr("sqlrunner.execute.state.HISTORY_BATCH", 1)
    run_sql(database, "CREATE TABLE t (x int)")
    one = workdir.sql("one.sql", "INSERT INTO t VALUES (1);")
    bad = workdir.sql("bad.sql", "INSERT INTO t VALUES (2); SELECT 1/0;")
    playbook = workdir.playbook(workdir.steps(("a", [("one", one)]), ("b", [("bad", bad)])))
    assert run_playbook(playbook, retries=0).exit_code == 6
    assert sorted(run_sql(database, "SELECT query, status FROM sqlrunner.query_history")) == [
        ("bad", "failed"), ("one", "succeeded")]


def test_runs_without_checkpoints_record_no_history(workdir, database, capsys):
    sql = workdir.sql("one.sql", "SELECT 1;")
    playbook = workdir.playbook(workdir.steps(("s", [("one", sql)])))
    assert main(["-p", playbook, "--progress", "plain", "--no-checkpoints"]) == 0
    assert _runs(playbook, capsys) == []


def test_format_json_without_history_is_a_usage_error(workdir, capsys):
    sql = workdir.sql("one.sql", "SELECT 1;")
    playbook = workdir.playbook(workdir.steps(("s", [("one", sql)])))
    assert main(["status", "-p", playbook, "--format", "json"]) == 2
    assert "--history" in capsys.readouterr().err


_RUN = RunRecord("r1", "p.yml", "db", "full", "succeeded", datetime(2026, 1, 1),
                 datetime(2026, 1, 1), datetime(2026, 1, 1), None, None, 2, 3)


def _entry(step: str, query: str, attempt: int, start: float, seconds: float,
           status: str = "succeeded") -> QueryRun:
    began = datetime(2026, 1, 1) + timedelta(seconds=start)
    return QueryRun("r1", attempt, step, query, f"{query}.sql", status, began,
                    began + timedelta(seconds=seconds), 1, 0, None)


def test_a_steps_duration_spans_its_parallel_queries_in_each_attempt():
    history = run_history(_RUN, [
        _entry("load", "a", 1, 0, 4), _entry("load", "b", 1, 1, 5, "failed"),
        _entry("load", "b", 2, 3600, 2), _entry("tests", "t", 2, 3602, 1)])
    load, tests = history.steps
    assert (load.step, load.seconds, load.status) == ("load", 6 + 2, "succeeded")
    assert [(q.query, q.attempt) for q in load.queries] == [("b", 1), ("a", 1), ("b", 2)]
    assert (tests.step, tests.seconds) == ("tests", 1)
    # the hour between the attempts is not the run's
    assert history.seconds == 6 + 3


def test_a_step_whose_latest_execution_failed_is_failed():
    history = run_history(_RUN, [_entry("s", "a", 1, 0, 1), _entry("s", "b", 1, 0, 1),
                                 _entry("s", "b", 2, 10, 1, "failed")])
    assert history.steps[0].status == "failed"
