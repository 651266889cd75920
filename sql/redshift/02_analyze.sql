-- Redshift only (the step has only_on: redshift, and runs only when a batch was modelled):
-- fresh statistics, on the columns queries filter, join and group on (and the distribution
-- and sort keys), for the tables an incremental run rewrites. Redshift skips a table whose
-- rows changed by less than analyze_threshold_percent (10 by default) since its last
-- ANALYZE, so on most runs these statements return at once, and statistics are refreshed
-- about every 10 % of change. Custom models' tables are not listed: add yours here.
ANALYZE {{.atomic_schema}}.events PREDICATE COLUMNS;
ANALYZE {{.derived_schema}}.sessions PREDICATE COLUMNS;
ANALYZE {{.derived_schema}}.page_views PREDICATE COLUMNS;
ANALYZE {{.derived_schema}}.visitors PREDICATE COLUMNS;
ANALYZE {{.derived_schema}}.cookie_id_to_user_id_map PREDICATE COLUMNS;
