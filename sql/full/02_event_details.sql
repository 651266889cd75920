-- Builds {{.scratch_schema}}.event_details from {{.atomic_schema}}.events and
-- {{.scratch_schema}}.events_this_run: the other columns of the used events that the
-- derived tables read them from (the first and last events of each session, and every
-- page_view event), one row per event_id. An event's used copy is found again in atomic
-- by the same rule that chose it (the first collected of its usable copies); copies that
-- tie on that rule carry the same payload.

DROP TABLE IF EXISTS {{.scratch_schema}}.event_details;
{{if eq .target_type "redshift"}}
CREATE TABLE {{.scratch_schema}}.event_details
DISTSTYLE KEY
DISTKEY (event_id)
SORTKEY (event_id)
AS
{{else}}
SET LOCAL work_mem = '{{.postgres_work_mem}}';
CREATE UNLOGGED TABLE {{.scratch_schema}}.event_details AS
{{end}}
WITH detailed_events AS (
  -- the events whose other columns the derived tables read
  SELECT event_id
  FROM {{.scratch_schema}}.events_this_run
  WHERE event_in_session_index = 1
    OR event_in_session_index = session_event_count
    OR event = 'page_view'
),

ranked_copies AS (
  -- every usable copy of those events, ranked as the events step ranked them
  SELECT
    d.event_id,
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
    ROW_NUMBER() OVER (
      PARTITION BY d.event_id
      ORDER BY a.collector_tstamp, a.etl_tstamp NULLS LAST, a.dvce_created_tstamp,
        a.dvce_sent_tstamp NULLS LAST
    ) AS copy_rank
  FROM {{.atomic_schema}}.events AS a
  INNER JOIN detailed_events AS d
    ON d.event_id = a.event_id
  WHERE a.domain_userid IS NOT NULL
    AND a.domain_userid <> ''
    AND a.domain_sessionidx IS NOT NULL
    AND a.dvce_created_tstamp IS NOT NULL
)

SELECT
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
  dvce_screenheight
FROM ranked_copies
WHERE copy_rank = 1;

{{if eq .target_type "redshift"}}
ANALYZE {{.scratch_schema}}.event_details PREDICATE COLUMNS;
{{else}}
ANALYZE {{.scratch_schema}}.event_details (event_id);
{{end}}
