"""Rich tables for people: percentages, thousands separators, marks for immature cohorts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from voronka.i18n import Translator

if TYPE_CHECKING:
    from rich.console import Console

    from voronka.analysis.funnel.report import FunnelReport
    from voronka.analysis.funnel.timing import Timing
    from voronka.formats import Formats


def shown(t: Translator) -> Formats:
    """Figures for the reader of ``t``, by the locale's rules (``66,2 %`` and ``2 951`` in
    Russian, ``66.2%`` and ``2,951`` in English); terminal reports carry no times of day."""
    from voronka.formats import figures

    return figures(t.lang)


def percent(value: float | None, t: Translator) -> str:
    return shown(t).share(value)


def number(value: int | None, t: Translator) -> str:
    return shown(t).number(value)


def money(amount: int, currency: str, t: Translator) -> str:
    """Minor units as whole units with the currency's sign."""
    return shown(t).money(amount, currency)


def duration(seconds: float | None, t: Translator) -> str:
    if seconds is None:
        return "—"
    if seconds < 3600:
        return t("units.minutes", value=shown(t).number(seconds / 60))
    if seconds < 86400 * 2:
        return t("units.hours", value=shown(t).number(seconds / 3600, digits=1))
    return t("units.days", value=shown(t).number(seconds / 86400, digits=1))


def print_funnel(console: Console, report: FunnelReport, t: Translator) -> None:
    from rich.table import Table

    from voronka.analysis.funnel.output import explain

    period = (
        t("funnel.period", start=report.date_from or "…", end=report.date_to or "…")
        if report.date_from or report.date_to
        else t("funnel.period_all")
    )
    figures = report.figures
    if figures.stages:
        table = Table(title=f"{t('funnel.title', pipeline=report.pipeline)} · {period}", title_justify="left")
        for key in ("stage", "reached", "conversion", "from_start", "lost", "open", "dropped"):
            table.add_column(t(f"funnel.{key}"), justify="left" if key == "stage" else "right")
        for stage in figures.stages:
            table.add_row(
                f"{stage.position}. {stage.name}",
                number(stage.reached, t),
                percent(stage.conversion, t),
                percent(stage.conversion_from_start, t),
                number(stage.lost, t),
                number(stage.open, t),
                number(stage.dropped, t),
            )
        console.print(table)
    revenue = " + ".join(money(a, c, t) for c, a in sorted(figures.revenue.items())) or money(0, report.currency, t)
    console.print(
        f"{t('funnel.deals')}: {number(figures.deals, t)} · {t('funnel.won')}: {number(figures.won, t)} · "
        f"{t('funnel.lost')}: {number(figures.lost, t)} · {t('funnel.open')}: {number(figures.open, t)} · "
        f"{t('funnel.revenue')}: {revenue}"
    )
    if report.groups is not None:
        _print_groups(console, report, t)
    if report.timing is not None:
        _print_timing(console, report.timing, t)
    console.print(f"[dim]{explain(report, t)}[/dim]", soft_wrap=True)


def _print_groups(console: Console, report: FunnelReport, t: Translator) -> None:
    from rich.table import Table

    from voronka.analysis.funnel.output import dimension_label

    names = report.stage_names
    table = Table(title=f"{t('funnel.group')}: {dimension_label(report.by or '', t)}", title_justify="left")
    table.add_column(t("funnel.group"))
    table.add_column(t("funnel.deals"), justify="right")
    for name in names[1:]:
        table.add_column(name, justify="right")
    table.add_column(t("funnel.revenue"), justify="right")
    table.add_column(t("funnel.open_share"), justify="right")
    for group in report.groups or ():
        figures = group.figures
        cells = [group.value if group.value is not None else t("funnel.none_value"), number(figures.deals, t)]
        for stage in figures.stages[1:]:
            cells.append(f"{number(stage.reached, t)} ({percent(stage.conversion, t)})")
        cells.append(money(figures.revenue_in(report.currency), report.currency, t))
        mark = f" {t('funnel.immature')}" if figures.immature else ""
        cells.append(percent(figures.open_share, t) + mark)
        table.add_row(*cells)
    console.print(table)


def _print_timing(console: Console, timing: Timing, t: Translator) -> None:
    speed = timing.speed_to_lead
    shares = {name: percent(share, t) for name, share in speed.buckets}
    console.print(
        f"{t('funnel.speed_to_lead')}: {t('funnel.median')} {duration(speed.median_seconds, t)}, "
        f"{t('funnel.p90')} {duration(speed.p90_seconds, t)} ({number(speed.count, t)} {t('funnel.count')}); "
        + t("funnel.buckets", **shares)
    )
    parts = [
        f"{s.position}: {duration(s.median_seconds, t)} / {duration(s.p90_seconds, t)}" for s in timing.time_to_stage
    ]
    console.print(f"{t('funnel.time_to_stage')} ({t('funnel.median')} / {t('funnel.p90')}): " + " · ".join(parts))
