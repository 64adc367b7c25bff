"""The command menus Telegram shows, in English and Chinese: the user commands for everyone, and the admin
commands in addition for each admin."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import BotCommand, BotCommandScopeChat, BotCommandScopeDefault, BotCommandScopeUnion

from bot.core.i18n import CHINESE, ENGLISH, _, use_language

log = logging.getLogger(__name__)


def user_commands() -> list[BotCommand]:
    return [
        BotCommand(command="imagine", description=_("Midjourney picture from a prompt")),
        BotCommand(command="draw", description=_("Draw a picture from a description")),
        BotCommand(command="edit", description=_("Change a photo (caption or reply)")),
        BotCommand(command="blend", description=_("Blend 2-5 photos (album caption)")),
        BotCommand(command="seed", description=_("Seed of a Midjourney picture (reply)")),
        BotCommand(command="search", description=_("Search the web, with sources")),
        BotCommand(command="memory", description=_("What I remember about you")),
        BotCommand(command="forget", description=_("<n|all>: forget what I remember")),
        BotCommand(command="quota", description=_("Your use today")),
        BotCommand(command="settings", description=_("Voice and reply mode")),
        BotCommand(command="model", description=_("Which model answers you")),
        BotCommand(command="lang", description=_("Language: English or 中文")),
        BotCommand(command="reset", description=_("Forget our conversation")),
        BotCommand(command="cancel", description=_("Stop the request in progress")),
        BotCommand(command="help", description=_("What I can do")),
    ]


def admin_commands() -> list[BotCommand]:
    return [
        BotCommand(command="setquota", description=_("<user_id> <kind|all> <limit>")),
        BotCommand(command="ban", description=_("<user_id>: no service")),
        BotCommand(command="unban", description=_("<user_id>: service again")),
        BotCommand(command="stats", description=_("Users, uses and tokens")),
        BotCommand(command="models", description=_("Models in use and their lists")),
        BotCommand(command="setmodel", description=_("<kind> <model,…>: a kind's models")),
    ]


async def register_menus(bot: Bot, admin_ids: frozenset[int]) -> None:
    """English for everyone, Chinese for Chinese-speaking users. The calls go out at once, side by side: the bot
    serves meanwhile, and the menus are up one round trip later rather than one per menu. A failure here (an
    admin who never opened the bot has no chat yet) costs a menu, not the start-up."""
    calls: list[Awaitable[None]] = []
    for language in (ENGLISH, CHINESE):
        code = None if language == ENGLISH else language  # no language_code: the menu for everyone else
        with use_language(language):
            users, admins = user_commands(), user_commands() + admin_commands()
        calls.append(_set_menu(bot, users, BotCommandScopeDefault(), code, "the command menu"))
        calls += [
            _set_menu(bot, admins, BotCommandScopeChat(chat_id=admin_id), code, f"the admin menu of {admin_id}")
            for admin_id in sorted(admin_ids)
        ]
    await asyncio.gather(*calls)


async def _set_menu(
    bot: Bot, commands: list[BotCommand], scope: BotCommandScopeUnion, language_code: str | None, what: str
) -> None:
    try:
        await bot.set_my_commands(commands, scope=scope, language_code=language_code)
    except TelegramAPIError as error:
        log.warning("could not set %s: %s", what, type(error).__name__)
