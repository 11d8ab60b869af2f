"""Tickets as people read them: the handler's card, the reporter's messages, lists."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot import labels
from bot.i18n import LABELLED, N_, join_list
from bot.routing.policy import ChainLink
from bot.services.notice_board import PostedOutcome
from bot.services.phones import mask_phone
from bot.services.ticket_numbers import shown_number
from bot.services.tickets.classifying import KindChoices, KindOption, Reclassified
from bot.services.tickets.dispatching import DispatchChoices, Dispatched, TierChoice
from bot.telegram.callbacks import (
    AssistAddCb,
    CancelCb,
    ClassifyCb,
    ClassifyStep,
    DispatchCb,
    DispatchStep,
    RateCb,
    TicketAction,
    TicketCb,
    TicketPhotosCb,
)
from bot.telegram.render import bold, code, esc
from models import (
    OPEN_TICKET_STATES,
    HandlingKind,
    Rating,
    Role,
    Ticket,
    TicketEvent,
    TicketEventKind,
    TicketSource,
    TicketState,
)

ALBUM_SIZE = 10  # Telegram's most photos in one album (sendMediaGroup)

Translate = Callable[..., str]  # gettext-like: (msgid, **params) -> str

CLASSIFY_BUTTON = N_("🏷 Classify")
OPEN_ACTIONS = (
    (TicketAction.ACCEPT, N_("✅ Accept")),
    (TicketAction.CLASSIFY, CLASSIFY_BUTTON),
    (TicketAction.ESCALATE, N_("⬆️ Escalate")),
    (TicketAction.TRANSFER, N_("🏢 Transfer")),
    (TicketAction.DUPLICATE, N_("🔁 Duplicate")),
    (TicketAction.REJECT, N_("🚫 Reject")),
)
WORKING_ACTIONS = (
    (TicketAction.NOTE, N_("📝 Progress")),
    (TicketAction.ASK, N_("❓ Ask reporter")),
    (TicketAction.RESOLVE, N_("✔️ Resolved")),
    (TicketAction.CLASSIFY, CLASSIFY_BUTTON),
    (TicketAction.ESCALATE, N_("⬆️ Escalate")),
    (TicketAction.TRANSFER, N_("🏢 Transfer")),
)
# what the lead department (主办) may do besides: 退单 and 延期申请
DEPARTMENT_ACTIONS = (
    (TicketAction.RETURN, N_("↩️ Not ours (退单)")),
    (TicketAction.EXTEND, N_("⏳ More time (延期)")),
)
VERIFY_ACTIONS = (  # 核查: the verifier confirms on site or sends it back
    (TicketAction.VERIFY, N_("✅ Checked on site")),
    (TicketAction.SEND_BACK, N_("↩️ Send back")),
)
SUPERVISE_ACTIONS = (  # 督查: read-only, but they may urge (催办)
    (TicketAction.URGE, N_("📣 Urge")),
    (TicketAction.HISTORY, N_("📜 History")),
)
DISPATCH_BUTTON = N_("🔀 Send down / take up")
PHOTOS_BUTTON = N_("📷 See the photos ({count})")
BUTTON_LABELS = [
    label
    for _, label in OPEN_ACTIONS
    + WORKING_ACTIONS
    + DEPARTMENT_ACTIONS
    + VERIFY_ACTIONS
    + SUPERVISE_ACTIONS
] + [DISPATCH_BUTTON]
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
    follower: bool = False,
) -> str:
    """A ticket's card; a ``follower`` (who reported the same problem, joined to this one)
    sees how it goes, not who reported it, where, or what they wrote."""
    state = TicketState(ticket.state)
    urgent = ticket.kind in {HandlingKind.URGENT, HandlingKind.MAJOR}
    head = ("🚨 " if urgent else "📋 ") + bold(t("Ticket {number}", number=shown_number(ticket)))
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
    if follower:
        return "\n".join(lines)
    if ticket.source not in {TicketSource.TELEGRAM, None}:
        source = t(labels.TICKET_SOURCE[TicketSource(ticket.source)])
        if ticket.hotline_number:
            source += f" · {esc(ticket.hotline_number)}"
        lines.append(t("Source: {source}", source=source))
    if ticket.caller_name or ticket.caller_phone:
        lines.append(
            t(
                "Caller: {name} {phone}",
                name=esc(ticket.caller_name or "—"),
                phone=mask_phone(ticket.caller_phone) if ticket.caller_phone else "",
            ).strip()
        )
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
    complaint = complaint_line(ticket, t)
    if complaint:
        lines.append("")
        lines.append(complaint)
    return "\n".join(lines)


def complaint_line(ticket: Ticket, t: Translate) -> str | None:
    """What the reporter said when they rated the result unsatisfactory and the ticket was
    reopened (重办): their latest words, or that they were not satisfied; ``None`` for a
    ticket not being redone."""
    if ticket.reopen_count <= 0 or ticket.rating != Rating.UNSATISFIED:
        return None
    if ticket.rating_comment:
        return t("😞 The reporter is not satisfied: {text}", text=esc(ticket.rating_comment))
    return t("😞 The reporter is not satisfied with the result.")


def card_keyboard(
    ticket: Ticket, t: Translate, *, dispatch: bool = False, photos: int = 0
) -> InlineKeyboardMarkup | None:
    """The actions the card offers in the ticket's state (the service re-checks them);
    ``dispatch`` adds 下派/上收 for a reader who holds it (a centre operator, an admin);
    ``photos`` (the number filed with the report) adds a button that sends them, in any
    state."""
    state = TicketState(ticket.state)
    actions: tuple[tuple[TicketAction, str], ...]
    if state in {TicketState.DISPATCHED, TicketState.REOPENED, TicketState.TRANSFERRED}:
        actions = OPEN_ACTIONS
    elif state in {TicketState.ACCEPTED, TicketState.IN_PROGRESS}:
        actions = WORKING_ACTIONS
    elif state == TicketState.VERIFYING:
        actions = VERIFY_ACTIONS
        dispatch = False
    else:
        actions = ()
        dispatch = False
    if not actions and not photos:
        return None
    if ticket.owner_department_id is not None and actions:
        actions = tuple(a for a in actions if a[0] != TicketAction.ESCALATE)
        actions += DEPARTMENT_ACTIONS
    buttons = [
        InlineKeyboardButton(
            text=t(label), callback_data=TicketCb(action=action, id=ticket.id or 0).pack()
        )
        for action, label in actions
    ]
    if dispatch:
        buttons.append(
            InlineKeyboardButton(
                text=t(DISPATCH_BUTTON),
                callback_data=TicketCb(action=TicketAction.DISPATCH, id=ticket.id or 0).pack(),
            )
        )
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    if photos:
        see = TicketPhotosCb(id=ticket.id or 0).pack()
        rows.append([InlineKeyboardButton(text=t(PHOTOS_BUTTON, count=photos), callback_data=see)])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def supervise_keyboard(ticket: Ticket, t: Translate) -> InlineKeyboardMarkup:
    """A supervisor's card (督查): read-only, with 催办 while the ticket is open."""
    open_ = TicketState(ticket.state) in OPEN_TICKET_STATES
    actions: tuple[tuple[TicketAction, str], ...] = SUPERVISE_ACTIONS[0 if open_ else 1 :]
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=t(label), callback_data=TicketCb(action=action, id=ticket.id or 0).pack()
                )
                for action, label in actions
            ]
        ]
    )


def photo_batches(file_ids: list[str]) -> list[list[str]]:
    """The photos in albums of at most :data:`ALBUM_SIZE`, as even as can be (11 go as 6 and
    5, never as 10 and a lone one); a single photo is a batch of one (sent by itself)."""
    if not file_ids:
        return []
    count = -(-len(file_ids) // ALBUM_SIZE)
    size, extra = divmod(len(file_ids), count)
    batches, start = [], 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        batches.append(file_ids[start:end])
        start = end
    return batches


def photos_caption(ticket: Ticket, t: Translate, batch: int, batches: int) -> str:
    """Under the first photo of each album: whose photos these are."""
    if batches == 1:
        return t(
            "Photos of ticket {number}, as the reporter sent them", number=shown_number(ticket)
        )
    return t(
        "Photos of ticket {number}, as the reporter sent them ({part} of {parts})",
        number=shown_number(ticket),
        part=batch,
        parts=batches,
    )


# --- 下派 / 上收 ------------------------------------------------------------------------------

NAMED_HOLDERS = 2  # up to this many holders are named on a tier's button, more are counted


def tier_label(choice: TierChoice, t: Translate) -> str:
    """A tier as the centre reads it: "杏林社区 · 网格长（张三）", "第一网格 · 网格员 ×3"."""
    values = {"grid": choice.grid_name, "role": t(labels.ROLE[Role(choice.link.role)])}
    if not choice.holders:
        return t("{grid} · {role} (nobody yet)", **values)
    if len(choice.holders) > NAMED_HOLDERS:
        return t("{grid} · {role} ×{count}", count=len(choice.holders), **values)
    names = join_list(t, (person.name for person in choice.holders))
    return t("{grid} · {role} ({names})", names=names, **values)


def dispatch_text(choices: DispatchChoices, t: Translate) -> str:
    """What the centre reads above the tiers: where the ticket is now."""
    current = choices.current
    if choices.department is not None:
        where = choices.department.name
    elif current is not None:
        where = tier_label(current, t)
    else:
        where = "—"
    return t(
        "Ticket {number} is now with {owner}.\nSend it down (下派) or take it up (上收) to:",
        number=code(shown_number(choices.ticket)),
        owner=esc(where),
    )


def dispatch_keyboard(choices: DispatchChoices, t: Translate) -> InlineKeyboardMarkup:
    """One button per tier it is not at (⬇️ below where it is, ⬆️ above), the departments
    (转办), one more assisting department (协办) when it is with a lead, and Cancel."""
    ticket_id = choices.ticket.id or 0
    current = choices.current
    rows: list[list[InlineKeyboardButton]] = []
    for choice in choices.tiers:
        if choice.current:
            continue
        if current is None:  # with a department: only the top (the last link) is up
            up = choice is choices.tiers[-1]
        else:
            up = (choice.link.rank or (0, 0)) > (current.link.rank or (0, 0))
        data = DispatchCb(
            id=ticket_id, tier=choice.link.tier, role=choice.link.role, step=DispatchStep.ASK
        )
        arrow = "⬆️ " if up else "⬇️ "
        rows.append(
            [InlineKeyboardButton(text=arrow + tier_label(choice, t), callback_data=data.pack())]
        )
    transfer = TicketCb(action=TicketAction.TRANSFER, id=ticket_id).pack()
    rows.append([InlineKeyboardButton(text=t("🏢 Transfer"), callback_data=transfer)])
    if choices.ticket.owner_department_id is not None:  # with a lead: ask one more to assist
        assist = AssistAddCb(id=ticket_id).pack()
        rows.append(
            [InlineKeyboardButton(text=t("🤝 Add assisting (协办)"), callback_data=assist)]
        )
    rows.append([InlineKeyboardButton(text=t("Cancel"), callback_data=CancelCb().pack())])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def dispatch_reason_keyboard(data: DispatchCb, t: Translate) -> InlineKeyboardMarkup:
    """Under the question "why?": send it without a reason, or cancel."""
    go = DispatchCb(id=data.id, tier=data.tier, role=data.role, step=DispatchStep.GO)
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=t("Send without a reason"), callback_data=go.pack())],
            [InlineKeyboardButton(text=t("Cancel"), callback_data=CancelCb().pack())],
        ]
    )


def dispatched_text(result: Dispatched, t: Translate) -> str:
    """The centre's answer: who has the ticket now."""
    message = (
        N_("Ticket {number} was taken up (已上收); it is now with {owner}.")
        if result.direction == "up"
        else N_("Ticket {number} was sent down (已下派); it is now with {owner}.")
    )
    return t(
        message, number=code(shown_number(result.ticket)), owner=esc(tier_label(result.to, t))
    )


# --- 定性 ------------------------------------------------------------------------------------


def owner_label(link: ChainLink, grid_name: str, t: Translate) -> str:
    """Who a ticket goes to, as a sentence names it: "杏林社区 网格长"."""
    return t("{grid} {role}", grid=grid_name, role=t(labels.ROLE[Role(link.role)]))


def kinds_text(choices: KindChoices, t: Translate) -> str:
    """What a handler reads above the kinds: the kind now, and what each other kind means and
    where it would send the ticket."""
    lines = [
        t(
            "Ticket {number} is now classified as {kind}. Classify it (定性) as:",
            number=code(shown_number(choices.ticket)),
            kind=bold(t(labels.HANDLING_KIND[choices.current])),
        ),
        "",
    ]
    for option in choices.options:
        lines.append(
            t(
                "• {kind}: {meaning}. Goes to {owner}.",
                kind=bold(t(labels.HANDLING_KIND[option.kind])),
                meaning=t(labels.HANDLING_KIND_HELP[option.kind]),
                owner=esc(_where(option, t)),
            )
        )
    return "\n".join(lines)


def kinds_keyboard(choices: KindChoices, t: Translate) -> InlineKeyboardMarkup:
    """One button per other kind, then Cancel."""
    ticket_id = choices.ticket.id or 0
    rows = [
        [
            InlineKeyboardButton(
                text=t(labels.HANDLING_KIND[option.kind]),
                callback_data=ClassifyCb(
                    id=ticket_id, kind=option.kind, step=ClassifyStep.ASK
                ).pack(),
            )
        ]
        for option in choices.options
    ]
    rows.append([InlineKeyboardButton(text=t("Cancel"), callback_data=CancelCb().pack())])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def classify_question(number: str, option: KindOption, t: Translate) -> str:
    """Asked once a kind is chosen: why, and where it will go."""
    return t(
        "Why is ticket {number} {kind}? It will go to {owner}. Write a short reason, or "
        "classify it without one.",
        number=code(number),
        kind=bold(t(labels.HANDLING_KIND[option.kind])),
        owner=esc(_where(option, t)),
    )


def classify_reason_keyboard(data: ClassifyCb, t: Translate) -> InlineKeyboardMarkup:
    """Under the question "why?": classify it without a reason, or cancel."""
    go = ClassifyCb(id=data.id, kind=data.kind, step=ClassifyStep.GO)
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=t("Classify without a reason"), callback_data=go.pack())],
            [InlineKeyboardButton(text=t("Cancel"), callback_data=CancelCb().pack())],
        ]
    )


def classified_text(result: Reclassified, t: Translate) -> str:
    """The handler's answer: the new kind, and who has the ticket now."""
    message = (
        N_("Ticket {number} is classified as {kind} (已定性); it is now with {owner}.")
        if result.moved
        else N_("Ticket {number} is classified as {kind} (已定性); it stays with {owner}.")
    )
    return t(
        message,
        number=code(shown_number(result.ticket)),
        kind=bold(t(labels.HANDLING_KIND[result.to.kind])),
        owner=esc(_where(result.to, t)),
    )


def _where(option: KindOption, t: Translate) -> str:
    return owner_label(option.link, option.grid_name, t)


# --- 公示 ------------------------------------------------------------------------------------


def posted_outcomes_text(outcomes: list[PostedOutcome], t: Translate, tz: Any) -> str:
    """The outcomes on a grid's notice board (公示), as residents read them in /mygrid."""
    lines = ["📢 " + bold(t("Public notice (公示)"))]
    for outcome in outcomes:
        lines.append("")
        lines.append(
            t(
                "{number} · {category} · {kind} · {grid}",
                number=code(outcome.number),
                category=esc(t(labels.TICKET_CATEGORY[outcome.category])),
                kind=esc(t(labels.HANDLING_KIND[outcome.kind])),
                grid=esc(outcome.grid_name),
            )
        )
        lines.append(t("Outcome: {text}", text=esc(outcome.text)))
        lines.append(
            t(
                "Posted {posted}, on the board until {until}.",
                posted=local_time(outcome.posted_at, tz),
                until=local_time(outcome.until, tz),
            )
        )
    return "\n".join(lines)


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


# how each kind of ticket event reads in the history (办理记录); a test walks every kind
EVENT_LABELS: dict[TicketEventKind, str] = {
    TicketEventKind.SUBMITTED: N_("submitted"),
    TicketEventKind.DISPATCHED: N_("dispatched"),
    TicketEventKind.ACCEPTED: N_("accepted"),
    TicketEventKind.NOTE: N_("progress note"),
    TicketEventKind.ASKED: N_("asked the reporter"),
    TicketEventKind.ANSWERED: N_("reporter answered"),
    TicketEventKind.RESOLVED: N_("resolved"),
    TicketEventKind.CLOSED: N_("closed"),
    TicketEventKind.REOPENED: N_("reopened (redo)"),
    TicketEventKind.ESCALATED: N_("escalated"),
    TicketEventKind.TRANSFERRED: N_("transferred to a department"),
    TicketEventKind.DUPLICATE: N_("marked as a duplicate"),
    TicketEventKind.REJECTED: N_("rejected"),
    TicketEventKind.JOINED: N_("another resident reported the same"),
    TicketEventKind.WARNED: N_("deadline warning"),
    TicketEventKind.OVERDUE: N_("overdue at the top"),
    TicketEventKind.RECLASSIFIED: N_("classified (定性)"),
    TicketEventKind.PUBLIC_NOTICE: N_("outcome posted on the notice board (公示)"),
    TicketEventKind.RATING_COMMENT: N_("reporter's comment on the result"),
    TicketEventKind.RETURN_VISIT_DUE: N_("return visit (回访) due"),
    TicketEventKind.RETURNED: N_("returned by the department (退单)"),
    TicketEventKind.EXTENSION_ASKED: N_("more time asked (延期申请)"),
    TicketEventKind.EXTENSION_APPROVED: N_("more time approved; new deadline"),
    TicketEventKind.EXTENSION_REFUSED: N_("more time refused"),
    TicketEventKind.ASSIST_ASKED: N_("assisting department asked (协办)"),
    TicketEventKind.ASSIST_ANSWERED: N_("assisting department answered"),
    TicketEventKind.VERIFIED: N_("checked on site (核查通过)"),
    TicketEventKind.SENT_BACK: N_("sent back after the on-site check"),
    TicketEventKind.URGED: N_("urged by a supervisor (催办)"),
    TicketEventKind.REMINDED: N_("reminded: nobody had acted on it for a working day"),
}
# an event of a kind this version does not know (written by a newer one): never its raw key
OTHER_EVENT_LABEL = N_("other change")
_EVENT_LABEL_BY_ACTION = {kind.value: label for kind, label in EVENT_LABELS.items()}
RECLASSIFIED_LABEL = N_("classified as {kind} (定性)")


KIND_VALUES = frozenset(kind.value for kind in HandlingKind)
DISPATCH_EVENT_LABELS: dict[str, str] = {
    "down": N_("sent down by the centre (下派)"),
    "up": N_("taken up by the centre (上收)"),
}


def history_text(
    ticket: Ticket,
    events: list[tuple[TicketEvent, str | None]],
    t: Translate,
    tz: Any,
    *,
    follower: bool = False,
) -> str:
    """A ticket's events; a ``follower`` sees what happened and when, not who or what was
    written (see :func:`card_text`)."""
    lines = [
        bold(t("Ticket {number}", number=shown_number(ticket))),
        t("State: {state}", state=t(labels.TICKET_STATE[TicketState(ticket.state)])),
        "",
    ]
    for event, name in events:
        label = t(_EVENT_LABEL_BY_ACTION.get(event.action, OTHER_EVENT_LABEL))
        if event.action == "dispatched" and event.data.get("direction") in DISPATCH_EVENT_LABELS:
            label = t(DISPATCH_EVENT_LABELS[event.data["direction"]])
        if event.action == "reclassified" and event.data.get("to_kind") in KIND_VALUES:
            kind = HandlingKind(event.data["to_kind"])
            label = t(RECLASSIFIED_LABEL, kind=t(labels.HANDLING_KIND[kind]))
        entry = esc(label) + (f" · {esc(name)}" if name and not follower else "")
        if event.note and not follower:
            entry = t(LABELLED, label=entry, text=esc(event.note))
        lines.append(f"{code(local_time(event.at, tz))} {entry}")
    return "\n".join(lines)
