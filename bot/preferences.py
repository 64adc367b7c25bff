"""Personal settings: what each user may choose (voice, reply modes, language, chat model), kept in memory after
first use."""

from __future__ import annotations

from dataclasses import dataclass, replace

from bot.core.changes import Changed, nobody_else
from bot.core.i18n import LANGUAGES
from bot.core.lru import LruCache
from storage.preferences import PreferencesRepository, StoredPreferences

# The built-in voices the spec lists for audio output of chat completions.
VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")
VOICE_REPLIES = ("voice", "text", "both")  # how a voice note is answered
TEXT_REPLIES = ("text", "voice")  # how a typed message is answered: text alone, or spoken too
# Every setting and what may be chosen for it (button presses can be forged: nothing else is stored).
CHOICES: dict[str, tuple[str, ...]] = {
    "voice": VOICES,
    "voice_reply": VOICE_REPLIES,
    "text_reply": TEXT_REPLIES,
    "language": tuple(LANGUAGES),
}


@dataclass(frozen=True, slots=True)
class UserPreferences:
    language: str | None
    voice: str
    voice_reply: str
    text_reply: str
    chat_model: str | None  # picked with /model; None: the chat kind's model in use


PREFERENCES = "preferences"  # the replicas' notice of a person's changed settings; payload: the person's id


# Whose settings are kept in memory: the language middleware asks on every update.
_CACHE_CAPACITY = 10_000


class Preferences:
    def __init__(self, repository: PreferencesRepository, default_voice: str) -> None:
        self._repo = repository
        self._default_voice = default_voice
        self._cache: LruCache[int, StoredPreferences] = LruCache(_CACHE_CAPACITY)
        self.changed: Changed = nobody_else

    def heard(self, payload: str) -> None:
        """A person's settings changed on another replica (or this one): read them again when next needed."""
        self._cache.pop(int(payload))

    async def chosen_language(self, actor_id: int) -> str | None:
        """The language chosen with /lang or /settings; None to follow Telegram's."""
        return (await self._stored(actor_id)).language

    async def of(self, user_id: int) -> UserPreferences:
        stored = await self._stored(user_id)
        return UserPreferences(
            language=stored.language,
            voice=stored.voice or self._default_voice,
            voice_reply=stored.voice_reply,
            text_reply=stored.text_reply,
            chat_model=stored.chat_model,
        )

    async def choose(self, user_id: int, setting: str, value: str) -> None:
        """Store one choice; refuses values that are not on offer."""
        if value not in CHOICES.get(setting, ()):
            raise ValueError(f"{setting}={value!r} is not a choice")
        await self._repo.set(user_id, setting, value)
        self._cache.put(user_id, replace(await self._stored(user_id), **{setting: value}))
        await self.changed(PREFERENCES, str(user_id))

    async def choose_chat_model(self, user_id: int, model: str | None, allowed: list[str]) -> None:
        """Store the chat model picked with /model (None: the default again); refuses one not on offer."""
        if model is not None and model not in allowed:
            raise ValueError(f"chat model {model!r} is not on offer")
        await self._repo.set(user_id, "chat_model", model)
        self._cache.put(user_id, replace(await self._stored(user_id), chat_model=model))
        await self.changed(PREFERENCES, str(user_id))

    async def _stored(self, user_id: int) -> StoredPreferences:
        stored = self._cache.get(user_id)
        if stored is None:
            stored = await self._repo.of(user_id)
            self._cache.put(user_id, stored)
        return stored
