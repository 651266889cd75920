"""The template language, construct by construct, with output as Go's text/template gives it."""

from __future__ import annotations

import pytest

from sqlrunner.errors import TemplateError
from sqlrunner.template import MissingKey, Template, parse


def render(text: str, data: object = None, missing: MissingKey = MissingKey.NOVALUE,
           funcs: dict | None = None) -> str:
    return parse(text, "t", funcs).execute(data, missing)


# -- text and actions --------------------------------------------------------


def test_text_without_actions_is_copied_verbatim():
    text = "SELECT 1;\n  -- a comment with {braces} and } and {\n"
    assert render(text) == text


def test_parse_returns_a_template_that_can_be_executed_many_times():
    template = parse("hello {{.who}}", "greeting.sql")
    assert isinstance(template, Template)
    assert template.name == "greeting.sql"
    assert template.execute({"who": "a"}) == "hello a"
    assert template.execute({"who": "b"}) == "hello b"


def test_action_prints_a_field_of_the_data():
    assert render("CREATE SCHEMA {{.schema}};", {"schema": "web"}) == "CREATE SCHEMA web;"


def test_chained_fields_walk_nested_maps():
    data = {"a": {"b": {"c": "deep"}}}
    assert render("{{.a.b.c}}", data) == "deep"


def test_dot_prints_the_whole_data():
    assert render("{{.}}", "just a string") == "just a string"


def test_field_names_are_case_sensitive_map_keys():
    assert render("{{.Name}}/{{.name}}", {"Name": "A", "name": "b"}) == "A/b"


def test_unicode_text_and_values_pass_through():
    assert render("é {{.x}} 日本", {"x": "ü"}) == "é ü 日本"


# -- comments and trimming -----------------------------------------------------


def test_comment_produces_nothing():
    assert render("a{{/* a comment */}}b") == "ab"


def test_comment_may_span_lines():
    assert render("a{{/* one\ntwo\n*/}}b") == "ab"


def test_trim_markers_remove_surrounding_whitespace_including_newlines():
    assert render("a  \n\t {{- .x -}} \n\n  b", {"x": 1}) == "a1b"


def test_left_trim_marker_only_trims_before():
    assert render("a  {{- .x}}  b", {"x": 1}) == "a1  b"


def test_right_trim_marker_only_trims_after():
    assert render("a  {{.x -}}  b", {"x": 1}) == "a  1b"


def test_trimmed_comment_removes_whitespace_on_both_sides():
    assert render("a  \n {{- /* c */ -}} \n  b") == "ab"


def test_trim_marker_needs_a_space_else_it_is_a_negative_number():
    assert render("{{-3}}") == "-3"
    assert render("x {{- 3}}") == "x3"


def test_trim_marker_may_use_a_newline_as_its_space():
    assert render("a {{-\n.x\n-}} b", {"x": 1}) == "a1b"


def test_trimming_stops_at_the_previous_action():
    assert render("{{.a}}   {{- .b}}", {"a": 1, "b": 2}) == "12"


def test_comment_needs_to_touch_the_delimiters():
    with pytest.raises(TemplateError, match='unexpected "/" in command'):
        parse("{{ /* c */ }}", "t")
    with pytest.raises(TemplateError, match="comment ends before closing delimiter"):
        parse("{{/* c */ }}", "t")


# -- literals ----------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ('{{"a\\tb\\n"}}', "a\tb\n"),
    ('{{"\\u00e9\\x41\\101"}}', "éAA"),
    ("{{`raw \\n string`}}", "raw \\n string"),
    ("{{'a'}}", "97"),
    ("{{'\\n'}}", "10"),
    ("{{42}}", "42"),
    ("{{-7}}", "-7"),
    ("{{1_000_000}}", "1000000"),
    ("{{0x1F}}", "31"),
    ("{{0o17}} {{017}} {{0b101}}", "15 15 5"),
    ("{{3.5}}", "3.5"),
    ("{{1.0}}", "1"),
    ("{{1e3}}", "1000"),
    ("{{.5}}", "0.5"),
    ("{{+0x1.ep+2}}", "7.5"),
    ("{{1.5i}}", "(0+1.5i)"),
    ("{{1+2i}}", "(1+2i)"),
    ("{{true}} {{false}}", "true false"),
])
def test_literals_print_as_go_prints_them(text, expected):
    assert render(text) == expected


def test_raw_strings_drop_carriage_returns():
    assert render("{{`a\r\nb`}}") == "a\nb"


# -- variables ---------------------------------------------------------------


def test_declared_variable_is_visible_until_the_end_of_its_block():
    text = "{{$x := .a}}{{$x}}{{if true}}{{$x}}{{$y := 2}}{{$y}}{{end}}{{$x}}"
    assert render(text, {"a": 1}) == "1121"


def test_declaration_prints_nothing():
    assert render("a{{$x := 5}}b") == "ab"


def test_assignment_changes_a_variable_declared_outside():
    text = "{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}"
    assert render(text) == "2"


def test_inner_declaration_shadows_and_then_the_outer_variable_returns():
    text = "{{$x := 1}}{{with $x := 2}}{{$x}}{{end}}{{$x}}"
    assert render(text) == "21"


def test_dollar_is_the_root_data_everywhere():
    text = "{{range .items}}{{$.prefix}}{{.}} {{end}}"
    assert render(text, {"prefix": "p_", "items": ["a", "b"]}) == "p_a p_b "


def test_variable_field_access():
    assert render("{{$m := .m}}{{$m.k}}", {"m": {"k": "v"}}) == "v"


def test_assignment_to_an_undeclared_variable_is_an_execution_error():
    template = parse("{{$x := 1}}{{if true}}{{$y := 0}}{{end}}", "t")
    assert template.execute(None) == ""
    with pytest.raises(TemplateError, match="undefined variable"):
        parse("{{$x = 1}}", "t").execute(None)


# -- pipelines and parentheses -------------------------------------------------


def test_pipeline_passes_the_value_as_the_last_argument():
    assert render('{{"world" | printf "%s, %s" "hello"}}') == "hello, world"


def test_pipeline_of_several_commands():
    assert render('{{.x | printf "%q" | len}}', {"x": "ab"}) == "4"


def test_parenthesized_pipeline_as_an_argument():
    assert render('{{printf "%d-%d" (len .a) (len .b)}}', {"a": [1], "b": [1, 2]}) == "1-2"


def test_field_of_a_parenthesized_result():
    data = {"m": {"k": {"x": "found"}}}
    assert render('{{(index .m "k").x}}', data) == "found"


def test_parenthesized_dollar():
    assert render("{{($).x}}", {"x": "y"}) == "y"


# -- if ------------------------------------------------------------------------


@pytest.mark.parametrize("value, expected", [
    (True, "yes"), (False, "no"), (1, "yes"), (0, "no"), (-1, "yes"), (0.0, "no"), (0.5, "yes"),
    ("x", "yes"), ("", "no"), ([1], "yes"), ([], "no"), ({"a": 1}, "yes"), ({}, "no"),
    (None, "no"),
])
def test_if_uses_go_truth(value, expected):
    assert render("{{if .v}}yes{{else}}no{{end}}", {"v": value}) == expected


def test_if_of_a_missing_key_is_false_in_every_mode():
    for missing in MissingKey:
        assert render("{{if .nope}}yes{{else}}no{{end}}", {}, missing) == "no"


def test_else_if_chain_takes_the_first_true_branch():
    text = '{{if eq .v "a"}}A{{else if eq .v "b"}}B{{else if eq .v "c"}}C{{else}}?{{end}}'
    assert [render(text, {"v": v}) for v in "abcd"] == ["A", "B", "C", "?"]


def test_if_with_a_declaration_scopes_the_variable_to_the_if():
    assert render("{{if $x := .a}}{{$x}}{{end}}", {"a": "v"}) == "v"


def test_and_or_not_in_conditions():
    text = "{{if and .a (or .b .c) (not .d)}}yes{{else}}no{{end}}"
    assert render(text, {"a": 1, "c": 1}) == "yes"
    assert render(text, {"a": 1, "c": 1, "d": 1}) == "no"


# -- with ------------------------------------------------------------------------


def test_with_sets_dot_when_the_value_is_non_empty():
    assert render("{{with .user}}{{.name}}{{end}}", {"user": {"name": "ann"}}) == "ann"


def test_with_else_runs_when_the_value_is_empty():
    assert render("{{with .user}}{{.name}}{{else}}nobody{{end}}", {}) == "nobody"


def test_else_with_chain():
    text = "{{with .a}}a={{.}}{{else with .b}}b={{.}}{{else}}none{{end}}"
    assert render(text, {"b": 2}) == "b=2"
    assert render(text, {"a": 1, "b": 2}) == "a=1"
    assert render(text, {}) == "none"


def test_with_keeps_dollar_as_the_root():
    assert render("{{with .a}}{{$.b}}{{end}}", {"a": 1, "b": "root"}) == "root"


# -- range -------------------------------------------------------------------------


def test_range_over_a_list_sets_dot_to_each_element():
    assert render("{{range .l}}<{{.}}>{{end}}", {"l": ["a", "b", "c"]}) == "<a><b><c>"


def test_range_with_index_and_element_variables():
    text = "{{range $i, $c := .columns}}{{if $i}}, {{end}}{{$c}}{{end}}"
    assert render(text, {"columns": ["id", "name", "ts"]}) == "id, name, ts"


def test_range_with_one_variable_gets_the_element():
    assert render("{{range $c := .l}}{{$c}}{{end}}", {"l": [1, 2]}) == "12"


def test_range_over_map_visits_keys_in_sorted_order():
    data = {"m": {"zeta": 1, "alpha": 2, "mid": 3}}
    assert render("{{range $k, $v := .m}}{{$k}}={{$v}};{{end}}", data) == "alpha=2;mid=3;zeta=1;"
    assert render("{{range .m}}{{.}}{{end}}", data) == "231"


def test_range_over_an_integer_counts_from_zero():
    assert render("{{range 3}}{{.}}{{end}}") == "012"
    assert render("{{range $i := .n}}{{$i}}{{end}}", {"n": 4}) == "0123"


def test_range_over_an_integer_yields_go_ints():
    assert render('{{range $v := 3}}{{printf "%T%d " $v $v}}{{end}}') == "int0 int1 int2 "


def test_range_over_zero_or_a_negative_integer_runs_else():
    assert render("{{range .n}}x{{else}}none{{end}}", {"n": 0}) == "none"
    assert render("{{range .n}}x{{else}}none{{end}}", {"n": -2}) == "none"


def test_range_over_an_integer_refuses_two_variables():
    with pytest.raises(TemplateError,
                       match="can't use 3 to iterate over more than one variable"):
        render("{{range $i, $v := 3}}{{end}}")


def test_range_else_runs_for_empty_and_missing_collections():
    text = "{{range .l}}x{{else}}empty{{end}}"
    assert render(text, {"l": []}) == "empty"
    assert render(text, {"l": {}}) == "empty"
    assert render(text, {}) == "empty"
    assert render(text, {"l": None}) == "empty"


def test_range_over_a_string_is_an_error():
    with pytest.raises(TemplateError, match="range can't iterate over abc"):
        render("{{range .s}}{{end}}", {"s": "abc"})


def test_break_leaves_the_loop_and_continue_skips_the_rest_of_the_iteration():
    text = ("{{range .l}}{{if eq . 2}}{{continue}}{{end}}{{if eq . 4}}{{break}}{{end}}"
            "{{.}}{{end}}")
    assert render(text, {"l": [1, 2, 3, 4, 5]}) == "13"


def test_break_inside_nested_range_leaves_only_the_inner_loop():
    text = "{{range .a}}{{range .}}{{if eq . 2}}{{break}}{{end}}{{.}}{{end}};{{end}}"
    assert render(text, {"a": [[1, 2, 3], [4]]}) == "1;4;"


def test_break_is_only_a_keyword_inside_range():
    with pytest.raises(TemplateError, match=r"\{\{break\}\} outside \{\{range\}\}"):
        parse("{{break}}", "t")
    with pytest.raises(TemplateError, match=r"\{\{continue\}\} outside \{\{range\}\}"):
        parse("{{range .l}}{{else}}{{continue}}{{end}}", "t")


def test_a_function_named_break_turns_the_keyword_into_a_call():
    assert render("{{break}}", funcs={"break": lambda: "called"}) == "called"


def test_variables_declared_in_a_range_body_are_fresh_each_iteration():
    text = "{{range .l}}{{$x := .}}{{$x}}{{end}}"
    assert render(text, {"l": [1, 2]}) == "12"


def test_range_assignment_leaves_the_last_element_in_the_variable():
    assert render("{{$i := 0}}{{range $i = .l}}{{end}}{{$i}}", {"l": [3, 4, 5]}) == "5"
    text = "{{$k := 0}}{{$v := 0}}{{range $k, $v = .l}}{{$k}}={{$v}} {{end}}"
    assert render(text, {"l": [3, 4]}) == "0=3 1=4 "


def test_range_element_that_is_null_prints_no_value():
    assert render("{{range .l}}[{{.}}]{{end}}", {"l": ["a", None]}) == "[a][<no value>]"


# -- define, template, block ---------------------------------------------------------


def test_define_and_template_invoke_a_named_template_with_data():
    text = '{{define "col"}}"{{.}}"{{end}}SELECT {{template "col" .a}}, {{template "col" .b}}'
    assert render(text, {"a": "x", "b": "y"}) == 'SELECT "x", "y"'


def test_template_without_data_gets_no_dot():
    text = '{{define "inner"}}[{{.}}]{{end}}{{template "inner"}}'
    assert render(text, {"a": 1}) == "[<no value>]"


def test_templates_do_not_see_the_callers_variables():
    with pytest.raises(TemplateError, match='undefined variable "\\$x"'):
        parse('{{$x := 1}}{{define "t"}}{{$x}}{{end}}', "t")


def test_template_can_call_itself_recursively():
    text = ('{{define "count"}}{{if .}}{{len .}}{{template "count" (slice . 1)}}{{end}}{{end}}'
            '{{template "count" .}}')
    assert render(text, [1, 2, 3]) == "321"


def test_block_defines_and_runs_a_template_in_place():
    assert render('a{{block "b" .}}[{{.x}}]{{end}}c', {"x": 1}) == "a[1]c"


def test_execute_template_runs_a_defined_template_by_name():
    template = parse('{{define "one"}}1{{.}}{{end}}main', "t")
    assert template.execute_template("one", "x") == "1x"
    assert template.defined_templates == ("one", "t")


def test_a_template_that_only_defines_takes_the_body_of_the_same_name():
    template = parse('{{define "t"}}body{{end}}', "t")
    assert template.execute(None) == "body"


def test_text_around_defines_belongs_to_the_main_template():
    assert render('a{{define "x"}}X{{end}}b') == "ab"


def test_redefining_a_template_with_content_is_an_error():
    with pytest.raises(TemplateError, match='multiple definition of template "x"'):
        parse('{{define "x"}}1{{end}}{{define "x"}}2{{end}}', "t")


def test_an_empty_definition_may_be_replaced():
    assert render('{{define "x"}} {{end}}{{define "x"}}2{{end}}{{template "x"}}') == "2"


def test_template_not_defined_is_an_execution_error():
    with pytest.raises(TemplateError, match='template "nope" not defined'):
        render('{{template "nope"}}')


# -- a realistic SQL template --------------------------------------------------------

WEB_MODEL_SQL = """\
-- Copyright (c) 2016 Snowplow Analytics Ltd. All rights reserved.
-- Builds {{.scratch_schema}}.web_page_context{{.entropy}} from the page contexts.

DROP TABLE IF EXISTS {{.scratch_schema}}.web_page_context{{.entropy}};
CREATE TABLE {{.scratch_schema}}.web_page_context{{.entropy}}
  {{- if eq .model_version "web"}}
  DISTKEY(page_view_id)
  SORTKEY(page_view_id)
  {{- end}}
AS (
  WITH prep AS (
    SELECT
      root_id,
      {{range $i, $c := .columns}}{{if $i}}, {{end}}{{$c}}{{end}}
    FROM {{.input_schema}}.com_snowplowanalytics_snowplow_web_page_1
    WHERE root_tstamp >= DATEADD(day, -{{or .upsert_lookback_days 30}}, '{{.start_date}}')
    {{- /* skip bots unless asked */}}
    {{- if not .keep_bots}}
      AND useragent NOT SIMILAR TO '%(bot|crawl)%'
    {{- end}}
  )
  SELECT * FROM prep
);
"""

WEB_MODEL_EXPECTED = """\
-- Copyright (c) 2016 Snowplow Analytics Ltd. All rights reserved.
-- Builds scratch.web_page_context_42 from the page contexts.

DROP TABLE IF EXISTS scratch.web_page_context_42;
CREATE TABLE scratch.web_page_context_42
  DISTKEY(page_view_id)
  SORTKEY(page_view_id)
AS (
  WITH prep AS (
    SELECT
      root_id,
      root_tstamp, id, page_view_id
    FROM atomic.com_snowplowanalytics_snowplow_web_page_1
    WHERE root_tstamp >= DATEADD(day, -30, '2020-01-01')
      AND useragent NOT SIMILAR TO '%(bot|crawl)%'
  )
  SELECT * FROM prep
);
"""


def test_web_model_style_sql_renders_as_sql_runner_renders_it():
    data = {
        "scratch_schema": "scratch", "entropy": "_42", "model_version": "web",
        "input_schema": "atomic", "columns": ["root_tstamp", "id", "page_view_id"],
        "start_date": "2020-01-01",
    }
    assert parse(WEB_MODEL_SQL, "sql/web/01-page-context.sql").execute(data) == WEB_MODEL_EXPECTED


def test_web_model_style_sql_reports_a_misspelt_variable():
    data = {
        "scratch_shema": "scratch", "entropy": "", "model_version": "web",
        "input_schema": "atomic", "columns": [], "start_date": "2020-01-01",
    }
    with pytest.raises(TemplateError) as caught:
        parse(WEB_MODEL_SQL, "sql/web/01-page-context.sql").execute(data)
    assert str(caught.value) == (
        'template: sql/web/01-page-context.sql:2:12: executing "sql/web/01-page-context.sql" '
        'at <.scratch_schema>: map has no entry for key "scratch_schema"')
