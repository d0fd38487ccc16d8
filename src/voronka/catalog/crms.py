"""The lesson's CRM catalogue and the advice that picks from it.

What voronka can do with each CRM is decided from the importer and connector registries at run
time, never from the data file, so the catalogue cannot promise what is not built.
"""

from __future__ import annotations

import enum
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

from voronka.catalog.common import Bilingual, Industry
from voronka.errors import InvalidValue
from voronka.i18n import Message


class Feature(enum.StrEnum):
    BOOKING = "booking"
    WAREHOUSE = "warehouse"
    TELEPHONY = "telephony"
    API = "api"


class Support(enum.StrEnum):
    """What voronka can do with a CRM's data today."""

    EXPORT_IMPORT = "export_import"
    API_SYNC = "api_sync"


@dataclass(frozen=True)
class CrmEntry:
    key: str
    name: str
    site: str
    group: Industry
    features: frozenset[Feature]
    purpose: Bilingual
    importer: str | None = None
    connector: str | None = None

    def support(self) -> frozenset[Support]:
        from voronka.ingest.connectors import CONNECTORS
        from voronka.ingest.importers import IMPORTERS

        found = set()
        if self.importer and self.importer in IMPORTERS:
            found.add(Support.EXPORT_IMPORT)
        if self.connector and self.connector in CONNECTORS:
            found.add(Support.API_SYNC)
        return frozenset(found)


@cache
def catalogue() -> tuple[CrmEntry, ...]:
    """Every CRM of the lesson, in the lesson's order."""
    text = resources.files(__package__).joinpath("crms.toml").read_text(encoding="utf-8")
    return tuple(
        CrmEntry(
            key=item["key"],
            name=item["name"],
            site=item["site"],
            group=Industry(item["group"]),
            features=frozenset(Feature(f) for f in item.get("features", ())),
            purpose=Bilingual(ru=item["for_ru"], en=item["for_en"]),
            importer=item.get("importer"),
            connector=item.get("connector"),
        )
        for item in tomllib.loads(text)["crm"]
    )


def parse_industry(value: str) -> Industry:
    """An industry group, or the group of an industry template (``beauty`` → beauty and medicine)."""
    from voronka.catalog.templates import TEMPLATES

    if value in TEMPLATES:
        return TEMPLATES[value].industry
    try:
        return Industry(value)
    except ValueError:
        hint = "one of " + ", ".join(Industry) + " or a template key"
        raise InvalidValue(field="--industry", value=value, hint=hint) from None


def parse_features(values: Sequence[str]) -> frozenset[Feature]:
    try:
        return frozenset(Feature(v) for v in values)
    except ValueError:
        wrong = next(v for v in values if v not in set(Feature))
        raise InvalidValue(field="--need", value=wrong, hint="one of " + ", ".join(Feature)) from None


def crms_for(industry: Industry | None = None) -> tuple[CrmEntry, ...]:
    return tuple(c for c in catalogue() if industry is None or c.group is industry)


@dataclass(frozen=True)
class Need:
    """What a business asks of a CRM."""

    industry: Industry | None = None
    team_size: int | None = None
    features: frozenset[Feature] = frozenset()


@dataclass(frozen=True)
class Suggestion:
    crm: CrmEntry
    score: int
    reasons: tuple[Message, ...]


LARGE_TEAM = 15
SOLO_TEAM = 3
_PROCESS_CRMS = frozenset({"bitrix24", "elma", "megaplan"})


def recommend(need: Need, limit: int = 5) -> list[Suggestion]:
    """The CRMs that fit ``need`` best, each with the reasons why (and what it lacks)."""
    suggestions = [_score(entry, need) for entry in catalogue()]
    ranked = sorted(enumerate(suggestions), key=lambda pair: (_tier(pair[1].crm, need), -pair[1].score, pair[0]))
    return [s for _, s in ranked if s.score > 0][:limit]


def _tier(entry: CrmEntry, need: Need) -> int:
    """The industry's own CRMs first, then the universal ones, then other industries' (whatever their
    score: a beauty CRM with an API is no answer for a car service)."""
    if need.industry is None or entry.group is need.industry:
        return 0
    return 1 if entry.group is Industry.UNIVERSAL else 2


def _score(entry: CrmEntry, need: Need) -> Suggestion:
    score, reasons = 0, []
    if need.industry is not None and entry.group is need.industry:
        score += 3
        reasons.append(Message("crm.reason_industry", {"group": Message(f"crm.group_{entry.group.value}")}))
    elif entry.group is Industry.UNIVERSAL:
        score += 1
        reasons.append(Message("crm.reason_universal"))
    for feature in sorted(need.features):
        if feature in entry.features:
            score += 2
            reasons.append(Message("crm.reason_has", {"feature": Message(f"crm.feature_{feature.value}")}))
        else:  # the lesson does not mention it: unknown, not absent, so it costs nothing
            reasons.append(Message("crm.reason_lacks", {"feature": Message(f"crm.feature_{feature.value}")}))
    if need.team_size is not None:
        if need.team_size >= LARGE_TEAM and entry.key in _PROCESS_CRMS:
            score += 1
            reasons.append(Message("crm.reason_large_team"))
        elif need.team_size <= SOLO_TEAM and entry.group is not Industry.UNIVERSAL and entry.group is need.industry:
            score += 1
            reasons.append(Message("crm.reason_small_team"))
    if entry.support():
        score += 1
        reasons.append(Message("crm.reason_voronka"))
    return Suggestion(entry, score, tuple(reasons))
