"""The hygiene check finds exactly the problems planted in a data set, and a clean one scores 100."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.builders import account_for, pipeline_for
from tests.conftest import DemoFiller
from voronka.analysis.audit import run_audit
from voronka.cli import app
from voronka.crm.accounts import find_stage, get_or_create_loss_reason, get_or_create_manager, get_or_create_source
from voronka.crm.deals import create_deal, lose_deal, move_deal, win_deal
from voronka.crm.new_deal import NewDeal
from voronka.demo import DemoOptions
from voronka.models import Deal, Pipeline

NOW = dt.datetime(2024, 6, 1, 12)
START = dt.datetime(2024, 4, 1, 10)
HOUR, DAY = dt.timedelta(hours=1), dt.timedelta(days=1)


class Book:
    """Writes deals through the services: clean unless told otherwise."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.pipeline: Pipeline = pipeline_for(session, ["A", "B", "C", "D", "E"])
        self.account = account_for(session)
        self.count = 0

    def deal(
        self,
        created: dt.datetime,
        *,
        manager: str | None = "Анна",
        source: str | None = "Сайт",
        phone: str | None = None,
        email: str | None = None,
        path: tuple[tuple[str, dt.timedelta], ...] = (("B", HOUR), ("C", DAY), ("D", 2 * DAY)),
        outcome: str = "won",
        amount: int | None = 1000_00,
    ) -> Deal:
        self.count += 1
        session, account = self.session, self.account
        deal = create_deal(
            session=session,
            pipeline=self.pipeline,
            new=NewDeal(
                created_at=created,
                currency="RUB",
                amount=amount,
                external_id=f"d{self.count}",
                manager=get_or_create_manager(session=session, account=account, name=manager) if manager else None,
                source=get_or_create_source(session=session, account=account, name=source) if source else None,
                phone=phone or f"+7 900 000-{self.count:02d}-{self.count:02d}",
                email=email,
            ),
        )
        for stage, after in path:
            move_deal(session=session, deal=deal, stage=find_stage(self.pipeline, stage), at=created + after)
        closing = created + 3 * DAY
        if outcome == "won":
            win_deal(session=session, deal=deal, at=closing)
        elif outcome == "lost":
            reason = get_or_create_loss_reason(session=session, account=account, name="Дорого")
            lose_deal(session=session, deal=deal, reason=reason, at=closing)
        return deal


def clean_book(session: Session) -> Book:
    book = Book(session)
    for i in range(6):
        book.deal(START + i * DAY)
    for i in range(4):
        book.deal(START + i * DAY, path=(("B", HOUR),), outcome="lost")
    return book


def pipeline_of(session: Session) -> Pipeline:
    from voronka.crm.accounts import find_pipeline

    return find_pipeline(session=session, account=account_for(session))


def test_clean_data_scores_100(session: Session) -> None:
    clean_book(session)
    session.commit()
    report = run_audit(session=session, pipeline=pipeline_of(session), now=NOW)
    assert report.score == 100
    assert all(f.count == 0 for f in report.findings)
    assert report.deals == 10


def test_each_planted_problem_is_found_exactly(session: Session) -> None:
    book = clean_book(session)
    for i in range(2):
        book.deal(START + i * DAY, manager=None)
    for i in range(3):
        book.deal(START + i * DAY, source=None)
    lost = book.deal(START, path=(("B", HOUR),), outcome="lost")
    lost.loss_reason_id = None  # as imported from a CRM that did not require one
    for _ in range(2):  # never contacted, still in the first stage ten days on: also stalled
        book.deal(NOW - 10 * DAY, path=(), outcome="open")
    book.deal(NOW - 30 * dt.timedelta(minutes=1), path=(), outcome="open")  # fresh lead: not a problem yet
    book.deal(START, amount=None)  # won without an amount
    book.deal(START, path=(("C", HOUR), ("D", DAY)))  # skipped B
    book.deal(START, path=(("B", -HOUR), ("C", DAY), ("D", 2 * DAY)))  # a move dated before creation
    book.deal(NOW - 30 * DAY, path=(("B", HOUR), ("C", DAY)), outcome="open")  # stalled in C
    book.deal(START + 40 * DAY, phone="+7 (911) 222-33-44")
    book.deal(START + 45 * DAY, phone="8 911 222 33 44")  # duplicate by phone, 5 days later
    book.deal(START + 40 * DAY, email="Client@Example.ru")
    book.deal(START + 41 * DAY, email=" client@example.ru")  # duplicate by e-mail
    book.deal(START + 90 * DAY, phone="89112223344")  # same phone, but 45 days after the last one
    session.commit()
    report = run_audit(session=session, pipeline=pipeline_of(session), now=NOW)
    found = {f.code: f.count for f in report.findings}
    assert found == {
        "no_manager": 2,
        "no_source": 3,
        "lost_without_reason": 1,
        "no_first_contact": 2,
        "won_without_amount": 1,
        "skipped_stages": 1,
        "out_of_order": 1,
        "stalled": 3,
        "likely_duplicates": 2,
    }
    examples = {f.code: f.examples for f in report.findings}
    assert examples["skipped_stages"] == ("d21",)
    assert examples["likely_duplicates"] == ("d27", "d25")  # in order of creation
    assert 0 < report.score < 100


def test_audit_command_speaks_both_languages(db_url: str, fill_demo: DemoFiller) -> None:
    runner = CliRunner()
    fill_demo(db_url, DemoOptions(leads=200, today=dt.date(2026, 11, 27)))
    ru = runner.invoke(app, ["--db", db_url, "--lang", "ru", "audit"])
    assert ru.exit_code == 0
    assert "Гигиена данных" in ru.stdout
    en = runner.invoke(app, ["--db", db_url, "--lang", "en", "audit", "--format", "json"])
    import json

    data = json.loads(en.stdout)
    assert {p["code"] for p in data["problems"]} >= {"no_manager", "stalled", "likely_duplicates"}
    assert all(p["why"] and p["fix"] for p in data["problems"])
