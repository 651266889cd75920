"""The parse tree: one small frozen class per construct, as Go's parse/node.go has.

``pos`` is the character offset where the node starts in the template text;
``str(node)`` gives the node back as Go prints it in execution errors
(``at <.schema>``). Lists of children are tuples. A node that holds others says
what it prints as ``parts()``, text and child nodes in order, which :func:`node_text`
joins without recursion: trees may nest far deeper than Python's stack.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlrunner.template.strconv import quote

_node = dataclass(frozen=True, slots=True, eq=False)


def node_text(node: Any) -> str:
    """``node`` printed as Go prints it, its children with it, whatever the depth."""
    out: list[str] = []
    pending: list[Any] = [node]
    while pending:
        item = pending.pop()
        if type(item) is str:
            out.append(item)
        elif hasattr(item, "parts"):
            pending.extend(reversed(item.parts()))
        else:
            out.append(str(item))
    return "".join(out)


class _Composite:
    """A node that prints the nodes it holds (see ``parts``)."""

    __slots__ = ()

    def parts(self) -> tuple[Any, ...]:
        raise NotImplementedError

    def __str__(self) -> str:
        return node_text(self)


@_node
class ListNode(_Composite):
    """A sequence of nodes."""

    pos: int
    nodes: tuple[Any, ...]

    def parts(self) -> tuple[Any, ...]:
        return self.nodes


@_node
class TextNode:
    """Plain text, written out as it is."""

    pos: int
    text: str

    def __str__(self) -> str:
        return self.text


@_node
class CommentNode:
    """A ``{{/* comment */}}`` (kept only for completeness; the lexer drops comments)."""

    pos: int
    text: str

    def __str__(self) -> str:
        return "{{" + self.text + "}}"


@_node
class VariableNode:
    """``$``, ``$x`` or ``$x.field.field``: the variable name and the fields after it."""

    pos: int
    ident: tuple[str, ...]

    def __str__(self) -> str:
        return ".".join(self.ident)


@_node
class CommandNode(_Composite):
    """One command of a pipeline: a function, field or value and its arguments."""

    pos: int
    args: tuple[Any, ...]

    def parts(self) -> tuple[Any, ...]:
        parts: list[Any] = []
        for arg in self.args:
            if parts:
                parts.append(" ")
            parts.extend(("(", arg, ")") if type(arg) is PipeNode else (arg,))
        return tuple(parts)


@_node
class PipeNode(_Composite):
    """A pipeline, with the variables it declares (``:=``) or assigns (``=``)."""

    pos: int
    line: int
    is_assign: bool
    decl: tuple[VariableNode, ...]
    cmds: tuple[CommandNode, ...]

    def parts(self) -> tuple[Any, ...]:
        parts: list[Any] = []
        if self.decl:
            parts.append(", ".join(str(var) for var in self.decl) + " := ")
        for index, cmd in enumerate(self.cmds):
            if index:
                parts.append(" | ")
            parts.append(cmd)
        return tuple(parts)


@_node
class ActionNode(_Composite):
    """An action that prints its pipeline's value (unless the pipeline declares variables).

    ``field`` is set when the pipeline is a lone field such as ``.schema`` or
    ``.a.b`` (the common case, which the evaluator takes a short way for).
    """

    pos: int
    line: int
    pipe: PipeNode
    field: Any = None

    def parts(self) -> tuple[Any, ...]:
        return ("{{", self.pipe, "}}")


@_node
class IdentifierNode:
    """A function name."""

    pos: int
    ident: str

    def __str__(self) -> str:
        return self.ident


@_node
class DotNode:
    """The cursor, ``.``."""

    pos: int

    def __str__(self) -> str:
        return "."


@_node
class NilNode:
    """The untyped ``nil`` constant."""

    pos: int

    def __str__(self) -> str:
        return "nil"


@_node
class FieldNode:
    """``.a`` or ``.a.b.c``: field names, without their dots."""

    pos: int
    ident: tuple[str, ...]

    def __str__(self) -> str:
        return "".join("." + name for name in self.ident)


@_node
class ChainNode(_Composite):
    """A term followed by fields: ``(index .m "k").x``."""

    pos: int
    node: Any
    field: tuple[str, ...]

    def parts(self) -> tuple[Any, ...]:
        head = ("(", self.node, ")") if type(self.node) is PipeNode else (self.node,)
        return (*head, "".join("." + name for name in self.field))


@_node
class BoolNode:
    """``true`` or ``false``."""

    pos: int
    value: bool

    def __str__(self) -> str:
        return "true" if self.value else "false"


@_node
class NumberNode:
    """A number constant: its text, and its value as Go's ideal-constant rules give it.

    ``value`` is a ``GoInt``, ``float`` or ``complex``; ``overflows`` is true for an
    integer too large for Go's ``int`` (an execution error, as in Go).
    """

    pos: int
    text: str
    value: Any
    overflows: bool = False

    def __str__(self) -> str:
        return self.text


@_node
class StringNode:
    """A string constant: as written (``quoted``) and after unquoting (``text``)."""

    pos: int
    quoted: str
    text: str

    def __str__(self) -> str:
        return self.quoted


@_node
class IfNode(_Composite):
    """``{{if pipeline}} list {{else}} else_list {{end}}``."""

    pos: int
    line: int
    pipe: PipeNode
    list: ListNode
    else_list: ListNode | None

    def parts(self) -> tuple[Any, ...]:
        return _branch("if", self)


@_node
class RangeNode(_Composite):
    """``{{range pipeline}} list {{else}} else_list {{end}}``."""

    pos: int
    line: int
    pipe: PipeNode
    list: ListNode
    else_list: ListNode | None

    def parts(self) -> tuple[Any, ...]:
        return _branch("range", self)


@_node
class WithNode(_Composite):
    """``{{with pipeline}} list {{else}} else_list {{end}}``."""

    pos: int
    line: int
    pipe: PipeNode
    list: ListNode
    else_list: ListNode | None

    def parts(self) -> tuple[Any, ...]:
        return _branch("with", self)


def _branch(name: str, node: IfNode | RangeNode | WithNode) -> tuple[Any, ...]:
    parts: tuple[Any, ...] = ("{{" + name + " ", node.pipe, "}}", node.list)
    if node.else_list is not None:
        parts += ("{{else}}", node.else_list)
    return (*parts, "{{end}}")


@_node
class TemplateNode(_Composite):
    """``{{template "name" pipeline}}`` (also what ``{{block}}`` leaves in place)."""

    pos: int
    line: int
    name: str
    pipe: PipeNode | None

    def parts(self) -> tuple[Any, ...]:
        if self.pipe is None:
            return ("{{template " + quote(self.name) + "}}",)
        return ("{{template " + quote(self.name) + " ", self.pipe, "}}")


@_node
class BreakNode:
    """``{{break}}``."""

    pos: int
    line: int

    def __str__(self) -> str:
        return "{{break}}"


@_node
class ContinueNode:
    """``{{continue}}``."""

    pos: int
    line: int

    def __str__(self) -> str:
        return "{{continue}}"


@_node
class EndNode:
    """An ``{{end}}``: seen by the parser only, never in a finished tree."""

    pos: int

    def __str__(self) -> str:
        return "{{end}}"


@_node
class ElseNode:
    """An ``{{else}}``: seen by the parser only, never in a finished tree."""

    pos: int
    line: int

    def __str__(self) -> str:
        return "{{else}}"


def is_empty_tree(node: Any) -> bool:
    """Go's ``IsEmptyTree``: nothing in the tree but space and comments."""
    if node is None:
        return True
    kind = type(node)
    if kind is ListNode:
        return all(is_empty_tree(child) for child in node.nodes)
    if kind is TextNode:
        return not node.text.strip(" \t\r\n\v\f\x85\xa0")
    return kind is CommentNode
