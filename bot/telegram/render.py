"""Small HTML helpers for Telegram's ``parse_mode=HTML``."""

from __future__ import annotations

from html import escape


def esc(text: object) -> str:
    return escape(str(text), quote=False)


def bold(text: object) -> str:
    return f"<b>{esc(text)}</b>"


def italic(text: object) -> str:
    return f"<i>{esc(text)}</i>"


def code(text: object) -> str:
    return f"<code>{esc(text)}</code>"
