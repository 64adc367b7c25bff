"""Self-tests of the gateway double's acting side: tool calls and their results on /chat/completions, structured
output, web search on /responses, and embeddings that carry meaning."""

from __future__ import annotations

import base64
import io
import json
import struct
import wave
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from jsonschema import Draft202012Validator

from testkit.doubles.gateway import GatewayDouble, last_user_text_contains
from testkit.doubles.meaning import cosine, words
from testkit.doubles.openai_spec import OpenAISpec
from testkit.doubles.responses import DEFAULT_SOURCES
from testkit.doubles.structured import NOT_FOR_THIS_MODEL

KEY = "sk-test-acting"
SPEC = OpenAISpec.load()


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


def function(name: str, parameter: str) -> dict[str, Any]:
    parameters = {
        "type": "object",
        "properties": {parameter: {"type": "string"}},
        "required": [parameter],
        "additionalProperties": False,
    }
    return {"type": "function", "function": {"name": name, "description": f"{name} it", "parameters": parameters}}


# Names of the test's own choosing: the double knows no tool by name.
TOOLS = [function("paint_it", "prompt"), function("look_up", "query"), function("note_down", "fact")]


def chat(text: str = "draw me a fox", **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}], "tools": TOOLS, **extra}


def audio_chat(text: str = "draw me a fox", **extra: Any) -> dict[str, Any]:
    audio = {
        "model": "gpt-4o-audio-preview",
        "modalities": ["text", "audio"],
        "audio": {"voice": "alloy", "format": "wav"},
    }
    return chat(text, **audio, **extra)


def after_calls(body: dict[str, Any], calls: list[tuple[str, str, str]], results: list[tuple[str, str]]) -> None:
    """Add the assistant's calls (id, name, arguments) and the tool messages (id, content) to the request."""
    body["messages"].append(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
                for call_id, name, arguments in calls
            ],
        }
    )
    body["messages"] += [
        {"role": "tool", "tool_call_id": call_id, "content": content} for call_id, content in results
    ]


def events(response: httpx.Response) -> list[dict[str, Any]]:
    lines = [line.removeprefix("data: ") for line in response.text.split("\n\n") if line]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


def valid(path: str, answer: dict[str, Any]) -> None:
    if SPEC is not None:
        assert SPEC.validate_response(path, answer) == []


def error_of(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    return response.json()["error"]["message"]


# --- tool calls --------------------------------------------------------------------------------------------------


async def test_a_scripted_tool_call_is_an_assistant_message_with_tool_calls(
    double: GatewayDouble, client: httpx.AsyncClient
) -> None:
    double.when("/chat/completions", last_user_text_contains("fox")).call_tool("paint_it", {"prompt": "a red fox"})
    answer = (await client.post("/chat/completions", json=chat())).json()
    valid("/chat/completions", answer)
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["role"] == "assistant" and message["content"] is None and "audio" not in message
    [call] = message["tool_calls"]
    assert call["id"].startswith("call_") and len(call["id"]) > 10 and call["type"] == "function"
    assert call["function"]["name"] == "paint_it"
    assert json.loads(call["function"]["arguments"]) == {"prompt": "a red fox"}
    assert answer["usage"]["completion_tokens"] > 0
    assert double.violations == []


async def test_several_calls_in_one_answer_keep_their_order_and_ids(
    double: GatewayDouble, client: httpx.AsyncClient
) -> None:
    double.when("/chat/completions", times=1).call_tools(
        [("look_up", {"query": "fox habitats"}), ("note_down", {"fact": "likes foxes"}, "call_mine")]
    )
    answer = (await client.post("/chat/completions", json=chat())).json()
    calls = answer["choices"][0]["message"]["tool_calls"]
    assert [call["function"]["name"] for call in calls] == ["look_up", "note_down"]
    assert calls[1]["id"] == "call_mine" and calls[0]["id"] != calls[1]["id"]
    assert json.loads(calls[0]["function"]["arguments"]) == {"query": "fox habitats"}
    # Arguments given as text are sent as they are (strict is dropped on the way: the bot must check them).
    double.when("/chat/completions", times=1).call_tool("paint_it", '{"prompt": "unterminated')
    raw = (await client.post("/chat/completions", json=chat())).json()
    assert raw["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] == '{"prompt": "unterminated'
    assert double.violations == []
    with pytest.raises(ValueError):
        double.when("/chat/completions").call_tools([])
    with pytest.raises(ValueError):
        double.when("/audio/speech").call_tool("paint_it", {})


async def test_streamed_tool_calls_arrive_in_pieces_that_join_into_the_arguments(
    double: GatewayDouble, client: httpx.AsyncClient
) -> None:
    arguments = {"prompt": "a fox in the snow, watercolour, 狐狸"}
    double.when("/chat/completions").call_tools([("paint_it", arguments), ("note_down", {"fact": "paints"})])
    body = chat(stream=True, stream_options={"include_usage": True})
    response = await client.post("/chat/completions", json=body)
    assert response.headers["content-type"].startswith("text/event-stream")
    chunks = events(response)
    first = chunks[0]["choices"][0]["delta"]
    assert first["role"] == "assistant" and first["content"] is None
    assert set(first["tool_calls"][0]) == {"index", "id", "type", "function"}
    assert first["tool_calls"][0]["function"] == {"name": "paint_it", "arguments": ""}
    joined: dict[int, dict[str, Any]] = {}
    argument_pieces = 0
    for chunk in chunks:
        for choice in chunk["choices"]:
            for piece in choice["delta"].get("tool_calls") or []:
                entry = joined.setdefault(piece["index"], {"id": None, "name": None, "arguments": ""})
                entry["id"] = piece.get("id") or entry["id"]
                entry["name"] = piece.get("function", {}).get("name") or entry["name"]
                entry["arguments"] += piece.get("function", {}).get("arguments", "")
                argument_pieces += bool(piece.get("function", {}).get("arguments"))
    assert argument_pieces >= 4  # several pieces each: a client has to join them
    assert [joined[index]["name"] for index in sorted(joined)] == ["paint_it", "note_down"]
    assert json.loads(joined[0]["arguments"]) == arguments
    assert json.loads(joined[1]["arguments"]) == {"fact": "paints"}
    assert all(entry["id"].startswith("call_") for entry in joined.values())
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0
    assert double.violations == []  # every chunk was checked against the spec by the double itself


async def test_the_openai_sdk_reads_tool_calls_whole_and_streamed(double: GatewayDouble) -> None:
    openai = pytest.importorskip("openai")
    double.when("/chat/completions").call_tool("look_up", {"query": "fox"}, id="call_sdk")
    sdk = openai.AsyncOpenAI(api_key=KEY, base_url=double.base_url, max_retries=0)
    try:
        completion = await sdk.chat.completions.create(**chat())
        [call] = completion.choices[0].message.tool_calls
        assert (call.id, call.function.name, call.function.arguments) == (
            "call_sdk",
            "look_up",
            '{"query": "fox"}',
        )
        stream = await sdk.chat.completions.create(**chat(stream=True))
        pieces = [chunk.choices[0].delta.tool_calls async for chunk in stream if chunk.choices]
        arguments = "".join(call.function.arguments or "" for piece in pieces if piece for call in piece)
        assert json.loads(arguments) == {"query": "fox"}
    finally:
        await sdk.close()
    assert double.violations == []


async def test_an_audio_request_gets_its_tool_call_without_audio(
    double: GatewayDouble, client: httpx.AsyncClient
) -> None:
    double.when("/chat/completions").call_tool("paint_it", {"prompt": "a fox"})
    answer = (await client.post("/chat/completions", json=audio_chat())).json()
    valid("/chat/completions", answer)
    message = answer["choices"][0]["message"]
    assert message["tool_calls"][0]["function"]["name"] == "paint_it"
    assert message["content"] is None and "audio" not in message
    assert answer["usage"]["completion_tokens_details"]["audio_tokens"] == 0
    assert double.violations == []


async def test_a_tool_the_request_does_not_offer_cannot_be_called(
    double: GatewayDouble, client: httpx.AsyncClient
) -> None:
    double.when("/chat/completions", last_user_text_contains("fox")).call_tool("fly_away", {})
    assert "fly_away" in error_of(await client.post("/chat/completions", json=chat()))
    no_tools = chat()
    del no_tools["tools"]
    error_of(await client.post("/chat/completions", json=no_tools))
    error_of(await client.post("/chat/completions", json=chat(tool_choice="none")))
    assert len(double.violations) == 3 and "does not offer" in double.violations[0]


async def test_offered_functions_need_a_valid_name_and_parameters(
    double: GatewayDouble, client: httpx.AsyncClient
) -> None:
    assert "function.name" in error_of(
        await client.post("/chat/completions", json=chat(tools=[function("a b", "x")]))
    )
    broken = function("paint_it", "prompt")
    broken["function"]["parameters"]["properties"]["prompt"]["type"] = "text"
    assert "Invalid schema for function 'paint_it'" in error_of(
        await client.post("/chat/completions", json=chat(tools=[broken]))
    )
    assert len(double.violations) == 2


# --- the round after the tools -----------------------------------------------------------------------------------


async def test_the_round_with_the_results_is_answered_from_them_and_not_by_the_calling_rule(
    double: GatewayDouble, client: httpx.AsyncClient
) -> None:
    rule = double.when("/chat/completions", last_user_text_contains("fox")).call_tool(
        "paint_it", {"prompt": "fox"}
    )
    body = chat()
    first = (await client.post("/chat/completions", json=body)).json()
    call = first["choices"][0]["message"]["tool_calls"][0]
    after_calls(
        body, [(call["id"], "paint_it", call["function"]["arguments"])], [(call["id"], "the picture is sent")]
    )
    second = (await client.post("/chat/completions", json=body)).json()
    valid("/chat/completions", second)
    assert second["choices"][0]["message"]["content"] == "after paint_it: the picture is sent"
    assert second["choices"][0]["finish_reason"] == "stop" and rule.hits == 1
    streamed = events(await client.post("/chat/completions", json={**body, "stream": True}))
    text = "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in streamed if chunk["choices"])
    assert text == "after paint_it: the picture is sent"
    assert double.violations == []


async def test_several_results_are_answered_in_order_and_scripting_still_wins(
    double: GatewayDouble, client: httpx.AsyncClient
) -> None:
    body = chat()
    calls = [("call_a", "look_up", '{"query": "fox"}'), ("call_b", "note_down", '{"fact": "x"}')]
    # Results as text parts, in another order than the calls: each is answered under its own function's name.
    after_calls(body, calls, [("call_b", "noted"), ("call_a", "foxes live in forests")])
    body["messages"][-2]["content"] = [{"type": "text", "text": "no"}, {"type": "text", "text": "ted"}]
    answer = (await client.post("/chat/completions", json=body)).json()
    assert (
        answer["choices"][0]["message"]["content"]
        == "after note_down: noted | after look_up: foxes live in forests"
    )
    double.when("/chat/completions", times=1).reply_text("scripted")
    answer = (await client.post("/chat/completions", json=body)).json()
    assert answer["choices"][0]["message"]["content"] == "scripted"
    assert double.violations == []


async def test_an_audio_round_after_tools_speaks_the_answer_to_the_results(
    double: GatewayDouble, client: httpx.AsyncClient
) -> None:
    body = audio_chat()
    after_calls(body, [("call_1", "paint_it", '{"prompt": "fox"}')], [("call_1", "drawn")])
    answer = (await client.post("/chat/completions", json=body)).json()
    valid("/chat/completions", answer)
    audio = answer["choices"][0]["message"]["audio"]
    assert audio["transcript"] == "after paint_it: drawn"
    with wave.open(io.BytesIO(base64.b64decode(audio["data"]))) as wav:
        assert wav.getframerate() == 24000 and wav.getnframes() > 0
    double.when("/chat/completions", times=1).reply_audio(1.0, "my own words")
    answer = (await client.post("/chat/completions", json=body)).json()
    assert answer["choices"][0]["message"]["audio"]["transcript"] == "my own words"
    assert double.violations == []


@pytest.mark.parametrize(
    ("calls", "results", "complaint"),
    [
        ([], [("call_1", "done")], "must be a response to a preceeding message with 'tool_calls'"),
        ([("call_1", "paint_it", "{}")], [("call_2", "done")], "'call_2' not found"),
        (
            [("call_1", "paint_it", "{}"), ("call_2", "look_up", "{}")],
            [("call_1", "done")],
            "did not have response messages: call_2",
        ),
        ([("call_1", "paint_it", "{}")], [], "did not have response messages: call_1"),
    ],
)
async def test_tool_messages_must_answer_the_calls_before_them(
    double: GatewayDouble,
    client: httpx.AsyncClient,
    calls: list[tuple[str, str, str]],
    results: list[tuple[str, str]],
    complaint: str,
) -> None:
    body = chat()
    if calls:
        after_calls(body, calls, results)
    else:
        body["messages"] += [
            {"role": "tool", "tool_call_id": call_id, "content": text} for call_id, text in results
        ]
    assert complaint in error_of(await client.post("/chat/completions", json=body))
    assert double.violations and complaint in double.violations[0]


async def test_an_earlier_tool_round_in_the_history_is_checked_too(
    double: GatewayDouble, client: httpx.AsyncClient
) -> None:
    body = chat()
    after_calls(body, [("call_1", "paint_it", "{}")], [("call_1", "drawn")])
    body["messages"] += [{"role": "assistant", "content": "here it is"}, {"role": "user", "content": "thanks"}]
    answer = (await client.post("/chat/completions", json=body)).json()
    assert answer["choices"][0]["message"]["content"] == "echo: thanks"
    body["messages"].insert(1, {"role": "tool", "tool_call_id": "call_0", "content": "stray"})
    error_of(await client.post("/chat/completions", json=body))
    assert len(double.violations) == 1


# --- structured output -------------------------------------------------------------------------------------------

PROMPT_SCHEMA = {
    "type": "object",
    "properties": {
        "prompt": {"type": "string"},
        "details": {
            "type": "object",
            "properties": {
                "style": {"type": "string", "enum": ["photo", "painting"]},
                "weight": {"type": "number", "minimum": 0.5},
                "count": {"type": ["integer", "null"]},
                "tags": {"type": "array", "items": {"type": "string"}},
                "nsfw": {"type": "boolean"},
                "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            },
            "required": ["style", "weight", "count", "tags", "nsfw", "note"],
            "additionalProperties": False,
        },
    },
    "required": ["prompt", "details"],
    "additionalProperties": False,
}


def structured(text: str, schema: dict[str, Any], strict: bool = True, **extra: Any) -> dict[str, Any]:
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "rewrite", "schema": schema, "strict": strict},
    }
    return {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": text}],
        "response_format": response_format,
        **extra,
    }


async def test_json_schema_answers_fill_the_schema_from_the_last_user_text(
    double: GatewayDouble, client: httpx.AsyncClient
) -> None:
    answer = (await client.post("/chat/completions", json=structured("一只雪中的狐狸", PROMPT_SCHEMA))).json()
    valid("/chat/completions", answer)
    content = json.loads(answer["choices"][0]["message"]["content"])
    assert Draft202012Validator(PROMPT_SCHEMA).is_valid(content)
    assert content["prompt"] == "EN: 一只雪中的狐狸"
    assert content["details"]["style"] == "photo" and content["details"]["weight"] == 0.5
    assert content["details"]["tags"] == ["EN: 一只雪中的狐狸"]
    optional = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
        "required": ["a"],
    }
    loose = (await client.post("/chat/completions", json=structured("hi", optional, strict=False))).json()
    assert json.loads(loose["choices"][0]["message"]["content"]) == {"a": "EN: hi"}
    streamed = events(
        await client.post("/chat/completions", json={**structured("fox", PROMPT_SCHEMA), "stream": True})
    )
    text = "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in streamed if chunk["choices"])
    assert json.loads(text)["prompt"] == "EN: fox"
    assert double.violations == []


async def test_a_scripted_text_answers_a_json_schema_request_as_it_is(
    double: GatewayDouble, client: httpx.AsyncClient
) -> None:
    double.when("/chat/completions", times=1).reply_text("not json at all")
    answer = (await client.post("/chat/completions", json=structured("fox", PROMPT_SCHEMA))).json()
    assert answer["choices"][0]["message"]["content"] == "not json at all"
    assert double.violations == []


@pytest.mark.parametrize(
    "extra",
    [
        {"model": "gpt-4o-audio-preview"},
        {"model": "gpt-audio"},
        {"model": "gpt-4o-mini", "modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"}},
    ],
)
async def test_audio_models_refuse_structured_output(
    double: GatewayDouble, client: httpx.AsyncClient, extra: dict[str, Any]
) -> None:
    body = {**structured("fox", PROMPT_SCHEMA), **extra}
    assert error_of(await client.post("/chat/completions", json=body)) == NOT_FOR_THIS_MODEL
    assert len(double.violations) == 1


async def test_a_strict_schema_must_close_its_objects_and_require_every_property(
    double: GatewayDouble, client: httpx.AsyncClient
) -> None:
    open_object = {"type": "object", "properties": {"prompt": {"type": "string"}}, "required": ["prompt"]}
    assert "'additionalProperties' is required" in error_of(
        await client.post("/chat/completions", json=structured("fox", open_object))
    )
    partial = {**open_object, "properties": {"prompt": {"type": "string"}, "extra": {"type": "string"}}}
    partial["additionalProperties"] = False
    assert "Missing 'extra'" in error_of(await client.post("/chat/completions", json=structured("fox", partial)))
    assert 'type: "object"' in error_of(
        await client.post("/chat/completions", json=structured("fox", {"type": "string"}))
    )
    not_a_schema = {"type": "object", "properties": {"prompt": {"type": 5}}}
    error_of(await client.post("/chat/completions", json=structured("fox", not_a_schema, strict=False)))
    assert len(double.violations) == 4


# --- web search on /responses ------------------------------------------------------------------------------------


def search(text: str = "fox facts", tool: str = "web_search", **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "input": text, "tools": [{"type": tool}], **extra}


def output_text(answer: dict[str, Any]) -> dict[str, Any]:
    [message] = [item for item in answer["output"] if item["type"] == "message"]
    [content] = message["content"]
    return content


@pytest.mark.parametrize("tool", ["web_search", "web_search_preview"])
async def test_a_web_search_answers_a_response_citing_its_sources(
    double: GatewayDouble, client: httpx.AsyncClient, tool: str
) -> None:
    response = await client.post("/responses", json=search("how fast is a fox", tool))
    assert response.status_code == 200, response.text
    answer = response.json()
    valid("/responses", answer)
    assert answer["object"] == "response" and answer["status"] == "completed"
    assert [item["type"] for item in answer["output"]] == ["web_search_call", "message"]
    searched = answer["output"][0]
    assert searched["status"] == "completed" and searched["action"] == {
        "type": "search",
        "query": "how fast is a fox",
    }
    content = output_text(answer)
    text = content["text"]
    assert text == 'Found for "how fast is a fox": first source, second source.'
    notes = content["annotations"]
    assert [note["type"] for note in notes] == ["url_citation", "url_citation"]
    assert [(note["url"], note["title"]) for note in notes] == list(DEFAULT_SOURCES)
    assert [text[note["start_index"] : note["end_index"]] for note in notes] == ["first source", "second source"]
    assert answer["usage"]["total_tokens"] == answer["usage"]["input_tokens"] + answer["usage"]["output_tokens"]
    assert "output_text" not in answer  # a convenience of the SDKs, not of the API
    assert double.searches == ["how fast is a fox"]
    assert double.violations == []
    double.reset_rules()  # after each e2e test: searches are counted per test
    assert double.searches == []


async def test_searches_are_scripted_with_their_sources(double: GatewayDouble, client: httpx.AsyncClient) -> None:
    text = "Foxes run at 50 km/h according to Wild, and Zoo agrees."
    sources = [("https://wild.example/fox", "Wild", 34, 38), ("https://zoo.example", "Zoo", 44, 47)]
    double.when("/responses", lambda call: "fox" in str(call.json["input"])).reply_search(
        text, sources, query="fox speed"
    )
    body = search(
        [{"role": "user", "content": [{"type": "input_text", "text": "fox speed?"}]}],
        include=["web_search_call.action.sources"],
    )
    answer = (await client.post("/responses", json=body)).json()
    valid("/responses", answer)
    content = output_text(answer)
    assert content["text"] == text
    assert [text[note["start_index"] : note["end_index"]] for note in content["annotations"]] == ["Wild", "Zoo"]
    assert answer["output"][0]["action"]["sources"] == [
        {"type": "url", "url": "https://wild.example/fox"},
        {"type": "url", "url": "https://zoo.example"},
    ]
    assert double.searches == ["fox speed"]
    with pytest.raises(ValueError):
        double.when("/responses").reply_search("short", [("https://a.example", "A", 2, 40)])
    assert double.violations == []


async def test_without_a_search_tool_nothing_is_searched(double: GatewayDouble, client: httpx.AsyncClient) -> None:
    plain = (await client.post("/responses", json={"model": "gpt-4o-mini", "input": "hello"})).json()
    valid("/responses", plain)
    assert [item["type"] for item in plain["output"]] == ["message"]
    assert output_text(plain) == {"type": "output_text", "text": "echo: hello", "annotations": [], "logprobs": []}
    double.when("/responses", times=1).reply_text("no need to search")
    answer = (await client.post("/responses", json=search())).json()
    assert output_text(answer)["text"] == "no need to search" and len(answer["output"]) == 1
    none = (await client.post("/responses", json=search(tool_choice="none"))).json()
    assert [item["type"] for item in none["output"]] == ["message"]
    assert double.searches == [] and double.violations == []
    double.when("/responses").reply_search("found", [])
    error_of(await client.post("/responses", json={"model": "gpt-4o-mini", "input": "hello"}))
    assert double.searches == [] and len(double.violations) == 1


async def test_invalid_responses_requests_are_violations(double: GatewayDouble, client: httpx.AsyncClient) -> None:
    error_of(await client.post("/responses", json=search(model="gpt-4o-audio-preview")))
    error_of(await client.post("/responses", json={"model": "gpt-4o-mini", "tools": [{"type": "web_search"}]}))
    if SPEC is not None:
        error_of(
            await client.post(
                "/responses", json=search(tools=[{"type": "web_search", "search_context_size": "huge"}])
            )
        )
    double.catalog.pop("gpt-4o-mini")
    assert (await client.post("/responses", json=search())).status_code == 503
    assert double.searches == [] and len(double.violations) == (3 if SPEC is not None else 2)


async def test_the_openai_sdk_reads_a_search(double: GatewayDouble) -> None:
    openai = pytest.importorskip("openai")
    sdk = openai.AsyncOpenAI(api_key=KEY, base_url=double.base_url, max_retries=0)
    try:
        response = await sdk.responses.create(model="gpt-4o-mini", input="fox", tools=[{"type": "web_search"}])
    finally:
        await sdk.close()
    assert response.output_text == 'Found for "fox": first source, second source.'
    notes = response.output[1].content[0].annotations
    assert [note.url for note in notes] == [url for url, _title in DEFAULT_SOURCES]
    assert double.violations == []


# --- embeddings --------------------------------------------------------------------------------------------------


def test_words_drop_stop_words_and_possessives_and_split_cjk() -> None:
    assert words("What is my daughter's name?") == ["daughter"]
    assert words("My daughter is called Mia") == ["daughter", "mia"]
    assert words("It’s Ann’s cat, and THE dog") == ["ann", "cat", "dog"]
    assert words("我的女儿叫Mia") == ["我", "的", "女", "儿", "叫", "mia"]
    assert words("what is it") == ["what", "is", "it"]  # nothing but stop words: they are all it has


async def embed(client: httpx.AsyncClient, texts: list[str], **extra: Any) -> list[list[float]]:
    response = await client.post("/embeddings", json={"model": "text-embedding-3-small", "input": texts, **extra})
    assert response.status_code == 200, response.text
    return [item["embedding"] for item in response.json()["data"]]


async def test_embeddings_are_close_for_texts_that_share_words(
    double: GatewayDouble, client: httpx.AsyncClient
) -> None:
    fact, question, other, again = await embed(
        client,
        [
            "my daughter is called Mia",
            "What is my daughter's name?",
            "the weather in Paris",
            "My DAUGHTER is called mia!",
        ],
    )
    assert len(fact) == 1536 and abs(sum(value * value for value in fact) - 1) < 1e-3
    assert cosine(fact, question) == pytest.approx(2**-0.5, abs=1e-3)
    assert cosine(fact, other) == 0 and cosine(question, other) == 0
    assert cosine(fact, again) == pytest.approx(1, abs=1e-6)
    chinese_fact, chinese_question = await embed(client, ["我女儿叫米娅", "我女儿叫什么名字"])
    assert cosine(chinese_fact, chinese_question) > 0.5
    small = await embed(client, ["my daughter is called Mia"], dimensions=64, encoding_format="base64")
    packed = base64.b64decode(small[0])  # type: ignore[arg-type]
    assert len(struct.unpack(f"<{len(packed) // 4}f", packed)) == 64
    assert double.violations == []
