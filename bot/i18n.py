"""Translations: the texts are written in English in the code; the Chinese catalog is bot/locales/zh (gettext,
through aiogram's I18n). `_` translates now, in the current update's language; `__` when the text is shown."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from aiogram.types import TelegramObject
from aiogram.utils.i18n import I18n, I18nMiddleware
from babel.support import LazyProxy

LOCALES_DIR = Path(__file__).parent / "locales"
ENGLISH, CHINESE = "en", "zh"
LANGUAGES = {ENGLISH: "English", CHINESE: "中文"}
# What the model is told, so it answers in the user's language.
MODEL_LANGUAGE_NAMES = {ENGLISH: "English", CHINESE: "Simplified Chinese"}


def build_i18n() -> I18n:
    i18n = I18n(path=LOCALES_DIR, default_locale=ENGLISH, domain="messages")
    I18n.set_current(i18n)  # for work outside updates too (the Midjourney tracker), and inherited by its tasks
    return i18n


def _(text: str) -> str:
    """The text in the current language; the English text itself when no translation (or no I18n) is set up."""
    i18n = I18n.get_current(no_error=True)
    return i18n.gettext(text) if i18n is not None else text


def __(text: str) -> LazyProxy:
    """A text translated each time it is shown (for module-level constants and error classes)."""
    return LazyProxy(_, text, enable_cache=False)


def current_language() -> str:
    """The language of the update being handled (English outside one)."""
    i18n = I18n.get_current(no_error=True)
    return i18n.current_locale if i18n is not None else ENGLISH


def language_of(language_code: str | None) -> str:
    """zh-hans, zh-TW, zh… are Chinese; everything else gets English."""
    return CHINESE if (language_code or "").lower().startswith("zh") else ENGLISH


class UserLanguage(I18nMiddleware):
    """The language of an update: the actor's own choice (/lang, /settings), else their Telegram language."""

    def __init__(self, i18n: I18n, chosen: Callable[[int], Awaitable[str | None]]) -> None:
        super().__init__(i18n)
        self._chosen = chosen  # actor id -> the language they chose, if any

    async def get_locale(self, event: TelegramObject, data: dict) -> str:  # type: ignore[override]
        actor = data.get("actor")
        if actor is None:
            return ENGLISH
        return await self._chosen(actor.id) or language_of(actor.language_code)
