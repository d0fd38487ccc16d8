"""A real CRM export: Maven Analytics' CRM Sales Opportunities (8,800 deals; tests/data/maven_crm).

The file is mapped onto a Prospecting → Engaging → Won pipeline (lost deals are lost at the last
stage they have a date for, which is Engaging for every lost row) and imported through the
canonical format. The funnel must equal a plain count over the original file.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from pathlib import Path

from sqlalchemy.orm import Session

from tests.builders import account_for, funnel, pipeline_for
from voronka.crm.accounts import find_pipeline
from voronka.ingest.importers import ImportTarget, import_file

DATA = Path(__file__).parent / "data" / "maven_crm"
DATASET_END = "2017-12-31"  # Prospecting rows carry no date at all


def maven_rows() -> list[dict[str, str]]:
    with (DATA / "sales_pipeline.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def team_managers() -> dict[str, str]:
    with (DATA / "sales_teams.csv").open(newline="", encoding="utf-8") as handle:
        return {row["sales_agent"]: row["manager"] for row in csv.DictReader(handle)}


def to_canonical(rows: list[dict[str, str]], path: Path) -> None:
    managers = team_managers()
    columns = [
        "id",
        "created_at",
        "stage",
        "status",
        "closed_at",
        "amount",
        "currency",
        "manager",
        "entered:Engaging",
        "product",
        "team_manager",
    ]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            stage = row["deal_stage"]
            writer.writerow(
                {
                    "id": row["opportunity_id"],
                    "created_at": row["engage_date"] or row["close_date"] or DATASET_END,
                    "stage": {"Lost": "Engaging"}.get(stage, stage),
                    "status": {"Won": "won", "Lost": "lost"}.get(stage, "open"),
                    "closed_at": row["close_date"],
                    "amount": row["close_value"] if stage == "Won" else "",
                    "currency": "USD",
                    "manager": row["sales_agent"],
                    "entered:Engaging": row["engage_date"],
                    "product": row["product"],
                    "team_manager": managers.get(row["sales_agent"], ""),
                }
            )


def expected_counts(rows: list[dict[str, str]], key: str | None) -> dict[str | None, tuple[int, int, int, int, int]]:
    """(deals, reached Engaging, won, lost, open) per value of ``key``, counted from the raw file."""
    managers = team_managers()
    counts: dict[str | None, Counter[str]] = defaultdict(Counter)
    for row in rows:
        group = None if key is None else (managers[row["sales_agent"]] if key == "team" else row[key])
        tally = counts[group]
        tally["deals"] += 1
        tally["engaging"] += row["deal_stage"] in ("Engaging", "Won", "Lost")
        tally["won"] += row["deal_stage"] == "Won"
        tally["lost"] += row["deal_stage"] == "Lost"
        tally["open"] += row["deal_stage"] in ("Prospecting", "Engaging")
    return {g: (c["deals"], c["engaging"], c["won"], c["lost"], c["open"]) for g, c in counts.items()}


def figures_tuple(figures: object) -> tuple[int, int, int, int, int]:
    stages = figures.stages  # type: ignore[attr-defined]
    return (figures.deals, stages[1].reached, figures.won, figures.lost, figures.open)  # type: ignore[attr-defined]


def test_maven_funnel_matches_an_independent_count(session: Session, tmp_path: Path) -> None:
    rows = maven_rows()
    assert len(rows) == 8800
    pipeline_for(session, ["Prospecting", "Engaging", "Won"], name="MavenTech")
    path = tmp_path / "maven.csv"
    to_canonical(rows, path)
    account = account_for(session)
    target = ImportTarget(session, account, find_pipeline(session=session, account=account))
    report = import_file(target=target, path=path)
    session.commit()
    assert (report.created, report.rejected) == (8800, [])

    total = funnel(session)
    assert figures_tuple(total.figures) == expected_counts(rows, None)[None]
    assert total.figures.revenue == {"USD": sum(int(r["close_value"]) * 100 for r in rows if r["deal_stage"] == "Won")}

    by_agent = funnel(session, by="manager").groups
    assert by_agent is not None
    assert {g.value: figures_tuple(g.figures) for g in by_agent} == expected_counts(rows, "sales_agent")
    assert len(by_agent) == 30  # 30 of the 35 agents have opportunities

    by_team = funnel(session, by="field:team_manager").groups
    assert by_team is not None
    assert {g.value: figures_tuple(g.figures) for g in by_team} == expected_counts(rows, "team")
