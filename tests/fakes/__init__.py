"""Local fakes of the CRMs' documented APIs, and the funnel their data imply, counted by hand."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from tests.builders import funnel


def expected_funnel(deals: Iterable[tuple[list[int], str]], stages: int) -> tuple[tuple[int, int, int, int], list[int]]:
    """(deals, won, lost, open) and reached per stage under the cumulative rule, from each deal's
    entered stage positions and its outcome (``won``, ``lost`` or ``open``)."""
    furthest, outcome = [], {"won": 0, "lost": 0, "open": 0}
    for positions, kind in deals:
        outcome[kind] += 1
        furthest.append(stages if kind == "won" else min(max(positions, default=1), stages - 1))
    reached = [sum(f >= k for f in furthest) for k in range(1, stages + 1)]
    return (len(furthest), outcome["won"], outcome["lost"], outcome["open"]), reached


def observed(session: Session) -> tuple[tuple[int, int, int, int], list[int]]:
    """The same figures as voronka counts them (all time, cohort view, cumulative rule)."""
    figures = funnel(session).figures
    return (figures.deals, figures.won, figures.lost or 0, figures.open or 0), [s.reached for s in figures.stages]
