"""Targets: turn a playbook target into libpq connection settings, and open connections.

PostgreSQL and Redshift are reached through psycopg 3; an ``embedded`` target
starts (or reuses) the project-local PostgreSQL server. libpq's environment
(``PGPASSWORD``, ``.pgpass``, ``PGSSLMODE``...) applies to whatever the target
leaves unset.
"""

from __future__ import annotations

import getpass
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from sqlrunner.errors import ConnectFailed, QueryError, TargetError, first_line
from sqlrunner.playbook import TargetSpec
from sqlrunner.secrets import SecretRegistry

DEFAULT_CONNECT_TIMEOUT = 10
# Short keepalives: a NAT that drops an idle connection during a long query is
# noticed in about a minute instead of the OS's two hours (SQL Runner's hang).
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10,
              "keepalives_count": 3}
# What connect_options checks and turns into settings (TLS, IAM, Redshift's session SETs):
# a target with none of them connects with libpq's defaults, without importing it.
_CONNECT_OPTION_KEYS = ("sslmode", "sslrootcert", "iam", "query_group", "wlm_query_slot_count")


@dataclass(frozen=True)
class Connection:
    """How to reach one target: its dialect and the libpq parameters."""

    name: str
    dialect: str  # "postgres" or "redshift"
    params: dict[str, Any] = field(repr=False)
    session: tuple[str, ...] = ()  # SET commands for every new connection
    credentials: Any = field(default=None, repr=False)  # redshift.IamCredentials

    def describe(self) -> str:
        """``user@host:port/db`` without the password, for messages."""
        return f"{self.params.get('user') or ''}@{self.address()}"

    def address(self) -> str:
        """``host:port/db``: where the target is."""
        p = self.params
        host = p.get("host") or "localhost"
        return f"{host}:{p.get('port') or 5432}/{p.get('dbname') or ''}"


def target_from_dsn(dsn: str, name: str = "target") -> TargetSpec:
    """A target from a DSN: ``postgresql://...``, ``redshift://...``, ``key=value`` or
    ``embedded`` (the ``--target`` option and ``SQLRUNNER_TARGET``)."""
    text = dsn.strip()
    if text in {"embedded", "embedded://"}:
        return TargetSpec(name=name, type="embedded", line=0)
    dialect = "postgres"
    if text.startswith("redshift://"):
        dialect = "redshift"
        text = "postgresql://" + text[len("redshift://"):]
    try:
        params = conninfo_to_dict(text)
    except psycopg.ProgrammingError as err:
        # libpq quotes the DSN in its message: mask the password it may hold.
        raise TargetError(f"invalid target DSN: {SecretRegistry().mask(first_line(err))}"
                          ) from None
    # libpq's defaults: the user from PGUSER or the login, the database named like the user.
    user = params.pop("user", None) or os.environ.get("PGUSER") or getpass.getuser()
    return TargetSpec(
        name=name, type=dialect, line=0,
        host=params.pop("host", None) or "localhost", port=str(params.pop("port", "") or "5432"),
        database=params.pop("dbname", None) or user, username=user,
        password=params.pop("password", None), options={"libpq": params},
    )


def override_targets(targets: tuple[TargetSpec, ...], dsn: str | None) -> tuple[TargetSpec, ...]:
    """Replace the playbook's targets by the one given on the command line, if any.

    The first target's name is kept, so reports and checkpoints read the same.
    """
    if not dsn:
        return targets
    name = targets[0].name if targets else "target"
    return (target_from_dsn(dsn, name),)


def connection_for(target: TargetSpec, embedded_dir: str | None = None) -> Connection:
    """The libpq parameters for ``target`` (starting the embedded server if needed)."""
    if target.type == "embedded":
        from sqlrunner.execute import embedded

        dsn = embedded.ensure_server(embedded_dir)
        resolved = target_from_dsn(dsn, target.name)
        if target.database:
            resolved = replace(resolved, database=target.database)
        return connection_for(resolved)
    options = dict(target.options)
    params: dict[str, Any] = dict(options.pop("libpq", {}))
    params.update(host=target.host, port=target.port, dbname=target.database,
                  user=target.username)
    if target.password:
        params["password"] = target.password
    session: tuple[str, ...] = ()
    credentials = None
    if target.ssl or any(options.get(key) is not None for key in _CONNECT_OPTION_KEYS):
        from sqlrunner.execute import connect_options

        # TLS (SQL Runner's ssl: true is sslmode=require), session SETs and IAM, checked.
        settings = connect_options.settings_for(target)
        params.update(settings.tls)
        session, credentials = settings.session, settings.credentials
    if options.get("options") and target.type != "redshift":
        params["options"] = options["options"]
    params.setdefault("connect_timeout", options.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT))
    params.setdefault("application_name", options.get("application_name", "sqlrunner"))
    for key, value in KEEPALIVES.items():
        params.setdefault(key, value)
    return Connection(name=target.name, dialect=target.dialect, params=params,
                      session=session, credentials=credentials)


def connect(connection: Connection, secrets: SecretRegistry | None = None) -> psycopg.Connection:
    """Open an autocommit connection: a file sent whole runs as one implicit transaction."""
    params = dict(connection.params)
    if connection.credentials is not None:
        params["user"], params["password"] = connection.credentials.get()
        if secrets is not None:
            secrets.add(params["password"])
    try:
        # prepare_threshold=None: Redshift rejects the DEALLOCATE of prepared statements.
        conn = psycopg.connect(autocommit=True, prepare_threshold=None, **params)
    except psycopg.Error as err:
        raise ConnectFailed(f"cannot connect to target {connection.name!r} "
                            f"({connection.address()}): {first_line(err)}") from err
    try:
        for statement in connection.session:
            conn.execute(statement)
    except psycopg.Error as err:
        conn.close()
        raise QueryError(f"target {connection.name!r}: {statement}: {first_line(err)}") from err
    return conn


class ConnectionPool:
    """Idle connections of one target, reused across queries and steps (thread-safe).

    Connecting costs milliseconds; reusing keeps the runner's per-query overhead
    below a millisecond.
    """

    def __init__(self, connection: Connection,
                 on_connect: Callable[[psycopg.Connection], None] | None = None) -> None:
        self.connection = connection
        self.on_connect = on_connect
        self._idle: list[psycopg.Connection] = []
        self._all: list[psycopg.Connection] = []
        self._lock = threading.Lock()

    def acquire(self, fresh: bool = False) -> psycopg.Connection:
        """An idle connection, or a new one (always new with ``fresh``)."""
        with self._lock:
            while self._idle and not fresh:
                conn = self._idle.pop()
                if not conn.closed and not conn.broken:
                    return conn
        conn = connect(self.connection)
        if self.on_connect is not None:
            try:
                self.on_connect(conn)
            except BaseException:
                conn.close()
                raise
        with self._lock:
            self._all.append(conn)
        return conn

    def discard(self, conn: psycopg.Connection) -> None:
        """Close ``conn`` for good (after an error that leaves it in doubt)."""
        try:
            conn.close()
        except psycopg.Error:
            pass

    def release(self, conn: psycopg.Connection) -> None:
        """Give ``conn`` back; a broken connection is closed, not reused."""
        if conn.closed or conn.broken:
            conn.close()
            return
        with self._lock:
            self._idle.append(conn)

    def close(self) -> None:
        """Close every connection the pool opened."""
        with self._lock:
            conns, self._all, self._idle = self._all, [], []
        for conn in conns:
            try:
                conn.close()
            except psycopg.Error:
                pass
