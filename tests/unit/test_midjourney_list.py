"""Midjourney.list against a local gateway answering a task list with malformed entries beside good ones: the good
tasks are tracked, the bad ones skipped, each reported in the log once and not at every poll."""

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.clients.http import build_http_client
from bot.clients.midjourney import Midjourney
from bot.config import Settings

GOOD = [
    {"id": "1001", "action": "IMAGINE", "status": "IN_PROGRESS", "progress": "40%", "prompt": "owl"},
    {
        "id": 1002,
        "action": "UPSCALE",
        "status": "SUCCESS",
        "progress": "100%",
        "imageUrl": "https://cdn.example/x",
    },
]
MALFORMED: list[Any] = [
    {"status": "SUCCESS"},  # no id
    {"id": "", "status": "SUCCESS"},  # an empty id
    {"id": {"nested": 1}},  # an id that is no id
    {"id": 3.5},
    "a string",
    None,
    ["a", "list"],
]


@pytest.fixture
async def gateway() -> AsyncIterator[tuple[TestServer, list[dict[str, Any]]]]:
    """A gateway whose list call answers the malformed entries interleaved with the good ones."""
    asked: list[dict[str, Any]] = []

    async def list_by_condition(request: web.Request) -> web.Response:
        asked.append(await request.json())
        answer: list[Any] = [GOOD[0], *MALFORMED[:4], GOOD[1], *MALFORMED[4:]]
        return web.json_response(answer)

    app = web.Application()
    app.router.add_post("/mj/task/list-by-condition", list_by_condition)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server, asked
    await server.close()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    client = build_http_client(8)
    yield client
    await client.aclose()


async def test_good_tasks_come_back_and_bad_ones_are_skipped_and_logged_once(
    gateway: tuple[TestServer, list[dict[str, Any]]], http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Both good tasks are read from a list holding seven malformed entries; the second poll of the same answer
    logs nothing new."""
    server, asked = gateway
    settings = Settings(BOT_TOKEN="1:x", API_KEY="k", MJ_BASE_URL=str(server.make_url("")).rstrip("/"))
    midjourney = Midjourney(settings, http, asyncio.Semaphore(4))

    with caplog.at_level(logging.WARNING, logger="bot.clients.midjourney"):
        tasks = await midjourney.list(["1001", "1002", "bad"])
    assert [(task.id, task.status, task.progress) for task in tasks] == [
        ("1001", "IN_PROGRESS", 40),
        ("1002", "SUCCESS", 100),
    ]
    assert asked == [{"ids": ["1001", "1002", "bad"]}]
    first_lines = [record.getMessage() for record in caplog.records if record.name == "bot.clients.midjourney"]
    assert first_lines, "the malformed entries were not reported at all"
    assert all("malformed" in line for line in first_lines)

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="bot.clients.midjourney"):
        again = await midjourney.list(["1001", "1002", "bad"])
    assert [task.id for task in again] == ["1001", "1002"]
    assert [record.getMessage() for record in caplog.records if record.name == "bot.clients.midjourney"] == []
