"""Industry pipeline templates: micro-stages, default loss reasons (each with its cause family),
sources, and the few numbers the demo needs to play the business.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from voronka.catalog.common import Bilingual, Industry
from voronka.crm.accounts import get_or_create_loss_reason, get_or_create_source
from voronka.errors import InvalidValue
from voronka.models import Account, CauseFamily, Pipeline

B = Bilingual
F = CauseFamily


@dataclass(frozen=True)
class Product:
    name: Bilingual
    weight: float
    typical_check: int  # roubles


@dataclass(frozen=True)
class PipelineTemplate:
    key: str
    title: Bilingual
    industry: Industry
    pipeline: Bilingual
    stages: tuple[Bilingual, ...]
    loss_reasons: tuple[tuple[Bilingual, CauseFamily], ...]
    sources: tuple[str, ...]
    products: tuple[Product, ...]

    def stage_names(self, lang: str) -> tuple[str, ...]:
        return tuple(s.in_lang(lang) for s in self.stages)

    def pipeline_name(self, lang: str) -> str:
        return self.pipeline.in_lang(lang)

    def reason_for(self, family: CauseFamily, lang: str) -> str:
        """The template's first loss reason of ``family`` (or its first reason at all)."""
        for reason, reason_family in self.loss_reasons:
            if reason_family is family:
                return reason.in_lang(lang)
        return self.loss_reasons[0][0].in_lang(lang)

    def add_defaults(self, *, session: Session, account: Account, lang: str = "ru") -> None:
        """The template's loss reasons and sources, added to the account if missing."""
        for reason, family in self.loss_reasons:
            get_or_create_loss_reason(session=session, account=account, name=reason.in_lang(lang), family=family)
        for source in self.sources:
            get_or_create_source(session=session, account=account, name=source)


NON_TARGET = (B("Нецелевой", "Not a target client"), F.NON_TARGET)
EXPENSIVE = (B("Дорого", "Too expensive"), F.PRICE)
TIMING = (B("Сроки", "Timing"), F.TIMING)
COMPETITOR = (B("Ушёл к конкуренту", "Went to a competitor"), F.COMPETITOR)
NEED_GONE = (B("Пропала потребность", "Need disappeared"), F.NEED_GONE)
UNREACHABLE = (B("Не дозвонились", "Could not reach"), F.UNREACHABLE)
NO_SHOW = (B("Не пришёл", "Did not show up"), F.NEED_GONE)
COMMON_REASONS = (NON_TARGET, EXPENSIVE, TIMING, COMPETITOR, NEED_GONE, UNREACHABLE)
WEB_SOURCES = ("Яндекс.Директ", "Авито", "Сайт (SEO)", "ВКонтакте", "Рекомендации")

TEMPLATES_LIST: tuple[PipelineTemplate, ...] = (
    PipelineTemplate(
        key="manufacturing",
        title=B(
            "Производство на заказ (мебель — пример из урока)", "Custom manufacturing (furniture, the lesson's example)"
        ),
        industry=Industry.UNIVERSAL,
        pipeline=B("Производство на заказ", "Custom manufacturing"),
        stages=(
            B("Заявка", "Lead"),
            B("Дозвон/квалификация", "Reached / qualified"),
            B("Предварительный расчёт", "Preliminary estimate"),
            B("Точный расчёт", "Precise estimate"),
            B("Договор/оплата", "Contract / payment"),
        ),
        loss_reasons=COMMON_REASONS,
        sources=WEB_SOURCES,
        products=(
            Product(B("Кухня", "Kitchen"), 0.40, 380_000),
            Product(B("Шкаф-купе", "Wardrobe"), 0.30, 120_000),
            Product(B("Гардеробная", "Walk-in closet"), 0.18, 230_000),
            Product(B("Детская", "Children's room"), 0.12, 170_000),
        ),
    ),
    PipelineTemplate(
        key="renovation",
        title=B("Ремонт и строительство", "Renovation and construction"),
        industry=Industry.UNIVERSAL,
        pipeline=B("Ремонт", "Renovation"),
        stages=(
            B("Заявка", "Lead"),
            B("Дозвон/квалификация", "Reached / qualified"),
            B("Выезд на замер", "Site visit"),
            B("Смета отправлена", "Estimate sent"),
            B("Смета согласована", "Estimate agreed"),
            B("Договор и предоплата", "Contract and deposit"),
        ),
        loss_reasons=(*COMMON_REASONS, (B("Не договорились о смете", "No agreement on the estimate"), F.PRICE)),
        sources=("Яндекс.Директ", "Авито", "Профи.ру", "Сайт (SEO)", "Рекомендации"),
        products=(
            Product(B("Квартира под ключ", "Turnkey flat"), 0.5, 900_000),
            Product(B("Санузел", "Bathroom"), 0.3, 250_000),
            Product(B("Кухня", "Kitchen"), 0.2, 300_000),
        ),
    ),
    PipelineTemplate(
        key="beauty",
        title=B("Салон красоты", "Beauty salon"),
        industry=Industry.BEAUTY_MEDICINE,
        pipeline=B("Записи", "Bookings"),
        stages=(
            B("Заявка", "Enquiry"),
            B("Связались", "Contacted"),
            B("Записан", "Booked"),
            B("Запись подтверждена", "Booking confirmed"),
            B("Пришёл и оплатил", "Came and paid"),
        ),
        loss_reasons=(
            NON_TARGET,
            EXPENSIVE,
            (B("Неудобное время", "No convenient time"), F.TIMING),
            COMPETITOR,
            NO_SHOW,
            UNREACHABLE,
        ),
        sources=("Instagram", "ВКонтакте", "Яндекс.Карты", "2ГИС", "Рекомендации"),
        products=(
            Product(B("Стрижка и окрашивание", "Cut and colour"), 0.5, 6_000),
            Product(B("Маникюр", "Manicure"), 0.3, 2_500),
            Product(B("Косметология", "Cosmetology"), 0.2, 8_000),
        ),
    ),
    PipelineTemplate(
        key="clinic",
        title=B("Медицинская клиника", "Medical clinic"),
        industry=Industry.BEAUTY_MEDICINE,
        pipeline=B("Пациенты", "Patients"),
        stages=(
            B("Обращение", "Enquiry"),
            B("Связались", "Contacted"),
            B("Записан на приём", "Appointment booked"),
            B("Пришёл на приём", "Attended"),
            B("План лечения согласован", "Treatment plan agreed"),
            B("Лечение оплачено", "Treatment paid"),
        ),
        loss_reasons=(NON_TARGET, EXPENSIVE, TIMING, COMPETITOR, NO_SHOW, UNREACHABLE),
        sources=("ПроДокторов", "Яндекс.Директ", "Сайт (SEO)", "2ГИС", "Рекомендации"),
        products=(
            Product(B("Стоматология", "Dentistry"), 0.5, 45_000),
            Product(B("Консультация и анализы", "Consultation and tests"), 0.5, 7_000),
        ),
    ),
    PipelineTemplate(
        key="auto_service",
        title=B("Автосервис", "Car service"),
        industry=Industry.AUTO,
        pipeline=B("Автосервис", "Car service"),
        stages=(
            B("Заявка", "Enquiry"),
            B("Связались", "Contacted"),
            B("Записан", "Booked"),
            B("Авто в сервисе, диагностика", "Car in, diagnosed"),
            B("Смета согласована", "Estimate agreed"),
            B("Работы оплачены", "Work paid"),
        ),
        loss_reasons=(*COMMON_REASONS, NO_SHOW),
        sources=("Яндекс.Карты", "Авито", "Drive2", "Сайт (SEO)", "Рекомендации"),
        products=(
            Product(B("ТО", "Scheduled service"), 0.5, 12_000),
            Product(B("Ремонт подвески", "Suspension repair"), 0.3, 28_000),
            Product(B("Кузовной ремонт", "Body repair"), 0.2, 60_000),
        ),
    ),
    PipelineTemplate(
        key="retail",
        title=B("Розница и интернет-магазин", "Retail and e-commerce"),
        industry=Industry.RETAIL,
        pipeline=B("Заказы", "Orders"),
        stages=(
            B("Новый заказ", "New order"),
            B("Подтверждён", "Confirmed"),
            B("Оплачен", "Paid"),
            B("Отправлен", "Shipped"),
            B("Получен", "Delivered"),
        ),
        loss_reasons=(
            NON_TARGET,
            EXPENSIVE,
            (B("Долгая доставка", "Delivery too slow"), F.TIMING),
            COMPETITOR,
            (B("Отказ при получении", "Refused on delivery"), F.NEED_GONE),
            UNREACHABLE,
        ),
        sources=("Яндекс.Директ", "Ozon", "Wildberries", "Сайт (SEO)", "Email-рассылка"),
        products=(Product(B("Заказ", "Order"), 1.0, 4_500),),
    ),
    PipelineTemplate(
        key="fitness",
        title=B("Фитнес-клуб", "Fitness club"),
        industry=Industry.FITNESS,
        pipeline=B("Абонементы", "Memberships"),
        stages=(
            B("Заявка", "Enquiry"),
            B("Связались", "Contacted"),
            B("Записан на пробное", "Trial booked"),
            B("Пришёл на пробное", "Came to the trial"),
            B("Купил абонемент", "Bought a membership"),
        ),
        loss_reasons=(
            NON_TARGET,
            EXPENSIVE,
            (B("Далеко от дома", "Too far from home"), F.OTHER),
            COMPETITOR,
            NO_SHOW,
            UNREACHABLE,
        ),
        sources=("Instagram", "ВКонтакте", "Яндекс.Карты", "Листовки", "Рекомендации"),
        products=(
            Product(B("Годовой абонемент", "Annual membership"), 0.4, 45_000),
            Product(B("Абонемент на 3 месяца", "3-month membership"), 0.6, 15_000),
        ),
    ),
    PipelineTemplate(
        key="restaurant",
        title=B("Ресторан и доставка", "Restaurant and delivery"),
        industry=Industry.RESTAURANT,
        pipeline=B("Заказы и брони", "Orders and bookings"),
        stages=(
            B("Заказ или бронь", "Order or booking"),
            B("Подтверждён", "Confirmed"),
            B("Готовится", "Being prepared"),
            B("Доставлен / гость пришёл", "Delivered / guest arrived"),
            B("Оплачен", "Paid"),
        ),
        loss_reasons=(
            NON_TARGET,
            EXPENSIVE,
            (B("Долго ждать", "Wait too long"), F.TIMING),
            COMPETITOR,
            (B("Отменил", "Cancelled"), F.NEED_GONE),
            UNREACHABLE,
        ),
        sources=("Яндекс.Еда", "Delivery Club", "Сайт", "Телефон", "Яндекс.Карты"),
        products=(Product(B("Заказ", "Order"), 1.0, 2_200),),
    ),
    PipelineTemplate(
        key="b2b",
        title=B("B2B-услуги", "B2B services"),
        industry=Industry.UNIVERSAL,
        pipeline=B("B2B-продажи", "B2B sales"),
        stages=(
            B("Лид", "Lead"),
            B("Квалификация", "Qualified"),
            B("Встреча / демо", "Meeting / demo"),
            B("КП отправлено", "Proposal sent"),
            B("Переговоры", "Negotiation"),
            B("Договор и оплата", "Contract and payment"),
        ),
        loss_reasons=(*COMMON_REASONS, (B("Нет бюджета", "No budget"), F.PRICE)),
        sources=("Холодные звонки", "Сайт (SEO)", "Яндекс.Директ", "Выставки", "Рекомендации"),
        products=(
            Product(B("Годовой контракт", "Annual contract"), 0.4, 600_000),
            Product(B("Проект", "Project"), 0.6, 250_000),
        ),
    ),
    PipelineTemplate(
        key="generic",
        title=B("Общая воронка", "Generic funnel"),
        industry=Industry.UNIVERSAL,
        pipeline=B("Продажи", "Sales"),
        stages=(B("Заявка", "Lead"), B("Квалификация", "Qualified"), B("Предложение", "Proposal"), B("Оплата", "Won")),
        loss_reasons=COMMON_REASONS,
        sources=WEB_SOURCES,
        products=(Product(B("Сделка", "Deal"), 1.0, 50_000),),
    ),
)
TEMPLATES: dict[str, PipelineTemplate] = {t.key: t for t in TEMPLATES_LIST}
DEFAULT_TEMPLATE = "generic"


def resolve_template(key: str) -> PipelineTemplate:
    try:
        return TEMPLATES[key]
    except KeyError:
        raise InvalidValue(field="--template", value=key, hint="one of " + ", ".join(TEMPLATES)) from None


def ensure_a_pipeline(*, session: Session, account: Account, lang: str) -> Pipeline | None:
    """The default template's pipeline for an account that has none yet, as ``voronka init`` makes
    it — for a business that connects only an ad cabinet and reads its statistics; None when the
    account has a pipeline already (a CRM's sync makes its own, taking over an unused one)."""
    from voronka.crm.accounts import create_pipeline, list_pipelines

    if list_pipelines(session=session, account=account):
        return None
    chosen = resolve_template(DEFAULT_TEMPLATE)
    created = create_pipeline(
        session=session, account=account, name=chosen.pipeline_name(lang), stages=list(chosen.stage_names(lang))
    )
    chosen.add_defaults(session=session, account=account, lang=lang)
    return created
