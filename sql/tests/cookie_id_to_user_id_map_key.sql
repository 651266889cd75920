-- Data test (assert: no_rows): each cookie of {{.derived_schema}}.cookie_id_to_user_id_map
-- once, with a domain_userid. Returns the offending cookies. In the incremental mode
-- (recompute: batch) only the cookies of the sessions this run's batch reached.
SELECT
  m.domain_userid,
  COUNT(*) AS copies
FROM {{.derived_schema}}.cookie_id_to_user_id_map AS m
{{- if eq (or .recompute "all") "batch"}}
WHERE m.domain_userid IN (
  SELECT b.domain_userid
  FROM {{.derived_schema}}.sessions AS b
  WHERE b.max_etl_tstamp IN (
    SELECT etl_tstamp FROM {{.derived_schema}}.etl_tstamps WHERE run_id = '{{.run_id}}'
  )
)
{{- end}}
GROUP BY m.domain_userid
HAVING COUNT(*) > 1 OR m.domain_userid IS NULL;
