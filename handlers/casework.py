"""A department's casework on the ticket card: 退单 (↩️ with a reason), 延期申请 (⏳ a reason,
then the new date), the centre's ✅ / ❌ on a request for more time, and an assisting
department's answer (协办, ✍️), and the centre asking one more department to assist (🤝 under
its dispatch buttons, when the ticket is with a lead department).

```mermaid
stateDiagram-v2
    [*] --> reason: ↩️ 退单 or ⏳ 延期 on the card (lead department staff)
    reason --> [*]: 退单 — returned to the centre
    reason --> date: 延期 — the reason, then
    date --> [*]: the new date — the centre is asked
    [*] --> answer: ✍️ on a 协办 request (assisting department staff)
    answer --> [*]: answered — the lead reads it
```
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _

from bot.errors import InvalidInput
from bot.services.actor import Actor
from bot.services.ticket_numbers import shown_number
from bot.services.tickets import casework
from bot.settings import Settings
from bot.telegram.callbacks import (
    AssistAddCb,
    AssistCb,
    CancelCb,
    CancelStepCb,
    ExtensionCb,
    ExtensionDecision,
    TicketAction,
    TicketCb,
    step_tag,
)
from bot.telegram.cancelling import cancel_only
from bot.telegram.render import code, esc
from bot.telegram.replies import Replier, pressed
from bot.telegram.report_views import refusal_text
from bot.telegram.ticket_views import local_time


class Casework(StatesGroup):
    """What the bot waits for: a 退单 reason, a 延期 reason and then its date, a 协办 answer."""

    return_reason = State()
    extension_reason = State()
    extension_date = State()
    assist_answer = State()


def _cancel(step: State, ticket_id: int) -> InlineKeyboardMarkup:
    return cancel_only(_("Cancel"), CancelStepCb(step=step_tag(step.state), ticket=ticket_id))


async def card_pressed(
    query: CallbackQuery, callback_data: TicketCb, reply: Replier, actor: Actor, state: FSMContext
) -> None:
    """↩️ or ⏳ on the card: only the lead department's staff; ⏳ also an assisting
    department's, for its answer date (refused otherwise)."""
    check = casework.check_lead if callback_data.action == TicketAction.RETURN else None
    ticket = await (check or casework.check_asking)(
        actor.session,
        actor=actor.who,
        roles=actor.roles,
        ticket_id=callback_data.id,
        now=actor.now,
    )
    await query.answer()
    number = code(shown_number(ticket))
    if callback_data.action == TicketAction.RETURN:
        step = Casework.return_reason
        prompt = _("Why is ticket {number} not your department's? Write the reason:")
    else:
        step = Casework.extension_reason
        prompt = _("Why does ticket {number} need more time? Write the reason:")
    await state.set_state(step)
    await state.update_data(ticket_id=ticket.id)
    reply.text(prompt.format(number=number), _cancel(step, ticket.id or 0))


async def return_reason(message: Message, reply: Replier, actor: Actor, state: FSMContext) -> None:
    ticket_id = int((await state.get_data()).get("ticket_id", 0))
    try:
        returned = await casework.return_ticket(
            actor.session,
            actor.notifier,
            actor=actor.who,
            roles=actor.roles,
            ticket_id=ticket_id,
            reason=message.text or "",
            now=actor.now,
        )
    except InvalidInput as refusal:
        reply.text(refusal_text(refusal), _cancel(Casework.return_reason, ticket_id))
        return
    await state.clear()
    reply.text(
        _(
            "Ticket {number} is returned to the street centre (退单), which will dispatch it "
            "again."
        ).format(number=code(shown_number(returned.ticket)))
    )


async def extension_reason(
    message: Message, reply: Replier, actor: Actor, state: FSMContext
) -> None:
    ticket_id = int((await state.get_data()).get("ticket_id", 0))
    reason = message.text or ""
    try:  # checked now, so a bad reason is not found out only after the date
        casework.clean_reason(reason)
    except InvalidInput as refusal:
        reply.text(refusal_text(refusal), _cancel(Casework.extension_reason, ticket_id))
        return
    await state.set_state(Casework.extension_date)
    await state.update_data(reason=reason)
    reply.text(
        esc(_("Until which day? Send the date, such as 2026-12-31 or 12-31.")),
        _cancel(Casework.extension_date, ticket_id),
    )


async def extension_date(
    message: Message, reply: Replier, actor: Actor, state: FSMContext, settings: Settings
) -> None:
    data = await state.get_data()
    ticket_id = int(data.get("ticket_id", 0))
    try:
        asked = await casework.ask_extension(
            actor.session,
            actor.notifier,
            actor=actor.who,
            roles=actor.roles,
            ticket_id=ticket_id,
            reason=str(data.get("reason", "")),
            wanted_text=message.text or "",
            now=actor.now,
        )
    except InvalidInput as refusal:
        reply.text(refusal_text(refusal), _cancel(Casework.extension_date, ticket_id))
        return
    await state.clear()
    reply.text(
        _(
            "Your request for more time for ticket {number}, until {wanted}, went to the street "
            "centre. The deadline stays {deadline} until it is approved."
        ).format(
            number=code(shown_number(asked.ticket)),
            wanted=local_time(asked.request.wanted, settings.tz),
            deadline=local_time(asked.ticket.resolve_deadline, settings.tz),
        )
    )


async def extension_decided(
    query: CallbackQuery,
    callback_data: ExtensionCb,
    reply: Replier,
    actor: Actor,
    settings: Settings,
) -> None:
    approve = callback_data.decision == ExtensionDecision.APPROVE
    ticket, request = await casework.decide_extension(
        actor.session,
        actor.notifier,
        actor=actor.who,
        roles=actor.roles,
        request_id=callback_data.id,
        approve=approve,
        now=actor.now,
    )
    number = code(shown_number(ticket))
    deadline = local_time(ticket.resolve_deadline, settings.tz)
    if request.department_id != ticket.owner_department_id:  # an assisting department's date
        deadline = local_time(request.wanted if approve else request.old_deadline, settings.tz)
    text = (
        _("Approved: ticket {number} is now due {deadline}.")
        if approve
        else _("Refused: ticket {number} stays due {deadline}.")
    ).format(number=number, deadline=deadline)
    await query.answer()
    reply.show(pressed(query), text)


async def assist_pressed(
    query: CallbackQuery, callback_data: AssistCb, reply: Replier, actor: Actor, state: FSMContext
) -> None:
    _assist, ticket = await casework.assist_for_answer(
        actor.session,
        actor=actor.who,
        roles=actor.roles,
        assist_id=callback_data.id,
        now=actor.now,
    )
    await query.answer()
    await state.set_state(Casework.assist_answer)
    await state.update_data(assist_id=callback_data.id, ticket_id=ticket.id)
    reply.text(
        _("Write your department's answer on ticket {number} (协办):").format(
            number=code(shown_number(ticket))
        ),
        _cancel(Casework.assist_answer, ticket.id or 0),
    )


async def assist_answer(message: Message, reply: Replier, actor: Actor, state: FSMContext) -> None:
    data = await state.get_data()
    ticket_id = int(data.get("ticket_id", 0))
    try:
        ticket = await casework.answer_assist(
            actor.session,
            actor.notifier,
            actor=actor.who,
            roles=actor.roles,
            assist_id=int(data.get("assist_id", 0)),
            text=message.text or "",
            now=actor.now,
        )
    except InvalidInput as refusal:
        reply.text(refusal_text(refusal), _cancel(Casework.assist_answer, ticket_id))
        return
    await state.clear()
    reply.text(
        _("Your answer on ticket {number} went to the lead department.").format(
            number=code(shown_number(ticket))
        )
    )


async def assist_add_pressed(
    query: CallbackQuery,
    callback_data: AssistAddCb,
    reply: Replier,
    actor: Actor,
    settings: Settings,
) -> None:
    """🤝 under the centre's dispatch buttons: the departments to ask, then the one chosen."""
    if callback_data.department == 0:
        ticket, candidates = await casework.assist_candidates(
            actor.session,
            actor=actor.who,
            roles=actor.roles,
            ticket_id=callback_data.id,
            now=actor.now,
        )
        await query.answer()
        if not candidates:
            reply.text(_("No other department can be asked to assist."))
            return
        buttons = [
            [
                InlineKeyboardButton(
                    text=d.name,
                    callback_data=AssistAddCb(id=callback_data.id, department=d.id or 0).pack(),
                )
            ]
            for d in candidates
        ]
        buttons.append([InlineKeyboardButton(text=_("Cancel"), callback_data=CancelCb().pack())])
        reply.text(
            _("Which department should assist (协办) on ticket {number}?").format(
                number=code(shown_number(ticket))
            ),
            InlineKeyboardMarkup(inline_keyboard=buttons),
        )
        return
    ticket, assist, helper = await casework.add_assist(
        actor.session,
        actor.notifier,
        actor=actor.who,
        roles=actor.roles,
        ticket_id=callback_data.id,
        department_id=callback_data.department,
        now=actor.now,
    )
    await query.answer()
    reply.show(
        pressed(query),
        _("{department} is asked to assist (协办) on ticket {number}, answering by {due}.").format(
            department=esc(helper.name),
            number=code(shown_number(ticket)),
            due=local_time(assist.due_at, settings.tz),
        ),
    )


def build_router() -> Router:
    router = Router(name=__name__)
    router.callback_query.register(
        card_pressed,
        TicketCb.filter(F.action.in_({TicketAction.RETURN, TicketAction.EXTEND})),
    )
    router.callback_query.register(extension_decided, ExtensionCb.filter())
    router.callback_query.register(assist_pressed, AssistCb.filter())
    router.callback_query.register(assist_add_pressed, AssistAddCb.filter())
    typed = (F.text, ~F.text.startswith("/"))
    router.message.register(return_reason, StateFilter(Casework.return_reason), *typed)
    router.message.register(extension_reason, StateFilter(Casework.extension_reason), *typed)
    router.message.register(extension_date, StateFilter(Casework.extension_date), *typed)
    router.message.register(assist_answer, StateFilter(Casework.assist_answer), *typed)
    return router
