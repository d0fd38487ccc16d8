"""Shared by the web tests: an app over the test database, users of each role, a logged-in client."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from voronka.config import Settings
from voronka.crm.accounts import default_account
from voronka.crm.auth import add_user, create_api_token
from voronka.models import Role
from voronka.web import create_app

PASSWORD = "correct-horse-battery"


def make_client(engine: Engine, tmp_path: Path) -> TestClient:
    settings = Settings(database_url="sqlite://", secrets_path=tmp_path / "secrets.json", secret_key="test-key")
    return TestClient(create_app(settings, engine))


def make_user(session: Session, name: str, role: Role) -> str:
    email = f"{name.lower().replace(' ', '.')}@example.com"
    add_user(
        session=session, account=default_account(session=session), name=name, email=email, password=PASSWORD, role=role
    )
    session.commit()
    return email


def api_token(session: Session, email: str) -> str:
    from sqlalchemy import select

    from voronka.models import User

    user = session.scalars(select(User).where(User.email == email)).one()
    token = create_api_token(session=session, user=user, name="tests").plain
    session.commit()
    return token


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html) or re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def log_in(client: TestClient, email: str, password: str = PASSWORD) -> str:
    """Log in; returns the session's CSRF token for later forms."""
    page = client.get("/login")
    answer = client.post(
        "/login",
        data={"email": email, "password": password, "csrf": csrf_of(page.text), "next": "/"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return csrf_of(client.get("/settings").text)


@contextmanager
def served(app: Any) -> Iterator[str]:
    """``app`` served by uvicorn in a thread on a free loopback port; yields its base URL. The socket
    is listening before the server starts, so a first request waits in its backlog: nothing polls
    for the server to be up."""
    import uvicorn

    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen(128)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listening.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        listening.close()
