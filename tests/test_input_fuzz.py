"""Hostile inputs, generated: whatever a playbook, a variables file or a template holds,
loading, parsing, executing and rendering it either succeeds or raises a SqlRunnerError
of one line; no other exception (RecursionError, ValueError, ...) ever escapes."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sqlrunner.errors import SqlRunnerError
from sqlrunner.functions import runner_functions
from sqlrunner.playbook import QuerySpec, load_playbook
from sqlrunner.playbook.yaml12 import load_yaml
from sqlrunner.render import Renderer
from sqlrunner.template import parse

FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

TEMPLATE_PIECES = [
    "{{", "}}", "{{- ", " -}}", "(", ")", " ", "\n", "if ", "else ", "end", "range ", "with ",
    'define "a"', 'template "a" .', 'block "b" .', "break", "continue", '"a"', '"', "`", "'x'",
    "'", ".x", ".y.z", ".", "$", "$x", " := ", " = ", "|", "print ", "printf ", '"%c" 0',
    '"%v %d %q %x"', "0", "1", "-1", "1.5", "0x1F", "1e999", "1i", "nil", "true", "index ",
    "slice ", "len ", "and ", "or ", "not ", "eq ", "lt ", "call ", "html ", "js ", "urlquery ",
    ",", "/*", "*/", "€", "\x00", "\t", "\\", "nowWithFormat ", "randomInt", "99999999999999999999",
    "'\\x00'", '"\\u0000"', "..", ".x.", "$.x",
]
YAML_PIECES = [
    "a: ", "b:", "&x ", "*x", "&y ", "*y", "[", "]", "{", "}", ", ", "\n", "  ", "- ", '"\\0"',
    "!!binary ", "!!set ", "!!omap ", "!!timestamp ", "!!float ", "!!int ", "!!str ",
    "!!python/object ", "2020-01-01", "1e3", "yes", "~", ": ", "? ", "|", ">", "'", '"', "#",
    "%YAML 1.1\n", "---\n", "...\n", "<<: ", "targets:", "steps:", "variables:", "name: n",
    "file: f.sql", "queries:", "type: postgres", "{{", "}}", ".x", "\x01", "\ufeff", "\x85", "@",
    "`", "!x ", "0x10", "-.inf", ".nan", "true", "9" * 30,
]
DATA = load_yaml("""
x: [1, "a", {k: ~}, [[[]]]]
y: {z: q, b: true, f: 1.5, i: -3, e: ""}
when: !!timestamp 2001-12-14t21:59:43.10-05:00
raw: !!binary aGVsbG8=
pairs: !!omap [{a: 1}, {b: 2}]
nan: .nan
""", "data.yml")


def texts(pieces: list[str], size: int) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(pieces), max_size=size).map("".join)


def _one_line(err: SqlRunnerError) -> None:
    assert str(err).strip() and "\n" not in str(err), repr(str(err))


@FUZZ
@given(texts(TEMPLATE_PIECES, 40), st.sampled_from([DATA, None, [1, 2], "dot"]))
def test_any_template_parses_and_executes_or_fails_with_one_line(text, data):
    try:
        template = parse(text, "f.sql", funcs=runner_functions())
    except SqlRunnerError as err:
        _one_line(err)
        return
    for execute in (template.execute, template.execute_mapped):
        try:
            execute(data)
        except SqlRunnerError as err:
            _one_line(err)


@settings(FUZZ, max_examples=12)
@given(st.lists(st.sampled_from([("{{if .}}", "{{end}}"), ("{{with .}}", "{{end}}"),
                                 ("{{range .}}", "{{else}}{{end}}"), ("{{print (", ")}}"),
                                 ("{{block \"b\" .}}", "{{end}}")]),
                min_size=1, max_size=4),
       st.integers(min_value=1000, max_value=2500))
def test_deep_nesting_renders_or_fails_with_one_line(shape, depth):
    opening = "".join(open_ for open_, _ in shape) * depth
    closing = "".join(close for _, close in reversed(shape)) * depth
    try:
        rendered = parse(opening + "{{.}}" + closing, "deep.sql").execute({"k": "v"})
    except SqlRunnerError as err:
        _one_line(err)
    else:
        assert rendered.count("map[k:v]") <= 1


@FUZZ
@given(texts(YAML_PIECES, 30))
def test_any_playbook_loads_or_fails_with_one_line(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "playbook.yml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        load_playbook(str(path), {"x": "1"})
    except SqlRunnerError as err:
        _one_line(err)


@FUZZ
@given(texts(TEMPLATE_PIECES, 30))
def test_any_sql_template_renders_or_fails_with_one_line(tmp_path_factory, text):
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "q.sql").write_bytes(text.encode("utf-8"))
    query = QuerySpec(name="q", file="q.sql", template=True, line=1)
    rendered = Renderer(str(folder)).render("t", "s", query, DATA)
    if rendered.error is not None:
        _one_line(rendered.error)
    else:
        assert "\x00" not in rendered.sql
