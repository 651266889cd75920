"""Targets: turn a playbook target into libpq connection settings, and open connections.

Which database a command uses is decided in one place, :func:`resolve_targets`
(``--target``, ``SQLRUNNER_TARGET``, libpq's environment, the playbook). PostgreSQL and
Redshift are reached through psycopg 3; an ``embedded`` target starts (or reuses) the
project-local PostgreSQL server. libpq's environment (``PGPASSWORD``, ``.pgpass``,
``PGSSLMODE``...) applies to whatever the target leaves unset.
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
TARGET_ENV = "SQLRUNNER_TARGET"  # a DSN replacing the playbook's targets
# libpq's variables that name a server or database: one set means a database is configured
# (PGPASSWORD, PGSSLMODE... only complete a connection).
LIBPQ_SERVER_ENV = ("PGSERVICE", "PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER")
# Where libpq looks for a local server's socket with no host: Debian's folder, then the
# one of PostgreSQL's own builds (psycopg's bundled libpq).
SOCKET_DIRS = ("/var/run/postgresql", "/tmp")
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


def libpq_defaults() -> dict[str, str]:
    """What libpq would connect to with nothing given: its environment (``PGHOST``,
    ``PGPORT``, ``PGDATABASE``, ``PGUSER``, ``PGSERVICE`` with its service file...) over its
    compiled defaults, as ``psql`` reads them."""
    from psycopg import pq

    return {option.keyword.decode(): option.val.decode()
            for option in pq.Conninfo.get_defaults() if option.val is not None}


def _default_socket_dir(port: str) -> str:
    """The folder of the local server's Unix socket, where libpq looks with no host."""
    for folder in SOCKET_DIRS:
        if os.path.exists(os.path.join(folder, f".s.PGSQL.{port}")):
            return folder
    return SOCKET_DIRS[-1]


def target_from_dsn(dsn: str, name: str = "target", chosen_by: str = "") -> TargetSpec:
    """A target from a DSN: ``postgresql://...``, ``redshift://...``, ``key=value`` or
    ``embedded`` (the ``--target`` option and ``SQLRUNNER_TARGET``); what the DSN leaves
    out comes from libpq's environment, as ``psql`` takes it (``""``: the environment
    alone)."""
    text = dsn.strip()
    if text in {"embedded", "embedded://"}:
        return TargetSpec(name=name, type="embedded", line=0, chosen_by=chosen_by)
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
    defaults = libpq_defaults()
    user = params.pop("user", None) or defaults.get("user") or getpass.getuser()
    port = str(params.pop("port", None) or defaults.get("port") or "5432")
    if not _is_port(port):
        raise TargetError(f"invalid target DSN: port {port!r} is not a number")
    host = (params.pop("host", None) or defaults.get("host") or defaults.get("hostaddr")
            or _default_socket_dir(port))
    return TargetSpec(
        name=name, type=dialect, line=0, host=host, port=port,
        database=params.pop("dbname", None) or defaults.get("dbname") or user, username=user,
        password=params.pop("password", None), options={"libpq": params},
        chosen_by=chosen_by,
    )


def _is_port(port: str | None) -> bool:
    """A TCP port number (or libpq's comma-separated list of them, one per host)."""
    return port is not None and all(part.strip().isdigit() and 0 < int(part) < 65536
                                    for part in port.split(","))


def resolve_targets(targets: tuple[TargetSpec, ...], dsn: str | None = None,
                    playbook_path: str | None = None) -> tuple[TargetSpec, ...]:
    """Where a command runs, by one rule for every command: ``dsn`` (``--target``), else
    ``SQLRUNNER_TARGET``, else libpq's environment when it names a server or database
    (``PGHOST``, ``PGDATABASE``, ``PGSERVICE``...), else the playbook's targets.

    An ``embedded`` target means "no database configured": it yields to the environment.
    A playbook target that names its server keeps it (libpq's environment then only fills
    what it leaves unset, a password for one). With no targets at all (``generate``,
    ``demo``) the fallback is the embedded server. Each target returned says in
    ``chosen_by`` which rule chose it. A playbook target's ``port`` that is not a number
    is a :class:`TargetError` naming the line of its ``port:``.
    """
    targets = targets or (TargetSpec(name="target", type="embedded", line=0),)
    name = targets[0].name
    if dsn:
        return (target_from_dsn(dsn, name, chosen_by="--target"),)
    if os.environ.get(TARGET_ENV):
        return (target_from_dsn(os.environ[TARGET_ENV], name, chosen_by=TARGET_ENV),)
    environment = [variable for variable in LIBPQ_SERVER_ENV if os.environ.get(variable)]
    resolved = []
    for target in targets:
        if target.type == "embedded" and environment:
            resolved.append(target_from_dsn(
                "", target.name,
                chosen_by=f"libpq's environment ({', '.join(environment)})"
                          + (f" in place of the playbook's embedded target (line "
                             f"{target.line})" if target.line else "")))
            continue
        if target.type == "embedded":
            chosen_by = ("no database configured (--target, SQLRUNNER_TARGET, PGHOST, "
                         "PGDATABASE, PGSERVICE... unset)")
            if target.line:
                chosen_by = f"the playbook (line {target.line}); {chosen_by}"
        else:
            if target.port is not None and not _is_port(target.port):
                raise TargetError(f"target {target.name!r}: port {target.port!r} is not a "
                                  "number", file=playbook_path,
                                  line=target.port_line or target.line)
            chosen_by = f"the playbook (line {target.line})"
            if environment:
                chosen_by += (f"; {', '.join(environment)} ignored: the playbook names "
                              "its server")
        resolved.append(replace(target, chosen_by=chosen_by))
    return tuple(resolved)


def describe_target(target: TargetSpec, embedded_dir: str | None = None) -> str:
    """Where ``target`` goes and as whom, never with its password: ``host:port/database
    as user U``, or the embedded server's folder and database."""
    if target.type == "embedded":
        from sqlrunner.execute import embedded

        folder = str(embedded_dir or embedded.default_data_dir())
        relative = os.path.relpath(folder)
        folder = folder if relative.startswith("..") else relative
        return (f"the embedded PostgreSQL in {folder.rstrip('/')}/, database "
                f"{target.database or embedded.DATABASE} as user {embedded.SUPERUSER}")
    user = target.username or ("from IAM" if target.options.get("iam") is True else "")
    return (f"{target.host or ''}:{target.port or 5432}/{target.database or ''} "
            + (f"as user {user}" if user else "with no username"))


def target_lines(targets: tuple[TargetSpec, ...], embedded_dir: str | None = None
                 ) -> list[str]:
    """One line per target: its name, where it goes, and which rule chose it (a command
    without a playbook has one target, named "target", said once)."""
    return [("target" if target.name == "target" else f"target {target.name}")
            + f": {describe_target(target, embedded_dir)}"
            + (f" (chosen by {target.chosen_by})" if target.chosen_by else "")
            for target in targets]


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


def server_dsn(target: TargetSpec, embedded_dir: str | None = None) -> str:
    """A libpq DSN for ``target`` (starting the embedded server if needed), for commands
    that connect without a playbook run: ``generate``, ``demo``, ``psql``."""
    from psycopg.conninfo import make_conninfo

    params = connection_for(target, embedded_dir).params
    return make_conninfo(**{key: value for key, value in params.items()
                            if key not in KEEPALIVES and value is not None})


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
