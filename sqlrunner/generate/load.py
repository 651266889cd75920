"""Write generated events into ``<schema>.events`` with COPY, one transaction per batch."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import psycopg
from psycopg import sql

from sqlrunner.generate.columns import COLUMN_DEFINITIONS, COLUMNS
from sqlrunner.generate.events import GeneratorConfig, etl_tstamp_of, generate_batches


@dataclass(frozen=True)
class LoadReport:
    """What a load wrote and how fast."""

    events: int
    batches: int
    seconds: float

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("inf")


def create_events_table(conn: psycopg.Connection, schema: str, table: str = "events") -> None:
    """Create ``schema.table`` with the atomic layout if it is missing (no indexes).

    The playbooks' setup step creates the same columns, plus each engine's
    physical design; this is for loading before any playbook has run.
    """
    columns = sql.SQL(",\n  ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(definition))
        for name, definition in COLUMN_DEFINITIONS)
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {}.{} (\n  {}\n)").format(
        sql.Identifier(schema), sql.Identifier(table), columns))


def copy_rows(conn: psycopg.Connection, schema: str, rows: Iterable[tuple],
              table: str = "events") -> int:
    """COPY ``rows`` (128-value tuples) into ``schema.table``; returns how many were written."""
    statement = sql.SQL("COPY {}.{} ({}) FROM STDIN").format(
        sql.Identifier(schema), sql.Identifier(table),
        sql.SQL(", ").join(sql.Identifier(name) for name in COLUMNS))
    count = 0
    with conn.cursor() as cursor, cursor.copy(statement) as copy:
        write_row = copy.write_row
        for row in rows:
            write_row(row)
            count += 1
    return count


def load_generated(dsn: str, config: GeneratorConfig, schema: str, *,
                   create_table: bool = True, table: str = "events",
                   only_batch: int | None = None) -> LoadReport:
    """Generate ``config``'s events and load them, each batch in its own transaction
    (``only_batch``: that batch alone, 0-based, of the same stream)."""
    started = time.perf_counter()
    events = batches = 0
    with psycopg.connect(dsn) as conn:
        if create_table:
            create_events_table(conn, schema, table)
            conn.commit()
        for batch in generate_batches(config):
            if only_batch is not None and batch.etl_tstamp != etl_tstamp_of(only_batch, config):
                continue
            events += copy_rows(conn, schema, batch.rows, table)
            conn.commit()
            batches += 1
    return LoadReport(events=events, batches=batches, seconds=time.perf_counter() - started)
