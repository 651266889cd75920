"""The shipped playbooks on the embedded PostgreSQL: what a new user runs with no server."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from model_reference import derive

from sqlrunner.api import run_playbook
from sqlrunner.cli import main
from sqlrunner.execute import embedded
from sqlrunner.generate.events import GeneratorConfig, as_dict, generate_events
from sqlrunner.generate.load import load_generated

pytestmark = pytest.mark.slow  # not in the quick subset (-m "not slow")

ROOT = Path(__file__).resolve().parent.parent


def test_the_full_model_runs_on_the_embedded_server(embedded_folder):
    folder = embedded_folder
    dsn = embedded.ensure_server(folder)
    config = GeneratorConfig(events=1500, seed=11)
    load_generated(dsn, config, "atomic")
    result = run_playbook(str(ROOT / "playbooks" / "full.yml"), embedded_dir=str(folder))
    assert result.exit_code == 0, result.errors
    expected = derive([as_dict(row) for row in generate_events(config)])
    with psycopg.connect(dsn) as conn:
        sessions = conn.execute("SELECT count(*) FROM derived.sessions").fetchone()[0]
        visitors = conn.execute("SELECT count(*) FROM derived.visitors").fetchone()[0]
    assert sessions == len(expected.sessions) > 0
    assert visitors == len(expected.visitors) > 0


def test_a_dry_run_reaches_the_embedded_server(embedded_folder, capsys):
    code = main(["-p", str(ROOT / "playbooks" / "full.yml"), "--dry-run",
                 "--embedded-dir", str(embedded_folder)])
    assert code == 0
    err = capsys.readouterr().err
    assert "target warehouse: reachable" in err and "PostgreSQL" in err


def test_as_root_a_project_in_a_private_folder_keeps_its_data_where_the_server_can_reach(
        tmp_path, monkeypatch):
    import os

    import pytest

    if os.geteuid() != 0:
        pytest.skip("only root runs the server as another account")
    private = tmp_path / "private" / "project"
    private.mkdir(parents=True)
    (tmp_path / "private").chmod(0o700)
    monkeypatch.chdir(private)
    folder = embedded.default_data_dir()
    assert str(folder).startswith("/var/tmp/sqlrunner-")
    monkeypatch.chdir("/tmp")  # open to every account
    assert str(embedded.default_data_dir()) == "/tmp/.sqlrunner"
