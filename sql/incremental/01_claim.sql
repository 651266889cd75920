-- Claims the batch: moves every row of {{.landing_schema}}.events into
-- {{.landing_schema}}.events_in_progress, in one transaction, under a lock that keeps
-- loads out while it runs. A load that commits before the lock is in this batch; one that
-- starts after waits for the lock and stays in landing for the next run, whatever its
-- etl_tstamp. Rows already in events_in_progress were claimed by a run that died before its
-- commit: they stay, and this run models them together with the new ones (every touched
-- cookie is recomputed from all of its events, so a bigger batch gives the same result).
-- Nothing is written when landing is empty; the later steps then skip themselves.
--   PostgreSQL: EXCLUSIVE mode, which lets readers of landing through.
--   Redshift: LOCK, its only mode; it serialises the loaders' writes with this one.

{{if eq .target_type "redshift"}}
LOCK {{.landing_schema}}.events;
{{else}}
LOCK TABLE {{.landing_schema}}.events IN EXCLUSIVE MODE;
{{end}}

INSERT INTO {{.landing_schema}}.events_in_progress
SELECT * FROM {{.landing_schema}}.events;

DELETE FROM {{.landing_schema}}.events;
