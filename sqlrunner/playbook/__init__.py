"""Load and validate a playbook: the file, rendered with command-line variables, parsed, checked.

The result is a frozen :class:`Playbook` that the later stages (render, plan,
execute) read; nothing in it is validated again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlrunner.errors import PlaybookError, SqlRunnerError
from sqlrunner.playbook.sourcefile import NulByte, read_text
from sqlrunner.playbook.yaml12 import LineDict, LineList, load_yaml
from sqlrunner.sqltext.upsert import UpsertSpec, upsert_spec

SUPPORTED_TYPES = {"postgres": "postgres", "postgresql": "postgres", "redshift": "redshift",
                   "embedded": "embedded"}
KNOWN_UNSUPPORTED_TYPES = {"snowflake", "bigquery"}
REQUIRED_SERVER_FIELDS = ("host", "port", "database", "username")

# Allowed keys and their YAML types, per section. ``str`` fields accept any
# scalar (SQL Runner coerces them to strings).
TARGET_KEYS: dict[str, tuple[type, ...]] = {
    "name": (str,), "type": (str,), "host": (str,), "port": (str,), "database": (str,),
    "username": (str,), "password": (str,), "ssl": (bool,), "sslmode": (str,),
    "sslrootcert": (str,), "connect_timeout": (int,), "application_name": (str,),
    "query_group": (str,), "wlm_query_slot_count": (int,), "options": (str,),
    "retries": (int,), "retry_backoff": (int, float), "timeout": (int, float),
    # Redshift IAM authentication (see docs/redshift.md).
    "iam": (bool,), "cluster_identifier": (str,), "db_user": (str,),
    "serverless_workgroup": (str,), "auto_create": (bool,), "db_groups": (list, str),
    "duration_seconds": (int,), "profile": (str,), "region": (str,),
    # SQL Runner's fields for Snowflake and BigQuery targets: accepted, unused.
    "account": (str,), "warehouse": (str,), "project": (str,),
}
STEP_KEYS: dict[str, tuple[type, ...]] = {
    "name": (str,), "queries": (list,), "skip_if_empty": (str,), "only_on": (list, str),
    "continue_on_error": (bool,), "targets": (list, str),
}
# Settings a query may carry (and a target or the playbook may default).
QUERY_SETTINGS: dict[str, tuple[type, ...]] = {
    "retries": (int,), "retry_backoff": (int, float), "timeout": (int, float),
}
# Redshift workload-management settings a query may set for itself alone.
QUERY_SESSION: dict[str, tuple[type, ...]] = {
    "query_group": (str,), "wlm_query_slot_count": (int,),
}
QUERY_KEYS: dict[str, tuple[type, ...]] = {
    "name": (str,), "file": (str,), "template": (bool,), "upsert": (dict,),
    "variables": (dict,), **QUERY_SETTINGS, **QUERY_SESSION, "continue_on_error": (bool,),
    "assert": (str,),
}
NO_ROWS = "no_rows"  # a data test: the query's SELECT must return no rows
ASSERTIONS = (NO_ROWS,)
TOP_KEYS: dict[str, tuple[type, ...]] = {
    "targets": (list,), "variables": (dict,), "steps": (list,), "lock": (str,),
    **QUERY_SETTINGS,
}

_COLON_KEY = re.compile(r"^(\s*(?:-\s)?):", re.MULTILINE)


@dataclass(frozen=True)
class TargetSpec:
    """One database a playbook runs against, as written in the playbook."""

    name: str
    type: str  # normalised: postgres, redshift or embedded; else the raw type
    line: int
    host: str | None = None
    port: str | None = None
    database: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ssl: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)
    chosen_by: str = ""  # which rule chose this database (--target, PG*, the playbook...)
    port_line: int = 0  # the line of its port: key, where an error about the port points

    @property
    def dialect(self) -> str:
        """The SQL it speaks: ``redshift``, or ``postgres`` (the embedded server too)."""
        return "redshift" if self.type == "redshift" else "postgres"

    def init_error(self) -> str | None:
        """Why this target cannot be used, or None (SQL Runner's exit-5 checks)."""
        if self.type in KNOWN_UNSUPPORTED_TYPES:
            return f"target type {self.type!r} is not supported (postgres, redshift, embedded)"
        if self.type not in SUPPORTED_TYPES.values():
            return f"unknown target type {self.type!r} (expected postgres, redshift or embedded)"
        if self.type != "embedded":
            # With IAM the user comes from AWS's temporary credentials.
            required = [f for f in REQUIRED_SERVER_FIELDS
                        if not (f == "username" and self.options.get("iam") is True)]
            missing = [f for f in required if not getattr(self, f)]
            if missing:
                return f"target {self.name!r} is missing {', '.join(missing)}"
        return None


@dataclass(frozen=True)
class QuerySpec:
    """One SQL file of a step."""

    name: str
    file: str
    template: bool
    line: int
    settings: Mapping[str, Any] = field(default_factory=dict)
    upsert: UpsertSpec | None = None
    session: Mapping[str, Any] = field(default_factory=dict)  # query_group, ...
    continue_on_error: bool = False  # its failure does not stop its target
    # This entry's own template variables, over the playbook's and the command line's:
    # one file listed twice with {part: 0, parts: 2} and {part: 1, parts: 2}.
    variables: Mapping[str, Any] = field(default_factory=dict)
    assertion: str | None = None  # a data test: ``no_rows``
    file_line: int = 0  # the line of its ``file:``


@dataclass(frozen=True)
class StepSpec:
    """A named group of queries that run in parallel."""

    name: str
    queries: tuple[QuerySpec, ...]
    line: int
    skip_if_empty: str | None = None  # a table: the step is skipped when it has no rows
    only_on: tuple[str, ...] = ()  # target types the step runs on (empty: all)
    continue_on_error: bool = False  # a failed query of the step does not stop its target
    targets: tuple[str, ...] = ()  # names of the targets the step runs on (empty: all)


@dataclass(frozen=True)
class Playbook:
    """A validated playbook."""

    path: str
    targets: tuple[TargetSpec, ...]
    variables: Mapping[str, Any]
    steps: tuple[StepSpec, ...]
    settings: Mapping[str, Any] = field(default_factory=dict)
    lock: str | None = None  # the run lock's name: one writer per lock and target

    def query_setting(self, target: TargetSpec, query: QuerySpec, key: str,
                      default: Any = None) -> Any:
        """A query setting: the query's, else the target's, else the playbook's."""
        for source in (query.settings, target.options, self.settings):
            if source.get(key) is not None:
                return source[key]
        return default


def strip_colon_keys(text: str) -> str:
    """Remove SQL Runner's Ruby-style leading colon (at most one per line)."""
    return _COLON_KEY.sub(r"\1", text)


def render_playbook_text(
    text: str, path: str, variables: Mapping[str, Any], missing: str = "error"
) -> str:
    """Render the playbook file as a Go template with the command-line variables."""
    if "{{" not in text:
        return text
    from sqlrunner.functions import runner_functions
    from sqlrunner.template import MissingKey, parse

    try:
        template = parse(text, path, funcs=runner_functions())
        mode = MissingKey.from_option(missing)
        rendered = template.execute(dict(variables), missing=mode)
        if "\x00" in rendered:  # where from: the same again, with a map to the source
            _, where = template.execute_mapped(dict(variables), missing=mode)
            line, column = where.source_position(rendered.index("\x00"), text)
            raise PlaybookError("this action prints a NUL byte (\\0) into the playbook",
                                file=path, line=line, column=column)
        return rendered
    except SqlRunnerError as err:
        raise PlaybookError(str(err)) from None


def load_playbook(
    path: str,
    cli_variables: Mapping[str, Any] | None = None,
    *,
    missing: str = "error",
) -> Playbook:
    """Read, render, parse and validate the playbook at ``path``."""
    try:
        raw = read_text(path)
    except FileNotFoundError:
        raise PlaybookError(f"playbook not found: {path}") from None
    except NulByte as err:
        raise PlaybookError("a NUL byte (\\0) in a playbook", file=path, line=err.line,
                            column=err.column) from None
    except (OSError, UnicodeDecodeError) as err:
        raise PlaybookError(f"cannot read playbook {path}: {err}") from None
    stripped = strip_colon_keys(raw)
    data = {**_own_variables(stripped, path), **(cli_variables or {})}
    text = render_playbook_text(stripped, path, data, missing)
    document = load_yaml(text, path)
    return _validate(document, path)


def _own_variables(text: str, path: str) -> dict[str, Any]:
    """The playbook's ``variables:``, when the file parses before rendering.

    SQL Runner renders a playbook with the command-line variables only (its own
    print ``<no value>``); we also offer its own variables, under the command line's,
    so that ``skip_if_empty: "{{.scratch_schema}}.x"`` works. A file that is valid
    YAML only after rendering gets the command-line variables alone.
    """
    if "{{" not in text:
        return {}
    try:
        document = load_yaml(text, path)
    except PlaybookError:
        return {}
    variables = document.get("variables") if isinstance(document, dict) else None
    return plain(variables) if isinstance(variables, dict) else {}


def _validate(document: Any, path: str) -> Playbook:
    if not isinstance(document, LineDict):
        raise PlaybookError("a playbook must be a mapping with targets and steps", file=path,
                            line=1)
    _check_keys(document, TOP_KEYS, "playbook", path)
    targets = document.get("targets")
    if not targets:
        raise PlaybookError("the playbook has no targets", file=path, line=document.line)
    steps = document.get("steps")
    if not steps:
        raise PlaybookError("the playbook has no steps", file=path, line=document.line)
    target_specs = tuple(_target(t, targets.line_of(i), path) for i, t in enumerate(targets))
    target_names = [t.name for t in target_specs]
    variables = document.get("variables") or {}
    for key in variables:
        if not isinstance(key, str):
            raise PlaybookError(f"variable name {key!r} must be a string", file=path,
                                line=variables.line_of(key))
    return Playbook(
        path=path,
        targets=target_specs,
        variables=plain(variables),
        steps=tuple(_step(s, steps.line_of(i), path, target_names)
                    for i, s in enumerate(steps)),
        settings=_settings(document),
        lock=_lock_name(document, path),
    )


def _lock_name(document: LineDict, path: str) -> str | None:
    value = _scalar_str(document.get("lock"))
    if value is not None and not value.strip():
        raise PlaybookError("lock must name the run lock, got an empty value", file=path,
                            line=document.line_of("lock"))
    return value


def plain(value: Any) -> Any:
    """``value`` with line-tracking mappings and lists turned into plain dicts and lists
    (the template engine sees exactly the types YAML gives)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def _target(raw: Any, line: int, path: str) -> TargetSpec:
    entry = _mapping(raw, "target", line, path)
    _check_keys(entry, TARGET_KEYS, "target", path)
    values = {k: _scalar_str(v) if TARGET_KEYS[k] == (str,) else v for k, v in entry.items()}
    kind = (values.get("type") or "").lower()
    name = values.get("name") or kind or "target"
    extras = {k: v for k, v in values.items()
              if k not in {"name", "type", "host", "port", "database", "username", "password",
                           "ssl"} and v is not None}
    return TargetSpec(
        name=name,
        type=SUPPORTED_TYPES.get(kind, kind),
        line=line,
        host=values.get("host"),
        port=values.get("port"),
        database=values.get("database"),
        username=values.get("username"),
        password=values.get("password"),
        ssl=bool(values.get("ssl")),
        options=extras,
        port_line=entry.line_of("port"),
    )


def _step(raw: Any, line: int, path: str, target_names: list[str]) -> StepSpec:
    entry = _mapping(raw, "step", line, path)
    _check_keys(entry, STEP_KEYS, "step", path)
    name = _name(entry, "step", path)
    queries = entry.get("queries") or LineList()
    specs = tuple(_query(q, queries.line_of(i), path) for i, q in enumerate(queries))
    _check_distinct_names(specs, name, path)
    return StepSpec(
        name=name,
        queries=specs,
        line=line,
        skip_if_empty=_scalar_str(entry.get("skip_if_empty")),
        only_on=_target_types(entry, path),
        continue_on_error=entry.get("continue_on_error") is True,
        targets=_step_targets(entry, path, target_names),
    )


def _step_targets(entry: LineDict, path: str, target_names: list[str]) -> tuple[str, ...]:
    """The step's ``targets:``, each the name of one of the playbook's targets."""
    raw = entry.get("targets")
    if raw is None:
        return ()
    names = [raw] if isinstance(raw, str) else list(raw)
    if not names:
        raise PlaybookError("targets: name at least one target (or leave the key out)",
                            file=path, line=entry.line_of("targets"))
    for index, name in enumerate(names):
        line = raw.line_of(index) if isinstance(raw, LineList) else entry.line_of("targets")
        if not isinstance(name, str | int) or isinstance(name, bool):
            raise PlaybookError(f"targets: expected a target's name, got {_type_name(name)}",
                                file=path, line=line)
        if str(name) not in target_names:
            import difflib

            hint = difflib.get_close_matches(str(name), target_names, n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise PlaybookError(f"targets: no target named {str(name)!r}{suggestion}; the "
                                f"playbook's targets: {', '.join(target_names)}",
                                file=path, line=line)
    return tuple(str(name) for name in names)


def _target_types(entry: LineDict, path: str) -> tuple[str, ...]:
    raw = entry.get("only_on")
    if raw is None:
        return ()
    names = [raw] if isinstance(raw, str) else list(raw)
    types = []
    for name in names:
        kind = SUPPORTED_TYPES.get(str(name).lower())
        if kind is None:
            raise PlaybookError(f"only_on: unknown target type {name!r} (expected postgres, "
                                "redshift or embedded)", file=path, line=entry.line_of("only_on"))
        types.append(kind)
    if "postgres" in types:
        types.append("embedded")  # the embedded server is PostgreSQL
    return tuple(types)


def _check_distinct_names(queries: tuple[QuerySpec, ...], step: str, path: str) -> None:
    """Entries with variables need names of their own in their step: a query's checkpoint,
    its result and ``--run-query`` find it by its name (SQL Runner's playbooks, which have
    no variables, keep their repeated names)."""
    first: dict[str, QuerySpec] = {}
    for query in queries:
        earlier = first.setdefault(query.name, query)
        if earlier is not query and (earlier.variables or query.variables):
            raise PlaybookError(
                f"query name {query.name!r} is used twice in step {step!r} (first at line "
                f"{earlier.line}): an entry with variables needs a name of its own, by which "
                "its checkpoint and result are kept", file=path, line=query.line)


def _query_variables(entry: LineDict, path: str) -> dict[str, Any]:
    """A query's ``variables``: a mapping of names, for a file rendered as a template."""
    variables = entry.get("variables")
    if variables is None:
        return {}
    for key in variables:
        if not isinstance(key, str):
            raise PlaybookError(f"query variable name {key!r} must be a string", file=path,
                                line=variables.line_of(key))
    if variables and entry.get("template") is not True:
        raise PlaybookError("query variables need 'template: true': without it the file is "
                            "sent as written", file=path, line=entry.line_of("variables"))
    return plain(variables)


def _query(raw: Any, line: int, path: str) -> QuerySpec:
    entry = _mapping(raw, "query", line, path)
    _check_keys(entry, QUERY_KEYS, "query", path)
    return QuerySpec(
        name=_name(entry, "query", path),
        file=_required_str(entry, "file", "query", path),
        template=bool(entry.get("template") or False),
        line=line,
        settings=_settings(entry),
        upsert=(upsert_spec(entry["upsert"], path, entry.line_of("upsert"))
                if entry.get("upsert") is not None else None),
        session={k: entry[k] for k in QUERY_SESSION if entry.get(k) is not None},
        continue_on_error=entry.get("continue_on_error") is True,
        variables=_query_variables(entry, path),
        assertion=_assertion(entry, path),
        file_line=entry.line_of("file"),
    )


def _assertion(entry: LineDict, path: str) -> str | None:
    value = _scalar_str(entry.get("assert"))
    if value is not None and value not in ASSERTIONS:
        raise PlaybookError(f"assert: unknown assertion {value!r}; expected one of: "
                            f"{', '.join(ASSERTIONS)}", file=path, line=entry.line_of("assert"))
    return value


def _settings(entry: LineDict) -> dict[str, Any]:
    return {k: entry[k] for k in QUERY_SETTINGS if entry.get(k) is not None}


def _mapping(raw: Any, what: str, line: int, path: str) -> LineDict:
    if not isinstance(raw, LineDict):
        raise PlaybookError(f"expected a {what} (a mapping), got {_type_name(raw)}",
                            file=path, line=line)
    return raw


# The checkpoints keep step and query names in varchar(256) columns (bytes on Redshift):
# a longer name would be cut there, and a resumed run would never find it done.
MAX_NAME_BYTES = 256


def _name(entry: LineDict, what: str, path: str) -> str:
    name = _required_str(entry, "name", what, path)
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise PlaybookError(f"{what} name is longer than {MAX_NAME_BYTES} bytes: "
                            f"{name[:40]!r}...", file=path, line=entry.line_of("name"))
    return name


def _required_str(entry: LineDict, key: str, what: str, path: str) -> str:
    value = entry.get(key)
    if value is None or value == "":
        raise PlaybookError(f"{what} is missing {key!r}", file=path, line=entry.line)
    return _scalar_str(value)


def _check_keys(entry: LineDict, allowed: Mapping[str, tuple[type, ...]], what: str,
                path: str) -> None:
    for key, value in entry.items():
        line = entry.line_of(key)
        if key not in allowed:
            import difflib

            hint = difflib.get_close_matches(str(key), list(allowed), n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            expected = ", ".join(allowed)
            raise PlaybookError(
                f"unknown {what} key {key!r}{suggestion}; expected one of: {expected}",
                file=path, line=line,
            )
        if value is None:
            continue
        types = allowed[key]
        if types == (str,):
            valid = not isinstance(value, dict | list)
        elif types == (int,):
            valid = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        elif types == (int, float):
            valid = (isinstance(value, int | float) and not isinstance(value, bool)
                     and value >= 0)
        else:
            valid = isinstance(value, types)
        if not valid:
            shown = "" if isinstance(value, dict | list) else f" {value!r}"
            raise PlaybookError(
                f"{what} {key!r} must be {_expected_name(types)}, got {_type_name(value)}"
                f"{shown}", file=path, line=line)


def _scalar_str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _type_name(value: Any) -> str:
    return {dict: "a mapping", LineDict: "a mapping", list: "a list", LineList: "a list",
            str: "a string", int: "a number", float: "a number", bool: "a boolean",
            type(None): "nothing"}.get(type(value), type(value).__name__)


def _expected_name(types: tuple[type, ...]) -> str:
    if types == (int, float):
        return "a number of seconds"
    if types == (str,):
        return "a plain value"
    names = {bool: "true or false", list: "a list", dict: "a mapping", int: "a whole number"}
    return " or ".join(names.get(t, t.__name__) for t in types)
