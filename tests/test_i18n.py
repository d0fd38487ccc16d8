"""Both catalogues hold the same messages, and every message the code asks for exists."""

from __future__ import annotations

import re
from pathlib import Path

from voronka import errors
from voronka.i18n import Translator, catalogue, detect_lang

SOURCE = Path(__file__).parent.parent / "src" / "voronka"


def test_catalogues_have_the_same_keys_and_placeholders() -> None:
    ru, en = catalogue("ru"), catalogue("en")
    assert set(ru) == set(en)
    for key in en:
        assert set(re.findall(r"{(\w+)}", ru[key])) == set(re.findall(r"{(\w+)}", en[key])), key


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
