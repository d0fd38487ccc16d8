"""What ``voronka connect KIND`` reads, from a connector's declared form (no CLI, no database)."""

from __future__ import annotations

from typing import Any

import pytest

from voronka.ingest.connectors import SERVICES
from voronka.ingest.connectors.form import Secret, command_name, fill, parameter_name


def _fill(kind: str, options: dict[str, Any]) -> tuple[Any, list[str]]:
    asked: list[str] = []

    def read(secret: Secret, variable: str | None) -> str:
        asked.append(secret.key)
        return f"{secret.key}-from-{variable or 'prompt'}"

    connector = SERVICES[kind]
    return fill(connector.form, connector.base_url, options, read), asked


def test_a_long_lived_token_is_asked_for_and_the_rate_kept() -> None:
    filled, asked = _fill("amocrm", {"address": "shop", "token": "AMO", "requests_per_second": 0.0})
    assert asked == ["token"]
    assert filled.address == "shop"
    assert filled.secrets == {"token": "token-from-AMO"}
    assert filled.settings == {"requests_per_second": 0.0}


def test_oauth_asks_for_its_secret_and_code_instead_of_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    from voronka.ingest.connectors import amocrm

    exchanged: list[tuple[str, dict[str, str]]] = []
    monkeypatch.setattr(amocrm, "exchange_code", lambda url, oauth: exchanged.append((url, dict(oauth))) or {"x": "y"})
    filled, asked = _fill("amocrm", {"address": "shop", "client_id": "id-1", "redirect_uri": "https://r"})
    assert asked == ["client_secret", "code"]
    assert exchanged == [
        (
            "https://shop.amocrm.ru",
            {"client_id": "id-1", "client_secret": "client_secret-from-prompt", "code": "code-from-prompt",
             "redirect_uri": "https://r"},
        )
    ]  # fmt: skip
    assert filled.secrets == {"x": "y"}
    assert filled.settings == {}  # the client id and redirect URI went to the secrets, not the database


def test_bitrix24s_webhook_url_is_the_address_and_its_application_token_optional() -> None:
    filled, asked = _fill("bitrix24", {"webhook_url": None})
    assert asked == ["webhook_url"]
    assert filled.address == "webhook_url-from-prompt"
    filled, asked = _fill("bitrix24", {"webhook_url": "B24", "application_token": "APP"})
    assert asked == ["webhook_url", "application_token"]


def test_yandex_direct_maps_sources_and_keeps_no_rate_unless_given() -> None:
    options = {"address": "https://api.direct.yandex.com", "sources": ["101=Яндекс Поиск"], "exchange_rate": None}
    filled, _ = _fill("yandex_direct", options)
    assert filled.settings == {"sources": {"101": "Яндекс Поиск"}}
    filled, _ = _fill("yandex_direct", {**options, "sources": None, "exchange_rate": ["kzt=0,19"]})
    assert filled.settings == {"sources": {}, "exchange_rate": {"KZT": "0.19"}}


def test_names() -> None:
    assert command_name("yandex_direct") == "yandex-direct"
    assert parameter_name("--client-secret-env") == "client_secret_env"
    assert parameter_name("COMPANY") == "company"
