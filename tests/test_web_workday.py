"""The working-day pages through HTTP: settings a head and an owner keep, the deals list, tasks,
hypotheses on the web, and error pages that stay in the layout and speak plainly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tests.web_helpers import csrf_of, log_in, make_client, make_user
from voronka.crm.accounts import create_pipeline, default_account
from voronka.crm.deals import create_deal
from voronka.crm.new_deal import NewDeal
from voronka.db import session_factory
from voronka.models import AdSpend, Deal, Hypothesis, LeadForm, Plan, Role, Source, Stage, User


@pytest.fixture
def site(engine: Engine, tmp_path: Path) -> dict[str, object]:
    with session_factory(engine)() as session:
        account = default_account(session=session, timezone="Europe/Moscow")
        pipeline = create_pipeline(
            session=session, account=account, name="Продажи", stages=["Заявка", "Звонок", "Счёт", "Оплата"]
        )
        for i in range(57):
            create_deal(
                session=session, pipeline=pipeline, new=NewDeal(currency="RUB", title=f"Сделка {i}", amount=1000_00 * i)
            )
        session.commit()
        emails = {role: make_user(session, name, role) for name, role in (
            ("Owner", Role.OWNER), ("Head", Role.HEAD), ("Manager One", Role.MANAGER), ("Viewer", Role.VIEWER)
        )}  # fmt: skip
    return {"engine": engine, "emails": emails, "tmp": tmp_path}


def client_for(site: dict[str, object], role: Role) -> tuple[TestClient, str]:
    client = make_client(site["engine"], site["tmp"] / role.value)  # type: ignore[arg-type, operator]
    client.headers["Accept-Language"] = "ru"
    token = log_in(client, site["emails"][role])  # type: ignore[index]
    return client, token


def session_of(site: dict[str, object]) -> Session:
    return session_factory(site["engine"])()  # type: ignore[arg-type]


def test_a_head_keeps_plans_and_spend_a_manager_may_not(site: dict[str, object]) -> None:
    head, csrf = client_for(site, Role.HEAD)
    with session_of(site) as session:
        pipeline_id = session.scalars(select(Stage.pipeline_id)).first()
    answer = head.post(
        "/settings/plans",
        data={"csrf": csrf, "pipeline_id": pipeline_id, "month": "2026-12", "metric": "leads", "value": "120",
              "cut": "manager:Manager One"},
        follow_redirects=False,
    )  # fmt: skip
    assert answer.status_code == 303, answer.text
    head.post("/settings/spend", data={"csrf": csrf, "source": "Яндекс.Директ", "month": "2026-12", "amount": "50 000"})
    page = head.get("/settings").text
    plans = page[page.index('id="plans"') : page.index('id="spend"')]
    assert "декабрь 2026" in plans
    assert "Manager One" in plans
    assert "Заявки" in plans  # the metric in the reader's language, not "leads"
    assert "50\u00a0000\u00a0₽" in page
    assert 'id="users"' not in page  # the account's people are the owner's to manage
    with session_of(site) as session:
        plan = session.scalars(select(Plan)).one()
        spend = session.scalars(select(AdSpend)).one()
    head.post(f"/settings/plans/{plan.id}/delete", data={"csrf": csrf})
    head.post(f"/settings/spend/{spend.id}/delete", data={"csrf": csrf})
    with session_of(site) as session:
        assert session.scalars(select(Plan)).all() == []
        assert session.scalars(select(AdSpend)).all() == []

    manager, csrf = client_for(site, Role.MANAGER)
    refused = manager.post("/settings/spend", data={"csrf": csrf, "source": "x", "month": "2026-12", "amount": "1"})
    assert refused.status_code == 403
    assert "Недоступно для вашей роли" in refused.text
    assert "set_plans" not in refused.text  # no permission codes
    assert 'href="/kanban"' in refused.text  # the error page keeps the menu


def test_the_owner_manages_people_forms_stages_and_sources(site: dict[str, object]) -> None:
    owner, csrf = client_for(site, Role.OWNER)
    page = owner.get("/settings").text
    assert re.search(r'<option value="manager" selected>', page)  # a new user is a manager by default
    with session_of(site) as session:
        viewer = session.scalars(select(User).where(User.role == "viewer")).one()
        manager = session.scalars(select(User).where(User.role == "manager")).one()
        stages = session.scalars(select(Stage).order_by(Stage.position)).all()
    owner.post(f"/settings/users/{viewer.id}/role", data={"csrf": csrf, "role": "head"})
    owner.post(f"/settings/users/{manager.id}/password", data={"csrf": csrf, "password": "a-new-long-password"})
    owner.post(f"/settings/users/{viewer.id}/deactivate", data={"csrf": csrf})
    with session_of(site) as session:
        assert session.get(User, viewer.id).role == "head"  # type: ignore[union-attr]
        assert session.get(User, viewer.id).active is False  # type: ignore[union-attr]
    relogged = make_client(site["engine"], site["tmp"] / "relog")  # type: ignore[arg-type, operator]
    log_in(relogged, site["emails"][Role.MANAGER], "a-new-long-password")  # type: ignore[index]

    made = owner.post(
        "/settings/forms",
        data={"csrf": csrf, "name": "Сайт", "pipeline_id": stages[0].pipeline_id, "assign": "round_robin"},
    ).text
    address = re.search(r'<code id="new-form">([^<]+)</code>', made)
    assert address is not None
    assert address[1].startswith("http://testserver/api/v1/webhooks/leads/")  # the full address to paste
    assert "Тильд" in made  # and the steps to paste it
    with session_of(site) as session:
        assert session.scalars(select(LeadForm.assign_rule)).one() == "round_robin"

    unconfirmed = owner.post(f"/settings/stages/{stages[1].id}/remove", data={"csrf": csrf, "into": stages[0].id})
    assert unconfirmed.status_code == 422  # one click deletes no stage: the form asks to confirm
    owner.post(f"/settings/stages/{stages[1].id}/remove", data={"csrf": csrf, "into": stages[0].id, "confirm": "true"})
    with session_of(site) as session:
        assert [s.name for s in session.scalars(select(Stage).order_by(Stage.position))] == ["Заявка", "Счёт", "Оплата"]

    owner.post("/settings/sources", data={"csrf": csrf, "name": "vk"})
    owner.post("/settings/sources", data={"csrf": csrf, "name": "ВКонтакте"})
    with session_of(site) as session:
        vk = session.scalars(select(Source).where(Source.name == "vk")).one()
    owner.post(f"/settings/sources/{vk.id}/rename", data={"csrf": csrf, "name": "ВКонтакте"})
    with session_of(site) as session:
        kept = session.scalars(select(Source)).one()
    assert kept.name == "ВКонтакте"
    owner.post(f"/settings/sources/{kept.id}/archive", data={"csrf": csrf, "archived": "true"})
    assert 'value="ВКонтакте"' not in owner.get("/deals/new").text  # no longer offered for a new deal
    assert "в архиве" in owner.get("/settings").text
    owner.post(f"/settings/sources/{kept.id}/archive", data={"csrf": csrf, "archived": "false"})
    assert 'value="ВКонтакте"' in owner.get("/deals/new").text


def test_the_deals_list_has_headers_statuses_pages_and_a_count(site: dict[str, object]) -> None:
    owner, _ = client_for(site, Role.OWNER)
    first = owner.get("/deals").text
    assert "Показано 50 из 57" in first
    assert "<th>Статус</th>" in first
    assert ">в работе<" in first  # translated, not "open"
    assert "страница 1 из 2" in first
    second = owner.get("/deals?pipeline=Продажи&page=2").text
    assert "Показано 7 из 57" in second
    assert "56\u00a0000\u00a0₽" in first  # amounts as the reader writes them
    one = owner.get("/search?q=Сделка 42", follow_redirects=False)
    assert one.status_code == 303  # one match opens its card
    nothing = owner.get("/search?q=нет такой").text
    assert re.findall(r'href="/deals/\d', nothing) == []
    assert "Сделок не найдено" in nothing


def test_a_hypothesis_is_started_and_closed_on_the_web(site: dict[str, object]) -> None:
    head, csrf = client_for(site, Role.HEAD)
    answer = head.post(
        "/reports/hypotheses",
        data={
            "csrf": csrf,
            "step": 2,
            "change": "Звонок за 5 минут",
            "starts_on": "2026-11-01",
            "assign": "alternating",
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    with session_of(site) as session:
        made = session.scalars(select(Hypothesis)).one()
    assert "Звонок за 5 минут" in head.get("/reports/hypotheses").text
    head.post(f"/reports/hypotheses/{made.id}/close", data={"csrf": csrf, "verdict": "работает"})
    with session_of(site) as session:
        closed = session.get(Hypothesis, made.id)
        assert closed is not None
        assert (closed.verdict, closed.closed_at is not None) == ("работает", True)
    viewer, csrf = client_for(site, Role.VIEWER)
    refused = viewer.post(
        "/reports/hypotheses",
        data={"csrf": csrf, "step": 2, "change": "x", "starts_on": "2026-11-01", "assign": "random"},
    )
    assert refused.status_code == 403


def test_a_head_sees_the_deals_waiting_for_a_manager(site: dict[str, object]) -> None:
    head, _ = client_for(site, Role.HEAD)
    tasks = head.get("/tasks").text
    assert "Открытых сделок без ответственного: 57" in tasks  # every deal of this account waits
    queue = head.get("/deals?status=open&unassigned=1").text
    assert "Показано 50 из 57" in queue
    manager, _ = client_for(site, Role.MANAGER)
    assert 'id="unassigned"' not in manager.get("/tasks").text


def test_the_menu_shows_what_the_role_may_open(site: dict[str, object]) -> None:
    viewer, _ = client_for(site, Role.VIEWER)
    page = viewer.get("/").text
    assert 'href="/kanban"' not in page  # a viewer sees reports, not deals
    assert 'href="/reports/stats"' in page
    manager, _ = client_for(site, Role.MANAGER)
    assert 'href="/tasks"' in manager.get("/").text


def test_a_new_deal_form_warns_of_a_duplicate_phone(site: dict[str, object]) -> None:
    owner, csrf = client_for(site, Role.OWNER)
    first = owner.post(
        "/deals", data={"csrf": csrf, "title": "Клиент", "phone": "8 912 345 67 89"}, follow_redirects=False
    )
    assert first.status_code == 303
    again = owner.post("/deals", data={"csrf": csrf, "title": "Снова", "phone": "+7 912 3456789"})
    assert again.status_code == 409
    assert first.headers["location"] in again.text  # a link to the deal with that phone
    created = owner.post(
        "/deals", data={"csrf": csrf, "title": "Снова", "phone": "+7 912 3456789", "duplicate_ok": "true"},
        follow_redirects=False,
    )  # fmt: skip
    assert created.status_code == 303
    with session_of(site) as session:
        assert session.scalars(select(Deal.phone).where(Deal.title == "Снова")).one() == "+7 912 345-67-89"
    card = owner.get(created.headers["location"]).text
    edited = owner.post(
        created.headers["location"] + "/edit",
        data={"csrf": csrf_of(card), "title": "Снова", "amount": "15 000", "currency": "RUB", "email": "bad"},
    )
    assert edited.status_code == 422  # a clear refusal, nothing half-saved
    odd = owner.post("/deals", data={"csrf": csrf, "title": "Валюта", "currency": "XYZ"})
    assert odd.status_code == 422
    assert "XYZ" in odd.text
    with session_of(site) as session:
        assert session.scalars(select(Deal.amount).where(Deal.title == "Снова")).one() is None


def test_the_query_strings_are_typed_models_whose_empty_fields_mean_any() -> None:
    """A filter form sends every field, empty ones as ``""``: the view gets None for them."""
    from voronka.web.deal_views import DealListQuery, KanbanQuery
    from voronka.web.queries import DealListParams, KanbanParams

    sent = DealListParams.model_validate({"status": "", "manager": "", "q": "окна", "unassigned": "1", "page": "2"})
    assert sent.query("Продажи") == DealListQuery(pipeline="Продажи", text="окна", unassigned=True, page=2)
    board = KanbanParams.model_validate({"mine": "1", "q": "", "period": "this_month"})
    assert board.query(None) == KanbanQuery(mine=True, period="this_month")
