"""How often the diagnosis raises a confident finding on a business that has no problem.

Simulates healthy businesses with the demo generator (every manager, source and outgoing number
alike in truth; with and without seasonal volume), each in a fresh SQLite file, of several sizes,
and counts those where the diagnosis states at least one *confident* comparison finding — a step
worse than its history, a manager or source worse than the team, an outgoing number answered less.
docs/diagnose.md promises a family-wise level of 5 %: the rate printed should be at most that.

    python bench/bench_false_alarms.py --businesses 200

A library call per business (``run_diagnosis``); the demo build is not timed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import random
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

COMPARISONS = {"step_below_history", "manager_below_team", "source_below_team", "outgoing_number_answer_rate"}
SIZES = (1_000, 2_000, 5_000, 10_000, 20_000)
TODAY = dt.date(2026, 11, 27)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--businesses", type=int, default=200)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    from voronka.analysis.diagnose import run_diagnosis
    from voronka.crm.accounts import default_account
    from voronka.db import make_engine, open_database, session_factory
    from voronka.demo import HEALTHY, DemoOptions, build_demo

    folder = Path(tempfile.mkdtemp(prefix="voronka-alarms-"))
    template = folder / "template.db"
    open_database(f"sqlite:///{template}").dispose()
    rng = random.Random(args.seed)
    alarmed, codes, sizes_alarmed = 0, Counter[str](), Counter[int]()
    started = time.perf_counter()
    try:
        for n in range(args.businesses):
            size, seasonal = rng.choice(args.sizes), n % 2 == 0
            path = folder / "business.db"
            shutil.copy(template, path)
            engine = make_engine(f"sqlite:///{path}")
            with session_factory(engine)() as session:
                account = default_account(session=session, timezone="Europe/Moscow")
                options = DemoOptions(
                    seed=rng.randrange(10**9), leads=size, today=TODAY, problems=HEALTHY, seasonal=seasonal
                )
                build_demo(session=session, account=account, options=options)
                session.commit()
                result = run_diagnosis(session=session, account=account, today=TODAY)
            engine.dispose()
            confident = [f.code for f in result.findings if f.confident and f.code in COMPARISONS]
            if confident:
                alarmed += 1
                sizes_alarmed[size] += 1
                codes.update(confident)
            if (n + 1) % 20 == 0:
                print(
                    f"  {n + 1} businesses, {alarmed} with a confident finding ({time.perf_counter() - started:.0f} s)"
                )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    rate = alarmed / args.businesses
    low, high = wilson(alarmed, args.businesses)
    print(
        f"healthy businesses with a confident comparison finding: {alarmed} of {args.businesses} = {rate:.1%} "
        f"(95 % Wilson interval {low:.1%} – {high:.1%}); promised at most 5 %"
    )
    print(f"by size: {dict(sorted(sizes_alarmed.items()))}; by rule: {dict(codes)}")


def wilson(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(centre - half, 0.0), min(centre + half, 1.0)


if __name__ == "__main__":
    main()
