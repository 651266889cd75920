"""Shared fixtures: a real PostgreSQL server and a fresh database per test.

The server is, in order: ``SQLRUNNER_TEST_DSN`` if set; the machine's
PostgreSQL on 127.0.0.1:5432 if it answers; otherwise an embedded server
(``sqlrunner.execute.embedded``) of the suite's own, in a temporary folder removed at
the end (never the project's ``.sqlrunner``, where the demo keeps its data).

The suite touches only databases it created, under names of its own
(:func:`suite_database_name`): every connection a test opens in this process is
recorded, and a test that connected to any other database than those and the server's
maintenance database fails (:func:`only_the_suites_databases`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import Phase, settings
from psycopg.conninfo import conninfo_to_dict, make_conninfo

# `pytest --hypothesis-profile=planted`: no saved examples and no shrinking, to check that
# a deliberately planted bug is found from scratch, and quickly (tests/README.md).
settings.register_profile("planted", database=None, phases=[Phase.explicit, Phase.generate])

LOCAL_CANDIDATES = (
    "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3",
    "host=127.0.0.1 port=5432 user=root dbname=test connect_timeout=3",
)

# Every database the suite creates is named so; nothing else on any server is the suite's.
SUITE_PREFIX = "sqlrunner_test_"


def suite_database_name(label: str = "") -> str:
    """A new database name of the suite's own: its prefix, ``label``, a random part."""
    return f"{SUITE_PREFIX}{label}{uuid.uuid4().hex[:12]}"


def _maintenance_databases() -> frozenset[str]:
    """The databases the suite connects to only to create and drop its own: ``postgres``
    and the database of the DSN it was given."""
    names = {"postgres"}
    for dsn in (*LOCAL_CANDIDATES, os.environ.get("SQLRUNNER_TEST_DSN", "")):
        names.add(str(conninfo_to_dict(dsn).get("dbname", "postgres")))
    return frozenset(names)


MAINTENANCE_DATABASES = _maintenance_databases()

# The database of every connection opened in this process (the tests' own and sqlrunner's),
# in order: psycopg.connect records it.
_connected_databases: list[str] = []
_connected_guard = threading.Lock()
_psycopg_connect = psycopg.connect


def _recording_connect(*args: Any, **kwargs: Any) -> psycopg.Connection:
    conn = _psycopg_connect(*args, **kwargs)
    with _connected_guard:
        _connected_databases.append(conn.info.dbname)
    return conn


psycopg.connect = _recording_connect  # type: ignore[assignment]


def connected_databases(start: int = 0) -> list[str]:
    """The databases of the connections opened in this process, from the ``start``-th on."""
    with _connected_guard:
        return _connected_databases[start:]


def foreign_databases(names: Iterable[str]) -> list[str]:
    """Those of ``names`` that the suite did not create and may not touch."""
    return sorted({name for name in names
                   if not name.startswith(SUITE_PREFIX) and name not in MAINTENANCE_DATABASES})


@pytest.fixture(autouse=True)
def only_the_suites_databases() -> Iterator[None]:
    """Fails a test that connected to a database the suite did not create (the demo's, a
    user's), whatever the server: only names with the suite's prefix and the server's
    maintenance database are allowed."""
    start = len(connected_databases())
    yield
    foreign = foreign_databases(connected_databases(start))
    assert not foreign, f"the test connected to databases the suite did not create: {foreign}"


def _answers(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def _find_server() -> str | None:
    """The DSN of the server to test on, or None: start an embedded one."""
    explicit = os.environ.get("SQLRUNNER_TEST_DSN")
    if explicit:
        return explicit
    if os.environ.get("SQLRUNNER_TEST_EMBEDDED") != "1":
        for dsn in LOCAL_CANDIDATES:
            if _answers(dsn):
                return dsn
    return None


@contextmanager
def private_embedded_folder() -> Iterator[Path]:
    """A data folder for an embedded server of the suite's own, reachable by the
    unprivileged account the server runs as under root (pytest's own tmp folder is
    private); its server stopped and the folder removed on leaving."""
    from sqlrunner.execute import embedded

    folder = Path(tempfile.mkdtemp(prefix="sqlrunner-embedded-test-"))
    folder.chmod(0o711)
    try:
        yield folder
    finally:
        embedded.stop_server(folder)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def server_dsn() -> Iterator[str]:
    """A DSN of a superuser connection to a live PostgreSQL server."""
    found = _find_server()
    if found is not None:
        yield found
        return
    from sqlrunner.execute import embedded

    with private_embedded_folder() as folder:
        yield embedded.ensure_server(folder)


@contextmanager
def new_database(server_dsn: str, options: str = "") -> Iterator[str]:
    """A DSN of a new, empty database on the server, dropped on leaving (``options``:
    more of CREATE DATABASE, such as a template and a locale)."""
    name = suite_database_name()
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" {options}')
    params = conninfo_to_dict(server_dsn)
    params["dbname"] = name
    try:
        yield make_conninfo(**params)
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database(server_dsn: str) -> Iterator[str]:
    """A DSN of a new, empty database, dropped after the test."""
    with new_database(server_dsn) as dsn:
        yield dsn


@pytest.fixture
def db_params(database: str) -> dict[str, str]:
    """The fresh database's connection fields (host, port, user, dbname, ...)."""
    return {k: str(v) for k, v in conninfo_to_dict(database).items()}


def target_yaml(params: dict[str, str], name: str = "db", colon: bool = False) -> str:
    """A playbook ``targets`` entry for a database, in SQL Runner's (colon) or plain style."""
    c = ":" if colon else ""
    return (
        f"  - {c}name: {name}\n"
        f"    {c}type: postgres\n"
        f"    {c}host: {params.get('host', '127.0.0.1')}\n"
        f"    {c}port: {params.get('port', '5432')}\n"
        f"    {c}database: {params['dbname']}\n"
        f"    {c}username: {params.get('user', 'postgres')}\n"
        f"    {c}password:\n"
        f"    {c}ssl: false\n"
    )


class PlaybookDir:
    """A temporary folder holding a playbook and its SQL files.

    ``params`` are the connection fields of the playbook's default target: given, or
    made on first use by ``make_params`` (the ``workdir`` fixture creates the test's
    database only when a playbook targets it).
    """

    def __init__(self, root, params: dict[str, str] | None = None,
                 make_params: Callable[[], dict[str, str]] | None = None) -> None:
        self.root = root
        self._params = params
        self._make_params = make_params

    @property
    def params(self) -> dict[str, str]:
        """The connection fields of the playbook's default target."""
        if self._params is None:
            assert self._make_params is not None, "a PlaybookDir without a target"
            self._params = self._make_params()
        return self._params

    def sql(self, name: str, text: str) -> str:
        """Write a SQL file under ``sql/``; returns its path relative to the playbook."""
        path = self.root / "sql" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return f"sql/{name}"

    def playbook(self, steps: str, variables: str = "", targets: str | None = None,
                 name: str = "playbook.yml") -> str:
        """Write a playbook with the fresh database as its target; returns its path."""
        text = "targets:\n" + (targets if targets is not None else target_yaml(self.params))
        if variables:
            text += "variables:\n" + variables
        text += "steps:\n" + steps
        path = self.root / name
        path.write_text(text)
        return str(path)

    def steps(self, *steps: tuple[str, list[tuple[str, str]]], template: bool = False) -> str:
        """YAML for steps given as (step name, [(query name, file), ...])."""
        out = []
        for step_name, queries in steps:
            out.append(f"  - name: {step_name}\n    queries:\n")
            for query_name, file in queries:
                out.append(f"      - name: {query_name}\n        file: {file}\n")
                if template:
                    out.append("        template: true\n")
        return "".join(out)


NEVER_CREATED = f"{SUITE_PREFIX}never_created"


@pytest.fixture
def workdir(tmp_path, request, monkeypatch) -> PlaybookDir:
    """A temporary playbook folder (the working directory) whose target is a fresh database,
    created when a playbook first names it.

    A test marked ``no_database`` never connects to it (it renders, validates, or runs
    against another target): its target is a database on the test server that is never
    created.
    """
    monkeypatch.chdir(tmp_path)
    if request.node.get_closest_marker("no_database"):
        server = conninfo_to_dict(request.getfixturevalue("server_dsn"))
        return PlaybookDir(tmp_path, {**{k: str(v) for k, v in server.items()},
                                      "dbname": NEVER_CREATED})
    return PlaybookDir(tmp_path, make_params=lambda: request.getfixturevalue("db_params"))


@pytest.fixture(scope="module")
def fault_server():
    """A private server (tests/private_server.py) for a module's restart and crash tests:
    the shared server must never see them."""
    from private_server import private_server

    with private_server() as server:
        yield server


@pytest.fixture
def fault_database(fault_server) -> str:
    """A new database on the module's private server (started again if a test left it
    down); its DSN."""
    if not fault_server.accepts_connections():
        fault_server.start()
    return fault_server.create_database(suite_database_name())


def run_sql(dsn: str, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
    """Run ``sql`` on the database at ``dsn``: the one way tests run SQL of their own.

    One autocommit connection: a text of several statements runs as one implicit
    transaction, as the runner sends a file. Returns the rows of its first result
    (``[]`` when that returns none).
    """
    with psycopg.connect(dsn, autocommit=True) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description is not None else []


def wait_for_query(dsn: str, fragment: str, timeout: float = 60) -> None:
    """Wait until a query holding ``fragment`` runs in the database at ``dsn`` (another
    session's, never another database's):
    what a test waits for before it meets a run mid-query, on a machine of any speed."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as admin:
        while time.monotonic() < deadline:
            if admin.execute("SELECT 1 FROM pg_stat_activity WHERE state = 'active' AND "
                             "datname = current_database() AND query LIKE %s AND "
                             "pid <> pg_backend_pid()",
                             (f"%{fragment}%",)).fetchone():
                return
            time.sleep(0.02)
    raise AssertionError(f"query {fragment!r} never started")


def query_one(dsn: str, sql: str, params: Sequence[Any] | None = None) -> Any:
    """The first column of the first row of ``sql`` (None when there is no row)."""
    rows = run_sql(dsn, sql, params)
    return rows[0][0] if rows else None


@pytest.fixture
def embedded_folder() -> Iterator[Path]:
    """A data folder for an embedded server of the test's own, removed afterwards."""
    with private_embedded_folder() as folder:
        yield folder
