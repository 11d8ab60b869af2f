"""Meetings (例会) as people read them: callback data, keyboards, texts, and the notifier.

:class:`TelegramMeetingNotifier` is the Telegram side of
:class:`~bot.services.meetings.MeetingNotifier`: it renders each message in the recipient's
language and queues it in the outbox with the due time, expiry and ``ref`` the service chose.
The organiser's card (``mt:<meeting>:sum:<organiser>``) is one message edited in place as
replies come in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import labels
from bot.i18n import ASIDE, N_, gettext_for, join_clauses, join_list, resolve_locale
from bot.services import outbox
from bot.services.meeting_times import Recurrence
from bot.services.meetings import (
    Attendance,
    InviteeGroup,
    MeetingMessage,
    MeetingNotice,
    ends_at,
)
from bot.settings import Settings
from bot.telegram.callbacks import CancelCb, PageNo, PickStep, RowId, StrictCallbackData
from bot.telegram.cancelling import cancel_only
from bot.telegram.render import bold, esc
from bot.telegram.replies import markup_json
from models import Grid, Meeting, Person, Rsvp, TicketCategory

Translate = Callable[..., str]  # gettext-like: (msgid, **params) -> str
MAX_NAMES_SHOWN = 40


# -- callback data -------------------------------------------------------------------------------


class MeetingAction(StrEnum):
    ATTEND = "a"
    DECLINE = "d"
    CHECK_IN = "c"
    OPEN = "o"
    MOVE = "m"
    CANCEL = "x"  # asks first
    CANCEL_YES = "y"
    CANCEL_SERIES = "s"  # this and every later occurrence; asks first
    CANCEL_SERIES_YES = "z"
    KEEP = "k"  # "no, do not cancel it"
    MINUTES = "n"
    PROBLEM = "p"
    ABSENT = "b"


class MeetingCb(CallbackData, prefix="mt"):
    """An action on one meeting (the service re-checks who may do it)."""

    action: MeetingAction
    id: RowId


class MeetingStart(StrEnum):
    QUARTERLY = "q"  # the quarterly grid meeting of DOMAIN.md §6, one tap
    OTHER = "o"


class MeetingStartCb(CallbackData, prefix="mk"):
    kind: MeetingStart


class InviteeCb(CallbackData, prefix="mi"):
    group: InviteeGroup


class Rhythm(StrEnum):
    ONCE = "once"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"


class RecurrenceCb(CallbackData, prefix="mr"):
    rhythm: Rhythm


class SetupStep(StrEnum):
    NO_PLACE = "np"
    CREATE = "ok"
    TIME = "tm"  # change the proposed time
    PLACE = "pl"  # change the proposed place


class SetupCb(CallbackData, prefix="ms"):
    step: SetupStep


class MeetingGridCb(StrictCallbackData, prefix="mw"):
    """/meeting: walk the grids one may organise in, then choose the meeting's grid (the
    service refuses, and audits, a grid outside one's scope)."""

    grid: RowId
    page: PageNo
    step: PickStep


class ProblemGridCb(CallbackData, prefix="mg"):
    """Where a problem raised at a meeting is: the meeting's grid or one just below."""

    meeting: RowId
    grid: RowId


class ProblemCategoryCb(CallbackData, prefix="mq"):
    category: TicketCategory


# -- labels --------------------------------------------------------------------------------------

WEEKDAYS = (
    N_("Mon"),
    N_("Tue"),
    N_("Wed"),
    N_("Thu"),
    N_("Fri"),
    N_("Sat"),
    N_("Sun"),
)
RHYTHM: dict[Rhythm, str] = {
    Rhythm.ONCE: N_("Only once"),
    Rhythm.WEEKLY: N_("Every week"),
    Rhythm.MONTHLY: N_("Every month"),
    Rhythm.QUARTERLY: N_("Every quarter"),
}
INVITEES: dict[InviteeGroup, str] = {
    InviteeGroup.WORKERS: N_("All grid workers under {grid}"),
    InviteeGroup.HEADS: N_("All grid heads under {grid}"),
    InviteeGroup.STAFF: N_("All workers and heads under {grid}"),
    InviteeGroup.NAMED: N_("People I name"),
}
ATTEND = N_("✅ I will attend")
DECLINE = N_("❌ I cannot attend")
CHECK_IN = N_("📍 Check in (签到)")
MOVE = N_("🔁 Move")
CANCEL = N_("🚫 Cancel meeting")
CANCEL_SERIES = N_("🚫 Cancel this and later ones")
MINUTES = N_("📝 Minutes")
PROBLEM = N_("⚠️ Problem → ticket")
ABSENT = N_("👥 Who was absent")
QUARTERLY_TITLE = N_("Quarterly grid meeting of {grid}")


def rhythm_of(recurrence: Recurrence | None) -> Rhythm:
    return Rhythm(recurrence.value) if recurrence else Rhythm.ONCE


def recurrence_of(rhythm: Rhythm) -> Recurrence | None:
    return None if rhythm == Rhythm.ONCE else Recurrence(rhythm.value)


def when_text(instant: datetime, tz: Any, t: Translate) -> str:
    local = instant.astimezone(tz)
    return t(
        "{date} ({weekday}) {time}",
        date=local.strftime("%Y-%m-%d"),
        weekday=t(WEEKDAYS[local.weekday()]),
        time=local.strftime("%H:%M"),
    )


def names(people: Sequence[Person], t: Translate) -> str:
    shown = [esc(p.name) for p in people[:MAX_NAMES_SHOWN]]
    if len(people) > MAX_NAMES_SHOWN:
        shown.append("…")
    return join_list(t, shown)


# -- texts ---------------------------------------------------------------------------------------


def meeting_lines(
    meeting: Meeting, t: Translate, tz: Any, *, grid_name: str, organiser_name: str
) -> list[str]:
    """Title, time, place, grid, organiser and rhythm: the part every message shares."""
    lines = [
        bold(meeting.title),
        t("🕒 When: {when}", when=when_text(meeting.starts_at, tz, t)),
    ]
    if meeting.place:
        lines.append(t("📍 Where: {place}", place=esc(meeting.place)))
    lines.append(t("Grid: {grid}", grid=esc(grid_name)))
    lines.append(t("Convened by: {name}", name=esc(organiser_name)))
    if meeting.recurrence:
        lines.append(t("Repeats: {rhythm}", rhythm=t(RHYTHM[Rhythm(meeting.recurrence)])))
    return lines


def answer_line(rsvp: Rsvp | None, t: Translate) -> str | None:
    if rsvp == Rsvp.ATTENDING:
        return t("Your answer: ✅ attending")
    if rsvp == Rsvp.DECLINED:
        return t("Your answer: ❌ cannot attend")
    return None


def invitation_text(
    meeting: Meeting,
    t: Translate,
    tz: Any,
    *,
    grid_name: str,
    organiser_name: str,
    rsvp: Rsvp | None = None,
) -> str:
    lines = [t("📅 You are invited to a meeting"), ""]
    lines += meeting_lines(meeting, t, tz, grid_name=grid_name, organiser_name=organiser_name)
    lines.append("")
    if meeting.cancelled_at is not None:
        lines.append(t("🚫 This meeting was cancelled."))
    else:
        lines.append(answer_line(rsvp, t) or t("Will you attend?"))
    return "\n".join(lines)


def rsvp_keyboard(
    meeting: Meeting, t: Translate, rsvp: Rsvp | None = None
) -> InlineKeyboardMarkup:
    """Attend / cannot attend (the one already chosen is left out, to change one's mind)."""
    buttons = []
    if rsvp != Rsvp.ATTENDING:
        buttons.append(_button(t(ATTEND), MeetingAction.ATTEND, meeting))
    if rsvp != Rsvp.DECLINED:
        buttons.append(_button(t(DECLINE), MeetingAction.DECLINE, meeting))
    return InlineKeyboardMarkup(inline_keyboard=[buttons])


def summary_text(
    meeting: Meeting,
    attendance: Attendance,
    t: Translate,
    tz: Any,
    *,
    grid_name: str,
    organiser_name: str,
) -> str:
    """The organiser's card: who answered what, and who checked in."""
    lines = [t("📋 Your meeting"), ""]
    lines += meeting_lines(meeting, t, tz, grid_name=grid_name, organiser_name=organiser_name)
    lines.append("")
    if meeting.cancelled_at is not None:
        lines.append(bold(t("🚫 This meeting was cancelled.")))
    lines.append(t("Invited: {count}", count=attendance.invited))
    if attendance.attending:
        lines.append(
            t(
                "✅ Attending ({count}): {names}",
                count=len(attendance.attending),
                names=names(attendance.attending, t),
            )
        )
    if attendance.declined:
        shown = join_clauses(
            t,
            (
                t(ASIDE, text=esc(person.name), aside=esc(reason))
                for person, reason in attendance.declined[:MAX_NAMES_SHOWN]
            ),
        )
        lines.append(
            t("❌ Cannot attend ({count}): {names}", count=len(attendance.declined), names=shown)
        )
    if attendance.pending:
        lines.append(
            t(
                "⏳ Not answered yet ({count}): {names}",
                count=len(attendance.pending),
                names=names(attendance.pending, t),
            )
        )
    if attendance.checked_in:
        lines.append(
            t(
                "📍 Checked in ({count}): {names}",
                count=len(attendance.checked_in),
                names=names(attendance.checked_in, t),
            )
        )
    return "\n".join(lines)


def summary_keyboard(meeting: Meeting, t: Translate, now: datetime) -> InlineKeyboardMarkup:
    """Before the start: move, cancel. From the start on: minutes, problems, absentees."""
    if meeting.cancelled_at is not None:
        return InlineKeyboardMarkup(inline_keyboard=[])
    if meeting.starts_at <= now:
        return after_keyboard(meeting, t)
    rows = [
        [
            _button(t(MOVE), MeetingAction.MOVE, meeting),
            _button(t(CANCEL), MeetingAction.CANCEL, meeting),
        ]
    ]
    if meeting.recurrence:
        rows.append([_button(t(CANCEL_SERIES), MeetingAction.CANCEL_SERIES, meeting)])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def after_keyboard(meeting: Meeting, t: Translate) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                _button(t(MINUTES), MeetingAction.MINUTES, meeting),
                _button(t(PROBLEM), MeetingAction.PROBLEM, meeting),
            ],
            [_button(t(ABSENT), MeetingAction.ABSENT, meeting)],
        ]
    )


def check_in_keyboard(meeting: Meeting, t: Translate) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[_button(t(CHECK_IN), MeetingAction.CHECK_IN, meeting)]]
    )


def confirm_cancel_keyboard(
    meeting: Meeting, t: Translate, *, series: bool
) -> InlineKeyboardMarkup:
    action = MeetingAction.CANCEL_SERIES_YES if series else MeetingAction.CANCEL_YES
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                _button(t("Yes, cancel it"), action, meeting),
                _button(t("No, keep it"), MeetingAction.KEEP, meeting),
            ]
        ]
    )


def _button(text: str, action: MeetingAction, meeting: Meeting) -> InlineKeyboardButton:
    return InlineKeyboardButton(
        text=text, callback_data=MeetingCb(action=action, id=meeting.id or 0).pack()
    )


def cancel_keyboard(t: Translate) -> InlineKeyboardMarkup:
    return cancel_only(t("Cancel"), CancelCb())


def proposal_keyboard(t: Translate) -> InlineKeyboardMarkup:
    """Under the proposed quarterly meeting: create it in one tap, or change what is not
    right."""

    def button(text: str, data: CallbackData) -> InlineKeyboardButton:
        return InlineKeyboardButton(text=text, callback_data=data.pack())

    return InlineKeyboardMarkup(
        inline_keyboard=[
            [button(t("✅ Create and invite"), SetupCb(step=SetupStep.CREATE))],
            [
                button(t("🕒 Another time"), SetupCb(step=SetupStep.TIME)),
                button(t("📍 Another place"), SetupCb(step=SetupStep.PLACE)),
            ],
            [
                button(
                    t("🏘 Another grid"),
                    MeetingGridCb(grid=0, page=0, step=PickStep.OPEN),
                ),
                button(t("✏️ Another meeting"), MeetingStartCb(kind=MeetingStart.OTHER)),
            ],
            [button(t("Cancel"), CancelCb())],
        ]
    )


def pack_meeting_grid(grid_id: int, page: int, step: PickStep) -> str:
    return MeetingGridCb(grid=grid_id, page=page, step=step).pack()


def place_keyboard(t: Translate) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=t("No place to give"),
                    callback_data=SetupCb(step=SetupStep.NO_PLACE).pack(),
                )
            ],
            [InlineKeyboardButton(text=t("Cancel"), callback_data=CancelCb().pack())],
        ]
    )


def invitees_keyboard(grid_name: str, t: Translate) -> InlineKeyboardMarkup:
    rows = [
        [
            InlineKeyboardButton(
                text=t(label, grid=grid_name), callback_data=InviteeCb(group=group).pack()
            )
        ]
        for group, label in INVITEES.items()
    ]
    rows.append([InlineKeyboardButton(text=t("Cancel"), callback_data=CancelCb().pack())])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def recurrence_keyboard(t: Translate) -> InlineKeyboardMarkup:
    buttons = [
        InlineKeyboardButton(text=t(label), callback_data=RecurrenceCb(rhythm=rhythm).pack())
        for rhythm, label in RHYTHM.items()
    ]
    return InlineKeyboardMarkup(inline_keyboard=[buttons[:2], buttons[2:]])


def confirm_keyboard(t: Translate) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=t("✅ Create and invite"),
                    callback_data=SetupCb(step=SetupStep.CREATE).pack(),
                ),
                InlineKeyboardButton(text=t("Cancel"), callback_data=CancelCb().pack()),
            ]
        ]
    )


def draft_text(
    t: Translate,
    tz: Any,
    *,
    title: str,
    starts_at: datetime,
    place: str,
    grid_name: str,
    invitees: str,
    rhythm: Rhythm,
) -> str:
    lines = [
        t("Please check the meeting:"),
        "",
        bold(title),
        t("🕒 When: {when}", when=when_text(starts_at, tz, t)),
    ]
    if place:
        lines.append(t("📍 Where: {place}", place=esc(place)))
    lines.append(t("Grid: {grid}", grid=esc(grid_name)))
    lines.append(t("Invited: {who}", who=invitees))
    lines.append(t("Repeats: {rhythm}", rhythm=t(RHYTHM[rhythm])))
    return "\n".join(lines)


def problem_grid_keyboard(meeting: Meeting, grids: Sequence[Grid]) -> InlineKeyboardMarkup:
    buttons = [
        InlineKeyboardButton(
            text=grid.name[:60],
            callback_data=ProblemGridCb(meeting=meeting.id or 0, grid=grid.id or 0).pack(),
        )
        for grid in grids
    ]
    return InlineKeyboardMarkup(
        inline_keyboard=[buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    )


def category_keyboard(t: Translate) -> InlineKeyboardMarkup:
    buttons = [
        InlineKeyboardButton(
            text=t(label), callback_data=ProblemCategoryCb(category=category).pack()
        )
        for category, label in labels.TICKET_CATEGORY.items()
    ]
    return InlineKeyboardMarkup(
        inline_keyboard=[buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    )


def absentees_text(
    meeting: Meeting, absent: Sequence[tuple[Person, Rsvp, str | None]], t: Translate
) -> str:
    if not absent:
        return t("Everyone invited to {title} checked in. 👍", title=esc(meeting.title))
    lines = [bold(t("Absent from {title} ({count}):", title=meeting.title, count=len(absent)))]
    for person, rsvp, reason in absent:
        if rsvp == Rsvp.DECLINED:
            why = t("said they could not come: {reason}", reason=esc(reason or "—"))
        elif rsvp == Rsvp.ATTENDING:
            why = t("said they would come, did not check in")
        else:
            why = t("never answered")
        lines.append(f"• {esc(person.name)} — {why}")
    return "\n".join(lines)


# -- the notifier --------------------------------------------------------------------------------

NOTICE_HEAD: dict[MeetingNotice, str] = {
    MeetingNotice.REMINDER: N_("⏰ Reminder: this meeting starts at {when}."),
    MeetingNotice.CHECK_IN: N_(
        "📍 The meeting is starting. When you are there, press the button to check in (签到)."
    ),
    MeetingNotice.MOVED: N_("🔁 This meeting has been moved. It was at {previous}."),
    MeetingNotice.CANCELLED: N_("🚫 This meeting has been cancelled."),
    MeetingNotice.ENDED: N_(
        "🏁 Your meeting has ended. Please record the minutes and the problems raised; each "
        "problem can become a ticket. You can also see who was absent."
    ),
}


class TelegramMeetingNotifier:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def __call__(
        self, session: AsyncSession, message: MeetingMessage, now: datetime
    ) -> None:
        person = message.recipient
        if person.telegram_id is None or not person.reachable or not person.active:
            return
        locale = resolve_locale(
            person.locale, person.telegram_language, self.settings.default_locale
        )

        def t(msgid: str, **params: Any) -> str:
            return gettext_for(locale, msgid, **params)

        text, keyboard = self.render(message, t, now)
        if message.edit and message.ref:
            outbox.enqueue(
                session,
                chat_id=person.telegram_id,
                method="editMessageText",
                payload={
                    "chat_id": person.telegram_id,
                    "text": text,
                    "parse_mode": "HTML",
                    "reply_markup": markup_json(keyboard) or {"inline_keyboard": []},
                },
                now=now,
                person_id=person.id,
                edit_ref=message.ref,
                urgent=True,
            )
            return
        outbox.send_text(
            session,
            chat_id=person.telegram_id,
            text=text,
            now=now,
            reply_markup=markup_json(keyboard),
            person_id=person.id,
            ref=message.ref,
            urgent=message.urgent,
            not_before=message.not_before,
            expires_at=message.expires_at,
        )

    def render(
        self, message: MeetingMessage, t: Translate, now: datetime
    ) -> tuple[str, InlineKeyboardMarkup | None]:
        meeting, tz = message.meeting, self.settings.tz
        grid_name, organiser_name = message.grid_name, message.organiser_name
        notice = message.notice
        if notice == MeetingNotice.INVITED:
            text = invitation_text(
                meeting, t, tz, grid_name=grid_name, organiser_name=organiser_name
            )
            return text, rsvp_keyboard(meeting, t)
        if notice == MeetingNotice.SUMMARY:
            text = summary_text(
                meeting,
                message.attendance or Attendance(),
                t,
                tz,
                grid_name=grid_name,
                organiser_name=organiser_name,
            )
            return text, summary_keyboard(meeting, t, now)
        params: dict[str, str] = {"when": when_text(meeting.starts_at, tz, t)}
        if message.previous_start is not None:
            params["previous"] = when_text(message.previous_start, tz, t)
        lines = [t(NOTICE_HEAD[notice], **params), ""]
        lines += meeting_lines(meeting, t, tz, grid_name=grid_name, organiser_name=organiser_name)
        keyboard: InlineKeyboardMarkup | None = None
        if notice == MeetingNotice.MOVED:
            lines += ["", answer_line(message.rsvp, t) or t("Will you attend?")]
            keyboard = rsvp_keyboard(meeting, t, message.rsvp)
        elif notice == MeetingNotice.CHECK_IN:
            keyboard = check_in_keyboard(meeting, t)
        elif notice == MeetingNotice.ENDED:
            lines.append(t("Ended at: {when}", when=when_text(ends_at(meeting), tz, t)))
            keyboard = after_keyboard(meeting, t)
        return "\n".join(lines), keyboard
