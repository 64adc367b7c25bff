"""The gateway's image calls (draw, edit): answers of megabytes read in worker threads, checked like any
picture a user sends."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from bot.clients.gateway_base import GatewayBase
from bot.clients.gateway_errors import GatewayAnswerTooLarge, GatewayBadAnswer, GatewayError, GatewayUnavailable
from bot.clients.gateway_results import GeneratedImage, read_image, unbase64
from bot.clients.http import TRANSPORT_TIMEOUT, DownloadFailed, DownloadTooLarge, download
from bot.core.errors import Refusal
from bot.media.images import Picture, PictureTooLarge, check_picture, sniff_mime

log = logging.getLogger(__name__)


class ImageCalls(GatewayBase):
    async def draw(self, prompt: str) -> GeneratedImage:
        """A new picture from the image model."""
        return await self._on_model(
            "image",
            lambda model: self._image(
                "draw",
                lambda: self._images.images.with_raw_response.generate(
                    model=model, prompt=prompt, n=1, timeout=TRANSPORT_TIMEOUT, **_b64_option(model)
                ),
            ),
        )

    async def edit(self, pictures: Sequence[Picture], prompt: str) -> GeneratedImage:
        """The image model's change of one or more pictures (several go up as an array)."""
        files = [(picture.filename, picture.data, picture.mime) for picture in pictures]
        return await self._on_model(
            "image",
            lambda model: self._image(
                "edit",
                lambda: self._images.images.with_raw_response.edit(
                    model=model,
                    image=files if len(files) > 1 else files[0],
                    prompt=prompt,
                    timeout=TRANSPORT_TIMEOUT,
                    **_b64_option(model),
                ),
            ),
        )

    async def _image(self, operation: str, send: Callable[[], Awaitable[Any]]) -> GeneratedImage:
        # The answer can hold megabytes of base64: it is parsed and decoded in a worker thread.
        encoded, url, revised = await self._guarded(
            operation, self._settings.IMAGE_TIMEOUT, send, read_image, parse_in_thread=True
        )
        try:
            if encoded is not None:
                data = await asyncio.to_thread(unbase64, encoded, "image")
            else:  # a link instead of base64: fetched with the shared client
                data = await self._download(url or "")
            picture = await asyncio.to_thread(self._picture, data)
        except GatewayError as error:
            log.warning("gateway %s failed: %s", operation, error)
            raise
        return GeneratedImage(picture, revised)

    def _picture(self, data: bytes) -> Picture:
        """Blocking: an answer's picture, checked by its bytes and header like any picture a user sends."""
        if len(data) > self._settings.max_download_bytes:
            raise GatewayAnswerTooLarge("image over MAX_DOWNLOAD_MB")
        mime = sniff_mime(data)
        if mime is None:
            raise GatewayBadAnswer("image answer that is not an image")
        try:
            check_picture(data, self._settings.MAX_IMAGE_PIXELS)
        except PictureTooLarge:
            raise GatewayAnswerTooLarge("image over MAX_IMAGE_PIXELS") from None
        except Refusal:
            raise GatewayBadAnswer("image answer that is not an image") from None
        return Picture(data, mime)

    async def _download(self, url: str) -> bytes:
        """Some gateways answer with a link instead of base64: fetch it with the shared client, capped."""
        try:
            return await download(self._http, url, self._settings.IMAGE_TIMEOUT, self._settings.max_download_bytes)
        except DownloadTooLarge:
            raise GatewayAnswerTooLarge("image download over MAX_DOWNLOAD_MB") from None
        except DownloadFailed:
            raise GatewayUnavailable("image download failed") from None


def _b64_option(model: str) -> dict[str, str]:
    # GPT image models always answer in base64 and reject the parameter; DALL-E needs it asked for.
    return {} if model.startswith("gpt-image") else {"response_format": "b64_json"}
