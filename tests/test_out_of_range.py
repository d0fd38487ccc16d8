"""Out-of-range input, as the third probe sent it: every request answers below 500 on both databases,
and whatever still fails unexpectedly answers with a problem page that keeps the security headers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tests.builders import Journey, journeys_for
from tests.web_helpers import api_token, csrf_of, log_in, make_user
from voronka.analysis.hypotheses import Assignment, add_hypothesis, evaluate
from voronka.config import Settings
from voronka.crm.accounts import default_account, find_pipeline
from voronka.crm.leads import add_lead_form
from voronka.errors import InvalidValue
from voronka.ingest.connectors import CONNECTORS
from voronka.ingest.connectors.store import add_connection
from voronka.models import AssignmentKind, Deal, Hypothesis, Role
from voronka.secretstore import SecretStore
from voronka.web import create_app

BIG = "9" * 30
LONG_NAME = "Э" * 200


def _client(engine: Engine, tmp_path: Path) -> TestClient:
    settings = Settings(database_url="sqlite://", secrets_path=tmp_path / "secrets.json", secret_key="test-key")
    return TestClient(create_app(settings, engine), raise_server_exceptions=False)


def _world(session: Session, tmp_path: Path, timezone: str) -> dict[str, Any]:
    journeys_for(session, [Journey("2026-03-01 10:00", manager="Анна", source="Сайт")])
    email = make_user(session, "Owner", Role.OWNER)
    account = default_account(session=session)
    account.timezone = timezone
    pipeline = find_pipeline(session=session, account=account)
    add_lead_form(session=session, account=account, pipeline=pipeline, name="Сайт")
    store = SecretStore(tmp_path / "secrets.json")
    _, crm_token = add_connection(session=session, account=account, connector=CONNECTORS["amocrm"], name="amo",
                                  address="http://127.0.0.1:9", settings={}, secret_values={"token": "t"},
                                  store=store)  # fmt: skip
    session.commit()
    return {
        "email": email,
        "deal": session.scalar(select(Deal.id)),
        "pipeline": pipeline.id,
        "stage": pipeline.stages[1].id,
        "crm": crm_token,
        "api": api_token(session, email),
    }


def _page_requests(ids: dict[str, Any]) -> list[tuple[str, str, dict[str, str]]]:
    """(method, path, query or form) as a logged-in owner sends them."""
    pipeline, deal = ids["pipeline"], ids["deal"]
    plan = {"pipeline_id": str(pipeline), "month": "2026-03", "metric": "leads"}
    hypothesis = {"step": "2", "change": "x", "assign": "alternating"}
    return [
        ("GET", "/deals", {"page": BIG}),
        ("GET", "/deals", {"page": "-" + BIG}),
        ("GET", "/deals", {"stage": BIG}),
        ("GET", "/kanban", {"page": BIG}),
        ("POST", "/settings/plans", {**plan, "pipeline_id": BIG, "value": "1"}),
        ("POST", "/settings/forms", {"name": "Форма", "pipeline_id": BIG}),
        ("POST", f"/settings/pipelines/{pipeline}/stages", {"name": "Новый", "before": BIG}),
        ("POST", f"/settings/pipelines/{pipeline}/stages", {"name": "Новый", "before": "-" + BIG}),
        ("GET", "/", {"date_from": "0001-01-01", "date_to": "9999-12-31"}),
        ("GET", "/", {"date_from": "9999-12-31"}),
        ("GET", "/", {"date_to": "0001-01-01"}),
        ("POST", f"/deals/{deal}/tasks", {"kind": "call", "due_date": "0001-01-01", "due_time": "00:00"}),
        ("POST", f"/deals/{deal}/tasks", {"kind": "call", "due_date": "9999-12-31", "due_time": "23:59"}),
        ("POST", "/reports/hypotheses", {**hypothesis, "starts_on": "0001-01-01"}),
        ("POST", "/reports/hypotheses", {**hypothesis, "starts_on": "2026-01-01", "ends_on": "9999-12-31"}),
        *[("POST", "/settings/plans", {**plan, "value": v}) for v in ("NaN", "inf", "-inf", "1e400", "sNaN", BIG)],
        *[("POST", "/settings/plans", {**plan, "metric": "conversion", "value": v}) for v in ("NaN", "1e400%")],
        ("POST", f"/settings/pipelines/{pipeline}/stages", {"name": LONG_NAME + "а"}),
        ("POST", f"/settings/pipelines/{pipeline}/stages", {"name": LONG_NAME + "б"}),
        ("POST", f"/settings/stages/{ids['stage']}/rename", {"name": LONG_NAME + "в"}),
    ]


def _api_requests() -> list[tuple[str, dict[str, str]]]:
    return [
        ("/api/v1/funnel", {"date_from": "0001-01-01", "date_to": "9999-12-31"}),
        ("/api/v1/funnel", {"date_from": "9999-12-31"}),
        ("/api/v1/funnel", {"date_to": "0001-01-01", "view": "period"}),
        ("/api/v1/stats", {"date_from": "0001-01-01", "date_to": "9999-12-31"}),
        ("/api/v1/stats", {"date_from": "0001-01-01", "grain": "day"}),
        ("/api/v1/stats", {"date_to": "9999-12-31", "grain": "month"}),
        ("/api/v1/deals", {"page": BIG}),
    ]


@pytest.mark.parametrize("timezone", ["Asia/Vladivostok", "America/Los_Angeles"])  # year 1 breaks east, 9999 west
def test_the_probes_list_answers_below_500(session: Session, engine: Engine, tmp_path: Path, timezone: str) -> None:
    ids = _world(session, tmp_path, timezone)
    client = _client(engine, tmp_path)
    csrf = log_in(client, ids["email"])
    failures: list[str] = []

    def check(what: str, answer: Any) -> None:
        if answer.status_code >= 500:
            failures.append(f"{what} → {answer.status_code} {answer.text[:200]}")

    for method, path, values in _page_requests(ids):
        if method == "GET":
            check(f"GET {path} {values}", client.get(path, params=values, follow_redirects=False))
        else:
            answer = client.post(path, data={**values, "csrf": csrf}, follow_redirects=False)
            check(f"POST {path} {values}", answer)
    for page in ("/", "/reports/hypotheses", "/settings", "/deals", "/kanban", f"/deals/{ids['deal']}"):
        check(f"GET {page} after", client.get(page))
    bearer = {"Authorization": f"Bearer {ids['api']}"}
    for path, query in _api_requests():
        check(f"GET {path} {query}", client.get(path, params=query, headers=bearer))
    for body in (b"{", b"[1,", b'{"a": \xff}', b"\x00", b"nan"):
        answer = client.post(
            f"/webhooks/amocrm/{ids['crm']}", content=body, headers={"content-type": "application/json"}
        )
        check(f"CRM webhook {body!r}", answer)
        if answer.headers["content-type"] != "application/problem+json":
            failures.append(f"CRM webhook {body!r} answers {answer.headers['content-type']}")
    assert failures == [], "\n".join(failures)


def test_a_hypothesis_starting_in_year_one_is_refused_and_an_old_one_still_shows(session: Session) -> None:
    journeys_for(session, [Journey("2026-03-01 10:00")])
    account = default_account(session=session)
    pipeline = find_pipeline(session=session, account=account)
    everyone = Assignment(AssignmentKind.ALTERNATING)
    for starts, ends in ((dt.date(1, 1, 1), None), (dt.date(2026, 1, 1), dt.date(9999, 12, 31))):
        with pytest.raises(InvalidValue):
            add_hypothesis(session=session, account=account, pipeline=pipeline, position=2, change="x",
                           starts_on=starts, ends_on=ends, assignment=everyone)  # fmt: skip
    # one saved before the check (by an older version) must not break the report
    session.add(Hypothesis(account_id=account.id, pipeline_id=pipeline.id, position=2, change="old",
                           starts_on=dt.date(1, 1, 1), ends_on=None, assignment="alternating", uplift_ppm=50_000,
                           created_at=dt.datetime(2026, 1, 1)))  # fmt: skip
    session.commit()
    old = session.scalars(select(Hypothesis)).one()
    assert evaluate(session=session, account=account, hypothesis=old).a.trials >= 0


def _crash(app: FastAPI) -> None:
    def boom() -> None:
        raise RuntimeError("a bug nobody has found yet")

    app.add_api_route("/api/v1/boom", boom)
    app.add_api_route("/boom", boom)


@pytest.mark.parametrize("path", ["/api/v1/boom", "/boom"])
def test_an_unexpected_error_is_a_problem_page_with_the_security_headers(
    session: Session, engine: Engine, tmp_path: Path, path: str
) -> None:
    email = make_user(session, "Owner", Role.OWNER)
    client = _client(engine, tmp_path)
    _crash(client.app)  # type: ignore[arg-type]
    if path == "/boom":
        log_in(client, email)
    answer = client.get(path)
    assert answer.status_code == 500
    assert answer.headers["x-frame-options"] == "DENY"
    assert "content-security-policy" in answer.headers
    assert "Traceback" not in answer.text
    assert "a bug nobody" not in answer.text
    if path.startswith("/api/"):
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["status"] == 500
    else:
        assert "text/html" in answer.headers["content-type"]
        csrf_of(client.get("/settings").text)  # the session still works
