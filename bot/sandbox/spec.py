"""The Bot API specification facts (``botapi_spec.json``) and request validation against them.

:func:`validate_params` takes the parameters of one request, as they arrived (strings from a
query string or a form, JSON values from a JSON body, :class:`UploadedFile` parts from a
multipart body), and returns them converted to Python values, or raises a Telegram-shaped
:class:`~bot.sandbox.errors.ApiError`:

* a parameter the method does not have → ``Bad Request: unknown parameter "<name>"`` (the
  real server ignores those; this project wants them caught);
* a required one missing → ``Bad Request: parameter "<name>" is required`` (with Telegram's own
  wording where it has one: ``chat_id is empty``, ``message text is empty``);
* a value of the wrong type → ``Bad Request: parameter "<name>" must be of type Integer``;
  malformed JSON → ``Bad Request: can't parse reply keyboard markup JSON object`` and the like;
  nested objects are checked field by field against the specification
  (``Bad Request: can't parse BotCommand: Field "command" must be of type String``).
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from bot.sandbox.errors import ApiError, bad_request
from bot.sandbox.markup import parse_reply_markup

JsonObject = dict[str, Any]

PRIMITIVES = frozenset({"String", "Integer", "Float", "Boolean", "True", "InputFile"})

# Parameters the Bot API server still accepts although the specification dropped them.
_LEGACY_SEND = {
    "reply_to_message_id": ("Integer",),
    "allow_sending_without_reply": ("Boolean",),
}
_LEGACY_FIELDS: dict[str, dict[str, tuple[str, ...]]] = {
    "sendmessage": {**_LEGACY_SEND, "disable_web_page_preview": ("Boolean",)},
    "editmessagetext": {"disable_web_page_preview": ("Boolean",)},
    **{
        method: dict(_LEGACY_SEND)
        for method in (
            "sendphoto",
            "senddocument",
            "sendmediagroup",
            "sendlocation",
            "sendcontact",
            "sendvenue",
            "sendaudio",
            "sendvideo",
            "sendanimation",
            "sendvoice",
            "sendvideonote",
            "sendsticker",
            "senddice",
            "sendpoll",
            "sendgame",
            "sendinvoice",
            "copymessage",
        )
    },
}

# Telegram's words for a top-level JSON parameter it cannot decode.
_JSON_NAMES = {
    "reply_markup": "reply keyboard markup",
    "entities": "entities",
    "caption_entities": "entities",
    "media": "media",
    "commands": "commands",
    "scope": "BotCommandScope",
    "menu_button": "menu button",
    "link_preview_options": "link preview options",
    "reply_parameters": "reply parameters",
}
# Telegram's words for a missing required parameter.
_MISSING = {
    "chat_id": "chat_id is empty",
    "text": "Message text is empty",
    "latitude": "latitude is empty",
    "longitude": "longitude is empty",
    "message_id": "Message identifier is not specified",
}
_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
INT64 = 1 << 63


@dataclass(frozen=True)
class UploadedFile:
    """A file part of a multipart request."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class FieldSpec:
    name: str
    types: tuple[str, ...]
    required: bool


@dataclass(frozen=True)
class MethodSpec:
    name: str
    fields: Mapping[str, FieldSpec]
    returns: tuple[str, ...]


@dataclass(frozen=True)
class TypeSpec:
    name: str
    fields: Mapping[str, FieldSpec] | None
    subtypes: tuple[str, ...] = ()
    discriminator: tuple[str, str] | None = None


@dataclass
class BotApiSpec:
    """Methods and types of the Bot API, as derived into ``botapi_spec.json``."""

    version: str
    origin: str
    methods: dict[str, MethodSpec] = field(default_factory=dict)
    types: dict[str, TypeSpec] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: JsonObject) -> BotApiSpec:
        def fields(raw: list[JsonObject]) -> dict[str, FieldSpec]:
            return {
                f["name"]: FieldSpec(f["name"], tuple(f["types"]), bool(f["required"]))
                for f in raw
            }

        spec = cls(version=data["origin"]["version"], origin=data["origin"]["note"])
        for name, raw in data["methods"].items():
            method_fields = fields(raw.get("fields", []))
            for legacy, types in _LEGACY_FIELDS.get(name.lower(), {}).items():
                method_fields.setdefault(legacy, FieldSpec(legacy, types, False))
            spec.methods[name.lower()] = MethodSpec(name, method_fields, tuple(raw["returns"]))
        for name, raw in data["types"].items():
            discriminator = raw.get("discriminator")
            spec.types[name] = TypeSpec(
                name,
                fields(raw["fields"]) if "fields" in raw else None,
                tuple(raw.get("subtypes", ())),
                (discriminator["field"], discriminator["value"]) if discriminator else None,
            )
        return spec

    def method(self, name: str) -> MethodSpec | None:
        """The method called ``name`` (case-insensitive, as Telegram treats method names)."""
        return self.methods.get(name.lower())


@functools.cache
def load_spec() -> BotApiSpec:
    """The specification shipped beside this module."""
    text = resources.files("bot.sandbox").joinpath("botapi_spec.json").read_text("utf-8")
    return BotApiSpec.from_json(json.loads(text))


# ---------------------------------------------------------------------------------------------
# nested JSON values


class _NestedError(Exception):
    pass


def _json_type_name(type_name: str) -> str:
    if type_name.startswith("Array of"):
        return "Array"
    return {
        "String": "String",
        "Integer": "Number",
        "Float": "Number",
        "Boolean": "Boolean",
        "True": "Boolean",
        "InputFile": "String",
    }.get(type_name, "Object")


def _concrete_types(spec: BotApiSpec, name: str) -> list[TypeSpec]:
    type_spec = spec.types.get(name)
    if type_spec is None:
        return []
    if type_spec.fields is None and type_spec.subtypes:
        result: list[TypeSpec] = []
        for sub in type_spec.subtypes:
            result.extend(_concrete_types(spec, sub))
        return result
    return [type_spec]


def _check_number(value: Any, name: str, *, integer: bool) -> int | float:
    if isinstance(value, bool):
        raise _NestedError(f'Field "{name}" must be a Number')
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value) or (integer and not value.is_integer()):
            raise _NestedError(f'Field "{name}" must be a valid Number')
        return int(value) if integer else value
    if isinstance(value, str):
        pattern = _INT if integer else _FLOAT
        if not pattern.fullmatch(value.strip()):
            raise _NestedError(f'Field "{name}" must be a valid Number')
        return int(value) if integer else float(value)
    raise _NestedError(f'Field "{name}" must be a Number')


def _check_primitive(type_name: str, value: Any, name: str) -> Any:
    if type_name in ("String", "InputFile"):
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise _NestedError(f'Field "{name}" must be of type String')
    if type_name == "Integer":
        number = _check_number(value, name, integer=True)
        if not -INT64 <= number < INT64:
            raise _NestedError(f'Field "{name}" must be a valid Number')
        return number
    if type_name == "Float":
        return _check_number(value, name, integer=False)
    if not isinstance(value, bool):
        raise _NestedError(f'Field "{name}" must be of type Boolean')
    return value


def _check_object(spec: BotApiSpec, type_names: list[str], value: Any, name: str) -> JsonObject:
    if not isinstance(value, dict):
        raise _NestedError(f'Field "{name}" must be of type Object')
    candidates: list[TypeSpec] = []
    for type_name in type_names:
        candidates.extend(_concrete_types(spec, type_name))
    if not candidates:
        return value
    discriminated = [c for c in candidates if c.discriminator is not None]
    if discriminated and len(candidates) > 1:
        field_name = discriminated[0].discriminator[0] if discriminated[0].discriminator else ""
        if field_name not in value:
            raise _NestedError(f'Can\'t find field "{field_name}"')
        kind = value[field_name]
        if not isinstance(kind, str):
            raise _NestedError(f'Field "{field_name}" must be of type String')
        chosen = [c for c in candidates if c.discriminator == (field_name, kind)]
        if not chosen:
            raise _NestedError(f'Unsupported {field_name} "{kind}" specified')
        candidates = chosen
    first_error: _NestedError | None = None
    for candidate in candidates:
        try:
            return _check_fields(spec, candidate, value)
        except _NestedError as error:
            first_error = first_error or error
    assert first_error is not None
    raise first_error


def _check_fields(spec: BotApiSpec, type_spec: TypeSpec, value: JsonObject) -> JsonObject:
    """The known fields of ``value``, checked; unknown fields are dropped, as Telegram ignores
    them."""
    result: JsonObject = {}
    for field_spec in (type_spec.fields or {}).values():
        item = value.get(field_spec.name)
        if item is None:
            if field_spec.required:
                raise _NestedError(f'Can\'t find field "{field_spec.name}"')
            continue
        result[field_spec.name] = _check_value(spec, field_spec.types, item, field_spec.name)
    return result


def _check_value(spec: BotApiSpec, types: tuple[str, ...], value: Any, name: str) -> Any:
    arrays = [t[len("Array of ") :] for t in types if t.startswith("Array of ")]
    primitives = [t for t in types if t in PRIMITIVES]
    objects = [t for t in types if not t.startswith("Array of ") and t not in PRIMITIVES]
    if isinstance(value, list) and arrays:
        return [_check_value(spec, tuple(arrays), item, name) for item in value]
    if isinstance(value, dict) and objects:
        return _check_object(spec, objects, value, name)
    errors: list[_NestedError] = []
    for primitive in primitives:
        try:
            return _check_primitive(primitive, value, name)
        except _NestedError as error:
            errors.append(error)
    if errors:
        raise errors[0]
    raise _NestedError(f'Field "{name}" must be of type {_json_type_name(types[0])}')


# ---------------------------------------------------------------------------------------------
# top-level parameters


def _type_error(name: str, types: tuple[str, ...]) -> ApiError:
    return bad_request(f'parameter "{name}" must be of type {" or ".join(types)}')


def _top_primitive(name: str, types: tuple[str, ...], value: Any) -> Any:
    if "InputFile" in types and isinstance(value, UploadedFile):
        return value
    if isinstance(value, UploadedFile):
        raise _type_error(name, types)
    text = value if isinstance(value, str) else None
    for type_name in types:
        if type_name == "Integer":
            if isinstance(value, int) and not isinstance(value, bool) and -INT64 <= value < INT64:
                return value
            if isinstance(value, float) and value.is_integer() and math.isfinite(value):
                return int(value)
            if text is not None and _INT.fullmatch(text.strip()):
                number = int(text)
                if -INT64 <= number < INT64:
                    return number
        elif type_name == "Float":
            if (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
            ):
                return float(value)
            if text is not None and _FLOAT.fullmatch(text.strip()):
                return float(text)
        elif type_name in ("Boolean", "True"):
            if isinstance(value, bool):
                return value
            if isinstance(value, int) and value in (0, 1):
                return bool(value)
            if text is not None and text.strip().lower() in ("true", "false", "1", "0"):
                return text.strip().lower() in ("true", "1")
        elif type_name in ("String", "InputFile"):
            if text is not None:
                return text
            if isinstance(value, int | float) and not isinstance(value, bool):
                return str(value)
            if isinstance(value, bool):
                return "true" if value else "false"
    raise _type_error(name, types)


def _decode_json(name: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except (ValueError, RecursionError):
        raise bad_request(f"Can't parse {_JSON_NAMES.get(name, name)} JSON object") from None


def _item_name(spec: BotApiSpec, types: tuple[str, ...]) -> str:
    inner = [t[len("Array of ") :] if t.startswith("Array of ") else t for t in types]
    first = inner[0]
    for type_spec in spec.types.values():
        if first in type_spec.subtypes and type_spec.fields is None:
            return type_spec.name
    return first


def _top_complex(spec: BotApiSpec, field_spec: FieldSpec, value: Any) -> Any:
    name, types = field_spec.name, field_spec.types
    if name == "reply_markup":
        return parse_reply_markup(_decode_json(name, value))
    decoded = _decode_json(name, value)
    is_array = all(t.startswith("Array of ") for t in types if t not in PRIMITIVES)
    item = _item_name(spec, types)
    if is_array and not isinstance(decoded, list):
        raise bad_request(f"Expected an Array of {item}")
    if not is_array and not isinstance(decoded, dict):
        raise bad_request(f"Can't parse {_JSON_NAMES.get(name, name)} JSON object")
    try:
        return _check_value(spec, types, decoded, name)
    except _NestedError as error:
        raise bad_request(f"Can't parse {item}: {error}") from None
    except RecursionError:
        raise bad_request(f"Can't parse {_JSON_NAMES.get(name, name)} JSON object") from None


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value == "")


def validate_params(
    spec: BotApiSpec, method: MethodSpec, raw: Mapping[str, Any]
) -> tuple[JsonObject, dict[str, UploadedFile]]:
    """Check and convert the parameters of one call of ``method``.

    Returns the converted parameters and the file parts that are not parameters themselves
    (the ``attach://<name>`` attachments).
    """
    attachments = {
        key: value
        for key, value in raw.items()
        if isinstance(value, UploadedFile) and key not in method.fields
    }
    for key in raw:
        if key not in method.fields and key not in attachments:
            raise bad_request(f'unknown parameter "{key}"')

    result: JsonObject = {}
    for field_spec in method.fields.values():
        value = raw.get(field_spec.name)
        if isinstance(value, str) and "\x00" in value:
            value = value.split("\x00", 1)[0]  # the server reads parameters as C strings
        if _is_missing(value):
            if field_spec.required:
                name = field_spec.name
                raise bad_request(_MISSING.get(name, f'Parameter "{name}" is required'))
            continue
        if all(t in PRIMITIVES for t in field_spec.types):
            result[field_spec.name] = _top_primitive(field_spec.name, field_spec.types, value)
        elif isinstance(value, UploadedFile) or (
            isinstance(value, str)
            and any(t in PRIMITIVES for t in field_spec.types)
            and not value.lstrip().startswith(("{", "["))
        ):
            primitives = tuple(t for t in field_spec.types if t in PRIMITIVES)
            result[field_spec.name] = _top_primitive(field_spec.name, primitives, value)
        else:
            result[field_spec.name] = _top_complex(spec, field_spec, value)
    return result, attachments
