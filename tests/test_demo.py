"""The demo: deterministic, about a year and 3,000 leads, with the problems the lesson teaches to find."""

from __future__ import annotations

import datetime as dt
import json
import re
import shlex
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.builders import account_for, funnel
from voronka.cli import app
from voronka.crm.pipelines import recount
from voronka.demo import SPAM_NUMBER, DemoNeedsEmptyDatabase, DemoOptions, reset_demo
from voronka.models import AdSpend, CallAttempt, Deal, Pipeline, User

TODAY = dt.date(2026, 11, 27)


@pytest.fixture
def demo(demo_session: Callable[..., Session]) -> Session:
    return demo_session(DemoOptions(today=TODAY))


def test_demo_is_the_lessons_business(demo: Session) -> None:
    report = funnel(demo)
    assert report.pipeline == "Мебель на заказ"
    assert report.stage_names == (
        "Заявка",
        "Дозвон/квалификация",
        "Предварительный расчёт",
        "Точный расчёт",
        "Договор/оплата",
    )
    assert 2700 <= report.figures.deals <= 3300
    sources = funnel(demo, by="source").groups
    managers = funnel(demo, by="manager").groups
    assert sources is not None
    assert managers is not None
    assert len(sources) == 5
    assert len(managers) == 4
    months = funnel(demo, by="month").groups
    assert months is not None
    assert len(months) in (12, 13)
    assert demo.scalar(select(AdSpend.id).limit(1)) is not None


def test_denormalised_state_matches_the_log(demo: Session) -> None:
    """The demo writes its rows in bulk, by the same rules every write follows: a recount from the
    log, the calls and the deals changes nothing."""
    pipeline = demo.get(Pipeline, demo.scalar(select(Deal.pipeline_id).limit(1)))
    assert pipeline is not None
    done = recount(session=demo, pipeline=pipeline)
    assert (done.deals, done.stage_reaches, done.day_cells) == (0, 0, 0)
    assert done.reaches_total > 1000


def test_spam_number_answer_rate_collapses_mid_year(demo: Session) -> None:
    middle = dt.datetime.combine(TODAY - dt.timedelta(days=365 // 2 - 1), dt.time())
    tally: dict[tuple[str, bool], list[int]] = defaultdict(lambda: [0, 0])
    for number, at, outcome in demo.execute(select(CallAttempt.outgoing_number, CallAttempt.at, CallAttempt.outcome)):
        cell = tally[(number, at >= middle)]
        cell[0] += outcome == "answered"
        cell[1] += 1
    rate = {key: answered / total for key, (answered, total) in tally.items()}
    assert rate[(SPAM_NUMBER, False)] > 0.4
    assert rate[(SPAM_NUMBER, True)] < 0.2
    assert min(rate[(n, True)] for n, later in rate if later and n != SPAM_NUMBER) > 0.4


def test_one_manager_calls_back_slowly(demo: Session) -> None:
    delays: dict[str, list[float]] = defaultdict(list)
    for name, created, first in demo.execute(
        select(User.name, Deal.created_at, Deal.first_contact_at).join(User, User.id == Deal.manager_id)
    ):
        if first is not None:
            delays[name].append((first - created).total_seconds() / 60)
    medians = {name: sorted(v)[len(v) // 2] for name, v in delays.items()}
    slow = max(medians, key=lambda name: medians[name])
    assert slow == "Олег Кузнецов"
    assert medians[slow] > 3 * sorted(medians.values())[-2]


def test_demo_is_deterministic_and_rebuilds_in_place(tmp_path: object) -> None:
    runner = CliRunner()
    db = f"sqlite:///{tmp_path}/demo.db"
    outputs = []
    for _ in range(2):
        result = runner.invoke(app, ["--db", db, "--lang", "en", "demo", "--today", TODAY.isoformat()])
        assert result.exit_code == 0, result.stderr
        assert "Next:" in result.stdout
        outputs.append(
            json.loads(runner.invoke(app, ["--db", db, "funnel", "--format", "json", "--by", "source"]).stdout)
        )
    assert outputs[0] == outputs[1]


def test_demo_refuses_a_database_with_other_deals(session: Session) -> None:
    from tests.builders import Journey, journeys_for

    journeys_for(session, [Journey("2024-01-01")])
    with pytest.raises(DemoNeedsEmptyDatabase):
        reset_demo(session=session, account=account_for(session))


def test_the_demo_hint_names_a_database_the_next_command_opens(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The "Next:" line after the demo is a command to copy: its --db is the file for SQLite and the
    URL (without a password) for a server, and it opens the database the demo was built in."""
    monkeypatch.chdir(tmp_path)  # the demo writes its workbook here
    runner = CliRunner()
    built = runner.invoke(app, ["--db", db_url, "--lang", "en", "demo", "--leads", "60", "--today", TODAY.isoformat()])
    assert built.exit_code == 0, built.stderr
    done = re.search(r"^Demo database: .* \((\d+) deals\)\.$", built.stdout, re.MULTILINE)
    assert done is not None, built.stdout
    hint = built.stdout[built.stdout.index("Next:") :].replace("\n", " ")
    words = shlex.split(hint.split("·")[0].removeprefix("Next:"))
    assert words[:2] == ["voronka", "--db"], hint
    again = runner.invoke(app, ["--db", words[2], "funnel", "--format", "json"])
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["deals"] == int(done.group(1))
