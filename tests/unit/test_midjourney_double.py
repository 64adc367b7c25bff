"""Self-tests of the Midjourney part of the gateway double: shapes, the status sequence, buttons, scripts, time."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from testkit.doubles.gateway import GatewayDouble
from testkit.doubles.midjourney import MidjourneyDouble
from testkit.media import image_size, make_jpeg, make_png

pytestmark = pytest.mark.asyncio

KEY = "k"
STEP = 0.02
GRID_LABELS = ["U1", "U2", "U3", "U4", "", "V1", "V2", "V3", "V4"]
# new-api's MidjourneyDto, more than the spec's example shows
TASK_FIELDS = set(
    "id action customId botType prompt promptEn description state submitTime startTime finishTime imageUrl"
    " videoUrl videoUrls status progress failReason buttons maskBase64 properties".split()
)
STAGES = [
    ("", "0%"),
    ("SUBMITTED", "0%"),
    ("IN_PROGRESS", "10%"),
    ("IN_PROGRESS", "45%"),
    ("IN_PROGRESS", "80%"),
    ("SUCCESS", "100%"),
]
UPSCALE_LABELS = [
    "Upscale (Subtle)", "Upscale (Creative)", "Vary (Subtle)", "Vary (Strong)", "Vary (Region)",
    "Zoom Out 2x", "Zoom Out 1.5x", "Custom Zoom", "⬅️", "➡️", "⬆️", "⬇️", "❤️",
]  # fmt: skip
SATURATED = "当前分组上游负载已饱和，请稍后再试 当前分组负载已饱和，请稍后再试，或升级账户以提升服务质量。"


@pytest_asyncio.fixture
async def gateway() -> AsyncIterator[GatewayDouble]:
    double = GatewayDouble(KEY, None)
    yield double
    await double.stop()


@pytest_asyncio.fixture
async def mj(gateway: GatewayDouble) -> MidjourneyDouble:
    midjourney = MidjourneyDouble(gateway, step_seconds=STEP)
    await gateway.start()
    return midjourney


@pytest_asyncio.fixture
async def client(gateway: GatewayDouble, mj: MidjourneyDouble) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=gateway.root_url, headers=headers, timeout=10) as http:
        yield http


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


async def submit(client: httpx.AsyncClient, kind: str, **body: Any) -> dict[str, Any]:
    response = await client.post(f"/mj/submit/{kind}", json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def imagine(client: httpx.AsyncClient, prompt: str = "a red fox --ar 1:1") -> str:
    answer = await submit(client, "imagine", prompt=prompt)
    assert answer["code"] == 1
    return answer["result"]


async def fetch(client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    response = await client.get(f"/mj/task/{task_id}/fetch")
    assert response.status_code == 200, response.text
    return response.json()


async def wait_for(client: httpx.AsyncClient, task_id: str, status: str, timeout: float = 2.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while (task := await fetch(client, task_id))["status"] != status:
            await asyncio.sleep(STEP / 4)
    return task


async def finished(mj: MidjourneyDouble, client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    mj.finish_now(task_id)
    return await fetch(client, task_id)


def button(task: dict[str, Any], label: str) -> str:
    return next(item["customId"] for item in task["buttons"] if (item["label"] or item["emoji"]) == label)


async def test_every_route_but_images_needs_the_key(
    gateway: GatewayDouble, mj: MidjourneyDouble, client: httpx.AsyncClient
) -> None:
    task_id = await imagine(client)
    mj.finish_now(task_id)
    async with httpx.AsyncClient(base_url=gateway.root_url) as anonymous:
        refused = [
            await anonymous.post("/mj/submit/imagine", json={"prompt": "cat"}),
            await anonymous.get(f"/mj/task/{task_id}/fetch"),
            await anonymous.post("/mj/task/list-by-condition", json={"ids": [task_id]}),
            await anonymous.get(f"/mj/task/{task_id}/image-seed", headers={"Authorization": "Bearer wrong"}),
        ]
        image = await anonymous.get(f"/mj/image/{task_id}")
    assert [response.status_code for response in refused] == [401] * 4
    assert image.status_code == 200 and image.headers["Content-Type"] == "image/png"
    assert mj.submissions == [("imagine", {"prompt": "a red fox --ar 1:1"})]
    assert len(gateway.violations) == 4  # every keyless call is recorded; the image download is not one


async def test_imagine_runs_through_the_real_statuses_to_a_grid(
    mj: MidjourneyDouble, client: httpx.AsyncClient
) -> None:
    mj.step_seconds = 0.05  # long enough for the first fetch to come before the first refresh
    answer = await submit(client, "imagine", prompt="a red fox --ar 1:1", botType="MID_JOURNEY", state="chat-7")
    assert set(answer) == {"code", "description", "result", "properties"}
    assert (
        answer["code"] == 1 and answer["description"] == "提交成功" and answer["properties"]["discordInstanceId"]
    )
    task_id = answer["result"]
    assert len(task_id) == 16 and task_id.isdigit()

    first = await fetch(client, task_id)
    assert set(first) == TASK_FIELDS
    # Not yet refreshed by the gateway: its own row, with no buttons or properties yet.
    assert (first["status"], first["progress"], first["imageUrl"], first["startTime"]) == ("", "0%", "", 0)
    assert first["buttons"] is None and first["properties"] is None and first["state"] == ""
    assert (first["action"], first["prompt"]) == ("IMAGINE", "a red fox --ar 1:1")
    assert first["description"] == "/imagine a red fox --ar 1:1"

    seen = [(first["status"], first["progress"])]
    previews = []
    async with asyncio.timeout(2):
        while seen[-1][0] != "SUCCESS":
            await asyncio.sleep(STEP / 4)
            task = await fetch(client, task_id)
            if (task["status"], task["progress"]) != seen[-1]:
                seen.append((task["status"], task["progress"]))
                if task["status"] == "IN_PROGRESS":
                    previews.append(task["imageUrl"])
    # Polling may miss a stage on a busy machine, but never sees one out of order.
    assert seen == [stage for stage in STAGES if stage in seen] and "IN_PROGRESS" in {s for s, _ in seen}
    assert all(url.startswith(f"{mj.gateway.root_url}/mj/image/{task_id}?rand=") for url in previews)

    done = await fetch(client, task_id)
    assert done["imageUrl"] == f"{mj.gateway.root_url}/mj/image/{task_id}" and done["failReason"] == ""
    assert done["submitTime"] <= done["startTime"] <= done["finishTime"] and done["state"] == "chat-7"
    assert done["properties"] == {"finalPrompt": "a red fox --ar 1:1 --v 6.1", "finalZhPrompt": ""}
    assert [item["label"] for item in done["buttons"]] == GRID_LABELS
    assert done["buttons"][4] | {"customId": ""} == {
        "customId": "",
        "emoji": "🔄",
        "label": "",
        "type": 2,
        "style": 2,
    }
    custom_ids = [item["customId"] for item in done["buttons"]]
    assert custom_ids[1].startswith("MJ::JOB::upsample::2::") and custom_ids[4].startswith("MJ::JOB::reroll::0::")
    assert custom_ids[4].endswith("::SOLO") and custom_ids[8].startswith("MJ::JOB::variation::4::")
    assert all(50 <= len(custom_id.encode()) <= 70 for custom_id in custom_ids)  # longer than callback_data allows
    picture = await client.get(done["imageUrl"])
    assert image_size(picture.content) == ("png", 512, 512)
    assert mj.tasks[task_id].status == "SUCCESS"


async def test_a_running_task_shows_a_webp_preview(mj: MidjourneyDouble, client: httpx.AsyncClient) -> None:
    mj.script("stuck fox", "stuck")
    task_id = await imagine(client, "a stuck fox")
    await wait_for(client, task_id, "IN_PROGRESS")
    await asyncio.sleep(STEP * 6)
    task = await fetch(client, task_id)
    assert (task["status"], task["progress"]) == ("IN_PROGRESS", "45%")
    preview = await client.get(task["imageUrl"])
    assert preview.headers["Content-Type"] == "image/webp" and image_size(preview.content)[0] == "webp"
    assert (await client.get(f"/mj/image/{task_id}x")).status_code == 400


async def test_list_by_condition_answers_many_tasks_in_one_call(
    gateway: GatewayDouble, mj: MidjourneyDouble, client: httpx.AsyncClient
) -> None:
    ids = [await imagine(client, f"fox {n}") for n in range(3)]
    listed = await client.post(
        "/mj/task/list-by-condition", json={"ids": [ids[2], "1234", ids[0], ids[1], ids[0]]}
    )
    assert listed.status_code == 200
    assert [task["id"] for task in listed.json()] == ids  # each once, in the order they were made
    assert all(set(task) == {*listed.json()[0]} for task in listed.json())
    none = await client.post("/mj/task/list-by-condition", json={"ids": ["1234"]})
    assert none.json() == []
    assert [asked for _at, asked in mj.list_calls] == [[ids[2], "1234", ids[0], ids[1], ids[0]], ["1234"]]
    assert gateway.violations == []
    bad = await client.post("/mj/task/list-by-condition", json={"ids": [1, 2]})
    assert bad.status_code == 400 and bad.json()["type"] == "upstream_error"
    assert len(gateway.violations) == 1


async def test_upscale_of_u2_offers_the_upscale_buttons(mj: MidjourneyDouble, client: httpx.AsyncClient) -> None:
    grid = await finished(mj, client, await imagine(client))
    answer = await submit(client, "action", taskId=grid["id"], customId=button(grid, "U2"))
    assert answer["code"] == 1
    task = mj.tasks[answer["result"]]
    assert (task.action, task.parent_id, task.custom_id) == ("UPSCALE", grid["id"], button(grid, "U2"))
    assert task.colors == [mj.tasks[grid["id"]].colors[1]]  # the picture is the grid's second quadrant
    upscale = await finished(mj, client, task.id)
    assert (upscale["action"], upscale["prompt"]) == ("UPSCALE", grid["prompt"])
    assert [item["label"] or item["emoji"] for item in upscale["buttons"]] == UPSCALE_LABELS
    assert button(upscale, "⬅️").startswith("MJ::JOB::pan_left::1::") and button(upscale, "⬅️").endswith("::SOLO")
    assert button(upscale, "Custom Zoom").startswith("MJ::CustomZoom::")
    picture = await client.get(upscale["imageUrl"])
    assert image_size(picture.content) == ("png", 256, 256)

    actions = {}
    for label in ("Vary (Strong)", "Zoom Out 2x", "➡️", "Upscale (Subtle)"):
        result = (await submit(client, "action", taskId=upscale["id"], customId=button(upscale, label)))["result"]
        actions[label] = mj.tasks[result].action
    # new-api's names for them (its CoverPlusActionToNormalAction)
    assert actions == {
        "Vary (Strong)": "HIGH_VARIATION",
        "Zoom Out 2x": "ZOOM",
        "➡️": "PAN",
        "Upscale (Subtle)": "UPSCALE",
    }
    heart = await client.post(
        "/mj/submit/action", json={"taskId": upscale["id"], "customId": button(upscale, "❤️")}
    )
    assert heart.status_code == 400 and heart.json()["description"].startswith("unknown_action:MJ::BOOKMARK::")
    assert [kind for kind, _body in mj.submissions].count("action") == 6


async def test_actions_must_use_a_finished_task_and_its_own_buttons(
    gateway: GatewayDouble, mj: MidjourneyDouble, client: httpx.AsyncClient
) -> None:
    first = await finished(mj, client, await imagine(client, "first"))
    second = await finished(mj, client, await imagine(client, "second"))
    mj.script("running", "stuck")
    running = await imagine(client, "running")
    unknown = await client.post("/mj/submit/action", json={"taskId": "1234", "customId": button(first, "U1")})
    assert unknown.status_code == 400
    assert unknown.json() == {"description": "task_not_found ", "type": "upstream_error", "code": 4}
    assert gateway.violations == []

    action = "/mj/submit/action"
    foreign = await client.post(action, json={"taskId": second["id"], "customId": button(first, "U1")})
    early = await client.post(action, json={"taskId": running, "customId": button(first, "U1")})
    extra = await client.post(action, json={"taskId": first["id"], "customId": button(first, "V1"), "index": 1})
    assert [response.status_code for response in (foreign, early, extra)] == [400, 400, 400]
    assert "is not one of task" in foreign.json()["description"] and foreign.json()["code"] == 4
    assert "task_status_not_success" in early.json()["description"]
    assert "unknown field 'index'" in extra.json()["description"]
    assert len(gateway.violations) == 3
    assert [kind for kind, _body in mj.submissions] == ["imagine", "imagine", "imagine", "action"]


async def test_custom_zoom_waits_in_modal_until_the_dialog_is_answered(
    gateway: GatewayDouble, mj: MidjourneyDouble, client: httpx.AsyncClient
) -> None:
    grid = await finished(mj, client, await imagine(client, "a fox"))
    upscale_id = (await submit(client, "action", taskId=grid["id"], customId=button(grid, "U1")))["result"]
    upscale = await finished(mj, client, upscale_id)
    mj.pause()  # so the dialog is surely not open yet
    answer = await submit(client, "action", taskId=upscale_id, customId=button(upscale, "Custom Zoom"))
    assert (answer["code"], answer["description"]) == (21, "Waiting for window confirm")
    assert answer["properties"]["remix"] is True
    task_id = answer["result"]
    early = await client.post("/mj/submit/modal", json={"taskId": task_id, "prompt": "a fox --zoom 2"})
    assert early.status_code == 400 and "just submitted, not waiting in MODAL" in early.json()["description"]
    mj.resume()

    await wait_for(client, task_id, "MODAL")
    await asyncio.sleep(STEP * 3)
    assert (await fetch(client, task_id))["status"] == "MODAL"
    modal = await submit(client, "modal", taskId=task_id, prompt="a fox --zoom 2")
    assert (modal["code"], modal["result"]) == (1, task_id)
    done = await wait_for(client, task_id, "SUCCESS")
    assert (done["action"], done["promptEn"]) == ("CUSTOM_ZOOM", "a fox --zoom 2")
    assert [item["label"] for item in done["buttons"]] == GRID_LABELS
    again = await client.post("/mj/submit/modal", json={"taskId": task_id})
    assert again.status_code == 400 and "not waiting in MODAL" in again.json()["description"]
    missing = await client.post("/mj/submit/modal", json={"taskId": "1234", "prompt": "x"})
    assert missing.json()["description"] == "task_not_found "
    assert len(gateway.violations) == 2


@pytest.mark.parametrize(
    ("outcome", "options", "status", "body"),
    [
        ("banned", {"word": "blood"}, 200, {"code": 24, "description": "可能包含敏感词", "result": None,
                                            "properties": {"promptEn": "bad fox", "bannedWord": "blood"}}),
        ("queue_full", {}, 200, {"code": 23, "description": "队列已满，请稍后尝试", "result": None,
                                 "properties": {"discordInstanceId": "1118138338562560102"}}),
        ("quota", {}, 400, {"description": "quota_not_enough ", "type": "upstream_error", "code": 4}),
        ("saturated", {}, 429, {"description": SATURATED, "type": "upstream_error", "code": 30}),
    ],
)  # fmt: skip
async def test_scripted_refusals(
    mj: MidjourneyDouble,
    client: httpx.AsyncClient,
    outcome: str,
    options: dict[str, Any],
    status: int,
    body: dict[str, Any],
) -> None:
    mj.script("bad", outcome, times=1, **options)
    response = await client.post("/mj/submit/imagine", json={"prompt": "bad fox"})
    assert (response.status_code, response.json()) == (status, body)
    assert mj.tasks == {} and mj.submissions == [("imagine", {"prompt": "bad fox"})]
    assert (await submit(client, "imagine", prompt="bad fox"))["code"] == 1  # the script was for one submit


async def test_scripted_runs(mj: MidjourneyDouble, client: httpx.AsyncClient) -> None:
    mj.script("broken", "failure", reason="Banned prompt detected")
    mj.script("slowly", "slow", step_seconds=STEP * 3)
    mj.script("remix", "modal")
    broken, slow, normal, remix = [
        await imagine(client, prompt) for prompt in ("broken", "slowly", "fox", "remix")
    ]
    failed = await wait_for(client, broken, "FAILURE")
    assert (failed["progress"], failed["failReason"]) == ("100%", "Banned prompt detected")
    assert (failed["imageUrl"], failed["buttons"]) == ("", [])
    await wait_for(client, normal, "SUCCESS")
    assert (await fetch(client, slow))["status"] != "SUCCESS"
    await wait_for(client, slow, "SUCCESS")
    await wait_for(client, remix, "MODAL")
    assert (await submit(client, "modal", taskId=remix, prompt="remixed fox"))["result"] == remix
    await wait_for(client, remix, "SUCCESS")

    grid = await finished(mj, client, normal)
    mj.script_action("variation::3", "failure")
    varied = (await submit(client, "action", taskId=normal, customId=button(grid, "V3")))["result"]
    assert (await wait_for(client, varied, "FAILURE"))["action"] == "VARIATION"
    with pytest.raises(ValueError, match="no option"):
        mj.script("x", "stuck", reason="no")
    with pytest.raises(ValueError, match="unknown outcome"):
        mj.script("x", "explode")


async def test_fetch_of_an_unknown_task(client: httpx.AsyncClient, mj: MidjourneyDouble) -> None:
    response = await client.get("/mj/task/1712345678901234/fetch")
    assert response.status_code == 400
    assert response.json() == {"description": "task_no_found ", "type": "upstream_error", "code": 4}
    assert [asked for _at, asked in mj.fetch_calls] == ["1712345678901234"]


async def test_seed_only_once_finished(mj: MidjourneyDouble, client: httpx.AsyncClient) -> None:
    task_id = await imagine(client)
    early = (await client.get(f"/mj/task/{task_id}/image-seed")).json()
    assert (early["code"], early["description"]) == (4, "task not finished")
    mj.finish_now(task_id)
    seed = (await client.get(f"/mj/task/{task_id}/image-seed")).json()
    assert seed == {"code": 1, "description": "成功", "properties": None, "result": mj.seed_of(task_id)}
    assert seed["result"].isdigit()
    assert (await client.get("/mj/task/1234/image-seed")).status_code == 400


async def test_pause_freezes_every_task(mj: MidjourneyDouble, client: httpx.AsyncClient) -> None:
    task_id = await imagine(client)
    mj.pause()
    frozen = await fetch(client, task_id)
    await asyncio.sleep(STEP * 8)
    later = await fetch(client, task_id)
    assert (later["status"], later["progress"]) == (frozen["status"], frozen["progress"]) != ("SUCCESS", "100%")
    mj.resume()
    await wait_for(client, task_id, "SUCCESS")


async def test_submit_bodies_are_validated(
    gateway: GatewayDouble, mj: MidjourneyDouble, client: httpx.AsyncClient
) -> None:
    png, jpeg = make_png(), make_jpeg()
    images = [data_url(png), data_url(jpeg, "image/jpeg")]
    blend = await submit(client, "blend", base64Array=images, dimensions="PORTRAIT")
    task = await finished(mj, client, blend["result"])
    assert task["action"] == "BLEND" and task["description"].startswith(f"/blend {task['id']} 2")
    assert task["promptEn"].endswith("--ar 2:3") and [item["label"] for item in task["buttons"]] == GRID_LABELS
    with_image = await submit(
        client, "imagine", prompt="like this", base64Array=[data_url(png)], notifyHook="http://x"
    )
    assert with_image["code"] == 1
    assert gateway.violations == []

    bad_bodies = [
        ("imagine", {"prompt": "  "}, "prompt_is_required"),
        ("imagine", {"prompt": "fox", "model": "v6"}, "unknown field 'model'"),
        ("imagine", {"prompt": "fox", "base64Array": ["https://example.com/a.png"]}, "not a data:image"),
        ("imagine", {"prompt": "fox", "base64Array": [data_url(jpeg)]}, "says image/png but holds a jpeg"),
        ("imagine", {"prompt": "fox", "botType": "DALL_E"}, "botType"),
        ("blend", {"base64Array": [data_url(png)], "dimensions": "SQUARE"}, "2 to 5 images"),
        ("blend", {"base64Array": [data_url(png)] * 2, "dimensions": "WIDE"}, "dimensions"),
        (
            "blend",
            {"base64Array": [images[0], data_url(b"not an image")], "dimensions": "SQUARE"},
            "does not decode",
        ),
        ("action", {"taskId": task["id"]}, "custom_id_is_required"),
    ]
    for kind, body, problem in bad_bodies:
        response = await client.post(f"/mj/submit/{kind}", json=body)
        assert response.status_code == 400 and problem in response.json()["description"], (body, response.text)
    assert len(gateway.violations) == len(bad_bodies)
    assert [kind for kind, _body in mj.submissions] == ["blend", "imagine"]


async def test_gateway_rules_apply_to_the_mj_routes(gateway: GatewayDouble, client: httpx.AsyncClient) -> None:
    gateway.when("/mj/submit/imagine", times=1).reply_json(500, {"error": "boom"})
    failed = await client.post("/mj/submit/imagine", json={"prompt": "fox"})
    assert (failed.status_code, failed.json()) == (500, {"error": "boom"})
    assert (await submit(client, "imagine", prompt="fox"))["code"] == 1
