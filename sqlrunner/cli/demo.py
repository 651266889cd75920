"""``sqlrunner demo``: the main job end to end on real data, with nothing set up.

Generated web events are loaded into landing in a few batches; after each load
the incremental playbook runs, as a pipeline's post-load hook would; then the
derived tables are shown. With no database configured it runs on the embedded
PostgreSQL, in a database of its own (``sqlrunner_demo``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from sqlrunner.cli.options import ArgumentParser
from sqlrunner.errors import EXIT_OK, PlaybookError
from sqlrunner.secrets import SecretRegistry

DEMO_DATABASE = "sqlrunner_demo"
SUMMARY = (
    ("atomic.events", "SELECT count(*) FROM atomic.events"),
    ("snowplow_landing.events", "SELECT count(*) FROM snowplow_landing.events"),
    ("derived.sessions", "SELECT count(*) FROM derived.sessions"),
    ("derived.page_views", "SELECT count(*) FROM derived.page_views"),
    ("derived.visitors", "SELECT count(*) FROM derived.visitors"),
    ("derived.cookie_id_to_user_id_map",
     "SELECT count(*) FROM derived.cookie_id_to_user_id_map"),
    ("derived.etl_tstamps", "SELECT count(*) FROM derived.etl_tstamps"),
)
TOP_SESSIONS = """
SELECT blended_user_id AS visitor, domain_sessionidx AS session,
       CAST(session_start_tstamp AS date) AS day, event_count AS events,
       page_view_count AS page_views, time_engaged_in_s AS engaged_s,
       absolute_time_in_s AS absolute_s, is_engaged AS engaged,
       default_channel_group AS channel, landing_page_path AS landing_page
FROM derived.sessions
ORDER BY event_count DESC, domain_userid, domain_sessionidx
LIMIT 5
"""
# the columns for analysts (docs/model.md): channels, engagement and scroll depth
CHANNELS = """
SELECT s.default_channel_group AS channel, count(*) AS sessions,
       sum(CASE WHEN s.is_engaged THEN 1 ELSE 0 END) AS engaged,
       sum(s.page_ping_count) AS page_pings,
       round(avg(p.vertical_percentage_scrolled)) AS avg_scrolled_pct
FROM derived.sessions AS s
LEFT JOIN (
  SELECT domain_userid, domain_sessionidx,
         avg(vertical_percentage_scrolled) AS vertical_percentage_scrolled
  FROM derived.page_views
  GROUP BY domain_userid, domain_sessionidx
) AS p USING (domain_userid, domain_sessionidx)
GROUP BY s.default_channel_group
ORDER BY sessions DESC, channel
"""


def find_playbook(name: str) -> Path:
    """A shipped playbook: under the working folder, else beside the package (a clone)."""
    for root in (Path.cwd(), Path(__file__).resolve().parents[2]):
        candidate = root / "playbooks" / name
        if candidate.exists():
            return candidate
    raise PlaybookError(f"playbooks/{name} not found: run the demo from the project folder")


def demo_database(server_dsn: str, fresh: bool) -> str:
    """Create (or recreate) the demo database on the server; its DSN."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    with psycopg.connect(server_dsn, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                               (DEMO_DATABASE,)).fetchone()
        if exists and fresh:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(
                sql.Identifier(DEMO_DATABASE)))
        if not exists or fresh:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DEMO_DATABASE)))
    params = conninfo_to_dict(server_dsn)
    params["dbname"] = DEMO_DATABASE
    return make_conninfo(**params)


def server_dsn(target: str | None, embedded_dir: str | None) -> tuple[str, bool]:
    """The server to use, by the rule of every command: ``--target``, ``SQLRUNNER_TARGET``,
    libpq's environment, else the embedded server; its DSN, and whether it is the embedded
    server. Its line on stderr names the database the demo works in, its own on that
    server, not the one the rule names (which the demo leaves alone)."""
    from dataclasses import replace

    from sqlrunner.execute import targets

    (resolved,) = targets.resolve_targets((), target)
    shown = replace(resolved, database=DEMO_DATABASE,
                    chosen_by=f"{resolved.chosen_by}; the demo's own database on that server")
    for line in targets.target_lines((shown,), embedded_dir):
        sys.stderr.write(f"sqlrunner demo: {line}\n")
    return targets.server_dsn(resolved, embedded_dir), resolved.type == "embedded"


def way_in(dsn: str, embedded: bool, embedded_dir: str | None) -> str:
    """The command that opens psql on the demo's data afterwards (never with a password):
    ``sqlrunner psql``, which starts the embedded server again when it has stopped."""
    import shlex

    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    if embedded:
        folder = f" --embedded-dir {shlex.quote(embedded_dir)}" if embedded_dir else ""
        return f"sqlrunner psql{folder} -d {DEMO_DATABASE}"
    params = {k: v for k, v in conninfo_to_dict(dsn).items()
              if k in ("host", "hostaddr", "port", "dbname", "user", "sslmode", "service")}
    return f"sqlrunner psql --target {shlex.quote(make_conninfo(**params))}"


def command(argv: list[str], secrets: SecretRegistry) -> int:
    """Run the demo; returns the exit code."""
    import psycopg
    from rich.console import Console

    from sqlrunner.api import run_playbook
    from sqlrunner.generate.events import GeneratorConfig, generate_batches
    from sqlrunner.generate.load import copy_rows, create_events_table
    from sqlrunner.report import make_reporter

    parser = ArgumentParser(prog="sqlrunner demo", allow_abbrev=False,
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000, help="events in all (50000)")
    parser.add_argument("--batches", type=int, default=4, help="loads into landing (4)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--target", help="a PostgreSQL server DSN (default: embedded)")
    parser.add_argument("--embedded-dir", dest="embedded_dir")
    parser.add_argument("--keep", action="store_true",
                        help="keep the demo database's earlier data instead of starting afresh")
    args = parser.parse_args(argv)
    console = Console(stderr=True)
    started = time.perf_counter()
    server, embedded = server_dsn(args.target, args.embedded_dir)
    dsn = demo_database(server, fresh=not args.keep)
    playbook = str(find_playbook("incremental.yml"))
    config = GeneratorConfig(events=args.events, seed=args.seed, batches=args.batches)
    with psycopg.connect(dsn) as conn:
        create_events_table(conn, "snowplow_landing")
    for batch in generate_batches(config):
        with psycopg.connect(dsn) as conn:
            loaded = copy_rows(conn, "snowplow_landing", batch.rows)
        console.rule(f"load {batch.index + 1} of {args.batches}: {loaded} events into "
                     "snowplow_landing.events, then the incremental playbook")
        result = run_playbook(playbook, target=dsn, reporter=make_reporter())
        if result.exit_code != 0:
            console.print(f"[red]the incremental run failed (exit {result.exit_code})")
            return result.exit_code
    show_tables(dsn, Console(width=None if sys.stdout.isatty() else 140))
    console.print(f"demo done in {time.perf_counter() - started:.1f}s; the data stays in "
                  f"database {DEMO_DATABASE!r}; query it with: "
                  f"{way_in(dsn, embedded, args.embedded_dir)}", highlight=False, soft_wrap=True)
    return EXIT_OK


def show_tables(dsn: str, console: Any) -> None:
    """Print row counts of the model's tables and its busiest sessions on a rich console."""
    import psycopg
    from rich.table import Table

    counts = Table(title="what the tables hold", title_justify="left")
    counts.add_column("table")
    counts.add_column("rows", justify="right")
    with psycopg.connect(dsn) as conn:
        for name, query in SUMMARY:
            try:
                counts.add_row(name, f"{conn.execute(query).fetchone()[0]:,}")
            except psycopg.errors.UndefinedTable:
                conn.rollback()
                counts.add_row(name, "-")
        top = _query_table(conn, TOP_SESSIONS, "the busiest sessions (derived.sessions)")
        channels = _query_table(conn, CHANNELS, "sessions by channel (default_channel_group)")
    console.print(counts)
    console.print(top)
    console.print(channels)


def _query_table(conn: Any, query: str, title: str) -> Any:
    """A rich table of what ``query`` returns."""
    from rich.table import Table

    cursor = conn.execute(query)
    table = Table(title=title, title_justify="left")
    for column in cursor.description:
        table.add_column(column.name)
    for row in cursor.fetchall():
        table.add_row(*("" if v is None else str(v) for v in row))
    return table
