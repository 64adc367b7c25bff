"""The command menus Telegram shows: the user commands for everyone, and the admin commands for each admin."""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import BotCommand, BotCommandScopeChat, BotCommandScopeDefault

log = logging.getLogger(__name__)

USER_COMMANDS = [
    BotCommand(command="imagine", description="Midjourney picture from a prompt"),
    BotCommand(command="draw", description="Draw a picture from a description"),
    BotCommand(command="edit", description="Change a photo (caption or reply)"),
    BotCommand(command="blend", description="Blend 2-5 photos (album caption)"),
    BotCommand(command="seed", description="Seed of a Midjourney picture (reply)"),
    BotCommand(command="quota", description="Your use today"),
    BotCommand(command="reset", description="Forget our conversation"),
    BotCommand(command="cancel", description="Stop the request in progress"),
    BotCommand(command="help", description="What I can do"),
]
ADMIN_COMMANDS = [
    BotCommand(command="setquota", description="<user_id> <kind|all> <limit>"),
    BotCommand(command="ban", description="<user_id>: no service"),
    BotCommand(command="unban", description="<user_id>: service again"),
    BotCommand(command="stats", description="Users, uses and tokens"),
]


async def register_menus(bot: Bot, admin_ids: frozenset[int]) -> None:
    """A failure here (an admin who never opened the bot has no chat yet) costs a menu, not the start-up."""
    try:
        await bot.set_my_commands(USER_COMMANDS, scope=BotCommandScopeDefault())
    except TelegramAPIError as error:
        log.warning("could not set the command menu: %s", type(error).__name__)
    for admin_id in sorted(admin_ids):
        try:
            await bot.set_my_commands(USER_COMMANDS + ADMIN_COMMANDS, scope=BotCommandScopeChat(chat_id=admin_id))
        except TelegramAPIError as error:
            log.warning("could not set the admin menu of %s: %s", admin_id, type(error).__name__)
