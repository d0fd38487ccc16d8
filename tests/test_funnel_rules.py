"""Every counting rule of docs/funnel.md pinned by a small hand-made case, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session

from tests.builders import Journey, funnel, journeys_for, reached
from voronka.analysis.funnel.output import report_to_dict
from voronka.analysis.funnel.query import Rule, View


def test_skipped_stage_counts_as_passed_only_under_the_cumulative_rule(session: Session) -> None:
    journeys_for(session, [Journey("2024-03-01 10:00", moves=[("Estimate", "2024-03-02 10:00")])])
    assert reached(funnel(session)) == [1, 1, 1, 0, 0]
    assert reached(funnel(session, rule=Rule.PASSAGE)) == [1, 0, 1, 0, 0]
    stages = funnel(session).figures.stages
    assert [s.open for s in stages] == [0, 0, 1, 0, 0]


def test_back_move_never_lowers_the_furthest_stage(session: Session) -> None:
    journeys_for(
        session,
        [
            Journey(
                "2024-03-01 10:00",
                moves=[
                    ("Qualified", "2024-03-01 11:00"),
                    ("Estimate", "2024-03-02 10:00"),
                    ("Qualified", "2024-03-03 10:00"),
                ],
            )
        ],
    )
    report = funnel(session)
    assert reached(report) == [1, 1, 1, 0, 0]
    assert [s.open for s in report.figures.stages] == [0, 0, 1, 0, 0]


def test_re_entries_count_once(session: Session) -> None:
    journeys_for(
        session,
        [
            Journey(
                "2024-03-01 10:00",
                moves=[
                    ("Qualified", "2024-03-01 11:00"),
                    ("Lead", "2024-03-01 12:00"),
                    ("Qualified", "2024-03-01 13:00"),
                    ("Estimate", "2024-03-01 14:00"),
                ],
            )
        ],
    )
    for rule in Rule:
        assert reached(funnel(session, rule=rule)) == [1, 1, 1, 0, 0]


@pytest.mark.parametrize("stage_index", [0, 1, 2, 3])
def test_lost_deal_counts_up_to_its_stage_and_none_after(session: Session, stage_index: int) -> None:
    stages = ["Qualified", "Estimate", "Contract"][:stage_index]
    moves = [(name, f"2024-03-0{2 + i} 10:00") for i, name in enumerate(stages)]
    journeys_for(session, [Journey("2024-03-01 10:00", moves=moves, lost=("2024-03-09 10:00", "Дорого"))])
    report = funnel(session)
    assert reached(report) == [1] * (stage_index + 1) + [0] * (4 - stage_index)
    lost = [0] * 5
    lost[stage_index] = 1
    assert [s.lost for s in report.figures.stages] == lost
    assert (report.figures.deals, report.figures.won, report.figures.lost, report.figures.open) == (
        1,
        0,
        1,
        0,
    )


def test_won_without_intermediate_entries(session: Session) -> None:
    journeys_for(session, [Journey("2024-03-01 10:00", won="2024-03-05 10:00", amount=1_500_000)])
    assert reached(funnel(session)) == [1, 1, 1, 1, 1]
    passage = funnel(session, rule=Rule.PASSAGE)
    assert reached(passage) == [1, 0, 0, 0, 1]
    assert passage.figures.stages[4].conversion is None  # nobody entered the stage before it
    assert funnel(session).figures.revenue == {"RUB": 1_500_000}


def test_reopened_won_deal_no_longer_counts_as_won(session: Session) -> None:
    journeys_for(
        session,
        [
            Journey(
                "2024-03-01 10:00",
                moves=[("Contract", "2024-03-02 10:00")],
                won="2024-03-03 10:00",
                reopened="2024-03-04 10:00",
            )
        ],
    )
    report = funnel(session)
    assert reached(report) == [1, 1, 1, 1, 0]
    assert (report.figures.won, report.figures.open) == (0, 1)
    assert [s.open for s in report.figures.stages] == [0, 0, 0, 1, 0]
    assert reached(funnel(session, rule=Rule.PASSAGE)) == [1, 0, 0, 1, 0]


def test_conversions_and_drops(session: Session) -> None:
    journeys_for(
        session,
        [
            Journey("2024-03-01 10:00"),
            Journey("2024-03-01 11:00", moves=[("Qualified", "2024-03-01 12:00")]),
            Journey("2024-03-01 12:00", moves=[("Qualified", "2024-03-01 13:00")], lost=("2024-03-02", "Сроки")),
            Journey("2024-03-01 13:00", won="2024-03-10 10:00", amount=100_00),
        ],
    )
    stages = funnel(session).figures.stages
    assert [s.reached for s in stages] == [4, 3, 1, 1, 1]
    assert [s.conversion for s in stages] == [None, 0.75, pytest.approx(1 / 3), 1.0, 1.0]
    assert [s.conversion_from_start for s in stages] == [1.0, 0.75, 0.25, 0.25, 0.25]
    assert [s.dropped for s in stages] == [1, 2, 0, 0, None]
    assert [(s.lost or 0) + (s.open or 0) for s in stages[:-1]] == [s.dropped for s in stages[:-1]]


def test_conversion_is_null_after_an_empty_stage(session: Session) -> None:
    journeys_for(session, [Journey("2024-03-01 10:00")])
    stages = funnel(session).figures.stages
    assert stages[1].conversion == 0.0
    assert stages[2].conversion is None


def test_cohort_view_counts_deals_created_in_the_range(session: Session) -> None:
    journeys_for(
        session,
        [
            Journey("2024-02-28 10:00", moves=[("Qualified", "2024-03-05 10:00")]),
            Journey("2024-03-10 10:00"),
            Journey("2024-04-01 00:00"),
        ],
    )
    report = funnel(session, date_from=dt.date(2024, 3, 1), date_to=dt.date(2024, 4, 1))
    assert reached(report) == [1, 0, 0, 0, 0]


def test_period_view_counts_first_entries_in_the_range(session: Session) -> None:
    journeys_for(
        session,
        [
            Journey(
                "2024-02-28 10:00",
                moves=[("Qualified", "2024-03-05 10:00"), ("Qualified", "2024-03-06 10:00")],
            ),
            Journey("2024-03-10 10:00", moves=[("Estimate", "2024-03-11 10:00")]),
            Journey("2024-03-11 10:00", moves=[("Qualified", "2024-02-01 10:00")]),  # out of time order
            Journey("2024-03-12 10:00", lost=("2024-03-20 10:00", "Нецелевой")),
            Journey("2024-01-01 10:00", won="2024-03-15 10:00", amount=5_000_00),
        ],
    )
    march = {"date_from": dt.date(2024, 3, 1), "date_to": dt.date(2024, 4, 1), "view": View.PERIOD}
    cumulative = funnel(session, **march)
    # Lead: 3 arrivals in March. Qualified: deal 1 (Mar 5), deal 2 (skipped at Mar 11), deal 5 (won Mar 15).
    assert reached(cumulative) == [3, 3, 2, 1, 1]
    assert reached(funnel(session, rule=Rule.PASSAGE, **march)) == [3, 1, 1, 0, 1]
    assert (cumulative.figures.deals, cumulative.figures.won, cumulative.figures.lost) == (3, 1, 1)
    assert cumulative.figures.open is None
    assert cumulative.figures.revenue == {"RUB": 5_000_00}


def test_empty_periods_appear_as_zero_rows(session: Session) -> None:
    journeys_for(session, [Journey("2024-01-15 10:00"), Journey("2024-03-15 10:00", won="2024-03-16 10:00")])
    report = funnel(session, by="month", date_from=dt.date(2024, 1, 1), date_to=dt.date(2024, 5, 1))
    assert report.groups is not None
    assert [g.value for g in report.groups] == ["2024-01", "2024-02", "2024-03", "2024-04"]
    february = report.groups[1].figures
    assert (february.deals, february.won, february.open_share) == (0, 0, None)
    assert february.stages[1].conversion is None
    assert [g.figures.deals for g in report.groups] == [1, 0, 1, 0]


def test_weeks_are_iso_weeks_and_days_are_local(session: Session) -> None:
    journeys_for(session, [Journey("2024-12-30 10:00"), Journey("2024-12-29 23:00")])
    weeks = funnel(session, by="week").groups
    assert weeks is not None
    assert [(g.value, g.figures.deals) for g in weeks] == [("2024-W52", 1), ("2025-W01", 1)]


def test_months_follow_the_account_time_zone(session: Session) -> None:
    from voronka.crm.accounts import default_account

    journeys_for(session, [Journey("2024-01-31 21:30"), Journey("2024-01-31 20:30")])
    default_account(session=session).timezone = "Europe/Moscow"  # UTC+3: 21:30 UTC is Feb 1 there
    months = funnel(session, by="month").groups
    assert months is not None
    assert [(g.value, g.figures.deals) for g in months] == [("2024-01", 1), ("2024-02", 1)]


def test_half_hour_zones_bucket_by_local_day(session: Session) -> None:
    from voronka.crm.accounts import default_account

    # Asia/Kolkata is UTC+05:30: 18:29 UTC is 23:59 local, 18:31 UTC is the next day.
    journeys_for(session, [Journey("2024-05-01 18:29"), Journey("2024-05-01 18:31")])
    default_account(session=session).timezone = "Asia/Kolkata"
    days = funnel(session, by="day").groups
    assert days is not None
    assert [(g.value, g.figures.deals) for g in days] == [("2024-05-01", 1), ("2024-05-02", 1)]


def test_immature_cohorts_are_marked(session: Session) -> None:
    journeys_for(
        session,
        [
            Journey("2024-01-10 10:00", lost=("2024-01-11", "Дорого")),
            Journey("2024-01-11 10:00", won="2024-01-20 10:00"),
            Journey("2024-02-10 10:00"),
            Journey("2024-02-11 10:00", lost=("2024-02-12", "Дорого")),
        ],
    )
    report = funnel(session, by="month")
    assert report.groups is not None
    assert [(g.value, g.figures.open_share, g.figures.immature) for g in report.groups] == [
        ("2024-01", 0.0, False),
        ("2024-02", 0.5, True),
    ]
    assert funnel(session, by="month", immature_share=0.6).groups[1].figures.immature is False  # type: ignore[index]


def test_groups_by_source_add_up_with_an_unnamed_group_last(session: Session) -> None:
    journeys_for(
        session,
        [
            Journey("2024-03-01 10:00", source="Авито"),
            Journey("2024-03-01 11:00", source="Авито", won="2024-03-02 10:00", amount=10_00),
            Journey("2024-03-01 12:00", source="Сайт", lost=("2024-03-02", "Нецелевой")),
            Journey("2024-03-01 13:00"),
        ],
    )
    report = funnel(session, by="source")
    assert report.groups is not None
    assert [(g.value, g.figures.deals, g.figures.won) for g in report.groups] == [
        ("Авито", 2, 1),
        ("Сайт", 1, 0),
        (None, 1, 0),
    ]
    assert sum(g.figures.deals for g in report.groups) == report.figures.deals


def test_breakdown_by_manager_and_custom_field(session: Session) -> None:
    journeys_for(
        session,
        [
            Journey("2024-03-01 10:00", manager="Анна", custom={"Изделие": "Кухня"}),
            Journey("2024-03-01 11:00", manager="Анна", custom={"Изделие": "Шкаф"}, won="2024-03-05"),
            Journey("2024-03-01 12:00", manager="Олег", custom={"Изделие": "Кухня"}),
        ],
    )
    by_manager = funnel(session, by="manager").groups
    assert by_manager is not None
    assert [(g.value, g.figures.deals, g.figures.won) for g in by_manager] == [("Анна", 2, 1), ("Олег", 1, 0)]
    by_field = funnel(session, by="field:Изделие").groups
    assert by_field is not None
    assert [(g.value, g.figures.deals) for g in by_field] == [("Кухня", 2), ("Шкаф", 1)]


def test_breakdown_by_pipeline_gives_each_its_own_stages(session: Session) -> None:
    from tests.builders import add_journey, pipeline_for

    first = journeys_for(session, [Journey("2024-03-01 10:00", won="2024-03-02")])
    second = pipeline_for(session, ["Заявка", "Оплата"], name="Розница")
    add_journey(session, second, Journey("2024-03-01 10:00"))
    session.commit()
    report = funnel(session, by="pipeline")
    assert report.groups is not None
    assert [(g.value, len(g.figures.stages), g.figures.deals) for g in report.groups] == [
        (first.name, 5, 1),
        ("Розница", 2, 1),
    ]
    assert (report.figures.deals, report.figures.won, report.figures.open) == (2, 1, 1)


def test_money_is_never_added_across_currencies(session: Session) -> None:
    journeys_for(
        session,
        [
            Journey("2024-03-01 10:00", won="2024-03-02", amount=100_00),
            Journey("2024-03-01 11:00", won="2024-03-02", amount=50_00, currency="USD"),
        ],
    )
    data = report_to_dict(funnel(session))
    assert data["revenue"] == "100.00"
    assert data["currency"] == "RUB"
    assert data["revenue_by_currency"] == {"RUB": "100.00", "USD": "50.00"}
    assert data["average_check"] is None  # not one currency: no average to state


def test_json_has_the_contract_shape(session: Session) -> None:
    journeys_for(session, [Journey("2024-03-01 10:00", source="Авито", won="2024-03-02", amount=12_345_67)])
    data = report_to_dict(funnel(session, by="source", date_from=dt.date(2024, 1, 1), date_to=dt.date(2025, 1, 1)))
    assert {
        "pipeline",
        "view",
        "rule",
        "from",
        "to",
        "deals",
        "won",
        "lost",
        "open",
        "revenue",
        "currency",
    } <= set(data)
    assert (data["view"], data["rule"], data["from"], data["to"]) == (
        "cohort",
        "cumulative",
        "2024-01-01",
        "2025-01-01",
    )
    assert data["revenue"] == "12345.67"
    stage = data["stages"][0]
    assert {"position", "name", "reached", "conversion", "conversion_from_start", "lost", "open"} <= set(stage)
    group = data["groups"][0]
    assert (group["by"], group["value"], group["deals"], group["revenue"]) == (
        "source",
        "Авито",
        1,
        "12345.67",
    )


def test_months_across_daylight_saving_changes(session: Session) -> None:
    from voronka.crm.accounts import default_account

    # Europe/Berlin is UTC+1 in winter and UTC+2 in summer: both deals fall just after local midnight.
    journeys_for(session, [Journey("2024-01-31 23:30"), Journey("2024-03-31 22:30"), Journey("2024-07-15 10:00")])
    default_account(session=session).timezone = "Europe/Berlin"
    months = funnel(session, by="month", date_from=dt.date(2024, 1, 1), date_to=dt.date(2024, 8, 1)).groups
    assert months is not None
    assert [(g.value, g.figures.deals) for g in months if g.figures.deals] == [
        ("2024-02", 1),
        ("2024-04", 1),
        ("2024-07", 1),
    ]
    days = funnel(session, by="day", date_from=dt.date(2024, 3, 31), date_to=dt.date(2024, 4, 2)).groups
    assert days is not None
    assert [(g.value, g.figures.deals) for g in days] == [("2024-03-31", 0), ("2024-04-01", 1)]


def test_fixed_offset_is_detected_only_without_changes() -> None:
    from zoneinfo import ZoneInfo

    from voronka.timeutil import fixed_offset_minutes

    start, end = dt.datetime(2024, 1, 1), dt.datetime(2024, 12, 31)
    assert fixed_offset_minutes(ZoneInfo("Europe/Moscow"), start, end) == 180
    assert fixed_offset_minutes(ZoneInfo("Asia/Kolkata"), start, end) == 330
    assert fixed_offset_minutes(ZoneInfo("Europe/Berlin"), start, end) is None
    assert fixed_offset_minutes(ZoneInfo("Europe/Berlin"), dt.datetime(2024, 5, 1), dt.datetime(2024, 6, 1)) == 120
