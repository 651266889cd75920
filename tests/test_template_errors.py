"""Template errors carry Go's wording and position: NAME:LINE for parse errors,
NAME:LINE:COL (COL counting bytes from the line start) and the node for execution errors."""

from __future__ import annotations

import pytest

from sqlrunner.errors import TemplateError
from sqlrunner.template import MissingKey, evaluate, parse


def parse_error(text: str, name: str = "t") -> str:
    with pytest.raises(TemplateError) as caught:
        parse(text, name)
    return str(caught.value)


def exec_error(text: str, data: object = None, name: str = "t", funcs: dict | None = None,
               missing: MissingKey = MissingKey.NOVALUE) -> str:
    template = parse(text, name, funcs)
    with pytest.raises(TemplateError) as caught:
        template.execute(data, missing)
    return str(caught.value)


# -- parse errors -----------------------------------------------------------------


@pytest.mark.parametrize("text, message", [
    ("{{.x", "unclosed action"),
    ("{{if .x}}", "unexpected EOF"),
    ("{{end}}", "unexpected {{end}}"),
    ("{{else}}", "unexpected {{else}}"),
    ("{{foo}}", 'function "foo" not defined'),
    ("{{$x}}", 'undefined variable "$x"'),
    ("{{range .a}}{{else}}{{else}}{{end}}", "expected end; found {{else}}"),
    ('{{.x | "a"}}', "non executable command in pipeline stage 2"),
    ("{{}}", "missing value for command"),
    ("{{if}}{{end}}", "missing value for if"),
    ('{{"abc}}', "unterminated quoted string"),
    ("{{`abc}}", "unterminated raw quoted string"),
    ("{{'a}}", "unterminated character constant"),
    ("{{.x)}}", "unexpected right paren"),
    ("{{(.x}}", "unclosed left paren"),
    ("{{$x, $y := 1}}", "too many declarations in command"),
    ("{{range $x, 1}}{{end}}", "range can only initialize variables"),
    ("{{3x}}", 'bad number syntax: "3x"'),
    ("{{.x@}}", "bad character U+0040 '@'"),
    ("{{.x €}}", "unrecognized character in action: U+20AC '€'"),
    ('{{"\\q"}}', "invalid syntax"),
    ("{{'ab'}}", "malformed character constant: 'ab'"),
    ("{{99999999999999999999}}", 'integer overflow: "99999999999999999999"'),
    ("{{08}}", 'integer overflow: "08"'),
    ("{{0x}}", 'illegal number syntax: "0x"'),
    ("{{1_}}", 'illegal number syntax: "1_"'),
    ("{{template .x}}", 'unexpected ".x" in template clause'),
    ('{{define "a"}}', "unexpected EOF"),
    ("{{nil.x}}", 'unexpected . after term "nil"'),
    ("{{.x:}}", "expected :="),
    ("{{.x = 1}}", 'unexpected "=" in operand'),
    ("{{with .x}}{{else if .y}}{{end}}", "unexpected <if> in input"),
    ("{{range .x}}{{break 1}}{{end}}", 'unexpected "1" in {{break}}'),
    ("{{/* never closed", "unclosed comment"),
    ("{{block .x .}}{{end}}", 'unexpected ".x" in block clause'),
])
def test_parse_errors_use_gos_messages(text, message):
    assert parse_error(text) == f"template: t:1: {message}"


def test_parse_error_names_the_line_of_the_token_in_error():
    assert parse_error("line 1\nline 2\n{{foo}}") == 'template: t:3: function "foo" not defined'


def test_unexpected_eof_is_reported_at_the_last_line():
    assert parse_error("{{if .x}}\nabc\n") == "template: t:3: unexpected EOF"


def test_unclosed_action_across_lines_names_where_the_action_started():
    assert parse_error("a\n{{.x\n\n") == "template: t:4: unclosed action started at t:2"


def test_unterminated_string_names_the_line_of_the_opening_quote():
    text = "hello\n\n{{`unterminated\n\n\n\n}}\n some more\n\n"
    assert parse_error(text, "X") == "template: X:3: unterminated raw quoted string"


def test_lexical_error_inside_a_multi_line_action_names_the_action_start():
    assert parse_error("{{if\n .x\n @}}{{end}}") == 'template: t:3: unexpected "@" in operand'
    assert parse_error('{{print\n"abc\n}}') == (
        "template: t:2: unterminated quoted string in action started at t:1")


def test_parse_error_is_a_template_error_with_file_and_line():
    with pytest.raises(TemplateError) as caught:
        parse("ok\n{{end}}", "sql/file.sql")
    assert caught.value.file == "sql/file.sql"
    assert caught.value.line == 2
    assert caught.value.column is None
    assert caught.value.message == "unexpected {{end}}"


def test_actions_may_span_lines():
    assert parse("{{if\n  .x\n}}yes{{end}}", "t").execute({"x": 1}) == "yes"


# -- execution errors ---------------------------------------------------------------


def test_execution_error_names_template_line_byte_column_and_node():
    assert exec_error("{{index .l 5}}", {"l": [1, 2]}) == (
        'template: t:1:2: executing "t" at <index .l 5>: error calling index: '
        "index out of range: 5")


def test_error_in_a_nested_template_names_the_inner_template_and_the_outer_file():
    text = ('line 1\nline 2\nline 3\n{{template "one" .}}\n'
            '{{define "one"}}{{template "two" .}}{{end}}\n'
            '{{define "two"}}{{template "three" .}}{{end}}\n'
            '{{define "three"}}{{index "hi" $}}{{end}}')
    assert exec_error(text, 5, name="top") == (
        'template: top:7:20: executing "three" at <index "hi" $>: error calling index: '
        "index out of range: 5")


def test_error_column_counts_bytes_not_characters():
    assert exec_error("é{{index .l 5}}", {"l": []}).startswith("template: t:1:4: ")


def test_execution_error_carries_file_line_and_column():
    template = parse("a\n  {{len 3}}", "q.sql")
    with pytest.raises(TemplateError) as caught:
        template.execute(None)
    err = caught.value
    assert (err.file, err.line, err.column) == ("q.sql", 2, 4)
    assert err.message == 'executing "q.sql" at <len 3>: error calling len: len of type int'


@pytest.mark.parametrize("text, data, message", [
    ("{{.a.b}}", {"a": "s"}, "at <.a.b>: can't evaluate field b in type interface {}"),
    ("{{$x := .a}}{{$x.b}}", {"a": "s"}, "at <$x.b>: can't evaluate field b in type string"),
    ("{{with .a}}{{.x}}{{end}}", {"a": 5}, "at <.x>: can't evaluate field x in type uint64"),
    ("{{range .l}}{{.x}}{{end}}", {"l": [-1]},
     "at <.x>: can't evaluate field x in type interface {}"),
    ("{{.a.b}}", {"a": None}, "at <.a.b>: nil pointer evaluating interface {}.b"),
    ("{{.x 1}}", {"x": 1}, "at <.x>: x is not a method but has arguments"),
    ("{{1 | .x}}", {"x": 1}, "at <.x>: x is not a method but has arguments"),
    ("{{3 2}}", None, "at <3>: can't give argument to non-function 3"),
    ("{{$x := 1}}{{$x 2}}", None, "at <$x>: can't give argument to non-function $x"),
    ("{{nil}}", None, "at <nil>: nil is not a command"),
    ("{{len 3}}", None, "at <len 3>: error calling len: len of type int"),
    ("{{len .n}}", {"n": None}, "at <len .n>: error calling len: len of nil pointer"),
    ("{{printf 3}}", None, "at <3>: expected string; found 3"),
    ("{{true | printf}}", None, "at <printf>: wrong type for value; expected string; got bool"),
    ("{{printf .f}}", {"f": 1}, "at <.f>: wrong type for value; expected string; got uint64"),
    ("{{printf nil}}", None, "at <nil>: cannot assign nil to string"),
    ("{{eq}}", None, "at <eq>: wrong number of args for eq: want at least 1 got 0"),
    ("{{lt 1}}", None, "at <lt>: wrong number of args for lt: want 2 got 1"),
    ("{{not 1 2}}", None, "at <not>: wrong number of args for not: want 1 got 2"),
    ("{{eq 1}}", None, "at <eq 1>: error calling eq: missing argument for comparison"),
    ("{{eq 2 2.0}}", None,
     "at <eq 2 2.0>: error calling eq: incompatible types for comparison: int and float64"),
    ('{{eq .s 1}}', {"s": "a"},
     "at <eq .s 1>: error calling eq: incompatible types for comparison: string and int"),
    ("{{lt true false}}", None,
     "at <lt true false>: error calling lt: invalid type for comparison"),
    ("{{range .f}}{{end}}", {"f": 1.5}, "at <.f>: range can't iterate over 1.5"),
    ("{{18446744073709551615}}", None,
     "at <18446744073709551615>: 18446744073709551615 overflows int"),
    ("{{index .m 1}}", {"m": {}},
     "at <index .m 1>: error calling index: value has type int; should be string"),
    ("{{index .l \"a\"}}", {"l": []},
     'at <index .l "a">: error calling index: cannot index slice/array with type string'),
    ("{{index nil 1}}", None, "at <index nil 1>: error calling index: index of untyped nil"),
    ("{{index .l 2}}", {"l": [1, 2]},
     "at <index .l 2>: error calling index: reflect: slice index out of range"),
    ("{{index 5 1}}", None, "at <index 5 1>: error calling index: can't index item of type int"),
    ("{{slice .l 2 1}}", {"l": [1, 2, 3]},
     "at <slice .l 2 1>: error calling slice: invalid slice index: 2 > 1"),
    ('{{slice "abc" 1 2 3}}', None,
     'at <slice "abc" 1 2 3>: error calling slice: cannot 3-index slice a string'),
    ("{{slice .l 0 5}}", {"l": [1]},
     "at <slice .l 0 5>: error calling slice: index out of range: 5"),
])
def test_execution_errors_use_gos_messages(text, data, message):
    error = exec_error(text, data)
    assert error.startswith('template: t:1:')
    assert error.endswith(f'executing "t" {message}')


def test_error_from_an_added_function_is_reported_as_error_calling():
    def boom(value):
        raise ValueError(f"cannot use {value}")

    assert exec_error("{{boom .x}}", {"x": "it"}, funcs={"boom": boom}) == (
        'template: t:1:2: executing "t" at <boom .x>: error calling boom: cannot use it')


def test_added_function_called_with_the_wrong_number_of_arguments():
    def greet(name):
        return f"hello {name}"

    assert exec_error("{{greet}}", funcs={"greet": greet}).endswith(
        "at <greet>: wrong number of args for greet: want 1 got 0")
    assert exec_error('{{greet "a" "b"}}', funcs={"greet": greet}).endswith(
        "at <greet>: wrong number of args for greet: want 1 got 2")


def test_undefined_variable_assignment_at_execution():
    assert exec_error("{{$x = 1}}").endswith("undefined variable: $x")


def test_missing_template_error_is_at_the_template_action():
    assert exec_error('x {{template "nope" .}}') == (
        'template: t:1:13: executing "t" at <{{template "nope" .}}>: '
        'template "nope" not defined')


def test_recursion_without_end_stops_with_an_error(monkeypatch):
    # Go's limit is 100,000 calls deep; a smaller one proves the same check, faster.
    monkeypatch.setattr(evaluate, "MAX_TEMPLATE_DEPTH", 1000)
    text = '{{define "loop"}}{{template "loop" .}}{{end}}{{template "loop" .}}'
    assert exec_error(text) == ('template: t:1:28: executing "loop" at <{{template "loop" .}}>: '
                                'exceeded maximum template depth (1000)')


def test_error_field_position_is_where_go_puts_chained_fields():
    # Go positions a chained field .a.b at its last element.
    assert exec_error("{{.a.b}}", {"a": 1}).startswith("template: t:1:4: ")
