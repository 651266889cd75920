-- Custom derived model (example), its prune: deletes from {{.derived_schema}}.events_per_session
-- the rows of sessions that no longer exist: sessions of a touched cookie
-- ({{.scratch_schema}}.touched_cookies) without any event in {{.scratch_schema}}.events_this_run,
-- because each of their events is now used from a copy another cookie holds (a duplicate
-- collected earlier). The upsert cannot do it: it replaces the sessions its SELECT returns.
-- These rows and the upsert's are disjoint, so the two run side by side.

DELETE FROM {{.derived_schema}}.events_per_session
WHERE domain_userid IN (SELECT domain_userid FROM {{.scratch_schema}}.touched_cookies)
  AND NOT EXISTS (
    SELECT 1
    FROM {{.scratch_schema}}.events_this_run AS e
    WHERE e.domain_userid = events_per_session.domain_userid
      AND e.domain_sessionidx = events_per_session.domain_sessionidx
  );
