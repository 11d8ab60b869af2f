"""Tickets as people read them: the handler's card, the reporter's messages, lists."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot import labels
from bot.i18n import N_
from bot.routing.policy import ChainLink
from bot.telegram.callbacks import RateCb, TicketAction, TicketCb
from bot.telegram.render import bold, code, esc
from models import HandlingKind, Rating, Role, Ticket, TicketEvent, TicketState

Translate = Callable[..., str]  # gettext-like: (msgid, **params) -> str

OPEN_ACTIONS = (
    (TicketAction.ACCEPT, N_("✅ Accept")),
    (TicketAction.ESCALATE, N_("⬆️ Escalate")),
    (TicketAction.TRANSFER, N_("🏢 Transfer")),
    (TicketAction.DUPLICATE, N_("🔁 Duplicate")),
    (TicketAction.REJECT, N_("🚫 Reject")),
)
WORKING_ACTIONS = (
    (TicketAction.NOTE, N_("📝 Progress")),
    (TicketAction.ASK, N_("❓ Ask reporter")),
    (TicketAction.RESOLVE, N_("✔️ Resolved")),
    (TicketAction.ESCALATE, N_("⬆️ Escalate")),
    (TicketAction.TRANSFER, N_("🏢 Transfer")),
)
BUTTON_LABELS = [label for _, label in OPEN_ACTIONS + WORKING_ACTIONS]
RATINGS = (
    (Rating.SATISFIED, N_("😊 Satisfied")),
    (Rating.BASICALLY_SATISFIED, N_("🙂 Basically satisfied")),
    (Rating.UNSATISFIED, N_("😞 Not satisfied")),
)


def local_time(instant: datetime | None, tz: Any) -> str:
    return instant.astimezone(tz).strftime("%m-%d %H:%M") if instant else "—"


def card_text(
    ticket: Ticket,
    t: Translate,
    tz: Any,
    *,
    grid_name: str,
    reporter_name: str | None,
    holder: str | None,
    photos: int,
) -> str:
    state = TicketState(ticket.state)
    urgent = ticket.kind in {HandlingKind.URGENT, HandlingKind.MAJOR}
    head = ("🚨 " if urgent else "📋 ") + bold(t("Ticket {number}", number=ticket.number))
    lines = [
        head,
        t(
            "{category} · {kind}",
            category=t(labels.TICKET_CATEGORY[ticket.category]),
            kind=t(labels.HANDLING_KIND[HandlingKind(ticket.kind)]),
        ),
        t("Grid: {grid}", grid=esc(grid_name)),
        t("State: {state}", state=bold(t(labels.TICKET_STATE[state]))),
    ]
    if holder:
        lines.append(t("Handled by: {name}", name=esc(holder)))
    if state in {TicketState.DISPATCHED, TicketState.REOPENED, TicketState.TRANSFERRED}:
        lines.append(t("Accept by: {time}", time=local_time(ticket.accept_deadline, tz)))
    if state not in {
        TicketState.RESOLVED,
        TicketState.CLOSED,
        TicketState.REJECTED,
        TicketState.DUPLICATE,
    }:
        lines.append(t("Resolve by: {time}", time=local_time(ticket.resolve_deadline, tz)))
    if ticket.address:
        lines.append(t("Where: {place}", place=esc(ticket.address)))
    if ticket.latitude is not None and ticket.longitude is not None:
        lines.append(f"📍 {ticket.latitude:.5f}, {ticket.longitude:.5f}")
    if reporter_name:
        lines.append(t("Reported by: {name}", name=esc(reporter_name)))
    lines.append("")
    lines.append(esc(ticket.description))
    if photos:
        lines.append(t("📷 {count} photos", count=photos))
    return "\n".join(lines)


def card_keyboard(ticket: Ticket, t: Translate) -> InlineKeyboardMarkup | None:
    """The actions the card offers in the ticket's state (the service re-checks them)."""
    state = TicketState(ticket.state)
    actions: tuple[tuple[TicketAction, str], ...]
    if state in {TicketState.DISPATCHED, TicketState.REOPENED, TicketState.TRANSFERRED}:
        actions = OPEN_ACTIONS
    elif state in {TicketState.ACCEPTED, TicketState.IN_PROGRESS}:
        actions = WORKING_ACTIONS
    else:
        return None
    if ticket.owner_department_id is not None:
        actions = tuple(a for a in actions if a[0] != TicketAction.ESCALATE)
    buttons = [
        InlineKeyboardButton(
            text=t(label), callback_data=TicketCb(action=action, id=ticket.id or 0).pack()
        )
        for action, label in actions
    ]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    return InlineKeyboardMarkup(inline_keyboard=rows)


def rating_keyboard(ticket: Ticket, t: Translate) -> dict[str, Any]:
    rows = [
        [
            InlineKeyboardButton(
                text=t(label), callback_data=RateCb(id=ticket.id or 0, rating=rating).pack()
            )
        ]
        for rating, label in RATINGS
    ]
    return InlineKeyboardMarkup(inline_keyboard=rows).model_dump(mode="json", exclude_none=True)


def answer_keyboard(ticket: Ticket, t: Translate) -> dict[str, Any]:
    button = InlineKeyboardButton(
        text=t("✍️ Answer"),
        callback_data=TicketCb(action=TicketAction.ANSWER, id=ticket.id or 0).pack(),
    )
    return InlineKeyboardMarkup(inline_keyboard=[[button]]).model_dump(
        mode="json", exclude_none=True
    )


def link_label(link: ChainLink, grid_name: str, t: Translate) -> str:
    return f"{grid_name}{t(labels.ROLE[Role(link.role)])}"


EVENT_LABELS: dict[str, str] = {
    "submitted": N_("submitted"),
    "dispatched": N_("dispatched"),
    "accepted": N_("accepted"),
    "note": N_("progress note"),
    "asked": N_("asked the reporter"),
    "answered": N_("reporter answered"),
    "resolved": N_("resolved"),
    "closed": N_("closed"),
    "reopened": N_("reopened (redo)"),
    "escalated": N_("escalated"),
    "transferred": N_("transferred to a department"),
    "duplicate": N_("marked as a duplicate"),
    "rejected": N_("rejected"),
    "joined": N_("another resident reported the same"),
    "warned": N_("deadline warning"),
    "overdue": N_("overdue at the top"),
}


def history_text(
    ticket: Ticket, events: list[tuple[TicketEvent, str | None]], t: Translate, tz: Any
) -> str:
    lines = [
        bold(t("Ticket {number}", number=ticket.number)),
        t("State: {state}", state=t(labels.TICKET_STATE[TicketState(ticket.state)])),
        "",
    ]
    for event, name in events:
        label = t(EVENT_LABELS.get(event.action, event.action))
        who = f" · {esc(name)}" if name else ""
        note = f"：{esc(event.note)}" if event.note else ""
        lines.append(f"{code(local_time(event.at, tz))} {esc(label)}{who}{note}")
    return "\n".join(lines)
