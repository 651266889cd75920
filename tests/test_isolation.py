"""The suite touches only databases it created: what tests/conftest.py's guard relies on."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest
from conftest import (
    NEVER_CREATED,
    SUITE_PREFIX,
    connected_databases,
    foreign_databases,
    new_database,
    suite_database_name,
)
from psycopg.conninfo import conninfo_to_dict

from sqlrunner.api import run_playbook


def test_every_connection_of_the_process_is_recorded_with_its_database(workdir, database):
    start = len(connected_databases())
    with psycopg.connect(database):
        pass
    sql = workdir.sql("one.sql", "SELECT 1;")
    assert run_playbook(workdir.playbook(workdir.steps(("s", [("q", sql)])))).exit_code == 0
    name = conninfo_to_dict(database)["dbname"]
    assert connected_databases(start)[0] == name
    assert set(connected_databases(start)) == {name}  # sqlrunner's connections too


def test_a_database_the_suite_did_not_create_is_foreign():
    assert foreign_databases(
        ["sqlrunner_demo", "postgres", suite_database_name(), "events", NEVER_CREATED]
    ) == ["events", "sqlrunner_demo"]


def test_the_suites_databases_carry_its_prefix_and_are_dropped(server_dsn):
    with new_database(server_dsn) as dsn:
        name = conninfo_to_dict(dsn)["dbname"]
        assert name.startswith(SUITE_PREFIX)
    with psycopg.connect(server_dsn) as admin:
        assert (
            admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            is None
        )


@pytest.mark.no_database
def test_an_embedded_test_server_lives_in_a_folder_of_the_suites_own(server_dsn):
    host = str(conninfo_to_dict(server_dsn).get("host", ""))
    if os.environ.get("SQLRUNNER_TEST_EMBEDDED") != "1":
        pytest.skip("runs on the embedded server only (see the next test)")
    # never the project's .sqlrunner (or its /var/tmp/sqlrunner-<hash> under root), where
    # the demo keeps its data
    suite_folder = Path(tempfile.gettempdir()) / "sqlrunner-embedded-test-"
    assert host.startswith(str(suite_folder)), host
    print(f"EMBEDDED-HOST={host}")


@pytest.mark.slow
@pytest.mark.no_database
def test_without_a_server_the_suite_starts_an_embedded_one_of_its_own_and_removes_it():
    root = Path(__file__).resolve().parent.parent
    inner = "tests/test_isolation.py::" + (
        "test_an_embedded_test_server_lives_in_a_folder_of_the_suites_own"
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", inner],
        cwd=root,
        env={**os.environ, "SQLRUNNER_TEST_EMBEDDED": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    host = re.search(r"EMBEDDED-HOST=(\S+)", done.stdout)
    assert host, done.stdout
    folder = Path(host.group(1)).parent.parent  # <folder>/postgres/data
    assert folder.name.startswith("sqlrunner-embedded-test-")
    assert not folder.exists()
