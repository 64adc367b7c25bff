"""The process's one HTTP client for the gateway: httpx's interface on aiohttp's connection pool."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

log = logging.getLogger(__name__)

# Only connecting is bounded at the socket level. Every call runs under its own overall deadline (asyncio.timeout
# around it, retries included); aiohttp's per-read timer adds nothing to that, and it fired spuriously on a
# keep-alive connection reused after a streamed answer, failing the next request within a millisecond.
TRANSPORT_TIMEOUT = httpx.Timeout(None, connect=10.0)

# aiohttp buffers up to twice this per response before it stops reading the socket. A spoken answer waiting
# for an encoder then keeps 32 KB in the heap instead of 128 KB; the rest waits in the kernel's buffers.
_READ_BUFFER = 16 * 1024


def build_http_client(max_connections: int) -> httpx.AsyncClient:
    """An httpx.AsyncClient for the openai SDK, the Midjourney client and image downloads alike.

    Its transport is aiohttp's pool (the one behind the openai SDK's own aiohttp option): httpcore's pool
    scans every connection on every request, which cost a quarter of the bot's CPU with two hundred voice
    turns in flight. Every connection a burst opened is kept alive: opening it again costs more than idling.
    """

    def session() -> aiohttp.ClientSession:
        # Called on the first request, inside the running event loop, as aiohttp requires.
        connector = aiohttp.TCPConnector(limit=max_connections, keepalive_timeout=30)
        return aiohttp.ClientSession(connector=connector, read_bufsize=_READ_BUFFER)

    return httpx.AsyncClient(
        transport=AiohttpTransport(client=session),
        timeout=TRANSPORT_TIMEOUT,
        follow_redirects=True,
    )


class DownloadFailed(Exception):
    """A file (an image the gateway links to) could not be fetched; the caller says so in its own words."""


async def download(
    http: httpx.AsyncClient, url: str, deadline: float, headers: dict[str, str] | None = None
) -> bytes:
    """GET a file within `deadline` seconds. Logged once here, by the error's kind only: the URL may carry a
    signature."""
    try:
        async with asyncio.timeout(deadline):
            response = await http.get(url, headers=headers)
        response.raise_for_status()
    except (httpx.HTTPError, TimeoutError) as error:
        log.warning("download failed: %s", type(error).__name__)
        raise DownloadFailed from None
    return response.content
