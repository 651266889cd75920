"""SQL Runner's template functions (nowWithFormat, systemEnv, randomInt, AWS credentials), and
Go's reference-time layouts that nowWithFormat formats with (``2006-01-02 15:04:05``).

Shared by the playbook, rendered as a template, and its SQL files; the Go template
engine itself (:mod:`sqlrunner.template`) knows nothing of them.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlrunner.secrets import SecretRegistry

_SECRET_ENV_WORDS = ("PASSWORD", "SECRET", "TOKEN", "CREDENTIAL", "KEY")


def runner_functions(
    now: datetime | None = None, secrets: SecretRegistry | None = None
) -> dict[str, Callable[..., Any]]:
    """The functions SQL Runner adds to every template.

    ``now`` is the run's start time: unlike SQL Runner, which reads the clock at
    every call, one run renders one consistent time (and a resumed run the same).
    """
    started = (now or datetime.now().astimezone()).astimezone()
    # Seeded by the run's start, so a resumed run renders the same "random" numbers.
    numbers = random.Random(started.isoformat())
    registry = secrets or SecretRegistry()

    def now_with_format(layout: str) -> str:
        return format_go_time(started, layout)

    def system_env(name: str) -> str:
        value = os.environ.get(name, "")
        if any(word in name.upper() for word in _SECRET_ENV_WORDS):
            registry.add(value)
        return value

    def random_int() -> int:
        return numbers.getrandbits(63)

    def credentials(access_key: str, secret_key: str, token: str | None) -> str:
        registry.add(secret_key)
        registry.add(token)
        clause = f"aws_access_key_id={access_key};aws_secret_access_key={secret_key}"
        if token:
            clause += f";token={token}"
        return f"CREDENTIALS '{clause}'"

    def aws_env_credentials() -> str:
        access = os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_ACCESS_KEY")
        secret = os.environ.get("AWS_SECRET_ACCESS_KEY") or os.environ.get("AWS_SECRET_KEY")
        if not access or not secret:
            raise ValueError("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set")
        return credentials(access, secret, os.environ.get("AWS_SESSION_TOKEN"))

    def from_botocore(profile: str | None, what: str) -> str:
        try:
            import botocore.session
        except ImportError:
            raise ValueError(f"{what} needs boto3: pip install 'sqlrunner[aws]'") from None
        session = botocore.session.Session(profile=profile or None)
        found = session.get_credentials()
        if found is None:
            raise ValueError(f"{what}: no AWS credentials found")
        frozen = found.get_frozen_credentials()
        return credentials(frozen.access_key, frozen.secret_key, frozen.token)

    return {
        "nowWithFormat": now_with_format,
        "systemEnv": system_env,
        "randomInt": random_int,
        "awsEnvCredentials": aws_env_credentials,
        "awsProfileCredentials": lambda profile: from_botocore(profile, "awsProfileCredentials"),
        "awsEC2RoleCredentials": lambda: from_botocore(None, "awsEC2RoleCredentials"),
        "awsChainCredentials": lambda profile: from_botocore(profile, "awsChainCredentials"),
    }


# ---------------------------------------------------------------------------
# Go's time layouts

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
