-- Builds {{.scratch_schema}}.sessions_basic from {{.scratch_schema}}.events_this_run and
-- {{.scratch_schema}}.event_details: one row per session (domain_userid, domain_sessionidx)
-- from its last event, which carries the session's aggregates and identity stitching, with
-- the values of its first event (landing page, location, marketing, referrer, device) and
-- of its last (exit page), and the order keys (dvce_created_tstamp, collector_tstamp,
-- event_id) of those two events, which pick a cookie's first and last sessions. Events are
-- in event order, so the first event holds the MIN dvce_created_tstamp and the last the
-- MAX. The session's engaged time is added from its page views in the next step.
{{- /* a half of playbooks/full.yml on PostgreSQL (per-query variable part): its tables
   carry the suffix _part_N (docs/model.md, "Both cores") */ -}}
{{$part := ""}}{{if .part}}{{$part = printf "_part_%v" .part}}{{end}}

DROP TABLE IF EXISTS {{.scratch_schema}}.sessions_basic{{$part}};
{{if eq .target_type "redshift"}}
CREATE TABLE {{.scratch_schema}}.sessions_basic{{$part}}
DISTSTYLE KEY
DISTKEY (domain_userid)
SORTKEY (domain_userid, domain_sessionidx)
AS
{{else}}
SET LOCAL work_mem = '{{.postgres_work_mem}}';
-- compiling this plan takes longer than it saves
SET LOCAL jit = off;
CREATE UNLOGGED TABLE {{.scratch_schema}}.sessions_basic{{$part}} AS
{{end}}
WITH last_events AS (
  -- the last event of each session, which carries the session's aggregates
  SELECT *
  FROM {{.scratch_schema}}.events_this_run{{$part}}
  WHERE event_in_session_index = session_event_count
){{if .conversions}},

session_conversions AS (
  -- the options' conversions of each session with one: its converting events, their
  -- values' sum and the first one's collector_tstamp
  SELECT
    domain_userid,
    domain_sessionidx{{range .conversions}},
    COUNT(cv_{{.name}}_event_value) AS cv_{{.name}}_volume,
    SUM(cv_{{.name}}_event_value) AS cv_{{.name}}_value,
    MIN(CASE WHEN cv_{{.name}}_event_value IS NOT NULL THEN collector_tstamp END)
      AS cv_{{.name}}_first_tstamp{{end}}
  FROM {{.scratch_schema}}.events_this_run{{$part}}
  WHERE {{range $i, $c := .conversions}}{{if $i}}
    OR {{end}}cv_{{$c.name}}_event_value IS NOT NULL{{end}}
  GROUP BY domain_userid, domain_sessionidx
){{end}}

SELECT
  s.domain_userid,
  s.domain_sessionidx,
  f.domain_sessionid,
  f.app_id,
  s.blended_user_id,
  s.inferred_user_id,
  s.session_start_tstamp,
  s.session_end_tstamp,
  s.first_event_dvce_created_tstamp AS dvce_min_tstamp,
  s.dvce_created_tstamp AS dvce_max_tstamp,
  s.max_etl_tstamp,
  s.session_event_count AS event_count,
  s.page_view_in_session_index AS page_view_count,
  f.geo_country,
  f.geo_region,
  f.geo_city,
  f.geo_zipcode,
  f.geo_latitude,
  f.geo_longitude,
  f.geo_timezone,
  f.page_urlhost AS landing_page_host,
  f.page_urlpath AS landing_page_path,
  l.page_urlhost AS exit_page_host,
  l.page_urlpath AS exit_page_path,
  f.mkt_source,
  f.mkt_medium,
  f.mkt_term,
  f.mkt_content,
  f.mkt_campaign,
  f.refr_source,
  f.refr_medium,
  f.refr_term,
  f.refr_urlhost,
  f.refr_urlpath,
  f.br_family,
  f.br_name,
  f.br_version,
  f.br_lang,
  f.os_family,
  f.os_name,
  f.os_timezone,
  f.dvce_type,
  f.dvce_ismobile,
  f.dvce_screenwidth,
  f.dvce_screenheight,
  s.first_event_collector_tstamp,
  s.first_event_id,
  s.collector_tstamp AS last_event_collector_tstamp,
  s.event_id AS last_event_id,
  -- columns added for analysts (docs/model.md)
  f.page_title AS first_page_title,
  l.page_title AS last_page_title,
  -- (then the options' passthroughs, evaluated on the session's first event (the
  -- visitors' are the first session's), and conversions (0, 0 and NULL without one))
  {{.derived_schema}}.f_default_channel_group(f.mkt_medium, f.mkt_source, f.mkt_campaign,
    f.refr_medium, f.refr_source) AS default_channel_group
  {{- range $i, $p := .session_passthroughs}},
  f.session_passthrough_{{$i}}{{end}}
  {{- range $i, $p := .visitor_passthroughs}},
  f.visitor_passthrough_{{$i}}{{end}}
  {{- range .conversions}},
  COALESCE(c.cv_{{.name}}_volume, 0) AS cv_{{.name}}_volume,
  COALESCE(c.cv_{{.name}}_value, 0) AS cv_{{.name}}_value,
  c.cv_{{.name}}_first_tstamp{{end}}
FROM last_events AS s
INNER JOIN {{.scratch_schema}}.event_details{{$part}} AS f
  ON f.event_id = s.first_event_id
{{if eq .target_type "redshift"}}
  -- the same cookie (an event_id is used once): on Redshift it keeps the join on each
  -- slice, both sides being distributed by cookie. Not on PostgreSQL, whose planner
  -- would take the two conditions as independent and expect almost no rows.
  AND f.domain_userid = s.domain_userid
{{end}}
INNER JOIN {{.scratch_schema}}.event_details{{$part}} AS l
  ON l.event_id = s.event_id
{{if eq .target_type "redshift"}}
  AND l.domain_userid = s.domain_userid
{{end}}
{{if .conversions}}
LEFT JOIN session_conversions AS c
  ON c.domain_userid = s.domain_userid
  AND c.domain_sessionidx = s.domain_sessionidx
{{end}};

{{if ne .target_type "redshift"}}
-- (Redshift analyses a table as it is built by CREATE TABLE AS)
ANALYZE {{.scratch_schema}}.sessions_basic{{$part}} (domain_userid, domain_sessionidx);
{{end}}
