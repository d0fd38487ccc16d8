"""Working hours, the calendar and the handover are set from the command line and the alerts page."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.builders import pipeline_for
from tests.web_helpers import log_in, make_client, make_user
from voronka.alerts.config import alert_settings
from voronka.cli.app import app
from voronka.crm.accounts import default_account
from voronka.models import Role


def test_the_command_sets_working_hours_the_calendar_and_the_handover(db_url: str, tmp_path: Path) -> None:
    runner, env = CliRunner(), {"XDG_CONFIG_HOME": str(tmp_path)}
    assert runner.invoke(app, ["--db", db_url, "init", "--stages", "Лид,Встреча"], env=env).exit_code == 0
    args = ["--db", db_url, "--lang", "en", "alerts", "rules"]
    done = runner.invoke(app, [*args, "--hours", "09:00-18:00", "--calendar", "ru", "--handover"], env=env)
    assert done.exit_code == 0, done.stderr
    assert "Working hours: 09:00-18:00; working days: Russia's production calendar; hand over uncalled leads: ✓." in (
        done.stdout
    )
    off = runner.invoke(app, [*args, "--hours", "", "--calendar", "", "--no-handover"], env=env)
    assert "Working hours: —; working days: Monday to Friday; hand over uncalled leads: —." in off.stdout
    wrong = runner.invoke(app, [*args, "--hours", "18:00-09:00"], env=env)
    assert (wrong.exit_code, wrong.stderr.strip()) == (
        1,
        "Error: Cannot read working hours «18:00-09:00»: expected they end the day they start, e.g. 09:00-18:00.",
    )
    unknown = runner.invoke(app, [*args, "--calendar", "XX"], env=env)
    assert unknown.exit_code == 1
    assert "calendar «XX»" in unknown.stderr


def test_the_owner_sets_them_on_the_alerts_page(session: Session, engine: Engine, tmp_path: Path) -> None:
    pipeline_for(session)
    owner = make_user(session, "Owner", Role.OWNER)
    client = make_client(engine, tmp_path)
    csrf = log_in(client, owner)
    form = {"csrf": csrf, "lead_minutes": "7", "stall_factor": "2", "working": "08:30-17:30", "calendar": "RU"}
    saved = client.post("/settings/alerts/rules", data={**form, "handover": "true"}, follow_redirects=False)
    assert saved.status_code == 303
    rules = alert_settings(session=session, account=default_account(session=session))
    session.refresh(rules)
    assert (rules.work_hours, rules.work_calendar, rules.handover, rules.lead_minutes) == (
        "08:30-17:30", "RU", True, 7,
    )  # fmt: skip
    page = client.get("/settings/alerts").text
    assert 'name="working" value="08:30-17:30"' in page
    assert '<option value="RU" selected>' in page
    assert 'name="handover" value="true" checked' in page
    client.post("/settings/alerts/rules", data=form, follow_redirects=False)  # the box unticked: off
    session.refresh(rules)
    assert rules.handover is False
