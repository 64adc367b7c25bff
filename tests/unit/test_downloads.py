"""Downloads against a real local HTTP server: a byte cap (declared or not), a few http(s) redirects and no more,
the key only to the first address, and a ceiling on every response the shared client reads."""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.clients.http import (
    MAX_REDIRECTS,
    DownloadFailed,
    DownloadTooLarge,
    ResponseTooLarge,
    build_http_client,
    download,
)

CAP = 1024 * 1024  # the download cap, and the ceiling of the capped client
HUGE = 256 * 1024 * 1024  # what the server offers to send: far past the cap
CHUNK = bytes(64 * 1024)
# What may leave the server before the client hangs up: the cap, plus what the sockets' kernel buffers and
# aiohttp's read buffer hold in between. Reading the whole body would be HUGE.
NOT_FAR_PAST = CAP + 32 * 1024 * 1024


@dataclass
class Origin:
    """The server's side: what reached it, and how much of a huge body it managed to send."""

    server: TestServer
    requests: list[tuple[str, str | None, str | None]] = field(default_factory=list)  # path, key, encoding
    sent: int = 0
    stopped: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))


def _app(origin_of: list[Origin]) -> web.Application:
    async def hop(request: web.Request) -> web.StreamResponse:
        origin = origin_of[0]
        origin.requests.append(
            (request.path, request.headers.get("Authorization"), request.headers.get("Accept-Encoding"))
        )
        left = int(request.match_info["left"])
        if left == 0:
            return web.Response(body=b"the picture")
        raise web.HTTPFound(f"/hop/{left - 1}")

    async def elsewhere(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(request.query["to"])

    async def huge(request: web.Request) -> web.StreamResponse:
        origin = origin_of[0]
        response = web.StreamResponse()
        if request.query.get("declared") == "yes":
            response.content_length = HUGE
        else:
            response.enable_chunked_encoding()
        try:
            await response.prepare(request)
            while origin.sent < HUGE:
                await response.write(CHUNK)
                origin.sent += len(CHUNK)
        except ConnectionError:  # the client hung up: what this test wants to see
            pass
        finally:
            origin.stopped.set()
        return response

    app = web.Application()
    app.router.add_get("/hop/{left}", hop)
    app.router.add_get("/elsewhere", elsewhere)
    app.router.add_get("/huge", huge)
    return app


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    holder: list[Origin] = []
    server = TestServer(_app(holder), host="127.0.0.1")
    await server.start_server()
    holder.append(Origin(server))
    yield holder[0]
    await server.close()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """The process's kind of client with the default ceiling: downloads meet their own cap first."""
    http = build_http_client(8)
    yield http
    await http.aclose()


@pytest.fixture
async def capped_client() -> AsyncIterator[httpx.AsyncClient]:
    """A client whose ceiling is CAP: every response it reads is capped, not only downloads."""
    http = build_http_client(8, CAP)
    yield http
    await http.aclose()


async def _server_gave_up(origin: Origin) -> int:
    async with asyncio.timeout(30):  # a guard against hanging, not a measure
        await origin.stopped.wait()
    return origin.sent


@pytest.mark.parametrize("declared", ["yes", "no"])
async def test_a_body_over_the_cap_is_dropped_early(
    origin: Origin, client: httpx.AsyncClient, declared: str
) -> None:
    """256 MB offered, with or without Content-Length, against a 1 MB cap: DownloadTooLarge, and the client hangs
    up long before the server could send it all."""
    with pytest.raises(DownloadTooLarge):
        await download(client, origin.url(f"/huge?declared={declared}"), 60, CAP)
    assert await _server_gave_up(origin) < NOT_FAR_PAST


async def test_three_redirects_are_followed(origin: Origin, client: httpx.AsyncClient) -> None:
    """A picture behind three redirects (a CDN, a signed URL) arrives."""
    assert MAX_REDIRECTS == 3
    assert await download(client, origin.url("/hop/3"), 60, CAP) == b"the picture"
    assert [path for path, _key, _encoding in origin.requests] == ["/hop/3", "/hop/2", "/hop/1", "/hop/0"]


async def test_a_fourth_redirect_is_refused(origin: Origin, client: httpx.AsyncClient) -> None:
    """Four redirects are a loop, not a picture: DownloadFailed, and the fifth address is never asked."""
    with pytest.raises(DownloadFailed) as failed:
        await download(client, origin.url("/hop/4"), 60, CAP)
    assert not isinstance(failed.value, DownloadTooLarge)
    assert "/hop/0" not in [path for path, _key, _encoding in origin.requests]


@pytest.mark.parametrize(
    "target",
    [
        "file://localhost/picture.png",
        "ftp://127.0.0.1/picture.png",
        "data:image/png;base64,AAAA",
        "mailto:someone@example.com",
    ],
)
async def test_a_redirect_off_http_is_refused(origin: Origin, client: httpx.AsyncClient, target: str) -> None:
    """A redirect to another scheme (a local file, FTP, data) is DownloadFailed; so is such an address given
    directly."""
    with pytest.raises(DownloadFailed):
        await download(client, origin.url(f"/elsewhere?to={target}"), 60, CAP)
    with pytest.raises(DownloadFailed):
        await download(client, target, 60, CAP)


async def test_the_key_goes_to_the_first_address_only(origin: Origin, client: httpx.AsyncClient) -> None:
    """The Authorization given reaches the first hop and none it redirects to; every hop asks for the bytes
    uncompressed."""
    key = "Bearer sk-test-key"
    assert await download(client, origin.url("/hop/2"), 60, CAP, {"Authorization": key}) == b"the picture"
    assert origin.requests == [
        ("/hop/2", key, "identity"),
        ("/hop/1", None, "identity"),
        ("/hop/0", None, "identity"),
    ]


@pytest.mark.parametrize("declared", ["yes", "no"])
async def test_any_response_over_the_ceiling_is_refused(
    origin: Origin, capped_client: httpx.AsyncClient, declared: str
) -> None:
    """An ordinary client.get of a response past the client's ceiling raises ResponseTooLarge instead of holding
    256 MB, declared or not."""
    with pytest.raises(ResponseTooLarge):
        await capped_client.get(origin.url(f"/huge?declared={declared}"))
    assert await _server_gave_up(origin) < NOT_FAR_PAST


@pytest.mark.parametrize("declared", ["yes", "no"])
async def test_a_streamed_read_over_the_ceiling_is_refused(
    origin: Origin, capped_client: httpx.AsyncClient, declared: str
) -> None:
    """Reading a response piece by piece is capped the same way."""
    received = 0
    with pytest.raises(ResponseTooLarge):
        async with capped_client.stream("GET", origin.url(f"/huge?declared={declared}")) as response:
            async for chunk in response.aiter_raw():
                received += len(chunk)
    assert received <= CAP
    assert await _server_gave_up(origin) < NOT_FAR_PAST


async def test_a_small_answer_under_the_ceiling_is_read(origin: Origin, capped_client: httpx.AsyncClient) -> None:
    """The ceiling stops only what is over it."""
    response = await capped_client.get(origin.url("/hop/0"))
    assert response.content == b"the picture"
