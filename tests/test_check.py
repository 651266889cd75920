"""The portability check (``sqlrunner check``): what it flags, where, and what it lets through."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from sqlrunner import check
from sqlrunner.check import Finding, check_playbook, check_sql
from sqlrunner.cli import main as cli_main
from sqlrunner.sqltext.shape import runs_alone, statements_that_must_run_alone, transaction_shape

ROOT = Path(__file__).resolve().parent.parent

PORTABLE_MODEL = """\
-- derived.demo_sessions: one row per session, from demo_events (portable to both engines)
DROP TABLE IF EXISTS demo_sessions;
CREATE TABLE demo_sessions (
  domain_userid VARCHAR(128) NOT NULL,
  domain_sessionidx INTEGER NOT NULL,
  first_event_id VARCHAR(36),
  event_count BIGINT,
  engaged NUMERIC(12, 3),
  session_start_tstamp TIMESTAMP
);
INSERT INTO demo_sessions
WITH ranked AS (
  SELECT
    domain_userid,
    domain_sessionidx,
    event_id,
    collector_tstamp,
    ROW_NUMBER() OVER (PARTITION BY domain_userid, domain_sessionidx
                       ORDER BY collector_tstamp, event_id) AS n,
    COUNT(*) OVER (PARTITION BY domain_userid, domain_sessionidx) AS events,
    SUM(CASE WHEN event = 'page_ping' THEN 10 ELSE 0 END) OVER (
      PARTITION BY domain_userid, domain_sessionidx ORDER BY collector_tstamp, event_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS engaged
  FROM demo_events
  WHERE COALESCE(domain_userid, '') <> ''
)
SELECT domain_userid, domain_sessionidx, event_id, events, engaged, collector_tstamp
FROM ranked
WHERE n = 1;
"""


def findings_of(sql: str, dialect: str = "redshift") -> list[tuple[str, int, int]]:
    return [(f.rule, f.line, f.column) for f in check_sql(sql, "t.sql", dialect)]


def rules_of(sql: str, dialect: str = "redshift") -> set[str]:
    return {f.rule for f in check_sql(sql, "t.sql", dialect)}


def write_playbook(root: Path, files: dict[str, str], template: bool = True) -> str:
    (root / "sql").mkdir(exist_ok=True)
    queries = []
    for name, text in files.items():
        (root / "sql" / name).write_text(text)
        queries.append(f"      - name: {name}\n        file: sql/{name}\n"
                       f"        template: {'true' if template else 'false'}\n")
    playbook = root / "playbook.yml"
    playbook.write_text(
        "targets:\n  - name: db\n    type: postgres\n    host: localhost\n    port: 5432\n"
        "    database: db\n    username: u\n"
        "variables:\n  schema: derived\n"
        "steps:\n  - name: model\n    queries:\n" + "".join(queries))
    return str(playbook)


# -- the deliberately non-portable file ------------------------------------------------

NON_PORTABLE = """\
-- keeps the first event of each session
SELECT DISTINCT ON (domain_sessionid)
  domain_sessionid,
  NOW() AS modelled_at
FROM {{.schema}}.events
ORDER BY domain_sessionid, collector_tstamp;
"""


def test_a_non_portable_file_fails_the_redshift_check_with_line_and_suggestion(
        tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    playbook = write_playbook(tmp_path, {"first_events.sql": NON_PORTABLE})
    code = cli_main(["check", "-p", playbook, "--dialect", "redshift"])
    out = capsys.readouterr().out.splitlines()
    assert code == 1
    assert out[0].startswith("sql/first_events.sql:2:8: distinct-on: DISTINCT ON does not "
                             "exist on Redshift (suggestion: ROW_NUMBER() OVER (PARTITION BY")
    assert "WHERE rn = 1" in out[0]
    assert out[1].startswith("sql/first_events.sql:4:3: current-time: ")
    assert "{{.run_tstamp}}" in out[1]
    assert len(out) == 2


def test_the_same_file_passes_the_postgres_check(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    playbook = write_playbook(tmp_path, {"first_events.sql": NON_PORTABLE})
    assert cli_main(["check", "-p", playbook, "--dialect", "postgres"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "portable to postgres" in captured.err


def test_json_format_gives_one_object_per_finding(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    playbook = write_playbook(tmp_path, {"first_events.sql": NON_PORTABLE})
    assert cli_main(["check", "-p", playbook, "--format", "json"]) == 1
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["rule"], r["line"], r["column"], r["dialect"]) for r in records] == [
        ("distinct-on", 2, 8, "redshift"), ("current-time", 4, 3, "redshift")]
    assert set(records[0]) == {"file", "line", "column", "rule", "message", "suggestion",
                               "dialect"}


# -- clean SQL passes --------------------------------------------------------------------

def test_portable_model_sql_passes_both_checks():
    assert check_sql(PORTABLE_MODEL, "model.sql", "redshift") == []
    assert check_sql(PORTABLE_MODEL, "model.sql", "postgres") == []


def test_the_portable_model_sql_really_runs_on_postgresql(database):
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("CREATE TABLE demo_events (domain_userid text, domain_sessionidx int, "
                     "event_id text, event text, collector_tstamp timestamp)")
        conn.execute("INSERT INTO demo_events VALUES ('u', 1, 'e1', 'page_view', '2024-01-01'),"
                     " ('u', 1, 'e2', 'page_ping', '2024-01-01 00:00:10'),"
                     " ('', 1, 'e3', 'page_view', '2024-01-01')")
        conn.execute(PORTABLE_MODEL)
        rows = conn.execute("SELECT domain_userid, first_event_id, event_count, engaged "
                            "FROM demo_sessions").fetchall()
    assert [tuple(map(str, r)) for r in rows] == [("u", "e1", "2", "10.000")]


# -- engine conditions ---------------------------------------------------------------------

ENGINE_SPECIFIC = """\
-- builds {{.schema}}.visits
CREATE TABLE IF NOT EXISTS {{.schema}}.visits (
  visit_id VARCHAR(36) NOT NULL{{if eq .target_type "redshift"}} ENCODE zstd{{end}},
  tags {{if eq .target_type "postgres"}}JSONB{{else}}VARCHAR(65535){{end}}
){{if eq .target_type "redshift"}}
DISTSTYLE KEY DISTKEY (visit_id) SORTKEY (visit_id){{end}};
{{if eq .target_type "postgres"}}
CREATE INDEX IF NOT EXISTS visits_id ON {{.schema}}.visits (visit_id);
{{end}}
"""


def test_an_engine_condition_hides_engine_specific_sql_from_the_other_check(tmp_path):
    playbook = write_playbook(tmp_path, {"visits.sql": ENGINE_SPECIFIC})
    assert check_playbook(playbook, "redshift") == []
    assert check_playbook(playbook, "postgres") == []


def test_without_the_engine_condition_both_checks_complain(tmp_path):
    unguarded = ("CREATE TABLE visits (visit_id VARCHAR(36), tags JSONB)\n"
                 "DISTKEY (visit_id);\nCREATE INDEX visits_id ON visits (visit_id);\n")
    playbook = write_playbook(tmp_path, {"visits.sql": unguarded}, template=False)
    assert {(f.rule, f.line) for f in check_playbook(playbook, "redshift")} == {
        ("postgres-only-type", 1), ("index", 3)}
    assert {(f.rule, f.line) for f in check_playbook(playbook, "postgres")} == {
        ("distkey-sortkey", 2)}


# -- statement splitting pitfalls --------------------------------------------------------------

def test_begin_read_write_does_not_swallow_the_file():
    sql = ("BEGIN READ WRITE;\nDELETE FROM t;\nINSERT INTO t SELECT DISTINCT ON (a) a FROM s;\n"
           "COMMIT;\n")
    assert findings_of(sql) == [("distinct-on", 3, 22)]


def test_begin_isolation_level_does_not_swallow_the_file():
    sql = "BEGIN ISOLATION LEVEL SERIALIZABLE;\nSELECT a FROM t LATERAL;\nEND;\n"
    assert ("lateral", 2, 17) in findings_of(sql)


def test_semicolons_in_nested_comments_do_not_split():
    sql = "/* outer /* inner; */ still; */\nSELECT a\nFROM t\nWHERE b IS DISTINCT FROM c;\n"
    assert findings_of(sql) == [("is-distinct-from", 4, 9)]


def test_begin_atomic_bodies_stay_whole_for_the_postgres_check():
    sql = ("CREATE FUNCTION f(x int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n"
           "  SELECT CASE WHEN x > 0 THEN 1 ELSE 0 END;\nEND;\nSELECT NVL(a, b) FROM t;\n")
    assert findings_of(sql, "postgres") == [("redshift-only-function", 5, 8)]


def test_positions_count_from_the_file_start_not_the_statement():
    sql = "SELECT 1;\n\n  SELECT a,\n         b::JSONB\n  FROM t;"
    assert findings_of(sql) == [("postgres-only-type", 4, 13)]


# -- the Redshift rules -----------------------------------------------------------------------

@pytest.mark.parametrize(("sql", "rule"), [
    ("INSERT INTO t (a) SELECT a FROM s ON CONFLICT DO NOTHING", "on-conflict"),
    ("DELETE FROM t WHERE a = 1 RETURNING a", "returning"),
    ("MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN DELETE", "merge"),
    ("SELECT ARRAY[1, 2]", "array"),
    ("SELECT a[1] FROM t", "array"),
    ("SELECT array_agg(a) FROM t", "array"),
    ("SELECT unnest(a) FROM t", "array"),
    ("SELECT DISTINCT ON (a) a, b FROM t", "distinct-on"),
    ("SELECT COUNT(*) FILTER (WHERE a > 1) FROM t", "aggregate-filter"),
    ("SELECT * FROM t CROSS JOIN LATERAL (SELECT t.a) AS x", "lateral"),
    ("INSERT INTO n SELECT generate_series(1, 10)", "generate-series"),
    ("SELECT g FROM t, generate_series(1, 10) AS g", "generate-series"),
    ("SELECT pg_advisory_lock(42)", "advisory-lock"),
    ("SELECT pg_try_advisory_xact_lock(42)", "advisory-lock"),
    ("SELECT now() FROM t", "current-time"),
    ("SELECT a FROM t WHERE b < CURRENT_TIMESTAMP", "current-time"),
    ("SELECT SUM(a) OVER (PARTITION BY b ORDER BY c) FROM t", "window-frame"),
    ("SELECT LAST_VALUE(a) OVER (ORDER BY c) FROM t", "window-frame"),
    ("SELECT SUM(a) OVER (ORDER BY c RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) "
     "FROM t", "window-frame"),
    ("CREATE TABLE t (a VARCHAR)", "varchar-without-length"),
    ("CREATE TABLE t (a TEXT NOT NULL)", "varchar-without-length"),
    ("SELECT CAST(a AS CHARACTER VARYING) FROM t", "varchar-without-length"),
    ("SELECT a::numeric FROM t", "numeric-without-precision"),
    ("CREATE TABLE t (a TIMESTAMPTZ)", "timestamptz"),
    ("SELECT a::timestamp with time zone FROM t", "timestamptz"),
    ("CREATE TABLE t (a JSONB)", "postgres-only-type"),
    ("CREATE TABLE t (a UUID, b BIGSERIAL)", "postgres-only-type"),
    ("ALTER TABLE t ADD COLUMN b BYTEA", "postgres-only-type"),
    ("SELECT string_agg(a, ',') FROM t", "postgres-only-function"),
    ("SELECT format('%s', a) FROM t", "postgres-only-function"),
    ("SELECT jsonb_build_object('a', a) FROM t", "postgres-only-function"),
    ("SELECT regexp_matches(a, 'x') FROM t", "postgres-only-function"),
    ("SELECT a FROM t WHERE a IS NOT DISTINCT FROM b", "is-distinct-from"),
    ("SELECT a FROM t ORDER BY a COLLATE \"C\"", "collate"),
    ("SELECT * FROM (VALUES (1), (2)) AS v (x)", "values-list"),
    ("WITH v (x) AS (VALUES (1)) SELECT x FROM v", "values-list"),
    ("SELECT concat(a, b, c) FROM t", "concat-arguments"),
    ("SELECT a FROM t WHERE a ~ '\\d+'", "backslash-in-string"),
    ("CREATE INDEX i ON t (a)", "index"),
    ("DO $$ BEGIN NULL; END $$", "postgres-only-statement"),
    ("CREATE SEQUENCE s", "postgres-only-statement"),
    ("SAVEPOINT before_insert", "postgres-only-statement"),
    ("CREATE TABLE IF NOT EXISTS t AS SELECT 1 AS a", "ctas-if-not-exists"),
    ("CREATE TEMP TABLE t (a INT) ON COMMIT DROP", "postgres-only-statement"),
    ("WITH x AS MATERIALIZED (SELECT 1) SELECT * FROM x", "postgres-only-statement"),
    ("SELECT a FROM t WHERE", "parse-error"),
])
def test_redshift_check_flags(sql, rule):
    assert rule in rules_of(sql + ";\n", "redshift")


@pytest.mark.parametrize("sql", [
    "INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y')",
    "SELECT ROW_NUMBER() OVER (PARTITION BY a ORDER BY b) FROM t",
    "SELECT LAG(a) OVER (PARTITION BY a ORDER BY b) FROM t",
    "SELECT COUNT(*) OVER (PARTITION BY a) FROM t",
    "SELECT FIRST_VALUE(a) OVER (PARTITION BY b ORDER BY c ROWS BETWEEN UNBOUNDED PRECEDING "
    "AND UNBOUNDED FOLLOWING) FROM t",
    "SELECT a FROM t WHERE a ILIKE '%x%'",
    "SELECT CAST(a AS VARCHAR(36)), b::NUMERIC(18, 3), c::TIMESTAMP FROM t",
    "SELECT text, varchar FROM t",
    "CREATE TABLE t (a INT DISTKEY, b INT SORTKEY, c VARCHAR(10) ENCODE zstd) DISTSTYLE KEY",
    "CREATE TABLE t (a INT) DISTKEY (a) INTERLEAVED SORTKEY (a)",
    "DELETE FROM t USING s WHERE t.a = s.a",
    "SELECT a, NVL(b, 0), DATEADD(day, 1, c), LISTAGG(d, ',') WITHIN GROUP (ORDER BY d) "
    "FROM t GROUP BY a, b, c",
    "ANALYZE t",
    "SELECT 'no backslash' FROM t",
    "SELECT a FROM t -- sqlrunner: allow distinct-on\nWHERE a = 1",
])
def test_redshift_check_lets_through(sql):
    assert check_sql(sql + ";\n", "t.sql", "redshift") == []


def test_truncate_alone_is_fine_but_not_in_a_multi_statement_file():
    assert findings_of("TRUNCATE t;\n") == []
    assert findings_of("DELETE FROM s;\nTRUNCATE t;\n") == [("truncate-in-transaction", 2, 1)]


# -- the PostgreSQL rules -----------------------------------------------------------------

@pytest.mark.parametrize(("sql", "rule"), [
    ("SELECT NVL(a, b) FROM t", "redshift-only-function"),
    ("SELECT DATEADD(day, 1, a) FROM t", "redshift-only-function"),
    ("SELECT DATEDIFF(day, a, b) FROM t", "redshift-only-function"),
    ("SELECT GETDATE()", "current-time"),
    ("SELECT SYSDATE", "current-time"),
    ("SELECT LISTAGG(a, ',') WITHIN GROUP (ORDER BY a) FROM t", "redshift-only-function"),
    ("SELECT DECODE(a, 1, 'one', 'other') FROM t", "redshift-only-function"),
    ("SELECT a FROM t QUALIFY ROW_NUMBER() OVER (ORDER BY a) = 1", "qualify"),
    ("SELECT LAST_VALUE(a IGNORE NULLS) OVER (ORDER BY b ROWS BETWEEN UNBOUNDED PRECEDING AND "
     "UNBOUNDED FOLLOWING) FROM t", "ignore-nulls"),
    ("CREATE TABLE t (a INT) DISTKEY (a)", "distkey-sortkey"),
    ("CREATE TABLE t (a INT) SORTKEY (a)", "distkey-sortkey"),
    ("CREATE TABLE t (a INT ENCODE az64)", "distkey-sortkey"),
    ("CREATE TABLE t (a INT) DISTSTYLE ALL", "distkey-sortkey"),
    ("CREATE TABLE t (a VARCHAR(MAX))", "redshift-only-type"),
    ("CREATE TABLE t (a SUPER)", "redshift-only-type"),
    ("SELECT TOP 5 a FROM t", "redshift-only-syntax"),
    ("ALTER TABLE a APPEND FROM b", "redshift-only-statement"),
    ("ANALYZE PREDICATE COLUMNS", "redshift-only-statement"),
    ("MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN DELETE", "merge"),
])
def test_postgres_check_flags(sql, rule):
    assert rule in rules_of(sql + ";\n", "postgres")


@pytest.mark.parametrize("sql", [
    "SELECT DISTINCT ON (a) a FROM t",
    "INSERT INTO t SELECT 1 ON CONFLICT DO NOTHING",
    "SELECT COALESCE(a, b), PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY a) FROM t",
    "SELECT decode(a, 'hex') FROM t",
])
def test_postgres_check_lets_through(sql):
    assert check_sql(sql + ";\n", "t.sql", "postgres") == []


# -- statements that must run alone -----------------------------------------------------------

def test_vacuum_mixed_with_other_statements_is_flagged():
    sql = "DELETE FROM t WHERE a < 0;\nVACUUM DELETE ONLY t;\n"
    assert findings_of(sql) == [("must-run-alone", 2, 1)]
    assert findings_of("VACUUM DELETE ONLY t;\n") == []


def test_alter_table_append_must_run_alone_on_redshift():
    sql = "INSERT INTO staging SELECT 1;\nALTER TABLE events APPEND FROM staging;\n"
    assert ("must-run-alone", 2, 1) in findings_of(sql)


def test_statements_that_must_run_alone_per_engine():
    sql = ("VACUUM t;\nALTER TABLE a APPEND FROM b;\nCREATE INDEX CONCURRENTLY i ON t (a);\n"
           "CREATE DATABASE d;\nSELECT 1;\n")
    assert statements_that_must_run_alone(sql, "redshift") == [
        "VACUUM t", "ALTER TABLE a APPEND FROM b", "CREATE DATABASE d"]
    assert statements_that_must_run_alone(sql, "postgres") == [
        "VACUUM t", "CREATE INDEX CONCURRENTLY i ON t (a)", "CREATE DATABASE d"]


@pytest.mark.parametrize(("sql", "shape"), [
    ("INSERT INTO t VALUES (1); DELETE FROM u;", "one transaction"),
    ("SAVEPOINT a; INSERT INTO t VALUES (1); ROLLBACK TO SAVEPOINT a;", "one transaction"),
    ("CREATE FUNCTION f() RETURNS void AS $$ BEGIN NULL; END $$ LANGUAGE plpgsql;",
     "one transaction"),
    ("BEGIN; INSERT INTO t VALUES (1); COMMIT;", "own transactions"),
    ("INSERT INTO t VALUES (1); -- done\nCOMMIT; INSERT INTO u VALUES (2);", "own transactions"),
    ("START TRANSACTION; INSERT INTO t VALUES (1); END;", "own transactions"),
    ("VACUUM atomic.events;", "runs alone"),
])
def test_transaction_shape_tells_how_a_file_commits(sql, shape):
    assert transaction_shape(sql, "postgres") == shape


def test_runs_alone_recognises_a_single_statement_file():
    assert runs_alone("-- reclaim space\nVACUUM SORT ONLY derived.sessions;\n")
    assert runs_alone("ALTER TABLE atomic.events APPEND FROM landing.events")
    assert not runs_alone("VACUUM t; ANALYZE t;")
    assert not runs_alone("SELECT 1")


# -- errors and the API ------------------------------------------------------------------------

def test_a_parse_error_points_at_the_offending_token():
    assert findings_of("SELECT 1;\nSELECT a\nFROM t WHERE;\n") == [("parse-error", 3, 8)]


def test_a_template_error_exits_5_with_its_location(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    playbook = write_playbook(tmp_path, {"broken.sql": "SELECT {{.missing}};\n"})
    assert cli_main(["check", "-p", playbook]) == 5
    err = capsys.readouterr().err
    assert err.startswith("sqlrunner: error: template: sql/broken.sql:1:")


def test_a_missing_playbook_exits_1(tmp_path, capsys):
    assert cli_main(["check", "-p", str(tmp_path / "absent.yml")]) == 1
    assert "playbook not found" in capsys.readouterr().err


def test_check_plan_checks_each_rendered_file_once(tmp_path):
    playbook = write_playbook(tmp_path, {"a.sql": "SELECT now();\n", "b.sql": "SELECT 1;\n"},
                              template=False)
    plan = check.prepare_for(playbook, "redshift")
    assert plan.targets[0].target.type == "redshift"
    findings = check.check_plan(plan, "redshift")
    assert [(Path(f.file).name, f.rule) for f in findings] == [("a.sql", "current-time")]
    assert isinstance(findings[0], Finding)
    assert str(findings[0]).endswith("(suggestion: " + findings[0].suggestion + ")")


# -- the shipped model ------------------------------------------------------------------------

SHIPPED = sorted((ROOT / "playbooks").glob("*.yml"))


def test_the_model_ships_its_three_playbooks():
    assert [p.name for p in SHIPPED] == ["full.yml", "full_to_incremental.yml",
                                         "incremental.yml"]


@pytest.mark.parametrize("playbook", SHIPPED, ids=lambda p: p.name)
@pytest.mark.parametrize("dialect", ["redshift", "postgres"])
def test_every_shipped_playbook_passes_the_check(playbook, dialect):
    findings = check_playbook(str(playbook), dialect)
    assert findings == [], "\n".join(str(f) for f in findings)


@pytest.mark.parametrize("playbook", SHIPPED, ids=lambda p: p.name)
@pytest.mark.parametrize("dialect", ["redshift", "postgres"])
def test_every_shipped_playbook_passes_the_check_with_every_option_on(playbook, dialect):
    from test_model_options import EVERY_OPTION  # (docs/model.md, "Options")

    findings = check_playbook(str(playbook), dialect, variables=EVERY_OPTION)
    assert findings == [], "\n".join(str(f) for f in findings)
    plan = check.prepare_for(str(playbook), dialect, EVERY_OPTION)
    rendered = "".join(q.sql or "" for t in plan.targets for q in t.queries)
    assert "cv_cart_add_first_tstamp" in rendered  # the options did reach the SQL
