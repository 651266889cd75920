-- Replaces every row of the derived tables in {{.derived_schema}} (sessions, page_views,
-- visitors, cookie_id_to_user_id_map) with this run's, built in {{.scratch_schema}}, in one
-- transaction: readers see the old rows or the new ones, never a mix.
--   PostgreSQL: TRUNCATE (transactional there), and the key indexes of
--     sql/setup/04_derived_tables.sql dropped and built again after the inserts, which is
--     faster than maintaining them row by row. Keep the two files in step.
--   Redshift: DELETE, because its TRUNCATE would commit on its own.

-- First a check that the work tables are this run's. After a server crash PostgreSQL
-- empties unlogged tables (the work tables are), while the runner's checkpoints of the
-- steps that built them survive: a resumed run would reach this point with empty work
-- tables and replace the derived tables with nothing. If atomic holds a usable event,
-- events_this_run, sessions and visitors cannot be empty (a loss anywhere upstream leaves
-- sessions empty); if they are, this insert of a NULL fails, naming what to do, and
-- nothing is committed. Each count stops at the first row.
DROP TABLE IF EXISTS full_commit_check;
CREATE TEMPORARY TABLE full_commit_check (
  work_tables_lost_run_again_with_restart INT NOT NULL
);
INSERT INTO full_commit_check
SELECT CASE WHEN u.usable_events = 0 OR (e.events > 0 AND s.sessions > 0 AND v.visitors > 0)
  THEN 1 END
FROM (
  SELECT COUNT(*) AS usable_events
  FROM (
    SELECT 1 AS usable
    FROM {{.atomic_schema}}.events
    WHERE domain_userid <> ''
      AND domain_sessionidx IS NOT NULL
      AND dvce_created_tstamp IS NOT NULL
      AND {{.scratch_schema}}.f_event_is_kept(app_id, collector_tstamp, dvce_created_tstamp,
        useragent)
    LIMIT 1
  ) AS a
) AS u
CROSS JOIN (
  SELECT COUNT(*) AS events
  FROM (SELECT 1 AS used FROM {{if .parts}}(
    {{- range $i := .parts}}{{if $i}}
    UNION ALL{{end}}
    SELECT * FROM {{$.scratch_schema}}.events_this_run{{if $i}}_part_{{$i}}{{end}}{{end}}
  ) AS parts{{else}}{{.scratch_schema}}.events_this_run{{end}} LIMIT 1) AS a
) AS e
CROSS JOIN (
  SELECT COUNT(*) AS sessions
  FROM (SELECT 1 AS used FROM {{if .parts}}(
    {{- range $i := .parts}}{{if $i}}
    UNION ALL{{end}}
    SELECT * FROM {{$.scratch_schema}}.sessions{{if $i}}_part_{{$i}}{{end}}{{end}}
  ) AS parts{{else}}{{.scratch_schema}}.sessions{{end}} LIMIT 1) AS a
) AS s
CROSS JOIN (
  SELECT COUNT(*) AS visitors
  FROM (SELECT 1 AS used FROM {{if .parts}}(
    {{- range $i := .parts}}{{if $i}}
    UNION ALL{{end}}
    SELECT * FROM {{$.scratch_schema}}.visitors{{if $i}}_part_{{$i}}{{end}}{{end}}
  ) AS parts{{else}}{{.scratch_schema}}.visitors{{end}} LIMIT 1) AS a
) AS v;

{{if eq .target_type "redshift"}}
DELETE FROM {{.derived_schema}}.sessions;
DELETE FROM {{.derived_schema}}.page_views;
DELETE FROM {{.derived_schema}}.visitors;
DELETE FROM {{.derived_schema}}.cookie_id_to_user_id_map;
{{else}}
TRUNCATE
  {{.derived_schema}}.sessions,
  {{.derived_schema}}.page_views,
  {{.derived_schema}}.visitors,
  {{.derived_schema}}.cookie_id_to_user_id_map;
DROP INDEX IF EXISTS {{.derived_schema}}.sessions_key_idx;
DROP INDEX IF EXISTS {{.derived_schema}}.page_views_key_idx;
DROP INDEX IF EXISTS {{.derived_schema}}.page_views_session_idx;
DROP INDEX IF EXISTS {{.derived_schema}}.visitors_key_idx;
DROP INDEX IF EXISTS {{.derived_schema}}.cookie_id_to_user_id_map_key_idx;
{{end}}

INSERT INTO {{.derived_schema}}.sessions (
  domain_userid,
  domain_sessionidx,
  domain_sessionid,
  app_id,
  blended_user_id,
  inferred_user_id,
  session_start_tstamp,
  session_end_tstamp,
  dvce_min_tstamp,
  dvce_max_tstamp,
  max_etl_tstamp,
  event_count,
  page_view_count,
  time_engaged_in_s,
  geo_country,
  geo_region,
  geo_city,
  geo_zipcode,
  geo_latitude,
  geo_longitude,
  geo_timezone,
  landing_page_host,
  landing_page_path,
  exit_page_host,
  exit_page_path,
  mkt_source,
  mkt_medium,
  mkt_term,
  mkt_content,
  mkt_campaign,
  refr_source,
  refr_medium,
  refr_term,
  refr_urlhost,
  refr_urlpath,
  br_family,
  br_name,
  br_version,
  br_lang,
  os_family,
  os_name,
  os_timezone,
  dvce_type,
  dvce_ismobile,
  dvce_screenwidth,
  dvce_screenheight,
  first_page_title,
  last_page_title,
  absolute_time_in_s,
  page_ping_count,
  is_engaged,
  default_channel_group{{template "session_option_columns" .}}
)
SELECT
  domain_userid,
  domain_sessionidx,
  domain_sessionid,
  app_id,
  blended_user_id,
  inferred_user_id,
  session_start_tstamp,
  session_end_tstamp,
  dvce_min_tstamp,
  dvce_max_tstamp,
  max_etl_tstamp,
  event_count,
  page_view_count,
  time_engaged_in_s,
  geo_country,
  geo_region,
  geo_city,
  geo_zipcode,
  geo_latitude,
  geo_longitude,
  geo_timezone,
  landing_page_host,
  landing_page_path,
  exit_page_host,
  exit_page_path,
  mkt_source,
  mkt_medium,
  mkt_term,
  mkt_content,
  mkt_campaign,
  refr_source,
  refr_medium,
  refr_term,
  refr_urlhost,
  refr_urlpath,
  br_family,
  br_name,
  br_version,
  br_lang,
  os_family,
  os_name,
  os_timezone,
  dvce_type,
  dvce_ismobile,
  dvce_screenwidth,
  dvce_screenheight,
  first_page_title,
  last_page_title,
  absolute_time_in_s,
  page_ping_count,
  is_engaged,
  default_channel_group{{template "session_option_columns" .}}
FROM {{if .parts}}(
  {{- range $i := .parts}}{{if $i}}
  UNION ALL{{end}}
  SELECT * FROM {{$.scratch_schema}}.sessions{{if $i}}_part_{{$i}}{{end}}{{end}}
) AS parts{{else}}{{.scratch_schema}}.sessions{{end}};

INSERT INTO {{.derived_schema}}.page_views (
  page_view_id,
  domain_userid,
  domain_sessionidx,
  page_view_in_session_index,
  blended_user_id,
  inferred_user_id,
  page_urlhost,
  page_urlpath,
  page_title,
  collector_tstamp,
  dvce_created_tstamp,
  dvce_max_tstamp,
  page_ping_count,
  event_count,
  time_engaged_in_s,
  domain_sessionid,
  app_id,
  absolute_time_in_s,
  horizontal_pixels_scrolled,
  vertical_pixels_scrolled,
  horizontal_percentage_scrolled,
  vertical_percentage_scrolled,
  doc_width,
  doc_height,
  br_viewwidth,
  br_viewheight,
  refr_urlhost,
  refr_urlpath,
  refr_medium,
  refr_source,
  refr_term,
  mkt_medium,
  mkt_source,
  mkt_term,
  mkt_content,
  mkt_campaign,
  geo_country,
  geo_region,
  geo_city,
  geo_zipcode,
  geo_latitude,
  geo_longitude,
  geo_timezone,
  br_family,
  br_name,
  br_version,
  br_lang,
  os_family,
  os_name,
  os_timezone,
  dvce_type,
  dvce_ismobile,
  dvce_screenwidth,
  dvce_screenheight,
  default_channel_group{{template "option_columns" .page_view_passthroughs}}
)
SELECT
  page_view_id,
  domain_userid,
  domain_sessionidx,
  page_view_in_session_index,
  blended_user_id,
  inferred_user_id,
  page_urlhost,
  page_urlpath,
  page_title,
  collector_tstamp,
  dvce_created_tstamp,
  dvce_max_tstamp,
  page_ping_count,
  event_count,
  time_engaged_in_s,
  domain_sessionid,
  app_id,
  absolute_time_in_s,
  horizontal_pixels_scrolled,
  vertical_pixels_scrolled,
  horizontal_percentage_scrolled,
  vertical_percentage_scrolled,
  doc_width,
  doc_height,
  br_viewwidth,
  br_viewheight,
  refr_urlhost,
  refr_urlpath,
  refr_medium,
  refr_source,
  refr_term,
  mkt_medium,
  mkt_source,
  mkt_term,
  mkt_content,
  mkt_campaign,
  geo_country,
  geo_region,
  geo_city,
  geo_zipcode,
  geo_latitude,
  geo_longitude,
  geo_timezone,
  br_family,
  br_name,
  br_version,
  br_lang,
  os_family,
  os_name,
  os_timezone,
  dvce_type,
  dvce_ismobile,
  dvce_screenwidth,
  dvce_screenheight,
  default_channel_group{{template "option_columns" .page_view_passthroughs}}
FROM {{if .parts}}(
  {{- range $i := .parts}}{{if $i}}
  UNION ALL{{end}}
  SELECT * FROM {{$.scratch_schema}}.page_views{{if $i}}_part_{{$i}}{{end}}{{end}}
) AS parts{{else}}{{.scratch_schema}}.page_views{{end}};

INSERT INTO {{.derived_schema}}.visitors (
  domain_userid,
  blended_user_id,
  inferred_user_id,
  first_touch_tstamp,
  last_touch_tstamp,
  dvce_min_tstamp,
  dvce_max_tstamp,
  max_etl_tstamp,
  event_count,
  page_view_count,
  time_engaged_in_s,
  session_count,
  landing_page_host,
  landing_page_path,
  mkt_source,
  mkt_medium,
  mkt_term,
  mkt_content,
  mkt_campaign,
  refr_source,
  refr_medium,
  refr_term,
  refr_urlhost,
  refr_urlpath,
  default_channel_group{{template "option_columns" .visitor_passthroughs}}
)
SELECT
  domain_userid,
  blended_user_id,
  inferred_user_id,
  first_touch_tstamp,
  last_touch_tstamp,
  dvce_min_tstamp,
  dvce_max_tstamp,
  max_etl_tstamp,
  event_count,
  page_view_count,
  time_engaged_in_s,
  session_count,
  landing_page_host,
  landing_page_path,
  mkt_source,
  mkt_medium,
  mkt_term,
  mkt_content,
  mkt_campaign,
  refr_source,
  refr_medium,
  refr_term,
  refr_urlhost,
  refr_urlpath,
  default_channel_group{{template "option_columns" .visitor_passthroughs}}
FROM {{if .parts}}(
  {{- range $i := .parts}}{{if $i}}
  UNION ALL{{end}}
  SELECT * FROM {{$.scratch_schema}}.visitors{{if $i}}_part_{{$i}}{{end}}{{end}}
) AS parts{{else}}{{.scratch_schema}}.visitors{{end}};

INSERT INTO {{.derived_schema}}.cookie_id_to_user_id_map (
  domain_userid,
  user_id,
  last_login_dvce_tstamp
)
SELECT
  domain_userid,
  user_id,
  last_login_dvce_tstamp
FROM {{if .parts}}(
  {{- range $i := .parts}}{{if $i}}
  UNION ALL{{end}}
  SELECT * FROM {{$.scratch_schema}}.cookie_id_to_user_id_map{{if $i}}_part_{{$i}}{{end}}{{end}}
) AS parts{{else}}{{.scratch_schema}}.cookie_id_to_user_id_map{{end}};
{{if ne .target_type "redshift"}}
CREATE UNIQUE INDEX IF NOT EXISTS sessions_key_idx
  ON {{.derived_schema}}.sessions (domain_userid, domain_sessionidx);
CREATE UNIQUE INDEX IF NOT EXISTS page_views_key_idx
  ON {{.derived_schema}}.page_views (page_view_id);
CREATE INDEX IF NOT EXISTS page_views_session_idx
  ON {{.derived_schema}}.page_views (domain_userid, domain_sessionidx);
CREATE UNIQUE INDEX IF NOT EXISTS visitors_key_idx
  ON {{.derived_schema}}.visitors (domain_userid);
CREATE UNIQUE INDEX IF NOT EXISTS cookie_id_to_user_id_map_key_idx
  ON {{.derived_schema}}.cookie_id_to_user_id_map (domain_userid);
{{end}}

-- statistics on the keys, which the incremental mode joins on
ANALYZE {{.derived_schema}}.sessions (domain_userid, domain_sessionidx);
ANALYZE {{.derived_schema}}.page_views (page_view_id, domain_userid, domain_sessionidx);
ANALYZE {{.derived_schema}}.visitors (domain_userid);
ANALYZE {{.derived_schema}}.cookie_id_to_user_id_map (domain_userid);

-- The options' columns (docs/model.md, "Options"), in the column lists above: each
-- passthrough's alias, and on sessions each conversion's four columns.
{{define "option_columns"}}{{range .}},
  {{.alias}}{{end}}{{end}}
{{define "session_option_columns"}}{{template "option_columns" .session_passthroughs}}
{{- range .conversions}},
  cv_{{.name}}_volume,
  cv_{{.name}}_value,
  cv_{{.name}}_converted,
  cv_{{.name}}_first_tstamp{{end}}{{end}}
