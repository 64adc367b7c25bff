"""Midjourney's tasks and their buttons, read leniently from what the gateway answers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bot.clients.midjourney_errors import MidjourneyBadAnswer

_FINISHED = {"SUCCESS", "FAILURE", "CANCEL"}
_PROGRESS = re.compile(r"(\d{1,3})")


@dataclass(frozen=True, slots=True)
class MjButton:
    custom_id: str
    label: str  # the text to show: the label, else the emoji

    @classmethod
    def from_json(cls, raw: Any) -> MjButton | None:
        if not isinstance(raw, dict) or not isinstance(raw.get("customId"), str) or not raw["customId"]:
            return None
        label = str(raw.get("label") or "").strip() or str(raw.get("emoji") or "").strip()
        return cls(raw["customId"], label) if label else None


@dataclass(frozen=True, slots=True)
class MjTask:
    id: str
    action: str
    status: str  # "", NOT_START, SUBMITTED, IN_PROGRESS, SUCCESS, FAILURE, MODAL, CANCEL
    progress: int  # 0-100
    image_url: str
    fail_reason: str
    prompt: str
    buttons: tuple[MjButton, ...] = field(default=())

    @property
    def finished(self) -> bool:
        return self.status in _FINISHED

    @classmethod
    def from_json(cls, raw: Any) -> MjTask:
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str | int) or not str(raw["id"]):
            raise MidjourneyBadAnswer("task without id")
        progress = _PROGRESS.search(str(raw.get("progress") or ""))
        buttons = raw.get("buttons") if isinstance(raw.get("buttons"), list) else []
        return cls(
            id=str(raw["id"]),
            action=str(raw.get("action") or ""),
            status=str(raw.get("status") or ""),
            progress=min(100, int(progress.group(1))) if progress else 0,
            image_url=str(raw.get("imageUrl") or ""),
            fail_reason=str(raw.get("failReason") or ""),
            prompt=str(raw.get("prompt") or ""),
            buttons=tuple(button for item in buttons if (button := MjButton.from_json(item)) is not None),
        )
