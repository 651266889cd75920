-- Commits the run, in one transaction: readers see the derived tables and atomic before
-- the batch or after it, never in between, and a run that dies before this point has
-- changed neither (its batch stays claimed in {{.landing_schema}}.events_in_progress).
--   1. the rows of every touched cookie ({{.scratch_schema}}.touched_cookies) in the four
--      derived tables are replaced by this run's: deleted, then inserted from the scratch
--      tables, which hold every session, page view, visitor and cookie map row of those
--      cookies and of no other. A row whose events all moved elsewhere is deleted and not
--      inserted again; a page view that moved to another cookie moves with it (both
--      cookies are touched).
--   2. the batch is recorded in {{.derived_schema}}.etl_tstamps (one row per etl_tstamp,
--      with its event count, this run's id and start time), inserted into
--      {{.atomic_schema}}.events and deleted from {{.landing_schema}}.events_in_progress
--      (PostgreSQL: TRUNCATE, transactional there, so no dead rows stay behind; Redshift:
--      DELETE, because its TRUNCATE commits on its own).
-- Loads into {{.landing_schema}}.events go on meanwhile: this file does not touch it.

{{if ne .target_type "redshift"}}
-- the deletes below find a batch's rows through the derived tables' key indexes, which
-- stay cached; at the default random_page_cost PostgreSQL would read whole tables instead
SET LOCAL random_page_cost = 1.1;
SET LOCAL jit = off;
{{end}}

DELETE FROM {{.derived_schema}}.sessions
WHERE domain_userid IN (SELECT domain_userid FROM {{.scratch_schema}}.touched_cookies);

DELETE FROM {{.derived_schema}}.page_views
WHERE domain_userid IN (SELECT domain_userid FROM {{.scratch_schema}}.touched_cookies);

DELETE FROM {{.derived_schema}}.visitors
WHERE domain_userid IN (SELECT domain_userid FROM {{.scratch_schema}}.touched_cookies);

DELETE FROM {{.derived_schema}}.cookie_id_to_user_id_map
WHERE domain_userid IN (SELECT domain_userid FROM {{.scratch_schema}}.touched_cookies);

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
  dvce_screenheight
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
  dvce_screenheight
FROM {{.scratch_schema}}.sessions;

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
  time_engaged_in_s
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
  time_engaged_in_s
FROM {{.scratch_schema}}.page_views;

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
  refr_urlpath
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
  refr_urlpath
FROM {{.scratch_schema}}.visitors;

INSERT INTO {{.derived_schema}}.cookie_id_to_user_id_map (
  domain_userid,
  user_id,
  last_login_dvce_tstamp
)
SELECT
  domain_userid,
  user_id,
  last_login_dvce_tstamp
FROM {{.scratch_schema}}.cookie_id_to_user_id_map;

INSERT INTO {{.derived_schema}}.etl_tstamps (
  etl_tstamp,
  event_count,
  run_id,
  processed_at
)
SELECT
  etl_tstamp,
  COUNT(*),
  '{{.run_id}}',
  CAST('{{.run_tstamp}}' AS TIMESTAMP)
FROM {{.landing_schema}}.events_in_progress
GROUP BY etl_tstamp;

INSERT INTO {{.atomic_schema}}.events
SELECT * FROM {{.landing_schema}}.events_in_progress;

{{if eq .target_type "redshift"}}
DELETE FROM {{.landing_schema}}.events_in_progress;
{{else}}
TRUNCATE {{.landing_schema}}.events_in_progress;
{{end}}
