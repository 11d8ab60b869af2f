"""How broadcasts look in the chat: the sender's draft card and the recipients' "收到" button."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.i18n import N_, gettext_for
from bot.services.broadcasts import TAGGED_PEOPLE, Audience, Reach
from bot.telegram.callbacks import BroadcastAudienceCb, BroadcastCb, BroadcastStep, ReceiptCb
from bot.telegram.i18n import t
from bot.telegram.render import bold, esc
from bot.telegram.replies import markup_json
from models import Broadcast, Grid

RECEIVED = N_("✅ Received")
ASK_NOTICE = N_(
    "Write the notice to broadcast to {grid}: its text, or a photo or a file with the text "
    "as its caption. /cancel to stop."
)
DRAFT_TITLE = N_("📝 Broadcast draft #{id}")
DRAFT_AUDIENCE = N_("To: {audience} of {grid}")
DRAFT_REACH = N_(
    "It will reach {reachable} of {total} people (the others have no Telegram "
    "account linked or blocked the bot)."
)
DRAFT_NORMAL = N_("Normal notice: waits out quiet hours ({start}–{end}), sent at Telegram's pace.")
DRAFT_EMERGENCY = N_(
    "🚨 Emergency: goes out at once, even in quiet hours, before other work; recipients are "
    "asked to tap “Received”, and who has not after {minutes} minutes is listed to you."
)
DRAFT_MEDIA = N_("With a photo or file attached.")


def receipt_markup(broadcast_id: int, locale: str) -> dict[str, Any]:
    """The "收到" button under an emergency broadcast, in the recipient's language."""
    button = InlineKeyboardButton(
        text=gettext_for(locale, RECEIVED), callback_data=ReceiptCb(id=broadcast_id).pack()
    )
    markup = markup_json(InlineKeyboardMarkup(inline_keyboard=[[button]]))
    assert markup is not None
    return markup


def draft_text(
    broadcast: Broadcast,
    grid: Grid,
    audience: Audience,
    reach: Reach,
    quiet: tuple[str, str],
    minutes: int,
) -> str:
    lines = [
        bold(t(DRAFT_TITLE, id=broadcast.id)),
        t(DRAFT_AUDIENCE, audience=esc(audience_label(audience)), grid=esc(grid.name)),
        t(DRAFT_REACH, reachable=reach.reachable, total=reach.total),
    ]
    if broadcast.emergency:
        lines.append(t(DRAFT_EMERGENCY, minutes=minutes))
    else:
        lines.append(t(DRAFT_NORMAL, start=quiet[0], end=quiet[1]))
    if broadcast.photo_file_id or broadcast.document_file_id:
        lines.append(t(DRAFT_MEDIA))
    if broadcast.text:
        excerpt = broadcast.text if len(broadcast.text) <= 300 else broadcast.text[:299] + "…"
        lines += ["", esc(excerpt)]
    return "\n".join(lines)


def audience_label(audience: Audience) -> str:
    """An audience's name in the reader's language (a tag's name is data: “慢性病”标签人员)."""
    return t(TAGGED_PEOPLE, tag=audience.label) if audience.tagged else t(audience.label)


def draft_keyboard(broadcast: Broadcast, audiences: Sequence[Audience]) -> InlineKeyboardMarkup:
    """The audiences (two a row: a tag policy adds one per tag), then the draft's steps."""
    assert broadcast.id is not None
    ident = broadcast.id
    choices = [
        InlineKeyboardButton(
            text=("● " if a.key == broadcast.audience else "") + audience_label(a),
            callback_data=BroadcastAudienceCb(id=ident, audience=a.key).pack(),
        )
        for a in audiences
    ]
    emergency = t("🚨 Emergency: on") if broadcast.emergency else t("Emergency: off")

    def step(text: str, which: BroadcastStep) -> InlineKeyboardButton:
        return InlineKeyboardButton(
            text=text, callback_data=BroadcastCb(id=ident, step=which).pack()
        )

    return InlineKeyboardMarkup(
        inline_keyboard=[
            *(choices[n : n + 2] for n in range(0, len(choices), 2)),
            [
                step(emergency, BroadcastStep.EMERGENCY),
                step(t("👁 Preview"), BroadcastStep.PREVIEW),
            ],
            [step(t("✅ Send"), BroadcastStep.SEND), step(t("✖ Cancel"), BroadcastStep.CANCEL)],
        ]
    )
