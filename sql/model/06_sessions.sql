-- Builds {{.scratch_schema}}.sessions from {{.scratch_schema}}.sessions_basic and
-- {{.scratch_schema}}.page_views: each session with its engaged time (the sum of its page
-- views', 0 without any), in the columns of {{.derived_schema}}.sessions.
{{- /* a half of playbooks/full.yml on PostgreSQL (per-query variable part): its tables
   carry the suffix _part_N (docs/model.md, "Both cores") */ -}}
{{$part := ""}}{{if .part}}{{$part = printf "_part_%v" .part}}{{end}}

DROP TABLE IF EXISTS {{.scratch_schema}}.sessions{{$part}};
{{if eq .target_type "redshift"}}
CREATE TABLE {{.scratch_schema}}.sessions{{$part}}
DISTSTYLE KEY
DISTKEY (domain_userid)
SORTKEY (domain_userid, domain_sessionidx)
AS
{{else}}
SET LOCAL work_mem = '{{.postgres_work_mem}}';
-- compiling this plan takes longer than it saves
SET LOCAL jit = off;
CREATE UNLOGGED TABLE {{.scratch_schema}}.sessions{{$part}} AS
{{end}}
WITH session_engagement AS (
  -- the engaged time of each session with a page view
  SELECT
    domain_userid,
    domain_sessionidx,
    SUM(time_engaged_in_s) AS time_engaged_in_s,
    SUM(page_ping_count) AS page_ping_count
  FROM {{.scratch_schema}}.page_views{{$part}}
  GROUP BY domain_userid, domain_sessionidx
)

SELECT
  s.domain_userid,
  s.domain_sessionidx,
  s.domain_sessionid,
  s.app_id,
  s.blended_user_id,
  s.inferred_user_id,
  s.session_start_tstamp,
  s.session_end_tstamp,
  s.dvce_min_tstamp,
  s.dvce_max_tstamp,
  s.max_etl_tstamp,
  s.event_count,
  s.page_view_count,
  COALESCE(e.time_engaged_in_s, 0) AS time_engaged_in_s,
  s.geo_country,
  s.geo_region,
  s.geo_city,
  s.geo_zipcode,
  s.geo_latitude,
  s.geo_longitude,
  s.geo_timezone,
  s.landing_page_host,
  s.landing_page_path,
  s.exit_page_host,
  s.exit_page_path,
  s.mkt_source,
  s.mkt_medium,
  s.mkt_term,
  s.mkt_content,
  s.mkt_campaign,
  s.refr_source,
  s.refr_medium,
  s.refr_term,
  s.refr_urlhost,
  s.refr_urlpath,
  s.br_family,
  s.br_name,
  s.br_version,
  s.br_lang,
  s.os_family,
  s.os_name,
  s.os_timezone,
  s.dvce_type,
  s.dvce_ismobile,
  s.dvce_screenwidth,
  s.dvce_screenheight,
  -- columns added for analysts (docs/model.md)
  s.first_page_title,
  s.last_page_title,
  CAST(DATE_PART('epoch', DATE_TRUNC('second', s.dvce_max_tstamp))
    - DATE_PART('epoch', DATE_TRUNC('second', s.dvce_min_tstamp)) AS BIGINT)
    AS absolute_time_in_s,
  COALESCE(e.page_ping_count, 0) AS page_ping_count,
  -- engaged: two page views or more, or pings in two heartbeat intervals or more, or a
  -- conversion of the options
  CASE WHEN s.page_view_count >= 2
      OR COALESCE(e.time_engaged_in_s, 0) >= {{.min_visit_length}} + {{.heartbeat}}
      {{- range .conversions}}
      OR s.cv_{{.name}}_volume > 0{{end}}
    THEN TRUE ELSE FALSE END AS is_engaged,
  -- (then the options' passthroughs and conversions)
  s.default_channel_group
  {{- range $i, $p := .session_passthroughs}},
  s.session_passthrough_{{$i}} AS {{$p.alias}}{{end}}
  {{- range .conversions}},
  s.cv_{{.name}}_volume,
  s.cv_{{.name}}_value,
  CASE WHEN s.cv_{{.name}}_volume > 0 THEN TRUE ELSE FALSE END AS cv_{{.name}}_converted,
  s.cv_{{.name}}_first_tstamp{{end}}
FROM {{.scratch_schema}}.sessions_basic{{$part}} AS s
LEFT JOIN session_engagement AS e
  ON e.domain_userid = s.domain_userid
  AND e.domain_sessionidx = s.domain_sessionidx;

{{if ne .target_type "redshift"}}
-- (Redshift analyses a table as it is built by CREATE TABLE AS)
ANALYZE {{.scratch_schema}}.sessions{{$part}} (domain_userid, domain_sessionidx);
{{end}}
