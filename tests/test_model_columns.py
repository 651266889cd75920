"""The columns added for analysts (docs/model.md, "Columns added for analysts"): their values
on hand-made events, incremental equal to full in every column, and an installation whose
derived tables predate them migrated in place.
"""

from __future__ import annotations

import os
from datetime import timedelta

import psycopg
import pytest
from conftest import query_one, run_sql
from test_model_full import T0, derived_tables, event, fetch, load
from test_model_incremental import LANDING, generated, with_etl

from sqlrunner.api import run_playbook

pytestmark = pytest.mark.slow  # not in the quick subset (-m "not slow")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FULL = os.path.join(ROOT, "playbooks", "full.yml")
INCREMENTAL = os.path.join(ROOT, "playbooks", "incremental.yml")
SIZES = {"doc_width": 1000, "doc_height": 5000, "br_viewwidth": 800, "br_viewheight": 1000}
ADDED = {
    "sessions": (
        "first_page_title",
        "last_page_title",
        "absolute_time_in_s",
        "page_ping_count",
        "is_engaged",
        "default_channel_group",
    ),
    "visitors": ("default_channel_group",),
}


def run(playbook: str, dsn: str, **variables: object) -> None:
    result = run_playbook(playbook, variables=variables, target=dsn)
    assert result.exit_code == 0, result.errors


def channel(dsn: str, medium, source, campaign, refr_medium, refr_source) -> str:
    """What the installed channel grouping says (whatever its rules)."""
    return query_one(
        dsn,
        "SELECT derived.f_default_channel_group(%s, %s, %s, %s, %s)",
        (medium, source, campaign, refr_medium, refr_source),
    )


def hand_made() -> list[dict]:
    marketing = {
        "mkt_medium": "cpc",
        "mkt_source": "google",
        "mkt_campaign": "spring",
        "refr_medium": "search",
        "refr_source": "Google",
        "refr_urlhost": "google.com",
    }
    return [
        event("page_view", 0, page_title="Home", **SIZES, **marketing),
        event("page_ping", 6, pp_xoffset_max=0, pp_yoffset_max=500),
        event("page_ping", 16, pp_xoffset_max=-5, pp_yoffset_max=2000),
        event("page_ping", 26.5, pp_xoffset_max=0, pp_yoffset_max=1500),
        event("page_view", 40, page_title="About", doc_height=0),  # no pings, no size
        event("struct", 41, page_title="Last"),
        # a session of one page view with one ping: not engaged
        event("page_view", 3600, domain_sessionidx=2, page_title="Alone"),
        event("page_ping", 3606, domain_sessionidx=2, pp_yoffset_max=10),
    ]


def test_page_view_columns_on_hand_made_events(database):
    events = hand_made()
    load(database, events)
    run(FULL, database)
    views = {v["page_urlpath"]: v for v in fetch(database, "page_views")}
    first, second = views["/at/0"], views["/at/40"]
    assert first["absolute_time_in_s"] == 26  # 26.5 s after, truncated to whole seconds
    assert (first["horizontal_pixels_scrolled"], first["vertical_pixels_scrolled"]) == (0, 2000)
    assert first["horizontal_percentage_scrolled"] == 80  # (0 + 800) * 100 / 1000
    assert first["vertical_percentage_scrolled"] == 60  # (2000 + 1000) * 100 / 5000
    assert (
        first["doc_width"],
        first["doc_height"],
        first["br_viewwidth"],
        first["br_viewheight"],
    ) == (1000, 5000, 800, 1000)
    assert (
        first["app_id"],
        first["domain_sessionid"],
        first["mkt_campaign"],
        first["refr_urlhost"],
        first["geo_city"],
        first["br_family"],
    ) == ("site", "s1", "spring", "google.com", "London", "Firefox")
    assert first["default_channel_group"] == channel(
        database, "cpc", "google", "spring", "search", "Google"
    )
    assert second["absolute_time_in_s"] == 0
    assert second["vertical_pixels_scrolled"] is None
    assert second["vertical_percentage_scrolled"] is None
    assert views["/at/3600"]["vertical_percentage_scrolled"] is None  # no sizes on it
    assert second["default_channel_group"] == channel(database, None, None, None, None, None)


def test_session_and_visitor_columns_on_hand_made_events(database):
    load(database, hand_made())
    run(FULL, database)
    tables = derived_tables(database)
    first, second = tables.sessions[("c1", 1)], tables.sessions[("c1", 2)]
    assert (first["first_page_title"], first["last_page_title"]) == ("Home", "Last")
    assert first["absolute_time_in_s"] == 41
    assert first["page_ping_count"] == 3
    assert first["is_engaged"] is True  # two page views (and pings in three intervals)
    assert (second["page_ping_count"], second["is_engaged"]) == (1, False)
    expected = channel(database, "cpc", "google", "spring", "search", "Google")
    assert first["default_channel_group"] == expected
    assert tables.visitors["c1"]["default_channel_group"] == expected


def test_pings_in_two_heartbeat_intervals_make_a_single_page_view_engaged(database):
    load(database, [event("page_view", 0), event("page_ping", 6), event("page_ping", 16)])
    run(FULL, database)
    session = derived_tables(database).sessions[("c1", 1)]
    assert session["time_engaged_in_s"] == 15 and session["is_engaged"] is True


@pytest.mark.parametrize("seed", [51, 52])
def test_incremental_equals_full_in_every_added_column(database, seed):
    loaded: list[dict] = []
    for batch in generated(seed, events=2500, batches=5):
        load(database, batch, LANDING)
        loaded += batch
        run(INCREMENTAL, database)
    incremental = derived_tables(database)
    assert any(v["vertical_percentage_scrolled"] for v in incremental.page_views.values())
    assert any(s["is_engaged"] for s in incremental.sessions.values())
    assert not all(s["is_engaged"] for s in incremental.sessions.values())
    run(FULL, database)
    assert derived_tables(database) == incremental


def test_a_late_ping_moves_the_scroll_depth_and_absolute_time(database):
    batches = [
        [event("page_view", 0, **SIZES), event("page_ping", 6, pp_yoffset_max=100)],
        [event("page_ping", 30, pp_yoffset_max=4000)],
    ]
    for index, batch in enumerate(batches):
        load(database, with_etl(batch, T0 + timedelta(days=1 + index)), LANDING)
        run(INCREMENTAL, database)
    view = fetch(database, "page_views")[0]
    assert (view["absolute_time_in_s"], view["vertical_percentage_scrolled"]) == (30, 100)
    incremental = derived_tables(database)
    run(FULL, database)
    assert derived_tables(database) == incremental


def test_tables_that_predate_the_added_columns_are_migrated_in_place(database):
    load(database, hand_made())
    run(FULL, database)
    expected = derived_tables(database)
    with psycopg.connect(database, autocommit=True) as conn:  # as an older version made them
        for table, columns in ADDED.items():
            conn.execute(
                f"ALTER TABLE derived.{table} " + ", ".join(f"DROP COLUMN {c}" for c in columns)
            )
        conn.execute(
            "ALTER TABLE derived.page_views DROP COLUMN default_channel_group, "
            "DROP COLUMN absolute_time_in_s, DROP COLUMN vertical_pixels_scrolled"
        )
    run(FULL, database)
    assert derived_tables(database) == expected
    assert run_sql(
        database,
        "SELECT count(*) FROM information_schema.columns WHERE "
        "table_schema = 'derived' AND table_name = 'page_views' AND "
        "column_name = 'default_channel_group'",
    ) == [(1,)]
