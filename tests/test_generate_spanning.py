"""The generator's ``spanning`` shape (issue 18): batches that reach back over the whole
history, loaded into a database, and the incremental model exact on them."""

from __future__ import annotations

import hashlib

import pytest
from conftest import query_one, run_sql
from test_model_full import HIGH_RATES, load
from test_model_incremental import (
    LANDING,
    assert_a_full_rebuild_gives_the_same,
    assert_models,
    assert_moved_exactly,
    run_incremental,
)

from sqlrunner.cli import main as cli_main
from sqlrunner.generate import COLUMNS, SHAPES, GeneratorConfig, generate_batches, generate_events
from sqlrunner.generate.events import as_dict
from sqlrunner.generate.load import load_generated

# sha256 of repr(list(generate_events(GeneratorConfig(events=3000, seed=42, batches=3)))),
# taken from the generator before the shapes existed: the default shape's events must not
# change (the tests' fixtures and the benchmarks' data sets are made from them)
DEFAULT_DIGEST = "76aacac99492d472b4b0d58c2aecdb516562b488449073abf7da3901770a4e2e"


def test_the_default_shape_gives_the_same_events_as_before_the_shapes() -> None:
    for config in (GeneratorConfig(events=3000, seed=42, batches=3),
                   GeneratorConfig(events=3000, seed=42, batches=3, shape="default")):
        rows = list(generate_events(config))
        assert hashlib.sha256(repr(rows).encode()).hexdigest() == DEFAULT_DIGEST


def test_the_spanning_shape_is_deterministic_and_exact_in_count() -> None:
    config = GeneratorConfig(events=4000, seed=9, batches=4, shape="spanning")
    first = list(generate_events(config))
    assert first == list(generate_events(config))
    assert len(first) == 4000
    assert first != list(generate_events(GeneratorConfig(events=4000, seed=9, batches=4)))


def test_an_unknown_shape_is_refused(capsys: pytest.CaptureFixture) -> None:
    assert SHAPES == ("default", "spanning")
    with pytest.raises(ValueError, match="shape 'wide'"):
        GeneratorConfig(shape="wide")
    assert cli_main(["generate", "--shape", "wide", "--dsn", "host=/nonexistent"]) == 2
    assert "spanning" in capsys.readouterr().err


def reach(dsn: str, schema: str) -> dict[str, float]:
    """What the last load of ``schema.events`` reaches in the loads before it: the share of
    its cookies seen before, the share of the earlier events those cookies hold, and its
    events collected over an hour after they happened into sessions seen before."""
    table = f"{schema}.events"
    last = query_one(dsn, f"SELECT MAX(etl_tstamp) FROM {table}")
    cookies = (f"SELECT DISTINCT domain_userid FROM {table} "
               f"WHERE etl_tstamp = %(last)s AND domain_userid <> ''")
    seen, held, history, late = run_sql(dsn, f"""
        SELECT (SELECT AVG((EXISTS (SELECT FROM {table} h WHERE h.etl_tstamp < %(last)s
                                    AND h.domain_userid = c.domain_userid))::int)
                FROM ({cookies}) c),
               (SELECT COUNT(*) FROM {table} WHERE etl_tstamp < %(last)s
                  AND domain_userid IN ({cookies})),
               (SELECT COUNT(*) FROM {table} WHERE etl_tstamp < %(last)s),
               (SELECT COUNT(*) FROM {table} b WHERE b.etl_tstamp = %(last)s
                  AND b.collector_tstamp > b.derived_tstamp + INTERVAL '1 hour'
                  AND EXISTS (SELECT FROM {table} h WHERE h.etl_tstamp < %(last)s
                              AND h.domain_userid = b.domain_userid
                              AND h.domain_sessionidx = b.domain_sessionidx))""",
                                     {"last": last})[0]
    return {"seen": float(seen), "held": held / history, "late": late}


def test_spanning_batches_reach_back_over_the_history(database: str) -> None:
    """Eleven loads of 2,000 events; the last one's reach into the ten before it. The
    default shape: under half of its cookies seen before, holding under 10% of the earlier
    events. The spanning shape: most cookies seen before, holding several times that
    share, and events collected late into sessions already loaded."""
    for shape in SHAPES:
        load_generated(database, GeneratorConfig(events=22_000, seed=6, batches=11,
                                                 shape=shape), f"shape_{shape}")
    default, spanning = reach(database, "shape_default"), reach(database, "shape_spanning")
    assert default["seen"] < 0.5 and default["held"] < 0.1
    assert spanning["seen"] > 0.65
    assert spanning["held"] > 3 * default["held"]
    assert spanning["late"] >= 3


def test_the_command_loads_one_load_of_the_spanning_stream(
        database: str, capsys: pytest.CaptureFixture) -> None:
    assert cli_main(["generate", "--shape", "spanning", "--events", "3000", "--seed", "4",
                     "--batches", "3", "--batch", "2", "--dsn", database]) == 0
    assert "batch 2 of 3" in capsys.readouterr().out
    config = GeneratorConfig(events=3000, seed=4, batches=3, shape="spanning")
    second = list(generate_batches(config))[1].rows
    key = COLUMNS.index("event_fingerprint")
    loaded = [r[0] for r in run_sql(database, "SELECT event_fingerprint "
                                              "FROM snowplow_landing.events")]
    assert sorted(loaded) == sorted(r[key] for r in second) and len(loaded) > 500


@pytest.mark.slow
def test_incremental_runs_on_spanning_batches_equal_a_full_rebuild(database: str) -> None:
    """Six loads of the spanning shape (with every awkward case at the tests' high rates),
    the incremental playbook after each: the model equals the reference and the full
    playbook over everything loaded, and the later loads did reach back (cookies and
    sessions modelled by earlier runs)."""
    config = GeneratorConfig(events=3000, seed=23, batches=6, rates=HIGH_RATES,
                             shape="spanning")
    batches = [[as_dict(r) for r in batch.rows] for batch in generate_batches(config)]
    assert len(batches) == 6
    loaded: list[dict] = []
    reached_cookies = reached_sessions = 0
    for batch in batches:
        modelled = {e["domain_userid"] for e in loaded}
        sessions = {(e["domain_userid"], e["domain_sessionidx"]) for e in loaded}
        reached_cookies += len({e["domain_userid"] for e in batch if e["domain_userid"]}
                               & modelled)
        reached_sessions += sum((e["domain_userid"], e["domain_sessionidx"]) in sessions
                                for e in batch if e["domain_userid"])
        load(database, batch, LANDING)
        loaded += batch
        run_incremental(database)
        assert_models(database, loaded)
    assert reached_cookies >= 20 and reached_sessions >= 20
    assert_moved_exactly(database, loaded)
    assert_a_full_rebuild_gives_the_same(database)
