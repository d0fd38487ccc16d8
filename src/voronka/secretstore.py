"""The secrets file: CRM tokens, the Telegram bot token, the SMTP password, webhook signing keys.

A JSON file readable by its owner only (0600), outside the database, so a copy of ``voronka.db`` or a
dump gives no access to anything. Each holder keeps its secrets under a reference of its own.
Tokens that only need to be recognised (webhook tokens, one-time codes) are kept as SHA-256 hashes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from voronka.errors import InvalidValue


@dataclass(frozen=True)
class SecretStore:
    path: Path

    def _load(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            raise InvalidValue(field="secrets file", value=str(self.path), hint="a JSON file voronka wrote") from None
        return data if isinstance(data, dict) else {}

    def _save(self, data: Mapping[str, Mapping[str, str]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(data, handle, ensure_ascii=False, indent=1)
        os.replace(temporary, self.path)

    def get(self, ref: str) -> dict[str, str]:
        return dict(self._load().get(ref, {}))

    def put(self, ref: str, values: Mapping[str, str]) -> None:
        data = self._load()
        data[ref] = {**data.get(ref, {}), **values}
        self._save(data)

    def remove(self, ref: str) -> None:
        data = self._load()
        if data.pop(ref, None) is not None:
            self._save(data)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
