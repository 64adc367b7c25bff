"""Conversation context: which history a message belongs to, and the chat messages sent to the model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.core.i18n import MODEL_LANGUAGE_NAMES, current_language
from storage.history import HistoryEntry, HistoryRepository


@dataclass(frozen=True, slots=True)
class ConversationKey:
    """A conversation is a chat, or one forum topic of a chat (thread 0 when there are no topics)."""

    chat_id: int
    thread_id: int = 0


_SPOKEN = (
    "\nYour answer will be read aloud as a voice message: answer in a few natural spoken sentences, with no "
    "lists, headings, links or formatting."
)


_REMEMBERED = "\nWhat you remember about the person you are talking to (they asked you to):"


class Conversations:
    def __init__(self, history: HistoryRepository, system_prompt: str, turns: int) -> None:
        self._history = history
        self._system_prompt = system_prompt
        self._entries = turns * 2  # a turn is a question and its answer

    async def prompt(
        self,
        key: ConversationKey,
        question: str,
        speaker: str = "",
        image_urls: Sequence[str] = (),
        spoken: bool = False,
        memories: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        """System prompt, the recent history, then the new question (with its images), in the chat-completions
        shape. `spoken`: the answer will be read aloud by a TTS model. `memories`: facts the person asked the bot
        to remember that bear on the question."""
        earlier = await self._history.recent(key.chat_id, key.thread_id, self._entries)
        instructions = self._instructions() + (_SPOKEN if spoken else "")
        if memories:
            instructions += _REMEMBERED + "".join(f"\n- {fact}" for fact in memories)
        messages: list[dict[str, Any]] = [{"role": "system", "content": instructions}]
        messages.extend({"role": entry.role, "content": _spoken_by(entry)} for entry in earlier)
        text = _spoken_by(HistoryEntry("user", question, speaker))
        if image_urls:
            parts: list[dict[str, Any]] = [{"type": "text", "text": text}]
            parts.extend({"type": "image_url", "image_url": {"url": url}} for url in image_urls)
            messages.append({"role": "user", "content": parts})
        else:
            messages.append({"role": "user", "content": text})
        return messages

    def _instructions(self) -> str:
        language = MODEL_LANGUAGE_NAMES[current_language()]
        return (
            f"{self._system_prompt}\nThe user's language is {language}: answer in {language} unless they write "
            "or speak to you in another language."
        )

    async def remember(self, key: ConversationKey, question: str, answer: str, speaker: str = "") -> None:
        await self._history.append_exchange(
            key.chat_id,
            key.thread_id,
            HistoryEntry("user", question, speaker),
            HistoryEntry("assistant", answer),
        )

    async def forget(self, key: ConversationKey) -> None:
        await self._history.clear(key.chat_id, key.thread_id)


def _spoken_by(entry: HistoryEntry) -> str:
    # In a group several people talk to the bot; their names tell the model who said what.
    if entry.role == "user" and entry.speaker:
        return f"{entry.speaker}: {entry.content}"
    return entry.content
