"""The portability check: flag what Redshift (or PostgreSQL) rejects or runs differently.

Every query of a playbook is rendered for a target of the dialect checked (so
``{{if eq .target_type "redshift"}}`` branches are taken as they would be),
split into statements (:mod:`sqlrunner.sqltext.split`), parsed with sqlglot in that
dialect, and scanned for the constructs docs/model.md ("Portability") tells the
model to avoid, for PostgreSQL-only functions and types (Amazon's list of
unsupported PostgreSQL features, functions and data types), and, for the
PostgreSQL check, for Redshift-only ones. Each finding names the file, line
and column of the rendered SQL and suggests a portable form.

A finding that is wrong for a statement can be silenced by a comment on its
line, or alone on the line above: ``-- sqlrunner: allow RULE[, RULE...]``.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from sqlrunner.errors import UsageError
from sqlrunner.sqltext.shape import must_run_alone_reason
from sqlrunner.sqltext.split import LineIndex, Statement, split_statements

if TYPE_CHECKING:
    from sqlrunner.plan import RunPlan

DIALECTS = ("redshift", "postgres")
# The targets a playbook is rendered for; never connected to.
CHECK_TARGETS = {
    "redshift": "redshift://sqlrunner-check@redshift.invalid:5439/dev",
    "postgres": "postgresql://sqlrunner-check@postgres.invalid:5432/dev",
}
RUN_TSTAMP = "'{{.run_tstamp}}'::timestamp (the run's start time, a builtin variable)"
ENGINE_CONDITION = '{{if eq .target_type "postgres"}}...{{end}}'
REDSHIFT_CONDITION = '{{if eq .target_type "redshift"}}...{{end}}'


@dataclass(frozen=True)
class Finding:
    """One construct of a rendered SQL file that the checked engine rejects or runs
    differently, with a portable alternative."""

    file: str
    line: int
    column: int
    rule: str
    message: str
    suggestion: str
    dialect: str = ""

    def __str__(self) -> str:
        return (f"{self.file}:{self.line}:{self.column}: {self.rule}: {self.message} "
                f"(suggestion: {self.suggestion})")

    def to_dict(self) -> dict[str, Any]:
        """The finding as a JSON-ready mapping."""
        return asdict(self)


# ---------------------------------------------------------------------------
# What to flag. Function names map to (rule, message, suggestion).

_PG_ONLY = "postgres-only-function"
_REDSHIFT_ONLY = "redshift-only-function"
_ARRAY = "array"


def _pg_function(message: str, suggestion: str) -> tuple[str, str, str]:
    return (_PG_ONLY, message, suggestion)


_ARRAY_FUNCTION = (_ARRAY, "array functions do not exist on Redshift (no array types)",
                   "work on rows instead: a join, a window function, or LISTAGG/STRING_AGG "
                   "behind an engine condition " + ENGINE_CONDITION)
_CURRENT_TIME = ("current-time",
                 "reads the clock inside model SQL: a resumed or repeated run computes "
                 "different rows (and NOW/CURRENT_TIMESTAMP are leader-node-only on "
                 "Redshift: they fail in a query that reads a table)",
                 RUN_TSTAMP)

REDSHIFT_REJECTED_FUNCTIONS: dict[str, tuple[str, str, str]] = {
    **{name: _ARRAY_FUNCTION for name in (
        "ARRAY_AGG", "UNNEST", "ARRAY_LENGTH", "ARRAY_TO_STRING", "STRING_TO_ARRAY",
        "ARRAY_APPEND", "ARRAY_PREPEND", "ARRAY_CAT", "ARRAY_POSITION", "ARRAY_POSITIONS",
        "ARRAY_REMOVE", "ARRAY_REPLACE", "ARRAY_UPPER", "ARRAY_LOWER", "ARRAY_DIMS",
        "ARRAY_NDIMS", "CARDINALITY", "REGEXP_SPLIT_TO_ARRAY")},
    **{name: _CURRENT_TIME for name in (
        "NOW", "TRANSACTION_TIMESTAMP", "STATEMENT_TIMESTAMP", "CLOCK_TIMESTAMP", "TIMEOFDAY",
        "GETDATE")},
    "STRING_AGG": _pg_function(
        "STRING_AGG does not exist on Redshift",
        "LISTAGG(expr, ',') WITHIN GROUP (ORDER BY ...) on Redshift and STRING_AGG on "
        "PostgreSQL, each behind an engine condition " + ENGINE_CONDITION),
    "EVERY": _pg_function("EVERY does not exist on Redshift", "BOOL_AND(expr)"),
    "XMLAGG": _pg_function("XML functions do not exist on Redshift", "none: keep XML out"),
    **{name: _pg_function(f"{name} does not exist on Redshift",
                          "compute it from SUM/AVG/COUNT, e.g. COVAR_POP(x, y) = "
                          "AVG(x * y) - AVG(x) * AVG(y)")
       for name in ("CORR", "COVAR_POP", "COVAR_SAMP", "REGR_AVGX", "REGR_AVGY",
                    "REGR_COUNT", "REGR_INTERCEPT", "REGR_R2", "REGR_SLOPE", "REGR_SXX",
                    "REGR_SXY", "REGR_SYY")},
    **{name: _pg_function(f"{name} does not exist on Redshift",
                          "interval arithmetic with EXTRACT or DATE_PART")
       for name in ("JUSTIFY_DAYS", "JUSTIFY_HOURS", "JUSTIFY_INTERVAL", "AGE", "ISFINITE")},
    "PG_SLEEP": _pg_function("PG_SLEEP does not exist on Redshift",
                             "do not wait inside SQL; schedule the step later"),
    "DIV": _pg_function("DIV does not exist on Redshift",
                        "FLOOR(a / b) on numbers, or a / b on integers"),
    "SETSEED": _pg_function("SETSEED does not exist on Redshift",
                            "derive pseudo-random values from a hash: MD5(key)"),
    "WIDTH_BUCKET": _pg_function("WIDTH_BUCKET does not exist on Redshift",
                                 "FLOOR((x - low) / bucket_width) + 1, clamped with CASE"),
    "GENERATE_SUBSCRIPTS": _ARRAY_FUNCTION,
    "BIT_LENGTH": _pg_function("BIT_LENGTH does not exist on Redshift",
                               "OCTET_LENGTH(expr) * 8"),
    "OVERLAY": _pg_function("OVERLAY does not exist on Redshift",
                            "SUBSTRING(...) || replacement || SUBSTRING(...)"),
    "CONVERT": _pg_function(
        "CONVERT differs: PostgreSQL's converts encodings, Redshift's is a cast",
        "CAST(expr AS type)"),
    "CONVERT_FROM": _pg_function("CONVERT_FROM does not exist on Redshift",
                                 "keep text as UTF-8 VARCHAR"),
    "CONVERT_TO": _pg_function("CONVERT_TO does not exist on Redshift",
                               "keep text as UTF-8 VARCHAR"),
    "ENCODE": _pg_function("ENCODE (bytea to text) does not exist on Redshift",
                           "MD5/SHA2 for hashes, or TO_HEX on integers"),
    "FORMAT": _pg_function("FORMAT does not exist on Redshift",
                           "concatenate with || and TO_CHAR"),
    "QUOTE_NULLABLE": _pg_function("QUOTE_NULLABLE does not exist on Redshift",
                                   "COALESCE(QUOTE_LITERAL(expr), 'NULL')"),
    "REGEXP_MATCHES": _pg_function("REGEXP_MATCHES does not exist on Redshift",
                                   "REGEXP_REPLACE or SPLIT_PART (both engines)"),
    "REGEXP_SPLIT_TO_TABLE": _pg_function("REGEXP_SPLIT_TO_TABLE does not exist on Redshift",
                                          "SPLIT_PART(text, delimiter, n) joined to a "
                                          "numbers table"),
    "CONCAT_WS": _pg_function("CONCAT_WS does not exist on Redshift",
                              "a || sep || b, with COALESCE for NULLs"),
    "STARTS_WITH": _pg_function("STARTS_WITH does not exist on Redshift",
                                "LEFT(text, LENGTH(prefix)) = prefix, or text LIKE 'prefix%'"),
    **{name: _pg_function(f"{name} (JSON) does not exist on Redshift",
                          "JSON_EXTRACT_PATH_TEXT on VARCHAR, or keep JSON building out of "
                          "the model")
       for name in ("TO_JSON", "TO_JSONB", "ROW_TO_JSON", "ARRAY_TO_JSON", "JSON_BUILD_OBJECT",
                    "JSON_BUILD_ARRAY", "JSON_AGG", "JSON_OBJECT_AGG", "JSON_OBJECT",
                    "JSON_EACH", "JSON_EACH_TEXT", "JSON_ARRAY_ELEMENTS",
                    "JSON_ARRAY_ELEMENTS_TEXT", "JSON_POPULATE_RECORD", "JSON_TO_RECORD",
                    "JSON_TYPEOF", "JSON_STRIP_NULLS")},
    **{name: _pg_function(f"{name} does not exist on Redshift",
                          "MD5 of the row's natural key (both engines)")
       for name in ("GEN_RANDOM_UUID", "UUID_GENERATE_V4", "UUID_GENERATE_V1")},
    **{name: _pg_function(f"{name} does not exist on Redshift",
                          "CAST of a built string, or DATE_TRUNC and interval arithmetic")
       for name in ("MAKE_DATE", "MAKE_TIME", "MAKE_TIMESTAMP", "MAKE_TIMESTAMPTZ",
                    "MAKE_INTERVAL", "DATE_BIN")},
    **{name: _pg_function(f"{name}: Redshift has no sequences",
                          "ROW_NUMBER() over a unique order, or ids generated by the runner")
       for name in ("NEXTVAL", "CURRVAL", "SETVAL", "LASTVAL")},
    "TXID_CURRENT": _pg_function("TXID_CURRENT does not exist on Redshift",
                                 "pass the run id in: '{{.run_id}}'"),
}
# Prefixes: any function whose name starts with one of these.
REDSHIFT_REJECTED_PREFIXES: dict[str, tuple[str, str, str]] = {
    "JSONB_": _pg_function("JSONB functions do not exist on Redshift",
                           "JSON_EXTRACT_PATH_TEXT on VARCHAR"),
    "PG_ADVISORY_": ("advisory-lock", "advisory locks do not exist on Redshift",
                     "LOCK the table inside BEGIN ... END, or the runner's --lock"),
    "PG_TRY_ADVISORY_": ("advisory-lock", "advisory locks do not exist on Redshift",
                         "LOCK the table inside BEGIN ... END, or the runner's --lock"),
    "TS_": _pg_function("full-text search does not exist on Redshift", "LIKE or REGEXP"),
    "TO_TSVECTOR": _pg_function("full-text search does not exist on Redshift",
                                "LIKE or REGEXP"),
    "TO_TSQUERY": _pg_function("full-text search does not exist on Redshift",
                               "LIKE or REGEXP"),
    "XML": _pg_function("XML functions do not exist on Redshift", "none: keep XML out"),
}
# Clock-reading keywords that take no parentheses.
CLOCK_KEYWORDS = frozenset({"CURRENT_TIMESTAMP", "CURRENT_TIME", "CURRENT_DATE", "LOCALTIME",
                            "LOCALTIMESTAMP", "SYSDATE"})


def _rs_function(message: str, suggestion: str) -> tuple[str, str, str]:
    return (_REDSHIFT_ONLY, message, suggestion)


_PG15 = "PostgreSQL 15 and newer only (the model supports PostgreSQL 13)"
POSTGRES_REJECTED_FUNCTIONS: dict[str, tuple[str, str, str]] = {
    "NVL": _rs_function("NVL does not exist on PostgreSQL", "COALESCE(a, b)"),
    "NVL2": _rs_function("NVL2 does not exist on PostgreSQL",
                         "CASE WHEN expr IS NOT NULL THEN a ELSE b END"),
    "DATEADD": _rs_function("DATEADD does not exist on PostgreSQL",
                            "ts + INTERVAL '1 day' (or n * INTERVAL '1 day')"),
    "DATEDIFF": _rs_function("DATEDIFF does not exist on PostgreSQL",
                             "date_b - date_a for days, or EXTRACT(EPOCH FROM ...) arithmetic"),
    "DATE_CMP": _rs_function("DATE_CMP does not exist on PostgreSQL",
                             "CASE WHEN a < b THEN -1 WHEN a > b THEN 1 ELSE 0 END"),
    "GETDATE": ("current-time", "GETDATE does not exist on PostgreSQL (and reads the clock "
                "inside model SQL)", RUN_TSTAMP),
    "LISTAGG": _rs_function("LISTAGG does not exist on PostgreSQL",
                            "STRING_AGG on PostgreSQL and LISTAGG on Redshift, each behind an "
                            "engine condition " + REDSHIFT_CONDITION),
    "MEDIAN": _rs_function("MEDIAN does not exist on PostgreSQL",
                           "PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY expr) (both engines)"),
    "CONVERT_TIMEZONE": _rs_function("CONVERT_TIMEZONE does not exist on PostgreSQL",
                                     "ts AT TIME ZONE 'UTC' AT TIME ZONE 'Europe/Paris' "
                                     "(both engines)"),
    "LEN": _rs_function("LEN does not exist on PostgreSQL", "LENGTH(expr) (both engines)"),
    "CHARINDEX": _rs_function("CHARINDEX does not exist on PostgreSQL",
                              "STRPOS(text, substring) or POSITION(substring IN text)"),
    "STRTOL": _rs_function("STRTOL does not exist on PostgreSQL",
                           "keep the conversion behind an engine condition"),
    "MONTHS_BETWEEN": _rs_function("MONTHS_BETWEEN does not exist on PostgreSQL",
                                   "EXTRACT(YEAR ...) * 12 + EXTRACT(MONTH ...) differences"),
    "ADD_MONTHS": _rs_function("ADD_MONTHS does not exist on PostgreSQL",
                               "ts + n * INTERVAL '1 month'"),
    "RATIO_TO_REPORT": _rs_function("RATIO_TO_REPORT does not exist on PostgreSQL",
                                    "expr / SUM(expr) OVER (PARTITION BY ...)"),
    "TEXTLEN": _rs_function("TEXTLEN does not exist on PostgreSQL", "LENGTH(expr)"),
    "SHA1": _rs_function("SHA1 does not exist on PostgreSQL", "MD5(expr) (both engines)"),
    "FUNC_SHA1": _rs_function("FUNC_SHA1 does not exist on PostgreSQL",
                              "MD5(expr) (both engines)"),
    "SHA2": _rs_function("SHA2 does not exist on PostgreSQL", "MD5(expr) (both engines)"),
    "FNV_HASH": _rs_function("FNV_HASH does not exist on PostgreSQL", "MD5(expr)"),
    "CRC32": _rs_function("CRC32 does not exist on PostgreSQL", "MD5(expr)"),
    "NEXT_DAY": _rs_function("NEXT_DAY does not exist on PostgreSQL",
                             "DATE_TRUNC('week', ...) and interval arithmetic"),
    "DATE_PART_YEAR": _rs_function("DATE_PART_YEAR does not exist on PostgreSQL",
                                   "EXTRACT(YEAR FROM expr)"),
    "TIMESTAMP_CMP": _rs_function("TIMESTAMP_CMP does not exist on PostgreSQL",
                                  "CASE WHEN a < b THEN -1 WHEN a > b THEN 1 ELSE 0 END"),
    "CONVERT": _rs_function("CONVERT(type, expr) is a cast on Redshift but converts "
                            "encodings on PostgreSQL", "CAST(expr AS type)"),
    "COLLATE": _rs_function("the COLLATE(expr, 'case_insensitive') function is Redshift-only",
                            "LOWER(a) = LOWER(b)"),
    **{name: _rs_function(f"{name} (SUPER/JSON) does not exist on PostgreSQL",
                          "keep semi-structured parsing out of the model, or behind an "
                          "engine condition " + REDSHIFT_CONDITION)
       for name in ("JSON_PARSE", "JSON_SERIALIZE", "IS_VALID_JSON", "IS_VALID_JSON_ARRAY",
                    "JSON_EXTRACT_ARRAY_ELEMENT_TEXT", "JSON_ARRAY_LENGTH", "SPLIT_TO_ARRAY",
                    "GET_ARRAY_LENGTH", "ARRAY_FLATTEN", "SUBARRAY", "CAN_JSON_PARSE",
                    "IS_ARRAY", "IS_OBJECT", "TO_VARBYTE", "FROM_VARBYTE")},
    **{name: _rs_function(f"{name} is {_PG15}",
                          "REGEXP_REPLACE or SPLIT_PART (both engines)")
       for name in ("REGEXP_COUNT", "REGEXP_INSTR", "REGEXP_SUBSTR")},
}

# Types, looked at where a type is expected.
PG_ONLY_TYPES = frozenset({
    "JSON", "JSONB", "UUID", "SERIAL", "BIGSERIAL", "SMALLSERIAL", "SERIAL4", "SERIAL8",
    "SERIAL2", "BYTEA", "MONEY", "INET", "CIDR", "MACADDR", "MACADDR8", "XML", "HSTORE",
    "VARBIT", "INT4RANGE", "INT8RANGE", "NUMRANGE", "TSRANGE", "TSTZRANGE", "DATERANGE",
    "TSVECTOR", "TSQUERY", "CITEXT", "REGCLASS", "REGTYPE", "OID", "POINT", "LINE", "LSEG",
    "BOX", "PATH", "POLYGON", "CIRCLE", "TXID_SNAPSHOT",
})
REDSHIFT_ONLY_TYPES = frozenset({"SUPER", "VARBYTE", "VARBINARY", "GEOMETRY", "GEOGRAPHY",
                                 "HLLSKETCH"})
VARCHAR_TYPES = frozenset({"VARCHAR", "CHARACTER VARYING", "NVARCHAR", "TEXT", "BPCHAR"})
NUMERIC_TYPES = frozenset({"NUMERIC", "DECIMAL", "DEC"})
TIMEZONE_TYPES = frozenset({"TIMESTAMPTZ", "TIMETZ"})
# Table attributes of Redshift's physical design.
REDSHIFT_TABLE_ATTRIBUTES = frozenset({"DISTKEY", "SORTKEY", "DISTSTYLE", "INTERLEAVED",
                                       "ENCODE", "BACKUP"})

# Window functions that take a frame (Redshift requires one with ORDER BY); sqlglot
# classes whose names are not aggregates in that sense.
_NO_FRAME_FUNCTIONS = frozenset({"RowNumber", "Rank", "DenseRank", "Ntile", "PercentRank",
                                 "CumeDist", "Lag", "Lead", "Median", "PercentileCont",
                                 "PercentileDisc", "GroupConcat"})

_NOT_A_CALL_AFTER = frozenset({"INTO", "TABLE", "AS", "FUNCTION", "PROCEDURE", "VIEW",
                               "UPDATE", "WITH", "REFERENCES", "INDEX", "EXISTS", "TYPE"})
_ALLOW = re.compile(r"--\s*sqlrunner:\s*allow\s+([A-Za-z0-9_,\s-]+)")


# ---------------------------------------------------------------------------
# Checking SQL text.

def check_sql(sql: str, file: str = "<sql>", dialect: str = "redshift") -> list[Finding]:
    """The findings of one rendered SQL file for ``dialect`` (``redshift`` or ``postgres``)."""
    dialect = dialect_named(dialect)
    lines = LineIndex(sql)
    statements = split_statements(sql, backslash_escapes=dialect == "redshift")
    findings: list[Finding] = []
    for statement in statements:
        checker = _StatementChecker(statement, statements, dialect, file, lines)
        findings.extend(checker.run())
    return _without_allowed(_unique(findings), sql)


def check_plan(plan: RunPlan, dialect: str) -> list[Finding]:
    """The findings of every rendered query of ``plan`` (each file once).

    ``plan`` must be rendered for a target of ``dialect`` (see :func:`prepare_for`);
    a query that did not render raises its error, as :func:`sqlrunner.api.execute` does.
    """
    if plan.render_errors:
        raise plan.render_errors[0]
    findings: list[Finding] = []
    seen: set[tuple[str, str]] = set()
    for target_plan in plan.targets:
        for query in target_plan.queries:
            key = (query.file, query.sql or "")
            if query.sql is None or key in seen:
                continue
            seen.add(key)
            findings.extend(check_sql(query.sql, query.file, dialect))
    return findings


def prepare_for(playbook_path: str, dialect: str, variables: Mapping[str, Any] | None = None,
                sql_root: str | None = None, template_missing: str = "error") -> RunPlan:
    """Render ``playbook_path`` for ``dialect``: each of its targets, under its own name,
    as a (never contacted) target of that engine, so that every step is checked, the
    steps of one target (``targets:``) too. The targets are first checked by the rule of
    every command, so that a target a run would refuse (``port: abc``) is the same setup
    error here."""
    from sqlrunner.api import RunOptions, prepare

    options = RunOptions(variables=variables, sql_root=sql_root,
                         template_missing=template_missing)
    return prepare(playbook_path, options, stand_in=CHECK_TARGETS[dialect_named(dialect)])


def check_playbook(playbook_path: str, dialect: str = "redshift",
                   variables: Mapping[str, Any] | None = None,
                   sql_root: str | None = None) -> list[Finding]:
    """Render ``playbook_path`` for ``dialect`` and check every query."""
    return check_plan(prepare_for(playbook_path, dialect, variables, sql_root), dialect)


def dialect_named(name: str) -> str:
    """``redshift`` or ``postgres`` from a name a user gave (``postgresql`` too)."""
    lowered = (name or "").lower()
    if lowered in {"postgres", "postgresql"}:
        return "postgres"
    if lowered == "redshift":
        return "redshift"
    raise UsageError(f"unknown dialect {name!r} (expected redshift or postgres)")


def _unique(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, int, int, str]] = set()
    unique = []
    for finding in sorted(findings, key=lambda f: (f.line, f.column, f.rule)):
        key = (finding.file, finding.line, finding.column, finding.rule)
        if key not in seen:
            seen.add(key)
            unique.append(finding)
    return unique


def _without_allowed(findings: list[Finding], sql: str) -> list[Finding]:
    allowed: dict[int, set[str]] = {}
    for number, text in enumerate(sql.splitlines(), start=1):
        match = _ALLOW.search(text)
        if not match:
            continue
        rules = {r for r in re.split(r"[\s,]+", match.group(1)) if r}
        allowed.setdefault(number, set()).update(rules)
        if text.lstrip().startswith("--"):
            allowed.setdefault(number + 1, set()).update(rules)
    return [f for f in findings if f.rule not in allowed.get(f.line, set())]


@contextlib.contextmanager
def _quiet_sqlglot() -> Iterator[None]:
    """sqlglot logs a warning for every statement it keeps as an opaque command."""
    logger = logging.getLogger("sqlglot")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


class _StatementChecker:
    """Checks one statement: its tokens (for positions and keywords) and its syntax tree."""

    def __init__(self, statement: Statement, statements: list[Statement], dialect: str,
                 file: str, lines: LineIndex) -> None:
        from sqlglot.tokens import TokenType

        self.statement = statement
        self.statements = statements
        self.dialect = dialect
        self.file = file
        self.lines = lines
        self.findings: list[Finding] = []
        self.tokens: list[Any] = []
        self.words: list[str] = []
        self._quoted = {getattr(TokenType, name) for name in (
            "STRING", "IDENTIFIER", "HEREDOC_STRING", "BYTE_STRING", "NATIONAL_STRING",
            "RAW_STRING", "BIT_STRING", "HEX_STRING", "UNICODE_STRING") if hasattr(TokenType,
                                                                                   name)}
        self._string = TokenType.STRING
        self._dcolon = TokenType.DCOLON
        self._identifier_types = {TokenType.VAR, TokenType.IDENTIFIER}

    # -- reporting -----------------------------------------------------------------

    def report(self, offset: int, rule: str, message: str, suggestion: str) -> None:
        """A finding at ``offset`` (relative to the statement's text)."""
        line, column = self.lines.position(self.statement.start + max(offset, 0))
        self.findings.append(Finding(self.file, line, column, rule, message, suggestion,
                                     self.dialect))

    def report_token(self, index: int, rule: str, message: str, suggestion: str) -> None:
        self.report(self.tokens[index].start, rule, message, suggestion)

    # -- token helpers ---------------------------------------------------------------

    def word(self, index: int) -> str:
        return self.words[index] if 0 <= index < len(self.words) else ""

    def is_punct(self, index: int, text: str) -> bool:
        return (0 <= index < len(self.tokens) and self.tokens[index].text == text
                and self.tokens[index].token_type not in self._quoted)

    def call_arguments(self, index: int) -> int:
        """How many top-level arguments the call whose ``(`` is at ``index`` has."""
        depth, count, empty = 0, 1, True
        for j in range(index, len(self.tokens)):
            text = self.tokens[j].text if self.tokens[j].token_type not in self._quoted else None
            if text == ")":
                depth -= 1
                if depth == 0:
                    return 0 if empty else count
                continue
            if j > index:
                empty = False
            if text == "(":
                depth += 1
            elif text == "," and depth == 1:
                count += 1
        return count

    # -- the check -------------------------------------------------------------------

    def run(self) -> list[Finding]:
        from sqlglot.dialects import Dialect
        from sqlglot.errors import TokenError

        try:
            self.tokens = list(Dialect.get_or_raise(self.dialect).tokenize(self.statement.text))
        except TokenError as err:
            self.report(0, "parse-error", f"sqlglot cannot read this statement: {err}",
                        "check quotes and comments")
            return self.findings
        self.words = ["" if t.token_type in self._quoted else " ".join(t.text.upper().split())
                      for t in self.tokens]
        self.check_statement_kind()
        self.check_tokens()
        tree = self.parse()
        if tree is not None:
            self.check_tree(tree)
        return self.findings

    def parse(self) -> Any:
        import sqlglot
        from sqlglot.errors import ParseError, TokenError

        text = self.parse_text()
        try:
            with _quiet_sqlglot():
                trees = [t for t in sqlglot.parse(text, read=self.dialect) if t is not None]
        except (ParseError, TokenError) as err:
            if not self.findings:  # a specific finding usually explains the failure
                self.report_parse_error(err)
            return None
        except RecursionError:  # sqlglot's parser recurses once per nested expression
            self.report(0, "parse-error", "this statement nests too deeply for sqlglot to "
                        "parse it, so it was not checked", "add '-- sqlrunner: allow "
                        "parse-error' on that line if it is valid SQL")
            return None
        return trees[0] if len(trees) == 1 else None

    def parse_text(self) -> str:
        """The statement as sqlglot should parse it (same length, so offsets hold).

        sqlglot does not know Redshift's column-level ``DISTKEY`` and ``SORTKEY``
        attributes; they are blanked out for it.
        """
        text = self.statement.text
        if self.dialect != "redshift":
            return text
        for index, word in enumerate(self.words):
            if word in {"DISTKEY", "SORTKEY"} and not self.is_punct(index + 1, "("):
                token = self.tokens[index]
                text = text[:token.start] + " " * (token.end + 1 - token.start) + \
                    text[token.end + 1:]
        return text

    def report_parse_error(self, err: Exception) -> None:
        errors = getattr(err, "errors", None) or []
        offset = 0
        description = str(err).splitlines()[0] if str(err) else type(err).__name__
        if errors:
            first = errors[0]
            description = first.get("description") or description
            highlight = first.get("highlight") or ""
            line, col = first.get("line"), first.get("col")
            if isinstance(line, int) and isinstance(col, int):
                starts = LineIndex(self.statement.text)._starts
                if 1 <= line <= len(starts):
                    offset = max(starts[line - 1] + col - len(highlight), 0)
            if highlight:
                description += f" near {highlight!r}"
        engine = "Redshift" if self.dialect == "redshift" else "PostgreSQL"
        self.report(offset, "parse-error",
                    f"this statement does not parse as {engine} SQL (sqlglot): {description}",
                    "fix the syntax; if it is valid and sqlglot is wrong, add "
                    "'-- sqlrunner: allow parse-error' on that line")

    # -- statement-level rules ---------------------------------------------------------

    def check_statement_kind(self) -> None:
        words = self.words[:8]
        first = self.word(0)
        reason = must_run_alone_reason(self.statement.text, self.dialect)
        if reason and len(self.statements) > 1:
            self.report(0, "must-run-alone",
                        f"{reason}, and this file is sent whole as one transaction",
                        "move this statement into a SQL file of its own (one statement)")
        if first == "MERGE":
            engine = "PostgreSQL 15 and newer" if self.dialect == "postgres" else \
                "Redshift (only with a table as source)"
            self.report(0, "merge", f"MERGE exists only on {engine}",
                        "DELETE the rows being replaced, then INSERT, in one transaction")
        if self.dialect == "redshift":
            self.check_redshift_statement(first, words)
        else:
            self.check_postgres_statement(first, words)

    def check_redshift_statement(self, first: str, words: list[str]) -> None:
        if first == "TRUNCATE" and len(self.statements) > 1:
            self.report(0, "truncate-in-transaction",
                        "TRUNCATE commits the open transaction on Redshift: the statements "
                        "before it in this file commit early and cannot roll back",
                        "DELETE FROM the table (transactional), or move the TRUNCATE into a "
                        "file of its own")
        if first == "DO":
            self.report(0, "postgres-only-statement", "anonymous DO blocks do not exist on "
                        "Redshift", "plain SQL statements, or a stored procedure")
        if first in {"CREATE", "DROP", "REINDEX"} and (
                "INDEX" in words[:4] and first != "REINDEX" or first == "REINDEX"):
            self.report(0, "index", "Redshift has no indexes",
                        "keep the index behind an engine condition " + ENGINE_CONDITION +
                        "; on Redshift choose DISTKEY/SORTKEY instead")
        kinds = {
            "SEQUENCE": "sequences", "TRIGGER": "triggers", "EXTENSION": "extensions",
            "TYPE": "user-defined types", "DOMAIN": "domains", "RULE": "rules",
            "UNLOGGED": "unlogged tables",
        }
        if first in {"CREATE", "ALTER", "DROP"}:
            for word in words[1:4]:
                if word in kinds:
                    self.report(0, "postgres-only-statement",
                                f"Redshift has no {kinds[word]}",
                                "keep it behind an engine condition " + ENGINE_CONDITION)
                    break
        if first in {"SAVEPOINT", "RELEASE"} or (first == "ROLLBACK" and "TO" in words[:3]):
            self.report(0, "postgres-only-statement", "Redshift has no savepoints",
                        "make the file one transaction that succeeds or fails whole")
        if first == "CREATE" and "TABLE" in words[:4] and words[words.index("TABLE") + 1:
                                                              words.index("TABLE") + 4] == \
                ["IF", "NOT", "EXISTS"] and self._is_ctas():
            self.report(0, "ctas-if-not-exists",
                        "CREATE TABLE ... AS has no IF NOT EXISTS on Redshift",
                        "CREATE TABLE IF NOT EXISTS t (columns ...) then INSERT INTO t SELECT")

    def _is_ctas(self) -> bool:
        """Whether this CREATE TABLE has an ``AS`` query outside any parentheses."""
        depth = 0
        for word in self.words:
            if word == "(":
                depth += 1
            elif word == ")":
                depth -= 1
            elif depth == 0 and word == "AS":
                return True
        return False

    def check_postgres_statement(self, first: str, words: list[str]) -> None:
        rest = " ".join(words)
        redshift_only = None
        if first == "VACUUM" and re.search(
                r"\b(SORT ONLY|DELETE ONLY|REINDEX|RECLUSTER|BOOST|TO)\b", rest):
            redshift_only = "VACUUM SORT ONLY/DELETE ONLY/REINDEX/RECLUSTER/TO n PERCENT"
        elif first == "ANALYZE" and re.search(r"\b(COMPRESSION|PREDICATE)\b", rest):
            redshift_only = "ANALYZE COMPRESSION / ANALYZE PREDICATE COLUMNS"
        elif first == "ALTER" and "APPEND" in self.words:
            redshift_only = "ALTER TABLE APPEND"
        elif first in {"UNLOAD"}:
            redshift_only = first
        elif first in {"CREATE", "DROP", "ALTER"} and words[1:2] in (["EXTERNAL"],
                                                                      ["LIBRARY"]):
            redshift_only = f"{first} {words[1]}"
        elif first == "COPY" and re.search(r"\b(IAM_ROLE|CREDENTIALS)\b",
                                           " ".join(self.words)):
            redshift_only = "COPY from S3"
        if redshift_only:
            self.report(0, "redshift-only-statement",
                        f"{redshift_only} does not exist on PostgreSQL",
                        "run it only on Redshift: " + REDSHIFT_CONDITION)

    # -- token-level rules -------------------------------------------------------------

    def check_tokens(self) -> None:
        openers: list[str] = []  # the word before each open parenthesis
        column_list_depth = self._column_list_depth()
        for index, token in enumerate(self.tokens):
            word = self.words[index]
            text = token.text if word or token.token_type not in self._quoted else ""
            if text == "(" and word:
                openers.append(self.word(index - 1))
            elif text == ")" and word and openers:
                openers.pop()
            if token.token_type == self._string and self.dialect == "redshift":
                self.check_string(index)
            if not word:
                continue
            if self.is_punct(index + 1, "(") and not self.is_punct(index - 1, ".") and \
                    self.word(index - 1) not in _NOT_A_CALL_AFTER:
                self.check_call(index, word)
            if self.is_type_position(index, openers, column_list_depth):
                self.check_type(index, word)
            if self.dialect == "redshift":
                self.check_redshift_word(index, word, openers)
            else:
                self.check_postgres_word(index, word, openers)

    def check_string(self, index: int) -> None:
        token = self.tokens[index]
        raw = self.statement.text[token.start:token.end + 1]
        if "\\" in raw:
            self.report_token(index, "backslash-in-string",
                              "a backslash in a string literal is an escape character on "
                              "Redshift but an ordinary character on PostgreSQL",
                              "avoid backslashes: [0-9] instead of \\d in patterns, "
                              "CHR(92) for a literal backslash")

    def check_call(self, index: int, name: str) -> None:
        if self.dialect == "redshift":
            entry = REDSHIFT_REJECTED_FUNCTIONS.get(name)
            if entry is None:
                entry = next((v for k, v in REDSHIFT_REJECTED_PREFIXES.items()
                              if name.startswith(k)), None)
            if name == "GENERATE_SERIES":
                self.check_generate_series(index)
            elif name == "CONCAT" and self.call_arguments(index + 1) > 2:
                self.report_token(index, "concat-arguments",
                                  "CONCAT takes exactly two arguments on Redshift",
                                  "a || b || c, with COALESCE(x, '') where a value may be "
                                  "NULL (CONCAT skips NULLs, || does not)")
            elif name == "ROW":
                self.report_token(index, "row-constructor",
                                  "row constructors do not exist on Redshift",
                                  "compare the columns one by one")
        else:
            entry = POSTGRES_REJECTED_FUNCTIONS.get(name)
            if name == "DECODE" and self.call_arguments(index + 1) >= 3:
                entry = _rs_function("DECODE(expr, search, result, ...) is Redshift-only "
                                     "(PostgreSQL's DECODE decodes binary text)",
                                     "CASE expr WHEN search THEN result ... END")
        if entry is not None:
            rule, message, suggestion = entry
            self.report_token(index, rule, message, suggestion)

    def check_generate_series(self, index: int) -> None:
        reads_table = any(
            w in {"FROM", "JOIN"} and not (self.word(j + 1) == "GENERATE_SERIES")
            for j, w in enumerate(self.words))
        if reads_table or self.word(0) in {"INSERT", "CREATE", "UPDATE", "DELETE"}:
            self.report_token(index, "generate-series",
                              "GENERATE_SERIES runs only on Redshift's leader node: a query "
                              "that also reads or writes a table fails",
                              "a numbers CTE: ROW_NUMBER() OVER (ORDER BY a column) over any "
                              "table with enough rows, or SELECT 0 UNION ALL SELECT 1 ...")

    def _column_list_depth(self) -> int | None:
        """The parenthesis (by opening order) holding a CREATE TABLE's column list."""
        if self.word(0) != "CREATE" or "TABLE" not in self.words[:5]:
            return None
        for index, word in enumerate(self.words):
            if word == "AS":
                return None
            if word == "(":
                return index
        return None

    def is_type_position(self, index: int, openers: list[str], column_list: int | None) -> bool:
        """Whether the word at ``index`` is where a type name is expected."""
        previous = self.tokens[index - 1] if index > 0 else None
        if previous is None:
            return False
        if previous.token_type == self._dcolon:
            return True
        before = self.word(index - 1)
        if before == "AS" and openers and openers[-1] in {"CAST", "TRY_CAST"}:
            return True
        if before == "TYPE" and self.word(0) == "ALTER":
            return True
        if self.is_punct(index - 1, "(") and openers and openers[-1] == "CONVERT":
            return True
        if previous.token_type in self._identifier_types:
            two_before = index - 2
            if column_list is not None and len(openers) == 1 and (
                    self.is_punct(two_before, "(") or self.is_punct(two_before, ",")):
                return True
            if self.word(0) == "ALTER" and self.word(two_before) in {"ADD", "COLUMN"}:
                return True
        return False

    def check_type(self, index: int, word: str) -> None:
        has_length = self.is_punct(index + 1, "(")
        if self.dialect == "redshift":
            if word in VARCHAR_TYPES and not has_length:
                self.report_token(index, "varchar-without-length",
                                  f"{word} without a length is VARCHAR(256) in a Redshift "
                                  "table (PostgreSQL: unlimited), and longer values fail",
                                  "give a length: VARCHAR(n), VARCHAR(65535) for long text")
            elif word in NUMERIC_TYPES and not has_length:
                self.report_token(index, "numeric-without-precision",
                                  f"{word} without precision is DECIMAL(18, 0) on Redshift: "
                                  "fractions are rounded away",
                                  "give precision and scale: NUMERIC(38, 6)")
            elif word in TIMEZONE_TYPES or (
                    word in {"TIMESTAMP", "TIME"} and self._with_time_zone(index)):
                self.report_token(index, "timestamptz",
                                  "time zone types behave differently across the engines",
                                  "plain TIMESTAMP holding UTC")
            elif word in PG_ONLY_TYPES or (word == "BIT" and self.word(index + 1) == "VARYING"):
                self.report_token(index, "postgres-only-type",
                                  f"the {word} type does not exist on Redshift",
                                  "VARCHAR(n) (e.g. VARCHAR(36) for a UUID, VARCHAR(65535) "
                                  "for JSON), BIGINT for serial ids, or an engine condition")
        else:
            if word in REDSHIFT_ONLY_TYPES:
                self.report_token(index, "redshift-only-type",
                                  f"the {word} type does not exist on PostgreSQL",
                                  "VARCHAR(n), or an engine condition " + REDSHIFT_CONDITION)
            elif word in VARCHAR_TYPES | {"CHAR", "CHARACTER", "NCHAR"} and has_length and \
                    self.word(index + 2) == "MAX":
                self.report_token(index, "redshift-only-type",
                                  f"{word}(MAX) does not exist on PostgreSQL",
                                  "VARCHAR(65535)")

    def _with_time_zone(self, index: int) -> bool:
        j = index + 1
        if self.is_punct(j, "("):
            while j < len(self.tokens) and not self.is_punct(j, ")"):
                j += 1
            j += 1
        return [self.word(j), self.word(j + 1), self.word(j + 2)] == ["WITH", "TIME", "ZONE"]

    def check_redshift_word(self, index: int, word: str, openers: list[str]) -> None:
        nxt = self.word(index + 1)
        if word == "DISTINCT" and nxt == "ON" and self.is_punct(index + 2, "("):
            self.report_token(index, "distinct-on", "DISTINCT ON does not exist on Redshift",
                              "ROW_NUMBER() OVER (PARTITION BY <the DISTINCT ON columns> "
                              "ORDER BY <the ordering>) AS rn in a subquery, then WHERE rn = 1")
        elif word == "ON" and nxt == "CONFLICT":
            self.report_token(index, "on-conflict",
                              "INSERT ... ON CONFLICT does not exist on Redshift",
                              "DELETE the rows whose key is in the new data, then INSERT, "
                              "in one transaction")
        elif word == "RETURNING":
            self.report_token(index, "returning", "RETURNING does not exist on Redshift",
                              "SELECT the rows after the write, in the same transaction")
        elif word == "FILTER" and self.is_punct(index + 1, "(") and \
                self.word(index + 2) == "WHERE":
            self.report_token(index, "aggregate-filter",
                              "aggregate FILTER (WHERE ...) does not exist on Redshift",
                              "move the condition into the aggregate: "
                              "SUM(CASE WHEN cond THEN x END), COUNT(CASE WHEN cond THEN 1 END)")
        elif word == "LATERAL":
            self.report_token(index, "lateral", "LATERAL does not exist on Redshift",
                              "join a derived table on its key, or use a window function")
        elif word == "ARRAY" and (self.is_punct(index + 1, "[") or self.is_punct(index + 1,
                                                                                   "(")):
            self.report_token(index, _ARRAY, "array constructors do not exist on Redshift",
                              "rows instead of arrays: a join or UNION ALL")
        elif word == "[":
            self.report_token(index, _ARRAY,
                              "array types and subscripts do not exist on Redshift",
                              "rows instead of arrays; SPLIT_PART for delimited text")
        elif word in CLOCK_KEYWORDS and not self.is_punct(index + 1, "("):
            rule, message, suggestion = _CURRENT_TIME
            self.report_token(index, rule, f"{word} {message}", suggestion)
        elif word == "IS" and (nxt == "DISTINCT" or (nxt == "NOT" and
                                                     self.word(index + 2) == "DISTINCT")):
            negated = nxt == "NOT"
            self.report_token(index, "is-distinct-from",
                              f"IS {'NOT ' if negated else ''}DISTINCT FROM does not exist on "
                              "Redshift",
                              "(a = b OR (a IS NULL AND b IS NULL))" if negated else
                              "NOT COALESCE(a = b OR (a IS NULL AND b IS NULL), FALSE)")
        elif word == "COLLATE" and not self.is_punct(index + 1, "("):
            self.report_token(index, "collate",
                              "Redshift has no collations (it compares strings as binary "
                              "UTF-8, like COLLATE \"C\")",
                              "keep COLLATE behind an engine condition " + ENGINE_CONDITION)
        elif word == "VALUES" and not self._insert_values(index, openers):
            self.report_token(index, "values-list",
                              "a VALUES list used as a table does not exist on Redshift",
                              "SELECT ... UNION ALL SELECT ...")
        elif word == "MATERIALIZED" and self.word(index - 1) in {"AS", "NOT"} and \
                self.is_punct(index + 1, "("):
            self.report_token(index, "postgres-only-statement",
                              "WITH ... AS [NOT] MATERIALIZED does not exist on Redshift",
                              "drop the MATERIALIZED hint")
        elif word == "GENERATED" and "IDENTITY" in self.words[index:index + 5]:
            self.report_token(index, "postgres-only-statement",
                              "GENERATED ... AS IDENTITY does not exist on Redshift",
                              "IDENTITY(1, 1) on Redshift behind an engine condition, or "
                              "ids computed in SQL")
        elif word == "ON" and nxt == "COMMIT":
            self.report_token(index, "postgres-only-statement",
                              "ON COMMIT does not exist on Redshift",
                              "drop the temporary table explicitly")
        elif word == "TABLESAMPLE":
            self.report_token(index, "postgres-only-statement",
                              "TABLESAMPLE does not exist on Redshift",
                              "WHERE RANDOM() < fraction")
        elif word == "PARTITION BY" and not openers and self.word(0) == "CREATE":
            self.report_token(index, "postgres-only-statement",
                              "Redshift has no table partitioning",
                              "keep it behind an engine condition " + ENGINE_CONDITION)

    def _insert_values(self, index: int, openers: list[str]) -> bool:
        """Whether the VALUES at ``index`` is an INSERT's row list."""
        if openers:
            return False
        return self.word(0) == "INSERT" and "SELECT" not in self.words[:index]

    def check_postgres_word(self, index: int, word: str, openers: list[str]) -> None:
        nxt = self.word(index + 1)
        if word == "QUALIFY":
            self.report_token(index, "qualify", "QUALIFY does not exist on PostgreSQL",
                              "compute the window function in a subquery and filter it "
                              "in the outer WHERE")
        elif word in {"IGNORE", "RESPECT"} and nxt == "NULLS":
            self.report_token(index, "ignore-nulls",
                              f"{word} NULLS does not exist on PostgreSQL",
                              "filter the NULLs out in a subquery first, or take MAX/MIN "
                              "over a CASE expression")
        elif word in REDSHIFT_TABLE_ATTRIBUTES and not openers and self.word(0) in {
                "CREATE", "ALTER"} and (word != "BACKUP" or nxt in {"NO", "YES"}):
            self.report_token(index, "distkey-sortkey",
                              f"{word} is Redshift physical design; PostgreSQL rejects it",
                              "put it behind an engine condition " + REDSHIFT_CONDITION)
        elif word in REDSHIFT_TABLE_ATTRIBUTES and len(openers) == 1 and \
                self.word(0) == "CREATE" and word != "BACKUP" and \
                not self.is_punct(index + 1, "("):
            self.report_token(index, "distkey-sortkey",
                              f"column attribute {word} is Redshift physical design; "
                              "PostgreSQL rejects it",
                              "put it behind an engine condition " + REDSHIFT_CONDITION)
        elif word == "SYSDATE" and not self.is_punct(index + 1, "("):
            self.report_token(index, "current-time",
                              "SYSDATE does not exist on PostgreSQL (and reads the clock "
                              "inside model SQL)", RUN_TSTAMP)
        elif word == "TOP" and self.word(index - 1) in {"SELECT", "DISTINCT", "ALL"}:
            self.report_token(index, "redshift-only-syntax",
                              "SELECT TOP n does not exist on PostgreSQL", "LIMIT n")
        elif word == "APPROXIMATE":
            self.report_token(index, "redshift-only-syntax",
                              "APPROXIMATE does not exist on PostgreSQL",
                              "the exact aggregate")
        elif word == "IDENTITY" and self.is_punct(index + 1, "("):
            self.report_token(index, "redshift-only-syntax",
                              "IDENTITY(seed, step) columns do not exist on PostgreSQL",
                              "GENERATED BY DEFAULT AS IDENTITY on PostgreSQL, each behind an "
                              "engine condition " + REDSHIFT_CONDITION)

    # -- syntax-tree rules ---------------------------------------------------------------

    def check_tree(self, tree: Any) -> None:
        if self.dialect != "redshift":
            return
        from sqlglot import exp

        for window in tree.find_all(exp.Window):
            function = window.this
            while isinstance(function, exp.IgnoreNulls | exp.RespectNulls):
                function = function.this
            if not isinstance(function, exp.AggFunc) or \
                    type(function).__name__ in _NO_FRAME_FUNCTIONS:
                continue
            spec = window.args.get("spec")
            name = function.sql_name() if hasattr(function, "sql_name") else "window"
            offset = (function.meta or {}).get("start", 0)
            if spec is not None and str(spec.args.get("kind") or "").upper() != "ROWS":
                self.report(offset, "window-frame",
                            f"{name} OVER (... {str(spec.args.get('kind')).upper()} ...): "
                            "Redshift supports only ROWS frames",
                            "ROWS BETWEEN ... (add a unique tiebreaker to ORDER BY so both "
                            "engines see the same rows)")
            elif spec is None and window.args.get("order") is not None:
                self.report(offset, "window-frame",
                            f"{name} OVER (ORDER BY ...) without a frame: Redshift requires "
                            "an explicit ROWS frame, and PostgreSQL's default (RANGE ... "
                            "CURRENT ROW) counts ties differently",
                            "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW for running "
                            "values, ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING "
                            "for FIRST_VALUE/LAST_VALUE of the whole partition")
