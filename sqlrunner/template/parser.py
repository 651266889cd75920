"""Recursive-descent parser from tokens to a tree, following Go's text/template/parse/parse.go.

``parse_trees`` returns every template the text defines (the top-level one under
its own name, plus each ``{{define}}`` and ``{{block}}``). Errors are raised as
:class:`~sqlrunner.errors.TemplateError` with Go's wording and Go's position
form for parse errors, which gives the line only: ``template: NAME:LINE: ...``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from sqlrunner.errors import TemplateError
from sqlrunner.template import lexer as lx
from sqlrunner.template import trampoline
from sqlrunner.template.lexer import Token
from sqlrunner.template.nodes import (
    ActionNode,
    BoolNode,
    BreakNode,
    ChainNode,
    CommandNode,
    ContinueNode,
    DotNode,
    ElseNode,
    EndNode,
    FieldNode,
    IdentifierNode,
    IfNode,
    ListNode,
    NilNode,
    NumberNode,
    PipeNode,
    RangeNode,
    StringNode,
    TemplateNode,
    TextNode,
    VariableNode,
    WithNode,
    is_empty_tree,
)
from sqlrunner.template.strconv import quote
from sqlrunner.template.trampoline import Step
from sqlrunner.template.values import GoInt

_OPERAND_START = frozenset({
    lx.BOOL, lx.CHAR_CONSTANT, lx.COMPLEX, lx.DOT, lx.FIELD, lx.IDENTIFIER, lx.NUMBER, lx.NIL,
    lx.RAW_STRING, lx.STRING, lx.VARIABLE, lx.LEFT_PAREN,
})
_NOT_EXECUTABLE = (BoolNode, DotNode, NilNode, NumberNode, StringNode)
# Go's limits (parse.go's maxStackDepth and maxPipelineCmds): parentheses nest at most
# 10,000 deep, a pipeline has at most 100,000 commands. Actions nest without limit.
_MAX_STACK_DEPTH = 10000
_MAX_PIPELINE_CMDS = 100000


class _Syntax(ValueError):
    """A literal that Go's strconv rejects; the message is strconv's."""


# ---------------------------------------------------------------------------
# strconv.Unquote / UnquoteChar

_ESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92}


def _unquote_char(text: str, index: int, quote_char: str) -> tuple[int, bool, int]:
    """One (possibly escaped) character of a quoted literal at ``text[index]``.

    Returns the value, whether it is a whole character (false for the byte of a
    ``\\x`` or octal escape) and the index after it.
    """
    ch = text[index]
    if ch == quote_char and quote_char in "'\"":
        raise _Syntax("invalid syntax")
    if ch != "\\":
        return ord(ch), True, index + 1
    if index + 1 >= len(text):
        raise _Syntax("invalid syntax")
    kind = text[index + 1]
    index += 2
    if kind in _ESCAPES:
        return _ESCAPES[kind], True, index
    if kind in "xuU":
        size = {"x": 2, "u": 4, "U": 8}[kind]
        digits = text[index:index + size]
        if len(digits) < size or any(c not in "0123456789abcdefABCDEF" for c in digits):
            raise _Syntax("invalid syntax")
        value = int(digits, 16)
        if kind == "x":
            return value, False, index + size
        if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
            raise _Syntax("invalid syntax")
        return value, True, index + size
    if "0" <= kind <= "7":
        digits = text[index - 1:index + 2]
        if len(digits) < 3 or any(c not in "01234567" for c in digits):
            raise _Syntax("invalid syntax")
        value = int(digits, 8)
        if value > 255:
            raise _Syntax("invalid syntax")
        return value, False, index + 2
    if kind in "'\"":
        if kind != quote_char:
            raise _Syntax("invalid syntax")
        return ord(kind), True, index
    raise _Syntax("invalid syntax")


def unquote(literal: str) -> str:
    """Go's ``strconv.Unquote`` for a ``"..."`` or raw string literal.

    Bytes written as ``\\x`` or octal escapes that do not form UTF-8 are kept as
    surrogate escapes (``errors="surrogateescape"``).
    """
    if len(literal) < 2 or literal[0] != literal[-1]:
        raise _Syntax("invalid syntax")
    body = literal[1:-1]
    if literal[0] == "`":
        if "`" in body:
            raise _Syntax("invalid syntax")
        return body.replace("\r", "")
    if literal[0] != '"':
        raise _Syntax("invalid syntax")
    if "\\" not in body:
        if '"' in body or "\n" in body:
            raise _Syntax("invalid syntax")
        return body
    out = bytearray()
    index = 0
    while index < len(body):
        if body[index] == "\n":
            raise _Syntax("invalid syntax")
        value, whole, index = _unquote_char(body, index, '"')
        if whole:
            out += chr(value).encode("utf-8", "surrogatepass")
        else:
            out.append(value)
    return out.decode("utf-8", "surrogateescape")


# ---------------------------------------------------------------------------
# strconv.ParseUint / ParseInt / ParseFloat with base 0, as NumberNode uses them


def _underscore_ok(text: str) -> bool:
    """Go's rule for ``_`` in number literals: only between digits (or after a base prefix)."""
    saw = "^"
    index = 0
    if text[:1] in ("+", "-"):
        text = text[1:]
    is_hex = False
    if len(text) >= 2 and text[0] == "0" and text[1].lower() in "box":
        index = 2
        saw = "0"
        is_hex = text[1].lower() == "x"
    while index < len(text):
        ch = text[index]
        if "0" <= ch <= "9" or (is_hex and ch.lower() in "abcdef"):
            saw = "0"
        elif ch == "_":
            if saw != "0":
                return False
            saw = "_"
        else:
            if saw == "_":
                return False
            saw = "!"
        index += 1
    return saw != "_"


def _parse_uint(text: str) -> int | None:
    if not text or text[0] in "+-":
        return None
    base, body = 10, text
    if text[0] == "0" and len(text) > 1:
        prefix = text[1].lower()
        if prefix == "x":
            base, body = 16, text[2:]
        elif prefix == "o":
            base, body = 8, text[2:]
        elif prefix == "b":
            base, body = 2, text[2:]
        else:
            base, body = 8, text[1:]
    digits = body.replace("_", "")
    if not digits or not digits.isascii() or not digits.isalnum():
        return None
    try:
        value = int(digits, base)
    except ValueError:
        return None
    if "_" in body and not _underscore_ok(text):
        return None
    return value if value < 1 << 64 else None


def _parse_int(text: str) -> int | None:
    negative = text[:1] == "-"
    body = text[1:] if text[:1] in "+-" else text
    value = _parse_uint(body)
    if value is None or ("_" in text and not _underscore_ok(text)):
        return None
    if negative:
        return -value if value <= 1 << 63 else None
    return value if value < 1 << 63 else None


_HEX_FLOAT = re.compile(r"[+-]?0[xX][0-9a-fA-F_]*\.?[0-9a-fA-F_]*[pP][+-]?[0-9_]+\Z")


def _parse_float(text: str) -> float | None:
    if "_" in text and not _underscore_ok(text):
        return None
    if _HEX_FLOAT.match(text):
        try:
            value = float.fromhex(text.replace("_", ""))
        except (ValueError, OverflowError):
            return None
    else:
        if not text or any(c not in "0123456789.eE+-_" for c in text):
            return None
        try:
            value = float(text)
        except ValueError:
            return None
    if value in (float("inf"), float("-inf")):
        return None
    return value


def _number(token: Token) -> NumberNode:
    """A NumberNode with Go's ideal-constant value, or a ``_Syntax`` error."""
    text = token.val
    if token.typ == lx.CHAR_CONSTANT:
        value, _, index = _unquote_char(text, 1, "'")
        if text[index:] != "'":
            raise _Syntax(f"malformed character constant: {text}")
        return NumberNode(token.pos, text, GoInt(value))
    if token.typ == lx.COMPLEX:
        try:
            return NumberNode(token.pos, text, complex(text[:-1] + "j"))
        except ValueError:
            raise _Syntax(f"illegal number syntax: {quote(text)}") from None
    if text.endswith("i"):
        imaginary = _parse_float(text[:-1])
        if imaginary is not None:
            return NumberNode(token.pos, text, complex(0, imaginary))
    signed = _parse_int(text)
    if signed is not None:
        return NumberNode(token.pos, text, GoInt(signed))
    unsigned = _parse_uint(text)
    if unsigned is not None:
        return NumberNode(token.pos, text, None, overflows=True)
    floating = _parse_float(text)
    if floating is None:
        raise _Syntax(f"illegal number syntax: {quote(text)}")
    if not any(c in text for c in ".eEpP"):
        raise _Syntax(f"integer overflow: {quote(text)}")
    return NumberNode(token.pos, text, floating)


# ---------------------------------------------------------------------------
# The parser


class _TreeState:
    """What Go keeps per tree while parsing: declared variables, range depth, action line."""

    __slots__ = ("vars", "range_depth", "action_line")

    def __init__(self) -> None:
        self.vars = ["$"]
        self.range_depth = 0
        self.action_line = 0


class _Parser:
    def __init__(self, text: str, name: str, functions: Iterable[str]) -> None:
        self.name = name
        self.functions = frozenset(functions)
        self.tokens = lx.lex(text, break_ok="break" not in self.functions,
                             continue_ok="continue" not in self.functions)
        self.index = 0
        self.fetched = 0  # how many tokens the parser has looked at; Go's token[0] is the last
        self.trees: dict[str, ListNode] = {}
        self.tree = _TreeState()
        self.stack_depth = 0

    # -- the token stream -----------------------------------------------

    def next(self) -> Token:
        tokens = self.tokens
        index = self.index
        if index >= len(tokens):
            last = tokens[-1]
            return Token(lx.EOF, last.pos, "", last.line)
        self.index = index + 1
        if index >= self.fetched:
            self.fetched = index + 1
        return tokens[index]

    def peek(self) -> Token:
        token = self.next()
        self.index -= 1
        return token

    def backup(self) -> None:
        self.index -= 1

    def next_non_space(self) -> Token:
        token = self.next()
        while token.typ == lx.SPACE:
            token = self.next()
        return token

    def peek_non_space(self) -> Token:
        token = self.next_non_space()
        self.index -= 1
        return token

    # -- errors ---------------------------------------------------------

    def errorf(self, message: str) -> None:
        line = self.tokens[max(self.fetched, 1) - 1].line
        raise TemplateError(message, file=self.name, line=line)

    def expect(self, expected: int, context: str) -> Token:
        token = self.next_non_space()
        if token.typ != expected:
            self.unexpected(token, context)
        return token

    def unexpected(self, token: Token, context: str) -> None:
        if token.typ == lx.ERROR:
            extra = ""
            action_line = self.tree.action_line
            if action_line != 0 and action_line != token.line:
                extra = f" in action started at {self.name}:{action_line}"
                if token.val.endswith(" action"):
                    extra = extra[len(" in action"):]
            self.errorf(f"{token}{extra}")
        self.errorf(f"unexpected {token} in {context}")

    # -- templates ------------------------------------------------------

    def add(self, name: str, root: ListNode) -> None:
        existing = self.trees.get(name)
        if existing is None or is_empty_tree(existing):
            self.trees[name] = root
        elif not is_empty_tree(root):
            self.errorf(f"template: multiple definition of template {quote(name)}")

    def parse(self) -> dict[str, ListNode]:
        return trampoline.run(self.top_level())

    # Every method from here on that can lead back to itself is a generator run by the
    # trampoline (see trampoline.py): ``yield self.f(...)`` is a call of ``f``.

    def top_level(self) -> Step[dict[str, ListNode]]:
        pos = self.peek().pos
        nodes: list[Any] = []
        while self.peek().typ != lx.EOF:
            if self.peek().typ == lx.LEFT_DELIM:
                start = self.index
                self.next()
                if self.next_non_space().typ == lx.DEFINE:
                    yield self.definition()
                    continue
                self.index = start
            node = yield self.text_or_action()
            if type(node) is EndNode or type(node) is ElseNode:
                self.errorf(f"unexpected {node}")
            nodes.append(node)
        self.add(self.name, ListNode(pos, tuple(nodes)))
        return self.trees

    def in_new_tree(self, parse: Step[Any]) -> Step[Any]:
        """Run ``parse`` (a generator not started yet) with a tree state of its own."""
        saved = self.tree
        self.tree = _TreeState()
        try:
            return (yield parse)
        finally:
            self.tree = saved

    def definition(self) -> Step[None]:
        def parse() -> Step[None]:
            context = "define clause"
            token = self.next_non_space()
            if token.typ not in (lx.STRING, lx.RAW_STRING):
                self.unexpected(token, context)
            name = self.unquote(token.val)
            self.expect(lx.RIGHT_DELIM, context)
            root, end = yield self.item_list()
            if type(end) is not EndNode:
                self.errorf(f"unexpected {end} in {context}")
            self.add(name, root)

        yield self.in_new_tree(parse())

    def item_list(self) -> Step[tuple[ListNode, Any]]:
        pos = self.peek_non_space().pos
        nodes: list[Any] = []
        while self.peek_non_space().typ != lx.EOF:
            node = yield self.text_or_action()
            if type(node) is EndNode or type(node) is ElseNode:
                return ListNode(pos, tuple(nodes)), node
            nodes.append(node)
        self.errorf("unexpected EOF")
        raise AssertionError("unreachable")

    def text_or_action(self) -> Step[Any]:
        token = self.next_non_space()
        if token.typ == lx.TEXT:
            return TextNode(token.pos, token.val)
        if token.typ == lx.LEFT_DELIM:
            self.tree.action_line = token.line
            try:
                return (yield self.action())
            finally:
                self.tree.action_line = 0
        self.unexpected(token, "input")

    # -- actions --------------------------------------------------------

    def action(self) -> Step[Any]:
        token = self.next_non_space()
        typ = token.typ
        if typ == lx.BLOCK:
            return (yield self.block_control())
        if typ == lx.BREAK:
            return self.break_control(token, "{{break}}", BreakNode)
        if typ == lx.CONTINUE:
            return self.break_control(token, "{{continue}}", ContinueNode)
        if typ == lx.ELSE:
            return self.else_control()
        if typ == lx.END:
            return EndNode(self.expect(lx.RIGHT_DELIM, "end").pos)
        if typ == lx.IF:
            return IfNode(*(yield self.control("if")))
        if typ == lx.RANGE:
            return RangeNode(*(yield self.control("range")))
        if typ == lx.TEMPLATE:
            return (yield self.template_control())
        if typ == lx.WITH:
            return WithNode(*(yield self.control("with")))
        self.backup()
        token = self.peek()
        pipe = yield self.pipeline("command", lx.RIGHT_DELIM)
        field = None
        if not pipe.decl and len(pipe.cmds) == 1 and len(pipe.cmds[0].args) == 1:
            only = pipe.cmds[0].args[0]
            if type(only) is FieldNode:
                field = only
        return ActionNode(token.pos, token.line, pipe, field)

    def break_control(self, keyword: Token, name: str, node: Any) -> Any:
        token = self.next_non_space()
        if token.typ != lx.RIGHT_DELIM:
            self.unexpected(token, name)
        if self.tree.range_depth == 0:
            self.errorf(f"{name} outside {{{{range}}}}")
        return node(keyword.pos, keyword.line)

    def else_control(self) -> ElseNode:
        peek = self.peek_non_space()
        if peek.typ in (lx.IF, lx.WITH):
            return ElseNode(peek.pos, peek.line)
        token = self.expect(lx.RIGHT_DELIM, "else")
        return ElseNode(token.pos, token.line)

    def control(self, context: str
                ) -> Step[tuple[int, int, PipeNode, ListNode, ListNode | None]]:
        tree = self.tree
        mark = len(tree.vars)
        try:
            pipe = yield self.pipeline(context, lx.RIGHT_DELIM)
            if context == "range":
                tree.range_depth += 1
            body, following = yield self.item_list()
            if context == "range":
                tree.range_depth -= 1
            else_list = None
            if type(following) is ElseNode:
                if context == "if" and self.peek().typ == lx.IF:
                    self.next()
                    chained = IfNode(*(yield self.control("if")))
                    else_list = ListNode(following.pos, (chained,))
                elif context == "with" and self.peek().typ == lx.WITH:
                    self.next()
                    chained = WithNode(*(yield self.control("with")))
                    else_list = ListNode(following.pos, (chained,))
                else:
                    else_list, following = yield self.item_list()
                    if type(following) is not EndNode:
                        self.errorf(f"expected end; found {following}")
            return pipe.pos, pipe.line, pipe, body, else_list
        finally:
            del tree.vars[mark:]

    def block_control(self) -> Step[TemplateNode]:
        context = "block clause"
        token = self.next_non_space()
        name = self.template_name(token, context)
        pipe = yield self.pipeline(context, lx.RIGHT_DELIM)

        def parse() -> Step[None]:
            root, end = yield self.item_list()
            if type(end) is not EndNode:
                self.errorf(f"unexpected {end} in {context}")
            self.add(name, root)

        yield self.in_new_tree(parse())
        return TemplateNode(token.pos, token.line, name, pipe)

    def template_control(self) -> Step[TemplateNode]:
        context = "template clause"
        token = self.next_non_space()
        name = self.template_name(token, context)
        pipe = None
        if self.next_non_space().typ != lx.RIGHT_DELIM:
            self.backup()
            pipe = yield self.pipeline(context, lx.RIGHT_DELIM)
        return TemplateNode(token.pos, token.line, name, pipe)

    def template_name(self, token: Token, context: str) -> str:
        if token.typ not in (lx.STRING, lx.RAW_STRING):
            self.unexpected(token, context)
        return self.unquote(token.val)

    def unquote(self, literal: str) -> str:
        try:
            return unquote(literal)
        except _Syntax as err:
            self.errorf(str(err))
            raise AssertionError("unreachable") from None

    # -- pipelines ------------------------------------------------------

    def pipeline(self, context: str, end: int) -> Step[PipeNode]:
        token = self.peek_non_space()
        decl: list[VariableNode] = []
        is_assign = False
        tree = self.tree
        while self.peek_non_space().typ == lx.VARIABLE:
            start = self.index
            variable = self.next()
            following = self.peek_non_space()
            if following.typ in (lx.ASSIGN, lx.DECLARE):
                is_assign = following.typ == lx.ASSIGN
                self.next_non_space()
                decl.append(VariableNode(variable.pos, (variable.val,)))
                tree.vars.append(variable.val)
                break
            if following.typ == lx.CHAR and following.val == ",":
                self.next_non_space()
                decl.append(VariableNode(variable.pos, (variable.val,)))
                tree.vars.append(variable.val)
                if context == "range" and len(decl) < 2:
                    if self.peek_non_space().typ in (lx.VARIABLE, lx.RIGHT_DELIM,
                                                     lx.RIGHT_PAREN):
                        continue
                    self.errorf("range can only initialize variables")
                self.errorf(f"too many declarations in {context}")
            self.index = start
            break
        cmds: list[CommandNode] = []
        while True:
            following = self.next_non_space()
            if following.typ == end:
                self.check_pipeline(cmds, context)
                return PipeNode(token.pos, token.line, is_assign, tuple(decl), tuple(cmds))
            if following.typ in _OPERAND_START:
                self.backup()
                cmds.append((yield self.command()))
                if len(cmds) > _MAX_PIPELINE_CMDS:
                    self.errorf("pipeline too long")
            else:
                self.unexpected(following, context)

    def check_pipeline(self, cmds: list[CommandNode], context: str) -> None:
        if not cmds:
            self.errorf(f"missing value for {context}")
        for stage, cmd in enumerate(cmds[1:], start=2):
            if isinstance(cmd.args[0], _NOT_EXECUTABLE):
                self.errorf(f"non executable command in pipeline stage {stage}")

    def command(self) -> Step[CommandNode]:
        pos = self.peek_non_space().pos
        args: list[Any] = []
        while True:
            self.peek_non_space()
            operand = yield self.operand()
            if operand is not None:
                args.append(operand)
            token = self.next()
            if token.typ == lx.SPACE:
                continue
            if token.typ in (lx.RIGHT_DELIM, lx.RIGHT_PAREN):
                self.backup()
            elif token.typ != lx.PIPE:
                self.unexpected(token, "operand")
            break
        if not args:
            self.errorf("empty command")
        return CommandNode(pos, tuple(args))

    def operand(self) -> Step[Any]:
        node = yield self.term()
        if node is None or self.peek().typ != lx.FIELD:
            return node
        pos = self.peek().pos
        fields: list[str] = []
        while self.peek().typ == lx.FIELD:
            fields.append(self.next().val[1:])
        kind = type(node)
        if kind is FieldNode:
            return FieldNode(pos, node.ident + tuple(fields))
        if kind is VariableNode:
            return VariableNode(pos, node.ident + tuple(fields))
        if isinstance(node, _NOT_EXECUTABLE):
            self.errorf(f"unexpected . after term {quote(str(node))}")
        return ChainNode(pos, node, tuple(fields))

    def term(self) -> Step[Any]:
        token = self.next_non_space()
        typ = token.typ
        if typ == lx.FIELD:
            return FieldNode(token.pos, tuple(token.val[1:].split(".")))
        if typ == lx.STRING or typ == lx.RAW_STRING:
            return StringNode(token.pos, token.val, self.unquote(token.val))
        if typ == lx.IDENTIFIER:
            if token.val not in self.functions:
                self.errorf(f"function {quote(token.val)} not defined")
            return IdentifierNode(token.pos, token.val)
        if typ == lx.DOT:
            return DotNode(token.pos)
        if typ == lx.VARIABLE:
            if token.val not in self.tree.vars:
                self.errorf(f"undefined variable {quote(token.val)}")
            return VariableNode(token.pos, (token.val,))
        if typ == lx.NIL:
            return NilNode(token.pos)
        if typ == lx.BOOL:
            return BoolNode(token.pos, token.val == "true")
        if typ in (lx.NUMBER, lx.CHAR_CONSTANT, lx.COMPLEX):
            try:
                return _number(token)
            except _Syntax as err:
                self.errorf(str(err))
        if typ == lx.LEFT_PAREN:
            if self.stack_depth >= _MAX_STACK_DEPTH:
                self.errorf("max expression depth exceeded")
            self.stack_depth += 1
            try:
                return (yield self.pipeline("parenthesized pipeline", lx.RIGHT_PAREN))
            finally:
                self.stack_depth -= 1
        self.backup()
        return None


def parse_trees(text: str, name: str, functions: Iterable[str]) -> dict[str, ListNode]:
    """Parse ``text`` as the template ``name``; returns every template it defines by name.

    ``functions`` are the names that may be called (builtins and added functions).
    """
    return _Parser(text, name, functions).parse()
