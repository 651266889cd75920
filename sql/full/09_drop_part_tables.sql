-- PostgreSQL, beside sql/model/09_drop_work_tables.sql at the end of playbooks/full.yml:
-- drops the work tables of the halves other than the first (per-query variable parts: the
-- steps that ran {part: N, parts: ...} built them with the suffix _part_N; part 0's tables
-- have the usual names and are dropped there).
{{- range $i := .parts}}{{if $i}}

DROP TABLE IF EXISTS {{$.scratch_schema}}.duplicated_event_ids_part_{{$i}};
DROP TABLE IF EXISTS {{$.scratch_schema}}.duplicate_events_part_{{$i}};
DROP TABLE IF EXISTS {{$.scratch_schema}}.bot_useragents_part_{{$i}};
DROP TABLE IF EXISTS {{$.scratch_schema}}.events_this_run_part_{{$i}};
DROP TABLE IF EXISTS {{$.scratch_schema}}.event_details_part_{{$i}};
DROP TABLE IF EXISTS {{$.scratch_schema}}.cookie_id_to_user_id_map_part_{{$i}};
DROP TABLE IF EXISTS {{$.scratch_schema}}.page_views_part_{{$i}};
DROP TABLE IF EXISTS {{$.scratch_schema}}.sessions_basic_part_{{$i}};
DROP TABLE IF EXISTS {{$.scratch_schema}}.sessions_part_{{$i}};
DROP TABLE IF EXISTS {{$.scratch_schema}}.visitors_part_{{$i}};
{{- end}}{{end}}
