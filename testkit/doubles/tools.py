"""Function calling on the gateway double's /chat/completions: scripted tool calls (whole or streamed), the round
that carries their results (checked as the API checks it, answered from those results), and structured output."""

from __future__ import annotations

import json
import re
import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from . import structured
from .gateway import GatewayCall, Rule, estimate_tokens, split_evenly

if TYPE_CHECKING:
    from .gateway import GatewayDouble

_FUNCTION_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
ARGUMENT_PIECES = 3  # a streamed call's arguments arrive in this many pieces (a paced rule says otherwise)
RESULTS_JOINER = " | "  # between the answers to several tool results in one round


@dataclass(frozen=True)
class ScriptedToolCall:
    """A function call a rule makes: the name, the arguments as the JSON text the model writes, an id or None."""

    name: str
    arguments: str
    id: str | None = None


def scripted_tool_calls(calls: Sequence[tuple[Any, ...]]) -> list[ScriptedToolCall]:
    """(name, arguments) or (name, arguments, id) tuples as ScriptedToolCalls; a dict of arguments becomes JSON."""
    if not calls:
        raise ValueError("a rule that calls tools needs at least one call")
    scripted = []
    for entry in calls:
        if not isinstance(entry, tuple) or len(entry) not in (2, 3):
            raise ValueError(f"a tool call is (name, arguments) or (name, arguments, id), not {entry!r}")
        name, arguments, call_id = (*entry, None) if len(entry) == 2 else entry
        if not isinstance(name, str) or not name:
            raise ValueError(f"a tool call needs a function name, not {name!r}")
        if isinstance(arguments, dict):
            arguments = json.dumps(arguments, ensure_ascii=False)
        elif not isinstance(arguments, str):
            raise TypeError(f"arguments are a dict (sent as JSON) or a str (sent as it is), not {arguments!r}")
        scripted.append(ScriptedToolCall(name, arguments, call_id))
    return scripted


def new_call_id() -> str:
    """An id as the API gives a tool call: "call_" and 24 letters and digits."""
    return "call_" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(24))


def offered_functions(body: dict[str, Any]) -> set[str]:
    """The functions the model may call in this request: the function tools listed, narrowed by tool_choice."""
    names = {
        tool["function"].get("name")
        for tool in body.get("tools") or []
        if isinstance(tool, dict) and tool.get("type") == "function" and isinstance(tool.get("function"), dict)
    }
    choice = body.get("tool_choice")
    if choice == "none":
        return set()
    if isinstance(choice, dict) and choice.get("type") == "function":
        return names & {(choice.get("function") or {}).get("name")}
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        allowed = (choice.get("allowed_tools") or {}).get("tools") or []
        return names & {(tool.get("function") or {}).get("name") for tool in allowed if isinstance(tool, dict)}
    return {name for name in names if isinstance(name, str)}


def function_problems(body: dict[str, Any]) -> list[str]:
    """What the API refuses in the functions a request offers: a name outside its pattern, parameters that are no
    JSON Schema. (`strict` never reaches it: new-api drops it, so strict mode's own rules do not apply.)"""
    problems = []
    for index, tool in enumerate(body.get("tools") or []):
        definition = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
        if not isinstance(definition, dict):
            continue
        name = definition.get("name")
        if not isinstance(name, str) or not _FUNCTION_NAME.fullmatch(name):
            problems.append(
                f"Invalid 'tools[{index}].function.name': string does not match pattern. Expected a string that "
                "matches the pattern '^[a-zA-Z0-9_-]{1,64}$'."
            )
        try:
            Draft202012Validator.check_schema(definition.get("parameters", {}))
        except SchemaError as exc:
            problems.append(f"Invalid schema for function '{name}': {exc.message}")
    return problems


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _calls_of(message: dict[str, Any]) -> dict[str, str]:
    """An assistant message's tool calls: id -> function name."""
    calls = {}
    for call in message.get("tool_calls") or []:
        if isinstance(call, dict) and isinstance(call.get("id"), str):
            calls[call["id"]] = str((call.get("function") or {}).get("name", ""))
    return calls


def tool_message_problems(messages: list[Any]) -> list[str]:
    """What the API refuses in how tool messages follow tool calls, anywhere in the conversation."""
    problems: list[str] = []
    open_calls: dict[str, str] | None = None  # the calls of the assistant message the tool messages answer
    unanswered: list[str] = []

    def close() -> None:
        if unanswered:
            problems.append(
                "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                "'tool_call_id'. The following tool_call_ids did not have response messages: "
                + ", ".join(unanswered)
            )
            unanswered.clear()

    for message in messages:
        role = message.get("role") if isinstance(message, dict) else None
        if role == "tool":
            call_id = message.get("tool_call_id")
            if open_calls is None:
                problems.append(
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with "
                    "'tool_calls'."
                )
            elif call_id not in open_calls:
                problems.append(
                    f"Invalid parameter: 'tool_call_id' of '{call_id}' not found in 'tool_calls' of previous "
                    "message."
                )
            elif call_id in unanswered:
                unanswered.remove(call_id)
            continue
        close()
        open_calls = None
        if role == "assistant" and message.get("tool_calls"):
            open_calls = _calls_of(message)
            unanswered = list(open_calls)
    close()
    return problems


def results_text(messages: list[Any]) -> str | None:
    """The default answer to a round ending with tool results: "after <function>: <result>" for each result, in
    order, joined by RESULTS_JOINER; None when the last message is no tool message."""
    start = len(messages)
    while start > 0 and isinstance(messages[start - 1], dict) and messages[start - 1].get("role") == "tool":
        start -= 1
    if start == len(messages):
        return None
    names = _calls_of(messages[start - 1]) if start > 0 and isinstance(messages[start - 1], dict) else {}
    return RESULTS_JOINER.join(
        f"after {names.get(message.get('tool_call_id'), '?')}: {_content_text(message.get('content'))}"
        for message in messages[start:]
    )


class ChatTools:
    """Tool calls and structured output on a GatewayDouble's /chat/completions (which installs it as .tools).

    - gateway.when("/chat/completions", match).call_tool(name, {...}) or .call_tools([(name, {...}), ...]) answers
      the round before the results (a request whose last message is not a tool message) with those calls; a call
      of a function the request does not offer is a violation.
    - A request ending with tool messages must answer every call of the assistant message before them; unscripted,
      it is answered "after <function>: <result>" (joined by " | "), or spoken so for an audio request.
    - A json_schema request is answered with JSON filling the schema (structured.py); audio models refuse it.
    """

    def __init__(self, gateway: GatewayDouble) -> None:
        self.gateway = gateway

    def problems(self, body: dict[str, Any]) -> list[str]:
        """What the API refuses in a chat request's tool messages and response_format (or the double cannot do)."""
        return function_problems(body) + tool_message_problems(body["messages"]) + structured.problems(body)

    @staticmethod
    def default_text(body: dict[str, Any]) -> str | None:
        """The unscripted answer's text when it is not the plain echo: JSON for a json_schema request, the
        answer to tool results for the round that carries them; None otherwise."""
        content = structured.answer(body)
        return content if content is not None else results_text(body["messages"])

    async def answer_with_calls(self, request: web.Request, call: GatewayCall, rule: Rule) -> web.StreamResponse:
        """The rule's tool calls as the assistant's answer: whole, or streamed as the API streams them. An audio
        request gets no audio with them (the model speaks once it has the results)."""
        gateway, body = self.gateway, call.json
        scripted: list[ScriptedToolCall] = rule._tool_calls or []
        offered = offered_functions(body)
        problems = [
            f"the model cannot call {tool.name!r}: the request does not offer it (offered: {sorted(offered)})"
            for tool in scripted
            if tool.name not in offered
        ]
        if len(scripted) > 1 and body.get("parallel_tool_calls") is False:
            problems.append("the model cannot call several tools at once: parallel_tool_calls is false")
        if problems:
            return gateway.reject(call, problems)
        calls = [
            {
                "id": tool.id or new_call_id(),
                "type": "function",
                "function": {"name": tool.name, "arguments": tool.arguments},
            }
            for tool in scripted
        ]
        written = sum(estimate_tokens(tool.name + tool.arguments) for tool in scripted)
        usage = gateway.chat_usage(body, written)
        head = gateway.chat_head(body)
        if body.get("stream"):
            pieces, gap = rule._pace or (ARGUMENT_PIECES, 0.0)
            deltas: list[dict[str, Any]] = []
            for index, tool in enumerate(calls):
                function = tool["function"]
                opening = {
                    "index": index,
                    "id": tool["id"],
                    "type": "function",
                    "function": {"name": function["name"], "arguments": ""},
                }
                if index == 0:
                    deltas.append({"role": "assistant", "content": None, "tool_calls": [opening], "refusal": None})
                else:
                    deltas.append({"tool_calls": [opening]})
                deltas += [
                    {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
                    for piece in split_evenly(function["arguments"], pieces)
                ]
            return await gateway.stream_chat(request, call, head, deltas, "tool_calls", usage, gap)
        message = {"role": "assistant", "content": None, "refusal": None, "annotations": [], "tool_calls": calls}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "tool_calls"}
        return gateway.answer_json(
            call, {**head, "object": "chat.completion", "choices": [choice], "usage": usage}
        )
