-- Creates {{.derived_schema}}.etl_tstamps if it is missing (safe to run any number of times):
-- the batch manifest of the incremental mode, one row per run and etl_tstamp value it moved
-- from {{.landing_schema}}.events to {{.atomic_schema}}.events, with how many events, the
-- run's id and its start time. playbooks/incremental.yml and full_to_incremental.yml run it;
-- the incremental mode's other table, {{.landing_schema}}.events_in_progress, is created by
-- its claim (sql/incremental/01_claim.sql), the first query that needs it.

CREATE TABLE IF NOT EXISTS {{.derived_schema}}.etl_tstamps (
  etl_tstamp   TIMESTAMP,
  event_count  BIGINT NOT NULL,
  run_id       VARCHAR(64) NOT NULL,
  processed_at TIMESTAMP NOT NULL
);
