"""Incremental runs (playbooks/incremental.yml) against the full rebuild of the same data, the
empty run, and the move from landing to atomic against a bare ``INSERT ... SELECT`` plus
``DELETE``.

For each history size and each round: for each batch (0.1%, 1%, 10% of the history), a
fresh clone of the data set (history modelled, see data.py), the batch moved into
landing, one incremental run (timed, with its report), then the full rebuild of the same
data (history plus batch, now all in atomic) in the same clone, so each ratio compares two
runs of the same round. With ``full_per_batch`` off (the quick size) the full rebuild runs
only after the 1% batch, and every batch of the round is compared with it (data 0.9% to
9% different). The empty run: a clone with nothing in landing, run several times; the
counters of rows inserted, updated and deleted in the model's tables must not move. Runs
are child processes, as a user runs them (checkpoints on).
"""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from bench import data, process
from bench.db import ROOT, fresh_database
from bench.stats import Figure, memory_figure, paired

PLAYBOOK = ROOT / "playbooks" / "incremental.yml"
FULL = ROOT / "playbooks" / "full.yml"
MODEL_SCHEMAS = ("atomic", "snowplow_landing", "derived")
# The commit's move: from the batch manifest on (the manifest, atomic's insert, the delete).
MOVE_START = re.compile(r"INSERT\s+INTO\s+\S*etl_tstamps\b", re.IGNORECASE)


def available() -> str | None:
    """None when the incremental mode can be benchmarked, else the reason it cannot."""
    if not PLAYBOOK.exists():
        return "playbooks/incremental.yml does not exist yet"
    return None


def run_playbook(playbook: Path, dsn: str, report: Path, *extra: str) -> dict[str, Any]:
    """One run as a child process (``extra``: more arguments, e.g. ``--var-file``): wall
    seconds, peak RSS, and per-step seconds."""
    done = process.run(process.runner_command(
        "-p", str(playbook), "--target", dsn, "--progress", "plain", "--report", str(report),
        *extra), env=process.runner_env(), cwd=ROOT, memory=True)
    result = json.loads(report.read_text())
    if result["exit_code"] != 0:
        raise RuntimeError(f"{playbook.name} failed: {done.stderr[-2000:]}")
    steps: dict[str, float] = {}
    for query in result["queries"]:
        steps[query["step"]] = max(steps.get(query["step"], 0.0), query["seconds"])
    executed = sum(1 for q in result["queries"] if q["status"] == "succeeded")
    return {"seconds": done.seconds, "cpu_seconds": done.cpu_seconds, "max_rss": done.max_rss,
            "steps": steps, "executed": executed,
            "queries": {f"{q['step']}/{q['query']}": q["seconds"] for q in result["queries"]}}


def _writes(dsn: str) -> int:
    """Rows inserted, updated and deleted so far in the model's tables (statistics)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return int(conn.execute(
            "SELECT COALESCE(SUM(n_tup_ins + n_tup_upd + n_tup_del), 0) "
            "FROM pg_stat_user_tables WHERE schemaname = ANY(%s)",
            (list(MODEL_SCHEMAS),)).fetchone()[0])


def _counts(dsn: str) -> dict[str, int]:
    """Rows in atomic, landing and the derived tables."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return {table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                for table in ("atomic.events", "snowplow_landing.events", "derived.sessions",
                              "derived.page_views")}


TOUCHED = (
    "cookies", "history_events_of_cookies", "sessions", "history_events_of_sessions",
    "cookies_seen_before", "events_into_modelled_sessions", "history")


def _touched(dsn: str) -> dict[str, int]:
    """What landing's batch reaches in the history (before the run): its cookies (not NULL,
    not '', as the model's touched set) and the events atomic holds for them (what a run
    recomputes besides the batch itself; copies of batch event_ids under other cookies add a
    few more), its sessions and their events in atomic, the cookies atomic already has, the
    batch's events into sessions atomic already has (late events, sessions that span
    loads), and the events of the history."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        values = conn.execute(
            "WITH sessions AS (SELECT DISTINCT domain_userid, domain_sessionidx "
            "FROM snowplow_landing.events WHERE domain_userid <> ''), "
            "cookies AS (SELECT DISTINCT domain_userid FROM sessions) "
            "SELECT (SELECT COUNT(*) FROM cookies), "
            "(SELECT COUNT(*) FROM atomic.events WHERE domain_userid IN "
            "(SELECT domain_userid FROM cookies)), "
            "(SELECT COUNT(*) FROM sessions), "
            "(SELECT COUNT(*) FROM atomic.events a JOIN sessions s "
            "ON a.domain_userid = s.domain_userid "
            "AND a.domain_sessionidx = s.domain_sessionidx), "
            "(SELECT COUNT(*) FROM cookies c WHERE EXISTS (SELECT FROM atomic.events a "
            "WHERE a.domain_userid = c.domain_userid)), "
            "(SELECT COUNT(*) FROM snowplow_landing.events l WHERE EXISTS (SELECT FROM "
            "atomic.events a WHERE a.domain_userid = l.domain_userid "
            "AND a.domain_sessionidx = l.domain_sessionidx)), "
            "(SELECT COUNT(*) FROM atomic.events)").fetchone()
    return dict(zip(TOUCHED, (int(v) for v in values), strict=True))


def touched_text(touched: dict[str, int]) -> str:
    """The touched set as issue 18's paragraph gives it."""
    return (f"{touched['sessions']:,} sessions of {touched['cookies']:,} cookies "
            f"({touched['cookies_seen_before']:,} seen before); the cookies hold "
            f"{touched['history_events_of_cookies']:,} events "
            f"({touched['history_events_of_cookies'] / max(touched['history'], 1):.1%} of "
            f"history), the sessions {touched['history_events_of_sessions']:,}; "
            f"{touched['events_into_modelled_sessions']:,} events into modelled sessions")


def measure_history(server_dsn: str, work: Path, history: int, batches: list[float],
                    seed: int, runs: int, regenerate: bool, full_per_batch: bool,
                    log: Callable[[str], None], shape: str = "default") -> dict[str, Any]:
    """The batches, their full rebuilds and the empty run on one history size and shape."""
    template = data.template(server_dsn, history, seed, regenerate, log, shape)
    report = work / f"incremental_{history}.json"
    per_batch: dict[float, dict[str, list]] = {
        b: defaultdict(list) for b in batches}
    baseline = min(batches, key=lambda b: abs(b - 0.01))  # the batch of issue 10's target
    for number in range(runs):
        fulls: dict[float, float] = {}
        for share in sorted(batches, key=lambda b: b != baseline):
            loads = max(1, round(share * data.LOADS_PER_HISTORY))
            with fresh_database(server_dsn, f"incr_{history}", template) as dsn:
                events = data.move_to_landing(dsn, loads)
                touched = _touched(dsn) if number == 0 else {}
                before = _counts(dsn)
                run = run_playbook(PLAYBOOK, dsn, report)
                after = _counts(dsn)
                if full_per_batch or share == baseline:
                    fulls[share] = run_playbook(FULL, dsn, report)["seconds"]
            full = fulls.get(share, fulls[baseline])
            entry = per_batch[share]
            entry["events"].append(events)
            if number == 0:
                entry["touched"] = touched
                log(f"    batch {share:.1%}: {touched_text(touched)}")
            entry["run"].append(run["seconds"])
            entry["cpu"].append(run["cpu_seconds"])
            entry["full"].append(full)
            entry["rss"].append(run["max_rss"])
            entry["modelled"].append(after["atomic.events"] - before["atomic.events"])
            entry["landing_left"].append(after["snowplow_landing.events"])
            for step, value in run["steps"].items():
                entry[f"step:{step}"].append(value)
            same = "same data" if share in fulls else f"history + {baseline:.0%} batch"
            log(f"    round {number + 1}/{runs}, batch {share:.1%} ({events:,} events): "
                f"incremental {run['seconds']:.2f} s, full rebuild ({same}) {full:.2f} s")
    results = []
    for share, entry in per_batch.items():
        steps = {key[5:]: Figure.of(values).to_json()
                 for key, values in entry.items() if key.startswith("step:")}
        results.append({
            "share": share, "events": entry["events"][0],
            "full_rebuild_of": ("the same data" if full_per_batch or share == baseline
                                else f"the history and the {baseline:.0%} batch"),
            "run": Figure.of(entry["run"]).to_json(),
            "runner_cpu": Figure.of(entry["cpu"]).to_json(),
            "full_rebuild": Figure.of(entry["full"]).to_json(),
            "ratio_to_full": paired(entry["run"], entry["full"], "share").to_json(),
            "touched_cookies": entry["touched"]["cookies"],
            "history_events_of_touched_cookies": entry["touched"]["history_events_of_cookies"],
            "touched": entry["touched"],
            "seconds_per_thousand_events": Figure.of(
                [r * 1000 / entry["events"][0] for r in entry["run"]]).to_json(),
            "runner_max_rss": memory_figure(entry["rss"]),
            "every_event_moved_to_atomic": all(
                m == e for m, e in zip(entry["modelled"], entry["events"], strict=True))
            and not any(entry["landing_left"]),
            "steps": steps,
        })
    empty = measure_empty(server_dsn, template, work, runs, log)
    return {"events": history, "shape": shape, "batches": results, "empty": empty,
            "full_rebuild": Figure.of(per_batch[baseline]["full"]).to_json()}


def measure_empty(server_dsn: str, template: str, work: Path, runs: int,
                  log: Callable[[str], None]) -> dict[str, Any]:
    """The run with nothing in landing, ``runs`` times on one clone; what it changed."""
    report = work / "incremental_empty.json"
    seconds, cpu, changed, executed = [], [], [], []
    with fresh_database(server_dsn, "incr_empty", template) as dsn:
        run_playbook(PLAYBOOK, dsn, report)  # warm-up
        for _ in range(runs):
            before, counts = _writes(dsn), _counts(dsn)
            run = run_playbook(PLAYBOOK, dsn, report)
            time.sleep(0.6)  # the statistics of the runner's sessions reach the collector
            changed.append(_writes(dsn) - before + (_counts(dsn) != counts))
            seconds.append(run["seconds"])
            cpu.append(run["cpu_seconds"])
            executed.append(run["executed"])
    log(f"    empty run: {Figure.of(seconds).text(1000, 'ms', 0)}, "
        f"{max(changed)} rows written to the model's tables")
    return {"run": Figure.of(seconds).to_json(), "runner_cpu": Figure.of(cpu).to_json(),
            "rows_written": max(changed),
            "queries_executed": executed[0]}


def _log_shapes(results: dict[str, Any], shapes: tuple[str, ...],
                log: Callable[[str], None]) -> None:
    """The 1% batch on each shape's first history, side by side."""
    for shape in shapes:
        histories = (results["histories"] if shape == "default"
                     else results[shape]["histories"])
        if not histories:
            continue
        history = histories[0]
        batch = min(history["batches"], key=lambda b: abs(b["share"] - 0.01))
        ratio = batch["ratio_to_full"]
        log(f"  shape {shape}, {batch['share']:.1%} batch of {history['events']:,}: "
            f"run {batch['run']['median']:.2f} s, full rebuild "
            f"{batch['full_rebuild']['median']:.2f} s, ratio {ratio['median']:.1%}; "
            f"{touched_text(batch['touched'])}")


def move_sql(dsn: str) -> tuple[str, str]:
    """The model's move as the playbook renders it for ``dsn``: the claim file, and the
    commit file from the batch manifest on."""
    from sqlrunner import api

    plan = api.prepare(str(PLAYBOOK), api.RunOptions(target=dsn))
    rendered = {(q.step, q.query): q.sql or "" for q in plan.targets[0].queries}
    claim, commit = rendered[("claim", "claim")], rendered[("commit", "commit")]
    start = MOVE_START.search(commit)
    if start is None:
        raise LookupError("the commit query has no batch manifest insert to start the move at")
    return claim, commit[start.start():]


def measure_move(server_dsn: str, history: int, share: float, seed: int, runs: int,
                 log: Callable[[str], None]) -> dict[str, Any]:
    """The model's move (claim into events_in_progress, then manifest, insert into atomic,
    delete) against a bare ``INSERT INTO atomic SELECT ... FROM landing; DELETE`` of the same
    rows; each on a fresh clone holding the same batch, alternated."""
    template = data.template(server_dsn, history, seed, False, log)
    loads = max(1, round(share * data.LOADS_PER_HISTORY))
    model, bare, events = [], [], 0
    for _ in range(runs):
        with fresh_database(server_dsn, "move_model", template) as dsn:
            events = data.move_to_landing(dsn, loads)
            claim, tail = move_sql(dsn)
            with psycopg.connect(dsn, autocommit=True) as conn:
                started = time.perf_counter()
                conn.execute(claim)
                conn.execute(tail)
                model.append(time.perf_counter() - started)
                assert conn.execute("SELECT COUNT(*) FROM snowplow_landing.events_in_progress"
                                    ).fetchone()[0] == 0
        with fresh_database(server_dsn, "move_bare", template) as dsn:
            data.move_to_landing(dsn, loads)
            with psycopg.connect(dsn, autocommit=True) as conn:
                started = time.perf_counter()
                conn.execute("INSERT INTO atomic.events SELECT * FROM snowplow_landing.events;"
                             "\nDELETE FROM snowplow_landing.events;")
                bare.append(time.perf_counter() - started)
    log(f"    move of {events:,} events: model {Figure.of(model).text()}, bare "
        f"{Figure.of(bare).text()}")
    return {"history": history, "share": share, "events": events,
            "model": Figure.of(model).to_json(), "bare": Figure.of(bare).to_json(),
            "ratio": paired(model, bare).to_json()}


def measure(server_dsn: str, work: Path, histories: list[int], batches: list[float],
            seed: int, runs: int, regenerate: bool = False, full_per_batch: bool = True,
            log: Callable[[str], None] = print,
            shapes: tuple[str, ...] = ("default", "spanning")) -> dict[str, Any]:
    """This section's figures, or ``{"skipped": reason}``. ``histories`` are the default
    shape's; every other shape in ``shapes`` is measured on the first history size, its
    figures under ``results[shape]``, for the batches up to 1% (on the spanning shape the
    10% batch costs twice a full rebuild: 45 s against 21 s at 1M, seed 13)."""
    reason = available()
    if reason is not None:
        log(f"  skipped: {reason}")
        return {"skipped": reason}
    results: dict[str, Any] = {"histories": []}
    if "default" in shapes:
        for history in histories:
            log(f"  {history:,} events of history")
            results["histories"].append(measure_history(
                server_dsn, work, history, batches, seed, runs, regenerate, full_per_batch,
                log))
    for shape in shapes:
        if shape != "default":
            log(f"  {histories[0]:,} events of history, shape {shape}")
            small = [b for b in batches if b <= 0.01] or batches
            results[shape] = {"histories": [measure_history(
                server_dsn, work, histories[0], small, seed, runs, regenerate,
                full_per_batch, log, shape)]}
    _log_shapes(results, shapes, log)
    if "default" not in shapes:
        return results
    log(f"  the move, {batches[-1]:.0%} of {histories[0]:,}")
    try:
        results["move"] = measure_move(server_dsn, histories[0], batches[-1], seed, runs, log)
    except LookupError as err:
        results["move"] = {"skipped": str(err)}
    return results
