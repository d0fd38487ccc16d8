"""The import and the reports on PostgreSQL, on bench_core.py's generated deals.

    python bench/bench_postgres.py --deals 100000 [--url postgresql+psycopg://postgres@127.0.0.1:5432/test]

Works in a schema of its own (dropped at the end). Prints the import (library call, with a progress
line every 100,000 rows: linear, not quadratic), then bench_versus.py's table on that database: the
funnel, stats and diagnosis as library calls and as whole commands beside DuckDB and pandas.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import argparse
import time

from bench_core import STAGES, generate
from bench_versus import compare
from common import scratch_schema

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


class Progress:
    def start(self, total: int) -> None:
        self.started, self.done, self.next = time.perf_counter(), 0, 100_000

    def advance(self, rows: int) -> None:
        self.done += rows
        if self.done >= self.next:
            print(f"  {self.done:,} rows in {time.perf_counter() - self.started:.1f} s", flush=True)
            self.next += 100_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--out", type=Path, default=Path("bench/out"))
    args = parser.parse_args()

    from voronka.crm.accounts import create_pipeline, default_account
    from voronka.db import open_database, session_factory
    from voronka.ingest.importers.base import ImportTarget
    from voronka.ingest.importers.run import after_import_committed, import_file

    args.out.mkdir(parents=True, exist_ok=True)
    data = args.out / f"deals-{args.deals}.csv"
    if not data.exists():
        generate(data, args.deals)
    with scratch_schema(args.url) as url:
        engine = open_database(url)
        started = time.perf_counter()
        with session_factory(engine)() as session:
            account = default_account(session=session, timezone="UTC")
            pipeline = create_pipeline(session=session, account=account, name="Bench", stages=STAGES)
            report = import_file(target=ImportTarget(session, account, pipeline), path=data, progress=Progress())
            session.commit()
        committed = time.perf_counter()
        after_import_committed(engine, report)  # as `voronka import deals` does
        print(
            f"PostgreSQL import {args.deals:,} deals: {time.perf_counter() - started:.1f} s (library call), "
            f"of which {time.perf_counter() - committed:.1f} s vacuuming the loaded tables after the commit"
        )
        engine.dispose()
        compare(url, data, args.deals)


if __name__ == "__main__":
    main()
