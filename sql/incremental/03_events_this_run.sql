-- Builds {{.scratch_schema}}.events_this_run: every used event of every touched cookie
-- ({{.scratch_schema}}.touched_cookies), from {{.atomic_schema}}.events and the batch
-- ({{.landing_schema}}.events_in_progress), one row per event_id. This is the documented
-- input of custom models (docs/incremental.md): it holds every session the run recomputes,
-- complete, so a model at session grain or finer, or at cookie grain, can be rebuilt from it.
--
-- Columns:
--   every column of {{.atomic_schema}}.events, in its order, with its type and collation
--   blended_user_id, inferred_user_id  identity stitching at the event (MODEL.md)
--   page_view_id                       the event_id of the page view a page_view or
--                                      page_ping event belongs to (NULL for other events
--                                      and for pings before the session's first page view)
-- and the model's own positions, which sql/full/03 to 07 build the derived tables from:
--   event_in_session_index, session_event_count, page_view_in_session_index, and on each
--   session's last event only (NULL on the others) session_start_tstamp,
--   session_end_tstamp, max_etl_tstamp, first_event_id, first_event_collector_tstamp,
--   first_event_dvce_created_tstamp.
--
-- The used copy of an event_id is chosen among all of its usable copies, wherever they are:
-- those of touched cookies (their events in atomic, found through atomic's cookie index,
-- and the batch) and those of other cookies in atomic (found through its event_id index),
-- which can win the deduplication and take the event away. The windows are those of
-- sql/full/01_events_this_run.sql, over whole cookies, so the positions and the stitching
-- are exactly a full rebuild's. Event order is (dvce_created_tstamp, collector_tstamp,
-- event_id), event_id byte-wise (COLLATE "C" on PostgreSQL, where the columns keep the
-- database's collation, as in atomic).

DROP TABLE IF EXISTS {{.scratch_schema}}.events_this_run;
{{if eq .target_type "redshift"}}
CREATE TABLE {{.scratch_schema}}.events_this_run
DISTSTYLE KEY
DISTKEY (domain_userid)
SORTKEY (domain_userid, domain_sessionidx)
AS
{{else}}
SET LOCAL work_mem = '{{.postgres_work_mem}}';
CREATE UNLOGGED TABLE {{.scratch_schema}}.events_this_run AS
{{end}}
WITH touched_copies AS (
  -- every usable copy held by a touched cookie: its events in atomic, and the batch's
  -- usable copies (all of which belong to touched cookies)
  SELECT a.*, 0 AS is_rival
  FROM {{.atomic_schema}}.events AS a
  WHERE a.domain_userid IN (SELECT domain_userid FROM {{.scratch_schema}}.touched_cookies)
    AND a.domain_sessionidx IS NOT NULL
    AND a.dvce_created_tstamp IS NOT NULL
  UNION ALL
  SELECT b.*, 0 AS is_rival
  FROM {{.landing_schema}}.events_in_progress AS b
  WHERE b.domain_userid IS NOT NULL
    AND b.domain_userid <> ''
    AND b.domain_sessionidx IS NOT NULL
    AND b.dvce_created_tstamp IS NOT NULL
),

rival_copies AS (
  -- the usable copies in atomic of the same event_ids held by cookies that are not touched
  SELECT a.*, 1 AS is_rival
  FROM {{.atomic_schema}}.events AS a
  WHERE a.event_id IN (SELECT event_id FROM touched_copies)
    AND a.domain_userid NOT IN (SELECT domain_userid FROM {{.scratch_schema}}.touched_cookies)
    AND a.domain_userid <> ''
    AND a.domain_sessionidx IS NOT NULL
    AND a.dvce_created_tstamp IS NOT NULL
),

ranked_copies AS (
  -- each copy ranked among the usable copies of its event_id, first collected first
  SELECT
    *,
    ROW_NUMBER() OVER (
      PARTITION BY event_id
      ORDER BY collector_tstamp, etl_tstamp NULLS LAST, dvce_created_tstamp,
        dvce_sent_tstamp NULLS LAST
    ) AS copy_rank
  FROM (
    SELECT * FROM touched_copies
    UNION ALL
    SELECT * FROM rival_copies
  ) AS copies
),

used_events AS (
  -- the used copy of each event_id, when a touched cookie holds it, with the event_id to
  -- order by (byte-wise)
  SELECT
    *,
{{if eq .target_type "redshift"}}
    event_id AS event_order_id
{{else}}
    event_id COLLATE "C" AS event_order_id
{{end}}
  FROM ranked_copies
  WHERE copy_rank = 1
    AND is_rival = 0
),

events_in_cookie_order AS (
  -- each event's position among all of its cookie's events
  SELECT
    *,
    COUNT(*) OVER (
      PARTITION BY domain_userid
      ORDER BY dvce_created_tstamp, collector_tstamp, event_order_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS event_in_cookie_index
  FROM used_events
),

stitched_events AS (
  -- the user_id of the cookie's last login event at or before each event: the running
  -- maximum of the login events' positions, each with its user_id appended
  SELECT
    *,
    SUBSTRING(
      MAX(CASE WHEN user_id <> ''
          THEN LPAD(CAST(event_in_cookie_index AS VARCHAR(10)), 10, '0') || user_id END)
      OVER (
        PARTITION BY domain_userid
        ORDER BY dvce_created_tstamp, collector_tstamp, event_order_id
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
      )
      FROM 11
    ) AS inferred_user_id
  FROM events_in_cookie_order
),

events_in_session_order AS (
  -- each event's position in its session, the page views so far and the last of them, and
  -- the session's size, times and first event
  SELECT
    *,
    COUNT(*) OVER (
      PARTITION BY domain_userid, domain_sessionidx
      ORDER BY dvce_created_tstamp, collector_tstamp, event_order_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS event_in_session_index,
    SUM(CASE WHEN event = 'page_view' THEN 1 ELSE 0 END) OVER (
      PARTITION BY domain_userid, domain_sessionidx
      ORDER BY dvce_created_tstamp, collector_tstamp, event_order_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS page_view_in_session_index,
    MAX(CASE WHEN event = 'page_view'
        THEN LPAD(CAST(event_in_cookie_index AS VARCHAR(10)), 10, '0') || event_id END)
    OVER (
      PARTITION BY domain_userid, domain_sessionidx
      ORDER BY dvce_created_tstamp, collector_tstamp, event_order_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS last_page_view,
    COUNT(*) OVER (
      PARTITION BY domain_userid, domain_sessionidx
      ORDER BY dvce_created_tstamp, collector_tstamp, event_order_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
    ) AS session_event_count,
    MIN(collector_tstamp) OVER (
      PARTITION BY domain_userid, domain_sessionidx
      ORDER BY dvce_created_tstamp, collector_tstamp, event_order_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
    ) AS session_start_tstamp,
    MAX(collector_tstamp) OVER (
      PARTITION BY domain_userid, domain_sessionidx
      ORDER BY dvce_created_tstamp, collector_tstamp, event_order_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
    ) AS session_end_tstamp,
    MAX(etl_tstamp) OVER (
      PARTITION BY domain_userid, domain_sessionidx
      ORDER BY dvce_created_tstamp, collector_tstamp, event_order_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
    ) AS max_etl_tstamp,
    FIRST_VALUE(event_id) OVER (
      PARTITION BY domain_userid, domain_sessionidx
      ORDER BY dvce_created_tstamp, collector_tstamp, event_order_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
    ) AS first_event_id,
    FIRST_VALUE(collector_tstamp) OVER (
      PARTITION BY domain_userid, domain_sessionidx
      ORDER BY dvce_created_tstamp, collector_tstamp, event_order_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
    ) AS first_event_collector_tstamp,
    FIRST_VALUE(dvce_created_tstamp) OVER (
      PARTITION BY domain_userid, domain_sessionidx
      ORDER BY dvce_created_tstamp, collector_tstamp, event_order_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
    ) AS first_event_dvce_created_tstamp
  FROM stitched_events
)

SELECT
  app_id,
  platform,
  etl_tstamp,
  collector_tstamp,
  dvce_created_tstamp,
  event,
  event_id,
  txn_id,
  name_tracker,
  v_tracker,
  v_collector,
  v_etl,
  user_id,
  user_ipaddress,
  user_fingerprint,
  domain_userid,
  domain_sessionidx,
  network_userid,
  geo_country,
  geo_region,
  geo_city,
  geo_zipcode,
  geo_latitude,
  geo_longitude,
  geo_region_name,
  ip_isp,
  ip_organization,
  ip_domain,
  ip_netspeed,
  page_url,
  page_title,
  page_referrer,
  page_urlscheme,
  page_urlhost,
  page_urlport,
  page_urlpath,
  page_urlquery,
  page_urlfragment,
  refr_urlscheme,
  refr_urlhost,
  refr_urlport,
  refr_urlpath,
  refr_urlquery,
  refr_urlfragment,
  refr_medium,
  refr_source,
  refr_term,
  mkt_medium,
  mkt_source,
  mkt_term,
  mkt_content,
  mkt_campaign,
  se_category,
  se_action,
  se_label,
  se_property,
  se_value,
  tr_orderid,
  tr_affiliation,
  tr_total,
  tr_tax,
  tr_shipping,
  tr_city,
  tr_state,
  tr_country,
  ti_orderid,
  ti_sku,
  ti_name,
  ti_category,
  ti_price,
  ti_quantity,
  pp_xoffset_min,
  pp_xoffset_max,
  pp_yoffset_min,
  pp_yoffset_max,
  useragent,
  br_name,
  br_family,
  br_version,
  br_type,
  br_renderengine,
  br_lang,
  br_features_pdf,
  br_features_flash,
  br_features_java,
  br_features_director,
  br_features_quicktime,
  br_features_realplayer,
  br_features_windowsmedia,
  br_features_gears,
  br_features_silverlight,
  br_cookies,
  br_colordepth,
  br_viewwidth,
  br_viewheight,
  os_name,
  os_family,
  os_manufacturer,
  os_timezone,
  dvce_type,
  dvce_ismobile,
  dvce_screenwidth,
  dvce_screenheight,
  doc_charset,
  doc_width,
  doc_height,
  tr_currency,
  tr_total_base,
  tr_tax_base,
  tr_shipping_base,
  ti_currency,
  ti_price_base,
  base_currency,
  geo_timezone,
  mkt_clickid,
  mkt_network,
  etl_tags,
  dvce_sent_tstamp,
  refr_domain_userid,
  refr_dvce_tstamp,
  domain_sessionid,
  derived_tstamp,
  event_vendor,
  event_name,
  event_format,
  event_version,
  event_fingerprint,
  true_tstamp,
  -- identity stitching, and the page view an event belongs to
  COALESCE(inferred_user_id, domain_userid) AS blended_user_id,
  inferred_user_id,
  CASE WHEN event IN ('page_view', 'page_ping') AND page_view_in_session_index > 0
    THEN CAST(SUBSTRING(last_page_view FROM 11) AS CHAR(36)) END AS page_view_id,
  -- the model's positions
  event_in_session_index,
  session_event_count,
  page_view_in_session_index,
  -- the session's, on its last event
  CASE WHEN event_in_session_index = session_event_count
    THEN session_start_tstamp END AS session_start_tstamp,
  CASE WHEN event_in_session_index = session_event_count
    THEN session_end_tstamp END AS session_end_tstamp,
  CASE WHEN event_in_session_index = session_event_count
    THEN max_etl_tstamp END AS max_etl_tstamp,
  CASE WHEN event_in_session_index = session_event_count
    THEN first_event_id END AS first_event_id,
  CASE WHEN event_in_session_index = session_event_count
    THEN first_event_collector_tstamp END AS first_event_collector_tstamp,
  CASE WHEN event_in_session_index = session_event_count
    THEN first_event_dvce_created_tstamp END AS first_event_dvce_created_tstamp
FROM events_in_session_order;

{{if eq .target_type "redshift"}}
ANALYZE {{.scratch_schema}}.events_this_run PREDICATE COLUMNS;
{{else}}
ANALYZE {{.scratch_schema}}.events_this_run (domain_userid, domain_sessionidx, event_id, event,
  user_id, event_in_session_index, session_event_count, page_view_in_session_index);
{{end}}
