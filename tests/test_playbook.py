"""Loading playbooks as SQL Runner does, and rejecting bad ones with file and line."""

from __future__ import annotations

import pytest

from sqlrunner.errors import PlaybookError
from sqlrunner.playbook import load_playbook, strip_colon_keys

COLON_PLAYBOOK = """\
:targets:
  - :name: "My Postgres database 1"
    :type: postgres
    :host: localhost
    :database: sql_runner_tests_1
    :port: 5432
    :username: postgres
    :password:
    :ssl: false
:variables:
  :test_schema: sql_runner_tests
  :timeFormat: "2006_01_02"
  :flag: yes
  :day: 2020-01-01
  :big: 1e3
  :count: 3
  :neg: -2
  :ratio: 0.5
  :on_off: true
:steps:
  - :name: Create schema and table
    :queries:
      - :name: Create schema and table
        :file: postgres-sql/good/1.sql
        :template: true
"""


def write(tmp_path, text: str, name: str = "p.yml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_colon_keys_are_stripped_at_most_once_per_line():
    assert strip_colon_keys(":a: 1\n  - :b: 2\n  ::c: 3\n  - :d\n") == (
        "a: 1\n  - b: 2\n  :c: 3\n  - d\n")


def test_sql_runner_colon_playbook_loads(tmp_path):
    playbook = load_playbook(write(tmp_path, COLON_PLAYBOOK))
    (target,) = playbook.targets
    assert (target.name, target.type, target.host, target.port, target.username) == (
        "My Postgres database 1", "postgres", "localhost", "5432", "postgres")
    assert target.password is None and target.ssl is False
    (step,) = playbook.steps
    assert step.queries[0].file == "postgres-sql/good/1.sql" and step.queries[0].template


def test_variables_keep_yaml_1_2_types(tmp_path):
    variables = load_playbook(write(tmp_path, COLON_PLAYBOOK)).variables
    assert variables["flag"] == "yes"
    assert variables["day"] == "2020-01-01"
    assert variables["big"] == "1e3"
    assert variables["count"] == 3 and variables["neg"] == -2 and variables["ratio"] == 0.5
    assert variables["on_off"] is True
    assert variables["timeFormat"] == "2006_01_02"


def test_plain_and_mixed_spellings_load_alike(tmp_path):
    plain = strip_colon_keys(COLON_PLAYBOOK)
    assert ":name" not in plain
    mixed = plain.replace("steps:", ":steps:").replace("- name: Create", "- :name: Create")
    loaded = [load_playbook(write(tmp_path, text, f"{i}.yml"))
              for i, text in enumerate((COLON_PLAYBOOK, plain, mixed))]
    assert loaded[0].steps == loaded[1].steps == loaded[2].steps
    assert loaded[0].targets == loaded[1].targets == loaded[2].targets


def test_template_defaults_to_false(tmp_path):
    text = COLON_PLAYBOOK.replace("        :template: true\n", "")
    assert load_playbook(write(tmp_path, text)).steps[0].queries[0].template is False


def test_empty_variables_section_is_fine(tmp_path):
    text = COLON_PLAYBOOK.split(":variables:")[0] + ":variables:\n:steps:" + \
        COLON_PLAYBOOK.split(":steps:")[1]
    assert load_playbook(write(tmp_path, text), {"x": "1"}).variables == {}


def test_type_is_case_insensitive_and_postgresql_is_postgres(tmp_path):
    text = COLON_PLAYBOOK.replace(":type: postgres", ":type: PostgreSQL")
    assert load_playbook(write(tmp_path, text)).targets[0].type == "postgres"


@pytest.mark.parametrize(
    ("change", "line", "message"),
    [
        ((":ssl: false", ":sll: false"), 9, "unknown target key 'sll' (did you mean 'ssl'?)"),
        ((":template: true", ":template: sure"), 25, "query 'template' must be true or false"),
        (("        :file: postgres-sql/good/1.sql\n", ""), 23, "query is missing 'file'"),
        ((":queries:", ":querys:"), 22, "unknown step key 'querys' (did you mean 'queries'?)"),
        (("  :count: 3", "  :count: [3"), 17, "invalid YAML"),
    ],
)
def test_bad_playbooks_name_file_line_and_what_was_expected(tmp_path, change, line, message):
    path = write(tmp_path, COLON_PLAYBOOK.replace(*change))
    with pytest.raises(PlaybookError) as caught:
        load_playbook(path)
    assert caught.value.file == path
    assert caught.value.line == line, str(caught.value)
    assert message in caught.value.message
    assert caught.value.exit_code == 1


def test_no_targets_or_no_steps_are_setup_errors(tmp_path):
    with pytest.raises(PlaybookError, match="no targets"):
        load_playbook(write(tmp_path, "targets: []\nsteps:\n  - name: a\n"))
    with pytest.raises(PlaybookError, match="no steps"):
        load_playbook(write(tmp_path, "targets:\n  - name: a\n    type: postgres\n"))
    with pytest.raises(PlaybookError, match="must be a mapping"):
        load_playbook(write(tmp_path, "- just\n- a list\n"))


def test_unsupported_and_unknown_target_types_are_target_errors(tmp_path):
    for kind, expected in (("snowflake", "not supported"), ("oracle", "unknown target type")):
        text = COLON_PLAYBOOK.replace(":type: postgres", f":type: {kind}")
        target = load_playbook(write(tmp_path, text)).targets[0]
        assert expected in target.init_error()


def test_missing_connection_fields_are_target_errors(tmp_path):
    text = COLON_PLAYBOOK.replace(":host: localhost", ":host:")
    assert "missing host" in load_playbook(write(tmp_path, text)).targets[0].init_error()


def test_a_query_group_of_one_query_is_set_before_it_and_restored_after(tmp_path):
    from sqlrunner.api import RunOptions, prepare
    from sqlrunner.errors import TargetError

    (tmp_path / "q.sql").write_text("SELECT 1;")
    text = ("targets:\n  - name: rs\n    type: redshift\n    host: h\n    port: 5439\n"
            "    database: d\n    username: u\n    query_group: nightly\n"
            "steps:\n  - name: s\n    queries:\n      - name: q\n        file: q.sql\n"
            "        query_group: heavy\n        wlm_query_slot_count: 3\n")
    playbook = write(tmp_path, text)
    (query,) = prepare(playbook, RunOptions()).targets[0].queries
    assert query.settings["session_before"] == (
        "SET query_group TO 'heavy'", "SET wlm_query_slot_count TO 3")
    assert query.settings["session_after"] == (
        "SET query_group TO 'nightly'", "RESET wlm_query_slot_count")
    postgres = write(tmp_path, text.replace("type: redshift", "type: postgres")
                     .replace("    query_group: nightly\n", ""), "pg.yml")
    with pytest.raises(TargetError, match="Redshift workload-management"):
        prepare(postgres, RunOptions())


def test_libyaml_and_pure_python_parsers_load_the_same_values_and_lines():
    import yaml

    from sqlrunner.playbook.yaml12 import FastYaml12Loader, Yaml12Loader

    assert issubclass(FastYaml12Loader, yaml.CSafeLoader), "PyYAML wheels ship libyaml"
    text = strip_colon_keys(COLON_PLAYBOOK) + "extra: {a: [0x1f, 0o17, .inf, ~, 'x']}\n"
    fast = yaml.load(text, Loader=FastYaml12Loader)  # noqa: S506
    pure = yaml.load(text, Loader=Yaml12Loader)  # noqa: S506
    assert fast == pure
    assert fast.key_lines == pure.key_lines
    assert fast["steps"].item_lines == pure["steps"].item_lines
    assert fast["steps"][0]["queries"][0].key_lines == pure["steps"][0]["queries"][0].key_lines


@pytest.mark.parametrize(("text", "message"), [
    ("steps: [1, 2\n", "p.yml:2:1: invalid YAML: expected ',' or ']', but got '<stream end>'"),
    ("steps: *nowhere\n", "p.yml:1:8: invalid YAML: found undefined alias 'nowhere'"),
])
def test_yaml_syntax_errors_keep_pyyaml_wording_and_position(tmp_path, text, message):
    with pytest.raises(PlaybookError) as caught:
        load_playbook(write(tmp_path, text))
    assert str(caught.value).endswith(message)


def test_the_model_playbooks_share_one_run_lock():
    import os

    folder = os.path.join(os.path.dirname(os.path.dirname(__file__)), "playbooks")
    locks = {name: load_playbook(os.path.join(folder, name)).lock
             for name in ("full.yml", "incremental.yml", "full_to_incremental.yml")}
    assert set(locks.values()) == {"snowplow-web-model"}


def test_a_lock_key_names_the_run_lock_and_must_not_be_empty(tmp_path):
    body = COLON_PLAYBOOK.replace(":targets:", ":lock: nightly-model\n:targets:")
    assert load_playbook(write(tmp_path, body)).lock == "nightly-model"
    assert load_playbook(write(tmp_path, COLON_PLAYBOOK)).lock is None
    with pytest.raises(PlaybookError, match=r"p\.yml:1: lock must name the run lock"):
        load_playbook(write(tmp_path, "lock: ''\n" + COLON_PLAYBOOK))
    with pytest.raises(PlaybookError, match="lock' must be a plain value"):
        load_playbook(write(tmp_path, "lock: [a, b]\n" + COLON_PLAYBOOK))
