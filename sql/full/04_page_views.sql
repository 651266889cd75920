-- Builds {{.scratch_schema}}.page_views from {{.scratch_schema}}.events_this_run and
-- {{.scratch_schema}}.event_details: one row per page_view event, with the page_ping events
-- that belong to it (the session's pings after it, before its next page view) counted, and
-- its engaged time: the heartbeat intervals ({{.heartbeat}} s, counted from 1970-01-01)
-- holding at least one of its pings, less one, times the heartbeat, plus the minimum visit
-- length ({{.min_visit_length}} s); 0 without pings.

DROP TABLE IF EXISTS {{.scratch_schema}}.page_views;
{{if eq .target_type "redshift"}}
CREATE TABLE {{.scratch_schema}}.page_views
DISTSTYLE KEY
DISTKEY (domain_userid)
SORTKEY (domain_userid, domain_sessionidx)
AS
{{else}}
SET LOCAL work_mem = '{{.postgres_work_mem}}';
CREATE UNLOGGED TABLE {{.scratch_schema}}.page_views AS
{{end}}
WITH page_view_events AS (
  -- each page view's own event and its pings; a ping's heartbeat interval is computed from
  -- its epoch in whole seconds, floored (so that both engines agree, before 1970 too)
  SELECT
    domain_userid,
    domain_sessionidx,
    page_view_in_session_index,
    event,
    event_id,
    blended_user_id,
    inferred_user_id,
    collector_tstamp,
    dvce_created_tstamp,
    CASE WHEN event = 'page_ping'
      THEN FLOOR(
        CAST(EXTRACT(EPOCH FROM DATE_TRUNC('second', dvce_created_tstamp)) AS DOUBLE PRECISION)
        / {{.heartbeat}})
    END AS ping_interval
  FROM {{.scratch_schema}}.events_this_run
  WHERE page_view_in_session_index > 0
    AND event IN ('page_view', 'page_ping')
),

page_view_aggregates AS (
  -- one row per page view: its own event's values, and the counts over it and its pings
  SELECT
    domain_userid,
    domain_sessionidx,
    page_view_in_session_index,
    MAX(CASE WHEN event = 'page_view' THEN event_id END) AS page_view_id,
    MAX(CASE WHEN event = 'page_view' THEN blended_user_id END) AS blended_user_id,
    MAX(CASE WHEN event = 'page_view' THEN inferred_user_id END) AS inferred_user_id,
    MAX(CASE WHEN event = 'page_view' THEN collector_tstamp END) AS collector_tstamp,
    MAX(CASE WHEN event = 'page_view' THEN dvce_created_tstamp END) AS dvce_created_tstamp,
    MAX(dvce_created_tstamp) AS dvce_max_tstamp,
    SUM(CASE WHEN event = 'page_ping' THEN 1 ELSE 0 END) AS page_ping_count,
    COUNT(*) AS event_count,
    CASE WHEN COUNT(ping_interval) = 0 THEN 0
      ELSE {{.heartbeat}} * (COUNT(DISTINCT ping_interval) - 1) + {{.min_visit_length}}
    END AS time_engaged_in_s
  FROM page_view_events
  GROUP BY domain_userid, domain_sessionidx, page_view_in_session_index
)

SELECT
  p.page_view_id,
  p.domain_userid,
  p.domain_sessionidx,
  p.page_view_in_session_index,
  p.blended_user_id,
  p.inferred_user_id,
  d.page_urlhost,
  d.page_urlpath,
  d.page_title,
  p.collector_tstamp,
  p.dvce_created_tstamp,
  p.dvce_max_tstamp,
  p.page_ping_count,
  p.event_count,
  p.time_engaged_in_s
FROM page_view_aggregates AS p
INNER JOIN {{.scratch_schema}}.event_details AS d
  ON d.event_id = p.page_view_id;

{{if eq .target_type "redshift"}}
ANALYZE {{.scratch_schema}}.page_views PREDICATE COLUMNS;
{{else}}
ANALYZE {{.scratch_schema}}.page_views;
{{end}}
