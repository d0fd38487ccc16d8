"""Import of the canonical deals and events formats, and every kind of bad input."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook
from sqlalchemy import String, func, select
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import Session

from tests.builders import account_for, at, funnel, pipeline_for, reached
from voronka.analysis.funnel.query import Rule
from voronka.errors import ImportFailed
from voronka.ingest.importers import ImportReport, ImportTarget, import_file
from voronka.models import Deal, Source, StageEntry, StageReach

HEADER = (
    "id,created_at,stage,status,closed_at,loss_reason,amount,source,manager,entered:Qualified,entered:Estimate,Город"
)


def write(tmp_path: Path, text: str, name: str = "deals.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def run_import(session: Session, path: Path, **options: object) -> ImportReport:
    account = account_for(session)
    from voronka.crm.accounts import find_pipeline

    target = ImportTarget(session, account, find_pipeline(session=session, account=account))
    report = import_file(target=target, path=path, **options)  # type: ignore[arg-type]
    session.commit()
    return report


def deal_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Deal)) or 0)


def reasons(report: ImportReport) -> list[tuple[int, str]]:
    return [(r.line, r.reason.render("en")) for r in report.rejected]


GOOD = f"""{HEADER}
d1,2024-03-01 10:00,Lead,,,,,Авито,Анна,,,Москва
d2,2024-03-01 11:00,Estimate,lost,2024-03-05,Дорого,"150 000,50",Сайт,Олег,2024-03-01 12:00,2024-03-02 09:00,
d3,01.03.2024 12:00,Won,,05.03.2024 15:30,,1234.5,Авито,Анна,,,Казань
d4,2024-03-02,Contract,open,,,,,,,,
"""


def test_canonical_import_counts_like_the_services(session: Session, tmp_path: Path) -> None:
    pipeline_for(session)
    report = run_import(session, write(tmp_path, GOOD))
    assert (report.created, report.updated, report.unchanged, reasons(report)) == (4, 0, 0, [])
    total = funnel(session)
    assert reached(total) == [4, 3, 3, 2, 1]
    assert (total.figures.won, total.figures.lost, total.figures.open) == (1, 1, 2)
    assert total.figures.revenue == {"RUB": 1234_50}
    # d2 has a known history (Qualified, Estimate); the others count cumulatively under passage.
    assert reached(funnel(session, rule=Rule.PASSAGE)) == [4, 3, 3, 2, 1]
    d2 = session.scalars(select(Deal).where(Deal.external_id == "d2")).one()
    assert (d2.amount, d2.history_known, d2.furthest_position) == (150_000_50, True, 3)
    d1 = session.scalars(select(Deal).where(Deal.external_id == "d1")).one()
    assert d1.custom == {"Город": "Москва"}
    assert funnel(session, by="field:Город").groups is not None


def test_reimport_updates_and_never_duplicates(session: Session, tmp_path: Path) -> None:
    pipeline_for(session)
    run_import(session, write(tmp_path, GOOD))
    again = run_import(session, write(tmp_path, GOOD))
    assert (again.created, again.updated, again.unchanged) == (0, 0, 4)
    changed = GOOD.replace("d4,2024-03-02,Contract,open", "d4,2024-03-02,Won,won")
    third = run_import(session, write(tmp_path, changed))
    assert (third.created, third.updated, third.unchanged) == (0, 1, 3)
    assert deal_count(session) == 4
    assert funnel(session).figures.won == 2


def test_cp1251_with_semicolons(session: Session, tmp_path: Path) -> None:
    pipeline_for(session, ["Заявка", "Расчёт", "Оплата"])
    text = (
        "id;created_at;stage;status;amount;source\n"
        "1;01.02.2024;Заявка;;;Авито\n"
        "2;02.02.2024 10:15;Оплата;won;1 500,00;Сайт\n"
    )
    report = run_import(session, write(tmp_path, text, encoding="cp1251"))
    assert (report.created, reasons(report)) == (2, [])
    assert funnel(session, by="source").groups[0].value in {"Авито", "Сайт"}  # type: ignore[index]
    assert funnel(session).figures.revenue == {"RUB": 1500_00}


def test_utf8_bom_and_tabs(session: Session, tmp_path: Path) -> None:
    pipeline_for(session)
    text = "\ufeffid\tcreated_at\tstage\n1\t2024-02-01T10:00:00+03:00\tLead\n"
    report = run_import(session, write(tmp_path, text))
    assert report.created == 1
    deal = session.scalars(select(Deal)).one()
    assert str(deal.created_at) == "2024-02-01 07:00:00"  # stored in UTC


def test_duplicate_ids_keep_the_first_row(session: Session, tmp_path: Path) -> None:
    pipeline_for(session)
    text = "id,created_at,stage\n1,2024-02-01,Lead\n2,2024-02-01,Lead\n1,2024-02-02,Estimate\n"
    report = run_import(session, write(tmp_path, text))
    assert report.created == 2
    assert reasons(report) == [(4, "duplicate id 1 (first seen on line 2)")]


def test_bad_rows_are_rejected_with_line_and_reason_while_good_rows_land(session: Session, tmp_path: Path) -> None:
    pipeline_for(session)
    text = (
        "id,created_at,stage,status,amount\n"
        "ok1,2024-02-01,Lead,,\n"
        "bad-date,2024-13-45,Lead,,\n"
        "neg,2024-02-01,Lead,,-500\n"
        "text-amount,2024-02-01,Lead,,дорого\n"
        "unknown-stage,2024-02-01,Negotiation,,\n"
        "bad-status,2024-02-01,Lead,maybe,\n"
        ",2024-02-01,Lead,,\n"
        "won-stage-lost,2024-02-01,Won,lost,\n"
        "ok2,2024-02-01,Qualified,,100\n"
    )
    report = run_import(session, write(tmp_path, text))
    assert report.created == 2
    assert reasons(report) == [
        (3, "created_at: cannot read date «2024-13-45» (use 2024-03-01, 01.03.2024 or 01.03.2024 14:30)"),
        (4, "amount «-500» is not a sum of zero or more"),
        (5, "amount «дорого» is not a sum of zero or more"),
        (6, "stage «Negotiation» is not in pipeline «Sales»"),
        (7, "status «maybe» is not open, won or lost"),
        (8, "id is empty"),
        (9, "stage «Won» is the won stage, so the status must be won"),
    ]
    assert deal_count(session) == 2


def test_times_before_creation_are_rejected_with_line_and_reason(session: Session, tmp_path: Path) -> None:
    pipeline_for(session)
    text = (
        "id,created_at,stage,status,closed_at,loss_reason,entered:Qualified\n"
        "ok,2024-02-01 10:00,Qualified,,,,2024-02-01 10:05\n"
        "closed-early,2024-02-10,Lead,lost,2024-02-09,дорого,\n"
        "entered-early,2024-02-10 12:00,Qualified,,,,2024-02-10 11:59\n"
        "same-day,2024-02-10,Won,won,2024-02-10 18:00,,\n"
    )
    report = run_import(session, write(tmp_path, text))
    assert report.created == 2
    assert reasons(report) == [(3, "closed_at is before created_at"), (4, "entered:Qualified is before created_at")]
    assert deal_count(session) == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "Nothing was imported: deals.csv is empty."),
        (b"\x00\x01\x02binary\x00junk" * 10, "deals.csv is not a text table"),
        (b"name,phone\nx,1\n", "lacks the required column(s) id, created_at, stage"),
        (b"id,created_at,stage,entered:Nowhere\n1,2024-01-01,Lead,\n", "stage «Nowhere» is not in pipeline"),
    ],
)
def test_unreadable_files_change_nothing(session: Session, tmp_path: Path, content: bytes, message: str) -> None:
    pipeline_for(session)
    path = tmp_path / "deals.csv"
    path.write_bytes(content)
    with pytest.raises(ImportFailed) as error:
        run_import(session, path)
    assert message in error.value.message("en")
    assert deal_count(session) == 0


def test_missing_file_is_a_clear_error(session: Session, tmp_path: Path) -> None:
    pipeline_for(session)
    with pytest.raises(ImportFailed, match=r"cannot open missing\.csv"):
        run_import(session, tmp_path / "missing.csv")


def test_xlsx_first_sheet(session: Session, tmp_path: Path) -> None:
    import datetime as dt

    pipeline_for(session)
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["id", "created_at", "stage", "amount"])
    sheet.append([101, dt.datetime(2024, 5, 1, 10, 30), "Qualified", 2500.5])
    sheet.append([102, dt.date(2024, 5, 2), "Lead", None])
    path = tmp_path / "deals.xlsx"
    workbook.save(path)
    report = run_import(session, path)
    assert (report.created, reasons(report)) == (2, [])
    amounts = {row[0]: row[1] for row in session.execute(select(Deal.external_id, Deal.amount))}
    assert amounts == {"101": 2500_50, "102": None}


def test_stage_history_file(session: Session, tmp_path: Path) -> None:
    pipeline_for(session)
    run_import(session, write(tmp_path, "id,created_at,stage\nA,2024-03-01 09:00,Estimate\nB,2024-03-01,Lead\n"))
    history = "deal_id,stage,entered_at\nA,Estimate,2024-03-03 10:00\nA,Qualified,2024-03-02 10:00\nZ,Lead,2024-03-01\n"
    report = run_import(session, write(tmp_path, history, name="history.csv"))
    assert report.created == 2
    assert reasons(report) == [(4, "deal Z is neither in the file nor in the database")]
    assert reached(funnel(session, rule=Rule.PASSAGE)) == [2, 1, 1, 0, 0]
    again = run_import(session, write(tmp_path, history, name="history.csv"))
    assert (again.created, again.unchanged) == (0, 2)
    positions = session.scalars(select(StageEntry.to_position).join(Deal).where(Deal.external_id == "A")).all()
    assert sorted(positions) == [1, 2, 3, 3]  # arrival, the two history rows, and the import's own entry


def test_deals_with_history_file_together(session: Session, tmp_path: Path) -> None:
    pipeline_for(session)
    deals = write(tmp_path, "id,created_at,stage\nA,2024-03-01 09:00,Estimate\n")
    history = write(tmp_path, "deal_id,stage,entered_at\nA,Qualified,2024-03-02\n", name="h.csv")
    report = run_import(session, deals, history=history)
    assert report.created == 1
    assert session.scalars(select(Deal.history_known)).one() is True


def test_unknown_format_is_refused(session: Session, tmp_path: Path) -> None:
    pipeline_for(session)
    with pytest.raises(ImportFailed, match="unknown format"):
        run_import(session, write(tmp_path, GOOD), format="amo")


def test_imported_times_compare_like_times_written_by_the_services(session: Session, tmp_path: Path) -> None:
    """Bulk-imported values must be stored exactly as SQLAlchemy stores them, or range filters slip."""
    import datetime as dt

    pipeline_for(session)
    run_import(
        session, write(tmp_path, "id,created_at,stage\nmidnight,2024-03-01 00:00,Lead\nbefore,2024-02-29 23:59,Lead\n")
    )
    march = funnel(session, date_from=dt.date(2024, 3, 1), date_to=dt.date(2024, 4, 1))
    assert march.figures.deals == 1
    stored = session.scalars(select(Deal.created_at).where(Deal.external_id == "midnight")).one()
    assert stored == dt.datetime(2024, 3, 1)


class Recorder:
    """A progress listener that remembers what it was told."""

    def __init__(self) -> None:
        self.total: int | None = None
        self.advanced = 0

    def start(self, total: int) -> None:
        self.total = total

    def advance(self, rows: int) -> None:
        self.advanced += rows


def test_long_imports_report_progress(session: Session, tmp_path: Path) -> None:
    pipeline_for(session)
    lines = "".join(f"p{i},2024-03-01,Lead\n" for i in range(4500))
    recorder = Recorder()
    report = run_import(session, write(tmp_path, "id,created_at,stage\n" + lines), progress=recorder)
    assert report.created == 4500
    assert (recorder.total, recorder.advanced) == (4500, 4500)


def test_imports_keep_stage_reaches_equal_to_a_rebuild(session: Session, tmp_path: Path) -> None:
    from tests.test_funnel_properties import _reaches
    from voronka.crm.pipelines import recount

    pipeline = pipeline_for(session)
    run_import(session, write(tmp_path, GOOD))
    run_import(session, write(tmp_path, GOOD.replace("d4,2024-03-02,Contract,open", "d4,2024-03-02,Won,won")))
    run_import(session, write(tmp_path, "deal_id,stage,entered_at\nd1,Qualified,2024-03-02\n", name="h.csv"))
    kept = _reaches(session)
    done = recount(session=session, pipeline=pipeline)
    session.commit()
    assert _reaches(session) == kept
    assert (done.deals, done.stage_reaches, done.day_cells) == (0, 0, 0)
    assert len(kept) > 5


def test_large_imports_rebuild_the_report_indexes(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import inspect

    from voronka.ingest.importers import run

    monkeypatch.setattr(run, "BULK_ROWS", 2)
    pipeline_for(session)
    report = run_import(session, write(tmp_path, GOOD))
    assert report.created == 4
    assert reached(funnel(session)) == [4, 3, 3, 2, 1]
    names = {
        i["name"] for table in ("deals", "stage_reaches") for i in inspect(session.connection()).get_indexes(table)
    }
    assert {"ix_deals_funnel", "ix_stage_reaches_period"} <= names
    from sqlalchemy import text

    # The planner has statistics for the range seeks and for the per-day cells the load recounted
    # (PostgreSQL took a just-filled deal_days for empty and sorted a million deals' cells on disk).
    if session.connection().dialect.name == "sqlite":
        analysed = {row[0] for row in session.execute(text("SELECT DISTINCT tbl FROM sqlite_stat1"))}
    else:
        query = "SELECT DISTINCT tablename FROM pg_stats WHERE schemaname = current_schema()"
        analysed = set(session.scalars(text(query)))
    assert {"deals", "stage_reaches", "deal_days"} <= analysed
    if session.connection().dialect.name == "postgresql":  # rebuilt as migrated: the stalled check's ids
        query = "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
        definitions = dict(session.execute(text(query)).all())
        assert definitions["ix_deals_board"].endswith("INCLUDE (id)")
        assert definitions["ix_stage_reaches_period"].endswith("INCLUDE (deal_id)")


def test_a_large_import_leaves_postgresql_its_index_only_scans(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once a large import is committed, PostgreSQL's new pages are vacuumed (marked all-visible,
    so the reports read their covering indexes alone); a dry run vacuums nothing."""
    from sqlalchemy import text

    from tests.builders import STAGES
    from tests.test_cli import voronka
    from voronka.db import make_engine
    from voronka.ingest.importers import run

    monkeypatch.setattr(run, "BULK_ROWS", 2)
    assert voronka("--db", db_url, "init", "--pipeline", "P", "--stages", ",".join(STAGES))[0] == 0
    engine = make_engine(db_url)

    def all_visible() -> dict[str, int]:
        """Pages the visibility map marks all-visible, as VACUUM records them in the catalogue
        (at once, unlike the statistics views, which a backend reports a while later)."""
        if engine.dialect.name != "postgresql":
            return {}
        with engine.connect() as connection:
            query = (  # this schema's tables only: other tests' schemas have tables of the same names
                "SELECT relname, relallvisible FROM pg_class"
                " WHERE relkind = 'r' AND relnamespace = current_schema()::regnamespace"
            )
            return dict(connection.execute(text(query)).all())

    path = write(tmp_path, GOOD)
    assert voronka("--db", db_url, "import", "deals", str(path), "--dry-run")[0] == 0
    loaded = ("deals", "stage_changes", "stage_reaches", "deal_days")
    before = all_visible()
    for table in loaded if before else ():  # PostgreSQL: nothing vacuumed yet (a dry run writes nothing)
        assert before[table] == 0, table
    code, out, _ = voronka("--db", db_url, "import", "deals", str(path))
    assert code == 0
    assert "4 created" in out
    after = all_visible()
    for table in loaded if after else ():
        assert after[table] >= 1, table
    engine.dispose()


def test_a_line_in_another_encoding_is_rejected_not_stored_garbled(session: Session, tmp_path: Path) -> None:
    pipeline_for(session)
    path = tmp_path / "mixed.csv"
    lines = [
        b"id,created_at,stage,source\n",
        "a,2024-02-01,Lead,Сайт\n".encode("cp1251"),
        "b,2024-02-02,Lead,Авито\n".encode("cp1251"),
        "c,2024-02-03,Lead,Яндекс\n".encode(),  # one UTF-8 line in a Windows-1251 file
    ]
    path.write_bytes(b"".join(lines))
    report = run_import(session, path)
    assert report.created == 2
    assert reasons(report) == [
        (4, "this line is in UTF-8 while the file is in Windows-1251: it would be stored garbled; "
            "save the file in one encoding")
    ]  # fmt: skip
    sources = set(session.scalars(select(Source.name)))
    assert sources == {"Сайт", "Авито"}


def test_a_huge_cell_is_a_bad_row_and_the_rest_lands(session: Session, tmp_path: Path) -> None:
    pipeline_for(session)
    path = tmp_path / "huge.csv"
    path.write_text(
        "id,created_at,stage,title\n"
        "a,2024-02-01,Lead,ok\n"
        f'b,2024-02-02,Lead,"{"x" * 10_000_000}"\n'
        "c,2024-02-03,Lead,ok\n",
        encoding="utf-8",
    )
    report = run_import(session, path)
    assert report.created == 2
    assert reasons(report) == [(3, "a cell is longer than 100000 characters")]


def test_an_xlsx_that_unpacks_too_far_is_refused_before_reading(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import zipfile

    from voronka.tabular import files

    monkeypatch.setattr(files, "MAX_UNPACKED", 16 << 20)  # the real limit is 512 MiB; the rule is the same
    pipeline_for(session)
    bomb = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"0" * (files.MAX_UNPACKED + 1024))
    assert bomb.stat().st_size < 4 << 20
    with pytest.raises(ImportFailed) as failed:
        run_import(session, bomb)
    assert "would unpack to" in failed.value.message("en")
    assert deal_count(session) == 0


def test_imported_phones_are_found_however_they_were_written(session: Session, tmp_path: Path) -> None:
    from voronka.crm.auth import add_user
    from voronka.crm.search import DealFilter, find_deals
    from voronka.models import Role

    pipeline_for(session)
    account = account_for(session)
    account.timezone = "Europe/Moscow"  # "8 495 …" is a Moscow number written the local way
    text = "id,created_at,stage,phone\np1,2024-03-01,Lead,8 (912) 000-11-22\np2,2024-03-01,Lead,+7 495 111 22 33\n"
    run_import(session, write(tmp_path, text))
    owner = add_user(
        session=session, account=account, name="O", email="o@example.com", password="a-long-password", role=Role.OWNER
    )
    for query, expected in (("+79120001122", ["p1"]), ("8 495 111-22-33", ["p2"]), ("2233", ["p2"])):
        page = find_deals(session=session, user=owner, account=account, query=DealFilter(text=query))
        assert [session.get(Deal, r.id).external_id for r in page.rows] == expected  # type: ignore[union-attr]
    changed = run_import(session, write(tmp_path, text.replace("+7 495 111 22 33", "+7 495 999 88 77")))
    assert changed.updated == 1
    key = session.scalars(select(Deal.phone_key).where(Deal.external_id == "p2")).one()
    assert key == "77889995947"  # digits, last first


def test_a_first_import_still_updates_a_deal_it_meets_twice(session: Session) -> None:
    """A writer into an account with no deals skips looking its batches up, except for the ids it
    stored itself: a CRM page that repeats a deal updates it instead of failing on the unique key."""
    from voronka.crm.accounts import find_pipeline
    from voronka.ingest.importers.base import DealRecord
    from voronka.ingest.importers.writer import DealWriter
    from voronka.models import DealStatus

    pipeline_for(session)
    account = account_for(session)
    target = ImportTarget(session, account, find_pipeline(session=session, account=account))
    report = ImportReport(file="crm")
    writer = DealWriter(target, report)
    created = at("2024-03-01 10:00")
    writer.add(DealRecord(line=1, external_id="x1", created_at=created, stage_position=1, status=DealStatus.OPEN))
    writer.add(DealRecord(line=2, external_id="x2", created_at=created, stage_position=1, status=DealStatus.OPEN))
    writer.flush()
    writer.add(DealRecord(line=3, external_id="x1", created_at=created, stage_position=2, status=DealStatus.OPEN))
    writer.flush()
    session.commit()
    assert (report.created, report.updated) == (2, 1)
    assert deal_count(session) == 2
    assert reached(funnel(session))[:2] == [2, 1]


def test_imported_deals_leave_the_next_id_free_for_a_new_deal(session: Session, tmp_path: Path) -> None:
    """PostgreSQL's imported deals take their ids from the table's sequence (not read back by
    external id), so a deal created afterwards gets the next one, not a taken one."""
    from voronka.crm.deals import create_deal
    from voronka.crm.new_deal import NewDeal

    pipeline = pipeline_for(session)
    run_import(session, write(tmp_path, GOOD))
    imported = set(session.scalars(select(Deal.id)))
    deal = create_deal(session=session, pipeline=pipeline, new=NewDeal(currency="RUB", title="Walk-in"))
    session.commit()
    assert deal.id not in imported
    assert deal_count(session) == 5


BAD_ROWS = (
    "id,created_at,stage,status,amount,entered:Qualified\n"
    "ok1,2024-02-01,Lead,,,\n"
    "bad-date,2024-13-45,Lead,,,\n"
    "neg,2024-02-01,Lead,,-500,\n"
    "ok1,2024-02-02,Lead,,,\n"
    "early,2024-02-10 12:00,Qualified,,,2024-02-10 11:59\n"
    "ok2,2024-02-01,Qualified,,100,2024-02-03\n"
    "won,2024-02-01,Won,,7,\n"
)


def test_a_large_file_read_in_a_second_process_lands_like_a_small_one(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large canonical file is read, checked and shaped by a child process while this one writes:
    the same deals, stage log and reaches, and the same bad rows with their lines and reasons."""
    from voronka.ingest.importers import run

    pipeline_for(session)
    path = write(tmp_path, BAD_ROWS)
    here = run_import(session, path)
    expected = (reasons(here), _deals_and_log(session))
    session.execute(StageEntry.__table__.delete())  # type: ignore[attr-defined]
    session.execute(Deal.__table__.delete())  # type: ignore[attr-defined]  # reaches go with their deals
    session.commit()
    monkeypatch.setattr(run, "BULK_ROWS", 2)
    there = run_import(session, path)
    assert (there.created, here.created) == (3, 3)
    assert (reasons(there), _deals_and_log(session)) == expected
    assert [r.line for r in there.rejected] == [3, 4, 5, 6]


CHANGED = (
    GOOD.replace("d4,2024-03-02,Contract,open,,", "d4,2024-03-02,Won,won,2024-03-09,")
    .replace("d1,2024-03-01 10:00,Lead,,", "d1,2024-03-01 10:00,Estimate,lost,2024-03-04 08:00")
    .replace(",Анна,,,Москва", ",Анна,2024-03-01 18:00,2024-03-02 10:00,Москва")
    + "d5,2024-03-03 09:00,Qualified,,,,,Сайт,Новый менеджер,2024-03-03 09:30,,Тверь\n"
)


def test_a_large_first_import_and_re_import_land_like_small_ones(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Into an empty account the reader lays a large file's rows out, times already as stored; into
    an account with deals it sends them shaped, to be looked up and updated. Both land exactly as a
    small import of the same files lands."""
    from voronka.ingest.importers import run

    pipeline_for(session)
    first, second = write(tmp_path, GOOD, "first.csv"), write(tmp_path, CHANGED, "second.csv")
    small = [run_import(session, first), run_import(session, second)]
    expected = _deals_and_log(session)
    session.execute(StageEntry.__table__.delete())  # type: ignore[attr-defined]
    session.execute(Deal.__table__.delete())  # type: ignore[attr-defined]
    session.commit()
    monkeypatch.setattr(run, "BULK_ROWS", 2)
    streams: list[str] = []
    for name in ("laid_out_in_background", "shaped_in_background"):
        monkeypatch.setattr(run, name, _noted(getattr(run, name), streams))
    large = [run_import(session, first), run_import(session, second)]
    assert streams == ["laid_out_in_background", "shaped_in_background"]
    assert [(r.created, r.updated, r.unchanged) for r in large] == [(4, 0, 0), (1, 2, 2)]
    assert [(r.created, r.updated, r.unchanged) for r in small] == [(4, 0, 0), (1, 2, 2)]
    assert _deals_and_log(session) == expected


def _noted(function: Any, calls: list[str]) -> Any:
    def noted(*args: Any) -> Any:
        calls.append(function.__name__)
        return function(*args)

    return noted


def _deals_and_log(session: Session) -> list[tuple[object, ...]]:
    deals = session.execute(
        select(
            Deal.external_id,
            Deal.status,
            Deal.stage_id,
            Deal.furthest_position,
            Deal.amount,
            Deal.currency,
            _text(Deal.created_at),
            _text(Deal.closed_at),
            _text(Deal.first_contact_at),
            Deal.contact_minutes,
            Deal.source_id,
            Deal.manager_id,
            Deal.loss_reason_id,
            Deal.history_known,
            Deal.custom,
            Deal.search_text,
        )
    )
    log = session.execute(
        select(Deal.external_id, StageEntry.to_position, _text(StageEntry.at)).join(Deal, Deal.id == StageEntry.deal_id)
    )
    reaches = session.execute(
        select(Deal.external_id, StageReach.position, _text(StageReach.reached_at), _text(StageReach.entered_at)).join(
            Deal, Deal.id == StageReach.deal_id
        )
    )
    return sorted(deals.all()) + sorted(log.all()) + sorted(reaches.all())


def _text(column: Any) -> Any:
    """A time column as the database holds it (SQLite's text read back as a datetime would hide a
    different format, which its comparisons of text would not)."""
    return sql_cast(column, String)


def test_a_reader_that_fails_leaves_no_process_and_no_deal(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child's failure reaches the writer as one error; the writer's failure ends the child."""
    from voronka.ingest.importers import run
    from voronka.ingest.importers.writer import DealWriter

    pipeline_for(session)
    session.commit()
    monkeypatch.setattr(run, "BULK_ROWS", 2)
    path = write(tmp_path, GOOD)
    original = run.open_table

    def vanishing(opened: Path) -> object:  # the file is gone once its header was read
        table = original(opened)
        opened.unlink()
        return table

    monkeypatch.setattr(run, "open_table", vanishing)
    with pytest.raises(RuntimeError, match="FileNotFoundError"):
        run_import(session, path)
    session.rollback()
    monkeypatch.setattr(run, "open_table", original)

    monkeypatch.setattr(sys, "executable", "/bin/false")  # a reader that cannot even start
    with pytest.raises(ImportFailed, match="stopped before the end of the file"):
        run_import(session, write(tmp_path, GOOD))
    session.rollback()
    monkeypatch.undo()
    monkeypatch.setattr(run, "BULK_ROWS", 2)

    running: list[list[str]] = []

    def failing(*_shaped: object) -> None:
        running.append(_readers_left())
        raise OSError("disk full")

    monkeypatch.setattr(DealWriter, "add_new", failing)  # a first import's rows come laid out
    with pytest.raises(OSError, match="disk full"):
        run_import(session, write(tmp_path, GOOD))
    session.rollback()
    assert len(running[0]) == 1  # the reader was at work while the writer failed
    assert _readers_left() == []
    assert deal_count(session) == 0


def _readers_left() -> list[str]:
    """This process's children still running the background reader (Linux's /proc)."""
    left = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if parent == os.getpid() and "voronka.ingest.importers.reader" in command:
            left.append(command)
    return left


def test_a_script_without_a_main_guard_imports_a_large_file_once(tmp_path: Path) -> None:
    """The reader is a fresh interpreter, not a multiprocessing child: those import the caller's main
    script again, and this script (no ``if __name__ == "__main__"``) would have run twice."""
    import subprocess
    import sys

    deals = write(tmp_path, GOOD)
    script = tmp_path / "load.py"
    script.write_text(
        "from pathlib import Path\n"
        "from voronka.crm.accounts import create_pipeline, default_account\n"
        "from voronka.db import open_database, session_scope\n"
        "from voronka.ingest.importers import ImportTarget, import_file, run\n"
        "run.BULK_ROWS = 2\n"
        f"engine = open_database('sqlite:///{tmp_path / 'v.db'}')\n"
        "with session_scope(engine) as session:\n"
        "    account = default_account(session=session)\n"
        "    stages = ['Lead', 'Qualified', 'Estimate', 'Contract', 'Won']\n"
        "    pipeline = create_pipeline(session=session, account=account, name='Sales', stages=stages)\n"
        f"    report = import_file(target=ImportTarget(session, account, pipeline), path=Path({str(deals)!r}))\n"
        "print('imported', report.created)\n",
        encoding="utf-8",
    )
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False)
    assert (result.returncode, result.stdout, result.stderr) == (0, "imported 4\n", "")


def test_a_large_load_collects_garbage_rarely_and_then_as_before(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With Python's default thresholds the collector re-walked a large load's millions of live
    objects every 700 allocations (a million deals: 71 s as a library call, 58 s without)."""
    import gc

    from voronka.ingest.importers import run
    from voronka.ingest.importers.writer import DealWriter

    seen: list[tuple[int, int, int]] = []
    original = DealWriter.add_shaped

    def watched(self: DealWriter, item: Any) -> None:
        seen.append(gc.get_threshold())
        original(self, item)

    monkeypatch.setattr(DealWriter, "add_shaped", watched)
    before = gc.get_threshold()
    pipeline_for(session)
    run_import(session, write(tmp_path, GOOD))
    monkeypatch.setattr(run, "BULK_ROWS", 2)
    run_import(session, write(tmp_path, GOOD.replace("\nd", "\ne")))
    assert [t[0] for t in seen] == [before[0]] * 4 + [50_000] * 4
    assert gc.get_threshold() == before


@pytest.mark.parametrize("command", [["import", "deals"], ["import", "calls"], ["spend", "import"], ["plan", "import"]])
def test_a_file_holding_only_a_bom_is_empty_to_every_import(db_url: str, tmp_path: Path, command: list[str]) -> None:
    from typer.testing import CliRunner

    from voronka.cli import app

    runner = CliRunner()
    assert runner.invoke(app, ["--db", db_url, "init", "--stages", "Lead,Won"]).exit_code == 0
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf")
    answer = runner.invoke(app, ["--db", db_url, "--lang", "en", *command, str(path)])
    assert answer.exit_code == 1
    assert "bom.csv is empty" in answer.stderr
    assert "Unexpected error" not in answer.stderr


def test_an_unclosed_quote_rejects_its_line_and_the_rows_after_it_are_read(session: Session, tmp_path: Path) -> None:
    pipeline_for(session)
    text = (
        'id,created_at,stage,source,note\n1,2024-02-01,Lead,"Site,\n2,2024-02-02,Lead,Ads,\n'
        '3,2024-02-03,Lead,Site,"a note\nover two lines, kept"\n4,2024-02-04,Lead,"Site\n'
    )
    report = run_import(session, write(tmp_path, text))
    assert [(r.line, r.reason.key) for r in report.rejected] == [
        (2, "import.unclosed_quote"),
        (6, "import.unclosed_quote"),
    ]
    assert report.created == 2
    assert sorted(session.scalars(select(Source.name))) == ["Ads", "Site"]
    note = session.scalars(select(Deal.custom).where(Deal.external_id == "3")).one()
    assert note == {"note": "a note\nover two lines, kept"}


def test_import_deals_applies_the_custom_field_bounds_of_the_web_and_api(session: Session, tmp_path: Path) -> None:
    pipeline_for(session)
    wide = ",".join(f"f{n}" for n in range(60))
    text = (
        f"id,created_at,stage,{wide}\n"
        f"1,2024-02-01,Lead,{','.join('v' for _ in range(60))}\n"
        f"2,2024-02-02,Lead,{','.join('v' if n < 50 else '' for n in range(60))}\n"
        f"3,2024-02-03,Lead,{'x' * 2_001}{',' * 59}\n"
    )
    report = run_import(session, write(tmp_path, text))
    assert [(r.line, r.reason.key) for r in report.rejected] == [
        (2, "import.too_many_custom"),
        (4, "import.cell_too_long"),
    ]
    assert report.created == 1
    assert len(session.scalars(select(Deal.custom)).one()) == 50
