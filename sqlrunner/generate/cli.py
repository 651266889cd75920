"""The ``sqlrunner generate`` command: generate synthetic events and load them into a database."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence
from datetime import datetime

import psycopg

from sqlrunner.generate.events import EventRates, GeneratorConfig
from sqlrunner.generate.load import load_generated

SCHEMA_ALIASES = {"landing": "snowplow_landing", "atomic": "atomic"}
RATE_NAMES = tuple(f.name for f in dataclasses.fields(EventRates))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sqlrunner generate", allow_abbrev=False,
        description="Generate synthetic Snowplow web events and COPY them into <schema>.events.")
    parser.add_argument("--events", type=int, default=10_000, help="how many (default 10000)")
    parser.add_argument("--seed", type=int, default=1, help="the same seed gives the same events")
    parser.add_argument("--batches", type=int, default=1,
                        help="consecutive loads, each with its own etl_tstamp (default 1)")
    parser.add_argument("--schema", default="landing",
                        help="landing (snowplow_landing), atomic, or any schema name")
    parser.add_argument("--dsn", default=None,
                        help="libpq connection string (default: $SQLRUNNER_TARGET, else libpq's "
                             "PG* environment)")
    parser.add_argument("--start", default="2024-03-01T00:00:00",
                        help="first collector time, ISO 8601 (default 2024-03-01T00:00:00)")
    parser.add_argument("--days", type=float, default=7.0,
                        help="nominal span of collector times in days (default 7)")
    parser.add_argument("--heartbeat", type=int, default=10,
                        help="page ping interval of the simulated tracker (default 10)")
    parser.add_argument("--rate", action="append", default=[], metavar="NAME=VALUE",
                        help="override one case's rate (repeatable): " + ", ".join(RATE_NAMES))
    parser.add_argument("--no-create", action="store_true",
                        help="do not create the schema and table when missing")
    return parser


def parse_rates(values: Sequence[str]) -> EventRates:
    rates: dict[str, float] = {}
    for value in values:
        name, sep, number = value.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in RATE_NAMES:
            raise ValueError(f"--rate {value!r}: expected NAME=VALUE with NAME one of "
                             + ", ".join(RATE_NAMES))
        rate = float(number)
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"--rate {value!r}: a rate is between 0 and 1")
        rates[name] = rate
    return EventRates(**rates)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code (0 done, 1 database error, 2 bad arguments)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rates = parse_rates(args.rate)
        start = datetime.fromisoformat(args.start).replace(tzinfo=None)
    except ValueError as err:
        parser.print_usage(sys.stderr)
        print(f"sqlrunner generate: error: {err}", file=sys.stderr)
        return 2
    if args.events < 0 or args.batches < 1 or args.heartbeat < 1:
        parser.print_usage(sys.stderr)
        print("sqlrunner generate: error: --events >= 0, --batches >= 1 and --heartbeat >= 1",
              file=sys.stderr)
        return 2
    config = GeneratorConfig(events=args.events, seed=args.seed, batches=args.batches,
                             start=start, days=args.days, heartbeat=args.heartbeat, rates=rates)
    schema = SCHEMA_ALIASES.get(args.schema, args.schema)
    dsn = args.dsn if args.dsn is not None else os.environ.get("SQLRUNNER_TARGET", "")
    try:
        report = load_generated(dsn, config, schema, create_table=not args.no_create)
    except psycopg.Error as err:
        print(f"sqlrunner generate: {err}".rstrip(), file=sys.stderr)
        return 1
    print(f"loaded {report.events} events in {report.batches} batch(es) into {schema}.events "
          f"in {report.seconds:.1f} s ({report.events_per_second:,.0f} events/s)")
    return 0
