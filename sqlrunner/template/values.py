"""Go's view of the Python values a template works on: kinds, type names, truth, the invalid value.

Template data arrives as Python values from YAML or the command line and stands
for Go's ``map[string]interface{}`` world:

========================  ==============================
Python                    Go
========================  ==============================
``dict``                  ``map[string]interface {}``
``list`` / ``tuple``      ``[]interface {}``
``str``                   ``string``
``bool``                  ``bool``
``int`` >= 0              ``uint64`` (as SQL Runner's YAML decoder gives)
``int`` < 0               ``int64``
``GoInt``                 ``int`` (number literals, ``len``, range indexes)
``float``                 ``float64``
``None``                  a nil ``interface {}`` (a YAML ``null``)
``NO_VALUE``/``Missing``  the invalid ``reflect.Value``
========================  ==============================

Go tells a nil interface held in a map (``None`` here) from the invalid value that
a pipeline leaves once it unwraps that interface (``NO_VALUE``); a few builtins
answer differently for the two, so both exist. ``Missing`` is an invalid value
that remembers which map key was absent and where, so that printing it can be
reported as an error.
"""

from __future__ import annotations

import math
from typing import Any

from sqlrunner.template.strconv import quote


class GoInt(int):
    """A Go ``int``: what number literals, ``len`` and range indexes produce."""

    __slots__ = ()


class GoUint8(int):
    """A Go ``uint8``: a byte, as ``index`` of a string gives."""

    __slots__ = ()


class _NoValue:
    """The invalid ``reflect.Value`` that is not a missing key (a nil after a pipeline)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_VALUE"

    def __bool__(self) -> bool:
        return False


NO_VALUE = _NoValue()


class Missing:
    """The invalid value left by a map key that is not there.

    ``key`` names the key, ``node`` is the node being evaluated when the lookup
    failed and ``template`` the template executing then; ``nil_data`` is true when
    the lookup was made on no value at all rather than on a map.
    """

    __slots__ = ("key", "node", "template", "nil_data")

    def __init__(self, key: str, node: Any, template: str, nil_data: bool = False) -> None:
        self.key = key
        self.node = node
        self.template = template
        self.nil_data = nil_data

    def __repr__(self) -> str:
        return f"Missing({self.key!r})"

    def __bool__(self) -> bool:
        return False

    @property
    def message(self) -> str:
        """Go's ``missingkey=error`` message for this lookup."""
        if self.nil_data:
            return f"nil data; no entry for key {quote(self.key)}"
        return f"map has no entry for key {quote(self.key)}"


def is_invalid(value: Any) -> bool:
    """Whether ``value`` is Go's invalid ``reflect.Value`` (no value at all)."""
    return value is NO_VALUE or type(value) is Missing


def indirect_interface(value: Any) -> Any:
    """Go's ``indirectInterface``: a nil interface becomes the invalid value."""
    return NO_VALUE if value is None else value


# Kinds for the comparison functions (Go's funcs.go basicKind).
INVALID_KIND, BOOL_KIND, COMPLEX_KIND, INT_KIND, FLOAT_KIND, STRING_KIND, UINT_KIND = range(7)


def basic_kind(value: Any) -> int:
    """The comparison kind of ``value``; ``INVALID_KIND`` for anything not basic."""
    kind = type(value)
    if kind is str:
        return STRING_KIND
    if kind is bool:
        return BOOL_KIND
    if kind is GoInt:
        return INT_KIND
    if kind is float:
        return FLOAT_KIND
    if isinstance(value, int):
        return INT_KIND if value < 0 and kind is not GoUint8 else UINT_KIND
    if kind is complex:
        return COMPLEX_KIND
    if isinstance(value, str):
        return STRING_KIND
    return INVALID_KIND


def type_name(value: Any) -> str:
    """Go's name for the type of ``value``, as ``%T`` and error messages print it."""
    kind = type(value)
    if kind is str:
        return "string"
    if kind is bool:
        return "bool"
    if kind is GoInt:
        return "int"
    if kind is float:
        return "float64"
    if kind is GoUint8:
        return "uint8"
    if isinstance(value, int):
        return "int64" if value < 0 else "uint64"
    if isinstance(value, (list, tuple)):
        return "[]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}"
    if kind is complex:
        return "complex128"
    if isinstance(value, str):
        return "string"
    if value is None or is_invalid(value):
        return "<nil>"
    return kind.__name__


def reflect_kind(value: Any) -> str:
    """Go's ``reflect.Kind`` name of ``value`` (what ``eq`` checks comparability by)."""
    if is_invalid(value):
        return "invalid"
    if value is None:
        return "interface"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return type_name(value)
    if isinstance(value, float):
        return "float64"
    if isinstance(value, complex):
        return "complex128"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "slice"
    if isinstance(value, dict):
        return "map"
    return "struct"


def is_true(value: Any) -> bool:
    """Go's truth: false, 0, a nil, an empty string, list or map are false."""
    kind = type(value)
    if kind is str or kind is list or kind is dict or kind is tuple:
        return len(value) > 0
    if kind is bool:
        return value
    if value is None or value is NO_VALUE or kind is Missing:
        return False
    if isinstance(value, (int, float, complex)):
        return value != 0
    if isinstance(value, (str, list, tuple, dict)):
        return len(value) > 0
    return True


def _key_rank(key: Any) -> tuple[Any, ...]:
    if isinstance(key, bool):
        return (0, key)
    if isinstance(key, (int, float)):
        if isinstance(key, float) and math.isnan(key):
            return (1, -math.inf, 0)
        return (1, key, 1)
    if isinstance(key, str):
        return (2, key)
    return (3, type(key).__name__, repr(key))


def sorted_keys(mapping: dict[Any, Any]) -> list[Any]:
    """The keys of ``mapping`` in Go's ``fmtsort`` order (what printing and range use)."""
    keys = list(mapping)
    try:
        keys.sort()
    except TypeError:
        keys.sort(key=_key_rank)
    return keys
