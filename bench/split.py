"""Per-query variables (issue 18, item 2): one window pass over atomic.events, as one query
against the same file listed twice in a step with ``{part: 0, parts: 2}`` and ``{part: 1,
parts: 2}``, each half taking the cookies whose ``hashtext(domain_userid)`` falls in it.

The query (``bench/split/cookie_pass.sql``, a bench-only file: the model's own SQL is not
touched here) writes the session frame of every event, as the model's window passes do:
its place in its cookie and session, the previous event's time, the session's first page.
Three playbooks, shuffled in every round, each a child process as a user runs it
(checkpoints on): ``whole`` (one entry, ``parts: 1``), ``halves`` (two entries in one step:
in parallel) and ``halves_in_series`` (the two entries in two steps: the same work without
the second core). Each run builds its tables again. The events are the incremental
section's data set (data.py), cloned.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from bench import data, process
from bench.db import ROOT, Endpoint, fresh_database
from bench.overhead import run_rounds
from bench.stats import Figure, paired

SQL = ROOT / "bench" / "split" / "cookie_pass.sql"


def _entry(part: int, parts: int) -> str:
    return (f"      - name: part_{part}_of_{parts}\n        file: sql/{SQL.name}\n"
            f"        template: true\n        variables: {{part: {part}, parts: {parts}}}\n")


def write_playbooks(folder: Path, endpoint: Endpoint) -> dict[str, Path]:
    """The three playbooks; returns their paths by name."""
    head = endpoint.playbook_target() + "steps:\n"
    texts = {
        "whole": head + "  - name: pass\n    queries:\n" + _entry(0, 1),
        "halves": head + "  - name: pass\n    queries:\n" + _entry(0, 2) + _entry(1, 2),
        "halves_in_series": head + "".join(
            f"  - name: pass_{part}\n    queries:\n" + _entry(part, 2) for part in (0, 1)),
    }
    (folder / "sql").mkdir(parents=True, exist_ok=True)
    (folder / "sql" / SQL.name).write_text(SQL.read_text())
    paths = {}
    for name, text in texts.items():
        paths[name] = folder / f"split_{name}.yml"
        paths[name].write_text(text)
    return paths


def measure(server_dsn: str, work: Path, history: int, seed: int, rounds: int,
            regenerate: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    """This section's figures: each playbook's seconds, and the ratios within a round."""
    template = data.template(server_dsn, history, seed, regenerate, log)
    with fresh_database(server_dsn, "split", template) as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE SCHEMA IF NOT EXISTS bench_split")
            events = conn.execute("SELECT count(*) FROM atomic.events").fetchone()[0]
        folder = work / "split"
        playbooks = write_playbooks(folder, Endpoint.of(dsn))
        env = process.runner_env()

        def runner(name: str) -> Callable[[], process.Completed]:
            command = process.runner_command("-p", str(playbooks[name]), "--progress", "plain")
            return lambda: process.run(command, env=env, cwd=folder)

        log(f"  one window pass over {events:,} events: whole, two halves in parallel, "
            f"two halves in series; {rounds} rounds")
        done = run_rounds({name: runner(name) for name in playbooks}, rounds, seed)
        with psycopg.connect(dsn) as conn:
            rows = conn.execute("SELECT (SELECT count(*) FROM bench_split.events_0_of_1), "
                                "(SELECT count(*) FROM bench_split.events_0_of_2) "
                                "+ (SELECT count(*) FROM bench_split.events_1_of_2)").fetchone()
    if rows[0] != rows[1] or rows[0] != events:
        raise RuntimeError(f"the halves hold {rows[1]:,} rows, the whole {rows[0]:,}, "
                           f"atomic {events:,}")
    seconds = {name: [c.seconds for c in runs] for name, runs in done.items()}
    return {
        "events": events,
        "seconds": {name: Figure.of(values).to_json() for name, values in seconds.items()},
        "halves_over_whole": paired(seconds["halves"], seconds["whole"]).to_json(),
        "series_over_whole": paired(seconds["halves_in_series"], seconds["whole"]).to_json(),
    }
