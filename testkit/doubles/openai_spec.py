"""Validate requests to, and answers from, the AI gateway against the official OpenAI OpenAPI spec."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from .specs_location import spec_file

SPEC_NAME = "openai-openapi.json"
_URN = "urn:openai"
_FILE_PLACEHOLDER = "<file>"  # what a multipart file part becomes for the JSON validator (`format: binary`)
_MAX_MESSAGE = 400  # error messages quote the instance, which may be megabytes of base64


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _admit_null(node: Any) -> None:
    """Rewrite OpenAPI 3.0's `nullable: true`, which JSON Schema 2020-12 ignores, into an explicit null branch.

    The document says it is OpenAPI 3.1 but still carries the 3.0 keyword (on `stream`, `audio`, `n`,
    streamed `finish_reason`...), so without this a null the real API sends or accepts would be refused.
    """
    if isinstance(node, list):
        for item in node:
            _admit_null(item)
    elif isinstance(node, dict):
        for value in node.values():
            _admit_null(value)
        if node.get("nullable") is True:
            inner = {key: value for key, value in node.items() if key != "nullable"}
            node.clear()
            node["anyOf"] = [inner, {"type": "null"}]


def _loosen_discriminated(node: Any) -> None:
    """Read a `oneOf` that names a `discriminator` as `anyOf`.

    OpenAPI picks such a branch by its discriminating property; JSON Schema's oneOf instead demands that exactly
    one branch match, and some of the document's unions overlap by design (a Responses input message is both an
    EasyInputMessage and an InputMessage), so a strict oneOf would refuse what the API takes.
    """
    if isinstance(node, list):
        for item in node:
            _loosen_discriminated(item)
    elif isinstance(node, dict):
        for value in node.values():
            _loosen_discriminated(value)
        if "discriminator" in node and "oneOf" in node:
            node["anyOf"] = node.pop("oneOf")


class OpenAISpec:
    """The OpenAI OpenAPI document, with JSON Schema validators for request and response bodies."""

    _cache: ClassVar[dict[Path, OpenAISpec]] = {}

    def __init__(self, document: dict[str, Any]) -> None:
        _admit_null(document)
        _loosen_discriminated(document)
        self.document = document
        self._registry: Registry = Registry().with_resource(
            _URN, Resource.from_contents(document, default_specification=DRAFT202012)
        )
        self._validators: dict[tuple[Any, ...], Draft202012Validator] = {}
        self._error_pointer: str | None = None

    @classmethod
    def load(cls, path: Path | None = None) -> OpenAISpec | None:
        """The spec (parsed once per process), or None when the file is not there."""
        path = path or spec_file(SPEC_NAME)
        if path is None or not path.is_file():
            return None
        path = path.resolve()
        if path not in cls._cache:
            cls._cache[path] = cls(json.loads(path.read_text(encoding="utf-8")))
        return cls._cache[path]

    # --- navigation ----------------------------------------------------------------------------

    def _node(self, pointer: str) -> Any:
        node: Any = self.document
        for token in pointer.lstrip("/").split("/"):
            node = node[token.replace("~1", "/").replace("~0", "~")]
        return node

    def _follow(self, pointer: str) -> str:
        """Where the pointer leads once Reference Objects and $ref schemas are followed."""
        node = self._node(pointer)
        while isinstance(node, dict) and "$ref" in node and node["$ref"].startswith("#/"):
            pointer = node["$ref"][1:]
            node = self._node(pointer)
        return pointer

    def _deref(self, schema: Any) -> dict[str, Any]:
        while isinstance(schema, dict) and "$ref" in schema:
            schema = self._node(schema["$ref"][1:])
        return schema if isinstance(schema, dict) else {}

    def _alternatives(self, schema: Any) -> list[dict[str, Any]]:
        """A schema's concrete branches, looking through $ref, anyOf and oneOf."""
        schema = self._deref(schema)
        branches = schema.get("anyOf") or schema.get("oneOf")
        if branches:
            return [leaf for branch in branches for leaf in self._alternatives(branch)]
        return [schema]

    def _properties(self, schema: Any) -> dict[str, Any]:
        schema = self._deref(schema)
        properties = dict(schema.get("properties", {}))
        for part in schema.get("allOf", []):
            properties.update(self._properties(part))
        return properties

    def _operation_pointer(self, path: str, method: str = "post") -> str:
        return f"/paths/{_escape(path)}/{method}"

    # --- validation ----------------------------------------------------------------------------

    def _validator(self, pointer: str, loosen_one_of: bool = False) -> Draft202012Validator:
        key = (pointer, loosen_one_of)
        if key not in self._validators:
            root: dict[str, Any] = {"$ref": f"{_URN}#{pointer}"}
            target = self._follow(pointer)
            branches = self._node(target).get("oneOf")
            if loosen_one_of and branches:
                # The transcription answer is oneOf(json, diarized_json, verbose_json), but the json
                # branch is open-ended, so every verbose_json answer matches two branches and a strict
                # oneOf would refuse what the real API sends: any one branch is enough.
                root = {"anyOf": [{"$ref": f"{_URN}#{target}/oneOf/{i}"} for i in range(len(branches))]}
            self._validators[key] = Draft202012Validator(root, registry=self._registry)
        return self._validators[key]

    def _errors(self, pointer: str, instance: Any, label: str, loosen_one_of: bool = False) -> list[str]:
        errors = sorted(
            self._validator(pointer, loosen_one_of).iter_errors(instance),
            key=lambda error: [str(part) for part in error.absolute_path],
        )
        return [f"{label} {self._where(error)}: {self._describe(error)}" for error in errors]

    @staticmethod
    def _where(error: ValidationError) -> str:
        return "/" + "/".join(str(part) for part in error.absolute_path)

    @staticmethod
    def _reach(error: ValidationError) -> int:
        """How deep into the instance a failure got (through nested anyOf/oneOf)."""
        return max([len(error.absolute_path), *(OpenAISpec._reach(inner) for inner in error.context or ())])

    @staticmethod
    def _closest(error: ValidationError) -> ValidationError:
        """The failure, among anyOf/oneOf branches, that best says what the sender got wrong."""
        branches: dict[Any, list[ValidationError]] = {}
        for inner in error.context or ():
            branches.setdefault(inner.relative_schema_path[0], []).append(inner)
        depth = len(error.absolute_path)

        def plausible(failures: list[ValidationError]) -> bool:
            # A branch whose discriminating property (role, type) has another value, or the null branch
            # added for `nullable`, is not what the sender meant.
            for failure in failures:
                path = failure.absolute_path
                if failure.validator in ("enum", "const") and len(path) == depth + 1 and isinstance(path[-1], str):
                    return False
            return not all(f.validator == "type" and f.validator_value == "null" for f in failures)

        meant = [failures for failures in branches.values() if plausible(failures)] or list(branches.values())
        pool = [failure for failures in meant for failure in failures]
        furthest = max(OpenAISpec._reach(failure) for failure in pool)
        return best_match(failure for failure in pool if OpenAISpec._reach(failure) == furthest)

    @staticmethod
    def _describe(error: ValidationError) -> str:
        prefix = ""
        if error.context:  # anyOf/oneOf: explain the branch that came closest, not the whole instance
            while error.context:
                error = OpenAISpec._closest(error)
            prefix = f"matches none of the allowed shapes; closest: {OpenAISpec._where(error)}: "
        message = error.message
        return prefix + (message if len(message) <= _MAX_MESSAGE else message[:_MAX_MESSAGE] + "...")

    def has_operation(self, path: str, method: str = "post") -> bool:
        """Whether the spec documents `method` (POST by default) on `path`."""
        return method.lower() in self.document["paths"].get(path, {})

    def validate_request(self, path: str, content_type: str, body: Mapping[str, Any]) -> list[str]:
        """Problems with a request body; multipart bodies map names to str fields, bytes files, or lists of them."""
        if not self.has_operation(path):
            return [f"POST {path} is not in the OpenAI spec"]
        operation = self._operation_pointer(path)
        media = content_type.split(";")[0].strip().lower()
        content = self._node(f"{operation}/requestBody/content")
        if media not in content:
            return [f"{path} request: content type {media!r} is not accepted (spec: {', '.join(content)})"]
        pointer = f"{operation}/requestBody/content/{_escape(media)}/schema"
        problems: list[str] = []
        instance: Any = body
        if media == "multipart/form-data":
            instance = self._form_to_json(self._node(pointer), body, problems, f"{path} request")
        return problems + self._errors(pointer, instance, f"{path} request")

    def validate_response(
        self,
        path: str,
        body: Any,
        status: int = 200,
        content_type: str = "application/json",
        method: str = "post",
    ) -> list[str]:
        """Problems with an answer body (for text/event-stream: one streamed event's JSON)."""
        label = f"{path} response {status}"
        if not self.has_operation(path, method):
            return [f"{label}: {method.upper()} {path} is not in the OpenAI spec"]
        responses = f"{self._operation_pointer(path, method.lower())}/responses"
        if str(status) in self._node(responses):
            response = self._follow(f"{responses}/{status}")
        elif status >= 400:
            response = self._any_error_response()
        else:
            return [f"{label}: status {status} is not documented"]
        content = self._node(response).get("content", {})
        media = content_type.split(";")[0].strip().lower()
        if media not in content:
            return [f"{label}: content type {media!r} is not documented (spec: {', '.join(content)})"]
        pointer = f"{response}/content/{_escape(media)}/schema"
        if any(branch.get("format") == "binary" for branch in self._alternatives(self._node(pointer))):
            return [] if isinstance(body, (bytes, bytearray)) else [f"{label}: expected binary content"]
        return self._errors(pointer, body, label, loosen_one_of=True)

    def _any_error_response(self) -> str:
        """The spec documents an error body (for 429s) only; the API uses the same shape for every error."""
        if self._error_pointer is None:
            documented = (
                f"/paths/{_escape(path)}/{method}/responses/{status}"
                for path, item in self.document["paths"].items()
                for method, operation in item.items()
                if isinstance(operation, dict)
                for status in operation.get("responses", {})
                if status.startswith("4")
            )
            first = next(documented, None)
            if first is None:
                raise LookupError("the spec documents no error response")
            self._error_pointer = self._follow(first)
        return self._error_pointer

    # --- multipart -----------------------------------------------------------------------------

    def _form_to_json(
        self, schema: Any, form: Mapping[str, Any], problems: list[str], label: str
    ) -> dict[str, Any]:
        """Turn form fields into the JSON the schema describes: `name[]` or repeated names become arrays,
        numeric and boolean strings become numbers and booleans, and file parts become strings."""
        properties = self._properties(schema)
        result: dict[str, Any] = {}
        for raw_name, raw in form.items():
            name = raw_name.removesuffix("[]")
            values = list(raw) if isinstance(raw, list) else [raw]
            prop = properties.get(name, {})
            branches = self._alternatives(prop)
            arrays = [branch for branch in branches if branch.get("type") == "array"]
            only_array = bool(arrays) and len(arrays) == len(branches)
            as_list = raw_name.endswith("[]") or len(values) > 1 or name in result or only_array
            element = arrays[0].get("items", {}) if as_list and arrays else prop
            coerced = [self._coerce(name, value, element, problems, label) for value in values]
            if as_list:
                previous = result.get(name, [])
                result[name] = (previous if isinstance(previous, list) else [previous]) + coerced
            else:
                result[name] = coerced[0]
        return result

    def _coerce(self, name: str, value: Any, schema: Any, problems: list[str], label: str) -> Any:
        branches = self._alternatives(schema)
        binary = any(branch.get("format") == "binary" for branch in branches)
        types: set[str] = set()
        for branch in branches:
            if branch.get("format") != "binary":
                kind = branch.get("type")
                types.update(kind if isinstance(kind, list) else [kind] if kind else [])
        if not isinstance(value, str):
            if not binary and schema:
                problems.append(f"{label} /{name}: sent as a file part, but the spec expects a plain field")
            return _FILE_PLACEHOLDER
        if binary and not types:
            problems.append(f"{label} /{name}: must be a file part (format: binary), got a plain form field")
            return value
        if not types or "string" in types:
            return value
        if "integer" in types and re.fullmatch(r"[+-]?\d+", value):
            return int(value)
        if "number" in types:
            try:
                return float(value)
            except ValueError:
                pass
        if "boolean" in types and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if types & {"object", "array"}:
            try:
                return json.loads(value)
            except ValueError:
                pass
        return value  # left as text: the validator reports the type mismatch
