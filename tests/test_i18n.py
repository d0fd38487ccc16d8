"""Both catalogues hold the same messages, and every message the code asks for exists."""

from __future__ import annotations

import marshal
import os
import re
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from babel import Locale

from voronka import errors
from voronka.formats import Counted
from voronka.i18n import Translator, catalogue, detect_lang, read_catalogue, translate

SOURCE = Path(__file__).parent.parent / "src" / "voronka"


def test_catalogues_have_the_same_keys_and_placeholders() -> None:
    ru, en = catalogue("ru"), catalogue("en")
    assert _messages(ru) == _messages(en)
    for key in _messages(en):
        assert set(re.findall(r"{(\w+)}", ru[key])) == set(re.findall(r"{(\w+)}", en[key])), key


def _messages(messages: dict[str, str]) -> set[str]:
    return {key for key in messages if not key.startswith("count.")}


def test_every_count_has_each_plural_form_of_its_language() -> None:
    """A counted noun has the forms CLDR gives the language for whole numbers, and ``other``:
    Russian one/few/many/other, English one/other; the same nouns in both, each form with ``{n}``."""
    nouns: dict[str, dict[str, set[str]]] = {}
    for lang in ("ru", "en"):
        tags = set(Locale.parse(lang).plural_form.tags) | {"other"}
        for key, text in catalogue(lang).items():
            if key.startswith("count."):
                _, noun, form = key.split(".")
                nouns.setdefault(noun, {}).setdefault(lang, set()).add(form)
                assert "{n}" in text, key
        assert all(forms.get(lang) == tags for forms in nouns.values()), lang
    assert {"deals", "plans"} <= set(nouns)


@pytest.mark.parametrize(
    ("lang", "count", "shown"),
    [
        ("ru", 1, "1 сделка"),
        ("ru", 2, "2 сделки"),
        ("ru", 5, "5 сделок"),
        ("ru", 11, "11 сделок"),
        ("ru", 21, "21 сделка"),
        ("ru", 104, "104 сделки"),
        ("ru", 2951, "2\u00a0951 сделка"),
        ("ru", 0, "0 сделок"),
        ("en", 1, "1 deal"),
        ("en", 0, "0 deals"),
        ("en", 2951, "2,951 deals"),
    ],
)
def test_a_count_takes_the_plural_form_its_number_asks_for(lang: str, count: int, shown: str) -> None:
    expected = {"ru": "Демо-база: demo.db ({}).", "en": "Demo database: demo.db ({})."}[lang].format(shown)
    assert translate("demo.done", lang, db="demo.db", deals=Counted("deals", count)) == expected


def test_every_key_used_in_the_code_exists() -> None:
    used: set[str] = set()
    pattern = re.compile(r"""(?:\bt|translate|Message)\(\s*f?["']([a-z_]+\.[a-z_0-9.]+)["']""")
    for path in SOURCE.rglob("*.py"):
        used.update(pattern.findall(path.read_text(encoding="utf-8")))
    for error in vars(errors).values():
        if isinstance(error, type) and issubclass(error, errors.VoronkaError):
            used.add(error.key)
    missing = sorted(key for key in used if key not in catalogue("en") and "{" not in key)
    assert missing == []
    assert len(used) > 20


def test_language_comes_from_the_locale_unless_given() -> None:
    assert detect_lang(None, {"LANG": "ru_RU.UTF-8"}) == "ru"
    assert detect_lang(None, {"LANG": "en_US.UTF-8"}) == "en"
    assert detect_lang(None, {}) == "en"
    assert detect_lang("ru", {"LANG": "en_US.UTF-8"}) == "ru"
    assert detect_lang("de", {}) == "en"


def test_errors_speak_both_languages() -> None:
    error = errors.PipelineNotFound(name="X", names="A, B")
    assert error.message("en") == "No pipeline called «X». Pipelines: A, B."
    assert error.message("ru") == "Нет воронки «X». Воронки: A, B."
    assert Translator("ru")("funnel.deals") == "Сделок"


@pytest.fixture
def writes_bytecode(monkeypatch: pytest.MonkeyPatch) -> None:
    """As Python runs by default (CI may set PYTHONDONTWRITEBYTECODE for the tests themselves)."""
    monkeypatch.setattr(sys, "dont_write_bytecode", False)


def _copy_of(tmp_path: Path, lang: str = "ru") -> Path:
    source = tmp_path / f"{lang}.toml"
    source.write_text((SOURCE / "i18n" / f"{lang}.toml").read_text(encoding="utf-8"), encoding="utf-8")
    return source


def _compiled(source: Path) -> Path:
    return source.parent / "__pycache__" / f"{source.name}.{sys.implementation.cache_tag}.marshal"


@pytest.mark.usefixtures("writes_bytecode")
def test_a_catalogue_is_read_from_its_compiled_copy_while_the_file_is_unchanged(tmp_path: Path) -> None:
    """Parsing the TOML took 8 ms of every command; a compiled copy, checked against the file's size
    and modification time as Python checks its bytecode, takes under one."""
    source = _copy_of(tmp_path)
    first = read_catalogue(source)
    assert first == catalogue("ru")
    stamp, messages = marshal.loads(_compiled(source).read_bytes())
    assert messages == first
    # The copy is what is read next: a copy with the same stamp and other words is believed.
    _compiled(source).write_bytes(marshal.dumps((stamp, {"greeting": "из копии"})))
    assert read_catalogue(source) == {"greeting": "из копии"}
    # An edited file makes the copy stale: parsed again and the copy made again.
    source.write_text('[greeting]\ntext = "новый"\n', encoding="utf-8")
    assert read_catalogue(source) == {"greeting.text": "новый"}
    assert marshal.loads(_compiled(source).read_bytes())[1] == {"greeting.text": "новый"}


@pytest.mark.usefixtures("writes_bytecode")
def test_a_damaged_or_unwritable_copy_only_costs_the_parse(tmp_path: Path) -> None:
    source = _copy_of(tmp_path)
    read_catalogue(source)
    _compiled(source).write_bytes(b"\x00not marshal")
    assert read_catalogue(source) == catalogue("ru")
    assert marshal.loads(_compiled(source).read_bytes())[1] == catalogue("ru")
    # A folder where the copy cannot be made (a file stands in the way of __pycache__).
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    elsewhere = _copy_of(blocked, "en")
    (blocked / "__pycache__").write_text("not a folder")
    assert read_catalogue(elsewhere) == catalogue("en")
    assert sorted(p.name for p in blocked.iterdir()) == ["__pycache__", "en.toml"]


def test_no_copy_is_written_where_bytecode_is_not(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    source = _copy_of(tmp_path, "en")
    assert read_catalogue(source) == catalogue("en")
    assert not _compiled(source).exists()


@pytest.mark.usefixtures("writes_bytecode")
def test_two_threads_making_the_copy_at_once_both_get_the_messages(tmp_path: Path) -> None:
    source = _copy_of(tmp_path)
    barrier = threading.Barrier(2)

    def read() -> dict[str, str]:
        barrier.wait()
        return read_catalogue(source)

    with ThreadPoolExecutor(max_workers=2) as pool:
        both = list(pool.map(lambda _: read(), range(2)))
    assert both[0] == both[1] == catalogue("ru")
    assert marshal.loads(_compiled(source).read_bytes())[1] == catalogue("ru")
    assert [p.name for p in _compiled(source).parent.iterdir()] == [_compiled(source).name]


@pytest.mark.parametrize(
    ("lang", "counted", "shown"),
    [
        ("ru", Counted("sales", 12.3, digits=1), "12,3 продажи"),
        ("ru", Counted("sales", 5, digits=1), "5,0 продажи"),
        ("ru", Counted("leads", 21.4), "21 заявка"),
        ("ru", Counted("days", 3), "3 дня"),
        ("en", Counted("sales", 1, digits=1), "1.0 sales"),
        ("en", Counted("leads", 1), "1 lead"),
        ("en", Counted("daily_rows", 1), "1 row of daily counts"),
    ],
)
def test_a_fraction_takes_the_form_of_the_number_as_written(lang: str, counted: Counted, shown: str) -> None:
    """CLDR picks the form by the number as it is shown: a decimal is «other» (12,3 продажи)."""
    assert counted.render(lang) == shown


@pytest.mark.usefixtures("writes_bytecode")
def test_an_edit_that_keeps_the_size_and_time_is_read_all_the_same(tmp_path: Path) -> None:
    """``cp -p``, tar and package builds keep a file's time: the copy is checked against its bytes."""
    source = tmp_path / "ru.toml"
    source.write_text('[audit]\ntitle = "Гигиена"\n', encoding="utf-8")
    assert read_catalogue(source) == {"audit.title": "Гигиена"}
    before = source.stat()
    source.write_text('[audit]\ntitle = "ГИГИЕНА"\n', encoding="utf-8")
    os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert source.stat().st_size == before.st_size
    assert read_catalogue(source) == {"audit.title": "ГИГИЕНА"}


@pytest.mark.usefixtures("writes_bytecode")
def test_the_copy_goes_where_python_puts_bytecode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = tmp_path / "pycache"
    monkeypatch.setattr(sys, "pycache_prefix", str(prefix))
    (tmp_path / "package").mkdir()
    source = _copy_of(tmp_path / "package")
    assert read_catalogue(source) == catalogue("ru")
    assert not (source.parent / "__pycache__").exists()
    assert [p.name for p in prefix.rglob("*.marshal")] == [f"ru.toml.{sys.implementation.cache_tag}.marshal"]
