"""Benchmark of ``voronka sync`` from a local fake amoCRM with its rate limit switched off.

    python bench/bench_sync.py --deals 100000 --changes 500000

Target (issue 6, 2-core machine, embedded SQLite): 100,000 deals with 500,000 stage changes ≤ 60 s.
The fake CRM (tests/fakes/amocrm.py) runs in a process of its own, as a real CRM would be on
another machine; both share the two cores.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

import argparse
import logging
import multiprocessing
import resource
import tempfile
import time
from typing import Any


def serve_fake(deals: int, changes: int, ready: Any) -> None:
    """Build the fake CRM's data, serve it, and report (port, leads, changes) through ``ready``."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from pytest_httpserver import HTTPServer
    from tests.fakes.amocrm import world

    per_lead = changes / deals
    crm = world(deals, changes_per_lead=per_lead)
    while crm.events and len(crm.events) < changes:  # wins and losses end some histories early
        per_lead *= max(1.02, min(changes / len(crm.events), 1.5))
        crm = world(deals, changes_per_lead=per_lead)
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    crm.install(server)
    ready.put((server.port, len(crm.leads), len(crm.events)))
    while True:
        time.sleep(3600)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--changes", type=int, default=500_000)
    args = parser.parse_args()

    from tests.fakes.amocrm import TOKEN

    from voronka.crm.accounts import default_account
    from voronka.db import open_database, session_factory
    from voronka.ingest.connectors import CONNECTORS
    from voronka.ingest.connectors.store import SecretStore, add_connection
    from voronka.ingest.connectors.sync import sync_connection

    ready: Any = multiprocessing.Queue()
    fake = multiprocessing.Process(target=serve_fake, args=(args.deals, args.changes, ready), daemon=True)
    fake.start()
    port, leads, changes = ready.get(timeout=600)
    print(f"fake amoCRM on port {port}: {leads:,} leads, {changes:,} stage changes")
    try:
        with tempfile.TemporaryDirectory() as folder:
            engine = open_database(f"sqlite:///{folder}/sync.db")
            store = SecretStore(Path(folder) / "secrets.json")
            with session_factory(engine)() as session:
                account = default_account(session=session)
                add_connection(session=session, account=account, connector=CONNECTORS["amocrm"], name="amo",
                               address=f"http://127.0.0.1:{port}", settings={"requests_per_second": 0},
                               secret_values={"token": TOKEN}, store=store)  # fmt: skip
                session.commit()
                started = time.perf_counter()
                report = sync_connection(session=session, account=account, store=store)
                elapsed = time.perf_counter() - started
            engine.dispose()
    finally:
        fake.terminate()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak = usage.ru_maxrss / 1024
    print(f"this process: {usage.ru_utime + usage.ru_stime:.1f} s of CPU")
    print(f"sync: {report.created:,} deals in {elapsed:.1f} s, {report.requests:,} requests, peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
