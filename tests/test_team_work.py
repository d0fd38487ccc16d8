"""Issue 33 in the library: leads and tasks reach people who can work them, nothing planned vanishes
from "My tasks", one client stays one deal. The pages' side is in tests/test_browser_team.py."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.builders import pipeline_for
from voronka.cli import app
from voronka.crm.accounts import get_or_create_manager
from voronka.crm.auth import add_user, user_by_email_or_name
from voronka.crm.deals import create_deal
from voronka.crm.leads import add_lead_form, capture_lead, set_form_assignment
from voronka.crm.new_deal import NewDeal
from voronka.crm.tasks import add_task, my_tasks, task_people
from voronka.errors import InvalidValue
from voronka.models import Account, AssignRule, Pipeline, Role, TaskKind, User

PASSWORD = "a-long-enough-pass"


def _account(session: Session, pipeline: Pipeline) -> Account:
    account = session.get(Account, pipeline.account_id)
    assert account is not None
    return account


def _person(session: Session, account: Account, name: str, role: Role = Role.MANAGER) -> User:
    email = f"{abs(hash(name)) % 10**8}@example.com"
    return add_user(session=session, account=account, name=name, email=email, password=PASSWORD, role=role)


def test_round_robin_gives_leads_only_to_managers_who_can_log_in(session: Session) -> None:
    pipeline = pipeline_for(session)
    account = _account(session, pipeline)
    departed = [get_or_create_manager(session=session, account=account, name=f"Ушедший {i}") for i in range(3)]
    first, second = _person(session, account, "Анна"), _person(session, account, "Борис")
    session.flush()
    form, _ = add_lead_form(session=session, account=account, pipeline=pipeline, name="Site")
    set_form_assignment(session=session, form=form, rule=AssignRule.ROUND_ROBIN)
    got = [capture_lead(session=session, form=form, payload={"name": f"L{i}"}).deal.manager_id for i in range(5)]
    assert got == [first.id, second.id, first.id, second.id, first.id]
    with pytest.raises(InvalidValue):  # a name from history cannot be the form's one person either
        set_form_assignment(session=session, form=form, rule=AssignRule.MANAGER, manager=departed[0])
    # The CLI finds the name-only manager by name (they have no e-mail) as well as by e-mail.
    assert user_by_email_or_name(session=session, account=account, who="Ушедший 1") is departed[1]
    assert user_by_email_or_name(session=session, account=account, who=str(first.email).upper()) is first


def test_user_deactivate_takes_a_name(db_url: str, tmp_path: object) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["--db", db_url, "init", "--pipeline", "Sales", "--stages", "A,B"]).exit_code == 0
    deals = f"{tmp_path}/deals.csv"
    with open(deals, "w", encoding="utf-8") as out:
        out.write("id,created_at,stage,manager\n1,2024-01-05,A,Пётр Старый\n")
    assert runner.invoke(app, ["--db", db_url, "import", "deals", deals]).exit_code == 0
    done = runner.invoke(app, ["--db", db_url, "--lang", "en", "user", "deactivate", "Пётр Старый"])
    assert (done.exit_code, "Пётр Старый is deactivated" in done.stdout) == (0, True), done.stdout
    missing = runner.invoke(app, ["--db", db_url, "--lang", "en", "user", "deactivate", "Никто"])
    assert missing.exit_code != 0
    assert "No user has the e-mail or name Никто" in missing.stderr


def test_a_task_goes_only_to_someone_who_may_open_the_deal(session: Session) -> None:
    pipeline = pipeline_for(session)
    account = _account(session, pipeline)
    mine, other = _person(session, account, "Свой"), _person(session, account, "Чужой")
    head = _person(session, account, "Глава", Role.HEAD)
    viewer = _person(session, account, "Зритель", Role.VIEWER)
    ghost = get_or_create_manager(session=session, account=account, name="Призрак")
    deal = create_deal(
        session=session, pipeline=pipeline, new=NewDeal(currency="RUB", title="+7 912 000-00-00", manager=mine)
    )
    when = dt.datetime(2030, 1, 1, 9)
    for wrong in (other, viewer, ghost):
        with pytest.raises(InvalidValue):
            add_task(session=session, deal=deal, kind=TaskKind.CALL, due_at=when, responsible=wrong, by=head)
    for right in (mine, head):
        add_task(session=session, deal=deal, kind=TaskKind.CALL, due_at=when, responsible=right, by=head)
    everyone = [mine, other, head, viewer, ghost]
    assert {u.name for u in task_people(users=everyone, deal=deal)} == {"Свой", "Глава"}


def test_my_tasks_on_a_sunday_shows_tomorrow_and_everything_later(session: Session) -> None:
    pipeline = pipeline_for(session)
    account = _account(session, pipeline)
    account.timezone = "Europe/Moscow"
    manager = _person(session, account, "Менеджер")
    due = {
        "today": dt.datetime(2026, 12, 6, 15),  # Sunday 18:00 in Moscow
        "tomorrow": dt.datetime(2026, 12, 7, 7),  # Monday's meeting
        "wednesday": dt.datetime(2026, 12, 9, 7),
        "next year": dt.datetime(2027, 1, 20, 7),
    }
    for title, when in due.items():
        deal = create_deal(
            session=session, pipeline=pipeline, new=NewDeal(currency="RUB", title=title, manager=manager)
        )
        add_task(session=session, deal=deal, kind=TaskKind.MEETING, due_at=when, responsible=manager)
    mine = my_tasks(session=session, user=manager, timezone="Europe/Moscow", now=dt.datetime(2026, 12, 6, 9))
    groups = (mine.overdue, mine.today, mine.tomorrow, mine.this_week, mine.later)
    assert [[r.deal_title for r in rows] for rows in groups] == [
        [],
        ["today"],
        ["tomorrow"],
        [],
        ["wednesday", "next year"],
    ]
    wednesday = my_tasks(session=session, user=manager, timezone="Europe/Moscow", now=dt.datetime(2026, 12, 2, 9))
    assert [r.deal_title for r in wednesday.this_week] == ["today"]  # Friday to Sunday
    assert [r.deal_title for r in wednesday.later] == ["tomorrow", "wednesday", "next year"]


def test_a_repeat_submission_joins_the_clients_open_deal_and_alerts_its_manager(session: Session) -> None:
    from voronka.alerts.events import repeat_alerts
    from voronka.alerts.service import deal_link
    from voronka.crm.deals import win_deal
    from voronka.crm.history import timeline
    from voronka.crm.search import phone_in_work_elsewhere
    from voronka.models import AlertSettings
    from voronka.timeutil import utcnow

    pipeline = pipeline_for(session)
    account = _account(session, pipeline)
    account.timezone = "Europe/Moscow"
    igor, anna = _person(session, account, "Игорь Петров"), _person(session, account, "Анна")
    form, _ = add_lead_form(session=session, account=account, pipeline=pipeline, name="Сайт")
    set_form_assignment(session=session, form=form, rule=AssignRule.ROUND_ROBIN)
    first = capture_lead(session=session, form=form, payload={"name": "Олег", "phone": "+7 912 345 67 89"})
    assert (first.created, first.deal.manager_id) == (True, igor.id)
    again = capture_lead(session=session, form=form, payload={"name": "Олег", "phone": "8 (912) 345-67-89"})
    by_mail = capture_lead(session=session, form=form, payload={"email": "x@y.ru"})
    assert (again.created, again.repeated, again.deal.id) == (False, True, first.deal.id)
    assert by_mail.created
    assert by_mail.deal.manager_id == anna.id
    mail_again = capture_lead(session=session, form=form, payload={"email": "X@Y.RU", "name": "Икс"})
    assert (mail_again.repeated, mail_again.deal.id) == (True, by_mail.deal.id)
    repeated = [h for h in timeline(session=session, deal=first.deal) if h.kind == "lead_repeated"]
    assert [h.data for h in repeated] == [{"form": "Сайт", "name": "Олег", "phone": "8 (912) 345-67-89"}]
    # Anna creating a deal for the number learns who works it, nothing more.
    assert [
        e.manager for e in phone_in_work_elsewhere(session=session, user=anna, account=account, phone="89123456789")
    ] == ["Игорь Петров"]
    assert phone_in_work_elsewhere(session=session, user=igor, account=account, phone="89123456789") == []
    now = utcnow() + dt.timedelta(seconds=1)
    rules = AlertSettings(account_id=account.id, started_at=now - dt.timedelta(hours=1))
    users = {u.id: u for u in (igor, anna)}
    alerts = repeat_alerts(session=session, account=account, rules=rules, now=now, link=deal_link(None), users=users)
    assert sorted(a.recipients for a in alerts) == sorted([(igor.id,), (anna.id,)])
    win_deal(session=session, deal=first.deal, at=utcnow())
    after = capture_lead(session=session, form=form, payload={"name": "Олег", "phone": "+79123456789"})
    assert after.created
    assert after.deal.id != first.deal.id


def test_search_folds_yo_and_a_hash_number_is_a_deal(session: Session) -> None:
    from sqlalchemy import update

    from voronka.crm.search import DealFilter, find_deals
    from voronka.models import Deal

    pipeline = pipeline_for(session)
    account = _account(session, pipeline)
    owner = _person(session, account, "Владелец", Role.OWNER)
    pyotr = create_deal(session=session, pipeline=pipeline, new=NewDeal(currency="RUB", title="Пётр Иванов"))
    old = create_deal(session=session, pipeline=pipeline, new=NewDeal(currency="RUB", title="Семён"))
    # A deal written before the folding kept its «ё» in the stored search text.
    session.execute(update(Deal).where(Deal.id == old.id).values(search_text="семён"))
    tail = create_deal(
        session=session,
        pipeline=pipeline,
        new=NewDeal(currency="RUB", title="Другой", phone=f"+7 912 000 {pyotr.id:04d}"),
    )

    def found(text: str) -> list[int]:
        page = find_deals(session=session, user=owner, account=account, query=DealFilter(text=text))
        return sorted(row.id for row in page.rows)

    assert found("петр") == found("ПЁТР") == [pyotr.id]
    assert found("семен") == [old.id]
    assert found(f"#{pyotr.id}") == [pyotr.id]  # not the phone ending in the same digits
    assert tail.id in found(f"{pyotr.id:04d}")


def test_a_shown_once_secret_opens_only_for_its_user_and_only_for_a_while(monkeypatch: pytest.MonkeyPatch) -> None:
    import itsdangerous.timed

    from voronka.web.security import SHOWN_ONCE_SECONDS, seal_shown_once, unseal_shown_once

    sealed = seal_shown_once("vk_secret-Ёж", key="k", user_id=7)
    assert "secret" not in sealed
    assert unseal_shown_once(sealed, key="k", user_id=7) == "vk_secret-Ёж"
    assert unseal_shown_once(sealed, key="k", user_id=8) is None
    assert unseal_shown_once(sealed, key="other", user_id=7) is None
    assert unseal_shown_once(sealed[:-3] + "AAA", key="k", user_id=7) is None
    later = itsdangerous.timed.time.time() + SHOWN_ONCE_SECONDS + 5
    monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: later)
    assert unseal_shown_once(sealed, key="k", user_id=7) is None


def test_deleting_a_stage_keeps_the_history_as_it_happened_and_records_the_deletion(session: Session) -> None:
    from voronka.crm.cards import as_it_happened
    from voronka.crm.deals import move_deal
    from voronka.crm.history import timeline
    from voronka.crm.pipelines import remove_stage

    pipeline = pipeline_for(session)
    account = _account(session, pipeline)
    owner = _person(session, account, "Владелец", Role.OWNER)
    stages = list(pipeline.stages)
    deal = create_deal(session=session, pipeline=pipeline, new=NewDeal(currency="RUB", title="Окна"))
    move_deal(session=session, deal=deal, stage=stages[1], at=deal.created_at + dt.timedelta(hours=1))
    move_deal(session=session, deal=deal, stage=stages[2], at=deal.created_at + dt.timedelta(hours=2))
    remove_stage(session=session, stage=stages[1], into=stages[0], by=owner)
    session.flush()
    shown = as_it_happened(timeline(session=session, deal=deal))
    moves = [(h.data.get("from"), h.data["stage"]) for h in shown if h.kind == "moved"]
    assert moves == [(stages[0].name, stages[1].name), (stages[1].name, stages[2].name)]
    removal = [h for h in shown if h.kind == "stage_removed"]
    recorded = [(h.actor_id, h.data["stage"], h.data["into"]) for h in removal]
    assert recorded == [(owner.id, stages[1].name, stages[0].name)]
    assert deal.stage_id == stages[2].id


def test_a_running_period_is_compared_with_the_same_days_before() -> None:
    from voronka.timeutil import comparable_ranges

    d = dt.date
    assert comparable_ranges(d(2026, 12, 1), d(2027, 1, 1), d(2026, 12, 6)) == (
        d(2026, 12, 1), d(2026, 12, 7), d(2026, 11, 1), d(2026, 11, 7),
    )  # fmt: skip
    assert comparable_ranges(d(2026, 11, 1), d(2026, 12, 1), d(2026, 12, 6)) == (
        d(2026, 11, 1),
        d(2026, 12, 1),
        d(2026, 10, 1),
        d(2026, 11, 1),
    )  # fmt: skip  -- a finished month: all of it against all of October
    assert comparable_ranges(d(2026, 3, 1), d(2026, 4, 1), d(2026, 3, 30)) == (
        d(2026, 3, 1), d(2026, 3, 31), d(2026, 2, 1), d(2026, 2, 28),
    )  # fmt: skip
    assert comparable_ranges(d(2026, 10, 1), d(2027, 1, 1), d(2026, 12, 6)) == (
        d(2026, 10, 1),
        d(2026, 12, 7),
        d(2026, 7, 1),
        d(2026, 9, 7),
    )  # fmt: skip  -- a quarter so far against the same part of the last one
    assert comparable_ranges(d(2026, 12, 3), d(2026, 12, 10), d(2026, 12, 6)) == (
        d(2026, 12, 3), d(2026, 12, 7), d(2026, 11, 26), d(2026, 11, 30),
    )  # fmt: skip


def test_new_leads_are_the_untouched_ones_of_the_last_week_newest_first(session: Session) -> None:
    from voronka.crm.deals import log_call, move_deal
    from voronka.crm.tasks import new_lead_count, new_leads
    from voronka.models import CallOutcome

    pipeline = pipeline_for(session)
    account = _account(session, pipeline)
    manager, other = _person(session, account, "Менеджер"), _person(session, account, "Другой")
    now = dt.datetime(2026, 12, 6, 9)

    def lead(title: str, days_ago: float, who: User = manager) -> int:
        made = create_deal(
            session=session,
            pipeline=pipeline,
            new=NewDeal(currency="RUB", title=title, manager=who, created_at=now - dt.timedelta(days=days_ago)),
        )
        return made.id

    fresh, older = lead("свежая", 0.1), lead("вчерашняя", 1)
    lead("старая", 8)
    lead("чужая", 0.2, other)
    called = create_deal(
        session=session,
        pipeline=pipeline,
        new=NewDeal(currency="RUB", title="с звонком", manager=manager, created_at=now - dt.timedelta(hours=5)),
    )
    log_call(session=session, deal=called, outcome=CallOutcome.ANSWERED, at=now - dt.timedelta(hours=4))
    moved = create_deal(
        session=session,
        pipeline=pipeline,
        new=NewDeal(currency="RUB", title="дальше", manager=manager, created_at=now - dt.timedelta(hours=5)),
    )
    move_deal(session=session, deal=moved, stage=pipeline.stages[1], at=now - dt.timedelta(hours=4))
    rows, total = new_leads(session=session, user=manager, now=now)
    assert ([r.id for r in rows], total) == ([fresh, older], 2)
    assert new_lead_count(session=session, user=manager, now=now) == 2
