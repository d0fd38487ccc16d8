"""Is the diagnosis's money at stake what fixing the cause really brings?

For each seed and each cause the diagnosis knows, twin businesses (``voronka.twins``): one with the
cause planted, its twin identical without it (every random draw shared). The money at stake of the
findings that name the cause is compared with the twins' true monthly revenue difference over the
diagnosis's recent 90 days. Printed per cause: the number of pairs, the mean ratio money / truth with
its 95 % interval (t over the pairs), the ratios' range, how often the cause's finding was ranked
first and how often it was confident; then the healthy twins: how many got a confident finding and
how many a stalled-deals finding. docs/diagnose.md aims at every ratio within ±25 %, every planted
cause ranked first, and healthy twins with no confident and no stalled finding.

    python bench/bench_calibration.py --seeds 5

Each business is built in a fresh SQLite file (a copy of an empty migrated one) and diagnosed by the
library call ``run_diagnosis``; nothing is timed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import shutil
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

TODAY = dt.date(2026, 11, 27)
T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--leads", type=int, default=8000, help="Leads a year.")
    parser.add_argument("--causes", nargs="*", default=None, help="Names of voronka.twins.Cause members.")
    parser.add_argument("--replicates", type=int, default=20, help="Simulated pairs for each cause's expected truth.")
    args = parser.parse_args()

    from voronka.twins import Cause

    causes = [Cause[name] for name in args.causes] if args.causes else list(Cause)
    from voronka.twins import expected_truth

    truths = {c: expected_truth(c, today=TODAY, leads_per_year=args.leads, replicates=args.replicates) for c in causes}
    pairs, healthy = calibrate(range(args.first_seed, args.first_seed + args.seeds), causes, args.leads)
    print_table(pairs, healthy, truths)


def calibrate(seeds: range, causes: list, leads: int) -> tuple[list, list]:  # type: ignore[type-arg]
    from voronka.analysis.diagnose import run_diagnosis
    from voronka.crm.accounts import default_account
    from voronka.db import make_engine, open_database, session_factory
    from voronka.twins import World, build_world, judge

    folder = Path(tempfile.mkdtemp(prefix="voronka-twins-"))
    template = folder / "template.db"
    open_database(f"sqlite:///{template}").dispose()
    started = time.perf_counter()

    def run(world: World) -> tuple[float, object]:
        path = folder / "business.db"
        shutil.copy(template, path)
        engine = make_engine(f"sqlite:///{path}")
        with session_factory(engine)() as session:
            account = default_account(session=session, timezone="Europe/Moscow")
            revenue = build_world(session=session, account=account, world=world)
            session.commit()
            diagnosis = run_diagnosis(session=session, account=account, today=world.today)
        engine.dispose()
        return revenue, diagnosis

    pairs, healthy = [], []
    try:
        for seed in seeds:
            twins = {}
            for attempts in sorted({c.attempts for c in causes}):
                world = World(seed, TODAY, None, attempts, leads_per_year=leads)
                twins[attempts] = run(world)
                healthy.append((seed, attempts, twins[attempts][1]))
            for cause in causes:
                revenue, diagnosis = run(World(seed, TODAY, cause, cause.attempts, leads_per_year=leads))
                pairs.append(judge(diagnosis, cause, seed, twins[cause.attempts][0] - revenue))  # type: ignore[arg-type]
            print(f"  seed {seed} done ({time.perf_counter() - started:.0f} s)", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return pairs, healthy


def print_table(pairs: list, healthy: list, truths: dict) -> None:  # type: ignore[type-arg]
    by_cause = defaultdict(list)
    for pair in pairs:
        by_cause[pair.cause].append(pair)
    print(
        "| planted cause | pairs | money / expected truth: mean (95 % interval) | range "
        "| money / this pair's twin truth: mean (range) | ranked first | confident |"
    )
    print("|---|---|---|---|---|---|---|")
    for cause, found in by_cause.items():
        ratios = [p.money / truths[cause] for p in found]
        mean, half = statistics.fmean(ratios), interval(ratios)
        own = [p.ratio for p in found]
        print(
            f"| {cause.value} | {len(found)} | {mean:.2f} ({mean - half:.2f}–{mean + half:.2f}) "
            f"| {min(ratios):.2f}–{max(ratios):.2f} | {statistics.fmean(own):.2f} ({min(own):.2f}–{max(own):.2f}) "
            f"| {sum(p.first for p in found)}/{len(found)} | {sum(p.confident for p in found)}/{len(found)} |"
        )
    confident = sum(any(f.confident for f in d.findings) for _, _, d in healthy)
    stalled = sum(any(f.code == "stalled_deals" for f in d.findings) for _, _, d in healthy)
    print(f"healthy twins: {len(healthy)}; with a confident finding: {confident}; with a stalled finding: {stalled}")
    for seed, attempts, diagnosis in healthy:
        shown = [
            f"{f.code}{'!' if f.confident else ''} {f.money_at_stake_per_month / 100:,.0f}" for f in diagnosis.findings
        ]
        print(f"  healthy seed {seed} attempts {max(attempts)}: {shown}")


def interval(values: list[float]) -> float:
    """Half the 95 % t interval of the mean (NaN for one value)."""
    if len(values) < 2:
        return math.nan
    return T95.get(len(values) - 1, 1.96) * statistics.stdev(values) / math.sqrt(len(values))


if __name__ == "__main__":
    main()
