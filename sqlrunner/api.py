"""The library entry points: each wires the stages (playbook, render, plan, execute, report).

The CLI is a thin skin over these functions; tests and other tools call them
directly.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

import psycopg

from sqlrunner.errors import QueryError, SqlRunnerError
from sqlrunner.execute.executor import ExecutionSettings, Executor, Reporter, SilentReporter
from sqlrunner.execute.results import RunResult
from sqlrunner.execute.retry import DEFAULT_OUTAGE
from sqlrunner.execute.state import StateSettings
from sqlrunner.execute.targets import connect, connection_for, override_targets
from sqlrunner.plan import RunPlan, build_plan, replan_target
from sqlrunner.playbook import Playbook, load_playbook
from sqlrunner.render import Renderer, resolve_sql_root
from sqlrunner.secrets import SecretRegistry

TARGET_ENV = "SQLRUNNER_TARGET"
# Command-line variables with such names are secrets: masked wherever SQL is shown.
_SECRET_NAME = re.compile(r"pass|secret|token|credential|private|_key$", re.IGNORECASE)


@dataclass(frozen=True)
class RunOptions:
    """Everything that shapes a run besides the playbook itself."""

    variables: Mapping[str, Any] | None = None
    target: str | None = None  # a DSN replacing the playbook's targets
    sql_root: str | None = None  # PLAYBOOK, BINARY or a folder
    from_step: str | None = None
    run_query: str | None = None
    max_parallel: int | None = None
    show_query_output: bool = False
    template_missing: str = "error"  # or "novalue" (Go's <no value>)
    embedded_dir: str | None = None
    retries: int = 3
    retry_backoff: float = 1.0
    run_timeout: float | None = None
    checkpoints: bool = True  # checkpoints, resume and the run lock in the target
    state_schema: str = "sqlrunner"
    lock_timeout: float = 0.0
    restart: bool = False
    reconnect_timeout: float = DEFAULT_OUTAGE  # how long a target may stay unreachable

    def execution_settings(self) -> ExecutionSettings:
        """The executor's share of the options."""
        return ExecutionSettings(
            max_parallel=self.max_parallel, show_query_output=self.show_query_output,
            retries=self.retries, retry_backoff=self.retry_backoff,
            run_timeout=self.run_timeout, checkpoints=self.checkpoints,
            state=StateSettings(schema=self.state_schema, lock_timeout=self.lock_timeout,
                                restart=self.restart),
            embedded_dir=self.embedded_dir, reconnect_timeout=self.reconnect_timeout)


def prepare(playbook_path: str, options: RunOptions,
            secrets: SecretRegistry | None = None) -> RunPlan:
    """Load, validate and render: a plan, or an error before any SQL is sent."""
    secrets = secrets or SecretRegistry()
    missing = options.template_missing
    playbook: Playbook = load_playbook(playbook_path, options.variables, missing=missing)
    dsn = options.target or os.environ.get(TARGET_ENV) or None
    playbook = replace(playbook, targets=override_targets(playbook.targets, dsn))
    for target in playbook.targets:
        secrets.add(target.password)
    for name, value in (options.variables or {}).items():
        if _SECRET_NAME.search(name) and isinstance(value, str):
            secrets.add(value)
    sql_root = resolve_sql_root(options.sql_root, playbook_path)
    started_at = datetime.now(UTC)  # one clock for the templates and the run record
    return build_plan(playbook, cli_variables=options.variables, sql_root=sql_root,
                      from_step=options.from_step, run_query=options.run_query,
                      renderer=Renderer(sql_root=sql_root, started_at=started_at,
                                        missing=missing, secrets=secrets),
                      started_at=started_at)


def execute(plan: RunPlan, options: RunOptions, reporter: Reporter | None = None,
            secrets: SecretRegistry | None = None) -> RunResult:
    """Run a rendered plan (which must have no render errors)."""
    if plan.render_errors:
        raise plan.render_errors[0]
    secrets = secrets or SecretRegistry()
    executor = Executor(plan, reporter=reporter or SilentReporter(),
                        settings=options.execution_settings(), secrets=secrets,
                        replan=partial(replan_target, plan, secrets=secrets))
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


@dataclass(frozen=True)
class Reachability:
    """Whether a target answered a ``SELECT 1`` (the dry run's check)."""

    target: str
    reachable: bool
    detail: str


def check_reachability(plan: RunPlan, options: RunOptions,
                       secrets: SecretRegistry | None = None) -> list[Reachability]:
    """Connect once to each target and run ``SELECT 1``."""
    secrets = secrets or SecretRegistry()
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
        except (SqlRunnerError, QueryError, psycopg.Error) as err:
            checks.append(Reachability(name, False, secrets.mask(str(err))))
    return checks
