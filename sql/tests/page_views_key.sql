-- Data test (assert: no_rows): each page view of {{.derived_schema}}.page_views once, with
-- a page_view_id. Returns the offending ids. In the incremental mode (recompute: batch)
-- only the cookies of the sessions this run's batch reached.
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
