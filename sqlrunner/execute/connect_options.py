"""How a target's connection is secured and authenticated: TLS for PostgreSQL and Redshift
targets alike, and IAM credentials for Redshift.

Two pieces that ``targets.py`` combines when it builds a connection, through
:func:`settings_for`:

- :func:`tls_parameters` checks ``sslmode``/``sslrootcert`` (Amazon's CA bundle
  for ``verify-full`` on Redshift) and returns the libpq parameters; SQL Runner's
  ``ssl: true`` means ``require``.
- :func:`iam_credentials` (and :class:`IamCredentials`, which fetches them again
  before they expire) turn a target's ``iam: true`` settings into a temporary
  database user and password, through boto3 (``pip install 'sqlrunner[aws]'``):
  ``redshift:GetClusterCredentials`` (or ``GetClusterCredentialsWithIAM`` when no
  database user is named) for a provisioned cluster, ``redshift-serverless:
  GetCredentials`` for a Serverless workgroup.

The ``SET`` commands for ``query_group`` and ``wlm_query_slot_count`` are SQL text:
:mod:`sqlrunner.sqltext.session`. See docs/redshift.md for the user's side of all this.
"""
from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlrunner.errors import TargetError
from sqlrunner.sqltext.session import session_statements

if TYPE_CHECKING:
    from sqlrunner.playbook import TargetSpec

AWS_EXTRA_HINT = "pip install 'sqlrunner[aws]' (boto3)"
CA_BUNDLE_URL = "https://s3.amazonaws.com/redshift-downloads/amazon-trust-ca-bundle.crt"
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
MIN_DURATION, MAX_DURATION, DEFAULT_DURATION = 900, 3600, 900
# Credentials are fetched again this long before they expire (a connection opened with
# them stays open after they expire; only new connections need fresh ones).
REFRESH_MARGIN_SECONDS = 120

_PROVISIONED_HOST = re.compile(
    r"^(?P<cluster>[a-z0-9-]+)\.[a-z0-9]+\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d)"
    r"\.redshift\.amazonaws\.com(?:\.cn)?$", re.IGNORECASE)
_SERVERLESS_HOST = re.compile(
    r"^(?P<workgroup>[a-z0-9-]+)\.\d{12}\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d)"
    r"\.redshift-serverless\.amazonaws\.com(?:\.cn)?$", re.IGNORECASE)


# ---------------------------------------------------------------------------
# IAM authentication

@dataclass(frozen=True)
class IamSettings:
    """What an IAM-authenticated Redshift target asks AWS for."""

    database: str | None
    db_user: str | None  # None: the IAM identity itself (GetClusterCredentialsWithIAM)
    cluster_identifier: str | None
    serverless_workgroup: str | None
    region: str | None
    profile: str | None
    auto_create: bool = False
    db_groups: tuple[str, ...] = ()
    duration_seconds: int = DEFAULT_DURATION

    @property
    def serverless(self) -> bool:
        """True for a Redshift Serverless workgroup, False for a provisioned cluster."""
        return self.serverless_workgroup is not None

    def describe(self) -> str:
        """Where the credentials come from, for messages."""
        where = (f"workgroup {self.serverless_workgroup!r}" if self.serverless else
                 f"cluster {self.cluster_identifier!r}")
        return f"{where} in {self.region or 'the default region'}"


def iam_enabled(options: Mapping[str, Any]) -> bool:
    """Whether a target's options ask for IAM authentication (``iam: true``)."""
    return options.get("iam") is True


def iam_settings(options: Mapping[str, Any], *, host: str | None = None,
                 database: str | None = None, username: str | None = None,
                 target: str = "target") -> IamSettings:
    """Validate a target's IAM options; the cluster, workgroup and region default to what
    the endpoint ``host`` names (``<cluster>.<id>.<region>.redshift.amazonaws.com``,
    ``<workgroup>.<account>.<region>.redshift-serverless.amazonaws.com``)."""
    def text(key: str) -> str | None:
        value = options.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise TargetError(f"target {target!r}: {key} must be a string, got {value!r}")
        return value

    cluster, workgroup, region = (text("cluster_identifier"), text("serverless_workgroup"),
                                  text("region"))
    if cluster and workgroup:
        raise TargetError(f"target {target!r}: give cluster_identifier (a provisioned cluster) "
                          "or serverless_workgroup (Redshift Serverless), not both")
    provisioned = _PROVISIONED_HOST.match(host or "")
    serverless = _SERVERLESS_HOST.match(host or "")
    if not cluster and not workgroup:
        if serverless:
            workgroup = serverless["workgroup"]
        elif provisioned:
            cluster = provisioned["cluster"]
        else:
            raise TargetError(
                f"target {target!r}: IAM authentication needs cluster_identifier (a "
                "provisioned cluster) or serverless_workgroup (Redshift Serverless); the host "
                f"{host!r} is not an Amazon Redshift endpoint they could be read from")
    if not region:
        match = serverless or provisioned
        region = match["region"] if match else None
    duration = options.get("duration_seconds", DEFAULT_DURATION)
    if isinstance(duration, bool) or not isinstance(duration, int) or \
            not MIN_DURATION <= duration <= MAX_DURATION:
        raise TargetError(f"target {target!r}: duration_seconds must be a whole number from "
                          f"{MIN_DURATION} to {MAX_DURATION}, got {duration!r}")
    auto_create = options.get("auto_create", False)
    if not isinstance(auto_create, bool):
        raise TargetError(f"target {target!r}: auto_create must be true or false")
    groups = options.get("db_groups") or ()
    if isinstance(groups, str):
        groups = [g.strip() for g in groups.split(",")]
    if not isinstance(groups, list | tuple) or not all(isinstance(g, str) for g in groups):
        raise TargetError(f"target {target!r}: db_groups must be a list of group names")
    groups = tuple(g for g in groups if g)
    db_user = text("db_user") or username or None
    if workgroup and (groups or auto_create or text("db_user")):
        raise TargetError(f"target {target!r}: db_user, db_groups and auto_create apply to "
                          "provisioned clusters; Redshift Serverless maps the IAM identity "
                          "to a database user itself")
    if not db_user and (groups or auto_create):
        raise TargetError(f"target {target!r}: db_groups and auto_create need db_user")
    return IamSettings(database=database or None, db_user=None if workgroup else db_user,
                       cluster_identifier=cluster, serverless_workgroup=workgroup,
                       region=region, profile=text("profile"), auto_create=auto_create,
                       db_groups=groups, duration_seconds=duration)


@dataclass(frozen=True)
class TemporaryCredentials:
    """A database user and password that AWS issued, and when the password expires."""

    user: str
    password: str
    expires_at: float  # seconds since the epoch


def fetch_credentials(settings: IamSettings, client: Any = None,
                      target: str = "target") -> TemporaryCredentials:
    """Ask AWS for temporary credentials; ``client`` is a boto3 client to use (tests)."""
    if client is None:
        client = _client(settings, target)
    botocore_errors = _botocore_errors()
    try:
        if settings.serverless:
            request: dict[str, Any] = {"workgroupName": settings.serverless_workgroup,
                                       "durationSeconds": settings.duration_seconds}
            if settings.database:
                request["dbName"] = settings.database
            answer = client.get_credentials(**request)
            user, password, expires = answer["dbUser"], answer["dbPassword"], \
                answer.get("expiration")
        else:
            request = {"ClusterIdentifier": settings.cluster_identifier,
                       "DurationSeconds": settings.duration_seconds}
            if settings.database:
                request["DbName"] = settings.database
            if settings.db_user:
                request["DbUser"] = settings.db_user
                request["AutoCreate"] = settings.auto_create
                if settings.db_groups:
                    request["DbGroups"] = list(settings.db_groups)
                answer = client.get_cluster_credentials(**request)
            else:
                answer = client.get_cluster_credentials_with_iam(**request)
            user, password, expires = answer["DbUser"], answer["DbPassword"], \
                answer.get("Expiration")
    except botocore_errors as err:
        raise TargetError(f"target {target!r}: IAM authentication failed for "
                          f"{settings.describe()}: {_aws_message(err)}") from None
    expires_at = expires.timestamp() if hasattr(expires, "timestamp") else \
        time.time() + settings.duration_seconds
    return TemporaryCredentials(user=user, password=password, expires_at=expires_at)


def iam_credentials(options: Mapping[str, Any], *, host: str | None = None,
                    database: str | None = None, username: str | None = None,
                    target: str = "target", client: Any = None) -> tuple[str, str]:
    """Temporary ``(user, password)`` for an ``iam: true`` target (see :func:`iam_settings`).

    Raises :class:`TargetError` when boto3 is missing, the settings are incomplete, or
    AWS refuses (no credentials, no permission, unknown cluster...).
    """
    settings = iam_settings(options, host=host, database=database, username=username,
                            target=target)
    found = fetch_credentials(settings, client=client, target=target)
    return found.user, found.password


class IamCredentials:
    """The credentials of one target, fetched once and again shortly before they expire.

    A connection stays open after its password expires; only a new connection (a
    pool growing, a reconnect after a network error) needs fresh credentials, so
    call :meth:`get` for every connection attempt. Thread-safe.
    """

    def __init__(self, settings: IamSettings, *, target: str = "target",
                 client_factory: Callable[[], Any] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.target = target
        self._client_factory = client_factory
        self._clock = clock
        self._lock = threading.Lock()
        self._current: TemporaryCredentials | None = None

    def get(self) -> tuple[str, str]:
        """A ``(user, password)`` valid for at least ``REFRESH_MARGIN_SECONDS``."""
        with self._lock:
            current = self._current
            if current is None or current.expires_at - self._clock() < REFRESH_MARGIN_SECONDS:
                client = self._client_factory() if self._client_factory else None
                current = fetch_credentials(self.settings, client=client, target=self.target)
                self._current = current
            return current.user, current.password


def _client(settings: IamSettings, target: str) -> Any:
    try:
        import boto3
    except ImportError:
        raise TargetError(f"target {target!r}: IAM authentication needs boto3: "
                          f"{AWS_EXTRA_HINT}") from None
    botocore_errors = _botocore_errors()
    service = "redshift-serverless" if settings.serverless else "redshift"
    try:
        session = boto3.Session(profile_name=settings.profile, region_name=settings.region)
        if not session.region_name:
            raise TargetError(f"target {target!r}: IAM authentication needs a region: set "
                              "region in the target (or AWS_REGION)")
        return session.client(service)
    except botocore_errors as err:
        raise TargetError(f"target {target!r}: cannot set up AWS access for "
                          f"{settings.describe()}: {_aws_message(err)}") from None


def _botocore_errors() -> tuple[type[BaseException], ...]:
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        return ()
    return (BotoCoreError, ClientError)


def _aws_message(err: BaseException) -> str:
    response = getattr(err, "response", None)
    if isinstance(response, dict) and "Error" in response:
        code = response["Error"].get("Code") or type(err).__name__
        message = response["Error"].get("Message") or str(err)
        return f"{code}: {message}"
    return str(err) or type(err).__name__


# ---------------------------------------------------------------------------
# TLS

def tls_parameters(options: Mapping[str, Any], *, ssl: bool = False,
                   target: str = "target") -> dict[str, str]:
    """The libpq ``sslmode``/``sslrootcert`` parameters of a target, checked.

    ``verify-full`` (and ``verify-ca``) need a root certificate: ``sslrootcert`` set to
    Amazon's CA bundle (:data:`CA_BUNDLE_URL`), ``PGSSLROOTCERT``, libpq's default
    ``~/.postgresql/root.crt``, or ``system`` (the operating system's trust store,
    libpq 16 and newer). SQL Runner's ``ssl: true`` means ``require`` (encryption
    without checking the certificate).
    """
    mode = options.get("sslmode") or ("require" if ssl else None)
    if mode is not None and mode not in SSLMODES:
        raise TargetError(f"target {target!r}: sslmode must be one of {', '.join(SSLMODES)}, "
                          f"got {mode!r}")
    params: dict[str, str] = {}
    if mode:
        params["sslmode"] = mode
    rootcert = options.get("sslrootcert")
    if rootcert:
        if rootcert != "system":
            rootcert = os.path.expanduser(str(rootcert))
            if not os.path.isfile(rootcert):
                raise TargetError(f"target {target!r}: sslrootcert {rootcert!r} is not a file; "
                                  f"download Amazon's CA bundle from {CA_BUNDLE_URL}")
        params["sslrootcert"] = rootcert
    elif mode in {"verify-ca", "verify-full"} and not _default_rootcert():
        raise TargetError(f"target {target!r}: sslmode {mode} needs the CA certificates to "
                          f"check the server against: download {CA_BUNDLE_URL} and set "
                          "sslrootcert to its path (or sslrootcert: system)")
    return params


def _default_rootcert() -> str | None:
    explicit = os.environ.get("PGSSLROOTCERT")
    if explicit:
        return explicit
    default = os.path.join(os.path.expanduser("~"), ".postgresql", "root.crt")
    return default if os.path.isfile(default) else None


# ---------------------------------------------------------------------------
# Everything a connection to one target needs

@dataclass(frozen=True)
class ConnectionSettings:
    """What :func:`settings_for` derives from a target: libpq TLS parameters, the
    ``SET`` commands to run on each new connection, and (``iam: true``) where the
    user and password come from."""

    tls: Mapping[str, str]
    session: tuple[str, ...]
    credentials: IamCredentials | None = None


def settings_for(target: TargetSpec) -> ConnectionSettings:
    """Check a postgres or redshift target's TLS, IAM and session options, in one call.

    ``credentials.get()`` (when not None) gives a fresh ``(user, password)`` for
    every connection attempt; nothing is asked of AWS before that.
    """
    options = target.options
    dialect = target.dialect
    credentials = None
    if iam_enabled(options):
        if dialect != "redshift":
            raise TargetError(f"target {target.name!r}: iam: true is for Redshift targets")
        settings = iam_settings(options, host=target.host, database=target.database,
                                username=target.username, target=target.name)
        credentials = IamCredentials(settings, target=target.name)
    return ConnectionSettings(
        tls=tls_parameters(options, ssl=target.ssl, target=target.name),
        session=tuple(session_statements(options, dialect, target.name)),
        credentials=credentials,
    )
