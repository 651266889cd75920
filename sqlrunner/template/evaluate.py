"""Executes a parsed template against data, as Go's text/template exec.go does.

The executor walks the tree with a stack of variables and the data dot, and
keeps, like Go's ``state.at``, the node it is on, so that errors name the same
``LINE:COL`` and ``<context>`` as Go's. The one deliberate difference is
:class:`MissingKey`: a missing map key stays Go's empty value wherever it is
tested or passed on, and only printing it into the output is an error (in the
default ``ERROR`` mode) or ``<no value>`` (``NOVALUE``, Go's default).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from sqlrunner.errors import TemplateError
from sqlrunner.template import builtins as fn
from sqlrunner.template.fmt import format_value
from sqlrunner.template.nodes import (
    ActionNode,
    BoolNode,
    BreakNode,
    ChainNode,
    CommentNode,
    ContinueNode,
    DotNode,
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
)
from sqlrunner.template.sourcemap import SourceMap, build_source_map
from sqlrunner.template.strconv import format_float, quote
from sqlrunner.template.trampoline import Step, run
from sqlrunner.template.values import (
    NO_VALUE,
    GoInt,
    GoUint8,
    Missing,
    is_invalid,
    is_true,
    sorted_keys,
    type_name,
)

# Go's maxExecDepth: how deep {{template}} calls may nest (only a template that calls
# itself without end gets there). Reaching it costs about 2 KB a level here.
MAX_TEMPLATE_DEPTH = 100000


class MissingKey(enum.Enum):
    """What printing the value of a missing map key does.

    ``ERROR`` (the default here) stops with Go's ``missingkey=error`` message,
    naming the key and where it was looked up; ``NOVALUE`` prints ``<no value>``
    as Go does by default; ``ZERO`` gives the key Go's zero value, which for
    ``map[string]interface{}`` data is nil (so it too prints ``<no value>``, and
    a field of it is an error). In every mode a missing key is simply empty
    where it is tested or passed to a function: ``{{if .x}}``, ``{{or .x 30}}``.
    """

    ERROR = "error"
    NOVALUE = "default"
    ZERO = "zero"

    @classmethod
    def from_option(cls, option: str) -> MissingKey:
        """The mode ``--template-missing`` names: ``error``, or ``novalue`` (Go's default)."""
        return cls.NOVALUE if option == "novalue" else cls.ERROR


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _NoFinal:
    """No value piped in from a previous command (Go's ``missingVal``)."""

    __slots__ = ()


_NO_FINAL = _NoFinal()
_ABSENT = object()


def position(text: str, pos: int) -> tuple[int, int]:
    """Line (1-based) and column of character offset ``pos``, as Go's ``ErrorContext``.

    The column is the number of bytes before ``pos`` on its line, which is what Go
    prints.
    """
    before = text[:pos]
    start = before.rfind("\n") + 1
    column = before[start:]
    return before.count("\n") + 1, len(column) if column.isascii() else len(
        column.encode("utf-8", "surrogateescape"))


class State:
    """One execution: the output, the variable stack and the node being evaluated."""

    __slots__ = ("trees", "text", "parse_name", "funcs", "missing", "out", "vars", "node",
                 "name", "depth", "dot_elem")

    def __init__(self, trees: Mapping[str, ListNode], text: str, parse_name: str,
                 funcs: Mapping[str, fn.Function], missing: MissingKey) -> None:
        self.trees = trees
        self.text = text
        self.parse_name = parse_name
        self.funcs = funcs
        self.missing = missing
        self.out: list[str] = []
        self.vars: list[tuple[str, Any, bool]] = []
        self.node: Any = None
        self.name = parse_name
        self.depth = 0
        self.dot_elem = False  # is dot an element taken from a list or map (a Go interface)?

    def execute(self, name: str, data: Any) -> str:
        """Execute the template ``name`` with ``data`` as dot and ``$``."""
        root = self.trees.get(name)
        self.name = name
        if root is None:
            self.errorf(f"{quote(name)} is an incomplete or empty template")
        if data is None:
            data = NO_VALUE
        self.vars = [("$", data, False)]
        run(self.walk(data, root))
        return "".join(self.out)

    # -- errors ---------------------------------------------------------

    def error_at(self, node: Any, template: str, message: str) -> TemplateError:
        if node is None:
            return TemplateError(message, file=template)
        line, column = position(self.text, node.pos)
        return TemplateError(f"executing {quote(template)} at <{node}>: {message}",
                             file=self.parse_name, line=line, column=column)

    def errorf(self, message: str) -> None:
        raise self.error_at(self.node, self.name, message)

    # -- variables ------------------------------------------------------

    def var_value(self, name: str) -> tuple[str, Any, bool]:
        for entry in reversed(self.vars):
            if entry[0] == name:
                return entry
        self.errorf(f"undefined variable: {name}")
        raise AssertionError("unreachable")

    def set_var(self, name: str, value: Any, elem: bool = False) -> None:
        variables = self.vars
        for position_ in range(len(variables) - 1, -1, -1):
            if variables[position_][0] == name:
                variables[position_] = (name, value, elem)
                return
        self.errorf(f"undefined variable: {name}")

    # -- walking --------------------------------------------------------
    # Every method that can lead back to itself (through nested actions, parenthesized
    # pipelines or template calls) is a generator run by the trampoline (trampoline.py):
    # ``yield self.f(...)`` is a call of ``f``, so nesting is not bound by Python's stack.


    def walk(self, dot: Any, node: Any) -> Step[None]:
        self.node = node
        kind = type(node)
        if kind is ListNode:
            yield self.walk_list(dot, node)
        elif kind is ActionNode:
            yield self.walk_action(dot, node)
        elif kind is TextNode:
            self.out.append(node.text)
        elif kind is IfNode:
            yield self.walk_if_or_with(dot, node, False)
        elif kind is RangeNode:
            yield self.walk_range(dot, node)
        elif kind is WithNode:
            yield self.walk_if_or_with(dot, node, True)
        elif kind is TemplateNode:
            yield self.walk_template(dot, node)
        elif kind is BreakNode:
            raise _Break
        elif kind is ContinueNode:
            raise _Continue
        elif kind is not CommentNode:
            self.errorf(f"unknown node: {node}")

    def walk_list(self, dot: Any, node: ListNode) -> Step[None]:
        append = self.out.append
        walk = self.walk
        for child in node.nodes:
            kind = type(child)
            if kind is TextNode:
                append(child.text)
            elif kind is ActionNode and child.field is not None and type(dot) is dict:
                self.node = child
                value = self.field_value(dot, child.field)
                self.print_value(child, value)
            else:
                yield walk(dot, child)

    def field_value(self, dot: dict[str, Any], field: FieldNode) -> Any:
        """A lone ``.a.b`` on a map dot: the short way through ``eval_field_chain``."""
        self.node = field
        names = field.ident
        if len(names) == 1:
            value = dot.get(names[0], _ABSENT)
            if value is not _ABSENT:
                return NO_VALUE if value is None else value
        value = self.eval_field_chain(dot, self.dot_elem, names, None, _NO_FINAL)
        return NO_VALUE if value is None else value

    def walk_action(self, dot: Any, node: ActionNode) -> Step[None]:
        pipe = node.pipe
        value = yield self.eval_pipeline(dot, pipe)
        if not pipe.decl:
            self.print_value(node, value)

    def print_value(self, node: Any, value: Any) -> None:
        self.node = node
        kind = type(value)
        if kind is str:
            self.out.append(value)
        elif value is NO_VALUE or value is None:
            self.out.append("<no value>")
        elif kind is Missing:
            if self.missing is MissingKey.ERROR:
                raise self.error_at(value.node, value.template, value.message)
            self.out.append("<no value>")
        elif kind is bool:
            self.out.append("true" if value else "false")
        elif kind is float:
            self.out.append(format_float(value))
        elif kind is int or kind is GoInt or kind is GoUint8:
            self.out.append(int.__repr__(value))
        else:
            self.out.append(format_value(value))

    def walk_if_or_with(self, dot: Any, node: IfNode | WithNode, is_with: bool) -> Step[None]:
        variables = self.vars
        mark = len(variables)
        value = yield self.eval_pipeline(dot, node.pipe)
        if is_true(value):
            if is_with:
                elem = self.dot_elem
                self.dot_elem = False
                yield self.walk(value, node.list)
                self.dot_elem = elem
            else:
                yield self.walk(dot, node.list)
        elif node.else_list is not None:
            yield self.walk(dot, node.else_list)
        del variables[mark:]

    def walk_range(self, dot: Any, node: RangeNode) -> Step[None]:
        self.node = node
        variables = self.vars
        outer_mark = len(variables)
        value = yield self.eval_pipeline(dot, node.pipe)
        mark = len(variables)
        pipe = node.pipe
        decl = pipe.decl
        kind = type(value)
        elements_are_interfaces = True
        if kind is list or kind is tuple or isinstance(value, list | tuple):
            items: Any = ((GoInt(i), item) for i, item in enumerate(value))
        elif kind is dict or isinstance(value, Mapping):
            items = ((key, value[key]) for key in sorted_keys(dict(value)))
        elif isinstance(value, int) and kind is not bool:
            if len(decl) > 1:
                self.errorf(f"can't use {format_value(value)} to iterate over more than one "
                            "variable")
            items = ((NO_VALUE, kind(i)) for i in range(value))
            elements_are_interfaces = False
        elif is_invalid(value):
            items = ()
        else:
            self.errorf(f"range can't iterate over {format_value(value)}")
        ran = False
        saved_elem = self.dot_elem
        try:
            for key, item in items:
                ran = True
                if decl:
                    if pipe.is_assign:
                        if len(decl) > 1:
                            self.set_var(decl[0].ident[0], key)
                            self.set_var(decl[1].ident[0], item, elements_are_interfaces)
                        else:
                            self.set_var(decl[0].ident[0], item, elements_are_interfaces)
                    else:
                        top = variables[-1]
                        variables[-1] = (top[0], item, elements_are_interfaces)
                        if len(decl) > 1:
                            below = variables[-2]
                            variables[-2] = (below[0], key, False)
                self.dot_elem = elements_are_interfaces
                try:
                    yield self.walk(item, node.list)
                except _Continue:
                    pass
                except _Break:
                    del variables[mark:]
                    break
                del variables[mark:]
        finally:
            self.dot_elem = saved_elem
        if not ran and node.else_list is not None:
            yield self.walk(dot, node.else_list)
        del variables[outer_mark:]

    def walk_template(self, dot: Any, node: TemplateNode) -> Step[None]:
        self.node = node
        root = self.trees.get(node.name)
        if root is None:
            self.errorf(f"template {quote(node.name)} not defined")
        if self.depth >= MAX_TEMPLATE_DEPTH:
            self.errorf(f"exceeded maximum template depth ({MAX_TEMPLATE_DEPTH})")
        dot = yield self.eval_pipeline(dot, node.pipe)
        saved = (self.vars, self.name, self.dot_elem)
        self.vars = [("$", dot, False)]
        self.name = node.name
        self.dot_elem = False
        self.depth += 1
        try:
            yield self.walk(dot, root)
        finally:
            self.vars, self.name, self.dot_elem = saved
            self.depth -= 1

    # -- evaluation -----------------------------------------------------

    def eval_pipeline(self, dot: Any, pipe: PipeNode | None) -> Step[Any]:
        if pipe is None:
            return NO_VALUE
        self.node = pipe
        value: Any = _NO_FINAL
        for cmd in pipe.cmds:
            value = yield self.eval_command(dot, cmd, value)
            if value is None:  # a nil interface unwraps to no value
                value = NO_VALUE
        for variable in pipe.decl:
            if pipe.is_assign:
                self.set_var(variable.ident[0], value)
            else:
                self.vars.append((variable.ident[0], value, False))
        return value

    def not_a_function(self, args: tuple[Any, ...], final: Any) -> None:
        if len(args) > 1 or final is not _NO_FINAL:
            self.errorf(f"can't give argument to non-function {args[0]}")

    def eval_command(self, dot: Any, cmd: Any, final: Any) -> Step[Any]:
        first = cmd.args[0]
        kind = type(first)
        if kind is FieldNode:
            self.node = first
            return self.eval_field_chain(dot, self.dot_elem, first.ident, cmd.args,
                                         final)
        if kind is IdentifierNode:
            return (yield self.eval_function(dot, first, cmd, cmd.args, final))
        if kind is VariableNode:
            return self.eval_variable(dot, first, cmd.args, final)
        if kind is ChainNode:
            return (yield self.eval_chain(dot, first, cmd.args, final))
        if kind is PipeNode:
            self.not_a_function(cmd.args, final)
            return (yield self.eval_pipeline(dot, first))
        self.node = first
        self.not_a_function(cmd.args, final)
        if kind is StringNode:
            return first.text
        if kind is NumberNode:
            return self.ideal_constant(first)
        if kind is BoolNode:
            return first.value
        if kind is DotNode:
            return dot
        if kind is NilNode:
            self.errorf("nil is not a command")
        self.errorf(f"can't evaluate command {quote(str(first))}")

    def ideal_constant(self, node: NumberNode) -> Any:
        self.node = node
        if node.overflows:
            self.errorf(f"{node.text} overflows int")
        return node.value

    def eval_variable(self, dot: Any, node: VariableNode, args: tuple[Any, ...] | None,
                      final: Any) -> Any:
        self.node = node
        _, value, elem = self.var_value(node.ident[0])
        if len(node.ident) == 1:
            self.not_a_function(args or (node,), final)
            return value
        return self.eval_field_chain(value, elem, node.ident[1:], args, final)

    def eval_chain(self, dot: Any, node: ChainNode, args: tuple[Any, ...] | None,
                   final: Any) -> Step[Any]:
        self.node = node
        if type(node.node) is NilNode:
            self.errorf(f"indirection through explicit nil in {node}")
        receiver = yield self.eval_arg(dot, None, node.node)
        elem = type(node.node) is IdentifierNode
        return self.eval_field_chain(receiver, elem, node.field, args, final)

    def eval_field_chain(self, receiver: Any, elem: bool, names: tuple[str, ...],
                         args: tuple[Any, ...] | None, final: Any) -> Any:
        last = len(names) - 1
        for position_ in range(last):
            receiver = self.eval_field(names[position_], None, _NO_FINAL, receiver, elem)
            elem = True
        return self.eval_field(names[last], args, final, receiver, elem)

    def eval_field(self, name: str, args: tuple[Any, ...] | None, final: Any, receiver: Any,
                   elem: bool) -> Any:
        if type(receiver) is dict or isinstance(receiver, Mapping):
            if (args is not None and len(args) > 1) or final is not _NO_FINAL:
                self.errorf(f"{name} is not a method but has arguments")
            value = receiver.get(name, _ABSENT)
            if value is not _ABSENT:
                return value
            if self.missing is MissingKey.ZERO:
                return None
            return Missing(name, self.node, self.name)
        if type(receiver) is Missing:
            return receiver
        if receiver is NO_VALUE:
            return Missing(name, self.node, self.name, nil_data=True)
        if receiver is None:
            self.errorf(f"nil pointer evaluating interface {{}}.{name}")
        where = "interface {}" if elem else type_name(receiver)
        self.errorf(f"can't evaluate field {name} in type {where}")

    def eval_function(self, dot: Any, node: IdentifierNode, cmd: Any,
                      args: tuple[Any, ...] | None, final: Any) -> Step[Any]:
        self.node = node
        name = node.ident
        function = self.funcs.get(name)
        if function is None:
            self.errorf(f"{quote(name)} is not a defined function")
        return (yield self.eval_call(dot, function, cmd, name, args, final))

    def eval_call(self, dot: Any, function: fn.Function, node: Any, name: str,
                  args: tuple[Any, ...] | None, final: Any) -> Step[Any]:
        args = args[1:] if args is not None else ()
        has_final = final is not _NO_FINAL
        count = len(args) + has_final
        fixed = function.fixed
        if function.variadic is not None:
            if count < len(fixed):
                self.errorf(f"wrong number of args for {name}: want at least {len(fixed)} "
                            f"got {len(args)}")
            if function.max_args is not None and count > function.max_args:
                self.errorf(f"wrong number of args for {name}: want {function.max_args} "
                            f"got {count}")
        elif count != len(fixed):
            self.errorf(f"wrong number of args for {name}: want {len(fixed)} got {count}")

        if function.builtin and (name == "and" or name == "or"):
            want = name == "or"
            value: Any = NO_VALUE
            for arg in args:
                value = yield self.eval_arg(dot, fn.VALUE, arg)
                if is_true(value) == want:
                    return value
            if has_final:
                value = final
            return value

        variadic = function.variadic
        argv = []
        for position_, arg in enumerate(args):
            kind = fixed[position_] if position_ < len(fixed) else variadic
            argv.append((yield self.eval_arg(dot, kind, arg)))
        if has_final:
            kind = fixed[count - 1] if count - 1 < len(fixed) else variadic
            argv.append(self.validate_type(final, kind))

        try:
            if function.builtin and name == "call":
                callee = str(args[0]) if args else "call"
                return fn.call(*argv, name=callee)
            return function.fn(*argv)
        except TemplateError:
            raise
        except Exception as err:  # a function's error ends execution, as in Go
            self.node = node
            self.errorf(f"error calling {name}: {err}")

    def validate_type(self, value: Any, kind: str | None) -> Any:
        if kind is fn.VALUE:
            return value
        invalid = value is NO_VALUE or type(value) is Missing
        if kind is fn.STRING:
            if type(value) is str or isinstance(value, str):
                return value
            if invalid:
                self.errorf("invalid value; expected string")
            got = "interface {}" if value is None else type_name(value)
            self.errorf(f"wrong type for value; expected string; got {got}")
        if kind is None:  # a chain's receiver: taken as it is
            return value
        return None if invalid else value

    def eval_arg(self, dot: Any, kind: str | None, node: Any) -> Step[Any]:
        self.node = node
        node_kind = type(node)
        if node_kind is FieldNode:
            value = self.eval_field_chain(dot, self.dot_elem, node.ident, (node,),
                                          _NO_FINAL)
            return self.validate_type(value, kind)
        if node_kind is VariableNode:
            return self.validate_type(self.eval_variable(dot, node, None, _NO_FINAL), kind)
        if node_kind is DotNode:
            return self.validate_type(dot, kind)
        if node_kind is PipeNode:
            return self.validate_type((yield self.eval_pipeline(dot, node)), kind)
        if node_kind is IdentifierNode:
            return self.validate_type(
                (yield self.eval_function(dot, node, node, None, _NO_FINAL)), kind)
        if node_kind is ChainNode:
            return self.validate_type((yield self.eval_chain(dot, node, None, _NO_FINAL)), kind)
        if node_kind is NilNode:
            if kind is fn.STRING:
                self.errorf("cannot assign nil to string")
            return NO_VALUE if kind is fn.VALUE else None
        if kind is fn.STRING:
            if node_kind is StringNode:
                return node.text
            self.errorf(f"expected string; found {node}")
        if node_kind is StringNode:
            return node.text
        if node_kind is NumberNode:
            return self.ideal_constant(node)
        if node_kind is BoolNode:
            return node.value
        self.errorf(f"can't handle assignment of {node} to empty interface argument")


def execute(trees: Mapping[str, ListNode], text: str, parse_name: str, name: str, data: Any,
            funcs: Mapping[str, fn.Function], missing: MissingKey) -> str:
    """Execute template ``name`` of ``trees`` (parsed from ``text``) with ``data``."""
    return State(trees, text, parse_name, funcs, missing).execute(name, data)


class MappedState(State):
    """An execution that also records where each piece of its output came from.

    It walks exactly as :class:`State` does (the plain executor is left
    untouched, so ``execute`` pays nothing for this); ``origins`` runs parallel to
    ``out``: the source offset of a text node's text, or ``~start`` for what an
    action printed, ``start`` being the offset of the action's ``{{``.
    """

    __slots__ = ("origins", "action_starts")

    def __init__(self, trees: Mapping[str, ListNode], text: str, parse_name: str,
                 funcs: Mapping[str, fn.Function], missing: MissingKey) -> None:
        super().__init__(trees, text, parse_name, funcs, missing)
        self.origins: list[int] = []
        self.action_starts: dict[int, int] = {}

    def execute_mapped(self, name: str, data: Any) -> tuple[str, SourceMap]:
        """Execute the template ``name``; the output and its :class:`SourceMap`."""
        rendered = self.execute(name, data)
        return rendered, build_source_map(self.out, self.origins)

    def action_start(self, node: Any) -> int:
        """The offset of the ``{{`` that opens the action ``node`` (which starts after it).

        Between the delimiter and the action's first token there is only space
        and a trim marker, so the nearest ``{{`` before the node is its own.
        """
        start = self.action_starts.get(node.pos)
        if start is None:
            start = self.text.rfind("{{", 0, node.pos)
            self.action_starts[node.pos] = start = start if start >= 0 else node.pos
        return start

    def walk(self, dot: Any, node: Any) -> Step[None]:
        if type(node) is TextNode:
            self.node = node
            self.out.append(node.text)
            self.origins.append(node.pos)
        else:
            yield State.walk(self, dot, node)

    def walk_list(self, dot: Any, node: ListNode) -> Step[None]:
        append = self.out.append
        record = self.origins.append
        walk = self.walk
        for child in node.nodes:
            kind = type(child)
            if kind is TextNode:
                append(child.text)
                record(child.pos)
            elif kind is ActionNode and child.field is not None and type(dot) is dict:
                self.node = child
                value = self.field_value(dot, child.field)
                self.print_value(child, value)
            else:
                yield walk(dot, child)

    def print_value(self, node: Any, value: Any) -> None:
        State.print_value(self, node, value)
        self.origins.append(~self.action_start(node))


def execute_mapped(trees: Mapping[str, ListNode], text: str, parse_name: str, name: str,
                   data: Any, funcs: Mapping[str, fn.Function],
                   missing: MissingKey) -> tuple[str, SourceMap]:
    """As :func:`execute`, with the :class:`SourceMap` of the output."""
    return MappedState(trees, text, parse_name, funcs, missing).execute_mapped(name, data)
