"""The data model computed in plain Python, from docs/model.md's words, to check the SQL.

``derive(events)`` takes events as ``{column: value}`` dicts (values as psycopg reads
them back: ``datetime``, ``str``, ``int``, ``float``, ``bool``, ``None``) and returns the
four derived tables as ``{key: row}`` dicts, each row a ``{column: value}`` dict in the
column order of docs/model.md.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

EPOCH = datetime(1970, 1, 1)

SESSION_COLUMNS = (
    "domain_userid", "domain_sessionidx", "domain_sessionid", "app_id", "blended_user_id",
    "inferred_user_id", "session_start_tstamp", "session_end_tstamp", "dvce_min_tstamp",
    "dvce_max_tstamp", "max_etl_tstamp", "event_count", "page_view_count", "time_engaged_in_s",
    "geo_country", "geo_region", "geo_city", "geo_zipcode", "geo_latitude", "geo_longitude",
    "geo_timezone", "landing_page_host", "landing_page_path", "exit_page_host",
    "exit_page_path", "mkt_source", "mkt_medium", "mkt_term", "mkt_content", "mkt_campaign",
    "refr_source", "refr_medium", "refr_term", "refr_urlhost", "refr_urlpath", "br_family",
    "br_name", "br_version", "br_lang", "os_family", "os_name", "os_timezone", "dvce_type",
    "dvce_ismobile", "dvce_screenwidth", "dvce_screenheight",
)
PAGE_VIEW_COLUMNS = (
    "page_view_id", "domain_userid", "domain_sessionidx", "page_view_in_session_index",
    "blended_user_id", "inferred_user_id", "page_urlhost", "page_urlpath", "page_title",
    "collector_tstamp", "dvce_created_tstamp", "dvce_max_tstamp", "page_ping_count",
    "event_count", "time_engaged_in_s",
)
VISITOR_COLUMNS = (
    "domain_userid", "blended_user_id", "inferred_user_id", "first_touch_tstamp",
    "last_touch_tstamp", "dvce_min_tstamp", "dvce_max_tstamp", "max_etl_tstamp", "event_count",
    "page_view_count", "time_engaged_in_s", "session_count", "landing_page_host",
    "landing_page_path", "mkt_source", "mkt_medium", "mkt_term", "mkt_content", "mkt_campaign",
    "refr_source", "refr_medium", "refr_term", "refr_urlhost", "refr_urlpath",
)
COOKIE_MAP_COLUMNS = ("domain_userid", "user_id", "last_login_dvce_tstamp")

# of the first event (docs/model.md, derived.sessions)
_FIRST_EVENT = (
    "domain_sessionid", "app_id", "geo_country", "geo_region", "geo_city", "geo_zipcode",
    "geo_latitude", "geo_longitude", "geo_timezone", "mkt_source", "mkt_medium", "mkt_term",
    "mkt_content", "mkt_campaign", "refr_source", "refr_medium", "refr_term", "refr_urlhost",
    "refr_urlpath", "br_family", "br_name", "br_version", "br_lang", "os_family", "os_name",
    "os_timezone", "dvce_type", "dvce_ismobile", "dvce_screenwidth", "dvce_screenheight",
)
_VISITOR_FIRST_SESSION = (
    "landing_page_host", "landing_page_path", "mkt_source", "mkt_medium", "mkt_term",
    "mkt_content", "mkt_campaign", "refr_source", "refr_medium", "refr_term", "refr_urlhost",
    "refr_urlpath",
)


class AmbiguousDuplicates(ValueError):
    """Two copies of an event_id tie on the deduplication order but differ in payload."""


@dataclass(frozen=True)
class DerivedTables:
    sessions: dict[tuple[str, int], dict]
    page_views: dict[str, dict]
    visitors: dict[str, dict]
    cookie_id_to_user_id_map: dict[str, dict]


def is_usable(event: dict) -> bool:
    """domain_userid neither NULL nor empty, domain_sessionidx and dvce_created_tstamp set."""
    return (event["domain_userid"] not in (None, "")
            and event["domain_sessionidx"] is not None
            and event["dvce_created_tstamp"] is not None)


def _nulls_last(value):
    return (value is None, value if value is not None else datetime.min)


def copy_order(event: dict) -> tuple:
    """Deduplication order: collector, etl, dvce_created, dvce_sent tstamps, NULLs last."""
    return (_nulls_last(event["collector_tstamp"]), _nulls_last(event["etl_tstamp"]),
            _nulls_last(event["dvce_created_tstamp"]), _nulls_last(event["dvce_sent_tstamp"]))


def event_order(event: dict) -> tuple:
    """(dvce_created_tstamp, collector_tstamp, event_id), event_id compared byte-wise."""
    return (event["dvce_created_tstamp"], event["collector_tstamp"],
            event["event_id"].encode("utf-8"))


def used_events(events: list[dict]) -> list[dict]:
    """Among the usable copies of each event_id, the first in deduplication order."""
    copies: dict[str, list[dict]] = defaultdict(list)
    for event in events:
        if is_usable(event):
            copies[event["event_id"]].append(event)
    used = []
    for event_id, candidates in copies.items():
        candidates.sort(key=copy_order)
        first = candidates[0]
        for other in candidates[1:]:
            if copy_order(other) != copy_order(first):
                break
            if other != first:
                raise AmbiguousDuplicates(f"copies of {event_id} tie but differ")
        used.append(first)
    return used


def is_login(event: dict) -> bool:
    return event["user_id"] not in (None, "")


def epoch_microseconds(ts: datetime) -> int:
    """Exact microseconds since 1970-01-01 (negative before)."""
    return (ts - EPOCH) // timedelta(microseconds=1)


def time_engaged(pings: list[dict], heartbeat: int, min_visit_length: int) -> int:
    """heartbeat * (distinct FLOOR(epoch / heartbeat) - 1) + min_visit_length; 0 without pings."""
    if not pings:
        return 0
    intervals = {epoch_microseconds(p["dvce_created_tstamp"]) // (heartbeat * 1_000_000)
                 for p in pings}
    return heartbeat * (len(intervals) - 1) + min_visit_length


def derive(events: list[dict], heartbeat: int = 10, min_visit_length: int = 5) -> DerivedTables:
    """The four derived tables of docs/model.md from ``events`` (all of atomic)."""
    used = used_events(events)

    # identity stitching, per cookie in event order
    by_cookie: dict[str, list[dict]] = defaultdict(list)
    for event in used:
        by_cookie[event["domain_userid"]].append(event)
    inferred: dict[int, str | None] = {}  # id(event) -> inferred_user_id
    cookie_map = {}
    for cookie, cookie_events in by_cookie.items():
        cookie_events.sort(key=event_order)
        current = None
        last_login = None
        for event in cookie_events:
            if is_login(event):
                current = event["user_id"]
                last_login = event
            inferred[id(event)] = current
        if last_login is not None:
            cookie_map[cookie] = {
                "domain_userid": cookie, "user_id": last_login["user_id"],
                "last_login_dvce_tstamp": last_login["dvce_created_tstamp"]}

    def stitching(event: dict) -> tuple[str, str | None]:
        user = inferred[id(event)]
        return (user if user is not None else event["domain_userid"]), user

    # sessions, their page views
    by_session: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for event in used:
        by_session[(event["domain_userid"], event["domain_sessionidx"])].append(event)
    sessions = {}
    page_views = {}
    for key, session_events in by_session.items():
        session_events.sort(key=event_order)
        first, last = session_events[0], session_events[-1]

        views: list[tuple[dict, list[dict]]] = []  # (page_view event, its pings)
        for event in session_events:
            if event["event"] == "page_view":
                views.append((event, []))
            elif event["event"] == "page_ping" and views:
                views[-1][1].append(event)
        session_engaged = 0
        for index, (view, pings) in enumerate(views, start=1):
            blended, user = stitching(view)
            engaged = time_engaged(pings, heartbeat, min_visit_length)
            session_engaged += engaged
            page_views[view["event_id"]] = {
                "page_view_id": view["event_id"],
                "domain_userid": key[0],
                "domain_sessionidx": key[1],
                "page_view_in_session_index": index,
                "blended_user_id": blended,
                "inferred_user_id": user,
                "page_urlhost": view["page_urlhost"],
                "page_urlpath": view["page_urlpath"],
                "page_title": view["page_title"],
                "collector_tstamp": view["collector_tstamp"],
                "dvce_created_tstamp": view["dvce_created_tstamp"],
                "dvce_max_tstamp": max(e["dvce_created_tstamp"] for e in [view, *pings]),
                "page_ping_count": len(pings),
                "event_count": 1 + len(pings),
                "time_engaged_in_s": engaged,
            }

        blended, user = stitching(last)
        row = {
            "domain_userid": key[0],
            "domain_sessionidx": key[1],
            "blended_user_id": blended,
            "inferred_user_id": user,
            "session_start_tstamp": min(e["collector_tstamp"] for e in session_events),
            "session_end_tstamp": max(e["collector_tstamp"] for e in session_events),
            "dvce_min_tstamp": min(e["dvce_created_tstamp"] for e in session_events),
            "dvce_max_tstamp": max(e["dvce_created_tstamp"] for e in session_events),
            "max_etl_tstamp": max((e["etl_tstamp"] for e in session_events
                                   if e["etl_tstamp"] is not None), default=None),
            "event_count": len(session_events),
            "page_view_count": len(views),
            "time_engaged_in_s": session_engaged,
            "landing_page_host": first["page_urlhost"],
            "landing_page_path": first["page_urlpath"],
            "exit_page_host": last["page_urlhost"],
            "exit_page_path": last["page_urlpath"],
        }
        row.update({column: first[column] for column in _FIRST_EVENT})
        sessions[key] = {column: row[column] for column in SESSION_COLUMNS}

    # visitors: one per cookie with a session
    sessions_by_cookie: dict[str, list[dict]] = defaultdict(list)
    for (cookie, _), session in sessions.items():
        sessions_by_cookie[cookie].append(session)
    visitors = {}
    for cookie, cookie_events in by_cookie.items():
        first, last = cookie_events[0], cookie_events[-1]
        cookie_sessions = sessions_by_cookie[cookie]
        first_session = sessions[(cookie, first["domain_sessionidx"])]
        blended, user = stitching(last)
        row = {
            "domain_userid": cookie,
            "blended_user_id": blended,
            "inferred_user_id": user,
            "first_touch_tstamp": min(s["session_start_tstamp"] for s in cookie_sessions),
            "last_touch_tstamp": max(s["session_end_tstamp"] for s in cookie_sessions),
            "dvce_min_tstamp": min(s["dvce_min_tstamp"] for s in cookie_sessions),
            "dvce_max_tstamp": max(s["dvce_max_tstamp"] for s in cookie_sessions),
            "max_etl_tstamp": max((s["max_etl_tstamp"] for s in cookie_sessions
                                   if s["max_etl_tstamp"] is not None), default=None),
            "event_count": sum(s["event_count"] for s in cookie_sessions),
            "page_view_count": sum(s["page_view_count"] for s in cookie_sessions),
            "time_engaged_in_s": sum(s["time_engaged_in_s"] for s in cookie_sessions),
            "session_count": len(cookie_sessions),
        }
        row.update({column: first_session[column] for column in _VISITOR_FIRST_SESSION})
        visitors[cookie] = {column: row[column] for column in VISITOR_COLUMNS}

    return DerivedTables(sessions=sessions, page_views=page_views, visitors=visitors,
                         cookie_id_to_user_id_map=cookie_map)


# -- the incremental mode's additions (docs/incremental.md) ---------------------------------

def events_this_run(events: list[dict], cookies: set[str] | None = None) -> dict[str, dict]:
    """The contract's ``events_this_run``: every used event (of ``cookies``, default all), keyed by
    event_id, as its used copy's columns plus ``blended_user_id``, ``inferred_user_id`` and
    ``page_view_id`` (the page view a page_view or page_ping event belongs to, else None)."""
    rows = {}
    by_cookie: dict[str, list[dict]] = defaultdict(list)
    for event in used_events(events):
        if cookies is None or event["domain_userid"] in cookies:
            by_cookie[event["domain_userid"]].append(event)
    for cookie_events in by_cookie.values():
        cookie_events.sort(key=event_order)
        user = None
        last_view: dict[int, str] = {}  # domain_sessionidx -> event_id of its last page view
        for event in cookie_events:
            if is_login(event):
                user = event["user_id"]
            session = event["domain_sessionidx"]
            if event["event"] == "page_view":
                last_view[session] = event["event_id"]
            page_view_id = (last_view.get(session)
                            if event["event"] in ("page_view", "page_ping") else None)
            rows[event["event_id"]] = {
                **event, "blended_user_id": user if user is not None else event["domain_userid"],
                "inferred_user_id": user, "page_view_id": page_view_id}
    return rows


def events_per_session(events: list[dict]) -> dict[tuple[str, int, str | None], dict]:
    """The example custom model: used events per session and event_name."""
    table: dict[tuple[str, int, str | None], dict] = {}
    for event in used_events(events):
        key = (event["domain_userid"], event["domain_sessionidx"], event["event_name"])
        row = table.setdefault(key, {
            "domain_userid": key[0], "domain_sessionidx": key[1], "event_name": key[2],
            "event_count": 0, "first_collector_tstamp": event["collector_tstamp"],
            "last_collector_tstamp": event["collector_tstamp"]})
        row["event_count"] += 1
        row["first_collector_tstamp"] = min(row["first_collector_tstamp"],
                                            event["collector_tstamp"])
        row["last_collector_tstamp"] = max(row["last_collector_tstamp"],
                                           event["collector_tstamp"])
    return table
