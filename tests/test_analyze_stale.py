"""The statistics step analyses a table again only when it has changed since the step's last
analyse (sql/statistics/analyze_stale.sql).

The step analyses some columns of each table. PostgreSQL resets a table's count of rows
changed since its last analyse (``n_mod_since_analyze``) only for a whole-table ANALYZE, so
read as autovacuum reads it, that count called atomic.events stale on every run after the
model's first analyse, and every run paid for analysing it again.
"""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest
from test_model_full import load
from test_model_incremental import generated
from test_model_statistics import wait_for_other_connections_to_end

from sqlrunner.api import run_playbook

pytestmark = pytest.mark.usefixtures("_postgresql_15_or_later")

STATISTICS_SQL = Path(__file__).resolve().parent.parent / "sql" / "statistics" / "analyze_stale.sql"


@pytest.fixture
def _postgresql_15_or_later(database: str) -> None:
    with psycopg.connect(database) as conn:
        if conn.info.server_version < 150_000:
            pytest.skip("needs PostgreSQL 15 or later (statistics written as a backend ends)")


def statistics_step(tmp_path: Path) -> str:
    """A playbook of the model's statistics step alone."""
    playbook = tmp_path / "statistics.yml"
    playbook.write_text(f"""
targets:
  - name: db
    type: postgres
variables:
  atomic_schema: atomic
  derived_schema: derived
steps:
  - name: statistics
    queries:
      - name: analyze_stale
        file: {os.path.relpath(STATISTICS_SQL, tmp_path)}
        template: true
""")
    return str(playbook)


def analyses_of_atomic(dsn: str) -> int:
    """How many times atomic.events was analysed (not by autovacuum), once the runner's
    connections have written their statistics."""
    wait_for_other_connections_to_end(dsn)
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT analyze_count FROM pg_stat_user_tables "
                            "WHERE relid = 'atomic.events'::regclass").fetchone()[0]


def run_step(playbook: str, dsn: str) -> None:
    result = run_playbook(playbook, target=dsn)
    assert result.exit_code == 0, result.errors


def test_atomic_is_analysed_again_only_after_it_grows(database: str, tmp_path: Path) -> None:
    first, second = generated(seed=41, events=3000, batches=2)
    load(database, first)
    with psycopg.connect(database) as conn:
        conn.execute("ALTER TABLE atomic.events SET (autovacuum_enabled = false)")
    playbook = statistics_step(tmp_path)

    run_step(playbook, database)
    assert analyses_of_atomic(database) == 1  # never analysed: analysed

    run_step(playbook, database)
    run_step(playbook, database)
    assert analyses_of_atomic(database) == 1  # unchanged since: left alone

    load(database, second)  # about as many rows again: far past 10%
    run_step(playbook, database)
    assert analyses_of_atomic(database) == 2
