"""Three real replicas in webhook mode on one real PostgreSQL server behave as one process: context, quotas, bans,
albums, /cancel and the one-request rule are shared; a replica killed mid-render hands its Midjourney task on,
and the grid arrives once."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from testkit.doubles.gateway import GatewayDouble, last_user_text_contains
from testkit.doubles.midjourney import MidjourneyDouble
from testkit.doubles.telegram_api import Call, TelegramDouble
from testkit.doubles.telegram_spec import TelegramSpec
from testkit.media import make_png, make_voice_note
from testkit.postgres import PostgresServer
from tests.e2e.harness import ADMIN_ID, BOT_TOKEN, assert_no_secrets, new_person
from tests.e2e.replicas import Cluster

_markers = itertools.count(1)
_tones = itertools.count(5100)


@pytest.fixture(scope="module")
async def cluster(
    postgres: PostgresServer, gateway: GatewayDouble, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Cluster]:
    """Three replicas on a fresh database, with a Telegram double of their own, for this module's tests."""
    async with _running_cluster(postgres, gateway, tmp_path_factory.mktemp("replicas")) as running:
        yield running


class _running_cluster:  # noqa: N801 - used as a context manager, named for what it gives
    def __init__(self, postgres: PostgresServer, gateway: GatewayDouble, workdir: Path) -> None:
        self._postgres, self._gateway, self._workdir = postgres, gateway, workdir

    async def __aenter__(self) -> Cluster:
        self._telegram = TelegramDouble(BOT_TOKEN, TelegramSpec.load())
        await self._telegram.start()
        self._cluster = Cluster(self._workdir, self._telegram, self._gateway, await self._postgres.new_database())
        await self._cluster.start()
        return self._cluster

    async def __aexit__(self, *_: object) -> None:
        await self._cluster.stop()
        for replica in self._cluster.replicas:
            assert_no_secrets(replica, self._telegram)
        await self._telegram.stop()
        assert not self._telegram.violations, f"invalid Bot API calls: {self._telegram.violations}"


def _texts_to(telegram: TelegramDouble, chat_id: int, after: float = 0.0) -> list[str]:
    return [
        call.params["text"]
        for call in telegram.calls_to("sendMessage", chat_id)
        if not call.failed and call.at >= after and "text" in call.params
    ]


async def _reply(telegram: TelegramDouble, chat_id: int, after: float, method: str = "sendMessage") -> Call:
    return await telegram.wait_for(
        lambda c: c.method == method and c.chat_id == chat_id and c.at >= after and not c.failed, timeout=20
    )


def _marker(what: str) -> str:
    return f"{what} #{next(_markers)}"


async def test_a_conversation_continues_whichever_replica_takes_the_next_message(
    cluster: Cluster, gateway: GatewayDouble
) -> None:
    telegram = cluster.telegram
    user, chat = new_person(telegram)
    first, second = _marker("my cat is called Miso"), _marker("what is my cat called")
    started = asyncio.get_running_loop().time()
    await cluster.say(user, chat, first, to=0)
    await _reply(telegram, chat["id"], started)
    await cluster.say(user, chat, second, to=1)
    await telegram.wait_for(lambda c: c.method == "sendMessage" and c.params.get("text") == f"echo: {second}")
    [asked] = [call for call in gateway.calls_to("/chat/completions") if last_user_text_contains(second)(call)]
    remembered = [message["content"] for message in asked.json["messages"]]
    assert first in remembered and f"echo: {first}" in remembered


async def test_a_quota_is_exact_under_fifteen_parallel_requests_over_three_replicas(
    cluster: Cluster, gateway: GatewayDouble
) -> None:
    telegram = cluster.telegram
    admin, admin_chat = telegram.private_chat(ADMIN_ID, first_name="Root")
    user, chat = new_person(telegram)
    await cluster.say(admin, admin_chat, f"/setquota {user['id']} chat 10", to=2)
    await telegram.wait_for(
        lambda c: c.method == "sendMessage" and c.chat_id == ADMIN_ID and "10" in c.params["text"]
    )
    tag = _marker("parallel")
    gateway.when("/chat/completions", last_user_text_contains(tag)).delay(0.5)  # all fifteen in flight at once
    started = asyncio.get_running_loop().time()
    await cluster.say_everywhere([(user, chat, f"{tag} question {n}", n % 3) for n in range(15)])
    await telegram.wait_for(lambda _: len(_texts_to(telegram, chat["id"], started)) >= 15, timeout=30)
    await telegram.wait_idle(1.0)
    texts = _texts_to(telegram, chat["id"], started)
    answered = [text for text in texts if text.startswith("echo:")]
    refused = [text for text in texts if "limit" in text.lower()]
    assert (len(answered), len(refused), len(texts)) == (10, 5, 15)
    assert len([c for c in gateway.calls_to("/chat/completions") if last_user_text_contains(tag)(c)]) == 10


async def test_a_ban_on_one_replica_holds_on_all_and_so_does_the_unban(
    cluster: Cluster, gateway: GatewayDouble
) -> None:
    telegram = cluster.telegram
    admin, admin_chat = telegram.private_chat(ADMIN_ID, first_name="Root")
    user, chat = new_person(telegram)
    await cluster.say(admin, admin_chat, f"/ban {user['id']}", to=0)
    await telegram.wait_for(lambda c: c.chat_id == ADMIN_ID and "banned" in str(c.params.get("text", "")))
    calls = len(gateway.calls)
    started = asyncio.get_running_loop().time()
    for to in (1, 2, 0):
        await cluster.say(user, chat, _marker("let me in"), to=to)
    await telegram.wait_idle(1.0)
    assert _texts_to(telegram, chat["id"], started) == ["You can't use this bot."]  # told once, by any of them
    assert len(gateway.calls) == calls

    await cluster.say(admin, admin_chat, f"/unban {user['id']}", to=2)
    await telegram.wait_for(lambda c: c.chat_id == ADMIN_ID and "again" in str(c.params.get("text", "")))
    words = _marker("and now?")
    await cluster.say(user, chat, words, to=1)
    await telegram.wait_for(lambda c: c.chat_id == chat["id"] and c.params.get("text") == f"echo: {words}")


async def test_an_album_split_over_two_replicas_is_blended_once(
    cluster: Cluster, midjourney: MidjourneyDouble
) -> None:
    telegram = cluster.telegram
    user, chat = new_person(telegram)
    pictures = [make_png(40, 40, (next(_markers) * 40 % 256, 120, 60)) for _ in range(3)]
    album = f"replicas-{next(_markers)}"
    before = len([s for s in midjourney.submissions if s[0] == "blend"])
    updates = [telegram.send_photo(user, chat, pictures[0], caption="/blend", media_group_id=album)]
    updates += [telegram.send_photo(user, chat, picture, media_group_id=album) for picture in pictures[1:]]
    await asyncio.gather(*(cluster.post(update, to) for update, to in zip(updates, (0, 1, 0), strict=True)))
    await telegram.wait_for(lambda c: c.method == "sendPhoto" and c.chat_id == chat["id"], timeout=30)
    await telegram.wait_idle(1.5)
    blends = [body for kind, body in midjourney.submissions if kind == "blend"][before:]
    assert len(blends) == 1 and len(blends[0]["base64Array"]) == 3


async def test_cancel_and_the_one_request_rule_cross_replicas(cluster: Cluster, gateway: GatewayDouble) -> None:
    telegram = cluster.telegram
    user, chat = new_person(telegram)
    note = make_voice_note(1.0, freq=next(_tones))
    words = _marker("a slow question to cancel across replicas")
    gateway.set_transcript(note, words)
    gateway.when("/chat/completions", last_user_text_contains(words)).delay(3.0).reply_audio()
    await cluster.post(telegram.send_voice(user, chat, note, duration=1), to=0)
    await gateway.wait_for(lambda c: last_user_text_contains(words)(c))

    started = asyncio.get_running_loop().time()
    second = telegram.send_voice(user, chat, make_voice_note(1.0, freq=next(_tones)), duration=1)
    await cluster.post(second, to=1)
    refusal = await _reply(telegram, chat["id"], started)
    assert "still working on your last request" in refusal.params["text"]

    started = asyncio.get_running_loop().time()
    await cluster.say(user, chat, "/cancel", to=2)
    stopped = await _reply(telegram, chat["id"], started)
    assert stopped.params["text"] == "Stopped your voice message. Nothing was charged."
    await asyncio.sleep(3.5)  # the gateway would have answered by now
    assert not [c for c in telegram.calls_to("sendVoice", chat["id"]) if not c.failed]
    started = asyncio.get_running_loop().time()
    await cluster.say(user, chat, "/cancel", to=1)
    assert "nothing to cancel" in (await _reply(telegram, chat["id"], started)).params["text"]


async def test_a_replica_killed_mid_render_hands_its_task_on_and_the_grid_arrives_once(
    postgres: PostgresServer, gateway: GatewayDouble, midjourney: MidjourneyDouble, tmp_path: Path
) -> None:
    async with _running_cluster(postgres, gateway, tmp_path) as own:
        telegram = own.telegram
        user, chat = new_person(telegram)
        prompt = _marker("a lighthouse drawn slowly")
        midjourney.script(prompt, "slow", step_seconds=1.0)
        await own.say(user, chat, f"/imagine {prompt}", to=0)
        task_id = await _submitted(midjourney, prompt)
        await telegram.wait_for(lambda c: c.method == "sendMessage" and c.chat_id == chat["id"])
        await _progress_shown(telegram, chat["id"])  # the task is tracked, and rendering
        holder = await _holder_of(own, task_id)
        await own.replicas[holder].kill()

        grid = await telegram.wait_for(
            lambda c: c.method == "sendPhoto" and c.chat_id == chat["id"] and "reply_markup" in c.params,
            timeout=40,
        )
        await telegram.wait_idle(3.0)  # several polls by the survivors: a second delivery would come now
        grids = [
            c for c in telegram.calls_to("sendPhoto", chat["id"]) if "reply_markup" in c.params and not c.failed
        ]
        assert grids == [grid]
        admin, admin_chat = telegram.private_chat(ADMIN_ID, first_name="Root")
        survivor = next(n for n, replica in enumerate(own.replicas) if replica.running)
        started = asyncio.get_running_loop().time()
        await own.say(admin, admin_chat, f"/quota {user['id']}", to=survivor)
        report = (await _reply(telegram, ADMIN_ID, started)).params["text"]
        assert any(line.split()[:2] == ["imagine", "1"] for line in report.splitlines())  # charged once


async def _submitted(midjourney: MidjourneyDouble, prompt: str) -> str:
    for _ in range(300):
        found = [task_id for task_id, task in midjourney.tasks.items() if task.prompt == prompt]
        if found:
            return found[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no imagine of {prompt!r} was submitted")


async def _progress_shown(telegram: TelegramDouble, chat_id: int) -> None:
    await telegram.wait_for(
        lambda c: (
            c.chat_id == chat_id and c.method in ("editMessageText", "editMessageMedia", "editMessageCaption")
        ),
        timeout=20,
    )


async def _holder_of(cluster: Cluster, task_id: str) -> int:
    """Which replica leases the task, from the database the replicas share."""
    import asyncpg

    url = cluster.replicas[0].environment["DATABASE_URL"]
    connection = await asyncpg.connect(url)
    try:
        holder: Any = await connection.fetchval("SELECT leased_by FROM mj_tasks WHERE task_id = $1", task_id)
    finally:
        await connection.close()
    assert holder, "nobody leases the task"
    names = [_replica_name(replica.log_text()) for replica in cluster.replicas]
    return names.index(holder)


def _replica_name(log: str) -> str:
    marker = "replica="
    line = next(line for line in log.splitlines() if marker in line)
    return line.split(marker, 1)[1].split()[0]


async def test_a_setting_changed_on_one_replica_is_used_at_once_by_the_others(cluster: Cluster) -> None:
    """Replica 1 has the person's (English) settings in memory; /lang zh on replica 0 reaches it at once."""
    telegram = cluster.telegram
    user, chat = new_person(telegram)
    started = asyncio.get_running_loop().time()
    await cluster.say(user, chat, "/cancel", to=1)
    assert "nothing to cancel" in (await _reply(telegram, chat["id"], started)).params["text"]
    started = asyncio.get_running_loop().time()
    await cluster.say(user, chat, "/lang zh", to=0)
    await _reply(telegram, chat["id"], started)
    started = asyncio.get_running_loop().time()
    await cluster.say(user, chat, "/cancel", to=1)
    assert (await _reply(telegram, chat["id"], started)).params[
        "text"
    ] == "没有可取消的：我现在没有在为你处理任何请求。"
