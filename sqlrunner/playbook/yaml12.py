"""YAML loading with YAML 1.2 scalar typing (as SQL Runner's Go library does) and line numbers.

PyYAML follows YAML 1.1, where ``yes``, ``on``, ``2020-01-01`` and ``1e3`` become
bools, dates and numbers. SQL Runner keeps them strings; so do we. Every mapping
and list remembers the line of each of its entries, so that validation errors
can point at the line in the playbook.

Before anything is built from it, the document's node graph is checked (see
``_check_graph``): aliases may not expand it by more than ``MAX_ALIAS_VALUES`` values
(a "billion laughs" of nine nested anchors would otherwise become 400 million
values, and minutes and gigabytes later run), nor contain themselves; values nest
at most ``MAX_DEPTH`` deep; no value holds a NUL character, which no SQL, path or
connection setting can carry.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from sqlrunner.errors import PlaybookError

MAX_ALIAS_VALUES = 100_000  # values that aliases may add to a document
MAX_DEPTH = 100  # mappings and lists inside each other


class LineDict(dict):
    """A dict that knows its own line and the line of each key (1-based)."""

    line: int = 0
    key_lines: dict[Any, int]

    def line_of(self, key: Any) -> int:
        """The line of ``key`` in the file, or of the mapping itself."""
        return self.key_lines.get(key, self.line)


class LineList(list):
    """A list that knows its own line and the line of each item (1-based)."""

    line: int = 0
    item_lines: list[int]

    def line_of(self, index: int) -> int:
        """The line of item ``index`` in the file, or of the list itself."""
        return self.item_lines[index] if index < len(self.item_lines) else self.line


class Yaml12Loader(yaml.SafeLoader):
    """A SafeLoader with the YAML 1.2 core schema's scalar resolvers."""


# libyaml parses seven times faster than PyYAML's pure-Python parser (a 200-step playbook:
# 41 ms against 6 ms); the resolvers and constructors below are the same Python code on
# either. Its error messages are worded differently, so an error is reported by parsing
# again with the pure-Python loader (see load_yaml).
class FastYaml12Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Yaml12Loader on libyaml's parser when PyYAML was built with it."""


_LOADERS = (FastYaml12Loader, Yaml12Loader)
for _loader in _LOADERS:
    _loader.yaml_implicit_resolvers = {}
_RESOLVERS = [
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
]
for _tag, _pattern, _first in _RESOLVERS:
    for _loader in _LOADERS:
        _loader.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))


def _construct_int(loader: Yaml12Loader, node: yaml.ScalarNode) -> int:
    text = loader.construct_scalar(node)
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text)


def _construct_bool(loader: Yaml12Loader, node: yaml.ScalarNode) -> bool:
    return loader.construct_scalar(node).lower() == "true"


def _construct_mapping(loader: Yaml12Loader, node: yaml.MappingNode) -> LineDict:
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool) and key is not None:
            raise PlaybookError(
                "a mapping key must be a plain value", line=key_node.start_mark.line + 1
            )
        if key in result:
            raise PlaybookError(f"duplicate key {key!r}", line=key_node.start_mark.line + 1)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: Yaml12Loader, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


def _checked(construct: Any, kind: str) -> Any:
    """``construct`` for an explicitly tagged scalar (``!!int x``): a value it cannot read
    is a PlaybookError at its line, not a Python exception."""
    def construct_checked(loader: Yaml12Loader, node: yaml.ScalarNode) -> Any:
        try:
            return construct(loader, node)
        except (ValueError, TypeError, AttributeError, IndexError, OverflowError):
            shown = node.value if len(node.value) <= 40 else node.value[:40] + "..."
            raise PlaybookError(f"invalid YAML: {shown!r} is not a valid {kind}",
                                line=node.start_mark.line + 1) from None
    return construct_checked


for _loader in _LOADERS:
    _loader.add_constructor("tag:yaml.org,2002:int", _checked(_construct_int, "!!int"))
    _loader.add_constructor("tag:yaml.org,2002:float",
                            _checked(yaml.SafeLoader.construct_yaml_float, "!!float"))
    _loader.add_constructor("tag:yaml.org,2002:timestamp",
                            _checked(yaml.SafeLoader.construct_yaml_timestamp, "!!timestamp"))
    _loader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)
    _loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
    _loader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


def load_yaml(text: str, file: str) -> Any:
    """Parse ``text`` with YAML 1.2 typing; errors name ``file`` and the line."""
    try:
        return _load(FastYaml12Loader, text)
    except PlaybookError as err:
        err.file = file
        raise
    except yaml.YAMLError as err:
        first: yaml.YAMLError | None = err  # worded again below, as PyYAML's parser words it
        if isinstance(err, yaml.MarkedYAMLError) and "nesting depth" in str(err.problem):
            # libyaml's limit (1,000); PyYAML's parser would take seconds to recurse there.
            raise PlaybookError(f"invalid YAML: values nested more than {MAX_DEPTH} deep",
                                file=file, line=err.problem_mark.line + 1 if err.problem_mark
                                else None) from None
    except RecursionError:  # PyYAML without libyaml: its composer recurses
        first = None
    try:
        return _load(Yaml12Loader, text)
    except PlaybookError as err:
        err.file = file
        raise
    except RecursionError:
        if first is None:
            raise PlaybookError(f"invalid YAML: values nested more than {MAX_DEPTH} deep",
                                file=file) from None
        raise _yaml_error(first, text, file) from None
    except yaml.YAMLError as err:
        raise _yaml_error(err, text, file) from None


def _load(loader_class: type, text: str) -> Any:
    """``yaml.load``, with the node graph checked before anything is built from it."""
    loader = loader_class(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        _check_graph(root)
        return loader.construct_document(root)
    finally:
        loader.dispose()


def _yaml_error(err: yaml.YAMLError, text: str, file: str) -> PlaybookError:
    """One line naming the file and the line (and column) of a YAML error."""
    if isinstance(err, yaml.MarkedYAMLError):
        mark = err.problem_mark or err.context_mark
        problem = err.problem or err.context or "invalid YAML"
        return PlaybookError(f"invalid YAML: {problem}", file=file,
                             line=mark.line + 1 if mark else None,
                             column=mark.column + 1 if mark else None)
    if isinstance(err, yaml.reader.ReaderError):  # a character YAML does not allow
        position = max(0, min(int(err.position), len(text)))
        line_start = text.rfind("\n", 0, position) + 1
        return PlaybookError(
            f"invalid YAML: unacceptable character #x{err.character:04x}: {err.reason}"
            if isinstance(err.character, int) else f"invalid YAML: {err.reason}",
            file=file, line=text.count("\n", 0, position) + 1, column=position - line_start + 1)
    first_line = str(err).strip().splitlines()
    return PlaybookError(f"invalid YAML: {first_line[0] if first_line else type(err).__name__}",
                         file=file)


def _check_graph(root: yaml.Node) -> None:
    """Refuse a node graph whose aliases expand it too far or contain themselves, that
    nests too deep, or whose values hold a NUL. Walks each node once, without recursion.

    For each collection: ``values``, its size with aliases expanded; ``extra``, what
    aliases add to it (a node's first reference counts its own extra, every further
    reference its whole expanded size); ``depth``, collections inside each other.
    """
    sizes: dict[int, tuple[int, int, int]] = {}  # id -> (values, extra, depth)
    first_parent: dict[int, int] = {}  # id -> the parent that reached it first
    on_path: set[int] = set()
    pending: list[tuple[yaml.Node, int, bool]] = [(root, 0, False)]
    while pending:
        node, parent, finished = pending.pop()
        key = id(node)
        children = _children(node)
        if finished:
            on_path.discard(key)
            values, extra, depth = 1, 0, 0
            for child in children:
                child_values, child_extra, child_depth = sizes[id(child)]
                values += child_values
                owned = first_parent.get(id(child)) == key
                if owned:
                    del first_parent[id(child)]
                extra += child_extra if owned else child_values
                depth = max(depth, child_depth)
            if extra > MAX_ALIAS_VALUES:
                raise PlaybookError(f"invalid YAML: aliases expand this value to more than "
                                    f"{MAX_ALIAS_VALUES} values", line=_line(node))
            sizes[key] = (values, extra, depth + 1)
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise PlaybookError("invalid YAML: an alias inside the value it names (a value "
                                "that contains itself)", line=_line(node))
        first_parent.setdefault(key, parent)
        if isinstance(node, yaml.ScalarNode):
            if "\x00" in node.value:
                raise PlaybookError("a NUL character (\\0) in a value", line=_line(node))
            sizes[key] = (1, 0, 0)
            continue
        on_path.add(key)
        pending.append((node, parent, True))
        pending.extend((child, key, False) for child in reversed(children))
    if sizes[id(root)][2] > MAX_DEPTH:
        node, depth = root, 1
        while depth <= MAX_DEPTH:  # down the deepest branch, to where it is too deep
            node = max(_children(node), key=lambda child: sizes[id(child)][2])
            depth += 1
        raise PlaybookError(f"invalid YAML: values nested more than {MAX_DEPTH} deep",
                            line=_line(node))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1
