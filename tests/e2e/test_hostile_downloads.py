"""Hostile answers about pictures: huge files behind links, long or odd redirect chains, a poisoned or failing
Midjourney task list. The user hears back in words, nothing is charged, the key stays with the gateway, and the
process's memory stays far below what it was offered."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testkit.doubles.gateway import GatewayDouble, ServedFile
from testkit.doubles.midjourney import MidjourneyDouble
from testkit.doubles.telegram_api import Call
from testkit.media import make_png
from tests.e2e.harness import API_KEY, StartBot, new_person
from tests.e2e.steps import Conversation

MB = 2**20
HUGE = 60 * MB  # what the links offer
CAP_MB = 5  # what the bot may read (MAX_DOWNLOAD_MB)
# Generous, and still far below the picture: a process that read it whole would grow by at least its size.
MEMORY_BOUND = HUGE // 2
SETTINGS = {"MAX_DOWNLOAD_MB": str(CAP_MB), "MJ_POLL_INTERVAL": "0.3", "MJ_TIMEOUT": "120"}
GRID_LABELS = ["U1", "U2", "U3", "U4", "🔄", "V1", "V2", "V3", "V4"]
KEY_HEADER = f"Bearer {API_KEY}"

_colours = itertools.count(1)


@pytest.fixture(autouse=True)
def list_cured(midjourney: MidjourneyDouble) -> Iterator[None]:
    """Poisoned list answers end with the test that asked for them (the double outlives it)."""
    yield
    midjourney.cure_list()


# --- helpers ------------------------------------------------------------------------------------------------


def _text(call: Call) -> str:
    return str(call.params.get("text") or call.params.get("caption") or "")


def _says(chat_id: int, words: str) -> Any:
    return lambda call: call.chat_id == chat_id and not call.failed and words in _text(call)


def _is_result(call: Call, chat_id: int) -> bool:
    """A delivered Midjourney picture: a photo (or a file) with the task's buttons under it."""
    return (
        call.method in ("sendPhoto", "sendDocument")
        and call.chat_id == chat_id
        and not call.failed
        and "reply_markup" in call.params
    )


def _labels(message: dict[str, Any]) -> list[str]:
    return [button["text"] for row in message["reply_markup"]["inline_keyboard"] for button in row]


def _unique_png() -> bytes:
    n = next(_colours)
    return make_png(48, 48, (n * 53 % 256, n * 29 % 256, 200))


async def _imagine(me: Conversation, prompt: str, timeout: float = 30) -> Call:
    me.send_text(f"/imagine {prompt}")
    since = me.since
    return await me.telegram.wait_for(lambda call: _is_result(call, me.chat_id) and call.at >= since, timeout)


def _vm_kb(pid: int, field: str) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB$", status, re.MULTILINE)
    assert match, f"no {field} in /proc/{pid}/status"
    return int(match.group(1)) * 1024


class PeakMemory:
    """How far the bot process's resident memory rose above where it stood, while a block ran.

    The kernel's high-water mark (VmHWM), reset to the current size on entry (clear_refs 5), catches every peak
    however short; samples of VmRSS every few milliseconds stand in for it where the reset is not allowed.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.before = 0
        self.peak = 0
        self._mark_reset = False
        self._sampler: asyncio.Task[None] | None = None

    async def __aenter__(self) -> PeakMemory:
        with contextlib.suppress(OSError):
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
            self._mark_reset = True
        self.before = self.peak = _vm_kb(self.pid, "VmRSS")
        self._sampler = asyncio.create_task(self._sample())
        return self

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, _vm_kb(self.pid, "VmRSS"))
            await asyncio.sleep(0.005)

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._sampler is not None
        self._sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._sampler
        self.peak = max(self.peak, _vm_kb(self.pid, "VmRSS"))
        if self._mark_reset:
            self.peak = max(self.peak, _vm_kb(self.pid, "VmHWM"))

    @property
    def growth(self) -> int:
        return self.peak - self.before

    def __str__(self) -> str:
        how = "high-water mark" if self._mark_reset else "samples"
        return f"{self.before / MB:.0f} MB before, {self.peak / MB:.0f} MB at the peak ({how})"


def _target(final: ServedFile, picture: bytes, kind: str) -> str:
    """Where the last redirect of a chain points: the picture, the picture by ftp, or the picture as a data: URL."""
    if kind == "ftp":
        return final.url.replace("http://", "ftp://")
    if kind == "data":
        return "data:image/png;base64," + base64.b64encode(picture).decode()
    return final.url


def _assert_not_read_whole(huge: ServedFile) -> None:
    assert huge.requests, "the bot never fetched the picture"
    assert not any(request.complete for request in huge.requests), "the bot read the whole picture"


def _assert_key_stays_at_the_first_address(chain: ServedFile, gateway: GatewayDouble) -> None:
    """The first hop is the gateway's own address (MJ_BASE_URL), so the key goes there; it must go no further,
    to the gateway's address again or elsewhere."""
    assert chain.requests, "the bot never fetched the picture's link"
    first = [request for request in chain.requests if request.hop == 0]
    assert first and all(request.address == gateway.root_url for request in first)
    assert all(request.authorization == KEY_HEADER for request in first)  # so the check below means something
    leaked = [
        (request.hop, request.address) for request in chain.requests if request.hop and request.authorization
    ]
    assert not leaked, f"the key followed the redirect to (hop, address): {leaked}"


# --- a: /draw linking to a huge picture -----------------------------------------------------------------------


@pytest.mark.parametrize("declare_length", [True, False], ids=["with-length", "chunked"])
async def test_draw_linking_to_a_huge_picture_is_refused_uncharged_in_bounded_memory(
    start_bot: StartBot, gateway: GatewayDouble, declare_length: bool
) -> None:
    process = await start_bot(**SETTINGS)
    me = Conversation(process.telegram, *new_person(process.telegram))
    me.send_text("/draw a warm-up sketch")  # every code path of a drawing loaded before memory is measured
    await me.reply("sendPhoto")
    assert (await me.quota())["draw"] == (1, "5")

    huge = gateway.serve_large_picture(HUGE, declare_length=declare_length)
    gateway.when(
        "/images/generations", lambda call: call.json["prompt"] == "a planet-sized mural"
    ).reply_image_url(huge.url)
    async with PeakMemory(process.pid) as memory:
        me.send_text("/draw a planet-sized mural")
        answer = await me.reply_text(timeout=30)

    assert "larger than I accept" in answer and "Nothing was charged" in answer
    _assert_not_read_whole(huge)
    await process.telegram.wait_idle(0.5)
    assert not me.calls_since("sendPhoto") and not me.calls_since("sendDocument")
    assert (await me.quota())["draw"] == (1, "5")
    assert memory.growth < MEMORY_BOUND, f"memory rose with a {HUGE // MB} MB picture on offer: {memory}"


# --- b: a Midjourney result that is a huge picture ------------------------------------------------------------


@pytest.mark.parametrize("declare_length", [True, False], ids=["with-length", "chunked"])
async def test_a_huge_midjourney_result_fails_the_task_and_refunds_it_in_bounded_memory(
    start_bot: StartBot, gateway: GatewayDouble, midjourney: MidjourneyDouble, declare_length: bool
) -> None:
    process = await start_bot(**SETTINGS)
    telegram = process.telegram
    me = Conversation(telegram, *new_person(telegram))
    await _imagine(me, "a warm-up teapot")  # previews and a delivery loaded before memory is measured
    assert (await me.quota())["imagine"] == (1, "10")

    huge = gateway.serve_large_picture(HUGE, declare_length=declare_length)
    midjourney.script("a cathedral of glass", "success", times=1, image_url=huge.url)
    async with PeakMemory(process.pid) as memory:
        me.send_text("/imagine a cathedral of glass")
        failed = await telegram.wait_for(_says(me.chat_id, "larger than I accept"), timeout=30)

    assert "given back" in _text(failed)
    _assert_not_read_whole(huge)
    await telegram.wait_idle(0.8)
    assert not [call for call in me.calls_since() if _is_result(call, me.chat_id)]
    uploads = [call for call in me.calls_since() if call.method in ("sendPhoto", "sendDocument")]
    assert all(len(file.data) < MB for call in uploads for file in call.files.values())  # previews at most
    assert (await me.quota())["imagine"] == (1, "10")
    assert memory.growth < MEMORY_BOUND, f"memory rose with a {HUGE // MB} MB picture on offer: {memory}"


# --- c: redirect chains ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hops", "target", "delivered"),
    [
        (["gateway", "gateway", "elsewhere"], "picture", True),
        (["gateway", "gateway", "elsewhere", "gateway"], "picture", False),
        (["gateway", "gateway"], "ftp", False),
        (["gateway", "gateway"], "data", False),
    ],
    ids=[
        "three-redirects-followed",
        "four-redirects-refused",
        "redirect-to-ftp-refused",
        "redirect-to-data-refused",
    ],
)
async def test_midjourney_result_behind_redirects_keeps_the_key_at_the_gateway(
    start_bot: StartBot,
    gateway: GatewayDouble,
    midjourney: MidjourneyDouble,
    hops: list[str],
    target: str,
    delivered: bool,
) -> None:
    process = await start_bot(**SETTINGS)
    telegram = process.telegram
    me = Conversation(telegram, *new_person(telegram))
    picture = _unique_png()
    final = gateway.serve_picture(picture)
    bases = {"gateway": gateway.root_url, "elsewhere": gateway.second_root_url}
    chain = gateway.serve_redirects(_target(final, picture, target), [bases[hop] for hop in hops])
    prompt = f"a lighthouse behind {len(hops)} redirects to a {target}"
    midjourney.script(prompt, "success", times=1, image_url=chain.url)

    if delivered:
        result = await _imagine(me, prompt)
        assert result.files["photo"].data == picture
        assert _labels(result.params) == GRID_LABELS
        assert (await me.quota())["imagine"] == (1, "10")
    else:
        me.send_text(f"/imagine {prompt}")
        given_up = await telegram.wait_for(_says(me.chat_id, "could not be delivered"), timeout=30)
        assert "given back" in _text(given_up)
        await telegram.wait_idle(0.5)
        assert not [call for call in me.calls_since() if _is_result(call, me.chat_id)]
        assert not final.requests, "the picture past the refused redirect was fetched"
        assert (await me.quota())["imagine"] == (0, "10")
    # At most three redirects are followed: the fourth hop is asked for, and its redirect is not.
    assert {request.hop for request in chain.requests} == set(range(min(len(hops), 4)))
    _assert_key_stays_at_the_first_address(chain, gateway)
    assert not any(request.authorization for request in final.requests)


@pytest.mark.parametrize(
    ("hops", "target"),
    [(["gateway", "elsewhere", "gateway", "elsewhere"], "picture"), (["gateway"], "data")],
    ids=["four-redirects-refused", "redirect-to-data-refused"],
)
async def test_draw_linking_through_bad_redirects_is_refused_uncharged(
    start_bot: StartBot, gateway: GatewayDouble, hops: list[str], target: str
) -> None:
    process = await start_bot(**SETTINGS)
    me = Conversation(process.telegram, *new_person(process.telegram))
    picture = _unique_png()
    final = gateway.serve_picture(picture)
    bases = {"gateway": gateway.root_url, "elsewhere": gateway.second_root_url}
    chain = gateway.serve_redirects(_target(final, picture, target), [bases[hop] for hop in hops])
    gateway.when("/images/generations", lambda call: call.json["prompt"] == "a maze of mirrors").reply_image_url(
        chain.url
    )

    me.send_text("/draw a maze of mirrors")
    answer = await me.reply_text(timeout=30)
    assert answer.startswith("Sorry") and "AI service" in answer  # the gateway's fault, said so
    assert [request.hop for request in chain.requests] == list(range(min(len(hops), 4)))
    assert not final.requests
    assert not any(request.authorization for request in chain.requests[1:])
    await process.telegram.wait_idle(0.5)
    assert not me.calls_since("sendPhoto") and not me.calls_since("sendDocument")
    assert (await me.quota())["draw"] == (0, "5")


# --- d: a poisoned task list ----------------------------------------------------------------------------------


async def test_malformed_list_entries_do_not_stop_real_tasks_from_being_tracked(
    start_bot: StartBot, midjourney: MidjourneyDouble
) -> None:
    process = await start_bot(**SETTINGS)
    telegram = process.telegram
    midjourney.poison_list()
    people = [Conversation(telegram, *new_person(telegram, name)) for name in ("Ann", "Bob")]
    prompts = ["a poisoned well, still drawn", "a poisoned apple, still drawn"]
    for me, prompt in zip(people, prompts, strict=True):
        # A second a step: progress is visible between Telegram's pauses between edits.
        midjourney.script(prompt, "slow", times=1, step_seconds=1.0)
        me.send_text(f"/imagine {prompt}")

    for me, prompt in zip(people, prompts, strict=True):
        result = await telegram.wait_for(
            lambda call, me=me: _is_result(call, me.chat_id) and call.at >= me.since, 40
        )
        assert _labels(result.params) == GRID_LABELS
        assert result.result["caption"] == prompt
        shown = [_text(call) for call in me.calls_since() if call.at < result.at]
        assert any(re.search(r"\d+%", text) for text in shown), f"no progress shown to {me.user['first_name']}"


# --- e: a task list that keeps failing ------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["status-500", "not-a-list"])
async def test_a_task_times_out_and_is_refunded_once_while_the_list_call_fails(
    start_bot: StartBot, gateway: GatewayDouble, midjourney: MidjourneyDouble, tmp_path: Path, fault: str
) -> None:
    # A delivered picture first, so the count stands at 1: a second refund would show, not stop at zero.
    process = await start_bot(tmp_path, **SETTINGS)
    telegram = process.telegram
    me = Conversation(telegram, *new_person(telegram))
    warm_up = await _imagine(me, "a warm-up kite")
    # The status message goes once the delivery is recorded: stopping earlier could catch the delivery half-way.
    await telegram.wait_for(
        lambda call: call.method == "deleteMessage" and call.chat_id == me.chat_id and call.at >= warm_up.at
    )
    await process.stop()
    process = await start_bot(tmp_path, **{**SETTINGS, "MJ_TIMEOUT": "3"})

    broken = midjourney.fail_list(fault)
    try:
        me.send_text("/imagine a lantern in the fog")
        await me.reply("sendMessage")  # accepted, and followed from now on
        timed_out = await telegram.wait_for(_says(me.chat_id, "did not finish"), timeout=30)
        failed_polls = broken.hits
    finally:
        gateway.drop(broken)

    assert "given back" in _text(timed_out)
    assert failed_polls >= 1, "the bot never asked for the task while the list call failed"
    await telegram.wait_idle(1.0)  # the list answers again, and Midjourney has long finished the task by now
    told = [call for call in telegram.sent_to(me.chat_id) if "given back" in _text(call) and not call.failed]
    assert len(told) == 1, [_text(call) for call in told]
    results = [call for call in telegram.sent_to(me.chat_id) if _is_result(call, me.chat_id)]
    assert len(results) == 1  # the warm-up's: the timed-out task is not delivered when its list comes back
    assert (await me.quota())["imagine"] == (1, "10")
