"""Go's ``strconv`` pieces that templates need: quoting (``Quote``, ``QuoteRune``,
``CanBackquote``) and float formatting (``FormatFloat``), byte for byte as Go gives them."""

from __future__ import annotations

import math
import struct

LOWER_DIGITS = "0123456789abcdefx"
UPPER_DIGITS = "0123456789ABCDEFX"
MASK64 = (1 << 64) - 1
MAX_RUNE = 0x10FFFF


# ---------------------------------------------------------------------------
# strconv: quoting


def is_print(ch: str) -> bool:
    """Go's ``strconv.IsPrint`` for one character."""
    return ch.isprintable()


def _escape_rune(ch: str, quote: str, ascii_only: bool, out: list[str]) -> None:
    code = ord(ch)
    if ch == quote or ch == "\\":
        out.append("\\" + ch)
        return
    if ascii_only:
        if code < 0x80 and is_print(ch):
            out.append(ch)
            return
    elif is_print(ch):
        out.append(ch)
        return
    simple = _SIMPLE_ESCAPES.get(ch)
    if simple is not None:
        out.append(simple)
    elif code < 0x20 or code == 0x7F:
        out.append(f"\\x{code:02x}")
    elif 0xDC80 <= code <= 0xDCFF:  # a raw byte kept by surrogateescape
        out.append(f"\\x{code - 0xDC00:02x}")
    elif 0xD800 <= code <= 0xDFFF:
        out.append("\\ufffd")
    elif code < 0x10000:
        out.append(f"\\u{code:04x}")
    else:
        out.append(f"\\U{code:08x}")


_SIMPLE_ESCAPES = {
    "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
}


def quote(text: str, ascii_only: bool = False) -> str:
    """Go's ``strconv.Quote`` (or ``QuoteToASCII``): a double-quoted Go string literal."""
    if (text.isprintable() and '"' not in text and "\\" not in text
            and (not ascii_only or text.isascii())):
        return f'"{text}"'
    out = ['"']
    for ch in text:
        _escape_rune(ch, '"', ascii_only, out)
    out.append('"')
    return "".join(out)


def quote_rune(code: int, ascii_only: bool = False) -> str:
    """Go's ``strconv.QuoteRune``: a single-quoted Go character literal."""
    if code > MAX_RUNE or code < 0 or 0xD800 <= code <= 0xDFFF:
        code = 0xFFFD
    out = ["'"]
    _escape_rune(chr(code), "'", ascii_only, out)
    out.append("'")
    return "".join(out)


def can_backquote(text: str) -> bool:
    """Go's ``strconv.CanBackquote``: whether ``text`` fits in a raw string literal."""
    for ch in text:
        code = ord(ch)
        if code >= 0x80:
            if ch == "\ufeff" or 0xD800 <= code <= 0xDFFF:
                return False
            continue
        if (code < 0x20 and ch != "\t") or ch == "`" or code == 0x7F:
            return False
    return True


def unicode_name(code: int) -> str:
    """Go's ``%#U``: ``U+0041 'A'`` (the character only when printable)."""
    text = f"U+{code:04X}"
    if 0 <= code <= MAX_RUNE and not 0xD800 <= code <= 0xDFFF and is_print(chr(code)):
        text += f" '{chr(code)}'"
    return text


# ---------------------------------------------------------------------------
# strconv: FormatFloat


def _shortest_digits(value: float) -> tuple[str, int]:
    """The shortest decimal digits that round-trip ``value`` (> 0), and the point position.

    The value is ``0.DIGITS * 10**point``.
    """
    text = repr(value)
    mantissa, _, exponent = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    stripped = digits.lstrip("0")
    point = len(whole) + (int(exponent) if exponent else 0) - (len(digits) - len(stripped))
    return stripped.rstrip("0"), point


def _rounded_digits(value: float, count: int) -> tuple[str, int]:
    """``value`` (>= 0) rounded to ``count`` significant digits, trailing zeros trimmed."""
    if value == 0:
        return "", 0
    text = f"{value:.{count - 1}e}"
    mantissa, _, exponent = text.partition("e")
    digits = mantissa.replace(".", "").rstrip("0")
    return digits, int(exponent) + 1


def _format_e(digits: str, point: int, prec: int, letter: str) -> str:
    count = len(digits)
    out = [digits[0] if count else "0"]
    if prec > 0:
        out.append(".")
        shown = digits[1:min(count, prec + 1)]
        out.append(shown)
        out.append("0" * (prec - len(shown)))
    exp = point - 1 if count else 0
    sign = "-" if exp < 0 else "+"
    exp = abs(exp)
    out.append(f"{letter}{sign}{exp:02d}")
    return "".join(out)


def _format_f(digits: str, point: int, prec: int) -> str:
    count = len(digits)
    if point > 0:
        whole = digits[:point] + "0" * (point - min(count, point))
    else:
        whole = "0"
    if prec <= 0:
        return whole
    if point >= 0:
        fraction = digits[point:point + prec]
    else:
        fraction = ("0" * -point + digits)[:prec]
    return f"{whole}.{fraction.ljust(prec, '0')}"


def _float_bits(value: float) -> tuple[bool, int, int]:
    """Sign, mantissa and binary exponent of ``value`` as Go's ``FormatFloat`` takes them."""
    (bits,) = struct.unpack("<Q", struct.pack("<d", value))
    negative = bool(bits >> 63)
    exp = (bits >> 52) & 0x7FF
    mant = bits & ((1 << 52) - 1)
    if exp == 0:
        exp += 1
    else:
        mant |= 1 << 52
    return negative, mant, exp - 1023


def _format_b(value: float) -> str:
    negative, mant, exp = _float_bits(value)
    exp -= 52
    sign = "-" if negative else ""
    return f"{sign}{mant}p{'-' if exp < 0 else '+'}{abs(exp)}"


def _format_x(value: float, prec: int, letter: str) -> str:
    negative, mant, exp = _float_bits(value)
    if mant == 0:
        exp = 0
    mant = (mant << 8) & MASK64  # leading 1 at bit 60
    while mant != 0 and mant & (1 << 60) == 0:
        mant = (mant << 1) & MASK64
        exp -= 1
    if 0 <= prec < 15:
        shift = prec * 4
        extra = (mant << shift) & ((1 << 60) - 1)
        mant >>= 60 - shift
        if extra | (mant & 1) > 1 << 59:
            mant += 1
        mant = (mant << (60 - shift)) & MASK64
        if mant & (1 << 61):
            mant >>= 1
            exp += 1
    digits = LOWER_DIGITS if letter == "x" else UPPER_DIGITS
    out = ["-" if negative else "", "0", letter, str((mant >> 60) & 1)]
    mant = (mant << 4) & MASK64
    if prec < 0 and mant != 0:
        out.append(".")
        while mant != 0:
            out.append(digits[(mant >> 60) & 15])
            mant = (mant << 4) & MASK64
    elif prec > 0:
        out.append(".")
        for _ in range(prec):
            out.append(digits[(mant >> 60) & 15])
            mant = (mant << 4) & MASK64
    out.append("p" if letter == "x" else "P")
    out.append("-" if exp < 0 else "+")
    out.append(f"{abs(exp):02d}")
    return "".join(out)


def format_float(value: float, fmt: str = "g", prec: int = -1) -> str:
    """Go's ``strconv.FormatFloat(value, fmt, prec, 64)``."""
    if value != value:
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if fmt == "b":
        return _format_b(value)
    if fmt in "xX":
        return _format_x(value, prec, fmt)
    negative = math.copysign(1.0, value) < 0
    sign = "-" if negative else ""
    magnitude = -value if negative else value
    shortest = prec < 0
    if shortest:
        digits, point = _shortest_digits(magnitude) if magnitude else ("", 0)
        if fmt in "eE":
            prec = max(len(digits) - 1, 0)
        elif fmt == "f":
            prec = max(len(digits) - point, 0)
        else:
            prec = len(digits)
    elif fmt == "f":
        return sign + f"{magnitude:.{prec}f}"
    elif fmt in "eE":
        digits, point = _rounded_digits(magnitude, prec + 1)
    else:
        if prec == 0:
            prec = 1
        digits, point = _rounded_digits(magnitude, prec)
    if fmt in "eE":
        return sign + _format_e(digits, point, prec, fmt)
    if fmt == "f":
        return sign + _format_f(digits, point, prec)
    count = len(digits)
    eprec = prec
    if eprec > count and count >= point:
        eprec = count
    if shortest:
        eprec = 6
    exp = point - 1
    if exp < -4 or exp >= eprec:
        if prec > count:
            prec = count
        return sign + _format_e(digits, point, prec - 1, "e" if fmt == "g" else "E")
    if prec > point:
        prec = count
    return sign + _format_f(digits, point, max(prec - point, 0))
