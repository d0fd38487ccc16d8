"""The docs keep up with the code: every command, option and setting is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer.main

from voronka.cli import app
from voronka.config import Settings

ROOT = Path(__file__).parent.parent
CLI_DOC = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")


def _commands() -> list[tuple[str, object]]:
    root = typer.main.get_command(app)
    found: list[tuple[str, object]] = [("voronka", root)]
    stack: list[tuple[str, object]] = [("voronka", root)]
    while stack:
        path, command = stack.pop()
        for name, sub in getattr(command, "commands", {}).items():
            found.append((f"{path} {name}", sub))
            stack.append((f"{path} {name}", sub))
    return found


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", CLI_DOC, flags=re.M | re.S)
    assert match, f"docs/cli.md has no section '## {title}'"
    return match.group(1)


@pytest.mark.parametrize(
    ("path", "command"), _commands(), ids=lambda value: str(value) if isinstance(value, str) else ""
)
def test_every_command_and_option_is_documented(path: str, command: object) -> None:
    if getattr(command, "commands", None) and path != "voronka":
        return  # a group such as "voronka import" is documented through its commands
    assert getattr(command, "help", None), f"{path} has no help text"
    section = _section(path)
    for parameter in getattr(command, "params", []):
        names = [n for n in parameter.opts if n.startswith("--")] or [parameter.name.upper()]
        assert any(f"`{name}`" in section for name in names), f"{path}: {names} is not documented"


def test_every_setting_is_documented() -> None:
    settings_doc = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    for name in Settings.model_fields:
        assert f"`VORONKA_{name.upper()}`" in settings_doc, name


def test_readme_quick_start_commands_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for script in ("scripts/demo.sh", "scripts/test.sh"):
        assert script in readme
        assert (ROOT / script).is_file()
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
