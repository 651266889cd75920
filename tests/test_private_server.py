"""The private server that restart, crash and TLS tests start for themselves."""

from __future__ import annotations

import psycopg
import pytest
from private_server import private_server

pytestmark = pytest.mark.slow  # not in the quick subset (-m "not slow")


def test_a_private_server_survives_a_restart_and_a_crash_with_its_committed_rows():
    with private_server() as server:
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (n int)")
            conn.execute("CREATE UNLOGGED TABLE emptied (n int)")
            conn.execute("INSERT INTO kept VALUES (1)")
            conn.execute("INSERT INTO emptied VALUES (1)")
            conn.execute("CHECKPOINT")
        server.restart("fast")
        server.stop("immediate")
        assert not server.accepts_connections()
        server.start()
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM kept").fetchone()[0] == 1
            # a crash empties unlogged tables at recovery
            assert conn.execute("SELECT count(*) FROM emptied").fetchone()[0] == 0
        server.kill()
        assert not server.accepts_connections()
        server.start()
        assert server.accepts_connections()
