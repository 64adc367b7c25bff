"""/draw and /edit: pictures from the image model, with prompts checked against what the model takes."""

from __future__ import annotations

from collections.abc import Sequence

from bot.clients.gateway import Gateway
from bot.clients.gateway_results import GeneratedImage
from bot.core.errors import Refusal
from bot.core.i18n import _
from bot.media.images import Picture, editable
from bot.models import Models


def prompt_limit(model: str) -> int:
    """The longest prompt the image model takes, in characters (OpenAI's documented limits)."""
    if model.startswith("dall-e-2"):
        return 1000
    if model.startswith("dall-e-3"):
        return 4000
    return 32000


class Drawing:
    def __init__(self, gateway: Gateway, models: Models, max_pixels: int) -> None:
        self._gateway = gateway
        self._models = models
        self._max_pixels = max_pixels

    def check_prompt(self, prompt: str) -> None:
        """Refuse, in words and before anything is charged, a description longer than the model takes."""
        limit = prompt_limit(self._models.current("image"))
        if len(prompt) > limit:
            raise Refusal(
                _("That description is {length} characters long; the image model takes at most {limit}.").format(
                    length=len(prompt), limit=limit
                )
            )

    async def draw(self, prompt: str) -> GeneratedImage:
        return await self._gateway.draw(prompt)

    async def edit(self, pictures: Sequence[Picture], prompt: str) -> GeneratedImage:
        """The model edits JPEG, PNG and WebP: anything else is converted first."""
        return await self._gateway.edit(
            [await editable(picture, self._max_pixels) for picture in pictures], prompt
        )
