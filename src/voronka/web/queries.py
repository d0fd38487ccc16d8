"""The query strings of the working-day pages as models (FastAPI reads each field from the query),
so a route takes one typed parameter instead of a dozen loose ones; each model turns into the view's
own query (``deal_views.DealListQuery``, ``deal_views.KanbanQuery``), empty fields meaning "any";
the dashboard's (``DashboardQuery``) is its view's query as it is."""

from __future__ import annotations

from pydantic import BaseModel, Field

from voronka.crm.search import MAX_PAGE
from voronka.web.deal_views import DealListQuery, KanbanQuery
from voronka.web.deps import MAX_ID


class DealListParams(BaseModel):
    """``/deals?…``: the list's filters, a report's figure (``reached``/``lost_at`` with ``view``
    and the dates), the search text ``q`` and the page."""

    stage: int | None = Field(None, ge=1, le=MAX_ID)
    status: str | None = None
    manager: str | None = None
    source: str | None = None
    unassigned: bool = False
    q: str | None = None
    page: int = Field(1, ge=-MAX_PAGE, le=MAX_PAGE)
    reached: int | None = Field(None, ge=1, le=MAX_ID)
    lost_at: int | None = Field(None, ge=1, le=MAX_ID)
    view: str = Field("cohort", max_length=10)
    date_from: str | None = Field(None, max_length=10)
    date_to: str | None = Field(None, max_length=10)

    def query(self, pipeline: str | None) -> DealListQuery:
        return DealListQuery(
            pipeline=pipeline,
            stage=self.stage,
            status=self.status or None,
            manager=self.manager or None,
            source=self.source or None,
            unassigned=self.unassigned,
            text=self.q or None,
            page=self.page,
            reached=self.reached,
            lost_at=self.lost_at,
            view=self.view,
            date_from=self.date_from or None,
            date_to=self.date_to or None,
        )


class KanbanParams(BaseModel):
    """``/kanban?…``: whose deals (``mine``, ``manager``), from which source, created in which
    ``period`` (a preset), the search text ``q`` and the page."""

    manager: str | None = None
    source: str | None = None
    period: str = "all"
    mine: bool = False
    q: str | None = None
    page: int = Field(1, ge=-MAX_PAGE, le=MAX_PAGE)

    def query(self, pipeline: str | None) -> KanbanQuery:
        return KanbanQuery(
            pipeline=pipeline,
            manager=self.manager or None,
            source=self.source or None,
            period=self.period,
            mine=self.mine,
            text=self.q or None,
            page=self.page,
        )


class DashboardQuery(BaseModel):
    """``/?…``: the dashboard's range — a ``period`` preset, or the dates, which win — the funnel's
    ``view`` and ``rule``, and what its figures are grouped ``by``. The pipeline is chosen apart
    (``security.DashboardChoice``); an empty field is as if it were not sent."""

    period: str = "this_month"
    date_from: str | None = None
    date_to: str | None = None
    view: str = "cohort"
    rule: str = "cumulative"
    by: str | None = None
