"""What people type about a ticket (a description, a note, a reason), read safely."""

from __future__ import annotations

from bot.errors import InvalidInput
from bot.i18n import N_

MIN_TEXT, MAX_TEXT = 4, 2000


MAX_NOTE = 1000


def clean_text(raw: str | None, *, minimum: int = MIN_TEXT, maximum: int = MAX_TEXT) -> str:
    """A person's description or note: trimmed, bounded, and not empty or mere symbols.

    NUL and lone surrogates (which PostgreSQL refuses to store) are dropped first.
    """
    raw = "".join(ch for ch in raw or "" if ch != "\x00" and not "\ud800" <= ch <= "\udfff")
    text = " ".join((raw or "").split()) if raw and "\n" not in raw else (raw or "").strip()
    meaningful = sum(1 for ch in text if ch.isalnum())
    if not text or meaningful == 0:
        raise InvalidInput(N_("Please describe it in words."))
    if len(text) > maximum:
        raise InvalidInput(
            N_("That is {length} characters; please keep it under {limit}."),
            length=len(text),
            limit=maximum,
        )
    if meaningful < minimum:
        raise InvalidInput(N_("Please say a little more, so that it can be handled."))
    return text
