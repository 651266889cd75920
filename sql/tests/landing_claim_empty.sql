-- Data test (assert: no_rows): after the commit, no claimed batch is left in
-- {{.landing_schema}}.events_in_progress (the commit moves it into atomic in the same
-- transaction). Returns how many rows are left, when some are.
SELECT COUNT(*) AS rows_left
FROM {{.landing_schema}}.events_in_progress
HAVING COUNT(*) > 0;
