"""Format a datetime with a Go reference-time layout (``2006-01-02 15:04:05``)."""

from __future__ import annotations

import re
from datetime import datetime

_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

# Alternatives in the order Go's nextStdChunk tries them at one position.
_TOKEN = re.compile(
    r"January|Jan|Monday|Mon|MST|"
    r"2006|"
    r"01|02|03|04|05|06|002|__2|_2|"
    r"15|1|2|3|4|5|"
    r"PM|pm|"
    r"Z070000|Z07:00:00|Z0700|Z07:00|Z07|"
    r"-070000|-07:00:00|-0700|-07:00|-07|"
    r"[.,](?:0+|9+)(?![0-9])"
)


def _offset(dt: datetime, sep: str, seconds: bool, zulu: bool, hours_only: bool) -> str:
    delta = dt.utcoffset()
    total = int(delta.total_seconds()) if delta is not None else 0
    if zulu and total == 0:
        return "Z"
    sign = "-" if total < 0 else "+"
    total = abs(total)
    hh, rem = divmod(total, 3600)
    mm, ss = divmod(rem, 60)
    if hours_only:
        return f"{sign}{hh:02d}"
    text = f"{sign}{hh:02d}{sep}{mm:02d}"
    return text + f"{sep}{ss:02d}" if seconds else text


def _fraction(dt: datetime, token: str) -> str:
    digits = len(token) - 1
    micro = f"{dt.microsecond:06d}000"  # nanoseconds, as Go has them
    frac = micro[:digits]
    if token[1] == "9":
        frac = frac.rstrip("0")
        return token[0] + frac if frac else ""
    return token[0] + frac


def _render(dt: datetime, token: str) -> str:
    hour12 = dt.hour % 12 or 12
    simple = {
        "January": _MONTHS[dt.month - 1], "Jan": _MONTHS[dt.month - 1][:3],
        "Monday": _DAYS[dt.weekday()], "Mon": _DAYS[dt.weekday()][:3],
        "2006": f"{dt.year:04d}", "06": f"{dt.year % 100:02d}",
        "01": f"{dt.month:02d}", "1": str(dt.month),
        "02": f"{dt.day:02d}", "2": str(dt.day), "_2": f"{dt.day:>2d}",
        "002": f"{dt.timetuple().tm_yday:03d}", "__2": f"{dt.timetuple().tm_yday:>3d}",
        "15": f"{dt.hour:02d}", "03": f"{hour12:02d}", "3": str(hour12),
        "04": f"{dt.minute:02d}", "4": str(dt.minute),
        "05": f"{dt.second:02d}", "5": str(dt.second),
        "PM": "PM" if dt.hour >= 12 else "AM", "pm": "pm" if dt.hour >= 12 else "am",
    }
    if token in simple:
        return simple[token]
    if token == "MST":
        name = dt.tzname()
        return name if name else _offset(dt, "", False, False, False)
    if token[0] in ".,":
        return _fraction(dt, token)
    zulu = token.startswith("Z")
    body = token[1:]
    return _offset(dt, ":" if ":" in body else "", body.count("0") >= 5 or
                   body.count(":") == 2, zulu, body == "07")


def format_go_time(dt: datetime, layout: str) -> str:
    """Render ``dt`` with a Go layout, e.g. ``"2006_01_02"`` gives ``"2026_11_23"``."""
    out: list[str] = []
    pos = 0
    while pos < len(layout):
        match = _TOKEN.match(layout, pos)
        token = match.group(0) if match else None
        if token is None:
            out.append(layout[pos])
            pos += 1
            continue
        # Go: "Jan" is only a month if not followed by a lower-case letter (e.g. "Janet").
        nxt = layout[pos + len(token): pos + len(token) + 1]
        if token in {"Jan", "Mon"} and nxt.islower():
            out.append(layout[pos])
            pos += 1
            continue
        out.append(_render(dt, token))
        pos += len(token)
    return "".join(out)
