"""The docs keep up with the code: every command, option and setting is documented."""

from __future__ import annotations

import re
from collections.abc import Callable
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
    for name in Settings.names():
        assert f"`VORONKA_{name.upper()}`" in settings_doc, name


def test_readme_quick_start_commands_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for script in ("scripts/demo.sh", "scripts/test.sh"):
        assert script in readme
        assert (ROOT / script).is_file()
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchors(markdown: str) -> set[str]:
    """GitHub's anchors: headings lower-cased, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", markdown, flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_link_resolves(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    for target in LINK.findall(text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        resolved = (doc.parent / path).resolve() if path else doc
        assert resolved.exists(), f"{doc.name}: {target} does not exist"
        if anchor:
            assert anchor in _anchors(resolved.read_text(encoding="utf-8")), f"{doc.name}: no #{anchor} in {path}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_docs_stand_alone(doc: Path) -> None:
    """Nothing points outside this repository's own files for a rule."""
    text = doc.read_text(encoding="utf-8")
    for outside in ("FUNNEL.md", "CONTRACT.md", "DIAGNOSTICS.md", "STATS-TEMPLATE.md", "shared/"):
        assert outside not in text, f"{doc.name} points to {outside}"


def test_readme_sample_is_the_demos_output(tmp_path: Path, fill_demo: Callable[..., None]) -> None:
    import datetime as dt

    from typer.testing import CliRunner

    from voronka.demo import DemoOptions

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"```\n\$ \.venv/bin/voronka --lang ru funnel\n(.*?)```", readme, flags=re.S)
    assert match, "the README has no sample of `voronka --lang ru funnel`"
    sample = match.group(1).rstrip("\n").splitlines()
    date = re.search(r"`--today (\d{4}-\d\d-\d\d)`\s+reproduces them", readme)
    assert date, "the README says which day reproduces its sample"
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    fill_demo(url, DemoOptions(today=dt.date.fromisoformat(date.group(1))), "Europe/Moscow")
    result = CliRunner().invoke(app, ["--db", url, "--lang", "ru", "funnel"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.stderr
    printed = [line.rstrip() for line in result.stdout.rstrip("\n").splitlines()]
    # The last line explains the view and rule at length; the README shortens it with "…".
    assert printed[: len(sample) - 1] == sample[:-1]
    assert printed[len(sample) - 1].startswith(sample[-1].rstrip("…").rstrip())


def test_the_readmes_library_snippet_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's "Use it as a library" snippet, run as written against a small demo database, prints
    the funnel; and every name the front door offers is there, loaded only when asked for."""
    import contextlib
    import io
    import subprocess
    import sys

    import voronka

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Use it as a library", 1)[1]
    snippet = re.search(r"```python\n(.*?)```", section, re.S)
    assert snippet is not None
    monkeypatch.chdir(tmp_path)
    from voronka.crm.accounts import default_account
    from voronka.db import open_database, session_scope
    from voronka.demo import DemoOptions, build_demo

    with session_scope(open_database("sqlite:///voronka.db")) as session:
        build_demo(session=session, account=default_account(session=session), options=DemoOptions(leads=200, seed=1))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(snippet.group(1), "README.md", "exec"), {})
    from sqlalchemy import func, select

    from voronka.models import Deal

    with session_scope(open_database("sqlite:///voronka.db")) as session:
        deals = session.scalar(select(func.count()).select_from(Deal))
    assert printed.getvalue().startswith(f"{deals} [None, 0.")  # the deals, then each step's conversion
    assert sorted(voronka.__all__) == sorted(voronka.PUBLIC)
    for name in voronka.__all__:
        assert getattr(voronka, name) is not None
    probe = "import sys, voronka; print(sorted(m for m in sys.modules if m.startswith('voronka')))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "['voronka']"  # importing the front door loads nothing behind it


def test_the_architecture_doc_names_the_kernel_and_registries_that_exist() -> None:
    """docs/architecture.md's kernel is the import contract's, and each registry its "where a new
    capability goes" table names is there, in the module it names."""
    import importlib
    import tomllib

    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    diagram = text.split("```", 2)[1]
    kernel_lines = diagram.split("kernel", 1)[1].split("\n")  # the last layer: the diagram's end
    documented = {word.removeprefix("voronka.") for line in kernel_lines for word in line.split()}
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    kernel = next(c for c in contracts["contracts"] if c["id"] == "kernel")
    assert documented == {m.removeprefix("voronka.") for m in kernel["source_modules"]}
    table = text.split("## Where a new capability goes", 1)[1].split("\n\n", 2)[1]
    rows = [line.split("|")[1:-1] for line in table.splitlines()[2:]]
    checked = 0
    for _, place, registered in rows:
        names = re.findall(r"`([A-Z][A-Z_]+)`", registered)
        files = re.findall(r"`((?:voronka/)?[a-z_/]+\.py)`", registered + place)
        for name in names:
            modules = [f.removeprefix("voronka/").removesuffix(".py").replace("/", ".") for f in files]
            found = [m for m in modules if hasattr(importlib.import_module(f"voronka.{m}"), name)]
            assert found, f"{name} is in none of {modules}"
            checked += 1
    assert checked >= 3
