-- Data test (assert: no_rows): every page view event in exactly one session: its session
-- (domain_userid, domain_sessionidx) is a row of {{.derived_schema}}.sessions, and each
-- session counts as many page views (page_view_count) as {{.derived_schema}}.page_views
-- holds for it. Returns the sessions whose counts differ (a page view missing, counted in
-- another session, or in none). In the incremental mode (recompute: batch) only the cookies
-- of the sessions this run's batch reached.
WITH scope AS (
  SELECT DISTINCT b.domain_userid
  FROM {{.derived_schema}}.sessions AS b
  {{- if eq (or .recompute "all") "batch"}}
  WHERE b.max_etl_tstamp IN (
    SELECT etl_tstamp FROM {{.derived_schema}}.etl_tstamps WHERE run_id = '{{.run_id}}'
  )
  {{- end}}
),
counted AS (
  SELECT s.domain_userid, s.domain_sessionidx, s.page_view_count
  FROM {{.derived_schema}}.sessions AS s
  WHERE s.domain_userid IN (SELECT domain_userid FROM scope)
),
page_views AS (
  SELECT p.domain_userid, p.domain_sessionidx, COUNT(*) AS page_views
  FROM {{.derived_schema}}.page_views AS p
  WHERE p.domain_userid IN (SELECT domain_userid FROM scope)
  GROUP BY p.domain_userid, p.domain_sessionidx
)
SELECT
  COALESCE(c.domain_userid, v.domain_userid) AS domain_userid,
  COALESCE(c.domain_sessionidx, v.domain_sessionidx) AS domain_sessionidx,
  c.page_view_count AS counted_in_session,
  COALESCE(v.page_views, 0) AS page_views
FROM counted AS c
FULL OUTER JOIN page_views AS v
  ON v.domain_userid = c.domain_userid AND v.domain_sessionidx = c.domain_sessionidx
WHERE c.domain_userid IS NULL
  OR COALESCE(c.page_view_count, 0) <> COALESCE(v.page_views, 0);
