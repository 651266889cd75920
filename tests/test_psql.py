"""``sqlrunner psql``: the way into the data, on the database every command would use;
with nothing configured, the embedded server, started again when it has stopped."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

import pytest
from psycopg.conninfo import conninfo_to_dict

from sqlrunner.cli.demo import DEMO_DATABASE, way_in
from sqlrunner.execute.targets import LIBPQ_SERVER_ENV, TARGET_ENV


def _sqlrunner_psql(*args: str, env: dict[str, str] | None = None, cwd=None
                    ) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items()
            if k not in LIBPQ_SERVER_ENV and k != TARGET_ENV}
    return subprocess.run([sys.executable, "-m", "sqlrunner", "psql", *args],
                          capture_output=True, text=True, timeout=120, cwd=cwd,
                          env={**base, **(env or {})})


def test_psql_runs_on_the_target_given(database):
    done = _sqlrunner_psql("--target", database, "-tA", "-c", "SELECT 40 + 2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "42"


def test_psql_follows_libpq_environment_like_every_command(database):
    params = conninfo_to_dict(database)
    done = _sqlrunner_psql("-tA", "-c", "SELECT current_database()",
                           env={"PGHOST": str(params["host"]), "PGPORT": str(params["port"]),
                                "PGUSER": str(params["user"]),
                                "PGDATABASE": str(params["dbname"])})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == params["dbname"]
    assert "chosen by libpq's environment" in done.stderr


def test_psql_passes_on_its_exit_code(database):
    done = _sqlrunner_psql("--target", database, "-v", "ON_ERROR_STOP=1", "-c",
                           "SELECT * FROM no_such_table")
    assert done.returncode != 0
    assert "no_such_table" in done.stderr


@pytest.mark.slow
def test_psql_reaches_the_embedded_data_after_the_server_stopped(embedded_folder, tmp_path):
    folder = ["--embedded-dir", str(embedded_folder)]
    made = _sqlrunner_psql(*folder, "-c", "CREATE TABLE kept AS SELECT 7 AS x", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert "the embedded PostgreSQL" in made.stderr
    # The server stopped with the first command; the second starts it again.
    read = _sqlrunner_psql(*folder, "-tA", "-c", "SELECT x FROM kept", cwd=tmp_path)
    assert read.returncode == 0, read.stderr
    assert read.stdout.strip() == "7"


def _run_hint(hint: str, *psql_args: str, cwd=None) -> subprocess.CompletedProcess:
    """Run the command the demo's last line gives, with more psql arguments."""
    argv = shlex.split(hint)
    assert argv[:2] == ["sqlrunner", "psql"]
    return _sqlrunner_psql(*argv[2:], *psql_args, cwd=cwd)


def test_the_demo_hint_for_a_server_opens_its_database_without_a_password(database):
    hint = way_in(database + " password=sekret-5150", embedded=False, embedded_dir=None)
    assert "sekret" not in hint
    done = _run_hint(hint, "-tA", "-c", "SELECT current_database()")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == conninfo_to_dict(database)["dbname"]


@pytest.mark.slow
def test_the_demo_hint_opens_the_demo_database_on_the_stopped_embedded_server(
        embedded_folder, tmp_path):
    made = _sqlrunner_psql("--embedded-dir", str(embedded_folder), "-c",
                           f"CREATE DATABASE {DEMO_DATABASE}", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    hint = way_in("", embedded=True, embedded_dir=str(embedded_folder))
    done = _run_hint(hint, "-tA", "-c", "SELECT current_database()", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == DEMO_DATABASE
