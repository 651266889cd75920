-- Drops this run's work tables in {{.scratch_schema}} once the derived tables hold their
-- rows; the scratch schema itself stays for the next run. Both modes run it (touched_cookies
-- is the incremental mode's only; duplicated_event_ids, duplicate_events and bot_useragents
-- the full mode's).

DROP TABLE IF EXISTS {{.scratch_schema}}.duplicated_event_ids;
DROP TABLE IF EXISTS {{.scratch_schema}}.duplicate_events;
DROP TABLE IF EXISTS {{.scratch_schema}}.bot_useragents;
DROP TABLE IF EXISTS {{.scratch_schema}}.events_this_run;
DROP TABLE IF EXISTS {{.scratch_schema}}.events_this_run_part_1;
DROP TABLE IF EXISTS {{.scratch_schema}}.duplicate_events_part_1;
DROP TABLE IF EXISTS {{.scratch_schema}}.duplicated_event_ids_part_1;
DROP TABLE IF EXISTS {{.scratch_schema}}.bot_useragents_part_1;
DROP TABLE IF EXISTS {{.scratch_schema}}.event_details;
DROP TABLE IF EXISTS {{.scratch_schema}}.cookie_id_to_user_id_map;
DROP TABLE IF EXISTS {{.scratch_schema}}.page_views;
DROP TABLE IF EXISTS {{.scratch_schema}}.sessions_basic;
DROP TABLE IF EXISTS {{.scratch_schema}}.sessions;
DROP TABLE IF EXISTS {{.scratch_schema}}.visitors;
DROP TABLE IF EXISTS {{.scratch_schema}}.touched_cookies;
