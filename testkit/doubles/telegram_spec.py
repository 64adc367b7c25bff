"""The Telegram Bot API spec (telegram-bot-api.json): checks the calls a bot makes and the objects a double sends."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from .specs_location import spec_file

SPEC_NAME = "telegram-bot-api.json"

_ARRAY = "Array of "
_PRIMITIVES = {"Integer", "Float", "Boolean", "True", "String", "InputFile"}
# Telegram's own wording when these fields break their documented limits; other fields get a generic one.
_TOO_LONG = {
    "text": "message is too long",
    "message_text": "message is too long",
    "caption": "message caption is too long",
}
_TOO_SHORT = {"text": "message text is empty", "message_text": "message text is empty"}
_BYTE_LIMITED_WORDING = {"callback_data": "BUTTON_DATA_INVALID"}
# Fields whose formatting is governed by the plain `parse_mode` / `entities` siblings.
_PARSE_MODE_TEXTS = {"text": "entities", "message_text": "entities", "caption": "caption_entities"}

_LIMIT = re.compile(r"(\d+)-(\d+) (characters|bytes)")
_CONST = re.compile(r'(?:must be|always) "?([A-Za-z_]+)"?\.?$')
_ENUM_START = re.compile(r'(?:[Cc]an|[Mm]ust) be (?:one of |either )?(?=")')
_SENTENCE_END = re.compile(r"\.(?:\s|$)")
_EXACTLY_ONE = re.compile(r"Exactly one of the fields (other than )?(.+?) must be used")
_VARIATION_SELECTOR = "\ufe0f"


class EntityParseError(ValueError):
    """Formatted text Telegram would refuse; the message is Telegram's own wording of why."""


class _HtmlError(ValueError):
    """Why the HTML parser stopped, in tdlib's words."""


@dataclass(frozen=True)
class UploadedFile:
    """One file part of a multipart request."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class _Field:
    name: str
    types: tuple[str, ...]
    required: bool
    allowed: frozenset[str] | None  # documented fixed values ("must be photo", "can be either ...")
    limit: tuple[int, int, str] | None  # (low, high, "characters" | "bytes")
    parse_mode_field: str | None  # the sibling holding this text's parse mode
    entities_field: str | None  # the sibling that replaces parse mode when given


@dataclass(frozen=True)
class _Owner:
    """The field list of a type or of a method's parameters."""

    name: str
    fields: dict[str, _Field]
    exactly_one_of: frozenset[str] | None = None


@dataclass(frozen=True)
class _Union:
    name: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class _Context:
    """Where a value comes from: a bot's call (with its uploaded parts) or an object sent to a bot."""

    uploads: Mapping[str, UploadedFile] | None = None

    @property
    def incoming(self) -> bool:
        return self.uploads is not None


_OUTGOING = _Context()


@dataclass
class TelegramSpec:
    """Bot API methods and types, with the checks a real Bot API server applies to them."""

    version: str
    methods: dict[str, _Owner]
    returns: dict[str, tuple[str, ...]]
    types: dict[str, _Owner | _Union]
    _method_names: dict[str, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._method_names = {name.lower(): name for name in self.methods}

    @classmethod
    def load(cls, path: Path | None = None) -> TelegramSpec | None:
        """The spec from `path` (default: the shared specs folder), or None when the file is missing."""
        path = path or spec_file(SPEC_NAME)
        return _load(path.resolve()) if path is not None and path.is_file() else None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TelegramSpec:
        methods = {name: _owner(name, raw) for name, raw in data["methods"].items()}
        types: dict[str, _Owner | _Union] = {
            name: _Union(name, tuple(raw["subtypes"])) if "subtypes" in raw else _owner(name, raw)
            for name, raw in data["types"].items()
        }
        return cls(
            version=data.get("version", "?"),
            methods=methods,
            returns={name: tuple(raw["returns"]) for name, raw in data["methods"].items()},
            types=types,
        )

    def method_name(self, method: str) -> str | None:
        """The documented spelling of a method (Telegram matches method names case-insensitively)."""
        return self._method_names.get(method.lower())

    def validate_call(
        self, method: str, params: Mapping[str, Any], files: Mapping[str, UploadedFile]
    ) -> tuple[dict[str, Any], list[str]]:
        """Coerce a call's parameters per the spec and list what Telegram would reject.

        `params` are the non-file fields as sent (form strings, or JSON values); `files` are the
        multipart file parts by part name. Returns (coerced params, problems); problems is empty
        when the call is fine. Coerced params hold ints, bools and parsed JSON; a file sent
        directly as a part named like its parameter shows up as "attach://<name>".
        """
        name = self.method_name(method)
        if name is None:
            return dict(params), [f'method "{method}" not found']
        spec = self.methods[name]
        ctx = _Context(uploads=files)
        coerced: dict[str, Any] = {}
        problems: list[str] = []
        for key, raw in params.items():
            declared = spec.fields.get(key)
            if declared is None:
                problems.append(f'unknown parameter "{key}"')
                coerced[key] = raw
                continue
            coerced[key], found = self._coerce(declared, raw, key, ctx)
            problems += found
        for key, declared in spec.fields.items():
            if key in coerced:
                continue
            if key in files and "InputFile" in declared.types:
                coerced[key] = f"attach://{key}"
            elif declared.required:
                problems.append(f'required parameter "{key}" is missing')
        problems += self._check_texts(spec, coerced, "")
        return coerced, problems

    def validate_object(self, type_name: str, obj: Any) -> list[str]:
        """Problems of an object sent to a bot (e.g. "Update", "Message", "Array of Update")."""
        return self._check(type_name, obj, type_name, _OUTGOING)

    def validate_result(self, method: str, result: Any) -> list[str]:
        """Problems of a method's result against the types the method is documented to return."""
        name = self.method_name(method)
        if name is None:
            return [f'method "{method}" not found']
        return self._check_any(self.returns[name], result, f"{name} result", _OUTGOING)

    def minimal(self, kind: str) -> Any:
        """The plainest valid value of `kind`: required fields only, zero values, documented constants."""
        if kind.startswith(_ARRAY):
            return []
        if kind in _PRIMITIVES:
            return {"Integer": 0, "Float": 0.0, "Boolean": False, "True": True}.get(kind, "")
        spec = self.types[kind]
        if isinstance(spec, _Union):
            return self.minimal(spec.members[0])
        return {
            f.name: _minimal_field(f) if f.types == ("String",) else self.minimal(f.types[0])
            for f in spec.fields.values()
            if f.required
        }

    # -- coercion of form values -------------------------------------------------------------

    def _coerce(self, declared: _Field, raw: Any, path: str, ctx: _Context) -> tuple[Any, list[str]]:
        """Turn a form string into the first declared type it validates as, then check it."""
        if not isinstance(raw, str):
            return raw, self._check_field(declared, raw, path, ctx)
        conversions = [
            (kind, value) for kind in declared.types if (value := _from_form(kind, raw)) is not _NOT_CONVERTED
        ]
        if not conversions:
            kinds = " or ".join(declared.types)
            return raw, [f"{path}: expected {kinds}, got {_short(raw)}"]
        fitting = (value for kind, value in conversions if not self._check(kind, value, path, ctx))
        value = next(fitting, conversions[0][1])
        return value, self._check_field(declared, value, path, ctx)

    # -- type checks -------------------------------------------------------------------------

    def _check_field(self, declared: _Field, value: Any, path: str, ctx: _Context) -> list[str]:
        problems = self._check_any(declared.types, value, path, ctx)
        if not problems and declared.allowed is not None and isinstance(value, str):
            if value.replace(_VARIATION_SELECTOR, "") not in declared.allowed:
                shown = ", ".join(sorted(declared.allowed)[:12])
                problems.append(f'{path}: "{value}" is not one of the documented values ({shown})')
        return problems

    def _check_any(self, kinds: Sequence[str], value: Any, path: str, ctx: _Context) -> list[str]:
        """Valid if any of `kinds` accepts the value; otherwise the problems of the likeliest one."""
        if len(kinds) == 1:
            return self._check(kinds[0], value, path, ctx)
        attempts: list[tuple[str, list[str]]] = []
        for kind in kinds:
            problems = self._check(kind, value, path, ctx)
            if not problems:
                return []
            attempts.append((kind, problems))
        fitting = [(kind, problems) for kind, problems in attempts if self._shape_fits(kind, value)]
        if not fitting:
            return [f"{path}: expected {' or '.join(kinds)}, got {_short(value)}"]
        # An object whose discriminator ("type": "photo") names a member is judged as that member.
        _, problems = min(fitting, key=lambda item: (not self._discriminated_as(item[0], value), len(item[1])))
        return problems

    def _check(self, kind: str, value: Any, path: str, ctx: _Context) -> list[str]:
        if kind.startswith(_ARRAY):
            if not isinstance(value, list):
                return [f"{path}: expected {kind}, got {_short(value)}"]
            item_kind = kind.removeprefix(_ARRAY)
            return [
                problem
                for i, item in enumerate(value)
                for problem in self._check(item_kind, item, f"{path}[{i}]", ctx)
            ]
        if kind in _PRIMITIVES:
            return self._check_primitive(kind, value, path, ctx)
        spec = self.types.get(kind)
        if spec is None:
            return [f"{path}: type {kind} is not in the spec"]
        if isinstance(spec, _Union):
            return self._check_any(spec.members, value, path, ctx)
        if not isinstance(value, dict):
            return [f"{path}: expected {kind} object, got {_short(value)}"]
        return self._check_fields(spec, value, path, ctx)

    def _check_primitive(self, kind: str, value: Any, path: str, ctx: _Context) -> list[str]:
        match kind:
            case "Integer":
                ok = isinstance(value, int) and not isinstance(value, bool)
            case "Float":
                ok = isinstance(value, int | float) and not isinstance(value, bool)
            case "Boolean":
                ok = isinstance(value, bool)
            case "True":
                ok = value is True
            case "String":
                ok = isinstance(value, str)
            case _:  # InputFile: an uploaded part, a file_id or an HTTP URL; only bots send files
                ok = ctx.incoming and isinstance(value, str) and value != ""
        if not ok:
            return [f"{path}: expected {kind}, got {_short(value)}"]
        if isinstance(value, str) and value.startswith("attach://"):
            return self._check_attachment(value, path, ctx)
        return []

    @staticmethod
    def _check_attachment(value: str, path: str, ctx: _Context) -> list[str]:
        if ctx.uploads is None:
            return [f"{path}: attach:// reference in an object sent to the bot"]
        name = value.removeprefix("attach://")
        if name not in ctx.uploads:
            return [f'{path}: "{value}" names no uploaded file part']
        return []

    def _check_fields(self, owner: _Owner, obj: Mapping[str, Any], path: str, ctx: _Context) -> list[str]:
        problems = [f"{path}.{key}: unknown field of {owner.name}" for key in obj if key not in owner.fields]
        for declared in owner.fields.values():
            if declared.name in obj:
                problems += self._check_field(declared, obj[declared.name], f"{path}.{declared.name}", ctx)
            elif declared.required:
                problems.append(f"{path}: required field {declared.name} of {owner.name} is missing")
        if owner.exactly_one_of is not None:
            present = sorted(owner.exactly_one_of & obj.keys())
            if len(present) != 1:
                choices = ", ".join(sorted(owner.exactly_one_of))
                problems.append(f"{path}: exactly one of {choices} must be set, got {present or 'none'}")
        return problems + self._check_texts(owner, obj, path)

    def _shape_fits(self, kind: str, value: Any) -> bool:
        """Whether the value is the right JSON kind for `kind`, ignoring its contents."""
        if kind.startswith(_ARRAY):
            return isinstance(value, list)
        if kind in {"Integer", "Float"}:
            return isinstance(value, int | float) and not isinstance(value, bool)
        if kind in {"Boolean", "True"}:
            return isinstance(value, bool)
        if kind in {"String", "InputFile"}:
            return isinstance(value, str)
        spec = self.types.get(kind)
        if isinstance(spec, _Union):
            return any(self._shape_fits(member, value) for member in spec.members)
        return isinstance(value, dict)

    def _discriminated_as(self, kind: str, value: Any) -> bool:
        spec = self.types.get(kind)
        if isinstance(spec, _Union):
            return any(self._discriminated_as(member, value) for member in spec.members)
        if not isinstance(spec, _Owner) or not isinstance(value, dict):
            return False
        consts = [
            (f.name, f.allowed) for f in spec.fields.values() if f.required and f.allowed and len(f.allowed) == 1
        ]
        return bool(consts) and all(value.get(name) in allowed for name, allowed in consts)

    # -- documented text limits and formatting -----------------------------------------------

    def _check_texts(self, owner: _Owner, obj: Mapping[str, Any], path: str) -> list[str]:
        """Length limits "after entities parsing", and the HTML Telegram would refuse to parse."""
        problems: list[str] = []
        for declared in owner.fields.values():
            value = obj.get(declared.name)
            if not isinstance(value, str):
                continue
            where = f"{path}.{declared.name}" if path else declared.name
            mode = obj.get(declared.parse_mode_field) if declared.parse_mode_field else None
            if mode and not obj.get(declared.entities_field or ""):
                try:
                    value, _ = parse_entities(value, str(mode))
                except EntityParseError as error:
                    problems.append(f"{error} ({where})")
                    continue
            if declared.limit is not None:
                problems += _check_limit(declared.name, declared.limit, value, where, parsed=bool(mode))
        return problems


# -- spec loading --------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _load(path: Path) -> TelegramSpec:
    return TelegramSpec.from_json(json.loads(path.read_text(encoding="utf-8")))


def _owner(name: str, raw: Mapping[str, Any]) -> _Owner:
    raw_fields = raw.get("fields", [])
    names = {f["name"] for f in raw_fields}
    fields = {f["name"]: _field(f, names) for f in raw_fields}
    exactly_one = None
    match = _EXACTLY_ONE.search(" ".join(raw.get("description", [])))
    if match:
        listed = set(re.findall(r"[a-z_]+", match.group(2))) - {"and", "or"}
        exactly_one = frozenset(names - listed if match.group(1) else listed & names)
    return _Owner(name, fields, exactly_one)


def _field(raw: Mapping[str, Any], siblings: set[str]) -> _Field:
    name: str = raw["name"]
    types = tuple(raw["types"])
    description: str = raw.get("description", "")
    limit = None
    if types == ("String",) and (match := _LIMIT.search(description)):
        limit = (int(match.group(1)), int(match.group(2)), match.group(3))
    if f"{name}_parse_mode" in siblings:
        parse_mode_field, entities_field = f"{name}_parse_mode", f"{name}_entities"
    elif name in _PARSE_MODE_TEXTS and "parse_mode" in siblings:
        parse_mode_field, entities_field = "parse_mode", _PARSE_MODE_TEXTS[name]
    else:
        parse_mode_field = entities_field = None
    return _Field(
        name=name,
        types=types,
        required=bool(raw.get("required")),
        allowed=_allowed_values(description) if types == ("String",) else None,
        limit=limit,
        parse_mode_field=parse_mode_field,
        entities_field=entities_field,
    )


def _allowed_values(description: str) -> frozenset[str] | None:
    """Values a String field documents as fixed: `must be photo`, `always "user"`, `can be either "a" or "b"`."""
    if match := _CONST.search(description):
        return frozenset({match.group(1)})
    if match := _ENUM_START.search(description):
        sentence = _SENTENCE_END.split(description[match.end() :], maxsplit=1)[0]
        values = re.findall(r'"([^"]+)"', sentence)
        return frozenset(v.replace(_VARIATION_SELECTOR, "") for v in values) or None
    return None


def _minimal_field(declared: _Field) -> str:
    if declared.allowed:
        return min(declared.allowed)
    return "x" * declared.limit[0] if declared.limit else ""


# -- form values ---------------------------------------------------------------------------

_NOT_CONVERTED = object()
_INTEGER = re.compile(r"-?\d+")


def _from_form(kind: str, raw: str) -> Any:
    """A form string read as `kind`, or _NOT_CONVERTED."""
    if kind == "Integer":
        return int(raw) if _INTEGER.fullmatch(raw.strip()) else _NOT_CONVERTED
    if kind == "Float":
        try:
            return float(raw)
        except ValueError:
            return _NOT_CONVERTED
    if kind in {"Boolean", "True"}:
        return {"true": True, "false": False}.get(raw.strip().lower(), _NOT_CONVERTED)
    if kind in {"String", "InputFile"}:
        return raw
    try:  # arrays and objects travel JSON-serialized
        return json.loads(raw)
    except ValueError:
        return _NOT_CONVERTED


def _short(value: Any) -> str:
    kind = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "object"}.get(
        type(value), type(value).__name__
    )
    shown = json.dumps(value, ensure_ascii=False, default=str)
    return f"{kind} {shown[:60]}{'…' if len(shown) > 60 else ''}"


def _check_limit(name: str, limit: tuple[int, int, str], value: str, where: str, *, parsed: bool) -> list[str]:
    low, high, unit = limit
    size = len(value.encode("utf-8")) if unit == "bytes" else len(value)
    # Telegram trims surrounding whitespace, so "   " is an empty message.
    if size < low or (unit == "characters" and low > 0 and not value.strip()):
        wording = _BYTE_LIMITED_WORDING.get(name) or _TOO_SHORT.get(name) or "text is too short"
    elif size > high:
        wording = _BYTE_LIMITED_WORDING.get(name) or _TOO_LONG.get(name) or "text is too long"
    else:
        return []
    after = " after entities parsing" if parsed else ""
    return [f"{wording} ({where}: {size} {unit}{after}, allowed {low}-{high})"]


# -- formatted text ------------------------------------------------------------------------


def parse_entities(text: str, parse_mode: str) -> tuple[str, list[dict[str, Any]]]:
    """Plain text and MessageEntity dicts of `text` in `parse_mode`, or EntityParseError.

    HTML is parsed the way Telegram does; Markdown modes are passed through unparsed (their
    length is then overestimated, never underestimated).
    """
    mode = parse_mode.lower()
    if mode == "html":
        try:
            return _HtmlParser(text).parse()
        except _HtmlError as error:
            raise EntityParseError(f"can't parse entities: {error}") from None
    if mode in {"markdown", "markdownv2"}:
        return text, []
    raise EntityParseError("unsupported parse_mode")


_TAG_ENTITIES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
    "tg-time": "date_time",
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_HTML_ENTITY = re.compile(r"&(?:([a-z]+)|#([0-9]{1,7})|#[xX]([0-9a-fA-F]{1,6}));")


@dataclass
class _OpenTag:
    name: str
    attributes: dict[str, str]
    start: int  # UTF-16 offset in the plain text
    language: str | None = None  # a <pre> learns it from an inner <code class="language-...">


class _HtmlParser:
    """Telegram's HTML subset, with tdlib's error wording and UTF-16 entity offsets."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.plain: list[str] = []
        self.utf16 = 0
        self.open: list[_OpenTag] = []
        self.entities: list[dict[str, Any]] = []

    def parse(self) -> tuple[str, list[dict[str, Any]]]:
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char == "&":
                self._entity()
            elif text.startswith("</", self.pos):
                self._end_tag()
            elif char == "<":
                self._start_tag()
            else:
                specials = (text.find("&", self.pos), text.find("<", self.pos))
                stop = min((i for i in specials if i >= 0), default=len(text))
                self._emit(text[self.pos : stop])
                self.pos = stop
        if self.open:
            raise _HtmlError(f'Can\'t find end tag corresponding to start tag "{self.open[-1].name}"')
        self.entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.plain), self.entities

    def _byte_offset(self, pos: int) -> int:
        return len(self.text[:pos].encode("utf-8"))

    def _emit(self, chunk: str) -> None:
        self.plain.append(chunk)
        self.utf16 += len(chunk.encode("utf-16-le")) // 2

    def _entity(self) -> None:
        match = _HTML_ENTITY.match(self.text, self.pos)
        decoded = _decode_entity(match) if match else None
        if match is None or decoded is None:
            # Stricter than Telegram, which keeps a stray "&": unescaped text is a bug waiting for "&lt;".
            offset = self._byte_offset(self.pos)
            raise _HtmlError(f'Character "&" at byte offset {offset} is not an HTML entity; escape it as "&amp;"')
        self._emit(decoded)
        self.pos = match.end()

    def _skip_spaces(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def _read_until(self, stops: str) -> str:
        start = self.pos
        while self.pos < len(self.text) and not self.text[self.pos].isspace() and self.text[self.pos] not in stops:
            self.pos += 1
        return self.text[start : self.pos]

    def _start_tag(self) -> None:
        begin = self.pos
        offset = self._byte_offset(begin)
        self.pos += 1
        name = self._read_until(">").lower()
        if self.pos >= len(self.text):
            raise _HtmlError(f"Unclosed start tag at byte offset {offset}")
        if name not in _TAG_ENTITIES:
            raise _HtmlError(f'Unsupported start tag "{name}" at byte offset {offset}')
        attributes = self._attributes(name, offset)
        if name == "span" and attributes.get("class") != "tg-spoiler":
            raise _HtmlError(f'Tag "span" must have class "tg-spoiler" at byte offset {offset}')
        if name == "tg-emoji" and not attributes.get("emoji-id", "").isdigit():
            raise _HtmlError(f'Tag "tg-emoji" must have attribute "emoji-id" at byte offset {offset}')
        if name == "tg-time" and not attributes.get("unix", "").isdigit():
            raise _HtmlError(f'Tag "tg-time" must have attribute "unix" at byte offset {offset}')
        self.open.append(_OpenTag(name, attributes, self.utf16))

    def _attributes(self, tag: str, offset: int) -> dict[str, str]:
        attributes: dict[str, str] = {}
        while True:
            self._skip_spaces()
            if self.pos >= len(self.text):
                raise _HtmlError(f'Unclosed start tag "{tag}" at byte offset {offset}')
            if self.text[self.pos] == ">":
                self.pos += 1
                return attributes
            name = self._read_until("=>").lower()
            if not name:
                raise _HtmlError(f'Empty attribute name in the tag "{tag}" at byte offset {offset}')
            self._skip_spaces()
            if self.pos < len(self.text) and self.text[self.pos] == "=":
                self.pos += 1
                self._skip_spaces()
                attributes[name] = self._attribute_value(tag, offset)
            else:
                attributes[name] = ""  # a bare attribute, e.g. <blockquote expandable>

    def _attribute_value(self, tag: str, offset: int) -> str:
        if self.pos >= len(self.text):
            raise _HtmlError(f'Unclosed start tag "{tag}" at byte offset {offset}')
        quote = self.text[self.pos]
        if quote in "'\"":
            end = self.text.find(quote, self.pos + 1)
            if end < 0:
                raise _HtmlError(f'Unclosed start tag "{tag}" at byte offset {offset}')
            raw = self.text[self.pos + 1 : end]
            self.pos = end + 1
        else:
            raw = self._read_until(">")
        return _HTML_ENTITY.sub(lambda m: _decode_entity(m) or m.group(0), raw)

    def _end_tag(self) -> None:
        offset = self._byte_offset(self.pos)
        if not self.open:
            raise _HtmlError(f"Unexpected end tag at byte offset {offset}")
        self.pos += 2
        name = self._read_until(">").lower()
        self._skip_spaces()
        if self.pos >= len(self.text) or self.text[self.pos] != ">":
            raise _HtmlError(f"Unclosed end tag at byte offset {offset}")
        self.pos += 1
        tag = self.open[-1]
        if name and name != tag.name:
            raise _HtmlError(
                f'Unmatched end tag at byte offset {offset}, expected "</{tag.name}>", found "</{name}>"'
            )
        self.open.pop()
        self._close(tag)

    def _close(self, tag: _OpenTag) -> None:
        length = self.utf16 - tag.start
        language = tag.attributes.get("class", "").removeprefix("language-")
        parent = self.open[-1] if self.open else None
        if tag.name == "code" and parent and parent.name == "pre" and parent.start == tag.start and language:
            parent.language = language  # <pre><code class="language-x"> is one pre entity with a language
            return
        if length == 0:
            return
        entity: dict[str, Any] = {"type": _TAG_ENTITIES[tag.name], "offset": tag.start, "length": length}
        match tag.name:
            case "a":
                if not tag.attributes.get("href"):
                    return
                entity["url"] = tag.attributes["href"]
            case "pre" if tag.language:
                entity["language"] = tag.language
            case "blockquote" if "expandable" in tag.attributes:
                entity["type"] = "expandable_blockquote"
            case "tg-emoji":
                entity["custom_emoji_id"] = tag.attributes["emoji-id"]
            case "tg-time":
                entity["unix_time"] = int(tag.attributes["unix"])
                if tag.attributes.get("format"):
                    entity["date_time_format"] = tag.attributes["format"]
        self.entities.append(entity)


def _decode_entity(match: re.Match[str]) -> str | None:
    named, decimal, hexadecimal = match.groups()
    if named is not None:
        return _NAMED_ENTITIES.get(named)
    code = int(decimal) if decimal is not None else int(hexadecimal, 16)
    return chr(code) if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else None
