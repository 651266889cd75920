"""Redshift connections: IAM credentials (botocore's Stubber, no network), TLS settings,
query_group and wlm_query_slot_count."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from sqlrunner.errors import TargetError
from sqlrunner.execute import connect_options as redshift
from sqlrunner.execute.connect_options import (
    IamCredentials,
    iam_credentials,
    iam_settings,
    settings_for,
    tls_parameters,
)
from sqlrunner.playbook import TargetSpec
from sqlrunner.sqltext.session import (
    query_session_statements,
    quote_literal,
    session_statements,
)

try:
    import boto3
    from botocore.stub import Stubber
except ImportError:  # the optional 'aws' extra
    boto3 = Stubber = None

requires_boto3 = pytest.mark.skipif(
    boto3 is None, reason="boto3 is the optional 'aws' extra: pip install 'sqlrunner[aws]'")

CLUSTER_HOST = "analytics.c1a2b3c4d5e6.eu-west-1.redshift.amazonaws.com"
SERVERLESS_HOST = "models.123456789012.us-east-2.redshift-serverless.amazonaws.com"
EXPIRES = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def no_real_aws(monkeypatch, tmp_path):
    """Never read the machine's AWS configuration, never ask the EC2 metadata service."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def client(service: str, region: str = "eu-west-1"):
    return boto3.client(service, region_name=region, aws_access_key_id="AKIDEXAMPLE",
                        aws_secret_access_key="secret")


# -- IAM: provisioned clusters --------------------------------------------------------------

@requires_boto3
def test_cluster_credentials_for_a_named_database_user():
    redshift_client = client("redshift")
    with Stubber(redshift_client) as stub:
        stub.add_response(
            "get_cluster_credentials",
            {"DbUser": "IAM:loader", "DbPassword": "temporary-secret", "Expiration": EXPIRES},
            {"ClusterIdentifier": "analytics", "DbName": "events", "DbUser": "loader",
             "AutoCreate": False, "DurationSeconds": 900})
        user, password = iam_credentials(
            {"iam": True, "cluster_identifier": "analytics", "db_user": "loader",
             "region": "eu-west-1"},
            host=CLUSTER_HOST, database="events", client=redshift_client)
    assert (user, password) == ("IAM:loader", "temporary-secret")


def test_cluster_and_region_are_read_from_the_endpoint():
    settings = iam_settings({"iam": True}, host=CLUSTER_HOST, database="events",
                            username="analyst")
    assert (settings.cluster_identifier, settings.region, settings.db_user) == (
        "analytics", "eu-west-1", "analyst")
    assert not settings.serverless


@requires_boto3
def test_groups_auto_create_and_duration_are_passed_on():
    redshift_client = client("redshift")
    with Stubber(redshift_client) as stub:
        stub.add_response(
            "get_cluster_credentials",
            {"DbUser": "IAMA:modeler", "DbPassword": "pw", "Expiration": EXPIRES},
            {"ClusterIdentifier": "analytics", "DbName": "events", "DbUser": "modeler",
             "AutoCreate": True, "DbGroups": ["modelers", "readers"], "DurationSeconds": 3600})
        user, _ = iam_credentials(
            {"iam": True, "db_user": "modeler", "auto_create": True,
             "db_groups": "modelers, readers", "duration_seconds": 3600},
            host=CLUSTER_HOST, database="events", client=redshift_client)
    assert user == "IAMA:modeler"


@requires_boto3
def test_without_a_database_user_the_iam_identity_is_the_user():
    redshift_client = client("redshift")
    with Stubber(redshift_client) as stub:
        stub.add_response(
            "get_cluster_credentials_with_iam",
            {"DbUser": "IAMR:pipeline", "DbPassword": "pw", "Expiration": EXPIRES},
            {"ClusterIdentifier": "analytics", "DbName": "events", "DurationSeconds": 900})
        user, _ = iam_credentials({"iam": True}, host=CLUSTER_HOST, database="events",
                                  client=redshift_client)
    assert user == "IAMR:pipeline"


# -- IAM: Redshift Serverless ---------------------------------------------------------------

@requires_boto3
def test_serverless_credentials_for_a_workgroup():
    serverless_client = client("redshift-serverless", "us-east-2")
    with Stubber(serverless_client) as stub:
        stub.add_response(
            "get_credentials",
            {"dbUser": "IAMR:pipeline", "dbPassword": "pw", "expiration": EXPIRES},
            {"workgroupName": "models", "dbName": "dev", "durationSeconds": 1800})
        user, password = iam_credentials(
            {"iam": True, "duration_seconds": 1800}, host=SERVERLESS_HOST, database="dev",
            username="ignored", client=serverless_client)
    assert (user, password) == ("IAMR:pipeline", "pw")


def test_serverless_workgroup_can_be_named_for_a_custom_host():
    settings = iam_settings({"iam": True, "serverless_workgroup": "models",
                             "region": "us-east-2"}, host="redshift.internal.example.com")
    assert settings.serverless and settings.serverless_workgroup == "models"
    assert settings.db_user is None


# -- IAM: failures are clear TargetErrors -------------------------------------------------------

@requires_boto3
def test_an_aws_refusal_names_the_cluster_and_the_reason():
    redshift_client = client("redshift")
    with Stubber(redshift_client) as stub:
        stub.add_client_error("get_cluster_credentials", service_error_code="ClusterNotFound",
                              service_message="Cluster analytics not found.")
        with pytest.raises(TargetError) as caught:
            iam_credentials({"iam": True, "db_user": "loader"}, host=CLUSTER_HOST,
                            database="events", target="warehouse", client=redshift_client)
    message = str(caught.value)
    assert "target 'warehouse': IAM authentication failed for cluster 'analytics' in " \
           "eu-west-1: ClusterNotFound: Cluster analytics not found." == message
    assert caught.value.exit_code == 5


@requires_boto3
def test_missing_aws_credentials_are_a_target_error():
    with pytest.raises(TargetError, match="IAM authentication failed for cluster 'analytics'.*"
                                          "Unable to locate credentials"):
        iam_credentials({"iam": True, "db_user": "loader"}, host=CLUSTER_HOST,
                        database="events")


@requires_boto3
def test_an_unknown_profile_is_a_target_error():
    with pytest.raises(TargetError, match="cannot set up AWS access.*nobody"):
        iam_credentials({"iam": True, "db_user": "loader", "profile": "nobody"},
                        host=CLUSTER_HOST, database="events")


def test_without_boto3_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(TargetError, match=r"needs boto3: pip install 'sqlrunner\[aws\]'"):
        iam_credentials({"iam": True, "db_user": "loader"}, host=CLUSTER_HOST)


@pytest.mark.parametrize(("options", "host", "message"), [
    ({"iam": True}, "db.example.com", "needs cluster_identifier"),
    ({"iam": True, "cluster_identifier": "a", "serverless_workgroup": "b"}, None, "not both"),
    ({"iam": True, "duration_seconds": 60}, CLUSTER_HOST, "from 900 to 3600"),
    ({"iam": True, "duration_seconds": True}, CLUSTER_HOST, "from 900 to 3600"),
    ({"iam": True, "auto_create": "yes"}, CLUSTER_HOST, "auto_create must be true or false"),
    ({"iam": True, "db_groups": [1]}, CLUSTER_HOST, "db_groups must be a list"),
    ({"iam": True, "db_groups": ["g"]}, CLUSTER_HOST, "need db_user"),
    ({"iam": True, "db_user": "u"}, SERVERLESS_HOST, "apply to provisioned clusters"),
])
def test_incomplete_or_contradictory_settings_are_refused(options, host, message):
    with pytest.raises(TargetError, match=message):
        iam_settings(options, host=host)


@requires_boto3
def test_credentials_are_fetched_again_shortly_before_they_expire():
    redshift_client = client("redshift")
    now = [1_000_000.0]
    issued = datetime.fromtimestamp(now[0], UTC)
    settings = iam_settings({"iam": True, "db_user": "loader"}, host=CLUSTER_HOST,
                            database="events")
    credentials = IamCredentials(settings, client_factory=lambda: redshift_client,
                                 clock=lambda: now[0])
    with Stubber(redshift_client) as stub:
        for password in ("first", "second"):
            stub.add_response("get_cluster_credentials",
                              {"DbUser": "IAM:loader", "DbPassword": password,
                               "Expiration": issued + timedelta(seconds=900)})
        assert credentials.get() == ("IAM:loader", "first")
        now[0] += 900 - redshift.REFRESH_MARGIN_SECONDS - 1
        assert credentials.get() == ("IAM:loader", "first")  # still valid: no new request
        now[0] += 2
        assert credentials.get() == ("IAM:loader", "second")
        stub.assert_no_pending_responses()


# -- TLS (the settings; tests/test_tls.py connects with them to a server with ssl = on) --------

def test_verify_full_with_amazons_bundle(tmp_path):
    bundle = tmp_path / "amazon-trust-ca-bundle.crt"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    assert tls_parameters({"sslmode": "verify-full", "sslrootcert": str(bundle)}) == {
        "sslmode": "verify-full", "sslrootcert": str(bundle)}


def test_a_missing_bundle_says_where_to_download_it(tmp_path, monkeypatch):
    monkeypatch.delenv("PGSSLROOTCERT", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(TargetError, match="amazon-trust-ca-bundle.crt"):
        tls_parameters({"sslmode": "verify-full", "sslrootcert": str(tmp_path / "absent.crt")})
    with pytest.raises(TargetError, match="needs the CA certificates.*amazon-trust-ca-bundle"):
        tls_parameters({"sslmode": "verify-full"})


def test_tls_settings_that_need_no_bundle(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert tls_parameters({}, ssl=True) == {"sslmode": "require"}
    assert tls_parameters({}) == {}
    assert tls_parameters({"sslmode": "verify-full", "sslrootcert": "system"}) == {
        "sslmode": "verify-full", "sslrootcert": "system"}
    monkeypatch.setenv("PGSSLROOTCERT", "/etc/ssl/amazon.pem")
    assert tls_parameters({"sslmode": "verify-ca"}) == {"sslmode": "verify-ca"}
    with pytest.raises(TargetError, match="sslmode must be one of"):
        tls_parameters({"sslmode": "verify"})


# -- query_group and wlm_query_slot_count --------------------------------------------------------

def test_session_statements_for_query_group_and_slots():
    assert session_statements({"query_group": "nightly model", "wlm_query_slot_count": 3}) == [
        "SET query_group TO 'nightly model'", "SET wlm_query_slot_count TO 3"]
    assert session_statements({"sslmode": "require"}) == []


def test_query_group_is_quoted_for_redshift_literals():
    assert quote_literal("it's a \\ label") == "'it''s a \\\\ label'"


def test_the_quoted_label_reads_back_unchanged_under_redshift_style_literals(database):
    """PostgreSQL with standard_conforming_strings off reads literals as Redshift does."""
    label = "it's; a \\ label -- with ' and \\'"
    literal = quote_literal(label)
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("SET escape_string_warning = off")
        conn.execute("SET standard_conforming_strings = off")
        conn.execute(f"SET sqlrunner.query_group TO {literal}")
        assert conn.execute("SHOW sqlrunner.query_group").fetchone()[0] == label


@pytest.mark.parametrize(("options", "message"), [
    ({"wlm_query_slot_count": 0}, "from 1 to 50"),
    ({"wlm_query_slot_count": 51}, "from 1 to 50"),
    ({"wlm_query_slot_count": True}, "from 1 to 50"),
    ({"query_group": ""}, "non-empty label"),
    ({"query_group": "a\x00b"}, "NUL"),
])
def test_bad_session_settings_are_refused(options, message):
    with pytest.raises(TargetError, match=message):
        session_statements(options)


def test_postgres_targets_get_no_redshift_session_commands():
    assert session_statements({}, dialect="postgres") == []
    with pytest.raises(TargetError, match="Redshift workload-management settings"):
        session_statements({"query_group": "x"}, dialect="postgres")


def test_a_query_level_setting_is_restored_after_the_query():
    before, after = query_session_statements(
        {"query_group": "model", "wlm_query_slot_count": 2}, {"wlm_query_slot_count": 5})
    assert before == ["SET wlm_query_slot_count TO 5"]
    assert after == ["SET wlm_query_slot_count TO 2"]
    before, after = query_session_statements({}, {"query_group": "vacuum"})
    assert before == ["SET query_group TO 'vacuum'"]
    assert after == ["RESET query_group"]


# -- one call for targets.py ------------------------------------------------------------------

def test_settings_for_a_redshift_target(tmp_path):
    bundle = tmp_path / "amazon-trust-ca-bundle.crt"
    bundle.write_text("")
    target = TargetSpec(name="warehouse", type="redshift", line=1, host=CLUSTER_HOST,
                        port="5439", database="events",
                        options={"iam": True, "db_user": "loader", "sslmode": "verify-full",
                                 "sslrootcert": str(bundle), "query_group": "model"})
    settings = settings_for(target)
    assert settings.tls == {"sslmode": "verify-full", "sslrootcert": str(bundle)}
    assert settings.session == ("SET query_group TO 'model'",)
    assert settings.credentials is not None
    assert settings.credentials.settings.cluster_identifier == "analytics"


def test_settings_for_a_postgres_target_refuse_redshift_options():
    plain = TargetSpec(name="db", type="postgres", line=1, host="localhost", ssl=True)
    assert settings_for(plain) == redshift.ConnectionSettings(tls={"sslmode": "require"},
                                                              session=())
    with pytest.raises(TargetError, match="iam: true is for Redshift targets"):
        settings_for(TargetSpec(name="db", type="postgres", line=1, options={"iam": True}))
    with pytest.raises(TargetError, match="workload-management"):
        settings_for(TargetSpec(name="db", type="postgres", line=1,
                                options={"wlm_query_slot_count": 2}))
