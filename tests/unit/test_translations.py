"""Every text the bot shows has a Chinese translation, with the same placeholders and tags, compiled and current."""

import gettext
import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from bot.core.i18n import LOCALES_DIR, _, language_of, use_language

PROJECT = Path(__file__).resolve().parents[2]
PO = LOCALES_DIR / "zh" / "LC_MESSAGES" / "messages.po"
MO = PO.with_suffix(".mo")
_PLACEHOLDER = re.compile(r"\{[a-z_]*\}")
_TAG = re.compile(r"</?(?:b|i|u|s|code|pre|a)>")  # the HTML the bot sends


def _texts_in_code() -> set[str]:
    found = set()
    for folder in ("bot", "handlers"):
        for _file, _line, message, _comments, _context in extract_from_dir(
            PROJECT / folder, keywords={"_": None, "__": None}
        ):
            found.add(message)
    return found


@pytest.fixture(scope="module")
def catalog():  # noqa: ANN201
    with PO.open("rb") as file:
        return read_po(file)


def test_every_text_in_the_code_is_translated(catalog) -> None:  # noqa: ANN001
    missing = sorted(text for text in _texts_in_code() if not (catalog.get(text) and catalog.get(text).string))
    assert missing == []


def test_translations_keep_placeholders_and_tags(catalog) -> None:  # noqa: ANN001
    for message in catalog:
        if not message.id:
            continue
        assert sorted(_PLACEHOLDER.findall(message.string)) == sorted(_PLACEHOLDER.findall(message.id)), message.id
        assert sorted(_TAG.findall(message.string)) == sorted(_TAG.findall(message.id)), message.id


def test_the_compiled_catalog_matches_the_source(catalog) -> None:  # noqa: ANN001
    with MO.open("rb") as file:
        compiled = gettext.GNUTranslations(file)
    for message in catalog:
        if message.id:
            assert compiled.gettext(message.id) == message.string, f"messages.mo is stale for {message.id!r}"


def test_texts_follow_the_chosen_language() -> None:
    with use_language("zh"):
        assert _("Describe this image.") == "请描述这张图片。"
    with use_language("en"):
        assert _("Describe this image.") == "Describe this image."
    assert [language_of(code) for code in ("zh-hans", "zh-TW", "ZH", "en", "de", None, "")] == [
        "zh", "zh", "zh", "en", "en", "en", "en",
    ]  # fmt: skip
