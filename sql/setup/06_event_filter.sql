-- Creates {{.scratch_schema}}.f_event_is_kept(app_id, collector_tstamp, dvce_created_tstamp,
-- useragent): whether an event passes the model's options (docs/model.md, "Options"), each
-- a rule over the event's own columns:
--   app_ids            its app_id is one of them (an empty list: any)
--   start_date         it was collected on or after that date
--   days_late_allowed  it was collected at most N days after it was created on the device
--   ua_bot_filter      its useragent does not match the bot pattern below
-- An event that fails it is ignored as if it were not in atomic: it is never used, and never
-- wins the deduplication of its event_id. Created again by every run with the run's options,
-- so with the defaults it is TRUE, which PostgreSQL's planner inlines and folds away: the
-- model's plans are those of a model without options. (max_session_days is a rule over a
-- session's events, applied where events_this_run is built.)
--
-- The bot pattern, matched against the lower-cased useragent: crawlers and search engines
-- (bot, crawl, spider, slurp), scrapers and headless browsers, uptime monitors, link
-- previews, and HTTP libraries (curl, wget, python-, go-http-client, okhttp, httpclient).

CREATE OR REPLACE FUNCTION {{.scratch_schema}}.f_event_is_kept(
  VARCHAR(255), TIMESTAMP, TIMESTAMP, VARCHAR(1000) -- sqlrunner: allow parse-error (sqlglot)
)
RETURNS BOOLEAN
IMMUTABLE
AS $$
  SELECT TRUE
{{if .app_ids}}
    AND $1 IN ({{range $i, $id := .app_ids}}{{if $i}}, {{end}}'{{$id}}'{{end}})
{{end}}
{{if .start_date}}
    AND $2 >= TIMESTAMP '{{.start_date}}'
{{end}}
{{if .days_late_allowed}}
    AND $2 <= $3 + INTERVAL '{{.days_late_allowed}} days'
{{end}}
{{if .ua_bot_filter}}
    AND NOT (LOWER(COALESCE($4, '')) ~ {{template "bot_pattern"}})
{{end}}
$$ LANGUAGE sql;

-- {{.scratch_schema}}.f_useragent_is_bot(useragent): whether a useragent matches the bot
-- pattern, whatever ua_bot_filter says. The full mode matches each distinct useragent once
-- with it (sql/full/01_events_this_run.sql): the pattern over every event's useragent cost 7
-- s of a 13 s rebuild at 1M events, the distinct values far fewer.
CREATE OR REPLACE FUNCTION {{.scratch_schema}}.f_useragent_is_bot(
  VARCHAR(1000) -- sqlrunner: allow parse-error (sqlglot)
)
RETURNS BOOLEAN
IMMUTABLE
AS $$
  SELECT LOWER(COALESCE($1, '')) ~ {{template "bot_pattern"}}
$$ LANGUAGE sql;

{{define "bot_pattern"}}'bot|crawl|spider|slurp|scraper|headless|phantomjs|lighthouse|pingdom|uptime|facebookexternalhit|preview|curl/|wget/|python-|go-http-client|okhttp|httpclient'{{end}}
