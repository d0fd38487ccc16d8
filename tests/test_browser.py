"""The web app in a real browser: Debian's Chromium driven by Playwright (never a downloaded browser).

Log in, see the demo funnel, drag a card to the next stage and see the funnel change, lose a deal
with a reason, switch language, and a manager who cannot see another manager's deal. The pages'
screenshots land in docs/screenshots/ for the README.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.web_helpers import served
from voronka.config import Settings
from voronka.crm.accounts import default_account
from voronka.crm.auth import add_user
from voronka.db import open_database, session_factory
from voronka.demo import DemoOptions, build_demo
from voronka.models import Deal, Role, Stage, User

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).parents[1] / "docs" / "screenshots"
PASSWORD = "browser-test-pass"
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


def _chromium_problem() -> str | None:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        return f"Debian's chromium is not installed ({CHROMIUM}); .ci/run installs it"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[test]')"
    return None


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    problem = _chromium_problem()
    if problem:
        if os.environ.get("VORONKA_REQUIRE_CHROMIUM") == "1":
            pytest.fail(f"VORONKA_REQUIRE_CHROMIUM=1 but {problem}")
        pytest.skip(problem)

    from voronka.web import create_app

    folder = tmp_path_factory.mktemp("site")
    engine = open_database(f"sqlite:///{folder}/site.db")
    with session_factory(engine)() as session:
        account = default_account(session=session, timezone="Europe/Moscow")
        build_demo(session=session, account=account, options=DemoOptions(today=dt.date(2026, 11, 27), leads=600))
        managers = session.scalars(select(User.name).where(User.role == "manager").order_by(User.name)).all()
        add_user(
            session=session,
            account=account,
            name="Владелец",
            email="owner@example.com",
            password=PASSWORD,
            role=Role.OWNER,
        )
        add_user(session=session, account=account, name=managers[0], email="manager@example.com", password=PASSWORD)
        add_user(
            session=session, account=account, name="Руководитель", email="head@example.com", password=PASSWORD,
            role=Role.HEAD,
        )  # fmt: skip
        session.commit()
    settings = Settings(
        database_url=str(folder / "site.db"), secrets_path=folder / "secrets.json", secret_key="browser"
    )
    with served(create_app(settings, engine)) as url:
        yield {"url": url, "engine": engine, "manager": managers[0], "secrets": folder / "secrets.json"}
    engine.dispose()


@pytest.fixture(scope="module")
def browser(site: dict[str, Any]) -> Iterator[Any]:  # noqa: ARG001 - the site's checks skip first
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1360, "height": 900}, locale="ru-RU")
    opened = context.new_page()
    yield opened
    context.close()


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    """A 390×844 touch screen, as a manager's phone."""
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, locale="ru-RU", has_touch=True, is_mobile=True, device_scale_factor=2
    )
    opened = context.new_page()
    yield opened
    context.close()


def number_in(text: str) -> int:
    return int("".join(c for c in text if c.isdigit()))


def log_in(page: Any, site: dict[str, Any], email: str) -> None:
    page.goto(site["url"] + "/")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    if page.locator("#funnel-table").count() == 0:  # say what came instead of waiting for nothing
        raise AssertionError(f"no dashboard after logging in as {email}: {page.url} {page.inner_text('main')[:300]}")


def reached(page: Any, position: int) -> int:
    return int(
        page.inner_text(f"#funnel-table tr[data-stage='{position}'] td.reached").replace("\u00a0", "").replace(" ", "")
    )


def test_owner_sees_the_funnel_drags_a_card_and_loses_a_deal(page: Any, site: dict[str, Any]) -> None:
    log_in(page, site, "owner@example.com")
    page.goto(site["url"] + "/?date_from=2026-11-01&date_to=2026-12-01")  # the demo's last month against October
    page.wait_for_selector("#funnel-chart rect.bar")  # the funnel, drawn as SVG by the server
    assert page.locator("#kpis .kpi").count() == 5
    transferred = page.evaluate(
        "performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))"
        ".reduce((sum, e) => sum + e.transferSize, 0)"
    )
    assert 0 < transferred <= 1_500_000  # the first dashboard load, compressed, with every script and style
    assert "₽" in page.inner_text("#kpi-revenue")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)

    page.goto(site["url"] + "/kanban")
    columns = page.locator("section.column[data-stage-id]")
    source = next(i for i in range(columns.count() - 1) if columns.nth(i).locator(".deal-card").count())
    deal_id = int(columns.nth(source).locator(".deal-card").first.get_attribute("data-deal-id"))
    with session_factory(site["engine"])() as session:
        furthest = session.get(Deal, deal_id).furthest_position  # type: ignore[union-attr]
    page.goto(site["url"] + "/?period=all")
    before = reached(page, source + 2)

    page.goto(site["url"] + "/kanban")
    count = number_in(columns.nth(source + 1).locator(".count").inner_text())
    with page.expect_navigation():
        columns.nth(source).locator(f".deal-card[data-deal-id='{deal_id}']").drag_to(columns.nth(source + 1))
    assert number_in(columns.nth(source + 1).locator(".count").inner_text()) == count + 1
    page.wait_for_selector("#toast:not([hidden])")  # the move can be undone for a few seconds
    page.screenshot(path=str(SCREENSHOTS / "kanban.png"))
    with session_factory(site["engine"])() as session:
        deal = session.get(Deal, deal_id)
        assert deal is not None
        assert session.get(Stage, deal.stage_id).position == source + 2

    page.goto(site["url"] + "/?period=all")
    # Cumulative cohort view: the deal now counts at the next stage, unless it had been there before.
    assert reached(page, source + 2) == before + (1 if furthest < source + 2 else 0)

    page.goto(site["url"] + "/kanban")
    page.locator("section.column[data-stage-id] .deal-card").first.drag_to(page.locator("section.drop-lost"))
    page.wait_for_selector("#lose-dialog[open]")
    # The board scrolls sideways to the drop zone while dragging, so read which deal was dropped.
    lost_id = int(page.evaluate("document.getElementById('lose-form').dataset.dealId"))
    with session_factory(site["engine"])() as session:
        title = session.get(Deal, lost_id).title  # type: ignore[union-attr]
    assert page.inner_text("#lose-title") == title  # the dialog names the deal
    page.fill("#lose-dialog input[name=reason]", "Дорого")
    with page.expect_navigation():
        page.click("#lose-dialog button[type=submit]")
    with session_factory(site["engine"])() as session:
        assert session.get(Deal, lost_id).status == "lost"  # type: ignore[union-attr]
    page.wait_for_selector("#toast:not([hidden])")
    with page.expect_navigation():
        page.click("#toast-undo")  # the loss undone
    with session_factory(site["engine"])() as session:
        deal = session.get(Deal, lost_id)
        assert deal is not None
        assert (deal.status, deal.loss_reason_id) == ("open", None)

    page.goto(site["url"] + "/reports/stats?grain=month")
    page.wait_for_selector(".stats-table")
    page.screenshot(path=str(SCREENSHOTS / "stats.png"), full_page=True)


def test_htmx_updates_parts_of_pages(page: Any, site: dict[str, Any]) -> None:
    log_in(page, site, "owner@example.com")
    assert page.evaluate("typeof htmx") == "object"  # served from the installed package
    page.evaluate("window.notReloaded = true")
    page.select_option("select[name=period]", "all")
    page.select_option("select[name=by]", "source")
    page.click(".filters button")
    page.wait_for_url("**by=source**")
    page.wait_for_selector("#board h2:has-text('" + page.inner_text("select[name=by] option:checked") + "')")
    assert page.evaluate("window.notReloaded") is True  # the split by source, swapped in without a reload
    page.wait_for_selector("#funnel-chart rect.bar")

    page.goto(site["url"] + "/deals?stage=1")
    page.click("#deals-table tbody a >> nth=0")
    page.fill("input[name=outgoing_number]", "+7 495 111-22-33")
    with page.expect_navigation():
        page.click("form[action$='/calls'] button")
    page.wait_for_selector("#history li:has-text('+7 495 111-22-33')")  # the call, in the card's history


def test_language_switch(page: Any, site: dict[str, Any]) -> None:
    log_in(page, site, "owner@example.com")
    assert page.inner_text("header nav a >> nth=0") == "Сводка"
    page.click("#lang-en")
    page.wait_for_selector("#funnel-table")
    assert page.inner_text("header nav a >> nth=0") == "Dashboard"
    assert "Stage" in page.inner_text("#funnel-table thead")


def test_a_manager_sees_only_their_own_deals(page: Any, site: dict[str, Any]) -> None:
    with session_factory(site["engine"])() as session:
        me = session.scalars(select(User).where(User.email == "manager@example.com")).one()
        others = session.scalars(select(Deal.id).where(Deal.manager_id != me.id, Deal.status == "open")).first()
        mine = session.scalar(
            select(func.count()).select_from(Deal).where(Deal.manager_id == me.id, Deal.status == "open")
        )
    log_in(page, site, "manager@example.com")
    page.goto(site["url"] + "/kanban")
    shown = sum(int(c) for c in page.locator("section.column[data-stage-id] .count").all_inner_texts())
    assert shown == mine
    answer = page.goto(site["url"] + f"/deals/{others}")
    assert answer.status == 404
    assert "Сделки" in page.inner_text("p.error") or "deal" in page.inner_text("p.error")


@pytest.mark.parametrize("screen", ["page", "phone"])
def test_a_website_lead_is_assigned_called_from_a_task_moved_and_won(
    screen: str, site: dict[str, Any], request: pytest.FixtureRequest
) -> None:
    import httpx

    page = request.getfixturevalue(screen)  # a desktop, then a 390×844 phone
    lead = f"Лид С Сайта {screen}"
    from voronka.crm.leads import add_lead_form, set_form_assignment
    from voronka.models import AssignRule, Pipeline

    with session_factory(site["engine"])() as session:
        manager = session.scalars(select(User).where(User.email == "manager@example.com")).one()
        pipeline = session.scalars(select(Pipeline)).first()
        account = default_account(session=session)
        form, token = add_lead_form(session=session, account=account, pipeline=pipeline, name=lead, source="site")
        set_form_assignment(session=session, form=form, rule=AssignRule.MANAGER, manager=manager)
        session.commit()
    phone = "8 (916) 555-01-02" if screen == "page" else "8 (916) 555-01-03"
    answer = httpx.post(site["url"] + f"/api/v1/webhooks/leads/{token}", data={"Name": lead, "Phone": phone})
    assert answer.status_code in (200, 201), answer.text

    log_in(page, site, "manager@example.com")
    page.goto(site["url"] + "/kanban?mine=1&q=" + lead)
    card = page.locator(".deal-card", has_text=lead)
    assert card.count() == 1  # assigned to this manager: on their board
    card.locator("a[href^='/deals/']").click()  # not its tel: link
    assert page.input_value("#edit-deal input[name=phone]") == "+7 916 555-01-0" + phone[-1]
    page.select_option("#add-task select[name=kind]", "call")
    with page.expect_navigation():
        page.click("#add-task button")
    page.goto(site["url"] + "/tasks")
    task = page.locator("#my-today li, #my-overdue li", has_text=lead)
    assert task.count() == 1
    task.locator("select[name=outcome]").select_option("answered")
    with page.expect_navigation():
        task.locator("button").click()
    assert page.locator("#my-today li, #my-overdue li", has_text=lead).count() == 0
    page.goto(site["url"] + "/search?q=" + "+7916555010" + phone[-1])  # one match: its card opens
    history = page.inner_text("#history")
    assert "Звонок: дозвонились" in history
    assert "Задача выполнена" in history
    from playwright.sync_api import expect

    stage = page.inner_text("#deal-stage")
    page.select_option("form[action$='/move'] select", index=1)
    with page.expect_navigation(wait_until="load"):
        page.click("form[action$='/move'] button")
    expect(page.locator("#deal-stage")).not_to_have_text(stage)
    page.fill("#win-form input[name=amount]", "90 000")  # a lead has no amount: winning asks for it
    with page.expect_navigation(wait_until="load"):
        page.click("form[action$='/win'] button")
    expect(page.locator("#deal-status")).to_have_text(re.compile("выиграна", re.IGNORECASE))
    page.screenshot(path=str(SCREENSHOTS / ("deal.png" if screen == "page" else "deal-phone.png")), full_page=True)


def test_a_phone_in_client_is_added_from_the_kanban_and_found_by_phone(page: Any, site: dict[str, Any]) -> None:
    log_in(page, site, "owner@example.com")
    page.goto(site["url"] + "/kanban")
    page.fill("#quick-add input[name=title]", "Позвонил сам")
    page.fill("#quick-add input[name=phone]", "8 903 777 66 55")
    page.fill("#quick-add input[name=amount]", "125 000")
    with page.expect_navigation():
        page.click("#quick-add button")
    assert page.inner_text("h1") == "Позвонил сам"
    assert page.inner_text("#deal-amount") == "125\u00a0000\u00a0₽"  # money as Russian readers write it
    created = page.inner_text("dl")
    assert any(month in created for month in ("янв.", "февр.", "мар.", "апр.", "мая", "июн.", "июл.", "авг.",
                                               "сент.", "окт.", "нояб.", "дек."))  # fmt: skip
    page.fill("header .search input", "+7 (903) 777-66-55")
    with page.expect_navigation():
        page.press("header .search input", "Enter")
    assert page.inner_text("h1") == "Позвонил сам"  # found by the phone written differently

    page.goto(site["url"] + "/kanban")
    page.fill("#quick-add input[name=title]", "Тот же номер")
    page.fill("#quick-add input[name=phone]", "+79037776655")
    with page.expect_navigation():
        page.click("#quick-add button")
    assert page.locator("#duplicates a", has_text="Позвонил сам").count() == 1  # warned, with the deal to open
    page.check("#duplicate-ok")
    with page.expect_navigation():
        page.click("#new-deal-form button")
    assert page.inner_text("h1") == "Тот же номер"


@pytest.mark.parametrize("screen", ["page", "phone"])
def test_a_head_sees_overdue_tasks_and_deals_without_a_task(
    screen: str, site: dict[str, Any], request: pytest.FixtureRequest
) -> None:
    from voronka.crm.tasks import add_task
    from voronka.models import TaskKind
    from voronka.timeutil import utcnow

    with session_factory(site["engine"])() as session:
        manager = session.scalars(select(User).where(User.email == "manager@example.com")).one()
        deal = session.scalars(select(Deal).where(Deal.manager_id == manager.id, Deal.status == "open")).first()
        assert deal is not None
        add_task(
            session=session, deal=deal, kind=TaskKind.ESTIMATE, due_at=utcnow() - dt.timedelta(hours=3),
            responsible=manager, text=f"КП по окнам {screen}",
        )  # fmt: skip
        session.commit()
    page = request.getfixturevalue(screen)
    log_in(page, site, "head@example.com")
    page.goto(site["url"] + "/tasks")
    overdue = page.locator("#team-overdue li", has_text=f"КП по окнам {screen}")
    assert overdue.count() == 1
    assert manager.name in overdue.inner_text()
    assert page.locator("#without-task li").count() > 0
    if screen == "page":
        page.screenshot(path=str(SCREENSHOTS / "tasks.png"), full_page=True)
    assert page.locator("header nav a[href='/settings']").count() == 1
    page.goto(site["url"] + "/settings")
    assert page.locator("#users").count() == 0  # settings of the account are the owner's


def test_on_a_phone_a_card_is_dragged_by_finger(phone: Any, site: dict[str, Any]) -> None:
    log_in(phone, site, "owner@example.com")
    phone.goto(site["url"] + "/kanban")
    columns = phone.locator("section.column[data-stage-id]")
    card = columns.nth(0).locator(".deal-card").first
    deal_id = int(card.get_attribute("data-deal-id"))
    card.scroll_into_view_if_needed()
    start = card.locator(".handle").bounding_box()
    target = columns.nth(1)
    target.scroll_into_view_if_needed()
    start = card.locator(".handle").bounding_box() or start
    end = target.locator("h2").bounding_box()
    cdp = phone.context.new_cdp_session(phone)

    def touch(kind: str, x: float, y: float) -> None:
        points = [] if kind == "touchEnd" else [{"x": x, "y": y}]
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

    x0, y0 = start["x"] + start["width"] / 2, start["y"] + start["height"] / 2
    x1, y1 = end["x"] + end["width"] / 2, end["y"] + end["height"] / 2
    touch("touchStart", x0, y0)
    for step in range(1, 11):
        touch("touchMove", x0 + (x1 - x0) * step / 10, y0 + (y1 - y0) * step / 10)
    with phone.expect_navigation():
        touch("touchEnd", x1, y1)
    with session_factory(site["engine"])() as session:
        moved = session.get(Deal, deal_id)
        assert moved is not None
        assert session.get(Stage, moved.stage_id).position == 2
    phone.screenshot(path=str(SCREENSHOTS / "kanban-phone.png"))


def test_the_owner_sets_alert_rules_and_a_manager_gets_a_code_for_the_bot(page: Any, site: dict[str, Any]) -> None:
    from voronka.alerts.config import set_telegram
    from voronka.secretstore import SecretStore

    with session_factory(site["engine"])() as session:
        account = default_account(session=session)
        set_telegram(session=session, account=account, store=SecretStore(site["secrets"]), token="123456:" + "A" * 30)
        session.commit()
    log_in(page, site, "owner@example.com")
    page.goto(site["url"] + "/settings/alerts")
    page.fill("input[name=lead_minutes]", "10")
    page.fill("input[name=quiet]", "22:00-08:00")
    with page.expect_navigation():
        page.click("#alert-rules form:first-of-type button")
    assert page.input_value("input[name=lead_minutes]") == "10"
    assert page.input_value("input[name=quiet]") == "22:00-08:00"
    assert "Ежедневная сводка" in page.inner_text("#jobs")
    escalation = page.locator("#role-events input[value='owner:lead_escalated']")
    assert escalation.is_checked()
    escalation.uncheck()
    with page.expect_navigation():
        page.click("#alert-rules form:nth-of-type(2) button")
    assert not page.locator("#role-events input[value='owner:lead_escalated']").is_checked()
    assert page.locator("#role-events input[value='manager:digest_daily']").count() == 0  # team figures: leaders only

    page.context.clear_cookies()
    log_in(page, site, "manager@example.com")
    page.goto(site["url"] + "/settings/alerts")
    assert page.locator("#jobs").count() == 0  # the owner's part is not shown
    labels = page.inner_text("#my-alerts")
    assert "Новый лид ждёт звонка" in labels
    assert "Ежедневная сводка" not in labels
    with page.expect_navigation():
        page.click("text=Получить код для бота")
    code = page.inner_text("#link-code code")
    assert re.fullmatch(r"/start \d{8}", code), code
