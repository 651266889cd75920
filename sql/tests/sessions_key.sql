-- Data test (assert: no_rows): each session of {{.derived_schema}}.sessions once, with its
-- whole key (domain_userid, domain_sessionidx). Returns the offending keys. In the
-- incremental mode (recompute: batch) only the cookies of the sessions this run's batch
-- reached (their max_etl_tstamp is one of the etl_tstamps the run recorded).
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
