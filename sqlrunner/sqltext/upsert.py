"""The upsert query option: merge a SELECT's rows into a table by unique key.

SQL Runner has nothing like it; dbt-snowplow's "optimized upsert" is the model.
In one implicit transaction (one string): the SELECT goes into a temporary
table; the target is created like it on first use; the target's rows whose key
appears in the new rows are deleted (only within a date window on a date key,
when one is given, so a sorted or partitioned target is scanned in that window
only); the new rows are inserted. Portable to Redshift: no MERGE, no ON
CONFLICT, no aliases in DELETE.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlrunner.errors import PlaybookError
from sqlrunner.sqltext.split import split_statements

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")
UPSERT_KEYS = ("table", "key", "date_key", "lookback_days")


@dataclass(frozen=True)
class UpsertSpec:
    """Where and by what key a query's rows are upserted."""

    table: str
    key: tuple[str, ...]
    date_key: str | None = None
    lookback_days: int = 0
    line: int = 0  # the playbook line of its key


def upsert_spec(raw: Mapping[str, Any], file: str, line: int) -> UpsertSpec:
    """Validate a query's ``upsert:`` mapping (its table may hold template markers)."""
    unknown = [k for k in raw if k not in UPSERT_KEYS]
    if unknown:
        raise PlaybookError(f"unknown upsert key {unknown[0]!r}; expected one of: "
                            f"{', '.join(UPSERT_KEYS)}", file=file, line=line)
    table = raw.get("table")
    if not isinstance(table, str) or not table:
        raise PlaybookError("upsert needs 'table' (schema.table)", file=file, line=line)
    key = raw.get("key")
    keys = (key,) if isinstance(key, str) else tuple(key or ())
    if not keys or not all(isinstance(k, str) and _IDENTIFIER.match(k) for k in keys):
        raise PlaybookError("upsert needs 'key': a column name or a list of them",
                            file=file, line=line)
    date_key = raw.get("date_key")
    if date_key is not None and not (isinstance(date_key, str) and _IDENTIFIER.match(date_key)):
        raise PlaybookError("upsert 'date_key' must be a column name", file=file, line=line)
    lookback = raw.get("lookback_days", 0)
    if isinstance(lookback, bool) or not isinstance(lookback, int) or lookback < 0:
        raise PlaybookError("upsert 'lookback_days' must be a whole number of days",
                            file=file, line=line)
    key_line = raw.line_of("key") if hasattr(raw, "line_of") else line
    return UpsertSpec(table=table, key=keys, date_key=date_key, lookback_days=lookback,
                      line=key_line)


@dataclass(frozen=True)
class UpsertSql:
    """The statements to send, and where the query's own SELECT lies in them."""

    text: str
    select_offset: int
    select_length: int  # the SELECT as sent: the query's SQL up to its semicolon


def upsert_sql(select: str, spec: UpsertSpec, dialect: str = "postgres") -> UpsertSql:
    """Wrap the rendered ``select`` (one statement) in the upsert's statements."""
    if not _TABLE.match(spec.table):
        raise PlaybookError(f"upsert table {spec.table!r} must be schema.table")
    statements = split_statements(select, backslash_escapes=dialect == "redshift")
    if len(statements) != 1:
        raise PlaybookError(f"an upsert query holds exactly one SELECT, found "
                            f"{len(statements)} statements")
    body = select[: statements[0].end].rstrip().rstrip(";")
    temp = "sqlrunner_upsert_" + hashlib.sha1(spec.table.encode()).hexdigest()[:12]
    bare = spec.table.split(".")[-1]
    prefix = f"DROP TABLE IF EXISTS {temp};\nCREATE TEMPORARY TABLE {temp} AS\n"
    # Statistics for the DELETE's join (PostgreSQL plans a fresh table as one row).
    analyze = f"ANALYZE {temp};\n" if dialect != "redshift" else ""
    match = " AND ".join(f"{bare}.{k} = {temp}.{k}" for k in spec.key)
    if spec.date_key:
        d = spec.date_key
        match += (f"\n  AND {bare}.{d} >= (SELECT MIN({d}) FROM {temp})"
                  f" - INTERVAL '{spec.lookback_days:d} days'"
                  f"\n  AND {bare}.{d} <= (SELECT MAX({d}) FROM {temp})")
    suffix = (
        f";\n{analyze}CREATE TABLE IF NOT EXISTS {spec.table} (LIKE {temp});\n"
        f"DELETE FROM {spec.table} USING {temp}\nWHERE {match};\n"
        f"INSERT INTO {spec.table} SELECT * FROM {temp};\n"
    )
    return UpsertSql(text=prefix + body + suffix, select_offset=len(prefix),
                     select_length=len(body))
