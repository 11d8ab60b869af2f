"""/grid 新增|改名|移动|公示 by buttons: the grid is picked from one's own scope, a level and a
page at a time; only the new name or notice text is typed. ``/grid add <parent> <name>`` and
the other typed forms (handlers/registry.py) stay as a shortcut.

    /grid 新增  → pick the parent → type the name → added
    /grid 改名  → pick the grid → type the new name → renamed
    /grid 移动  → pick the grid → pick its new parent → moved
    /grid 公示  → pick the grid → pick the field → type the text → updated
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _

from bot.i18n import N_
from bot.services import grids
from bot.services.actor import Actor
from bot.services.permissions import Action, authorize
from bot.telegram.admin_views import grid_picker_keyboard, grid_picker_text
from bot.telegram.callbacks import (
    CancelCb,
    GridEditCb,
    GridOp,
    NoticeField,
    NoticeFieldCb,
    PickStep,
)
from bot.telegram.cancelling import cancel_only
from bot.telegram.render import bold, code, esc
from bot.telegram.replies import Replier, pressed
from models import Grid

OUT_OF_DATE = N_("This button is out of date. Send /start to begin again.")
QUESTIONS: dict[GridOp, str] = {
    GridOp.ADD: N_("Under which grid does the new grid go?"),
    GridOp.RENAME: N_("Which grid do you want to rename?"),
    GridOp.MOVE: N_("Which grid do you want to move?"),
    GridOp.NOTICE: N_("Which grid's notice board do you want to change?"),
}
FIELDS: dict[NoticeField, str] = {
    NoticeField.AREA: N_("📍 Area"),
    NoticeField.SERVICES: N_("🛎 Services"),
    NoticeField.PROCESS: N_("📣 How to complain"),
    NoticeField.PHONE: N_("☎️ Complaint phone"),
}


class GridInput(StatesGroup):
    """What is typed after a grid was picked by buttons."""

    name = State()  # the new grid's name (ADD) or the grid's new name (RENAME)
    notice = State()  # the text of one notice-board field


def _picker(
    op: GridOp, subject: Grid | None, choices: grids.GridChoices
) -> tuple[str, InlineKeyboardMarkup]:
    if subject is None:
        question = _(QUESTIONS[op])
    else:
        question = _("Move {grid} under which grid?").format(grid=subject.name)

    def pack(grid_id: int, page: int, step: PickStep) -> str:
        subject_id = subject.id or 0 if subject is not None else 0
        return GridEditCb(op=op, subject=subject_id, grid=grid_id, page=page, step=step).pack()

    return esc(grid_picker_text(question, choices)), grid_picker_keyboard(choices, pack)


async def start(op: GridOp, reply: Replier, actor: Actor) -> None:
    """``/grid 新增`` (and the others) without their arguments: the first picker."""
    choices = await grids.grid_choices(
        actor.session, actor.who, actor.roles, Action.MANAGE, actor.now
    )
    reply.text(*_picker(op, None, choices))


async def grid_edit_pressed(
    query: CallbackQuery,
    callback_data: GridEditCb,
    reply: Replier,
    actor: Actor,
    state: FSMContext,
) -> None:
    op, message_id = callback_data.op, pressed(query)
    subject = None
    if callback_data.subject:
        subject = await actor.session.get(Grid, callback_data.subject)
        if subject is None or op != GridOp.MOVE:
            await query.answer(_(OUT_OF_DATE))
            return
        await authorize(actor.session, actor.who, actor.roles, Action.MANAGE, subject, actor.now)
    if callback_data.step == PickStep.OPEN:
        choices = await grids.grid_choices(
            actor.session,
            actor.who,
            actor.roles,
            Action.MANAGE,
            actor.now,
            parent_id=callback_data.grid,
            page=callback_data.page,
        )
        await query.answer()
        reply.show(message_id, *_picker(op, subject, choices))
        return
    grid = await actor.session.get(Grid, callback_data.grid)
    if grid is None:
        await query.answer(_(OUT_OF_DATE))
        return
    await authorize(actor.session, actor.who, actor.roles, Action.MANAGE, grid, actor.now)
    if op == GridOp.MOVE and subject is not None:
        await grids.move_grid(
            actor.session,
            actor=actor.who,
            roles=actor.roles,
            grid=subject,
            new_parent=grid,
            now=actor.now,
        )
        await query.answer()
        reply.show(
            message_id,
            _("Grid {name} moved under {parent}; its new code is {code}.").format(
                name=bold(subject.name), parent=bold(grid.name), code=code(subject.code)
            ),
        )
        return
    if op == GridOp.MOVE:  # the grid to move is chosen: now its new parent
        choices = await grids.grid_choices(
            actor.session, actor.who, actor.roles, Action.MANAGE, actor.now
        )
        await query.answer()
        reply.show(message_id, *_picker(op, grid, choices))
        return
    await query.answer()
    if op == GridOp.NOTICE:
        buttons = [
            InlineKeyboardButton(
                text=_(label), callback_data=NoticeFieldCb(grid=grid.id or 0, field=field).pack()
            )
            for field, label in FIELDS.items()
        ]
        rows = [
            buttons[:2],
            buttons[2:],
            [InlineKeyboardButton(text=_("Cancel"), callback_data=CancelCb().pack())],
        ]
        text = _("Which part of the notice board of {grid}?").format(grid=bold(grid.name))
        reply.show(message_id, text, InlineKeyboardMarkup(inline_keyboard=rows))
        return
    await state.set_state(GridInput.name)
    await state.update_data(op=op.value, grid_id=grid.id)
    prompt = (
        _("Write the name of the new grid under {grid}:")
        if op == GridOp.ADD
        else _("Write the new name of {grid}:")
    )
    reply.show(
        message_id,
        prompt.format(grid=bold(grid.name)),
        cancel_only(_("Cancel"), CancelCb()),
    )


async def notice_field_pressed(
    query: CallbackQuery,
    callback_data: NoticeFieldCb,
    reply: Replier,
    actor: Actor,
    state: FSMContext,
) -> None:
    grid = await actor.session.get(Grid, callback_data.grid)
    if grid is None:
        await query.answer(_(OUT_OF_DATE))
        return
    await authorize(actor.session, actor.who, actor.roles, Action.MANAGE, grid, actor.now)
    await query.answer()
    await state.set_state(GridInput.notice)
    await state.update_data(grid_id=grid.id, field=callback_data.field.value)
    text = _("Write the new text for {field} of {grid}:").format(
        field=_(FIELDS[callback_data.field]), grid=bold(grid.name)
    )
    reply.show(pressed(query), text, cancel_only(_("Cancel"), CancelCb()))


async def name_typed(message: Message, reply: Replier, actor: Actor, state: FSMContext) -> None:
    data = await state.get_data()
    grid = await actor.session.get(Grid, data.get("grid_id") or 0)
    if grid is None:
        await state.clear()
        reply.text(_(OUT_OF_DATE))
        return
    name = message.text or ""
    if data.get("op") == GridOp.ADD.value:
        new = await grids.create_grid(
            actor.session,
            actor=actor.who,
            roles=actor.roles,
            parent=grid,
            name=name,
            now=actor.now,
        )
        text = _("Grid {name} added with the code {code}.").format(
            name=bold(new.name), code=code(new.code)
        )
    else:
        await grids.rename_grid(
            actor.session, actor=actor.who, roles=actor.roles, grid=grid, name=name, now=actor.now
        )
        text = _("Grid {code} is now called {name}.").format(
            code=code(grid.code), name=bold(grid.name)
        )
    await state.clear()
    reply.text(text)


async def notice_typed(message: Message, reply: Replier, actor: Actor, state: FSMContext) -> None:
    data = await state.get_data()
    grid = await actor.session.get(Grid, data.get("grid_id") or 0)
    if grid is None:
        await state.clear()
        reply.text(_(OUT_OF_DATE))
        return
    await grids.set_notice(
        actor.session,
        actor=actor.who,
        roles=actor.roles,
        grid=grid,
        field_name=str(data.get("field", "")),
        value=message.text or "",
        now=actor.now,
    )
    await state.clear()
    reply.text(_("Notice board of {name} updated.").format(name=bold(grid.name)))


def build_router() -> Router:
    router = Router(name=__name__)
    typed = (F.text, ~F.text.startswith("/"))
    router.callback_query.register(grid_edit_pressed, GridEditCb.filter())
    router.callback_query.register(notice_field_pressed, NoticeFieldCb.filter())
    router.message.register(name_typed, StateFilter(GridInput.name), *typed)
    router.message.register(notice_typed, StateFilter(GridInput.notice), *typed)
    return router
