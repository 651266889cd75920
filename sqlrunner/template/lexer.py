"""Splits Go template text into tokens, each with its position and line, as Go's lex.go does.

The token stream, the trimming of ``{{- `` and `` -}}``, the skipping of
``{{/* comments */}}`` and the lexical error messages follow Go's
``text/template/parse/lex.go``; a lexical error ends the stream with an
``ERROR`` token whose value is the message, which the parser reports when it
reaches it (as Go's parser does).
"""

from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

from sqlrunner.template.strconv import quote, unicode_name

# Token types, in Go's order: keywords come after KEYWORD.
(ERROR, BOOL, CHAR, CHAR_CONSTANT, COMMENT, COMPLEX, ASSIGN, DECLARE, EOF, FIELD, IDENTIFIER,
 LEFT_DELIM, LEFT_PAREN, NUMBER, PIPE, RAW_STRING, RIGHT_DELIM, RIGHT_PAREN, SPACE, STRING,
 TEXT, VARIABLE, KEYWORD, BLOCK, BREAK, CONTINUE, DOT, DEFINE, ELSE, END, IF, NIL, RANGE,
 TEMPLATE, WITH) = range(35)

KEYWORDS = {
    ".": DOT, "block": BLOCK, "break": BREAK, "continue": CONTINUE, "define": DEFINE,
    "else": ELSE, "end": END, "if": IF, "range": RANGE, "nil": NIL, "template": TEMPLATE,
    "with": WITH,
}

LEFT = "{{"
RIGHT = "}}"
_SPACES = " \t\r\n"
_TERMINATORS = " \t\r\n.,|:)("
_DECIMAL = "0123456789_"
_HEX = "0123456789abcdefABCDEF_"
_OCTAL = "01234567_"
_BINARY = "01_"

_SPACE_RUN = re.compile(r"[ \t\r\n]+")
_WORD = re.compile(r"\w+")
_QUOTED = re.compile(r'"(?:[^"\\\n]|\\[^\n])*"')
_CHAR_CONSTANT = re.compile(r"'(?:[^'\\\n]|\\[^\n])*'")


class Token(NamedTuple):
    """One lexical item: its type, where it starts (a character offset), its text, its line."""

    typ: int
    pos: int
    val: str
    line: int

    def __str__(self) -> str:
        """How Go's parser names the token in its error messages."""
        if self.typ == EOF:
            return "EOF"
        if self.typ == ERROR:
            return self.val
        if self.typ > KEYWORD:
            return f"<{self.val}>"
        if len(self.val) > 10:
            return quote(self.val[:10]) + "..."
        return quote(self.val)


def _is_alphanumeric(ch: str) -> bool:
    """Go's ``isAlphaNumeric``: ``_``, a Unicode letter or a decimal digit."""
    if ch.isascii():
        return ch.isalnum() or ch == "_"
    return ch.isalpha() or unicodedata.category(ch) == "Nd"


class _Lexer:
    __slots__ = ("text", "end", "ascii", "tokens", "break_ok", "continue_ok", "_line",
                 "_line_pos")

    def __init__(self, text: str, break_ok: bool, continue_ok: bool) -> None:
        self.text = text
        self.end = len(text)
        self.ascii = text.isascii()
        self.tokens: list[Token] = []
        self.break_ok = break_ok
        self.continue_ok = continue_ok
        self._line = 1
        self._line_pos = 0

    # -- emitting -------------------------------------------------------

    def _line_at(self, pos: int) -> int:
        if pos > self._line_pos:
            self._line += self.text.count("\n", self._line_pos, pos)
            self._line_pos = pos
        return self._line

    def emit(self, typ: int, start: int, end: int) -> int:
        self.tokens.append(Token(typ, start, self.text[start:end], self._line_at(start)))
        return end

    def error(self, message: str, start: int) -> None:
        self.tokens.append(Token(ERROR, start, message, self._line_at(start)))

    # -- helpers --------------------------------------------------------

    def left_trim_marker(self, pos: int) -> bool:
        text = self.text
        return pos + 1 < self.end and text[pos] == "-" and text[pos + 1] in _SPACES

    def right_trim_marker(self, pos: int) -> bool:
        text = self.text
        return pos + 1 < self.end and text[pos] in _SPACES and text[pos + 1] == "-"

    def at_right_delim(self, pos: int) -> tuple[bool, bool]:
        text = self.text
        if self.right_trim_marker(pos) and text.startswith(RIGHT, pos + 2):
            return True, True
        if text.startswith(RIGHT, pos):
            return True, False
        return False, False

    def skip_spaces(self, pos: int) -> int:
        match = _SPACE_RUN.match(self.text, pos)
        return match.end() if match else pos

    def at_terminator(self, pos: int) -> bool:
        if pos >= self.end:
            return True
        return self.text[pos] in _TERMINATORS or self.text.startswith(RIGHT, pos)

    def word_end(self, pos: int) -> int:
        match = _WORD.match(self.text, pos)
        if match is None:
            return pos
        end = match.end()
        if not self.ascii:
            for index in range(pos, end):
                if not _is_alphanumeric(self.text[index]):
                    return index
        return end

    def bad_character(self, pos: int) -> str:
        return f"bad character {unicode_name(ord(self.text[pos]))}"

    # -- states ---------------------------------------------------------

    def run(self) -> list[Token]:
        text = self.text
        end = self.end
        pos = 0
        while True:
            delim = text.find(LEFT, pos)
            if delim < 0:
                if end > pos:
                    self.emit(TEXT, pos, end)
                self.emit(EOF, end, end)
                return self.tokens
            if delim > pos:
                stop = delim
                if self.left_trim_marker(delim + 2):
                    stop = pos + len(text[pos:delim].rstrip(_SPACES))
                if stop > pos:
                    self.emit(TEXT, pos, stop)
            pos = delim + 2
            after_marker = 2 if self.left_trim_marker(pos) else 0
            if text.startswith("/*", pos + after_marker):
                next_pos = self.comment(pos + after_marker)
            else:
                self.emit(LEFT_DELIM, delim, delim + 2)
                next_pos = self.inside_action(pos + after_marker)
            if next_pos < 0:
                return self.tokens
            pos = next_pos

    def comment(self, start: int) -> int:
        close = self.text.find("*/", start + 2)
        if close < 0:
            self.error("unclosed comment", start)
            return -1
        pos = close + 2
        delim, trim = self.at_right_delim(pos)
        if not delim:
            self.error("comment ends before closing delimiter", start)
            return -1
        if trim:
            return self.skip_spaces(pos + 4)
        return pos + 2

    def inside_action(self, pos: int) -> int:
        text = self.text
        end = self.end
        depth = 0
        while True:
            delim, trim = self.at_right_delim(pos)
            if delim:
                if depth:
                    self.error("unclosed left paren", pos)
                    return -1
                if trim:
                    pos += 2
                self.emit(RIGHT_DELIM, pos, pos + 2)
                pos += 2
                return self.skip_spaces(pos) if trim else pos
            if pos >= end:
                self.error("unclosed action", pos)
                return -1
            ch = text[pos]
            if ch in _SPACES:
                stop = _SPACE_RUN.match(text, pos).end()  # type: ignore[union-attr]
                if self.right_trim_marker(stop - 1) and text.startswith(RIGHT, stop + 1):
                    stop -= 1
                    if stop == pos:
                        continue  # the space belongs to " -}}"
                pos = self.emit(SPACE, pos, stop)
            elif ch == "=":
                pos = self.emit(ASSIGN, pos, pos + 1)
            elif ch == ":":
                if not text.startswith(":=", pos):
                    self.error("expected :=", pos)
                    return -1
                pos = self.emit(DECLARE, pos, pos + 2)
            elif ch == "|":
                pos = self.emit(PIPE, pos, pos + 1)
            elif ch == '"':
                match = _QUOTED.match(text, pos)
                if match is None:
                    self.error("unterminated quoted string", pos)
                    return -1
                pos = self.emit(STRING, pos, match.end())
            elif ch == "`":
                close = text.find("`", pos + 1)
                if close < 0:
                    self.error("unterminated raw quoted string", pos)
                    return -1
                pos = self.emit(RAW_STRING, pos, close + 1)
            elif ch == "'":
                match = _CHAR_CONSTANT.match(text, pos)
                if match is None:
                    self.error("unterminated character constant", pos)
                    return -1
                pos = self.emit(CHAR_CONSTANT, pos, match.end())
            elif ch == "$":
                pos = self.field_or_variable(pos, VARIABLE)
            elif ch == "." and pos + 1 < end and not "0" <= text[pos + 1] <= "9":
                pos = self.field_or_variable(pos, FIELD)
            elif ch in "+-." or "0" <= ch <= "9":
                pos = self.number(pos)
            elif ch == "(":
                depth += 1
                pos = self.emit(LEFT_PAREN, pos, pos + 1)
            elif ch == ")":
                depth -= 1
                if depth < 0:
                    self.error("unexpected right paren", pos)
                    return -1
                pos = self.emit(RIGHT_PAREN, pos, pos + 1)
            elif _is_alphanumeric(ch):
                pos = self.identifier(pos)
            elif " " <= ch <= "~":
                pos = self.emit(CHAR, pos, pos + 1)
            else:
                self.error(f"unrecognized character in action: {unicode_name(ord(ch))}", pos)
                return -1
            if pos < 0:
                return -1

    def identifier(self, start: int) -> int:
        stop = self.word_end(start)
        if not self.at_terminator(stop):
            self.error(self.bad_character(stop), start)
            return -1
        word = self.text[start:stop]
        typ = KEYWORDS.get(word)
        if typ is not None:
            if (typ == BREAK and not self.break_ok) or (typ == CONTINUE and not self.continue_ok):
                typ = IDENTIFIER
        elif word == "true" or word == "false":
            typ = BOOL
        else:
            typ = IDENTIFIER
        return self.emit(typ, start, stop)

    def field_or_variable(self, start: int, typ: int) -> int:
        pos = start + 1
        if self.at_terminator(pos):
            return self.emit(VARIABLE if typ == VARIABLE else DOT, start, pos)
        stop = self.word_end(pos)
        if not self.at_terminator(stop):
            self.error(self.bad_character(stop), start)
            return -1
        return self.emit(typ, start, stop)

    def accept_run(self, pos: int, valid: str) -> int:
        text = self.text
        end = self.end
        while pos < end and text[pos] in valid:
            pos += 1
        return pos

    def accept(self, pos: int, valid: str) -> int:
        return pos + 1 if pos < self.end and self.text[pos] in valid else pos

    def scan_number(self, pos: int) -> tuple[bool, int]:
        pos = self.accept(pos, "+-")
        digits = _DECIMAL
        if pos < self.end and self.text[pos] == "0":
            pos += 1
            if self.accept(pos, "xX") != pos:
                pos, digits = pos + 1, _HEX
            elif self.accept(pos, "oO") != pos:
                pos, digits = pos + 1, _OCTAL
            elif self.accept(pos, "bB") != pos:
                pos, digits = pos + 1, _BINARY
        pos = self.accept_run(pos, digits)
        if self.accept(pos, ".") != pos:
            pos = self.accept_run(pos + 1, digits)
        if digits is _DECIMAL and self.accept(pos, "eE") != pos:
            pos = self.accept_run(self.accept(pos + 1, "+-"), _DECIMAL)
        if digits is _HEX and self.accept(pos, "pP") != pos:
            pos = self.accept_run(self.accept(pos + 1, "+-"), _DECIMAL)
        pos = self.accept(pos, "i")
        if pos < self.end and _is_alphanumeric(self.text[pos]):
            return False, pos + 1
        return True, pos

    def number(self, start: int) -> int:
        ok, pos = self.scan_number(start)
        if not ok:
            self.error(f"bad number syntax: {quote(self.text[start:pos])}", start)
            return -1
        if pos < self.end and self.text[pos] in "+-":
            ok, pos = self.scan_number(pos)
            if not ok or self.text[pos - 1] != "i":
                self.error(f"bad number syntax: {quote(self.text[start:pos])}", start)
                return -1
            return self.emit(COMPLEX, start, pos)
        return self.emit(NUMBER, start, pos)


def lex(text: str, *, break_ok: bool = True, continue_ok: bool = True) -> list[Token]:
    """All tokens of ``text``, ending with an ``EOF`` token or, on a lexical error, ``ERROR``.

    ``break_ok``/``continue_ok`` are false when a function of that name exists, which
    makes the word an identifier rather than a keyword (as in Go).
    """
    return _Lexer(text, break_ok, continue_ok).run()
