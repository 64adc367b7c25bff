"""The Responses API on the gateway double (POST /v1/responses, which new-api relays): web search with its
built-in tool, answered as a Response whose text cites its sources in url_citation annotations."""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .gateway import RESPONSES_PATH, UNSUPPORTED, GatewayCall, Rule, estimate_tokens
from .structured import AUDIO_MODEL_PREFIXES

if TYPE_CHECKING:
    from .gateway import GatewayDouble

SEARCH_TOOLS = ("web_search", "web_search_2025_08_26", "web_search_preview", "web_search_preview_2025_03_11")
# The sources of the unscripted answer: (url, title) for "first source" and "second source" in its text.
DEFAULT_SOURCES = (
    ("https://example.com/a", "Example source A"),
    ("https://example.org/b", "Example source B"),
)
# Built-in tools other than web search: valid, but the double cannot run them.
_OTHER_BUILT_INS = frozenset(
    {"file_search", "computer_use_preview", "computer", "mcp", "code_interpreter", "image_generation",
     "local_shell", "shell", "apply_patch", "tool_search"}
)  # fmt: skip


@dataclass(frozen=True)
class Citation:
    """A url_citation: the source, and the characters of the answer's text that cite it (text[start:end])."""

    url: str
    title: str
    start: int
    end: int


@dataclass(frozen=True)
class ScriptedSearch:
    """What a web search answers: its text, its citations, and the query searched (None: the input's text)."""

    text: str
    citations: tuple[Citation, ...]
    query: str | None = None

    @classmethod
    def of(
        cls, text: str, sources: Sequence[tuple[str, str, int, int]], query: str | None = None
    ) -> ScriptedSearch:
        citations = tuple(Citation(*source) for source in sources)
        for citation in citations:
            if not 0 <= citation.start <= citation.end <= len(text):
                raise ValueError(f"{citation} does not point into the text ({len(text)} characters)")
        return cls(text, citations, query)


def default_search(query: str) -> ScriptedSearch:
    """`Found for "<query>": first source, second source.`, citing DEFAULT_SOURCES over those two phrases."""
    head = f'Found for "{query}": '
    first = (len(head), len(head) + len("first source"))
    second = (first[1] + len(", "), first[1] + len(", ") + len("second source"))
    text = head + "first source, second source."
    (url_a, title_a), (url_b, title_b) = DEFAULT_SOURCES
    return ScriptedSearch(text, (Citation(url_a, title_a, *first), Citation(url_b, title_b, *second)), query)


def input_text(body: dict[str, Any]) -> str:
    """The text of the request's input: the string, or the last user message's text parts."""
    value = body.get("input")
    if isinstance(value, str):
        return value
    for item in reversed(value if isinstance(value, list) else []):
        if isinstance(item, dict) and item.get("role") == "user":
            content = item.get("content")
            if isinstance(content, str):
                return content
            parts = [part for part in content or [] if isinstance(part, dict) and part.get("type") == "input_text"]
            return " ".join(str(part.get("text", "")) for part in parts)
    return ""


def search_tool(body: dict[str, Any]) -> dict[str, Any] | None:
    """The request's web search tool, None when it offers none (or tool_choice forbids tools)."""
    if body.get("tool_choice") == "none":
        return None
    tools = [tool for tool in body.get("tools") or [] if isinstance(tool, dict)]
    return next((tool for tool in tools if tool.get("type") in SEARCH_TOOLS), None)


class ResponsesAPI:
    """POST /v1/responses on a GatewayDouble (which installs it as .responses): checked against the spec's
    CreateResponse, scripted with gateway.when("/responses", match) (reply_search, reply_text, reply_status,
    delay...). Unscripted, a request offering web_search (or web_search_preview) searches the input's text and
    answers default_search(); one without answers a plain message "echo: <input>". Every search's query is
    appended to gateway.searches (which reset_rules() empties)."""

    def __init__(self, gateway: GatewayDouble) -> None:
        self.gateway = gateway
        gateway.add_route(RESPONSES_PATH, "application/json", self._check, self._answer)

    async def _check(self, call: GatewayCall) -> list[str]:
        body = call.json
        model = str(body.get("model", ""))
        if model.startswith(AUDIO_MODEL_PREFIXES):  # audio models are served on /chat/completions only
            return [f"The model '{model}' does not support the Responses API (POST /v1/responses)."]
        if body.get("input") in (None, "", []):
            return ["Missing required parameter: 'input'."]
        problems = [
            f"{UNSUPPORTED} {name!r} (it keeps no state between calls)"
            for name in ("previous_response_id", "conversation", "prompt")
            if body.get(name) is not None
        ]
        if body.get("stream"):
            problems.append(f"{UNSUPPORTED} streamed responses")
        if body.get("background"):
            problems.append(f"{UNSUPPORTED} background responses")
        for tool in body.get("tools") or []:
            if isinstance(tool, dict) and tool.get("type") in _OTHER_BUILT_INS:
                problems.append(f"{UNSUPPORTED} the built-in tool {tool.get('type')!r}")
        return problems

    async def _answer(self, request: web.Request, call: GatewayCall, rule: Rule | None) -> web.StreamResponse:
        gateway, body = self.gateway, call.json
        tool = search_tool(body)
        search: ScriptedSearch | None = rule._search if rule else None
        if search is not None and tool is None:
            return gateway.reject(call, ["the model cannot search the web: the request offers no web search tool"])
        output: list[dict[str, Any]] = []
        if rule is not None and rule._text is not None:
            text, citations = rule._text, ()
        elif search is not None or tool is not None:
            search = search or default_search(input_text(body))
            query = search.query if search.query is not None else input_text(body)
            gateway.searches.append(query)
            action: dict[str, Any] = {"type": "search", "query": query}
            if "web_search_call.action.sources" in (body.get("include") or []):
                action["sources"] = [{"type": "url", "url": citation.url} for citation in search.citations]
            status = "completed"
            output.append(
                {
                    "id": "ws_" + secrets.token_hex(24),
                    "type": "web_search_call",
                    "status": status,
                    "action": action,
                }
            )
            text, citations = search.text, search.citations
        else:
            text, citations = "echo: " + input_text(body), ()
        annotations = [
            {"type": "url_citation", "start_index": c.start, "end_index": c.end, "url": c.url, "title": c.title}
            for c in citations
        ]
        content = {"type": "output_text", "text": text, "annotations": annotations, "logprobs": []}
        output.append(
            {
                "id": "msg_" + secrets.token_hex(24),
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [content],
            }
        )
        return gateway.answer_json(call, self._response(body, output, text))

    @staticmethod
    def _response(body: dict[str, Any], output: list[dict[str, Any]], text: str) -> dict[str, Any]:
        """A completed Response around the output, echoing the request's settings as the API does."""
        instructions = body.get("instructions")
        input_tokens = estimate_tokens(str(body.get("input"))) + estimate_tokens(str(instructions or ""))
        output_tokens = estimate_tokens(text)
        tools = []
        for tool in body.get("tools") or []:
            if isinstance(tool, dict) and tool.get("type") in SEARCH_TOOLS:
                tool = {"search_context_size": "medium", **tool}
            tools.append(tool)
        now = int(time.time())
        response: dict[str, Any] = {
            "id": "resp_" + secrets.token_hex(24),
            "object": "response",
            "created_at": now,
            "status": "completed",
            "completed_at": now,
            "background": False,
            "error": None,
            "incomplete_details": None,
            "instructions": instructions,
            "max_output_tokens": body.get("max_output_tokens"),
            "max_tool_calls": body.get("max_tool_calls"),
            "model": str(body.get("model", "")),
            "output": output,
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None},
            "service_tier": "default",
            "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0),
            "text": body.get("text") or {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": tools,
            "top_p": body.get("top_p", 1.0),
            "truncation": "disabled",
            "usage": {
                "input_tokens": input_tokens,
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens": output_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": input_tokens + output_tokens,
            },
            "metadata": body.get("metadata") or {},
        }
        if body.get("user") is not None:
            response["user"] = body["user"]
        return response
