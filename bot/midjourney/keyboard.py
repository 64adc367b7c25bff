"""The buttons under a Midjourney picture: Midjourney's own layout, each carrying a short key as callback_data."""

from __future__ import annotations

from collections.abc import Sequence

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

# Long labels ("Vary (Strong)") need room on a phone; emoji-only buttons are small.
_ROW_CHARACTERS = 28
_ROW_BUTTONS = 5


class MjPress(CallbackData, prefix="mj"):
    """callback_data of a Midjourney button: the key of the stored customId (which is too long to carry)."""

    key: str


def button_rows(labels: Sequence[str]) -> list[list[int]]:
    """Indexes of `labels` arranged in rows: U1–U4 with 🔄, then V1–V4, then the rest packed by width."""
    upscales = [i for i, label in enumerate(labels) if _is_numbered(label, "U")]
    variations = [i for i, label in enumerate(labels) if _is_numbered(label, "V")]
    rerolls = [i for i, label in enumerate(labels) if label == "🔄"]
    rows = [row for row in (upscales + rerolls, variations) if row]
    placed = set(upscales + variations + rerolls)
    current: list[int] = []
    width = 0
    for index, label in enumerate(labels):
        if index in placed:
            continue
        if current and (width + len(label) > _ROW_CHARACTERS or len(current) == _ROW_BUTTONS):
            rows.append(current)
            current, width = [], 0
        current.append(index)
        width += max(len(label), 3)
    if current:
        rows.append(current)
    return rows


def _is_numbered(label: str, letter: str) -> bool:
    return len(label) == 2 and label[0] == letter and label[1] in "1234"


def keyboard(buttons: Sequence[tuple[str, str]]) -> InlineKeyboardMarkup | None:
    """An inline keyboard from (key, label) pairs, or None when there are no buttons."""
    if not buttons:
        return None
    labels = [label for _, label in buttons]
    builder = InlineKeyboardBuilder()
    for row in button_rows(labels):
        builder.row(
            *(InlineKeyboardButton(text=labels[i], callback_data=MjPress(key=buttons[i][0]).pack()) for i in row)
        )
    return builder.as_markup()
