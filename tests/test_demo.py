"""sqlrunner demo: loads in batches, the incremental playbook after each, the tables shown."""

from __future__ import annotations

import pytest

from sqlrunner.cli import main

pytestmark = pytest.mark.slow  # not in the quick subset (-m "not slow")


def test_the_demo_models_every_batch_and_shows_the_tables(server_dsn, capsys, monkeypatch):
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).resolve().parent.parent)
    assert main(["demo", "--events", "3000", "--batches", "3", "--target", server_dsn]) == 0
    out = capsys.readouterr().out
    assert "derived.sessions" in out and "the busiest sessions" in out
    assert "3,000" in out  # every event reached atomic.events
