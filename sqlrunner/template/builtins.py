"""Go's template builtins (and, or, not, len, index, slice, print, printf, println, eq, ne,
lt, le, gt, ge, html, js, urlquery, call) with the argument rules and errors of funcs.go.

A function's parameters come in three kinds, as in Go: ``VALUE`` parameters
(Go's ``reflect.Value``) receive values as they are, invalid ones included;
``ANY`` parameters (``interface{}``) receive ``None`` for an invalid value;
``STRING`` parameters must be given a string. Functions added by callers take
``ANY`` parameters. A builtin reports a failure by raising :class:`FuncError`,
which execution turns into Go's ``error calling NAME: ...``.
"""

from __future__ import annotations

import functools
import inspect
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlrunner.template import fmt
from sqlrunner.template.strconv import quote
from sqlrunner.template.values import (
    BOOL_KIND,
    COMPLEX_KIND,
    INT_KIND,
    INVALID_KIND,
    UINT_KIND,
    GoInt,
    GoUint8,
    basic_kind,
    indirect_interface,
    is_invalid,
    is_true,
    reflect_kind,
    type_name,
)

VALUE = "reflect.Value"
ANY = "interface {}"
STRING = "string"


class FuncError(Exception):
    """A builtin's error value; the message is Go's."""


@dataclass(frozen=True, slots=True)
class Function:
    """A callable with the parameter kinds that execution checks and converts arguments by.

    ``fixed`` are the kinds of the fixed parameters; ``variadic`` the kind of the
    ``...`` ones (None when there are none); ``max_args`` caps the count for a
    Python function with defaults.
    """

    fn: Callable[..., Any]
    fixed: tuple[str, ...]
    variadic: str | None = None
    max_args: int | None = None
    builtin: bool = False


# ---------------------------------------------------------------------------
# Indexing, slicing, length


def _index_arg(index: Any, size: int) -> int:
    if isinstance(index, int) and not isinstance(index, bool):
        position = int(index)
    elif is_invalid(index):
        raise FuncError("cannot index slice/array with nil")
    else:
        raise FuncError(f"cannot index slice/array with type {type_name(index)}")
    if position < 0 or position > size:
        raise FuncError(f"index out of range: {position}")
    return position


def _map_key(index: Any) -> Any:
    if is_invalid(index):
        raise FuncError("value is nil; should be of type string")
    if not isinstance(index, str):
        raise FuncError(f"value has type {type_name(index)}; should be string")
    return index


def index(item: Any, *indexes: Any) -> Any:
    """``index x 1 2`` is ``x[1][2]``; a missing map key gives the zero value (nil)."""
    item = indirect_interface(item)
    if is_invalid(item):
        raise FuncError("index of untyped nil")
    for position in indexes:
        position = indirect_interface(position)
        if item is None:
            raise FuncError("index of nil pointer")
        if isinstance(item, (list, tuple)):
            offset = _index_arg(position, len(item))
            if offset == len(item):
                raise FuncError("reflect: slice index out of range")
            item = item[offset]
        elif isinstance(item, dict):
            item = item.get(_map_key(position))
        elif isinstance(item, str):
            data = item.encode("utf-8", "surrogateescape")
            offset = _index_arg(position, len(data))
            if offset == len(data):
                raise FuncError("reflect: string index out of range")
            item = GoUint8(data[offset])
        else:
            raise FuncError(f"can't index item of type {type_name(item)}")
    return item


def slice_(item: Any, *indexes: Any) -> Any:
    """``slice x 1 2`` is ``x[1:2]``; strings are sliced by bytes, as in Go."""
    item = indirect_interface(item)
    if is_invalid(item):
        raise FuncError("slice of untyped nil")
    if len(indexes) > 3:
        raise FuncError(f"too many slice indexes: {len(indexes)}")
    if isinstance(item, str):
        if len(indexes) == 3:
            raise FuncError("cannot 3-index slice a string")
        data = item.encode("utf-8", "surrogateescape")
        size = len(data)
    elif isinstance(item, (list, tuple)):
        data = item
        size = len(item)
    else:
        raise FuncError(f"can't slice item of type {type_name(item)}")
    bounds = [0, size, 0]
    for position, value in enumerate(indexes):
        bounds[position] = _index_arg(indirect_interface(value), size)
    if bounds[0] > bounds[1]:
        raise FuncError(f"invalid slice index: {bounds[0]} > {bounds[1]}")
    if len(indexes) == 3 and bounds[1] > bounds[2]:
        raise FuncError(f"invalid slice index: {bounds[1]} > {bounds[2]}")
    part = data[bounds[0]:bounds[1]]
    if isinstance(part, bytes):
        return part.decode("utf-8", "surrogateescape")
    return list(part)


def length(item: Any) -> GoInt:
    """``len``: bytes of a string, elements of a list or map."""
    if item is None:
        raise FuncError("len of nil pointer")
    if is_invalid(item):
        raise FuncError("reflect: call of reflect.Value.Type on zero Value")
    if isinstance(item, str):
        return GoInt(len(item) if item.isascii() else len(item.encode("utf-8", "surrogateescape")))
    if isinstance(item, (list, tuple, dict)):
        return GoInt(len(item))
    raise FuncError(f"len of type {type_name(item)}")


# ---------------------------------------------------------------------------
# Logic and comparison


def truth(value: Any) -> bool:
    """Go's ``truth``: what ``if``, ``and``, ``or`` and ``not`` test."""
    return is_true(value)


def not_(value: Any) -> bool:
    """``not``: the negation of the argument's truth."""
    return not is_true(value)


def _comparable_kinds(left: Any, right: Any) -> bool:
    kind_left, kind_right = reflect_kind(left), reflect_kind(right)
    return kind_left == kind_right or "invalid" in (kind_left, kind_right)


def _is_nil(value: Any) -> bool:
    return value is None or is_invalid(value)


def eq(arg1: Any, *others: Any) -> bool:
    """``eq a b c`` is ``a == b || a == c``; integers compare across signedness."""
    arg1 = indirect_interface(arg1)
    if not others:
        raise FuncError("missing argument for comparison")
    kind1 = basic_kind(arg1)
    for other in others:
        other = indirect_interface(other)
        kind2 = basic_kind(other)
        if kind1 != kind2:
            if {kind1, kind2} == {INT_KIND, UINT_KIND}:
                same = arg1 == other
            elif not is_invalid(arg1) and not is_invalid(other):
                raise FuncError("incompatible types for comparison: "
                                f"{type_name(arg1)} and {type_name(other)}")
            else:
                same = False
        elif kind1 != INVALID_KIND:
            same = arg1 == other
        else:
            if not _comparable_kinds(arg1, other):
                raise FuncError(f"non-comparable types {fmt.sprintf('%s', [arg1])}: "
                                f"{type_name(arg1)}, {type_name(other)}: "
                                f"{fmt.format_value(other)}")
            if _is_nil(arg1) or _is_nil(other):
                same = _is_nil(arg1) == _is_nil(other)
            else:
                if isinstance(other, (list, tuple, dict)):
                    raise FuncError(f"non-comparable type {fmt.sprintf('%s', [other])}: "
                                    f"{type_name(other)}")
                same = type(arg1) is type(other) and arg1 == other
        if same:
            return True
    return False


def ne(arg1: Any, arg2: Any) -> bool:
    """``ne``: not ``eq``."""
    return not eq(arg1, arg2)


def lt(arg1: Any, arg2: Any) -> bool:
    """``lt``: ``arg1 < arg2`` for two values of one basic kind (integers mix)."""
    arg1 = indirect_interface(arg1)
    kind1 = basic_kind(arg1)
    if kind1 == INVALID_KIND:
        raise FuncError("invalid type for comparison")
    arg2 = indirect_interface(arg2)
    kind2 = basic_kind(arg2)
    if kind2 == INVALID_KIND:
        raise FuncError("invalid type for comparison")
    if kind1 != kind2:
        if {kind1, kind2} == {INT_KIND, UINT_KIND}:
            return arg1 < arg2
        raise FuncError(
            f"incompatible types for comparison: {type_name(arg1)} and {type_name(arg2)}")
    if kind1 in (BOOL_KIND, COMPLEX_KIND):
        raise FuncError("invalid type for comparison")
    return arg1 < arg2


def le(arg1: Any, arg2: Any) -> bool:
    """``le``: ``lt`` or ``eq``."""
    return lt(arg1, arg2) or eq(arg1, arg2)


def gt(arg1: Any, arg2: Any) -> bool:
    """``gt``: not ``le``."""
    return not le(arg1, arg2)


def ge(arg1: Any, arg2: Any) -> bool:
    """``ge``: not ``lt``."""
    return not lt(arg1, arg2)


# ---------------------------------------------------------------------------
# Printing and escaping


def sprint(*args: Any) -> str:
    """``print``: Go's ``fmt.Sprint``."""
    return fmt.sprint(args)


def sprintf(format: str, *args: Any) -> str:
    """``printf``: Go's ``fmt.Sprintf``."""
    return fmt.sprintf(format, args)


def sprintln(*args: Any) -> str:
    """``println``: Go's ``fmt.Sprintln``."""
    return fmt.sprintln(args)


def _eval_args(args: tuple[Any, ...]) -> str:
    if len(args) == 1 and type(args[0]) is str:
        return args[0]
    return fmt.sprint(["<no value>" if arg is None else arg for arg in args])


_HTML = {"\0": "\ufffd", '"': "&#34;", "'": "&#39;", "&": "&amp;", "<": "&lt;", ">": "&gt;"}
_HTML_TABLE = str.maketrans(_HTML)


def html(*args: Any) -> str:
    """``html``: the arguments' text with ``"'&<>`` and NUL escaped for HTML."""
    return _eval_args(args).translate(_HTML_TABLE)


_JS = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E", "&": "\\u0026",
       "=": "\\u003D"}


def js(*args: Any) -> str:
    """``js``: the arguments' text escaped for a JavaScript string."""
    text = _eval_args(args)
    out = []
    for ch in text:
        code = ord(ch)
        special = _JS.get(ch)
        if special is not None:
            out.append(special)
        elif code < 0x20:
            out.append(f"\\u00{code:02X}")
        elif code < 0x80 or ch.isprintable():
            out.append(ch)
        else:
            out.append(f"\\u{code:04X}")
    return "".join(out)


def urlquery(*args: Any) -> str:
    """``urlquery``: the arguments' text escaped for a URL query (Go's ``url.QueryEscape``)."""
    return urllib.parse.quote_plus(_eval_args(args), safe="", errors="surrogateescape")


def _unreachable(*args: Any) -> Any:  # pragma: no cover - and/or/call are evaluated specially
    raise AssertionError("evaluated by the executor")


BUILTINS: Mapping[str, Function] = {
    "and": Function(_unreachable, (VALUE,), VALUE, builtin=True),
    "or": Function(_unreachable, (VALUE,), VALUE, builtin=True),
    "call": Function(_unreachable, (VALUE,), VALUE, builtin=True),
    "not": Function(not_, (VALUE,), builtin=True),
    "len": Function(length, (VALUE,), builtin=True),
    "index": Function(index, (VALUE,), VALUE, builtin=True),
    "slice": Function(slice_, (VALUE,), VALUE, builtin=True),
    "print": Function(sprint, (), ANY, builtin=True),
    "printf": Function(sprintf, (STRING,), ANY, builtin=True),
    "println": Function(sprintln, (), ANY, builtin=True),
    "html": Function(html, (), ANY, builtin=True),
    "js": Function(js, (), ANY, builtin=True),
    "urlquery": Function(urlquery, (), ANY, builtin=True),
    "eq": Function(eq, (VALUE,), VALUE, builtin=True),
    "ne": Function(ne, (VALUE, VALUE), builtin=True),
    "lt": Function(lt, (VALUE, VALUE), builtin=True),
    "le": Function(le, (VALUE, VALUE), builtin=True),
    "gt": Function(gt, (VALUE, VALUE), builtin=True),
    "ge": Function(ge, (VALUE, VALUE), builtin=True),
}


def call(function: Any, *args: Any, name: str = "call") -> Any:
    """``call fn a b``: call a function held in the data."""
    function = indirect_interface(function)
    if is_invalid(function):
        raise FuncError("call of nil")
    if not callable(function):
        raise FuncError(f"non-function {name} of type {type_name(function)}")
    return function(*(None if is_invalid(arg) else arg for arg in args))


def _good_name(name: str) -> bool:
    if not name:
        return False
    for position, ch in enumerate(name):
        if ch == "_":
            continue
        if position == 0 and not ch.isalpha():
            return False
        if not ch.isalpha() and not ch.isdigit():
            return False
    return True


def added_function(name: str, fn: Callable[..., Any]) -> Function:
    """The ``Function`` for a caller's Python callable, its arity read from its signature."""
    if not _good_name(name):
        raise ValueError(f"function name {quote(name)} is not a valid identifier")
    if not callable(fn):
        raise ValueError(f"value for {name} not a function")
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return Function(fn, (), ANY)
    positional = [p for p in parameters
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = sum(1 for p in positional if p.default is p.empty)
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):
        return Function(fn, (ANY,) * required, ANY)
    if required == len(positional):
        return Function(fn, (ANY,) * required)
    return Function(fn, (ANY,) * required, ANY, max_args=len(positional))


def function_table(funcs: Mapping[str, Callable[..., Any]] | None) -> dict[str, Function]:
    """The builtins, overridden and extended by ``funcs`` (as Go's FuncMap does)."""
    table = dict(BUILTINS)
    for name, fn in (funcs or {}).items():
        try:
            table[name] = _added_once(name, fn)
        except TypeError:  # an unhashable callable: read its signature every time
            table[name] = added_function(name, fn)
    return table


@functools.lru_cache(maxsize=256)
def _added_once(name: str, fn: Callable[..., Any]) -> Function:
    """:func:`added_function`, once per function: every file of a run is parsed with the
    same functions, and reading a signature costs more than lexing a small file."""
    return added_function(name, fn)

