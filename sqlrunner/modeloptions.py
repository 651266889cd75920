"""Check and normalise the web model's options (playbook variables such as ``app_ids`` or
``conversions``, docs/model.md "Options") before anything is rendered or sent.

A playbook that declares any of them among its ``variables`` has all of them checked, its
own values and the command line's (``--var``, ``--var-file``) alike. A bad option stops
the run with a one-line error naming the variable, before any SQL runs. ``--var`` gives
strings: a list may be given as YAML (``[a, b]``), a flag as ``true``/``false``, a number
as digits; the templates always see lists, booleans and integers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from sqlrunner.atomic_events import COLUMN_DEFINITIONS
from sqlrunner.errors import PlaybookError

# The derived tables' own columns: a passthrough alias must not take one of these names.
PAGE_VIEW_COLUMNS = frozenset(
    """
    page_view_id domain_userid domain_sessionidx page_view_in_session_index blended_user_id
    inferred_user_id page_urlhost page_urlpath page_title collector_tstamp
    dvce_created_tstamp dvce_max_tstamp page_ping_count event_count time_engaged_in_s
    domain_sessionid app_id absolute_time_in_s horizontal_pixels_scrolled
    vertical_pixels_scrolled horizontal_percentage_scrolled vertical_percentage_scrolled
    doc_width doc_height br_viewwidth br_viewheight refr_urlhost refr_urlpath refr_medium
    refr_source refr_term mkt_medium mkt_source mkt_term mkt_content mkt_campaign
    geo_country geo_region geo_city geo_zipcode geo_latitude geo_longitude geo_timezone
    br_family br_name br_version br_lang os_family os_name os_timezone dvce_type
    dvce_ismobile dvce_screenwidth dvce_screenheight default_channel_group
""".split()
)
SESSION_COLUMNS = frozenset(
    """
    domain_userid domain_sessionidx domain_sessionid app_id blended_user_id inferred_user_id
    session_start_tstamp session_end_tstamp dvce_min_tstamp dvce_max_tstamp max_etl_tstamp
    event_count page_view_count time_engaged_in_s geo_country geo_region geo_city
    geo_zipcode geo_latitude geo_longitude geo_timezone landing_page_host landing_page_path
    exit_page_host exit_page_path mkt_source mkt_medium mkt_term mkt_content mkt_campaign
    refr_source refr_medium refr_term refr_urlhost refr_urlpath br_family br_name
    br_version br_lang os_family os_name os_timezone dvce_type dvce_ismobile
    dvce_screenwidth dvce_screenheight first_page_title last_page_title absolute_time_in_s
    page_ping_count is_engaged default_channel_group
""".split()
)
VISITOR_COLUMNS = frozenset(
    """
    domain_userid blended_user_id inferred_user_id first_touch_tstamp last_touch_tstamp
    dvce_min_tstamp dvce_max_tstamp max_etl_tstamp event_count page_view_count
    time_engaged_in_s session_count landing_page_host landing_page_path mkt_source
    mkt_medium mkt_term mkt_content mkt_campaign refr_source refr_medium refr_term
    refr_urlhost refr_urlpath default_channel_group
""".split()
)
PASSTHROUGHS = {
    "page_view_passthroughs": PAGE_VIEW_COLUMNS,
    "session_passthroughs": SESSION_COLUMNS,
    "visitor_passthroughs": VISITOR_COLUMNS,
}
OPTIONS = (
    "app_ids",
    "start_date",
    "ua_bot_filter",
    "days_late_allowed",
    "max_session_days",
    *PASSTHROUGHS,
    "conversions",
)

_ATOMIC_TYPES = {name: kind.replace(" NOT NULL", "") for name, kind in COLUMN_DEFINITIONS}
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
# on one line: setup's migration reads the columns' definitions a line each
_SQL_TYPE = re.compile(r"[A-Za-z][A-Za-z ]*(\( *\d+( *, *\d+)? *\))?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# PostgreSQL's reserved key words (those no column may be named without quotes; the model
# does not quote the options' names)
_RESERVED = frozenset(
    """
    all analyse analyze and any array as asc asymmetric authorization binary both case cast
    check collate collation column concurrently constraint create cross current_catalog
    current_date current_role current_schema current_time current_timestamp current_user
    default deferrable desc distinct do else end except false fetch for foreign freeze from
    full grant group having ilike in initially inner intersect into is isnull join lateral
    leading left like limit localtime localtimestamp natural not notnull null offset on only
    or order outer overlaps placing primary references returning right select session_user
    similar some symmetric table tablesample then to trailing true union unique user using
    variadic verbose when where window with
""".split()
)
_MAX_NAME = 63  # PostgreSQL's identifier limit (Redshift's is 127)
# a passthrough given as an expression without a type
DEFAULT_PASSTHROUGH_TYPE = "VARCHAR(65535)"


class OptionError(ValueError):
    """What is wrong with one option's value (the variable is named by the caller)."""


def normalise_options(
    playbook_path: str,
    playbook_variables: Mapping[str, Any],
    cli_variables: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The model's options, checked and normalised, for a playbook that declares any.

    Returns ``cli_variables`` with every option the playbook declares set to its checked
    value (lists, booleans, integers), or ``cli_variables`` unchanged for a playbook
    without options. Raises :class:`PlaybookError` naming the variable (and the playbook
    line that sets it, when it is the playbook's own value).
    """
    given = dict(cli_variables or {})
    if not any(name in playbook_variables for name in OPTIONS):
        return given
    merged = {**playbook_variables, **given}
    checked: dict[str, Any] = {}
    for name in OPTIONS:
        try:
            checked[name] = _CHECKS[name](merged.get(name, _DEFAULTS[name]))
        except OptionError as err:
            raise _refused(name, str(err), given, playbook_path) from None
    clash = _session_clash(checked["session_passthroughs"], checked["conversions"])
    if clash:
        message = f"alias {clash!r} is a column of one of the conversions"
        raise _refused("session_passthroughs", message, given, playbook_path)
    return {**given, **checked}


def _refused(name: str, message: str, given: Mapping[str, Any], path: str) -> PlaybookError:
    """The error naming the variable, and the playbook line when it is the playbook's."""
    if name in given:
        return PlaybookError(f"--var {name}: {message}")
    return PlaybookError(
        f"variable {name}: {message}", file=path, line=_variable_line(path, name)
    )


def _session_clash(passthroughs: list[dict[str, str]], conversions: list[dict[str, str]]) -> str:
    """A session passthrough's alias that one of the conversions' columns also takes."""
    columns = {
        f"cv_{c['name']}_{part}"
        for c in conversions
        for part in ("volume", "value", "converted", "first_tstamp")
    }
    return next((p["alias"] for p in passthroughs if p["alias"] in columns), "")


def _variable_line(path: str, name: str) -> int | None:
    try:
        with open(path, encoding="utf-8") as file:
            for number, line in enumerate(file, 1):
                if re.match(rf"\s+{re.escape(name)}\s*:", line):
                    return number
    except OSError:
        return None
    return None


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        from sqlrunner.playbook.yaml12 import load_yaml  # (the playbook layer's YAML 1.2)

        try:
            value = load_yaml(text, "--var") if text.startswith("[") else text.split(",")
        except PlaybookError as err:
            raise OptionError(f"not a YAML list: {err.message}") from None
    if value is None:
        return []
    if not isinstance(value, list):
        raise OptionError(f"expected a list, got {value!r}")
    return value


def _app_ids(value: Any) -> list[str]:
    ids = [str(v).strip() if isinstance(v, (str, int)) else v for v in _as_list(value)]
    for item in ids:
        if not isinstance(item, str) or not item:
            raise OptionError(f"each app_id must be a non-empty string, got {item!r}")
        if "'" in item or "\\" in item:
            raise OptionError(f"an app_id may not hold a quote or a backslash: {item!r}")
    return ids


def _start_date(value: Any) -> str:
    text = "" if value is None else str(value).strip()
    if not text:
        return ""
    try:
        if not _DATE.fullmatch(text):
            raise ValueError
        date.fromisoformat(text)
    except ValueError:
        raise OptionError(f"expected a date YYYY-MM-DD or '', got {value!r}") from None
    return text


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise OptionError(f"expected true or false, got {value!r}")


def _days(value: Any) -> int | str:
    if value is None or (isinstance(value, str) and not value.strip()):
        return ""
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or int(text) < 1:
        raise OptionError(f"expected a whole number of days, 1 or more, or '', got {value!r}")
    return int(text)


def _expression(value: Any, what: str) -> str:
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise OptionError(f"{what} must be SQL text, got {value!r}")
    text = str(value).strip()
    if not text:
        raise OptionError(f"{what} is empty")
    if ";" in text:
        raise OptionError(f"{what} may not hold a ';': {text!r}")
    return text


def _identifier(value: Any, what: str, prefix: str = "", suffix: str = "") -> str:
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
        raise OptionError(
            f"{what} must be a lower-case SQL identifier ([a-z_][a-z0-9_]*), got {value!r}"
        )
    if not prefix and value in _RESERVED:
        raise OptionError(f"{what} {value!r} is a reserved SQL word")
    if len(prefix + value + suffix) > _MAX_NAME:
        raise OptionError(
            f"{what} {value!r} is too long: {prefix}{value}{suffix} is over {_MAX_NAME} characters"
        )
    return value


def _passthroughs(taken: frozenset[str]) -> Callable[[Any], list[dict[str, str]]]:
    def check(value: Any) -> list[dict[str, str]]:
        found: list[dict[str, str]] = []
        for item in _as_list(value):
            if isinstance(item, str):
                name = item.strip()
                if name not in _ATOMIC_TYPES:
                    raise OptionError(
                        f"unknown column {name!r}: not a column of atomic.events "
                        "(use {sql: EXPR, alias: NAME} for an expression)"
                    )
                entry = {"sql": name, "alias": name, "type": _ATOMIC_TYPES[name].upper()}
            elif isinstance(item, dict):
                unknown = sorted(set(item) - {"sql", "alias", "type"})
                if unknown or "sql" not in item or "alias" not in item:
                    raise OptionError(
                        "a passthrough is a column name or {sql: EXPR, alias: "
                        f"NAME, type: SQL TYPE (optional)}}, got {item!r}"
                    )
                kind = str(item.get("type") or DEFAULT_PASSTHROUGH_TYPE).strip()
                if not _SQL_TYPE.fullmatch(kind):
                    raise OptionError(
                        f"type must be a SQL type such as INT or VARCHAR(100), got {kind!r}"
                    )
                entry = {
                    "sql": _expression(item["sql"], "sql"),
                    "alias": _identifier(item["alias"], "alias"),
                    "type": kind,
                }
            else:
                raise OptionError(f"a passthrough is a column name or {{sql, alias}}, got {item!r}")
            if entry["alias"] in taken:
                raise OptionError(f"alias {entry['alias']!r} is a column of the table already")
            if any(e["alias"] == entry["alias"] for e in found):
                raise OptionError(f"alias {entry['alias']!r} is given twice")
            found.append(entry)
        return found

    return check


def _conversions(value: Any) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    for item in _as_list(value):
        if not isinstance(item, dict):
            raise OptionError(f"a conversion is {{name, condition, value}}, got {item!r}")
        unknown = sorted(set(item) - {"name", "condition", "value"})
        if unknown:
            raise OptionError(
                f"unknown key {unknown[0]!r} in a conversion (expected name, condition, value)"
            )
        if "name" not in item:
            raise OptionError(f"a conversion without a name: {item!r}")
        name = _identifier(item["name"], "a conversion's name", "cv_", "_first_tstamp")
        if "condition" not in item:
            raise OptionError(f"conversion {name!r} has no condition")
        if any(c["name"] == name for c in found):
            raise OptionError(f"conversion {name!r} is given twice")
        value_sql = item.get("value")
        found.append(
            {
                "name": name,
                "condition": _expression(item["condition"], "condition"),
                "value": "0" if value_sql in (None, "") else _expression(value_sql, "value"),
            }
        )
    return found


_CHECKS: dict[str, Callable[[Any], Any]] = {
    "app_ids": _app_ids,
    "start_date": _start_date,
    "ua_bot_filter": _flag,
    "days_late_allowed": _days,
    "max_session_days": _days,
    **{name: _passthroughs(taken) for name, taken in PASSTHROUGHS.items()},
    "conversions": _conversions,
}
_DEFAULTS: dict[str, Any] = {
    "app_ids": [],
    "start_date": "",
    "ua_bot_filter": False,
    "days_late_allowed": "",
    "max_session_days": "",
    **dict.fromkeys(PASSTHROUGHS, []),
    "conversions": [],
}
