"""What the benchmarks that read bench_core.py's database share."""

from __future__ import annotations

import argparse
from pathlib import Path


def bench_database(description: str | None) -> tuple[argparse.Namespace, Path]:
    """The parsed ``--deals``/``--out`` options and the database bench_core.py built for them."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deals", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path("bench/out"))
    args = parser.parse_args()
    db = args.out / f"bench-{args.deals}.db"
    if not db.exists():
        raise SystemExit(f"{db} does not exist: run bench/bench_core.py --deals {args.deals} first")
    return args, db
