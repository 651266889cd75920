-- Creates the incremental mode's own tables if they are missing (safe to run any number of
-- times; playbooks/incremental.yml and playbooks/full_to_incremental.yml run it after the
-- other setup files):
--   {{.landing_schema}}.events_in_progress  the batch a run has claimed from
--     {{.landing_schema}}.events and not moved to {{.atomic_schema}}.events yet. Durable (the
--     scratch schema may be dropped between runs), so a run that dies leaves its batch there
--     for the next run to finish. Landing's columns (LIKE: names, order, types, NOT NULL;
--     on Redshift also its keys).
--   {{.derived_schema}}.etl_tstamps  the batch manifest: one row per run and etl_tstamp value
--     it moved from landing to atomic, with how many events, the run's id and start time.

CREATE TABLE IF NOT EXISTS {{.landing_schema}}.events_in_progress
  (LIKE {{.landing_schema}}.events);

CREATE TABLE IF NOT EXISTS {{.derived_schema}}.etl_tstamps (
  etl_tstamp   TIMESTAMP,
  event_count  BIGINT NOT NULL,
  run_id       VARCHAR(64) NOT NULL,
  processed_at TIMESTAMP NOT NULL
);
