"""Two writes of one deal at once take turns (docs/funnel.md, "Two writes of one deal at once").

The race is made certain, not left to the machine's speed: each of the two requests is held at its
first read of the deal until the other has read it too — the moment both have decided on the same
state. Without the lock (``crm.derived.lock_deal``) both then write from that state and the deal is
counted twice; with it the second re-reads the deal once the first has committed.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session

from tests.builders import STAGES, account_for, funnel, pipeline_for
from tests.oracle import cohort, plain_deals
from tests.web_helpers import log_in, make_client, make_user
from voronka import deal_days
from voronka.crm.accounts import get_or_create_loss_reason, get_or_create_source
from voronka.crm.deals import create_deal
from voronka.crm.new_deal import NewDeal
from voronka.crm.pipelines import recount
from voronka.db import session_factory
from voronka.models import Deal, Pipeline, Role, Source, StageEntry


@contextmanager
def first_reads_meet(engine: Engine, pattern: str, parties: int = 2) -> Iterator[None]:
    """Hold the first ``parties`` statements matching ``pattern`` until all of them have run up to
    it (a barrier, with a generous timeout so that a broken lock fails the test instead of hanging it)."""
    barrier = threading.Barrier(parties, timeout=60)
    matcher = re.compile(pattern, re.S)
    held = [0]
    guard = threading.Lock()

    def hold(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not matcher.search(statement):
            return
        with guard:
            if held[0] >= parties:
                return
            held[0] += 1
        barrier.wait()

    event.listen(engine, "before_cursor_execute", hold)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", hold)


DEAL_READ = r"FROM deals\s+WHERE deals\.id ="


def at_once(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads at the same time; their results (or exceptions) in order."""
    results: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        try:
            results[index] = call()
        except Exception as exc:  # the test inspects it
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def _check_in_step(session: Session) -> None:
    """Every kept figure equals a plain count: the per-day cells, the cohort funnel, and a recount
    that finds nothing to change."""
    session.expire_all()
    for pipeline in session.scalars(select(Pipeline)):
        connection = session.connection()
        assert deal_days.stored_cells(connection, pipeline.id) == deal_days.compute_cells(connection, pipeline.id)
        done = recount(session=session, pipeline=pipeline)
        assert (done.deals, done.stage_reaches, done.day_cells) == (0, 0, 0)
    session.rollback()
    deals = list(plain_deals(session).values())
    report = funnel(session)
    plain = cohort(deals, len(STAGES))
    assert report.figures.deals == plain["deals"]
    assert report.figures.won == plain["won"]
    assert report.figures.lost == plain["lost"]
    assert [s.reached for s in report.figures.stages] == plain["reached"]
    for deal in deals:
        assert (deal.status == "won") == (deal.position == len(STAGES)), deal  # won ⇔ in the won stage


def _web(session: Session, engine: Engine, tmp_path: Path, deals: int) -> tuple[Any, str, list[int], Pipeline]:
    pipeline = pipeline_for(session)
    account = account_for(session)
    get_or_create_loss_reason(session=session, account=account, name="Дорого")
    ids = [
        create_deal(session=session, pipeline=pipeline, new=NewDeal(currency="RUB", amount=1000)).id
        for _ in range(deals)
    ]
    session.commit()
    email = make_user(session, "Olga", Role.OWNER)
    client = make_client(engine, tmp_path)
    csrf = log_in(client, email)
    return client, csrf, ids, pipeline


def test_two_moves_of_one_deal_to_one_stage_count_it_once(session: Session, engine: Engine, tmp_path: Path) -> None:
    client, csrf, [deal_id], pipeline = _web(session, engine, tmp_path, 1)
    qualified = pipeline.stages[1].id

    def move() -> int:
        form = {"csrf": csrf, "stage_id": str(qualified)}
        return client.post(f"/deals/{deal_id}/move", data=form, headers={"Accept": "application/json"}).status_code

    with first_reads_meet(engine, DEAL_READ):
        answers = at_once(move, move)
    assert answers == [200, 200]  # the second finds the deal there already: nothing to do
    moves = session.scalar(select(func.count()).select_from(StageEntry).where(StageEntry.deal_id == deal_id))
    assert moves == 2  # its arrival and one move
    _check_in_step(session)
    assert [s.reached for s in funnel(session).figures.stages] == [1, 1, 0, 0, 0]


@pytest.mark.parametrize(
    ("first", "second"),
    [("move:2", "move:3"), ("win", "lose"), ("move:3", "win"), ("lose", "reopen"), ("win", "win")],
)
def test_two_different_writes_of_one_deal_leave_it_consistent(
    session: Session, engine: Engine, tmp_path: Path, first: str, second: str
) -> None:
    client, csrf, ids, pipeline = _web(session, engine, tmp_path, 3)
    if "reopen" in (first, second):
        for deal_id in ids:  # a closed deal to reopen while it is being lost again
            client.post(f"/deals/{deal_id}/lose", data={"csrf": csrf, "reason": "Дорого"})

    def write(deal_id: int, what: str) -> Callable[[], int]:
        kind, _, position = what.partition(":")
        form: dict[str, str] = {"csrf": csrf}
        if kind == "move":
            form["stage_id"] = str(pipeline.stages[int(position) - 1].id)
        if kind == "lose":
            form["reason"] = "Дорого"
        headers = {"Accept": "application/json"}
        return lambda: client.post(f"/deals/{deal_id}/{kind}", data=form, headers=headers).status_code

    for deal_id in ids:
        with first_reads_meet(engine, DEAL_READ):
            answers = at_once(write(deal_id, first), write(deal_id, second))
        assert all(a in (200, 409) for a in answers), answers  # one may find the deal closed by the other
        assert 200 in answers
    _check_in_step(session)


def test_two_leads_naming_a_new_source_at_once_both_land(engine: Engine) -> None:
    """Two writers create the same new source at once: one inserts it, the other takes its id."""
    factory = session_factory(engine)
    with factory() as session:
        pipeline_for(session)
        session.commit()

    def lead() -> int:
        with factory() as session:
            account = account_for(session)
            pipeline = session.scalars(select(Pipeline)).one()
            source = get_or_create_source(session=session, account=account, name="Яндекс")
            deal = create_deal(session=session, pipeline=pipeline, new=NewDeal(currency="RUB", source=source))
            session.commit()
            return deal.id

    with first_reads_meet(engine, r"FROM sources\s+WHERE"):
        answers = at_once(lead, lead)
    assert all(isinstance(a, int) for a in answers), answers
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Source)) == 1
        assert session.scalar(select(func.count()).select_from(Deal).where(Deal.source_id.is_not(None))) == 2


def test_two_api_clients_moving_one_deal_at_once_count_it_once(
    session: Session, engine: Engine, tmp_path: Path
) -> None:
    """The API's move, sent at once by two integrations (each with its own token)."""
    from tests.web_helpers import api_token

    client, _, [deal_id], _ = _web(session, engine, tmp_path, 1)
    tokens = [api_token(session, "olga@example.com") for _ in range(2)]

    def move(token: str) -> Callable[[], int]:
        headers = {"Authorization": f"Bearer {token}"}
        return lambda: (
            client.post(f"/api/v1/deals/{deal_id}/move", headers=headers, json={"stage": "Estimate"}).status_code
        )

    # An API request first notes its token's last use: on SQLite that write takes the database's
    # write lock before the deal is read, so SQLite's requests take turns from the start and only
    # PostgreSQL's can meet at the read.
    meet = first_reads_meet(engine, DEAL_READ) if engine.dialect.name == "postgresql" else _nothing()
    with meet:
        assert at_once(move(tokens[0]), move(tokens[1])) == [200, 200]
    _check_in_step(session)
    assert [s.reached for s in funnel(session).figures.stages] == [1, 1, 1, 0, 0]


def test_two_website_leads_with_a_new_source_at_once(session: Session, engine: Engine, tmp_path: Path) -> None:
    """Two clients' form posts name a utm_source nobody has used yet: both land, under one source.
    Posts to one account take turns from the look for the client's open deal on (the account's
    lock); PostgreSQL's requests are held until both have asked for it."""
    from voronka.crm.accounts import find_pipeline
    from voronka.crm.leads import add_lead_form

    pipeline_for(session)
    account = account_for(session)
    _, token = add_lead_form(
        session=session, account=account, pipeline=find_pipeline(session=session, account=account), name="Сайт"
    )
    session.commit()
    client = make_client(engine, tmp_path)

    def lead(name: str, phone: str) -> Callable[[], int]:
        payload = {"name": name, "phone": phone, "utm_source": "yandex"}
        return lambda: client.post(f"/api/v1/webhooks/leads/{token}", json=payload).status_code

    # SQLite takes its write lock before a lead's first read, so only PostgreSQL's requests can meet.
    locked = r"FROM accounts\s+WHERE.*FOR UPDATE"
    meet = first_reads_meet(engine, locked) if engine.dialect.name == "postgresql" else _nothing()
    with meet:
        assert at_once(lead("Анна", "+79990000000"), lead("Олег", "+79990000001")) == [200, 200]
    assert session.scalar(select(func.count()).select_from(Source)) == 1
    assert session.scalar(select(func.count()).select_from(Deal)) == 2
    _check_in_step(session)


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def test_two_posts_of_one_client_at_once_make_one_deal(session: Session, engine: Engine, tmp_path: Path) -> None:
    """The client sends the site's form twice (two requests, another name the second time): one
    deal, the second post joined to it (docs/web.md, the same client). On PostgreSQL both requests
    are held until each has checked it is not a repeat of an earlier request, so both look for the
    client's open deal at the same moment; the account's lock makes the second wait for the first."""
    from voronka.crm.accounts import find_pipeline
    from voronka.crm.leads import add_lead_form

    pipeline_for(session)
    account = account_for(session)
    _, token = add_lead_form(
        session=session, account=account, pipeline=find_pipeline(session=session, account=account), name="Сайт"
    )
    session.commit()
    client = make_client(engine, tmp_path)

    def post(name: str) -> Callable[[], int]:
        payload = {"name": name, "phone": "+7 999 000-00-00"}
        return lambda: client.post(f"/api/v1/webhooks/leads/{token}", json=payload).status_code

    not_a_repeat = r"FROM lead_requests\s+WHERE"
    meet = first_reads_meet(engine, not_a_repeat) if engine.dialect.name == "postgresql" else _nothing()
    with meet:
        assert at_once(post("Анна"), post("Анна Смирнова")) == [200, 200]
    assert session.scalar(select(func.count()).select_from(Deal)) == 1
    _check_in_step(session)
