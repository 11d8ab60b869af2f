"""/report: a resident reports a problem (上报诉求) in a guided conversation.

Category → what happened → photos → where → is anyone in danger → a summary to confirm or
change; then a likely duplicate is offered to join, or the ticket is filed and its number shown
at once. ``/cancel`` (or a Cancel button) leaves at any step. The state diagram is in
``docs/report.md``. The conversation is FSM state in the database, so it survives a restart;
``bot.services.conversations.expire_idle`` ends it when the resident stays away.
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, StateFilter
from aiogram.filters.callback_data import CallbackQueryFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message, ReplyKeyboardRemove
from aiogram.utils.i18n import gettext as _

from bot.errors import DomainError, InvalidInput, NotFound
from bot.i18n import N_, in_every_locale
from bot.services import conversations, tickets
from bot.services.actor import Actor
from bot.services.notice_board import resident_grid
from bot.services.tickets import MAX_PHOTOS, AlreadyHandled
from bot.settings import Settings
from bot.telegram.fsm_storage import record_key
from bot.telegram.render import bold
from bot.telegram.replies import Markup, Replier
from bot.telegram.report_views import (
    AT_HOME,
    CANCEL,
    Draft,
    ReportAction,
    ReportCategoryCb,
    ReportCb,
    ReportEditCb,
    ReportStep,
    album_ref,
    cancel_keyboard,
    cancelled_text,
    category_keyboard,
    category_prompt,
    change_keyboard,
    change_prompt,
    danger_keyboard,
    danger_prompt,
    description_prompt,
    duplicate_keyboard,
    duplicate_text,
    edit_by_ref,
    emergency_text,
    filed_text,
    joined_text,
    photos_keyboard,
    photos_prompt,
    place_keyboard,
    place_prompt,
    place_text,
    refusal_text,
    shared_place,
    summary_keyboard,
    summary_text,
    typed_text,
    venue_address,
)
from models import Grid, HandlingKind, Household, TicketCategory

MAX_ADDRESS = 300
NOT_JOINED = N_(
    "You have not joined a grid yet. Scan the QR code on your grid's notice board, "
    "or ask your grid worker for the link to join."
)
USE_BUTTONS = N_("Please choose with the buttons below.")
TYPE_WORDS = N_("I can only read typed words here.")
PHOTOS_ONLY = N_("Only photos can be added here, not videos or files.")
SEND_A_PHOTO = N_("Please send a photo, or press a button below.")


class NewReport(StatesGroup):
    """The steps of /report (stored as ``NewReport:<step>``, see
    :data:`bot.services.conversations.REPORT_STATE_PREFIX`)."""

    category = State()
    description = State()
    photos = State()
    place = State()
    danger = State()
    confirm = State()  # the summary: send, change a step, or cancel
    duplicate = State()  # "is it the same problem?"


ORDER: tuple[State, ...] = (
    NewReport.category,
    NewReport.description,
    NewReport.photos,
    NewReport.place,
    NewReport.danger,
    NewReport.confirm,
)
STEP_STATE: dict[ReportStep, State] = {
    ReportStep.CATEGORY: NewReport.category,
    ReportStep.DESCRIPTION: NewReport.description,
    ReportStep.PHOTOS: NewReport.photos,
    ReportStep.PLACE: NewReport.place,
    ReportStep.DANGER: NewReport.danger,
}


# -- the conversation's plumbing -----------------------------------------------------------------


async def _draft(state: FSMContext) -> Draft:
    return Draft.from_data(await state.get_data())


async def _fresh_step(actor: Actor, state: FSMContext) -> str | None:
    """The step as it is now, inside this update's transaction (two updates of one album,
    or a double tap on "Send", are handled one after the other)."""
    await conversations.hold(actor.session, record_key(state.key))
    return await state.get_state()


async def _placement(actor: Actor, draft: Draft) -> tickets.Placement | None:
    """Which grid the draft's place is in (None for someone who left their grid meanwhile)."""
    assert actor.who.id is not None
    home = await resident_grid(actor.session, actor.who.id)
    if home is None:
        return None
    return await tickets.place_report(
        actor.session,
        home=home,
        latitude=draft.latitude,
        longitude=draft.longitude,
        address=draft.address,
        household_id=draft.household_id,
    )


async def _prompt(step: str | None, draft: Draft, actor: Actor) -> tuple[str, Markup | None]:
    """What the bot asks at ``step``, with its buttons."""
    home = actor.who.household_id is not None
    if step == NewReport.category.state:
        return category_prompt(), category_keyboard()
    if step == NewReport.description.state:
        return description_prompt(), cancel_keyboard()
    if step == NewReport.photos.state:
        return photos_prompt(len(draft.photos)), photos_keyboard(len(draft.photos))
    if step == NewReport.place.state:
        return place_prompt(home), place_keyboard(home)
    if step == NewReport.danger.state:
        return danger_prompt(), danger_keyboard()
    if step == NewReport.duplicate.state:
        return bold(_("Is it the same problem?")), duplicate_keyboard(draft.offered or 0)
    return summary_text(draft, await _placement(actor, draft)), summary_keyboard()


async def _ask(
    step: State,
    reply: Replier,
    state: FSMContext,
    draft: Draft,
    actor: Actor,
    *,
    before: str | None = None,
) -> None:
    """Go to ``step`` and ask its question (after ``before``, a reason or a note)."""
    await state.set_state(step)
    await state.set_data(draft.to_data())
    text, markup = await _prompt(step.state, draft, actor)
    reply.text(f"{before}\n\n{text}" if before else text, markup)


async def _reask(
    reply: Replier, state: FSMContext, draft: Draft, actor: Actor, reason: str
) -> None:
    """Stay at the current step: say why, and ask again (nothing in the draft changes)."""
    text, markup = await _prompt(await state.get_state(), draft, actor)
    reply.text(f"{reason}\n\n{text}", markup)


def _after(done: State, draft: Draft) -> State:
    """The step after ``done``: the next one, or back to the summary when changing one."""
    if draft.editing:
        draft.editing = False
        target = NewReport.confirm
    else:
        target = ORDER[ORDER.index(done) + 1]
    missing = draft.missing()
    if target is NewReport.confirm and missing is not None:
        return STEP_STATE[missing]
    return target


async def _advance(
    done: State,
    reply: Replier,
    state: FSMContext,
    draft: Draft,
    actor: Actor,
    *,
    before: str | None = None,
) -> None:
    await _ask(_after(done, draft), reply, state, draft, actor, before=before)


async def _resident_grid(reply: Replier, actor: Actor) -> Grid | None:
    assert actor.who.id is not None
    grid = await resident_grid(actor.session, actor.who.id)
    if grid is None:
        reply.text(_(NOT_JOINED), ReplyKeyboardRemove())
    return grid


# -- starting and leaving ------------------------------------------------------------------------


async def report_command(
    message: Message, reply: Replier, actor: Actor, state: FSMContext, settings: Settings
) -> None:
    if message.chat.type != "private":
        reply.text(_("Please send /report to me in a private chat."))
        return
    if await _resident_grid(reply, actor) is None:
        return
    try:
        await tickets.check_may_report(actor.session, actor.who, settings, actor.now)
    except DomainError as refusal:
        reply.text(refusal_text(refusal))
        return
    await _ask(NewReport.category, reply, state, Draft(), actor)


async def cancel_typed(message: Message, reply: Replier, state: FSMContext) -> None:
    await state.clear()
    reply.text(cancelled_text(), ReplyKeyboardRemove())


async def cancel_pressed(query: CallbackQuery, reply: Replier, state: FSMContext) -> None:
    await query.answer()
    await state.clear()
    reply.text(cancelled_text(), ReplyKeyboardRemove())


async def stale_pressed(query: CallbackQuery) -> None:
    await query.answer(_("This button is no longer active. Send /report to start a new report."))


# -- the steps -----------------------------------------------------------------------------------


async def category_chosen(
    query: CallbackQuery,
    callback_data: ReportCategoryCb,
    reply: Replier,
    actor: Actor,
    state: FSMContext,
) -> None:
    await query.answer()
    draft = await _draft(state)
    draft.category = callback_data.category
    await _advance(NewReport.category, reply, state, draft, actor)


async def description_typed(
    message: Message, reply: Replier, actor: Actor, state: FSMContext
) -> None:
    draft = await _draft(state)
    try:
        draft.description = tickets.clean_text(typed_text(message.text))
    except InvalidInput as refusal:
        await _reask(reply, state, draft, actor, refusal_text(refusal))
        return
    await _advance(NewReport.description, reply, state, draft, actor)


async def photo_received(
    message: Message, reply: Replier, actor: Actor, state: FSMContext
) -> None:
    """A photo (or one photo of an album) at any step: kept, up to MAX_PHOTOS; its caption is
    the description, or a comment added to it. An album gets one answer, edited as its
    photos arrive, and each thing it says (photos over the limit, words refused) once."""
    step = await _fresh_step(actor, state)
    if step not in NewReport.__all_states_names__ or not message.photo:
        return  # the conversation ended while this photo was on its way
    draft = await _draft(state)
    notes: list[str] = []
    file_id = message.photo[-1].file_id
    group = message.media_group_id
    if len(draft.photos) >= MAX_PHOTOS:
        full = (
            _("I already have {limit} photos, the most I can take; this one was not kept.")
            if group is None
            else _(
                "I already have {limit} photos, the most I can take; the rest of this album "
                "was not kept."
            )
        )
        notes.append(full.format(limit=MAX_PHOTOS))
    elif file_id not in draft.photos:
        draft.photos.append(file_id)
    caption = typed_text(message.caption)
    if caption and caption.strip():
        words = caption if draft.description is None else f"{draft.description}\n{caption}"
        try:
            draft.description = tickets.clean_text(words)
        except InvalidInput as refusal:
            notes.append(
                _("The words with the photo were not kept: {reason}").format(
                    reason=refusal_text(refusal)
                )
            )
    target = next((s for s in NewReport.__states__ if s.state == step), NewReport.confirm)
    if target is NewReport.description and draft.description is not None:
        target = _after(NewReport.description, draft)  # the caption said what happened
    await state.set_state(target)
    text, markup = await _prompt(target.state, draft, actor)
    if target is not NewReport.photos:
        text = (
            _("Photo kept ({count} of at most {limit}).").format(
                count=len(draft.photos), limit=MAX_PHOTOS
            )
            + "\n\n"
            + text
        )
    if group is None:
        reply.text("\n".join([*notes, text]), markup)
    elif group in draft.albums:
        said = draft.albums[group].split("\n") if draft.albums[group] else []
        draft.albums[group] = "\n".join(dict.fromkeys([*said, *notes]))  # each note once
        edit_by_ref(
            reply, album_ref(group), "\n".join(filter(None, [draft.albums[group], text])), markup
        )
    else:
        draft.albums = {**dict(list(draft.albums.items())[-4:]), group: "\n".join(notes)}
        reply.text("\n".join([*notes, text]), markup, ref=album_ref(group))
    await state.set_data(draft.to_data())


async def photos_done(
    query: CallbackQuery, reply: Replier, actor: Actor, state: FSMContext
) -> None:
    await query.answer()
    await _advance(NewReport.photos, reply, state, await _draft(state), actor)


async def _place_noted(reply: Replier, actor: Actor, state: FSMContext, draft: Draft) -> None:
    note = _("Place noted: {place}").format(place=place_text(draft))
    reply.text(note, ReplyKeyboardRemove())  # the location button goes away
    await _advance(NewReport.place, reply, state, draft, actor)


async def place_shared(message: Message, reply: Replier, actor: Actor, state: FSMContext) -> None:
    draft = await _draft(state)
    point = shared_place(message)
    if point is None:
        await _reask(
            reply,
            state,
            draft,
            actor,
            _("That location could not be read. Please try again, or type the address."),
        )
        return
    draft.set_place(address=venue_address(message), latitude=point[0], longitude=point[1])
    await _place_noted(reply, actor, state, draft)


async def place_home(message: Message, reply: Replier, actor: Actor, state: FSMContext) -> None:
    draft = await _draft(state)
    household = (
        await actor.session.get(Household, actor.who.household_id)
        if actor.who.household_id is not None
        else None
    )
    if household is None:
        await _reask(
            reply,
            state,
            draft,
            actor,
            _("No home is registered for you. Please type the address, or send your location."),
        )
        return
    draft.set_place(address=household.address, household_id=household.id)
    await _place_noted(reply, actor, state, draft)


async def place_typed(message: Message, reply: Replier, actor: Actor, state: FSMContext) -> None:
    draft = await _draft(state)
    try:
        address = tickets.clean_text(typed_text(message.text), minimum=2, maximum=MAX_ADDRESS)
    except InvalidInput as refusal:
        await _reask(reply, state, draft, actor, refusal_text(refusal))
        return
    draft.set_place(address=" ".join(address.split()))
    await _place_noted(reply, actor, state, draft)


async def danger_answered(
    query: CallbackQuery, callback_data: ReportCb, reply: Replier, actor: Actor, state: FSMContext
) -> None:
    await query.answer()
    draft = await _draft(state)
    draft.urgent = callback_data.action == ReportAction.DANGER_YES
    if draft.urgent:  # whom to call (119 for a fire…) first, before anything else
        policy = await tickets.current_policy(actor.session)
        reply.text(emergency_text(policy.emergency.advice(draft.category)))
    await _advance(NewReport.danger, reply, state, draft, actor)


async def unexpected(message: Message, reply: Replier, actor: Actor, state: FSMContext) -> None:
    """Anything else while reporting (a sticker, a voice message, words at a button step):
    say what is expected, and ask again."""
    step = await state.get_state()
    if step == NewReport.description.state:
        reason = _(TYPE_WORDS)
    elif step == NewReport.place.state:
        reason = _("Please type the address, or press a button below.")
    elif step == NewReport.photos.state:
        reason = _(SEND_A_PHOTO) if message.text is not None else _(PHOTOS_ONLY)
    else:
        reason = _(USE_BUTTONS)
    await _reask(reply, state, await _draft(state), actor, reason)


# -- the summary ---------------------------------------------------------------------------------


async def change_pressed(query: CallbackQuery, reply: Replier) -> None:
    await query.answer()
    reply.text(change_prompt(), change_keyboard())


async def back_pressed(
    query: CallbackQuery, reply: Replier, actor: Actor, state: FSMContext
) -> None:
    await query.answer()
    await _ask(NewReport.confirm, reply, state, await _draft(state), actor)


async def step_chosen(
    query: CallbackQuery,
    callback_data: ReportEditCb,
    reply: Replier,
    actor: Actor,
    state: FSMContext,
) -> None:
    await query.answer()
    draft = await _draft(state)
    draft.editing = True
    if callback_data.step == ReportStep.PHOTOS:
        draft.photos, draft.albums = [], {}  # the photos are sent again
    await _ask(STEP_STATE[callback_data.step], reply, state, draft, actor)


async def send_pressed(
    query: CallbackQuery, reply: Replier, actor: Actor, state: FSMContext, settings: Settings
) -> None:
    await query.answer()
    if await _fresh_step(actor, state) != NewReport.confirm.state:
        return  # a second tap while the first one filed it
    draft = await _draft(state)
    grid = await _resident_grid(reply, actor)
    if grid is None:
        await state.clear()
        return
    missing = draft.missing()
    if missing is not None:
        await _ask(STEP_STATE[missing], reply, state, draft, actor)
        return
    assert draft.category is not None
    placement = await _placement(actor, draft)
    candidates = await tickets.likely_duplicates(
        actor.session,
        grid=placement.grid if placement is not None else grid,
        category=draft.category,
        latitude=draft.latitude,
        longitude=draft.longitude,
        now=actor.now,
    )
    offered = next((t for t in candidates if t.id not in draft.declined), None)
    if offered is not None and offered.id is not None:
        draft.offered = offered.id
        await state.set_state(NewReport.duplicate)
        await state.set_data(draft.to_data())
        reply.text(duplicate_text(offered, actor.now), duplicate_keyboard(offered.id))
        return
    await _file(reply, actor, state, settings, draft, grid, placement=placement)


async def _file(
    reply: Replier,
    actor: Actor,
    state: FSMContext,
    settings: Settings,
    draft: Draft,
    grid: Grid,
    *,
    placement: tickets.Placement | None = None,
    before: str | None = None,
) -> None:
    try:
        ticket = await tickets.file_ticket(
            actor.session,
            actor.notifier,
            reporter=actor.who,
            grid=grid,
            report=draft.report(),
            settings=settings,
            now=actor.now,
            placement=placement or await _placement(actor, draft),  # found once an update
        )
    except InvalidInput as refusal:  # the draft no longer passes: correct it from the summary
        await _ask(NewReport.confirm, reply, state, draft, actor, before=refusal_text(refusal))
        return
    except DomainError as refusal:  # muted, or over the limit since the report began
        await state.clear()
        reply.text(refusal_text(refusal))
        return
    await state.clear()
    advice = None
    if ticket.kind == HandlingKind.URGENT:
        policy = await tickets.current_policy(actor.session)
        advice = policy.emergency.advice(TicketCategory(ticket.category))
    text = filed_text(ticket, advice)
    reply.text(f"{before}\n\n{text}" if before else text)


async def same_pressed(
    query: CallbackQuery,
    callback_data: ReportCb,
    reply: Replier,
    actor: Actor,
    state: FSMContext,
    settings: Settings,
) -> None:
    """The resident follows the existing ticket instead of filing a new one."""
    if await _fresh_step(actor, state) != NewReport.duplicate.state:
        await query.answer()
        return
    draft = await _draft(state)
    if callback_data.id != draft.offered:  # only the ticket we offered, never a forged one
        await stale_pressed(query)
        return
    await query.answer()
    try:
        ticket = await tickets.join_ticket(
            actor.session,
            actor.notifier,
            person=actor.who,
            ticket_id=callback_data.id,
            now=actor.now,
        )
    except (AlreadyHandled, NotFound):
        grid = await _resident_grid(reply, actor)
        if grid is None:
            await state.clear()
            return
        before = _("That ticket has been closed in the meantime, so yours is filed as a new one.")
        await _file(reply, actor, state, settings, draft, grid, before=before)
        return
    await state.clear()
    reply.text(joined_text(ticket))


async def new_pressed(
    query: CallbackQuery, reply: Replier, actor: Actor, state: FSMContext, settings: Settings
) -> None:
    await query.answer()
    if await _fresh_step(actor, state) != NewReport.duplicate.state:
        return
    draft = await _draft(state)
    grid = await _resident_grid(reply, actor)
    if grid is None:
        await state.clear()
        return
    if draft.offered is not None:
        draft.declined.append(draft.offered)
    draft.offered = None
    await _file(reply, actor, state, settings, draft, grid)


def _action(*actions: ReportAction) -> CallbackQueryFilter:
    return ReportCb.filter(F.action.in_(set(actions)))


def build_router() -> Router:
    router = Router(name=__name__)
    reporting = StateFilter(NewReport)
    not_a_command = ~F.text.startswith("/")

    router.message.register(report_command, Command("report"))
    router.message.register(cancel_typed, Command("cancel"), reporting)
    router.message.register(cancel_typed, reporting, F.text.in_(in_every_locale(CANCEL)))
    router.message.register(photo_received, reporting, F.photo)
    router.message.register(
        description_typed, StateFilter(NewReport.description), F.text, not_a_command
    )
    router.message.register(place_shared, StateFilter(NewReport.place), F.location)
    router.message.register(
        place_home, StateFilter(NewReport.place), F.text.in_(in_every_locale(AT_HOME))
    )
    router.message.register(place_typed, StateFilter(NewReport.place), F.text, not_a_command)
    router.message.register(unexpected, reporting, not_a_command)

    router.callback_query.register(cancel_pressed, reporting, _action(ReportAction.CANCEL))
    router.callback_query.register(
        category_chosen, StateFilter(NewReport.category), ReportCategoryCb.filter()
    )
    router.callback_query.register(
        photos_done, StateFilter(NewReport.photos), _action(ReportAction.PHOTOS_DONE)
    )
    router.callback_query.register(
        danger_answered,
        StateFilter(NewReport.danger),
        _action(ReportAction.DANGER_YES, ReportAction.DANGER_NO),
    )
    confirm = StateFilter(NewReport.confirm)
    router.callback_query.register(send_pressed, confirm, _action(ReportAction.SEND))
    router.callback_query.register(change_pressed, confirm, _action(ReportAction.CHANGE))
    router.callback_query.register(back_pressed, confirm, _action(ReportAction.BACK))
    router.callback_query.register(step_chosen, confirm, ReportEditCb.filter())
    duplicate = StateFilter(NewReport.duplicate)
    router.callback_query.register(same_pressed, duplicate, _action(ReportAction.SAME))
    router.callback_query.register(new_pressed, duplicate, _action(ReportAction.NEW))
    for stale in (ReportCb.filter(), ReportCategoryCb.filter(), ReportEditCb.filter()):
        router.callback_query.register(stale_pressed, stale)
    return router
