-- Placeholder (replaced by the channel grouping of issue 16 on merge): creates
-- {{.derived_schema}}.f_default_channel_group(mkt_medium, mkt_source, mkt_campaign,
-- refr_medium, refr_source).
CREATE OR REPLACE FUNCTION {{.derived_schema}}.f_default_channel_group(
  VARCHAR(255), VARCHAR(255), VARCHAR(255), VARCHAR(25), VARCHAR(50) -- sqlrunner: allow parse-error (sqlglot)
)
RETURNS VARCHAR(32)
IMMUTABLE
AS $$
  SELECT CASE WHEN $1 IS NULL AND $4 IS NULL THEN 'Direct' ELSE 'Unassigned' END
$$ LANGUAGE sql;
