"""The columns of the statistics template: days, ISO weeks or months (kept apart from the SQL that
cuts them, so the command line can name them without loading it)."""

from __future__ import annotations

import enum


class Grain(enum.StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
