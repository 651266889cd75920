-- Redshift only (the step has only_on: redshift): fresh statistics, on the columns the
-- model filters and joins on, for the tables an incremental run rewrites.
ANALYZE {{.atomic_schema}}.events PREDICATE COLUMNS;
ANALYZE {{.derived_schema}}.sessions PREDICATE COLUMNS;
ANALYZE {{.derived_schema}}.page_views PREDICATE COLUMNS;
ANALYZE {{.derived_schema}}.visitors PREDICATE COLUMNS;
ANALYZE {{.derived_schema}}.cookie_id_to_user_id_map PREDICATE COLUMNS;
