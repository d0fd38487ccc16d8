"""Commands that load when they run.

Building every command for Typer means importing its module and reading its signature: for the
fifty commands that was a quarter of a second before any of them did anything. The top level now
knows its commands by a table (``voronka.cli.app``) and builds only the one that is asked for;
``voronka --help`` lists them from the table's summaries, without importing a command module.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any, ClassVar

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

from voronka.i18n import detect_lang, help_texts

PACKAGE = "voronka.cli"


def command_group(help: str, *, no_args_is_help: bool = True) -> typer.Typer:
    """A group of subcommands with plain help, like the top level (see ``voronka.cli.app``)."""
    return typer.Typer(help=help, no_args_is_help=no_args_is_help, rich_markup_mode=None)


@dataclass(frozen=True)
class Command:
    """A top-level command: its function ``module:function`` under ``voronka.cli``, and the line
    ``voronka --help`` shows for it — the first paragraph of the function's docstring (a test holds
    them equal)."""

    name: str
    target: str
    summary: str

    def build(self, wrap: Callable[[Any], Any]) -> Any:
        single = typer.Typer(rich_markup_mode=None, add_completion=False)
        single.command(self.name)(wrap(_load(self.target)))
        return typer.main.get_command(single)


@dataclass(frozen=True)
class Group:
    """A group of subcommands, all in one module; ``callback`` runs when none is named."""

    name: str
    help: str
    module: str
    commands: tuple[tuple[str, str], ...]
    callback: str | None = None
    generated: str | None = None
    """A function (``module:function``) giving more ``(name, function)`` pairs, listed first: commands
    built from a registry (``voronka connect KIND`` from the connectors')."""

    @property
    def summary(self) -> str:
        return self.help

    def build(self, wrap: Callable[[Any], Any]) -> Any:
        group = command_group(self.help, no_args_is_help=self.callback is None)
        if self.callback is not None:
            group.callback(invoke_without_command=True)(wrap(_load(f"{self.module}:{self.callback}")))
        made = _load(f"{self.module}:{self.generated}")() if self.generated is not None else []
        for name, function in made:
            group.command(name)(wrap(function))
        for name, function in self.commands:
            group.command(name)(wrap(_load(f"{self.module}:{function}")))
        built = typer.main.get_group(group)
        built.name = self.name
        return built


Entry = Command | Group


def _load(target: str) -> Any:
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(f"{PACKAGE}.{module}"), attribute)


class _Commands(MutableMapping[str, Any]):
    """The group's commands by name, each built on first use."""

    def __init__(self, entries: tuple[Entry, ...], wrap: Callable[[Any], Any]) -> None:
        self._entries = {entry.name: entry for entry in entries}
        self._built: dict[str, Any] = {}
        self._wrap = wrap

    def __getitem__(self, name: str) -> Any:
        if name not in self._built:
            self._built[name] = self._entries[name].build(self._wrap)
        return self._built[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        self._entries.pop(name, None)
        self._built.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        yield from self._entries
        yield from (name for name in self._built if name not in self._entries)

    def __len__(self) -> int:
        return len(set(self._entries) | set(self._built))

    def summary(self, name: str, texts: dict[str, str]) -> str:
        entry = self._entries.get(name)
        summary = entry.summary if entry is not None else str(self[name].get_short_help_str(10_000))
        return texts.get(summary, summary)


class LazyGroup(TyperGroup):
    """The top level: a subclass sets ``entries`` and may override ``wrap`` (applied to every
    command function); the commands Typer hands over (none) are replaced by the lazy table."""

    entries: ClassVar[tuple[Entry, ...]] = ()

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _Commands(self.entries, self.wrap)

    @staticmethod
    def wrap(function: Any) -> Any:
        return function

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _translate(command, help_texts(help_language(ctx)))
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _translate(self, help_texts(help_language(ctx)), deep=False)  # its commands: format_commands
        super().format_help(ctx, formatter)

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)  # Typer's reads every (name, command) pair, building them all

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """As Typer lists commands, but from the table's summaries: no command module is loaded."""
        commands = self.commands
        assert isinstance(commands, _Commands)
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        texts = help_texts(help_language(ctx))
        rows = [
            (name, TyperCommand(name, help=commands.summary(name, texts)).get_short_help_str(limit)) for name in names
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def help_language(ctx: Any) -> str:
    """The language of help: ``--lang`` when given before ``--help`` (both are eager, so they are
    read in the order typed), else the environment's (``VORONKA_LANG``, the locale)."""
    return detect_lang(ctx.find_root().params.get("lang"))


def _translate(command: Any, texts: dict[str, str], *, deep: bool = True) -> None:
    """Put ``command``'s help texts (its own, its options', and its subcommands' when ``deep``) into
    the language of ``texts`` (``voronka.i18n.help_texts``); a text without a translation stays."""
    if not texts:
        return
    if command.help:
        command.help = texts.get(command.help, command.help)
    for param in command.params:
        if getattr(param, "help", None):
            param.help = texts.get(param.help, param.help)
    if deep:
        for sub in getattr(command, "commands", {}).values():
            _translate(sub, texts)
