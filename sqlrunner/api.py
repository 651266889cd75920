"""The library entry points: each wires the stages (playbook, render, plan, execute, report).

The command line (:mod:`sqlrunner.cli`) is a thin skin over these functions; tests and
other tools call them directly. A run's secrets (passwords, credentials) are kept in one
:class:`~sqlrunner.secrets.SecretRegistry`, owned by the caller and filled here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

import psycopg

from sqlrunner.errors import PlaybookError, SqlRunnerError, UsageError, first_line
from sqlrunner.execute.checkpoints import UNFINISHED, CheckpointStore, RunRecord
from sqlrunner.execute.executor import ExecutionSettings, Executor, Reporter, SilentReporter
from sqlrunner.execute.history import RunHistory, read_history, run_history
from sqlrunner.execute.results import RunResult
from sqlrunner.execute.runlock import default_lock_name, lock_held
from sqlrunner.execute.targets import (
    Connection,
    connect,
    connection_for,
    resolve_targets,
    target_from_dsn,
)
from sqlrunner.plan import RunPlan, TargetPlan, build_plan, replan_target
from sqlrunner.playbook import Playbook, load_playbook, plain
from sqlrunner.render import Renderer, resolve_sql_root
from sqlrunner.secrets import SecretRegistry

# Command-line variables with such names are secrets: masked wherever SQL is shown.
_SECRET_NAME = re.compile(r"pass|secret|token|credential|private|_key$", re.IGNORECASE)


@dataclass(frozen=True)
class RunOptions(ExecutionSettings):
    """Everything that shapes a run besides the playbook itself: what to render, and how
    to execute it (the :class:`ExecutionSettings` it extends)."""

    variables: Mapping[str, Any] | None = None
    target: str | None = None  # a DSN replacing the playbook's targets (else SQLRUNNER_TARGET...)
    sql_root: str | None = None  # PLAYBOOK, BINARY or a folder
    from_step: str | None = None
    run_query: str | None = None
    template_missing: str = "error"  # or "novalue" (Go's <no value>)


def load_variables(path: str | None) -> dict[str, Any]:
    """The template variables of a YAML file (``--var-file``), typed as in playbooks."""
    if not path:
        return {}
    from sqlrunner.playbook.sourcefile import NulByte, read_text
    from sqlrunner.playbook.yaml12 import load_yaml

    try:
        loaded = load_yaml(read_text(path), path)
    except FileNotFoundError:
        raise UsageError(f"variables file not found: {path}") from None
    except NulByte as err:
        raise PlaybookError("a NUL byte (\\0) in a variables file", file=path,
                            line=err.line, column=err.column) from None
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"cannot read variables file {path}: {err}") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise PlaybookError("a variables file must be a mapping", file=path, line=1)
    return dict(plain(loaded or {}))


def _remember_secrets(playbook: Playbook, options: RunOptions,
                      secrets: SecretRegistry) -> None:
    """Register what must never be printed: the targets' passwords, and command-line
    variables named like secrets."""
    for target in playbook.targets:
        secrets.add(target.password)
    for name, value in (options.variables or {}).items():
        if _SECRET_NAME.search(name) and isinstance(value, str):
            secrets.add(value)


def prepare(playbook_path: str, options: RunOptions,
            secrets: SecretRegistry | None = None, *, stand_in: str | None = None
            ) -> RunPlan:
    """Load, validate and render: a plan, or an error before any SQL is sent.

    The targets are those the one rule chooses (:func:`resolve_targets`). With
    ``stand_in`` (a DSN never contacted: the portability check), the rule still checks
    them as for a run, and then every target of the playbook is rendered for the
    stand-in under its own name, so that the steps of each (``targets:``) are rendered.
    """
    secrets = secrets if secrets is not None else SecretRegistry()
    missing = options.template_missing
    playbook: Playbook = load_playbook(playbook_path, options.variables, missing=missing)
    targets = resolve_targets(playbook.targets, options.target, playbook.path)
    if stand_in is not None:
        targets = tuple(target_from_dsn(stand_in, target.name) for target in playbook.targets)
    playbook = replace(playbook, targets=targets)
    _remember_secrets(playbook, options, secrets)
    sql_root = resolve_sql_root(options.sql_root, playbook_path)
    started_at = datetime.now(UTC)  # one clock for the templates and the run record
    # the web model's options (docs/model.md), checked before anything is rendered; a
    # playbook without variables declares none, and does not import their checks
    variables = dict(options.variables or {})
    if playbook.variables:
        from sqlrunner.modeloptions import normalise_options
        variables = normalise_options(playbook_path, playbook.variables, options.variables)
    return build_plan(playbook, cli_variables=variables, sql_root=sql_root,
                      from_step=options.from_step, run_query=options.run_query,
                      renderer=Renderer(sql_root=sql_root, started_at=started_at,
                                        missing=missing, secrets=secrets),
                      started_at=started_at)


def execute(plan: RunPlan, options: RunOptions, reporter: Reporter | None = None,
            secrets: SecretRegistry | None = None) -> RunResult:
    """Run a rendered plan (which must have no render errors)."""
    if plan.render_errors:
        raise plan.render_errors[0]
    secrets = secrets if secrets is not None else SecretRegistry()
    _remember_secrets(plan.playbook, options, secrets)  # a registry prepare did not fill
    executor = Executor(plan, reporter=reporter or SilentReporter(), settings=options,
                        secrets=secrets, replan=partial(replan_target, plan, secrets=secrets))
    return executor.run()


def run_playbook(playbook_path: str, variables: Mapping[str, Any] | None = None,
                 target: str | None = None, *, reporter: Reporter | None = None,
                 **settings: Any) -> RunResult:
    """Run a playbook; returns its :class:`RunResult` (``exit_code``, ``errors``, ...).

    Setup errors (a bad playbook, a missing file, a template error) raise
    :class:`SqlRunnerError` subclasses whose ``exit_code`` is SQL Runner's.
    """
    options = RunOptions(variables=variables, target=target, **settings)
    secrets = SecretRegistry()
    plan = prepare(playbook_path, options, secrets)
    return execute(plan, options, reporter, secrets)


# A template action, and the names it may read: fields (.name, $.name) and quoted keys
# (index . "name").
_ACTION = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_NAMES_READ = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\"([A-Za-z_][A-Za-z0-9_]*)\"")


def unused_variable_warnings(plan: RunPlan, given: Mapping[str, Any]) -> list[str]:
    """One warning per ``given`` (``--var``/``--var-file``) variable that no template and
    no playbook reads, with the closest name that one does read. Not errors: SQL Runner
    accepts unused variables, but a misspelt one silently leaves the playbook's value."""
    if not given:
        return []
    import difflib

    from sqlrunner.playbook.sourcefile import read_text

    texts = []
    for path in {plan.playbook.path,
                 *(q.file for t in plan.targets for q in t.queries if q.template)}:
        try:
            texts.append(read_text(path))
        except (OSError, UnicodeDecodeError, SqlRunnerError):
            continue
    read: set[str] = set(plan.playbook.variables)
    for text in texts:
        for action in _ACTION.findall(text):
            read.update(field or key for field, key in _NAMES_READ.findall(action))
    warnings = []
    for name in given:
        if name in read:
            continue
        close = difflib.get_close_matches(name, sorted(read), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        warnings.append(f"variable {name!r} is used by no template and not by the "
                        f"playbook{hint}")
    return warnings


@dataclass(frozen=True)
class Reachability:
    """Whether a target answered a ``SELECT 1`` (the dry run's check)."""

    target: str
    reachable: bool
    detail: str


def check_reachability(plan: RunPlan, options: RunOptions,
                       secrets: SecretRegistry | None = None) -> list[Reachability]:
    """Connect once to each target and run ``SELECT 1``."""
    secrets = secrets if secrets is not None else SecretRegistry()
    checks = []
    for target_plan in plan.targets:
        name = target_plan.target.name
        if target_plan.init_error:
            checks.append(Reachability(name, False, target_plan.init_error))
            continue
        try:
            connection = connection_for(target_plan.target, options.embedded_dir)
            with connect(connection) as conn:
                version = conn.execute("SELECT version()").fetchone()[0]
            checks.append(Reachability(name, True, f"{connection.describe()}: {version}"))
        except (SqlRunnerError, psycopg.Error) as err:
            checks.append(Reachability(name, False, secrets.mask(str(err))))
    return checks


@dataclass(frozen=True)
class TargetStatus:
    """Recent runs on one target; for an unfinished latest run, what is done and what is next."""

    target: str
    runs: tuple[RunRecord, ...]
    done: tuple[str, ...] = ()
    next_query: str | None = None
    error: str | None = None
    gone: tuple[str, ...] = ()  # done, but a crash emptied unlogged tables they built
    lock_held: bool | None = None  # whether a run holds the playbook's lock there now


@dataclass(frozen=True)
class TargetHistory:
    """The recent runs on one target with their steps and queries, the slowest first."""

    target: str
    runs: tuple[RunHistory, ...]
    error: str | None = None
    recorded: bool = True  # False: the store has no history table (made by an older version)
    lock_held: bool | None = None  # whether a run holds the playbook's lock there now


T = TypeVar("T")
# Reads one target's records: (connection, its store, how it was reached, its plan).
_Reader = Callable[[psycopg.Connection, CheckpointStore, Connection, TargetPlan], T]


def _read_targets(plan: RunPlan, options: RunOptions, read: _Reader[T],
                  failed: Callable[[str, str], T]) -> list[T]:
    """``read`` on every target of ``plan``; ``failed(target, error)`` where a target
    cannot be read."""
    found = []
    for target_plan in plan.targets:
        name = target_plan.target.name
        if target_plan.init_error:
            found.append(failed(name, target_plan.init_error))
            continue
        try:
            connection = connection_for(target_plan.target, options.embedded_dir)
            with connect(connection) as conn:
                store = CheckpointStore(conn, options.state_schema)
                found.append(read(conn, store, connection, target_plan))
        except (SqlRunnerError, psycopg.Error) as err:
            found.append(failed(name, first_line(err)))
    return found


def _lock_held(plan: RunPlan, conn: psycopg.Connection, connection: Connection,
               target: str) -> bool | None:
    """Whether a run holds ``plan``'s playbook's lock on ``target`` now."""
    lock = plan.playbook.lock or default_lock_name(os.path.realpath(plan.playbook.path))
    return lock_held(conn, connection.dialect, lock, target)


def status(plan: RunPlan, options: RunOptions, limit: int = 10) -> list[TargetStatus]:
    """``sqlrunner status``: the run records of ``plan``'s playbook on every target, and
    where an unfinished one stopped."""
    playbook = os.path.realpath(plan.playbook.path)

    def read(conn: psycopg.Connection, store: CheckpointStore, connection: Connection,
             target_plan: TargetPlan) -> TargetStatus:
        name = target_plan.target.name
        runs = tuple(store.recent_runs(playbook, name, limit)) if store.has_runs() else ()
        done: list[str] = []
        next_query = None
        gone: list[str] = []
        latest = next((r for r in runs if r.mode == "full"), None)
        if latest is not None and latest.status in UNFINISHED:
            recorded = store.checkpoints(latest.run_id, name, connection.dialect)
            gone = sorted({f"{step}/{query}" for step, query, _ in recorded.gone})
            for query in target_plan.queries:
                key = (query.step, query.query)
                if key in recorded.done:
                    done.append(f"{query.step}/{query.query}")
                elif next_query is None:
                    next_query = f"{query.step}/{query.query}"
        return TargetStatus(name, runs, tuple(done), next_query, gone=tuple(gone),
                            lock_held=_lock_held(plan, conn, connection, name))

    return _read_targets(plan, options, read,
                         lambda name, error: TargetStatus(name, (), error=error))


def history(plan: RunPlan, options: RunOptions, limit: int = 10) -> list[TargetHistory]:
    """``sqlrunner status --history``: the latest ``limit`` runs of ``plan``'s playbook on
    every target, newest first, each with its steps and queries the slowest first."""
    playbook = os.path.realpath(plan.playbook.path)

    def read(conn: psycopg.Connection, store: CheckpointStore, connection: Connection,
             target_plan: TargetPlan) -> TargetHistory:
        name = target_plan.target.name
        held = _lock_held(plan, conn, connection, name)
        if not store.has_runs():
            return TargetHistory(name, (), lock_held=held)
        runs = store.recent_runs(playbook, name, limit)
        recorded = store.has_runs("query_history")
        entries = (read_history(store, name, [r.run_id for r in runs]) if recorded
                   else {r.run_id: [] for r in runs})
        return TargetHistory(name, tuple(run_history(r, entries[r.run_id]) for r in runs),
                             recorded=recorded, lock_held=held)

    return _read_targets(plan, options, read,
                         lambda name, error: TargetHistory(name, (), error=error))
