"""Benchmark of the core: import N deals (entry times for 4 stages) and count the funnel.

    python bench/bench_core.py --deals 1000000

Prints wall times and the import's peak memory. Targets (issue 2, 2-core machine, embedded
SQLite): import 1,000,000 deals ≤ 60 s with peak RSS ≤ 1 GB; funnel on 1,000,000 deals ≤ 0.5 s
(total) and ≤ 1 s (--by month); ≤ 0.15 s on 100,000 deals.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import random
import subprocess
import sys
import time
from pathlib import Path

STAGES = ("Заявка", "Квалификация", "Расчёт", "Договор", "Оплата")
SOURCES = ("Яндекс.Директ", "Авито", "Сайт", "ВКонтакте", "Рекомендации", "Выставка")
MANAGERS = tuple(f"Менеджер {i}" for i in range(1, 21))
REASONS = ("Дорого", "Сроки", "Нецелевой", "Ушёл к конкуренту")


def generate(path: Path, deals: int, seed: int = 7) -> None:
    """A canonical deals file: about a year of leads, each with its stage entry times."""
    rng = random.Random(seed)
    start = dt.datetime(2025, 1, 1)
    header = ["id", "created_at", "stage", "status", "closed_at", "loss_reason", "amount", "source", "manager"]
    header += [f"entered:{s}" for s in STAGES[1:]]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for number in range(deals):
            created = start + dt.timedelta(seconds=rng.randrange(365 * 86400))
            entries = []
            at = created
            furthest = 1
            for _ in STAGES[1:]:
                if rng.random() > 0.6:
                    break
                at += dt.timedelta(hours=rng.uniform(0.1, 120))
                entries.append(at)
                furthest += 1
            won = furthest == len(STAGES)
            lost = not won and rng.random() < 0.8
            status = "won" if won else ("lost" if lost else "open")
            closed = (at + dt.timedelta(hours=1)) if status != "open" else None
            cells = [
                f"b{number}",
                created.isoformat(sep=" ", timespec="seconds"),
                STAGES[furthest - 1],
                status,
                closed.isoformat(sep=" ", timespec="seconds") if closed else "",
                rng.choice(REASONS) if lost else "",
                f"{rng.randint(5, 500) * 1000}" if furthest >= 3 else "",
                rng.choice(SOURCES),
                rng.choice(MANAGERS),
            ]
            cells += [e.isoformat(sep=" ", timespec="seconds") for e in entries]
            cells += [""] * (len(STAGES) - 1 - len(entries))
            writer.writerow(cells)


def run_child(args: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one CLI run."""
    started = time.perf_counter()
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(args)}")
    return elapsed, usage.ru_maxrss * 1024


def time_funnel(db: Path, by: str | None, repeat: int = 5) -> float:
    """Best of ``repeat`` in-process runs of the library call (what the CLI and web wrap)."""
    from voronka.analysis.funnel.query import FunnelQuery
    from voronka.analysis.funnel.report import run_funnel
    from voronka.crm.accounts import default_account
    from voronka.db import open_database, session_scope

    engine = open_database(f"sqlite:///{db}")
    best = float("inf")
    for _ in range(repeat):
        with session_scope(engine) as session:
            started = time.perf_counter()
            run_funnel(session=session, account=default_account(session=session), query=FunnelQuery(by=by))
            best = min(best, time.perf_counter() - started)
    engine.dispose()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deals", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path("bench/out"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    data = args.out / f"deals-{args.deals}.csv"
    if not data.exists():
        started = time.perf_counter()
        generate(data, args.deals)
        print(f"generated {data} in {time.perf_counter() - started:.1f} s")
    db = args.out / f"bench-{args.deals}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    voronka = [sys.executable, "-m", "voronka", "--db", str(db)]
    run_child([*voronka, "init", "--pipeline", "Bench", "--stages", ",".join(STAGES)])
    seconds, rss = run_child([*voronka, "import", "deals", str(data)])
    print(f"import {args.deals:,} deals: {seconds:.1f} s, peak RSS {rss / 2**20:.0f} MiB")
    for by in (None, "month", "source"):
        label = f"--by {by}" if by else "total"
        print(f"funnel {label}: {time_funnel(db, by) * 1000:.0f} ms (library call, best of 5)")
    seconds, _ = run_child([*voronka, "funnel", "--by", "month"])
    print(f"voronka funnel --by month, whole command: {seconds:.2f} s")


if __name__ == "__main__":
    main()
