-- Data test (assert: no_rows): each page view of {{.derived_schema}}.page_views once, with
-- a page_view_id. Returns the offending ids. In the incremental mode (recompute: batch)
-- only the cookies of the sessions this run's batch reached.
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
  p.page_view_id,
  COUNT(*) AS copies
FROM {{.derived_schema}}.page_views AS p
{{- if eq (or .recompute "all") "batch"}}
WHERE p.domain_userid IN (
  SELECT b.domain_userid
  FROM {{.derived_schema}}.sessions AS b
  WHERE b.max_etl_tstamp IN (
    SELECT etl_tstamp FROM {{.derived_schema}}.etl_tstamps WHERE run_id = '{{.run_id}}'
  )
)
{{- end}}
GROUP BY p.page_view_id
HAVING COUNT(*) > 1 OR p.page_view_id IS NULL;
