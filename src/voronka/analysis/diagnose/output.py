"""The diagnosis as JSON (the shape other programs rely on) and as sentences."""

from __future__ import annotations

from typing import Any

from voronka.analysis.diagnose import Diagnosis
from voronka.analysis.diagnose.model import Finding
from voronka.formats import Figure
from voronka.i18n import Translator
from voronka.money import format_minor


def diagnosis_to_dict(diagnosis: Diagnosis, t: Translator) -> dict[str, Any]:
    return {
        "pipeline": diagnosis.pipeline,
        "recent": {"from": diagnosis.recent[0].isoformat(), "to": diagnosis.recent[1].isoformat()},
        "history": {"from": diagnosis.history[0].isoformat(), "to": diagnosis.history[1].isoformat()},
        "currency": diagnosis.currency,
        "findings": [_finding(f, diagnosis.currency, t) for f in diagnosis.findings],
        "notes": [n.render(t.lang) for n in diagnosis.notes],
    }


def _finding(finding: Finding, currency: str, t: Translator) -> dict[str, Any]:
    return {
        "code": finding.code,
        "step": list(finding.step) if finding.step else None,
        "subject": {"kind": finding.subject.kind, "value": finding.subject.value} if finding.subject else None,
        "figure": finding.figure,
        "reference": finding.reference,
        "reference_kind": finding.reference_kind,
        "sample_size": finding.sample_size,
        "probability_worse": finding.probability_worse,
        "confident": finding.confident,
        "money_at_stake_per_month": format_minor(round(finding.money_at_stake_per_month), currency),
        "summary": summary(finding, t),
        "causes": [
            {
                "code": c.code,
                "text": c.text.render(t.lang),
                "evidence": c.evidence.render(t.lang),
                "supported": c.supported,
            }
            for c in finding.causes
        ],
        "hypotheses": [h.render(t.lang) for h in finding.hypotheses],
    }


def summary(finding: Finding, t: Translator) -> str:
    def shown(value: float) -> str:
        return (
            Figure(value).render(t.lang)
            if finding.code == "stalled_deals"
            else Figure(value, 1, share=True).render(t.lang)
        )

    return t(
        f"diagnose.{finding.code}",
        step=f"{finding.step[0]}→{finding.step[1]}" if finding.step else "",
        subject=finding.subject.value if finding.subject else "",
        figure=shown(finding.figure),
        reference=shown(finding.reference),
    )
