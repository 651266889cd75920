"""The retry rules of sqlrunner/execute/retry.py, one row per SQLSTATE or message they decide on.

Each SQLSTATE row is checked twice: on psycopg's own exception class for the code
(``psycopg.errors.lookup``), and on the error a real server sends when a statement raises
that code (``RAISE ... USING ERRCODE``), diagnostics and all. Connection failures carry no
SQLSTATE: they are classified by message, here both as constructed exceptions
and as real ones (a closed port, a terminated backend, a crashed server).
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import psycopg
import pytest
from conftest import query_one, run_sql
from private_server import free_port, private_server

from sqlrunner.api import run_playbook
from sqlrunner.execute.retry import ConnectFailed, is_connection_loss, is_transient
from sqlrunner.execute.targets import connect, connection_for, target_from_dsn
from sqlrunner.playbook import TargetSpec

RETRIED, NEVER = True, False

# (SQLSTATE, message, retried?): every class and code the rules name, and their neighbours.
SQLSTATE_RULES = [
    # class 08, connection exceptions: all retried
    ("08000", "connection exception", RETRIED),
    ("08001", "could not establish connection", RETRIED),
    ("08003", "connection does not exist", RETRIED),
    ("08004", "server rejected the connection", RETRIED),
    ("08006", "connection failure", RETRIED),
    ("08007", "transaction resolution unknown", RETRIED),
    ("08P01", "protocol violation", RETRIED),
    # the server going away or busy
    ("57P01", "terminating connection due to administrator command", RETRIED),
    ("57P02", "terminating connection because of crash of another server process", RETRIED),
    ("57P03", "the database system is starting up", RETRIED),
    ("53300", "sorry, too many clients already", RETRIED),
    # concurrency
    ("40001", "could not serialize access due to concurrent update", RETRIED),
    ("40P01", "deadlock detected", RETRIED),
    ("55P03", "could not obtain lock on relation \"t\"", RETRIED),
    # Redshift's catch-all XX000: only its transient messages
    ("XX000", "1023", RETRIED),
    ("XX000", "Serializable isolation violation on table - 105472, transactions forming the "
              "cycle are: 1001, 1002 (pid:12345)", RETRIED),
    ("XX000", "could not open relation with OID 105472", RETRIED),
    ("XX000", "error reading block 1023 of relation base/1/2", NEVER),
    ("XX000", "Invalid digit, Value 'x', Pos 0, Type: Integer", NEVER),
    ("XX000", "internal error", NEVER),
    # never: the same SQL fails the same way again
    ("42601", "syntax error at or near \"SELEC\"", NEVER),
    ("42P01", "relation \"missing\" does not exist", NEVER),
    ("42703", "column \"x\" does not exist", NEVER),
    ("42501", "permission denied for table t", NEVER),
    ("22012", "division by zero", NEVER),
    ("22P02", "invalid input syntax for type integer: \"x\"", NEVER),
    ("22001", "value too long for type character varying(3)", NEVER),
    ("23505", "duplicate key value violates unique constraint \"t_pkey\"", NEVER),
    ("23502", "null value in column \"x\" violates not-null constraint", NEVER),
    ("0A000", "cannot run inside a transaction block", NEVER),
    ("28P01", "password authentication failed for user \"loader\"", NEVER),
    ("28000", "no pg_hba.conf entry for host", NEVER),
    ("25P02", "current transaction is aborted, commands ignored until end of transaction "
              "block", NEVER),
    ("57014", "canceling statement due to statement timeout", NEVER),
    # neighbours of the retried codes, which must not be swept in with them
    ("40002", "transaction integrity constraint violation", NEVER),
    ("40003", "statement completion unknown", NEVER),
    ("57P04", "database dropped", NEVER),
    ("53100", "could not extend file: No space left on device", NEVER),
    ("53200", "out of memory", NEVER),
    ("55006", "database \"x\" is being accessed by other users", NEVER),
    ("P0001", "a check in the model failed", NEVER),
    ("XX001", "invalid page in block 1 of relation base/1/2", NEVER),
]

# Connection failures as libpq words them, without SQLSTATE (psycopg.OperationalError).
CONNECTION_RULES = [
    ('connection failed: connection to server at "10.0.0.5", port 5439 failed: Connection '
     'refused\n\tIs the server running on that host and accepting TCP/IP connections?',
     RETRIED),
    ('connection failed: connection to server at "10.0.0.5", port 5439 failed: timeout '
     'expired', RETRIED),
    ("consuming input failed: server closed the connection unexpectedly\n\tThis probably "
     "means the server terminated abnormally\n\tbefore or while processing the request.",
     RETRIED),
    ('connection failed: connection to server at "10.0.0.5", port 5432 failed: FATAL:  the '
     'database system is starting up', RETRIED),
    ('connection failed: connection to server at "10.0.0.5", port 5432 failed: FATAL:  the '
     'database system is shutting down', RETRIED),
    ('connection failed: connection to server at "10.0.0.5", port 5432 failed: FATAL:  '
     'sorry, too many clients already', RETRIED),
    ("the connection is closed", RETRIED),
    ('connection failed: connection to server at "10.0.0.5", port 5432 failed: FATAL:  '
     'password authentication failed for user "loader"', NEVER),
    ('connection failed: connection to server at "10.0.0.5", port 5432 failed: FATAL:  no '
     'pg_hba.conf entry for host "10.0.0.9", user "loader", database "events", no '
     'encryption', NEVER),
    ('connection failed: connection to server at "10.0.0.5", port 5432 failed: FATAL:  '
     'database "events" does not exist', NEVER),
    ('connection failed: connection to server at "10.0.0.5", port 5432 failed: FATAL:  '
     'role "loader" does not exist', NEVER),
    ('connection failed: could not translate host name "warehouse.invalid" to address: '
     'Name or service not known', NEVER),
    ('connection failed: connection to server at "10.0.0.5", port 5432 failed: SSL error: '
     'certificate verify failed', NEVER),
    ('connection failed: connection to server at "10.0.0.5", port 5432 failed: server '
     'certificate for "db.example.com" does not match host name "10.0.0.5"', NEVER),
    ('connection failed: connection to server at "10.0.0.5", port 5432 failed: FATAL:  '
     'permission denied for database "events"', NEVER),
]


def _rule_id(rule: tuple) -> str:
    return f"{rule[0]}-{'retried' if rule[-1] else 'never'}"


@pytest.fixture(scope="module")
def raiser(server_dsn):
    """A connection to the test server on which statements raise chosen errors."""
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        yield conn


def _raised_by_the_server(conn: psycopg.Connection, sqlstate: str,
                          message: str) -> psycopg.Error:
    """The exception psycopg raises when the server reports ``sqlstate`` with ``message``."""
    with pytest.raises(psycopg.Error) as caught:
        conn.execute("DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = "
                     f"'{sqlstate}', MESSAGE = {_literal(message)}; END $$")
    return caught.value


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@pytest.mark.parametrize(("sqlstate", "message", "retried"), SQLSTATE_RULES,
                         ids=[_rule_id(r) for r in SQLSTATE_RULES])
def test_each_sqlstate_is_retried_or_not_as_the_rules_say(raiser, sqlstate, message, retried):
    constructed = psycopg.errors.lookup(sqlstate)(message)
    assert constructed.sqlstate == sqlstate
    assert is_transient(constructed) is retried
    from_server = _raised_by_the_server(raiser, sqlstate, message)
    assert from_server.sqlstate == sqlstate and from_server.diag.message_primary == message
    assert type(from_server) is type(constructed)
    assert is_transient(from_server) is retried


@pytest.mark.parametrize(("message", "retried"), CONNECTION_RULES,
                         ids=[f"{i:02d}-{'retried' if r else 'never'}"
                              for i, (_, r) in enumerate(CONNECTION_RULES)])
def test_each_connection_failure_without_sqlstate_is_retried_or_not_by_its_message(
        message, retried):
    err = psycopg.OperationalError(message)
    assert err.sqlstate is None
    assert is_transient(err) is retried
    # As sqlrunner reports it when opening a connection: transient exactly when its cause is.
    try:
        raise ConnectFailed(f"cannot connect to target 'db': {message}") from err
    except ConnectFailed as wrapped:
        assert is_transient(wrapped) is retried


def test_errors_that_are_not_from_the_database_are_never_retried():
    assert is_transient(ValueError("08006")) is False
    assert is_transient(ConnectFailed("cannot connect to target 'db'")) is False  # no cause
    assert is_transient(psycopg.InterfaceError("the connection is closed")) is False


@pytest.mark.parametrize(("err", "lost"), [
    (psycopg.OperationalError("server closed the connection unexpectedly"), True),
    (psycopg.errors.lookup("08006")("connection failure"), True),
    (psycopg.errors.lookup("08003")("connection does not exist"), True),
    (psycopg.errors.lookup("57P01")("terminating connection"), True),
    (psycopg.errors.lookup("57P02")("crash of another server process"), True),
    (psycopg.errors.lookup("40001")("could not serialize access"), False),
    (psycopg.errors.lookup("57014")("canceling statement"), False),
    (psycopg.errors.lookup("53300")("too many clients"), False),
    (psycopg.errors.lookup("42601")("syntax error"), False),
], ids=["no-sqlstate", "08006", "08003", "57P01", "57P02", "40001", "57014", "53300", "42601"])
def test_a_lost_connection_is_told_from_an_error_on_a_live_one(err, lost):
    """After a lost connection the query's outcome is unknown (it may have committed)."""
    assert is_connection_loss(err) is lost


# -- real failures ------------------------------------------------------------------------

def _target(host: str, port: int, database: str = "postgres") -> TargetSpec:
    return TargetSpec(name="db", type="postgres", line=1, host=host, port=str(port),
                      database=database, username="postgres",
                      options={"connect_timeout": 5})


def test_a_closed_port_is_a_transient_connection_failure():
    port = free_port()  # nothing listens there
    with pytest.raises(ConnectFailed) as caught:
        connect(connection_for(_target("127.0.0.1", port)))
    cause = caught.value.__cause__
    assert isinstance(cause, psycopg.OperationalError) and cause.sqlstate is None
    assert "Connection refused" in str(cause)
    assert is_transient(cause) and is_transient(caught.value)


def test_an_unknown_database_is_a_permanent_connection_failure(server_dsn):
    target = replace(target_from_dsn(server_dsn), database="no_such_database")
    with pytest.raises(ConnectFailed) as caught:
        connect(connection_for(target))
    assert 'database "no_such_database" does not exist' in str(caught.value)
    assert not is_transient(caught.value)


def _terminated_mid_query(dsn: str) -> psycopg.Error:
    """The error a query gets when another session terminates its backend."""
    victim = psycopg.connect(dsn, autocommit=True)
    pid = victim.info.backend_pid

    def terminate() -> None:
        with psycopg.connect(dsn, autocommit=True) as admin:
            while not admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s "
                                    "AND state = 'active'", (pid,)).fetchone()[0]:
                time.sleep(0.01)
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

    killer = threading.Thread(target=terminate)
    killer.start()
    try:
        with pytest.raises(psycopg.Error) as caught:
            victim.execute("SELECT pg_sleep(60)")
    finally:
        killer.join(timeout=60)
        victim.close()
    return caught.value


def test_a_terminated_backend_is_a_transient_connection_loss(database):
    err = _terminated_mid_query(database)
    assert err.sqlstate == "57P01"
    assert is_transient(err) and is_connection_loss(err)


@pytest.mark.slow
def test_a_crashed_server_is_a_transient_connection_loss_then_refuses_until_restarted():
    with private_server() as server:
        conn = psycopg.connect(server.dsn(), autocommit=True)
        conn.execute("SELECT 1")
        server.kill()  # SIGKILL of the postmaster; its backends exit
        with pytest.raises(psycopg.OperationalError) as caught:
            conn.execute("SELECT 1")
        conn.close()
        assert is_transient(caught.value) and is_connection_loss(caught.value)
        with pytest.raises(ConnectFailed) as refused:
            connect(connection_for(_target("127.0.0.1", server.port)))
        assert is_transient(refused.value)


# -- through a run (the transient ones: tests/test_reliability.py) -------------------------

@pytest.mark.parametrize("sqlstate", ["42P01", "22012", "23505", "0A000", "25P02", "57014",
                                      "XX000"])
def test_a_run_never_retries_an_error_that_would_come_again(workdir, database, sqlstate):
    run_sql(database, "CREATE SEQUENCE tries")
    failing = workdir.sql("failing.sql", "DO $$ BEGIN PERFORM nextval('tries'); RAISE "
                                         f"EXCEPTION 'final' USING ERRCODE = '{sqlstate}'; "
                                         "END $$;")
    result = run_playbook(workdir.playbook(workdir.steps(("s", [("failing", failing)]))),
                          retry_backoff=0.01)
    assert result.exit_code == 6
    assert (result.queries[0].sqlstate, result.queries[0].retries) == (sqlstate, 0)
    assert query_one(database, "SELECT last_value FROM tries") == 1
