"""Template.execute_mapped: the rendered text and where each character of it came from."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from test_template import WEB_MODEL_SQL

from sqlrunner.errors import TemplateError
from sqlrunner.functions import runner_functions
from sqlrunner.template import MissingKey, SourceMap, parse

ROOT = Path(__file__).resolve().parent.parent


def mapped(source: str, data: object = None,
           missing: MissingKey = MissingKey.ERROR) -> tuple[str, SourceMap]:
    return parse(source, "t.sql").execute_mapped(data, missing)


def assert_consistent(source: str, rendered: str, where: SourceMap) -> None:
    """Every copied character is the same character in the source; every action output
    points at a ``{{``; the segments cover the output exactly."""
    assert where.length == len(rendered)
    covered = 0
    for start, end, origin, literal in where.segments():
        assert start == covered and end > start
        covered = end
        if literal:
            assert source[origin:origin + end - start] == rendered[start:end]
        else:
            assert source.startswith("{{", origin)
        for offset in range(start, end):
            expected = origin + offset - start if literal else origin
            assert where.source_offset(offset) == expected
    assert covered == len(rendered)


def at(source: str, needle: str, occurrence: int = 1) -> int:
    """The offset of the ``occurrence``-th ``needle`` in ``source``."""
    index = -1
    for _ in range(occurrence):
        index = source.index(needle, index + 1)
    return index


# -- text and actions ----------------------------------------------------------------


def test_text_before_and_after_an_action_maps_character_by_character():
    source = "SELECT *\nFROM {{.schema}}.events\nWHERE x > 1"
    rendered, where = mapped(source, {"schema": "atomic"})
    assert rendered == "SELECT *\nFROM atomic.events\nWHERE x > 1"
    assert_consistent(source, rendered, where)
    for offset in range(len("SELECT *\nFROM ")):
        assert where.source_offset(offset) == offset
    after = rendered.index(".events")
    assert where.source_offset(after) == source.index(".events")
    assert where.source_position(rendered.index("WHERE"), source) == (3, 1)
    assert where.source_position(rendered.index("> 1") + 2, source) == (3, 11)


def test_every_character_an_action_prints_maps_to_the_start_of_the_action():
    source = "SELECT {{printf \"%s_%03d\" .prefix .n}} AS c, {{ .b }} FROM t"
    rendered, where = mapped(source, {"prefix": "col", "n": 7, "b": True})
    assert rendered == "SELECT col_007 AS c, true FROM t"
    assert_consistent(source, rendered, where)
    for offset in range(len("SELECT "), len("SELECT col_007")):
        assert where.source_offset(offset) == len("SELECT ")
    for offset in range(rendered.index("true"), rendered.index(" FROM")):
        assert where.source_offset(offset) == source.index("{{ .b }}")
    assert where.source_position(rendered.index("_007"), source) == (1, 8)


def test_actions_that_print_nothing_leave_no_trace():
    source = "a{{$x := 1}}{{/* comment */}}{{.empty}}b"
    rendered, where = mapped(source, {"empty": ""})
    assert rendered == "ab"
    assert where.source_offset(0) == 0
    assert where.source_offset(1) == source.index("b")
    assert where.literal == (True, True)


def test_columns_count_characters_not_bytes():
    source = "SELECT 'é', '→', {{.x}}\n  FROM t"
    rendered, where = mapped(source, {"x": "ü"})
    assert where.source_position(rendered.index("ü"), source) == (1, 18)
    assert where.source_position(rendered.index("FROM"), source) == (2, 3)


def test_a_value_of_several_lines_maps_each_of_its_lines_to_the_action():
    source = "SELECT\n  {{.columns}}\nFROM {{.table}}\nWHERE ok"
    columns = "a,\n  b,\n  broken syntax here,\n  d"
    rendered, where = mapped(source, {"columns": columns, "table": "t"})
    assert_consistent(source, rendered, where)
    # rendered line 4 is inside the value: it is reported at the action, line 2 column 3
    assert where.source_position(rendered.index("broken") + 7, source) == (2, 3)
    assert where.source_position(rendered.index("  d"), source) == (2, 3)
    # and the text after the value is back on its own lines
    assert where.source_position(rendered.index("FROM"), source) == (3, 1)
    assert where.source_position(rendered.index("WHERE") + 3, source) == (4, 4)


# -- control structures --------------------------------------------------------------


RANGE_SQL = """\
SELECT
{{- range $i, $c := .columns}}
  {{if $i}}, {{end}}{{$c}} AS column_{{$i}}
{{- end}}
FROM t;
"""


def test_range_iterations_map_to_the_text_of_the_range_body():
    rendered, where = mapped(RANGE_SQL, {"columns": ["a", "b", "c", "d"]})
    assert rendered == (
        "SELECT\n  a AS column_0\n  , b AS column_1\n  , c AS column_2\n  , d AS column_3\n"
        "FROM t;\n")
    assert_consistent(RANGE_SQL, rendered, where)
    third = rendered.index("  , c AS column_2")
    # " AS column_" of the 3rd iteration is the text node inside the range body
    as_column = rendered.index(" AS column_", third)
    assert where.source_offset(as_column + 4) == RANGE_SQL.index(" AS column_") + 4
    assert where.source_position(as_column + 4, RANGE_SQL) == (3, 31)
    # the "\n  " that starts the iteration, the ", " of the if, the element and the index
    assert where.source_position(third, RANGE_SQL) == (3, 1)
    assert where.source_offset(third + 2) == RANGE_SQL.index(", {{end}}")
    assert where.source_offset(third + 4) == RANGE_SQL.index("{{$c}}")
    assert where.source_offset(as_column + len(" AS column_")) == RANGE_SQL.index("{{$i}}")
    assert where.source_position(rendered.index("FROM"), RANGE_SQL) == (5, 1)


def test_range_else_and_break_continue():
    source = ("{{range .xs}}{{if eq . 2}}{{continue}}{{end}}{{if eq . 4}}{{break}}{{end}}"
              "<{{.}}>{{else}}none{{end}};")
    rendered, where = mapped(source, {"xs": [1, 2, 3, 4, 5]})
    assert rendered == "<1><3>;"
    assert_consistent(source, rendered, where)
    assert where.source_offset(rendered.index("<3>") + 2) == source.index(">{{else")
    rendered, where = mapped(source, {"xs": []})
    assert rendered == "none;"
    assert_consistent(source, rendered, where)
    assert where.source_offset(0) == source.index("none")


def test_range_over_a_map_and_with():
    source = "{{range $k, $v := .m}}{{$k}}={{$v}}\n{{end}}{{with .w}}w={{.}}{{end}}"
    rendered, where = mapped(source, {"m": {"b": 2, "a": 1}, "w": "yes"})
    assert rendered == "a=1\nb=2\nw=yes"
    assert_consistent(source, rendered, where)
    assert where.source_offset(rendered.index("b=") + 1) == source.index("={{$v}}")
    assert where.source_offset(rendered.index("yes")) == source.index("{{.}}")


IF_SQL = """\
CREATE TABLE t (id INT)
{{if eq .target "redshift" -}}
DISTKEY(id)
{{- else if eq .target "postgres" -}}
-- postgres has no distkey
{{- else -}}
-- {{.target}} is unknown
{{- end}};
"""


@pytest.mark.parametrize(
    "target, needle, line",
    [("redshift", "DISTKEY", 3), ("postgres", "-- postgres", 5), ("duckdb", " is unknown", 7)])
def test_if_else_branches_map_to_the_branch_taken(target, needle, line):
    rendered, where = mapped(IF_SQL, {"target": target})
    assert_consistent(IF_SQL, rendered, where)
    offset = rendered.index(needle)
    assert where.source_offset(offset) == IF_SQL.index(needle)
    assert where.source_position(offset, IF_SQL)[0] == line
    assert where.source_position(rendered.index(";"), IF_SQL) == (8, 10)


# -- trimming ------------------------------------------------------------------------


def test_trimmed_text_maps_to_what_is_left_of_it_in_the_source():
    source = ("SELECT 1\n  {{- if .x}}\n  , 2\n  {{- end}}\n  {{- /* c */}}\n"
              "FROM t\n   {{- .s -}}  \n\n  WHERE")
    rendered, where = mapped(source, {"x": True, "s": " AS s"})
    assert rendered == "SELECT 1\n  , 2\nFROM t AS s" + "WHERE"
    assert_consistent(source, rendered, where)
    assert where.source_offset(rendered.index("\n  , 2")) == source.index("\n  , 2")
    assert where.source_offset(rendered.index("\nFROM")) == source.index("\nFROM")
    # the trimmed action maps to its "{{", not to the trimmed space before it
    assert where.source_offset(rendered.index(" AS s")) == source.index("{{- .s")
    # text after "-}}" starts after the trimmed space
    assert where.source_position(rendered.index("WHERE"), source) == (9, 3)


# -- define, template and block ------------------------------------------------------


DEFINE_SQL = """\
{{define "column"}}{{.}}::text{{end}}
{{- define "columns"}}{{range $i, $c := .}}{{if $i}},
  {{end}}{{template "column" $c}}{{end}}{{end -}}
SELECT
  {{template "columns" .columns}}
FROM {{block "table" .}}{{.schema}}.events{{end}};
"""


def test_nested_define_and_template_map_into_the_defined_bodies():
    rendered, where = mapped(DEFINE_SQL, {"columns": ["a", "b", "c"], "schema": "atomic"})
    assert rendered == "SELECT\n  a::text,\n  b::text,\n  c::text\nFROM atomic.events;\n"
    assert_consistent(DEFINE_SQL, rendered, where)
    second = rendered.index("b::text")
    # the element printed by "column", called by "columns", called by the main template
    assert where.source_offset(second) == DEFINE_SQL.index("{{.}}")
    assert where.source_position(second + 1, DEFINE_SQL) == (1, 25)
    assert where.source_position(second - 4, DEFINE_SQL) == (2, 53)  # the "," in columns
    assert where.source_position(second - 3, DEFINE_SQL) == (2, 54)
    assert where.source_position(second - 1, DEFINE_SQL) == (3, 2)
    assert where.source_position(rendered.index("FROM"), DEFINE_SQL) == (6, 1)
    assert where.source_offset(rendered.index("atomic")) == DEFINE_SQL.index("{{.schema}}")
    assert where.source_offset(rendered.index(".events")) == DEFINE_SQL.index(".events")


def test_recursive_template():
    source = ('{{define "down"}}{{if .}}[{{.}}{{template "down" (len (slice "xxxxx" 1 .))}}]'
              '{{end}}{{end}}{{template "down" 3}}')
    rendered, where = mapped(source)
    assert rendered == "[3[2[1]]]"
    assert_consistent(source, rendered, where)
    assert {where.source_offset(rendered.index("]", i)) for i in range(6, 9)} == {
        source.index("]{{end}}")}


# -- the end of the output -----------------------------------------------------------


def test_the_end_of_output_that_ends_with_text_maps_just_after_that_text():
    source = "SELECT {{.x}} FROM t;\n"
    rendered, where = mapped(source, {"x": 1})
    assert where.source_offset(len(rendered)) == len(source)
    assert where.source_position(len(rendered), source) == (2, 1)
    assert where.source_position(len(rendered) - 1, source) == (1, 22)


def test_the_end_of_output_after_trimmed_space_maps_after_the_last_text_copied():
    source = "SELECT 1;\n\n{{- /* trailing */ -}}\n\n"
    rendered, where = mapped(source)
    assert rendered == "SELECT 1;"
    assert where.source_offset(len(rendered)) == len("SELECT 1;")


def test_the_end_of_output_that_ends_with_an_action_maps_to_the_action():
    source = "SELECT 1;\n{{if .x}}{{.x}}{{end}}"
    rendered, where = mapped(source, {"x": "-- done"})
    assert rendered == "SELECT 1;\n-- done"
    assert where.source_offset(len(rendered)) == source.index("{{.x}}")
    assert where.source_offset(len(rendered) - 1) == source.index("{{.x}}")


def test_empty_output_and_offsets_outside_the_output():
    rendered, where = mapped("{{/* nothing */}}")
    assert rendered == ""
    assert where.source_offset(0) == 0
    assert where.source_position(0, "{{/* nothing */}}") == (1, 1)
    _, where = mapped("abc")
    assert where.source_offset(3) == 3
    for outside in (-1, 4):
        with pytest.raises(IndexError):
            where.source_offset(outside)


def test_source_map_is_frozen():
    _, where = mapped("a{{.x}}b", {"x": 1})
    with pytest.raises(AttributeError):
        where.length = 0  # type: ignore[misc]


# -- the same output as execute ------------------------------------------------------


WEB_MODEL_DATA = {
    "scratch_schema": "scratch", "entropy": "_42", "model_version": "web",
    "input_schema": "atomic", "columns": ["root_tstamp", "id", "page_view_id"],
    "start_date": "2020-01-01",
}


@pytest.mark.parametrize("data", [
    WEB_MODEL_DATA,
    {**WEB_MODEL_DATA, "model_version": "mobile", "keep_bots": True, "upsert_lookback_days": 7},
    {**WEB_MODEL_DATA, "columns": []},
])
def test_web_model_sql_renders_the_same_text_mapped(data):
    template = parse(WEB_MODEL_SQL, "sql/web/01-page-context.sql")
    rendered, where = template.execute_mapped(data)
    assert rendered == template.execute(data)
    assert_consistent(WEB_MODEL_SQL, rendered, where)
    # the second column is printed by {{$c}} on line 14, column 53
    if data["columns"]:
        assert where.source_position(rendered.index(", id") + 2, WEB_MODEL_SQL) == (14, 53)


def _playbook_queries() -> list[Path]:
    playbook = ROOT / "playbooks" / "full.yml"
    spec = yaml.safe_load(playbook.read_text())
    return [(playbook.parent / query["file"]).resolve()
            for step in spec["steps"] for query in step["queries"] if query.get("template")]


@pytest.mark.parametrize("target_type", ["postgres", "redshift"])
@pytest.mark.parametrize("path", _playbook_queries(), ids=lambda path: path.name)
def test_the_shipped_model_sql_renders_the_same_text_mapped(path, target_type):
    spec = yaml.safe_load((ROOT / "playbooks" / "full.yml").read_text())
    data = {"target_name": "warehouse", "target_type": target_type, "run_id": "r1",
            "run_tstamp": "2024-01-02 03:04:05.000000", **spec["variables"]}
    source = path.read_text()
    funcs = runner_functions(now=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC))
    template = parse(source, str(path), funcs)
    rendered, where = template.execute_mapped(data)
    assert rendered == template.execute(data)
    assert_consistent(source, rendered, where)


CONSTRUCTS = [
    ("{{.a.b.c}} {{$.a.b}} {{index .l 1}} {{len .l}}", {"a": {"b": {"c": 1}}, "l": [1, 2]}),
    ("{{range .l}}{{.}}{{end}}|{{range $i, $e := .l}}{{$i}}{{$e}}{{end}}", {"l": [1.5, None]}),
    ("{{range 3}}{{.}}{{end}}{{range $k, $v := .m}}{{$k}}{{$v}}{{end}}", {"m": {"x": [1]}}),
    ("{{with $x := .a}}{{$x}}{{else}}no{{end}} {{if and .a (not .b)}}y{{end}}", {"a": 2}),
    ('{{printf "%v %q %5.2f" .m .s .f}} {{html .s}} {{js .s}} {{urlquery .s}}',
     {"m": {"k": [1, "x"]}, "s": "<a&'b>", "f": 3.14159}),
    ("{{.missing}} {{.a.missing}}", {"a": {}}),
    ('{{define "x"}}({{.}}){{end}}{{block "y" .}}[{{template "x" .}}]{{end}}', "d"),
    ("{{- /* c */ -}}  a  {{- 1 -}}  b  {{true}}{{print nil}}{{print}}", None),
    ("{{$x := 1}}{{range .l}}{{$x = .}}{{end}}{{$x}} {{.}}", {"l": ["p", "q"]}),
]


@pytest.mark.parametrize("source, data", CONSTRUCTS)
def test_every_construct_renders_the_same_text_mapped(source, data):
    template = parse(source, "t.sql")
    rendered, where = template.execute_mapped(data, MissingKey.NOVALUE)
    assert rendered == template.execute(data, MissingKey.NOVALUE)
    assert_consistent(source, rendered, where)


@pytest.mark.parametrize("source, data", [
    ("ok {{.nope}}", {}),
    ("{{range .x}}{{.y}}{{end}}", {"x": [{"y": 1}, {}]}),
    ('{{define "d"}}{{len 3}}{{end}}a{{template "d"}}', None),
    ('{{template "nope"}}', None),
])
def test_execution_errors_are_the_same_mapped(source, data):
    template = parse(source, "sql/x.sql")
    with pytest.raises(TemplateError) as plain:
        template.execute(data)
    with pytest.raises(TemplateError) as with_map:
        template.execute_mapped(data)
    assert str(with_map.value) == str(plain.value)
