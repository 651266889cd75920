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

-- First a check that the work tables are this batch's. After a server crash PostgreSQL
-- empties unlogged tables (the work tables are), while the runner's checkpoints of the
-- steps that built them survive: a resumed run would reach this point with empty work
-- tables and move the batch unmodelled. If the batch has a usable event, the touched
-- cookies, events_this_run and visitors cannot be empty; if they are, this insert of a
-- NULL fails, naming what to do, and nothing is committed.
DROP TABLE IF EXISTS incremental_commit_check;
CREATE TEMPORARY TABLE incremental_commit_check (
  work_tables_lost_run_again_with_restart INT NOT NULL
);
INSERT INTO incremental_commit_check
SELECT CASE WHEN b.usable_events = 0 OR (t.cookies > 0 AND e.events > 0 AND v.visitors > 0)
  THEN 1 END
FROM (
  SELECT COUNT(*) AS usable_events
  FROM {{.landing_schema}}.events_in_progress
  WHERE domain_userid <> ''
    AND domain_sessionidx IS NOT NULL
    AND dvce_created_tstamp IS NOT NULL
    AND {{.scratch_schema}}.f_event_is_kept(app_id, collector_tstamp, dvce_created_tstamp,
      useragent)
) AS b
CROSS JOIN (SELECT COUNT(*) AS cookies FROM {{.scratch_schema}}.touched_cookies) AS t
CROSS JOIN (SELECT COUNT(*) AS events FROM {{.scratch_schema}}.events_this_run) AS e
CROSS JOIN (SELECT COUNT(*) AS visitors FROM {{.scratch_schema}}.visitors) AS v;

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
  dvce_screenheight,
  first_page_title,
  last_page_title,
  absolute_time_in_s,
  page_ping_count,
  is_engaged,
  default_channel_group
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
  default_channel_group
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
  default_channel_group
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
  default_channel_group
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
  refr_urlpath,
  default_channel_group
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
  default_channel_group
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
