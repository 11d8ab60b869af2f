"""/departments (职能部门) by buttons: an admin of the street centre creates, renames and
retires departments, says which categories each handles, sends those categories straight to
it (a routing rule in the policy), and invites its staff (the invite link of /invite).

```mermaid
stateDiagram-v2
    [*] --> list: /departments
    list --> card: a department
    list --> name: ➕ New (type the name, optionally its code)
    name --> card: created
    card --> rename: ✏️ Rename (type the name)
    rename --> card
    card --> categories: 🏷 Categories (toggle buttons)
    categories --> card
    card --> card: 📮 Route here on / off (a policy rule)
    card --> confirm: 🗄 Retire
    confirm --> list: retired
    card --> invite: 👥 Invite staff (an invite link)
```
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _

from bot import labels
from bot.errors import InvalidInput
from bot.services import departments
from bot.services.actor import Actor
from bot.telegram.callbacks import (
    CancelCb,
    DepartmentAction,
    DepartmentCategoryCb,
    DepartmentCb,
    InviteDepartmentCb,
)
from bot.telegram.render import bold, code, esc
from bot.telegram.replies import Replier, pressed
from bot.telegram.report_views import refusal_text
from models import Department, TicketCategory

PER_PAGE = 8
MAX_LABEL = 40


class DepartmentInput(StatesGroup):
    """What the bot waits for: a new department's name, or a new name for one."""

    name = State()


def _button(text: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data)


def _list_keyboard(rows: list[Department], page: int, pages: int) -> InlineKeyboardMarkup:
    buttons = [
        [
            _button(
                ("" if d.active else "🗄 ") + d.name[:MAX_LABEL],
                DepartmentCb(action=DepartmentAction.OPEN, id=d.id or 0).pack(),
            )
        ]
        for d in rows
    ]
    moves = []
    if page > 0:
        moves.append(
            _button(
                _("◀ Previous"),
                DepartmentCb(action=DepartmentAction.LIST, id=0, page=page - 1).pack(),
            )
        )
    if page < pages - 1:
        moves.append(
            _button(
                _("Next ▶"), DepartmentCb(action=DepartmentAction.LIST, id=0, page=page + 1).pack()
            )
        )
    if moves:
        buttons.append(moves)
    buttons.append(
        [_button(_("➕ New department"), DepartmentCb(action=DepartmentAction.NEW, id=0).pack())]
    )
    buttons.append([_button(_("Cancel"), CancelCb().pack())])
    return InlineKeyboardMarkup(inline_keyboard=buttons)


async def _list(actor: Actor, page: int) -> tuple[str, InlineKeyboardMarkup]:
    await departments.check_manager(actor.session, actor.who, actor.roles, actor.now)
    active = await departments.active_departments(actor.session)
    pages = max(1, -(-len(active) // PER_PAGE))
    page = min(max(page, 0), pages - 1)
    shown = active[page * PER_PAGE : (page + 1) * PER_PAGE]
    text = (
        bold(_("Departments (职能部门)"))
        + "\n"
        + esc(
            _(
                "Tap one to manage it, or add a new one. A sheet of departments can be sent too, "
                "with the caption 部门."
            )
        )
    )
    return text, _list_keyboard(shown, page, pages)


def _card(view: departments.DepartmentView) -> tuple[str, InlineKeyboardMarkup]:
    department = view.department
    handled = "、".join(
        _(labels.TICKET_CATEGORY[TicketCategory(c)])
        for c in department.categories
        if c in departments.CATEGORY_VALUES
    )
    lines = [
        bold(esc(department.name)) + f" · {code(department.code)}",
        _("Staff: {count}").format(count=view.staff),
        _("Open tickets it leads: {count}").format(count=view.open_tickets),
        _("Handles: {categories}").format(categories=esc(handled or "—")),
        _("Routed straight to it: {answer}").format(answer=_("yes") if view.routed else _("no")),
    ]
    if not department.active:
        lines.append(_("🗄 Retired"))
    ident = department.id or 0

    def data(action: DepartmentAction) -> str:
        return DepartmentCb(action=action, id=ident).pack()

    rows: list[list[InlineKeyboardButton]] = []
    if department.active:
        route = (
            _button(_("📮 Stop routing here"), data(DepartmentAction.ROUTE_OFF))
            if view.routed
            else _button(_("📮 Route its categories here"), data(DepartmentAction.ROUTE_ON))
        )
        invite = InviteDepartmentCb(grid=department.grid_id, department=ident, page=0).pack()
        rows = [
            [
                _button(_("🏷 Categories"), data(DepartmentAction.CATEGORIES)),
                _button(_("✏️ Rename"), data(DepartmentAction.RENAME)),
            ],
            [route],
            [
                _button(_("👥 Invite staff"), invite),
                _button(_("🗄 Retire"), data(DepartmentAction.RETIRE)),
            ],
        ]
    rows.append([_button(_("⬅️ All departments"), data(DepartmentAction.LIST))])
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


def _categories_keyboard(department: Department) -> InlineKeyboardMarkup:
    ident = department.id or 0
    buttons = [
        _button(
            ("✅ " if category.value in department.categories else "")
            + _(labels.TICKET_CATEGORY[category]),
            DepartmentCategoryCb(id=ident, category=category).pack(),
        )
        for category in TicketCategory
    ]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    rows.append(
        [_button(_("✔️ Done"), DepartmentCb(action=DepartmentAction.OPEN, id=ident).pack())]
    )
    return InlineKeyboardMarkup(inline_keyboard=rows)


async def departments_command(message: Message, reply: Replier, actor: Actor) -> None:
    reply.text(*await _list(actor, 0))


async def _show_card(actor: Actor, department_id: int) -> tuple[str, InlineKeyboardMarkup]:
    view = await departments.view(
        actor.session,
        actor=actor.who,
        roles=actor.roles,
        department_id=department_id,
        now=actor.now,
    )
    return _card(view)


async def department_pressed(
    query: CallbackQuery,
    callback_data: DepartmentCb,
    reply: Replier,
    actor: Actor,
    state: FSMContext,
) -> None:
    action, ident, where = callback_data.action, callback_data.id, pressed(query)
    session, who, roles, now = actor.session, actor.who, actor.roles, actor.now
    if action == DepartmentAction.LIST:
        text, keyboard = await _list(actor, callback_data.page)
        await query.answer()
        reply.show(where, text, keyboard)
        return
    if action in {DepartmentAction.NEW, DepartmentAction.RENAME}:
        await departments.check_manager(session, who, roles, now)
        if action == DepartmentAction.RENAME:
            await departments.view(session, actor=who, roles=roles, department_id=ident, now=now)
        await query.answer()
        await state.set_state(DepartmentInput.name)
        await state.update_data(department_id=ident)
        prompt = (
            _("Type the new department's name, and its code if you like: 消防站 xfz")
            if action == DepartmentAction.NEW
            else _("Type the department's new name:")
        )
        reply.text(
            esc(prompt),
            InlineKeyboardMarkup(inline_keyboard=[[_button(_("Cancel"), CancelCb().pack())]]),
        )
        return
    if action == DepartmentAction.CATEGORIES:
        view = await departments.view(
            session, actor=who, roles=roles, department_id=ident, now=now
        )
        await query.answer()
        text = _("Which categories does {name} handle? Tap to add or take away.").format(
            name=bold(esc(view.department.name))
        )
        reply.show(where, text, _categories_keyboard(view.department))
        return
    if action in {DepartmentAction.ROUTE_ON, DepartmentAction.ROUTE_OFF}:
        on = action == DepartmentAction.ROUTE_ON
        try:
            await departments.route_here(
                session, actor=who, roles=roles, department_id=ident, on=on, now=now
            )
        except InvalidInput as refusal:
            await query.answer(refusal_text(refusal)[:200], show_alert=True)
            return
        await query.answer(
            _("New tickets of its categories now go straight to it.")
            if on
            else _("Its categories follow the other routing rules again.")
        )
        reply.show(where, *await _show_card(actor, ident))
        return
    if action == DepartmentAction.RETIRE:
        view = await departments.view(
            session, actor=who, roles=roles, department_id=ident, now=now
        )
        await query.answer()
        yes = DepartmentCb(action=DepartmentAction.RETIRE_YES, id=ident).pack()
        no = DepartmentCb(action=DepartmentAction.OPEN, id=ident).pack()
        reply.show(
            where,
            _("Retire {name}? Its staff keep their accounts; it takes no new tickets.").format(
                name=bold(esc(view.department.name))
            ),
            InlineKeyboardMarkup(
                inline_keyboard=[[_button(_("🗄 Retire"), yes), _button(_("Cancel"), no)]]
            ),
        )
        return
    if action == DepartmentAction.RETIRE_YES:
        department = await departments.retire(
            session, actor=who, roles=roles, department_id=ident, now=now
        )
        await query.answer(_("{name} is retired.").format(name=department.name))
        reply.show(where, *await _list(actor, 0))
        return
    await query.answer()
    reply.show(where, *await _show_card(actor, ident))


async def category_pressed(
    query: CallbackQuery, callback_data: DepartmentCategoryCb, reply: Replier, actor: Actor
) -> None:
    department = await departments.toggle_category(
        actor.session,
        actor=actor.who,
        roles=actor.roles,
        department_id=callback_data.id,
        category=callback_data.category,
        now=actor.now,
    )
    await query.answer()
    text = _("Which categories does {name} handle? Tap to add or take away.").format(
        name=bold(esc(department.name))
    )
    reply.show(pressed(query), text, _categories_keyboard(department))


async def name_typed(message: Message, reply: Replier, actor: Actor, state: FSMContext) -> None:
    ident = int((await state.get_data()).get("department_id", 0))
    text = message.text or ""
    try:
        if ident:
            department = await departments.rename(
                actor.session,
                actor=actor.who,
                roles=actor.roles,
                department_id=ident,
                text=text,
                now=actor.now,
            )
        else:
            department = await departments.create(
                actor.session, actor=actor.who, roles=actor.roles, text=text, now=actor.now
            )
    except InvalidInput as refusal:
        reply.text(
            refusal_text(refusal),
            InlineKeyboardMarkup(inline_keyboard=[[_button(_("Cancel"), CancelCb().pack())]]),
        )
        return
    await state.clear()
    reply.text(*await _show_card(actor, department.id or 0))


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(departments_command, Command("departments"))
    router.callback_query.register(department_pressed, DepartmentCb.filter())
    router.callback_query.register(category_pressed, DepartmentCategoryCb.filter())
    router.message.register(
        name_typed, StateFilter(DepartmentInput.name), F.text, ~F.text.startswith("/")
    )
    return router
