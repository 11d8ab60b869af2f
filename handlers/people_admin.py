"""/people by buttons: each person in the list opens a card; from it an administrator gives
another role or grid (role → grid from their own scope → department for department staff),
stops someone reporting for a while (how long → why, typed), lets them report again, or
deactivates someone who left (asked first). The typed forms (``/people 停用 <phone>`` …, in
handlers/registry.py) stay as a shortcut. Every press re-checks, in the service, that the
presser manages every grid the person holds a role in.
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _

from bot import labels
from bot.errors import InvalidInput
from bot.i18n import N_, join_list
from bot.services import grids, people, staff
from bot.services.actor import Actor
from bot.services.permissions import Action, authorize
from bot.services.phones import display_phone
from bot.telegram.admin_views import (
    confirm_off_keyboard,
    department_keyboard,
    grid_picker_keyboard,
    grid_picker_text,
    mute_keyboard,
    person_keyboard,
    person_role_keyboard,
)
from bot.telegram.callbacks import (
    CancelCb,
    PersonAction,
    PersonCb,
    PersonDepartmentCb,
    PersonGridCb,
    PersonMuteCb,
    PersonRoleCb,
    PickStep,
)
from bot.telegram.cancelling import cancel_only
from bot.telegram.render import bold, esc
from bot.telegram.replies import Replier, pressed
from models import Department, Grid, Person, Role

OUT_OF_DATE = N_("This button is out of date. Send /start to begin again.")
ROLE_ORDER = (Role.WORKER, Role.HEAD, Role.CENTER, Role.DEPARTMENT, Role.SUPERVISOR, Role.ADMIN)


class PeopleInput(StatesGroup):
    reason = State()  # why someone may not report for a while (data: person_id, hours)


async def _card(actor: Actor, person: Person) -> str:
    held = await people.roles_of(actor.session, person.id or 0)
    roles = join_list(_, (f"{_(labels.ROLE[r.role])}·{r.grid_name}" for r in held)) or "—"
    lines = [
        bold(person.name),
        esc(display_phone(person.phone)) if person.phone else "",
        esc(roles),
    ]
    if not person.active:
        lines.append(esc(_("(deactivated)")))
    if person.muted_until is not None:
        lines.append(esc(_("May not report through the bot for now.")))
    return "\n".join(line for line in lines if line)


async def person_pressed(
    query: CallbackQuery, callback_data: PersonCb, reply: Replier, actor: Actor
) -> None:
    person = await staff.managed_person(
        actor.session,
        actor=actor.who,
        roles=actor.roles,
        person_id=callback_data.person,
        now=actor.now,
    )
    action, message_id = callback_data.action, pressed(query)
    name = bold(person.name)
    if action == PersonAction.OFF_YES:
        await staff.deactivate(
            actor.session, actor=actor.who, roles=actor.roles, person=person, now=actor.now
        )
        await query.answer()
        reply.show(message_id, _("{name} is deactivated.").format(name=name))
        return
    if action == PersonAction.UNMUTE:
        await staff.mute(
            actor.session,
            actor=actor.who,
            roles=actor.roles,
            person=person,
            hours=0,
            reason="",
            now=actor.now,
        )
        await query.answer()
        reply.show(message_id, _("{name} can report again.").format(name=name))
        return
    await query.answer()
    if action == PersonAction.OFF:
        text = _("Deactivate {name}? Their roles end and their pending invitations stop working.")
        reply.show(message_id, text.format(name=name), confirm_off_keyboard(person))
    elif action == PersonAction.MUTE:
        text = _("For how long may {name} not report through the bot?").format(name=name)
        reply.show(message_id, text, mute_keyboard(person))
    elif action == PersonAction.SET:
        text = _("Which role should {name} have?").format(name=name)
        reply.show(message_id, text, person_role_keyboard(person, list(ROLE_ORDER)))
    else:
        reply.show(message_id, await _card(actor, person), person_keyboard(person))


async def mute_span_pressed(
    query: CallbackQuery,
    callback_data: PersonMuteCb,
    reply: Replier,
    actor: Actor,
    state: FSMContext,
) -> None:
    person = await staff.managed_person(
        actor.session,
        actor=actor.who,
        roles=actor.roles,
        person_id=callback_data.person,
        now=actor.now,
    )
    await query.answer()
    await state.set_state(PeopleInput.reason)
    await state.update_data(person_id=person.id, hours=int(callback_data.hours.value))
    text = _("Why? {name} will read this when they try to report.").format(name=bold(person.name))
    reply.show(pressed(query), text, cancel_only(_("Cancel"), CancelCb()))


async def reason_typed(message: Message, reply: Replier, actor: Actor, state: FSMContext) -> None:
    data = await state.get_data()
    person = await staff.managed_person(
        actor.session,
        actor=actor.who,
        roles=actor.roles,
        person_id=int(data.get("person_id") or 0),
        now=actor.now,
    )
    hours = int(data.get("hours") or 0)
    await staff.mute(
        actor.session,
        actor=actor.who,
        roles=actor.roles,
        person=person,
        hours=hours,
        reason=message.text or "",
        now=actor.now,
    )
    await state.clear()
    reply.text(
        _("{name} cannot report through the bot for {hours} hours.").format(
            name=bold(person.name), hours=hours
        )
    )


async def role_pressed(
    query: CallbackQuery, callback_data: PersonRoleCb, reply: Replier, actor: Actor
) -> None:
    person = await staff.managed_person(
        actor.session,
        actor=actor.who,
        roles=actor.roles,
        person_id=callback_data.person,
        now=actor.now,
    )
    if callback_data.role not in ROLE_ORDER:
        raise InvalidInput(N_("Residents choose their grid themselves with its QR code."))
    choices = await grids.grid_choices(
        actor.session, actor.who, actor.roles, Action.MANAGE, actor.now
    )
    await query.answer()
    reply.show(pressed(query), *_grid_page(person, callback_data.role, choices))


def _grid_page(
    person: Person, role: Role, choices: grids.GridChoices
) -> tuple[str, InlineKeyboardMarkup]:
    question = _("{name} as {role} of which grid?").format(
        name=person.name, role=_(labels.ROLE[role])
    )

    def pack(grid_id: int, page: int, step: PickStep) -> str:
        return PersonGridCb(
            person=person.id or 0, role=role, grid=grid_id, page=page, step=step
        ).pack()

    return esc(grid_picker_text(question, choices)), grid_picker_keyboard(choices, pack)


async def grid_pressed(
    query: CallbackQuery, callback_data: PersonGridCb, reply: Replier, actor: Actor
) -> None:
    person = await staff.managed_person(
        actor.session,
        actor=actor.who,
        roles=actor.roles,
        person_id=callback_data.person,
        now=actor.now,
    )
    role, message_id = callback_data.role, pressed(query)
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
        reply.show(message_id, *_grid_page(person, role, choices))
        return
    grid = await actor.session.get(Grid, callback_data.grid)
    if grid is None:
        await query.answer(_(OUT_OF_DATE))
        return
    if role == Role.DEPARTMENT:
        await authorize(actor.session, actor.who, actor.roles, Action.MANAGE, grid, actor.now)
        await query.answer()
        page = await staff.department_page(actor.session)
        reply.show(message_id, esc(_("Which department?")), _departments(person, grid, page))
        return
    text = await _rescope(actor, person, role, grid, None)
    await query.answer()
    reply.show(message_id, text)


def _departments(person: Person, grid: Grid, page: staff.DepartmentPage) -> InlineKeyboardMarkup:
    def pack(department_id: int, page_no: int) -> str:
        return PersonDepartmentCb(
            person=person.id or 0, grid=grid.id or 0, department=department_id, page=page_no
        ).pack()

    return department_keyboard(page, pack)


async def department_pressed(
    query: CallbackQuery, callback_data: PersonDepartmentCb, reply: Replier, actor: Actor
) -> None:
    person = await staff.managed_person(
        actor.session,
        actor=actor.who,
        roles=actor.roles,
        person_id=callback_data.person,
        now=actor.now,
    )
    grid = await actor.session.get(Grid, callback_data.grid)
    department = (
        await actor.session.get(Department, callback_data.department)
        if callback_data.department
        else None
    )
    if grid is None or (callback_data.department and department is None):
        await query.answer(_(OUT_OF_DATE))
        return
    if department is None:
        await authorize(actor.session, actor.who, actor.roles, Action.MANAGE, grid, actor.now)
        await query.answer()
        page = await staff.department_page(actor.session, callback_data.page)
        reply.show(
            pressed(query),
            esc(_("Which department?")),
            _departments(person, grid, page),
        )
        return
    text = await _rescope(actor, person, Role.DEPARTMENT, grid, department)
    await query.answer()
    reply.show(pressed(query), text)


async def _rescope(
    actor: Actor, target: Person, role: Role, grid: Grid, department: Department | None
) -> str:
    """Give ``target`` the role over the grid (the service re-checks it all); what to say."""
    await staff.rescope(
        actor.session,
        actor=actor.who,
        roles=actor.roles,
        person=target,
        role=role,
        grid=grid,
        now=actor.now,
        department=department,
    )
    return _("{name} is now {role} of {grid}.").format(
        name=bold(target.name), role=_(labels.ROLE[role]), grid=bold(grid.name)
    )


def build_router() -> Router:
    router = Router(name=__name__)
    router.callback_query.register(person_pressed, PersonCb.filter())
    router.callback_query.register(mute_span_pressed, PersonMuteCb.filter())
    router.callback_query.register(role_pressed, PersonRoleCb.filter())
    router.callback_query.register(grid_pressed, PersonGridCb.filter())
    router.callback_query.register(department_pressed, PersonDepartmentCb.filter())
    router.message.register(
        reason_typed, StateFilter(PeopleInput.reason), F.text, ~F.text.startswith("/")
    )
    return router
