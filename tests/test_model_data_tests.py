"""The model's own data tests (sql/tests/, the data_tests step at the end of each playbook):
they pass on generated data, in the full and the incremental mode, and fail, naming the
offending key, on a derived table with a duplicated key."""

from __future__ import annotations

import json

import pytest
from conftest import query_one, run_sql
from test_model_full import HIGH_RATES, load
from test_model_incremental import FULL, INCREMENTAL, LANDING, SWITCH

from sqlrunner.api import run_playbook
from sqlrunner.cli import main
from sqlrunner.generate import GeneratorConfig, generate_batches
from sqlrunner.generate.events import as_dict

pytestmark = pytest.mark.slow  # runs the model (not in the quick subset)

DERIVED_TESTS = {"sessions_key", "page_views_key", "visitors_key",
                 "cookie_id_to_user_id_map_key", "page_views_in_one_session"}
MOVED_TESTS = {"landing_claim_empty", "atomic_moved_once"}


def batches(seed: int, events: int = 1200, count: int = 3) -> list[list[dict]]:
    """Generated events, with every awkward case at a high rate, in ``count`` loads."""
    config = GeneratorConfig(events=events, seed=seed, batches=count, rates=HIGH_RATES)
    return [[as_dict(r) for r in b.rows] for b in generate_batches(config)]


def passed_tests(result) -> set[str]:
    """The data tests of a run that passed (asserted no rows, got none)."""
    return {q.query for q in result.queries
            if q.step == "data_tests" and q.assertion == "no_rows" and q.assertion_passed}


def test_the_full_mode_data_tests_pass_on_generated_data(database):
    load(database, [e for b in batches(71) for e in b])
    result = run_playbook(FULL, target=database)
    assert result.exit_code == 0, result.errors
    assert passed_tests(result) == DERIVED_TESTS


def test_the_incremental_data_tests_pass_batch_after_batch(database):
    first, *later = batches(72, count=4)
    load(database, first)
    switch = run_playbook(SWITCH, target=database)
    assert switch.exit_code == 0, switch.errors
    assert passed_tests(switch) == DERIVED_TESTS | MOVED_TESTS
    for batch in later:
        load(database, batch, LANDING)
        result = run_playbook(INCREMENTAL, target=database)
        assert result.exit_code == 0, result.errors
        assert passed_tests(result) == DERIVED_TESTS | MOVED_TESTS


def plant_duplicate_session(dsn: str) -> tuple[str, int]:
    """A second copy of one session's row in derived.sessions, as Redshift, which enforces
    no key, would take it (PostgreSQL's unique index is dropped first); its key."""
    run_sql(dsn, "DROP INDEX derived.sessions_key_idx")
    cookie, index = run_sql(dsn, "SELECT domain_userid, domain_sessionidx FROM derived.sessions "
                                 "ORDER BY max_etl_tstamp DESC, domain_userid LIMIT 1")[0]
    run_sql(dsn, "INSERT INTO derived.sessions SELECT * FROM derived.sessions "
                 "WHERE domain_userid = %s AND domain_sessionidx = %s", (cookie, index))
    return cookie, index


def test_a_duplicated_session_key_fails_the_full_modes_data_test(database, tmp_path,
                                                                  capsys):
    load(database, [e for b in batches(73) for e in b])
    assert run_playbook(FULL, target=database).exit_code == 0
    cookie, index = plant_duplicate_session(database)
    report = tmp_path / "report.json"
    code = main(["-p", FULL, "--target", database, "--from-step", "data_tests",
                 "--report", str(report), "--progress", "plain"])
    assert code == 6
    log = capsys.readouterr().err
    assert "QUERY FAILURE: target warehouse, step data_tests, query sessions_key" in log
    assert f"the first: domain_userid={cookie}, domain_sessionidx={index}, copies=2" in log
    records = {q["query"]: q for q in json.loads(report.read_text())["queries"]}
    assert records["sessions_key"]["failing_rows"]["rows"] == [[cookie, index, 2]]
    assert {name for name, q in records.items() if q["assertion_passed"]} == (
        DERIVED_TESTS - {"sessions_key"})


def test_a_duplicated_key_in_the_batch_fails_the_incremental_data_test(database):
    first, second = batches(74, count=2)
    load(database, first)
    assert run_playbook(SWITCH, target=database).exit_code == 0
    load(database, second, LANDING)
    assert run_playbook(INCREMENTAL, target=database).exit_code == 0
    run_id = query_one(database, "SELECT run_id FROM derived.etl_tstamps "
                                 "ORDER BY processed_at DESC LIMIT 1")
    cookie, index = plant_duplicate_session(database)
    # The tests of that run again: with its run_id they read the cookies its batch reached.
    again = run_playbook(INCREMENTAL, target=database, run_query="data_tests::sessions_key",
                         variables={"run_id": run_id})
    assert again.exit_code == 6
    assert again.failed[0].failing_rows.rows == ((cookie, index, 2),)


def test_an_event_moved_into_atomic_twice_fails_the_incremental_data_test(database):
    """atomic_moved_once counts only this run's etl_tstamps (one index probe each), NULL
    etl_tstamps among them: half the batch here has none."""
    first, second = batches(75, count=2)
    second = [{**e, "etl_tstamp": None} if i % 2 else e for i, e in enumerate(second)]
    load(database, first)
    assert run_playbook(SWITCH, target=database).exit_code == 0
    load(database, second, LANDING)
    result = run_playbook(INCREMENTAL, target=database)
    assert result.exit_code == 0, result.errors
    assert "atomic_moved_once" in passed_tests(result)
    run_id = query_one(database, "SELECT run_id FROM derived.etl_tstamps "
                                 "ORDER BY processed_at DESC LIMIT 1")
    recorded = dict(run_sql(database, "SELECT etl_tstamp, event_count FROM derived.etl_tstamps "
                                      "WHERE run_id = %s", (run_id,)))
    dated = next(etl for etl in recorded if etl is not None)
    for etl in (None, dated):  # a second copy of one moved event of each
        run_sql(database, "INSERT INTO atomic.events SELECT * FROM atomic.events "
                          "WHERE etl_tstamp IS NOT DISTINCT FROM %s LIMIT 1", (etl,))
    again = run_playbook(INCREMENTAL, target=database, run_query="data_tests::atomic_moved_once",
                         variables={"run_id": run_id})
    assert again.exit_code == 6
    failing = {etl: (moved, held) for etl, moved, held in again.failed[0].failing_rows.rows}
    epoch = min(failing)  # NULL etl_tstamps are counted under 0001-01-01, as the manifest does
    assert failing == {epoch: (recorded[None], recorded[None] + 1),
                       dated: (recorded[dated], recorded[dated] + 1)}
