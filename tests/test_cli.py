"""The command line: docs/cli.md and docs/json.md, exit codes, and one-line errors in both languages."""

from __future__ import annotations

import csv
import io
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.conftest import DemoCache
from voronka.analysis.funnel.output import dimension_label
from voronka.cli import app
from voronka.demo import DemoOptions
from voronka.i18n import Translator, help_texts

runner = CliRunner()
SOURCE = Path(__file__).parents[1] / "src" / "voronka"


def voronka(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_init_import_funnel_round_trip(db_url: str, tmp_path: Path) -> None:
    code, out, _ = voronka("--db", db_url, "--lang", "en", "init", "--pipeline", "Sales", "--stages", "Lead,Deal,Paid")
    assert code == 0
    assert "Lead → Deal → Paid" in out
    deals = tmp_path / "deals.csv"
    deals.write_text(
        "id,created_at,stage,status,amount,source\n1,2024-01-05,Lead,,,Site\n2,2024-02-05,Paid,won,1000,Site\n"
        "3,2024-02-06,Deal,lost,,Ads\nx,bad-date,Lead,,,\n",
        encoding="utf-8",
    )
    code, out, _ = voronka("--db", db_url, "import", "deals", str(deals), "--format", "json")
    assert code == 0
    report = json.loads(out)
    assert (report["created"], report["rejected"][0]["line"]) == (3, 5)

    code, out, _ = voronka(
        "--db",
        db_url,
        "funnel",
        "--format",
        "json",
        "--by",
        "month",
        "--from",
        "2024-01-01",
        "--to",
        "2024-04-01",
    )
    data = json.loads(out)
    assert (data["deals"], data["won"], data["lost"], data["open"], data["revenue"]) == (
        3,
        1,
        1,
        1,
        "1000.00",
    )
    assert [g["value"] for g in data["groups"]] == ["2024-01", "2024-02", "2024-03"]
    assert data["explanation"].startswith("Cohort view")

    code, out, _ = voronka("--db", db_url, "funnel", "--format", "csv", "--by", "source")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows[0] == {
        "group": "(total)",
        "position": "1",
        "stage": "Lead",
        "reached": "3",
        "conversion": "",
        "conversion_from_start": "1.0",
        "lost": "0",
        "open": "1",
        "dropped": "1",
    }
    assert {r["group"] for r in rows} == {"(total)", "Site", "Ads"}

    code, out, _ = voronka(
        "--db", db_url, "--lang", "ru", "funnel", "--timing", "--view", "period", "--rule", "passage"
    )
    assert code == 0
    assert "Вид за период" in out
    assert "Правило прохождения" in out


def test_dry_run_writes_nothing(db_url: str, tmp_path: Path) -> None:
    voronka("--db", db_url, "init", "--stages", "A,B")
    deals = tmp_path / "d.csv"
    deals.write_text("id,created_at,stage\n1,2024-01-05,A\n", encoding="utf-8")
    code, out, _ = voronka("--db", db_url, "--lang", "en", "import", "deals", str(deals), "--dry-run")
    assert code == 0
    assert "Dry run" in out
    assert "1 created" in out
    _, out, _ = voronka("--db", db_url, "funnel", "--format", "json")
    assert json.loads(out)["deals"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["funnel"], "Error: There is no pipeline yet."),
        (["funnel", "--from", "2024-02-30"], "Error: Cannot read --from «2024-02-30»"),
        (["funnel", "--by", "colour"], "Error: unknown --by value 'colour'"),
        (["import", "deals", "/nonexistent/x.csv"], "Error: There is no pipeline yet."),
    ],
)
def test_bad_input_is_one_line_and_exit_1(db_url: str, args: list[str], message: str) -> None:
    code, _, err = voronka("--db", db_url, "--lang", "en", *args)
    assert code == 1
    assert err.startswith(message)
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_errors_speak_russian(db_url: str) -> None:
    voronka("--db", db_url, "init", "--stages", "A,B")
    code, _, err = voronka("--db", db_url, "--lang", "ru", "funnel", "--pipeline", "Нет такой")
    assert code == 1
    assert err.startswith("Error: Нет воронки «Нет такой»")


def test_bad_file_and_dates_order(db_url: str, tmp_path: Path) -> None:
    voronka("--db", db_url, "init", "--stages", "A,B")
    binary = tmp_path / "x.csv"
    binary.write_bytes(b"\x00\xff" * 100)
    code, _, err = voronka("--db", db_url, "--lang", "en", "import", "deals", str(binary))
    assert code == 1
    assert err.startswith("Error: Nothing was imported: x.csv is not a text table")
    code, _, err = voronka("--db", db_url, "--lang", "en", "funnel", "--from", "2024-03-01", "--to", "2024-03-01")
    assert code == 1
    assert "must be before the end" in err


def test_usage_errors_exit_2(db_url: str) -> None:
    code, _, _ = voronka("--db", db_url, "funnel", "--view", "sideways")
    assert code == 2


def test_unreachable_database_is_a_clear_error() -> None:
    code, _, err = voronka("--db", "postgresql://nobody@127.0.0.1:1/none", "--lang", "en", "funnel")
    assert code == 1
    assert err.startswith("Error: Cannot open the database")


def test_help_lists_every_command() -> None:
    code, out, _ = voronka("--help")
    assert code == 0
    for command in ("init", "import", "funnel", "demo"):
        assert command in out


def test_the_command_table_says_what_each_command_says() -> None:
    """``voronka --help`` is read from the table: each line must be what the loaded command would
    show, and a typo must still be answered with the closest command."""
    import inspect

    import typer.main
    from typer.core import TyperGroup

    from voronka.cli.app import COMMANDS
    from voronka.cli.lazy import Command, _load

    for entry in COMMANDS:
        if isinstance(entry, Command):
            docstring = inspect.getdoc(_load(entry.target)) or ""
            assert entry.summary == " ".join(docstring.split("\n\n")[0].split()), entry.name
    root = typer.main.get_command(app)
    context = root.make_context("voronka", ["--help"], resilient_parsing=True)
    lazy = root.get_help(context)
    assert isinstance(root, TyperGroup)
    formatter = context.make_formatter()
    TyperGroup.format_commands(root, context, formatter)  # builds every command, as Typer would
    assert formatter.getvalue().rstrip() in lazy
    code, _, err = voronka("funel")
    assert code == 2
    assert "Did you mean 'funnel'?" in err


@pytest.mark.parametrize(
    ("by", "lang", "label"),
    [
        ("month", "ru", "Месяц"),
        ("week", "en", "Week"),
        ("manager", "ru", "Менеджер"),
        ("source", "en", "Source"),
        ("field:Изделие", "ru", "Поле «Изделие»"),
    ],
)
def test_a_breakdown_is_named_in_the_readers_language(by: str, lang: str, label: str) -> None:
    assert dimension_label(by, Translator(lang)) == label


def test_report_titles_name_the_breakdown_in_russian(demo_cache: DemoCache) -> None:
    database = f"sqlite:///{demo_cache.file(DemoOptions(leads=60, seed=3), 'UTC')}"
    code, out, _ = voronka("--db", database, "--lang", "ru", "funnel", "--by", "month")
    assert code == 0
    assert "Группа: Месяц" in out
    code, out, _ = voronka("--db", database, "--lang", "ru", "stats", "--by", "manager")
    assert code == 0
    assert "· Менеджер: " in out


def _every_help_text() -> set[str]:
    """Every help text the command line shows, in English: the top level's, each command's and
    group's, their options', and the command table's summaries (every command is built)."""
    import typer.main

    from voronka.cli.app import COMMANDS

    found: set[str] = set()

    def collect(command: Any) -> None:
        found.update(text for text in [command.help, *(getattr(p, "help", None) for p in command.params)] if text)
        for sub in getattr(command, "commands", {}).values():
            collect(sub)

    root = typer.main.get_command(app)
    found.update(text for text in [root.help, *(getattr(p, "help", None) for p in root.params)] if text)
    for entry in COMMANDS:
        found.add(entry.summary)
        collect(root.commands[entry.name])
    return found


def test_every_help_text_has_its_russian_translation(monkeypatch: pytest.MonkeyPatch) -> None:
    """``i18n/cli_help.toml`` holds each help text beside its Russian: none missing, none stale."""
    monkeypatch.setenv("VORONKA_LANG", "en")  # the connectors' forms are built in the reader's language
    entries = tomllib.loads((SOURCE / "i18n" / "cli_help.toml").read_text(encoding="utf-8"))["text"]
    english = [entry["en"] for entry in entries]
    assert len(english) == len(set(english))
    shown = _every_help_text()
    assert sorted(shown - set(english)) == []
    assert sorted(set(english) - shown) == []
    assert [entry["en"] for entry in entries if not entry["ru"].strip()] == []


def test_help_speaks_the_chosen_language() -> None:
    ru = help_texts("ru")
    code, out, _ = voronka("--lang", "ru", "funnel", "--help")
    assert code == 0
    assert ru["Pipeline name (default: the only one)."] in _unwrapped(out)
    code, out, _ = voronka("--lang", "en", "funnel", "--help")
    assert "Pipeline name (default: the only one)." in _unwrapped(out)
    code, out, _ = voronka("--lang", "ru", "--help")
    assert code == 0
    assert ru["Sales funnel you can read: stages, conversions, where and why clients are lost."] in _unwrapped(out)
    assert ru["Users of the web app."] in _unwrapped(out)
    code, out, _ = voronka("--lang", "ru", "hypothesis", "add", "--help")
    assert code == 0
    assert ru["Pipeline name (default: the only one)."] in _unwrapped(out)


def test_help_follows_the_environment_language() -> None:
    result = runner.invoke(app, ["funnel", "--help"], env={"VORONKA_LANG": "ru"})
    assert result.exit_code == 0
    assert help_texts("ru")["First day, ISO (2024-03-01)."] in _unwrapped(result.stdout)


def _unwrapped(text: str) -> str:
    """Help as one line of words: the formatter wraps long texts at the terminal's width."""
    return " ".join(text.split())
