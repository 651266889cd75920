"""sqlrunner demo: loads in batches, the incremental playbook after each, the tables shown."""

from __future__ import annotations

import pytest
from conftest import query_one, run_sql, suite_database_name

from sqlrunner.cli import demo, main

pytestmark = pytest.mark.slow  # not in the quick subset (-m "not slow")

DATABASE_OID = "SELECT oid FROM pg_database WHERE datname = %s"
USERS_DEMO_DATABASE = demo.DEMO_DATABASE  # what `sqlrunner demo` creates for a user


def test_the_demo_models_every_batch_and_shows_the_tables(
    server_dsn, capsys, monkeypatch, tmp_path
):
    # The demo recreates its database; the test's demo gets one of the suite's own, so that
    # a user's demo database on the same server (or embedded folder) survives the suite.
    own = suite_database_name("demo_")
    users_demo = query_one(server_dsn, DATABASE_OID, (USERS_DEMO_DATABASE,))
    monkeypatch.setattr(demo, "DEMO_DATABASE", own)
    monkeypatch.chdir(tmp_path)  # no embedded data folder in the project, were one started
    try:
        assert main(["demo", "--events", "3000", "--batches", "3", "--target", server_dsn]) == 0
        out = capsys.readouterr().out
        assert "derived.sessions" in out and "the busiest sessions" in out
        # columns for analysts: channel grouping, engagement, scroll depth
        assert "sessions by channel" in out and "avg_scrolled_pct" in out
        assert "channel" in out.split("the busiest sessions")[1].splitlines()[2]
        assert "3,000" in out  # every event reached atomic.events
        assert query_one(server_dsn, DATABASE_OID, (own,)) is not None
    finally:
        run_sql(server_dsn, f'DROP DATABASE IF EXISTS "{own}" WITH (FORCE)')
    assert query_one(server_dsn, DATABASE_OID, (USERS_DEMO_DATABASE,)) == users_demo
