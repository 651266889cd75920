-- Builds {{.scratch_schema}}.cookie_id_to_user_id_map from {{.scratch_schema}}.events_this_run:
-- one row per cookie with at least one login event (a used event with a non-empty user_id),
-- holding the user_id and the dvce_created_tstamp of its last login event in event order
-- (event_id compared byte-wise: the incremental mode's events_this_run keeps the database's
-- collation).
{{- /* a half of playbooks/full.yml on PostgreSQL (per-query variable part): its tables
   carry the suffix _part_N (docs/model.md, "Both cores") */ -}}
{{$part := ""}}{{if .part}}{{$part = printf "_part_%v" .part}}{{end}}

DROP TABLE IF EXISTS {{.scratch_schema}}.cookie_id_to_user_id_map{{$part}};
{{if eq .target_type "redshift"}}
CREATE TABLE {{.scratch_schema}}.cookie_id_to_user_id_map{{$part}}
DISTSTYLE KEY
DISTKEY (domain_userid)
SORTKEY (domain_userid)
AS
{{else}}
SET LOCAL work_mem = '{{.postgres_work_mem}}';
-- compiling this plan takes longer than it saves
SET LOCAL jit = off;
CREATE UNLOGGED TABLE {{.scratch_schema}}.cookie_id_to_user_id_map{{$part}} AS
{{end}}
WITH login_events AS (
  -- each login event, ranked from its cookie's last login backwards
  SELECT
    domain_userid,
    user_id,
    dvce_created_tstamp,
    ROW_NUMBER() OVER (
      PARTITION BY domain_userid
      ORDER BY dvce_created_tstamp DESC, collector_tstamp DESC,
        event_id{{if ne .target_type "redshift"}} COLLATE "C"{{end}} DESC
    ) AS rank_from_last_login
  FROM {{.scratch_schema}}.events_this_run{{$part}}
  WHERE user_id <> ''
)

SELECT
  domain_userid,
  user_id,
  dvce_created_tstamp AS last_login_dvce_tstamp
FROM login_events
WHERE rank_from_last_login = 1;

{{if ne .target_type "redshift"}}
-- (Redshift analyses a table as it is built by CREATE TABLE AS)
ANALYZE {{.scratch_schema}}.cookie_id_to_user_id_map{{$part}} (domain_userid);
{{end}}
