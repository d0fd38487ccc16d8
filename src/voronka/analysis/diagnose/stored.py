"""The dashboard's top findings, kept in the database: the diagnosis job refreshes them every hour,
and a page that finds them missing or older than ``MAX_AGE`` diagnoses once and keeps the result.
Kept in both languages, so every process and every reader sees the same findings."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from voronka.analysis.diagnose import Diagnosis, run_diagnosis
from voronka.analysis.diagnose.output import diagnosis_to_dict
from voronka.db import dialect_insert
from voronka.i18n import LANGUAGES, Translator
from voronka.models import Account, DiagnosisCache, Pipeline
from voronka.timeutil import to_local, utcnow, zone

TOP = 3
MAX_AGE = dt.timedelta(minutes=10)


def keep_top_findings(
    *, session: Session, account: Account, pipeline: Pipeline, diagnosis: Diagnosis, now: dt.datetime
) -> dict[str, list[dict[str, Any]]]:
    top = {lang: diagnosis_to_dict(diagnosis, Translator(lang))["findings"][:TOP] for lang in LANGUAGES}
    values = {"pipeline_id": pipeline.id, "account_id": account.id, "computed_at": now, "findings": top}
    statement = dialect_insert(session, DiagnosisCache).values(values)
    # Two pages diagnosing at once both keep theirs: the later one wins, neither fails.
    session.execute(
        statement.on_conflict_do_update(index_elements=["pipeline_id"], set_={"computed_at": now, "findings": top})
    )
    for kept in [o for o in session.identity_map.values() if isinstance(o, DiagnosisCache)]:
        session.expire(kept)  # read again, not the row as it was
    return top


def top_findings(
    *, session: Session, account: Account, pipeline: Pipeline, lang: str, now: dt.datetime | None = None
) -> list[dict[str, Any]]:
    """The stored top findings in ``lang``; diagnosed now when none are kept or they are stale."""
    now = now or utcnow()
    cached = session.get(DiagnosisCache, pipeline.id)
    if cached is not None and now - cached.computed_at < MAX_AGE:
        return list(cached.findings.get(lang, []))
    today = to_local(now, zone(account.timezone)).date()
    found = run_diagnosis(session=session, account=account, pipeline=pipeline.name, today=today)
    return keep_top_findings(session=session, account=account, pipeline=pipeline, diagnosis=found, now=now)[lang]
