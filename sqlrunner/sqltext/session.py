"""Redshift's workload-management settings as SQL: the ``SET`` commands for a target's (or
one query's) ``query_group`` and ``wlm_query_slot_count``, and those that restore them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlrunner.errors import TargetError

MAX_SLOT_COUNT = 50
SESSION_TARGET_KEYS: dict[str, tuple[type, ...]] = {
    "query_group": (str,), "wlm_query_slot_count": (int,),
}


def quote_literal(value: str) -> str:
    """``value`` as a Redshift string literal (quotes doubled; backslashes escaped, since
    Redshift reads a backslash in a literal as an escape character)."""
    if "\x00" in value:
        raise TargetError("a setting cannot contain a NUL character")
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def session_statements(options: Mapping[str, Any], dialect: str = "redshift",
                       target: str = "target") -> list[str]:
    """The ``SET`` commands for a target's (or a query's) ``query_group`` and
    ``wlm_query_slot_count``, to run on each new connection (or before the query)."""
    statements = []
    group = options.get("query_group")
    slots = options.get("wlm_query_slot_count")
    if (group is not None or slots is not None) and dialect != "redshift":
        raise TargetError(f"target {target!r}: query_group and wlm_query_slot_count are "
                          "Redshift workload-management settings; PostgreSQL has neither")
    if group is not None:
        if not isinstance(group, str | int) or isinstance(group, bool) or str(group) == "":
            raise TargetError(f"target {target!r}: query_group must be a non-empty label")
        statements.append(f"SET query_group TO {quote_literal(str(group))}")
    if slots is not None:
        if isinstance(slots, bool) or not isinstance(slots, int) or \
                not 1 <= slots <= MAX_SLOT_COUNT:
            raise TargetError(f"target {target!r}: wlm_query_slot_count must be a whole number "
                              f"from 1 to {MAX_SLOT_COUNT}, got {slots!r}")
        statements.append(f"SET wlm_query_slot_count TO {slots:d}")
    return statements


def query_session_statements(target_options: Mapping[str, Any],
                             query_options: Mapping[str, Any],
                             dialect: str = "redshift",
                             target: str = "target") -> tuple[list[str], list[str]]:
    """``(before, after)``: the ``SET`` commands a query's own ``query_group`` /
    ``wlm_query_slot_count`` need, and those that restore the target's values after it
    (``SET`` back, or ``RESET`` when the target sets none)."""
    own = {k: query_options[k] for k in SESSION_TARGET_KEYS if query_options.get(k) is not None}
    before = session_statements(own, dialect, target)
    after = []
    for key in own:
        if target_options.get(key) is not None:
            after.extend(session_statements({key: target_options[key]}, dialect, target))
        else:
            after.append(f"RESET {key}")
    return before, after
