-- Builds {{.scratch_schema}}.page_views from {{.scratch_schema}}.events_this_run and
-- {{.scratch_schema}}.event_details: one row per page_view event, with the page_ping events
-- that belong to it (the session's pings after it, before its next page view) counted, and
-- its engaged time: the heartbeat intervals ({{.heartbeat}} s, counted from 1970-01-01)
-- holding at least one of its pings, less one, times the heartbeat, plus the minimum visit
-- length ({{.min_visit_length}} s); 0 without pings.
{{- /* a half of playbooks/full.yml on PostgreSQL (per-query variable part): its tables
   carry the suffix _part_N (docs/model.md, "Both cores") */ -}}
{{$part := ""}}{{if .part}}{{$part = printf "_part_%v" .part}}{{end}}

DROP TABLE IF EXISTS {{.scratch_schema}}.page_views{{$part}};
{{if eq .target_type "redshift"}}
CREATE TABLE {{.scratch_schema}}.page_views{{$part}}
DISTSTYLE KEY
DISTKEY (domain_userid)
SORTKEY (domain_userid, domain_sessionidx)
AS
{{else}}
SET LOCAL work_mem = '{{.postgres_work_mem}}';
-- compiling this plan takes longer than it saves
SET LOCAL jit = off;
-- a parallel plan would aggregate the pings again in every worker
SET LOCAL max_parallel_workers_per_gather = 0;
CREATE UNLOGGED TABLE {{.scratch_schema}}.page_views{{$part}} AS
{{end}}
WITH page_view_events AS (
  -- the page_view events, numbered within their sessions
  SELECT
    domain_userid,
    domain_sessionidx,
    page_view_in_session_index,
    event_id AS page_view_id,
    blended_user_id,
    inferred_user_id,
    collector_tstamp,
    dvce_created_tstamp
  FROM {{.scratch_schema}}.events_this_run{{$part}}
  WHERE event = 'page_view'
),

ping_intervals AS (
  -- the pings of each page view by heartbeat interval, computed from the ping's epoch in
  -- whole seconds, floored first: Redshift's epoch has no fractions, and truncating one
  -- before 1970 would round it up (a double holds these whole seconds exactly)
  SELECT
    domain_userid,
    domain_sessionidx,
    page_view_in_session_index,
    FLOOR(DATE_PART('epoch', DATE_TRUNC('second', dvce_created_tstamp)) / {{.heartbeat}})
      AS ping_interval,
    COUNT(*) AS page_ping_count,
    MAX(dvce_created_tstamp) AS dvce_max_tstamp,
    MAX(pp_xoffset_max) AS pp_xoffset_max,
    MAX(pp_yoffset_max) AS pp_yoffset_max
  FROM {{.scratch_schema}}.events_this_run{{$part}}
  WHERE event = 'page_ping'
    AND page_view_in_session_index > 0
  GROUP BY 1, 2, 3, 4
),

page_view_pings AS (
  -- the pings of each page view with at least one
  SELECT
    domain_userid,
    domain_sessionidx,
    page_view_in_session_index,
    SUM(page_ping_count) AS page_ping_count,
    COUNT(*) AS ping_interval_count,
    MAX(dvce_max_tstamp) AS dvce_max_tstamp,
    -- the furthest the pings scrolled (0 for a negative overscroll; NULL if none said)
    CASE WHEN MAX(pp_xoffset_max) < 0 THEN 0
      ELSE CAST(MAX(pp_xoffset_max) AS BIGINT) END AS horizontal_pixels_scrolled,
    CASE WHEN MAX(pp_yoffset_max) < 0 THEN 0
      ELSE CAST(MAX(pp_yoffset_max) AS BIGINT) END AS vertical_pixels_scrolled
  FROM ping_intervals
  GROUP BY 1, 2, 3
)

SELECT
  v.page_view_id,
  v.domain_userid,
  v.domain_sessionidx,
  v.page_view_in_session_index,
  v.blended_user_id,
  v.inferred_user_id,
  d.page_urlhost,
  d.page_urlpath,
  d.page_title,
  v.collector_tstamp,
  v.dvce_created_tstamp,
  CASE WHEN p.dvce_max_tstamp > v.dvce_created_tstamp THEN p.dvce_max_tstamp
    ELSE v.dvce_created_tstamp END AS dvce_max_tstamp,
  COALESCE(p.page_ping_count, 0) AS page_ping_count,
  1 + COALESCE(p.page_ping_count, 0) AS event_count,
  CASE WHEN p.ping_interval_count IS NULL THEN 0
    ELSE {{.heartbeat}} * (p.ping_interval_count - 1) + {{.min_visit_length}}
  END AS time_engaged_in_s,
  -- columns added for analysts (docs/model.md)
  d.domain_sessionid,
  d.app_id,
  CASE WHEN p.dvce_max_tstamp > v.dvce_created_tstamp
    THEN CAST(DATE_PART('epoch', DATE_TRUNC('second', p.dvce_max_tstamp))
      - DATE_PART('epoch', DATE_TRUNC('second', v.dvce_created_tstamp)) AS BIGINT)
    ELSE 0 END AS absolute_time_in_s,
  p.horizontal_pixels_scrolled,
  p.vertical_pixels_scrolled,
  CASE WHEN d.doc_width > 0 THEN LEAST(100,
    (p.horizontal_pixels_scrolled + COALESCE(d.br_viewwidth, 0)) * 100 / d.doc_width)
  END AS horizontal_percentage_scrolled,
  CASE WHEN d.doc_height > 0 THEN LEAST(100,
    (p.vertical_pixels_scrolled + COALESCE(d.br_viewheight, 0)) * 100 / d.doc_height)
  END AS vertical_percentage_scrolled,
  d.doc_width,
  d.doc_height,
  d.br_viewwidth,
  d.br_viewheight,
  d.refr_urlhost,
  d.refr_urlpath,
  d.refr_medium,
  d.refr_source,
  d.refr_term,
  d.mkt_medium,
  d.mkt_source,
  d.mkt_term,
  d.mkt_content,
  d.mkt_campaign,
  d.geo_country,
  d.geo_region,
  d.geo_city,
  d.geo_zipcode,
  d.geo_latitude,
  d.geo_longitude,
  d.geo_timezone,
  d.br_family,
  d.br_name,
  d.br_version,
  d.br_lang,
  d.os_family,
  d.os_name,
  d.os_timezone,
  d.dvce_type,
  d.dvce_ismobile,
  d.dvce_screenwidth,
  d.dvce_screenheight,
  -- (then the options' passthroughs, evaluated on the page view's event)
  {{.derived_schema}}.f_default_channel_group(d.mkt_medium, d.mkt_source, d.mkt_campaign,
    d.refr_medium, d.refr_source) AS default_channel_group
  {{- range $i, $p := .page_view_passthroughs}},
  d.page_view_passthrough_{{$i}} AS {{$p.alias}}{{end}}
FROM page_view_events AS v
INNER JOIN {{.scratch_schema}}.event_details{{$part}} AS d
  ON d.event_id = v.page_view_id
{{if eq .target_type "redshift"}}
  -- the same cookie (an event_id is used once): on Redshift it keeps the join on each
  -- slice, both sides being distributed by cookie. Not on PostgreSQL, whose planner
  -- would take the two conditions as independent and expect almost no rows.
  AND d.domain_userid = v.domain_userid
{{end}}
LEFT JOIN page_view_pings AS p
  ON p.domain_userid = v.domain_userid
  AND p.domain_sessionidx = v.domain_sessionidx
  AND p.page_view_in_session_index = v.page_view_in_session_index;

{{if ne .target_type "redshift"}}
-- (Redshift analyses a table as it is built by CREATE TABLE AS)
ANALYZE {{.scratch_schema}}.page_views{{$part}} (domain_userid, domain_sessionidx);
{{end}}
