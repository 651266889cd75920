"""Stage 5: tell the user what a run does and did: a live view on a terminal, plain log
lines elsewhere, a summary at the end, query output when asked, and the JSON run report
(``--report``)."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from dataclasses import asdict
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

from sqlrunner.execute.results import (
    FAILED,
    INTERRUPTED,
    SKIPPED,
    SUCCEEDED,
    QueryResult,
    RunResult,
    TargetFailure,
)
from sqlrunner.plan import RunPlan, StepPlan
from sqlrunner.render import RenderedQuery

if TYPE_CHECKING:  # rich is imported only when a table or the live view is shown
    from rich.console import Console, Group
    from rich.live import Live

_STATE_STYLE = {SUCCEEDED: "green", FAILED: "bold red", SKIPPED: "dim", "running": "yellow",
                "waiting": "dim", INTERRUPTED: "yellow"}
CANCELLED = "cancelled on the server by the interrupt"


def _then(wait: float | None) -> str:
    """What happens after a failed attempt: a retry after ``wait`` seconds, or (None, a
    lost connection) a look at its checkpoint once the target has reconnected."""
    if wait is None:
        return "its checkpoint tells, once reconnected, whether to run it again"
    return f"retrying in {wait:.1f}s"


def _rows(result: QueryResult) -> str:
    return "" if result.rows is None or result.rows < 0 else str(result.rows)


def summary_lines(result: RunResult) -> list[str]:
    """SQL Runner's end-of-run report: failures, then the count of executed queries."""
    lines: list[str] = []
    for failure in result.target_failures:
        lines.append(f"TARGET INITIALIZATION FAILURE: target {failure.target}: {failure.error}")
    for failure in result.lock_conflicts:
        lines.append(f"LOCKED: target {failure.target}: {failure.error}")
    for failure in result.unreachable:
        lines.append(f"CONNECTION FAILURE: {failure.error}")
    for query in result.failed:
        went_on = " (continue_on_error: the run went on)" if query.continue_on_error else ""
        lines.append(f"QUERY FAILURE: target {query.target}, step {query.step}, query "
                     f"{query.query}{went_on}: {query.error}")
        if query.excerpt:
            lines.extend("    " + part for part in query.excerpt.splitlines())
    for query in result.cancelled:
        lines.append(f"INTERRUPTED: target {query.target}, step {query.step}, query "
                     f"{query.query}: {CANCELLED}")
    targets = len({q.target for q in result.executed})
    done_before = len(result.done_before)
    if done_before:
        lines.append(f"{done_before} queries skipped: done in the run being resumed")
    state = ("interrupted: " if result.interrupted else
             "timed out: " if result.timed_out else "")
    lines.append(f"{state}{len(result.executed)} queries executed against {targets} targets "
                 f"in {result.seconds:.3f}s")
    return lines


def print_query_output(result: QueryResult, stream: IO[str] | None = None) -> None:
    """Print a query's rows as a table, headers upper-cased (SQL Runner's -showQueryOutput)."""
    if result.output is None or not result.output.rows:
        return
    from rich import box
    from rich.console import Console
    from rich.table import Table

    out = stream or sys.stdout
    headers = [column.upper() for column in result.output.columns]
    rows = [["NULL" if v is None else str(v) for v in row] for row in result.output.rows]
    terminal = out.isatty()
    # Off a terminal (a file, a pipe) nothing is cut: the table is as wide as its data.
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    console = Console(file=out, highlight=False, soft_wrap=True,
                      width=None if terminal else sum(widths) + 3 * len(widths) + 1,
                      color_system="auto" if terminal else None)
    table = Table(title=f"{result.step} / {result.query}", title_justify="left",
                  box=box.HEAVY_HEAD if terminal else box.ASCII)
    for header in headers:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console.print(table)


def target_lines(plan: RunPlan, embedded_dir: str | None = None) -> list[str]:
    """The first lines of a run: where each target goes, as whom, and which rule chose it."""
    from sqlrunner.execute.targets import target_lines as lines

    return lines(tuple(t.target for t in plan.targets), embedded_dir)


class PlainReporter:
    """One plain log line per event, for cron, CI and pipeline hooks."""

    def __init__(self, stream: IO[str] | None = None, show_query_output: bool = False,
                 embedded_dir: str | None = None) -> None:
        self.stream = stream or sys.stderr
        self.show_query_output = show_query_output
        self.embedded_dir = embedded_dir
        self._lock = threading.Lock()

    def _log(self, message: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"
        with self._lock:
            self.stream.write(f"{stamp} {message}\n")
            self.stream.flush()

    def run_started(self, plan: RunPlan) -> None:
        for line in target_lines(plan, self.embedded_dir):
            self._log(line)
        targets = ", ".join(t.target.name for t in plan.targets)
        self._log(f"run {plan.run_id[:8]} started: {plan.playbook.path}, targets: {targets}, "
                  f"{plan.query_count} queries")

    def step_started(self, target: str, step: StepPlan) -> None:
        self._log(f"[{target}] step {step.name}: {len(step.queries)} queries")

    def query_started(self, query: RenderedQuery) -> None:
        self._log(f"[{query.target}] {query.step}/{query.query} started ({query.file})")

    def query_finished(self, result: QueryResult) -> None:
        if result.status == SKIPPED:
            why = f" ({result.note})" if result.note else ""
            self._log(f"[{result.target}] {result.step}/{result.query} skipped{why}")
            return
        if result.status == FAILED:
            went_on = " (continue_on_error: going on)" if result.continue_on_error else ""
            self._log(f"[{result.target}] {result.step}/{result.query} FAILED after "
                      f"{result.seconds:.3f}s{went_on}: {result.error}")
            return
        if result.status == INTERRUPTED:
            self._log(f"[{result.target}] {result.step}/{result.query} interrupted after "
                      f"{result.seconds:.3f}s: {CANCELLED}")
            return
        rows = _rows(result)
        self._log(f"[{result.target}] {result.step}/{result.query} succeeded in "
                  f"{result.seconds:.3f}s" + (f", {rows} rows" if rows else ""))
        if self.show_query_output:
            with self._lock:
                print_query_output(result)

    def query_retrying(self, query: RenderedQuery, attempt: int, error: str,
                       wait: float | None) -> None:
        self._log(f"[{query.target}] {query.step}/{query.query} attempt {attempt} failed "
                  f"({error}); {_then(wait)}")

    def target_failed(self, failure: TargetFailure) -> None:
        self._log(f"[{failure.target}] cannot start: {failure.error}")

    def note(self, target: str, message: str) -> None:
        self._log(f"[{target}] {message}")

    def run_finished(self, result: RunResult) -> None:
        for line in summary_lines(result):
            self._log(line)


class LiveReporter:
    """A live rich view of the steps and queries, then a summary table of durations."""

    def __init__(self, console: Console | None = None, show_query_output: bool = False,
                 embedded_dir: str | None = None) -> None:
        from rich.console import Console

        self.console = console or Console(stderr=True)
        self.show_query_output = show_query_output
        self.embedded_dir = embedded_dir
        self._lock = threading.Lock()
        self._rows: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._failures: list[TargetFailure] = []
        self._live: Live | None = None
        self._many_targets = False

    def run_started(self, plan: RunPlan) -> None:
        from rich.text import Text

        for line in target_lines(plan, self.embedded_dir):
            self.console.print(Text(line, style="cyan"))
        self._many_targets = len(plan.targets) > 1
        for target_plan in plan.targets:
            for step in target_plan.steps:
                for query in step.queries:
                    self._rows[(query.target, query.step, query.query)] = {
                        "state": "waiting", "started": None, "result": None}
        from rich.live import Live

        self._live = Live(self._render(), console=self.console, refresh_per_second=8,
                          transient=True, get_renderable=self._render)
        self._live.start()

    def step_started(self, target: str, step: StepPlan) -> None: ...

    def query_started(self, query: RenderedQuery) -> None:
        with self._lock:
            row = self._rows[(query.target, query.step, query.query)]
            row["state"], row["started"] = "running", time.perf_counter()

    def query_finished(self, result: QueryResult) -> None:
        with self._lock:
            # A step for other targets only has no row until it is recorded as skipped.
            row = self._rows.setdefault((result.target, result.step, result.query),
                                        {"started": None})
            row["state"], row["result"] = result.status, result

    def query_retrying(self, query: RenderedQuery, attempt: int, error: str,
                       wait: float | None) -> None:
        from rich.text import Text

        with self._lock:
            row = self._rows[(query.target, query.step, query.query)]
            row["state"] = f"retry {attempt}"
        self.console.print(Text(f"[{query.target}] {query.step}/{query.query} attempt "
                                f"{attempt} failed ({error}); {_then(wait)}",
                                style="yellow"))

    def target_failed(self, failure: TargetFailure) -> None:
        with self._lock:
            self._failures.append(failure)

    def note(self, target: str, message: str) -> None:
        from rich.text import Text

        self.console.print(Text(f"[{target}] {message}", style="cyan"))

    def run_finished(self, result: RunResult) -> None:
        from rich.text import Text

        if self._live is not None:
            self._live.stop()
        self.console.print(self._render(final=True))
        if self.show_query_output:
            for query in result.queries:
                print_query_output(query)
        for line in summary_lines(result):
            style = ("red" if line.startswith(("QUERY FAILURE", "TARGET", "CONNECTION")) else
                     "yellow" if line.startswith("INTERRUPTED") else None)
            self.console.print(Text(line, style=style))

    def _render(self, final: bool = False) -> Group:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        table = Table(title="sqlrunner" if not final else "summary", title_justify="left",
                      expand=False)
        # Names fold onto more lines rather than being cut: two names that differ never
        # show as the same text. One target: no column for it.
        columns = ("target", "step", "query") if self._many_targets else ("step", "query")
        for column in columns:
            table.add_column(column, overflow="fold")
        for column in ("state", "seconds", "rows"):
            table.add_column(column, justify="left" if column == "state" else "right",
                             no_wrap=True)
        now = time.perf_counter()
        with self._lock:
            rows = list(self._rows.items())
            failures = list(self._failures)
        for (target, step, query), row in rows:
            result: QueryResult | None = row["result"]
            state = row["state"]
            if result is not None:
                seconds = f"{result.seconds:.3f}"
                rows_text = _rows(result)
            elif row["started"] is not None:
                seconds, rows_text = f"{now - row['started']:.1f}", ""
            else:
                seconds, rows_text = "", ""
            names = (target, step, query) if self._many_targets else (step, query)
            table.add_row(*names, Text(state, style=_STATE_STYLE.get(state)), seconds,
                          rows_text)
        parts: list[Any] = [table]
        parts += [Text(f"target {f.target} cannot start: {f.error}", style="red")
                  for f in failures]
        return Group(*parts)


def _surely_not_interactive() -> bool:
    """True when rich would certainly find stderr not interactive: it is not a terminal and
    no variable forces rich's choice (a plain run then never imports rich)."""
    if any(name in os.environ for name in ("TTY_INTERACTIVE", "TTY_COMPATIBLE", "FORCE_COLOR")):
        return False
    try:
        return not sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def make_reporter(show_query_output: bool = False, live: bool | None = None,
                  embedded_dir: str | None = None) -> Any:
    """The live view on an interactive terminal, plain log lines otherwise."""
    if live is False or (live is None and _surely_not_interactive()):
        return PlainReporter(show_query_output=show_query_output, embedded_dir=embedded_dir)
    from rich.console import Console

    console = Console(stderr=True)
    if live is None:
        live = console.is_interactive
    if live:
        return LiveReporter(console, show_query_output, embedded_dir)
    return PlainReporter(show_query_output=show_query_output, embedded_dir=embedded_dir)


def query_record(result: QueryResult) -> dict[str, Any]:
    """The JSON run report's record of one query."""
    record = asdict(result)
    record.pop("output")
    record["seconds"] = round(result.seconds, 6)
    return record


def report_json(result: RunResult) -> dict[str, Any]:
    """The JSON run report of a run."""
    return {
        "run_id": result.run_id,
        "playbook": result.playbook,
        "exit_code": result.exit_code,
        "seconds": round(result.seconds, 6),
        "interrupted": result.interrupted,
        "timed_out": result.timed_out,
        "lock_conflicts": [asdict(f) for f in result.lock_conflicts],
        "resumed_from": result.resumed_from,
        "target_failures": [asdict(f) for f in result.target_failures],
        "unreachable": [asdict(f) for f in result.unreachable],
        "queries": [query_record(q) for q in result.queries],
    }


def write_report(result: RunResult, path: str) -> None:
    """Write the JSON run report of ``result`` to ``path``."""
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(report_json(result), handle, indent=2, default=str)
        handle.write("\n")
