"""Texts no longer than Telegram accepts (4,096 characters a message, 1,024 a caption).

Telegram counts UTF-16 code units of the text *after* entity parsing: an HTML message's tags
do not count, ``&lt;`` counts as one. Long texts are split between lines (each line of ours
closes its own tags), so no part breaks the markup.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable

MAX_MESSAGE = 4096  # Telegram's limit for a message's text, in UTF-16 code units
MAX_CAPTION = 1024  # … and for a caption
CUT = "…"  # what ends a text that had to be cut

_TAG = re.compile(r"<[^>]*>")


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def visible_length(text: str, parse_mode: str | None) -> int:
    """What Telegram counts against its limits: the text once its HTML markup is parsed."""
    if parse_mode is not None and parse_mode.upper() == "HTML":
        text = html.unescape(_TAG.sub("", text))
    return utf16_length(text)


def split_message(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """``text`` in as few parts as fit ``limit`` UTF-16 units each, cut between lines.

    Markup must not span lines (each line of ours closes its own tags). A single line longer
    than the limit is cut at the limit, without splitting a character, a tag or an entity.
    """
    if limit < 2:
        raise ValueError("the limit must allow at least one character")
    parts: list[str] = []
    current: list[str] = []
    size = 0
    for line in _fitting_lines(text.split("\n"), limit):
        length = utf16_length(line)
        extra = length + (1 if current else 0)
        if current and size + extra > limit:
            parts.append("\n".join(current))
            current, size = [], 0
            extra = length
        current.append(line)
        size += extra
    if current:
        parts.append("\n".join(current))
    return [part.strip("\n") for part in parts if part.strip()]


def cut_to_fit(text: str, parse_mode: str | None, limit: int) -> str:
    """``text`` if Telegram takes it, else as many whole lines (or the start of the first) as
    fit ``limit`` with :data:`CUT` after them."""
    if visible_length(text, parse_mode) <= limit:
        return text
    return split_message(text, limit - 2)[0] + "\n" + CUT


def _fitting_lines(lines: Iterable[str], limit: int) -> Iterable[str]:
    for line in lines:
        while utf16_length(line) > limit:
            cut = limit
            while utf16_length(line[:cut]) > limit:
                cut -= 1
            cut = _outside_markup(line, cut)
            yield line[:cut]
            line = line[cut:]
        yield line


def _outside_markup(line: str, cut: int) -> int:
    """``cut`` moved back before a tag or an entity it would fall inside."""
    head = line[:cut]
    for opener, closer in (("<", ">"), ("&", ";")):
        start = head.rfind(opener)
        if start > 0 and head.rfind(closer) < start:
            cut = min(cut, start)
            head = line[:cut]
    return cut
