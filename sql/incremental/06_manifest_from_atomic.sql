-- Records in {{.derived_schema}}.etl_tstamps the events of {{.atomic_schema}}.events that no
-- manifest row accounts for yet: for each etl_tstamp, atomic's count less the counts already
-- recorded, when positive, as this run's (its id and start time). Run once when a deployment
-- that loaded atomic directly (the full mode's way) switches to the incremental mode
-- (playbooks/full_to_incremental.yml); running it again adds nothing. NULL etl_tstamps are
-- counted together, as GROUP BY puts them.

INSERT INTO {{.derived_schema}}.etl_tstamps (
  etl_tstamp,
  event_count,
  run_id,
  processed_at
)
SELECT
  a.etl_tstamp,
  a.event_count - COALESCE(r.event_count, 0),
  '{{.run_id}}',
  CAST('{{.run_tstamp}}' AS TIMESTAMP)
FROM (
  -- the events of atomic by etl_tstamp
  SELECT
    etl_tstamp,
    COUNT(*) AS event_count
  FROM {{.atomic_schema}}.events
  GROUP BY etl_tstamp
) AS a
LEFT JOIN (
  -- the events the manifest already records, by etl_tstamp
  SELECT
    etl_tstamp,
    SUM(event_count) AS event_count
  FROM {{.derived_schema}}.etl_tstamps
  GROUP BY etl_tstamp
) AS r
  -- NULL matches NULL: the sentinel is before any etl_tstamp a pipeline writes
  ON COALESCE(r.etl_tstamp, CAST('0001-01-01 00:00:00' AS TIMESTAMP))
    = COALESCE(a.etl_tstamp, CAST('0001-01-01 00:00:00' AS TIMESTAMP))
WHERE a.event_count > COALESCE(r.event_count, 0);
