"""YAML loading with YAML 1.2 scalar typing (as SQL Runner's Go library does) and line numbers.

PyYAML follows YAML 1.1, where ``yes``, ``on``, ``2020-01-01`` and ``1e3`` become
bools, dates and numbers. SQL Runner keeps them strings; so do we. Every mapping
and list remembers the line of each of its entries, so that validation errors
can point at the line in the playbook.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from sqlrunner.errors import PlaybookError


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


for _loader in _LOADERS:
    _loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
    _loader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)
    _loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
    _loader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


def load_yaml(text: str, file: str) -> Any:
    """Parse ``text`` with YAML 1.2 typing; errors name ``file`` and the line."""
    try:
        return yaml.load(text, Loader=FastYaml12Loader)  # noqa: S506 - a SafeLoader subclass
    except PlaybookError as err:
        err.file = file
        raise
    except yaml.YAMLError:
        pass  # parsed again below for PyYAML's own wording of the error
    try:
        return yaml.load(text, Loader=Yaml12Loader)  # noqa: S506 - a SafeLoader subclass
    except PlaybookError as err:
        err.file = file
        raise
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        problem = err.problem or err.context or "invalid YAML"
        raise PlaybookError(
            f"invalid YAML: {problem}",
            file=file,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        ) from None
    except yaml.YAMLError as err:
        raise PlaybookError(f"invalid YAML: {err}", file=file) from None
