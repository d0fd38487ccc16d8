"""Benchmark of the diagnosis on the database bench_core.py builds.

    python bench/bench_core.py --deals 1000000
    python bench/bench_diagnose.py --deals 1000000

Target (issue 4, 2-core machine, embedded SQLite): ``diagnose`` on 1,000,000 deals ≤ 3 s.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import datetime as dt
import subprocess
import time

from common import bench_database


def main() -> None:
    args, db = bench_database(__doc__)

    from voronka.analysis.diagnose import run_diagnosis
    from voronka.crm.accounts import default_account
    from voronka.db import open_database, session_scope

    engine = open_database(f"sqlite:///{db}")
    best, findings = float("inf"), 0
    for _ in range(3):
        with session_scope(engine) as session:
            started = time.perf_counter()
            result = run_diagnosis(session=session, account=default_account(session=session), today=dt.date(2026, 1, 1))
            best = min(best, time.perf_counter() - started)
            findings = len(result.findings)
    print(f"diagnose on {args.deals:,} deals: {best:.2f} s (library call, best of 3), {findings} findings")
    engine.dispose()
    command = [sys.executable, "-m", "voronka", "--db", f"sqlite:///{db}", "diagnose", "--today", "2026-01-01"]
    runs = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        runs.append(time.perf_counter() - started)
    print(f"voronka diagnose, whole command (new process, cold connections): {min(runs):.2f} s (best of 3)")


if __name__ == "__main__":
    main()
