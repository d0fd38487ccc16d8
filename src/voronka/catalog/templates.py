"""Industry pipeline templates: stages, default loss reasons (with their cause family) and sources."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from voronka.accounts import get_or_create_loss_reason, get_or_create_source
from voronka.errors import InvalidValue
from voronka.models import Account, CauseFamily


@dataclass(frozen=True)
class Bilingual:
    ru: str
    en: str

    def in_lang(self, lang: str) -> str:
        return self.ru if lang == "ru" else self.en


@dataclass(frozen=True)
class PipelineTemplate:
    key: str
    title: Bilingual
    pipeline: Bilingual
    stages: tuple[Bilingual, ...]
    loss_reasons: tuple[tuple[Bilingual, CauseFamily], ...]
    sources: tuple[str, ...]

    def stage_names(self, lang: str) -> tuple[str, ...]:
        return tuple(s.in_lang(lang) for s in self.stages)

    def pipeline_name(self, lang: str) -> str:
        return self.pipeline.in_lang(lang)

    def add_defaults(self, *, session: Session, account: Account, lang: str = "ru") -> None:
        """The template's loss reasons and sources, added to the account if missing."""
        for reason, family in self.loss_reasons:
            get_or_create_loss_reason(session=session, account=account, name=reason.in_lang(lang), family=family)
        for source in self.sources:
            get_or_create_source(session=session, account=account, name=source)


B = Bilingual
COMMON_REASONS: tuple[tuple[Bilingual, CauseFamily], ...] = (
    (B("Нецелевой", "Not a target client"), CauseFamily.NON_TARGET),
    (B("Дорого", "Too expensive"), CauseFamily.PRICE),
    (B("Сроки", "Timing"), CauseFamily.TIMING),
    (B("Ушёл к конкуренту", "Went to a competitor"), CauseFamily.COMPETITOR),
    (B("Пропала потребность", "Need disappeared"), CauseFamily.NEED_GONE),
    (B("Не дозвонились", "Could not reach"), CauseFamily.UNREACHABLE),
)

FURNITURE = PipelineTemplate(
    key="furniture",
    title=B("Производство на заказ (мебель)", "Custom manufacturing (furniture)"),
    pipeline=B("Мебель на заказ", "Custom furniture"),
    stages=(
        B("Заявка", "Lead"),
        B("Дозвон/квалификация", "Reached / qualified"),
        B("Предварительный расчёт", "Preliminary estimate"),
        B("Точный расчёт", "Precise estimate"),
        B("Договор/оплата", "Contract / payment"),
    ),
    loss_reasons=COMMON_REASONS,
    sources=("Яндекс.Директ", "Авито", "Сайт (SEO)", "Рекомендации", "ВКонтакте"),
)

GENERIC = PipelineTemplate(
    key="generic",
    title=B("Общая воронка", "Generic funnel"),
    pipeline=B("Продажи", "Sales"),
    stages=(
        B("Заявка", "Lead"),
        B("Квалификация", "Qualified"),
        B("Предложение", "Proposal"),
        B("Оплата", "Won"),
    ),
    loss_reasons=COMMON_REASONS,
    sources=(),
)

TEMPLATES: dict[str, PipelineTemplate] = {t.key: t for t in (FURNITURE, GENERIC)}


def resolve_template(key: str) -> PipelineTemplate:
    try:
        return TEMPLATES[key]
    except KeyError:
        raise InvalidValue(field="--template", value=key, hint="one of " + ", ".join(TEMPLATES)) from None
