-- Builds {{.scratch_schema}}.event_details from {{.scratch_schema}}.events_this_run, which
-- holds every column of the used events: the columns the derived tables read from the
-- first and last events of each session and from every page_view event, one row per
-- event_id, as sql/full/02_event_details.sql builds it in the full mode (where
-- events_this_run holds keys only and these columns are fetched from atomic). The options'
-- passthroughs are evaluated here too, as numbered columns (page_view_passthrough_0, ...).

DROP TABLE IF EXISTS {{.scratch_schema}}.event_details;
{{if eq .target_type "redshift"}}
CREATE TABLE {{.scratch_schema}}.event_details
DISTSTYLE KEY
DISTKEY (domain_userid)
SORTKEY (domain_userid, event_id)
AS
{{else}}
SET LOCAL work_mem = '{{.postgres_work_mem}}';
-- no JIT: the row estimates of a batch are rough, and compiling costs more than it saves
SET LOCAL jit = off;
CREATE UNLOGGED TABLE {{.scratch_schema}}.event_details AS
{{end}}
SELECT
  domain_userid,
  event_id,
  domain_sessionid,
  app_id,
  geo_country,
  geo_region,
  geo_city,
  geo_zipcode,
  geo_latitude,
  geo_longitude,
  geo_timezone,
  page_urlhost,
  page_urlpath,
  page_title,
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
  doc_width,
  doc_height,
  br_viewwidth,
  br_viewheight{{range $i, $p := .page_view_passthroughs}},
  CAST(({{$p.sql}}) AS {{$p.type}}) AS page_view_passthrough_{{$i}}{{end}}
{{- range $i, $p := .session_passthroughs}},
  CAST(({{$p.sql}}) AS {{$p.type}}) AS session_passthrough_{{$i}}{{end}}
{{- range $i, $p := .visitor_passthroughs}},
  CAST(({{$p.sql}}) AS {{$p.type}}) AS visitor_passthrough_{{$i}}{{end}}
FROM {{.scratch_schema}}.events_this_run
WHERE event_in_session_index = 1
  OR event_in_session_index = session_event_count
  OR event = 'page_view';

{{if ne .target_type "redshift"}}
-- (Redshift analyses a table as it is built by CREATE TABLE AS)
ANALYZE {{.scratch_schema}}.event_details (domain_userid, event_id);
{{end}}
