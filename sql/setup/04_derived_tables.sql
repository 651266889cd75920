-- Creates the model's output tables in {{.derived_schema}} if they are missing: sessions,
-- page_views, visitors and cookie_id_to_user_id_map, column by column as the model's
-- contract (docs/model.md) lists them. Both modes fill them: the full mode replaces their rows,
-- the incremental mode replaces the rows its batch touches.
--
-- Physical design, by engine:
--   Redshift: distributed by cookie like the events they are built from, sorted by key.
--   PostgreSQL: a unique index on each table's key, which the incremental mode's deletes
--     look rows up by and which refuses a duplicate key if the model ever produced one.

CREATE TABLE IF NOT EXISTS {{.derived_schema}}.sessions (
  domain_userid        VARCHAR(128) NOT NULL,
  domain_sessionidx    INT NOT NULL,
  domain_sessionid     VARCHAR(128),
  app_id               VARCHAR(255),
  blended_user_id      VARCHAR(255),
  inferred_user_id     VARCHAR(255),
  session_start_tstamp TIMESTAMP,
  session_end_tstamp   TIMESTAMP,
  dvce_min_tstamp      TIMESTAMP,
  dvce_max_tstamp      TIMESTAMP,
  max_etl_tstamp       TIMESTAMP,
  event_count          BIGINT,
  page_view_count      BIGINT,
  time_engaged_in_s    BIGINT,
  geo_country          CHAR(2),
  geo_region           VARCHAR(3),
  geo_city             VARCHAR(75),
  geo_zipcode          VARCHAR(15),
  geo_latitude         DOUBLE PRECISION,
  geo_longitude        DOUBLE PRECISION,
  geo_timezone         VARCHAR(64),
  landing_page_host    VARCHAR(255),
  landing_page_path    VARCHAR(3000),
  exit_page_host       VARCHAR(255),
  exit_page_path       VARCHAR(3000),
  mkt_source           VARCHAR(255),
  mkt_medium           VARCHAR(255),
  mkt_term             VARCHAR(255),
  mkt_content          VARCHAR(500),
  mkt_campaign         VARCHAR(255),
  refr_source          VARCHAR(50),
  refr_medium          VARCHAR(25),
  refr_term            VARCHAR(255),
  refr_urlhost         VARCHAR(255),
  refr_urlpath         VARCHAR(6000),
  br_family            VARCHAR(50),
  br_name              VARCHAR(50),
  br_version           VARCHAR(50),
  br_lang              VARCHAR(255),
  os_family            VARCHAR(50),
  os_name              VARCHAR(50),
  os_timezone          VARCHAR(255),
  dvce_type            VARCHAR(50),
  dvce_ismobile        BOOLEAN,
  dvce_screenwidth     INT,
  dvce_screenheight    INT,{{template "sessions_added_columns" .}}
){{if eq .target_type "redshift"}}
DISTSTYLE KEY
DISTKEY (domain_userid)
SORTKEY (domain_userid, domain_sessionidx){{end}};

CREATE TABLE IF NOT EXISTS {{.derived_schema}}.page_views (
  page_view_id               CHAR(36) NOT NULL,
  domain_userid              VARCHAR(128) NOT NULL,
  domain_sessionidx          INT NOT NULL,
  page_view_in_session_index BIGINT,
  blended_user_id            VARCHAR(255),
  inferred_user_id           VARCHAR(255),
  page_urlhost               VARCHAR(255),
  page_urlpath               VARCHAR(3000),
  page_title                 VARCHAR(2000),
  collector_tstamp           TIMESTAMP,
  dvce_created_tstamp        TIMESTAMP,
  dvce_max_tstamp            TIMESTAMP,
  page_ping_count            BIGINT,
  event_count                BIGINT,
  time_engaged_in_s          BIGINT,{{template "page_views_added_columns" .}}
){{if eq .target_type "redshift"}}
DISTSTYLE KEY
DISTKEY (domain_userid)
SORTKEY (domain_userid, domain_sessionidx){{end}};

CREATE TABLE IF NOT EXISTS {{.derived_schema}}.visitors (
  domain_userid      VARCHAR(128) NOT NULL,
  blended_user_id    VARCHAR(255),
  inferred_user_id   VARCHAR(255),
  first_touch_tstamp TIMESTAMP,
  last_touch_tstamp  TIMESTAMP,
  dvce_min_tstamp    TIMESTAMP,
  dvce_max_tstamp    TIMESTAMP,
  max_etl_tstamp     TIMESTAMP,
  event_count        BIGINT,
  page_view_count    BIGINT,
  time_engaged_in_s  BIGINT,
  session_count      BIGINT,
  landing_page_host  VARCHAR(255),
  landing_page_path  VARCHAR(3000),
  mkt_source         VARCHAR(255),
  mkt_medium         VARCHAR(255),
  mkt_term           VARCHAR(255),
  mkt_content        VARCHAR(500),
  mkt_campaign       VARCHAR(255),
  refr_source        VARCHAR(50),
  refr_medium        VARCHAR(25),
  refr_term          VARCHAR(255),
  refr_urlhost       VARCHAR(255),
  refr_urlpath       VARCHAR(6000),{{template "visitors_added_columns" .}}
){{if eq .target_type "redshift"}}
DISTSTYLE KEY
DISTKEY (domain_userid)
SORTKEY (domain_userid){{end}};

CREATE TABLE IF NOT EXISTS {{.derived_schema}}.cookie_id_to_user_id_map (
  domain_userid          VARCHAR(128) NOT NULL,
  user_id                VARCHAR(255),
  last_login_dvce_tstamp TIMESTAMP
){{if eq .target_type "redshift"}}
DISTSTYLE KEY
DISTKEY (domain_userid)
SORTKEY (domain_userid){{end}};

-- The columns added for analysts (docs/model.md, "Columns added for analysts"), after the
-- contract's, then the options' columns, defined once for the tables above and for the
-- migration below.
{{define "sessions_added_columns"}}
  first_page_title      VARCHAR(2000),
  last_page_title       VARCHAR(2000),
  absolute_time_in_s    BIGINT,
  page_ping_count       BIGINT,
  is_engaged            BOOLEAN,
  default_channel_group VARCHAR(255){{template "passthrough_columns" .session_passthroughs}}
{{- range .conversions}},
  cv_{{.name}}_volume BIGINT,
  cv_{{.name}}_value DECIMAL(38, 6),
  cv_{{.name}}_converted BOOLEAN,
  cv_{{.name}}_first_tstamp TIMESTAMP{{end}}{{end}}

{{define "page_views_added_columns"}}
  domain_sessionid               VARCHAR(128),
  app_id                         VARCHAR(255),
  absolute_time_in_s             BIGINT,
  horizontal_pixels_scrolled     BIGINT,
  vertical_pixels_scrolled       BIGINT,
  horizontal_percentage_scrolled BIGINT,
  vertical_percentage_scrolled   BIGINT,
  doc_width                      INT,
  doc_height                     INT,
  br_viewwidth                   INT,
  br_viewheight                  INT,
  refr_urlhost                   VARCHAR(255),
  refr_urlpath                   VARCHAR(6000),
  refr_medium                    VARCHAR(25),
  refr_source                    VARCHAR(50),
  refr_term                      VARCHAR(255),
  mkt_medium                     VARCHAR(255),
  mkt_source                     VARCHAR(255),
  mkt_term                       VARCHAR(255),
  mkt_content                    VARCHAR(500),
  mkt_campaign                   VARCHAR(255),
  geo_country                    CHAR(2),
  geo_region                     VARCHAR(3),
  geo_city                       VARCHAR(75),
  geo_zipcode                    VARCHAR(15),
  geo_latitude                   DOUBLE PRECISION,
  geo_longitude                  DOUBLE PRECISION,
  geo_timezone                   VARCHAR(64),
  br_family                      VARCHAR(50),
  br_name                        VARCHAR(50),
  br_version                     VARCHAR(50),
  br_lang                        VARCHAR(255),
  os_family                      VARCHAR(50),
  os_name                        VARCHAR(50),
  os_timezone                    VARCHAR(255),
  dvce_type                      VARCHAR(50),
  dvce_ismobile                  BOOLEAN,
  dvce_screenwidth               INT,
  dvce_screenheight              INT,
  default_channel_group          VARCHAR(255){{template "passthrough_columns" .page_view_passthroughs}}{{end}}

{{define "visitors_added_columns"}}
  default_channel_group VARCHAR(255){{template "passthrough_columns" .visitor_passthroughs}}{{end}}

-- The options' columns (docs/model.md, "Options"): each passthrough's alias and type, and
-- on sessions each conversion's four columns, last.
{{define "passthrough_columns"}}{{range .}},
  {{.alias}} {{.type}}{{end}}{{end}}

{{if ne .target_type "redshift"}}
-- An installation whose tables predate them, or a passthrough or conversion added to the
-- options after the tables were made: PostgreSQL adds the missing columns in place, NULL in
-- the rows already there until a run rebuilds them. Only a missing column takes the table's
-- lock (ALTER TABLE ... ADD COLUMN IF NOT EXISTS would take it on every run, and wait for
-- every reader of the table). A column whose option was removed stays, NULL in the rows
-- rebuilt since; a column whose type was changed keeps its old type (drop it to change it).
-- Redshift has no ADD COLUMN IF NOT EXISTS: there the commit's INSERT refuses a table
-- without them, naming the column, and changes nothing; add it with ALTER TABLE ... ADD
-- COLUMN (docs/model.md, "Options").
DO $migrate$
DECLARE
  wanted RECORD;
  definition TEXT;
BEGIN
  FOR wanted IN
    SELECT 'sessions' AS table_name,
      $columns${{template "sessions_added_columns" .}}$columns$ AS definitions
    UNION ALL
    SELECT 'page_views', $columns${{template "page_views_added_columns" .}}$columns$
    UNION ALL
    SELECT 'visitors', $columns${{template "visitors_added_columns" .}}$columns$
  LOOP
    -- one "name TYPE" a line
    FOREACH definition IN ARRAY regexp_split_to_array(wanted.definitions, ',\s*\n')
    LOOP
      definition := btrim(definition, ' ' || chr(10) || chr(13));
      -- the catalog, not information_schema.columns: its view cost 70 ms for these ~50
      -- lookups, most of a run with nothing new
      IF definition <> '' AND NOT EXISTS (
        SELECT 1
        FROM pg_catalog.pg_attribute
        WHERE attrelid = format('%I.%I', '{{.derived_schema}}', wanted.table_name)::regclass
          AND attname = split_part(definition, ' ', 1)
          AND attnum > 0
          AND NOT attisdropped
      ) THEN
        EXECUTE format('ALTER TABLE %I.%I ADD COLUMN %s', '{{.derived_schema}}',
          wanted.table_name, definition);
      END IF;
    END LOOP;
  END LOOP;
END
$migrate$;

CREATE UNIQUE INDEX IF NOT EXISTS sessions_key_idx
  ON {{.derived_schema}}.sessions (domain_userid, domain_sessionidx);
CREATE UNIQUE INDEX IF NOT EXISTS page_views_key_idx
  ON {{.derived_schema}}.page_views (page_view_id);
CREATE INDEX IF NOT EXISTS page_views_session_idx
  ON {{.derived_schema}}.page_views (domain_userid, domain_sessionidx);
CREATE UNIQUE INDEX IF NOT EXISTS visitors_key_idx
  ON {{.derived_schema}}.visitors (domain_userid);
CREATE UNIQUE INDEX IF NOT EXISTS cookie_id_to_user_id_map_key_idx
  ON {{.derived_schema}}.cookie_id_to_user_id_map (domain_userid);
{{end}}