"""Meetings (例会): /meeting to convene one, /meetings to see one's own, and the buttons on
invitations, check-in messages and the organiser's card.

/meeting: the quarterly grid meeting of one's grid, proposed for the next working day at the
usual time and place and created with one tap (or its time, place or grid changed first), or
another meeting (title → time → place → who → how often → confirm). The conversation is FSM
state in the database; ``/cancel`` or a Cancel button leaves it. The diagram is in
``docs/meetings.md``. Typed refusals (a time that cannot be read, a past time) propagate to
the error router, which answers in the person's language and keeps the step.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _

from bot.errors import NotAllowed
from bot.i18n import N_, join_list
from bot.services import grids, meeting_minutes, meeting_times, meetings
from bot.services.actor import Actor
from bot.services.meetings import InviteeGroup, MeetingDraft
from bot.services.permissions import Action
from bot.services.ticket_numbers import shown_number
from bot.settings import Settings
from bot.telegram.admin_views import grid_picker_keyboard, grid_picker_text
from bot.telegram.callbacks import PickStep
from bot.telegram.i18n import t
from bot.telegram.meeting_views import (
    INVITEES,
    QUARTERLY_TITLE,
    InviteeCb,
    MeetingAction,
    MeetingCb,
    MeetingGridCb,
    MeetingStart,
    MeetingStartCb,
    ProblemCategoryCb,
    ProblemGridCb,
    RecurrenceCb,
    Rhythm,
    SetupCb,
    SetupStep,
    TelegramMeetingNotifier,
    absentees_text,
    after_keyboard,
    answer_line,
    cancel_keyboard,
    category_keyboard,
    confirm_cancel_keyboard,
    confirm_keyboard,
    draft_text,
    invitation_text,
    invitees_keyboard,
    meeting_lines,
    pack_meeting_grid,
    place_keyboard,
    problem_grid_keyboard,
    proposal_keyboard,
    recurrence_keyboard,
    recurrence_of,
    rsvp_keyboard,
    summary_keyboard,
    summary_text,
    when_text,
)
from bot.telegram.render import bold, code, esc
from bot.telegram.replies import Replier, pressed
from models import Grid, Meeting, Rsvp, TicketCategory

OUT_OF_DATE = N_("This button is out of date. Send /start to begin again.")


class NewMeeting(StatesGroup):
    """The steps of /meeting."""

    kind = State()
    title = State()
    time = State()
    place = State()
    invitees = State()
    names = State()
    recurrence = State()
    confirm = State()


class MeetingInput(StatesGroup):
    """Words typed about an existing meeting."""

    reason = State()  # why one cannot attend
    move_time = State()
    minutes = State()
    problem = State()


TIME_PROMPT = N_(
    "When does it start? Write the date and time, for example 2026-03-20 14:30, "
    "3月20日 14:30 or 03-20 14:30."
)


# -- /meeting ------------------------------------------------------------------------------------


async def meeting_command(
    message: Message,
    command: CommandObject,
    reply: Replier,
    actor: Actor,
    state: FSMContext,
    settings: Settings,
) -> None:
    """The quarterly grid meeting, proposed ready to create: one tap, or change a part."""
    named = await grids.find_grid(actor.session, command.args) if command.args else None
    proposal = await meetings.propose_quarterly(
        actor.session, actor.who, actor.roles, actor.now, settings.tz, named
    )
    await state.clear()
    await _propose(state, proposal.grid, proposal.starts_at, proposal.place)
    await _confirm(reply, state, settings.tz)


async def _propose(state: FSMContext, grid: Grid, starts_at: datetime, place: str) -> None:
    await state.update_data(
        grid_id=grid.id,
        grid_name=grid.name,
        title=t(QUARTERLY_TITLE, grid=grid.name),
        invitees=InviteeGroup.WORKERS.value,
        rhythm=Rhythm.QUARTERLY.value,
        starts_at=starts_at.isoformat(),
        place=place,
        quick=True,
    )


async def kind_chosen(
    query: CallbackQuery,
    callback_data: MeetingStartCb,
    reply: Replier,
    actor: Actor,
    state: FSMContext,
    settings: Settings,
) -> None:
    if callback_data.kind == MeetingStart.QUARTERLY:  # a button from before the one-tap card
        data = await state.get_data()
        grid = await actor.session.get(Grid, data.get("grid_id") or 0)
        proposal = await meetings.propose_quarterly(
            actor.session, actor.who, actor.roles, actor.now, settings.tz, grid
        )
        await query.answer()
        await _propose(state, proposal.grid, proposal.starts_at, proposal.place)
        await _confirm(reply, state, settings.tz)
        return
    await query.answer()
    await state.update_data(quick=False, place="", title="")
    await state.set_state(NewMeeting.title)
    reply.text(_("What is the meeting called?"), cancel_keyboard(t))


async def change_pressed(
    query: CallbackQuery, callback_data: SetupCb, reply: Replier, state: FSMContext
) -> None:
    """🕒 another time / 📍 another place: ask for it, then back to the card."""
    await query.answer()
    await state.update_data(editing=True)
    if callback_data.step == SetupStep.TIME:
        await state.set_state(NewMeeting.time)
        reply.text(_(TIME_PROMPT), cancel_keyboard(t))
    else:
        await state.set_state(NewMeeting.place)
        reply.text(_("Where is it? Write the place, or press the button."), place_keyboard(t))


async def meeting_grid_pressed(
    query: CallbackQuery,
    callback_data: MeetingGridCb,
    reply: Replier,
    actor: Actor,
    state: FSMContext,
    settings: Settings,
) -> None:
    """🏘 another grid: one level of the grids one may organise in, or the grid chosen."""
    message_id = pressed(query)
    if callback_data.step == PickStep.OPEN:
        choices = await grids.grid_choices(
            actor.session,
            actor.who,
            actor.roles,
            Action.ORGANISE,
            actor.now,
            parent_id=callback_data.grid,
            page=callback_data.page,
        )
        await query.answer()
        text = esc(grid_picker_text(_("Which grid is the meeting for?"), choices))
        keyboard = grid_picker_keyboard(choices, pack_meeting_grid)
        if message_id is not None:
            reply.edit(message_id, text, keyboard)
        else:
            reply.text(text, keyboard)
        return
    chosen = await actor.session.get(Grid, callback_data.grid)
    if chosen is None:
        await query.answer(_(OUT_OF_DATE))
        return
    grid = await meetings.organisable_grid(
        actor.session, actor.who, actor.roles, actor.now, chosen
    )
    await query.answer()
    data = await state.get_data()
    update: dict[str, Any] = {"grid_id": grid.id, "grid_name": grid.name}
    if data.get("quick"):
        update["title"] = t(QUARTERLY_TITLE, grid=grid.name)
    await state.update_data(**update)
    await _confirm(reply, state, settings.tz, message_id)


async def title_typed(message: Message, reply: Replier, state: FSMContext) -> None:
    await state.update_data(title=meeting_times.clean_title(message.text))
    await state.set_state(NewMeeting.time)
    reply.text(_(TIME_PROMPT), cancel_keyboard(t))


async def time_typed(
    message: Message, reply: Replier, state: FSMContext, settings: Settings, actor: Actor
) -> None:
    starts_at = meeting_times.parse_meeting_time(message.text or "", now=actor.now, tz=settings.tz)
    await state.update_data(starts_at=starts_at.isoformat())
    if (await state.get_data()).get("editing"):
        await state.update_data(editing=False)
        await _confirm(reply, state, settings.tz)
        return
    await state.set_state(NewMeeting.place)
    reply.text(
        _("{when}. Where is it? Write the place, or press the button.").format(
            when=when_text(starts_at, settings.tz, t)
        ),
        place_keyboard(t),
    )


async def place_typed(
    message: Message, reply: Replier, state: FSMContext, settings: Settings
) -> None:
    await state.update_data(place=meeting_times.clean_place(message.text))
    await _after_place(reply, state, settings)


async def no_place(
    query: CallbackQuery, reply: Replier, state: FSMContext, settings: Settings
) -> None:
    await query.answer()
    await state.update_data(place="")
    await _after_place(reply, state, settings)


async def _after_place(reply: Replier, state: FSMContext, settings: Settings) -> None:
    data = await state.get_data()
    if data.get("quick") or data.get("editing"):
        await state.update_data(editing=False)
        await _confirm(reply, state, settings.tz)
        return
    await state.set_state(NewMeeting.invitees)
    reply.text(_("Who is invited?"), invitees_keyboard(data["grid_name"], t))


async def invitees_chosen(
    query: CallbackQuery,
    callback_data: InviteeCb,
    reply: Replier,
    state: FSMContext,
) -> None:
    await query.answer()
    if callback_data.group == InviteeGroup.NAMED:
        await state.set_state(NewMeeting.names)
        reply.text(
            _(
                "Write the names (or phone numbers) of the people to invite, separated by "
                "commas or 、:"
            ),
            cancel_keyboard(t),
        )
        return
    await state.update_data(invitees=callback_data.group.value)
    await _ask_recurrence(reply, state)


async def names_typed(message: Message, reply: Replier, actor: Actor, state: FSMContext) -> None:
    grid = await actor.session.get(Grid, (await state.get_data())["grid_id"])
    if grid is None:
        await state.clear()
        reply.text(_(OUT_OF_DATE))
        return
    found = await meetings.find_named(actor.session, grid, message.text or "")
    await state.update_data(
        invitees=InviteeGroup.NAMED.value,
        named_ids=[p.id for p in found],
        named_names=join_list(_, (p.name for p in found)),
    )
    await _ask_recurrence(reply, state)


async def _ask_recurrence(reply: Replier, state: FSMContext) -> None:
    await state.set_state(NewMeeting.recurrence)
    reply.text(_("Does it repeat?"), recurrence_keyboard(t))


async def recurrence_chosen(
    query: CallbackQuery,
    callback_data: RecurrenceCb,
    reply: Replier,
    state: FSMContext,
    settings: Settings,
) -> None:
    await query.answer()
    await state.update_data(rhythm=callback_data.rhythm.value)
    await _confirm(reply, state, settings.tz)


async def _confirm(
    reply: Replier, state: FSMContext, tz: tzinfo, message_id: int | None = None
) -> None:
    """The meeting as it stands, to create with one tap (the quarterly one can still be
    changed part by part)."""
    data = await state.get_data()
    group = InviteeGroup(data["invitees"])
    who = (
        esc(data.get("named_names", ""))
        if group == InviteeGroup.NAMED
        else t(INVITEES[group], grid=esc(data["grid_name"]))
    )
    await state.set_state(NewMeeting.confirm)
    text = draft_text(
        t,
        tz,
        title=data["title"],
        starts_at=datetime.fromisoformat(data["starts_at"]),
        place=data.get("place", ""),
        grid_name=data["grid_name"],
        invitees=who,
        rhythm=Rhythm(data.get("rhythm", Rhythm.ONCE.value)),
    )
    keyboard = proposal_keyboard(t) if data.get("quick") else confirm_keyboard(t)
    if message_id is not None:
        reply.edit(message_id, text, keyboard)
    else:
        reply.text(text, keyboard)


async def create_pressed(
    query: CallbackQuery, reply: Replier, actor: Actor, state: FSMContext, settings: Settings
) -> None:
    data = await state.get_data()
    draft = MeetingDraft(
        grid_id=int(data["grid_id"]),
        title=data["title"],
        starts_at=datetime.fromisoformat(data["starts_at"]),
        place=data.get("place", ""),
        invitees=InviteeGroup(data["invitees"]),
        named_ids=tuple(int(i) for i in data.get("named_ids", [])),
        recurrence=recurrence_of(Rhythm(data.get("rhythm", Rhythm.ONCE.value))),
    )
    created = await meetings.create_meeting(
        actor.session,
        TelegramMeetingNotifier(settings),
        organiser=actor.who,
        roles=actor.roles,
        draft=draft,
        settings=settings,
        now=actor.now,
    )
    await state.clear()
    invited = len(await meetings.invites_of(actor.session, created[0].id or 0))
    await query.answer(_("Created."))
    if isinstance(query.message, Message):
        reply.edit(query.message.message_id, bold(_("Meeting created.")))
    text = _("{count} people are invited; their answers will appear on your meeting card.")
    lines = [text.format(count=invited)]
    if len(created) > 1:
        lines.append(
            _(
                "The next {count} meetings of the series are planned too; each one's "
                "invitation goes out when the one before it starts."
            ).format(count=len(created) - 1)
        )
    reply.text("\n".join(lines))


# -- buttons on meetings ------------------------------------------------------------------


async def meeting_pressed(
    query: CallbackQuery,
    callback_data: MeetingCb,
    reply: Replier,
    actor: Actor,
    state: FSMContext,
    settings: Settings,
) -> None:
    action, meeting_id = callback_data.action, callback_data.id
    notifier = TelegramMeetingNotifier(settings)
    message_id = pressed(query)
    if action == MeetingAction.ATTEND:
        await meetings.rsvp(
            actor.session,
            notifier,
            person=actor.who,
            meeting_id=meeting_id,
            attending=True,
            now=actor.now,
        )
        await query.answer(_("Thank you. The organiser can see your answer."))
        await _show_answer(reply, actor, meeting_id, message_id, Rsvp.ATTENDING, settings)
        return
    if action == MeetingAction.DECLINE:
        meeting = await meetings.answerable(actor.session, actor.who, meeting_id, actor.now)
        await query.answer()
        await state.set_state(MeetingInput.reason)
        await state.update_data(meeting_id=meeting_id, message_id=message_id)
        reply.text(
            _("Why can you not attend {title}? The organiser will read this.").format(
                title=bold(meeting.title)
            ),
            cancel_keyboard(t),
        )
        return
    if action == MeetingAction.CHECK_IN:
        invite = await meetings.check_in(
            actor.session,
            person=actor.who,
            meeting_id=meeting_id,
            settings=settings,
            now=actor.now,
        )
        checked = (invite.checked_in_at or actor.now).astimezone(settings.tz).strftime("%H:%M")
        await query.answer(_("Checked in at {time}. Thank you!").format(time=checked))
        if message_id is not None:
            meeting = await meetings.load(actor.session, meeting_id)
            grid, organiser = await meetings.facts(actor.session, meeting)
            lines = meeting_lines(
                meeting, t, settings.tz, grid_name=grid.name, organiser_name=organiser.name
            )
            lines += ["", _("✅ Checked in at {time}.").format(time=checked)]
            reply.edit(message_id, "\n".join(lines))
        return
    if action == MeetingAction.KEEP:
        await query.answer()
        if message_id is not None:
            reply.edit(message_id, _("The meeting stays as it is."))
        return
    if action == MeetingAction.OPEN:
        await query.answer()
        await _open_meeting(reply, actor, meeting_id, settings)
        return
    await _organiser_pressed(query, callback_data, reply, actor, state, settings)


async def _organiser_pressed(
    query: CallbackQuery,
    callback_data: MeetingCb,
    reply: Replier,
    actor: Actor,
    state: FSMContext,
    settings: Settings,
) -> None:
    action, meeting_id = callback_data.action, callback_data.id
    message_id = pressed(query)
    meeting = await meetings.managed(actor.session, actor.who, actor.roles, meeting_id, actor.now)
    title = bold(meeting.title)
    if action in {MeetingAction.CANCEL_YES, MeetingAction.CANCEL_SERIES_YES}:
        cancelled = await meetings.cancel_meeting(
            actor.session,
            TelegramMeetingNotifier(settings),
            actor=actor.who,
            roles=actor.roles,
            meeting_id=meeting_id,
            now=actor.now,
            following=action == MeetingAction.CANCEL_SERIES_YES,
        )
        await query.answer(_("Cancelled."))
        text = _("{count} meeting(s) cancelled; everyone invited has been told.").format(
            count=len(cancelled)
        )
        if message_id is not None:
            reply.edit(message_id, text)
        else:
            reply.text(text)
        return
    if action in {MeetingAction.MOVE, MeetingAction.CANCEL, MeetingAction.CANCEL_SERIES}:
        meetings.ensure_open(meeting, actor.now)
        await query.answer()
        if action == MeetingAction.MOVE:
            await state.set_state(MeetingInput.move_time)
            await state.update_data(meeting_id=meeting_id)
            reply.text(
                _("When should {title} start instead?").format(title=title)
                + "\n"
                + _(TIME_PROMPT),
                cancel_keyboard(t),
            )
            return
        series = action == MeetingAction.CANCEL_SERIES
        question = (
            _("Cancel {title} on {when} and every later meeting of the series?")
            if series
            else _("Cancel {title} on {when}?")
        )
        reply.text(
            question.format(title=title, when=when_text(meeting.starts_at, settings.tz, t))
            + "\n"
            + _("Everyone invited will be told."),
            confirm_cancel_keyboard(meeting, t, series=series),
        )
        return
    meeting_minutes.ensure_started(meeting, actor.now)
    await query.answer()
    if action == MeetingAction.MINUTES:
        await state.set_state(MeetingInput.minutes)
        await state.update_data(meeting_id=meeting_id)
        reply.text(_("Write the minutes of {title}:").format(title=title), cancel_keyboard(t))
    elif action == MeetingAction.PROBLEM:
        places = await meeting_minutes.problem_grids(actor.session, meeting)
        reply.text(
            _("Which grid is the problem in? It becomes a ticket there."),
            problem_grid_keyboard(meeting, places),
        )
    else:
        absent = await meeting_minutes.absentees(
            actor.session, actor=actor.who, roles=actor.roles, meeting_id=meeting_id, now=actor.now
        )
        rows = [(p, Rsvp(i.rsvp), i.reason) for p, i in absent]
        reply.text(absentees_text(meeting, rows, t))


async def _show_answer(
    reply: Replier,
    actor: Actor,
    meeting_id: int,
    message_id: int | None,
    rsvp: Rsvp,
    settings: Settings,
) -> None:
    """The invitation, edited to show the answer (and the button to change it)."""
    if message_id is None:
        return
    meeting = await meetings.load(actor.session, meeting_id)
    grid, organiser = await meetings.facts(actor.session, meeting)
    text = invitation_text(
        meeting, t, settings.tz, grid_name=grid.name, organiser_name=organiser.name, rsvp=rsvp
    )
    reply.edit(message_id, text, rsvp_keyboard(meeting, t, rsvp))


async def _open_meeting(reply: Replier, actor: Actor, meeting_id: int, settings: Settings) -> None:
    meeting = await meetings.load(actor.session, meeting_id)
    grid, organiser = await meetings.facts(actor.session, meeting)
    names = {"grid_name": grid.name, "organiser_name": organiser.name}
    try:
        await meetings.managed(actor.session, actor.who, actor.roles, meeting_id, actor.now)
    except NotAllowed:
        invite = await meetings.my_invite(actor.session, meeting_id, actor.who)
        rsvp = Rsvp(invite.rsvp)
        text = invitation_text(meeting, t, settings.tz, rsvp=rsvp, **names)
        keyboard = rsvp_keyboard(meeting, t, rsvp) if meeting.starts_at > actor.now else None
        reply.text(text, keyboard)
        return
    attendance = await meetings.attendance(actor.session, meeting_id)
    reply.text(
        summary_text(meeting, attendance, t, settings.tz, **names),
        summary_keyboard(meeting, t, actor.now),
    )


async def problem_grid_chosen(
    query: CallbackQuery,
    callback_data: ProblemGridCb,
    reply: Replier,
    actor: Actor,
    state: FSMContext,
) -> None:
    meeting = await meetings.managed(
        actor.session, actor.who, actor.roles, callback_data.meeting, actor.now
    )
    meeting_minutes.ensure_started(meeting, actor.now)
    places = {g.id: g for g in await meeting_minutes.problem_grids(actor.session, meeting)}
    grid = places.get(callback_data.grid)
    if grid is None:
        await query.answer(_(OUT_OF_DATE), show_alert=True)
        return
    await query.answer()
    await state.set_state(MeetingInput.problem)
    await state.update_data(meeting_id=meeting.id, grid_id=grid.id, grid_name=grid.name)
    reply.text(
        _("A problem in {grid}. What kind of problem is it?").format(grid=bold(grid.name)),
        category_keyboard(t),
    )


async def problem_category_chosen(
    query: CallbackQuery, callback_data: ProblemCategoryCb, reply: Replier, state: FSMContext
) -> None:
    await query.answer()
    await state.update_data(category=callback_data.category.value)
    reply.text(_("Describe the problem; it will become a ticket:"), cancel_keyboard(t))


# -- words typed about a meeting ---------------------------------------------------------


async def reason_typed(
    message: Message, reply: Replier, actor: Actor, state: FSMContext, settings: Settings
) -> None:
    data = await state.get_data()
    meeting_id = int(data["meeting_id"])
    await meetings.rsvp(
        actor.session,
        TelegramMeetingNotifier(settings),
        person=actor.who,
        meeting_id=meeting_id,
        attending=False,
        reason=message.text,
        now=actor.now,
    )
    await state.clear()
    reply.text(_("Thank you. The organiser has been told that you cannot attend."))
    message_id = data.get("message_id")
    await _show_answer(
        reply, actor, meeting_id, int(message_id) if message_id else None, Rsvp.DECLINED, settings
    )


async def move_time_typed(
    message: Message, reply: Replier, actor: Actor, state: FSMContext, settings: Settings
) -> None:
    starts_at = meeting_times.parse_meeting_time(message.text or "", now=actor.now, tz=settings.tz)
    meeting = await meetings.move_meeting(
        actor.session,
        TelegramMeetingNotifier(settings),
        actor=actor.who,
        roles=actor.roles,
        meeting_id=int((await state.get_data())["meeting_id"]),
        starts_at=starts_at,
        now=actor.now,
    )
    await state.clear()
    reply.text(
        _("{title} now starts at {when}. Everyone invited has been told.").format(
            title=bold(meeting.title), when=when_text(starts_at, settings.tz, t)
        )
    )


async def minutes_typed(
    message: Message, reply: Replier, actor: Actor, state: FSMContext, settings: Settings
) -> None:
    meeting_id = int((await state.get_data())["meeting_id"])
    meeting = await meeting_minutes.record_minutes(
        actor.session,
        TelegramMeetingNotifier(settings),
        actor=actor.who,
        roles=actor.roles,
        meeting_id=meeting_id,
        text=message.text or "",
        settings=settings,
        now=actor.now,
    )
    await state.clear()
    absent = await meeting_minutes.absentees(
        actor.session, actor=actor.who, roles=actor.roles, meeting_id=meeting_id, now=actor.now
    )
    reply.text(_("Minutes of {title} saved.").format(title=bold(meeting.title)))
    rows = [(p, Rsvp(i.rsvp), i.reason) for p, i in absent]
    reply.text(absentees_text(meeting, rows, t), after_keyboard(meeting, t))


async def problem_typed(
    message: Message, reply: Replier, actor: Actor, state: FSMContext, settings: Settings
) -> None:
    data = await state.get_data()
    if "category" not in data:
        reply.text(_("Please choose the kind of problem with the buttons above."))
        return
    meeting_id = int(data["meeting_id"])
    ticket = await meeting_minutes.raise_problem(
        actor.session,
        actor.notifier,
        actor=actor.who,
        roles=actor.roles,
        meeting_id=meeting_id,
        grid_id=int(data["grid_id"]),
        category=TicketCategory(data["category"]),
        description=message.text or "",
        settings=settings,
        now=actor.now,
    )
    await state.clear()
    another = InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=_("⚠️ Another problem"),
                    callback_data=MeetingCb(action=MeetingAction.PROBLEM, id=meeting_id).pack(),
                )
            ]
        ]
    )
    reply.text(
        _("Ticket {number} filed in {grid}; it is in the meeting's minutes.").format(
            number=code(shown_number(ticket)), grid=bold(data.get("grid_name", ""))
        ),
        another,
    )


# -- /meetings -----------------------------------------------------------------------------------


async def meetings_command(
    message: Message, reply: Replier, actor: Actor, settings: Settings
) -> None:
    upcoming = await meetings.upcoming_for(actor.session, actor.who, actor.now)
    if not upcoming:
        reply.text(_("You have no upcoming meetings."))
        return
    lines = [bold(_("Your upcoming meetings:"))]
    buttons = []
    for meeting, invite in upcoming:
        answer = (answer_line(Rsvp(invite.rsvp), t) if invite else _("you convened it")) or _(
            "not answered yet"
        )
        lines.append(
            f"• {when_text(meeting.starts_at, settings.tz, t)} {bold(meeting.title)} — "
            f"{esc(answer)}"
        )
        buttons.append([_open_button(meeting, settings)])
    reply.text("\n".join(lines), InlineKeyboardMarkup(inline_keyboard=buttons))


def _open_button(meeting: Meeting, settings: Settings) -> InlineKeyboardButton:
    local = meeting.starts_at.astimezone(settings.tz).strftime("%m-%d %H:%M")
    return InlineKeyboardButton(
        text=f"{local} {meeting.title}"[:60],
        callback_data=MeetingCb(action=MeetingAction.OPEN, id=meeting.id or 0).pack(),
    )


def build_router() -> Router:
    router = Router(name=__name__)
    typed = (F.text, ~F.text.startswith("/"))
    router.message.register(meeting_command, Command("meeting"))
    router.message.register(meetings_command, Command("meetings"))
    router.callback_query.register(
        kind_chosen, MeetingStartCb.filter(), StateFilter(NewMeeting.kind, NewMeeting.confirm)
    )
    router.callback_query.register(
        change_pressed,
        SetupCb.filter(F.step.in_({SetupStep.TIME, SetupStep.PLACE})),
        StateFilter(NewMeeting.confirm),
    )
    router.callback_query.register(
        meeting_grid_pressed, MeetingGridCb.filter(), StateFilter(NewMeeting.confirm)
    )
    router.callback_query.register(
        no_place, SetupCb.filter(F.step == SetupStep.NO_PLACE), StateFilter(NewMeeting.place)
    )
    router.callback_query.register(
        invitees_chosen, InviteeCb.filter(), StateFilter(NewMeeting.invitees)
    )
    router.callback_query.register(
        recurrence_chosen, RecurrenceCb.filter(), StateFilter(NewMeeting.recurrence)
    )
    router.callback_query.register(
        create_pressed, SetupCb.filter(F.step == SetupStep.CREATE), StateFilter(NewMeeting.confirm)
    )
    router.callback_query.register(meeting_pressed, MeetingCb.filter())
    router.callback_query.register(problem_grid_chosen, ProblemGridCb.filter())
    router.callback_query.register(
        problem_category_chosen, ProblemCategoryCb.filter(), StateFilter(MeetingInput.problem)
    )
    router.message.register(title_typed, StateFilter(NewMeeting.title), *typed)
    router.message.register(time_typed, StateFilter(NewMeeting.time), *typed)
    router.message.register(place_typed, StateFilter(NewMeeting.place), *typed)
    router.message.register(names_typed, StateFilter(NewMeeting.names), *typed)
    router.message.register(reason_typed, StateFilter(MeetingInput.reason), *typed)
    router.message.register(move_time_typed, StateFilter(MeetingInput.move_time), *typed)
    router.message.register(minutes_typed, StateFilter(MeetingInput.minutes), *typed)
    router.message.register(problem_typed, StateFilter(MeetingInput.problem), *typed)
    return router
