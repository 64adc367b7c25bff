"""Self-tests of the AI gateway double and of its OpenAPI validation (which runs only when the spec file is there)."""

from __future__ import annotations

import array
import asyncio
import base64
import io
import json
import struct
import sys
import time
import wave
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiohttp import web

from testkit.doubles.gateway import UNSUPPORTED, GatewayDouble, last_user_text_contains
from testkit.doubles.openai_spec import OpenAISpec
from testkit.media import decode_with_ffmpeg, image_size, make_jpeg, make_png, make_voice_note

KEY = "sk-test-double"
SPEC = OpenAISpec.load()  # None without the spec file: the double then runs without validation


@pytest_asyncio.fixture
async def double() -> AsyncIterator[GatewayDouble]:
    gateway = GatewayDouble(KEY, SPEC)
    await gateway.start()
    yield gateway
    await gateway.stop()


@pytest_asyncio.fixture
async def client(double: GatewayDouble) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=double.base_url, headers=headers, timeout=10) as http:
        yield http


def chat(text: str = "hi there", **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}], **extra}


def audio_chat(text: str = "say it", audio_format: str = "wav") -> dict[str, Any]:
    audio = {"voice": "alloy", "format": audio_format}
    return chat(text, model="gpt-4o-audio-preview", modalities=["text", "audio"], audio=audio)


def assert_openai_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


@pytest.mark.asyncio
async def test_requests_need_the_bearer_key(double: GatewayDouble) -> None:
    async with httpx.AsyncClient(base_url=double.base_url) as anonymous:
        missing = await anonymous.post("/chat/completions", json=chat())
        wrong = await anonymous.post(
            "/chat/completions", json=chat(), headers={"Authorization": "Bearer sk-other"}
        )
    for response in (missing, wrong):
        error = assert_openai_error(response, 401)
        assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", "invalid_api_key", None)
    assert [call.status for call in double.calls_to("/chat/completions")] == [401, 401]
    assert double.calls[0].request_id == missing.headers["x-request-id"]
    assert len(double.violations) == 2  # recorded: the bot under test must always send its key


@pytest.mark.asyncio
async def test_chat_echoes_the_last_user_text_in_a_valid_shape(
    double: GatewayDouble, client: httpx.AsyncClient
) -> None:
    body = chat("ignored")
    body["messages"] += [
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "what is"}, {"type": "text", "text": "the time"}]},
    ]
    response = await client.post("/chat/completions", json=body)
    assert response.status_code == 200
    answer = response.json()
    assert answer["object"] == "chat.completion" and answer["model"] == "gpt-4o-mini"
    choice = answer["choices"][0]
    assert choice["message"]["content"] == "echo: what is the time"
    assert choice["finish_reason"] == "stop"
    usage = answer["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    if SPEC is not None:
        assert SPEC.validate_response("/chat/completions", answer) == []
    call = double.calls_to("/chat/completions")[0]
    assert call.json == body and call.status == 200
    assert call.headers["authorization"] == f"Bearer {KEY}"  # headers are case-insensitive
    assert response.headers["x-request-id"] == call.request_id
    assert double.violations == []


@pytest.mark.asyncio
async def test_chat_streams_chunks_and_usage(double: GatewayDouble, client: httpx.AsyncClient) -> None:
    body = chat("stream this please", stream=True, stream_options={"include_usage": True})
    response = await client.post("/chat/completions", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [line.removeprefix("data: ") for line in response.text.split("\n\n") if line]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    assert len({chunk["id"] for chunk in chunks}) == 1
    pieces = [chunk["choices"][0]["delta"].get("content") for chunk in chunks if chunk["choices"]]
    pieces = [piece for piece in pieces if piece]
    assert len(pieces) >= 3 and "".join(pieces) == "echo: stream this please"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0
    assert all(chunk["usage"] is None for chunk in chunks[:-1])
    assert double.violations == []  # every chunk was checked against the stream schema


@pytest.mark.asyncio
async def test_invalid_requests_are_violations_answered_400(
    double: GatewayDouble, client: httpx.AsyncClient
) -> None:
    no_format = audio_chat()
    del no_format["audio"]["format"]
    response = await client.post("/chat/completions", json=no_format)
    assert_openai_error(response, 400)  # the spec requires it; without the spec the double still needs "wav"
    assert len(double.violations) == 1 and "format" in double.violations[0]

    video = await client.post("/chat/completions", json=chat(modalities=["video"]))
    broken = await client.post(
        "/chat/completions", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_openai_error(broken, 400)
    if SPEC is None:  # validation is off: the double answers what it can
        assert video.status_code == 200
    else:
        assert "'video' is not one of ['text', 'audio']" in assert_openai_error(video, 400)["message"]
        assert any("/modalities" in violation for violation in double.violations)
    assert "not valid JSON" in double.violations[-1]
    assert double.calls_to("/chat/completions")[-1].status == 400


@pytest.mark.asyncio
async def test_audio_reply_is_real_wav_of_the_default_length(
    double: GatewayDouble, client: httpx.AsyncClient
) -> None:
    response = await client.post("/chat/completions", json=audio_chat("tell me"))
    assert response.status_code == 200
    message = response.json()["choices"][0]["message"]
    assert message["content"] is None
    audio = message["audio"]
    assert audio["id"].startswith("audio_") and audio["expires_at"] > time.time()
    assert audio["transcript"] == "spoken: tell me"
    with wave.open(io.BytesIO(base64.b64decode(audio["data"]))) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (24000, 1, 2)
        assert wav.getnframes() == 48000  # 2.0 s
    assert double.violations == []

    mp3 = await client.post("/chat/completions", json=audio_chat(audio_format="mp3"))
    assert_openai_error(mp3, 400)
    assert double.violations and UNSUPPORTED in double.violations[-1]


@pytest.mark.asyncio
@pytest.mark.parametrize(("header", "size"), [("zero", 0), ("ffff", 0xFFFFFFFF)])
async def test_scripted_audio_with_streaming_encoder_headers(
    double: GatewayDouble, client: httpx.AsyncClient, header: str, size: int
) -> None:
    double.when("/chat/completions").reply_audio(seconds=1.5, transcript="custom words", header=header)
    response = await client.post("/chat/completions", json=audio_chat())
    audio = response.json()["choices"][0]["message"]["audio"]
    data = base64.b64decode(audio["data"])
    assert audio["transcript"] == "custom words"
    assert struct.unpack_from("<I", data, 4)[0] == size and struct.unpack_from("<I", data, 40)[0] == size
    seconds, rate, channels = decode_with_ffmpeg(data)
    assert (round(seconds, 3), rate, channels) == (1.5, 24000, 1)


@pytest.mark.asyncio
async def test_transcription_by_registered_hash(double: GatewayDouble, client: httpx.AsyncClient) -> None:
    voice, other = make_voice_note(1.0), make_voice_note(1.0, freq=600.0)
    double.set_transcript(voice, "what is the weather")

    async def transcribe(data: bytes, name: str = "voice.ogg", **fields: str) -> httpx.Response:
        form = {"model": "whisper-1", **fields}
        return await client.post("/audio/transcriptions", files={"file": (name, data, "audio/ogg")}, data=form)

    assert (await transcribe(voice)).json() == {"text": "what is the weather"}
    assert (await transcribe(other, "voice.oga")).json() == {"text": "hello there"}
    text = await transcribe(voice, response_format="text", temperature="0.2")
    assert text.headers["content-type"].startswith("text/plain") and text.text == "what is the weather\n"
    verbose = (await transcribe(voice, response_format="verbose_json")).json()
    assert verbose["text"] == "what is the weather" and abs(verbose["duration"] - 1.0) < 0.06
    call = double.calls_to("/audio/transcriptions")[0]
    assert call.fields == {"model": "whisper-1"}
    assert call.files["file"][0].filename == "voice.ogg" and call.files["file"][0].data == voice
    assert double.violations == []

    assert_openai_error(await transcribe(voice, "voice.txt"), 400)  # the API goes by the file name
    assert_openai_error(await transcribe(b"not audio at all" * 50), 400)
    assert len(double.violations) == 2


@pytest.mark.asyncio
async def test_rules_match_in_order_and_expire(double: GatewayDouble, client: httpx.AsyncClient) -> None:
    weather = double.when("/v1/chat/completions", last_user_text_contains("weather"), times=1).reply_text("sunny")
    double.when("/chat/completions", last_user_text_contains("weather")).reply_text("still sunny")

    async def ask(text: str) -> str:
        response = await client.post("/chat/completions", json=chat(text))
        return response.json()["choices"][0]["message"]["content"]

    assert await ask("the weather?") == "sunny"
    assert await ask("the weather again?") == "still sunny"
    assert await ask("something else") == "echo: something else"
    assert weather.hits == 1 and weather.remaining == 0
    double.reset_rules()
    assert await ask("the weather?") == "echo: the weather?"
    with pytest.raises(ValueError):
        double.when("/audio/transcriptions").reply_text("no such thing for transcriptions")


@pytest.mark.asyncio
async def test_scripted_errors_and_garbage(double: GatewayDouble, client: httpx.AsyncClient) -> None:
    double.when("/chat/completions", times=1).reply_status(429, "slow down")
    double.when("/chat/completions", times=1).reply_raw(200, b'{"choices": [', "application/json")
    double.when("/chat/completions", times=1).reply_json(503, {"detail": "gateway down"})
    limited = assert_openai_error(await client.post("/chat/completions", json=chat()), 429)
    assert (limited["message"], limited["code"]) == ("slow down", "rate_limit_exceeded")
    garbage = await client.post("/chat/completions", json=chat())
    assert garbage.status_code == 200 and garbage.content == b'{"choices": ['
    down = await client.post("/chat/completions", json=chat())
    assert (down.status_code, down.json()) == (503, {"detail": "gateway down"})
    assert (await client.post("/chat/completions", json=chat())).status_code == 200
    assert double.violations == []


@pytest.mark.asyncio
async def test_delay_holds_the_answer_and_a_hang_up_cancels_it(
    double: GatewayDouble, client: httpx.AsyncClient
) -> None:
    double.when("/chat/completions", last_user_text_contains("slow"), times=1).delay(0.3).reply_text("late")
    started = time.monotonic()
    response = await client.post("/chat/completions", json=chat("slow"))
    assert response.json()["choices"][0]["message"]["content"] == "late"
    assert time.monotonic() - started >= 0.3

    double.when("/chat/completions", last_user_text_contains("forever")).delay(60)
    with pytest.raises(httpx.ReadTimeout):
        await client.post("/chat/completions", json=chat("forever"), timeout=0.3)
    abandoned = await double.wait_for(lambda call: call.disconnected, timeout=5)
    assert abandoned.status is None and "forever" in abandoned.json["messages"][0]["content"]


@pytest.mark.asyncio
async def test_wait_for_is_event_driven_and_times_out_clearly(
    double: GatewayDouble, client: httpx.AsyncClient
) -> None:
    waiting = asyncio.create_task(double.wait_for(last_user_text_contains("ping"), timeout=5))
    await asyncio.sleep(0)
    assert not waiting.done()
    await client.post("/chat/completions", json=chat("unrelated"))
    await client.post("/chat/completions", json=chat("ping"))
    assert (await waiting).json["messages"][0]["content"] == "ping"
    assert (await double.wait_for(lambda call: call.status == 200)).path == "/chat/completions"  # already recorded
    with pytest.raises(AssertionError, match="no gateway call matched"):
        await double.wait_for(lambda call: call.path == "/audio/speech", timeout=0.05)


@pytest.mark.asyncio
@pytest.mark.parametrize("field", ["image[]", "image"])
async def test_edits_take_two_images_and_answer_a_new_png_of_the_same_size(
    double: GatewayDouble, client: httpx.AsyncClient, field: str
) -> None:
    first, second = make_png(40, 30, (0, 0, 255)), make_jpeg(20, 20)
    files = [(field, ("a.png", first, "image/png")), (field, ("b.jpg", second, "image/jpeg"))]
    form = {"model": "gpt-image-1", "prompt": "add a hat", "n": "1"}
    response = await client.post("/images/edits", files=files, data=form)
    assert response.status_code == 200, response.text
    edited = base64.b64decode(response.json()["data"][0]["b64_json"])
    assert image_size(edited) == ("png", 40, 30) and edited != first
    call = double.calls_to("/images/edits")[0]
    assert [part.data for part in call.uploads("image")] == [first, second]
    assert call.fields == {"model": "gpt-image-1", "prompt": "add a hat", "n": "1"}
    assert double.violations == []

    bad = [(field, ("a.png", b"\x89PNG broken", "image/png"))]
    assert_openai_error(await client.post("/images/edits", files=bad, data={"prompt": "x"}), 400)


@pytest.mark.asyncio
async def test_generations_answer_real_images_as_gpt_image_1_does(
    double: GatewayDouble, client: httpx.AsyncClient
) -> None:
    cat = {"model": "gpt-image-1", "prompt": "a cat", "size": "1024x1536"}
    png = await client.post("/images/generations", json=cat)
    answer = png.json()
    assert answer["size"] == "1024x1536" and answer["usage"]["total_tokens"] > 0
    assert image_size(base64.b64decode(answer["data"][0]["b64_json"])) == ("png", 1024, 1536)
    dogs = {"model": "gpt-image-1", "prompt": "a dog", "size": "256x256", "n": 2, "output_format": "jpeg"}
    two = await client.post("/images/generations", json=dogs)
    images = [base64.b64decode(item["b64_json"]) for item in two.json()["data"]]
    assert [image_size(image) for image in images] == [("jpeg", 256, 256)] * 2 and images[0] != images[1]
    assert double.violations == []


@pytest.mark.asyncio
async def test_speech_answers_wav_or_pcm_only(double: GatewayDouble, client: httpx.AsyncClient) -> None:
    request = {"model": "gpt-4o-mini-tts", "input": "fifteen letters", "voice": "alloy", "response_format": "wav"}
    wav = await client.post("/audio/speech", json=request)
    assert wav.headers["content-type"] == "audio/wav"
    assert decode_with_ffmpeg(wav.content) == (1.0, 24000, 1)
    pcm = await client.post("/audio/speech", json={**request, "response_format": "pcm"})
    assert len(pcm.content) == 24000 * 2
    double.when("/audio/speech").reply_audio(seconds=0.5)
    assert decode_with_ffmpeg((await client.post("/audio/speech", json=request)).content)[0] == 0.5
    assert double.violations == []
    assert_openai_error(await client.post("/audio/speech", json={**request, "response_format": "mp3"}), 400)
    assert UNSUPPORTED in double.violations[-1]


@pytest.mark.asyncio
async def test_unknown_urls_are_violations(double: GatewayDouble, client: httpx.AsyncClient) -> None:
    answer = await client.get("/fine_tuning/jobs")
    assert "Invalid URL (GET /v1/fine_tuning/jobs)" in assert_openai_error(answer, 404)["message"]
    assert double.violations == ["GET /fine_tuning/jobs: Invalid URL (GET /v1/fine_tuning/jobs)"]


async def test_the_catalog_lists_models_as_the_api_does(double: GatewayDouble, client: httpx.AsyncClient) -> None:
    double.catalog["gpt-4o-audio-preview"] = "2026-12-15"
    answer = await client.get("/models")
    assert answer.status_code == 200
    models = {model["id"]: model for model in answer.json()["data"]}
    assert models["gpt-4o-audio-preview"]["shutdown_date"] == "2026-12-15"
    assert "shutdown_date" not in models["gpt-4o-mini"]
    assert double.violations == []


@pytest.mark.asyncio
async def test_other_modules_can_add_scriptable_routes() -> None:
    gateway = GatewayDouble(KEY, SPEC)

    async def imagine(request: web.Request) -> web.StreamResponse:
        _rule, canned = await gateway.scripted(gateway.call_of(request))
        return canned or web.json_response({"code": 1, "result": "task-1"})

    gateway.app.router.add_post("/mj/submit/imagine", imagine)
    gateway.when("/mj/submit/imagine", times=1).reply_json(200, {"code": 24, "description": "banned prompt"})
    await gateway.start()
    try:
        async with httpx.AsyncClient(
            base_url=gateway.root_url, headers={"Authorization": f"Bearer {KEY}"}
        ) as http:
            first = await http.post("/mj/submit/imagine", json={"prompt": "x"})
            second = await http.post("/mj/submit/imagine", json={"prompt": "y"})
    finally:
        await gateway.stop()
    assert first.json()["code"] == 24 and second.json() == {"code": 1, "result": "task-1"}
    assert [call.json["prompt"] for call in gateway.calls_to("/mj/submit/imagine")] == ["x", "y"]
    assert gateway.violations == []


@pytest.mark.asyncio
async def test_without_the_spec_the_double_still_answers() -> None:
    gateway = GatewayDouble(KEY, None)
    await gateway.start()
    try:
        async with httpx.AsyncClient(
            base_url=gateway.base_url, headers={"Authorization": f"Bearer {KEY}"}
        ) as http:
            response = await http.post("/chat/completions", json=chat("hello", modalities=["video"]))
            missing = await http.post("/chat/completions", json={"model": "gpt-4o-mini"})
    finally:
        await gateway.stop()
    assert response.json()["choices"][0]["message"]["content"] == "echo: hello"
    assert_openai_error(missing, 400)  # the double's own needs are still checked
    assert gateway.violations == ["POST /chat/completions: messages must be a non-empty list"]


# --- OpenAISpec mechanics, on a small document so they are tested with or without the real spec ----------


def _mini_spec() -> OpenAISpec:
    binary = {"type": "string", "format": "binary"}
    upload = {
        "type": "object",
        "additionalProperties": False,
        "required": ["file", "n"],
        "properties": {
            "file": binary,
            "image": {"anyOf": [binary, {"type": "array", "items": binary}]},
            "n": {"type": "integer", "nullable": True},
            "temperature": {"type": "number"},
            "stream": {"anyOf": [{"type": "boolean"}, {"type": "null"}]},
            "include": {"type": "array", "items": {"type": "string", "enum": ["logprobs"]}},
            "model": {"type": "string"},
        },
    }
    return OpenAISpec(
        {
            "openapi": "3.1.0",
            "paths": {
                "/upload": {
                    "post": {
                        "requestBody": {
                            "content": {"multipart/form-data": {"schema": {"$ref": "#/components/schemas/Upload"}}}
                        },
                        "responses": {
                            "200": {
                                "content": {
                                    "application/json": {"schema": {"$ref": "#/components/schemas/Answer"}}
                                }
                            },
                            "429": {"$ref": "#/components/responses/Limited"},
                        },
                    }
                }
            },
            "components": {
                "schemas": {
                    "Upload": upload,
                    "Answer": {
                        "oneOf": [{"$ref": "#/components/schemas/Short"}, {"$ref": "#/components/schemas/Long"}]
                    },
                    "Short": {
                        "type": "object",
                        "required": ["text"],
                        "properties": {"text": {"type": "string"}, "note": {"type": "string", "nullable": True}},
                    },
                    "Long": {
                        "type": "object",
                        "required": ["text", "duration"],
                        "properties": {"duration": {"type": "number"}},
                    },
                    "Error": {
                        "type": "object",
                        "required": ["error"],
                        "properties": {"error": {"type": "object", "required": ["message"]}},
                    },
                },
                "responses": {
                    "Limited": {
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
                    },
                },
            },
        }
    )


def test_multipart_fields_are_coerced_as_the_schema_says() -> None:
    spec = _mini_spec()
    form = {"file": b"bytes", "n": "2", "temperature": "0.5", "stream": "false", "include[]": "logprobs"}
    assert (
        spec.validate_request("/upload", "multipart/form-data; boundary=x", {**form, "image[]": [b"a", b"b"]})
        == []
    )
    assert spec.validate_request("/upload", "multipart/form-data", {"file": b"x", "n": "null?"}) != []
    # The same name twice without [], and a lone value for an array-only field.
    repeated = {"file": b"x", "n": "1", "image": [b"a", b"b"], "include": "logprobs"}
    assert spec.validate_request("/upload", "multipart/form-data", repeated) == []
    swapped = {"file": "just text", "n": "1", "model": b"file"}
    problems = spec.validate_request("/upload", "multipart/form-data", swapped)
    assert any("must be a file part" in p for p in problems) and any("sent as a file part" in p for p in problems)
    assert spec.validate_request("/upload", "application/json", {}) != []
    assert spec.validate_request("/nowhere", "application/json", {}) == ["POST /nowhere is not in the OpenAI spec"]


def test_nullable_admits_null_and_overlapping_one_of_answers_pass() -> None:
    spec = _mini_spec()
    assert spec.validate_request("/upload", "multipart/form-data", {"file": b"x", "n": "1"}) == []
    assert spec.validate_response("/upload", {"text": "hi", "note": None}) == []
    assert spec.validate_response("/upload", {"text": "hi", "note": 3}) != []
    assert spec.validate_response("/upload", {"text": "hi", "duration": 1.0}) == []  # matches both branches
    assert spec.validate_response("/upload", {"duration": 1.0}) != []
    # A 401 is not documented: the error shape documented for the 429 applies.
    assert spec.validate_response("/upload", {"error": {"message": "m"}}, status=401) == []
    assert spec.validate_response("/upload", {"oops": 1}, status=500) != []


def test_load_returns_none_without_the_file(tmp_path: Any) -> None:
    assert OpenAISpec.load(tmp_path / "missing.json") is None
    assert SPEC is None or OpenAISpec.load() is SPEC  # parsed once per process


# --- models the gateway does not serve, as new-api answers them --------------------------------------------------


def assert_not_served(response: httpx.Response, model: str, status: int = 503) -> None:
    assert response.status_code == status
    error = response.json()["error"]
    assert (error["code"], error["type"], error["param"]) == ("model_not_found", "new_api_error", None)
    expected = f"当前分组 default 下对于模型 {model} 无可用渠道 (request id: req_"
    assert error["message"].startswith(expected)
    if SPEC is not None:
        assert SPEC.validate_response("/chat/completions", response.json(), status) == []


@pytest.mark.asyncio
async def test_a_model_the_catalog_does_not_list_is_answered_503_on_every_route(
    double: GatewayDouble, client: httpx.AsyncClient
) -> None:
    for model in ("gpt-4o-mini", "whisper-1", "gpt-4o-mini-tts", "gpt-image-1", "text-embedding-3-small"):
        del double.catalog[model]
    voice = make_voice_note(0.5)
    answers = {
        "gpt-4o-mini": await client.post("/chat/completions", json=chat()),
        "whisper-1": await client.post(
            "/audio/transcriptions", files={"file": ("v.ogg", voice, "audio/ogg")}, data={"model": "whisper-1"}
        ),
        "gpt-4o-mini-tts": await client.post(
            "/audio/speech",
            json={"model": "gpt-4o-mini-tts", "input": "hi", "voice": "alloy", "response_format": "wav"},
        ),
        "gpt-image-1": await client.post("/images/generations", json={"model": "gpt-image-1", "prompt": "a cat"}),
        "text-embedding-3-small": await client.post(
            "/embeddings", json={"model": "text-embedding-3-small", "input": "hello"}
        ),
    }
    for model, response in answers.items():
        assert_not_served(response, model)
    assert [(call.model, call.status) for call in double.calls] == [(model, 503) for model in answers]
    assert double.violations == []  # the bot is expected to meet unlisted models and fall back

    # A body naming no model gets new-api's default for the route, which this catalog does not list either.
    assert_not_served(await client.post("/images/generations", json={"prompt": "a cat"}), "dall-e")
    # An invalid body is still a violation first: the spec is checked before the model.
    assert_openai_error(await client.post("/chat/completions", json={"model": "gpt-4o-mini"}), 400)
    assert len(double.violations) == 1


@pytest.mark.asyncio
async def test_an_unroutable_model_is_listed_but_not_served(
    double: GatewayDouble, client: httpx.AsyncClient
) -> None:
    double.unroutable.add("gpt-4o")
    listed = {model["id"] for model in (await client.get("/models")).json()["data"]}
    assert "gpt-4o" in listed and not double.serves("gpt-4o") and double.serves("gpt-4o-mini")
    assert_not_served(await client.post("/chat/completions", json=chat(model="gpt-4o")), "gpt-4o")
    assert (await client.post("/chat/completions", json=chat())).status_code == 200
    assert double.violations == []


@pytest.mark.asyncio
async def test_a_rule_can_answer_model_not_served_for_some_calls(
    double: GatewayDouble, client: httpx.AsyncClient
) -> None:
    double.when("/chat/completions", lambda call: "audio" in call.json.get("modalities", [])).model_not_served(404)
    assert_not_served(await client.post("/chat/completions", json=audio_chat()), "gpt-4o-audio-preview", 404)
    assert (await client.post("/chat/completions", json=chat())).status_code == 200
    double.when("/audio/speech", times=1).model_not_served()
    speech = {"model": "tts-1", "input": "hi", "voice": "alloy", "response_format": "wav"}
    assert_not_served(await client.post("/audio/speech", json=speech), "tts-1")
    assert (await client.post("/audio/speech", json=speech)).status_code == 200  # that rule ran out
    with pytest.raises(ValueError):
        double.when("/chat/completions").model_not_served(500)
    assert double.violations == []


@pytest.mark.asyncio
async def test_reset_rules_brings_back_the_default_catalog(double: GatewayDouble) -> None:
    catalog = double.catalog
    defaults = dict(catalog)
    assert {"gpt-5-mini", "gpt-5", "gpt-image-1-mini", "claude-sonnet-4-5", "claude-haiku-4-5"} <= set(defaults)
    catalog.clear()
    catalog["only-this"] = "2026-01-01"
    double.unroutable.add("gpt-4o")
    double.when("/chat/completions").reply_text("x")
    double.reset_rules()
    assert double.catalog is catalog and catalog == defaults and double.unroutable == set()
    assert all(shutdown is None for shutdown in defaults.values())


# --- /audio/speech and /embeddings -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_speech_as_pcm_is_24khz_16_bit_audio_as_long_as_the_text(
    double: GatewayDouble, client: httpx.AsyncClient
) -> None:
    short, long = "fifteen letters", "thirty letters, twice as long."
    assert len(long) == 2 * len(short)
    sizes = []
    for text, voice in ((short, "marin"), (long, "nova")):
        request = {"model": "gpt-4o-mini-tts", "input": text, "voice": voice, "response_format": "pcm"}
        response = await client.post("/audio/speech", json=request)
        assert response.status_code == 200 and response.headers["content-type"] == "audio/pcm"
        samples = array.array("h", response.content)
        if sys.byteorder == "big":
            samples.byteswap()
        assert max(samples) > 1000 and min(samples) < -1000  # a tone, not silence
        sizes.append(len(response.content))
    assert sizes == [24000 * 2 * 1, 24000 * 2 * 2]  # 1 s and 2 s of 24 kHz mono 16-bit
    assert [(call.json["model"], call.json["voice"]) for call in double.calls] == [
        ("gpt-4o-mini-tts", "marin"),
        ("gpt-4o-mini-tts", "nova"),
    ]
    assert double.violations == []

    bad = {"model": "tts-1", "input": "hi", "voice": "robot", "response_format": "pcm"}
    assert_openai_error(await client.post("/audio/speech", json=bad), 400)
    assert "'voice'" in double.violations[-1] and "robot" in double.violations[-1]


@pytest.mark.asyncio
async def test_embeddings_are_unit_vectors_of_the_asked_length(
    double: GatewayDouble, client: httpx.AsyncClient
) -> None:
    request = {"model": "text-embedding-3-small", "input": ["cat", "dog", "cat"]}
    answer = (await client.post("/embeddings", json=request)).json()
    vectors = [item["embedding"] for item in answer["data"]]
    assert [len(vector) for vector in vectors] == [1536] * 3 and answer["usage"]["total_tokens"] == 3
    assert vectors[0] == vectors[2] != vectors[1]
    assert abs(sum(value * value for value in vectors[1]) - 1) < 1e-3
    short = await client.post("/embeddings", json={**request, "dimensions": 8, "encoding_format": "base64"})
    packed = base64.b64decode(short.json()["data"][0]["embedding"])
    assert len(struct.unpack(f"<{len(packed) // 4}f", packed)) == 8
    assert double.violations == []
    assert_openai_error(await client.post("/embeddings", json={**request, "input": ""}), 400)
    assert len(double.violations) == 1


# --- Anthropic's Messages API at /v1/messages --------------------------------------------------------------------


def anthropic_headers(key: str = KEY, **extra: str) -> dict[str, str]:
    return {"x-api-key": key, "anthropic-version": "2023-06-01", **extra}


def claude(text: str = "hi there", **extra: Any) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }


@pytest_asyncio.fixture
async def root(double: GatewayDouble) -> AsyncIterator[httpx.AsyncClient]:
    """A client at the double's root, without a key: the bot calls {MJ_BASE_URL}/v1/messages."""
    async with httpx.AsyncClient(base_url=double.root_url, timeout=10) as http:
        yield http


def sse_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) of each server-sent event."""
    events = []
    for block in text.split("\n\n"):
        if block.strip():
            fields = dict(line.split(": ", 1) for line in block.split("\n"))
            events.append((fields["event"], json.loads(fields["data"])))
    return events


@pytest.mark.asyncio
async def test_messages_answer_a_message_with_the_last_user_text(
    double: GatewayDouble, root: httpx.AsyncClient
) -> None:
    body = claude(
        "first", system=[{"type": "text", "text": "be brief"}], temperature=0.2, metadata={"user_id": "u1"}
    )
    body["messages"] += [
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "what is"}, {"type": "text", "text": "this"}]},
    ]
    response = await root.post("/v1/messages", json=body, headers=anthropic_headers())
    assert response.status_code == 200, response.text
    message = response.json()
    assert message["id"].startswith("msg_") and message["type"] == "message" and message["role"] == "assistant"
    assert message["model"] == "claude-sonnet-4-5"
    assert message["content"] == [{"type": "text", "text": "claude: what is this"}]
    assert (message["stop_reason"], message["stop_sequence"]) == ("end_turn", None)
    assert message["usage"]["input_tokens"] > 0 and message["usage"]["output_tokens"] > 0
    call = double.calls_to("/v1/messages")[0]
    assert call.path == "/v1/messages" and call.json == body and call.status == 200
    assert call.json["system"][0]["text"] == "be brief" and call.json["max_tokens"] == 256
    assert call.headers["anthropic-version"] == "2023-06-01" and call.model == "claude-sonnet-4-5"

    # The Bearer form of the key works too, and the OpenAI routes under /v1 are untouched.
    bearer = {"Authorization": f"Bearer {KEY}", "anthropic-version": "2023-06-01"}
    assert (
        await root.post("/v1/messages", json=claude(model="claude-haiku-4-5"), headers=bearer)
    ).status_code == 200
    chat_answer = await root.post(
        "/v1/chat/completions", json=chat("still here"), headers={"Authorization": f"Bearer {KEY}"}
    )
    assert chat_answer.json()["choices"][0]["message"]["content"] == "echo: still here"
    assert [call.path for call in double.calls] == ["/v1/messages", "/v1/messages", "/chat/completions"]
    assert double.violations == []


@pytest.mark.asyncio
async def test_messages_stream_the_events_anthropic_sends_in_its_order(
    double: GatewayDouble, root: httpx.AsyncClient
) -> None:
    response = await root.post(
        "/v1/messages", json=claude("stream this please", stream=True), headers=anthropic_headers()
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    assert all(name == data["type"] for name, data in events)
    names = [name for name, _data in events]
    deltas = names.count("content_block_delta")
    assert deltas >= 3
    assert names == [
        "message_start", "content_block_start", "ping", *["content_block_delta"] * deltas,
        "content_block_stop", "message_delta", "message_stop",
    ]  # fmt: skip
    start = events[0][1]["message"]
    assert start["content"] == [] and start["stop_reason"] is None and start["usage"]["input_tokens"] > 0
    assert start["id"].startswith("msg_") and start["model"] == "claude-sonnet-4-5"
    assert events[1][1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    pieces = [data["delta"] for name, data in events if name == "content_block_delta"]
    assert {piece["type"] for piece in pieces} == {"text_delta"}
    assert "".join(piece["text"] for piece in pieces) == "claude: stream this please"
    assert all(data["index"] == 0 for name, data in events if name.startswith("content_block"))
    assert events[-2][1]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert events[-2][1]["usage"]["output_tokens"] > 0
    assert double.violations == []


@pytest.mark.asyncio
async def test_messages_are_scripted_like_the_chat_route(double: GatewayDouble, root: httpx.AsyncClient) -> None:
    double.when("/v1/messages", last_user_text_contains("slow"), times=1).reply_text("one two three").paced(3, 0.1)
    double.when("/v1/messages", times=1).delay(0.2).reply_status(529, "Overloaded")
    started = time.monotonic()
    slow = await root.post("/v1/messages", json=claude("slow", stream=True), headers=anthropic_headers())
    assert time.monotonic() - started >= 0.2
    pieces = [data["delta"]["text"] for name, data in sse_events(slow.text) if name == "content_block_delta"]
    assert len(pieces) == 3 and "".join(pieces) == "one two three"
    started = time.monotonic()
    busy = await root.post("/v1/messages", json=claude(), headers=anthropic_headers())
    assert time.monotonic() - started >= 0.2
    assert (busy.status_code, busy.json()) == (
        529,
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
    )
    with pytest.raises(ValueError):
        double.when("/v1/messages").transcript("no transcripts here")
    # A stop sequence, or max_tokens, ends the answer as the model would.
    stopped = await root.post(
        "/v1/messages", json=claude("a.b", stop_sequences=["."]), headers=anthropic_headers()
    )
    assert stopped.json()["content"][0]["text"] == "claude: a"
    assert (stopped.json()["stop_reason"], stopped.json()["stop_sequence"]) == ("stop_sequence", ".")
    cut = await root.post("/v1/messages", json=claude("x" * 100, max_tokens=2), headers=anthropic_headers())
    assert cut.json()["content"][0]["text"] == "claude: " and cut.json()["stop_reason"] == "max_tokens"
    assert double.violations == []


@pytest.mark.asyncio
async def test_messages_for_an_unlisted_model_get_new_apis_answer(
    double: GatewayDouble, root: httpx.AsyncClient
) -> None:
    del double.catalog["claude-sonnet-4-5"]
    double.unroutable.add("claude-haiku-4-5")
    for model in ("claude-sonnet-4-5", "claude-haiku-4-5"):
        response = await root.post(
            "/v1/messages", json=claude(model=model, stream=True), headers=anthropic_headers()
        )
        assert_not_served(response, model)
    assert [call.status for call in double.calls] == [503, 503] and double.violations == []


def _image(media_type: str, data: bytes) -> dict[str, Any]:
    return {
        "type": "image",
        "source": {"type": "base64", "media_type": media_type, "data": base64.b64encode(data).decode()},
    }


@pytest.mark.asyncio
async def test_messages_take_images_as_base64_blocks(double: GatewayDouble, root: httpx.AsyncClient) -> None:
    content = [
        _image("image/png", make_png(30, 20)),
        _image("image/jpeg", make_jpeg()),
        {"type": "text", "text": "what?"},
    ]
    response = await root.post(
        "/v1/messages", json=claude(messages=[{"role": "user", "content": content}]), headers=anthropic_headers()
    )
    assert response.status_code == 200 and response.json()["content"][0]["text"] == "claude: what?"
    assert double.violations == []


def _invalid_messages() -> list[Any]:
    png = make_png(10, 10)
    as_data_url = _image("image/png", png)
    as_data_url["source"]["data"] = "data:image/png;base64," + as_data_url["source"]["data"]
    user = [{"role": "user", "content": "hi"}]
    cases: list[tuple[str, dict[str, Any], dict[str, str], str]] = [
        (
            "no max_tokens",
            {k: v for k, v in claude().items() if k != "max_tokens"},
            {},
            "max_tokens: Field required",
        ),
        ("max_tokens 0", claude(max_tokens=0), {}, "max_tokens: Input should be greater than or equal to 1"),
        (
            "system inside messages",
            claude(messages=[{"role": "system", "content": "be brief"}, *user]),
            {},
            'Unexpected role "system"',
        ),
        ("no anthropic-version", claude(), {"anthropic-version": ""}, "anthropic-version: header is required"),
        ("empty messages", claude(messages=[]), {}, "messages: at least one message is required"),
        ("no messages", {"model": "claude-sonnet-4-5", "max_tokens": 5}, {}, "messages: Field required"),
        (
            "an assistant first",
            claude(messages=[{"role": "assistant", "content": "hello"}, *user]),
            {},
            'first message must use the "user" role',
        ),
        (
            "an empty user message",
            claude(messages=[{"role": "user", "content": ""}]),
            {},
            "messages.0: all messages must have non-empty content",
        ),
        (
            "an empty text block",
            claude(messages=[{"role": "user", "content": [{"type": "text", "text": ""}]}]),
            {},
            "text content blocks must be non-empty",
        ),
        (
            "an image whose bytes are another format",
            claude(messages=[{"role": "user", "content": [_image("image/jpeg", png)]}]),
            {},
            "content.0.image.source.base64.data: Image does not match the provided media type image/jpeg",
        ),
        (
            "an image sent as a data URL",
            claude(messages=[{"role": "user", "content": [as_data_url]}]),
            {},
            "invalid base64 data",
        ),
        (
            "an image of an unknown media type",
            claude(messages=[{"role": "user", "content": [_image("image/bmp", png)]}]),
            {},
            "media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'",
        ),
        (
            "an OpenAI image_url part",
            claude(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]),
            {},
            "Input tag 'image_url' found using 'type' does not match",
        ),
        (
            "an OpenAI field",
            claude(stream_options={"include_usage": True}),
            {},
            "stream_options: Extra inputs are not permitted",
        ),
        ("temperature with top_p", claude(temperature=0.5, top_p=0.9), {}, "cannot both be specified"),
        (
            "a system block that is not text",
            claude(system=[{"type": "image"}]),
            {},
            "system.0: system blocks must be text",
        ),
    ]
    return [pytest.param(body, headers, expected, id=name) for name, body, headers, expected in cases]


@pytest.mark.asyncio
@pytest.mark.parametrize(("body", "headers", "expected"), _invalid_messages())
async def test_invalid_messages_are_violations_answered_in_anthropics_shape(
    double: GatewayDouble, root: httpx.AsyncClient, body: dict[str, Any], headers: dict[str, str], expected: str
) -> None:
    sent = {name: value for name, value in anthropic_headers(**headers).items() if value}
    response = await root.post("/v1/messages", json=body, headers=sent)
    assert response.status_code == 400
    answer = response.json()
    assert answer["type"] == "error" and answer["error"]["type"] == "invalid_request_error"
    assert expected in answer["error"]["message"]
    assert len(double.violations) == 1 and expected in double.violations[0]
    assert double.violations[0].startswith("POST /v1/messages: ")
    assert double.calls[0].status == 400 and double.calls[0].json == body


@pytest.mark.asyncio
async def test_messages_need_the_key_in_either_header(double: GatewayDouble, root: httpx.AsyncClient) -> None:
    wrong = await root.post("/v1/messages", json=claude(), headers=anthropic_headers("sk-other"))
    missing = await root.post("/v1/messages", json=claude(), headers={"anthropic-version": "2023-06-01"})
    # x-api-key wins over Authorization, as new-api reads them
    both = await root.post(
        "/v1/messages", json=claude(), headers={**anthropic_headers("sk-other"), "Authorization": f"Bearer {KEY}"}
    )
    for response in (wrong, missing, both):
        assert response.status_code == 401
    assert len(double.violations) == 3 and all("API key" in violation for violation in double.violations)
    # x-api-key is new-api's on its Anthropic and model routes only
    openai_route = await root.post("/v1/chat/completions", json=chat(), headers={"x-api-key": KEY})
    assert openai_route.status_code == 401


@pytest.mark.asyncio
async def test_the_anthropic_sdk_reads_the_doubles_answers(double: GatewayDouble) -> None:
    anthropic = pytest.importorskip("anthropic")
    client = anthropic.AsyncAnthropic(api_key=KEY, base_url=double.root_url, max_retries=0)
    try:
        message = await client.messages.create(
            model="claude-haiku-4-5",
            max_tokens=64,
            system="be brief",
            messages=[{"role": "user", "content": "yo"}],
        )
        assert message.content[0].text == "claude: yo" and message.stop_reason == "end_turn"
        stream = await client.messages.create(
            model="claude-sonnet-4-5", max_tokens=64, messages=[{"role": "user", "content": "go"}], stream=True
        )
        kinds, text = [], ""
        async for event in stream:
            kinds.append(event.type)
            if event.type == "content_block_delta":
                text += event.delta.text
        assert text == "claude: go" and kinds[0] == "message_start" and kinds[-1] == "message_stop"
        del double.catalog["claude-sonnet-4-5"]
        with pytest.raises(anthropic.APIStatusError) as failure:
            await client.messages.create(
                model="claude-sonnet-4-5", max_tokens=64, messages=[{"role": "user", "content": "go"}]
            )
        assert failure.value.status_code == 503 and failure.value.body["error"]["code"] == "model_not_found"
    finally:
        await client.close()
    assert double.violations == []
