-- Builds {{.scratch_schema}}.events_this_run from all of {{.atomic_schema}}.events: one row
-- per used event (usable, and the first collected of the copies of its event_id), holding
-- its keys and timestamps and the positions the derived tables are built from:
--   inferred_user_id, blended_user_id  identity stitching at the event
--   event_in_session_index             1, 2, ... in event order within the session
--   page_view_in_session_index         page views so far in the session, this one included
--                                      (0 before the first): a page_view or page_ping
--                                      with n > 0 belongs to the session's n-th page view
-- and, on the last event of each session only (NULL on the others), the session's
--   session_event_count (its used events: event_in_session_index = session_event_count
--   holds on the last event only, as in the incremental mode's events_this_run, which
--   has the count on every event), session_start_tstamp, session_end_tstamp,
--   max_etl_tstamp, first_event_id, first_event_collector_tstamp,
--   first_event_dvce_created_tstamp
-- and, for each conversion of the options, cv_<name>_event_value: the event's value when it
-- meets the conversion's condition (0 for a NULL value), else NULL.
-- Event order is (dvce_created_tstamp, collector_tstamp, event_id), event_id byte-wise.
-- The other columns of an event are read from atomic by the event details step.
--
-- Deduplication looks only at the event_ids that have more than one copy in atomic (a few
-- percent): {{.scratch_schema}}.duplicate_events holds the used copy of each, with every
-- column the model reads, and every other usable event is used as it is. So the big read
-- of atomic stops at domain_sessionidx (column 17), and nothing is sorted by event_id.
--
-- With the per-query variables part and parts (PostgreSQL: playbooks/full.yml lists this
-- file twice in one step, {part: 0, parts: 2} and {part: 1, parts: 2}, run in parallel on
-- two cores) each entry writes the events of the cookies whose hashtext(domain_userid)
-- falls in its part: part 0 into the usual tables, the others into tables of their own
-- (suffix _part_N), from which the later steps build each part's tables in turn, and the
-- commit (08_commit.sql) takes every part's rows (docs/model.md). A cookie's events
-- are all in one part, so its windows are whole; the copies of an event_id can be under
-- cookies of both parts, so each part ranks the copies of every duplicated event_id (a
-- few percent of the events) and keeps the used copies of its own cookies only.
{{- $part := ""}}{{if .part}}{{$part = printf "_part_%v" .part}}{{end}}

DROP TABLE IF EXISTS {{.scratch_schema}}.duplicated_event_ids{{$part}};
DROP TABLE IF EXISTS {{.scratch_schema}}.duplicate_events{{$part}};
DROP TABLE IF EXISTS {{.scratch_schema}}.events_this_run{{$part}};
DROP TABLE IF EXISTS {{.scratch_schema}}.bot_useragents{{$part}};
{{if ne .target_type "redshift"}}
SET LOCAL work_mem = '{{.postgres_work_mem}}';
-- compiling these plans takes longer than it saves
SET LOCAL jit = off;
{{end}}

{{if .ua_bot_filter}}
-- ua_bot_filter: the useragents of atomic that match the bot pattern, each matched once
-- (a data set holds far fewer useragents than events); the big read below leaves out
-- their events by an anti-join instead of matching every event's useragent
{{if eq .target_type "redshift"}}
CREATE TABLE {{.scratch_schema}}.bot_useragents{{$part}}
DISTSTYLE ALL
AS
{{else}}
CREATE UNLOGGED TABLE {{.scratch_schema}}.bot_useragents{{$part}} AS
{{end}}
SELECT useragent
FROM (
  SELECT DISTINCT useragent
  FROM {{.atomic_schema}}.events
  WHERE useragent IS NOT NULL
{{if ne .target_type "redshift"}}
  -- a fence: without it PostgreSQL tests the pattern on every event before the DISTINCT
  OFFSET 0
{{end}}
) AS u
WHERE {{.scratch_schema}}.f_useragent_is_bot(useragent);

{{if ne .target_type "redshift"}}
ANALYZE {{.scratch_schema}}.bot_useragents{{$part}};
{{end}}
{{end}}

-- the event_ids with more than one copy, usable or not (PostgreSQL reads them from
-- atomic's event_id index alone, in order)
{{if eq .target_type "redshift"}}
CREATE TABLE {{.scratch_schema}}.duplicated_event_ids{{$part}}
DISTSTYLE KEY
DISTKEY (event_id)
AS
{{else}}
CREATE UNLOGGED TABLE {{.scratch_schema}}.duplicated_event_ids{{$part}} AS
{{end}}
SELECT event_id
FROM {{.atomic_schema}}.events
GROUP BY event_id
HAVING COUNT(*) > 1;

{{if ne .target_type "redshift"}}
-- (Redshift analyses a table as it is built by CREATE TABLE AS)
ANALYZE {{.scratch_schema}}.duplicated_event_ids{{$part}};
{{end}}

-- the used copy of each of them (the first collected of its usable copies; copies that tie
-- on all four tstamps carry the same payload), with the columns of the event details step
-- (the options' passthroughs evaluated on it) and its conversions' values
{{if eq .target_type "redshift"}}
CREATE TABLE {{.scratch_schema}}.duplicate_events{{$part}}
DISTSTYLE KEY
DISTKEY (domain_userid)
AS
{{else}}
CREATE UNLOGGED TABLE {{.scratch_schema}}.duplicate_events{{$part}} AS
{{end}}
WITH ranked_copies AS (
  SELECT
    a.*,
    ROW_NUMBER() OVER (
      PARTITION BY a.event_id
      ORDER BY a.collector_tstamp, a.etl_tstamp NULLS LAST, a.dvce_created_tstamp,
        a.dvce_sent_tstamp NULLS LAST
    ) AS copy_rank
  FROM {{.atomic_schema}}.events AS a
  INNER JOIN {{.scratch_schema}}.duplicated_event_ids{{$part}} AS d
    ON d.event_id = a.event_id
  WHERE a.domain_userid IS NOT NULL
    AND a.domain_userid <> ''
    AND a.domain_sessionidx IS NOT NULL
    AND a.dvce_created_tstamp IS NOT NULL
    AND {{.scratch_schema}}.f_event_is_kept(a.app_id, a.collector_tstamp, a.dvce_created_tstamp,
      a.useragent)
)

SELECT
  event_id,
  domain_userid,
  domain_sessionidx,
  event,
  user_id,
  collector_tstamp,
  dvce_created_tstamp,
  etl_tstamp,
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
  br_viewheight,
  pp_xoffset_max,
  pp_yoffset_max{{range $i, $p := .page_view_passthroughs}},
  CAST(({{$p.sql}}) AS {{$p.type}}) AS page_view_passthrough_{{$i}}{{end}}
{{- range $i, $p := .session_passthroughs}},
  CAST(({{$p.sql}}) AS {{$p.type}}) AS session_passthrough_{{$i}}{{end}}
{{- range $i, $p := .visitor_passthroughs}},
  CAST(({{$p.sql}}) AS {{$p.type}}) AS visitor_passthrough_{{$i}}{{end}}{{range .conversions}},
  CASE WHEN ({{.condition}}) THEN COALESCE(CAST(({{.value}}) AS DECIMAL(38, 6)), 0) END
    AS cv_{{.name}}_event_value{{end}}
FROM ranked_copies
WHERE copy_rank = 1;

{{if ne .target_type "redshift"}}
-- (Redshift analyses a table as it is built by CREATE TABLE AS)
ANALYZE {{.scratch_schema}}.duplicate_events{{$part}} (event_id);
{{end}}

{{if eq .target_type "redshift"}}
CREATE TABLE {{.scratch_schema}}.events_this_run{{$part}}
DISTSTYLE KEY
DISTKEY (domain_userid)
SORTKEY (domain_userid, domain_sessionidx)
AS
{{else}}
CREATE UNLOGGED TABLE {{.scratch_schema}}.events_this_run{{$part}} AS
{{end}}
WITH used_events AS (
  -- every usable event with a single copy, and the used copy of the others
  SELECT
{{if eq .target_type "redshift"}}
    domain_userid,
    event_id,
    user_id,
{{else}}
    domain_userid COLLATE "C" AS domain_userid, -- byte-wise order, and fast sorts
    event_id COLLATE "C" AS event_id,
    user_id COLLATE "C" AS user_id,
{{end}}
    domain_sessionidx,
    event,
    collector_tstamp,
    dvce_created_tstamp,
    etl_tstamp,
    pp_xoffset_max,
    pp_yoffset_max{{range .conversions}},
    CASE WHEN ({{.condition}}) THEN COALESCE(CAST(({{.value}}) AS DECIMAL(38, 6)), 0) END
      AS cv_{{.name}}_event_value{{end}}
  FROM {{.atomic_schema}}.events AS a
  WHERE domain_userid IS NOT NULL
    AND domain_userid <> ''
    AND domain_sessionidx IS NOT NULL
    AND dvce_created_tstamp IS NOT NULL
    -- the options' rules; the bot pattern through bot_useragents (a NULL useragent is no bot)
    AND {{.scratch_schema}}.f_event_is_kept(a.app_id, a.collector_tstamp, a.dvce_created_tstamp,
      NULL)
{{if .ua_bot_filter}}
    AND NOT EXISTS (
      SELECT 1 FROM {{.scratch_schema}}.bot_useragents{{$part}} AS b WHERE b.useragent = a.useragent
    )
{{end}}
    AND NOT EXISTS (
      SELECT 1
      FROM {{.scratch_schema}}.duplicate_events{{$part}} AS d
      WHERE d.event_id = a.event_id
    )
{{- if .parts}}
    AND (hashtext(a.domain_userid) & 2147483647) % {{.parts}} = {{.part}}
{{- end}}

  UNION ALL

  SELECT
{{if eq .target_type "redshift"}}
    domain_userid,
    event_id,
    user_id,
{{else}}
    domain_userid COLLATE "C",
    event_id COLLATE "C",
    user_id COLLATE "C",
{{end}}
    domain_sessionidx,
    event,
    collector_tstamp,
    dvce_created_tstamp,
    etl_tstamp,
    pp_xoffset_max,
    pp_yoffset_max{{range .conversions}},
    cv_{{.name}}_event_value{{end}}
  FROM {{.scratch_schema}}.duplicate_events{{$part}}
{{- if .parts}}
  WHERE (hashtext(domain_userid) & 2147483647) % {{.parts}} = {{.part}}
{{- end}}
),

{{if .max_session_days}}
capped_events AS (
  -- max_session_days: the events created at most {{.max_session_days}} days after the first
  -- event of their session
  SELECT *
  FROM (
    SELECT
      *,
      MIN(dvce_created_tstamp) OVER (
        PARTITION BY domain_userid, domain_sessionidx
        ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
      ) AS session_first_dvce_created_tstamp
    FROM used_events
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
      ORDER BY dvce_created_tstamp, collector_tstamp, event_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS event_in_cookie_index
  FROM {{if .max_session_days}}capped_events{{else}}used_events{{end}}
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
        ORDER BY dvce_created_tstamp, collector_tstamp, event_id
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
      )
      FROM 11
    ) AS inferred_user_id
  FROM events_in_cookie_order
),

events_in_session_order AS (
  -- each event's position in its session and the page views so far; the session's start
  -- and end times, latest etl_tstamp and first event so far, which on its last event are
  -- the whole session's; and whether it is that last event
  SELECT
    *,
    COUNT(*) OVER (
      PARTITION BY domain_userid, domain_sessionidx
      ORDER BY dvce_created_tstamp, collector_tstamp, event_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS event_in_session_index,
    SUM(CASE WHEN event = 'page_view' THEN 1 ELSE 0 END) OVER (
      PARTITION BY domain_userid, domain_sessionidx
      ORDER BY dvce_created_tstamp, collector_tstamp, event_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS page_view_in_session_index,
    MIN(collector_tstamp) OVER (
      PARTITION BY domain_userid, domain_sessionidx
      ORDER BY dvce_created_tstamp, collector_tstamp, event_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS session_start_tstamp,
    MAX(collector_tstamp) OVER (
      PARTITION BY domain_userid, domain_sessionidx
      ORDER BY dvce_created_tstamp, collector_tstamp, event_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS session_end_tstamp,
    MAX(etl_tstamp) OVER (
      PARTITION BY domain_userid, domain_sessionidx
      ORDER BY dvce_created_tstamp, collector_tstamp, event_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS max_etl_tstamp,
    FIRST_VALUE(event_id) OVER (
      PARTITION BY domain_userid, domain_sessionidx
      ORDER BY dvce_created_tstamp, collector_tstamp, event_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS first_event_id,
    FIRST_VALUE(collector_tstamp) OVER (
      PARTITION BY domain_userid, domain_sessionidx
      ORDER BY dvce_created_tstamp, collector_tstamp, event_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS first_event_collector_tstamp,
    FIRST_VALUE(dvce_created_tstamp) OVER (
      PARTITION BY domain_userid, domain_sessionidx
      ORDER BY dvce_created_tstamp, collector_tstamp, event_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS first_event_dvce_created_tstamp,
    -- 1 on each event but its session's last (PostgreSQL: the same window as above, frame
    -- and all, so one pass computes every function of this level)
    LEAD(1) OVER (
      PARTITION BY domain_userid, domain_sessionidx
      ORDER BY dvce_created_tstamp, collector_tstamp, event_id
{{if ne .target_type "redshift"}}
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
{{end}}
    ) AS later_events
  FROM stitched_events
)

SELECT
  domain_userid,
  domain_sessionidx,
  event_id,
  event,
  user_id,
  inferred_user_id,
  COALESCE(inferred_user_id, domain_userid) AS blended_user_id,
  event_in_session_index,
  CASE WHEN later_events IS NULL THEN event_in_session_index END AS session_event_count,
  page_view_in_session_index,
  collector_tstamp,
  dvce_created_tstamp,
  -- the session's, on its last event
  CASE WHEN later_events IS NULL
    THEN session_start_tstamp END AS session_start_tstamp,
  CASE WHEN later_events IS NULL
    THEN session_end_tstamp END AS session_end_tstamp,
  CASE WHEN later_events IS NULL
    THEN max_etl_tstamp END AS max_etl_tstamp,
  CASE WHEN later_events IS NULL
    THEN first_event_id END AS first_event_id,
  CASE WHEN later_events IS NULL
    THEN first_event_collector_tstamp END AS first_event_collector_tstamp,
  CASE WHEN later_events IS NULL
    THEN first_event_dvce_created_tstamp END AS first_event_dvce_created_tstamp,
  -- a page ping's furthest scroll offsets (page views' scroll depth), and the value of
  -- each of the options' conversions when the event converts (else NULL)
  pp_xoffset_max,
  pp_yoffset_max{{range .conversions}},
  cv_{{.name}}_event_value{{end}}
FROM events_in_session_order;

{{if ne .target_type "redshift"}}
-- (Redshift analyses a table as it is built by CREATE TABLE AS)
ANALYZE {{.scratch_schema}}.events_this_run{{$part}} (domain_userid, domain_sessionidx, event_id, event,
  user_id, event_in_session_index, session_event_count, page_view_in_session_index);
{{end}}
