-- Custom derived model (example), its table: {{.derived_schema}}.events_per_session, one row
-- per session and event_name with the session's used events of that name. Created here,
-- rather than by the upsert on first use, so that it has the key the upsert deletes by:
--   PostgreSQL: an index on the session, which the upsert's and the prune's deletes use.
--   Redshift: distributed and sorted by cookie and session, like derived.sessions.
-- The upsert inserts its SELECT's columns by position: keep this list in its order.

CREATE TABLE IF NOT EXISTS {{.derived_schema}}.events_per_session (
  domain_userid          VARCHAR(128) NOT NULL,
  domain_sessionidx      INT NOT NULL,
  event_name             VARCHAR(1000),
  event_count            BIGINT NOT NULL,
  first_collector_tstamp TIMESTAMP,
  last_collector_tstamp  TIMESTAMP
){{if eq .target_type "redshift"}}
DISTSTYLE KEY
DISTKEY (domain_userid)
SORTKEY (domain_userid, domain_sessionidx){{end}};
{{if ne .target_type "redshift"}}
CREATE INDEX IF NOT EXISTS events_per_session_session_idx
  ON {{.derived_schema}}.events_per_session (domain_userid, domain_sessionidx);
{{end}}
