-- Builds {{.scratch_schema}}.events_this_run from all of {{.atomic_schema}}.events: one row
-- per used event (usable, and the first collected of the copies of its event_id), holding
-- its keys and timestamps and the positions the derived tables are built from:
--   inferred_user_id, blended_user_id  identity stitching at the event
--   event_in_session_index             1, 2, ... in event order within the session
--   session_event_count                the session's used events
--   page_view_in_session_index         page views so far in the session, this one included
--                                      (0 before the first): a page_view or page_ping
--                                      with n > 0 belongs to the session's n-th page view
-- and, on the last event of each session only (NULL on the others), the session's
--   session_start_tstamp, session_end_tstamp, max_etl_tstamp, first_event_id,
--   first_event_collector_tstamp, first_event_dvce_created_tstamp
-- Event order is (dvce_created_tstamp, collector_tstamp, event_id), event_id byte-wise.
-- The other columns of an event are read from atomic by the event details step.

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
WITH usable_events AS (
  -- every copy of every usable event
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
    dvce_sent_tstamp
  FROM {{.atomic_schema}}.events
  WHERE domain_userid IS NOT NULL
    AND domain_userid <> ''
    AND domain_sessionidx IS NOT NULL
    AND dvce_created_tstamp IS NOT NULL
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
  FROM usable_events
),

used_events AS (
  -- the copy of each event_id that the model uses
  SELECT * FROM ranked_copies WHERE copy_rank = 1
),

events_in_cookie_order AS (
  -- each event's position among all of its cookie's events
  SELECT
    *,
    COUNT(*) OVER (
      PARTITION BY domain_userid
      ORDER BY dvce_created_tstamp, collector_tstamp, event_id
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
        ORDER BY dvce_created_tstamp, collector_tstamp, event_id
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
      )
      FROM 11
    ) AS inferred_user_id
  FROM events_in_cookie_order
),

events_in_session_order AS (
  -- each event's position in its session, the page views so far, and the session's size,
  -- times and first event
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
    COUNT(*) OVER (
      PARTITION BY domain_userid, domain_sessionidx
      ORDER BY dvce_created_tstamp, collector_tstamp, event_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
    ) AS session_event_count,
    MIN(collector_tstamp) OVER (
      PARTITION BY domain_userid, domain_sessionidx
      ORDER BY dvce_created_tstamp, collector_tstamp, event_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
    ) AS session_start_tstamp,
    MAX(collector_tstamp) OVER (
      PARTITION BY domain_userid, domain_sessionidx
      ORDER BY dvce_created_tstamp, collector_tstamp, event_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
    ) AS session_end_tstamp,
    MAX(etl_tstamp) OVER (
      PARTITION BY domain_userid, domain_sessionidx
      ORDER BY dvce_created_tstamp, collector_tstamp, event_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
    ) AS max_etl_tstamp,
    FIRST_VALUE(event_id) OVER (
      PARTITION BY domain_userid, domain_sessionidx
      ORDER BY dvce_created_tstamp, collector_tstamp, event_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
    ) AS first_event_id,
    FIRST_VALUE(collector_tstamp) OVER (
      PARTITION BY domain_userid, domain_sessionidx
      ORDER BY dvce_created_tstamp, collector_tstamp, event_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
    ) AS first_event_collector_tstamp,
    FIRST_VALUE(dvce_created_tstamp) OVER (
      PARTITION BY domain_userid, domain_sessionidx
      ORDER BY dvce_created_tstamp, collector_tstamp, event_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
    ) AS first_event_dvce_created_tstamp
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
  session_event_count,
  page_view_in_session_index,
  collector_tstamp,
  dvce_created_tstamp,
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
