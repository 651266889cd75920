"""Go's text/template in pure Python: parse a template once, execute it against data.

    >>> from sqlrunner.template import parse
    >>> parse("CREATE SCHEMA {{.schema}};", "x.sql").execute({"schema": "web"})
    'CREATE SCHEMA web;'

Output is byte-for-byte what Go's ``text/template`` gives for the same text and
data (data as SQL Runner's YAML gives it: see :mod:`sqlrunner.template.values`),
with one deliberate difference, chosen with :class:`MissingKey`: by default a
missing map key that would be printed into the output is an error naming the
key and its place, where Go prints ``<no value>``.

Errors are :class:`~sqlrunner.errors.TemplateError` in Go's words and form:
``template: NAME:LINE: ...`` for a parse error, ``template: NAME:LINE:COL:
executing "NAME" at <.node>: ...`` for an execution error (the column counts
bytes from the start of the line, as Go's does).

Not supported, as SQL Runner never needs them: custom delimiters, keeping
comments in the tree, calling methods or fields of Go structs (data is maps,
lists and scalars), ranging over channels or iterator functions, and ``%p``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlrunner.template import evaluate
from sqlrunner.template.builtins import Function, function_table
from sqlrunner.template.evaluate import MissingKey
from sqlrunner.template.nodes import ListNode
from sqlrunner.template.parser import parse_trees
from sqlrunner.template.sourcemap import SourceMap

__all__ = ["MissingKey", "SourceMap", "Template", "parse"]


class Template:
    """A parsed template, with the templates its text defines, ready to execute."""

    __slots__ = ("name", "source", "_trees", "_funcs")

    def __init__(self, name: str, source: str, trees: Mapping[str, ListNode],
                 funcs: Mapping[str, Function]) -> None:
        self.name = name
        self.source = source
        self._trees = dict(trees)
        self._funcs = funcs

    def __repr__(self) -> str:
        return f"<Template {self.name!r}>"

    @property
    def root(self) -> ListNode:
        """The parse tree of the template itself."""
        return self._trees[self.name]

    @property
    def defined_templates(self) -> tuple[str, ...]:
        """The names of every template the text defines, this one included, sorted."""
        return tuple(sorted(self._trees))

    def execute(self, data: Any, missing: MissingKey = MissingKey.ERROR) -> str:
        """Render the template with ``data`` as ``.`` and ``$``.

        Raises :class:`~sqlrunner.errors.TemplateError` as Go's ``Execute`` returns
        an error; ``missing`` decides what printing a missing map key does.
        """
        return self.execute_template(self.name, data, missing)

    def execute_mapped(self, data: Any,
                       missing: MissingKey = MissingKey.ERROR) -> tuple[str, SourceMap]:
        """Render as :meth:`execute` does, with a map from the output back to the source.

        The text is exactly what :meth:`execute` gives; the :class:`SourceMap`
        turns a character offset in it into an offset, or a line and column, of
        :attr:`source` (``source_position(offset, template.source)``). This is
        slower than :meth:`execute`, which stays as it is: use it when a position
        in the output is to be reported.
        """
        return evaluate.execute_mapped(self._trees, self.source, self.name, self.name, data,
                                       self._funcs, missing)

    def execute_template(self, name: str, data: Any,
                         missing: MissingKey = MissingKey.ERROR) -> str:
        """Render the template ``name`` defined in this text (Go's ``ExecuteTemplate``)."""
        if name not in self._trees:
            from sqlrunner.errors import TemplateError
            from sqlrunner.template.strconv import quote

            raise TemplateError(
                f"no template {quote(name)} associated with template {quote(self.name)}")
        return evaluate.execute(self._trees, self.source, self.name, name, data, self._funcs,
                                missing)


def parse(text: str, name: str,
          funcs: Mapping[str, Callable[..., Any]] | None = None) -> Template:
    """Parse ``text`` as the template ``name`` (the name errors show, e.g. the file path).

    ``funcs`` adds functions (or replaces builtins) by name; a function receives
    its evaluated arguments (``None`` for a nil or missing value) and reports a
    failure by raising, which execution reports as Go's ``error calling NAME:``.
    Raises :class:`~sqlrunner.errors.TemplateError` for a syntax error.
    """
    table = function_table(funcs)
    trees = parse_trees(text, name, table)
    return Template(name, text, trees, table)
