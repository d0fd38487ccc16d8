"""voronka beside DuckDB and pandas: the same aggregations, on the same generated deals, in one run.

    python bench/bench_core.py --deals 1000000      # the CSV and the database it imports
    python bench/bench_versus.py --deals 1000000 [--db postgresql://…]

For each report it prints voronka's library call (best of 3, warm connection), the whole `voronka`
command (a new process: start-up, imports, connection), and what an analyst would run instead:
DuckDB's SQL and pandas' groupby over the deals already in memory, and the same from the CSV file
(read included). The ratio compares voronka's library call with DuckDB's in-memory query.

The analyst's versions compute less than voronka does: counts per stage and status, not the
funnel's conversions, immature cohorts, losses by stage or currency checks; the diagnosis is only
its grouping (segment × manager × source × stage × status), not its rules, tests or money.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import argparse
import datetime as dt
import subprocess
from collections.abc import Callable
from typing import Any

from common import best

TODAY = dt.date(2026, 1, 1)
STATS_FROM, STATS_TO = dt.date(2025, 1, 6), dt.date(2026, 1, 5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deals", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path("bench/out"))
    parser.add_argument("--db", help="database URL (default: the SQLite file bench_core.py built)")
    args = parser.parse_args()
    csv_path = args.out / f"deals-{args.deals}.csv"
    url = args.db or f"sqlite:///{args.out / f'bench-{args.deals}.db'}"
    if not csv_path.exists():
        raise SystemExit(f"{csv_path} does not exist: run bench/bench_core.py --deals {args.deals} first")
    compare(url, csv_path, args.deals)


def compare(url: str, csv_path: Path, deals: int) -> None:
    """Print the table: voronka on the database at ``url`` beside DuckDB and pandas on ``csv_path``."""
    import duckdb
    import pandas as pd

    frame = _pandas_frame(pd, csv_path)
    duck = duckdb.connect()
    duck.execute(f"CREATE TABLE deals AS SELECT * FROM read_csv_auto('{csv_path}')")
    reports = _reports(url)
    print(f"{deals:,} deals, {url.split(':')[0]}; seconds, best of 3")
    print(f"{'report':<22}{'voronka':>9}{'command':>9}{'duckdb':>9}{'+csv':>8}{'pandas':>9}{'+csv':>8}{'ratio':>7}")
    for name, (library, command, duck_sql, pandas_call) in reports.items():
        ours = best(library)
        whole = best(lambda command=command: subprocess.run(command, check=True, capture_output=True))
        duck_query = best(lambda sql=duck_sql: duck.execute(sql).fetchall())
        duck_csv = best(lambda sql=duck_sql: _duck_from_csv(duckdb, csv_path, sql))
        panda = best(lambda call=pandas_call: call(frame))
        panda_csv = best(lambda call=pandas_call: call(_pandas_frame(pd, csv_path)), repeat=1)
        print(
            f"{name:<22}{ours:>9.3f}{whole:>9.2f}{duck_query:>9.3f}{duck_csv:>8.2f}{panda:>9.3f}{panda_csv:>8.2f}"
            f"{ours / duck_query:>6.1f}×"
        )


def _duck_from_csv(duckdb: Any, csv_path: Path, sql: str) -> None:
    fresh = duckdb.connect()
    fresh.execute(f"CREATE TABLE deals AS SELECT * FROM read_csv_auto('{csv_path}')")
    fresh.execute(sql).fetchall()


def _pandas_frame(pd: Any, csv_path: Path) -> Any:
    frame = pd.read_csv(csv_path, parse_dates=["created_at", "closed_at"])
    frame["month"] = frame["created_at"].dt.strftime("%Y-%m")
    return frame


Report = tuple[Callable[[], object], list[str], str, Callable[[Any], object]]


def _reports(url: str) -> dict[str, Report]:
    """name → (voronka's library call, its command, DuckDB's SQL, pandas' call)."""
    from voronka.analysis.diagnose import run_diagnosis
    from voronka.analysis.funnel.query import FunnelQuery
    from voronka.analysis.funnel.report import run_funnel
    from voronka.analysis.stats.periods import Grain
    from voronka.analysis.stats.report import StatsQuery, run_stats
    from voronka.crm.accounts import default_account
    from voronka.db import open_database, session_scope

    engine = open_database(url)

    def call(function: Callable[..., object], **kwargs: Any) -> Callable[[], object]:
        def run() -> object:
            with session_scope(engine) as session:
                return function(session=session, account=default_account(session=session), **kwargs)

        return run

    command = [sys.executable, "-m", "voronka", "--db", url]
    stats_query = StatsQuery(date_from=STATS_FROM, date_to=STATS_TO, grain=Grain.WEEK, by="manager")
    week = "strftime(date_trunc('week', created_at), '%Y-%m-%d')"
    return {
        "funnel": (
            call(run_funnel, query=FunnelQuery()),
            [*command, "funnel"],
            "SELECT stage, status, count(*), sum(amount) FROM deals GROUP BY ALL",
            lambda f: f.groupby(["stage", "status"]).agg(n=("id", "size"), amount=("amount", "sum")),
        ),
        "funnel --by month": (
            call(run_funnel, query=FunnelQuery(by="month")),
            [*command, "funnel", "--by", "month"],
            "SELECT strftime(created_at, '%Y-%m'), stage, status, count(*), sum(amount) FROM deals GROUP BY ALL",
            lambda f: f.groupby(["month", "stage", "status"]).agg(n=("id", "size"), amount=("amount", "sum")),
        ),
        "funnel --by source": (
            call(run_funnel, query=FunnelQuery(by="source")),
            [*command, "funnel", "--by", "source"],
            "SELECT source, stage, status, count(*), sum(amount) FROM deals GROUP BY ALL",
            lambda f: f.groupby(["source", "stage", "status"]).agg(n=("id", "size"), amount=("amount", "sum")),
        ),
        "stats --by manager": (
            call(run_stats, query=stats_query),
            [
                *command,
                "stats",
                "--by",
                "manager",
                "--period",
                "week",
                "--from",
                str(STATS_FROM),
                "--to",
                str(STATS_TO),
            ],
            f"SELECT manager, {week}, stage, status, count(*), sum(amount) FROM deals "
            f"WHERE created_at >= DATE '{STATS_FROM}' AND created_at < DATE '{STATS_TO}' GROUP BY ALL",
            lambda f: (
                f[(f.created_at >= str(STATS_FROM)) & (f.created_at < str(STATS_TO))]
                .groupby(["manager", f.created_at.dt.to_period("W"), "stage", "status"])
                .agg(n=("id", "size"), amount=("amount", "sum"))
            ),
        ),
        "diagnose": (
            call(run_diagnosis, today=TODAY),
            [*command, "diagnose", "--today", str(TODAY)],
            "SELECT CASE WHEN created_at >= DATE '2025-10-03' THEN 2 WHEN created_at >= DATE '2025-01-01' THEN 1 "
            "ELSE 0 END, manager, source, stage, status, loss_reason, count(*), sum(amount) FROM deals GROUP BY ALL",
            lambda f: f.groupby([_segment(f), "manager", "source", "stage", "status", "loss_reason"], dropna=False).agg(
                n=("id", "size"), amount=("amount", "sum")
            ),
        ),
    }


def _segment(frame: Any) -> Any:
    """The diagnosis' three parts of its span: before the last year, the year before the recent
    90 days, those days."""
    return (frame.created_at >= "2025-10-03").astype(int) + (frame.created_at >= "2025-01-01").astype(int)


if __name__ == "__main__":
    main()
