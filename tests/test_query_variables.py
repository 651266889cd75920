"""Per-query template variables: one file listed twice in a step, each entry with its own
``variables`` (``{part: 0, parts: 2}``, ``{part: 1, parts: 2}``), so that a step splits its
work into parts that run in parallel; each entry keeps a checkpoint of its own."""

from __future__ import annotations

import json

import pytest
from conftest import query_one, run_sql

from sqlrunner.api import run_playbook
from sqlrunner.errors import PlaybookError
from sqlrunner.playbook import load_playbook

# Each part copies its share of the keys, split by hashtext as a model would split cookies;
# a part fails while the table ``broken`` names it.
PART_SQL = """\
INSERT INTO copied (part, k)
SELECT {{.part}}, k FROM source WHERE (hashtext(k) & 2147483647) % {{.parts}} = {{.part}};
SELECT 1 / (1 - (SELECT count(*) FROM broken WHERE part = {{.part}}));
"""


def _halves(workdir, variables: str = "") -> str:
    """A playbook whose one step runs ``part.sql`` twice, as parts 0 and 1 of 2."""
    part = workdir.sql("part.sql", PART_SQL)
    count = workdir.sql("count.sql", "INSERT INTO counted SELECT count(*) FROM copied;")
    return workdir.playbook(
        "  - name: split\n    queries:\n"
        f"      - name: part_0\n        file: {part}\n        template: true\n"
        "        variables: {part: 0, parts: 2}\n"
        f"      - name: part_1\n        file: {part}\n        template: true\n"
        "        variables: {part: 1, parts: 2}\n"
        f"  - name: after\n    queries:\n      - name: count\n        file: {count}\n",
        variables=variables,
    )


def _tables(database: str) -> None:
    run_sql(
        database,
        "CREATE TABLE source AS SELECT md5(g::text) AS k "
        "FROM generate_series(1, 1000) AS g; "
        "CREATE TABLE copied (part int, k text); CREATE TABLE counted (n bigint);"
        "CREATE TABLE broken (part int)",
    )


def test_each_entry_renders_the_file_with_its_own_variables(workdir, database):
    _tables(database)
    result = run_playbook(_halves(workdir, variables="  part: 7\n  parts: 9\n"))
    assert result.exit_code == 0, result.errors
    assert sorted((q.query, q.status) for q in result.queries) == [
        ("count", "succeeded"),
        ("part_0", "succeeded"),
        ("part_1", "succeeded"),
    ]
    rows = run_sql(database, "SELECT part, count(*) FROM copied GROUP BY part ORDER BY part")
    assert [r[0] for r in rows] == [0, 1]  # the entries' variables, not the playbook's
    assert sum(r[1] for r in rows) == 1000
    assert query_one(database, "SELECT count(DISTINCT k) FROM copied") == 1000


def test_a_resumed_run_runs_again_only_the_part_that_failed(workdir, database):
    _tables(database)
    run_sql(database, "INSERT INTO broken VALUES (1)")
    playbook = _halves(workdir)
    first = run_playbook(playbook, retries=0)
    assert first.exit_code == 6
    assert sorted((q.query, q.status) for q in first.queries) == [
        ("count", "skipped"),
        ("part_0", "succeeded"),
        ("part_1", "failed"),
    ]
    part_0 = query_one(database, "SELECT count(*) FROM copied WHERE part = 0")
    assert part_0 > 0
    assert query_one(database, "SELECT count(*) FROM copied WHERE part = 1") == 0
    checkpoints = run_sql(database, "SELECT step, query FROM sqlrunner.run_queries ORDER BY query")
    assert checkpoints == [("split", "part_0")]

    run_sql(database, "DELETE FROM broken")
    second = run_playbook(playbook)
    assert second.exit_code == 0, second.errors
    assert second.resumed_from == first.run_id
    assert sorted((q.query, q.status) for q in second.queries) == [
        ("count", "succeeded"),
        ("part_0", "skipped"),
        ("part_1", "succeeded"),
    ]
    # part 0 was not applied again: every key once, and the step after saw both parts
    assert query_one(database, "SELECT count(*) FROM copied WHERE part = 0") == part_0
    assert query_one(database, "SELECT count(*), count(DISTINCT k) FROM copied") == 1000
    assert query_one(database, "SELECT n FROM counted") == 1000


@pytest.mark.no_database
def test_fill_templates_shows_each_entry_rendered_with_its_variables(workdir, capsys):
    from sqlrunner.cli import main

    assert main(["-p", _halves(workdir), "--fill-templates", "--format", "json"]) == 8
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["query"], r["file"], r["sql"].splitlines()[1]) for r in records[:2]] == [
        (
            "part_0",
            "sql/part.sql",
            "SELECT 0, k FROM source WHERE (hashtext(k) & 2147483647) % 2 = 0;",
        ),
        (
            "part_1",
            "sql/part.sql",
            "SELECT 1, k FROM source WHERE (hashtext(k) & 2147483647) % 2 = 1;",
        ),
    ]


PLAYBOOK = """\
targets:
  - name: db
    type: postgres
    host: localhost
    port: 5432
    database: d
    username: u
steps:
  - name: split
    queries:
      - name: part
        file: part.sql
        template: true
        variables: {part: 0, parts: 2}
      - name: other
        file: part.sql
        template: true
        variables: {part: 1, parts: 2}
"""


@pytest.mark.no_database
@pytest.mark.parametrize(
    ("change", "line", "message"),
    [
        (
            ("name: other", "name: part"),
            15,
            "query name 'part' is used twice in step 'split' (first at line 11)",
        ),
        (
            ("        template: true\n        variables: {part: 1", "        variables: {part: 1"),
            17,
            "query variables need 'template: true'",
        ),
        (("{part: 1, parts: 2}", "[1, 2]"), 18, "query 'variables' must be a mapping"),
        (("{part: 1, parts: 2}", "{1: 1}"), 18, "query variable name 1 must be a string"),
    ],
)
def test_bad_query_variables_name_file_and_line(tmp_path, change, line, message):
    path = tmp_path / "p.yml"
    path.write_text(PLAYBOOK.replace(*change))
    with pytest.raises(PlaybookError) as caught:
        load_playbook(str(path))
    assert caught.value.file == str(path)
    assert caught.value.line == line, str(caught.value)
    assert message in caught.value.message
    assert caught.value.exit_code == 1


@pytest.mark.no_database
def test_repeated_names_without_variables_load_as_sql_runner_has_them(tmp_path):
    path = tmp_path / "p.yml"
    path.write_text(
        PLAYBOOK.replace("        template: true\n        variables: {part: 0, parts: 2}\n", "")
        .replace("        template: true\n        variables: {part: 1, parts: 2}\n", "")
        .replace("name: other", "name: part")
    )
    steps = load_playbook(str(path)).steps
    assert [q.name for q in steps[0].queries] == ["part", "part"]
    assert [dict(q.variables) for q in steps[0].queries] == [{}, {}]
