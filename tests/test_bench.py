"""The benchmark harness's own logic (bench/): figures, ratios, fixtures and the table.

No timing is asserted here; the benchmarks themselves run with ``python -m bench``.
"""

from __future__ import annotations

import pytest

from bench.db import Endpoint, _like_prefix, with_database
from bench.output import Row, format_table, rows
from bench.overhead import QUERIES, write_fixtures
from bench.stats import Figure, marginal_per_query, memory_figure, paired
from sqlrunner.playbook import load_playbook


def test_figure_reports_median_min_and_max_of_its_runs():
    figure = Figure.of([3.0, 1.0, 2.0, 10.0, 2.5])
    assert (figure.median, figure.min, figure.max) == (2.5, 1.0, 10.0)
    assert figure.to_json()["runs"] == 5
    assert figure.text(1000, "ms", 0) == "2500 ms (1000–10000)"


def test_figure_needs_a_value():
    with pytest.raises(ValueError):
        Figure.of([])


def test_ratios_pair_runs_of_the_same_round():
    figure = paired([10.0, 20.0, 30.0], [1.0, 4.0, 3.0])
    assert figure.values == (10.0, 5.0, 10.0)
    with pytest.raises(ValueError):
        paired([1.0], [1.0, 2.0])


def test_per_query_overhead_is_the_marginal_cost_beyond_psql():
    # runner: 0.3 s + 1 ms per query; psql: 0.03 s + 0.1 ms per query -> 0.9 ms per query
    runner_one, runner_many = [0.301], [0.3 + 0.001 * 200]
    psql_one, psql_many = [0.0301], [0.03 + 0.0001 * 200]
    figure = marginal_per_query(runner_many, runner_one, psql_many, psql_one, 200)
    assert figure.median == pytest.approx(0.0009)


def test_like_prefix_escapes_wildcards():
    assert _like_prefix("a_b%") == "a\\_b\\%%"


def test_endpoint_from_a_dsn():
    dsn = with_database("host=db.example port=6543 user=me password=secret dbname=x", "bench")
    endpoint = Endpoint.of(dsn)
    assert (endpoint.host, endpoint.port, endpoint.user, endpoint.database) == (
        "db.example", "6543", "me", "bench")
    assert endpoint.psql_env() == {"PGPASSWORD": "secret"}
    assert endpoint.psql_args() == ["-h", "db.example", "-p", "6543", "-U", "me", "-d", "bench"]


def test_overhead_fixtures_are_valid_playbooks_of_the_right_shape(tmp_path):
    endpoint = Endpoint("127.0.0.1", "5432", "postgres", None, "bench")
    playbooks = write_fixtures(tmp_path, endpoint, heavy_rows=10, many_rows=10)
    shapes = {name: [len(step.queries) for step in load_playbook(str(path)).steps]
              for name, path in playbooks.items()}
    assert shapes["one"] == [1]
    assert shapes["steps_of_one"] == [1] * QUERIES
    assert shapes["steps_of_ten"] == [10] * (QUERIES // 10)
    assert shapes["heavy_parallel"] == [4] and shapes["heavy_series"] == [1] * 4
    assert (tmp_path / "sql" / "q200.sql").read_text() == "SELECT 1;\n"


def _figure(median: float) -> dict:
    return {"median": median, "min": median * 0.9, "max": median * 1.1}


def test_table_judges_each_target():
    results = {
        "overhead": {
            "per_query.no_checkpoints.steps_of_one": _figure(0.0004),
            "per_query.checkpoints.steps_of_one": _figure(0.0007),
            "startup.no_checkpoints": _figure(0.25),
        },
        "full_rebuild": {"sizes": [{
            "events": 1_000_000, "rebuild": _figure(12.0), "floor_sequential": _figure(1.0),
            "floor_index_only_allowed": _figure(0.1),
            "ratio_to_sequential_floor": _figure(12.0),
            "ratio_to_index_only_floor": _figure(120.0)}]},
        "incremental": {"skipped": "not there yet"},
    }
    table = rows(results)
    verdicts = {row.what: row.verdict for row in table}
    assert verdicts["per-query overhead beyond psql -f, 200 steps of 1, no checkpoints"] == "holds"
    assert verdicts["per-query overhead beyond psql -f, 200 steps of 1, checkpoints"] == "MISSED"
    assert verdicts["start-up, a 1-query playbook, no checkpoints"] == "holds"
    assert verdicts["full rebuild, 1,000,000 events"] == "MISSED"
    assert any("not there yet" in row.ours for row in table)


def test_table_is_markdown():
    text = format_table([Row("a", "1 s", "", "≤ 2 s", True)])
    assert text.splitlines()[2] == "| a | 1 s |  | ≤ 2 s | holds |"


def test_memory_figure_only_when_every_run_was_measured():
    assert memory_figure([1024, None]) is None
    assert memory_figure([]) is None
    assert memory_figure([2048, 1024, 4096])["median"] == 2048


def test_statistics_runs_pair_the_last_run_with_the_second_of_the_same_round():
    from bench.table_statistics import summary

    result = summary([[1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 3.0]], [[0.1] * 4, [0.3] * 4])
    assert result["last_to_second"]["values"] == [2.0, 3.0]
    assert [r["median"] for r in result["runs"]] == [1.0, 1.5, 2.0, 3.5]
    assert result["statistics_step"][0]["median"] == pytest.approx(0.2)


def test_table_judges_the_statistics_target_on_the_model_only():
    def variant(last_to_second: float) -> dict:
        return {"runs": [_figure(1.0)] * 10, "last_to_second": _figure(last_to_second),
                "rounds": 3}

    results = {"statistics": {"sequences": {
        "batches": 10, "events_per_batch": 10_000,
        "variants": {"model": variant(1.4), "before, nothing analysed": variant(130.0)}}}}
    verdicts = {row.what.split(": ")[-1]: row.verdict for row in rows(results)}
    assert verdicts == {"model": "holds", "before, nothing analysed": ""}
    results["statistics"]["sequences"]["variants"]["model"] = variant(2.5)
    assert [row.verdict for row in rows(results)][0] == "MISSED"


def test_the_earlier_sql_is_exported_from_git(tmp_path):
    from bench.table_statistics import export_playbooks

    playbook = export_playbooks("HEAD", tmp_path)
    if playbook is None:
        pytest.skip("needs git and this checkout's history")
    assert playbook.is_file() and (tmp_path / "sql" / "incremental").is_dir()
    assert export_playbooks("no-such-ref-anywhere", tmp_path / "none") is None


def test_split_playbooks_list_one_file_as_halves_with_their_variables(tmp_path):
    from bench.split import write_playbooks

    endpoint = Endpoint("127.0.0.1", "5432", "postgres", None, "bench")
    playbooks = write_playbooks(tmp_path, endpoint)
    shapes = {name: [[dict(q.variables) for q in step.queries]
                     for step in load_playbook(str(path)).steps]
              for name, path in playbooks.items()}
    assert shapes == {
        "whole": [[{"part": 0, "parts": 1}]],
        "halves": [[{"part": 0, "parts": 2}, {"part": 1, "parts": 2}]],
        "halves_in_series": [[{"part": 0, "parts": 2}], [{"part": 1, "parts": 2}]],
    }
    assert "hashtext(domain_userid)" in (tmp_path / "sql" / "cookie_pass.sql").read_text()


def test_table_judges_issue_18s_runner_against_its_baseline_and_the_split():
    runner = {"per_query.steps_of_one": _figure(0.0003),
              "per_query.steps_of_ten": _figure(0.0004)}
    results = {
        "runner": {"baseline_ref": "d325c2b", "psql_startup": _figure(0.03),
                   "this": {**runner, "startup": _figure(0.19), "empty_run": _figure(0.35)},
                   "baseline": {**runner, "startup": _figure(0.3), "empty_run": _figure(0.5)},
                   "this_over_baseline": {"startup": _figure(0.63),
                                          "empty_run": _figure(0.7)}},
        "split": {"events": 1000, "seconds": {"whole": _figure(10.0), "halves": _figure(6.0),
                                              "halves_in_series": _figure(10.5)},
                  "halves_over_whole": _figure(0.6), "series_over_whole": _figure(1.05)},
    }
    verdicts = {row.what: row.verdict for row in rows(results)}
    assert verdicts["start-up, a 1-query playbook, checkpoints (issue 18)"] == "holds"
    assert verdicts["per-query overhead beyond psql -f, 200 steps of 1, checkpoints "
                    "(issue 18)"] == "holds"
    assert verdicts["per-query overhead beyond psql -f, 20 steps of 10, checkpoints "
                    "(issue 18)"] == "MISSED"
    assert verdicts["incremental run with nothing new, the model's tables empty "
                    "(issue 18)"] == "MISSED"
    assert verdicts["a window pass over 1,000 events, two halves in parallel (per-query "
                    "variables) against one query"] == "holds"


def test_table_judges_the_options_cost_against_the_defaults():
    from bench.options import EVERY_OPTION

    section = {"history": 1_000_000, "batch": 0.01}
    for kind, ratio in (("full", 1.2), ("incremental", 1.4)):
        section |= {f"{kind}_every_option": _figure(ratio), f"{kind}_defaults": _figure(1.0),
                    f"{kind}_ratio": _figure(ratio)}
    table = rows({"options": section})
    assert [(row.what.split(" on ")[0], row.verdict) for row in table] == [
        ("full rebuild", "holds"), ("incremental run, 1% batch,", "MISSED")]
    mode = "every_option_but_ua_bot_filter"  # shown, not judged
    for kind in ("full", "incremental"):
        section |= {f"{kind}_{mode}": _figure(1.1), f"{kind}_ratio_{mode}": _figure(1.1)}
    assert [row.verdict for row in rows({"options": section})] == ["holds", "MISSED", "", ""]
    # the options the section runs with pass the model's own checks
    from sqlrunner.modeloptions import normalise_options
    from sqlrunner.playbook.yaml12 import load_yaml

    checked = normalise_options("p.yml", {"conversions": []}, load_yaml(EVERY_OPTION, "f"))
    assert [c["name"] for c in checked["conversions"]] == ["cart_add", "form_submit"]
