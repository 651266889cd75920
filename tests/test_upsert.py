"""The upsert query option and steps that skip themselves when there is nothing to do."""

from __future__ import annotations

import psycopg
import pytest
from conftest import query_one, run_sql

from sqlrunner.api import run_playbook
from sqlrunner.errors import PlaybookError


def _upsert_playbook(workdir, select: str, upsert: str) -> str:
    file = workdir.sql("select.sql", select)
    return workdir.playbook(
        "  - name: s\n    queries:\n      - name: merge\n        file: " + file +
        "\n        template: true\n        upsert:\n" + upsert)


def test_upsert_creates_the_table_then_replaces_rows_by_key(workdir, database):
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA d; CREATE TABLE src (k int, v text)")
        conn.execute("INSERT INTO src VALUES (1, 'a'), (2, 'b')")
    playbook = _upsert_playbook(workdir, "-- the new rows\nSELECT k, v FROM src;\n",
                                "          table: '{{.schema}}.merged'\n          key: k\n")
    first = run_playbook(playbook, {"schema": "d"})
    assert first.exit_code == 0, first.errors
    assert first.queries[0].rows == 2
    run_sql(database, "DELETE FROM src; INSERT INTO src VALUES (2, 'B'), (3, 'c')")
    assert run_playbook(playbook, {"schema": "d"}).exit_code == 0
    assert run_sql(database, "SELECT k, v FROM d.merged ORDER BY k") == [
        (1, "a"), (2, "B"), (3, "c")]


def test_upsert_by_composite_key_within_a_date_window(workdir, database):
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("CREATE TABLE src (a int, b int, day date, n int)")
        conn.execute("CREATE TABLE merged (a int, b int, day date, n int)")
        # An old row with the same key, outside the window, is left alone.
        conn.execute("INSERT INTO merged VALUES (1, 1, '2024-01-01', 0), (1, 1, '2024-03-09', 0),"
                     " (1, 2, '2024-03-10', 0)")
        conn.execute("INSERT INTO src VALUES (1, 1, '2024-03-10', 5), (1, 2, '2024-03-10', 6)")
    playbook = _upsert_playbook(
        workdir, "SELECT a, b, day, n FROM src",
        "          table: public.merged\n          key: [a, b]\n          date_key: day\n"
        "          lookback_days: 3\n")
    assert run_playbook(playbook).exit_code == 0
    assert run_sql(database, "SELECT a, b, day::text, n FROM merged ORDER BY day, b") == [
        (1, 1, "2024-01-01", 0), (1, 1, "2024-03-10", 5), (1, 2, "2024-03-10", 6)]


def test_a_failing_upsert_changes_nothing_and_points_into_the_select(workdir, database):
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("CREATE TABLE merged (k int)")
        conn.execute("INSERT INTO merged VALUES (1)")
    playbook = _upsert_playbook(workdir, "SELECT k\nFROM nowhere", "          table: "
                                "public.merged\n          key: k\n")
    result = run_playbook(playbook, retries=0)
    assert result.exit_code == 6
    assert (result.queries[0].line, result.queries[0].column) == (2, 6)
    assert query_one(database, "SELECT count(*) FROM merged") == 1


@pytest.mark.no_database
def test_upsert_settings_are_validated_with_the_playbook(workdir):
    with pytest.raises(PlaybookError, match="upsert needs 'key'"):
        run_playbook(_upsert_playbook(workdir, "SELECT 1", "          table: public.x\n"))


def test_a_step_skips_itself_when_its_table_is_empty(workdir, database):
    run_sql(database, "CREATE TABLE batch (x int); CREATE TABLE out (x int)")
    work = workdir.sql("work.sql", "INSERT INTO out SELECT x FROM batch;")
    playbook = workdir.playbook("  - name: model\n    skip_if_empty: public.batch\n"
                                "    queries:\n      - name: work\n        file: " + work + "\n")
    empty = run_playbook(playbook)
    assert empty.exit_code == 0
    assert empty.queries[0].status == "skipped"
    assert empty.queries[0].note == "public.batch has no rows"
    run_sql(database, "INSERT INTO batch VALUES (7)")
    assert run_playbook(playbook).queries[0].status == "succeeded"
    assert query_one(database, "SELECT x FROM out") == 7


def test_a_step_for_other_engines_is_left_out_of_a_targets_plan(workdir, database):
    vacuum = workdir.sql("vacuum.sql", "VACUUM SORT ONLY public.t;")  # Redshift syntax
    made = workdir.sql("made.sql", "CREATE TABLE made_here (x int);")
    playbook = workdir.playbook(
        "  - name: redshift_maintenance\n    only_on: redshift\n    queries:\n"
        "      - name: vacuum\n        file: " + vacuum + "\n"
        "  - name: postgres_only\n    only_on: [postgres]\n    queries:\n"
        "      - name: made\n        file: " + made + "\n")
    result = run_playbook(playbook)
    assert result.exit_code == 0, result.errors
    assert [q.query for q in result.queries] == ["made"]
    assert query_one(database, "SELECT to_regclass('made_here') IS NOT NULL") is True


@pytest.mark.no_database
def test_only_on_names_real_engines(workdir):
    made = workdir.sql("made.sql", "SELECT 1;")
    playbook = workdir.playbook("  - name: s\n    only_on: oracle\n    queries:\n"
                                "      - name: made\n        file: " + made + "\n")
    with pytest.raises(PlaybookError, match="unknown target type 'oracle'"):
        run_playbook(playbook)


def test_playbook_variables_reach_step_settings_without_escaping(workdir, database):
    run_sql(database, "CREATE SCHEMA work; CREATE TABLE work.batch (x int)")
    sql = workdir.sql("t.sql", "SELECT 1;")
    playbook = workdir.playbook(
        "  - name: s\n    skip_if_empty: '{{.scratch}}.batch'\n    queries:\n"
        "      - name: t\n        file: " + sql + "\n        upsert:\n"
        "          table: '{{.scratch}}.out'\n          key: x\n",
        variables="  scratch: work\n")
    result = run_playbook(playbook)
    assert result.exit_code == 0, result.errors
    assert result.queries[0].note == "work.batch has no rows"


def test_the_incremental_playbook_maintains_redshift_only_on_redshift():
    from pathlib import Path

    from sqlrunner.api import RunOptions, prepare

    playbook = str(Path(__file__).resolve().parent.parent / "playbooks" / "incremental.yml")
    steps = {
        kind: [s.name for s in prepare(playbook, RunOptions(target=dsn)).targets[0].steps]
        for kind, dsn in (("redshift", "redshift://u@h:5439/d"),
                          ("postgres", "postgresql://u@h/d"))}
    assert "redshift_vacuum" in steps["redshift"]
    assert "redshift_vacuum" not in steps["postgres"]
    # statistics are kept on both engines, before the reads (sql/statistics/analyze_stale.sql)
    for kind in ("redshift", "postgres"):
        assert steps[kind].index("claim") < steps[kind].index("statistics") < steps[kind].index(
            "touched_cookies")
