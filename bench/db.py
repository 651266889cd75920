"""Databases of the benchmarks: a fresh one per benchmark, and cached templates of generated data.

Every benchmark works in a database of its own, created through the server DSN
and dropped at the end. Generated events are expensive (about 30,000 events/s),
so each data set is generated once into a template database, named after its
size, seed and a digest of everything that shapes it (the generator, the setup
SQL, the full playbook); a benchmark clones it with ``CREATE DATABASE ...
TEMPLATE`` (a file copy). A template whose digest no longer matches is dropped
and made again.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
PREFIX = "sqlrunner_bench_"
DATA_PREFIX = PREFIX + "data_"


def with_database(dsn: str, name: str) -> str:
    """``dsn`` pointing at database ``name``."""
    params = conninfo_to_dict(dsn)
    params["dbname"] = name
    return make_conninfo(**params)


@dataclass(frozen=True)
class Endpoint:
    """Where a database is, as a playbook target and as psql's options spell it."""

    host: str
    port: str
    user: str
    password: str | None
    database: str

    @classmethod
    def of(cls, dsn: str) -> Endpoint:
        params = conninfo_to_dict(dsn)
        user = params.get("user") or os.environ.get("PGUSER") or "postgres"
        return cls(host=params.get("host") or "127.0.0.1", port=str(params.get("port") or 5432),
                   user=user, password=params.get("password"),
                   database=params.get("dbname") or user)

    def psql_args(self) -> list[str]:
        return ["-h", self.host, "-p", self.port, "-U", self.user, "-d", self.database]

    def psql_env(self) -> dict[str, str]:
        return {"PGPASSWORD": self.password} if self.password else {}

    def playbook_target(self) -> str:
        """The YAML of a ``postgres`` target for this database."""
        password = self.password or ""
        return ("targets:\n  - name: bench\n    type: postgres\n"
                f"    host: {self.host!s}\n    port: {self.port}\n"
                f"    database: {self.database}\n    username: {self.user}\n"
                f"    password: \"{password}\"\n")


def server_version(dsn: str) -> str:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute("SHOW server_version").fetchone()[0]


def _drop(admin: psycopg.Connection, name: str) -> None:
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
        sql.Identifier(name)))


@contextmanager
def fresh_database(server_dsn: str, label: str, template: str | None = None) -> Iterator[str]:
    """A new database (a clone of ``template`` if given), dropped afterwards; yields its DSN."""
    name = f"{PREFIX}{label}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        if template is None:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        else:
            # FILE_COPY: a plain copy of the files, much faster than WAL-logging every block.
            admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY = FILE_COPY")
                          .format(sql.Identifier(name), sql.Identifier(template)))
    try:
        yield with_database(server_dsn, name)
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as admin:
            _drop(admin, name)


def digest_of(paths: list[Path]) -> str:
    """A short digest of the files' contents (folders: every file below them)."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if "__pycache__" in file.parts:
                continue
            digest.update(str(file.relative_to(ROOT)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:8]


def data_template(server_dsn: str, kind: str, digest: str,
                  build: Callable[[str], None], regenerate: bool = False) -> tuple[str, bool]:
    """The template database ``sqlrunner_bench_data_<kind>_<digest>``, built by ``build(dsn)``
    if missing. Returns its name and whether it was built now. Stale versions of the same
    kind (other digests) are dropped."""
    name = f"{DATA_PREFIX}{kind}_{digest}"
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        existing = [r[0] for r in admin.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s",
            (_like_prefix(f"{DATA_PREFIX}{kind}_"),)).fetchall()]
        for other in existing:
            if other != name or regenerate:
                _drop(admin, other)
        if name in existing and not regenerate:
            return name, False
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        build(with_database(server_dsn, name))
    except BaseException:
        with psycopg.connect(server_dsn, autocommit=True) as admin:
            _drop(admin, name)
        raise
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        # No connections may remain on a template while it is being cloned.
        admin.execute("CHECKPOINT")
    return name, True


def drop_all(server_dsn: str) -> list[str]:
    """Drop every database the benchmarks made (``sqlrunner_bench_*``); returns their names."""
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        names = [r[0] for r in admin.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s",
            (_like_prefix(PREFIX),)).fetchall()]
        for name in names:
            _drop(admin, name)
    return names


def _like_prefix(text: str) -> str:
    """A LIKE pattern matching names that start with ``text`` exactly."""
    return text.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%") + "%"
