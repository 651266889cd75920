"""Missing map keys: Go's empty value where tested, and an error (by default) where printed."""

from __future__ import annotations

import pytest

from sqlrunner.errors import TemplateError
from sqlrunner.template import MissingKey, parse


def render(text: str, data: object, missing: MissingKey) -> str:
    return parse(text, "sql/x.sql").execute(data, missing)


def error(text: str, data: object, missing: MissingKey = MissingKey.ERROR) -> str:
    with pytest.raises(TemplateError) as caught:
        render(text, data, missing)
    return str(caught.value)


# -- the three modes -------------------------------------------------------------------


def test_error_is_the_default_mode():
    with pytest.raises(TemplateError, match='map has no entry for key "shema"'):
        parse("{{.shema}}", "t").execute({"schema": "x"})


def test_error_mode_names_the_key_file_line_and_column():
    text = "-- builds the table\nCREATE TABLE\n  {{.scratch_schema}}.x{{.entropy}};\n"
    assert error(text, {"scratch_schema": "s"}) == (
        'template: sql/x.sql:3:25: executing "sql/x.sql" at <.entropy>: '
        'map has no entry for key "entropy"')


def test_error_carries_the_location_as_fields():
    with pytest.raises(TemplateError) as caught:
        render("x\n {{.shema}}", {}, MissingKey.ERROR)
    assert (caught.value.file, caught.value.line, caught.value.column) == ("sql/x.sql", 2, 3)


def test_novalue_mode_prints_no_value_as_go_does():
    assert render("{{.x}} {{.y}}", {"x": 99}, MissingKey.NOVALUE) == "99 <no value>"


def test_zero_mode_gives_the_zero_value_of_an_interface_map_which_prints_no_value():
    assert render("{{.x}} {{.y}}", {"x": 99}, MissingKey.ZERO) == "99 <no value>"


def test_present_null_prints_no_value_in_every_mode():
    for missing in MissingKey:
        assert render("[{{.x}}]", {"x": None}, missing) == "[<no value>]"


# -- a missing key is empty where it is tested or passed on ------------------------------


@pytest.mark.parametrize("missing", list(MissingKey))
@pytest.mark.parametrize("text, printed", [
    ("{{if .x}}yes{{else}}no{{end}}", "no"),
    ("{{with .x}}yes{{else}}no{{end}}", "no"),
    ("{{range .x}}yes{{else}}none{{end}}", "none"),
    ("{{or .x 30}}", "30"),
    ("{{if and .x 30}}yes{{else}}no{{end}}", "no"),
    ("{{not .x}}", "true"),
    ('{{eq .x "web"}}', "false"),
    ("{{eq .x nil}}", "true"),
    ('{{printf "%v" .x}}', "<nil>"),
    ("{{print .x}}", "<nil>"),
])
def test_missing_key_is_empty_in_conditions_and_functions(missing, text, printed):
    assert render(text, {}, missing) == printed


def test_field_of_a_missing_key_is_empty_in_a_condition():
    for missing in (MissingKey.ERROR, MissingKey.NOVALUE):
        assert render("{{if .x.y}}yes{{else}}no{{end}}", {}, missing) == "no"


def test_or_default_with_a_missing_key_renders_in_error_mode():
    text = "WHERE ts > DATEADD(day, -{{or .upsert_lookback_days 30}}, now())"
    assert render(text, {}, MissingKey.ERROR) == "WHERE ts > DATEADD(day, -30, now())"


def test_or_of_only_missing_keys_is_still_an_error_when_printed():
    assert error("{{or .a .b}}", {}).endswith('at <.b>: map has no entry for key "b"')


# -- where a missing key is reported ------------------------------------------------------


def test_missing_parent_is_the_key_reported_for_a_chain():
    assert error("{{.a.b}}", {}) == (
        'template: sql/x.sql:1:4: executing "sql/x.sql" at <.a.b>: '
        'map has no entry for key "a"')


def test_missing_leaf_of_a_present_parent():
    assert error("{{.a.b}}", {"a": {}}).endswith('map has no entry for key "b"')


def test_missing_key_kept_in_a_variable_is_reported_where_it_was_looked_up():
    assert error("{{$x := .nope}}\n{{$x}}", {}) == (
        'template: sql/x.sql:1:8: executing "sql/x.sql" at <.nope>: '
        'map has no entry for key "nope"')


def test_field_of_nothing_is_reported_as_nil_data():
    text = '{{define "t"}}{{.y}}{{end}}{{template "t"}}'
    assert error(text, {}) == (
        'template: sql/x.sql:1:16: executing "t" at <.y>: nil data; no entry for key "y"')


def test_missing_key_inside_a_range_names_the_key():
    assert error("{{range .l}}{{.name}}{{end}}", {"l": [{"nom": 1}]}).endswith(
        'map has no entry for key "name"')


def test_novalue_mode_prints_no_value_for_a_missing_chain():
    assert render("{{.a.b}}", {}, MissingKey.NOVALUE) == "<no value>"


def test_zero_mode_field_of_a_missing_key_is_gos_nil_pointer_error():
    assert error("{{.a.b}}", {}, MissingKey.ZERO).endswith(
        "nil pointer evaluating interface {}.b")


def test_len_of_a_missing_key_is_gos_error_in_every_mode():
    for missing in (MissingKey.ERROR, MissingKey.NOVALUE):
        assert error("{{len .x}}", {}, missing).endswith(
            "error calling len: reflect: call of reflect.Value.Type on zero Value")
    assert error("{{len .x}}", {}, MissingKey.ZERO).endswith(
        "error calling len: len of nil pointer")


def test_escapers_print_no_value_for_a_missing_key():
    assert render("{{html .x}}", {}, MissingKey.ERROR) == "&lt;no value&gt;"


def test_nil_data_prints_no_value_in_novalue_mode():
    assert render("[{{.}}] [{{.x}}]", None, MissingKey.NOVALUE) == "[<no value>] [<no value>]"
