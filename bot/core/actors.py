"""Who a request counts as: the person who sent it, or the chat it was sent on behalf of.

A message sent "as a channel", or by an anonymous group admin, comes `from` one of Telegram's shared service
accounts, with the real sender in `sender_chat`. Counting such messages as that account would give every channel
and anonymous admin everywhere one shared quota, one /cancel and one ban; they count as their chat instead
(bot/telegram/identity.py tells which).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Actor:
    """Whose quota pays, whose ban applies, whose request /cancel stops, whose settings are used."""

    id: int  # a user id, or (is_chat) the chat's negative id
    name: str
    language_code: str | None = None
    is_chat: bool = False
