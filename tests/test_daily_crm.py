"""The daily CRM in the library: edits with history, undo, tasks and their lists, search by phone,
lead assignment and the kanban's sums — on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.builders import Journey, add_journey, at, funnel, pipeline_for, reached
from voronka.crm.accounts import get_or_create_loss_reason, get_or_create_manager
from voronka.crm.auth import Forbidden, add_user
from voronka.crm.board import BoardFilter, build_board
from voronka.crm.deals import create_deal, lose_deal, move_deal, update_deal, win_deal
from voronka.crm.history import UNDO_SECONDS, NothingToUndo, timeline, undo_last
from voronka.crm.leads import add_lead_form, capture_lead, set_form_assignment
from voronka.crm.new_deal import NewDeal
from voronka.crm.phones import national_digits, normalize_phone, phone_key, region_of
from voronka.crm.search import DealFilter, find_deals, open_deals_with_phone
from voronka.crm.tasks import add_task, complete_task, deals_without_task, my_tasks, next_tasks, team_overdue
from voronka.errors import InvalidValue
from voronka.models import (
    Account,
    AssignRule,
    CallAttempt,
    Deal,
    DealEvent,
    Pipeline,
    Role,
    StageEntry,
    TaskKind,
    User,
)
from voronka.timeutil import utcnow

PASSWORD = "a-long-enough-pass"


def _account(session: Session, pipeline: Pipeline) -> Account:
    account = session.get(Account, pipeline.account_id)
    assert account is not None
    return account


def _person(session: Session, account: Account, name: str, role: Role) -> User:
    email = f"{abs(hash(name)) % 10**8}@example.com"
    return add_user(session=session, account=account, name=name, email=email, password=PASSWORD, role=role)


def test_phones_are_read_by_the_country_of_the_accounts_zone() -> None:
    assert region_of("Europe/Moscow") == "RU"
    assert region_of("UTC") is None
    assert normalize_phone("8 (912) 345-67-89", "RU") == "+7 912 345-67-89"
    assert normalize_phone("+49 30 901820", None) == "+49 30 901820"
    assert normalize_phone("call me after 6", "RU") == "call me after 6"  # kept as typed, not thrown away
    assert national_digits("+7 912 345 67 89", "RU") == "9123456789"
    assert national_digits("4567", "RU") == "4567"
    assert national_digits("Иван", "RU") is None
    with pytest.raises(InvalidValue):
        normalize_phone("9" * 60, "RU")


def test_edits_are_checked_and_written_to_the_history(session: Session) -> None:
    pipeline = pipeline_for(session)
    account = _account(session, pipeline)
    account.timezone = "Europe/Moscow"
    head = _person(session, account, "Head", Role.HEAD)
    anna = get_or_create_manager(session=session, account=account, name="Анна")
    deal = create_deal(
        session=session, pipeline=pipeline, new=NewDeal(currency="RUB", title="Окна", phone="89123456789")
    )
    assert deal.phone == "+7 912 345-67-89"
    update_deal(
        session=session,
        deal=deal,
        changes={"amount": 150_000_00, "manager": anna, "title": "Окна, 3 шт.", "custom": {"Город": "Тверь"}},
        by=head,
    )
    changed = {
        i.data["field"]: (i.data["old"], i.data["new"])
        for i in timeline(session=session, deal=deal)
        if i.kind == "changed"
    }
    assert changed == {
        "amount": (None, "15000000"),
        "manager": (None, "Анна"),
        "title": ("Окна", "Окна, 3 шт."),
        "custom": (None, "Город: Тверь"),
    }
    with pytest.raises(InvalidValue):
        update_deal(session=session, deal=deal, changes={"status": "won"}, by=head)  # only by winning
    with pytest.raises(InvalidValue):
        update_deal(session=session, deal=deal, changes={"currency": "XYZ"}, by=head)
    with pytest.raises(InvalidValue):
        update_deal(session=session, deal=deal, changes={"email": "no at sign"}, by=head)
    update_deal(session=session, deal=deal, changes={"title": "Окна, 3 шт."}, by=head)  # no change, no line
    assert sum(1 for i in timeline(session=session, deal=deal) if i.kind == "changed") == 4


def test_loss_and_reopen_are_in_the_history_with_who(session: Session) -> None:
    pipeline = pipeline_for(session)
    account = _account(session, pipeline)
    head = _person(session, account, "Head", Role.HEAD)
    deal = add_journey(session, pipeline, Journey("2024-03-01 10:00", moves=[("Qualified", "2024-03-01 11:00")]))
    lose_deal(
        session=session,
        deal=deal,
        reason=get_or_create_loss_reason(session=session, account=account, name="Дорого"),
        by=head,
    )
    from voronka.crm.deals import reopen_deal

    reopen_deal(session=session, deal=deal, by=head)
    kinds = [(i.kind, i.actor_id) for i in timeline(session=session, deal=deal)]
    assert kinds == [("created", None), ("moved", None), ("lost", head.id), ("reopened", head.id)]
    lost = next(i for i in timeline(session=session, deal=deal) if i.kind == "lost")
    assert lost.data == {"reason": "Дорого"}


def test_undo_takes_a_move_back_as_if_it_never_happened(session: Session) -> None:
    pipeline = pipeline_for(session)
    account = _account(session, pipeline)
    head = _person(session, account, "Head", Role.HEAD)
    other = _person(session, account, "Other", Role.HEAD)
    deal = create_deal(
        session=session, pipeline=pipeline, new=NewDeal(currency="RUB", created_at=at("2024-03-01 10:00"))
    )
    before = reached(funnel(session))
    move_deal(session=session, deal=deal, stage=pipeline.stages[2], by=head)
    assert reached(funnel(session)) != before
    with pytest.raises(NothingToUndo):
        undo_last(session=session, deal=deal, by=other)  # not theirs to undo
    undo_last(session=session, deal=deal, by=head)
    assert (deal.stage_id, deal.furthest_position, deal.first_contact_at) == (pipeline.stages[0].id, 1, None)
    assert reached(funnel(session)) == before
    assert session.scalar(select(func.count()).select_from(StageEntry).where(StageEntry.deal_id == deal.id)) == 1


def test_undo_of_a_win_and_of_a_loss_and_its_time_limit(session: Session) -> None:
    pipeline = pipeline_for(session)
    account = _account(session, pipeline)
    head = _person(session, account, "Head", Role.HEAD)
    deal = create_deal(
        session=session, pipeline=pipeline, new=NewDeal(currency="RUB", created_at=at("2024-03-01 10:00"))
    )
    move_deal(session=session, deal=deal, stage=pipeline.stages[1], by=head)
    win_deal(session=session, deal=deal, by=head)
    undo_last(session=session, deal=deal, by=head)
    assert (deal.status, deal.stage_id, deal.closed_at) == ("open", pipeline.stages[1].id, None)
    lose_deal(
        session=session,
        deal=deal,
        reason=get_or_create_loss_reason(session=session, account=account, name="x"),
        by=head,
    )
    later = utcnow() + dt.timedelta(seconds=UNDO_SECONDS + 1)
    with pytest.raises(NothingToUndo):
        undo_last(session=session, deal=deal, by=head, now=later)
    undo_last(session=session, deal=deal, by=head)
    assert (deal.status, deal.loss_reason_id) == ("open", None)
    assert session.scalar(select(func.count()).select_from(DealEvent).where(DealEvent.kind == "lost")) == 0


def test_tasks_lists_by_the_accounts_calendar(session: Session) -> None:
    pipeline = pipeline_for(session)
    account = _account(session, pipeline)
    account.timezone = "Europe/Moscow"
    manager = _person(session, account, "Manager", Role.MANAGER)
    head = _person(session, account, "Head", Role.HEAD)
    deals = [
        create_deal(session=session, pipeline=pipeline, new=NewDeal(currency="RUB", title=f"D{i}", manager=manager))
        for i in range(4)
    ]
    # Wednesday 2026-10-14 12:00 in Moscow (09:00 UTC).
    now = dt.datetime(2026, 10, 14, 9, 0)
    due = {
        "overdue": dt.datetime(2026, 10, 14, 8, 0),
        "today": dt.datetime(2026, 10, 14, 20, 30),  # 23:30 in Moscow: still today there
        "tomorrow": dt.datetime(2026, 10, 14, 21, 30),  # 00:30 on Thursday in Moscow
    }
    for deal, when in zip(deals, due.values(), strict=False):
        add_task(session=session, deal=deal, kind=TaskKind.CALL, due_at=when, responsible=manager, by=head)
    add_task(
        session=session, deal=deals[3], kind=TaskKind.OTHER, due_at=dt.datetime(2026, 10, 19, 9), responsible=manager
    )
    mine = my_tasks(session=session, user=manager, timezone=account.timezone, now=now)
    groups = (mine.overdue, mine.today, mine.tomorrow, mine.this_week, mine.later)
    assert [[r.deal_title for r in rows] for rows in groups] == [["D0"], ["D1"], ["D2"], [], ["D3"]]
    assert [r.deal_title for r in team_overdue(session=session, user=head, now=now)] == ["D0"]
    with pytest.raises(Forbidden):
        team_overdue(session=session, user=manager, now=now)
    assert next_tasks(session=session, deal_ids=[d.id for d in deals])[deals[3].id].kind == "other"
    without, total = deals_without_task(session=session, user=head)
    assert (without, total) == ([], 0)


def test_completing_a_call_task_logs_the_call(session: Session) -> None:
    pipeline = pipeline_for(session)
    account = _account(session, pipeline)
    manager = _person(session, account, "Manager", Role.MANAGER)
    deal = create_deal(
        session=session,
        pipeline=pipeline,
        new=NewDeal(currency="RUB", manager=manager, created_at=at("2026-10-14 09:00")),
    )
    task = add_task(session=session, deal=deal, kind=TaskKind.CALL, due_at=at("2026-10-14 09:05"), responsible=manager)
    assert deals_without_task(session=session, user=manager)[1] == 0
    from voronka.models import CallOutcome

    complete_task(
        session=session, task=task, deal=deal, by=manager, call_outcome=CallOutcome.ANSWERED, at=at("2026-10-14 09:03")
    )
    call = session.scalars(select(CallAttempt).where(CallAttempt.deal_id == deal.id)).one()
    assert (call.outcome, call.manager_id, deal.contact_minutes) == ("answered", manager.id, 3)
    assert [d.id for d in deals_without_task(session=session, user=manager)[0]] == [deal.id]
    other = add_task(
        session=session, deal=deal, kind=TaskKind.MEETING, due_at=at("2026-10-15 09:00"), responsible=manager
    )
    with pytest.raises(InvalidValue):
        complete_task(session=session, task=other, deal=deal, by=manager, call_outcome=CallOutcome.ANSWERED)


def test_search_by_name_phone_email_and_id_within_the_role(session: Session) -> None:
    pipeline = pipeline_for(session)
    account = _account(session, pipeline)
    account.timezone = "Europe/Moscow"
    owner = _person(session, account, "Owner", Role.OWNER)
    manager = _person(session, account, "Manager", Role.MANAGER)
    mine = create_deal(
        session=session,
        pipeline=pipeline,
        new=NewDeal(currency="RUB", title="Иван Петров", phone="+7 (912) 345-67-89", manager=manager),
    )
    theirs = create_deal(
        session=session, pipeline=pipeline, new=NewDeal(currency="RUB", title="ООО Ромашка", email="Info@Romashka.ru")
    )
    # A phone imported as typed, not normalised (an import keys it the same way).
    session.add(
        Deal(
            account_id=account.id, pipeline_id=pipeline.id, title="Импорт", phone="8 912 000-11-22", currency="RUB",
            stage_id=pipeline.stages[0].id, created_at=utcnow(), updated_at=utcnow(),
            phone_key=phone_key("8 912 000-11-22"),
        )
    )  # fmt: skip
    session.flush()

    def found(user: User, text: str) -> list[str]:
        page = find_deals(session=session, user=user, account=account, query=DealFilter(text=text))
        return sorted(r.title for r in page.rows)

    assert found(owner, "иван") == ["Иван Петров"]  # case folded in Cyrillic too
    assert found(owner, "8 912 345 67 89") == ["Иван Петров"]
    assert found(owner, "+79120001122") == ["Импорт"]
    assert found(owner, "romashka.ru") == ["ООО Ромашка"]
    assert found(owner, f"#{theirs.id}") == ["ООО Ромашка"]
    assert found(owner, "100%") == []  # a LIKE wildcard is a character here
    assert found(manager, "Ромашка") == []  # not theirs
    assert found(manager, "6789") == ["Иван Петров"]
    dupes = open_deals_with_phone(session=session, user=owner, account=account, phone="89123456789")
    assert [d.id for d in dupes] == [mine.id]


def test_list_pages_and_filters(session: Session) -> None:
    pipeline = pipeline_for(session)
    account = _account(session, pipeline)
    owner = _person(session, account, "Owner", Role.OWNER)
    for i in range(7):
        create_deal(
            session=session,
            pipeline=pipeline,
            new=NewDeal(currency="RUB", title=f"D{i}", created_at=at(f"2024-03-0{i + 1} 10:00")),
        )
    page = find_deals(
        session=session, user=owner, account=account, query=DealFilter(unassigned=True), page=2, per_page=3
    )
    assert (page.total, page.pages, [r.title for r in page.rows]) == (7, 3, ["D3", "D2", "D1"])


def test_website_leads_are_assigned_by_the_forms_rule(session: Session) -> None:
    pipeline = pipeline_for(session)
    account = _account(session, pipeline)
    first = _person(session, account, "Первый", Role.MANAGER)
    second = _person(session, account, "Второй", Role.MANAGER)
    gone = _person(session, account, "Ушёл", Role.MANAGER)
    gone.active = False
    form, _ = add_lead_form(session=session, account=account, pipeline=pipeline, name="Site")
    assert capture_lead(session=session, form=form, payload={"name": "A"}).deal.manager_id is None
    set_form_assignment(session=session, form=form, rule=AssignRule.ROUND_ROBIN)
    got = [capture_lead(session=session, form=form, payload={"name": n}).deal.manager_id for n in "BCD"]
    assert got == [first.id, second.id, first.id]  # in turn, never the deactivated one
    set_form_assignment(session=session, form=form, rule=AssignRule.MANAGER, manager=second)
    assert capture_lead(session=session, form=form, payload={"name": "E"}).deal.manager_id == second.id
    with pytest.raises(InvalidValue):
        set_form_assignment(session=session, form=form, rule=AssignRule.MANAGER, manager=gone)
    account.timezone = "Europe/Moscow"  # local numbers are read as Russian ones
    lead = capture_lead(session=session, form=form, payload={"name": "F", "phone": "8 912 111 22 33"}).deal
    assert lead.phone == "+7 912 111-22-33"


def test_the_board_counts_and_sums_every_deal_of_a_column(session: Session) -> None:
    pipeline = pipeline_for(session)
    account = _account(session, pipeline)
    owner = _person(session, account, "Owner", Role.OWNER)
    for i in range(5):
        create_deal(
            session=session, pipeline=pipeline, new=NewDeal(currency="RUB", title=f"R{i}", amount=100_00 * (i + 1))
        )
    create_deal(session=session, pipeline=pipeline, new=NewDeal(currency="USD", title="U", amount=50_00))
    won = create_deal(session=session, pipeline=pipeline, new=NewDeal(currency="RUB", title="W", amount=7_00))
    win_deal(session=session, deal=won, at=utcnow())
    board = build_board(
        session=session,
        account=account,
        user=owner,
        pipeline=pipeline,
        chosen=BoardFilter(),
        closed_from=utcnow() - dt.timedelta(days=1),
        closed_to=utcnow() + dt.timedelta(days=1),
        per_stage=2,
    )
    first = board.columns[0]
    assert (first.total, len(first.cards), first.sums) == (6, 2, {"RUB": 1500_00, "USD": 50_00})
    assert (board.won.count, board.won.sums, board.has_more) == (1, {"RUB": 7_00}, True)
    searched = build_board(
        session=session,
        account=account,
        user=owner,
        pipeline=pipeline,
        chosen=BoardFilter(text="R3"),
        closed_from=utcnow(),
        closed_to=utcnow(),
    )
    assert [c.title for c in searched.columns[0].cards] == ["R3"]


def test_the_owners_period_figures_against_the_month_before(session: Session) -> None:
    from voronka.analysis.summary import period_summary

    pipeline = pipeline_for(session)
    account = _account(session, pipeline)
    lost = get_or_create_loss_reason(session=session, account=account, name="Дорого")
    # October: 4 leads, 1 won for 100 000; November: 5 leads, 2 won for 150 000 + 250 000, 1 lost at stage 2.
    for day in ("01", "02", "03", "04"):
        create_deal(
            session=session, pipeline=pipeline, new=NewDeal(currency="RUB", created_at=at(f"2026-10-{day} 10:00"))
        )
    won_october = session.scalars(select(Deal).where(Deal.created_at == at("2026-10-01 10:00"))).one()
    win_deal(session=session, deal=won_october, at=at("2026-10-20 10:00"), amount=100_000_00)
    november = [
        create_deal(
            session=session, pipeline=pipeline, new=NewDeal(currency="RUB", created_at=at(f"2026-11-0{d} 10:00"))
        )
        for d in range(1, 6)
    ]
    win_deal(session=session, deal=november[0], at=at("2026-11-10 10:00"), amount=150_000_00)
    win_deal(session=session, deal=november[1], at=at("2026-11-11 10:00"), amount=250_000_00)
    move_deal(session=session, deal=november[2], stage=pipeline.stages[1], at=at("2026-11-12 10:00"))
    lose_deal(session=session, deal=november[2], reason=lost, at=at("2026-11-13 10:00"))
    summary = period_summary(
        session=session, account=account, pipeline=None, date_from=dt.date(2026, 11, 1), date_to=dt.date(2026, 12, 1)
    )
    assert (summary.previous_from, summary.previous_to) == (dt.date(2026, 10, 1), dt.date(2026, 11, 1))
    assert (summary.leads.value, summary.leads.previous) == (5, 4)
    assert (summary.sales.value, summary.sales.previous) == (2, 1)
    assert (summary.revenue.value, summary.revenue.previous) == (400_000_00, 100_000_00)
    assert summary.revenue.change == pytest.approx(3.0)
    assert (summary.conversion.value, summary.conversion.previous) == (0.4, 0.25)
    assert (summary.average_check.value, summary.average_check.previous) == (200_000_00, 100_000_00)
    assert [(s.position, s.lost, s.money) for s in summary.losses] == [(2, 1, 200_000_00)]


def test_a_new_manager_or_source_moves_the_deals_figures_with_it(session: Session) -> None:
    """The period view counts stage reaches, which carry whose deal it is: an edit must move them."""
    from voronka.crm.accounts import get_or_create_source

    pipeline = pipeline_for(session)
    account = _account(session, pipeline)
    anna = get_or_create_manager(session=session, account=account, name="Анна")
    boris = get_or_create_manager(session=session, account=account, name="Борис")
    deal = create_deal(
        session=session, pipeline=pipeline, new=NewDeal(currency="RUB", manager=anna, created_at=at("2024-03-01 10:00"))
    )
    move_deal(session=session, deal=deal, stage=pipeline.stages[2], at=at("2024-03-02 10:00"))
    update_deal(
        session=session,
        deal=deal,
        changes={"manager": boris, "source": get_or_create_source(session=session, account=account, name="Сайт")},
    )

    def by(dimension: str) -> dict[str, list[int]]:
        report = funnel(
            session, view="period", by=dimension, date_from=dt.date(2024, 3, 1), date_to=dt.date(2024, 4, 1)
        )
        assert report.groups is not None
        return {str(g.value): [s.reached for s in g.figures.stages] for g in report.groups}

    assert by("manager") == {"Борис": [1, 1, 1, 0, 0]}
    assert by("source") == {"Сайт": [1, 1, 1, 0, 0]}


def test_a_stage_removed_hands_its_deals_and_history_to_another(session: Session) -> None:
    from voronka.crm.pipelines import remove_stage

    pipeline = pipeline_for(session)
    stages = list(pipeline.stages)  # Lead, Qualified, Estimate, Contract, Won
    at_estimate = add_journey(session, pipeline, Journey("2024-03-01 10:00", moves=[("Estimate", "2024-03-02 10:00")]))
    passed = add_journey(
        session,
        pipeline,
        Journey("2024-03-01 11:00", moves=[("Estimate", "2024-03-02 11:00"), ("Contract", "2024-03-03 11:00")]),
    )
    add_journey(session, pipeline, Journey("2024-03-01 12:00", moves=[("Qualified", "2024-03-02 12:00")]))
    assert reached(funnel(session)) == [3, 3, 2, 1, 0]
    remove_stage(session=session, stage=stages[2], into=stages[1])  # Estimate folds into Qualified
    session.expire_all()
    assert [s.name for s in pipeline.stages] == ["Lead", "Qualified", "Contract", "Won"]
    assert reached(funnel(session)) == [3, 3, 1, 0]
    assert session.get(Deal, at_estimate.id).stage_id == stages[1].id  # type: ignore[union-attr]
    assert session.get(Deal, passed.id).furthest_position == 3  # type: ignore[union-attr]
    with pytest.raises(InvalidValue):
        remove_stage(session=session, stage=stages[1], into=stages[1])


def test_sources_and_reasons_renamed_or_merged(session: Session) -> None:
    from voronka.analysis.stats.inputs import set_spend
    from voronka.crm.accounts import get_or_create_source
    from voronka.crm.catalogues import rename_reason, rename_source
    from voronka.models import AdSpend, LossReason, Source

    pipeline = pipeline_for(session)
    account = _account(session, pipeline)
    vk = get_or_create_source(session=session, account=account, name="vk")
    create_deal(session=session, pipeline=pipeline, new=NewDeal(currency="RUB", source=vk))
    assert rename_source(session=session, source=vk, name="ВКонтакте").name == "ВКонтакте"
    old = get_or_create_source(session=session, account=account, name="VK ads")
    deal = create_deal(session=session, pipeline=pipeline, new=NewDeal(currency="RUB", source=old))
    march = dt.date(2024, 3, 1)
    set_spend(session=session, account=account, source="ВКонтакте", start=march, kind="month", amount=100_00)
    set_spend(session=session, account=account, source="VK ads", start=march, kind="month", amount=50_00)
    merged = rename_source(session=session, source=old, name="ВКонтакте")
    assert (merged.id, deal.source_id) == (vk.id, vk.id)
    assert session.scalars(select(AdSpend.amount).where(AdSpend.source_id == vk.id)).all() == [150_00]
    assert session.scalar(select(func.count()).select_from(Source).where(Source.name == "VK ads")) == 0
    expensive = get_or_create_loss_reason(session=session, account=account, name="дорого")
    price = get_or_create_loss_reason(session=session, account=account, name="Цена")
    lost = create_deal(session=session, pipeline=pipeline, new=NewDeal(currency="RUB"))
    lose_deal(session=session, deal=lost, reason=expensive)
    rename_reason(session=session, reason=expensive, name="Цена")
    session.expire_all()
    assert session.get(Deal, lost.id).loss_reason_id == price.id  # type: ignore[union-attr]
    assert session.scalar(select(func.count()).select_from(LossReason)) == 1


def test_a_manager_cannot_hand_their_deal_to_someone_else(session: Session) -> None:
    pipeline = pipeline_for(session)
    account = _account(session, pipeline)
    manager = _person(session, account, "Manager", Role.MANAGER)
    other = _person(session, account, "Other", Role.MANAGER)
    head = _person(session, account, "Head", Role.HEAD)
    deal = create_deal(session=session, pipeline=pipeline, new=NewDeal(currency="RUB", manager=manager))
    update_deal(session=session, deal=deal, changes={"title": "Своё", "manager": manager}, by=manager)
    with pytest.raises(InvalidValue):
        update_deal(session=session, deal=deal, changes={"manager": other}, by=manager)
    update_deal(session=session, deal=deal, changes={"manager": other}, by=head)
    assert deal.manager_id == other.id
