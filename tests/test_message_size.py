"""No outbox row is longer than Telegram takes: split or cut where it is queued, judged by the
sandbox's own entity parser (what the Bot API counts: UTF-16 units after parsing)."""

from __future__ import annotations

import html
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.sandbox.formatting import parse_entities, utf16_len
from bot.services import outbox
from bot.services.message_size import (
    CUT,
    MAX_CAPTION,
    MAX_MESSAGE,
    cut_to_fit,
    split_message,
    visible_length,
)
from models import OutboxMessage

NOW = datetime(2026, 3, 12, 1, 0, tzinfo=UTC)

# what our renderers write: each line closes its own tags; what people typed is escaped
typed = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=1500)
lines = st.lists(
    st.one_of(
        typed.map(html.escape),
        typed.map(lambda t: f"<b>{html.escape(t[:40])}</b> {html.escape(t)}"),
        st.just("🧯" * 700),  # astral characters count two units each
    ),
    min_size=1,
    max_size=12,
)


def telegram_length(text: str) -> int:
    """What Telegram counts; raises as it would refuse broken markup."""
    return utf16_len(parse_entities(text, "HTML").text)


@settings(max_examples=60, deadline=None)
@given(lines)
def test_every_part_of_a_split_message_is_taken_whole(parts: list[str]) -> None:
    text = "\n".join(parts)
    split = split_message(text)
    assert all(telegram_length(part) <= MAX_MESSAGE for part in split)
    assert "".join("".join(split).split()) == "".join(text.split())  # nothing but blanks lost


@settings(max_examples=60, deadline=None)
@given(lines, st.sampled_from([MAX_MESSAGE, MAX_CAPTION]))
def test_a_cut_text_fits_and_says_it_was_cut(parts: list[str], limit: int) -> None:
    text = "\n".join(parts)
    fitted = cut_to_fit(text, "HTML", limit)
    assert telegram_length(fitted) <= limit
    assert fitted == text or fitted.endswith(CUT)


def test_html_markup_does_not_count_but_escaped_characters_do() -> None:
    assert visible_length("<b>路灯</b> &lt;坏了&gt;", "HTML") == len("路灯 <坏了>")
    assert visible_length("<b>路灯</b>", None) == len("<b>路灯</b>")


async def test_a_long_reply_is_sent_as_several_messages_the_keyboard_under_the_last(
    session: AsyncSession,
) -> None:
    """Seen: a ticket's history after five progress notes of ~1,000 characters was refused
    ("message is too long") and neither the worker nor the resident heard anything."""
    notes = [f"<b>12-07 18:2{n} 进展</b> · {html.escape('灯' * 1000)}" for n in range(5)]
    keyboard = {"inline_keyboard": [[{"text": "返回", "callback_data": "x"}]]}
    first = outbox.send_text(
        session, chat_id=7, text="\n".join(notes), now=NOW, reply_markup=keyboard, ref="tk:1"
    )
    await session.flush()
    rows = (await session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))).all()
    assert len(rows) == 2 and rows[0] is first and first.ref == "tk:1"
    assert all(telegram_length(row.payload["text"]) <= MAX_MESSAGE for row in rows)
    assert "reply_markup" not in rows[0].payload and rows[1].payload["reply_markup"] == keyboard
    assert rows[1].ref is None


async def test_an_edit_or_a_caption_that_is_too_long_is_cut(session: AsyncSession) -> None:
    edit = outbox.enqueue(
        session,
        chat_id=7,
        method="editMessageText",
        payload={"chat_id": 7, "text": "灯\n" * 3000, "parse_mode": "HTML"},
        now=NOW,
    )
    photo = outbox.enqueue(
        session,
        chat_id=7,
        method="sendPhoto",
        payload={"chat_id": 7, "photo": "abc", "caption": "坏" * 2000},
        now=NOW,
    )
    assert telegram_length(edit.payload["text"]) <= MAX_MESSAGE
    assert edit.payload["text"].endswith(CUT)
    assert utf16_len(photo.payload["caption"]) <= MAX_CAPTION
