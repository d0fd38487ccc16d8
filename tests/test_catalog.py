"""The lesson's CRM catalogue, the advice that picks from it, and the industry templates."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.builders import account_for, funnel
from tests.test_funnel_properties import check_identities
from voronka.catalog.common import Industry
from voronka.catalog.crms import Feature, Need, Support, catalogue, recommend
from voronka.catalog.templates import TEMPLATES, TEMPLATES_LIST
from voronka.cli import app
from voronka.demo import DemoOptions, build_demo
from voronka.models import CauseFamily

# Transcribed from the lesson: name, site, group, in the lesson's order.
LESSON = [
    ("Bitrix24", "bitrix24.ru", "universal"),
    ("amoCRM", "amocrm.ru", "universal"),
    ("Мегаплан", "megaplan.ru", "universal"),
    ("ELMA", "elma.ru", "universal"),
    ("KPI Cloud", "kpi-system.com", "universal"),
    ("YCLIENTS", "yclients.com", "beauty_medicine"),
    ("МедЭлемент", "medelement.com", "beauty_medicine"),
    ("UNICLINIC", "uniclinic.ru", "beauty_medicine"),
    ("СалонПро", "salonpro.pro", "beauty_medicine"),
    ("ClinicCards", "clinicc.ru", "beauty_medicine"),
    ("АвтоДилер", "autodealer.ru", "auto"),
    ("МойАвтосервис", "moy-avtoservis.ru", "auto"),
    ("АвтоБосс", "autoboss.com.ru", "auto"),
    ("АвтоСофт", "avtosoft.ru", "auto"),
    ("CarService CRM", "carservicecrm.ru", "auto"),
    ("RetailCRM", "retailcrm.ru", "retail"),
    ("1С-Розница", "1c.ru", "retail"),
    ("МойСклад", "moysklad.ru", "retail"),
    ("AdvantShop", "advantshop.net", "retail"),
    ("InSales", "insales.ru", "retail"),
    ("FitogramPro", "fitogram.pro", "fitness"),
    ("Train'n'Rest", "train-n-rest.ru", "fitness"),
    ("GymMaster", "gymmaster.com", "fitness"),
    ("Mindbody", "mindbodyonline.com", "fitness"),
    ("Virtuagym", "virtuagym.com", "fitness"),
    ("R-Keeper", "ucs.ru", "restaurant"),
    ("iiko", "iiko.ru", "restaurant"),
    ("Poster POS", "joinposter.com", "restaurant"),
    ("IIKOCloud", "iikocloud.com", "restaurant"),
    ("Quick Resto", "quickresto.ru", "restaurant"),
]


def test_catalogue_holds_every_crm_of_the_lesson_once_in_its_group() -> None:
    """The lesson's thirty, in its order and groups; a CRM voronka connects beyond them may join
    (docs/architecture.md: a new connector's CRM gets an entry)."""
    entries = catalogue()
    of_lesson = [e for e in entries if (e.name, e.site, e.group.value) in LESSON]
    assert [(e.name, e.site, e.group.value) for e in of_lesson] == LESSON
    assert Counter(e.group for e in of_lesson) == dict.fromkeys(Industry, 5)
    assert len({e.key for e in entries}) == len({e.name for e in entries}) == len(entries)
    assert all(e.purpose.ru and e.purpose.en for e in entries)


def test_support_follows_the_registries(monkeypatch: pytest.MonkeyPatch) -> None:
    entries = {e.key: e for e in catalogue()}
    for key in ("amocrm", "bitrix24"):
        assert entries[key].support() == {Support.EXPORT_IMPORT, Support.API_SYNC}
    assert entries["retailcrm"].support() == {Support.API_SYNC}
    assert entries["yclients"].support() == {Support.API_SYNC}
    from voronka.ingest import connectors

    monkeypatch.delitem(connectors.CONNECTORS, "amocrm")
    assert entries["amocrm"].support() == {Support.EXPORT_IMPORT}


@pytest.mark.parametrize(
    ("need", "first"),
    [
        (Need(Industry.BEAUTY_MEDICINE, 2, frozenset({Feature.BOOKING})), "YCLIENTS"),
        (Need(Industry.RETAIL, 5, frozenset({Feature.API})), "RetailCRM"),
        (Need(Industry.UNIVERSAL, 30, frozenset({Feature.TELEPHONY})), "Bitrix24"),
        (Need(Industry.AUTO, 2, frozenset({Feature.BOOKING, Feature.WAREHOUSE})), "МойАвтосервис"),
    ],
)
def test_recommendations_fit_and_explain_themselves(need: Need, first: str) -> None:
    suggestions = recommend(need)
    assert suggestions[0].crm.name == first
    assert all(s.reasons for s in suggestions)
    own = [s.score for s in suggestions if s.crm.group is need.industry]
    assert own == sorted(own, reverse=True)
    texts = [r.render("ru") for r in suggestions[0].reasons]
    assert all(text and "{" not in text for text in texts)


def test_an_industrys_own_crms_come_first_and_unmentioned_is_not_absent() -> None:
    suggestions = recommend(Need(Industry.AUTO, None, frozenset({Feature.API})))
    assert [s.crm.group for s in suggestions] == [Industry.AUTO] * len(suggestions)
    assert len(suggestions) == 5
    lacks = suggestions[0].reasons[-1].render("en")
    assert "not mentioned" in lacks
    universal = recommend(Need(Industry.AUTO, None, frozenset({Feature.API})), limit=40)
    groups = [s.crm.group for s in universal]
    assert groups.index(Industry.UNIVERSAL) > groups.index(Industry.AUTO)
    others = [i for i, g in enumerate(groups) if g not in (Industry.AUTO, Industry.UNIVERSAL)]
    assert not others or min(others) > max(i for i, g in enumerate(groups) if g is Industry.AUTO)


def test_crm_commands() -> None:
    runner = CliRunner()
    listing = runner.invoke(app, ["--lang", "ru", "crm", "list", "--industry", "fitness"])
    assert listing.exit_code == 0
    assert "Mindbody" in listing.stdout
    assert "Bitrix24" not in listing.stdout
    advice = runner.invoke(app, ["--lang", "en", "crm", "recommend", "--industry", "restaurant", "--need", "warehouse"])
    assert advice.exit_code == 0
    assert "R-Keeper" in advice.stdout
    assert "has stock keeping" in advice.stdout
    wrong = runner.invoke(app, ["--lang", "en", "crm", "recommend", "--need", "teleport"])
    assert wrong.exit_code == 1
    assert wrong.stderr.startswith("Error: Cannot read --need «teleport»")


REQUIRED_TEMPLATES = {
    "manufacturing",
    "renovation",
    "beauty",
    "clinic",
    "auto_service",
    "retail",
    "fitness",
    "restaurant",
    "b2b",
    "generic",
}


def test_templates_cover_the_industries_of_the_issue() -> None:
    assert set(TEMPLATES) == REQUIRED_TEMPLATES
    for template in TEMPLATES_LIST:
        assert len(template.stage_names("ru")) == len(template.stage_names("en")) >= 4
        assert len(set(template.stage_names("ru"))) == len(template.stages)
        assert {family for _, family in template.loss_reasons} >= {CauseFamily.NON_TARGET, CauseFamily.PRICE}
        assert len(template.sources) == 5
        assert template.products


@pytest.mark.parametrize("key", sorted(REQUIRED_TEMPLATES))
def test_each_template_creates_a_working_pipeline_and_runs_the_demo(db_url: str, key: str) -> None:
    runner = CliRunner()
    created = runner.invoke(app, ["--db", db_url, "--lang", "en", "init", "--template", key])
    assert created.exit_code == 0, created.stderr
    assert TEMPLATES[key].stage_names("en")[0] in created.stdout
    shown = runner.invoke(app, ["--lang", "ru", "template", "show", key])
    assert shown.exit_code == 0
    assert TEMPLATES[key].stage_names("ru")[-1] in shown.stdout


@pytest.mark.parametrize("key", sorted(REQUIRED_TEMPLATES))
def test_demo_runs_on_any_template(sqlite_session: Session, key: str) -> None:
    summary = build_demo(
        session=sqlite_session,
        account=account_for(sqlite_session),
        options=DemoOptions(template=key, leads=400, today=dt.date(2026, 11, 27)),
    )
    sqlite_session.commit()
    report = funnel(sqlite_session, pipeline=summary.pipeline, by="source")
    assert report.stage_names == TEMPLATES[key].stage_names("ru")
    assert 300 < report.figures.deals < 500
    assert report.figures.won > 0
    check_identities(report.figures)
    assert report.groups is not None
    assert {g.value for g in report.groups} == set(TEMPLATES[key].sources)


def test_industry_can_be_given_as_a_template_key() -> None:
    from voronka.catalog.crms import parse_industry

    assert parse_industry("beauty") is Industry.BEAUTY_MEDICINE
    assert parse_industry("auto_service") is Industry.AUTO
    assert parse_industry("retail") is Industry.RETAIL
