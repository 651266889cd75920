"""Before a step runs: check that each upsert query returns the key columns its playbook
names, by describing the query on the server without executing it."""

from __future__ import annotations

import psycopg
from psycopg import pq

from sqlrunner.errors import SqlRunnerError
from sqlrunner.render import RenderedQuery
from sqlrunner.sqltext.upsert import upsert_sql


def result_columns(conn: psycopg.Connection, select: str) -> list[str] | None:
    """The names of the columns ``select`` returns, from the server's description of it
    (parsed and analysed, never executed), or None when the server cannot describe it:
    the query's own error then comes when it runs."""
    pgconn = conn.pgconn
    with conn.lock:
        prepared = pgconn.prepare(b"", select.encode(conn.info.encoding))
        if prepared.status != pq.ExecStatus.COMMAND_OK:
            return None
        described = pgconn.describe_prepared(b"")
        if described.status != pq.ExecStatus.COMMAND_OK:
            return None
        return [(described.fname(i) or b"").decode(conn.info.encoding)
                for i in range(described.nfields)]


def missing_key_message(conn: psycopg.Connection, query: RenderedQuery, dialect: str,
                        playbook: str) -> str | None:
    """Why ``query``'s upsert cannot work, naming the playbook line of its ``key``, or
    None when its query returns every key column (or cannot be checked before it runs)."""
    if query.upsert is None or query.sql is None:
        return None
    try:
        wrapped = upsert_sql(query.sql, query.upsert, dialect)
    except SqlRunnerError:  # the run reports a malformed upsert query itself
        return None
    select = wrapped.text[wrapped.select_offset:wrapped.select_offset + wrapped.select_length]
    columns = result_columns(conn, select)
    if columns is None:
        return None
    keys = [*query.upsert.key, *([query.upsert.date_key] if query.upsert.date_key else [])]
    missing = [key for key in keys if key not in columns]
    if not missing:
        return None
    where = f"{playbook}:{query.upsert.line}: " if query.upsert.line else f"{playbook}: "
    return (f"{where}upsert key {', '.join(repr(k) for k in missing)} is not a column "
            f"of what {query.file} returns ({', '.join(columns) or 'no columns'}); "
            "the step did not run")
