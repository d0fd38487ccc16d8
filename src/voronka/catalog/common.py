"""Small types the catalogue and the templates share."""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True)
class Bilingual:
    ru: str
    en: str

    def in_lang(self, lang: str) -> str:
        return self.ru if lang == "ru" else self.en


class Industry(enum.StrEnum):
    """The lesson's six groups of CRMs."""

    UNIVERSAL = "universal"
    BEAUTY_MEDICINE = "beauty_medicine"
    AUTO = "auto"
    RETAIL = "retail"
    FITNESS = "fitness"
    RESTAURANT = "restaurant"
