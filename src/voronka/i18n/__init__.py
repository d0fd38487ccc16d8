"""Russian and English message catalogues.

Catalogues are TOML files beside this module; keys are dotted paths (``error.not_found``) and values
are ``str.format`` templates. Both catalogues must hold the same keys (a test checks it).
"""

from __future__ import annotations

import contextlib
import marshal
import os
import sys
import threading
import tomllib
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

LANGUAGES = ("ru", "en")
DEFAULT_LANG = "en"


@cache
def catalogue(lang: str) -> dict[str, str]:
    """All messages of one language, flattened to dotted keys."""
    return _package_file(f"{lang}.toml", _parsed)


def _parsed(text: str) -> dict[str, str]:
    flat: dict[str, str] = {}
    _flatten(tomllib.loads(text), "", flat)
    return flat


def read_catalogue(source: Path) -> dict[str, str]:
    """The messages of one catalogue file, flattened to dotted keys (see ``_compiled``)."""
    return _compiled(source, _parsed)


HELP_FILE = "cli_help.toml"


@cache
def help_texts(lang: str) -> dict[str, str]:
    """The command line's help texts in ``lang``, by their English text (which the code holds):
    empty for English. ``cli_help.toml`` keeps each beside its translation."""
    if lang not in LANGUAGES or lang == DEFAULT_LANG:
        return {}
    return _package_file(HELP_FILE, lambda text: _pairs(text, lang), variant=lang)


def _package_file(name: str, parse: Callable[[str], dict[str, str]], variant: str = "") -> dict[str, str]:
    """What ``parse`` makes of the package's file ``name``, through its compiled copy."""
    beside = Path(__file__).with_name(name)
    if beside.is_file():
        return _compiled(beside, parse, variant)
    # Installed some other way (in a zip): ask the package's resources (3 ms more to load).
    from importlib import resources

    return parse(resources.files(__package__).joinpath(name).read_text(encoding="utf-8"))


def _pairs(text: str, lang: str) -> dict[str, str]:
    return {entry[DEFAULT_LANG]: entry[lang] for entry in tomllib.loads(text)["text"] if entry.get(lang)}


def _compiled(source: Path, parse: Callable[[str], dict[str, str]], variant: str = "") -> dict[str, str]:
    """What ``parse`` makes of ``source``, from a compiled copy beside it when one matches the file
    (as Python keeps its modules' bytecode): parsing the TOML took 0.008 s of every command.

    The copy is named for the Python version (marshal's format is Python's own) and holds the
    length and CRC-32 of the file's bytes it was made from — not its time, which copying with
    ``cp -p``, tar or a package build keeps — so any other file is parsed again and the copy made
    again; so is a damaged copy. It lies where Python puts bytecode (``__pycache__`` beside the
    file, or under ``PYTHONPYCACHEPREFIX``); where that cannot be written to (or bytecode is not
    written) the file is parsed each time. ``variant`` names one of several things made of the
    same file.
    """
    data = source.read_bytes()
    if sys.implementation.cache_tag is None:
        return parse(data.decode("utf-8"))
    stamp = (len(data), zlib.crc32(data))
    name = ".".join(part for part in (source.name, variant, sys.implementation.cache_tag) if part)
    copy = _bytecode_folder(source.parent) / f"{name}.marshal"
    try:
        found = marshal.loads(copy.read_bytes())
        if isinstance(found, tuple) and len(found) == 2 and found[0] == stamp and isinstance(found[1], dict):
            return found[1]
    except (OSError, EOFError, ValueError, TypeError):
        pass
    made = parse(data.decode("utf-8"))
    if not sys.dont_write_bytecode:
        _write_atomically(copy, marshal.dumps((stamp, made)))
    return made


def _bytecode_folder(folder: Path) -> Path:
    """Where Python keeps the bytecode of modules in ``folder``."""
    if sys.pycache_prefix:
        return Path(sys.pycache_prefix).joinpath(*folder.resolve().parts[1:])
    return folder / "__pycache__"


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all (processes and threads may write it at once)."""
    part = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        part.write_bytes(data)
        os.replace(part, path)
    except OSError:
        with contextlib.suppress(OSError):
            part.unlink()


def _flatten(node: dict[str, Any], prefix: str, into: dict[str, str]) -> None:
    for key, value in node.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            _flatten(value, path + ".", into)
        else:
            into[path] = str(value)


@dataclass(frozen=True)
class Message:
    """A message not yet put into words: rendered in whatever language the reader has."""

    key: str
    params: dict[str, Any] = field(default_factory=dict)

    def render(self, lang: str) -> str:
        return translate(self.key, lang, **self.params)

    def dump(self) -> dict[str, Any]:
        """As JSON-ready data (a job's result kept in the database and shown later in any language)."""
        return {"key": self.key, "params": {k: _dumped(v) for k, v in self.params.items()}}

    @classmethod
    def load(cls, data: dict[str, Any]) -> Message:
        params = data.get("params") or {}
        return cls(str(data.get("key", "")), {k: _loaded(v) for k, v in params.items()})


def _dumped(value: Any) -> Any:
    if isinstance(value, Message):
        return {"$message": value.dump()}
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


def _loaded(value: Any) -> Any:
    if isinstance(value, dict) and "$message" in value:
        return Message.load(value["$message"])
    return value


def translate(key: str, lang: str, /, **params: Any) -> str:
    """The message ``key`` in ``lang`` with ``params`` filled in (English if the key is missing).

    Parameters that are ``Message`` objects (or lists of them) are rendered in the same language first.
    """
    messages = catalogue(lang if lang in LANGUAGES else DEFAULT_LANG)
    template = messages.get(key) or catalogue(DEFAULT_LANG).get(key) or key
    if not params:
        return template
    return template.format(**{name: _render(value, lang) for name, value in params.items()})


def _render(value: Any, lang: str) -> Any:
    """Messages (and anything else that renders itself, such as an amount formatted for the reader)
    in the reader's language; a list of messages as one line, separated by «; »."""
    if isinstance(value, Message) or callable(getattr(value, "render", None)):
        return value.render(lang)
    if isinstance(value, list | tuple) and value and all(isinstance(v, Message) for v in value):
        return "; ".join(v.render(lang) for v in value)
    return value


def detect_lang(explicit: str | None = None, environ: dict[str, str] | None = None) -> str:
    """``explicit`` if given, else Russian when the locale says so, else English."""
    if explicit:
        return explicit if explicit in LANGUAGES else DEFAULT_LANG
    env = os.environ if environ is None else environ
    for name in ("VORONKA_LANG", "LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"):
        value = env.get(name, "")
        if value:
            return "ru" if value.lower().startswith("ru") else DEFAULT_LANG
    return DEFAULT_LANG


class Translator:
    """A bound language: ``t("key", **params)``."""

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGUAGES else DEFAULT_LANG

    def __call__(self, key: str, /, **params: Any) -> str:
        return translate(key, self.lang, **params)
