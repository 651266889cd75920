"""Where a command goes: one rule for run, status, check, generate and demo, checked with
real environment variables (in subprocesses, or set in the test's own process), against a
database of the test's own.

--target, then SQLRUNNER_TARGET, then libpq's environment (PGHOST, PGDATABASE,
PGSERVICE...), then the playbook's targets; an embedded target yields to the environment.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import NEVER_CREATED, query_one, run_sql, suite_database_name, target_yaml

from sqlrunner.execute.targets import (
    LIBPQ_SERVER_ENV,
    TARGET_ENV,
    describe_target,
    resolve_targets,
)
from sqlrunner.playbook import TargetSpec

EMBEDDED_TARGET = "  - name: warehouse\n    type: embedded\n"
SECRET = "sekret-pw-5150"


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without any database setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if k not in LIBPQ_SERVER_ENV and k not in (TARGET_ENV, "PGPASSWORD")}
    env.update(extra)
    return env


def libpq_env(params: dict[str, str]) -> dict[str, str]:
    """PG* variables naming the test's database, and a password that must never show."""
    return {"PGHOST": params.get("host", "127.0.0.1"), "PGPORT": params.get("port", "5432"),
            "PGUSER": params.get("user", "postgres"), "PGDATABASE": params["dbname"],
            "PGPASSWORD": SECRET}


def sqlrunner(args: list[str], env: dict[str, str], cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sqlrunner", *args], capture_output=True,
                          text=True, timeout=120, env=env, cwd=cwd)


def make_playbook(workdir, targets: str) -> str:
    sql = workdir.sql("t.sql", "CREATE TABLE landed AS SELECT 1 AS x;")
    return workdir.playbook(workdir.steps(("s", [("t", sql)])), targets=targets)


def test_an_embedded_target_yields_to_libpq_environment(workdir, db_params):
    playbook = make_playbook(workdir, EMBEDDED_TARGET)
    env = clean_env(**libpq_env(db_params))
    done = sqlrunner(["-p", playbook], env, workdir.root)
    assert done.returncode == 0, done.stderr
    dsn = f"host={db_params['host']} port={db_params['port']} user={db_params['user']} " \
          f"dbname={db_params['dbname']}"
    assert query_one(dsn, "SELECT x FROM landed") == 1
    first = done.stderr.splitlines()[0]
    assert (f"target warehouse: {db_params['host']}:{db_params['port']}/{db_params['dbname']} "
            f"as user {db_params['user']}") in first
    assert "libpq's environment (PGHOST, PGPORT, PGDATABASE, PGUSER)" in first
    assert SECRET not in done.stderr + done.stdout

    status = sqlrunner(["status", "-p", playbook], env, workdir.root)
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[0] == first.split(" ", 1)[1]
    assert "succeeded" in status.stdout


def test_sqlrunner_target_wins_over_libpq_environment(workdir, db_params):
    playbook = make_playbook(workdir, EMBEDDED_TARGET)
    env = clean_env(**{**libpq_env(db_params), "PGDATABASE": NEVER_CREATED},
                    SQLRUNNER_TARGET=f"host={db_params['host']} port={db_params['port']} "
                                     f"user={db_params['user']} dbname={db_params['dbname']}")
    done = sqlrunner(["-p", playbook], env, workdir.root)
    assert done.returncode == 0, done.stderr
    assert "(chosen by SQLRUNNER_TARGET)" in done.stderr.splitlines()[0]
    assert run_sql(workdir_dsn(db_params), "SELECT x FROM landed") == [(1,)]


def test_the_command_line_target_wins_over_sqlrunner_target(workdir, db_params):
    playbook = make_playbook(workdir, EMBEDDED_TARGET)
    env = clean_env(SQLRUNNER_TARGET=f"host={db_params['host']} port={db_params['port']} "
                                     f"user={db_params['user']} dbname={NEVER_CREATED}")
    done = sqlrunner(["-p", playbook, "--target", workdir_dsn(db_params)], env, workdir.root)
    assert done.returncode == 0, done.stderr
    assert "(chosen by --target)" in done.stderr.splitlines()[0]
    assert run_sql(workdir_dsn(db_params), "SELECT x FROM landed") == [(1,)]


def test_a_playbook_that_names_its_server_keeps_it_and_says_the_environment_is_ignored(
        workdir, db_params):
    playbook = make_playbook(workdir, target_yaml(db_params, name="db"))
    env = clean_env(**{**libpq_env(db_params), "PGDATABASE": NEVER_CREATED})
    done = sqlrunner(["-p", playbook], env, workdir.root)
    assert done.returncode == 0, done.stderr
    first = done.stderr.splitlines()[0]
    assert f"/{db_params['dbname']} as user" in first
    assert "the playbook (line 2); PGHOST, PGPORT, PGDATABASE, PGUSER ignored" in first
    assert run_sql(workdir_dsn(db_params), "SELECT x FROM landed") == [(1,)]


def test_a_libpq_service_names_the_database(workdir, db_params, tmp_path):
    services = tmp_path / "pg_service.conf"
    services.write_text(f"[model]\nhost={db_params['host']}\nport={db_params['port']}\n"
                        f"user={db_params['user']}\ndbname={db_params['dbname']}\n")
    playbook = make_playbook(workdir, EMBEDDED_TARGET)
    env = clean_env(PGSERVICEFILE=str(services), PGSERVICE="model")
    done = sqlrunner(["-p", playbook], env, workdir.root)
    assert done.returncode == 0, done.stderr
    assert "libpq's environment (PGSERVICE)" in done.stderr.splitlines()[0]
    assert run_sql(workdir_dsn(db_params), "SELECT x FROM landed") == [(1,)]


def test_with_nothing_configured_an_embedded_target_stays_embedded(monkeypatch):
    for variable in (*LIBPQ_SERVER_ENV, TARGET_ENV):
        monkeypatch.delenv(variable, raising=False)
    (target,) = resolve_targets((TargetSpec(name="w", type="embedded", line=3),))
    assert target.type == "embedded"
    assert target.chosen_by.startswith("the playbook (line 3); no database configured")
    monkeypatch.setenv("PGDATABASE", "elsewhere")
    (target,) = resolve_targets((TargetSpec(name="w", type="embedded", line=3),))
    assert (target.type, target.database) == ("postgres", "elsewhere")


def test_a_target_without_a_username_says_so_rather_than_naming_an_empty_user():
    target = TargetSpec(name="w", type="postgres", line=2, host="db.example", port="5432",
                        database="snowplow")
    assert describe_target(target) == "db.example:5432/snowplow with no username"
    assert describe_target(TargetSpec(name="w", type="redshift", line=2, host="r.example",
                                      port="5439", database="dev", options={"iam": True})
                           ) == "r.example:5439/dev as user from IAM"


def test_generate_loads_where_the_environment_points(workdir, db_params):
    env = clean_env(**libpq_env(db_params))
    done = sqlrunner(["generate", "--events", "300"], env, workdir.root)
    assert done.returncode == 0, done.stderr
    assert f"/{db_params['dbname']} as user" in done.stderr
    assert SECRET not in done.stderr + done.stdout
    assert query_one(workdir_dsn(db_params), "SELECT count(*) FROM snowplow_landing.events") \
        == 300


def test_generate_batch_i_of_k_continues_one_event_stream(workdir, db_params, database):
    env = clean_env()
    stream = ["generate", "--events", "900", "--batches", "3", "--seed", "4"]
    for batch in ("1", "2", "3"):
        done = sqlrunner([*stream, "--batch", batch, "--target", database], env, workdir.root)
        assert done.returncode == 0, done.stderr
        assert f"in batch {batch} of 3" in done.stdout
    done = sqlrunner([*stream, "--schema", "whole", "--dsn", database], env, workdir.root)
    assert done.returncode == 0, done.stderr
    split = run_sql(database, "SELECT etl_tstamp, event_id, domain_userid FROM "
                              "snowplow_landing.events ORDER BY event_id")
    whole = run_sql(database, "SELECT etl_tstamp, event_id, domain_userid FROM whole.events "
                              "ORDER BY event_id")
    assert split == whole
    assert len({etl for etl, _, _ in split}) == 3
    # Visitors come back across loads, as real traffic does.
    assert query_one(database, "SELECT count(DISTINCT domain_userid) FROM "
                               "snowplow_landing.events e WHERE EXISTS (SELECT 1 FROM "
                               "snowplow_landing.events o WHERE o.domain_userid = "
                               "e.domain_userid AND o.etl_tstamp <> e.etl_tstamp)") > 0


@pytest.mark.parametrize("batch", ["0", "4"])
def test_generate_refuses_a_batch_outside_the_stream(batch, capsys):
    from sqlrunner.cli import main

    assert main(["generate", "--batches", "3", "--batch", batch, "--target",
                 "host=/nonexistent"]) == 2
    assert "--batch" in capsys.readouterr().err


def test_a_dry_run_first_says_where_each_target_goes_and_which_rule_chose_it(workdir,
                                                                            db_params):
    playbook = make_playbook(workdir, EMBEDDED_TARGET)
    done = sqlrunner(["-p", playbook, "--dry-run"], clean_env(**libpq_env(db_params)),
                     workdir.root)
    assert done.returncode == 0, done.stderr
    first = done.stderr.splitlines()[0]
    assert first.startswith(f"dry run: target warehouse: {db_params['host']}:"
                            f"{db_params['port']}/{db_params['dbname']} as user "
                            f"{db_params['user']} (chosen by libpq's environment")
    assert SECRET not in done.stderr + done.stdout


@pytest.mark.no_database
def test_check_renders_the_steps_of_every_target_of_the_playbook(workdir, capsys):
    """Not one stand-in target named like the first: a step of the second target alone is
    checked too, and templates see each target's own name."""
    plain = workdir.sql("plain.sql", "SELECT 1;")
    other = workdir.sql("other.sql", "-- {{.target_name}}\nCREATE TABLE t (id SERIAL);\n")
    targets = target_yaml(workdir.params) + target_yaml(workdir.params, name="other")
    playbook = workdir.playbook(
        workdir.steps(("s", [("plain", plain)]))
        + "  - name: other_only\n    targets: [other]\n    queries:\n"
          f"      - name: other\n        file: {other}\n        template: true\n",
        targets=targets)
    from sqlrunner.cli import main

    assert main(["check", "-p", playbook, "--dialect", "redshift"]) == 1
    assert "sql/other.sql:2:" in capsys.readouterr().out
    from sqlrunner.check import prepare_for

    plan = prepare_for(playbook, "redshift")
    assert [(t.target.name, t.target.type) for t in plan.targets] == [
        ("db", "redshift"), ("other", "redshift")]
    (query,) = plan.targets[1].queries[1:]
    assert query.sql.startswith("-- other\n")


def test_the_demo_goes_where_the_environment_points_in_a_database_of_its_own(
        db_params, database, monkeypatch, capsys, tmp_path):
    from sqlrunner.cli import demo, main

    own = suite_database_name("demo_")
    monkeypatch.setattr(demo, "DEMO_DATABASE", own)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(TARGET_ENV, raising=False)
    for variable, value in libpq_env(db_params).items():
        monkeypatch.setenv(variable, value)
    try:
        assert main(["demo", "--events", "600", "--batches", "2"]) == 0
        err = capsys.readouterr().err
        assert err.startswith(
            f"sqlrunner demo: target: {db_params['host']}:{db_params['port']}/{own} "
            f"as user {db_params['user']} (chosen by libpq's environment (PGHOST, PGPORT, "
            "PGDATABASE, PGUSER); the demo's own database on that server)")
        assert SECRET not in err
        own_dsn = workdir_dsn({**db_params, "dbname": own})
        assert query_one(own_dsn, "SELECT count(*) FROM atomic.events") == 600
        # The database PGDATABASE names is left alone.
        assert query_one(database, "SELECT to_regnamespace('atomic') IS NULL") is True
    finally:
        run_sql(workdir_dsn({**db_params, "dbname": "postgres"}),
                f'DROP DATABASE IF EXISTS "{own}" WITH (FORCE)')


def workdir_dsn(params: dict[str, str]) -> str:
    return (f"host={params['host']} port={params['port']} user={params['user']} "
            f"dbname={params['dbname']}")
