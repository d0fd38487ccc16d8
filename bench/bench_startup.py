"""How long a command takes to start, beside the floor that the libraries it stands on set.

    python bench/bench_startup.py [--runs 15]

Builds the demo business (3,010 deals) in a scratch folder, then times whole processes, one of
each in turn so that the machine's drift falls on all of them alike:

- `voronka --help`, and `voronka funnel`, `stats` and `diagnose` on the demo, beside the anchor a
  user would compare them with: `sqlite-utils query` of a GROUP BY over the same deals table (when
  sqlite-utils is installed: pip install sqlite-utils); the target is 1.5 times the anchor,
  printed as the median of each round's own ratio (the command and the anchor ran one after the
  other, so a busy neighbour slows both), beside the ratios of the medians and of the best runs;
- a bare Python importing the chosen libraries a command needs, one step of the ladder at a time:
  SQLAlchemy, its ORM (the session every service that writes takes), Typer and Rich (the command
  line; Typer is kept below 0.29, which built a pydantic TypeAdapter for each option: pydantic is
  not loaded); and the same without the ORM: the floor of a report command, which reads through
  Core tables alone.

Every step of the ladder sets the garbage collector as `voronka` does on start (rare collections,
none at exit), so the floor is measured the way the command runs. The Core step is what any report
command pays before it reads a row: a command can not start faster than it, whatever voronka does,
unless those libraries change. Two more steps show voronka's own share: declaring its tables, and importing every
module `voronka funnel` loads, short of opening the database; the last row is what a command that
writes adds (the ORM and the classes mapped onto the tables).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The collector setting of voronka.cli.app.main, applied before the imports and frozen after them.
GC_LIKE_THE_COMMAND = "import gc; gc.set_threshold(50_000, 20, 20)"
LIBRARIES = "import sqlalchemy.orm, typer, rich.console, rich.table"
CORE_LIBRARIES = "import sqlalchemy, typer, rich.console, rich.table"
ANCHOR_SQL = "select pipeline_id, furthest_position, status, count(*), sum(amount) from deals group by 1, 2, 3"
LADDER = (
    ("Python alone", "pass"),
    ("+ SQLAlchemy", "import sqlalchemy"),
    ("+ its ORM", "import sqlalchemy.orm"),
    ("+ Typer, Rich", LIBRARIES),
    # The floor of a report command, which reads through Core tables alone (no ORM).
    ("Core, Typer, Rich, no ORM", CORE_LIBRARIES),
    ("+ voronka's Core tables", f"{CORE_LIBRARIES}; import voronka.schema"),
    (
        "+ the funnel's modules",
        f"{CORE_LIBRARIES}; import voronka.cli.app, voronka.cli.funnel_cmd, voronka.analysis.funnel.report, "
        "voronka.analysis.funnel.output, voronka.cli.render, voronka.db, voronka.config",
    ),
    # What a command that writes pays on top: the ORM and the classes mapped onto the tables.
    ("(writers: + ORM classes)", f"{LIBRARIES}; import voronka.models"),
)


def seconds_of(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Wall seconds of one process, start to exit."""
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def env_that_caches_bytecode() -> dict[str, str]:
    """This environment, except that Python may write compiled modules.

    An installed wheel's modules were compiled when pip installed it, and an editable install's
    are compiled on their first import; with PYTHONDONTWRITEBYTECODE set (as on some CI machines)
    an editable install would instead compile voronka's sources in every process (0.02-0.03 s of
    `voronka funnel`), which is not what a user waits for.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    python = sys.executable
    voronka = [python, "-m", "voronka"]
    with tempfile.TemporaryDirectory() as scratch:
        cwd = Path(scratch)
        env_db = ["--db", f"sqlite:///{cwd / 'demo.db'}"]
        subprocess.run([*voronka, *env_db, "demo"], cwd=cwd, stdout=subprocess.DEVNULL, check=True)
        cases = {label: [python, "-c", f"{GC_LIKE_THE_COMMAND}; {code}; gc.freeze()"] for label, code in LADDER}
        cases["voronka --help"] = [*voronka, "--help"]
        cases["voronka funnel (demo)"] = [*voronka, *env_db, "funnel"]
        cases["voronka stats (demo)"] = [*voronka, *env_db, "stats"]
        cases["voronka diagnose (demo)"] = [*voronka, *env_db, "diagnose"]
        if importlib.util.find_spec("sqlite_utils") is not None:
            cases["sqlite-utils query (anchor)"] = [
                python,
                "-m",
                "sqlite_utils",
                "query",
                str(cwd / "demo.db"),
                ANCHOR_SQL,
            ]
        else:
            print("sqlite-utils: not installed (pip install sqlite-utils) — no anchor row")
        env = env_that_caches_bytecode()
        for command in cases.values():  # a first round, not counted, leaves the bytecode compiled
            seconds_of(command, cwd, env)
        times: dict[str, list[float]] = {label: [] for label in cases}
        for _ in range(args.runs):
            for label, command in cases.items():
                times[label].append(seconds_of(command, cwd, env))
    print(f"whole processes, seconds over {args.runs} runs each, interleaved ({os.cpu_count()} cores)")
    print(f"{'':<30}{'median':>8}{'best':>8}")
    for label, measured in times.items():
        print(f"{label:<30}{statistics.median(measured):>8.3f}{min(measured):>8.3f}")
    anchor = times.get("sqlite-utils query (anchor)")
    if anchor:
        for label in ("voronka funnel (demo)", "voronka stats (demo)", "voronka diagnose (demo)"):
            ratio = statistics.median(times[label]) / statistics.median(anchor)
            best = min(times[label]) / min(anchor)
            # Each round ran the command right after the anchor, so a busy neighbour slows both:
            # the median of the rounds' own ratios moves least (medians here have moved by a
            # third between two runs of the same code within the hour).
            paired = statistics.median(c / a for c, a in zip(times[label], anchor, strict=True))
            print(
                f"{label} / anchor: {paired:.2f}× within rounds, {ratio:.2f}× of medians, "
                f"{best:.2f}× of bests (target ≤ 1.5×)"
            )


if __name__ == "__main__":
    main()
