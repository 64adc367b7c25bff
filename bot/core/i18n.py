"""Translations, with no aiogram: the texts are written in English in the code; the Chinese catalog is
bot/locales/zh (gettext, compiled with Babel). `_` translates now, in the language of the work at hand; `__` when
the text is shown. The language is a context variable: each update (set by the Telegram edge) and each Midjourney
task (set by its view) speaks its own."""

from __future__ import annotations

import contextlib
import gettext
from collections.abc import Iterator
from contextvars import ContextVar
from functools import cache
from pathlib import Path

from babel.support import LazyProxy, Translations

LOCALES_DIR = Path(__file__).resolve().parents[1] / "locales"
ENGLISH, CHINESE = "en", "zh"
LANGUAGES = {ENGLISH: "English", CHINESE: "中文"}
# What the model is told, so it answers in the user's language.
MODEL_LANGUAGE_NAMES = {ENGLISH: "English", CHINESE: "Simplified Chinese"}

_language: ContextVar[str] = ContextVar("language", default=ENGLISH)


@cache
def _catalog(language: str) -> gettext.NullTranslations:
    return Translations.load(LOCALES_DIR, [language], domain="messages")


def _(text: str) -> str:
    """The text in the current language (English: the text itself)."""
    language = _language.get()
    return text if language == ENGLISH else _catalog(language).gettext(text)


def __(text: str) -> LazyProxy:
    """A text translated each time it is shown (for module-level constants and error classes)."""
    return LazyProxy(_, text, enable_cache=False)


def current_language() -> str:
    """The language of the work at hand (English outside any)."""
    return _language.get()


def language_of(language_code: str | None) -> str:
    """zh-hans, zh-TW, zh… are Chinese; everything else gets English."""
    return CHINESE if (language_code or "").lower().startswith("zh") else ENGLISH


@contextlib.contextmanager
def use_language(language: str) -> Iterator[None]:
    """The block speaks `language`; what it starts (tasks) inherits it."""
    token = _language.set(language if language in LANGUAGES else ENGLISH)
    try:
        yield
    finally:
        _language.reset(token)
