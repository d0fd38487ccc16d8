"""Benchmark of the statistics template on the database bench_core.py builds.

    python bench/bench_core.py --deals 1000000     # builds bench/out/bench-1000000.db
    python bench/bench_stats.py --deals 1000000

Targets (issue 3, 2-core machine, embedded SQLite): ``stats --by manager`` over a year by week on
1,000,000 deals ≤ 2 s, and writing its workbook ≤ 10 s.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import datetime as dt
import time

from common import bench_database


def main() -> None:
    args, db = bench_database(__doc__)

    from voronka.analysis.reports.xlsx import write_stats_workbook
    from voronka.analysis.stats.periods import Grain
    from voronka.analysis.stats.report import StatsQuery, run_stats
    from voronka.crm.accounts import default_account
    from voronka.db import open_database, session_scope
    from voronka.i18n import Translator

    engine = open_database(f"sqlite:///{db}")
    query = StatsQuery(date_from=dt.date(2025, 1, 6), date_to=dt.date(2026, 1, 5), grain=Grain.WEEK, by="manager")
    best = float("inf")
    for _ in range(3):
        with session_scope(engine) as session:
            started = time.perf_counter()
            report = run_stats(session=session, account=default_account(session=session), query=query)
            best = min(best, time.perf_counter() - started)
    cells = sum(len(t.rows) * len(report.periods) for t in report.tables)
    print(f"stats --by manager, 52 weeks, {len(report.tables)} tables, {cells:,} cells: {best:.2f} s (best of 3)")
    started = time.perf_counter()
    write_stats_workbook(report, args.out / "bench-stats.xlsx", Translator("ru"))
    print(f"writing its workbook: {time.perf_counter() - started:.2f} s")
    engine.dispose()


if __name__ == "__main__":
    main()
