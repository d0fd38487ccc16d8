"""The dashboard's «all pipelines»: every pipeline's figures exactly as its own dashboard has them,
one after another, under a total of leads, sales and revenue (conversion and average check from the
sums); a manager's figures are their own deals in every pipeline. Hand-made deals, counted by hand."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.builders import Journey, account_for, add_journey, pipeline_for
from tests.web_helpers import log_in, make_client, make_user
from voronka.analysis.funnel.query import View
from voronka.analysis.overview import DashboardRange, pipeline_figures, pipelines_overview, total_of
from voronka.analysis.summary import Compared, PeriodSummary
from voronka.crm.accounts import get_or_create_manager
from voronka.models import Pipeline, Role

NOVEMBER = DashboardRange(dt.date(2026, 11, 1), dt.date(2026, 12, 1), view=View.PERIOD)


@pytest.fixture
def two(session: Session) -> tuple[Pipeline, Pipeline]:
    """The business's own pipeline and a synced CRM's, with other stages."""
    own = pipeline_for(session, ("Заявка", "Замер", "Договор", "Оплата"), name="Свои")
    crm = pipeline_for(session, ("Новая", "В работе", "Успешно"), name="amoCRM")
    for journey in (
        Journey("2026-10-15 09:00", manager="Анна"),  # October: the period before
        Journey("2026-11-02 09:00", moves=[("Замер", "2026-11-03 09:00")], won="2026-11-10 09:00",
                manager="Анна", amount=100_000_00),
        Journey("2026-11-04 09:00", manager="Анна"),
        Journey("2026-11-05 09:00", moves=[("Замер", "2026-11-06 09:00")], manager="Борис"),
    ):  # fmt: skip
        add_journey(session, own, journey)
    for journey in (
        Journey("2026-11-07 09:00", won="2026-11-20 09:00", manager="Борис", amount=50_000_00),
        Journey("2026-11-08 09:00", manager="Борис"),
        Journey("2026-10-20 09:00", won="2026-10-25 09:00", manager="Борис", amount=30_000_00),
    ):
        add_journey(session, crm, journey)
    session.commit()
    return own, crm


def test_every_pipeline_as_its_own_dashboard_and_their_total(session: Session, two: tuple[Pipeline, Pipeline]) -> None:
    account = account_for(session)
    overview = pipelines_overview(session=session, account=account, asked=NOVEMBER)
    assert [f.name for f in overview.pipelines] == ["Свои", "amoCRM"]
    for figures, pipeline in zip(overview.pipelines, two, strict=True):
        alone = pipeline_figures(session=session, account=account, pipeline=pipeline, asked=NOVEMBER)
        assert figures == alone  # the same figures as that pipeline's own dashboard
    own, crm = overview.pipelines
    assert own.summary is not None and crm.summary is not None  # noqa: PT018
    assert (own.summary.leads.value, own.summary.sales.value, own.summary.revenue.value) == (3, 1, 100_000_00)
    assert (crm.summary.leads.value, crm.summary.sales.value, crm.summary.revenue.value) == (2, 1, 50_000_00)
    assert [s.reached for s in own.funnel.figures.stages] == [3, 2, 1, 1]  # its own stages, not merged
    assert [s.reached for s in crm.funnel.figures.stages] == [2, 1, 1]
    totals = overview.totals
    assert totals is not None
    assert (totals.leads.value, totals.leads.previous) == (5, 2)
    assert (totals.sales.value, totals.sales.previous) == (2, 1)
    assert (totals.revenue.value, totals.revenue.previous) == (150_000_00, 30_000_00)
    assert totals.conversion.value == pytest.approx(0.4)  # 2 of 5, not the mean of 1/3 and 1/2
    assert totals.average_check.value == 75_000_00


def test_a_managers_figures_are_their_own_deals_in_every_pipeline(
    session: Session, two: tuple[Pipeline, Pipeline]
) -> None:
    account = account_for(session)
    boris = get_or_create_manager(session=session, account=account, name="Борис")
    mine = DashboardRange(NOVEMBER.date_from, NOVEMBER.date_to, view=View.PERIOD, manager_id=boris.id)
    overview = pipelines_overview(session=session, account=account, asked=mine)
    own, crm = overview.pipelines
    assert own.summary is not None and crm.summary is not None  # noqa: PT018
    assert (own.summary.leads.value, own.summary.sales.value) == (1, 0)  # Анна's two are not his
    assert (crm.summary.leads.value, crm.summary.sales.value) == (2, 1)
    assert overview.totals is not None
    assert (overview.totals.leads.value, overview.totals.revenue.value) == (3, 50_000_00)
    assert [s.reached for s in own.funnel.figures.stages] == [1, 1, 0, 0]
    assert two


def test_all_time_totals_every_deal(session: Session, two: tuple[Pipeline, Pipeline]) -> None:
    """All time (and a range open at one end) still has its figures: from the first arrival
    (15 October) to after today; the period before it holds no deals, so nothing to compare."""
    asked = DashboardRange(None, None, view=View.PERIOD, today=dt.date(2026, 12, 6))
    overview = pipelines_overview(session=session, account=account_for(session), asked=asked)
    assert [s.reached for s in overview.pipelines[0].funnel.figures.stages] == [4, 2, 1, 1]  # October's too
    totals = overview.totals
    assert totals is not None
    assert (totals.leads.value, totals.sales.value, totals.revenue.value) == (7, 3, 180_000_00)
    assert (totals.leads.previous, totals.leads.change) == (0, None)
    own = overview.pipelines[0].summary
    assert own is not None
    assert own.date_from == dt.date(2026, 10, 15)
    from_november = DashboardRange(dt.date(2026, 11, 1), None, view=View.PERIOD, today=dt.date(2026, 12, 6))
    later = pipelines_overview(session=session, account=account_for(session), asked=from_november).totals
    assert later is not None
    assert (later.leads.value, later.sales.value, later.revenue.value) == (5, 2, 150_000_00)
    assert two


def test_no_deals_no_total(session: Session) -> None:
    pipeline_for(session, ("Заявка", "Оплата"), name="Пустая")
    asked = DashboardRange(None, None, today=dt.date(2026, 12, 6))
    overview = pipelines_overview(session=session, account=account_for(session), asked=asked)
    assert overview.totals is None
    assert overview.pipelines[0].summary is None


def _summary(leads: tuple[int, int], sales: tuple[int, int], revenue: tuple[int, int]) -> PeriodSummary:
    day = dt.date(2026, 11, 1)
    figure = Compared(None, None)
    return PeriodSummary(
        day, day, day, day, "RUB", Compared(*leads), Compared(*sales), Compared(*revenue), figure, figure, ()
    )


def test_the_total_adds_counts_and_works_out_rates_from_the_sums() -> None:
    totals = total_of([_summary((10, 4), (1, 1), (900, 500)), _summary((0, 0), (0, 1), (0, 300))])
    assert (totals.leads.value, totals.sales.value, totals.revenue.value) == (10, 1, 900)
    assert (totals.leads.previous, totals.sales.previous, totals.revenue.previous) == (4, 2, 800)
    assert (totals.conversion.value, totals.conversion.previous) == (0.1, 0.5)
    assert (totals.average_check.value, totals.average_check.previous) == (900, 400)


def test_pages_keep_the_period_and_a_page_of_one_pipeline_takes_all_as_none(
    session: Session, engine: Engine, tmp_path: Path, two: tuple[Pipeline, Pipeline]
) -> None:
    """From all pipelines for a quarter, a pipeline's link opens its own dashboard for that quarter;
    ``?pipeline=*`` on a page that shows one pipeline (an edited or shared address) shows the
    remembered one instead of «not found»."""
    client = make_client(engine, tmp_path)
    log_in(client, make_user(session, "Owner", Role.OWNER))
    page = client.get("/", params={"pipeline": "*", "period": "quarter", "view": "period", "by": "source"})
    assert page.status_code == 200
    assert 'href="/?pipeline=amoCRM&amp;period=quarter&amp;view=period&amp;rule=cumulative&amp;by=source"' in page.text
    custom = client.get("/", params={"pipeline": "*", "date_from": "2026-11-01", "date_to": "2026-12-01"})
    assert 'href="/?pipeline=%D0%A1%D0%B2%D0%BE%D0%B8&amp;date_from=2026-11-01&amp;date_to=2026-12-01' in custom.text
    for path in ("/kanban", "/deals", "/reports/stats", "/reports/diagnosis"):
        answer = client.get(path, params={"pipeline": "*"})
        assert answer.status_code == 200, (path, answer.status_code)
        assert "Свои" in answer.text
    assert 'id="pipelines-overview"' in client.get("/").text  # the dashboard remembers all
    assert two


def test_a_bad_date_is_explained_in_the_readers_language(session: Session, engine: Engine, tmp_path: Path) -> None:
    """The refusal is Russian through and through («ожидается дата вида …», not «a date such as»)."""
    pipeline_for(session, ("Заявка", "Оплата"), name="Свои")
    client = make_client(engine, tmp_path)
    log_in(client, make_user(session, "Owner", Role.OWNER))
    client.get("/lang/ru", params={"next": "/"})
    answer = client.get("/", params={"date_from": "01.13.2026"})
    assert answer.status_code == 422
    assert "ожидается дата вида 2026-03-01" in answer.text
    assert "such as" not in answer.text
    reversed_range = client.get("/", params={"date_from": "2026-12-05", "date_to": "2026-11-01"})
    assert reversed_range.status_code == 422
    assert "Начало периода 2026-12-05 должно быть раньше его конца 2026-11-01" in reversed_range.text


def test_all_time_figures_are_the_period_count_of_the_whole_history(
    session: Session, two: tuple[Pipeline, Pipeline]
) -> None:
    """All time takes its figures from the dashboard's own funnel instead of counting the whole
    history a second time; they equal that count, losses included, in either view."""
    from voronka.analysis.summary import period_summary

    account = account_for(session)
    today = dt.date(2026, 12, 6)
    for view in (View.COHORT, View.PERIOD):
        for pipeline in two:
            asked = DashboardRange(None, None, view=view, today=today)
            quick = pipeline_figures(session=session, account=account, pipeline=pipeline, asked=asked).summary
            assert quick is not None
            counted = period_summary(
                session=session, account=account, pipeline=pipeline.name, date_from=quick.date_from,
                date_to=quick.date_to, today=today,
            )  # fmt: skip
            for figure in ("leads", "sales", "revenue", "conversion", "average_check"):
                assert getattr(quick, figure).value == getattr(counted, figure).value, (view, figure)
            assert quick.losses == counted.losses


def test_the_dashboards_query_sent_with_empty_fields_is_the_one_without_them(
    session: Session, engine: Engine, tmp_path: Path, two: tuple[Pipeline, Pipeline]
) -> None:
    """The dashboard's form sends every field, empty ones as ``""``; its query (one model,
    ``web.queries.DashboardQuery``) reads them as not sent, and refuses a view it does not know."""
    client = make_client(engine, tmp_path)
    log_in(client, make_user(session, "Owner", Role.OWNER))
    asked = {"pipeline": "Свои", "period": "quarter", "view": "period"}
    bare = client.get("/", params=asked)
    full = client.get("/", params={**asked, "date_from": "", "date_to": "", "rule": "cumulative", "by": ""})
    assert full.status_code == 200
    back = re.compile(r"next=[^\"]*")  # the language links lead back to the address as it was sent
    assert back.sub("", full.text) == back.sub("", bare.text)
    assert client.get("/", params={"view": "sideways"}).status_code == 422
    assert two
