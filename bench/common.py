"""What the benchmarks share: the database bench_core.py built, timing, a scratch PostgreSQL schema."""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


def best(call: Callable[[], object], repeat: int = 3) -> float:
    """The fastest of ``repeat`` runs, in seconds (the others waited on the machine, not on us)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return min(times)


@contextmanager
def scratch_schema(url: str) -> Iterator[str]:
    """A PostgreSQL schema of its own for one run (dropped at the end): the URL that works in it."""
    from sqlalchemy import create_engine, text

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{url}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
