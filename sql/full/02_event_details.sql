-- Builds {{.scratch_schema}}.event_details from {{.atomic_schema}}.events,
-- {{.scratch_schema}}.events_this_run and {{.scratch_schema}}.duplicate_events: the other
-- columns of the used events that the derived tables read them from (the first and last
-- events of each session, and every page_view event), one row per event_id. An event_id
-- with a single copy in atomic is joined to it; the used copies of the others are in
-- duplicate_events already (01_events_this_run.sql), so nothing here ranks copies.
-- The options' passthroughs (docs/model.md, "Options") are evaluated here on every one of
-- these events, each list into numbered columns (page_view_passthrough_0, ...,
-- session_passthrough_0, ..., visitor_passthrough_0, ...) cast to its type; the derived
-- tables take them from the page view's event, the session's first and the visitor's first.
{{- /* a half of playbooks/full.yml on PostgreSQL (per-query variable part): its tables
   carry the suffix _part_N (docs/model.md, "Both cores") */ -}}
{{$part := ""}}{{if .part}}{{$part = printf "_part_%v" .part}}{{end}}

DROP TABLE IF EXISTS {{.scratch_schema}}.event_details{{$part}};
{{if eq .target_type "redshift"}}
CREATE TABLE {{.scratch_schema}}.event_details{{$part}}
DISTSTYLE KEY
DISTKEY (domain_userid)
SORTKEY (domain_userid, event_id)
AS
{{else}}
SET LOCAL work_mem = '{{.postgres_work_mem}}';
-- compiling this plan takes longer than it saves
SET LOCAL jit = off;
CREATE UNLOGGED TABLE {{.scratch_schema}}.event_details{{$part}} AS
{{end}}
WITH detailed_events AS (
  -- the events whose other columns the derived tables read (named apart from atomic's
  -- columns, which the options' passthroughs name unqualified)
  SELECT domain_userid AS detailed_domain_userid, event_id AS detailed_event_id
  FROM {{.scratch_schema}}.events_this_run{{$part}}
  WHERE event_in_session_index = 1
    OR event_in_session_index = session_event_count
    OR event = 'page_view'
)

-- those with a single copy in atomic: that copy
SELECT
  d.detailed_domain_userid AS domain_userid,
  d.detailed_event_id AS event_id,
  a.domain_sessionid,
  a.app_id,
  a.geo_country,
  a.geo_region,
  a.geo_city,
  a.geo_zipcode,
  a.geo_latitude,
  a.geo_longitude,
  a.geo_timezone,
  a.page_urlhost,
  a.page_urlpath,
  a.page_title,
  a.mkt_source,
  a.mkt_medium,
  a.mkt_term,
  a.mkt_content,
  a.mkt_campaign,
  a.refr_source,
  a.refr_medium,
  a.refr_term,
  a.refr_urlhost,
  a.refr_urlpath,
  a.br_family,
  a.br_name,
  a.br_version,
  a.br_lang,
  a.os_family,
  a.os_name,
  a.os_timezone,
  a.dvce_type,
  a.dvce_ismobile,
  a.dvce_screenwidth,
  a.dvce_screenheight,
  a.doc_width,
  a.doc_height,
  a.br_viewwidth,
  a.br_viewheight{{range $i, $p := .page_view_passthroughs}},
  CAST(({{$p.sql}}) AS {{$p.type}}) AS page_view_passthrough_{{$i}}{{end}}
{{- range $i, $p := .session_passthroughs}},
  CAST(({{$p.sql}}) AS {{$p.type}}) AS session_passthrough_{{$i}}{{end}}
{{- range $i, $p := .visitor_passthroughs}},
  CAST(({{$p.sql}}) AS {{$p.type}}) AS visitor_passthrough_{{$i}}{{end}}
FROM {{.atomic_schema}}.events AS a
INNER JOIN detailed_events AS d
  ON d.detailed_event_id = a.event_id
{{if eq .target_type "redshift"}}
  -- the same cookie (an event_id is used once): on Redshift it keeps the join on each
  -- slice, both sides being distributed by cookie. Not on PostgreSQL, whose planner
  -- would take the two conditions as independent and expect almost no rows.
  AND d.detailed_domain_userid = a.domain_userid
{{end}}
WHERE NOT EXISTS (
  SELECT 1
  FROM {{.scratch_schema}}.duplicated_event_ids{{$part}} AS u
  WHERE u.event_id = d.detailed_event_id
)

UNION ALL

-- the others: their used copy (all of them: a few rows more than needed)
SELECT
  u.domain_userid,
  u.event_id,
  u.domain_sessionid,
  u.app_id,
  u.geo_country,
  u.geo_region,
  u.geo_city,
  u.geo_zipcode,
  u.geo_latitude,
  u.geo_longitude,
  u.geo_timezone,
  u.page_urlhost,
  u.page_urlpath,
  u.page_title,
  u.mkt_source,
  u.mkt_medium,
  u.mkt_term,
  u.mkt_content,
  u.mkt_campaign,
  u.refr_source,
  u.refr_medium,
  u.refr_term,
  u.refr_urlhost,
  u.refr_urlpath,
  u.br_family,
  u.br_name,
  u.br_version,
  u.br_lang,
  u.os_family,
  u.os_name,
  u.os_timezone,
  u.dvce_type,
  u.dvce_ismobile,
  u.dvce_screenwidth,
  u.dvce_screenheight,
  u.doc_width,
  u.doc_height,
  u.br_viewwidth,
  u.br_viewheight{{range $i, $p := .page_view_passthroughs}},
  u.page_view_passthrough_{{$i}}{{end}}
{{- range $i, $p := .session_passthroughs}},
  u.session_passthrough_{{$i}}{{end}}
{{- range $i, $p := .visitor_passthroughs}},
  u.visitor_passthrough_{{$i}}{{end}}
FROM {{.scratch_schema}}.duplicate_events{{$part}} AS u;

{{if ne .target_type "redshift"}}
-- (Redshift analyses a table as it is built by CREATE TABLE AS)
ANALYZE {{.scratch_schema}}.event_details{{$part}} (domain_userid, event_id);
{{end}}
