-- Claims the batch: moves every row of {{.landing_schema}}.events into
-- {{.landing_schema}}.events_in_progress, in one transaction, under a lock that keeps loads
-- out meanwhile. A load that committed before the lock is in this batch; one that starts
-- after it waits for the lock and stays in landing for the next run, whatever its
-- etl_tstamp. Rows already in events_in_progress were claimed by a run that died before its
-- commit: they stay, and this run models them with the new ones (each touched cookie is
-- recomputed from all of its events, so a bigger batch gives the same result).
-- events_in_progress is durable (sql/setup/05_incremental_tables.sql).
-- With landing empty nothing is written, and the later steps skip themselves.
--   PostgreSQL: the lock lets nothing else at landing (not even readers) for the few
--     milliseconds this takes, so that landing can be emptied by TRUNCATE, which leaves no
--     dead rows behind for the next claim to read.
--   Redshift: LOCK (its only mode) serialises the loaders' writes with this one; DELETE,
--     because its TRUNCATE would commit on its own.

{{if eq .target_type "redshift"}}
LOCK {{.landing_schema}}.events;
{{else}}
LOCK TABLE {{.landing_schema}}.events IN ACCESS EXCLUSIVE MODE;
{{end}}

INSERT INTO {{.landing_schema}}.events_in_progress
SELECT * FROM {{.landing_schema}}.events;

{{if eq .target_type "redshift"}}
DELETE FROM {{.landing_schema}}.events;
{{else}}
TRUNCATE {{.landing_schema}}.events;
{{end}}
