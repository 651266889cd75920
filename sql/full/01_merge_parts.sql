-- PostgreSQL, after the two parts of 01_events_this_run.sql (per-query variables {part: 0,
-- parts: 2} and {part: 1, parts: 2}, built in parallel): part 1's events are appended to
-- events_this_run, which part 0 built with its own (the cookies of the two parts are
-- disjoint). Each part ranked every duplicated event_id, so part 0's duplicated_event_ids
-- and duplicate_events are already the whole ones. Part 1's tables stay until
-- drop_work_tables, so that a crash, which empties them all, makes a resumed run build both
-- parts again and then this: the SET below rewrites the catalogue row of the unlogged
-- table events_this_run, so this step's checkpoint records it as built here, and a crash
-- that empties it runs this step again (sqlrunner/execute/checkpoints.py; the word
-- "unlogged" in this file is what makes the runner look). One transaction.

INSERT INTO {{.scratch_schema}}.events_this_run
SELECT * FROM {{.scratch_schema}}.events_this_run_part_1;

-- a work table, dropped at the end of the run
ALTER TABLE {{.scratch_schema}}.events_this_run SET (autovacuum_enabled = false);

ANALYZE {{.scratch_schema}}.events_this_run (domain_userid, domain_sessionidx, event_id, event,
  user_id, event_in_session_index, session_event_count, page_view_in_session_index);
