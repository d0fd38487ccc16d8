"""What the diagnosis says: findings, each with its figure, reference, confidence, causes and money."""

from __future__ import annotations

from dataclasses import dataclass, field

from voronka.i18n import Message

CONFIDENT = 0.95
"""A finding this likely to be real is stated as a fact; below it, as something to watch."""
SHOWN = 0.8
MIN_SAMPLE = 30
"""Fewer entries into a step than this: "not enough data yet" instead of a verdict."""


@dataclass(frozen=True)
class Subject:
    kind: str  # manager, source, outgoing_number
    value: str


@dataclass(frozen=True)
class Cause:
    code: str
    text: Message
    evidence: Message
    supported: bool
    """Whether the data speak for this cause (True) or against it (False)."""


@dataclass(frozen=True)
class Finding:
    code: str
    step: tuple[int, int] | None
    subject: Subject | None
    figure: float
    reference: float
    reference_kind: str  # history, team, others
    sample_size: int
    probability_worse: float
    money_at_stake_per_month: float
    """Minor units of the account's currency."""
    causes: tuple[Cause, ...] = ()
    hypotheses: tuple[Message, ...] = field(default_factory=tuple)
    comparisons: int = 1
    """How many such comparisons the rule made: confidence is demanded of them all together."""

    @property
    def confident(self) -> bool:
        return self.probability_worse >= confidence_needed(self.comparisons)


def confidence_needed(comparisons: int) -> float:
    """Bonferroni: with m comparisons each must clear 1 − 0.05 / m for 95 % over all of them."""
    return 1 - (1 - CONFIDENT) / max(comparisons, 1)
