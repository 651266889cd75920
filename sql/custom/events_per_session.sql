-- Custom derived model (example): events per session and event name, from
-- {{.scratch_schema}}.events_this_run, which holds every event of every session this run
-- recomputes. The playbook upserts these rows into {{.derived_schema}}.events_per_session
-- by session (key: domain_userid, domain_sessionidx): every row of a recomputed session is
-- replaced, so an event name the session no longer has disappears too. Sessions that no
-- longer exist at all are removed by events_per_session_prune.sql. See docs/incremental.md,
-- "Custom derived models".

SELECT
  domain_userid,
  domain_sessionidx,
  event_name,
  COUNT(*) AS event_count,
  MIN(collector_tstamp) AS first_collector_tstamp,
  MAX(collector_tstamp) AS last_collector_tstamp
FROM {{.scratch_schema}}.events_this_run
GROUP BY domain_userid, domain_sessionidx, event_name
