"""Benchmarks of calls arriving: ``voronka import calls`` of a large export, and a Bitrix24 sync of
its telephony statistics from a local fake portal with the rate limit off.

    python bench/bench_calls.py import --calls 1000000
    python bench/bench_calls.py sync --calls 100000

Targets (issue 14, 2-core machine, embedded SQLite): importing 1,000,000 calls matched by the
client's number ≤ 60 s with peak RSS ≤ 1 GB (a library call: ``import_calls``, file to commit);
syncing 100,000 calls ≤ 60 s (a library call: ``sync_connection``; the fake portal runs in a process
of its own and shares the two cores). Deals are made first (one per three calls, each with a
phone) and not timed. Beside the import: DuckDB and pandas reading the same file and joining it to
the deals by number, when installed — what a user might script instead (no first-contact update,
no idempotency, no bad-row report).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

import argparse
import datetime as dt
import logging
import multiprocessing
import random
import resource
import tempfile
import time
from typing import Any

START = dt.datetime(2026, 1, 1, 6, 0)
LINES = ("+7 495 120-45-01", "+7 495 120-45-02", "+7 495 120-45-03")


def phone_of(number: int) -> str:
    digits = f"{9_000_000_000 + number:010d}"
    return f"+7 {digits[:3]} {digits[3:6]}-{digits[6:8]}-{digits[8:]}"


def make_deals(url: str, deals: int) -> None:
    """``deals`` deals with distinct phones, one every 5 minutes, written in bulk."""
    from sqlalchemy import insert

    from voronka.crm.accounts import create_pipeline, default_account
    from voronka.crm.phones import phone_key
    from voronka.db import open_database, session_factory
    from voronka.models import Deal

    engine = open_database(url)
    with session_factory(engine)() as session:
        account = default_account(session=session, timezone="UTC")
        pipeline = create_pipeline(session=session, account=account, name="Sales", stages=["Lead", "Deal", "Won"])
        first = pipeline.stages[0].id
        rows = [
            {"account_id": account.id, "pipeline_id": pipeline.id, "external_id": str(n), "phone": phone_of(n),
             "phone_key": phone_key(phone_of(n)), "currency": "RUB", "status": "open", "stage_id": first,
             "furthest_position": 1, "history_known": True, "created_at": START + dt.timedelta(minutes=5 * n),
             "updated_at": START + dt.timedelta(minutes=5 * n)}
            for n in range(deals)
        ]  # fmt: skip
        for start in range(0, len(rows), 50_000):
            session.execute(insert(Deal), rows[start : start + 50_000])
        session.commit()
    engine.dispose()


def call_rows(calls: int, deals: int, seed: int = 5) -> list[tuple[dt.datetime, str, str, str, int]]:
    """(time, line, client phone, outcome, duration): about three calls per deal, after its creation."""
    rng = random.Random(seed)
    rows = []
    for number in range(calls):
        deal = number % deals
        at = START + dt.timedelta(minutes=5 * deal + 2 + 30 * (number // deals), seconds=rng.randrange(60))
        answered = rng.random() < 0.6
        rows.append(
            (
                at,
                rng.choice(LINES),
                phone_of(deal),
                "answered" if answered else "no_answer",
                rng.randrange(20, 400) if answered else 0,
            )
        )
    return rows


def bench_import(calls: int) -> None:
    from voronka.crm.accounts import default_account
    from voronka.db import open_database, session_factory
    from voronka.ingest.importers.call_maps import CANONICAL
    from voronka.ingest.importers.calls import import_calls

    deals = max(calls // 3, 1)
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/calls.db"
        make_deals(url, deals)
        export = Path(folder) / "calls.csv"
        with export.open("w", encoding="utf-8") as out:
            out.write("started_at,direction,our_number,client_number,outcome,duration\n")
            for at, line, phone, outcome, duration in call_rows(calls, deals):
                digits = "".join(c for c in phone if c.isdigit())
                out.write(f"{at:%Y-%m-%d %H:%M:%S},out,{line},8{digits[1:]},{outcome},{duration}\n")
        print(f"{calls:,} calls for {deals:,} deals; file {export.stat().st_size / 2**20:.0f} MiB")
        engine = open_database(url)
        with session_factory(engine)() as session:
            started = time.perf_counter()
            report = import_calls(
                session=session, account=default_account(session=session), path=export, call_map=CANONICAL
            )
            session.commit()
            elapsed = time.perf_counter() - started
        engine.dispose()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"voronka import_calls (library call, file to commit): {elapsed:.1f} s, peak RSS {peak:.0f} MiB; "
              f"{report.created:,} stored, {len(report.rejected):,} not taken")  # fmt: skip
        _beside(export, Path(folder) / "calls.db")


def _beside(export: Path, db: Path) -> None:
    try:
        import duckdb
    except ImportError:
        print("DuckDB: not installed (pip install duckdb) — not compared")
    else:
        import csv
        import sqlite3

        deals_csv = export.with_name("deals.csv")  # DuckDB's SQLite reader is an extension it downloads
        with deals_csv.open("w", newline="", encoding="utf-8") as out:
            csv.writer(out).writerows([("id", "phone"), *sqlite3.connect(db).execute("SELECT id, phone FROM deals")])
        started = time.perf_counter()
        con = duckdb.connect()
        con.execute(
            f"SELECT count(*) FROM read_csv_auto('{export}', all_varchar=true) c "
            f"JOIN read_csv_auto('{deals_csv}', all_varchar=true) d "
            "ON right(regexp_replace(c.client_number, '[^0-9]', '', 'g'), 10)"
            " = right(regexp_replace(d.phone, '[^0-9]', '', 'g'), 10)"
        ).fetchall()
        print(f"DuckDB read + join by number: {time.perf_counter() - started:.1f} s")
    try:
        import pandas
    except ImportError:
        print("pandas: not installed (pip install pandas) — not compared")
    else:
        import sqlite3

        started = time.perf_counter()
        calls = pandas.read_csv(export, dtype=str)
        deals = pandas.read_sql("SELECT id, phone FROM deals", sqlite3.connect(db))
        calls["key"] = calls["client_number"].str.replace(r"\D", "", regex=True).str[-10:]
        deals["key"] = deals["phone"].str.replace(r"\D", "", regex=True).str[-10:]
        joined = calls.merge(deals, on="key")
        print(f"pandas read + join by number: {time.perf_counter() - started:.1f} s ({len(joined):,} rows)")


def serve_portal(calls: int, deals: int, ready: Any) -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from pytest_httpserver import HTTPServer
    from tests.fakes.bitrix24 import FakeBitrix24

    portal = FakeBitrix24()
    for at, line, phone, outcome, duration in call_rows(calls, deals):
        portal.call(
            None,
            at.replace(tzinfo=dt.UTC),
            code="200" if outcome == "answered" else "304",
            duration=duration,
            line=line,
            phone=phone,
        )
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    portal.install(server)
    ready.put(server.port)
    while True:
        time.sleep(3600)


def bench_sync(calls: int) -> None:
    from tests.fakes.bitrix24 import CODE

    from voronka.crm.accounts import default_account
    from voronka.db import open_database, session_factory
    from voronka.ingest.connectors import CONNECTORS
    from voronka.ingest.connectors.store import add_connection
    from voronka.ingest.connectors.sync import sync_connection
    from voronka.secretstore import SecretStore

    deals = max(calls // 3, 1)
    ready: Any = multiprocessing.Queue()
    fake = multiprocessing.Process(target=serve_portal, args=(calls, deals, ready), daemon=True)
    fake.start()
    port = ready.get(timeout=600)
    try:
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{folder}/sync.db"
            make_deals(url, deals)
            engine = open_database(url)
            store = SecretStore(Path(folder) / "secrets.json")
            address = f"http://127.0.0.1:{port}/rest/1/{CODE}/"
            with session_factory(engine)() as session:
                account = default_account(session=session)
                add_connection(session=session, account=account, connector=CONNECTORS["bitrix24"], name="b24",
                               address=address, settings={"requests_per_second": 0},
                               secret_values={"webhook_url": address}, store=store)  # fmt: skip
                session.commit()
                started = time.perf_counter()
                report = sync_connection(session=session, account=account, store=store, name="b24")
                elapsed = time.perf_counter() - started
            engine.dispose()
    finally:
        fake.terminate()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"voronka sync of {calls:,} calls (library call, fake Bitrix24 in another process): {elapsed:.1f} s, "
        f"{report.requests:,} requests, peak RSS {peak:.0f} MiB; "
        f"{report.calls:,} stored, {report.calls_unmatched:,} unmatched"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("import", "sync"))
    parser.add_argument("--calls", type=int, default=None)
    args = parser.parse_args()
    if args.what == "import":
        bench_import(args.calls or 1_000_000)
    else:
        bench_sync(args.calls or 100_000)


if __name__ == "__main__":
    main()
