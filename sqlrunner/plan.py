"""Plan a run: which steps and queries run, on which targets, with what rendered SQL."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlrunner.errors import SqlRunnerError, TargetError
from sqlrunner.playbook import QUERY_SETTINGS, Playbook, QuerySpec, StepSpec, TargetSpec
from sqlrunner.render import RenderedQuery, Renderer, display_path, query_path
from sqlrunner.secrets import SecretRegistry


@dataclass(frozen=True)
class StepPlan:
    """One step's queries, rendered for one target."""

    name: str
    queries: tuple[RenderedQuery, ...]
    skip_if_empty: str | None = None  # rendered table name
    # A step for other targets only (``targets:``): why it is skipped here, and its queries
    # (name, file), not rendered, that the run records as skipped.
    skip_note: str | None = None
    skipped: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class TargetPlan:
    """What runs on one target, or why that target cannot run."""

    target: TargetSpec
    steps: tuple[StepPlan, ...]
    init_error: str | None = None

    @property
    def queries(self) -> list[RenderedQuery]:
        """Every query of the plan, in order."""
        return [q for step in self.steps for q in step.queries]


@dataclass(frozen=True)
class RunPlan:
    """The whole run: the targets' plans and the run's identity."""

    playbook: Playbook
    targets: tuple[TargetPlan, ...]
    run_id: str
    started_at: datetime
    render_errors: tuple[SqlRunnerError, ...] = field(default=())
    steps: tuple[StepSpec, ...] = field(default=())
    cli_variables: Mapping[str, Any] = field(default_factory=dict)
    partial: bool = False  # --from-step or --run-query: never resumed
    sql_root: str = ""  # where the query files are: a resumed run renders them again
    template_missing: str = "error"  # --template-missing

    @property
    def query_count(self) -> int:
        """How many queries the plan would execute."""
        return sum(len(t.queries) for t in self.targets if t.init_error is None)


def select_steps(
    playbook: Playbook, from_step: str | None = None, run_query: str | None = None
) -> tuple[StepSpec, ...]:
    """The steps to run: all, from ``from_step`` on, or the one query ``step::query``."""
    steps = playbook.steps
    if run_query:
        step_name, sep, query_name = run_query.partition("::")
        if not sep or not step_name or not query_name:
            raise TargetError(f"--run-query must be STEP::QUERY, got {run_query!r}")
        step = next((s for s in steps if s.name == step_name), None)
        if step is None:
            raise TargetError(f"--run-query: no step named {step_name!r}"
                              f"{_choices(s.name for s in steps)}")
        query = next((q for q in step.queries if q.name == query_name), None)
        if query is None:
            raise TargetError(f"--run-query: step {step_name!r} has no query named "
                              f"{query_name!r}{_choices(q.name for q in step.queries)}")
        return (replace(step, queries=(query,), skip_if_empty=None),)
    if from_step:
        for index, step in enumerate(steps):
            if step.name == from_step:
                return steps[index:]
        raise TargetError(f"--from-step: no step named {from_step!r}"
                          f"{_choices(s.name for s in steps)}")
    return steps


def _choices(names: Any) -> str:
    listed = ", ".join(repr(n) for n in names)
    return f" (steps: {listed})" if listed else ""


def new_run_id() -> str:
    """A random run id: the hex of a version-4 UUID, as ``uuid.uuid4().hex`` gives it (made
    here: the uuid module costs a run's start-up several milliseconds)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return raw.hex()


def builtin_variables(target: TargetSpec, run_id: str, started_at: datetime) -> dict[str, Any]:
    """Variables every template sees; playbook and command-line variables override them."""
    return {
        "target_name": target.name,
        "target_type": "postgres" if target.type == "embedded" else target.type,
        "run_id": run_id,
        "run_tstamp": started_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
    }


def build_plan(
    playbook: Playbook,
    *,
    cli_variables: Mapping[str, Any] | None = None,
    sql_root: str | None = None,
    from_step: str | None = None,
    run_query: str | None = None,
    renderer: Renderer | None = None,
    run_id: str | None = None,
    started_at: datetime | None = None,
) -> RunPlan:
    """Select steps and render every selected query for every target.

    Rendering never stops at the first error: every failure is collected in
    ``render_errors`` (and on the query itself) so a user sees them all at once.
    """
    started_at = started_at or datetime.now(UTC)
    run_id = run_id or new_run_id()
    sql_root = sql_root or os.path.dirname(os.path.abspath(playbook.path))
    renderer = renderer or Renderer(sql_root=sql_root, started_at=started_at)
    steps = select_steps(playbook, from_step, run_query)
    errors: list[SqlRunnerError] = []
    seen_errors: set[str] = set()
    target_plans = []
    for target in playbook.targets:
        target_plan = plan_target(playbook, target, steps, cli_variables or {}, renderer,
                                  run_id, started_at)
        for query in target_plan.queries:
            if query.error is not None and str(query.error) not in seen_errors:
                seen_errors.add(str(query.error))
                errors.append(query.error)
        target_plans.append(target_plan)
    return RunPlan(playbook=playbook, targets=tuple(target_plans), run_id=run_id,
                   started_at=started_at, render_errors=tuple(errors), steps=steps,
                   cli_variables=dict(cli_variables or {}),
                   partial=bool(from_step or run_query), sql_root=renderer.sql_root,
                   template_missing=renderer.missing)


def plan_target(playbook: Playbook, target: TargetSpec, steps: tuple[StepSpec, ...],
                cli_variables: Mapping[str, Any], renderer: Renderer, run_id: str,
                started_at: datetime) -> TargetPlan:
    """Render the selected steps for one target with the run's identity."""
    data = builtin_variables(target, run_id, started_at)
    data.update(playbook.variables)
    data.update(cli_variables)
    step_plans = []
    for step in steps:
        if step.only_on and target.type not in step.only_on:
            continue
        if step.targets and target.name not in step.targets:
            step_plans.append(StepPlan(
                name=step.name, queries=(),
                skip_note=f"the step runs on {', '.join(step.targets)} only",
                skipped=tuple((q.name, display_path(query_path(renderer.sql_root, q.file)))
                              for q in step.queries)))
            continue
        step_plans.append(StepPlan(
            name=step.name,
            queries=tuple(renderer.render(target.name, step.name, q,
                                          {**data, **q.variables} if q.variables else data,
                                          _settings(playbook, target, step, q), playbook.path)
                          for q in step.queries),
            skip_if_empty=(renderer.render_text(step.skip_if_empty, playbook.path, data)
                           if step.skip_if_empty else None)))
    return TargetPlan(target=target, steps=tuple(step_plans), init_error=target.init_error())


def _settings(playbook: Playbook, target: TargetSpec, step: StepSpec,
              query: QuerySpec) -> dict[str, Any]:
    """Retries and timeouts (query, else target, else playbook), the query's own SETs, and
    whether its failure lets the target go on (``continue_on_error``, query or step)."""
    settings = {key: value for key in QUERY_SETTINGS
                if (value := playbook.query_setting(target, query, key)) is not None}
    if query.continue_on_error or step.continue_on_error:
        settings["continue_on_error"] = True
    if query.assertion:
        settings["assert"] = query.assertion
    if query.session:
        from sqlrunner.sqltext.session import query_session_statements

        before, after = query_session_statements(target.options, query.session,
                                                 target.type, target.name)
        settings["session_before"], settings["session_after"] = tuple(before), tuple(after)
    return settings


def replan_target(plan: RunPlan, target_plan: TargetPlan, run_id: str, started_at: datetime,
                  secrets: SecretRegistry | None = None) -> TargetPlan:
    """Render a target's queries again as the run ``run_id`` that started at ``started_at``
    rendered them (a resumed run renders the SQL of the run it resumes): the files are read
    again, with a clock that reads ``started_at``."""
    renderer = Renderer(sql_root=plan.sql_root, started_at=started_at,
                        missing=plan.template_missing, secrets=secrets)
    return plan_target(plan.playbook, target_plan.target, plan.steps, plan.cli_variables,
                       renderer, run_id, started_at)
