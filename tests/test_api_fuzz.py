"""The OpenAPI document, fuzzed by Schemathesis: whatever it sends, the API never answers 500."""

from __future__ import annotations

from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, given, settings
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.builders import Journey, journeys_for
from tests.web_helpers import api_token, make_client, make_user
from voronka.models import Role


def test_no_request_makes_the_api_fail(session: Session, tmp_path: Path) -> None:
    journeys_for(
        session,
        [Journey("2026-03-01 10:00", manager="Анна"), Journey("2026-03-02 10:00", won="2026-03-05 10:00")],
    )
    token = api_token(session, make_user(session, "Owner", Role.OWNER))
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", make_client(engine, tmp_path).app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def call(case: schemathesis.Case) -> None:
            try:
                response = case.call(headers={"Authorization": f"Bearer {token}"})
            except Exception as error:  # the test client re-raises what the app did not handle
                failures.append(f"{case.method} {case.formatted_path} {case.query} {case.body}: {error!r}")
                return
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} → {response.status_code}: {response.text[:200]}")

        call()
    assert failures == [], "\n".join(failures[:5])
