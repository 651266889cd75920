"""Errors that point at the fix: each names the playbook line to change, before any SQL of
the failing part runs."""

from __future__ import annotations

import pytest
from conftest import query_one, target_yaml

from sqlrunner.cli import main


def _plain(*args: str) -> list[str]:
    return [*args, "--progress", "plain"]


def test_a_missing_sql_file_names_the_playbook_line_of_its_file_step_and_query(
        workdir, capsys):
    playbook = workdir.playbook(
        "  - name: build\n    queries:\n"
        "      - name: sessions\n"
        "        file: sql/sesions.sql\n")
    assert main(_plain("-p", playbook)) == 5
    err = capsys.readouterr().err
    assert ("playbook.yml:14: step 'build', query 'sessions': SQL file not found: "
            "sql/sesions.sql") in err


def test_an_upsert_key_the_query_does_not_return_fails_its_step_before_it_runs(
        workdir, database, capsys):
    first = workdir.sql("first.sql", "CREATE TABLE before_it (x int);")
    sibling = workdir.sql("sibling.sql", "CREATE TABLE sibling (x int);")
    merge = workdir.sql("merge.sql", "SELECT 1 AS session_id, 2 AS n;")
    playbook = workdir.playbook(
        "  - name: first\n    queries:\n"
        f"      - name: first\n        file: {first}\n"
        "  - name: merge\n    queries:\n"
        f"      - name: sibling\n        file: {sibling}\n"
        f"      - name: merge\n        file: {merge}\n"
        "        upsert:\n"
        "          table: public.merged\n"
        "          key: [session_id, sesion_idx]\n")
    assert main(_plain("-p", playbook)) == 6
    err = capsys.readouterr().err
    assert ("playbook.yml:23: upsert key 'sesion_idx' is not a column of what "
            "sql/merge.sql returns (session_id, n); the step did not run") in err
    assert "does not exist" not in err
    assert query_one(database, "SELECT to_regclass('before_it') IS NOT NULL") is True
    assert query_one(database, "SELECT to_regclass('sibling') IS NULL") is True
    assert query_one(database, "SELECT to_regclass('public.merged') IS NULL") is True


def test_an_upsert_whose_query_returns_its_keys_runs(workdir, database):
    merge = workdir.sql("merge.sql", "SELECT 1 AS session_id, 2 AS n;")
    playbook = workdir.playbook(
        f"  - name: merge\n    queries:\n      - name: merge\n        file: {merge}\n"
        "        upsert:\n          table: public.merged\n          key: session_id\n")
    assert main(_plain("-p", playbook)) == 0
    assert query_one(database, "SELECT n FROM public.merged") == 2


# Every command that reads a playbook's targets refuses such a target as a run does.
COMMANDS = {"run": ("--progress", "plain"), "dry-run": ("--dry-run",), "status": (),
            "check": ()}


@pytest.mark.no_database
@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("port", ["abc", "5432x", "0", "70000"])
def test_a_port_that_is_not_a_number_is_a_setup_error_naming_its_line(workdir, capsys,
                                                                        port, command):
    sql = workdir.sql("t.sql", "SELECT 1;")
    targets = target_yaml(workdir.params).replace(f"port: {workdir.params.get('port', '5432')}",
                                                  f"port: {port}")
    playbook = workdir.playbook(workdir.steps(("s", [("t", sql)])), targets=targets)
    name = [] if command in ("run", "dry-run") else [command]
    assert main([*name, "-p", playbook, *COMMANDS[command]]) == 5
    err = capsys.readouterr().err
    assert f"playbook.yml:5: target 'db': port '{port}' is not a number" in err
    assert "QUERY FAILURE" not in err


@pytest.mark.no_database
def test_check_names_the_playbook_line_of_a_missing_file_of_any_targets_step(workdir, capsys):
    """The portability check renders every target's steps: a step of the second target alone
    (``targets:``) is checked too, its missing file named as a run names it."""
    sql = workdir.sql("t.sql", "SELECT 1;")
    targets = target_yaml(workdir.params) + target_yaml(workdir.params, name="other")
    playbook = workdir.playbook(
        workdir.steps(("s", [("t", sql)]))
        + "  - name: other_only\n    targets: [other]\n    queries:\n"
          "      - name: gone\n        file: sql/gone.sql\n", targets=targets)
    assert main(["check", "-p", playbook]) == 5
    assert ("playbook.yml:27: step 'other_only', query 'gone': SQL file not found: "
            "sql/gone.sql") in capsys.readouterr().err


def test_a_misspelt_variable_is_pointed_out_and_the_run_goes_on(workdir, database, capsys):
    sql = workdir.sql("t.sql", "CREATE TABLE {{.derived_schema}}_t (x int);")
    playbook = workdir.playbook(workdir.steps(("s", [("t", sql)]), template=True),
                                variables="  derived_schema: derived\n")
    assert main(_plain("-p", playbook, "--var", "derived_shema=mine")) == 0
    err = capsys.readouterr().err
    assert ("sqlrunner: warning: variable 'derived_shema' is used by no template and not "
            "by the playbook; did you mean 'derived_schema'?") in err
    assert query_one(database, "SELECT to_regclass('derived_t') IS NOT NULL") is True


@pytest.mark.no_database
@pytest.mark.parametrize("command", ["status", "check"])
def test_every_command_taking_var_points_out_a_misspelt_one(workdir, capsys, command):
    sql = workdir.sql("t.sql", "SELECT '{{.derived_schema}}';")
    playbook = workdir.playbook(workdir.steps(("s", [("t", sql)]), template=True),
                                variables="  derived_schema: derived\n")
    main([command, "-p", playbook, "--var", "derived_shema=mine"])
    assert ("sqlrunner: warning: variable 'derived_shema' is used by no template and not "
            "by the playbook; did you mean 'derived_schema'?") in capsys.readouterr().err


def test_a_used_variable_from_a_var_file_draws_no_warning(workdir, database, capsys):
    sql = workdir.sql("t.sql", "CREATE TABLE {{.prefix}}_t (x int);")
    playbook = workdir.playbook(workdir.steps(("s", [("t", sql)]), template=True))
    var_file = workdir.root / "vars.yml"
    var_file.write_text("prefix: mine\n")
    assert main(_plain("-p", playbook, "--var-file", str(var_file))) == 0
    assert "warning" not in capsys.readouterr().err
    assert query_one(database, "SELECT to_regclass('mine_t') IS NOT NULL") is True
