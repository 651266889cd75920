-- Builds {{.scratch_schema}}.events_this_run: every used event of every touched cookie
-- ({{.scratch_schema}}.touched_cookies), from {{.atomic_schema}}.events and the batch
-- ({{.landing_schema}}.events_in_progress), one row per event_id. This is the documented
-- input of custom models (docs/incremental.md): it holds every session the run recomputes,
-- complete, so a model at session grain or finer, or at cookie grain, can be rebuilt from it.
--
-- Columns:
--   every column of {{.atomic_schema}}.events, in its order, with its type and collation
--   blended_user_id, inferred_user_id  identity stitching at the event (docs/model.md)
--   page_view_id                       the event_id of the page view a page_view or
--                                      page_ping event belongs to (NULL for other events
--                                      and for pings before the session's first page view)
-- and the model's own positions, which sql/model/03 to 07 build the derived tables from:
--   event_in_session_index, session_event_count, page_view_in_session_index, and on each
--   session's last event only (NULL on the others) session_start_tstamp,
--   session_end_tstamp, max_etl_tstamp, first_event_id, first_event_collector_tstamp,
--   first_event_dvce_created_tstamp
-- and, for each conversion of the options (docs/model.md, "Options"), cv_<name>_event_value:
-- the event's value when it meets the conversion's condition (0 for a NULL value), else NULL.
--
-- The used copy of an event_id is chosen among all of its usable copies, wherever they are:
-- those of touched cookies (their events in atomic, found through atomic's cookie index,
-- and the batch) and those of other cookies in atomic (found through its event_id index),
-- which can win the deduplication and take the event away. On PostgreSQL both lookups are
-- written as index probes, one per touched cookie and one per event_id (LATERAL, kept a
-- subquery by OFFSET 0), so that their plans do not depend on atomic's statistics
-- (docs/incremental.md, "Statistics"); with recompute: all, every cookie is read by a plain
-- scan. On PostgreSQL the copies are read narrow (the keys the ranking, the options and the
-- windows need, and each copy's ctid), and the wide row of each used copy is fetched by its
-- ctid at the end (in one statement, so the positions cannot change meanwhile). The windows are those of sql/full/01_events_this_run.sql, over whole cookies, so the
-- positions and the stitching are exactly a full rebuild's. Event order is
-- (dvce_created_tstamp, collector_tstamp, event_id), event_id byte-wise (COLLATE "C" on
-- PostgreSQL, where the columns keep the database's collation, as in atomic).

DROP TABLE IF EXISTS {{.scratch_schema}}.events_this_run;
{{if eq .target_type "redshift"}}
CREATE TABLE {{.scratch_schema}}.events_this_run
DISTSTYLE KEY
DISTKEY (domain_userid)
SORTKEY (domain_userid, domain_sessionidx)
AS
{{else}}
SET LOCAL work_mem = '{{.postgres_work_mem}}';
-- no JIT: the row estimates of a batch are rough, and compiling costs more than it saves
SET LOCAL jit = off;
CREATE UNLOGGED TABLE {{.scratch_schema}}.events_this_run AS
{{end}}
WITH cookie_copies AS (
  -- the usable copies in atomic held by touched cookies (atomic's cookie index)
{{if eq .target_type "redshift"}}
  SELECT a.*, 0 AS from_batch
  FROM {{.atomic_schema}}.events AS a
  WHERE a.domain_userid IN (SELECT domain_userid FROM {{.scratch_schema}}.touched_cookies)
    AND a.domain_sessionidx IS NOT NULL
    AND a.dvce_created_tstamp IS NOT NULL
{{else if eq .recompute "all"}}
  -- every cookie: a plain scan
  SELECT {{template "copy_keys" "a."}}, a.ctid AS copy_ctid, 0 AS from_batch
  FROM {{.atomic_schema}}.events AS a
  WHERE a.domain_userid IN (SELECT domain_userid FROM {{.scratch_schema}}.touched_cookies)
    AND a.domain_sessionidx IS NOT NULL
    AND a.dvce_created_tstamp IS NOT NULL
{{else}}
  SELECT a.*, 0 AS from_batch
  FROM {{.scratch_schema}}.touched_cookies AS t
  CROSS JOIN LATERAL (
    SELECT {{template "copy_keys" "e."}}, e.ctid AS copy_ctid
    FROM {{.atomic_schema}}.events AS e
    WHERE e.domain_userid = t.domain_userid
      AND e.domain_sessionidx IS NOT NULL
      AND e.dvce_created_tstamp IS NOT NULL
    OFFSET 0
  ) AS a
{{end}}
),

{{if ne .recompute "all"}}
rival_copies AS (
  -- the usable copies in atomic of the same event_ids held by cookies that are not touched
  -- (atomic's event_id index): they can win the deduplication. The batch's event_ids have
  -- none (every cookie holding a usable copy of one is touched), so only the events of
  -- atomic are looked up. With recompute: all every cookie is touched, and there are none.
{{if eq .target_type "redshift"}}
  SELECT a.*, 0 AS from_batch
  FROM {{.atomic_schema}}.events AS a
  WHERE a.event_id IN (SELECT event_id FROM cookie_copies)
    AND a.domain_userid NOT IN (SELECT domain_userid FROM {{.scratch_schema}}.touched_cookies)
    AND a.domain_userid <> ''
    AND a.domain_sessionidx IS NOT NULL
    AND a.dvce_created_tstamp IS NOT NULL
{{else}}
  SELECT a.*, 0 AS from_batch
  FROM (SELECT DISTINCT event_id FROM cookie_copies) AS c
  CROSS JOIN LATERAL (
    SELECT {{template "copy_keys" "e."}}, e.ctid AS copy_ctid
    FROM {{.atomic_schema}}.events AS e
    WHERE e.event_id = c.event_id
      AND e.domain_userid <> ''
      AND e.domain_sessionidx IS NOT NULL
      AND e.dvce_created_tstamp IS NOT NULL
    OFFSET 0
  ) AS a
  WHERE a.domain_userid NOT IN (SELECT domain_userid FROM {{.scratch_schema}}.touched_cookies)
{{end}}
),
{{end}}

ranked_copies AS (
  -- each copy ranked among the usable copies of its event_id, first collected first; the
  -- first is used, and kept when a touched cookie holds it. One boolean, which
  -- PostgreSQL's planner estimates to hold for half the rows: the rank and the flag tested
  -- one by one are estimated to leave a row or two, and the join at the end of this query
  -- would be planned as a loop over the windows (minutes, not milliseconds)
  SELECT
    *,
    CASE WHEN ROW_NUMBER() OVER (
        PARTITION BY event_id
        ORDER BY collector_tstamp, etl_tstamp NULLS LAST, dvce_created_tstamp,
          dvce_sent_tstamp NULLS LAST
      ) = 1 AND is_rival = 0
      THEN TRUE ELSE FALSE END AS is_used
  FROM (
    SELECT *, 0 AS is_rival FROM cookie_copies
    UNION ALL
    -- the batch's usable copies, all held by touched cookies
{{if eq .target_type "redshift"}}
    SELECT *, 1 AS from_batch, 0 AS is_rival
{{else}}
    SELECT {{template "copy_keys" ""}}, ctid AS copy_ctid, 1 AS from_batch, 0 AS is_rival
{{end}}
    FROM {{.landing_schema}}.events_in_progress
    WHERE domain_userid IS NOT NULL
      AND domain_userid <> ''
      AND domain_sessionidx IS NOT NULL
      AND dvce_created_tstamp IS NOT NULL
{{if ne .recompute "all"}}
    UNION ALL
    SELECT *, 1 AS is_rival FROM rival_copies
{{end}}
  ) AS copies
  -- the model's options (sql/setup/06_event_filter.sql): a copy that fails them is ignored
  WHERE {{.scratch_schema}}.f_event_is_kept(app_id, collector_tstamp, dvce_created_tstamp,
    useragent)
),

used_events AS (
  -- the used copy of each event_id, when a touched cookie holds it. On PostgreSQL its keys
  -- and position (ctid) only: the wide row is fetched at the end, for used copies alone, so
  -- no sort carries whole rows. On Redshift every column, with the value of each of the
  -- options' conversions when it converts (else NULL)
  SELECT
    *{{if eq .target_type "redshift"}}{{template "conversion_values" .}}{{end}}
  FROM ranked_copies
  WHERE is_used
),

event_keys AS (
  -- the columns the windows read (narrow rows sort and window faster), with the event_id
  -- to order by (byte-wise)
  SELECT
    domain_userid,
    domain_sessionidx,
    event_id,
{{if eq .target_type "redshift"}}
    event_id AS event_order_id,
{{else}}
    event_id COLLATE "C" AS event_order_id,
{{end}}
    event,
    user_id,
    collector_tstamp,
    dvce_created_tstamp,
    etl_tstamp{{if ne .target_type "redshift"}},
    copy_ctid,
    from_batch{{end}}
  FROM used_events
),

{{if .max_session_days}}
capped_keys AS (
  -- max_session_days: the events created at most {{.max_session_days}} days after the first
  -- event of their session (as sql/full/01_events_this_run.sql; the join at the end drops
  -- the others)
  SELECT *
  FROM (
    SELECT
      *,
      MIN(dvce_created_tstamp) OVER (
        PARTITION BY domain_userid, domain_sessionidx
        ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
      ) AS session_first_dvce_created_tstamp
    FROM event_keys
  ) AS e
  WHERE dvce_created_tstamp
    <= session_first_dvce_created_tstamp + INTERVAL '{{.max_session_days}} days'
),
{{end}}

events_in_cookie_order AS (
  -- each event's position among all of its cookie's events
  SELECT
    *,
    COUNT(*) OVER (
      PARTITION BY domain_userid
      ORDER BY dvce_created_tstamp, collector_tstamp, event_order_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS event_in_cookie_index
  FROM {{if .max_session_days}}capped_keys{{else}}event_keys{{end}}
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

{{if eq .target_type "redshift"}}
SELECT
{{template "output_columns" .}}
FROM used_events AS u
INNER JOIN events_in_session_order AS p
  ON p.event_id = u.event_id;
{{else}}
-- the wide row of each used copy, fetched by its position (ctid): from atomic, and from the
-- batch
SELECT
{{template "output_columns" .}}
FROM events_in_session_order AS p
CROSS JOIN LATERAL (
  SELECT *{{template "conversion_values" .}}
  FROM {{.atomic_schema}}.events AS e
  WHERE e.ctid = p.copy_ctid
  OFFSET 0
) AS u
WHERE p.from_batch = 0
UNION ALL
SELECT
{{template "output_columns" .}}
FROM events_in_session_order AS p
CROSS JOIN LATERAL (
  SELECT *{{template "conversion_values" .}}
  FROM {{.landing_schema}}.events_in_progress AS e
  WHERE e.ctid = p.copy_ctid
  OFFSET 0
) AS u
WHERE p.from_batch = 1;
{{end}}

{{if ne .target_type "redshift"}}
-- (Redshift analyses a table as it is built by CREATE TABLE AS)
ANALYZE {{.scratch_schema}}.events_this_run (domain_userid, domain_sessionidx, event_id, event,
  user_id, event_in_session_index, session_event_count, page_view_in_session_index);
{{end}}

-- The columns the copies are ranked, filtered and windowed by (PostgreSQL reads these
-- before it fetches the wide rows of the used copies), each prefixed by the argument.
{{define "copy_keys"}}{{.}}event_id, {{.}}domain_userid, {{.}}domain_sessionidx, {{.}}event,
      {{.}}user_id, {{.}}app_id, {{.}}useragent, {{.}}collector_tstamp,
      {{.}}dvce_created_tstamp, {{.}}dvce_sent_tstamp, {{.}}etl_tstamp{{end}}
-- Each conversion's value on an event that meets its condition (else NULL).
{{define "conversion_values"}}{{range .conversions}},
    CASE WHEN ({{.condition}}) THEN COALESCE(CAST(({{.value}}) AS DECIMAL(38, 6)), 0) END
      AS cv_{{.name}}_event_value{{end}}{{end}}
-- The table's columns: every column of the event (u), then the model's (p).
{{define "output_columns"}}  u.app_id,
  u.platform,
  u.etl_tstamp,
  u.collector_tstamp,
  u.dvce_created_tstamp,
  u.event,
  u.event_id,
  u.txn_id,
  u.name_tracker,
  u.v_tracker,
  u.v_collector,
  u.v_etl,
  u.user_id,
  u.user_ipaddress,
  u.user_fingerprint,
  u.domain_userid,
  u.domain_sessionidx,
  u.network_userid,
  u.geo_country,
  u.geo_region,
  u.geo_city,
  u.geo_zipcode,
  u.geo_latitude,
  u.geo_longitude,
  u.geo_region_name,
  u.ip_isp,
  u.ip_organization,
  u.ip_domain,
  u.ip_netspeed,
  u.page_url,
  u.page_title,
  u.page_referrer,
  u.page_urlscheme,
  u.page_urlhost,
  u.page_urlport,
  u.page_urlpath,
  u.page_urlquery,
  u.page_urlfragment,
  u.refr_urlscheme,
  u.refr_urlhost,
  u.refr_urlport,
  u.refr_urlpath,
  u.refr_urlquery,
  u.refr_urlfragment,
  u.refr_medium,
  u.refr_source,
  u.refr_term,
  u.mkt_medium,
  u.mkt_source,
  u.mkt_term,
  u.mkt_content,
  u.mkt_campaign,
  u.se_category,
  u.se_action,
  u.se_label,
  u.se_property,
  u.se_value,
  u.tr_orderid,
  u.tr_affiliation,
  u.tr_total,
  u.tr_tax,
  u.tr_shipping,
  u.tr_city,
  u.tr_state,
  u.tr_country,
  u.ti_orderid,
  u.ti_sku,
  u.ti_name,
  u.ti_category,
  u.ti_price,
  u.ti_quantity,
  u.pp_xoffset_min,
  u.pp_xoffset_max,
  u.pp_yoffset_min,
  u.pp_yoffset_max,
  u.useragent,
  u.br_name,
  u.br_family,
  u.br_version,
  u.br_type,
  u.br_renderengine,
  u.br_lang,
  u.br_features_pdf,
  u.br_features_flash,
  u.br_features_java,
  u.br_features_director,
  u.br_features_quicktime,
  u.br_features_realplayer,
  u.br_features_windowsmedia,
  u.br_features_gears,
  u.br_features_silverlight,
  u.br_cookies,
  u.br_colordepth,
  u.br_viewwidth,
  u.br_viewheight,
  u.os_name,
  u.os_family,
  u.os_manufacturer,
  u.os_timezone,
  u.dvce_type,
  u.dvce_ismobile,
  u.dvce_screenwidth,
  u.dvce_screenheight,
  u.doc_charset,
  u.doc_width,
  u.doc_height,
  u.tr_currency,
  u.tr_total_base,
  u.tr_tax_base,
  u.tr_shipping_base,
  u.ti_currency,
  u.ti_price_base,
  u.base_currency,
  u.geo_timezone,
  u.mkt_clickid,
  u.mkt_network,
  u.etl_tags,
  u.dvce_sent_tstamp,
  u.refr_domain_userid,
  u.refr_dvce_tstamp,
  u.domain_sessionid,
  u.derived_tstamp,
  u.event_vendor,
  u.event_name,
  u.event_format,
  u.event_version,
  u.event_fingerprint,
  u.true_tstamp,
  -- identity stitching, and the page view the event belongs to
  COALESCE(p.inferred_user_id, p.domain_userid) AS blended_user_id,
  p.inferred_user_id,
  CASE WHEN p.event IN ('page_view', 'page_ping') AND p.page_view_in_session_index > 0
    THEN CAST(SUBSTRING(p.last_page_view FROM 11) AS CHAR(36)) END AS page_view_id,
  -- the model's positions
  p.event_in_session_index,
  p.session_event_count,
  p.page_view_in_session_index,
  -- the session's, on its last event
  CASE WHEN p.event_in_session_index = p.session_event_count
    THEN p.session_start_tstamp END AS session_start_tstamp,
  CASE WHEN p.event_in_session_index = p.session_event_count
    THEN p.session_end_tstamp END AS session_end_tstamp,
  CASE WHEN p.event_in_session_index = p.session_event_count
    THEN p.max_etl_tstamp END AS max_etl_tstamp,
  CASE WHEN p.event_in_session_index = p.session_event_count
    THEN p.first_event_id END AS first_event_id,
  CASE WHEN p.event_in_session_index = p.session_event_count
    THEN p.first_event_collector_tstamp END AS first_event_collector_tstamp,
  CASE WHEN p.event_in_session_index = p.session_event_count
    THEN p.first_event_dvce_created_tstamp END AS first_event_dvce_created_tstamp
  {{- range .conversions}},
  u.cv_{{.name}}_event_value{{end}}{{end}}
