-- Data test (assert: no_rows): each session of {{.derived_schema}}.sessions once, with its
-- whole key (domain_userid, domain_sessionidx). Returns the offending keys. In the
-- incremental mode (recompute: batch) only the cookies of the sessions this run's batch
-- reached (their max_etl_tstamp is one of the etl_tstamps the run recorded).
{{- if ne .target_type "redshift"}}
-- PostgreSQL: no nested loops. After a run's commit the derived tables' statistics can still
-- be those taken before it (the first run's: empty), and a nested loop planned over a table
-- thought to hold a row rescans the other side for each of its rows (minutes at 100,000
-- events); hash joins cost the same whatever the statistics say. No JIT either: with nested
-- loops off the estimates pass its threshold, and compiling took 0.7 s of a 60 ms query.
SET LOCAL enable_nestloop = off;
SET LOCAL jit = off;
{{- end}}
SELECT
  s.domain_userid,
  s.domain_sessionidx,
  COUNT(*) AS copies
FROM {{.derived_schema}}.sessions AS s
{{- if eq (or .recompute "all") "batch"}}
WHERE s.domain_userid IN (
  SELECT b.domain_userid
  FROM {{.derived_schema}}.sessions AS b
  WHERE b.max_etl_tstamp IN (
    SELECT etl_tstamp FROM {{.derived_schema}}.etl_tstamps WHERE run_id = '{{.run_id}}'
  )
)
{{- end}}
GROUP BY s.domain_userid, s.domain_sessionidx
HAVING COUNT(*) > 1 OR s.domain_userid IS NULL OR s.domain_sessionidx IS NULL;
