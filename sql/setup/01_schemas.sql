-- Creates the model's four schemas if they are missing: atomic (every event),
-- landing (new events waiting for a run), scratch (a run's work tables) and
-- derived (the model's output). Safe to run any number of times.

CREATE SCHEMA IF NOT EXISTS {{.atomic_schema}};
CREATE SCHEMA IF NOT EXISTS {{.landing_schema}};
CREATE SCHEMA IF NOT EXISTS {{.scratch_schema}};
CREATE SCHEMA IF NOT EXISTS {{.derived_schema}};
