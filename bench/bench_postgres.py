"""The import and the reports on PostgreSQL, on bench_core.py's generated deals.

    python bench/bench_postgres.py --deals 100000 [--url postgresql+psycopg://postgres@127.0.0.1:5432/test]

Works in a schema of its own (dropped at the end). Prints the import (library call, with a progress
line every 100,000 rows: linear, not quadratic) and the funnel, stats and diagnosis as library calls
(best of 3) and as whole commands (a new process each).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import argparse
import datetime as dt
import subprocess
import time

from bench_core import STAGES, generate
from common import best, scratch_schema

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TODAY = dt.date(2026, 1, 1)


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

    from voronka.analysis.diagnose import run_diagnosis
    from voronka.analysis.funnel.query import FunnelQuery
    from voronka.analysis.funnel.report import run_funnel
    from voronka.analysis.stats.report import StatsQuery, run_stats
    from voronka.crm.accounts import create_pipeline, default_account
    from voronka.db import open_database, session_factory
    from voronka.ingest.importers.base import ImportTarget
    from voronka.ingest.importers.run import import_file

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
            import_file(target=ImportTarget(session, account, pipeline), path=data, progress=Progress())
            session.commit()
        print(f"PostgreSQL import {args.deals:,} deals: {time.perf_counter() - started:.1f} s (library call)")
        with session_factory(engine)() as session:
            account = default_account(session=session)
            by_month = FunnelQuery(by="month")
            for label, call in (
                ("funnel total", lambda: run_funnel(session=session, account=account, query=FunnelQuery())),
                ("funnel --by month", lambda: run_funnel(session=session, account=account, query=by_month)),
                ("stats --by manager", lambda: run_stats(session=session, account=account,
                                                         query=StatsQuery(by="manager"), today=TODAY)),
                ("diagnose", lambda: run_diagnosis(session=session, account=account, today=TODAY)),
            ):  # fmt: skip
                print(f"{label}: {best(call) * 1000:.0f} ms (library call, best of 3)")
        engine.dispose()
        for command in (["funnel"], ["stats", "--by", "manager"], ["diagnose", "--today", str(TODAY)]):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "voronka", "--db", url, *command], check=True, capture_output=True)
            print(f"voronka {' '.join(command)}: {time.perf_counter() - started:.2f} s (whole command)")


if __name__ == "__main__":
    main()
