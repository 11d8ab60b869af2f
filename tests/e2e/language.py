"""Every text the bot shows, read in the language of the person who sees it.

The harness watches the sandbox (:meth:`SandboxServer.watch`) and keeps each version of every
text the bot put in a private chat: messages and their captions, each edit, inline and reply
buttons, placeholders, toasts. At the end of a test each text is checked for the language of
its reader at the moment it was shown (a press on the language menu switches it):

- in Chinese (``zh_Hans``, ``zh_Hant``) no English sentence — a run of
  :data:`ENGLISH_RUN` English words;
- in English no Chinese punctuation (、，。：（）…);
- in every language no raw key such as ``rating_comment``.

What people typed and the records in the database (names, addresses, descriptions, notes)
are taken out first: they are the users' words, in whatever language they wrote them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.i18n import resolve_locale
from bot.labels import LANGUAGE_NAMES
from bot.sandbox.state import Conversation

ENGLISH_RUN = 2
# names that stay as they are in every language
ALLOWED_WORDS = frozenset(
    {"GridBot", "Telegram", "Excel", "QR", "PNG", "XLSX", "CSV", "JSON", "ID", "OK", "SLA"}
)
CHINESE_PUNCTUATION = frozenset("、，。；：？！（）【】《》「」『』　")
# where the users' own words are kept: table → text columns
DATA_COLUMNS: dict[str, tuple[str, ...]] = {
    "grid": ("name", "area_desc", "services", "complaint_process", "complaint_phone"),
    "person": ("name", "muted_reason"),
    "department": ("name",),
    "household": ("address", "head_name", "note"),
    "meeting": ("title", "place", "minutes"),
    "meeting_invite": ("reason",),
    "ticket": ("description", "address", "rating_comment", "number"),
    "ticket_event": ("note",),
    "return_visit": ("outcome",),
    "visit": ("note",),
    "calendar_day": ("note",),
    "policy_version": ("note",),
}
_WORD = re.compile(r"[A-Za-z]+(?:['’-][A-Za-z]+)*")
_EDGE_PUNCTUATION = "\"'“”‘’()[]{}<>.,;:!?…—–-*•·"
_RAW_KEY = re.compile(r"(?<![/\w.@-])[a-z]+(?:_[a-z0-9]+)+(?![\w.@/-])")
_LINK = re.compile(r"(?:https?://|t\.me/)\S+|/[a-z][a-z0-9_]*|@\w+|\S+@\S+\.\w+")


@dataclass(frozen=True)
class Shown:
    """One text the bot showed someone, and the language it had to be in."""

    chat_id: int
    locale: str
    text: str


@dataclass
class LanguageWatch:
    """Collects what the bot shows in private chats (a :data:`~bot.sandbox.server.Watcher`)."""

    default_locale: str
    bot_id: int | None = None  # only this bot's chats (None: every bot's)
    locales: dict[int, str] = field(default_factory=dict)  # user id → the language they read
    shown: list[Shown] = field(default_factory=list)
    typed: set[str] = field(default_factory=set)

    def reads(self, user_id: int, locale: str) -> None:
        self.locales[user_id] = locale

    def __call__(self, conv: Conversation, event: dict[str, Any]) -> None:
        if not conv.is_private or self.bot_id not in {None, conv.bot_id}:
            return
        chat_id = conv.chat_id
        kind = event["type"]
        if kind == "pressed":
            switched = {name: locale for locale, name in LANGUAGE_NAMES.items()}
            if event.get("text") in switched:
                self.locales[chat_id] = switched[event["text"]]
            return
        if kind == "toast":
            answer = conv.toast or {}
            if answer.get("text"):
                self._show(chat_id, str(answer["text"]))
            return
        if kind not in {"message", "edited"}:
            return
        stored = conv.messages.get(int(event["message_id"]))
        if stored is None:
            return
        data = stored.data
        if not stored.from_bot:
            for key in ("text", "caption"):
                if data.get(key):
                    self.typed.add(str(data[key]))
            sender = data.get("from") or {}
            for key in ("first_name", "last_name"):
                if sender.get(key):
                    self.typed.add(str(sender[key]))
            return
        if stored.service is not None:
            return
        for key in ("text", "caption"):
            if data.get(key):
                self._show(chat_id, str(data[key]))
        markup = data.get("reply_markup") or {}
        for row in markup.get("inline_keyboard") or []:
            for button in row:
                self._show(chat_id, str(button.get("text", "")))
        keyboard = stored.keyboard or {}
        for row in keyboard.get("keyboard") or []:
            for button in row:
                self._show(chat_id, str(button.get("text", "")))
        if keyboard.get("input_field_placeholder"):
            self._show(chat_id, str(keyboard["input_field_placeholder"]))

    def _show(self, chat_id: int, shown: str) -> None:
        locale = self.locales.get(chat_id) or resolve_locale(None, None, self.default_locale)
        self.shown.append(Shown(chat_id, locale, shown))

    def problems(self, data: set[str]) -> list[str]:
        """What is shown in the wrong language, one line each (an empty list: all is well)."""
        theirs = sorted((self.typed | data) - {""}, key=len, reverse=True)
        found: list[str] = []
        seen: set[tuple[str, str]] = set()
        for item in self.shown:
            if (item.locale, item.text) in seen:
                continue
            seen.add((item.locale, item.text))
            ours = _without(_LINK.sub(" ", item.text), theirs)
            for fault in faults(ours, item.locale):
                found.append(f"[{item.locale}] {fault}: {item.text!r}")
        return found


def _without(shown: str, theirs: list[str]) -> str:
    for words in theirs:
        if words in shown:
            shown = shown.replace(words, " ")
    return shown


def faults(shown: str, locale: str) -> list[str]:
    """Why ``shown`` (links, commands and the users' words already taken out) is not in
    ``locale``."""
    found: list[str] = []
    if key := _RAW_KEY.search(shown):
        found.append(f"raw key {key.group()!r}")
    if locale.startswith("zh"):
        if run := english_run(shown):
            found.append(f"English words {run!r}")
    elif marks := chinese_punctuation(shown):
        found.append(f"Chinese punctuation {marks!r}")
    return found


def _is_chinese(character: str) -> bool:
    return "\u3400" <= character <= "\u9fff" or "\uf900" <= character <= "\ufaff"


def chinese_punctuation(shown: str) -> str:
    """The Chinese punctuation marks in ``shown`` that are not inside Chinese words (a cut
    excerpt of what a user wrote keeps its own) nor quoted (“、” names the mark)."""
    marks = []
    for at, mark in enumerate(shown):
        if mark not in CHINESE_PUNCTUATION:
            continue
        before = shown[at - 1] if at else " "
        after = shown[at + 1] if at + 1 < len(shown) else " "
        if (before, after) == ("“", "”"):
            continue
        if not (_is_chinese(before) and _is_chinese(after)):
            marks.append(mark)
    return "".join(marks)


def english_run(shown: str) -> str | None:
    """The first run of :data:`ENGLISH_RUN` or more English words in a row, if any."""
    run: list[str] = []
    for token in shown.split():
        word = token.strip(_EDGE_PUNCTUATION)
        if word and _WORD.fullmatch(word) and word not in ALLOWED_WORDS:
            run.append(word)
            if len(run) >= ENGLISH_RUN:
                return " ".join(run)
        else:
            run = []
    return None


async def data_strings(session: AsyncSession) -> set[str]:
    """The users' own words, as kept in the database."""
    found: set[str] = set()
    connection = await session.connection()
    for table, columns in DATA_COLUMNS.items():
        for column in columns:
            rows = await connection.execute(
                text(f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL")
            )
            found.update(str(value) for (value,) in rows if value)
    return found
