"""Values print as Go's fmt prints them: actions, print, printf and println."""

from __future__ import annotations

import math

import pytest

from sqlrunner.template import MissingKey, parse
from sqlrunner.template.fmt import sprintf
from sqlrunner.template.strconv import format_float, quote
from sqlrunner.template.values import GoInt


def render(text: str, data: object = None) -> str:
    return parse(text, "t").execute(data, MissingKey.NOVALUE)


# -- default formatting of values in actions ----------------------------------------


@pytest.mark.parametrize("value, printed", [
    (0.0, "0"),
    (-0.0, "-0"),
    (1.0, "1"),
    (3.5, "3.5"),
    (100000.0, "100000"),
    (1000000.0, "1e+06"),
    (123456.0, "123456"),
    (1234567.0, "1.234567e+06"),
    (1e20, "1e+20"),
    (1e21, "1e+21"),
    (0.0001, "0.0001"),
    (0.00001, "1e-05"),
    (2.5e-05, "2.5e-05"),
    (0.1 + 0.2, "0.30000000000000004"),
    (1 / 3, "0.3333333333333333"),
    (12345.678, "12345.678"),
    (5e-324, "5e-324"),
    (1.7976931348623157e308, "1.7976931348623157e+308"),
    (math.inf, "+Inf"),
    (-math.inf, "-Inf"),
    (math.nan, "NaN"),
])
def test_floats_print_in_gos_shortest_form(value, printed):
    assert render("{{.v}}", {"v": value}) == printed


@pytest.mark.parametrize("value, printed", [
    (True, "true"),
    (False, "false"),
    (42, "42"),
    (-42, "-42"),
    (18446744073709551615, "18446744073709551615"),
    ("text", "text"),
    ([], "[]"),
    ([1, "a", None, 2.5, True], "[1 a <nil> 2.5 true]"),
    ([[1, 2], [3]], "[[1 2] [3]]"),
    ({}, "map[]"),
    ({"b": 2, "a": 1}, "map[a:1 b:2]"),
    ({"a": {"x": [1, 2]}, "b": None}, "map[a:map[x:[1 2]] b:<nil>]"),
])
def test_values_print_as_go_prints_them(value, printed):
    assert render("{{.v}}", {"v": value}) == printed


def test_null_value_prints_no_value():
    assert render("[{{.v}}]", {"v": None}) == "[<no value>]"


# -- print and println ----------------------------------------------------------------


@pytest.mark.parametrize("text, printed", [
    ("{{print}}", ""),
    ("{{print 1 2}}", "1 2"),
    ('{{print "a" "b"}}', "ab"),
    ('{{print "a" 1 "b"}}', "a1b"),
    ('{{print 1 "a" 2}}', "1a2"),
    ("{{print 1 2.5 true}}", "1 2.5 true"),
    ("{{print nil}}", "<nil>"),
    ("{{print nil nil}}", "<nil> <nil>"),
    ('{{println 1 "a" 2}}', "1 a 2\n"),
    ("{{println}}", "\n"),
])
def test_print_and_println_space_operands_as_go_does(text, printed):
    assert render(text) == printed


def test_print_of_containers_and_missing_values():
    data = {"l": [1, 2], "m": {"a": 1}}
    assert render("{{print .l .m .nope}}", data) == "[1 2] map[a:1] <nil>"


# -- printf -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt, args, printed", [
    ("%d", [42], "42"),
    ("%5d|", [42], "   42|"),
    ("%-5d|", [42], "42   |"),
    ("%05d", [42], "00042"),
    ("%05d", [-42], "-0042"),
    ("%+d", [42], "+42"),
    ("% d", [42], " 42"),
    ("%.3d", [7], "007"),
    ("%8.3d|", [7], "     007|"),
    ("%.0d|", [0], "|"),
    ("%x %X %#x", [255, 255, 255], "ff FF 0xff"),
    ("%x", [-255], "-ff"),
    ("%o %#o %O", [8, 8, 8], "10 010 0o10"),
    ("%b %#b", [5, 5], "101 0b101"),
    ("%c%c", [72, 0x1F600], "H😀"),
    ("%q", [65], "'A'"),
    ("%U %#U", [0x1F600, 65], "U+1F600 U+0041 'A'"),
    ("%f", [3.14159], "3.141590"),
    ("%.2f", [2.675], "2.67"),
    ("%5.2f|", [3.14159], " 3.14|"),
    ("%-8.2f|", [3.14159], "3.14    |"),
    ("%08.3f", [-3.14159], "-003.142"),
    ("%+.1f % .1f", [2.0, 2.0], "+2.0  2.0"),
    ("%e %E", [1234.5678, 1234.5678], "1.234568e+03 1.234568E+03"),
    ("%g %g %g", [1234.5678, 1e21, 1e-7], "1234.5678 1e+21 1e-07"),
    ("%.3g %.3g %.3g", [1234.5678, 0.0001234, 100.0], "1.23e+03 0.000123 100"),
    ("%G", [1e-7], "1E-07"),
    ("%#g %#.3g", [1.0, 1.0], "1.00000 1.00"),
    ("%v %v", [1e6, 100000.0], "1e+06 100000"),
    ("%6.2f|", [math.inf], "  +Inf|"),
    ("%x %b", [1.0, 1.0], "0x1p+00 4503599627370496p-52"),
    ("%s|%10s|%-10s|", ["abc", "abc", "abc"], "abc|       abc|abc       |"),
    ("%.2s %5.1s|", ["abcdef", "abc"], "ab     a|"),
    ("%q %#q %+q", ['a"b', "ab", "é"], '"a\\"b" `ab` "\\u00e9"'),
    ("%x % x %X %#x", ["hi", "hi", "hi", "hi"], "6869 68 69 6869 0x6869"),
    ("%t %v", [True, False], "true false"),
    ("%v", [[1, "a"]], "[1 a]"),
    ("%d", [[1, 2]], "[1 2]"),
    ("%q", [["a", "b"]], '["a" "b"]'),
    ("%5v", [[1, 2]], "[    1     2]"),
    ("%s", [[1]], "[%!s(uint64=1)]"),
    ("%v", [{"b": [1], "a": "x"}], "map[a:x b:[1]]"),
    ("%%|100%%", [], "%|100%"),
    ("%[2]d %[1]d", [1, 2], "2 1"),
    ("%*d|%-*d|", [5, 42, 5, 42], "   42|42   |"),
    ("%.*f", [2, 3.14159], "3.14"),
])
def test_printf_formats_as_go(fmt, args, printed):
    assert sprintf(fmt, args) == printed


@pytest.mark.parametrize("fmt, args, printed", [
    ("%d", [], "%!d(MISSING)"),
    ("%d %d", [1], "1 %!d(MISSING)"),
    ("%d", [1, 2], "1%!(EXTRA uint64=2)"),
    ("%d", [1, "a", None], "1%!(EXTRA string=a, <nil>)"),
    ("%z", [1], "%!z(uint64=1)"),
    ("%d", ["s"], "%!d(string=s)"),
    ("%s", [True], "%!s(bool=true)"),
    ("%d", [1.5], "%!d(float64=1.5)"),
    ("%d %s %v", [None, None, None], "%!d(<nil>) %!s(<nil>) <nil>"),
    ("%", [], "%!(NOVERB)"),
    ("%!", [], "%!!(MISSING)"),
    ("%[3]d", [1], "%!d(BADINDEX)"),
    ("%*d", ["x", 1], "%!(BADWIDTH)1"),
])
def test_printf_reports_bad_verbs_and_arguments_inline(fmt, args, printed):
    assert sprintf(fmt, args) == printed


@pytest.mark.parametrize("value, name", [
    ("s", "string"), (GoInt(1), "int"), (1, "uint64"), (-1, "int64"), (1.5, "float64"),
    (True, "bool"), ([1], "[]interface {}"), ({"a": 1}, "map[string]interface {}"),
    (None, "<nil>"),
])
def test_printf_percent_t_names_go_types(value, name):
    assert sprintf("%T", [value]) == name


def test_printf_in_a_template_sees_template_number_literals_as_go_ints():
    assert render('{{printf "%T %T %T %T" 1 1.5 "s" .n}}', {"n": 3}) == "int float64 string uint64"


def test_printf_with_a_piped_value():
    assert render('{{.n | printf "%05.1f"}}', {"n": 3.14159}) == "003.1"


def test_printf_with_only_a_piped_format():
    assert render('{{"hello" | printf}}') == "hello"


def test_printf_of_a_missing_key_prints_nil():
    assert render('{{printf "%v|%s|%d" .a .b .c}}', {}) == "<nil>|%!s(<nil>)|%!d(<nil>)"


def test_zero_padding_applies_to_strings_as_in_go():
    assert sprintf("%05s|%-05s|", ["ab", "ab"]) == "000ab|ab   |"


# -- the strconv pieces --------------------------------------------------------------


@pytest.mark.parametrize("value, fmt, prec, text", [
    (1.0, "e", -1, "1e+00"),
    (0.0, "e", -1, "0e+00"),
    (123.456, "f", -1, "123.456"),
    (1e-7, "f", -1, "0.0000001"),
    (1e21, "f", -1, "1000000000000000000000"),
    (0.5, "g", 0, "0.5"),
    (1.5, "x", 3, "0x1.800p+00"),
    (-2.0, "b", -1, "-4503599627370496p-51"),
])
def test_format_float_matches_strconv(value, fmt, prec, text):
    assert format_float(value, fmt, prec) == text


@pytest.mark.parametrize("text, quoted", [
    ("plain", '"plain"'),
    ('say "hi"\n', '"say \\"hi\\"\\n"'),
    ("tab\there\x00\x7f", '"tab\\there\\x00\\x7f"'),
    ("é日本", '"é日本"'),
    ("\u200b", '"\\u200b"'),
])
def test_quote_matches_strconv_quote(text, quoted):
    assert quote(text) == quoted
