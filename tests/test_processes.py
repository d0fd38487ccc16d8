"""Several server processes on one database lose and duplicate no lead: two `voronka serve` on one
SQLite file, and `voronka serve --workers 2` on PostgreSQL."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from tests.builders import journeys_for
from voronka.crm.accounts import default_account, find_pipeline
from voronka.crm.leads import add_lead_form
from voronka.db import make_engine, session_factory
from voronka.models import Deal

LEADS = 120


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _form_token(db_url: str) -> str:
    engine = make_engine(db_url)
    with session_factory(engine)() as session:
        journeys_for(session, [])
        account = default_account(session=session)
        pipeline = find_pipeline(session=session, account=account)
        _, token = add_lead_form(session=session, account=account, pipeline=pipeline, name="Сайт")
        session.commit()
    engine.dispose()
    return token


@contextmanager
def _server(db_url: str, tmp_path: Path, *extra: str) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "VORONKA_SECRET_KEY": "test", "VORONKA_SECRETS_PATH": str(tmp_path / "secrets.json")}
    process = subprocess.Popen(
        [sys.executable, "-m", "voronka", "--db", db_url, "serve", "--port", str(port), *extra],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if httpx.get(base + "/login", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            pytest.fail(f"voronka serve did not start: {process.stderr.read().decode() if process.stderr else ''}")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)


def _send(bases: list[str], token: str) -> list[int]:
    """Every lead twice (the same tranid), to different servers, all at once."""

    def post(n: int) -> int:
        base = bases[n % len(bases)]
        lead = {"Name": f"Клиент {n // 2}", "Phone": f"+7 900 000-{n // 2:04d}", "tranid": f"t{n // 2}"}
        return httpx.post(f"{base}/api/v1/webhooks/leads/{token}", data=lead, timeout=60).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(post, range(2 * LEADS)))


def _deals(db_url: str) -> tuple[int, int]:
    engine = make_engine(db_url)
    with engine.connect() as connection:
        total = connection.scalar(select(func.count()).select_from(Deal)) or 0
        distinct = connection.scalar(select(func.count(func.distinct(Deal.phone)))) or 0
    engine.dispose()
    return int(total), int(distinct)


@pytest.mark.slow
def test_two_servers_on_one_sqlite_file_lose_and_duplicate_nothing(tmp_path: Path, sqlite_template: Path) -> None:
    import shutil

    shutil.copy(sqlite_template, tmp_path / "voronka.db")
    url = f"sqlite:///{tmp_path / 'voronka.db'}"
    token = _form_token(url)
    with _server(url, tmp_path) as first, _server(url, tmp_path) as second:
        statuses = _send([first, second], token)
    assert set(statuses) == {200}
    assert _deals(url) == (LEADS, LEADS)


@pytest.mark.slow
@pytest.mark.postgres
def test_several_workers_on_postgresql_lose_and_duplicate_nothing(tmp_path: Path, postgres_url: str) -> None:
    from tests.conftest import _empty_postgres

    _empty_postgres(postgres_url).dispose()
    token = _form_token(postgres_url)
    with _server(postgres_url, tmp_path, "--workers", "2") as base:
        statuses = _send([base], token)
    assert set(statuses) == {200}
    assert _deals(postgres_url) == (LEADS, LEADS)
