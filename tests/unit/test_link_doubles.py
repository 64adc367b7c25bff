"""Self-tests of what the doubles serve behind links (pictures, huge pictures, redirect chains) and of the
Midjourney double's hostile task lists: what the download tests rely on, checked on its own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from testkit.doubles.gateway import GatewayDouble
from testkit.doubles.midjourney import LIST_PATH, MALFORMED_TASKS, MidjourneyDouble
from testkit.doubles.openai_spec import OpenAISpec
from testkit.media import make_png

pytestmark = pytest.mark.asyncio

KEY = "sk-test-links"
MB = 2**20
SPEC = OpenAISpec.load()  # None without the spec file: the double then runs without validation


@pytest_asyncio.fixture
async def gateway() -> AsyncIterator[GatewayDouble]:
    double = GatewayDouble(KEY, SPEC)
    yield double
    await double.stop()


@pytest_asyncio.fixture
async def mj(gateway: GatewayDouble) -> MidjourneyDouble:
    midjourney = MidjourneyDouble(gateway, step_seconds=0.02)
    await gateway.start()
    return midjourney


@pytest_asyncio.fixture
async def client(gateway: GatewayDouble, mj: MidjourneyDouble) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=gateway.root_url, headers=headers, timeout=10) as http:
        yield http


async def test_a_served_picture_needs_no_key_and_is_no_api_call(
    gateway: GatewayDouble, mj: MidjourneyDouble
) -> None:
    picture = make_png(20, 20, (1, 2, 3))
    served = gateway.serve_picture(picture)
    async with httpx.AsyncClient() as anonymous:
        response = await anonymous.get(served.url)
        missing = await anonymous.get(served.url + "x")
    assert (response.status_code, response.content, response.headers["Content-Type"]) == (
        200,
        picture,
        "image/png",
    )
    assert missing.status_code == 404
    [request] = served.requests
    assert (request.hop, request.address, request.authorization, request.complete) == (
        0,
        gateway.root_url,
        None,
        True,
    )
    assert gateway.calls == [] and gateway.violations == []


@pytest.mark.parametrize("declare_length", [True, False])
async def test_a_large_picture_is_a_png_streamed_with_or_without_its_length(
    gateway: GatewayDouble, mj: MidjourneyDouble, declare_length: bool
) -> None:
    size = 3 * MB + 5
    served = gateway.serve_large_picture(size, declare_length=declare_length)
    async with httpx.AsyncClient() as http, http.stream("GET", served.url) as response:
        length = response.headers.get("Content-Length")
        head = b""
        received = 0
        async for chunk in response.aiter_raw():
            head = head or chunk[:33]
            received += len(chunk)
    assert length == (str(size) if declare_length else None)
    assert (response.headers.get("Transfer-Encoding") == "chunked") is not declare_length
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    assert (int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")) == (4000, 3000)
    assert received == size
    [request] = served.requests
    assert request.complete and request.sent == size


async def test_a_reader_that_stops_early_never_completes_a_large_picture(
    gateway: GatewayDouble, mj: MidjourneyDouble
) -> None:
    served = gateway.serve_large_picture(64 * MB, declare_length=False)
    async with httpx.AsyncClient() as http, http.stream("GET", served.url) as response:
        async for _chunk in response.aiter_raw():
            break  # hang up after the first piece, as a reader with a cap does
    [request] = served.requests
    assert 0 < request.sent < 64 * MB and not request.complete


async def test_a_redirect_chain_records_each_hop_its_address_and_its_key(
    gateway: GatewayDouble, mj: MidjourneyDouble
) -> None:
    picture = make_png(8, 8, (9, 9, 9))
    final = gateway.serve_picture(picture)
    chain = gateway.serve_redirects(final.url, [gateway.root_url, gateway.root_url, gateway.second_root_url])
    assert chain.url.startswith(gateway.root_url + "/files/")
    headers = {"Authorization": "Bearer secret"}
    async with httpx.AsyncClient(follow_redirects=True) as http:
        response = await http.get(chain.url, headers=headers)
    assert response.content == picture and len(response.history) == 3
    assert all(step.status_code == 302 for step in response.history)
    seen = [(request.hop, request.address, request.authorization) for request in chain.requests]
    # httpx keeps the key on the same origin and drops it for good at the first other one: the record shows both.
    assert seen == [
        (0, gateway.root_url, "Bearer secret"),
        (1, gateway.root_url, "Bearer secret"),
        (2, gateway.second_root_url, None),
    ]
    assert [request.authorization for request in final.requests] == [None]


async def test_a_redirect_chain_may_end_anywhere(gateway: GatewayDouble, mj: MidjourneyDouble) -> None:
    chain = gateway.serve_redirects("ftp://127.0.0.1/picture.png", [gateway.second_root_url])
    async with httpx.AsyncClient() as http:
        response = await http.get(chain.url)
    assert response.status_code == 302 and response.headers["Location"] == "ftp://127.0.0.1/picture.png"
    assert chain.url.startswith(gateway.second_root_url)
    with pytest.raises(ValueError):
        gateway.serve_redirects("http://example.invalid/", [])


async def test_images_can_be_answered_with_a_link(
    gateway: GatewayDouble, mj: MidjourneyDouble, client: httpx.AsyncClient
) -> None:
    link = gateway.serve_picture(make_png(4, 4, (0, 0, 0))).url
    gateway.when("/images/generations").reply_image_url(link)
    answer = await client.post("/v1/images/generations", json={"model": "gpt-image-1", "prompt": "a cat", "n": 2})
    assert answer.status_code == 200
    assert answer.json()["data"] == [{"url": link, "revised_prompt": "a cat"}] * 2
    assert gateway.violations == []  # the answer was checked against the spec, and holds
    with pytest.raises(ValueError):
        gateway.when("/chat/completions").reply_image_url(link)


async def test_a_dropped_rule_stops_answering(gateway: GatewayDouble, mj: MidjourneyDouble) -> None:
    rule = gateway.when("/chat/completions").reply_text("scripted")
    gateway.drop(rule)
    gateway.drop(rule)  # twice is harmless
    assert gateway.when("/chat/completions", times=1) is not rule


async def test_a_success_script_can_point_the_result_elsewhere(
    mj: MidjourneyDouble, client: httpx.AsyncClient
) -> None:
    mj.script("far away", "success", times=1, image_url="https://cdn.example/far.png")
    task_id = (await client.post("/mj/submit/imagine", json={"prompt": "far away"})).json()["result"]
    mj.finish_now(task_id)
    task = (await client.get(f"/mj/task/{task_id}/fetch")).json()
    assert (task["status"], task["imageUrl"]) == ("SUCCESS", "https://cdn.example/far.png")
    with pytest.raises(ValueError):
        mj.script("nope", "failure", image_url="https://cdn.example/x.png")


async def test_a_poisoned_list_carries_malformed_entries_around_the_real_tasks(
    mj: MidjourneyDouble, client: httpx.AsyncClient
) -> None:
    task_id = (await client.post("/mj/submit/imagine", json={"prompt": "a real fox"})).json()["result"]
    mj.poison_list()
    poisoned = (await client.post(LIST_PATH, json={"ids": [task_id]})).json()
    real = [
        index for index, entry in enumerate(poisoned) if isinstance(entry, dict) and entry.get("id") == task_id
    ]
    assert len(poisoned) == len(MALFORMED_TASKS) + 1 and len(real) == 1
    assert 0 < real[0] < len(poisoned) - 1  # garbage on both sides
    assert poisoned[: real[0]] + poisoned[real[0] + 1 :] == list(MALFORMED_TASKS)
    assert any(not isinstance(entry, dict) for entry in MALFORMED_TASKS)
    assert any(isinstance(entry, dict) and "id" not in entry for entry in MALFORMED_TASKS)
    assert any(
        isinstance(entry, dict) and isinstance(entry.get("id"), str) and entry["id"] for entry in MALFORMED_TASKS
    )
    mj.cure_list()
    assert [entry["id"] for entry in (await client.post(LIST_PATH, json={"ids": [task_id]})).json()] == [task_id]


@pytest.mark.parametrize(("kind", "status"), [("status-500", 500), ("not-a-list", 200)])
async def test_a_failing_list_answers_its_fault_until_dropped(
    gateway: GatewayDouble, mj: MidjourneyDouble, client: httpx.AsyncClient, kind: str, status: int
) -> None:
    task_id = (await client.post("/mj/submit/imagine", json={"prompt": "a patient fox"})).json()["result"]
    rule = mj.fail_list(kind)
    failed = await client.post(LIST_PATH, json={"ids": [task_id]})
    assert failed.status_code == status and isinstance(failed.json(), dict)
    gateway.drop(rule)
    recovered = await client.post(LIST_PATH, json={"ids": [task_id]})
    assert [task["id"] for task in recovered.json()] == [task_id]
    assert [asked for _at, asked in mj.list_calls] == [[task_id], [task_id]]  # recorded either way
    assert rule.hits == 1 and gateway.violations == []
    with pytest.raises(ValueError):
        mj.fail_list("on-fire")
