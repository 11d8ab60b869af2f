"""An admin's policy files (place types, person tags, assessment): the file read as one JSON
object, and its fields, each with a translated refusal that names where it is wrong and echoes
a little of what was there.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from bot.errors import InvalidInput
from bot.i18n import N_

ECHO = 24  # characters of a wrong value repeated in a refusal
KEY = re.compile(r"[a-z][a-z0-9_]{0,23}")


@dataclass(frozen=True)
class PolicyFile:
    """How the refusals name one kind of policy file (each a msgid)."""

    too_large: str
    not_utf8: str
    not_json: str
    unknown_version: str


def read_object(raw: bytes | str, limit: int, kind: PolicyFile) -> dict[str, Any]:
    """The file as one JSON object of version 1; refused, saying why in ``kind``'s words,
    when it is over ``limit`` bytes (or characters), not UTF-8, not JSON, or another version."""
    if isinstance(raw, bytes):
        if len(raw) > limit:
            raise InvalidInput(kind.too_large)
        try:
            raw = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InvalidInput(kind.not_utf8) from None
    if len(raw) > limit:
        raise InvalidInput(kind.too_large)
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidInput(kind.not_json) from None
    if not isinstance(data, dict):
        raise InvalidInput(kind.not_json)
    if data.get("version", 1) != 1:
        raise InvalidInput(kind.unknown_version)
    return data


def echo(value: object) -> str:
    """A wrong value as a refusal repeats it: at most ``ECHO`` characters, "—" for nothing."""
    text = str(value)
    return (text[:ECHO] + "…") if len(text) > ECHO else (text or "—")


def key(value: Any, where: str) -> str:
    """A key: 1 to 24 lower-case letters, digits or ``_``, starting with a letter."""
    if not isinstance(value, str) or not KEY.fullmatch(value):
        raise InvalidInput(
            N_(
                "In {where}, the key “{value}” must be 1 to 24 lower-case letters, digits or "
                "_, starting with a letter."
            ),
            where=where,
            value=echo(value),
        )
    return value


def text(value: Any, limit: int, what: str, where: str) -> str:
    """Text of 1 to ``limit`` characters, its runs of spaces made one."""
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > limit:
        raise InvalidInput(
            N_("In {where}, “{what}” must be text of 1 to {limit} characters."),
            where=where,
            what=what,
            limit=limit,
        )
    return " ".join(value.split())
