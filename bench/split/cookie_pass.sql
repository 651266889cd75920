-- Bench only (python -m bench --only split): the session frame of every event of the
-- cookies in part {{.part}} of {{.parts}}, by one window pass over atomic.events as the
-- model's passes make it. The parts split the cookies by hashtext(domain_userid); a
-- missing cookie id hashes as 0, so every event falls in exactly one part.
DROP TABLE IF EXISTS bench_split.events_{{.part}}_of_{{.parts}};
SET LOCAL work_mem = '256MB';
CREATE UNLOGGED TABLE bench_split.events_{{.part}}_of_{{.parts}} AS
SELECT
  event_id,
  domain_userid,
  domain_sessionidx,
  collector_tstamp,
  ROW_NUMBER() OVER cookie AS event_in_cookie,
  LAG(collector_tstamp) OVER cookie AS previous_tstamp,
  COUNT(*) OVER (PARTITION BY domain_userid, domain_sessionidx) AS session_events,
  FIRST_VALUE(page_urlpath) OVER cookie_session AS first_page
FROM atomic.events
WHERE (COALESCE(hashtext(domain_userid), 0) & 2147483647) % {{.parts}} = {{.part}}
WINDOW
  cookie AS (PARTITION BY domain_userid ORDER BY collector_tstamp, event_id),
  cookie_session AS (PARTITION BY domain_userid, domain_sessionidx
                     ORDER BY collector_tstamp, event_id);
