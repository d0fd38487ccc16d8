"""Many businesses on one PostgreSQL: does one account's work slow down as the others grow?

    python bench/bench_accounts.py --accounts 200 --deals 10000

Loads one account of ``--deals`` generated deals (bench_core.py's file), times its funnel, funnel by
month, stats by manager and the dashboard's period summary (library calls, best of 3), then loads the
other accounts with the same number of deals each and times the first account again. Works in a
schema of its own, dropped at the end. The target (issue 16): within 1.5× at 200 accounts.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import argparse
import datetime as dt
import time
from collections.abc import Callable

from bench_core import STAGES, generate
from common import best, scratch_schema

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TODAY = dt.date(2026, 1, 1)


def measure(engine: object, account_id: int) -> dict[str, float]:
    from voronka.analysis.funnel.query import FunnelQuery
    from voronka.analysis.funnel.report import run_funnel
    from voronka.analysis.stats.report import StatsQuery, run_stats
    from voronka.analysis.summary import period_summary
    from voronka.crm.accounts import account_by_id
    from voronka.db import session_factory

    with session_factory(engine)() as session:  # type: ignore[arg-type]
        account = account_by_id(session=session, account_id=account_id)
        calls: dict[str, Callable[[], object]] = {
            "funnel": lambda: run_funnel(session=session, account=account, query=FunnelQuery()),
            "funnel by month": lambda: run_funnel(session=session, account=account, query=FunnelQuery(by="month")),
            "stats by manager": lambda: run_stats(
                session=session, account=account, query=StatsQuery(by="manager"), today=TODAY
            ),
            "dashboard summary": lambda: period_summary(
                session=session, account=account, pipeline=None, date_from=dt.date(2025, 12, 1), date_to=TODAY
            ),
        }
        return {name: best(call) for name, call in calls.items()}


def load_account(engine: object, data: Path, name: str) -> int:
    from voronka.crm.accounts import create_pipeline
    from voronka.db import session_factory
    from voronka.ingest.importers.base import ImportTarget
    from voronka.ingest.importers.run import import_file
    from voronka.models import Account
    from voronka.timeutil import utcnow

    with session_factory(engine)() as session:  # type: ignore[arg-type]
        account = Account(name=name, currency="RUB", timezone="UTC", created_at=utcnow())
        session.add(account)
        session.flush()
        pipeline = create_pipeline(session=session, account=account, name="Bench", stages=STAGES)
        import_file(target=ImportTarget(session, account, pipeline), path=data)
        session.commit()
        return account.id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--deals", type=int, default=10_000)
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--out", type=Path, default=Path("bench/out"))
    args = parser.parse_args()

    from voronka.db import open_database

    args.out.mkdir(parents=True, exist_ok=True)
    data = args.out / f"deals-{args.deals}.csv"
    if not data.exists():
        generate(data, args.deals)
    with scratch_schema(args.url) as url:
        engine = open_database(url)
        first = load_account(engine, data, "first")
        alone = measure(engine, first)
        started = time.perf_counter()
        for number in range(2, args.accounts + 1):
            load_account(engine, data, f"account {number}")
            if number % 50 == 0:
                print(f"  {number} accounts loaded in {time.perf_counter() - started:.0f} s", flush=True)
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")
        crowded = measure(engine, first)
        print(f"one account of {args.deals:,} deals, alone and among {args.accounts} (library calls, best of 3):")
        for name in alone:
            ratio = crowded[name] / alone[name]
            print(f"  {name}: {alone[name] * 1000:.0f} ms → {crowded[name] * 1000:.0f} ms ({ratio:.2f}×)")
        engine.dispose()


if __name__ == "__main__":
    main()
