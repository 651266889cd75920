"""The incremental run on tables that nobody analyses (issue 14, item 1): its cost must follow
the batch whatever the server's statistics.

Ten batches of 10,000 events, each run by ``playbooks/incremental.yml`` in a fresh database
where every table of the model has ``autovacuum_enabled = false`` (the shared server runs
with autovacuum off too), so that only the model analyses them. Each run's wall time is
reported, and the 10th run against the 2nd (issue 14's target: at most 2x), per round, for:

- ``model``: the SQL of this tree, nothing done by hand (it keeps its statistics itself);
- ``model, ANALYZE by hand``: the same, with every table of the model analysed by hand
  before each run, untimed: what the runs cost with perfect statistics for free;
- ``before``: the SQL of ``--statistics-before`` (default: the commit before the model kept
  its statistics), exported with ``git archive`` and run by this tree's runner, with the same
  ANALYZE by hand: the operator's fix of issue 14;
- ``before, nothing analysed``: that SQL alone, as issue 14 found it (one round: it is slow).

The rounds are shuffled as in the other sections. Then, on the 1M data set of the
incremental section (its batches of 0.1%, 1% and 10%), each batch run by this tree's SQL and
by the earlier one on fresh clones, shuffled, with the seconds of the statistics step: the
regression check of the incremental figures; and what the step costs on a run where it has
to analyse everything (its ANALYZE statements, timed on a clone).
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from bench import data, process
from bench.db import ROOT, data_template, digest_of, fresh_database
from bench.incremental import PLAYBOOK, run_playbook
from bench.source import export_tree
from bench.stats import Figure, paired

# The commit before the model kept its own statistics (issue 14, item 1).
BEFORE = "ff98a8c"
MODEL_SCHEMAS = ("atomic", "snowplow_landing", "derived")
# The (table, key columns) pairs of the statistics step's list, as rendered for PostgreSQL.
TABLE_AND_COLUMNS = re.compile(r"\(\s*'([\w.]+)',\s*'([\w, ]+)'\s*\)")
HAND_ANALYZED = "ANALYZE"  # every table of the database, as an operator would


def export_playbooks(ref: str, folder: Path) -> Path | None:
    """``sql/`` and ``playbooks/`` of commit ``ref``, exported into ``folder``; the path of
    its incremental playbook, or None when git or the commit is not there."""
    if not export_tree(ref, ["sql", "playbooks"], folder):
        return None
    return folder / "playbooks" / "incremental.yml"


def build_batches(dsn: str, batches: int, events: int, seed: int,
                  log: Callable[[str], None]) -> None:
    """The model's tables, empty and never analysed, autovacuum off on each; the batches
    waiting in the pending table (one etl_tstamp each)."""
    from sqlrunner.generate import GeneratorConfig, generate_batches
    from sqlrunner.generate.load import copy_rows, create_events_table

    for query in ("setup_schemas::schemas", "setup_tables::atomic_events",
                  "setup_tables::landing_events", "setup_tables::derived_tables",
                  "setup_incremental_tables::incremental_tables",
                  "setup_incremental_tables::events_per_session_table"):
        process.run(process.runner_command("-p", str(PLAYBOOK), "--target", dsn,
                                           "--run-query", query, "--no-checkpoints"),
                    env=process.runner_env(), cwd=ROOT)
    with psycopg.connect(dsn) as conn:
        create_events_table(conn, data.PENDING)
        for batch in generate_batches(GeneratorConfig(events=batches * events, seed=seed,
                                                      batches=batches)):
            copy_rows(conn, data.PENDING, batch.rows)
        conn.commit()
    disable_autovacuum(dsn)
    log(f"    {batches} batches of {events:,} events generated")


def disable_autovacuum(dsn: str) -> list[str]:
    """``autovacuum_enabled = false`` on every table of the model's schemas; their names."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT format('%%I.%%I', schemaname, relname) FROM pg_stat_user_tables "
            "WHERE schemaname = ANY(%s) ORDER BY 1", (list(MODEL_SCHEMAS),))]
        for table in tables:
            conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
    return tables


def run_sequence(server_dsn: str, template: str, playbook: Path, batches: int,
                 hand_analyze: bool, report: Path) -> tuple[list[float], list[float]]:
    """Each batch in turn into landing, then one run; the runs' wall seconds and their
    statistics step's seconds (0 where the playbook has none)."""
    seconds, step = [], []
    with fresh_database(server_dsn, "stats", template) as dsn:
        for _ in range(batches):
            data.move_to_landing(dsn, 1)
            if hand_analyze:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(HAND_ANALYZED)
            run = run_playbook(playbook, dsn, report)
            seconds.append(run["seconds"])
            step.append(run["steps"].get("statistics", 0.0))
        with psycopg.connect(dsn, autocommit=True) as conn:
            left = conn.execute("SELECT count(*) FROM snowplow_landing.events").fetchone()[0]
    if left:
        raise RuntimeError(f"{playbook}: {left} events left in landing")
    return seconds, step


def summary(runs: list[list[float]], steps: list[list[float]] | None = None) -> dict[str, Any]:
    """Per position in the sequence, a figure over the rounds; the 10th run against the 2nd
    (the last against the second), per round."""
    per_run = [Figure.of(list(values)).to_json() for values in zip(*runs, strict=True)]
    result = {"runs": per_run,
              "last_to_second": paired([r[-1] for r in runs], [r[1] for r in runs]).to_json(),
              "rounds": len(runs)}
    if steps:
        result["statistics_step"] = [Figure.of(list(v)).to_json()
                                     for v in zip(*steps, strict=True)]
    return result


def measure_sequences(server_dsn: str, work: Path, batches: int, events: int, seed: int,
                      rounds: int, before_ref: str, regenerate: bool,
                      log: Callable[[str], None]) -> dict[str, Any]:
    """The ten-batch sequences, every variant, shuffled within each round."""
    template, built = data_template(
        server_dsn, f"batches_{batches}x{events}_s{seed}", digest_of(data.SOURCES),
        lambda dsn: build_batches(dsn, batches, events, seed, log), regenerate)
    if built:
        log(f"    data template {template} made")
    before = export_playbooks(before_ref, work / "before")
    variants: dict[str, tuple[Path, bool]] = {"model": (PLAYBOOK, False),
                                              "model, ANALYZE by hand": (PLAYBOOK, True)}
    if before is not None:
        variants["before, ANALYZE by hand"] = (before, True)
    report = work / "statistics.json"
    seconds: dict[str, list[list[float]]] = {name: [] for name in variants}
    steps: dict[str, list[list[float]]] = {name: [] for name in variants}
    order = random.Random(seed)
    for number in range(rounds):
        names = list(variants)
        order.shuffle(names)
        for name in names:
            playbook, hand = variants[name]
            runs, step = run_sequence(server_dsn, template, playbook, batches, hand, report)
            seconds[name].append(runs)
            steps[name].append(step)
            log(f"    round {number + 1}/{rounds}, {name}: "
                + " ".join(f"{s:.2f}" for s in runs) + f" s; 10th/2nd {runs[-1] / runs[1]:.2f}")
    results = {name: summary(seconds[name], steps[name] if name.startswith("model") else None)
               for name in variants}
    if before is not None:
        runs, _ = run_sequence(server_dsn, template, before, batches, False, report)
        log("    before, nothing analysed: " + " ".join(f"{s:.1f}" for s in runs)
            + f" s; 10th/2nd {runs[-1] / runs[1]:.0f}")
        results["before, nothing analysed"] = summary([runs])
    else:
        log(f"    the SQL of {before_ref} could not be exported (git archive): not measured")
    return {"batches": batches, "events_per_batch": events, "before": before_ref,
            "variants": results}


def analyze_statements(dsn: str) -> list[str]:
    """The ANALYZE statements the statistics step issues when every table is stale (its
    list, as the playbook renders it for ``dsn``)."""
    from sqlrunner import api

    plan = api.prepare(str(PLAYBOOK), api.RunOptions(target=dsn))
    text = next(q.sql or "" for q in plan.targets[0].queries if q.step == "statistics")
    statements = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        for table, columns in TABLE_AND_COLUMNS.findall(text):
            if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is not None:
                statements.append(f"ANALYZE (SKIP_LOCKED) {table} ({columns})")
    return statements


def measure_history(server_dsn: str, work: Path, history: int, shares: list[float],
                    seed: int, rounds: int, before_ref: str, regenerate: bool,
                    log: Callable[[str], None]) -> dict[str, Any]:
    """Each batch share on ``history`` events by this tree's SQL and by the earlier one, each
    run on a fresh clone, in a shuffled order per round; and, on the clone of each round's
    first batch, what the statistics step costs when it has to analyse every table."""
    template = data.template(server_dsn, history, seed, regenerate, log)
    before = export_playbooks(before_ref, work / "before")
    variants = {"model": PLAYBOOK} | ({"before": before} if before is not None else {})
    report = work / "statistics_history.json"
    seconds = {(name, share): [] for name in variants for share in shares}
    step: dict[float, list[float]] = {share: [] for share in shares}
    events: dict[float, int] = {}
    analyse: list[float] = []
    statements: list[str] = []
    order = random.Random(seed)
    for number in range(rounds):
        runs = [(name, share) for name in variants for share in shares]
        order.shuffle(runs)
        for name, share in runs:
            with fresh_database(server_dsn, "stats_history", template) as dsn:
                events[share] = data.move_to_landing(
                    dsn, max(1, round(share * data.LOADS_PER_HISTORY)))
                run = run_playbook(variants[name], dsn, report)
                seconds[(name, share)].append(run["seconds"])
                if name == "model":
                    step[share].append(run["steps"].get("statistics", 0.0))
                if name == "model" and len(analyse) == number:
                    statements = analyze_statements(dsn)
                    with psycopg.connect(dsn, autocommit=True) as conn:
                        started = time.perf_counter()
                        for statement in statements:
                            conn.execute(statement)
                        analyse.append(time.perf_counter() - started)
        log(f"    round {number + 1}/{rounds} on {history:,}: " + "; ".join(
            f"{share:.1%} " + ", ".join(f"{name} {seconds[(name, share)][-1]:.2f} s"
                                        for name in variants) for share in shares)
            + f"; analysing every table {analyse[-1]:.2f} s")
    batches = []
    for share in shares:
        model = seconds[("model", share)]
        batch = {"share": share, "events": events[share], "model": Figure.of(model).to_json(),
                 "statistics_step": Figure.of(step[share]).to_json()}
        if before is not None:
            earlier = seconds[("before", share)]
            batch["before"] = Figure.of(earlier).to_json()
            batch["model_to_before"] = paired(model, earlier).to_json()
        batches.append(batch)
    return {"history": history, "batches": batches,
            "analyse_every_table": Figure.of(analyse).to_json(),
            "analyse_statements": statements}


def measure(server_dsn: str, work: Path, batches: int, events: int, history: int | None,
            shares: list[float], seed: int, rounds: int, before_ref: str = BEFORE,
            regenerate: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    """This section's figures."""
    log(f"  {batches} batches of {events:,} events, autovacuum off on every table")
    results = {"sequences": measure_sequences(server_dsn, work, batches, events, seed, rounds,
                                              before_ref, regenerate, log)}
    if history:
        log(f"  batches of {', '.join(f'{s:.1%}' for s in shares)} on {history:,} events, "
            "this SQL and the earlier one")
        results["history"] = measure_history(server_dsn, work, history, shares, seed, rounds,
                                             before_ref, regenerate, log)
    return results
