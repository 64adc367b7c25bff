"""The gateway's Midjourney API (new-api in front of a midjourney-proxy) on the gateway double: tasks that progress."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import re
import secrets
import struct
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ..media import image_size, make_png, make_webp
from .gateway import UNSUPPORTED, GatewayCall, GatewayDouble, Rule

Stage = tuple[str, str]  # (status, progress) as the task object shows them
Color = tuple[int, int, int]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SUBMITTED_OK = "提交成功"
WAITING_FOR_MODAL = "Waiting for window confirm"  # the proxy's description of a submit that opened a dialog
DISCORD_INSTANCE_ID = "1118138338562560102"
DEFAULT_FAIL_REASON = "Job failed: invalid parameter"
DEFAULT_BANNED_WORD = "gore"
SATURATED = "当前分组上游负载已饱和，请稍后再试"
# new-api puts this in `result` of every Midjourney error it answers with 429, after the description.
SATURATED_RESULT = "当前分组负载已饱和，请稍后再试，或升级账户以提升服务质量。"
NOT_FINISHED = "task not finished"
DIMENSIONS = {"SQUARE": "1:1", "PORTRAIT": "2:3", "LANDSCAPE": "3:2"}  # blend dimensions -> the --ar they mean
BOT_TYPES = ("MID_JOURNEY", "NIJI_JOURNEY")
GRID_SIDE = 512
UPSCALE_SIDE = 256
PREVIEW_SIDE = 128

_COMMON_FIELDS = {"state", "notifyHook"}
_FIELDS = {
    "imagine": {"prompt", "base64Array", "botType"} | _COMMON_FIELDS,
    "blend": {"base64Array", "dimensions", "botType"} | _COMMON_FIELDS,
    "action": {"taskId", "customId"} | _COMMON_FIELDS,
    "modal": {"taskId", "prompt", "maskBase64"} | _COMMON_FIELDS,
}
# Scripted outcomes and the options each takes.
OUTCOMES: dict[str, set[str]] = {
    "success": {"image_url"},
    "failure": {"reason"},
    "stuck": set(),
    "banned": {"word"},
    "queue_full": set(),
    "quota": set(),
    "saturated": set(),
    "modal": set(),
    "slow": {"step_seconds", "image_url"},
}
LIST_PATH = "/mj/task/list-by-condition"
# Entries a broken gateway (or a proxy mid-upgrade) could put into a list-by-condition answer beside the real
# tasks: things that are not task objects, objects without a usable id, and an object whose id is one nobody
# asked for with every other field of the wrong type. None of them is any real task.
MALFORMED_TASKS: tuple[Any, ...] = (
    "1712345678901234",
    None,
    17,
    ["IN_PROGRESS", "45%"],
    {"action": "IMAGINE", "status": "SUCCESS", "progress": "100%", "imageUrl": "https://cdn.example/x.png"},
    {"id": None, "status": "IN_PROGRESS", "progress": "45%"},
    {"id": "", "status": "SUCCESS"},
    {"id": {"value": "1712345678901234"}, "status": "FAILURE"},
    {
        "id": "1700000000000999",
        "action": ["IMAGINE"],
        "status": 7,
        "progress": {"done": "45%"},
        "imageUrl": {"href": "https://cdn.example/x.png"},
        "failReason": 0,
        "buttons": "U1 U2 U3 U4",
        "properties": [],
        "submitTime": "yesterday",
    },
)
# What new-api answers when the list query itself fails: HTTP 500 with its Midjourney error shape, or (a proxy
# answering for it) an error object where the list should be.
LIST_FAILURES: dict[str, tuple[int, dict[str, Any]]] = {
    "status-500": (500, {"description": "query_tasks_failed ", "type": "upstream_error", "code": 9}),
    "not-a-list": (200, {"code": 9, "description": "系统异常", "result": None, "properties": None}),
}

_QUEUED: Stage = ("", "0%")  # inserted by the gateway, not yet refreshed from upstream
_MODAL: Stage = ("MODAL", "0%")
_RUNNING: list[Stage] = [
    ("SUBMITTED", "0%"),
    ("IN_PROGRESS", "10%"),
    ("IN_PROGRESS", "45%"),
    ("IN_PROGRESS", "80%"),
]
_DONE: Stage = ("SUCCESS", "100%")
_DATA_URL = re.compile(r"data:(image/[a-z0-9.+-]+);base64,(.*)", re.DOTALL)
_MIME_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/webp": "webp"}


@dataclass
class Task:
    """One Midjourney task as the double keeps it; read it through MidjourneyDouble.tasks to see it up to date."""

    id: str
    action: str  # as new-api names it: IMAGINE, BLEND, UPSCALE, VARIATION, LOW_VARIATION, ZOOM, CUSTOM_ZOOM, ...
    endpoint: str  # the submit that made it: "imagine", "blend" or "action"
    body: dict[str, Any]  # the submitted JSON
    prompt: str
    prompt_en: str
    description: str
    outcome: str
    options: dict[str, Any]
    colors: list[Color]  # the quadrants of a grid, or the one colour of an upscale
    parent_id: str = ""
    custom_id: str = ""
    modal_body: dict[str, Any] | None = None
    status: str = ""
    progress: str = "0%"
    submit_ms: int = 0
    start_ms: int = 0
    finish_ms: int = 0
    fail_reason: str = ""
    buttons: list[dict[str, Any]] = field(default_factory=list)
    hash: str = field(
        default_factory=lambda: str(uuid.uuid4())
    )  # Discord's message hash in the buttons' customIds
    # The schedule: the task stands at plan[int((clock - origin) / step)], the last stage holding for good.
    plan: list[Stage] = field(default_factory=list, repr=False)
    origin: float = field(default=0.0, repr=False)
    created: float = field(default=0.0, repr=False)  # double's clock at submission, to turn stage times into ms
    step: float = field(default=0.25, repr=False)

    @property
    def single(self) -> bool:
        """An upscale is one picture; everything else is a 2x2 grid."""
        return self.action == "UPSCALE"


@dataclass
class _Script:
    contains: str
    outcome: str
    options: dict[str, Any]
    remaining: int | None


def _gateway_error(status: int, description: str, result: str = "", code: int = 4) -> web.Response:
    # new-api formats every Midjourney error it raises itself as "<description> <result>", even with no result.
    body = {"description": f"{description} {result}", "type": "upstream_error", "code": code}
    return web.json_response(body, status=status)


def _button(custom_id: str, label: str = "", emoji: str = "") -> dict[str, Any]:
    return {"customId": custom_id, "emoji": emoji, "label": label, "type": 2, "style": 2}


def _grid_buttons(hash_: str) -> list[dict[str, Any]]:
    upscales = [_button(f"MJ::JOB::upsample::{n}::{hash_}", label=f"U{n}") for n in range(1, 5)]
    variations = [_button(f"MJ::JOB::variation::{n}::{hash_}", label=f"V{n}") for n in range(1, 5)]
    return [*upscales, _button(f"MJ::JOB::reroll::0::{hash_}::SOLO", emoji="🔄"), *variations]


def _upscale_buttons(hash_: str) -> list[dict[str, Any]]:
    pans = [("left", "⬅️"), ("right", "➡️"), ("up", "⬆️"), ("down", "⬇️")]
    return [
        _button(f"MJ::JOB::upsample_v6_2x_subtle::1::{hash_}::SOLO", label="Upscale (Subtle)"),
        _button(f"MJ::JOB::upsample_v6_2x_creative::1::{hash_}::SOLO", label="Upscale (Creative)"),
        _button(f"MJ::JOB::low_variation::1::{hash_}::SOLO", label="Vary (Subtle)", emoji="🪄"),
        _button(f"MJ::JOB::high_variation::1::{hash_}::SOLO", label="Vary (Strong)", emoji="🪄"),
        _button(f"MJ::Inpaint::1::{hash_}::SOLO", label="Vary (Region)", emoji="🖌️"),
        _button(f"MJ::Outpaint::50::1::{hash_}::SOLO", label="Zoom Out 2x", emoji="🔍"),
        _button(f"MJ::Outpaint::75::1::{hash_}::SOLO", label="Zoom Out 1.5x", emoji="🔍"),
        _button(f"MJ::CustomZoom::{hash_}", label="Custom Zoom", emoji="🔍"),
        *(_button(f"MJ::JOB::pan_{side}::1::{hash_}::SOLO", emoji=emoji) for side, emoji in pans),
        # The gateway cannot relay this one (it answers unknown_action), but Midjourney does offer it.
        _button(f"MJ::BOOKMARK::{hash_}", emoji="❤️"),
    ]


def _action_of(custom_id: str) -> str | None:
    """The task action new-api derives from a customId (its CoverPlusActionToNormalAction); None if it has none."""
    parts = custom_id.split("::")
    if len(parts) < 3:
        return None
    name = parts[2] if parts[1] == "JOB" else parts[1]
    if "upsample" in name:
        return "UPSCALE"
    if "variation" in name:
        return {"low_variation": "LOW_VARIATION", "high_variation": "HIGH_VARIATION"}.get(name, "VARIATION")
    if "pan" in name:
        return "PAN"
    if "reroll" in name:
        return "REROLL"
    return {"Outpaint": "ZOOM", "CustomZoom": "CUSTOM_ZOOM", "Inpaint": "INPAINT"}.get(name)


def _run(outcome: str) -> list[Stage]:
    """The stages from the moment Midjourney starts the job."""
    if outcome == "failure":
        return [*_RUNNING[:2], ("FAILURE", "100%")]
    if outcome == "stuck":
        return _RUNNING[:3]
    return [*_RUNNING, _DONE]


def _colors(seed: str) -> list[Color]:
    digest = hashlib.sha256(seed.encode()).digest()
    return [(digest[i], digest[i + 1], digest[i + 2]) for i in range(0, 12, 3)]


def _grid_png(colors: list[Color], side: int = GRID_SIDE) -> bytes:
    """A PNG of four coloured quadrants, so a grid looks like one."""
    half = side // 2

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    top = b"\x00" + bytes(colors[0]) * half + bytes(colors[1]) * half  # filter byte 0 before each row
    bottom = b"\x00" + bytes(colors[2]) * half + bytes(colors[3]) * half
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    pixels = zlib.compress(top * half + bottom * half, 6)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def _final_prompt(prompt: str) -> str:
    """What Midjourney reports it ran: the prompt with the default model version appended."""
    return prompt if re.search(r"--(v|version|niji)\b", prompt) else f"{prompt} --v 6.1".strip()


async def _data_url_problems(name: str, values: list[Any]) -> list[str]:
    problems = []
    for index, value in enumerate(values):
        match = _DATA_URL.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            problems.append(f"{name}[{index}] is not a data:image/...;base64, URL")
            continue
        mime = match.group(1)
        if mime not in _MIME_FORMATS:
            problems.append(f"{UNSUPPORTED} {name}[{index}] of type {mime}")
            continue
        try:
            data = base64.b64decode(match.group(2), validate=True)
            fmt, _width, _height = await asyncio.to_thread(image_size, data)
        except (binascii.Error, ValueError) as exc:
            problems.append(f"{name}[{index}] does not decode as an image: {exc}")
            continue
        if fmt != _MIME_FORMATS[mime]:
            problems.append(f"{name}[{index}] says {mime} but holds a {fmt}")
    return problems


class MidjourneyDouble:
    """The /mj routes on a GatewayDouble (create it before gateway.start()); tasks advance lazily with time."""

    def __init__(self, gateway: GatewayDouble, step_seconds: float = 0.25) -> None:
        self.gateway = gateway
        self.step_seconds = step_seconds
        self.submissions: list[tuple[str, dict[str, Any]]] = []  # (endpoint, body) of every valid submit
        self.list_calls: list[tuple[float, list[str]]] = []  # (time.monotonic(), ids asked)
        self.fetch_calls: list[tuple[float, str]] = []  # (time.monotonic(), id asked)
        self._tasks: dict[str, Task] = {}
        self._scripts: list[_Script] = []
        self._action_scripts: list[_Script] = []
        self._images: dict[tuple[str, str], bytes] = {}  # (task id, "final"/"preview") -> bytes
        self._list_garbage: list[Any] = []  # malformed entries every list answer carries (see poison_list)
        self._paused_at: float | None = None
        self._paused_total = 0.0
        router = gateway.app.router
        router.add_post("/mj/submit/imagine", self._imagine)
        router.add_post("/mj/submit/blend", self._blend)
        router.add_post("/mj/submit/action", self._action)
        router.add_post("/mj/submit/modal", self._modal)
        router.add_get("/mj/task/{id}/fetch", self._fetch)
        router.add_post(LIST_PATH, self._list)
        router.add_get("/mj/task/{id}/image-seed", self._seed)
        self._image_resource = router.add_get("/mj/image/{id}", self._image).resource
        # The gateway serves images without a key; its middleware demands one on every route, so this
        # middleware, placed outside it, answers image requests itself (they are not recorded as calls).
        gateway.app.middlewares.insert(0, self._public_images)

    # --- what tests use ------------------------------------------------------------------------

    @property
    def tasks(self) -> dict[str, Task]:
        """Every task by id, brought up to date with the clock on each read."""
        for task in self._tasks.values():
            self._sync(task)
        return self._tasks

    def script(self, prompt_contains: str, outcome: str, *, times: int | None = None, **options: Any) -> None:
        """Decide what happens to imagine (and blend, whose prompt is "") submits whose prompt contains the text."""
        self._scripts.append(self._new_script(prompt_contains, outcome, times, options))

    def script_action(
        self, custom_id_contains: str, outcome: str, *, times: int | None = None, **options: Any
    ) -> None:
        """The same for actions, matched on the pressed button's customId."""
        self._action_scripts.append(self._new_script(custom_id_contains, outcome, times, options))

    def seed_of(self, task_id: str) -> str:
        """The task's seed: digits derived from its id, so a test can predict it."""
        return str(int.from_bytes(hashlib.sha256(task_id.encode()).digest()[:4], "big"))

    def finish_now(self, task_id: str) -> None:
        """Jump the task to SUCCESS, whatever it was doing."""
        task = self._tasks[task_id]
        self._sync(task)
        task.plan, task.origin = [_DONE], self._clock()
        self._sync(task)

    def poison_list(self, entries: Sequence[Any] = MALFORMED_TASKS) -> None:
        """Put these malformed entries into every list-by-condition answer from now on, half before the real
        tasks and half after them, until cure_list(): one bad entry must not hide the good ones."""
        self._list_garbage = list(entries)

    def cure_list(self) -> None:
        self._list_garbage = []

    def fail_list(self, kind: str = "status-500") -> Rule:
        """Make every list-by-condition call fail (a kind of LIST_FAILURES) until gateway.drop(rule) or the
        test's end; the request is still checked and recorded in list_calls."""
        if kind not in LIST_FAILURES:
            raise ValueError(f"unknown list failure {kind!r}: use one of {', '.join(LIST_FAILURES)}")
        status, body = LIST_FAILURES[kind]
        return self.gateway.when(LIST_PATH).reply_json(status, body)

    def pause(self) -> None:
        """Stop the clock of every task (e.g. while the bot restarts)."""
        if self._paused_at is None:
            self._paused_at = time.monotonic()

    def resume(self) -> None:
        if self._paused_at is not None:
            self._paused_total += time.monotonic() - self._paused_at
            self._paused_at = None

    # --- time ----------------------------------------------------------------------------------

    def _clock(self) -> float:
        """Seconds on a clock that stands still while paused."""
        now = self._paused_at if self._paused_at is not None else time.monotonic()
        return now - self._paused_total

    def _wall_ms(self, task: Task, moment: float) -> int:
        return task.submit_ms + round((moment - task.created) * 1000)

    def _sync(self, task: Task) -> None:
        last = len(task.plan) - 1
        index = last if task.step <= 0 else min(int((self._clock() - task.origin) / task.step), last)
        stage = task.plan[index]
        if stage == (task.status, task.progress):
            return
        task.status, task.progress = stage
        moment = task.origin + index * task.step
        if task.status not in ("", "MODAL") and not task.start_ms:
            begin = next((i for i, (status, _) in enumerate(task.plan) if status == "SUBMITTED"), index)
            task.start_ms = self._wall_ms(task, task.origin + begin * task.step)
        if task.status == "SUCCESS":
            task.finish_ms = self._wall_ms(task, moment)
            task.fail_reason = ""
            task.buttons = _upscale_buttons(task.hash) if task.single else _grid_buttons(task.hash)
        elif task.status == "FAILURE":
            task.finish_ms = self._wall_ms(task, moment)
            task.fail_reason = str(task.options.get("reason", DEFAULT_FAIL_REASON))

    # --- scripting -----------------------------------------------------------------------------

    def _new_script(self, contains: str, outcome: str, times: int | None, options: dict[str, Any]) -> _Script:
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}: use one of {', '.join(OUTCOMES)}")
        unknown = set(options) - OUTCOMES[outcome]
        if unknown:
            raise ValueError(f"outcome {outcome!r} takes no option {', '.join(sorted(unknown))}")
        return _Script(contains, outcome, options, times)

    @staticmethod
    def _take(scripts: list[_Script], text: str) -> _Script:
        script = next((script for script in scripts if script.contains in text), None)
        if script is None:
            return _Script("", "success", {}, None)
        if script.remaining is not None:
            script.remaining -= 1
            if script.remaining <= 0:
                scripts.remove(script)
        return script

    # --- validation ----------------------------------------------------------------------------

    def _reject(self, call: GatewayCall, problems: list[str]) -> web.Response:
        self.gateway.reject(
            call, problems
        )  # records the violations; its OpenAI-shaped answer is not new-api's here
        return _gateway_error(400, "; ".join(problems))

    @staticmethod
    def _shape_problems(call: GatewayCall, endpoint: str) -> list[str]:
        body = call.json
        if not isinstance(body, dict):
            return ["the body is not a JSON object"]
        problems = [f"unknown field {name!r}" for name in sorted(set(body) - _FIELDS[endpoint])]
        for name in ("state", "notifyHook", "prompt", "maskBase64", "taskId", "customId"):
            if name in body and not isinstance(body[name], str):
                problems.append(f"{name} must be a string")
        if "botType" in body and body["botType"] not in BOT_TYPES:
            problems.append(f"botType must be one of {', '.join(BOT_TYPES)}")
        if "base64Array" in body and not isinstance(body["base64Array"], list):
            problems.append("base64Array must be a list")
        return problems

    # --- submits -------------------------------------------------------------------------------

    async def _imagine(self, request: web.Request) -> web.StreamResponse:
        call = self.gateway.call_of(request)
        problems = self._shape_problems(call, "imagine")
        body = call.json
        if not problems:
            if not str(body.get("prompt", "")).strip():
                problems.append("prompt_is_required: prompt must be a non-empty string")
            problems += await _data_url_problems("base64Array", body.get("base64Array", []))
        if problems:
            return self._reject(call, problems)
        self.submissions.append(("imagine", body))
        _rule, canned = await self.gateway.scripted(call)
        if canned is not None:
            return canned
        prompt = body["prompt"]
        script = self._take(self._scripts, prompt)
        refusal = self._refusal(script, prompt)
        if refusal is not None:
            return refusal
        text = (prompt, prompt, f"/imagine {prompt}")
        task = self._new_task("IMAGINE", "imagine", body, script, text, waiting=script.outcome == "modal")
        return self._accepted(task)

    async def _blend(self, request: web.Request) -> web.StreamResponse:
        call = self.gateway.call_of(request)
        problems = self._shape_problems(call, "blend")
        body = call.json
        if not problems:
            images = body.get("base64Array", [])
            if not 2 <= len(images) <= 5:
                problems.append(f"base64Array must hold 2 to 5 images, not {len(images)}")
            if body.get("dimensions") not in DIMENSIONS:
                problems.append(f"dimensions must be one of {', '.join(DIMENSIONS)}")
            problems += await _data_url_problems("base64Array", images)
        if problems:
            return self._reject(call, problems)
        self.submissions.append(("blend", body))
        _rule, canned = await self.gateway.scripted(call)
        if canned is not None:
            return canned
        script = self._take(self._scripts, "")
        # Midjourney shows a blend as the uploaded images' short links followed by the aspect ratio.
        links = " ".join(f"<https://s.mj.run/{secrets.token_urlsafe(8)}>" for _ in body["base64Array"])
        prompt_en = f"{links} --ar {DIMENSIONS[body['dimensions']]}"
        refusal = self._refusal(script, prompt_en)
        if refusal is not None:
            return refusal
        task = self._new_task(
            "BLEND", "blend", body, script, ("", prompt_en, ""), waiting=script.outcome == "modal"
        )
        task.description = f"/blend {task.id} {len(body['base64Array'])}"
        return self._accepted(task)

    async def _action(self, request: web.Request) -> web.StreamResponse:
        call = self.gateway.call_of(request)
        problems = self._shape_problems(call, "action")
        body = call.json
        parent: Task | None = None
        if not problems:
            if not body.get("taskId"):
                problems.append("task_id_is_required")
            if not body.get("customId"):
                problems.append("custom_id_is_required")
            parent = self._tasks.get(body.get("taskId", ""))
        if parent is not None and not problems:
            self._sync(parent)
            if parent.status != "SUCCESS":
                problems.append(
                    f"task_status_not_success: task {parent.id} is {parent.status or 'just submitted'}"
                )
            elif body["customId"] not in [button["customId"] for button in parent.buttons]:
                problems.append(f"customId {body['customId']!r} is not one of task {parent.id}'s buttons")
        if problems:
            return self._reject(call, problems)
        self.submissions.append(("action", body))
        _rule, canned = await self.gateway.scripted(call)
        if canned is not None:
            return canned
        if parent is None:
            return _gateway_error(400, "task_not_found")
        custom_id = body["customId"]
        action = _action_of(custom_id)
        if action is None:
            return _gateway_error(400, f"unknown_action:{custom_id}")
        script = self._take(self._action_scripts, custom_id)
        refusal = self._refusal(script, parent.prompt_en)
        if refusal is not None:
            return refusal
        colors = None
        if action == "UPSCALE":  # the upscale of U2 shows the grid's second quadrant
            parts = custom_id.split("::")
            quadrant = int(parts[3]) - 1 if parts[2] == "upsample" else 0
            colors = [parent.colors[quadrant % len(parent.colors)]]
        button = next(button for button in parent.buttons if button["customId"] == custom_id)
        text = (parent.prompt, parent.prompt_en, f"/up {parent.id} {button['label'] or button['emoji']}")
        # Custom Zoom and Vary (Region) always open a dialog; new-api passes their code 21 through, while it
        # rewrites the 21 of any other waiting task (a Remix prompt) to 1.
        dialog = action in ("CUSTOM_ZOOM", "INPAINT")
        waiting = dialog or script.outcome == "modal"
        task = self._new_task(action, "action", body, script, text, colors=colors, waiting=waiting)
        task.parent_id, task.custom_id = parent.id, custom_id
        return self._accepted(task, code=21 if dialog else 1)

    async def _modal(self, request: web.Request) -> web.StreamResponse:
        call = self.gateway.call_of(request)
        problems = self._shape_problems(call, "modal")
        body = call.json
        task: Task | None = None
        if not problems:
            if not body.get("taskId"):
                problems.append("task_id_is_required")
            if "maskBase64" in body:
                problems += await _data_url_problems("maskBase64", [body["maskBase64"]])
            task = self._tasks.get(body.get("taskId", ""))
        if task is not None and not problems:
            self._sync(task)
            if task.status != "MODAL":
                problems.append(f"task {task.id} is {task.status or 'just submitted'}, not waiting in MODAL")
        if problems:
            return self._reject(call, problems)
        self.submissions.append(("modal", body))
        _rule, canned = await self.gateway.scripted(call)
        if canned is not None:
            return canned
        if task is None:
            return _gateway_error(400, "task_not_found")
        task.modal_body = body
        if body.get("prompt"):
            task.prompt_en = body["prompt"]  # new-api keeps the stored prompt; promptEn follows upstream
        # The job carries on under the same id; a task scripted to stop in MODAL goes on to succeed.
        task.plan, task.origin = _run("success" if task.outcome == "modal" else task.outcome), self._clock()
        return web.json_response(self._submit_answer(1, SUBMITTED_OK, task.id))

    def _refusal(self, script: _Script, prompt_en: str) -> web.Response | None:
        """The answer to a submit the script refuses, or None to go ahead."""
        if script.outcome == "banned":
            word = str(script.options.get("word", DEFAULT_BANNED_WORD))
            properties = {"promptEn": prompt_en, "bannedWord": word}
            return web.json_response(
                {"code": 24, "description": "可能包含敏感词", "result": None, "properties": properties}
            )
        if script.outcome == "queue_full":
            return web.json_response(self._submit_answer(23, "队列已满，请稍后尝试", None))
        if script.outcome == "quota":
            return _gateway_error(400, "quota_not_enough")
        if script.outcome == "saturated":
            return _gateway_error(429, SATURATED, SATURATED_RESULT, code=30)
        return None

    def _new_task(
        self,
        action: str,
        endpoint: str,
        body: dict[str, Any],
        script: _Script,
        text: tuple[str, str, str],
        *,
        colors: list[Color] | None = None,
        waiting: bool = False,
    ) -> Task:
        """A task that starts its run now; text is (prompt, promptEn, description), waiting stops it in MODAL."""
        task_id = ""
        while not task_id or task_id in self._tasks:
            task_id = f"{int(time.time() * 1000)}{secrets.randbelow(1000):03d}"  # the proxy's ids: ms + 3 digits
        default_step = self.step_seconds * 4 if script.outcome == "slow" else self.step_seconds
        prompt, prompt_en, description = text
        now = self._clock()
        task = Task(
            id=task_id,
            action=action,
            endpoint=endpoint,
            body=body,
            prompt=prompt,
            prompt_en=prompt_en,
            description=description,
            outcome=script.outcome,
            options=script.options,
            colors=colors or _colors(task_id),
            submit_ms=int(time.time() * 1000),
            plan=[_QUEUED, _MODAL] if waiting else [_QUEUED, *_run(script.outcome)],
            origin=now,
            created=now,
            step=float(script.options.get("step_seconds", default_step)),
        )
        self._tasks[task_id] = task
        return task

    def _accepted(self, task: Task, code: int = 1) -> web.Response:
        if task.plan[-1] == _MODAL:
            properties = {"finalPrompt": task.prompt_en, "remix": True}
            return web.json_response(self._submit_answer(code, WAITING_FOR_MODAL, task.id, properties))
        return web.json_response(self._submit_answer(code, SUBMITTED_OK, task.id))

    @staticmethod
    def _submit_answer(
        code: int, description: str, result: str | None, properties: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The proxy's SubmitResultVO, naming the Discord account that took the job."""
        properties = {"discordInstanceId": DISCORD_INSTANCE_ID, **(properties or {})}
        return {"code": code, "description": description, "result": result, "properties": properties}

    # --- reads ---------------------------------------------------------------------------------

    def _task_json(self, task: Task) -> dict[str, Any]:
        """The task as new-api answers it (its MidjourneyDto, image URLs rewritten to point at the gateway)."""
        self._sync(task)
        polled = task.status != ""  # before its first refresh the gateway only has its own row, mostly empty
        image_url = ""
        if task.status == "SUCCESS":  # a script may point it elsewhere: a CDN, a redirect, a huge file
            image_url = str(task.options.get("image_url") or f"{self.gateway.root_url}/mj/image/{task.id}")
        elif task.status == "IN_PROGRESS":
            image_url = f"{self.gateway.root_url}/mj/image/{task.id}?rand={time.time_ns()}"
        return {
            "id": task.id,
            "action": task.action,
            "customId": "",
            "botType": "",
            "prompt": task.prompt,
            "promptEn": task.prompt_en if polled else "",
            "description": task.description,
            "state": str(task.body.get("state", "")) if polled else "",
            "submitTime": task.submit_ms,
            "startTime": task.start_ms,
            "finishTime": task.finish_ms,
            "imageUrl": image_url,
            "videoUrl": "",
            "videoUrls": None,
            "status": task.status,
            "progress": task.progress,
            "failReason": task.fail_reason,
            "buttons": task.buttons if polled else None,  # new-api stores no buttons until the first refresh
            "maskBase64": "",
            "properties": {"finalPrompt": _final_prompt(task.prompt_en), "finalZhPrompt": ""} if polled else None,
        }

    async def _fetch(self, request: web.Request) -> web.StreamResponse:
        call = self.gateway.call_of(request)
        task_id = request.match_info["id"]
        self.fetch_calls.append((call.at, task_id))
        _rule, canned = await self.gateway.scripted(call)
        if canned is not None:
            return canned
        task = self._tasks.get(task_id)
        if task is None:
            return _gateway_error(400, "task_no_found")
        return web.json_response(self._task_json(task))

    async def _list(self, request: web.Request) -> web.StreamResponse:
        call = self.gateway.call_of(request)
        body = call.json
        ids = body.get("ids") if isinstance(body, dict) else None
        if (
            not isinstance(ids, list)
            or not all(isinstance(task_id, str) for task_id in ids)
            or set(body) != {"ids"}
        ):
            return self._reject(call, ['the body must be {"ids": [task ids as strings]}'])
        self.list_calls.append((call.at, list(ids)))
        _rule, canned = await self.gateway.scripted(call)
        if canned is not None:
            return canned
        # The gateway's database query answers each known task once, in the order the tasks were made.
        wanted = set(ids)
        found = [self._task_json(task) for task in self._tasks.values() if task.id in wanted]
        half = len(self._list_garbage) // 2
        return web.json_response([*self._list_garbage[:half], *found, *self._list_garbage[half:]])

    async def _seed(self, request: web.Request) -> web.StreamResponse:
        call = self.gateway.call_of(request)
        _rule, canned = await self.gateway.scripted(call)
        if canned is not None:
            return canned
        task = self._tasks.get(request.match_info["id"])
        if task is None:
            return _gateway_error(400, "task_no_found")
        self._sync(task)
        if task.status != "SUCCESS":
            return web.json_response({"code": 4, "description": NOT_FINISHED, "properties": None, "result": ""})
        seed = self.seed_of(task.id)
        return web.json_response({"code": 1, "description": "成功", "properties": None, "result": seed})

    # --- images --------------------------------------------------------------------------------

    @web.middleware
    async def _public_images(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.match_info.route.resource is self._image_resource:
            return await self._image(request)
        return await handler(request)

    async def _image(self, request: web.Request) -> web.StreamResponse:
        task = self._tasks.get(request.match_info["id"])
        if task is None:
            return web.json_response({"error": "midjourney_task_not_found"}, status=400)
        self._sync(task)
        if task.status == "SUCCESS":
            key, content_type = (task.id, "final"), "image/png"
            if key not in self._images and task.single:
                self._images[key] = make_png(UPSCALE_SIDE, UPSCALE_SIDE, task.colors[0])
            elif key not in self._images:
                self._images[key] = _grid_png(task.colors)
        elif task.status == "IN_PROGRESS":
            key, content_type = (task.id, "preview"), "image/webp"
            if key not in self._images:
                self._images[key] = make_webp(PREVIEW_SIDE, PREVIEW_SIDE, task.colors[0])
        else:
            # The gateway fetches the task's upstream image URL, and there is none yet (or any more).
            return web.json_response({"error": "http_get_image_failed"}, status=500)
        return web.Response(body=self._images[key], content_type=content_type)
