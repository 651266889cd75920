-- Builds {{.scratch_schema}}.visitors from {{.scratch_schema}}.sessions_basic and
-- {{.scratch_schema}}.page_views: one row per cookie with a session, summing over its
-- sessions, with the landing page, marketing and referrer of its first session (the one
-- holding the cookie's first event) and the identity stitching at the cookie's last event
-- (the last event of the session holding it), in the columns of {{.derived_schema}}.visitors.
{{- /* a half of playbooks/full.yml on PostgreSQL (per-query variable part): its tables
   carry the suffix _part_N (docs/model.md, "Both cores") */ -}}
{{$part := ""}}{{if .part}}{{$part = printf "_part_%v" .part}}{{end}}

DROP TABLE IF EXISTS {{.scratch_schema}}.visitors{{$part}};
{{if eq .target_type "redshift"}}
CREATE TABLE {{.scratch_schema}}.visitors{{$part}}
DISTSTYLE KEY
DISTKEY (domain_userid)
SORTKEY (domain_userid)
AS
{{else}}
SET LOCAL work_mem = '{{.postgres_work_mem}}';
-- compiling this plan takes longer than it saves
SET LOCAL jit = off;
CREATE UNLOGGED TABLE {{.scratch_schema}}.visitors{{$part}} AS
{{end}}
WITH ranked_sessions AS (
  -- each session, ranked among its cookie's sessions by its first event and by its last
  SELECT
    *,
    ROW_NUMBER() OVER (
      PARTITION BY domain_userid
      ORDER BY dvce_min_tstamp, first_event_collector_tstamp,
        first_event_id{{if ne .target_type "redshift"}} COLLATE "C"{{end}}
    ) AS rank_by_first_event,
    ROW_NUMBER() OVER (
      PARTITION BY domain_userid
      ORDER BY dvce_max_tstamp DESC, last_event_collector_tstamp DESC,
        last_event_id{{if ne .target_type "redshift"}} COLLATE "C"{{end}} DESC
    ) AS rank_by_last_event
  FROM {{.scratch_schema}}.sessions_basic{{$part}}
),

visitor_sessions AS (
  -- the sums over each cookie's sessions, and the values of its first and last sessions
  SELECT
    domain_userid,
    MAX(CASE WHEN rank_by_last_event = 1 THEN blended_user_id END) AS blended_user_id,
    MAX(CASE WHEN rank_by_last_event = 1 THEN inferred_user_id END) AS inferred_user_id,
    MIN(session_start_tstamp) AS first_touch_tstamp,
    MAX(session_end_tstamp) AS last_touch_tstamp,
    MIN(dvce_min_tstamp) AS dvce_min_tstamp,
    MAX(dvce_max_tstamp) AS dvce_max_tstamp,
    MAX(max_etl_tstamp) AS max_etl_tstamp,
    SUM(event_count) AS event_count,
    SUM(page_view_count) AS page_view_count,
    COUNT(*) AS session_count,
    MAX(CASE WHEN rank_by_first_event = 1 THEN landing_page_host END) AS landing_page_host,
    MAX(CASE WHEN rank_by_first_event = 1 THEN landing_page_path END) AS landing_page_path,
    MAX(CASE WHEN rank_by_first_event = 1 THEN mkt_source END) AS mkt_source,
    MAX(CASE WHEN rank_by_first_event = 1 THEN mkt_medium END) AS mkt_medium,
    MAX(CASE WHEN rank_by_first_event = 1 THEN mkt_term END) AS mkt_term,
    MAX(CASE WHEN rank_by_first_event = 1 THEN mkt_content END) AS mkt_content,
    MAX(CASE WHEN rank_by_first_event = 1 THEN mkt_campaign END) AS mkt_campaign,
    MAX(CASE WHEN rank_by_first_event = 1 THEN refr_source END) AS refr_source,
    MAX(CASE WHEN rank_by_first_event = 1 THEN refr_medium END) AS refr_medium,
    MAX(CASE WHEN rank_by_first_event = 1 THEN refr_term END) AS refr_term,
    MAX(CASE WHEN rank_by_first_event = 1 THEN refr_urlhost END) AS refr_urlhost,
    MAX(CASE WHEN rank_by_first_event = 1 THEN refr_urlpath END) AS refr_urlpath,
    MAX(CASE WHEN rank_by_first_event = 1 THEN default_channel_group END)
      AS default_channel_group
  FROM ranked_sessions
  GROUP BY domain_userid
),

visitor_engagement AS (
  -- the engaged time of each cookie with a page view
  SELECT
    domain_userid,
    SUM(time_engaged_in_s) AS time_engaged_in_s
  FROM {{.scratch_schema}}.page_views{{$part}}
  GROUP BY domain_userid
)

SELECT
  v.domain_userid,
  v.blended_user_id,
  v.inferred_user_id,
  v.first_touch_tstamp,
  v.last_touch_tstamp,
  v.dvce_min_tstamp,
  v.dvce_max_tstamp,
  v.max_etl_tstamp,
  v.event_count,
  v.page_view_count,
  COALESCE(e.time_engaged_in_s, 0) AS time_engaged_in_s,
  v.session_count,
  v.landing_page_host,
  v.landing_page_path,
  v.mkt_source,
  v.mkt_medium,
  v.mkt_term,
  v.mkt_content,
  v.mkt_campaign,
  v.refr_source,
  v.refr_medium,
  v.refr_term,
  v.refr_urlhost,
  v.refr_urlpath,
  -- columns added for analysts (docs/model.md), then the options' passthroughs,
  -- evaluated on the first event of the first session
  v.default_channel_group
  {{- range $i, $p := .visitor_passthroughs}},
  f.visitor_passthrough_{{$i}} AS {{$p.alias}}{{end}}
FROM visitor_sessions AS v
LEFT JOIN visitor_engagement AS e
  ON e.domain_userid = v.domain_userid
{{if .visitor_passthroughs}}
-- a join, not MAX(CASE ...) as above: a passthrough's type may have no MAX (BOOLEAN)
INNER JOIN ranked_sessions AS f
  ON f.domain_userid = v.domain_userid
  AND f.rank_by_first_event = 1
{{end}};

{{if ne .target_type "redshift"}}
-- (Redshift analyses a table as it is built by CREATE TABLE AS)
ANALYZE {{.scratch_schema}}.visitors{{$part}} (domain_userid);
{{end}}
