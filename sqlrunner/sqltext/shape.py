"""How a SQL file stands towards transactions: statements that must run alone, files that
open or end transaction blocks themselves, and the usual one implicit transaction.

Pure functions over SQL text; ``dialect`` is ``"redshift"`` or ``"postgres"``.
"""

from __future__ import annotations

import re

from sqlrunner.sqltext.split import split_statements


def must_run_alone_reason(statement: str, dialect: str = "redshift") -> str | None:
    """Why ``statement`` cannot run inside a transaction block on ``dialect``, or None."""
    words = _leading_words(statement, 12)
    if not words:
        return None
    first = words[0]
    two = " ".join(words[:2])
    if first == "VACUUM":
        return "VACUUM cannot run inside a transaction block"
    if two in {"CREATE DATABASE", "DROP DATABASE", "CREATE TABLESPACE", "DROP TABLESPACE"}:
        return f"{two} cannot run inside a transaction block"
    if dialect == "redshift":
        if first == "ALTER" and words[1:2] == ["TABLE"] and "APPEND" in words:
            return "ALTER TABLE APPEND commits at once and cannot run in a transaction block"
        if first in {"CREATE", "DROP", "ALTER"} and words[1:3] == ["EXTERNAL", "TABLE"]:
            return f"{first} EXTERNAL TABLE cannot run inside a transaction block"
        if two in {"CREATE LIBRARY", "DROP LIBRARY"} or words[:2] == ["REINDEX", "DATABASE"]:
            return f"{two} cannot run inside a transaction block"
        upper = " ".join(words)
        if first == "ALTER" and words[1:2] == ["TABLE"] and " ALTER COLUMN " in f" {upper} " \
                and " TYPE " in f" {upper} ":
            return "ALTER TABLE ... ALTER COLUMN ... TYPE cannot run in a transaction block"
        return None
    if first in {"CREATE", "DROP", "REINDEX"} and "CONCURRENTLY" in words[:6]:
        return f"{' '.join(words[:2])} ... CONCURRENTLY cannot run in a transaction block"
    if first == "REINDEX" and words[1:2] in (["DATABASE"], ["SYSTEM"]):
        return f"{two} cannot run inside a transaction block"
    if two == "ALTER SYSTEM":
        return "ALTER SYSTEM cannot run inside a transaction block"
    if first == "CREATE" and words[1:2] == ["SUBSCRIPTION"]:
        return "CREATE SUBSCRIPTION cannot run inside a transaction block"
    return None


def statements_that_must_run_alone(sql: str, dialect: str = "redshift") -> list[str]:
    """The statements of ``sql`` that ``dialect`` refuses inside a transaction block
    (``VACUUM``, ``ALTER TABLE ... APPEND``, ``CREATE INDEX CONCURRENTLY``, ...)."""
    return [s.text for s in split_statements(sql, backslash_escapes=dialect == "redshift")
            if must_run_alone_reason(s.text, dialect)]


# How a file's statements stand towards transactions (see transaction_shape).
RUNS_ALONE = "runs alone"
OWN_TRANSACTIONS = "own transactions"
ONE_TRANSACTION = "one transaction"


# Every word that must_run_alone_reason or controls_transaction looks for: a text holding
# none of them, not even inside another word, is one implicit transaction.
_SHAPE_WORDS = re.compile(
    "vacuum|database|tablespace|concurrently|reindex|system|subscription|append|external|"
    "library|alter|begin|start|commit|end|abort|rollback|prepare", re.IGNORECASE)


def transaction_shape(sql: str, dialect: str = "redshift") -> str:
    """How ``sql`` runs when sent whole: RUNS_ALONE (exactly one statement that must run
    outside a transaction block: send it on its own), OWN_TRANSACTIONS (it begins or ends
    transaction blocks itself: BEGIN, COMMIT, ...) or ONE_TRANSACTION (one implicit
    transaction, the usual case)."""
    if _SHAPE_WORDS.search(sql) is None:
        return ONE_TRANSACTION  # no statement can begin with a word that decides otherwise
    statements = split_statements(sql, backslash_escapes=dialect == "redshift")
    if len(statements) == 1 and must_run_alone_reason(statements[0].text, dialect) is not None:
        return RUNS_ALONE
    if any(controls_transaction(s.text) for s in statements):
        return OWN_TRANSACTIONS
    return ONE_TRANSACTION


def runs_alone(sql: str, dialect: str = "redshift") -> bool:
    """True when ``sql`` is exactly one statement that must run outside a transaction
    block: send it on its own, not wrapped in ``BEGIN``/``COMMIT`` with anything else."""
    return transaction_shape(sql, dialect) == RUNS_ALONE


def controls_transaction(statement: str) -> bool:
    """Whether ``statement`` opens or ends a transaction block (``BEGIN``, ``COMMIT``,
    ``ROLLBACK``, ...); savepoints stay inside one."""
    words = _leading_words(statement, 2)
    if not words:
        return False
    first = words[0]
    if first in {"BEGIN", "START", "COMMIT", "END", "ABORT"}:
        return True
    if first == "ROLLBACK":
        return words[1:2] != ["TO"]
    return first == "PREPARE" and words[1:2] == ["TRANSACTION"]


def _leading_words(statement: str, count: int) -> list[str]:
    words = re.findall(r"[A-Za-z_][A-Za-z0-9_$]*|\S", _strip_comments(statement))
    return [w.upper() for w in words[:count]]


def _strip_comments(text: str) -> str:
    """``text`` without a leading run of comments (enough for keyword tests)."""
    while True:
        text = text.lstrip()
        if text.startswith("--"):
            newline = text.find("\n")
            text = "" if newline < 0 else text[newline + 1:]
        elif text.startswith("/*"):
            close = text.find("*/")
            text = "" if close < 0 else text[close + 2:]
        else:
            return text
