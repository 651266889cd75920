"""A playbook of 6 steps (some of parallel queries) whose every query records its name in
``effects`` and then sleeps: what the fault tests (test_outages.py) and
stress/kill_loop.py run, to count each query's effect after a fault."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import psycopg
from conftest import run_sql
from psycopg.conninfo import conninfo_to_dict

STEPS = [["a"], ["b1", "b2", "b3"], ["c"], ["d1", "d2"], ["e"], ["f"]]
EVERY_QUERY = Counter(q for step in STEPS for q in step)


def target_lines(dsn: str, name: str = "faulty") -> list[str]:
    """A playbook's ``targets:`` for ``dsn``."""
    params = conninfo_to_dict(dsn)
    return ["targets:", f"  - name: {name}", "    type: postgres",
            f"    host: {params.get('host', '127.0.0.1')}",
            f"    port: {params.get('port', 5432)}", f"    database: {params['dbname']}",
            f"    username: {params.get('user', 'postgres')}"]


def write_playbook(folder: Path, dsn: str,
                   nap: float | Callable[[str], float] = 0.3) -> Path:
    """The playbook and its files in ``folder``; each query ``name`` sleeps ``nap`` seconds
    (or ``nap(name)``) after its insert, in the same transaction."""
    (folder / "sql").mkdir()
    lines = [*target_lines(dsn), "steps:"]
    for index, queries in enumerate(STEPS):
        lines += [f"  - name: step{index}", "    queries:"]
        for name in queries:
            seconds = nap(name) if callable(nap) else nap
            (folder / "sql" / f"{name}.sql").write_text(
                f"INSERT INTO effects (name) VALUES ('{name}');\nSELECT pg_sleep({seconds});\n")
            lines += [f"      - name: {name}", f"        file: sql/{name}.sql"]
    path = folder / "playbook.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


def create_effects(dsn: str) -> None:
    """The table the queries write."""
    run_sql(dsn, "CREATE TABLE effects (name text)")


def effects(dsn: str) -> Counter:
    """How many times each name was recorded."""
    with psycopg.connect(dsn) as conn:
        return Counter(r[0] for r in conn.execute("SELECT name FROM effects"))
