"""The REST API: every route, its errors (401/403/404/422 with clear messages), roles, lead capture."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tests.builders import Journey, journeys_for
from tests.web_helpers import api_token, make_client, make_user
from voronka.crm.accounts import default_account, find_pipeline
from voronka.crm.leads import add_lead_form
from voronka.models import Deal, Role


@pytest.fixture
def world(session: Session, engine: Engine, tmp_path: Path) -> tuple[TestClient, dict[str, str]]:
    journeys_for(
        session,
        [
            Journey(
                "2026-03-01 10:00",
                moves=[("Qualified", "2026-03-02 10:00")],
                manager="Анна",
                source="Сайт",
                amount=100_000,
            ),
            Journey("2026-03-03 10:00", manager="Олег", source="Авито"),
            Journey("2026-03-04 10:00", won="2026-03-09 10:00", manager="Анна", amount=500_000),
        ],
    )
    tokens = {
        role.value: api_token(session, make_user(session, name, role))
        for name, role in (("Owner", Role.OWNER), ("Анна", Role.MANAGER), ("Viewer", Role.VIEWER), ("Head", Role.HEAD))
    }
    return make_client(engine, tmp_path), tokens


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_no_token_no_data(world: tuple[TestClient, dict[str, str]]) -> None:
    client, _ = world
    for method, path in [
        ("get", "/api/v1/deals"),
        ("get", "/api/v1/pipelines"),
        ("post", "/api/v1/deals"),
        ("get", "/api/v1/funnel"),
    ]:
        answer = getattr(client, method)(path)
        assert answer.status_code == 401
        assert "Bearer" in answer.json()["detail"]
    assert client.get("/api/v1/deals", headers=auth("vk_wrong")).status_code == 401


def test_deals_lifecycle(world: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = world
    owner = auth(tokens["owner"])
    listed = client.get("/api/v1/deals", headers=owner, params={"per_page": 2})
    assert listed.status_code == 200
    assert listed.json()["total"] == 3
    assert len(listed.json()["items"]) == 2
    made = client.post(
        "/api/v1/deals", headers=owner, json={"title": "Кухня", "amount": "120 000,50", "source": "Сайт"}
    )
    assert made.status_code == 201, made.text
    deal = made.json()
    assert deal["stage_position"] == 1
    assert deal["amount"] == "120000.50"
    assert deal["status"] == "open"
    moved = client.post(f"/api/v1/deals/{deal['id']}/move", headers=owner, json={"stage": "Estimate"})
    assert moved.json()["stage"] == "Estimate"
    assert (
        client.patch(f"/api/v1/deals/{deal['id']}", headers=owner, json={"phone": "+79990001122"}).json()["phone"]
        == "+7 999 000-11-22"  # kept in the international form
    )
    call = client.post(
        f"/api/v1/deals/{deal['id']}/calls",
        headers=owner,
        json={"outcome": "answered", "outgoing_number": "+7 495 000"},
    )
    assert call.status_code == 201
    assert client.get(f"/api/v1/deals/{deal['id']}/calls", headers=owner).json()[0]["outcome"] == "answered"
    lost = client.post(f"/api/v1/deals/{deal['id']}/lose", headers=owner, json={"reason": "Дорого"})
    assert lost.json()["status"] == "lost"
    assert lost.json()["loss_reason"] == "Дорого"
    again = client.post(f"/api/v1/deals/{deal['id']}/move", headers=owner, json={"stage": "Contract"})
    assert again.status_code == 409  # a closed deal: in conflict with its state, not bad input
    assert "reopen" in again.json()["detail"]
    assert client.post(f"/api/v1/deals/{deal['id']}/reopen", headers=owner).json()["status"] == "open"
    assert client.post(f"/api/v1/deals/{deal['id']}/win", headers=owner).json()["status"] == "won"
    pipelines = client.get("/api/v1/pipelines", headers=owner).json()
    assert [s["name"] for s in pipelines[0]["stages"]] == ["Lead", "Qualified", "Estimate", "Contract", "Won"]
    assert len(client.get(f"/api/v1/pipelines/{pipelines[0]['id']}/stages", headers=owner).json()) == 5


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "says"),
    [
        ("get", "/api/v1/deals/99999", None, 404, "No deal with id 99999"),
        ("get", "/api/v1/pipelines/99999/stages", None, 404, "pipeline 99999"),
        ("post", "/api/v1/deals", {"amount": "many"}, 422, "amount"),
        ("post", "/api/v1/deals/1/move", {"stage": "Nowhere"}, 422, "Lead, Qualified"),
        ("post", "/api/v1/deals/1/lose", {}, 422, "reason"),
        ("post", "/api/v1/deals/1/calls", {"outcome": "maybe"}, 422, "outcome"),
        ("get", "/api/v1/deals?per_page=5000", None, 422, "per_page"),
        ("get", "/api/v1/funnel?view=sideways", None, 422, "view"),
        ("get", "/api/v1/stats?by=colour", None, 422, "by"),
    ],
)
def test_errors_say_what_is_wrong(
    world: tuple[TestClient, dict[str, str]], method: str, path: str, body: object, status: int, says: str
) -> None:
    client, tokens = world
    answer = getattr(client, method)(
        path, headers=auth(tokens["owner"]), **({"json": body} if body is not None else {})
    )
    assert answer.status_code == status, answer.text
    assert says in answer.text


def test_roles(world: tuple[TestClient, dict[str, str]], session: Session) -> None:
    client, tokens = world
    manager, viewer, head = auth(tokens["manager"]), auth(tokens["viewer"]), auth(tokens["head"])
    mine = client.get("/api/v1/deals", headers=manager).json()
    assert mine["total"] == 2
    assert {d["manager"] for d in mine["items"]} == {"Анна"}
    oleg = session.scalars(select(Deal.id).where(Deal.manager_id.is_not(None)).order_by(Deal.id)).all()[1]
    assert client.get(f"/api/v1/deals/{oleg}", headers=manager).status_code == 404  # not revealed
    assert client.post(f"/api/v1/deals/{oleg}/win", headers=manager).status_code == 404
    assert client.get("/api/v1/deals", headers=viewer).status_code == 403
    assert client.get("/api/v1/funnel", headers=viewer).status_code == 200
    assert client.get("/api/v1/deals", headers=head).json()["total"] == 3
    funnel = client.get("/api/v1/funnel", headers=manager).json()
    assert "groups" not in funnel
    assert (funnel["deals"], funnel["won"]) == (2, 1)  # their own deals: the totals too, not only a group


@pytest.mark.parametrize("by", [None, "source", "manager", "month"])
def test_every_report_is_computed_on_what_the_role_may_see(world: tuple[TestClient, dict[str, str]], by: str) -> None:
    client, tokens = world
    params = {"by": by} if by else {}
    seen = {}
    for role in ("owner", "head", "viewer", "manager"):
        funnel = client.get("/api/v1/funnel", headers=auth(tokens[role]), params=params).json()
        seen[role] = funnel["deals"], [s["reached"] for s in funnel["stages"]], funnel["revenue"]
        assert sum(g["deals"] for g in funnel.get("groups", [])) in (0, funnel["deals"])
    assert seen["owner"] == seen["head"] == seen["viewer"] == (3, [3, 2, 1, 1, 1], "5000.00")
    assert seen["manager"] == (2, [2, 2, 1, 1, 1], "5000.00")
    if by == "manager":
        groups = client.get("/api/v1/funnel", headers=auth(tokens["manager"]), params=params).json()["groups"]
        assert [g["value"] for g in groups] == ["Анна"]


def test_a_managers_statistics_and_forecast_are_their_own(world: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = world
    params = {"grain": "month", "date_from": "2026-03-01", "date_to": "2026-04-01"}
    leads = {}
    for role in ("owner", "manager"):
        stats = client.get("/api/v1/stats", headers=auth(tokens[role]), params=params).json()
        rows = {row["metric"]: row for row in stats["tables"][0]["rows"]}
        leads[role] = rows["leads"]["cells"][0]["fact"], rows["spend"]["cells"][0]["fact"]
    assert leads == {"owner": (3, "0.00"), "manager": (2, None)}  # spend is the sources', not a manager's
    forecast = {
        role: client.get("/api/v1/forecast", headers=auth(tokens[role])).json()["open_deals"]
        for role in ("owner", "manager")
    }
    assert forecast == {"owner": 2, "manager": 1}


def test_funnel_and_stats_json(world: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = world
    funnel = client.get("/api/v1/funnel", headers=auth(tokens["owner"])).json()
    assert funnel["deals"] == 3
    assert funnel["won"] == 1
    assert [s["reached"] for s in funnel["stages"]] == [3, 2, 1, 1, 1]
    stats = client.get("/api/v1/stats", headers=auth(tokens["owner"]), params={"grain": "month"}).json()
    assert stats["grain"] == "month"
    assert stats["tables"]


def test_the_api_returns_the_commands_json_and_its_document_describes_it(
    world: tuple[TestClient, dict[str, str]], session: Session
) -> None:
    """The typed payloads change nothing of the JSON the command prints, and OpenAPI lists their fields."""
    from voronka.analysis.forecast_report import forecast_report, forecast_to_dict
    from voronka.analysis.funnel.output import report_to_dict
    from voronka.analysis.funnel.query import FunnelQuery, View
    from voronka.analysis.funnel.report import run_funnel
    from voronka.i18n import Translator

    client, tokens = world
    for params in ({}, {"by": "source", "view": "period"}):
        given = client.get("/api/v1/funnel", headers={**auth(tokens["owner"]), "Accept-Language": "en"}, params=params)
        query = FunnelQuery(by=params.get("by"), view=View(params.get("view", "cohort")))
        expected = report_to_dict(
            run_funnel(session=session, account=default_account(session=session), query=query), Translator("en")
        )
        assert given.json() == expected
    account = default_account(session=session)
    report = forecast_report(session=session, account=account, pipeline=find_pipeline(session=session, account=account))
    given = client.get("/api/v1/forecast", headers={**auth(tokens["owner"]), "Accept-Language": "en"})
    assert given.json() == forecast_to_dict(report, "en")
    schemas = client.get("/api/v1/openapi.json").json()["components"]["schemas"]
    assert {"from", "to", "stages", "groups", "revenue"} <= set(schemas["FunnelOut"]["properties"])
    assert {"periods", "tables"} <= set(schemas["StatsOut"]["properties"])
    assert {"this_month", "next_month", "calibration", "run_rate"} <= set(schemas["ForecastOut"]["properties"])
    assert {"low", "high", "won_so_far"} <= set(schemas["ThisMonthOut"]["properties"])


def test_lead_capture(session: Session, engine: Engine, tmp_path: Path) -> None:
    journeys_for(session, [])
    account = default_account(session=session)
    _, token = add_lead_form(
        session=session,
        account=account,
        pipeline=find_pipeline(session=session, account=account),
        name="Сайт",
        source="site",
    )
    session.commit()
    client = make_client(engine, tmp_path)
    url = f"/api/v1/webhooks/leads/{token}"
    assert client.post(url, data={"test": "test"}).json() == {"ok": True}  # Tilda's check
    tilda = {"Name": "Иван", "Phone": "+7 999 111-22-33", "Email": "i@example.ru", "formname": "Расчёт",
             "tranid": "123:456", "utm_source": "yandex", "utm_campaign": "кухни"}  # fmt: skip
    first = client.post(url, data=tilda)
    assert first.status_code == 200
    assert first.json()["created"] is True
    again = client.post(url, data=tilda)  # Tilda retries the same request
    assert again.json() == {"deal_id": first.json()["deal_id"], "created": False, "repeated": False}
    as_json = client.post(url, json={"name": "Мария", "phone": "+7 999 000"})
    assert as_json.json()["created"] is True
    assert client.post(url, json={"comment": "no contact"}).status_code == 422
    assert client.post("/api/v1/webhooks/leads/not-a-token", json={"name": "x"}).status_code == 404
    session.expire_all()
    deal = session.get(Deal, first.json()["deal_id"])
    assert deal is not None
    assert deal.contact_name == "Иван"
    assert deal.custom["utm_campaign"] == "кухни"
    assert deal.custom["form"] == "Расчёт"
    assert session.scalar(select(func.count()).select_from(Deal)) == 2


def test_a_managers_dashboard_counts_their_own_deals(session: Session, engine: Engine, tmp_path: Path) -> None:
    import re

    from tests.web_helpers import log_in

    journeys_for(
        session,
        [
            Journey("2026-03-01 10:00", moves=[("Qualified", "2026-03-02 10:00")], manager="Анна"),
            Journey("2026-03-03 10:00", manager="Олег"),
            Journey("2026-03-04 10:00", manager="Олег"),
            Journey("2026-03-05 10:00", manager="Анна"),
        ],
    )
    anna, owner = make_user(session, "Анна", Role.MANAGER), make_user(session, "Owner", Role.OWNER)

    def first_stage(email: str) -> int:
        client = make_client(engine, tmp_path / email)
        log_in(client, email)
        row = re.search(
            r'<tr data-stage="1">.*?class="num reached" data-value="(\d+)"', client.get("/?period=all").text, flags=re.S
        )
        assert row is not None
        return int(row.group(1))

    assert first_stage(owner) == 4
    assert first_stage(anna) == 2
