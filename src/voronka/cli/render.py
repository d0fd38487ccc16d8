"""Rich tables for people: percentages, thousands separators, marks for immature cohorts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from voronka.i18n import Translator

if TYPE_CHECKING:
    from rich.console import Console

    from voronka.analysis.funnel.report import FunnelReport
    from voronka.analysis.funnel.timing import Timing


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def number(value: int | None) -> str:
    return "—" if value is None else f"{value:,}".replace(",", " ")


def money(amount: int, currency: str) -> str:
    from voronka.money import format_minor

    whole = format_minor(amount, currency).split(".")[0]
    return f"{int(whole):,}".replace(",", " ") + f" {currency}"


def duration(seconds: float | None, t: Translator) -> str:
    if seconds is None:
        return "—"
    if seconds < 3600:
        return t("units.minutes", value=f"{seconds / 60:.0f}")
    if seconds < 86400 * 2:
        return t("units.hours", value=f"{seconds / 3600:.1f}")
    return t("units.days", value=f"{seconds / 86400:.1f}")


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
                number(stage.reached),
                percent(stage.conversion),
                percent(stage.conversion_from_start),
                number(stage.lost),
                number(stage.open),
                number(stage.dropped),
            )
        console.print(table)
    revenue = " + ".join(money(a, c) for c, a in sorted(figures.revenue.items())) or money(0, report.currency)
    console.print(
        f"{t('funnel.deals')}: {number(figures.deals)} · {t('funnel.won')}: {number(figures.won)} · "
        f"{t('funnel.lost')}: {number(figures.lost)} · {t('funnel.open')}: {number(figures.open)} · "
        f"{t('funnel.revenue')}: {revenue}"
    )
    if report.groups is not None:
        _print_groups(console, report, t)
    if report.timing is not None:
        _print_timing(console, report.timing, t)
    console.print(f"[dim]{explain(report, t)}[/dim]", soft_wrap=True)


def _print_groups(console: Console, report: FunnelReport, t: Translator) -> None:
    from rich.table import Table

    names = report.stage_names
    table = Table(title=f"{t('funnel.group')}: {report.by}", title_justify="left")
    table.add_column(t("funnel.group"))
    table.add_column(t("funnel.deals"), justify="right")
    for name in names[1:]:
        table.add_column(name, justify="right")
    table.add_column(t("funnel.revenue"), justify="right")
    table.add_column(t("funnel.open_share"), justify="right")
    for group in report.groups or ():
        figures = group.figures
        cells = [group.value if group.value is not None else t("funnel.none_value"), number(figures.deals)]
        for stage in figures.stages[1:]:
            cells.append(f"{number(stage.reached)} ({percent(stage.conversion)})")
        cells.append(money(figures.revenue_in(report.currency), report.currency))
        mark = f" {t('funnel.immature')}" if figures.immature else ""
        cells.append(percent(figures.open_share) + mark)
        table.add_row(*cells)
    console.print(table)


def _print_timing(console: Console, timing: Timing, t: Translator) -> None:
    speed = timing.speed_to_lead
    shares = {name: percent(share) for name, share in speed.buckets}
    console.print(
        f"{t('funnel.speed_to_lead')}: {t('funnel.median')} {duration(speed.median_seconds, t)}, "
        f"{t('funnel.p90')} {duration(speed.p90_seconds, t)} ({number(speed.count)} {t('funnel.count')}); "
        + t("funnel.buckets", **shares)
    )
    parts = [
        f"{s.position}: {duration(s.median_seconds, t)} / {duration(s.p90_seconds, t)}" for s in timing.time_to_stage
    ]
    console.print(f"{t('funnel.time_to_stage')} ({t('funnel.median')} / {t('funnel.p90')}): " + " · ".join(parts))
