"""Security of the web app: nothing without a login or token, CSRF on every form, input shown as
text, failed logins limited, sessions signed, passwords hashed with Argon2."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tests.builders import Journey, journeys_for
from tests.web_helpers import PASSWORD, api_token, csrf_of, log_in, make_client, make_user
from voronka.models import Deal, LoginSession, Role, User

OPEN = {"/login", "/lang/{lang}", "/api/v1/webhooks/leads/{token}", "/webhooks/{kind}/{token}", "/api/v1/docs"}
"""Reachable by anyone: logging in, the webhooks (their token is in the path) and the API's own
documentation page (as public as the OpenAPI document it shows)."""


@pytest.fixture
def client(session: Session, engine: Engine, tmp_path: Path) -> TestClient:
    journeys_for(session, [Journey("2026-03-01 10:00", manager="Анна"), Journey("2026-03-02 10:00", manager="Олег")])
    make_user(session, "Owner", Role.OWNER)
    return make_client(engine, tmp_path)


def _all_routes(routes: list[object]) -> list[APIRoute]:
    """Every route, through included routers (FastAPI keeps those as wrappers)."""
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):
            found.extend(_all_routes(route.original_router.routes))
    return found


def routes(client: TestClient) -> list[tuple[str, str]]:
    found = []
    for route in _all_routes(client.app.routes):  # type: ignore[attr-defined]
        if route.path not in OPEN and not route.path.startswith("/vendor"):
            for method in route.methods:
                found.append((method, re.sub(r"\{[^}]+\}", "1", route.path)))
    return found


def test_nothing_is_reachable_without_login_or_token(client: TestClient) -> None:
    checked = routes(client)
    assert len(checked) >= 39  # every route of the API and the pages (grows with them)
    for method, path in checked:
        answer = client.request(method, path, follow_redirects=False)
        if path.startswith("/api/"):
            assert answer.status_code == 401, (method, path, answer.status_code)
        elif method == "GET":
            assert answer.status_code == 303, (method, path)
            assert answer.headers["location"].startswith("/login"), (method, path)
        else:
            assert answer.status_code in (303, 401, 403), (method, path, answer.status_code)


def test_forms_need_the_csrf_token(client: TestClient, session: Session) -> None:
    csrf = log_in(client, "owner@example.com")
    deal_id = session.scalars(select(Deal.id)).first()
    stage = session.scalar(select(Deal.stage_id).where(Deal.id == deal_id))
    for token in (None, "forged"):
        data = {"stage_id": str(stage)} | ({"csrf": token} if token else {})
        answer = client.post(f"/deals/{deal_id}/lose", data={"reason": "x", **data}, follow_redirects=False)
        assert answer.status_code == 403
        assert "CSRF" in answer.text
    assert client.post("/logout", follow_redirects=False).status_code == 403
    ok = client.post(f"/deals/{deal_id}/lose", data={"reason": "Дорого", "csrf": csrf}, follow_redirects=False)
    assert ok.status_code == 303


def test_html_and_sql_looking_input_is_kept_and_shown_as_text(client: TestClient, session: Session) -> None:
    token = api_token(session, "owner@example.com")
    evil = "<script>alert(1)</script>'); DROP TABLE deals;--"
    made = client.post(
        "/api/v1/deals", headers={"Authorization": f"Bearer {token}"}, json={"title": evil, "contact_name": evil}
    )
    assert made.status_code == 201
    assert made.json()["title"] == evil
    log_in(client, "owner@example.com")
    page = client.get(f"/deals/{made.json()['id']}").text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert session.scalar(select(func.count()).select_from(Deal)) == 3


def test_failed_logins_are_limited(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from voronka.crm import logins

    moment = logins.utcnow()  # one moment: the first wait (1 s) must not pass on a slow machine
    monkeypatch.setattr(logins, "utcnow", lambda: moment)
    page = client.get("/login")
    for _ in range(5):
        answer = client.post(
            "/login", data={"email": "owner@example.com", "password": "wrong", "csrf": csrf_of(page.text)}
        )
        assert answer.status_code == 401
        assert "Wrong e-mail or password" in answer.text
    blocked = client.post(
        "/login", data={"email": "owner@example.com", "password": PASSWORD, "csrf": csrf_of(page.text)}
    )
    assert blocked.status_code == 429
    assert "try again in 1 s" in blocked.text  # the real wait, not a figure of speech
    assert blocked.headers["retry-after"] == "1"


def test_a_tampered_session_cookie_is_no_session(client: TestClient) -> None:
    log_in(client, "owner@example.com")
    cookie = client.cookies.get("voronka_session")
    assert cookie
    client.cookies.set("voronka_session", cookie[:-4] + ("AAAA" if not cookie.endswith("AAAA") else "BBBB"))
    assert client.get("/", follow_redirects=False).status_code == 303


def test_a_login_is_saved_before_its_redirect_leaves(client: TestClient, engine: Engine) -> None:
    """A browser follows the redirect at once; the session row must already be committed then.

    Seen in the browser tests now and then: FastAPI's default committed after the response was
    sent, so the dashboard could read no session and send the user back to the login page.
    """
    seen_at_response: list[int] = []
    inner = client.app

    async def watching(scope: dict[str, object], receive: object, send: object) -> None:
        async def send_and_look(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start" and scope.get("method") == "POST":
                with engine.connect() as other:  # another connection: only committed rows
                    seen_at_response.append(other.scalar(select(func.count()).select_from(LoginSession)) or 0)
            await send(message)  # type: ignore[operator]

        await inner(scope, receive, send_and_look)  # type: ignore[operator]

    watched = TestClient(watching)  # type: ignore[arg-type]
    page = watched.get("/login")
    answer = watched.post(
        "/login",
        data={"email": "owner@example.com", "password": PASSWORD, "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert seen_at_response == [1]


@pytest.mark.usefixtures("client")
def test_passwords_are_argon2_hashes(session: Session) -> None:
    stored = session.scalars(select(User.password_hash).where(User.email == "owner@example.com")).one()
    assert stored is not None
    assert stored.startswith("$argon2")
    assert PASSWORD not in stored


def test_a_manager_cannot_open_another_managers_deal(client: TestClient, session: Session) -> None:
    make_user(session, "Анна", Role.MANAGER)
    log_in(client, "анна@example.com")
    anna, oleg = (session.scalars(select(Deal.id).order_by(Deal.id)).all())[:2]
    assert client.get(f"/deals/{anna}").status_code == 200
    assert client.get(f"/deals/{oleg}").status_code == 404
    post_only = client.get("/settings/users", follow_redirects=False)  # a form's address: its page
    assert (post_only.status_code, post_only.headers["location"]) == (303, "/settings")
    assert (
        client.post("/settings/reasons", data={"name": "x", "csrf": csrf_of(client.get("/settings").text)}).status_code
        == 403
    )


def test_settings_change_stages_plans_and_spend(client: TestClient, session: Session) -> None:
    from voronka.crm.accounts import default_account, find_pipeline
    from voronka.models import AdSpend, Plan, Stage

    csrf = log_in(client, "owner@example.com")
    pipeline = find_pipeline(session=session, account=default_account(session=session))
    estimate = next(s for s in pipeline.stages if s.name == "Estimate")
    ok = {"follow_redirects": False}
    assert (
        client.post(
            f"/settings/pipelines/{pipeline.id}/stages",
            data={"name": "Замер", "before": estimate.id, "csrf": csrf},
            **ok,
        ).status_code
        == 303
    )
    qualified = next(s for s in pipeline.stages if s.name == "Qualified")
    assert client.post(f"/settings/stages/{qualified.id}/move", data={"by": "1", "csrf": csrf}, **ok).status_code == 303
    assert (
        client.post(
            f"/settings/stages/{qualified.id}/rename", data={"name": "Квалификация", "csrf": csrf}, **ok
        ).status_code
        == 303
    )
    assert (
        client.post(
            "/settings/plans",
            data={"pipeline_id": pipeline.id, "month": "2026-03", "metric": "leads", "value": "120", "csrf": csrf},
            **ok,
        ).status_code
        == 303
    )
    assert (
        client.post(
            "/settings/spend", data={"source": "Яндекс", "month": "2026-03", "amount": "50 000", "csrf": csrf}, **ok
        ).status_code
        == 303
    )
    bad = client.post(
        "/settings/plans",
        data={"pipeline_id": pipeline.id, "month": "март", "metric": "leads", "value": "120", "csrf": csrf},
    )
    assert bad.status_code == 422
    assert "month" in bad.text
    session.expire_all()
    names = session.scalars(select(Stage.name).where(Stage.pipeline_id == pipeline.id).order_by(Stage.position)).all()
    assert names == ["Lead", "Замер", "Квалификация", "Estimate", "Contract", "Won"]
    assert session.scalar(select(func.count()).select_from(Plan)) == 1
    assert session.scalar(select(AdSpend.amount)) == 5_000_000


def test_report_pages_render_for_the_owner(client: TestClient, session: Session) -> None:
    import datetime as dt

    from voronka.analysis.hypotheses import add_hypothesis, parse_assignment
    from voronka.crm.accounts import default_account, find_pipeline

    account = default_account(session=session)
    add_hypothesis(
        session=session, account=account, pipeline=find_pipeline(session=session, account=account), position=2,
        change="Звонить за 5 минут", starts_on=dt.date(2026, 3, 1), ends_on=None,
        assignment=parse_assignment("alternating"), uplift=0.05,
    )  # fmt: skip
    session.commit()
    log_in(client, "owner@example.com")
    page = client.get("/reports/hypotheses")
    assert page.status_code == 200
    assert "Звонить за 5 минут" in page.text
    assert "Stopping rule" in page.text
    for path in (
        "/reports/stats",
        "/reports/diagnosis",
        "/reports/whatif?step_2=50",
        "/reports/forecast",
        "/kanban",
        "/",
    ):
        assert client.get(path).status_code == 200, path
    workbook = client.get("/reports/stats.xlsx")
    assert workbook.status_code == 200
    assert workbook.content[:2] == b"PK"


def test_the_api_docs_load_nothing_from_another_host_and_answers_are_compressed(client: TestClient) -> None:
    page = client.get("/api/v1/docs")
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets
    assert all(a.startswith("/") for a in assets), assets  # works offline
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
    script = client.get("/vendor/swagger/swagger-ui-bundle.js", headers={"Accept-Encoding": "gzip"})
    assert script.headers["content-encoding"] == "gzip"
    assert script.num_bytes_downloaded < len(script.content) / 2  # sent compressed, read whole


def test_alert_rules_are_the_owners_and_bad_quiet_hours_are_refused_in_one_line(
    client: TestClient, session: Session
) -> None:
    manager = make_user(session, "Анна Петрова", Role.MANAGER)
    csrf = log_in(client, manager)
    refused = client.post(
        "/settings/alerts/rules", data={"csrf": csrf, "lead_minutes": "5", "stall_factor": "2"}, follow_redirects=False
    )
    assert refused.status_code == 403
    mine = client.post("/settings/alerts/mine", data={"csrf": csrf, "event": ["lead_waiting"]}, follow_redirects=False)
    assert mine.status_code == 303
    page = client.get("/settings/alerts").text
    assert 'value="lead_waiting" checked' in page
    assert re.search(r'value="task_overdue"\s*>', page)  # switched off: every box not ticked is off

    client.cookies.clear()
    csrf = log_in(client, "owner@example.com")
    wrong = client.post(
        "/settings/alerts/rules",
        data={"csrf": csrf, "lead_minutes": "5", "stall_factor": "2", "quiet": "25:00-09:00"},
        follow_redirects=False,
    )
    assert wrong.status_code == 422
    assert "Cannot read quiet hours «25:00-09:00»" in wrong.text
    assert "Traceback" not in wrong.text


def test_outside_the_tests_passwords_get_argon2s_recommended_costs() -> None:
    """The suite hashes cheaply (conftest); a program that sets nothing gets pwdlib's recommended
    Argon2id costs — checked in a fresh interpreter, where no test changed them."""
    import subprocess
    import sys

    probe = "from voronka.crm.auth import hash_password; print(hash_password('x' * 12))"
    stored = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
