"""/quota (everyone's own use), and the admin commands: /setquota, /quota <user>, /ban, /unban, /stats. An
admin's target is a user id, or the author of the message the command replies to."""

from __future__ import annotations

import re

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.admin import Administration, Stats
from bot.config import QUOTA_KINDS
from bot.core.actors import Actor
from bot.core.errors import Refusal
from bot.core.i18n import _, __
from bot.quotas import QuotaLine, Quotas
from bot.telegram.context import replied_message
from bot.telegram.text import escape

SETQUOTA_USAGE = Refusal(
    __(
        "Usage: /setquota <user_id> <kind|all> <limit> (kinds: chat, voice, vision, edit, draw, imagine, search; "
        "limit -1 = unlimited, 0 = none), or reply to the user's message with /setquota <kind|all> <limit>"
    )
)
QUOTA_USAGE = Refusal(__("Usage: /quota for your own use, or /quota <user_id> (admins)"))
BAN_USAGE = Refusal(__("Usage: /ban <user_id>, or reply to the user's message with /ban"))
UNBAN_USAGE = Refusal(__("Usage: /unban <user_id>, or reply to the user's message with /unban"))

# Telegram user ids are positive and chat ids (a channel's, a group's) negative, all within 52 bits; limits
# beyond a million a day mean a typo.
_USER_ID = re.compile(r"-?[1-9][0-9]{0,15}")  # ASCII digits only: int() would read any script's digits
_LIMIT = re.compile(r"-1|0|[1-9][0-9]{0,6}")
_LARGEST_USER_ID = 2**52


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(set_quota, Command("setquota"))
    router.message.register(show_quota, Command("quota"))
    router.message.register(ban, Command("ban"))
    router.message.register(unban, Command("unban"))
    router.message.register(show_stats, Command("stats"))
    return router


def parse_user_id(text: str) -> int | None:
    """A user id, or a chat's negative id (for messages sent on a chat's behalf)."""
    if not _USER_ID.fullmatch(text):
        return None
    value = int(text)
    return value if abs(value) < _LARGEST_USER_ID else None


def replied_user(message: Message) -> int | None:
    """Who wrote the message replied to: the chat it was sent on behalf of, else the person (never a bot, and
    never the opening message of a forum topic, which every message in the topic seems to answer)."""
    replied = replied_message(message)
    if replied is None:
        return None
    if replied.sender_chat is not None:
        return replied.sender_chat.id
    if replied.from_user is None or replied.from_user.is_bot:
        return None
    return replied.from_user.id


def parse_setquota(args: str, reply_target: int | None) -> tuple[int, list[str], int]:
    """(target, kinds, limit) from `<user_id> <kind|all> <limit>`, or `<kind|all> <limit>` with a reply target."""
    words = args.split()
    if len(words) == 3:
        target = parse_user_id(words[0])
        words = words[1:]
    elif len(words) == 2:
        target = reply_target
    else:
        raise SETQUOTA_USAGE
    kind, limit = words[0].lower(), words[1]
    if target is None or not _LIMIT.fullmatch(limit) or (kind != "all" and kind not in QUOTA_KINDS):
        raise SETQUOTA_USAGE
    return target, list(QUOTA_KINDS) if kind == "all" else [kind], int(limit)


def parse_target(args: str, reply_target: int | None, usage: Refusal) -> int:
    words = args.split()
    if not words and reply_target is not None:
        return reply_target
    if len(words) == 1 and (target := parse_user_id(words[0])) is not None:
        return target
    raise usage


def _who(actor: Actor) -> int:
    """The admin's id; a message sent on behalf of a chat (an anonymous group admin) is nobody's admin command."""
    return 0 if actor.is_chat else actor.id


async def set_quota(message: Message, command: CommandObject, actor: Actor, admin: Administration) -> None:
    admin.require_admin(_who(actor))  # non-admins learn nothing, not even whether their arguments were right
    target, kinds, limit = parse_setquota(command.args or "", replied_user(message))
    await admin.set_quota(_who(actor), target, kinds, limit)
    shown = _("unlimited") if limit == -1 else _("{limit} per day").format(limit=limit)
    await message.answer(
        _("✅ {kinds} limit for <code>{user}</code> is now {shown}.").format(
            kinds=", ".join(kinds), user=target, shown=shown
        )
    )


async def show_quota(
    message: Message, command: CommandObject, actor: Actor, admin: Administration, quotas: Quotas
) -> None:
    """Everyone's own /quota (a chat's, for a message sent on its behalf); with a target, the admins' view."""
    if not (command.args or "").strip():
        lines = await quotas.report(actor.id)
        await message.answer(_("<b>Your use today</b> (resets at 00:00 UTC)") + "\n" + format_quota_table(lines))
        return
    admin.require_admin(_who(actor))
    target = parse_target(command.args or "", None, QUOTA_USAGE)
    name, lines = await admin.quota_of(_who(actor), target)
    if name:
        who = f"{escape(name)} (<code>{target}</code>)"
    else:
        who = _("<code>{user}</code> (not seen yet)").format(user=target)
    await message.answer(_("<b>Use today of {who}</b>").format(who=who) + "\n" + format_quota_table(lines))


async def ban(message: Message, command: CommandObject, actor: Actor, admin: Administration) -> None:
    admin.require_admin(_who(actor))
    target = parse_target(command.args or "", replied_user(message), BAN_USAGE)
    await admin.ban(_who(actor), target)
    await message.answer(_("🚫 <code>{user}</code> is banned: no service from now on.").format(user=target))


async def unban(message: Message, command: CommandObject, actor: Actor, admin: Administration) -> None:
    admin.require_admin(_who(actor))
    target = parse_target(command.args or "", replied_user(message), UNBAN_USAGE)
    await admin.unban(_who(actor), target)
    await message.answer(_("✅ <code>{user}</code> can use the bot again.").format(user=target))


async def show_stats(message: Message, actor: Actor, admin: Administration) -> None:
    await message.answer(format_stats(await admin.stats(_who(actor))))


def format_stats(stats: Stats) -> str:
    kind, today, month = _("kind"), _("today"), _("month")
    tokens_today, tokens_month = _("tokens today"), _("tokens month")
    rows = [f"{kind:<8} {today:>6} {month:>6} {tokens_today:>13} {tokens_month:>13}"]
    for kind in stats.kinds:
        rows.append(
            f"{kind.kind:<8} {kind.today:>6} {kind.month:>6} {kind.tokens_today:>13} {kind.tokens_month:>13}"
        )
    heading = _("<b>Statistics</b> (UTC)\nusers: {users}\nactive today: {active}").format(
        users=stats.users, active=stats.active_today
    )
    return heading + "\n<pre>" + "\n".join(rows) + "</pre>"


def format_quota_table(lines: list[QuotaLine]) -> str:
    """A monospaced table: kind, used, limit ("unlimited" for -1)."""
    width = max(len(line.kind) for line in lines)
    kind, used, limit_heading = _("kind"), _("used"), _("limit")
    rows = [f"{kind.ljust(width)}  {used}  {limit_heading}"]
    for line in lines:
        limit = _("unlimited") if line.unlimited else str(line.limit)
        rows.append(f"{line.kind.ljust(width)}  {str(line.used).rjust(4)}  {limit}")
    return "<pre>" + "\n".join(rows) + "</pre>"
