"""Midjourney through the gateway: submit imagine/blend/action/modal, fetch, list, seed, download results."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Sequence
from typing import Any

import httpx

from bot.clients.http import DownloadFailed, DownloadTooLarge, ResponseTooLarge, download
from bot.clients.midjourney_errors import (
    MidjourneyBadAnswer,
    MidjourneyBusy,
    MidjourneyError,
    MidjourneyRejected,
    MidjourneyTooLarge,
    MidjourneyUnavailable,
)
from bot.clients.midjourney_tasks import MjTask
from bot.config import Settings
from bot.core.i18n import _, __

log = logging.getLogger(__name__)

# Submit codes meaning "accepted": 21 (already exists) and 22 (queued) come with a usable task id too.
_ACCEPTED = {1, 21, 22}
_ERROR_CODE = re.compile(r"[a-z_]{3,40}(:\w{1,40})?")
_NOT_ACCEPTED = __("Midjourney could not accept this request as it is. Check the prompt and try again.")
_UNKNOWN_PICTURE = __("Midjourney no longer knows that picture; it may be too old.")


class Midjourney:
    """The gateway's /mj endpoints on the process's shared httpx client.

    Submissions are never retried: the first may have started a (billed) job even if its answer was lost.
    """

    def __init__(self, settings: Settings, http: httpx.AsyncClient, slots: asyncio.Semaphore) -> None:
        self._http = http
        self._slots = slots  # shared with the OpenAI-format client: a bound on all gateway calls at once
        self._base = settings.MJ_BASE_URL
        self._headers = {"Authorization": f"Bearer {settings.API_KEY.get_secret_value()}"}
        self._timeout = settings.CHAT_TIMEOUT
        self._max_download = settings.max_download_bytes
        # Ids of malformed list entries already logged: one line per bad task, not one per poll.
        self._reported_malformed: set[str] = set()

    async def imagine(self, prompt: str, images: Sequence[str] = ()) -> str:
        """Start a picture from a prompt (and optional reference images as data URLs); returns the task id."""
        body: dict[str, Any] = {"prompt": prompt}
        if images:
            body["base64Array"] = list(images)
        return await self._submit("imagine", body)

    async def blend(self, images: Sequence[str], dimensions: str) -> str:
        return await self._submit("blend", {"base64Array": list(images), "dimensions": dimensions})

    async def action(self, task_id: str, custom_id: str) -> str:
        """Press a button of a finished task."""
        return await self._submit("action", {"taskId": task_id, "customId": custom_id})

    async def modal(self, task_id: str, prompt: str) -> str:
        """Answer the dialog a task stopped in (status MODAL) with a prompt."""
        return await self._submit("modal", {"taskId": task_id, "prompt": prompt})

    async def fetch(self, task_id: str) -> MjTask:
        return MjTask.from_json(await self._call("GET", f"/mj/task/{task_id}/fetch"))

    async def list(self, task_ids: Sequence[str]) -> list[MjTask]:
        """Many tasks in one call; unknown ids are simply absent from the answer, and so are malformed entries:
        one bad task must not hide the others."""
        answer = await self._call("POST", "/mj/task/list-by-condition", {"ids": list(task_ids)})
        if not isinstance(answer, list):
            raise MidjourneyBadAnswer("task list that is not a list")
        tasks = []
        for item in answer:
            try:
                tasks.append(MjTask.from_json(item))
            except (MidjourneyBadAnswer, ValueError, TypeError):
                self._report_malformed(item)
        return tasks

    def _report_malformed(self, item: Any) -> None:
        task_id = str(item.get("id"))[:40] if isinstance(item, dict) else "-"
        if task_id in self._reported_malformed:
            return
        if len(self._reported_malformed) >= 1000:  # a bound, should the gateway invent new ids for ever
            self._reported_malformed.clear()
        self._reported_malformed.add(task_id)
        log.warning("midjourney listed a malformed task (id %s); skipping it", task_id)

    async def seed(self, task_id: str) -> str:
        answer = await self._call("GET", f"/mj/task/{task_id}/image-seed")
        if not isinstance(answer, dict) or answer.get("code") != 1 or not answer.get("result"):
            raise MidjourneyRejected(__("Midjourney has no seed for this picture (yet)."))
        return str(answer["result"])

    async def download(self, url: str) -> bytes:
        """A task's image, at most MAX_DOWNLOAD_MB. The key goes only to the gateway itself, never to a CDN the
        image may live on (nor to wherever the gateway redirects)."""
        headers = self._headers if url.startswith(self._base + "/") else None
        try:
            return await download(self._http, url, self._timeout, self._max_download, headers)
        except DownloadTooLarge:
            raise MidjourneyTooLarge("image over MAX_DOWNLOAD_MB") from None
        except DownloadFailed:
            raise MidjourneyUnavailable("image download failed") from None

    async def _submit(self, kind: str, body: dict[str, Any]) -> str:
        answer = await self._call("POST", f"/mj/submit/{kind}", body)
        if not isinstance(answer, dict):
            raise MidjourneyBadAnswer("submit answer that is not an object")
        code = answer.get("code")
        if code in _ACCEPTED and answer.get("result"):
            return str(answer["result"])
        log.warning("midjourney %s refused: code=%s", kind, code)
        properties = answer.get("properties") if isinstance(answer.get("properties"), dict) else {}
        if code == 24:
            word = str(properties.get("bannedWord") or "").strip()
            if word:
                raise MidjourneyRejected(
                    _(
                        "Midjourney refused this prompt: the word “{word}” is not allowed. Please rephrase it."
                    ).format(word=word)
                )
            raise MidjourneyRejected(__("Midjourney refused this prompt: it contains a word that is not allowed."))
        if code == 23:
            raise MidjourneyBusy("queue full")
        if code == 4:
            raise MidjourneyRejected(_NOT_ACCEPTED)
        if code == 3:
            raise MidjourneyRejected(_UNKNOWN_PICTURE)
        raise MidjourneyUnavailable(f"code {code}")

    async def _call(self, verb: str, path: str, body: dict[str, Any] | None = None) -> Any:
        # A body with pictures is megabytes of JSON: serialised in a worker thread, not on the event loop.
        content = None if body is None else await asyncio.to_thread(_json_bytes, body)
        headers = self._headers if content is None else {**self._headers, "Content-Type": "application/json"}
        try:
            async with asyncio.timeout(self._timeout), self._slots:
                response = await self._http.request(verb, self._base + path, content=content, headers=headers)
        except (httpx.TimeoutException, TimeoutError):
            log.warning("midjourney %s %s timed out", verb, path)
            raise MidjourneyUnavailable("timeout") from None
        except ResponseTooLarge:
            log.warning("midjourney %s %s failed: the answer was larger than the process reads", verb, path)
            raise MidjourneyBadAnswer("answer too large") from None
        except httpx.TransportError as error:
            log.warning("midjourney %s %s failed: %s", verb, path, type(error).__name__)
            raise MidjourneyUnavailable("cannot connect") from None
        except httpx.InvalidURL:  # a redirect to somewhere no HTTP request can go
            log.warning("midjourney %s %s failed: a redirect to an unusable address", verb, path)
            raise MidjourneyBadAnswer("unusable redirect") from None
        if response.status_code >= 400:
            raise self._status_error(response, path)
        try:
            return response.json()
        except ValueError:
            log.warning("midjourney %s answered something that is not JSON", path)
            raise MidjourneyBadAnswer("not JSON") from None

    @staticmethod
    def _status_error(response: httpx.Response, path: str) -> MidjourneyError:
        """The gateway's own refusals: HTTP 400/429 with {"description", "type", "code"}."""
        try:
            body = response.json()
        except ValueError:
            body = {}
        description = str(body.get("description") or "") if isinstance(body, dict) else ""
        # The gateway's own error codes (quota_not_enough, task_not_found …) help an operator; free text, which
        # may echo a prompt, does not go to the log.
        code = description.split()[0] if description.split() else ""
        code = code if _ERROR_CODE.fullmatch(code) else "-"
        log.warning("midjourney %s failed: status=%s error=%s", path, response.status_code, code)
        if response.status_code == 429:
            return MidjourneyBusy(description)
        if "quota_not_enough" in description:
            return MidjourneyUnavailable("the gateway account is out of credit")
        if "not_found" in description or "no_found" in description:
            return MidjourneyRejected(_UNKNOWN_PICTURE)
        if response.status_code >= 500:
            return MidjourneyUnavailable(f"status {response.status_code}")
        return MidjourneyRejected(_NOT_ACCEPTED)


def _json_bytes(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
