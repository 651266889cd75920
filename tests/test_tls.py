"""TLS as sqlrunner asks libpq for it, against a private server with ``ssl = on``.

A throwaway certificate authority is made for the test with the ``openssl`` command; the
server's certificate names ``localhost``. Everything goes through sqlrunner's own target
handling (a playbook target with ``sslmode``/``sslrootcert``, or ``--target`` with those
DSN parameters), so these tests fail if sqlrunner stopped handing the settings to libpq.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from conftest import PlaybookDir, run_sql, suite_database_name, target_yaml
from private_server import PrivateServer, private_server

from sqlrunner.api import run_playbook

pytestmark = pytest.mark.slow  # not in the quick subset (-m "not slow")

SERVER_NAME = "localhost"  # the name in the server's certificate
OTHER_NAME = "127.0.0.1"  # the same server, by a name its certificate does not hold
NO_SSL_BUILD = "SSL is not supported by this build"  # the server's log, at start
# The session's own view of its TLS: a row only when the query came over TLS.
RECORD_TLS = ("CREATE TABLE tls_seen AS SELECT ssl, version FROM pg_stat_ssl "
              "WHERE pid = pg_backend_pid();")


def _openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, f"openssl {' '.join(args)}: {done.stderr}"


def _make_ca(folder: Path, name: str) -> None:
    """A self-signed CA: ``NAME.crt`` and ``NAME.key`` in ``folder``."""
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2",
             "-subj", f"/CN=sqlrunner test {name}", cwd=folder)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> Path:
    """A folder with ``ca.crt`` (it signed ``server.crt`` for localhost), ``other_ca.crt``
    (it signed nothing the server shows) and ``server.crt``/``server.key``."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed (it makes the test's certificates)")
    folder = tmp_path_factory.mktemp("tls")
    _make_ca(folder, "ca")
    _make_ca(folder, "other_ca")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", "server.key", "-out", "server.csr", "-subj", f"/CN={SERVER_NAME}",
             cwd=folder)
    (folder / "server.ext").write_text(f"subjectAltName = DNS:{SERVER_NAME}\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-extfile", "server.ext", "-out", "server.crt",
             cwd=folder)
    return folder


@pytest.fixture(scope="module")
def tls_server(certificates: Path) -> Iterator[PrivateServer]:
    """A private server with ssl = on and the certificate signed by ``ca.crt``."""

    def install_certificate(server: PrivateServer) -> None:
        for name in ("server.crt", "server.key"):
            path = server.data / name
            shutil.copyfile(certificates / name, path)
            path.chmod(0o600)  # the server refuses a key others can read
            server.chown(path)

    # Relative paths are read from the data folder.
    settings = {"ssl": "on", "ssl_cert_file": "'server.crt'", "ssl_key_file": "'server.key'"}
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(private_server(settings, install_certificate))
        except RuntimeError as err:
            if NO_SSL_BUILD not in str(err):
                raise
            pytest.skip("the PostgreSQL server binaries found were built without SSL")
        yield server


@pytest.fixture
def database_name(tls_server: PrivateServer) -> Iterator[str]:
    """A fresh database on the TLS server for one test, dropped afterwards."""
    name = suite_database_name("tls_")
    tls_server.create_database(name)
    yield name
    run_sql(tls_server.dsn(), f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(autouse=True)
def no_libpq_tls_environment(monkeypatch, tmp_path) -> None:
    """Only what the target says counts: no PGSSLMODE, PGSSLROOTCERT or root.crt from outside."""
    for name in ("PGSSLMODE", "PGSSLROOTCERT", "PGSSLCERT", "PGSSLKEY", "PGREQUIRESSL"):
        monkeypatch.delenv(name, raising=False)
    # libpq's and sqlrunner's default root certificate is ~/.postgresql/root.crt: none.
    monkeypatch.setenv("HOME", str(tmp_path))


class TlsTarget:
    """Playbooks whose one query records the TLS of its session in a fresh database of the
    TLS server, and what that query saw."""

    def __init__(self, server: PrivateServer, dbname: str, folder: Path) -> None:
        self.server = server
        self.dbname = dbname
        self.folder = folder

    def playbook(self, host: str, **tls: str) -> str:
        """A playbook whose target reaches the server as ``host``, with ``tls`` (sslmode,
        sslrootcert, ssl) as playbook keys in place of ``ssl: false``."""
        params = {"host": host, "port": str(self.server.port), "dbname": self.dbname,
                  "user": "postgres"}
        folder = PlaybookDir(self.folder, params)
        sql = folder.sql("record.sql", RECORD_TLS)
        targets = target_yaml(params).replace("    ssl: false\n", "") + "".join(
            f"    {key}: {value}\n" for key, value in tls.items())
        return folder.playbook(folder.steps(("record", [("record", sql)])), targets=targets)

    def dsn_url(self, host: str, **tls: str) -> str:
        """The same database as a ``--target`` URL with ``tls`` as query parameters."""
        query = "&".join(f"{key}={value}" for key, value in tls.items())
        return f"postgresql://postgres@{host}:{self.server.port}/{self.dbname}?{query}"

    def seen(self) -> list[bool]:
        """``pg_stat_ssl.ssl`` of the recording query's session; [] if it never ran."""
        with psycopg.connect(self.server.dsn(self.dbname), autocommit=True) as conn:
            if conn.execute("SELECT to_regclass('tls_seen')").fetchone()[0] is None:
                return []
            rows = conn.execute("SELECT ssl, version FROM tls_seen").fetchall()
        assert all(version.startswith("TLS") for ssl, version in rows if ssl)
        return [ssl for ssl, _ in rows]

    def assert_refused(self, result, *reasons: str) -> None:
        """The run failed before its query ran, saying it cannot connect, and why."""
        assert result.exit_code != 0
        assert result.errors and all("cannot connect to target" in error
                                     for error in result.errors), result.errors
        for reason in reasons:
            assert any(reason in error for error in result.errors), (reason, result.errors)
        assert self.seen() == []


@pytest.fixture
def tls_target(tls_server: PrivateServer, database_name: str, tmp_path: Path) -> TlsTarget:
    """A fresh database on the TLS server, reached through sqlrunner's targets."""
    return TlsTarget(tls_server, database_name, tmp_path)


def test_verify_full_with_the_servers_ca_connects_over_tls(tls_target, certificates):
    playbook = tls_target.playbook(SERVER_NAME, sslmode="verify-full",
                                   sslrootcert=str(certificates / "ca.crt"))
    result = run_playbook(playbook)
    assert result.exit_code == 0, result.errors
    assert tls_target.seen() == [True]


def test_verify_full_refuses_a_server_whose_certificate_another_ca_signed(tls_target,
                                                                          certificates):
    playbook = tls_target.playbook(SERVER_NAME, sslmode="verify-full",
                                   sslrootcert=str(certificates / "other_ca.crt"))
    tls_target.assert_refused(run_playbook(playbook, retries=0), "certificate verify failed")


def test_verify_full_refuses_a_host_name_the_certificate_does_not_hold(tls_target,
                                                                       certificates):
    playbook = tls_target.playbook(OTHER_NAME, sslmode="verify-full",
                                   sslrootcert=str(certificates / "ca.crt"))
    tls_target.assert_refused(run_playbook(playbook, retries=0),
                              f'server certificate for "{SERVER_NAME}"',
                              f'does not match host name "{OTHER_NAME}"')


def test_verify_ca_checks_the_ca_but_not_the_host_name(tls_target, certificates):
    wrong_ca = tls_target.playbook(OTHER_NAME, sslmode="verify-ca",
                                   sslrootcert=str(certificates / "other_ca.crt"))
    tls_target.assert_refused(run_playbook(wrong_ca, retries=0), "certificate verify failed")
    right_ca = tls_target.playbook(OTHER_NAME, sslmode="verify-ca",
                                   sslrootcert=str(certificates / "ca.crt"))
    assert run_playbook(right_ca).exit_code == 0
    assert tls_target.seen() == [True]


@pytest.mark.parametrize("tls", [{"sslmode": "require"}, {"ssl": "true"}],
                         ids=["sslmode-require", "sql-runner-ssl-true"])
def test_require_encrypts_without_checking_the_certificate(tls_target, tls):
    # No root certificate at all, and a name the certificate does not hold: still TLS.
    result = run_playbook(tls_target.playbook(OTHER_NAME, **tls))
    assert result.exit_code == 0, result.errors
    assert tls_target.seen() == [True]


@pytest.mark.parametrize(("host", "rootcert", "reasons"), [
    (SERVER_NAME, "ca.crt", ()),
    (SERVER_NAME, "other_ca.crt", ("certificate verify failed",)),
    (OTHER_NAME, "ca.crt", (f'does not match host name "{OTHER_NAME}"',)),
], ids=["right-ca", "wrong-ca", "wrong-host"])
def test_a_target_dsn_passes_its_tls_parameters_to_libpq(tls_target, certificates, host,
                                                         rootcert, reasons):
    # The playbook's own target points nowhere: only --target's DSN can reach the server.
    playbook = tls_target.playbook("nowhere.invalid")
    dsn = tls_target.dsn_url(host, sslmode="verify-full",
                             sslrootcert=str(certificates / rootcert))
    result = run_playbook(playbook, target=dsn, retries=0)
    if reasons:
        tls_target.assert_refused(result, *reasons)
    else:
        assert result.exit_code == 0, result.errors
        assert tls_target.seen() == [True]
