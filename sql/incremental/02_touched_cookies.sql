-- Builds {{.scratch_schema}}.touched_cookies from the batch ({{.landing_schema}}.events_in_progress)
-- and {{.atomic_schema}}.events: the cookies whose derived rows the batch can change, one row
-- each. A cookie is touched when it holds a usable copy, in the batch or in atomic, of an
-- event_id that is in the batch. That covers the contract's touched sessions (the sessions of
-- every copy of every event_id in the batch) and its login rule (every cookie holding a
-- usable copy with a user_id of such an event_id); the run recomputes every session of each
-- touched cookie, its visitor row and its cookie map row. A cookie that is not touched has no
-- copy of any batch event_id, so its used events, and every row built from them, stay as
-- they are. Copies in atomic are found through its event_id index (PostgreSQL) or by a
-- join on the batch's event_ids (Redshift), so the cost follows the batch. On PostgreSQL
-- the lookup is written as one probe per batch event_id (LATERAL, kept a subquery by
-- OFFSET 0), so that its plan does not depend on atomic's statistics: with none, or stale
-- ones, a join would be planned as a loop over all of atomic (docs/incremental.md,
-- "Statistics"). With the variable
-- recompute set to all, every cookie is touched (the switch from the full mode uses it to
-- build the custom models over the whole history).

{{if eq .target_type "redshift"}}
ANALYZE {{.landing_schema}}.events_in_progress PREDICATE COLUMNS;
{{else}}
ANALYZE {{.landing_schema}}.events_in_progress (event_id, domain_userid, domain_sessionidx);
{{end}}

DROP TABLE IF EXISTS {{.scratch_schema}}.touched_cookies;
{{if eq .target_type "redshift"}}
CREATE TABLE {{.scratch_schema}}.touched_cookies
DISTSTYLE KEY
DISTKEY (domain_userid)
SORTKEY (domain_userid)
AS
{{else}}
SET LOCAL work_mem = '{{.postgres_work_mem}}';
-- no JIT: the row estimates of a batch are rough, and compiling costs more than it saves
SET LOCAL jit = off;
CREATE UNLOGGED TABLE {{.scratch_schema}}.touched_cookies AS
{{end}}
{{if eq .recompute "all"}}
-- recompute: all (playbooks/full_to_incremental.yml): every cookie with a usable event
SELECT domain_userid
FROM {{.atomic_schema}}.events
WHERE domain_userid <> ''
  AND domain_sessionidx IS NOT NULL
  AND dvce_created_tstamp IS NOT NULL
UNION
SELECT domain_userid
FROM {{.landing_schema}}.events_in_progress
WHERE domain_userid <> ''
  AND domain_sessionidx IS NOT NULL
  AND dvce_created_tstamp IS NOT NULL;
{{else}}
WITH batch_event_ids AS (
  -- every event_id in the batch, usable or not
  SELECT DISTINCT event_id
  FROM {{.landing_schema}}.events_in_progress
),

touched_copies AS (
  -- the cookies of the usable copies of those event_ids: in the batch, and in atomic
  SELECT domain_userid
  FROM {{.landing_schema}}.events_in_progress
  WHERE domain_userid IS NOT NULL
    AND domain_userid <> ''
    AND domain_sessionidx IS NOT NULL
    AND dvce_created_tstamp IS NOT NULL
  UNION ALL
  SELECT a.domain_userid
{{if eq .target_type "redshift"}}
  FROM {{.atomic_schema}}.events AS a
  INNER JOIN batch_event_ids AS b
    ON b.event_id = a.event_id
{{else}}
  FROM batch_event_ids AS b
  CROSS JOIN LATERAL (
    SELECT *
    FROM {{.atomic_schema}}.events AS e
    WHERE e.event_id = b.event_id
    OFFSET 0
  ) AS a
{{end}}
  WHERE a.domain_userid IS NOT NULL
    AND a.domain_userid <> ''
    AND a.domain_sessionidx IS NOT NULL
    AND a.dvce_created_tstamp IS NOT NULL
)

SELECT DISTINCT domain_userid
FROM touched_copies;
{{end}}

{{if ne .target_type "redshift"}}
-- (Redshift analyses a table as it is built by CREATE TABLE AS)
ANALYZE {{.scratch_schema}}.touched_cookies;
{{end}}
