"""Structured output (`response_format` of type json_schema) on the gateway double's /chat/completions: the schema
checked as OpenAI checks it, and an answer that fills it from the last user message."""

from __future__ import annotations

import json
import re
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from .gateway import UNSUPPORTED, last_user_text

STRING_PREFIX = "EN: "  # every string the answer fills is this and the last user text (a "translation")
# Audio models take function calling but not structured outputs (new-api passes the field on; OpenAI refuses it).
AUDIO_MODEL_PREFIXES = ("gpt-4o-audio", "gpt-4o-mini-audio", "gpt-audio")
NOT_FOR_THIS_MODEL = (
    "Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model. Learn more "
    "about supported models at the Structured Outputs guide: "
    "https://platform.openai.com/docs/guides/structured-outputs"
)
_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_MAX_DEPTH = 10  # the API's own limit on nesting in a strict schema


def json_schema_of(body: dict[str, Any]) -> dict[str, Any] | None:
    """The request's `response_format.json_schema`, None when it asks for no json_schema."""
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        spec = response_format.get("json_schema")
        return spec if isinstance(spec, dict) else {}
    return None


def problems(body: dict[str, Any]) -> list[str]:
    """What OpenAI refuses in the request's response_format, and what the double cannot answer."""
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_object":
        return [f"{UNSUPPORTED} response_format 'json_object' (it answers json_schema)"]
    spec = json_schema_of(body)
    if spec is None:
        return []
    audio = "audio" in (body.get("modalities") or [])
    if audio or str(body.get("model", "")).startswith(AUDIO_MODEL_PREFIXES):
        return [NOT_FOR_THIS_MODEL]
    name = str(spec.get("name", ""))
    if not _NAME.fullmatch(name):
        return [
            "Invalid 'response_format.json_schema.name': string does not match pattern. Expected a string that "
            "matches the pattern '^[a-zA-Z0-9_-]+$' of at most 64 characters."
        ]
    schema = spec.get("schema", {})
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return [f"Invalid schema for response_format '{name}': {exc.message}"]
    found = _strict_problems(schema, name) if spec.get("strict") else []
    if found:
        return found
    answer = fill(schema, "probe")
    errors = list(Draft202012Validator(schema).iter_errors(answer))
    if errors:
        return [f"{UNSUPPORTED} a json_schema it cannot fill ({errors[0].message})"]
    return []


def _strict_problems(schema: dict[str, Any], name: str) -> list[str]:
    """The rules of strict mode (Structured Outputs' subset of JSON Schema) that a client most often misses."""
    prefix = f"Invalid schema for response_format '{name}': "
    if schema.get("type") != "object":
        return [
            prefix + f"schema must be a JSON Schema of 'type: \"object\"', got 'type: \"{schema.get('type')}\"'."
        ]
    found: list[str] = []

    def walk(node: Any, context: tuple[str, ...]) -> None:
        if not isinstance(node, dict):
            return
        if len(context) > 2 * _MAX_DEPTH:
            found.append(prefix + f"In context={context}, schema nesting exceeds {_MAX_DEPTH} levels.")
            return
        kinds = node.get("type")
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if "object" in kinds:
            if node.get("additionalProperties") is not False:
                found.append(
                    prefix + f"In context={context}, 'additionalProperties' is required to be supplied and to be "
                    "false."
                )
            properties = node.get("properties") or {}
            missing = [key for key in properties if key not in (node.get("required") or [])]
            if missing:
                found.append(
                    prefix + f"In context={context}, 'required' is required to be supplied and to be an array "
                    f"including every key in properties. Missing '{missing[0]}'."
                )
            for key, value in properties.items():
                walk(value, (*context, "properties", key))
        if "items" in node:
            walk(node["items"], (*context, "items"))
        for keyword in ("anyOf", "$defs", "definitions"):
            inner = node.get(keyword)
            entries = inner.items() if isinstance(inner, dict) else enumerate(inner or [])
            for key, value in entries:
                walk(value, (*context, keyword, str(key)))

    walk(schema, ())
    return found


def _resolve(node: Any, root: dict[str, Any]) -> dict[str, Any]:
    seen = 0
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < 32:
        reference = node["$ref"]
        if not reference.startswith("#"):
            return {}
        target: Any = root
        for token in [part for part in reference[1:].split("/") if part]:
            target = (
                target.get(token.replace("~1", "/").replace("~0", "~"), {}) if isinstance(target, dict) else {}
            )
        node, seen = target, seen + 1
    return node if isinstance(node, dict) else {}


def fill(schema: Any, text: str, root: dict[str, Any] | None = None, depth: int = 0) -> Any:
    """A value valid against the schema: every required string is STRING_PREFIX + text, numbers their minimum (or
    0), booleans false, arrays one item (or their minimum count), enums and consts their first value; optional
    properties are left out."""
    root = root if root is not None else (schema if isinstance(schema, dict) else {})
    node = _resolve(schema, root)
    if "const" in node:
        return node["const"]
    if isinstance(node.get("enum"), list) and node["enum"]:
        return node["enum"][0]
    for keyword in ("anyOf", "oneOf"):
        branches = [_resolve(branch, root) for branch in node.get(keyword) or []]
        if branches:
            useful = [branch for branch in branches if branch.get("type") != "null"] or branches
            return fill(useful[0], text, root, depth + 1)
    if node.get("allOf"):
        merged: dict[str, Any] = {"properties": {}, "required": []}
        for part in [node, *(_resolve(part, root) for part in node["allOf"])]:
            merged["properties"].update(part.get("properties") or {})
            merged["required"] += [key for key in part.get("required") or [] if key not in merged["required"]]
            merged.setdefault("type", part.get("type"))
        node = merged
    kind = node.get("type")
    if isinstance(kind, list):
        kind = next((item for item in kind if item != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in node else "array" if "items" in node else "string"
    if kind == "object" and depth < 2 * _MAX_DEPTH:
        properties = node.get("properties") or {}
        required = [key for key in node.get("required") or [] if key in properties]
        return {key: fill(properties[key], text, root, depth + 1) for key in required}
    if kind == "array" and depth < 2 * _MAX_DEPTH:
        count = max(int(node.get("minItems", 1)), 1)
        if "maxItems" in node:
            count = min(count, int(node["maxItems"]))
        return [fill(node.get("items") or {}, text, root, depth + 1) for _ in range(count)]
    if kind in ("integer", "number"):
        value: float = node.get("minimum", 0)
        if "exclusiveMinimum" in node:
            value = max(value, node["exclusiveMinimum"] + 1)
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    value_text = STRING_PREFIX + text
    if "maxLength" in node:
        value_text = value_text[: int(node["maxLength"])]
    return value_text.ljust(int(node.get("minLength", 0)), ".")


def answer(body: dict[str, Any]) -> str | None:
    """The default content for a json_schema request (JSON text), None for any other request."""
    spec = json_schema_of(body)
    if spec is None:
        return None
    return json.dumps(fill(spec.get("schema", {}), last_user_text(body)), ensure_ascii=False)
