"""The data sets of the benchmarks: generated events, modelled as the incremental mode leaves them.

A data set of ``history`` events is one generated stream of ``1.1 × history`` events in
loads of 0.1% of the history each (the generator's batches, each with its own
``etl_tstamp``). The first ``history`` events go through the model: into landing, then
one run of playbooks/incremental.yml (or, without it, the full playbook's setup and one
full rebuild), so atomic.events and the derived tables hold them. The remaining loads wait
in ``bench_pending.events``, from which a benchmark moves 0.1%, 1% or 10% of the history
into landing. Each data set is kept in a template database (see db.py).

Two shapes of data (the generator's ``--shape``): ``default``, the project's, and
``spanning``, whose batches reach back over the whole history (regular visitors with long
histories, events collected days late), as issue 18 measured.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg
from psycopg import sql

from bench import process
from bench.db import ROOT, data_template, digest_of

FULL = ROOT / "playbooks" / "full.yml"
INCREMENTAL = ROOT / "playbooks" / "incremental.yml"
PENDING = "bench_pending"
LOADS_PER_HISTORY = 1000  # one load is 0.1% of the history
EXTRA_LOADS = 100  # loads kept pending: up to 10% of the history
# What a data set depends on: the generator, the SQL and playbooks that model the history.
SOURCES = [ROOT / "sqlrunner" / "generate", ROOT / "sql", ROOT / "playbooks"]
# Seconds spent making data sets in this process, by template name (not benchmark time).
BUILT: dict[str, float] = {}


def _run(playbook: str, dsn: str, *args: str) -> float:
    """Run a playbook as a child process; its wall seconds."""
    return process.run(process.runner_command("-p", playbook, "--target", dsn, "--progress",
                                              "plain", *args),
                       env=process.runner_env(), cwd=ROOT).seconds


def build(dsn: str, history: int, seed: int, log: Callable[[str], None] = print,
          shape: str = "default") -> None:
    """Generate and model a data set of ``history`` events (plus 10% pending) in ``dsn``."""
    from sqlrunner.generate import GeneratorConfig, generate_batches
    from sqlrunner.generate.load import copy_rows, create_events_table

    incremental = INCREMENTAL.exists()
    landing = "snowplow_landing" if incremental else "atomic"
    # The setup queries create the schemas and tables, with their indexes.
    playbook = str(INCREMENTAL if incremental else FULL)
    for query in ("setup_schemas::schemas", "setup_tables::atomic_events",
                  "setup_tables::landing_events", "setup_tables::derived_tables"):
        _run(playbook, dsn, "--run-query", query, "--no-checkpoints")
    config = GeneratorConfig(events=history + history * EXTRA_LOADS // LOADS_PER_HISTORY,
                             seed=seed, batches=LOADS_PER_HISTORY + EXTRA_LOADS, shape=shape)
    started = time.perf_counter()
    with psycopg.connect(dsn) as conn:
        create_events_table(conn, PENDING)
        conn.commit()
        for batch in generate_batches(config):
            target = landing if batch.index < LOADS_PER_HISTORY else PENDING
            copy_rows(conn, target, batch.rows)
            conn.commit()
    log(f"    generated and loaded {config.events:,} events in "
        f"{time.perf_counter() - started:.0f} s")
    seconds = _run(playbook, dsn)
    log(f"    modelled the {history:,} events of history with {playbook.rsplit('/', 1)[-1]} in "
        f"{seconds:.0f} s")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def template(server_dsn: str, history: int, seed: int, regenerate: bool = False,
             log: Callable[[str], None] = print, shape: str = "default") -> str:
    """The name of the template database of a data set of ``history`` events."""
    started = time.perf_counter()
    # the default shape keeps its name; another shape's name must not start with it (the
    # templates of other digests are found and dropped by that prefix)
    kind = (f"history_{history}_s{seed}" if shape == "default"
            else f"{shape}_{history}_s{seed}")
    name, built = data_template(server_dsn, kind, digest_of(SOURCES),
                                lambda dsn: build(dsn, history, seed, log, shape), regenerate)
    if built:
        BUILT[name] = time.perf_counter() - started
        log(f"    data template {name} made in {BUILT[name]:.0f} s")
    return name


def move_to_landing(dsn: str, loads: int) -> int:
    """Move the first ``loads`` pending loads into landing; returns how many events."""
    from sqlrunner.generate import COLUMNS

    columns = sql.SQL(", ").join(sql.Identifier(c) for c in COLUMNS)
    with psycopg.connect(dsn) as conn:
        cutoff = conn.execute(sql.SQL(
            "SELECT MAX(etl_tstamp) FROM (SELECT DISTINCT etl_tstamp FROM {}.events "
            "ORDER BY etl_tstamp LIMIT %s) AS first_loads").format(sql.Identifier(PENDING)),
            (loads,)).fetchone()[0]
        moved = conn.execute(sql.SQL(
            "INSERT INTO snowplow_landing.events ({columns}) SELECT {columns} FROM {pending}"
            ".events WHERE etl_tstamp <= %s").format(
                columns=columns, pending=sql.Identifier(PENDING)), (cutoff,)).rowcount
        conn.execute(sql.SQL("DELETE FROM {}.events WHERE etl_tstamp <= %s").format(
            sql.Identifier(PENDING)), (cutoff,))
    return moved
