-- Data test (assert: no_rows): {{.atomic_schema}}.events holds every event the manifest
-- ({{.derived_schema}}.etl_tstamps) records as moved, once: per etl_tstamp, atomic's count
-- equals the manifest's total. Returns the etl_tstamps where they differ. In the incremental
-- mode (recompute: batch) only the etl_tstamps this run recorded. NULL etl_tstamps are
-- counted together, as the manifest does.
WITH moved AS (
  SELECT
    COALESCE(etl_tstamp, CAST('0001-01-01 00:00:00' AS TIMESTAMP)) AS etl_tstamp,
    SUM(event_count) AS recorded
  FROM {{.derived_schema}}.etl_tstamps
  {{- if eq (or .recompute "all") "batch"}}
  WHERE COALESCE(etl_tstamp, CAST('0001-01-01 00:00:00' AS TIMESTAMP)) IN (
    SELECT COALESCE(etl_tstamp, CAST('0001-01-01 00:00:00' AS TIMESTAMP))
    FROM {{.derived_schema}}.etl_tstamps
    WHERE run_id = '{{.run_id}}'
  )
  {{- end}}
  GROUP BY 1
),
held AS (
  SELECT
    COALESCE(a.etl_tstamp, CAST('0001-01-01 00:00:00' AS TIMESTAMP)) AS etl_tstamp,
    COUNT(*) AS held
  FROM {{.atomic_schema}}.events AS a
  {{- if eq (or .recompute "all") "batch"}}
  WHERE COALESCE(a.etl_tstamp, CAST('0001-01-01 00:00:00' AS TIMESTAMP))
    IN (SELECT etl_tstamp FROM moved)
  {{- end}}
  GROUP BY 1
)
SELECT
  COALESCE(m.etl_tstamp, h.etl_tstamp) AS etl_tstamp,
  m.recorded,
  h.held
FROM moved AS m
FULL OUTER JOIN held AS h ON h.etl_tstamp = m.etl_tstamp
WHERE COALESCE(m.recorded, 0) <> COALESCE(h.held, 0);
