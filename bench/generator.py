"""The event generator: events per second generated alone, and generated and loaded into the
landing table with COPY (the landing table as the playbooks' setup makes it, with its index)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg

from bench.db import ROOT, fresh_database
from bench.stats import Figure, paired

PLAYBOOK = ROOT / "playbooks" / "full.yml"


def measure(server_dsn: str, events: int, runs: int, seed: int = 11,
            log: Callable[[str], None] = print) -> dict[str, Any]:
    """Generation alone and generation plus COPY into landing, ``runs`` times each."""
    from sqlrunner.api import run_playbook
    from sqlrunner.generate import GeneratorConfig, generate_events
    from sqlrunner.generate.load import load_generated

    config = GeneratorConfig(events=events, seed=seed, batches=10)
    alone, loaded = [], []
    with fresh_database(server_dsn, "generator") as dsn:
        for query in ("setup_schemas::schemas", "setup_tables::landing_events"):
            result = run_playbook(str(PLAYBOOK), target=dsn, run_query=query,
                                  checkpoints=False)
            if result.exit_code != 0:
                raise RuntimeError(f"setup query {query} failed: {result.errors}")
        for number in range(runs):
            started = time.perf_counter()
            count = sum(1 for _ in generate_events(config))
            alone.append(time.perf_counter() - started)
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("TRUNCATE snowplow_landing.events")
            report = load_generated(dsn, config, "snowplow_landing", create_table=False)
            loaded.append(report.seconds)
            log(f"    round {number + 1}/{runs}: {count:,} events generated in "
                f"{alone[-1]:.2f} s, generated and loaded in {loaded[-1]:.2f} s")
    return {
        "events": events,
        "generate_seconds": Figure.of(alone).to_json(),
        "generate_and_copy_seconds": Figure.of(loaded).to_json(),
        "generate_events_per_second": Figure.of([events / s for s in alone], "events/s"
                                                ).to_json(),
        "events_per_second": Figure.of([events / s for s in loaded], "events/s").to_json(),
        "copy_share": paired([load - gen for load, gen in zip(loaded, alone, strict=True)],
                             loaded, "share").to_json(),
    }
