"""Checkpoints in the target database: each run, and each query that finished in it.

A query's checkpoint row is appended to the SQL file it belongs to, so it is
written in the same implicit transaction as the query's own work: after a
crash a query is either done and recorded, or neither. A later run of the same
playbook on the same target finds the unfinished run and resumes it, skipping
the queries recorded as done whose rendered SQL is unchanged.

On PostgreSQL a checkpoint also records the unlogged tables its transaction
built (with rows, and no other write that a second run would repeat): a server
crash empties them, and a resumed run builds them again before going on. It
records too the tables its transaction dropped, truncated or rebuilt (released):
a work table that a later step of the same run dropped is not lost.

Only portable SQL is used (no ON CONFLICT, no sequences), so the same store
works on Redshift.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg
from psycopg import sql

from sqlrunner.execute.history import HISTORY_TABLE

DEFAULT_SCHEMA = "sqlrunner"
RUNNING, SUCCEEDED, FAILED, INTERRUPTED, ABANDONED = (
    "running", "succeeded", "failed", "interrupted", "abandoned")
UNFINISHED = (RUNNING, FAILED, INTERRUPTED)

_TABLES = """
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.runs (
    run_id       varchar(32)   NOT NULL,
    playbook     varchar(1024) NOT NULL,
    target       varchar(256)  NOT NULL,
    mode         varchar(16)   NOT NULL,
    status       varchar(16)   NOT NULL,
    fingerprint  varchar(64)   NOT NULL,
    query_count  integer       NOT NULL,
    started_at   timestamp     NOT NULL,
    updated_at   timestamp     NOT NULL,
    ended_at     timestamp,
    host         varchar(256),
    pid          integer,
    attempts     integer       NOT NULL,
    lock_name    varchar(256)
);
CREATE TABLE IF NOT EXISTS {schema}.run_queries (
    run_id          varchar(32)   NOT NULL,
    target          varchar(256)  NOT NULL,
    step            varchar(256)  NOT NULL,
    query           varchar(256)  NOT NULL,
    file            varchar(1024) NOT NULL,
    sql_fingerprint varchar(64)   NOT NULL,
    status          varchar(16)   NOT NULL,
    recorded_at     timestamp     NOT NULL,
    unlogged_tables varchar(65535),
    released_tables varchar(65535)
);
CREATE TABLE IF NOT EXISTS {schema}.locks (
    lock_key     varchar(64)  NOT NULL,
    run_id       varchar(32)  NOT NULL,
    backend_pid  integer      NOT NULL,
    host         varchar(256),
    pid          integer,
    acquired_at  timestamp    NOT NULL
);
CREATE TABLE IF NOT EXISTS {schema}.run_backends (
    lock_key     varchar(64)  NOT NULL,
    run_id       varchar(32)  NOT NULL,
    backend_pid  integer      NOT NULL
);
""" + HISTORY_TABLE
_TABLE_NAMES = ("runs", "run_queries", "locks", "run_backends")
# Tables added after the first release: a store made before gets them on first use, and
# works without them where it cannot create them.
_ADDED_TABLES = ("query_history",)
# Columns added after the first release: a store made before gets them on first use.
_ADDED_COLUMNS = {
    "run_queries.unlogged_tables": "varchar(65535)",
    "run_queries.released_tables": "varchar(65535)",
    "runs.lock_name": "varchar(256)",
}

# PostgreSQL: the unlogged tables this transaction (re)created or truncated and left with
# rows, as a JSON object of name -> oid; NULL when there are none, or when the transaction
# also wrote a logged table (that write would be repeated if the file ran again). A
# transaction holds its write locks to its end, so they tell what it wrote. The size is
# read only of its own tables (CASE keeps the order): reading another's would wait for
# the lock of a transaction that may be waiting for this one.
_UNLOGGED_BUILT = """(SELECT CAST(json_object_agg(format('%I.%I', n.nspname, c.relname), c.oid)
  AS text)
FROM pg_catalog.pg_class AS c
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relpersistence = 'u' AND c.relkind = 'r'
  AND CASE WHEN c.xmin = CAST(CAST(txid_current_if_assigned() % 4294967296 AS text) AS xid)
      THEN pg_catalog.pg_relation_size(c.oid) > 0 END
  AND NOT EXISTS (
    SELECT 1 FROM pg_catalog.pg_locks AS l
    JOIN pg_catalog.pg_class AS w ON w.oid = l.relation
    WHERE l.locktype = 'relation' AND l.pid = pg_catalog.pg_backend_pid()
      AND l.mode IN ('RowExclusiveLock', 'ShareRowExclusiveLock', 'ExclusiveLock',
                     'AccessExclusiveLock')
      AND w.relpersistence = 'p'
      AND w.relnamespace NOT IN (CAST('pg_catalog' AS regnamespace),
                                 CAST('pg_toast' AS regnamespace),
                                 CAST('information_schema' AS regnamespace))
      AND w.oid <> CAST({checkpoints} AS regclass)))"""
# PostgreSQL: the oids of the tables this transaction dropped, truncated or built again
# (it holds an ACCESS EXCLUSIVE lock on each to its end, even on a dropped one), as
# ',oid,oid,': what an earlier checkpoint recorded there was released by this one.
_RELEASED = """(SELECT ',' || string_agg(CAST(l.relation AS text), ',') || ','
FROM pg_catalog.pg_locks AS l
WHERE l.locktype = 'relation' AND l.pid = pg_catalog.pg_backend_pid()
  AND l.mode = 'AccessExclusiveLock'
  AND l.database = (SELECT oid FROM pg_catalog.pg_database
                    WHERE datname = current_database()))"""
# PostgreSQL: true when a table a checkpoint (q) recorded is gone, was built again by
# someone else (another oid), or was emptied (crash recovery leaves unlogged tables
# empty), unless a later checkpoint of the same run released it (a cleanup step).
_UNLOGGED_GONE = """(q.unlogged_tables IS NOT NULL AND EXISTS (
  SELECT 1 FROM json_each_text(CAST(q.unlogged_tables AS json)) AS t (name, oid)
  WHERE (to_regclass(t.name) IS NULL
         OR CAST(to_regclass(t.name) AS oid) <> CAST(t.oid AS oid)
         OR pg_catalog.pg_relation_size(CAST(t.oid AS oid)) = 0)
    AND NOT EXISTS (
      SELECT 1 FROM {schema}.run_queries AS later
      WHERE later.run_id = q.run_id AND later.target = q.target
        AND later.recorded_at > q.recorded_at
        AND strpos(later.released_tables, ',' || t.oid || ',') > 0)))"""


# Strings that libpq's PQescapeLiteral returns as they are, between single quotes: no
# quote, no backslash, no control character; printable ASCII only, whatever the encoding.
_PLAIN_STRING = re.compile(r"[\x20-\x26\x28-\x5b\x5d-\x7e]*")


def fingerprint(text: str) -> str:
    """A stable digest of rendered SQL."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def utc_now() -> datetime:
    """Now, in UTC, without tzinfo (the tables use plain ``timestamp``)."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class RunRecord:
    """One row of ``sqlrunner.runs``."""

    run_id: str
    playbook: str
    target: str
    mode: str
    status: str
    started_at: datetime
    updated_at: datetime
    ended_at: datetime | None
    host: str | None
    pid: int | None
    attempts: int
    query_count: int


@dataclass(frozen=True)
class Checkpoints:
    """What a run recorded as done: (step, query) -> SQL fingerprints, and which of those
    (step, query, fingerprint) built unlogged tables that are no longer there."""

    done: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    gone: frozenset[tuple[str, str, str]] = frozenset()


class CheckpointStore:
    """The run and query records of one target, read and written on one connection."""

    def __init__(self, conn: psycopg.Connection, schema: str = DEFAULT_SCHEMA) -> None:
        self.conn = conn
        self.schema = schema
        self._schema_sql = sql.Identifier(schema).as_string(conn)
        # What a store made by an administrator for an earlier version, which this user
        # cannot complete, lacks: the unlogged tables of checkpoints, the lock record.
        self.tracks_unlogged = True
        self.tracks_lock_name = True
        self.has_lock_record = True
        self.tracks_history = True  # the query_history table (sqlrunner status --history)

    def _q(self, template: str) -> str:
        return template.replace("{schema}", self._schema_sql)

    def qualified(self, template: str) -> str:
        """``template`` with ``{schema}`` replaced by the store's schema, quoted."""
        return self._q(template)

    def literal(self, value: object) -> str:
        """``value`` as a SQL literal, quoted by psycopg (a plain string, which it would
        quote as ``'value'``, is quoted here: every checkpoint has eight)."""
        if isinstance(value, datetime):
            return f"CAST({self.literal(value.isoformat(sep=' '))} AS timestamp)"
        if type(value) is str and _PLAIN_STRING.fullmatch(value):
            return f"'{value}'"
        return sql.Literal(value).as_string(self.conn)

    def ensure_tables(self) -> None:
        """Create the schema and tables if missing, and add what a store made by an
        earlier version lacks (racing creators are tolerated).

        When everything exists nothing is created, so a user without CREATE on the
        database can use a schema an administrator made for it; if only the later
        additions are missing and cannot be made, the store works without them.
        """
        present = self._present()
        if present >= {*_TABLE_NAMES, *_ADDED_TABLES, *_ADDED_COLUMNS}:
            return
        if not present >= set(_TABLE_NAMES):
            try:
                self._create_tables()
            except psycopg.errors.InsufficientPrivilege:
                if not present >= {"runs", "run_queries"}:
                    raise
                # An administrator's store of an earlier version: runs without the lock
                # record (a run that loses its connection then stops, not reconnects).
                self.has_lock_record = "locks" in present
            present = self._present()
        if "query_history" not in present:
            self._add_history_table()
            # Still not there for this user: someone else's table it may not write to.
            if self.tracks_history and "query_history" not in self._present():
                self.tracks_history = False
        for column, column_type in _ADDED_COLUMNS.items():
            if column in present:
                continue
            table, name = column.split(".")
            try:
                self.conn.execute(self._q(
                    f"ALTER TABLE {{schema}}.{table} ADD COLUMN {name} {column_type}"))
            except psycopg.errors.DuplicateColumn:
                pass  # another run added it meanwhile
            except psycopg.errors.InsufficientPrivilege:
                if table == "runs":
                    self.tracks_lock_name = False
                else:
                    self.tracks_unlogged = False

    def _present(self) -> set[str]:
        """The store's tables that exist, and the :data:`_ADDED_COLUMNS` that do (the
        history table only when this user may write to it: a run must not fail on it)."""
        # The catalogs (Redshift has them too), not information_schema: on a new
        # connection its views cost milliseconds, and this runs at every start.
        names = ", ".join(f"'{name}'" for name in (*_TABLE_NAMES, *_ADDED_TABLES))
        rows = self.conn.execute(
            "SELECT c.relname FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n "
            f"ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname IN ({names}) "
            "AND (c.relname <> 'query_history' OR has_table_privilege("
            "quote_ident(n.nspname) || '.' || quote_ident(c.relname), 'INSERT')) "
            "UNION ALL SELECT c.relname || '.' || a.attname FROM pg_catalog.pg_attribute AS a "
            "JOIN pg_catalog.pg_class AS c ON c.oid = a.attrelid "
            "JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname IN ('runs', 'run_queries') "
            "AND a.attname IN ('unlogged_tables', 'released_tables', 'lock_name') "
            "AND NOT a.attisdropped",
            (self.schema, self.schema)).fetchall()
        return {r[0] for r in rows}

    def _add_history_table(self) -> None:
        """A store made by an earlier version gets the history table; one this user cannot
        complete (an administrator's) works without it: runs keep no history."""
        try:
            with self.conn.transaction():
                self.conn.execute(self._q(HISTORY_TABLE))
        except (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable):
            pass  # another run created it meanwhile
        except psycopg.errors.InsufficientPrivilege:
            self.tracks_history = False

    def _create_tables(self) -> None:
        for attempt in range(3):
            try:
                with self.conn.transaction():
                    self.conn.execute(self._q(_TABLES))
                return
            except (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable,
                    psycopg.errors.DuplicateSchema):
                if attempt == 2:
                    raise


    def has_runs(self, table: str = "runs") -> bool:
        """Whether the run records (or the store's ``table``) exist (``sqlrunner status``
        creates nothing)."""
        return bool(self.conn.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = %s AND table_name = %s", (self.schema, table)).fetchone()[0])

    def latest_run(self, playbook: str, target: str, mode: str = "full") -> RunRecord | None:
        """The most recent run of ``playbook`` on ``target`` in ``mode``, if any."""
        runs = self.recent_runs(playbook, target, limit=1, mode=mode)
        return runs[0] if runs else None

    def recent_runs(self, playbook: str, target: str | None = None, limit: int = 10,
                    mode: str | None = None) -> list[RunRecord]:
        """The latest runs of ``playbook`` (on ``target``), newest first."""
        where = [f"playbook = {self.literal(playbook)}"]
        if target is not None:
            where.append(f"target = {self.literal(target)}")
        if mode is not None:
            where.append(f"mode = {self.literal(mode)}")
        rows = self.conn.execute(self._q(
            "SELECT run_id, playbook, target, mode, status, started_at, updated_at, ended_at, "
            "host, pid, attempts, query_count FROM {schema}.runs WHERE "
            + " AND ".join(where) + f" ORDER BY started_at DESC, updated_at DESC LIMIT {limit:d}"
        )).fetchall()
        return [RunRecord(*row) for row in rows]

    def start_run(self, run_id: str, playbook: str, target: str, mode: str,
                  run_fingerprint: str, query_count: int, started_at: datetime,
                  lock_name: str | None = None) -> None:
        """Record a new run as running (under the lock ``lock_name``)."""
        now = utc_now()
        columns = ("run_id, playbook, target, mode, status, fingerprint, query_count, "
                   "started_at, updated_at, host, pid, attempts")
        row: tuple[object, ...] = (
            run_id, playbook, target, mode, RUNNING, run_fingerprint, query_count,
            started_at.astimezone(UTC).replace(tzinfo=None), now, socket.gethostname(),
            os.getpid(), 1)
        if self.tracks_lock_name and lock_name is not None:
            columns += ", lock_name"
            row += (lock_name[:256],)
        values = ", ".join(self.literal(v) for v in row)
        self.conn.execute(self._q(
            f"INSERT INTO {{schema}}.runs ({columns}) VALUES ({values})"))

    def latest_run_under_lock(self, lock_name: str | None, target: str,
                              mode: str = "full") -> RunRecord | None:
        """The most recent run in ``mode`` of any playbook under the lock ``lock_name`` on
        ``target`` (None for stores or runs that predate lock names)."""
        if not self.tracks_lock_name or lock_name is None:
            return None
        row = self.conn.execute(self._q(
            "SELECT run_id, playbook, target, mode, status, started_at, updated_at, ended_at, "
            "host, pid, attempts, query_count FROM {schema}.runs "
            f"WHERE lock_name = {self.literal(lock_name[:256])} "
            f"AND target = {self.literal(target)} AND mode = {self.literal(mode)} "
            "ORDER BY started_at DESC, updated_at DESC LIMIT 1")).fetchone()
        return RunRecord(*row) if row else None

    def abandon(self, run: RunRecord) -> None:
        """Give up one unfinished run (it will not be resumed)."""
        now = utc_now()
        self.conn.execute(self._q(
            f"UPDATE {{schema}}.runs SET status = {self.literal(ABANDONED)}, "
            f"updated_at = {self.literal(now)}, ended_at = {self.literal(now)} "
            f"WHERE run_id = {self.literal(run.run_id)} AND target = {self.literal(run.target)}"))

    def resume_run(self, run: RunRecord) -> None:
        """Mark an unfinished run as running again, by this process."""
        self.conn.execute(self._q(
            f"UPDATE {{schema}}.runs SET status = {self.literal(RUNNING)}, "
            f"updated_at = {self.literal(utc_now())}, ended_at = NULL, "
            f"host = {self.literal(socket.gethostname())}, pid = {os.getpid():d}, "
            f"attempts = attempts + 1 WHERE run_id = {self.literal(run.run_id)} "
            f"AND target = {self.literal(run.target)}"))

    def finish_run(self, run_id: str, target: str, status: str,
                   along: str | None = None) -> None:
        """Record how a run ended (with the statement ``along``, in the same transaction)."""
        now = utc_now()
        self.conn.execute((f"{along};\n" if along else "") + self._q(
            f"UPDATE {{schema}}.runs SET status = {self.literal(status)}, "
            f"updated_at = {self.literal(now)}, ended_at = {self.literal(now)} "
            f"WHERE run_id = {self.literal(run_id)} AND target = {self.literal(target)}"))

    def abandon_unfinished(self, playbook: str, target: str, mode: str | None = None) -> None:
        """Unfinished runs of this playbook on this target (in ``mode``) are given up
        (``--restart``, or a partial run that finished the job)."""
        now = utc_now()
        states = ", ".join(self.literal(s) for s in UNFINISHED)
        only_mode = f" AND mode = {self.literal(mode)}" if mode else ""
        self.conn.execute(self._q(
            f"UPDATE {{schema}}.runs SET status = {self.literal(ABANDONED)}, "
            f"updated_at = {self.literal(now)}, ended_at = {self.literal(now)} "
            f"WHERE playbook = {self.literal(playbook)} AND target = {self.literal(target)} "
            f"AND status IN ({states}){only_mode}"))

    def checkpoints(self, run_id: str, target: str, dialect: str = "redshift") -> Checkpoints:
        """The queries recorded as done in ``run_id``; on PostgreSQL also those whose
        unlogged tables are gone (see :data:`_UNLOGGED_GONE`)."""
        gone = (_UNLOGGED_GONE if dialect == "postgres" and self.tracks_unlogged
                else "FALSE")
        rows = self.conn.execute(self._q(
            f"SELECT step, query, sql_fingerprint, {gone} FROM {{schema}}.run_queries AS q "
            f"WHERE run_id = {self.literal(run_id)} AND target = {self.literal(target)} "
            "ORDER BY recorded_at")).fetchall()
        done: dict[tuple[str, str], set[str]] = {}
        lost = set()
        for step, query, digest, is_gone in rows:
            done.setdefault((step, query), set()).add(digest)
            # A query built again after a loss has a newer checkpoint: the newest tells.
            if is_gone:
                lost.add((step, query, digest))
            else:
                lost.discard((step, query, digest))
        return Checkpoints(done, frozenset(lost))

    def drop_emptied_tables(self, run_id: str, target: str, step: str, query: str,
                            digest: str, names: set[str]) -> None:
        """Before a query whose unlogged tables a crash emptied runs again: drop those of
        them that are still the ones it built (same oid) and empty, when its file creates
        them (``names``: the unqualified names it creates), so that a plain
        ``CREATE UNLOGGED TABLE`` can run again. A table with another oid or with rows is
        someone else's and is left alone."""
        if not names:
            return
        rows = self.conn.execute(self._q(
            "SELECT t.name FROM {schema}.run_queries AS q, "
            "json_each_text(CAST(q.unlogged_tables AS json)) AS t (name, oid) "
            f"WHERE q.run_id = {self.literal(run_id)} AND q.target = {self.literal(target)} "
            f"AND q.step = {self.literal(step[:256])} AND q.query = {self.literal(query[:256])} "
            f"AND q.sql_fingerprint = {self.literal(digest)} "
            "AND CAST(to_regclass(t.name) AS oid) = CAST(t.oid AS oid) "
            "AND pg_catalog.pg_relation_size(CAST(t.oid AS oid)) = 0 "
            "AND lower(split_part(t.name, '.', 2)) IN ("
            + ", ".join(self.literal(n.lower()) for n in sorted(names)) + ")")).fetchall()
        for name in sorted({r[0] for r in rows}):  # quoted by format('%I.%I')
            self.conn.execute(f"DROP TABLE IF EXISTS {name}")

    def running_run_of(self, host: object, pid: object) -> RunRecord | None:
        """The run a process (host, pid) has running, if any: who holds a lock."""
        row = self.conn.execute(self._q(
            "SELECT run_id, playbook, target, mode, status, started_at, updated_at, ended_at, "
            f"host, pid, attempts, query_count FROM {{schema}}.runs WHERE "
            f"status = {self.literal(RUNNING)} AND host = {self.literal(str(host))} "
            f"AND pid = {int(pid or 0):d} ORDER BY updated_at DESC LIMIT 1")).fetchone()
        return RunRecord(*row) if row else None

    def is_recorded(self, run_id: str, target: str, step: str, query: str,
                    digest: str) -> bool:
        """Whether the checkpoint of this query (with this SQL) exists."""
        row = self.conn.execute(self._q(
            "SELECT count(*) FROM {schema}.run_queries "
            f"WHERE run_id = {self.literal(run_id)} AND target = {self.literal(target)} "
            f"AND step = {self.literal(step)} AND query = {self.literal(query)} "
            f"AND sql_fingerprint = {self.literal(digest)}")).fetchone()
        return bool(row[0])

    def can_write_elsewhere(self) -> bool:
        """Whether this PostgreSQL database has dblink or a foreign-data wrapper, through
        which a query can write to another server without writing here."""
        row = self.conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'dblink') "
            "OR EXISTS (SELECT 1 FROM pg_catalog.pg_foreign_data_wrapper)").fetchone()
        return bool(row[0])

    def checkpoint_sql(self, run_id: str, target: str, step: str, query: str, file: str,
                       digest: str, lazy_if_read_only: bool = False,
                       record_unlogged: bool = False) -> str:
        """The INSERT appended to a query's SQL, committing with the query's own work.

        ``lazy_if_read_only`` (PostgreSQL, a file in one implicit transaction): when the
        file itself wrote nothing, the transaction commits without waiting for the WAL
        flush. The checkpoint is all such a commit would write, and a flush costs several
        times a trivial query; a server crash in the next fraction of a second can lose it,
        and then a resumed run runs the read-only file again, which is harmless.

        ``record_unlogged`` (PostgreSQL, one implicit transaction): the checkpoint also
        records the unlogged tables the file built (:data:`_UNLOGGED_BUILT`).
        """
        values = ", ".join(self.literal(v) for v in (
            run_id, target, step[:256], query[:256], file[:1024], digest, SUCCEEDED,
            utc_now()))
        columns = "run_id, target, step, query, file, sql_fingerprint, status, recorded_at"
        capture = record_unlogged and self.tracks_unlogged
        if capture:
            checkpoints = self.literal(f"{self._schema_sql}.run_queries")
            columns += ", unlogged_tables, released_tables"
            values += (", " + _UNLOGGED_BUILT.replace("{checkpoints}", checkpoints)
                       + ", " + _RELEASED)
        insert = f"INSERT INTO {{schema}}.run_queries ({columns}) "
        if not lazy_if_read_only:
            return self._q(insert + ("SELECT " + values if capture
                                     else "VALUES (" + values + ")"))
        # The FROM item is evaluated before the INSERT writes its row, that is before this
        # INSERT gives the transaction an id of its own.
        return self._q(
            insert + "SELECT " + values + " FROM (SELECT CASE WHEN txid_current_if_assigned() "
            "IS NULL THEN set_config('synchronous_commit', 'off', true) END) AS read_only")
