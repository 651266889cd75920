-- Refreshes the statistics of the model's durable tables that are missing or stale, before
-- the playbook reads them: {{.atomic_schema}}.events (read by every mode) and the derived
-- tables (read by the incremental mode's commit and custom models). The planner sizes every
-- join by them: with none on atomic, PostgreSQL takes a table of millions of rows for a few
-- rows and compares every row of it with every touched cookie (the incremental run grew
-- from 1.3 s to 398 s per batch over 6 batches of 100k events on a server with autovacuum
-- off; the full mode's first step ran for more than 11 minutes at 1M events instead of 8 s).
-- The model does not rely on anyone else's ANALYZE (autovacuum may be off, or lag a growing
-- table by 10%); it analyses only when the statistics are off, so most runs pay a look at
-- the catalogue and nothing more (docs/incremental.md, "Statistics"). Only the columns the
-- model filters, joins and groups on are analysed. The scratch tables and the claim are
-- analysed where they are built.
--
-- A table is analysed when one of these holds (its rows counted as of its last analyse):
--   - it has no statistics: never analysed (reltuples < 0), or no column statistics for
--     the columns below while it holds data (a VACUUM sets the row count, not these);
--   - it grew by more than autovacuum_analyze_scale_factor (0.1 by default) in pages since
--     then: read from the catalogue, exact, also after a crash (which resets the counters of
--     the next rule). Deleted rows keep their pages until a VACUUM, so a table rewritten in
--     place (the derived tables, each run) counts as growing;
--   - its live rows, by the cumulative statistics, differ from its row count at the last
--     analyse by more than autovacuum_analyze_threshold + autovacuum_analyze_scale_factor x
--     its rows (the server's settings): small tables, whose pages grow by whole pages. A
--     table whose counters are all zero (statistics reset by a crash, or a new database made
--     from a template) is left to the rules above, which read the catalogue;
--   - autovacuum's own rule: more rows inserted, updated or deleted since the last analyse
--     (n_mod_since_analyze) than that threshold, only where that count is known to start at
--     the last analyse: an ANALYZE of some columns, as here, does not reset it (PostgreSQL
--     resets it only for a whole-table analyse), so after ours it counts from the last
--     whole-table analyse and would call the table stale on every run (0.4 s a run for
--     atomic at 1M events). It applies while no analyse is recorded, or autovacuum's is the
--     last.
--
--   PostgreSQL: ANALYZE (SKIP_LOCKED) samples 300 x default_statistics_target rows (30,000),
--     whatever the table's size: about 0.9 s for all of these tables at 1M events, of which
--     atomic about half (docs/benchmarks.md). SKIP_LOCKED: if another session holds the table's
--     maintenance lock (a VACUUM, CREATE INDEX CONCURRENTLY, another ANALYZE), the table is
--     skipped with a warning rather than waited for; the incremental mode's reads of atomic
--     do not depend on its statistics for their plans (sql/incremental/02 and 03). A table
--     that is missing (a custom model not set up in this playbook) is passed over. A table
--     the model's user does not own is skipped with a warning.
--   Redshift: ANALYZE skips by itself a table of which fewer than analyze_threshold_percent
--     (10 by default) of the rows changed since its last analyse; PREDICATE COLUMNS
--     analyses the columns queries have filtered, joined or grouped on, and the distribution
--     and sort keys. One table per statement (docs/redshift.md, "Statistics on Redshift").
-- Custom models' tables: add yours to both lists (the example's is in the PostgreSQL one;
-- on Redshift it would fail in a playbook that does not set it up).

{{if eq .target_type "redshift"}}
ANALYZE {{.atomic_schema}}.events PREDICATE COLUMNS;
ANALYZE {{.derived_schema}}.sessions PREDICATE COLUMNS;
ANALYZE {{.derived_schema}}.page_views PREDICATE COLUMNS;
ANALYZE {{.derived_schema}}.visitors PREDICATE COLUMNS;
ANALYZE {{.derived_schema}}.cookie_id_to_user_id_map PREDICATE COLUMNS;
{{else}}
DO $analyze_stale$
DECLARE
  stale RECORD;
BEGIN
  FOR stale IN
    WITH model_tables (table_name, key_columns) AS (
      VALUES
        ('{{.atomic_schema}}.events',
         'event_id, domain_userid, domain_sessionidx, dvce_created_tstamp'),
        ('{{.derived_schema}}.sessions', 'domain_userid, domain_sessionidx'),
        ('{{.derived_schema}}.page_views', 'page_view_id, domain_userid, domain_sessionidx'),
        ('{{.derived_schema}}.visitors', 'domain_userid'),
        ('{{.derived_schema}}.cookie_id_to_user_id_map', 'domain_userid'),
        -- custom models
        ('{{.derived_schema}}.events_per_session', 'domain_userid, domain_sessionidx')
    ),

    present_tables AS (
      SELECT TO_REGCLASS(table_name) AS relation, key_columns
      FROM model_tables
    )

    SELECT p.relation, p.key_columns
    FROM present_tables AS p
    INNER JOIN pg_class AS c
      ON c.oid = p.relation
    LEFT JOIN pg_stat_user_tables AS s
      ON s.relid = p.relation
    WHERE c.reltuples < 0
      OR (PG_RELATION_SIZE(c.oid) > 0
        AND (SELECT COUNT(*) FROM pg_stats AS t
             WHERE t.schemaname = s.schemaname AND t.tablename = s.relname
               AND t.attname = ANY (STRING_TO_ARRAY(p.key_columns, ', ')))
          < CARDINALITY(STRING_TO_ARRAY(p.key_columns, ', ')))
      OR PG_RELATION_SIZE(c.oid)
        > (1 + CURRENT_SETTING('autovacuum_analyze_scale_factor')::FLOAT8)
          * c.relpages * CURRENT_SETTING('block_size')::INT
      OR (s.n_live_tup + s.n_dead_tup > 0
        AND ABS(s.n_live_tup - c.reltuples)
          > CURRENT_SETTING('autovacuum_analyze_threshold')::INT
            + CURRENT_SETTING('autovacuum_analyze_scale_factor')::FLOAT8 * c.reltuples)
      OR ((s.last_analyze IS NULL OR s.last_autoanalyze > s.last_analyze)
        AND s.n_mod_since_analyze
          > CURRENT_SETTING('autovacuum_analyze_threshold')::INT
            + CURRENT_SETTING('autovacuum_analyze_scale_factor')::FLOAT8 * c.reltuples)
  LOOP
    EXECUTE FORMAT('ANALYZE (SKIP_LOCKED) %s (%s)', stale.relation, stale.key_columns);
  END LOOP;
END
$analyze_stale$;
{{end}}
