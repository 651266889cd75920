"""The cost of the model's options (issue 16): the 1% incremental batch and the full rebuild
with every option on, and with every option but the bot filter, against the same runs with
the defaults, on the same data set.

Every option is on with values that keep nearly every event (every app_id the generator
makes, a start date before its events, the bot filter, 30 days late allowed, sessions capped
at 30 days), so that the runs do the same work plus the options' own: the event filter's
tests, the session cap's window, three passthroughs per table and two conversions. Per
round, in a shuffled order, for each of the three: a fresh clone of the
incremental section's data set (data.py), 1% of the history moved into landing, one
incremental run, then the full rebuild of the same data in the same clone (as the
incremental section does after its 1% batch). Ratios are taken within a round. The first
run with the options on a clone adds their columns to the derived tables (setup's
migration, part of the measured run). Runs are child processes, as a user runs them.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import data
from bench.db import fresh_database
from bench.incremental import FULL, PLAYBOOK, run_playbook
from bench.stats import Figure, paired

BATCH = 0.01  # of the history
EVERY_OPTION = """\
app_ids: [site, shop]
start_date: '2000-01-01'
ua_bot_filter: true
days_late_allowed: 30
max_session_days: 30
page_view_passthroughs:
  - page_urlquery
  - page_referrer
  - {sql: "LENGTH(page_urlpath)", alias: path_length, type: INT}
session_passthroughs:
  - useragent
  - user_ipaddress
  - {sql: "UPPER(br_family)", alias: browser_upper, type: VARCHAR(50)}
visitor_passthroughs:
  - page_url
  - network_userid
  - {sql: "COALESCE(mkt_source, refr_source)", alias: first_source, type: VARCHAR(255)}
conversions:
  - {name: cart_add, condition: "event = 'struct' AND se_action = 'add'", value: se_value}
  - {name: form_submit, condition: "se_category = 'form' AND se_action = 'submit'"}
"""
# the bot filter apart too: its regular expression over every event's useragent is most of
# the options' cost in the full rebuild
WITHOUT_BOTS = EVERY_OPTION.replace("ua_bot_filter: true", "ua_bot_filter: false")
VARIABLES = {"defaults": None, "every_option": EVERY_OPTION,
             "every_option_but_ua_bot_filter": WITHOUT_BOTS}
MODES = tuple(VARIABLES)


def measure(server_dsn: str, work: Path, history: int, seed: int, runs: int,
            regenerate: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Incremental and full seconds by mode, and the ratios every option / defaults."""
    template = data.template(server_dsn, history, seed, regenerate, log)
    var_files = {}
    for mode, text in VARIABLES.items():
        if text is not None:
            var_files[mode] = work / f"{mode}.yml"
            var_files[mode].write_text(text, encoding="utf-8")
    report = work / "options.json"
    loads = round(BATCH * data.LOADS_PER_HISTORY)
    seconds: dict[str, dict[str, list[float]]] = {m: defaultdict(list) for m in MODES}
    order = random.Random(seed)
    for number in range(runs):
        modes = list(MODES)
        order.shuffle(modes)
        for mode in modes:
            extra = ("--var-file", str(var_files[mode])) if mode in var_files else ()
            with fresh_database(server_dsn, f"options_{history}", template) as dsn:
                data.move_to_landing(dsn, loads)
                run = run_playbook(PLAYBOOK, dsn, report, *extra)
                full = run_playbook(FULL, dsn, report, *extra)
            seconds[mode]["incremental"].append(run["seconds"])
            seconds[mode]["full"].append(full["seconds"])
            log(f"    round {number + 1}/{runs}, {mode}: incremental {run['seconds']:.2f} s, "
                f"full rebuild {full['seconds']:.2f} s")
    return {
        "history": history,
        "batch": BATCH,
        "options": EVERY_OPTION,
        **{f"{kind}_{mode}": Figure.of(seconds[mode][kind]).to_json()
           for mode in MODES for kind in ("incremental", "full")},
        **{f"{kind}_ratio{'' if mode == 'every_option' else '_' + mode}": paired(
            seconds[mode][kind], seconds["defaults"][kind]).to_json()
           for mode in MODES[1:] for kind in ("incremental", "full")},
    }
