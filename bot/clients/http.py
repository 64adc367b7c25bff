"""The process's one HTTP client for the gateway: httpx's interface on aiohttp's connection pool."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from urllib.parse import urljoin, urlsplit

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


# Every response body is counted as it arrives; past this many bytes the response is dropped. Downloads have their
# own, smaller cap (MAX_DOWNLOAD_MB); this one keeps a gateway answering gigabytes from filling the memory.
RESPONSE_CEILING_FLOOR = 64 * 1024 * 1024
# Redirects a download may follow (a CDN link, a signed URL): enough for a real one, not a loop.
MAX_REDIRECTS = 3
# How much of an error answer is read to tell a "model not served" (they are a few hundred bytes).
_ERROR_PEEK = 64 * 1024
_NOT_SERVED_SIGNS = ("model_not_found", "无可用渠道", "no available channel")


def response_ceiling(max_download_bytes: int) -> int:
    """The largest response body the process reads: a picture of the download cap as base64 in JSON, or 64 MB."""
    return max(RESPONSE_CEILING_FLOOR, max_download_bytes * 4 // 3 + 1024 * 1024)


def build_http_client(max_connections: int, ceiling: int = RESPONSE_CEILING_FLOOR) -> httpx.AsyncClient:
    """An httpx.AsyncClient for the openai SDK, the Midjourney client and image downloads alike.

    Its transport is aiohttp's pool (the one behind the openai SDK's own aiohttp option): httpcore's pool
    scans every connection on every request, which cost a quarter of the bot's CPU with two hundred voice
    turns in flight. Every connection a burst opened is kept alive: opening it again costs more than idling.
    Redirects are not followed here: only download() follows them, a few, to http(s) addresses.
    """

    def session() -> aiohttp.ClientSession:
        # Called on the first request, inside the running event loop, as aiohttp requires.
        connector = aiohttp.TCPConnector(limit=max_connections, keepalive_timeout=30)
        return aiohttp.ClientSession(connector=connector, read_bufsize=_READ_BUFFER)

    return httpx.AsyncClient(
        transport=_CappedTransport(AiohttpTransport(client=session), ceiling),
        timeout=TRANSPORT_TIMEOUT,
        follow_redirects=False,
    )


class ResponseTooLarge(httpx.ReadError):
    """A response body went past the process's ceiling, or a download past its cap."""


class _CappedTransport(httpx.AsyncBaseTransport):
    """Counts each response body as it streams in and stops it at the ceiling, before it is all in memory."""

    def __init__(self, inner: httpx.AsyncBaseTransport, ceiling: int) -> None:
        self._inner = inner
        self._ceiling = ceiling

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        declared = _declared_length(response)
        if declared is not None and declared > self._ceiling:
            await response.aclose()
            raise ResponseTooLarge(f"response of {declared} bytes", request=request)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _CappedStream(response.stream, self._ceiling, request)
        if response.status_code in (404, 503) and (declared or 0) <= _ERROR_PEEK:
            await _mark_not_served(response)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class _CappedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, ceiling: int, request: httpx.Request) -> None:
        self._inner = inner
        self._ceiling = ceiling
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        received = 0
        async for chunk in self._inner:
            received += len(chunk)
            if received > self._ceiling:
                raise ResponseTooLarge(f"response over {self._ceiling} bytes", request=self._request)
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


async def _mark_not_served(response: httpx.Response) -> None:
    """new-api answers a model it cannot route with a 503 (or 404), which the SDKs would retry with back-off; it
    will not change within seconds, and the next model of the list should answer instead. Such an answer is
    marked with the header both SDKs obey, so that it is not retried."""
    body = await response.aread()
    said = body[:_ERROR_PEEK].decode("utf-8", "replace").lower()
    if any(sign in said for sign in _NOT_SERVED_SIGNS):
        response.headers["x-should-retry"] = "false"


def _declared_length(response: httpx.Response) -> int | None:
    try:
        return int(response.headers["content-length"])
    except (KeyError, ValueError):
        return None


class DownloadFailed(Exception):
    """A file (an image the gateway links to) could not be fetched; the caller says so in its own words."""


class DownloadTooLarge(DownloadFailed):
    """The file is bigger than the cap: it was dropped as soon as that was known."""


async def download(
    http: httpx.AsyncClient,
    url: str,
    deadline: float,
    max_bytes: int,
    headers: dict[str, str] | None = None,
) -> bytes:
    """GET a file within `deadline` seconds and `max_bytes`, following at most MAX_REDIRECTS redirects, to http(s)
    addresses only. `headers` (a key) go to the first address only, never to where it redirects.

    Logged once here, by the error's kind only: the URL may carry a signature.
    """
    try:
        async with asyncio.timeout(deadline):
            for _hop in range(MAX_REDIRECTS + 1):
                if urlsplit(url).scheme not in ("http", "https"):
                    raise DownloadFailed("not an http(s) address")
                async with http.stream("GET", url, headers=_download_headers(headers)) as response:
                    if response.is_redirect and "location" in response.headers:
                        url, headers = urljoin(url, response.headers["location"]), None
                        continue
                    response.raise_for_status()
                    return await _read_capped(response, max_bytes)
            raise DownloadFailed("too many redirects")
    except (DownloadTooLarge, ResponseTooLarge):
        log.warning("download failed: larger than %d bytes", max_bytes)
        raise DownloadTooLarge from None
    except DownloadFailed as error:
        log.warning("download failed: %s", error)
        raise
    except (httpx.HTTPError, httpx.InvalidURL, TimeoutError) as error:
        # InvalidURL: httpx reads a redirect's Location (data:, mailto:…) even when it does not follow it.
        log.warning("download failed: %s", type(error).__name__)
        raise DownloadFailed(type(error).__name__) from None


def _download_headers(extra: dict[str, str] | None) -> dict[str, str]:
    # A compressed body could unpack to far more than it weighs: ask for the bytes as they are.
    return {"Accept-Encoding": "identity", **(extra or {})}


async def _read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    declared = _declared_length(response)
    if declared is not None and declared > max_bytes:
        raise DownloadTooLarge(f"{declared} bytes declared")
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > max_bytes:
            raise DownloadTooLarge(f"over {max_bytes} bytes")
    return bytes(body)
