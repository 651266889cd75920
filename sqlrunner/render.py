"""Render the SQL files of a playbook's queries: read each file once, execute its template."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlrunner.errors import SqlFileMissing, SqlRunnerError, TargetError
from sqlrunner.functions import runner_functions
from sqlrunner.playbook import QuerySpec
from sqlrunner.playbook.sourcefile import NulByte, read_text
from sqlrunner.secrets import SecretRegistry
from sqlrunner.sqltext.upsert import UpsertSpec

# libpq sends the SQL as a C string: PostgreSQL would run what comes before a NUL as if it
# were the whole file, and the run would succeed.
_NUL_IN_FILE = "a NUL byte (\\0) in a SQL file: PostgreSQL would run only the SQL before it"
_NUL_PRINTED = ("this action prints a NUL byte (\\0) into the SQL: PostgreSQL would run only "
                "the SQL before it")


@dataclass(frozen=True)
class RenderedQuery:
    """A query ready to send, or the error that keeps it from being rendered."""

    target: str
    step: str
    query: str
    file: str  # the path shown to users
    sql: str | None
    template: bool
    error: SqlRunnerError | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)  # retries, timeout, ...
    upsert: UpsertSpec | None = None  # with its table rendered
    source: str | None = field(default=None, repr=False)  # the template, when rendered
    source_map: Any = field(default=None, repr=False)  # rendered offset -> source offset


def resolve_sql_root(option: str | None, playbook_path: str) -> str:
    """SQL Runner's ``-sqlroot``: PLAYBOOK (default), BINARY, or a folder."""
    if not option or option == "PLAYBOOK":
        return os.path.dirname(os.path.abspath(playbook_path))
    if option == "BINARY":
        return os.path.dirname(os.path.abspath(sys.argv[0]))
    return os.path.abspath(option)


def query_path(sql_root: str, file: str) -> str:
    """Join ``file`` under the SQL root, even when it looks absolute (as SQL Runner does)."""
    return os.path.normpath(os.path.join(sql_root, file.lstrip("/\\")))


def display_path(path: str) -> str:
    """``path`` relative to the working folder when it lies below it."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


class Renderer:
    """Reads and renders SQL files; each file is read and parsed once per run."""

    def __init__(self, sql_root: str, started_at: datetime | None = None,
                 missing: str = "error", secrets: SecretRegistry | None = None) -> None:
        self.sql_root = sql_root
        self.missing = missing
        self.started_at = started_at
        self.secrets = secrets or SecretRegistry()
        self._functions = runner_functions(started_at, self.secrets)
        self._sources: dict[str, str | SqlRunnerError] = {}
        self._templates: dict[str, Any] = {}

    def render(self, target: str, step: str, query: QuerySpec, data: Mapping[str, Any],
               settings: Mapping[str, Any] | None = None,
               playbook: str | None = None) -> RenderedQuery:
        """Render ``query`` for ``target`` with template ``data`` (a missing file is named by
        the line of its ``file:`` in ``playbook``)."""
        path = query_path(self.sql_root, query.file)
        shown = display_path(path)
        settings = dict(settings or {})
        upsert = query.upsert
        source_map = None
        try:
            source = self._read(path, shown)
            if query.template:
                sql, source_map = self._template(path, shown, source).execute_mapped(
                    dict(data), missing=self._missing_key())
                if "\x00" in sql:
                    line, column = source_map.source_position(sql.index("\x00"), source)
                    raise TargetError(_NUL_PRINTED, file=shown, line=line, column=column)
            else:
                sql = source
            if upsert is not None:
                upsert = replace(upsert, table=self.render_text(upsert.table, shown, data))
        except SqlRunnerError as err:
            if isinstance(err, SqlFileMissing) and playbook:
                err = SqlFileMissing(f"step {step!r}, query {query.name!r}: SQL file not found: "
                                     f"{shown}", file=display_path(playbook),
                                     line=query.file_line or query.line)
            return RenderedQuery(target, step, query.name, shown, None, query.template, err,
                                 settings, upsert)
        return RenderedQuery(target, step, query.name, shown, sql, query.template, None,
                             settings, upsert, source if query.template else None, source_map)

    def render_text(self, text: str, name: str, data: Mapping[str, Any]) -> str:
        """Render a short template from the playbook (an upsert table, a step condition)."""
        if "{{" not in text:
            return text
        rendered = self._execute(f"{name}#{text}", name, text, data)
        if "\x00" in rendered:
            raise TargetError(f"{text!r} renders a NUL byte (\\0)", file=name)
        return rendered

    def _read(self, path: str, shown: str) -> str:
        if path not in self._sources:
            try:
                self._sources[path] = read_text(path)
            except FileNotFoundError:
                self._sources[path] = SqlFileMissing("SQL file not found", file=shown)
            except NulByte as err:
                self._sources[path] = TargetError(_NUL_IN_FILE, file=shown, line=err.line,
                                                  column=err.column)
            except (OSError, UnicodeDecodeError) as err:
                self._sources[path] = TargetError(f"cannot read SQL file: {err}", file=shown)
        source = self._sources[path]
        if isinstance(source, SqlRunnerError):
            raise source
        return source

    def _template(self, path: str, shown: str, source: str) -> Any:
        """The parsed template of a file (parsed once; a syntax error is kept and re-raised)."""
        from sqlrunner.template import parse

        if path not in self._templates:
            try:
                self._templates[path] = parse(source, shown, funcs=self._functions)
            except SqlRunnerError as err:
                self._templates[path] = err
        template = self._templates[path]
        if isinstance(template, SqlRunnerError):
            raise template
        return template

    def _missing_key(self) -> Any:
        """The template engine's mode for ``--template-missing`` (imported only when a
        template is rendered: a run without templates never loads the engine)."""
        from sqlrunner.template import MissingKey

        return MissingKey.from_option(self.missing)

    def _execute(self, path: str, shown: str, source: str, data: Mapping[str, Any]) -> str:
        return self._template(path, shown, source).execute(dict(data),
                                                           missing=self._missing_key())
