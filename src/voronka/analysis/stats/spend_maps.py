"""Spend maps: how an ad cabinet's cost export becomes spend per source (``voronka spend import
--map``). A map names the columns of the day (or month), the campaign, the source and the amount,
which amount columns are in micro-units, and which source each campaign's cost belongs to. The
canonical spend file (``source``, ``date`` or ``month``, ``amount``) is a map too; the built-in
ones are in ``spend_maps/*.toml``."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from voronka.errors import ImportFailed
from voronka.i18n import Message

SPEND_FIELDS = ("date", "month", "source", "campaign", "amount")
BUILTIN_SPEND_MAPS = ("yandex-direct", "vk-ads")


@dataclass(frozen=True)
class SpendMap:
    name: str
    columns: Mapping[str, tuple[str, ...]]
    micros: frozenset[str] = frozenset()
    """Amount columns given in millionths of the currency (Yandex Direct's API reports)."""
    sources: Mapping[str, str] = field(default_factory=dict)
    """A campaign's name or id → the source its cost belongs to."""

    def with_sources(self, more: Mapping[str, str]) -> SpendMap:
        return replace(self, sources={**self.sources, **more})


CANONICAL_SPEND = SpendMap("spend", {name: (name,) for name in ("date", "month", "source", "amount")})


def builtin_spend_map(name: str) -> SpendMap:
    text = resources.files(__package__).joinpath("spend_maps", f"{name}.toml").read_text(encoding="utf-8")
    return parse_spend_map(tomllib.loads(text), name)


def load_spend_map(path: Path) -> SpendMap:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ImportFailed(reason=Message("import.bad_map", {"file": path.name, "detail": str(error)})) from None
    return parse_spend_map(data, path.stem)


def parse_spend_map(data: Mapping[str, Any], name: str) -> SpendMap:
    columns = data.get("columns") or {}
    unknown = sorted(set(columns) - set(SPEND_FIELDS))
    if unknown or "amount" not in columns or not ({"date", "month"} & set(columns)):
        detail = f"[columns] takes {', '.join(SPEND_FIELDS)}; amount and date or month are needed"
        raise ImportFailed(reason=Message("import.bad_map", {"file": name, "detail": detail}))
    return SpendMap(
        name=str(data.get("name", name)),
        columns={k: (v,) if isinstance(v, str) else tuple(v) for k, v in columns.items()},
        micros=frozenset(str(c).casefold() for c in data.get("micros") or ()),
        sources={str(k): str(v) for k, v in (data.get("sources") or {}).items()},
    )
