"""Go's ``fmt`` printing: Sprint, Sprintf, Sprintln.

Values follow the mapping described in :mod:`sqlrunner.template.values`; ``None``
is a nil interface and prints ``<nil>``. Floats use Go's shortest
representation (``strconv.FormatFloat(f, 'g', -1, 64)`` for ``%v``: ``3.5``,
``100000``, ``1e+06``, ``1e+21``), lists print as ``[a b c]`` and maps as
``map[a:1 b:2]`` with sorted keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlrunner.template.strconv import (
    LOWER_DIGITS,
    MASK64,
    MAX_RUNE,
    UPPER_DIGITS,
    can_backquote,
    format_float,
    is_print,
    quote,
    quote_rune,
)
from sqlrunner.template.values import GoInt, GoUint8, sorted_keys, type_name

_TOO_LARGE = 1_000_000

# ---------------------------------------------------------------------------
# fmt: the printer


def _is_signed(value: int) -> bool:
    kind = type(value)
    if kind is GoInt:
        return True
    if kind is GoUint8:
        return False
    return value < 0


class _Printer:
    """One ``fmt`` printer: an output buffer and the flags of the verb being printed."""

    __slots__ = ("buf", "wid", "prec", "wid_present", "prec_present", "minus", "plus",
                 "sharp", "space", "zero", "plus_v", "sharp_v", "reordered", "good_arg_num")

    def __init__(self) -> None:
        self.buf: list[str] = []
        self.reordered = False
        self.good_arg_num = True
        self.clear_flags()

    def clear_flags(self) -> None:
        self.wid = 0
        self.prec = 0
        self.wid_present = False
        self.prec_present = False
        self.minus = False
        self.plus = False
        self.sharp = False
        self.space = False
        self.zero = False
        self.plus_v = False
        self.sharp_v = False

    # -- padding --------------------------------------------------------

    def write_padding(self, count: int) -> None:
        if count > 0:
            self.buf.append(("0" if self.zero and not self.minus else " ") * count)

    def pad(self, text: str) -> None:
        if not self.wid_present or self.wid == 0:
            self.buf.append(text)
            return
        width = self.wid - len(text)
        if not self.minus:
            self.write_padding(width)
            self.buf.append(text)
        else:
            self.buf.append(text)
            self.write_padding(width)

    def pad_unzeroed(self, text: str) -> None:
        zero = self.zero
        self.zero = False
        self.pad(text)
        self.zero = zero

    # -- arguments ------------------------------------------------------

    def print_arg(self, arg: Any, verb: str) -> None:
        if arg is None:
            if verb in "Tv":
                self.pad("<nil>")
            else:
                self.bad_verb(verb, arg)
            return
        if verb == "T":
            self.fmt_s(type_name(arg))
            return
        self.print_value(arg, verb, 0)

    def print_value(self, value: Any, verb: str, depth: int) -> None:
        kind = type(value)
        if kind is str:
            self.fmt_string(value, verb)
        elif kind is bool:
            self.fmt_bool(value, verb)
        elif kind is float:
            self.fmt_float(value, verb)
        elif isinstance(value, int):
            self.fmt_integer(value, _is_signed(value), verb)
        elif isinstance(value, (list, tuple)):
            self.print_list(value, verb, depth)
        elif isinstance(value, dict):
            self.print_map(value, verb, depth)
        elif value is None:
            if self.sharp_v:
                self.buf.append("interface {}(nil)")
            elif verb == "v" or depth > 0:
                self.buf.append("<nil>")
            else:
                self.bad_verb(verb, value)
        elif kind is complex:
            self.fmt_complex(value, verb)
        elif isinstance(value, str):
            self.fmt_string(str(value), verb)
        elif verb in "vsxXq":
            self.fmt_string(str(value), verb)
        else:
            self.bad_verb(verb, value)

    def print_element(self, value: Any, verb: str, depth: int) -> None:
        if value is None:
            self.buf.append("interface {}(nil)" if self.sharp_v else "<nil>")
        else:
            self.print_value(value, verb, depth)

    def print_list(self, value: Sequence[Any], verb: str, depth: int) -> None:
        if self.sharp_v:
            self.buf.append(type_name(value) + "{")
            for index, item in enumerate(value):
                if index:
                    self.buf.append(", ")
                self.print_element(item, verb, depth + 1)
            self.buf.append("}")
            return
        self.buf.append("[")
        for index, item in enumerate(value):
            if index:
                self.buf.append(" ")
            self.print_element(item, verb, depth + 1)
        self.buf.append("]")

    def print_map(self, value: dict[Any, Any], verb: str, depth: int) -> None:
        self.buf.append(type_name(value) + "{" if self.sharp_v else "map[")
        for index, key in enumerate(sorted_keys(value)):
            if index:
                self.buf.append(", " if self.sharp_v else " ")
            self.print_value(key, verb, depth + 1)
            self.buf.append(":")
            self.print_element(value[key], verb, depth + 1)
        self.buf.append("}" if self.sharp_v else "]")

    def bad_verb(self, verb: str, value: Any) -> None:
        self.buf.append("%!" + verb + "(")
        if value is None:
            self.buf.append("<nil>")
        else:
            self.buf.append(type_name(value) + "=")
            self.print_value(value, "v", 0)
        self.buf.append(")")

    # -- basic kinds ----------------------------------------------------

    def fmt_bool(self, value: bool, verb: str) -> None:
        if verb in "tv":
            self.pad("true" if value else "false")
        else:
            self.bad_verb(verb, value)

    def fmt_integer(self, value: int, signed: bool, verb: str) -> None:
        if verb == "v":
            if self.sharp_v and not signed:
                sharp = self.sharp
                self.sharp = True
                self.integer(value, 16, signed, "v", LOWER_DIGITS)
                self.sharp = sharp
            else:
                self.integer(value, 10, signed, verb, LOWER_DIGITS)
        elif verb == "d":
            self.integer(value, 10, signed, verb, LOWER_DIGITS)
        elif verb == "b":
            self.integer(value, 2, signed, verb, LOWER_DIGITS)
        elif verb in "oO":
            self.integer(value, 8, signed, verb, LOWER_DIGITS)
        elif verb == "x":
            self.integer(value, 16, signed, verb, LOWER_DIGITS)
        elif verb == "X":
            self.integer(value, 16, signed, verb, UPPER_DIGITS)
        elif verb == "c":
            self.pad(chr(_valid_rune(value)))
        elif verb == "q":
            self.pad(quote_rune(_valid_rune(value), self.plus))
        elif verb == "U":
            self.fmt_unicode(value & MASK64)
        else:
            self.bad_verb(verb, value)

    def integer(self, value: int, base: int, signed: bool, verb: str, digits: str) -> None:
        negative = signed and value < 0
        magnitude = -value if negative else value & MASK64
        prec = 0
        if self.prec_present:
            prec = self.prec
            if prec == 0 and magnitude == 0:
                zero = self.zero
                self.zero = False
                self.write_padding(self.wid)
                self.zero = zero
                return
        elif self.zero and not self.minus and self.wid_present:
            prec = self.wid
            if negative or self.plus or self.space:
                prec -= 1
        if base == 10:
            text = str(magnitude)
        elif base == 16:
            text = format(magnitude, "x" if digits is LOWER_DIGITS else "X")
        elif base == 8:
            text = format(magnitude, "o")
        else:
            text = format(magnitude, "b")
        if len(text) < prec:
            text = "0" * (prec - len(text)) + text
        if self.sharp:
            if base == 2:
                text = "0b" + text
            elif base == 8 and text[0] != "0":
                text = "0" + text
            elif base == 16:
                text = "0" + digits[16] + text
        if verb == "O":
            text = "0o" + text
        if negative:
            text = "-" + text
        elif self.plus:
            text = "+" + text
        elif self.space:
            text = " " + text
        self.pad_unzeroed(text)

    def fmt_unicode(self, value: int) -> None:
        prec = self.prec if self.prec_present and self.prec > 4 else 4
        text = "U+" + format(value, "X").rjust(prec, "0")
        if self.sharp and value <= MAX_RUNE and not 0xD800 <= value <= 0xDFFF:
            if is_print(chr(value)):
                text += f" '{chr(value)}'"
        self.pad_unzeroed(text)

    def fmt_float(self, value: float, verb: str) -> None:
        if verb == "v":
            self.float(value, "g", -1)
        elif verb in "bgGxX":
            self.float(value, verb, -1)
        elif verb in "feE":
            self.float(value, verb, 6)
        elif verb == "F":
            self.float(value, "f", 6)
        else:
            self.bad_verb(verb, value)

    def float(self, value: float, verb: str, prec: int) -> None:
        if self.prec_present:
            prec = self.prec
        num = format_float(value, verb, prec)
        if num[0] not in "+-":
            num = "+" + num
        if self.space and num[0] == "+" and not self.plus:
            num = " " + num[1:]
        if num[1] in "IN":
            if num[1] == "N" and not self.space and not self.plus:
                num = num[1:]
            self.pad_unzeroed(num)
            return
        if self.sharp and verb != "b":
            num = _keep_float_digits(num, verb, prec)
        if self.plus or num[0] != "+":
            if self.zero and not self.minus and self.wid_present and self.wid > len(num):
                self.buf.append(num[0])
                self.write_padding(self.wid - len(num))
                self.buf.append(num[1:])
                return
            self.pad(num)
            return
        self.pad(num[1:])

    def fmt_complex(self, value: complex, verb: str) -> None:
        if verb not in "vbgGxXfFeE":
            self.bad_verb(verb, value)
            return
        plus = self.plus
        self.buf.append("(")
        self.fmt_float(value.real, verb)
        self.plus = True
        self.fmt_float(value.imag, verb)
        self.buf.append("i)")
        self.plus = plus

    def fmt_string(self, value: str, verb: str) -> None:
        if verb == "v":
            if self.sharp_v:
                self.fmt_q(value)
            else:
                self.fmt_s(value)
        elif verb == "s":
            self.fmt_s(value)
        elif verb == "x":
            self.fmt_sx(value, LOWER_DIGITS)
        elif verb == "X":
            self.fmt_sx(value, UPPER_DIGITS)
        elif verb == "q":
            self.fmt_q(value)
        else:
            self.bad_verb(verb, value)

    def truncate(self, value: str) -> str:
        if self.prec_present and len(value) > self.prec:
            return value[:self.prec]
        return value

    def fmt_s(self, value: str) -> None:
        self.pad(self.truncate(value))

    def fmt_q(self, value: str) -> None:
        value = self.truncate(value)
        if self.sharp and can_backquote(value):
            self.pad("`" + value + "`")
        else:
            self.pad(quote(value, self.plus))

    def fmt_sx(self, value: str, digits: str) -> None:
        data = value.encode("utf-8", "surrogateescape")
        length = len(data)
        if self.prec_present and self.prec < length:
            length = self.prec
        width = 2 * length
        if width > 0:
            if self.space:
                if self.sharp:
                    width *= 2
                width += length - 1
            elif self.sharp:
                width += 2
        else:
            if self.wid_present:
                self.write_padding(self.wid)
            return
        if self.wid_present and self.wid > width and not self.minus:
            self.write_padding(self.wid - width)
        prefix = "0" + digits[16]
        out = [prefix] if self.sharp else []
        for index in range(length):
            if self.space and index > 0:
                out.append(" ")
                if self.sharp:
                    out.append(prefix)
            byte = data[index]
            out.append(digits[byte >> 4] + digits[byte & 0xF])
        self.buf.append("".join(out))
        if self.wid_present and self.wid > width and self.minus:
            self.write_padding(self.wid - width)


def _valid_rune(value: int) -> int:
    if value < 0 or value > MAX_RUNE or 0xD800 <= value <= 0xDFFF:
        return 0xFFFD
    return value


def _keep_float_digits(num: str, verb: str, prec: int) -> str:
    """``%#g`` and friends: force a decimal point and keep trailing zeros."""
    digits = 0
    if verb in "vgGx":
        digits = 6 if prec == -1 else prec
    tail = ""
    body = num
    has_point = False
    seen_nonzero = False
    for index in range(1, len(num)):
        ch = num[index]
        if ch == ".":
            has_point = True
        elif ch in "pP" or (ch in "eE" and verb not in "xX"):
            tail = num[index:]
            body = num[:index]
            break
        else:
            if ch != "0":
                seen_nonzero = True
            if seen_nonzero:
                digits -= 1
    if not has_point:
        if len(body) == 2 and body[1] == "0":
            digits -= 1
        body += "."
    if digits > 0:
        body += "0" * digits
    return body + tail


# ---------------------------------------------------------------------------
# Sprint, Sprintln, Sprintf


def format_value(value: Any) -> str:
    """``fmt.Sprint(value)``: the default format of one value."""
    kind = type(value)
    if kind is str:
        return value
    if kind is bool:
        return "true" if value else "false"
    if kind is float:
        return format_float(value)
    if kind is int or kind is GoInt or kind is GoUint8:
        return int.__repr__(value)
    printer = _Printer()
    printer.print_arg(value, "v")
    return "".join(printer.buf)


def sprint(args: Sequence[Any]) -> str:
    """Go's ``fmt.Sprint``: spaces between operands when neither is a string."""
    printer = _Printer()
    previous_string = False
    for index, arg in enumerate(args):
        is_string = isinstance(arg, str)
        if index > 0 and not is_string and not previous_string:
            printer.buf.append(" ")
        printer.print_arg(arg, "v")
        previous_string = is_string
    return "".join(printer.buf)


def sprintln(args: Sequence[Any]) -> str:
    """Go's ``fmt.Sprintln``: spaces between all operands and a newline at the end."""
    printer = _Printer()
    for index, arg in enumerate(args):
        if index > 0:
            printer.buf.append(" ")
        printer.print_arg(arg, "v")
    printer.buf.append("\n")
    return "".join(printer.buf)


def _parse_num(text: str, start: int, end: int) -> tuple[int, bool, int]:
    num = 0
    found = False
    index = start
    while index < end and "0" <= text[index] <= "9":
        if num > _TOO_LARGE or num < -_TOO_LARGE:
            return 0, False, end
        num = num * 10 + ord(text[index]) - 48
        found = True
        index += 1
    return num, found, index


def _int_from_arg(args: Sequence[Any], arg_num: int) -> tuple[int, bool, int]:
    if arg_num >= len(args):
        return 0, False, arg_num
    arg = args[arg_num]
    num, is_int = 0, False
    if isinstance(arg, int) and not isinstance(arg, bool):
        if -(1 << 63) <= arg < (1 << 63):
            num, is_int = int(arg), True
    if num > _TOO_LARGE or num < -_TOO_LARGE:
        num, is_int = 0, False
    return num, is_int, arg_num + 1


def _parse_arg_number(text: str) -> tuple[int, int, bool]:
    if len(text) < 3:
        return 0, 1, False
    for index in range(1, len(text)):
        if text[index] == "]":
            width, ok, new_index = _parse_num(text, 1, index)
            if not ok or new_index != index:
                return 0, index + 1, False
            return width - 1, index + 1, True
    return 0, 1, False


def sprintf(format: str, args: Sequence[Any]) -> str:
    """Go's ``fmt.Sprintf``, with its ``%!verb(...)`` reports for bad verbs and arguments."""
    printer = _Printer()
    buf = printer.buf
    end = len(format)
    arg_num = 0
    after_index = False
    index = 0

    def arg_number(arg_num: int, index: int) -> tuple[int, int, bool]:
        if index >= end or format[index] != "[":
            return arg_num, index, False
        printer.reordered = True
        position, width, ok = _parse_arg_number(format[index:])
        if ok and 0 <= position < len(args):
            return position, index + width, True
        printer.good_arg_num = False
        return arg_num, index + width, ok

    while index < end:
        printer.good_arg_num = True
        percent = format.find("%", index)
        if percent < 0:
            buf.append(format[index:])
            break
        if percent > index:
            buf.append(format[index:percent])
        index = percent + 1
        printer.clear_flags()
        simple = False
        while index < end:
            ch = format[index]
            if ch == "#":
                printer.sharp = True
            elif ch == "0":
                printer.zero = True
            elif ch == "+":
                printer.plus = True
            elif ch == "-":
                printer.minus = True
            elif ch == " ":
                printer.space = True
            else:
                if "a" <= ch <= "z" and arg_num < len(args):
                    if ch == "v":
                        printer.sharp_v, printer.sharp = printer.sharp, False
                        printer.plus_v, printer.plus = printer.plus, False
                    printer.print_arg(args[arg_num], ch)
                    arg_num += 1
                    index += 1
                    simple = True
                break
            index += 1
        if simple:
            continue
        arg_num, index, after_index = arg_number(arg_num, index)
        if index < end and format[index] == "*":
            index += 1
            printer.wid, printer.wid_present, arg_num = _int_from_arg(args, arg_num)
            if not printer.wid_present:
                buf.append("%!(BADWIDTH)")
            if printer.wid < 0:
                printer.wid = -printer.wid
                printer.minus = True
                printer.zero = False
            after_index = False
        else:
            printer.wid, printer.wid_present, index = _parse_num(format, index, end)
            if after_index and printer.wid_present:
                printer.good_arg_num = False
        if index + 1 < end and format[index] == ".":
            index += 1
            if after_index:
                printer.good_arg_num = False
            arg_num, index, after_index = arg_number(arg_num, index)
            if index < end and format[index] == "*":
                index += 1
                printer.prec, printer.prec_present, arg_num = _int_from_arg(args, arg_num)
                if printer.prec < 0:
                    printer.prec = 0
                    printer.prec_present = False
                if not printer.prec_present:
                    buf.append("%!(BADPREC)")
                after_index = False
            else:
                printer.prec, printer.prec_present, index = _parse_num(format, index, end)
                if not printer.prec_present:
                    printer.prec = 0
                    printer.prec_present = True
        if not after_index:
            arg_num, index, after_index = arg_number(arg_num, index)
        if index >= end:
            buf.append("%!(NOVERB)")
            break
        verb = format[index]
        index += 1
        if verb == "%":
            buf.append("%")
        elif not printer.good_arg_num:
            buf.append(f"%!{verb}(BADINDEX)")
        elif arg_num >= len(args):
            buf.append(f"%!{verb}(MISSING)")
        else:
            if verb == "v":
                printer.sharp_v, printer.sharp = printer.sharp, False
                printer.plus_v, printer.plus = printer.plus, False
            printer.print_arg(args[arg_num], verb)
            arg_num += 1
    if not printer.reordered and arg_num < len(args):
        printer.clear_flags()
        buf.append("%!(EXTRA ")
        for position, arg in enumerate(args[arg_num:]):
            if position:
                buf.append(", ")
            if arg is None:
                buf.append("<nil>")
            else:
                buf.append(type_name(arg) + "=")
                printer.print_arg(arg, "v")
        buf.append(")")
    return "".join(buf)
