"""The pure layer, without a database: rows in, figures out."""

from __future__ import annotations

import pytest

from voronka.analysis.funnel.compute import cohort_figures, period_figures, reached_cumulative
from voronka.analysis.funnel.counts import OutcomeRow, ReachRow
from voronka.analysis.funnel.timing import percentile, speed_to_lead, summarise

NAMES = ("A", "B", "C")


def row(furthest: int, status: str, count: int, amount: int = 0, currency: str = "RUB") -> OutcomeRow:
    return OutcomeRow(None, furthest, status, currency, count, amount)


def test_reached_is_a_reversed_running_sum_of_furthest_stages() -> None:
    assert reached_cumulative([row(1, "lost", 5), row(2, "open", 3), row(3, "won", 2)], 3) == [10, 5, 2]


def test_cohort_figures_from_rows() -> None:
    figures = cohort_figures(NAMES, [row(1, "lost", 5), row(2, "open", 3), row(3, "won", 2, amount=700)])
    assert (figures.deals, figures.won, figures.lost, figures.open) == (10, 2, 5, 3)
    assert [s.conversion for s in figures.stages] == [None, 0.5, 0.4]
    assert figures.revenue == {"RUB": 700}
    assert figures.open_share == pytest.approx(0.3)
    assert figures.immature is True


def test_empty_cohort_has_no_ratios() -> None:
    figures = cohort_figures(NAMES, [])
    assert figures.deals == 0
    assert [s.conversion_from_start for s in figures.stages] == [None, None, None]
    assert figures.open_share is None
    assert figures.immature is False


def test_period_figures_are_flows() -> None:
    reaches = [ReachRow(None, 1, 10), ReachRow(None, 2, 6), ReachRow(None, 3, 1)]
    figures = period_figures(NAMES, reaches, [row(1, "lost", 2), row(3, "won", 1, amount=50)])
    assert (figures.deals, figures.won, figures.lost, figures.open) == (10, 1, 2, None)
    assert [s.open for s in figures.stages] == [None, None, None]


def test_percentiles_interpolate_between_ranks() -> None:
    assert percentile([], 0.9) is None
    assert percentile([5.0], 0.9) == 5.0
    assert percentile([0.0, 10.0], 0.9) == pytest.approx(9.0)
    assert percentile(list(map(float, range(11))), 0.9) == pytest.approx(9.0)
    assert summarise([30.0, 10.0, 20.0]).median_seconds == 20.0


def test_speed_to_lead_buckets() -> None:
    minutes = [1, 5, 6, 30, 31, 60, 61, 24 * 60, 24 * 60 + 1, -3]
    speed = speed_to_lead([m * 60.0 for m in minutes])
    assert dict(speed.buckets) == {
        "le_5m": pytest.approx(0.3),  # 1, 5 and a negative delay (counted as zero)
        "m5_30": pytest.approx(0.2),
        "m30_60": pytest.approx(0.2),
        "h1_24": pytest.approx(0.2),
        "gt_24h": pytest.approx(0.1),
    }
    assert speed.count == 10
