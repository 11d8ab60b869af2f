"""The fields of an admin's policy files (place types, person tags): each read from the JSON
with a translated refusal that names where it is wrong and echoes a little of what was there.
"""

from __future__ import annotations

import re
from typing import Any

from bot.errors import InvalidInput
from bot.i18n import N_

ECHO = 24  # characters of a wrong value repeated in a refusal
KEY = re.compile(r"[a-z][a-z0-9_]{0,23}")


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
