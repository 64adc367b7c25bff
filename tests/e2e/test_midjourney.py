"""Midjourney: /imagine with live progress and buttons, presses, blend, seed, failures, timeouts, restarts."""

from __future__ import annotations

import asyncio
import base64
import itertools
import re
import time
from typing import Any

import pytest

from testkit.doubles.midjourney import MidjourneyDouble
from testkit.doubles.telegram_api import Call, TelegramDouble
from testkit.media import image_size, make_png
from tests.e2e.harness import StartBot, new_person
from tests.e2e.steps import Conversation

GRID_LABELS = ["U1", "U2", "U3", "U4", "🔄", "V1", "V2", "V3", "V4"]
_groups = itertools.count(-1002000000001, -1)
_colours = itertools.count(1)

shared = pytest.mark.usefixtures("bot")


def _labels(message: dict[str, Any]) -> list[str]:
    return [button["text"] for row in message["reply_markup"]["inline_keyboard"] for button in row]


def _callback_of(message: dict[str, Any], label: str) -> str:
    rows = message["reply_markup"]["inline_keyboard"]
    return next(button["callback_data"] for row in rows for button in row if button["text"] == label)


def _is_result(call: Call, chat_id: int) -> bool:
    """A delivered picture: a photo with Midjourney's buttons under it."""
    return (
        call.method == "sendPhoto"
        and call.chat_id == chat_id
        and not call.failed
        and "reply_markup" in call.params
    )


async def _result(telegram: TelegramDouble, chat_id: int, after: float, timeout: float = 20) -> Call:
    return await telegram.wait_for(lambda call: _is_result(call, chat_id) and call.at >= after, timeout)


def _task_of_prompt(midjourney: MidjourneyDouble, prompt: str) -> str:
    [task_id] = [
        task.id for task in midjourney.tasks.values() if task.prompt == prompt and task.endpoint == "imagine"
    ]
    return task_id


async def _imagine(me: Conversation, prompt: str) -> Call:
    me.send_text(f"/imagine {prompt}")
    return await _result(me.telegram, me.chat_id, me.since)


def _submissions(midjourney: MidjourneyDouble, kind: str) -> list[dict[str, Any]]:
    return [body for endpoint, body in midjourney.submissions if endpoint == kind]


# --- imagine ------------------------------------------------------------------------------------


@shared
async def test_imagine_shows_progress_then_the_grid_with_its_buttons(
    telegram: TelegramDouble, midjourney: MidjourneyDouble, person
) -> None:
    me = Conversation(telegram, *person())
    prompt = "a lighthouse at dawn --ar 16:9"
    # Slow enough (a second a step) that progress is shown between Telegram's pauses between edits.
    midjourney.script("lighthouse at dawn", "slow", times=1, step_seconds=1.0)
    request = me.send_text(f"/imagine {prompt}")

    status = await me.reply("sendMessage")
    assert "Queued" in status.result["text"] and prompt in status.result["text"]
    assert status.params["reply_parameters"]["message_id"] == request["message"]["message_id"]
    result = await _result(telegram, me.chat_id, me.since)

    assert _submissions(midjourney, "imagine")[-1] == {"prompt": prompt}
    task = midjourney.tasks[_task_of_prompt(midjourney, prompt)]
    # The grid: the task's own image, its buttons in Midjourney's order, the prompt as caption.
    assert image_size(result.files["photo"].data) == ("png", 512, 512)
    assert _labels(result.params) == GRID_LABELS
    assert result.result["caption"] == prompt
    # On the way, the one status message (or the preview photo that replaced it) showed the progress.
    shown = [
        call.params.get("text") or call.params.get("caption") or call.params.get("media", {}).get("caption", "")
        for call in me.calls_since()
        if call.method in ("editMessageText", "editMessageCaption", "editMessageMedia", "sendPhoto")
        and call.at < result.at
    ]
    assert any(re.search(r"\d+%", text or "") for text in shown), shown
    previews = [call for call in me.calls_since("sendPhoto") if call.at < result.at]
    assert all(image_size(call.files["photo"].data) for call in previews)  # real preview images
    # The status message is cleaned away once the picture is there.
    await telegram.wait_idle(0.5)
    assert me.calls_since("deleteMessage")
    assert task.status == "SUCCESS"
    assert (await me.quota())["imagine"] == (1, "10")


@shared
async def test_pressing_u1_submits_that_buttons_custom_id_and_delivers_the_upscale(
    telegram: TelegramDouble, midjourney: MidjourneyDouble, person
) -> None:
    me = Conversation(telegram, *person())
    grid = await _imagine(me, "a red bicycle")
    grid_id = _task_of_prompt(midjourney, "a red bicycle")
    u1 = next(b["customId"] for b in midjourney.tasks[grid_id].buttons if b["label"] == "U1")

    press = telegram.press_button(me.user, grid.result, _callback_of(grid.params, "U1"))
    pressed_at = time.monotonic()
    answer = await telegram.wait_for_method(
        "answerCallbackQuery", callback_query_id=press["callback_query"]["id"], timeout=5
    )
    assert "U1" in answer.params.get("text", "")
    upscale = await _result(telegram, me.chat_id, pressed_at)

    assert _submissions(midjourney, "action")[-1] == {"taskId": grid_id, "customId": u1}
    assert image_size(upscale.files["photo"].data) == ("png", 256, 256)
    labels = _labels(upscale.params)
    assert "U1" not in labels and "Vary (Strong)" in labels  # the upscale's own buttons
    assert upscale.params["reply_parameters"]["message_id"] == grid.result["message_id"]
    assert (await me.quota())["imagine"][0] == 2


@shared
async def test_in_a_group_the_presser_pays_and_a_second_press_submits_nothing(
    telegram: TelegramDouble, midjourney: MidjourneyDouble, person
) -> None:
    group = telegram.group_chat(next(_groups), title="Art club")
    asker, _ = person("Ann")
    friend, _ = person("Bob")
    ann, bob = Conversation(telegram, asker, group), Conversation(telegram, friend, group)
    ann.send_text("/imagine@WenwenTestBot a castle in the clouds")
    grid = await _result(telegram, group["id"], ann.since)
    grid_id = _task_of_prompt(midjourney, "a castle in the clouds")
    v2 = next(b["customId"] for b in midjourney.tasks[grid_id].buttons if b["label"] == "V2")

    data = _callback_of(grid.params, "V2")
    first = telegram.press_button(friend, grid.result, data)
    second = telegram.press_button(friend, grid.result, data)  # at once: still being submitted
    pressed_at = time.monotonic()
    answers = [
        (
            await telegram.wait_for_method("answerCallbackQuery", callback_query_id=p["callback_query"]["id"])
        ).params.get("text", "")
        for p in (first, second)
    ]
    assert sorted(answers) == [
        "V2 is already on its way; it will appear here when Midjourney is done.",
        "V2: on it…",
    ]
    await telegram.wait_for(lambda c: c.method == "sendMessage" and "V2: queued" in c.params.get("text", ""))
    third = telegram.press_button(friend, grid.result, data)  # later, while the variation renders
    answer = await telegram.wait_for_method("answerCallbackQuery", callback_query_id=third["callback_query"]["id"])
    assert "already on its way" in answer.params["text"]
    await _result(telegram, group["id"], pressed_at)

    assert [body for body in _submissions(midjourney, "action") if body["customId"] == v2] == [
        {"taskId": grid_id, "customId": v2}
    ]
    assert (await bob.quota())["imagine"][0] == 1  # Bob pressed, Bob paid
    assert (await ann.quota())["imagine"][0] == 1  # Ann paid for her own /imagine only


@shared
@pytest.mark.parametrize("data", ["mj:forged-key-00", "something-else", "mj:"])
async def test_a_forged_or_foreign_callback_gets_an_alert_and_does_nothing(
    telegram: TelegramDouble, midjourney: MidjourneyDouble, person, data: str
) -> None:
    me = Conversation(telegram, *person())
    grid = await _imagine(me, f"a teapot for forgery test {data}")
    submissions = len(midjourney.submissions)
    query_id = f"99{next(_colours):012d}"
    telegram.push_update(
        {
            "callback_query": {
                "id": query_id,
                "from": me.user,
                "message": grid.result,
                "chat_instance": "1",
                "data": data,
            }
        }
    )
    answer = await telegram.wait_for_method("answerCallbackQuery", callback_query_id=query_id)
    assert answer.params.get("show_alert") is True and "no longer works" in answer.params["text"]
    await telegram.wait_idle(0.5)
    assert len(midjourney.submissions) == submissions


@shared
async def test_custom_zoom_answers_the_dialog_with_the_prompt(
    telegram: TelegramDouble, midjourney: MidjourneyDouble, person
) -> None:
    me = Conversation(telegram, *person())
    grid = await _imagine(me, "a quiet harbour")
    telegram.press_button(me.user, grid.result, _callback_of(grid.params, "U3"))
    upscale = await _result(telegram, me.chat_id, time.monotonic())

    pressed_at = time.monotonic()
    telegram.press_button(me.user, upscale.result, _callback_of(upscale.params, "Custom Zoom"))
    await _result(telegram, me.chat_id, pressed_at)
    [modal] = [body for endpoint, body in midjourney.submissions if endpoint == "modal"][-1:]
    assert modal["prompt"] == "a quiet harbour"


# --- refusals and failures ----------------------------------------------------------------------


@shared
async def test_imagine_without_a_prompt_calls_nothing(
    telegram: TelegramDouble, midjourney: MidjourneyDouble, person
) -> None:
    me = Conversation(telegram, *person())
    before = len(midjourney.submissions)
    me.send_text("/imagine   ")
    assert "/imagine <prompt>" in await me.reply_text()
    await telegram.wait_idle(0.3)
    assert len(midjourney.submissions) == before


@shared
@pytest.mark.parametrize(
    ("outcome", "expected"),
    [("banned", "“gore” is not allowed"), ("queue_full", "busy"), ("quota", "unavailable"), ("saturated", "busy")],
)
async def test_a_refused_submission_is_explained_and_not_charged(
    telegram: TelegramDouble, midjourney: MidjourneyDouble, person, outcome: str, expected: str
) -> None:
    me = Conversation(telegram, *person())
    midjourney.script(f"refuse-{outcome}", outcome, times=1)
    me.send_text(f"/imagine a scene to refuse-{outcome}")
    answer = await me.reply_text()
    assert expected in answer and "{" not in answer
    assert (await me.quota())["imagine"][0] == 0


@shared
async def test_a_failed_task_is_reported_and_refunded(
    telegram: TelegramDouble, midjourney: MidjourneyDouble, person
) -> None:
    me = Conversation(telegram, *person())
    midjourney.script("doomed", "failure", times=1, reason="Job failed: invalid parameter")
    me.send_text("/imagine a doomed ship")
    await me.reply("sendMessage")

    def says_failed(call: Call) -> bool:
        text = call.params.get("text") or call.params.get("caption") or ""
        return call.chat_id == me.chat_id and "could not finish" in text

    failed = await telegram.wait_for(says_failed, timeout=20)
    assert "invalid parameter" in (failed.params.get("text") or failed.params.get("caption"))
    assert failed.method in ("editMessageText", "editMessageCaption")  # the status message says it
    assert (await me.quota())["imagine"][0] == 0
    await telegram.wait_idle(0.8)
    assert not [call for call in me.calls_since("sendPhoto") if "reply_markup" in call.params]


async def test_a_task_past_the_timeout_is_reported_and_refunded(
    start_bot: StartBot, midjourney: MidjourneyDouble
) -> None:
    process = await start_bot(MJ_TIMEOUT="2", MJ_POLL_INTERVAL="0.3")
    me = Conversation(process.telegram, *new_person(process.telegram))
    midjourney.script("never-ending", "stuck", times=1)
    me.send_text("/imagine a never-ending staircase")
    timed_out = await process.telegram.wait_for(
        lambda c: (
            c.chat_id == me.chat_id and "did not finish" in (c.params.get("text") or c.params.get("caption") or "")
        ),
        timeout=15,
    )
    assert "given back" in (timed_out.params.get("text") or timed_out.params.get("caption"))
    assert (await me.quota())["imagine"][0] == 0


async def test_a_quota_of_zero_refuses_before_submitting(
    start_bot: StartBot, midjourney: MidjourneyDouble
) -> None:
    process = await start_bot(QUOTA_IMAGINE="0")
    me = Conversation(process.telegram, *new_person(process.telegram))
    before = len(midjourney.submissions)
    me.send_text("/imagine a forbidden fruit")
    answer = await me.reply_text()
    assert "imagine" in answer and "0" in answer
    assert len(midjourney.submissions) == before


# --- restarts and polling cost --------------------------------------------------------------------


async def test_a_killed_bot_still_delivers_the_picture_exactly_once_after_restart(
    start_bot: StartBot, midjourney: MidjourneyDouble, tmp_path
) -> None:
    process = await start_bot(tmp_path, MJ_POLL_INTERVAL="0.3")
    telegram = process.telegram
    me = Conversation(telegram, *new_person(telegram))
    me.send_text("/imagine a phoenix rising")
    await me.reply("sendMessage")  # accepted and being tracked
    midjourney.pause()
    await process.kill()  # SIGKILL mid-render: no clean-up at all
    midjourney.resume()

    await start_bot(tmp_path, MJ_POLL_INTERVAL="0.3")
    await _result(telegram, me.chat_id, me.since)
    await asyncio.sleep(1.5)  # several more polls: nothing may be sent twice
    results = [call for call in me.calls_since("sendPhoto") if "reply_markup" in call.params]
    assert len(results) == 1
    assert (await me.quota())["imagine"] == (1, "10")


async def test_a_picture_being_sent_at_sigterm_is_sent_once_not_again_after_restart(
    start_bot: StartBot, midjourney: MidjourneyDouble, tmp_path
) -> None:
    process = await start_bot(tmp_path, MJ_POLL_INTERVAL="0.3")
    telegram = process.telegram
    me = Conversation(telegram, *new_person(telegram))
    me.send_text("/imagine a lighthouse in the storm")
    task_id = await _task_submitted(midjourney, "a lighthouse in the storm")
    telegram.delay("sendPhoto", 1.5)  # the finished grid takes a while to send
    midjourney.finish_now(task_id)
    await telegram.wait_in_flight("sendPhoto")
    assert await process.stop() == 0  # SIGTERM while the picture is being sent

    await start_bot(tmp_path, MJ_POLL_INTERVAL="0.3")
    await telegram.wait_idle(1.5)  # several polls: a picture left half-delivered would be sent again now
    results = [call for call in me.calls_since("sendPhoto") if "reply_markup" in call.params]
    assert len(results) == 1


async def _task_submitted(midjourney: MidjourneyDouble, prompt: str, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while not any(task.prompt == prompt for task in midjourney.tasks.values()):
        assert time.monotonic() < deadline, f"no Midjourney task for {prompt!r}"
        await asyncio.sleep(0.05)
    return _task_of_prompt(midjourney, prompt)


async def test_fifty_pending_tasks_cost_one_list_call_per_interval(
    start_bot: StartBot, midjourney: MidjourneyDouble
) -> None:
    process = await start_bot(MJ_POLL_INTERVAL="0.5")
    prompts = [f"pending crowd {n:02d}" for n in range(50)]  # none inside another: scripts match by substring
    for prompt in prompts:
        midjourney.script(prompt, "stuck", times=1)
    for prompt in prompts:  # fifty people at once, each with one picture on the way
        Conversation(process.telegram, *new_person(process.telegram)).send_text(f"/imagine {prompt}")
    for prompt in prompts:
        await process.telegram.wait_for(
            lambda c, prompt=prompt: c.method == "sendMessage" and prompt in c.params.get("text", "")
        )
    ids = {task.id for task in midjourney.tasks.values() if task.prompt in prompts}
    assert len(ids) == 50

    start, fetches = time.monotonic(), len(midjourney.fetch_calls)
    await asyncio.sleep(3.0)
    elapsed = time.monotonic() - start
    window = [asked for at, asked in midjourney.list_calls if at >= start and ids & set(asked)]
    assert window, "the tracker stopped polling"
    assert all(ids <= set(asked) for asked in window)  # every call asks for all 50 at once
    assert len(window) <= elapsed / 0.5 + 1  # one call per interval, not one per task
    assert len(midjourney.fetch_calls) == fetches


# --- blend and seed -----------------------------------------------------------------------------


@shared
async def test_an_album_captioned_blend_is_blended_in_the_named_shape(
    telegram: TelegramDouble, midjourney: MidjourneyDouble, person
) -> None:
    me = Conversation(telegram, *person())
    pictures = [make_png(40, 40, (next(_colours) * 50 % 256, 90, 200)) for _ in range(3)]
    album = f"blend-{next(_colours)}"
    me.send_photo(pictures[0], caption="/blend portrait", media_group_id=album)
    for picture in pictures[1:]:
        me.send_photo(picture, media_group_id=album)

    grid = await _result(telegram, me.chat_id, me.since)
    body = _submissions(midjourney, "blend")[-1]
    assert body["dimensions"] == "PORTRAIT"
    assert body["base64Array"] == ["data:image/png;base64," + base64.b64encode(p).decode() for p in pictures]
    assert _labels(grid.params) == GRID_LABELS


@shared
async def test_blend_needs_two_to_five_photos(
    telegram: TelegramDouble, midjourney: MidjourneyDouble, person
) -> None:
    me = Conversation(telegram, *person())
    before = len(midjourney.submissions)
    me.send_photo(make_png(), caption="/blend")
    assert "2 to 5 photos" in await me.reply_text()
    assert len(midjourney.submissions) == before


@shared
async def test_seed_as_a_reply_to_a_result_gives_its_seed(
    telegram: TelegramDouble, midjourney: MidjourneyDouble, person
) -> None:
    me = Conversation(telegram, *person())
    grid = await _imagine(me, "a seed-bearing tree")
    me.send_text("/seed", reply_to=grid.result)
    answer = await me.reply_text()
    assert midjourney.seed_of(_task_of_prompt(midjourney, "a seed-bearing tree")) in answer
    me.send_text("/seed")
    assert "Reply /seed" in await me.reply_text()


@shared
async def test_a_picture_telegram_keeps_refusing_is_reported_and_refunded(
    telegram: TelegramDouble, midjourney: MidjourneyDouble, person
) -> None:
    me = Conversation(telegram, *person())
    telegram.fail(
        "sendPhoto",
        times=50,
        error_code=400,
        description="Bad Request: IMAGE_PROCESS_FAILED",
        match=lambda call: call.chat_id == me.chat_id,
    )
    me.send_text("/imagine an undeliverable sunset")
    given_up = await telegram.wait_for(
        lambda c: (
            c.chat_id == me.chat_id
            and "could not be delivered" in (c.params.get("text") or c.params.get("caption") or "")
        ),
        timeout=30,
    )
    assert "given back" in (given_up.params.get("text") or given_up.params.get("caption"))
    attempts = [c for c in me.calls_since("sendPhoto") if "reply_markup" in c.params]
    assert attempts == []  # none got through
    assert (await me.quota())["imagine"][0] == 0
