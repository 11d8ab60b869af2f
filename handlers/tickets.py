"""Tickets after filing: handlers act on their card, reporters answer and rate; /ticket, /my
(/tickets is :mod:`handlers.ticket_list`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeGuard, TypeVar

from aiogram import F, Router
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _

from bot import labels
from bot.errors import DomainError, InvalidInput, NotFound
from bot.i18n import N_
from bot.services import tickets
from bot.services.actor import Actor
from bot.services.ticket_numbers import shown_number
from bot.services.tickets import classifying, dispatching, urging, verifying
from bot.settings import Settings
from bot.telegram.callbacks import (
    CancelCb,
    CancelStepCb,
    ClassifyCb,
    ClassifyStep,
    DispatchCb,
    DispatchStep,
    RateCb,
    ReturnVisitCb,
    ReturnVisitOutcome,
    TicketAction,
    TicketCb,
    TicketPhotosCb,
    TransferCb,
    step_tag,
)
from bot.telegram.cancelling import cancel_only, end_by_button
from bot.telegram.i18n import t
from bot.telegram.render import bold, code, esc
from bot.telegram.replies import Replier
from bot.telegram.report_views import refusal_text
from bot.telegram.ticket_views import (
    card_keyboard,
    card_text,
    classified_text,
    classify_question,
    classify_reason_keyboard,
    dispatch_keyboard,
    dispatch_reason_keyboard,
    dispatch_text,
    dispatched_text,
    history_text,
    kinds_keyboard,
    kinds_text,
    photo_batches,
    photos_caption,
    supervise_keyboard,
    tier_label,
)
from models import Rating, Ticket, TicketState

PROMPTS: dict[TicketAction, str] = {
    TicketAction.NOTE: N_("Write the progress note for ticket {number}:"),
    TicketAction.ASK: N_("Write your question to the reporter of ticket {number}:"),
    TicketAction.RESOLVE: N_(
        "What was done about ticket {number}? Write it, or send a photo with a caption."
    ),
    TicketAction.ESCALATE: N_("Why should ticket {number} go up a tier? Write the reason:"),
    TicketAction.DUPLICATE: N_("Ticket {number} is the same as which ticket? Send its number:"),
    TicketAction.REJECT: N_(
        "Why can ticket {number} not be taken up? The reporter will read this:"
    ),
    TicketAction.VERIFY: N_(
        "Send a photo of ticket {number} taken on site (you may add a caption) to confirm it "
        "was done:"
    ),
    TicketAction.SEND_BACK: N_(
        "What is still not done about ticket {number}? The handler will read this:"
    ),
}
SERVICE_ACTION = {
    TicketAction.NOTE: "note",
    TicketAction.ASK: "ask",
    TicketAction.RESOLVE: "resolve",
    TicketAction.ESCALATE: "escalate",
    TicketAction.DUPLICATE: "duplicate",
    TicketAction.REJECT: "reject",
    TicketAction.TRANSFER: "transfer",
    TicketAction.ACCEPT: "accept",
}
DONE: dict[TicketAction, str] = {
    TicketAction.NOTE: N_("Progress noted; the reporter has been told."),
    TicketAction.ASK: N_("Question sent. The clock waits until the reporter answers."),
    TicketAction.RESOLVE: N_("Marked as resolved; the reporter is asked to rate it."),
    TicketAction.ESCALATE: N_("Reported up a tier (已上报)."),
    TicketAction.DUPLICATE: N_("Marked as a duplicate."),
    TicketAction.REJECT: N_("Rejected; the reporter has been told why."),
    TicketAction.VERIFY: N_("Checked on site; the reporter is asked to rate it."),
    TicketAction.SEND_BACK: N_("Sent back to the handler with your reason."),
}
VERIFY_ACTIONS = frozenset({TicketAction.VERIFY, TicketAction.SEND_BACK})


class Handling(StatesGroup):
    """A handler types what a card action needs (note, question, result, reason…)."""

    text = State()


class Dispatching(StatesGroup):
    """The centre typed a short reason for sending a ticket to a chosen tier (下派 / 上收)."""

    reason = State()


class Classifying(StatesGroup):
    """A handler typed a short reason for classifying a ticket as a kind (定性)."""

    reason = State()


class Reporting(StatesGroup):
    """A reporter types an answer to a question, or a comment after rating."""

    answer = State()
    comment = State()


def cancel_keyboard(step: str | None, ticket_id: int | None) -> InlineKeyboardMarkup:
    """A 取消 button for the step the bot waits at (``step``, the FSM state) about
    ``ticket_id``: it cancels that step only while it lasts (:func:`step_cancelled`)."""
    return cancel_only(_("Cancel"), CancelStepCb(step=step_tag(step), ticket=ticket_id or 0))


async def card_pressed(
    query: CallbackQuery,
    callback_data: TicketCb,
    reply: Replier,
    actor: Actor,
    state: FSMContext,
    settings: Settings,
) -> None:
    action, ticket_id = callback_data.action, callback_data.id
    if action == TicketAction.ACCEPT:
        ticket = await tickets.accept(
            actor.session,
            actor.notifier,
            actor=actor.who,
            roles=actor.roles,
            ticket_id=ticket_id,
            now=actor.now,
        )
        await query.answer(_("Accepted. The reporter has been told."))
        return
    if action in {TicketAction.OPEN, TicketAction.HISTORY}:
        ticket = await tickets.viewable(
            actor.session, person=actor.who, roles=actor.roles, ticket_id=ticket_id, now=actor.now
        )
        await query.answer()
        await _show(reply, actor, settings, ticket, history=action == TicketAction.HISTORY)
        return
    if action == TicketAction.DISPATCH:
        choices = await dispatching.choices(
            actor.session, actor=actor.who, roles=actor.roles, ticket_id=ticket_id, now=actor.now
        )
        await query.answer()
        reply.text(dispatch_text(choices, t), dispatch_keyboard(choices, t))
        return
    if action == TicketAction.CLASSIFY:
        kinds = await classifying.kind_choices(
            actor.session, actor=actor.who, roles=actor.roles, ticket_id=ticket_id, now=actor.now
        )
        await query.answer()
        reply.text(kinds_text(kinds, t), kinds_keyboard(kinds, t))
        return
    if action == TicketAction.URGE:
        ticket, pinged = await urging.urge(
            actor.session,
            actor.notifier,
            actor=actor.who,
            roles=actor.roles,
            ticket_id=ticket_id,
            now=actor.now,
        )
        await query.answer(
            _("Urged (催办): the handlers of ticket {number} were told ({count}).").format(
                count=pinged, number=shown_number(ticket)
            )
        )
        return
    if action in VERIFY_ACTIONS:
        ticket = await verifying.load_for_verifying(
            actor.session, actor=actor.who, roles=actor.roles, ticket_id=ticket_id, now=actor.now
        )
        await query.answer()
        await state.set_state(Handling.text)
        await state.update_data(ticket_id=ticket_id, action=action.value)
        reply.text(
            _(PROMPTS[action]).format(number=code(shown_number(ticket))),
            cancel_keyboard(Handling.text.state, ticket_id),
        )
        return
    if action == TicketAction.ANSWER:
        await query.answer()
        await state.set_state(Reporting.answer)
        await state.update_data(ticket_id=ticket_id)
        reply.text(_("Write your answer:"), cancel_keyboard(Reporting.answer.state, ticket_id))
        return
    ticket = await tickets.ensure_actionable(
        actor.session,
        actor=actor.who,
        roles=actor.roles,
        ticket_id=ticket_id,
        action=SERVICE_ACTION[action],
        now=actor.now,
    )
    await query.answer()
    if action == TicketAction.TRANSFER:
        departments = await tickets.departments(actor.session)
        buttons = [
            [
                InlineKeyboardButton(
                    text=d.name,
                    callback_data=TransferCb(id=ticket_id, department=d.id or 0).pack(),
                )
            ]
            for d in departments
        ]
        buttons.append([InlineKeyboardButton(text=_("Cancel"), callback_data=CancelCb().pack())])
        reply.text(
            _("Transfer ticket {number} to which department?").format(number=shown_number(ticket)),
            InlineKeyboardMarkup(inline_keyboard=buttons),
        )
        return
    await state.set_state(Handling.text)
    await state.update_data(ticket_id=ticket_id, action=action.value)
    reply.text(
        _(PROMPTS[action]).format(number=code(shown_number(ticket))),
        cancel_keyboard(Handling.text.state, ticket_id),
    )


async def photos_pressed(
    query: CallbackQuery, callback_data: TicketPhotosCb, reply: Replier, actor: Actor
) -> None:
    """📷 on a card: the photos filed with the report, as albums, to the person pressing."""
    ticket, file_ids = await tickets.report_photos(
        actor.session,
        person=actor.who,
        roles=actor.roles,
        ticket_id=callback_data.id,
        now=actor.now,
    )
    if not file_ids:
        await query.answer(_("Ticket {number} has no photos.").format(number=shown_number(ticket)))
        return
    await query.answer()
    batches = photo_batches(file_ids)
    for number, batch in enumerate(batches, start=1):
        reply.photos(batch, photos_caption(ticket, t, number, len(batches)))


async def photos_forged(query: CallbackQuery, actor: Actor) -> None:
    """Photo data no button of ours carries: refused, and the refusal audited."""
    raise tickets.photos_forged(actor.who, query.data or "", actor.now)


async def _show(
    reply: Replier, actor: Actor, settings: Settings, ticket: Ticket, *, history: bool
) -> None:
    """A ticket the person may see: its card with the actions, or its history."""
    follower = await tickets.seen_as_follower(
        actor.session, person=actor.who, roles=actor.roles, ticket=ticket
    )
    if history:
        events = await tickets.history(actor.session, ticket.id or 0)
        reply.text(history_text(ticket, events, t, settings.tz, follower=follower))
        return
    grid_name, reporter_name, holder, photos = await tickets.card_facts(actor.session, ticket)
    text = card_text(
        ticket,
        t,
        settings.tz,
        grid_name=grid_name,
        reporter_name=reporter_name,
        holder=holder,
        photos=photos,
        follower=follower,
    )
    if await tickets.supervises_only(actor.session, roles=actor.roles, ticket=ticket):
        reply.text(text, supervise_keyboard(ticket, t))  # 督查: read-only, 催办
        return
    dispatch = await dispatching.may_dispatch(actor.session, actor.who, actor.roles, ticket)
    keyboard = card_keyboard(ticket, t, dispatch=dispatch, photos=0 if follower else photos)
    reply.text(text, keyboard, ref=f"tc:{ticket.id}:{actor.who.id}")


async def ticket_command(
    message: Message, command: CommandObject, reply: Replier, actor: Actor, settings: Settings
) -> None:
    """``/ticket 2048`` (or the long number): the card to those who handle it, the history to
    its reporter and followers."""
    found = await tickets.find_by_number(
        actor.session, person=actor.who, roles=actor.roles, typed=command.args, now=actor.now
    )
    for item in found:
        await _show(reply, actor, settings, item.ticket, history=not item.as_staff)


# what a typed answer on a card does: the service, the name its text goes by, whether a photo
# sent with the text goes along (办结 and 核查 keep one as evidence)
TEXT_ACTIONS: dict[TicketAction, tuple[Callable[..., Awaitable[object]], str, bool]] = {
    TicketAction.NOTE: (tickets.add_note, "text", False),
    TicketAction.ASK: (tickets.ask_reporter, "question", False),
    TicketAction.RESOLVE: (tickets.resolve, "text", True),
    TicketAction.ESCALATE: (tickets.escalate, "reason", False),
    TicketAction.DUPLICATE: (tickets.mark_duplicate, "original_number", False),
    TicketAction.REJECT: (tickets.reject, "reason", False),
    TicketAction.VERIFY: (verifying.confirm, "text", True),
    TicketAction.SEND_BACK: (verifying.send_back, "reason", False),
}


async def handling_text(message: Message, reply: Replier, actor: Actor, state: FSMContext) -> None:
    data = await state.get_data()
    action = TicketAction(data.get("action", TicketAction.NOTE))
    ticket_id = int(data.get("ticket_id", 0))
    text = message.text or message.caption or ""
    photo = message.photo[-1].file_id if message.photo else None
    service, text_field, takes_photo = TEXT_ACTIONS[action]
    extra: dict[str, Any] = {text_field: text}
    if takes_photo:
        extra["photo_file_id"] = photo
    try:
        await service(
            actor.session,
            actor.notifier,
            actor=actor.who,
            roles=actor.roles,
            ticket_id=ticket_id,
            now=actor.now,
            **extra,
        )
    except InvalidInput as error:
        reply.text(refusal_text(error), cancel_keyboard(Handling.text.state, ticket_id))
        return
    await state.clear()
    reply.text(_(DONE[action]))


async def transfer_chosen(
    query: CallbackQuery, callback_data: TransferCb, reply: Replier, actor: Actor
) -> None:
    ticket = await tickets.transfer(
        actor.session,
        actor.notifier,
        actor=actor.who,
        roles=actor.roles,
        ticket_id=callback_data.id,
        department_id=callback_data.department,
        now=actor.now,
    )
    await query.answer(_("Transferred."))
    if query.message is not None:
        reply.edit(
            query.message.message_id,
            _("Ticket {number} transferred.").format(number=shown_number(ticket)),
        )


Choice = TypeVar("Choice")
Result = TypeVar("Result")


async def _ask_for_reason(
    query: CallbackQuery,
    reply: Replier,
    state: FSMContext,
    waiting: State,
    choice: dict[str, Any],
    question: str,
    keyboard: InlineKeyboardMarkup,
) -> None:
    """The first press of a choice (a tier, a kind): wait for its reason, remembering the
    choice; the list of choices becomes the question."""
    await query.answer()
    await state.set_state(waiting)
    await state.update_data(choice)
    if query.message is not None:
        reply.edit(query.message.message_id, question, keyboard)
    else:
        reply.text(question, keyboard)


async def _remembered(
    state: FSMContext, reply: Replier, choice: Callable[[dict[str, Any]], Choice]
) -> Choice | None:
    """The choice a typed reason is for, rebuilt from what :func:`_ask_for_reason` remembered;
    ``None`` (and the person told) when nothing usable is left."""
    try:
        return choice(await state.get_data())
    except ValueError:
        await state.clear()
        reply.text(refusal_text(NotFound()))
        return None


async def _with_reason(
    actor: Actor,
    state: FSMContext,
    reply: Replier,
    apply: Callable[[], Awaitable[Result]],
    again: InlineKeyboardMarkup,
) -> Result | None:
    """Apply a choice with the reason just typed. A reason that will not do is asked for again
    (``again``); a choice that cannot be made any more ends the wait, its refusal answered and
    kept for the audit (raising would roll the cleared state back with the update)."""
    try:
        result = await apply()
    except InvalidInput as error:
        reply.text(refusal_text(error), again)
        return None
    except DomainError as refusal:
        await state.clear()
        dispatching.keep_refusal(actor.session, refusal)
        reply.text(refusal_text(refusal))
        return None
    await state.clear()
    return result


async def dispatch_chosen(
    query: CallbackQuery,
    callback_data: DispatchCb,
    reply: Replier,
    actor: Actor,
    state: FSMContext,
) -> None:
    """A tier was chosen: ask why (or send it at once, when "without a reason" was pressed)."""
    target = {"ticket_id": callback_data.id, "tier": callback_data.tier}
    if callback_data.step == DispatchStep.ASK:
        choice = await dispatching.check_target(
            actor.session,
            actor=actor.who,
            roles=actor.roles,
            role=callback_data.role,
            now=actor.now,
            **target,
        )
        prompt = _("Why send it to {owner}? Write a short reason, or send it without one.")
        await _ask_for_reason(
            query,
            reply,
            state,
            Dispatching.reason,
            {"role": callback_data.role.value, **target},
            prompt.format(owner=esc(tier_label(choice, t))),
            dispatch_reason_keyboard(callback_data, t),
        )
        return
    await state.clear()
    result = await dispatching.send_to_tier(
        actor.session,
        actor.notifier,
        actor=actor.who,
        roles=actor.roles,
        role=callback_data.role,
        reason=None,
        now=actor.now,
        **target,
    )
    await query.answer(_("Sent."))
    if query.message is not None:
        reply.edit(query.message.message_id, dispatched_text(result, t))


async def dispatch_reason(
    message: Message, reply: Replier, actor: Actor, state: FSMContext
) -> None:
    chosen = await _remembered(
        state,
        reply,
        lambda data: DispatchCb(
            id=data.get("ticket_id", -1),
            tier=data.get("tier", -1),
            role=data.get("role", ""),
            step=DispatchStep.GO,
        ),
    )
    if chosen is None:
        return
    result = await _with_reason(
        actor,
        state,
        reply,
        lambda: dispatching.send_to_tier(
            actor.session,
            actor.notifier,
            actor=actor.who,
            roles=actor.roles,
            ticket_id=chosen.id,
            tier=chosen.tier,
            role=chosen.role,
            reason=message.text or "",
            now=actor.now,
        ),
        dispatch_reason_keyboard(chosen, t),
    )
    if result is not None:
        reply.text(dispatched_text(result, t))


async def dispatch_forged(query: CallbackQuery, actor: Actor) -> None:
    """Dispatch data no button of ours carries: refused, and the refusal audited."""
    raise dispatching.forged(actor.who, query.data or "", actor.now)


async def classify_chosen(
    query: CallbackQuery,
    callback_data: ClassifyCb,
    reply: Replier,
    actor: Actor,
    state: FSMContext,
) -> None:
    """A kind was chosen: ask why (or classify at once, when "without a reason" was pressed)."""
    ticket_id, kind = callback_data.id, callback_data.kind
    if callback_data.step == ClassifyStep.ASK:
        ticket, option = await classifying.check_kind(
            actor.session,
            actor=actor.who,
            roles=actor.roles,
            ticket_id=ticket_id,
            kind=kind,
            now=actor.now,
        )
        await _ask_for_reason(
            query,
            reply,
            state,
            Classifying.reason,
            {"ticket_id": ticket_id, "kind": kind.value},
            classify_question(shown_number(ticket), option, t),
            classify_reason_keyboard(callback_data, t),
        )
        return
    await state.clear()
    result = await classifying.reclassify(
        actor.session,
        actor.notifier,
        actor=actor.who,
        roles=actor.roles,
        ticket_id=ticket_id,
        kind=kind,
        reason=None,
        now=actor.now,
    )
    await query.answer(_("Classified."))
    if query.message is not None:
        reply.edit(query.message.message_id, classified_text(result, t))


async def classify_reason(
    message: Message, reply: Replier, actor: Actor, state: FSMContext
) -> None:
    chosen = await _remembered(
        state,
        reply,
        lambda data: ClassifyCb(
            id=data.get("ticket_id", -1), kind=data.get("kind", ""), step=ClassifyStep.GO
        ),
    )
    if chosen is None:
        return
    result = await _with_reason(
        actor,
        state,
        reply,
        lambda: classifying.reclassify(
            actor.session,
            actor.notifier,
            actor=actor.who,
            roles=actor.roles,
            ticket_id=chosen.id,
            kind=chosen.kind,
            reason=message.text or "",
            now=actor.now,
        ),
        classify_reason_keyboard(chosen, t),
    )
    if result is not None:
        reply.text(classified_text(result, t))


async def classify_forged(query: CallbackQuery, actor: Actor) -> None:
    """Classify data no button of ours carries: refused, and the refusal audited."""
    raise classifying.forged(actor.who, query.data or "", actor.now)


async def rated(
    query: CallbackQuery, callback_data: RateCb, reply: Replier, actor: Actor, state: FSMContext
) -> None:
    ticket = await tickets.rate(
        actor.session,
        actor.notifier,
        reporter=actor.who,
        ticket_id=callback_data.id,
        rating=callback_data.rating,
        now=actor.now,
    )
    await query.answer(_(labels.RATING[callback_data.rating]))
    if query.message is not None:
        reply.edit(
            query.message.message_id,
            _("You rated ticket {number}: {rating}.").format(
                number=shown_number(ticket), rating=_(labels.RATING[callback_data.rating])
            ),
        )
    await state.set_state(Reporting.comment)
    await state.update_data(ticket_id=ticket.id)
    reply.text(_("Anything to add? Write it here, or press Skip."), _skip_keyboard())


def _skip_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=_("Skip"), callback_data=CancelCb().pack())]]
    )


async def comment_text(message: Message, reply: Replier, actor: Actor, state: FSMContext) -> None:
    ticket_id = int((await state.get_data()).get("ticket_id", 0))
    try:
        await tickets.add_rating_comment(
            actor.session,
            actor.notifier,
            reporter=actor.who,
            ticket_id=ticket_id,
            comment=message.text or "",
            now=actor.now,
        )
    except InvalidInput as error:
        reply.text(refusal_text(error), _skip_keyboard())
        return
    await state.clear()
    reply.text(_("Thank you, your words have been passed on."))


async def answer_text(message: Message, reply: Replier, actor: Actor, state: FSMContext) -> None:
    asked: int | None = (await state.get_data()).get("ticket_id")  # they pressed ✍️ 回答
    ticket_id = asked
    if ticket_id is None:
        waiting = await tickets.waiting_for(actor.session, actor.who)
        if waiting is None or waiting.id is None:
            raise SkipHandler  # plain text that answers nothing: let the next handler have it
        ticket_id = waiting.id
    try:
        ticket = await tickets.answer_question(
            actor.session,
            actor.notifier,
            reporter=actor.who,
            ticket_id=ticket_id,
            text=message.text or "",
            now=actor.now,
        )
    except InvalidInput as error:
        reply.text(refusal_text(error), cancel_keyboard(await state.get_state(), asked))
        return
    await state.clear()
    reply.text(
        _("Thank you. Your answer about ticket {number} has been passed on.").format(
            number=shown_number(ticket)
        )
    )


RETURN_VISIT_RATING: dict[ReturnVisitOutcome, Rating | None] = {
    ReturnVisitOutcome.SATISFIED: Rating.SATISFIED,
    ReturnVisitOutcome.BASICALLY: Rating.BASICALLY_SATISFIED,
    ReturnVisitOutcome.UNSATISFIED: Rating.UNSATISFIED,
    ReturnVisitOutcome.UNREACHABLE: None,
}


async def return_visit_recorded(
    query: CallbackQuery, callback_data: ReturnVisitCb, reply: Replier, actor: Actor
) -> None:
    ticket = await tickets.record_return_visit(
        actor.session,
        actor.notifier,
        actor=actor.who,
        roles=actor.roles,
        visit_id=callback_data.id,
        rating=RETURN_VISIT_RATING[callback_data.outcome],
        now=actor.now,
    )
    await query.answer(_("Return visit recorded."))
    if query.message is not None:
        reply.edit(
            query.message.message_id,
            _("Return visit for ticket {number} recorded: {state}.").format(
                number=shown_number(ticket),
                state=_(labels.TICKET_STATE[TicketState(ticket.state)]),
            ),
        )


async def cancelled(query: CallbackQuery, reply: Replier, state: FSMContext) -> None:
    await end_by_button(query, reply, state, _("Cancelled."))


async def step_cancelled(
    query: CallbackQuery, callback_data: CancelStepCb, reply: Replier, state: FSMContext
) -> None:
    """取消 under a prompt that waits for typing. Once that step is over — the result was sent,
    the step ran out, another conversation has begun, or the same step was opened for another
    ticket since — there is nothing of it left to cancel: said so, the stale button goes, and
    whatever is in progress now is kept."""
    now_at = (step_tag(await state.get_state()), (await state.get_data()).get("ticket_id"))
    if (callback_data.step, callback_data.ticket or None) != now_at:
        await query.answer(_("There is nothing to cancel."))
        if _carries(query.message, query.data):  # not made-up data on another message
            reply.drop_buttons(query.message.message_id)
        return
    await cancelled(query, reply, state)


def _carries(message: object, data: str | None) -> TypeGuard[Message]:
    """Whether ``message`` (of a callback query) has a button with ``data``."""
    if not isinstance(message, Message) or message.reply_markup is None or data is None:
        return False
    buttons = message.reply_markup.inline_keyboard
    return any(button.callback_data == data for row in buttons for button in row)


async def my_command(message: Message, reply: Replier, actor: Actor) -> None:
    mine = await tickets.my_tickets(actor.session, actor.who)
    if not mine:
        reply.text(_("You have not reported anything yet. Send /report to report a problem."))
        return
    lines = [bold(_("Your tickets:"))]
    buttons = []
    for ticket in mine:
        lines.append(
            f"• {code(shown_number(ticket))} {esc(_(labels.TICKET_CATEGORY[ticket.category]))} — "
            f"{esc(_(labels.TICKET_STATE[TicketState(ticket.state)]))}"
        )
        buttons.append(
            [
                InlineKeyboardButton(
                    text=_("History of {number}").format(number=shown_number(ticket)),
                    callback_data=TicketCb(action=TicketAction.HISTORY, id=ticket.id or 0).pack(),
                )
            ]
        )
    reply.text("\n".join(lines), InlineKeyboardMarkup(inline_keyboard=buttons))


def build_router() -> Router:
    router = Router(name=__name__)
    router.callback_query.register(card_pressed, TicketCb.filter())
    router.callback_query.register(photos_pressed, TicketPhotosCb.filter())
    router.callback_query.register(
        photos_forged, F.data.startswith(f"{TicketPhotosCb.__prefix__}:")
    )
    router.callback_query.register(transfer_chosen, TransferCb.filter())
    router.callback_query.register(dispatch_chosen, DispatchCb.filter())
    router.callback_query.register(dispatch_forged, F.data.startswith(f"{DispatchCb.__prefix__}:"))
    router.callback_query.register(classify_chosen, ClassifyCb.filter())
    router.callback_query.register(classify_forged, F.data.startswith(f"{ClassifyCb.__prefix__}:"))
    router.callback_query.register(rated, RateCb.filter())
    router.callback_query.register(cancelled, CancelCb.filter())
    router.callback_query.register(step_cancelled, CancelStepCb.filter())
    router.callback_query.register(return_visit_recorded, ReturnVisitCb.filter())
    router.message.register(my_command, Command("my"))
    router.message.register(ticket_command, Command("ticket"))
    # a command typed at the prompt (/cancel) is not the text asked for: it goes on to its own
    router.message.register(
        handling_text, StateFilter(Handling.text), (F.text & ~F.text.startswith("/")) | F.photo
    )
    router.message.register(
        dispatch_reason, StateFilter(Dispatching.reason), F.text, ~F.text.startswith("/")
    )
    router.message.register(
        classify_reason, StateFilter(Classifying.reason), F.text, ~F.text.startswith("/")
    )
    router.message.register(comment_text, StateFilter(Reporting.comment), F.text)
    router.message.register(answer_text, StateFilter(Reporting.answer), F.text)
    router.message.register(answer_text, StateFilter(None), F.text, ~F.text.startswith("/"))
    return router
