"""The builtin functions behave as Go's funcs.go, and added functions are called like them."""

from __future__ import annotations

import pytest

from sqlrunner.errors import TemplateError
from sqlrunner.template import MissingKey, parse


def render(text: str, data: object = None, funcs: dict | None = None) -> str:
    return parse(text, "t", funcs).execute(data, MissingKey.NOVALUE)


def truth(expression: str, data: object = None) -> str:
    return render(f"{{{{if {expression}}}}}true{{{{else}}}}false{{{{end}}}}", data)


# -- and, or, not --------------------------------------------------------------------


@pytest.mark.parametrize("text, printed", [
    ("{{not true}} {{not false}} {{not 0}} {{not ``}}", "false true true true"),
    ("{{and false 0}} {{and 1 0}} {{and 0 true}} {{and 1 1}}", "false 0 0 1"),
    ("{{or 0 0}} {{or 1 0}} {{or 0 true}} {{or 1 1}}", "0 1 true 1"),
    ('{{or "" "default"}}', "default"),
    ("{{and 1 2 3}}", "3"),
])
def test_and_or_return_the_deciding_argument(text, printed):
    assert render(text) == printed


def test_or_gives_a_default_for_a_missing_variable():
    assert render("{{or .upsert_lookback_days 30}}", {}) == "30"
    assert render("{{or .upsert_lookback_days 30}}", {"upsert_lookback_days": 7}) == "7"


def test_and_or_stop_evaluating_at_the_deciding_argument():
    calls = []

    def probe(value):
        calls.append(value)
        return value

    assert render("{{or (probe 1) (probe 2)}}", funcs={"probe": probe}) == "1"
    assert render("{{and (probe 0) (probe 2)}}", funcs={"probe": probe}) == "0"
    assert calls == [1, 0]


def test_or_takes_a_piped_value_as_its_last_argument():
    assert render("{{0 | or false}}") == "0"
    assert render('{{"x" | or false}}') == "x"


# -- comparisons ----------------------------------------------------------------------


@pytest.mark.parametrize("expression, result", [
    ("eq true true", "true"), ("eq true false", "false"),
    ("eq 1.5 1.5", "true"), ("eq 1 2", "false"),
    ("eq `xy` `xy`", "true"), ("eq `xy` `xyz`", "false"),
    ("eq 3 4 5 6 3", "true"), ("eq 3 4 5 6 7", "false"),
    ("eq 1+2i 1+2i", "true"),
    ("ne 1 2", "true"), ("ne `a` `a`", "false"),
    ("lt 1 2", "true"), ("lt 2 1", "false"), ("lt 1.5 2.5", "true"), ("lt `xy` `xyz`", "true"),
    ("le 1 1", "true"), ("le 2 1", "false"),
    ("gt 2 1", "true"), ("gt 1 1", "false"),
    ("ge 1 1", "true"), ("ge 1 2", "false"),
    ("eq (index `x` 0) 'x'", "true"),
])
def test_comparisons_of_literals(expression, result):
    assert truth(expression) == result


def test_integers_compare_across_signed_and_unsigned_kinds():
    data = {"three": 3, "four": 4, "neg": -1}
    assert truth("eq .three 3", data) == "true"
    assert truth("lt .neg .three", data) == "true"
    assert truth("gt .three .neg", data) == "true"
    assert truth("eq .neg .three", data) == "false"
    assert truth("lt .four .three", data) == "false"


def test_string_variable_compared_with_a_string():
    assert truth('eq .model_version "web"', {"model_version": "web"}) == "true"
    assert truth('eq .model_version "mobile" "web"', {"model_version": "web"}) == "true"


def test_missing_and_nil_values_compare_equal_to_nil_and_to_nothing_else():
    assert truth('eq .missing "x"', {}) == "false"
    assert truth('eq "x" .missing', {}) == "false"
    assert truth("eq .missing nil", {}) == "true"
    assert truth("eq .null nil", {"null": None}) == "true"
    assert truth("ne .missing 1", {}) == "true"


@pytest.mark.parametrize("expression, data, message", [
    ("eq `xy` 1", None, "incompatible types for comparison: string and int"),
    ("eq 2 2.0", None, "incompatible types for comparison: int and float64"),
    ("eq .n 1.0", {"n": 1}, "incompatible types for comparison: uint64 and float64"),
    ("lt true true", None, "invalid type for comparison"),
    ("lt 1+0i 1+0i", None, "invalid type for comparison"),
    ("lt .missing 1", {}, "invalid type for comparison"),
    ("eq .a .b", {"a": ["x"], "b": ["x"]}, "non-comparable type [x]: []interface {}"),
    ("eq .a .b", {"a": ["x"], "b": {"k": "v"}},
     "non-comparable types [x]: []interface {}, map[string]interface {}: map[k:v]"),
    ("eq .a 1", {"a": ["x"]}, "incompatible types for comparison: []interface {} and int"),
])
def test_comparison_errors(expression, data, message):
    with pytest.raises(TemplateError) as caught:
        truth(expression, data)
    assert str(caught.value).endswith(f"error calling {expression.split()[0]}: {message}")


# -- index, slice, len -------------------------------------------------------------------


def test_index_of_lists_maps_and_nested_values():
    data = {"l": ["a", "b"], "m": {"k": "v"}, "n": [{"x": ["deep"]}]}
    assert render('{{index .l 1}} {{index .m "k"}} {{index .n 0 "x" 0}}', data) == "b v deep"


def test_index_of_a_missing_map_key_is_nil():
    assert render('[{{index .m "nope"}}]', {"m": {}}) == "[<no value>]"


def test_index_of_a_string_gives_a_byte():
    assert render('{{index "abc" 1}} {{printf "%T" (index "abc" 1)}}') == "98 uint8"


def test_index_with_a_variable_index():
    assert render("{{$i := 1}}{{index .l $i}}", {"l": [10, 20]}) == "20"


def test_index_through_a_null_value():
    with pytest.raises(TemplateError, match="error calling index: index of nil pointer"):
        render('{{index .m "a" "b"}}', {"m": {"a": None}})


def test_slice_of_lists_and_strings():
    data = {"l": [1, 2, 3, 4], "s": "hello"}
    text = "{{slice .l}} {{slice .l 1}} {{slice .l 1 3}} {{slice .l 1 2 3}} {{slice .s 1 3}}"
    assert render(text, data) == "[1 2 3 4] [2 3 4] [2 3] [2] el"


def test_len_of_strings_counts_bytes():
    assert render('{{len "abc"}} {{len "héllo"}}') == "3 6"


def test_len_of_lists_and_maps():
    assert render("{{len .l}} {{len .m}}", {"l": [1, 2], "m": {"a": 1}}) == "2 1"


def test_len_of_a_missing_value_is_gos_error():
    with pytest.raises(TemplateError,
                       match="error calling len: reflect: call of reflect.Value.Type on zero "
                             "Value"):
        render("{{len .missing}}", {})


# -- escapers ------------------------------------------------------------------------------


def test_html_escapes_markup_characters():
    assert render('{{html "<script>alert(\\"XSS\\");</script>"}}') == (
        "&lt;script&gt;alert(&#34;XSS&#34;);&lt;/script&gt;")
    assert render("{{html \"it's & \\x00\"}}") == "it&#39;s &amp; \ufffd"


@pytest.mark.parametrize("text, escaped", [
    ("a", "a"),
    ("'foo", "\\'foo"),
    ('Go "jump" \\', 'Go \\"jump\\" \\\\'),
    ('Yukihiro says "今日は世界"', 'Yukihiro says \\"今日は世界\\"'),
    ("unprintable \u0085\u200b", "unprintable \\u0085\\u200B"),
    ("<html>", "\\u003Chtml\\u003E"),
    ("a=b&c\n", "a\\u003Db\\u0026c\\u000A"),
])
def test_js_escapes_like_go(text, escaped):
    assert render("{{js .}}", text) == escaped


def test_urlquery_escapes_for_a_query_string():
    assert render('{{"http://www.example.org/"|urlquery}}') == "http%3A%2F%2Fwww.example.org%2F"
    assert render('{{urlquery "a b" "é~_-."}}') == "a+b%C3%A9~_-."


def test_escapers_join_several_arguments_as_print_does():
    assert render("{{html 1 2}} {{html .missing}}", {}) == "1 2 &lt;no value&gt;"


# -- added functions ------------------------------------------------------------------------


def test_added_function_receives_evaluated_arguments():
    def greet(greeting, name):
        return f"{greeting}, {name}!"

    assert render('{{greet "hello" .who}}', {"who": "ann"}, {"greet": greet}) == "hello, ann!"


def test_added_function_receives_none_for_missing_values():
    seen = []

    def record(value):
        seen.append(value)
        return "ok"

    assert render("{{record .missing}} {{record nil}}", {}, {"record": record}) == "ok ok"
    assert seen == [None, None]


def test_added_function_with_a_piped_argument():
    assert render('{{.x | upper}}', {"x": "abc"}, {"upper": str.upper}) == "ABC"


def test_added_function_with_variadic_and_default_parameters():
    def join(*parts):
        return "-".join(str(p) for p in parts)

    def pad(text, width=5):
        return text.rjust(width)

    funcs = {"join": join, "pad": pad}
    assert render('{{join 1 "a" 2.5}}|{{join}}|{{pad "x"}}|{{pad "x" 2}}', funcs=funcs) == (
        "1-a-2.5||    x| x")


def test_added_function_returning_none_prints_no_value():
    assert render("[{{nothing}}]", funcs={"nothing": lambda: None}) == "[<no value>]"


def test_added_function_result_can_be_used_as_a_map():
    assert render("{{settings.mode}}", funcs={"settings": lambda: {"mode": "fast"}}) == "fast"


def test_added_function_may_replace_a_builtin():
    assert render("{{len .x}}", {"x": [1, 2]}, {"len": lambda x: "custom"}) == "custom"


def test_sql_runner_style_functions_without_arguments():
    funcs = {"randomInt": lambda: 4, "nowWithFormat": lambda layout: f"now({layout})"}
    assert render('{{randomInt}} {{nowWithFormat "2006_01_02"}}', funcs=funcs) == (
        "4 now(2006_01_02)")


def test_function_names_must_be_identifiers():
    with pytest.raises(ValueError, match="not a valid identifier"):
        parse("x", "t", {"no-dash": lambda: 1})
    with pytest.raises(ValueError, match="not a function"):
        parse("x", "t", {"value": 3})


def test_call_invokes_a_function_held_in_the_data():
    assert render("{{call .f 2 3}}", {"f": lambda a, b: a * b}) == "6"
    with pytest.raises(TemplateError, match="error calling call: call of nil"):
        render("{{call .nope}}", {})
