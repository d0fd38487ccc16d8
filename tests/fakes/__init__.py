"""Local fakes of the CRMs' documented APIs, and the funnel their data imply, counted by hand."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from tests.builders import funnel


@dataclass(frozen=True)
class Contract:
    """A CRM's fake, installed, as the connector contract (tests/test_connector_contract.py) drives
    it: every CRM fake module has ``contract(server) -> Contract`` with more deals than one page."""

    address: str
    secrets: dict[str, str]
    pipelines: list[str]
    """The names the CRM's pipelines have."""
    deals: set[str]
    """The CRM's ids of every deal a full sync brings."""
    refuse: Callable[[], None]
    """Make the CRM refuse the token from now on (revoked, or lacking the permission to read deals)."""
    settings: dict[str, Any] = field(default_factory=dict)


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
