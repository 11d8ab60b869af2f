"""Staff intake (受理登记): ``/report`` from a grid worker, head, centre operator, admin or
department member files a ticket for a grid in their scope, with where it came from.

```mermaid
stateDiagram-v2
    [*] --> source: /report (staff)
    source --> hotline: 12345
    hotline --> grid: its order number
    source --> grid: 巡查 / 来电 / 来访 / 交办
    grid --> category: a grid of one's scope (chosen at once when there is one)
    category --> caller: 来电 / 来访 / 12345 / 交办
    category --> description: 巡查发现
    caller --> description: name and phone (or -)
    description --> [*]: filed, routed, on the clock
```
"""

from __future__ import annotations

from typing import Any

from aiogram import F, Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _

from bot import labels
from bot.errors import InvalidInput
from bot.services import intake
from bot.services.actor import Actor
from bot.services.grids import GridChoices
from bot.services.phones import mask_phone
from bot.services.ticket_numbers import shown_number
from bot.settings import Settings
from bot.telegram.admin_views import grid_picker_keyboard, grid_picker_text
from bot.telegram.callbacks import (
    CancelCb,
    IntakeCategoryCb,
    IntakeGridCb,
    IntakeSourceCb,
    PickStep,
)
from bot.telegram.render import bold, esc
from bot.telegram.replies import Replier, pressed
from bot.telegram.report_views import refusal_text
from models import STAFF_SOURCES, Grid, TicketCategory, TicketSource


class StaffIntake(StatesGroup):
    source = State()
    hotline = State()
    grid = State()
    category = State()
    caller = State()
    description = State()


def _cancel_row() -> list[InlineKeyboardButton]:
    return [InlineKeyboardButton(text=_("Cancel"), callback_data=CancelCb().pack())]


def _cancel() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[_cancel_row()])


async def staff_only(message: Message, actor: Actor) -> bool:
    """``/report`` from staff is intake; a resident's goes on to the resident's report."""
    return intake.is_staff(actor.roles)


async def report_command(message: Message, reply: Replier, state: FSMContext) -> None:
    if message.chat.type != "private":
        reply.text(_("Please send /report to me in a private chat."))
        return
    buttons = [
        InlineKeyboardButton(
            text=_(labels.TICKET_SOURCE[source]),
            callback_data=IntakeSourceCb(source=source).pack(),
        )
        for source in STAFF_SOURCES
    ]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    await state.set_state(StaffIntake.source)
    await state.set_data({})
    reply.text(
        bold(_("File a ticket (受理登记)")) + "\n" + esc(_("Where did this come from?")),
        InlineKeyboardMarkup(inline_keyboard=[*rows, _cancel_row()]),
    )


async def source_chosen(
    query: CallbackQuery,
    callback_data: IntakeSourceCb,
    reply: Replier,
    actor: Actor,
    state: FSMContext,
) -> None:
    await query.answer()
    await state.update_data(source=callback_data.source.value)
    if callback_data.source == TicketSource.HOTLINE:
        await state.set_state(StaffIntake.hotline)
        reply.text(esc(_("The 12345 order number?")), _cancel())
        return
    await _ask_grid(reply, actor, state, None)


async def hotline_typed(message: Message, reply: Replier, actor: Actor, state: FSMContext) -> None:
    try:
        number = intake.clean_hotline_number(message.text or "")
    except InvalidInput as refusal:
        reply.text(refusal_text(refusal), _cancel())
        return
    await state.update_data(hotline=number)
    await _ask_grid(reply, actor, state, None)


def _picker(choices: GridChoices) -> tuple[str, InlineKeyboardMarkup]:
    def pack(grid_id: int, page: int, step: PickStep) -> str:
        return IntakeGridCb(grid=grid_id, page=page, step=step).pack()

    text = grid_picker_text(_("Which grid is the problem in?"), choices)
    return esc(text), grid_picker_keyboard(choices, pack)


async def _ask_grid(
    reply: Replier, actor: Actor, state: FSMContext, message_id: int | None
) -> None:
    choices = await intake.choices(actor.session, actor.who, actor.roles, actor.now)
    lone = choices.parent is None and len(choices.choices) == 1 and not choices.choices[0].children
    if lone or (choices.parent is not None and not choices.choices):
        grid = choices.choices[0].grid if lone else choices.parent
        assert grid is not None
        await _grid_chosen(reply, state, grid)
        return
    await state.set_state(StaffIntake.grid)
    reply.show(message_id, *_picker(choices))


async def grid_pressed(
    query: CallbackQuery,
    callback_data: IntakeGridCb,
    reply: Replier,
    actor: Actor,
    state: FSMContext,
) -> None:
    if callback_data.step == PickStep.OPEN:
        choices = await intake.choices(
            actor.session,
            actor.who,
            actor.roles,
            actor.now,
            parent_id=callback_data.grid,
            page=callback_data.page,
        )
        await query.answer()
        reply.show(pressed(query), *_picker(choices))
        return
    grid = await intake.grid_in_scope(
        actor.session, actor.who, actor.roles, callback_data.grid, actor.now
    )
    await query.answer()
    await _grid_chosen(reply, state, grid)


async def _grid_chosen(reply: Replier, state: FSMContext, grid: Grid) -> None:
    await state.update_data(grid_id=grid.id)
    await state.set_state(StaffIntake.category)
    buttons = [
        InlineKeyboardButton(
            text=_(labels.TICKET_CATEGORY[category]),
            callback_data=IntakeCategoryCb(category=category).pack(),
        )
        for category in TicketCategory
    ]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    reply.text(
        _("Grid: {grid}").format(grid=bold(esc(grid.name)))
        + "\n"
        + esc(_("What kind of problem is it?")),
        InlineKeyboardMarkup(inline_keyboard=[*rows, _cancel_row()]),
    )


async def category_chosen(
    query: CallbackQuery, callback_data: IntakeCategoryCb, reply: Replier, state: FSMContext
) -> None:
    await query.answer()
    data = await state.update_data(category=callback_data.category.value)
    if TicketSource(data.get("source", TicketSource.PATROL)) in intake.CALLER_SOURCES:
        await state.set_state(StaffIntake.caller)
        reply.text(
            esc(
                _(
                    "The caller's name and phone number, such as 王秀英 13812341234 "
                    "(send - if they would not say):"
                )
            ),
            _cancel(),
        )
        return
    await _ask_description(reply, state)


async def _ask_description(reply: Replier, state: FSMContext) -> None:
    await state.set_state(StaffIntake.description)
    reply.text(esc(_("Describe the problem, and where exactly it is:")), _cancel())


async def caller_typed(message: Message, reply: Replier, state: FSMContext) -> None:
    try:
        name, phone = intake.parse_caller(message.text or "")
    except InvalidInput as refusal:
        reply.text(refusal_text(refusal), _cancel())
        return
    await state.update_data(caller_name=name, caller_phone=phone)
    await _ask_description(reply, state)


async def description_typed(
    message: Message, reply: Replier, actor: Actor, state: FSMContext, settings: Settings
) -> None:
    data: dict[str, Any] = await state.get_data()
    try:
        ticket = await intake.file_for(
            actor.session,
            actor.notifier,
            staff=actor.who,
            roles=actor.roles,
            grid_id=int(data.get("grid_id", 0)),
            source=TicketSource(data.get("source", TicketSource.PATROL)),
            category=TicketCategory(data.get("category", TicketCategory.OTHER)),
            description=message.text or "",
            settings=settings,
            now=actor.now,
            caller_name=data.get("caller_name"),
            caller_phone=data.get("caller_phone"),
            hotline_number=data.get("hotline"),
        )
    except InvalidInput as refusal:
        reply.text(refusal_text(refusal), _cancel())
        return
    await state.clear()
    lines = [
        "✅ "
        + _("Ticket {number} is filed ({source}) and with its handlers now.").format(
            number=bold(shown_number(ticket)),
            source=_(labels.TICKET_SOURCE[TicketSource(ticket.source)]),
        )
    ]
    if ticket.caller_name or ticket.caller_phone:
        lines.append(
            _("For: {name} {phone}").format(
                name=esc(ticket.caller_name or "—"), phone=mask_phone(ticket.caller_phone)
            )
        )
        if ticket.reporter_id is None:
            lines.append(_("They do not use GridBot: call them back with the result."))
        else:
            lines.append(_("They use GridBot and will hear how it goes."))
    reply.text("\n".join(lines))


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(report_command, Command("report"), staff_only)
    router.callback_query.register(
        source_chosen, StateFilter(StaffIntake.source), IntakeSourceCb.filter()
    )
    router.callback_query.register(
        grid_pressed, StateFilter(StaffIntake.grid), IntakeGridCb.filter()
    )
    router.callback_query.register(
        category_chosen, StateFilter(StaffIntake.category), IntakeCategoryCb.filter()
    )
    typed = (F.text, ~F.text.startswith("/"))
    router.message.register(hotline_typed, StateFilter(StaffIntake.hotline), *typed)
    router.message.register(caller_typed, StateFilter(StaffIntake.caller), *typed)
    router.message.register(description_typed, StateFilter(StaffIntake.description), *typed)
    return router
