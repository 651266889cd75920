-- Redshift only (the step has only_on: redshift): re-sort atomic.events after the batch
-- was appended, so the model's range-restricted reads stay range-restricted.
-- VACUUM cannot run in a transaction block, so it is alone in its file.
VACUUM SORT ONLY {{.atomic_schema}}.events;
