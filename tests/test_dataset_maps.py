"""The shipped example maps import their real data sets, and the funnel equals a plain count of the files."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from sqlalchemy.orm import Session

from tests.builders import account_for, funnel
from tests.test_maven_dataset import expected_counts, figures_tuple, maven_rows
from voronka.ingest.importers import ImportReport, ImportTarget, import_file
from voronka.ingest.importers.maps import load_map
from voronka.ingest.importers.run import pipeline_for_file

MAPS = Path(__file__).parents[1] / "examples" / "maps"
DATA = Path(__file__).parent / "data"


def rows_of(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def import_with_map(session: Session, path: Path, map_name: str) -> ImportReport:
    account = account_for(session)
    column_map = load_map(MAPS / f"{map_name}.toml")
    pipeline = pipeline_for_file(session=session, account=account, path=path, column_map=column_map)
    report = import_file(target=ImportTarget(session, account, pipeline), path=path, column_map=column_map)
    session.commit()
    return report


def test_olist_marketing_funnel(session: Session) -> None:
    leads = rows_of(DATA / "olist" / "olist_marketing_qualified_leads_dataset.csv")
    closed = {row["mql_id"]: row for row in rows_of(DATA / "olist" / "olist_closed_deals_dataset.csv")}
    report = import_with_map(session, DATA / "olist" / "olist_marketing_qualified_leads_dataset.csv", "olist")
    # One deal of the file was won two days before its first contact: rejected, with its line.
    impossible = [
        n for n, row in enumerate(leads, start=2)
        if row["mql_id"] in closed and closed[row["mql_id"]]["won_date"] < row["first_contact_date"]
    ]  # fmt: skip
    assert len(impossible) == 1
    assert report.created == len(leads) - 1
    assert [(r.line, r.reason.key) for r in report.rejected] == [(impossible[0], "import.closed_before_created")]
    skipped = leads.pop(impossible[0] - 2)["mql_id"]
    closed.pop(skipped)
    won = [row for row in leads if row["mql_id"] in closed]
    assert (len(leads), len(won)) == (7999, 841)
    figures = funnel(session).figures
    assert (figures.deals, figures.won, figures.lost, figures.open) == (7999, 841, 0, 7999 - 841)
    by_source = {g.value: (g.figures.deals, g.figures.won) for g in funnel(session, by="source").groups or ()}
    expected: dict[str | None, Counter[str]] = {}
    for row in leads:
        tally = expected.setdefault(row["origin"] or None, Counter())
        tally["deals"] += 1
        tally["won"] += row["mql_id"] in closed
    assert by_source == {k: (c["deals"], c["won"]) for k, c in expected.items()}
    by_manager = {g.value: g.figures.won for g in funnel(session, by="manager").groups or () if g.value}
    assert by_manager == dict(Counter(row["sr_id"] for row in closed.values()))


def test_maven_crm_through_its_map(session: Session) -> None:
    rows = maven_rows()
    report = import_with_map(session, DATA / "maven_crm" / "sales_pipeline.csv", "maven_crm")
    assert (report.created, report.rejected) == (8800, [])
    total = funnel(session)
    assert figures_tuple(total.figures) == expected_counts(rows, None)[None]
    assert total.figures.revenue == {"USD": sum(int(r["close_value"]) * 100 for r in rows if r["deal_stage"] == "Won")}
    by_agent = {g.value: figures_tuple(g.figures) for g in funnel(session, by="manager").groups or ()}
    assert by_agent == expected_counts(rows, "sales_agent")
    by_team = {g.value: figures_tuple(g.figures) for g in funnel(session, by="field:team_manager").groups or ()}
    assert by_team == expected_counts(rows, "team")


def test_x_education_leads(session: Session) -> None:
    leads = rows_of(DATA / "x_education" / "Leads.csv")
    report = import_with_map(session, DATA / "x_education" / "Leads.csv", "x_education")
    assert (report.created, report.rejected) == (9240, [])
    converted = sum(row["Converted"] == "1" for row in leads)
    figures = funnel(session).figures
    assert (figures.deals, figures.won, figures.lost, figures.open) == (9240, converted, 9240 - converted, 0)
    by_source = {g.value: (g.figures.deals, g.figures.won) for g in funnel(session, by="source").groups or ()}
    expected: dict[str | None, Counter[str]] = {}
    for row in leads:
        tally = expected.setdefault(row["Lead Source"] or None, Counter())
        tally["deals"] += 1
        tally["won"] += row["Converted"] == "1"
    assert by_source == {k: (c["deals"], c["won"]) for k, c in expected.items()}
