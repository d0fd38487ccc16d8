"""Fuzz what the OpenAPI document does not describe: every HTML form, every page's query
parameters and the public lead webhook. Hostile values must get an answer below 500."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tests.builders import Journey, journeys_for
from tests.conftest import BACKENDS, _empty_postgres
from tests.web_helpers import log_in, make_client, make_user
from voronka.crm.accounts import default_account, find_pipeline
from voronka.crm.leads import add_lead_form
from voronka.models import Deal, Role

HOSTILE = st.one_of(
    st.sampled_from(["1e400", "9" * 30, "inf", "-inf", "nan", "-1", "0", "", " ", "\x00", "\ud800", "<script>",
                     "'; DROP TABLE deals; --", "=HYPERLINK(1)", "../../etc/passwd", "%00", "ÿ" * 300]),
    st.text(max_size=40),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
)  # fmt: skip
World = tuple[TestClient, str, dict[str, Any]]
SKIP = {"/logout", "/login"}  # logging out or in ends the fuzzing session's login


@pytest.fixture(scope="module", params=BACKENDS)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One logged-in owner's client per backend, shared by the module's tests (a login per example
    would be most of the time)."""
    import shutil

    from voronka.db import make_engine, session_factory

    folder = tmp_path_factory.mktemp("fuzz")
    if request.param == "sqlite":
        shutil.copy(request.getfixturevalue("sqlite_template"), folder / "voronka.db")
        engine: Engine = make_engine(f"sqlite:///{folder / 'voronka.db'}")
    else:
        engine = _empty_postgres(request.getfixturevalue("postgres_url"))
    session: Session = session_factory(engine)()
    journeys_for(session, [Journey("2026-03-01 10:00", manager="Анна", source="Сайт")])
    email = make_user(session, "Owner", Role.OWNER)
    account = default_account(session=session)
    _, token = add_lead_form(session=session, account=account, pipeline=find_pipeline(session=session, account=account),
                             name="Сайт")  # fmt: skip
    session.commit()
    ids = {"deal_id": session.scalar(select(Deal.id)), "token": token}
    session.close()
    client = make_client(engine, folder)
    csrf = log_in(client, email)
    yield client, csrf, ids
    engine.dispose()


def _sendable(text: str) -> str:
    """A form field a client can encode at all (UTF-8 has no lone surrogates)."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _routes(client: TestClient, method: str) -> list[APIRoute]:
    app = client.app
    return [
        r for r in app.routes  # type: ignore[attr-defined]
        if isinstance(r, APIRoute) and method in r.methods and not r.path.startswith(("/api/", "/webhooks/", "/vendor"))
        and r.path not in SKIP
    ]  # fmt: skip


def _path(route: APIRoute, ids: dict[str, Any]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: str(ids.get(m.group(1), 1)), route.path)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(HOSTILE, min_size=8, max_size=8))
def test_every_form_answers_hostile_values_below_500(world: World, values: list[str]) -> None:
    client, csrf, ids = world
    for route in _routes(client, "POST"):
        names = [p.alias for p in route.dependant.body_params]
        data = {name: _sendable(values[i % len(values)]) for i, name in enumerate(names)}
        answer = client.post(_path(route, ids), data={**data, "csrf": csrf}, follow_redirects=False)
        assert answer.status_code < 500, (route.path, data, answer.text[:300])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(HOSTILE, min_size=8, max_size=8))
def test_every_query_parameter_answers_hostile_values_below_500(world: World, values: list[str]) -> None:
    client, _, ids = world
    for route in _routes(client, "GET"):
        names = [p.alias for p in route.dependant.query_params]
        if not names:
            continue
        params = {name: _sendable(values[i % len(values)]) for i, name in enumerate(names)}
        answer = client.get(_path(route, ids), params=params, follow_redirects=False)
        assert answer.status_code < 500, (route.path, params, answer.text[:300])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fields=st.dictionaries(HOSTILE, HOSTILE, max_size=6), as_json=st.booleans())
def test_the_lead_webhook_answers_hostile_payloads_below_500(
    world: World, fields: dict[str, str], as_json: bool
) -> None:
    client, _, ids = world
    url = f"/api/v1/webhooks/leads/{ids['token']}"
    payload = {"name": "Лид", **fields}
    if as_json:  # escaped, so a lone surrogate reaches the server as JSON may carry it
        body = json.dumps(payload).encode()
        answer = client.post(url, content=body, headers={"content-type": "application/json"})
    else:
        answer = client.post(url, data={_sendable(k): _sendable(v) for k, v in payload.items()})
    assert answer.status_code < 500, (payload, answer.text[:300])
