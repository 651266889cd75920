"""The lexer splits template text into Go's tokens, with the line each token starts on."""

from __future__ import annotations

from sqlrunner.template import lexer as lx
from sqlrunner.template.lexer import lex


def kinds(text: str, **options: bool) -> list[tuple[int, str]]:
    return [(token.typ, token.val) for token in lex(text, **options)]


def test_text_and_an_action_with_a_field():
    assert kinds("a {{.x}} b") == [
        (lx.TEXT, "a "), (lx.LEFT_DELIM, "{{"), (lx.FIELD, ".x"), (lx.RIGHT_DELIM, "}}"),
        (lx.TEXT, " b"), (lx.EOF, ""),
    ]


def test_chained_fields_are_separate_tokens():
    assert kinds("{{$x.a.b}}")[1:4] == [(lx.VARIABLE, "$x"), (lx.FIELD, ".a"), (lx.FIELD, ".b")]


def test_keywords_literals_and_punctuation():
    tokens = kinds('{{range $i, $v := .l | f (g) `r` "s" \'c\' 1.5 true nil .}}')
    assert [typ for typ, _ in tokens if typ != lx.SPACE] == [
        lx.LEFT_DELIM, lx.RANGE, lx.VARIABLE, lx.CHAR, lx.VARIABLE, lx.DECLARE, lx.FIELD,
        lx.PIPE, lx.IDENTIFIER, lx.LEFT_PAREN, lx.IDENTIFIER, lx.RIGHT_PAREN, lx.RAW_STRING,
        lx.STRING, lx.CHAR_CONSTANT, lx.NUMBER, lx.BOOL, lx.NIL, lx.DOT, lx.RIGHT_DELIM, lx.EOF,
    ]


def test_trim_markers_drop_the_whitespace_from_the_text_tokens():
    assert kinds("a \n {{- 1 -}} \n b") == [
        (lx.TEXT, "a"), (lx.LEFT_DELIM, "{{"), (lx.NUMBER, "1"), (lx.RIGHT_DELIM, "}}"),
        (lx.TEXT, "b"), (lx.EOF, ""),
    ]


def test_comments_produce_no_tokens():
    assert kinds("a{{/* x */}}b") == [(lx.TEXT, "a"), (lx.TEXT, "b"), (lx.EOF, "")]


def test_tokens_know_their_line():
    tokens = lex("one\ntwo {{.x\n  .y}}\n{{end}}")
    lines = {token.val: token.line for token in tokens}
    assert lines[".x"] == 2
    assert lines[".y"] == 3
    assert lines["end"] == 4


def test_break_is_an_identifier_when_a_function_takes_the_name():
    assert kinds("{{break}}")[1] == (lx.BREAK, "break")
    assert kinds("{{break}}", break_ok=False)[1] == (lx.IDENTIFIER, "break")


def test_a_lexical_error_ends_the_stream():
    tokens = lex('x {{"abc}} y')
    assert tokens[-1].typ == lx.ERROR
    assert tokens[-1].val == "unterminated quoted string"


def test_numbers_of_every_form_are_single_tokens():
    for number in ("0x1F", "0o17", "0b101", "1_000", "1e+10", ".5", "-3", "+0x1.ep+2", "1+2i"):
        typ, val = kinds("{{" + number + "}}")[1]
        assert val == number
        assert typ in (lx.NUMBER, lx.COMPLEX)


def test_tokens_print_as_go_names_them_in_errors():
    tokens = lex('{{if "a long string value" end}}')
    names = [str(token) for token in tokens if token.typ != lx.SPACE]
    assert names[1:4] == ["<if>", '"\\"a long st"...', "<end>"]
