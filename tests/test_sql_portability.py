"""Every SQL file under sql/ keeps to the portable subset of docs/model.md ("Portability").

A construct from the avoid list may only appear inside a branch of an engine condition
(``{{if eq .target_type "redshift"}}...{{else}}...{{end}}``, or ``ne``): both branches
are engine-specific. Comments and string literals are not code and are not checked.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

SQL_ROOT = Path(__file__).resolve().parent.parent / "sql"

# (name, pattern) of each construct to avoid, matched case-insensitively on code only
AVOIDED = (
    ("ON CONFLICT", r"\bON\s+CONFLICT\b"),
    ("RETURNING", r"\bRETURNING\b"),
    ("MERGE", r"\bMERGE\s+INTO\b"),
    ("arrays", r"\bARRAY\s*[\[(]|\[\s*\]|\b(?:UNNEST|ARRAY_AGG|ARRAY_LENGTH)\s*\("),
    ("DISTINCT ON", r"\bDISTINCT\s+ON\b"),
    ("FILTER (WHERE ...)", r"\bFILTER\s*\(\s*WHERE\b"),
    ("LATERAL", r"\bLATERAL\b"),
    ("generate_series", r"\bGENERATE_SERIES\s*\("),
    ("advisory locks", r"\bPG_(?:TRY_)?ADVISORY_\w+"),
    ("now() and other clocks", r"\b(?:NOW|CLOCK_TIMESTAMP|STATEMENT_TIMESTAMP|"
     r"TRANSACTION_TIMESTAMP|TIMEOFDAY)\s*\(|\bCURRENT_TIMESTAMP\b|\bLOCALTIMESTAMP\b|"
     r"\bSYSDATE\b"),
    ("TRUNCATE", r"\bTRUNCATE\b"),
    ("varchar without a length", r"\b(?:VARCHAR|CHARACTER\s+VARYING)\b(?!\s*\()"),
    ("Redshift-only functions", r"\b(?:NVL2?|DATEADD|DATEDIFF|GETDATE|LISTAGG)\s*\(|"
     r"\bQUALIFY\b|\bIGNORE\s+NULLS\b"),
    ("timestamptz", r"\bTIMESTAMPTZ\b|\bTIMESTAMP\s+WITH\s+TIME\s+ZONE\b"),
)

# window functions that take no frame; every other function over a window needs ROWS
FRAMELESS_WINDOW_FUNCTIONS = {
    "ROW_NUMBER", "RANK", "DENSE_RANK", "PERCENT_RANK", "CUME_DIST", "NTILE", "LAG", "LEAD",
}

ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.S)
ENGINE_CONDITION = re.compile(
    r'^if\s+\(?\s*(?:(?:eq|ne)\s+\.target_type\s+"[^"]*"|(?:eq|ne)\s+"[^"]*"\s+\.target_type)'
    r"\s*\)?$")
OPENS_BLOCK = re.compile(r"^(?:if|range|with|block|define)\b")


def _blank(text: str, start: int, end: int) -> str:
    """``text`` with [start, end) replaced by spaces, newlines kept (lines stay lines)."""
    return text[:start] + re.sub(r"[^\n]", " ", text[start:end]) + text[end:]


def mask_engine_branches(text: str) -> str:
    """Blank every engine-conditional block, then every other template action."""
    actions = list(ACTION.finditer(text))
    stack: list[tuple[bool, int]] = []  # (is engine condition, start offset)
    regions: list[tuple[int, int]] = []
    for action in actions:
        body = action.group(1)
        if body.startswith("/*"):
            continue
        if OPENS_BLOCK.match(body):
            stack.append((bool(ENGINE_CONDITION.match(body)), action.start()))
        elif body == "end" and stack:
            engine, start = stack.pop()
            if engine:
                regions.append((start, action.end()))
    for start, end in regions:
        text = _blank(text, start, end)
    for action in ACTION.finditer(text):
        text = _blank(text, action.start(), action.end())
    return text


def strip_comments_and_strings(sql: str) -> str:
    """Blank SQL comments (``--``, nested ``/* */``) and string literals, keep line breaks."""
    out = []
    i, n = 0, len(sql)
    while i < n:
        if sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            out.append(" " * (end - i))
            i = end
        elif sql.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if sql.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif sql.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", sql[i:j]))
            i = j
        elif sql[i] == "'":
            j = i + 1
            while j < n:
                if sql[j] == "'" and sql.startswith("''", j):
                    j += 2
                elif sql[j] == "'":
                    j += 1
                    break
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", sql[i:j]))
            i = j
        else:
            out.append(sql[i])
            i += 1
    return "".join(out)


def _window_violations(code: str) -> list[tuple[str, int]]:
    found = []
    for over in re.finditer(r"\bOVER\s*\(", code, re.I):
        # the window specification: up to the matching parenthesis
        depth, j = 1, over.end()
        while j < len(code) and depth:
            depth += {"(": 1, ")": -1}.get(code[j], 0)
            j += 1
        spec = code[over.end():j - 1]
        # the function: the name before the parenthesised arguments before OVER
        before = code[:over.start()].rstrip()
        depth, k = 0, len(before)
        while k > 0:
            k -= 1
            depth += {")": 1, "(": -1}.get(before[k], 0)
            if depth == 0:
                break
        name = re.search(r"(\w+)\s*$", before[:k])
        function = name.group(1).upper() if name else "?"
        if function not in FRAMELESS_WINDOW_FUNCTIONS and not re.search(r"\bROWS\b", spec,
                                                                         re.I):
            line = code.count("\n", 0, over.start()) + 1
            found.append((f"window aggregate {function} without a ROWS frame", line))
    return found


def portability_violations(text: str) -> list[tuple[str, int]]:
    """(construct, line) of each avoided construct outside an engine condition."""
    code = strip_comments_and_strings(mask_engine_branches(text))
    found = []
    for name, pattern in AVOIDED:
        for match in re.finditer(pattern, code, re.I):
            found.append((name, code.count("\n", 0, match.start()) + 1))
    found.extend(_window_violations(code))
    return sorted(found, key=lambda v: v[1])


SQL_FILES = sorted(SQL_ROOT.rglob("*.sql"))


def test_there_are_sql_files_to_check() -> None:
    assert any(p.parent.name == "full" for p in SQL_FILES)
    assert any(p.parent.name == "setup" for p in SQL_FILES)


@pytest.mark.parametrize("path", SQL_FILES, ids=lambda p: str(p.relative_to(SQL_ROOT)))
def test_sql_file_is_portable(path: Path) -> None:
    violations = portability_violations(path.read_text(encoding="utf-8"))
    assert not violations, "\n".join(f"{path}:{line}: {name}" for name, line in violations)


@pytest.mark.parametrize(("snippet", "construct"), [
    ("INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING;", "ON CONFLICT"),
    ("DELETE FROM t RETURNING id;", "RETURNING"),
    ("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE;", "MERGE"),
    ("SELECT ARRAY[1, 2];", "arrays"),
    ("SELECT ARRAY_AGG(x) FROM t;", "arrays"),
    ("CREATE TABLE t (x INT[]);", "arrays"),
    ("SELECT DISTINCT ON (a) a, b FROM t;", "DISTINCT ON"),
    ("SELECT COUNT(*) FILTER (WHERE a) FROM t;", "FILTER (WHERE ...)"),
    ("SELECT * FROM t, LATERAL (SELECT 1) s;", "LATERAL"),
    ("SELECT generate_series(1, 3);", "generate_series"),
    ("SELECT pg_advisory_xact_lock(1);", "advisory locks"),
    ("INSERT INTO t SELECT now();", "now() and other clocks"),
    ("SELECT CURRENT_TIMESTAMP;", "now() and other clocks"),
    ("TRUNCATE t;", "TRUNCATE"),
    ("CREATE TABLE t (x VARCHAR);", "varchar without a length"),
    ("SELECT CAST(x AS varchar) FROM t;", "varchar without a length"),
    ("SELECT NVL(a, b) FROM t;", "Redshift-only functions"),
    ("SELECT DATEDIFF(day, a, b) FROM t;", "Redshift-only functions"),
    ("SELECT a FROM t QUALIFY ROW_NUMBER() OVER (ORDER BY a) = 1;", "Redshift-only functions"),
    ("SELECT LAST_VALUE(a IGNORE NULLS) OVER (ORDER BY b ROWS UNBOUNDED PRECEDING) FROM t;",
     "Redshift-only functions"),
    ("CREATE TABLE t (x TIMESTAMPTZ);", "timestamptz"),
    ("SELECT SUM(a) OVER (PARTITION BY b ORDER BY c) FROM t;",
     "window aggregate SUM without a ROWS frame"),
    ("SELECT FIRST_VALUE(a) OVER (PARTITION BY b ORDER BY c) FROM t;",
     "window aggregate FIRST_VALUE without a ROWS frame"),
    ("{{if eq .upsert true}}TRUNCATE t;{{end}}", "TRUNCATE"),  # not an engine condition
])
def test_a_bad_snippet_is_caught(snippet: str, construct: str) -> None:
    assert construct in [name for name, _ in portability_violations(snippet)]


@pytest.mark.parametrize("snippet", [
    "SELECT SUM(a) OVER (PARTITION BY b ORDER BY c ROWS BETWEEN UNBOUNDED PRECEDING AND "
    "CURRENT ROW) FROM t;",
    "SELECT COUNT(*) OVER (PARTITION BY b ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED "
    "FOLLOWING), ROW_NUMBER() OVER (PARTITION BY b ORDER BY c) FROM t;",
    "SELECT MAX(CASE WHEN a THEN LPAD(CAST(i AS VARCHAR(10)), 10, '0') END) OVER (ORDER BY i "
    "ROWS UNBOUNDED PRECEDING) FROM t;",
    '{{if eq .target_type "redshift"}}DELETE FROM t;{{else}}TRUNCATE t;{{end}}',
    '{{if ne .target_type "redshift"}}\nINSERT INTO t SELECT 1 ON CONFLICT DO NOTHING;\n{{end}}',
    '{{- if eq .target_type "postgres" -}} SELECT ARRAY[1] {{- else if eq .x 1}} NVL(a) '
    "{{- end}}",
    "-- TRUNCATE, now() and ON CONFLICT are fine in a comment\nSELECT 1;",
    "/* RETURNING /* nested */ MERGE INTO */ SELECT 'now() ON CONFLICT' AS text;",
    "SELECT 'it''s LATERAL' FROM t;",
    "SELECT '{{.run_tstamp}}' AS run_tstamp, CAST(x AS VARCHAR(36)) FROM t;",
])
def test_a_portable_snippet_passes(snippet: str) -> None:
    assert portability_violations(snippet) == []


def test_a_violation_reports_its_line() -> None:
    text = "SELECT 1;\n-- TRUNCATE in a comment\n{{/* now() */}}\nSELECT NVL(a, b)\nFROM t;"
    assert portability_violations(text) == [("Redshift-only functions", 4)]
