"""The default channel grouping (sql/setup/07_channel_group.sql), called on the database.

Each playbook's setup installs ``derived.f_default_channel_group``; the table below calls
it with one row of (mkt_medium, mkt_source, mkt_campaign, refr_medium, refr_source) per
case and expects the group docs/channel-grouping.md gives: every group, the order of the
rules where two could match, NULLs and empty strings, case and spaces, and Snowplow's
referrer classes (search, social, email, internal, unknown, paid).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import new_database, query_one, run_sql

from sqlrunner.api import run_playbook
from sqlrunner.check import check_sql, prepare_for

ROOT = Path(__file__).resolve().parent.parent
PLAYBOOKS = ("full.yml", "incremental.yml", "full_to_incremental.yml")
FUNCTION_FILE = ROOT / "sql" / "setup" / "07_channel_group.sql"
ARGUMENTS = ("mkt_medium", "mkt_source", "mkt_campaign", "refr_medium", "refr_source")

# (mkt_medium, mkt_source, mkt_campaign, refr_medium, refr_source) -> expected group
CASES: list[tuple[tuple[str | None, ...], str]] = [
    # no campaign data: the referrer decides
    ((None, None, None, None, None), "Direct"),
    (("", "  ", "", "", ""), "Direct"),
    ((None, None, None, "internal", None), "Direct"),
    ((None, None, None, "INTERNAL", "example.com"), "Direct"),
    ((None, None, None, "search", "Google"), "Organic Search"),
    ((None, None, None, "social", "Facebook"), "Organic Social"),
    ((None, None, None, "social", "YouTube"), "Organic Video"),
    ((None, None, None, "unknown", "amazon.de"), "Organic Shopping"),
    ((None, None, None, "email", "Gmail"), "Email"),
    ((None, None, None, "paid", "DoubleClick"), "Paid Other"),
    ((None, None, None, "unknown", None), "Referral"),
    ((None, None, None, "some-new-class", None), "Referral"),
    # campaign data present: it decides, whatever the referrer says
    (("(none)", "(direct)", None, "search", "Google"), "Direct"),
    (("", "direct", None, None, None), "Direct"),
    (("cpc", "google", "cross-network-pmax", None, None), "Cross-network"),
    (("cpc", "google", "Summer Cross-Network", None, None), "Cross-network"),
    (("cpc", "amazon", None, None, None), "Paid Shopping"),
    (("ppc", "newsletter", "spring_shop", None, None), "Paid Shopping"),
    (("cpc", "partner", "shopping-days", None, None), "Paid Shopping"),
    (("cpc", "google", None, None, None), "Paid Search"),
    (("CPC", " Google ", None, None, None), "Paid Search"),
    (("paidsearch", "www.bing.com", None, None, None), "Paid Search"),
    (("retargeting", "Yahoo!", None, None, None), "Paid Search"),
    (("paid_social", "facebook", None, None, None), "Paid Social"),
    (("cpc", "m.facebook.com", None, None, None), "Paid Social"),
    (("cpm", "x", None, None, None), "Paid Social"),
    (("cpv", "youtube", None, None, None), "Paid Video"),
    (("display", "someadnetwork", None, None, None), "Display"),
    (("Banner", None, None, None, None), "Display"),
    (("cpm", "someadnetwork", None, None, None), "Display"),
    (("cpa", "someadnetwork", None, None, None), "Paid Other"),
    (("paid", None, None, None, None), "Paid Other"),
    ((None, "etsy", None, None, None), "Organic Shopping"),
    (("newsletter", "weekly", "e-shop launch", None, None), "Organic Shopping"),
    (("social", "mastodon.social", None, None, None), "Organic Social"),
    (("Social Media", "partner", None, None, None), "Organic Social"),
    ((None, "linkedin", None, None, None), "Organic Social"),
    (("post", "vimeo", None, None, None), "Organic Video"),
    (("product-video", None, None, None, None), "Organic Video"),
    (("organic", None, None, None, None), "Organic Search"),
    ((None, "duckduckgo", None, None, None), "Organic Search"),
    (("email", None, None, None, None), "Email"),
    (("newsletter", "E-Mail", None, None, None), "Email"),
    (("e mail", "crm", None, None, None), "Email"),
    (("affiliate", "partner", None, None, None), "Affiliates"),
    (("affiliates", None, None, None, None), "Affiliates"),
    (("referral", "blog.example.org", None, None, None), "Referral"),
    (("link", None, None, None, None), "Referral"),
    (("app", None, None, None, None), "Referral"),
    (("audio", "podcast", None, None, None), "Audio"),
    (("sms", None, None, None, None), "SMS"),
    (("text", "SMS", None, None, None), "SMS"),
    (("web-push", None, None, None, None), "Mobile Push Notifications"),
    (("mobile", None, None, None, None), "Mobile Push Notifications"),
    (("in-app-notification", None, None, None, None), "Mobile Push Notifications"),
    (("message", "firebase", None, None, None), "Mobile Push Notifications"),
    (("print", "flyer", None, "search", "Google"), "Unassigned"),
    ((None, None, "spring-launch", "search", "Google"), "Unassigned"),
    # list names match whole names or host names, not parts of a word
    (("cpc", "googleplex-partner", None, None, None), "Paid Other"),
    (("cpc", "mail.google.com", None, None, None), "Paid Search"),
    (("cpc", "news.example.com", None, None, None), "Paid Other"),
    # GA4's paid medium is ^(.*cp.*|ppc|retargeting|paid.*)$: whole words but "cp"
    (("unpaid", "google", None, None, None), "Organic Search"),
    (("ppc-campaign", "google.de", None, None, None), "Organic Search"),
    ((None, "xing", None, None, None), "Unassigned"),
    ((None, "box", None, None, None), "Unassigned"),
    # Google's shopping campaign rule: "shopping", or "shop" not after a letter but "e"
    (("newsletter", "weekly", "bishop", None, None), "Unassigned"),
    (("newsletter", "weekly", "workshop", None, None), "Unassigned"),
]

GROUPS = {
    "Direct",
    "Cross-network",
    "Paid Shopping",
    "Paid Search",
    "Paid Social",
    "Paid Video",
    "Display",
    "Paid Other",
    "Organic Shopping",
    "Organic Social",
    "Organic Video",
    "Organic Search",
    "Email",
    "Affiliates",
    "Referral",
    "Audio",
    "SMS",
    "Mobile Push Notifications",
    "Unassigned",
}


def _install(dsn: str, playbook: str, variables: dict[str, str] | None = None) -> None:
    """Run a playbook's schema setup and its channel grouping query, and nothing else."""
    path = str(ROOT / "playbooks" / playbook)
    for query in ("setup_schemas::schemas", "setup_tables::channel_group"):
        result = run_playbook(path, variables=variables, target=dsn, run_query=query)
        assert result.exit_code == 0, result.errors


@pytest.fixture(scope="module")
def channel_db(server_dsn: str) -> Iterator[str]:
    """A database with the function installed by the full playbook's setup."""
    with new_database(server_dsn) as dsn:
        _install(dsn, "full.yml")
        yield dsn


def test_the_table_covers_every_group() -> None:
    assert {group for _, group in CASES} == GROUPS


@pytest.mark.parametrize(
    ("arguments", "expected"), CASES, ids=[f"{group}:{args}" for args, group in CASES]
)
def test_default_channel_group(
    channel_db: str, arguments: tuple[str | None, ...], expected: str
) -> None:
    group = query_one(
        channel_db, "SELECT derived.f_default_channel_group(%s, %s, %s, %s, %s)", arguments
    )
    assert group == expected


def test_it_groups_table_columns_in_one_query(channel_db: str) -> None:
    """Called on columns of a table, as the model calls it, every row gets its group."""
    values = ", ".join(
        "("
        + ", ".join("NULL" if v is None else "'" + v.replace("'", "''") + "'" for v in arguments)
        + f", '{expected}')"
        for arguments, expected in CASES
    )
    run_sql(
        channel_db,
        f"""
        CREATE TABLE cases ({", ".join(f"{a} VARCHAR(255)" for a in ARGUMENTS)},
                            expected VARCHAR(32));
        INSERT INTO cases VALUES {values};
    """,
    )
    rows = run_sql(
        channel_db,
        f"""
        SELECT derived.f_default_channel_group({", ".join(ARGUMENTS)}) = expected FROM cases
    """,
    )
    assert len(rows) == len(CASES)
    assert all(matches for (matches,) in rows)


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_every_playbooks_setup_installs_it(database: str, playbook: str) -> None:
    _install(database, playbook)
    assert (
        query_one(
            database, "SELECT derived.f_default_channel_group('cpc', 'bing', NULL, NULL, NULL)"
        )
        == "Paid Search"
    )
    assert (
        query_one(
            database, "SELECT provolatile FROM pg_proc WHERE proname = 'f_default_channel_group'"
        )
        == "i"
    )


def test_installing_it_again_replaces_it(channel_db: str) -> None:
    _install(channel_db, "incremental.yml")
    assert (
        query_one(
            channel_db, "SELECT count(*) FROM pg_proc WHERE proname = 'f_default_channel_group'"
        )
        == 1
    )


def test_it_is_created_in_the_derived_schema_the_playbook_names(database: str) -> None:
    _install(database, "full.yml", {"derived_schema": "reporting"})
    assert (
        query_one(
            database,
            "SELECT reporting.f_default_channel_group(NULL, NULL, NULL, 'search', 'Google')",
        )
        == "Organic Search"
    )
    assert (
        query_one(
            database,
            "SELECT count(*) FROM pg_proc p JOIN pg_namespace n "
            "ON n.oid = p.pronamespace WHERE proname = "
            "'f_default_channel_group' AND nspname <> 'reporting'",
        )
        == 0
    )


def test_postgresql_inlines_it_into_the_query_that_calls_it(channel_db: str) -> None:
    """IMMUTABLE plain SQL: the planner puts its CASE in place of a call per row."""
    columns = ", ".join(ARGUMENTS)
    types = ", ".join(f"{a} VARCHAR(255)" for a in ARGUMENTS)
    run_sql(channel_db, f"CREATE TABLE inline_probe ({types})")
    plan = run_sql(
        channel_db,
        f"EXPLAIN (VERBOSE) SELECT derived.f_default_channel_group({columns}) FROM inline_probe",
    )
    text = "\n".join(line for (line,) in plan)
    assert "f_default_channel_group" not in text
    assert "'Paid Search'::text" in text


def _rendered(dialect: str) -> str:
    """The function's file as the full playbook's setup renders it for ``dialect``."""
    plan = prepare_for(str(ROOT / "playbooks" / "full.yml"), dialect)
    [query] = [q for q in plan.targets[0].queries if q.query == "channel_group"]
    assert query.error is None and query.sql is not None
    return query.sql


@pytest.mark.parametrize("dialect", ["redshift", "postgres"])
def test_its_body_keeps_to_the_engines_sql(dialect: str) -> None:
    """``sqlrunner check`` does not look inside a dollar-quoted body: check the CASE as a
    query over atomic.events' columns."""
    body = _rendered(dialect).split("$$")[1]
    for number, name in enumerate(ARGUMENTS, start=1):
        body = body.replace(f"${number}", name)
    query = body.strip() + " AS default_channel_group FROM atomic.events"
    assert [str(f) for f in check_sql(query, "body", dialect)] == []


def test_each_source_list_names_the_same_sources_twice() -> None:
    """Each list template writes its names twice (an IN list, and a regular expression for
    host names): they must not drift apart when someone extends one."""
    lists = re.findall(
        r'define "(\w+)" -}}\s*\(LOWER\(TRIM\(\{\{\.}}\)\) IN \(([^)]*)\)'
        r".*?~ '\^\(\.\*\[\.\]\)\?\(([^)]*)\)",
        FUNCTION_FILE.read_text(),
        re.S,
    )
    assert [name for name, _, _ in lists] == ["search", "social", "video", "shopping"]
    for _, names, alternatives in lists:
        listed = [n for n in re.findall(r"'([^']*)'", names) if n != "yahoo!"]
        assert listed == [a.replace("[.]", ".") for a in alternatives.split("|")]
