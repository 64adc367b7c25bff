"""The five measurements: voice turn overhead, many people at once, text throughput, Midjourney polling cost,
start-up. Each returns rows for the table: (case, measure, value, goal)."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import time
from dataclasses import dataclass

from bench.harness import Stage, cpu_seconds, median_p95, peak_rss_mb, stage
from bot.media.audio import ENCODER_OPTIONS, VOICE_BITRATE, find_ffmpeg
from testkit.doubles.telegram_api import Call
from testkit.identities import new_person
from testkit.media import make_voice_note, make_wav

Row = tuple[str, str, str, str]
ANSWER_SECONDS = 5.0  # the spoken answer the gateway double returns


@dataclass
class Sizes:
    voice_turns: int = 30
    users: int = 200
    latency: float = 2.0
    texts: int = 1000
    text_users: int = 100
    mj_tasks: int = 500
    mj_interval: float = 1.0
    mj_window: float = 10.0


def bare_encode_seconds(repeats: int = 10) -> float:
    """The floor of a voice turn: ffmpeg alone turning the same WAV into the same OGG/Opus, median of runs."""
    ffmpeg = find_ffmpeg(os.environ.get("FFMPEG_PATH", ""))
    wav = make_wav(ANSWER_SECONDS)
    command = [ffmpeg, "-v", "error", "-f", "wav", "-i", "pipe:0", "-acodec", "libopus", "-b:a", VOICE_BITRATE,
               *ENCODER_OPTIONS, "-f", "ogg", "pipe:1"]  # fmt: skip
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, input=wav, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _answered(stage_: Stage, chat_id: int, after: float, method: str = "sendVoice"):  # noqa: ANN202
    return lambda call: call.method == method and call.chat_id == chat_id and call.at >= after and not call.failed


async def voice_overhead(sizes: Sizes, encode: float) -> list[Row]:
    """Sequential voice turns against a gateway that answers at once with a 5-second WAV."""
    async with stage() as s:
        s.gateway.when("/chat/completions").reply_audio(seconds=ANSWER_SECONDS)
        user, chat = new_person(s.telegram)
        note = make_voice_note(2.0)
        latencies = []
        for _ in range(sizes.voice_turns):
            started = time.monotonic()
            s.telegram.send_voice(user, chat, note, duration=2)
            sent: Call = await s.telegram.wait_for(_answered(s, chat["id"], started), timeout=60)
            latencies.append(sent.at - started)
        median, p95 = median_p95(latencies)
    return [
        ("voice turn", "median / p95 (ms)", f"{median * 1000:.0f} / {p95 * 1000:.0f}", ""),
        ("voice turn", "bare ffmpeg encode of the 5 s answer (ms)", f"{encode * 1000:.0f}", ""),
        ("voice turn", "ratio turn / encode", f"{median / encode:.2f}", "<= 1.3"),
    ]


async def crowd(sizes: Sizes, encode: float) -> list[Row]:
    """Many people send a voice note at the same moment; every gateway call takes `latency` seconds."""
    async with stage() as s:
        s.gateway.when("/chat/completions").delay(sizes.latency).reply_audio(seconds=ANSWER_SECONDS)
        s.gateway.when("/audio/transcriptions").delay(sizes.latency)
        note = make_voice_note(2.0)
        people = [new_person(s.telegram) for _ in range(sizes.users)]
        started = time.monotonic()
        for user, chat in people:
            s.telegram.send_voice(user, chat, note, duration=2)
        answered = set()
        deadline = started + 60 + sizes.users * encode * 3
        while len(answered) < len(people) and time.monotonic() < deadline:
            call = await s.telegram.wait_for(
                lambda c: (
                    c.method in ("sendVoice", "sendMessage") and c.at >= started and c.chat_id not in answered
                ),
                timeout=max(1.0, deadline - time.monotonic()),
            )
            answered.add(call.chat_id)
            last = call
        voices = {c.chat_id for c in s.telegram.calls_to("sendVoice") if c.at >= started and not c.failed}
        errors = len(people) - len(voices)
        wall = last.at - started
        rss = peak_rss_mb(s.bot.pid)
    upstream = 2 * sizes.latency  # a transcription, then the spoken answer
    floor = sizes.users * encode / (os.cpu_count() or 1)
    return [
        (
            "many at once",
            f"{sizes.users} voice notes, {sizes.latency:g} s per gateway call: wall (s)",
            f"{wall:.1f}",
            "",
        ),
        ("many at once", "errors", str(errors), "0"),
        ("many at once", "CPU floor N x encode / cores (s)", f"{floor:.1f}", ""),
        ("many at once", "ratio (wall - upstream) / floor", f"{(wall - upstream) / floor:.2f}", "<= 1.3"),
        ("many at once", "peak RSS of the bot (MB)", f"{rss:.0f}", "< 300"),
    ]


async def text_throughput(sizes: Sizes) -> list[Row]:
    async with stage() as s:
        people = [new_person(s.telegram) for _ in range(sizes.text_users)]
        per_user = sizes.texts // len(people)
        cpu_before = cpu_seconds(s.bot.pid)
        started = time.monotonic()
        for n in range(per_user):
            for user, chat in people:
                s.telegram.send_text(user, chat, f"message {n} from {user['id']}")
        total = per_user * len(people)
        await s.telegram.wait_for(
            lambda _: len([c for c in s.telegram.calls_to("sendMessage") if c.at >= started]) >= total, timeout=300
        )
        wall = time.monotonic() - started
        cpu = cpu_seconds(s.bot.pid) - cpu_before
    return [
        ("text", f"{total} messages from {len(people)} users: messages/s", f"{total / wall:.0f}", ""),
        ("text", "bot CPU per message (ms)", f"{cpu / total * 1000:.2f}", ""),
    ]


async def midjourney_polling(sizes: Sizes) -> list[Row]:
    async with stage(MJ_POLL_INTERVAL=str(sizes.mj_interval)) as s:
        s.midjourney.script("bench pending", "stuck")
        for n in range(sizes.mj_tasks):
            user, chat = new_person(s.telegram)
            s.telegram.send_text(user, chat, f"/imagine bench pending {n}")
        await s.telegram.wait_for(lambda _: len(s.telegram.calls_to("sendMessage")) >= sizes.mj_tasks, timeout=300)
        await asyncio.sleep(sizes.mj_interval * 2)  # the first progress edits settle
        cpu_before, started = cpu_seconds(s.bot.pid), time.monotonic()
        calls_before = len(s.midjourney.list_calls)
        await asyncio.sleep(sizes.mj_window)
        intervals = (time.monotonic() - started) / sizes.mj_interval
        calls = s.midjourney.list_calls[calls_before:]
        cpu = cpu_seconds(s.bot.pid) - cpu_before
        largest = max((len(ids) for _, ids in calls), default=0)
    return [
        ("midjourney", f"{sizes.mj_tasks} pending: list calls per interval", f"{len(calls) / intervals:.2f}",
         f"{-(-sizes.mj_tasks // 200)} (batches of 200)"),
        ("midjourney", "ids per call (largest)", str(largest), ""),
        ("midjourney", "bot CPU per interval (ms)", f"{cpu / intervals * 1000:.0f}", ""),
    ]  # fmt: skip


async def startup(runs: int = 3) -> list[Row]:
    times = []
    for _ in range(runs):
        async with stage() as s:
            times.append(s.startup_seconds)
    return [("start-up", "process start to first getUpdates (s, median)", f"{statistics.median(times):.2f}", "")]
