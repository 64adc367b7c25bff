"""/settings (reply voice, how voice notes and texts are answered, language) and /lang, on inline keyboards."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.enums import ChatMemberStatus
from aiogram.exceptions import AiogramError, ClientDecodeError
from aiogram.filters import Command, CommandObject
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot.core.actors import Actor
from bot.core.errors import Refusal
from bot.core.i18n import LANGUAGES, _, __, language_of, use_language
from bot.preferences import CHOICES, Preferences, UserPreferences
from bot.telegram.edits import edited

LANG_USAGE = Refusal(__("Usage: /lang en or /lang zh (or /lang to choose)"))
_LANGUAGE_WORDS = {
    "en": "en",
    "english": "en",
    "英文": "en",
    "zh": "zh",
    "cn": "zh",
    "chinese": "zh",
    "中文": "zh",
}
_MENUS = tuple(CHOICES)


class SettingsPress(CallbackData, prefix="set"):
    menu: str  # main, or the setting whose choices are shown
    value: str = ""  # a choice to store
    owner: int = 0  # whose settings the menu shows: a user, or a chat (negative); 0: the presser's (older menus)

    @classmethod
    def unpack(cls, value: str) -> SettingsPress:
        # Menus sent before the owner was part of the data carry two fields: they show the presser's own settings.
        if value.count(cls.__separator__) == 2:
            value += cls.__separator__ + "0"
        return super().unpack(value)


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(show_settings, Command("settings"))
    router.message.register(choose_language, Command("lang"))
    router.callback_query.register(press, SettingsPress.filter())
    return router


def _mode_name(setting: str, value: str) -> str:
    names = {
        ("voice_reply", "voice"): _("a voice message"),
        ("voice_reply", "text"): _("text"),
        ("voice_reply", "both"): _("voice and text"),
        ("text_reply", "text"): _("text"),
        ("text_reply", "voice"): _("text and voice"),
    }
    return names.get((setting, value), value)


def summary(preferences: UserPreferences, language: str) -> str:
    return "\n".join(
        [
            _("<b>⚙️ Your settings</b>"),
            _("🗣 Reply voice: {voice}").format(voice=preferences.voice),
            _("🎙 Voice notes are answered with {mode}").format(
                mode=_mode_name("voice_reply", preferences.voice_reply)
            ),
            _("💬 Texts are answered with {mode}").format(mode=_mode_name("text_reply", preferences.text_reply)),
            _("🌐 Language: {language}").format(language=LANGUAGES[language]),
        ]
    )


def main_keyboard(owner: int) -> InlineKeyboardMarkup:
    labels = {
        "voice": _("🗣 Voice"),
        "voice_reply": _("🎙 Voice notes"),
        "text_reply": _("💬 Texts"),
        "language": _("🌐 Language"),
    }
    buttons = [
        InlineKeyboardButton(text=labels[menu], callback_data=SettingsPress(menu=menu, owner=owner).pack())
        for menu in _MENUS
    ]
    return InlineKeyboardMarkup(inline_keyboard=[buttons[:2], buttons[2:]])


def choices_keyboard(menu: str, current: str, owner: int) -> InlineKeyboardMarkup:
    per_row = 4 if menu == "voice" else 1

    def label(value: str) -> str:
        shown = LANGUAGES[value] if menu == "language" else value if menu == "voice" else _mode_name(menu, value)
        return f"✓ {shown}" if value == current else shown

    buttons = [
        InlineKeyboardButton(
            text=label(value), callback_data=SettingsPress(menu=menu, value=value, owner=owner).pack()
        )
        for value in CHOICES[menu]
    ]
    rows = [buttons[i : i + per_row] for i in range(0, len(buttons), per_row)]
    back = SettingsPress(menu="main", owner=owner).pack()
    rows.append([InlineKeyboardButton(text=_("« Back"), callback_data=back)])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def _language(preferences: UserPreferences, language_code: str | None) -> str:
    return preferences.language or language_of(language_code)


async def show_settings(message: Message, actor: Actor, preferences: Preferences) -> None:
    mine = await preferences.of(actor.id)
    await message.answer(summary(mine, _language(mine, actor.language_code)), reply_markup=main_keyboard(actor.id))


async def choose_language(
    message: Message, command: CommandObject, actor: Actor, preferences: Preferences
) -> None:
    wanted = (command.args or "").strip().lower()
    if not wanted:
        mine = await preferences.of(actor.id)
        current = _language(mine, actor.language_code)
        await message.answer(
            _("Choose your language:"), reply_markup=choices_keyboard("language", current, actor.id)
        )
        return
    if wanted not in _LANGUAGE_WORDS:
        raise LANG_USAGE
    language = _LANGUAGE_WORDS[wanted]
    await preferences.choose(actor.id, "language", language)
    with use_language(language):
        await message.answer(_("From now on I speak {language} with you.").format(language=LANGUAGES[language]))


async def press(query: CallbackQuery, callback_data: SettingsPress, bot: Bot, preferences: Preferences) -> None:
    """A menu button opens its choices; a choice is stored and the summary shown again, in the chosen language.

    The menu changes the settings of whoever it was opened for: only they may press it, or, for a chat's menu
    (opened by an anonymous admin or as a channel), that chat's administrators.
    """
    presser = query.from_user
    menu, value = callback_data.menu, callback_data.value
    owner = callback_data.owner or presser.id
    if not isinstance(query.message, Message) or (menu != "main" and menu not in _MENUS):
        await query.answer(_("This button no longer works."), show_alert=True)
        return
    if not await _may_change(bot, owner, presser.id):
        await query.answer(
            _("These settings are not yours to change. Send /settings for your own."), show_alert=True
        )
        return
    if value:
        try:
            await preferences.choose(owner, menu, value)
        except ValueError:
            await query.answer(_("This button no longer works."), show_alert=True)
            return
    mine = await preferences.of(owner)
    language = _language(mine, presser.language_code if owner == presser.id else None)
    with use_language(language):
        await query.answer(_("Saved.") if value else None)
        if menu == "main" or value:
            await edited(query.message.edit_text(summary(mine, language), reply_markup=main_keyboard(owner)))
        else:
            current = {"voice": mine.voice, "voice_reply": mine.voice_reply, "text_reply": mine.text_reply,
                       "language": language}[menu]  # fmt: skip
            await edited(query.message.edit_reply_markup(reply_markup=choices_keyboard(menu, current, owner)))


async def _may_change(bot: Bot, owner: int, presser: int) -> bool:
    if owner == presser:
        return True
    if owner > 0:
        return False  # another person's menu
    try:
        status = (await bot.get_chat_member(owner, presser)).status
    except ClientDecodeError as error:
        # An answer of another Bot API version than aiogram's (a field added or missing) fails aiogram's model;
        # the status is all this needs.
        result = error.data.get("result") if isinstance(error.data, dict) else None
        status = result.get("status") if isinstance(result, dict) else None
    except AiogramError:  # Telegram's refusal: not allowed
        return False
    return status in (ChatMemberStatus.CREATOR, ChatMemberStatus.ADMINISTRATOR)
