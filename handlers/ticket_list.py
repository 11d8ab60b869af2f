"""/tickets: the tickets in one's scope, ten a page, with filter buttons (state, overdue,
category, source, grid, department) — or the filters typed after the command."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from bot.errors import InvalidInput
from bot.services.actor import Actor
from bot.services.tickets import listing
from bot.services.tickets.listing import (
    BAD_CHOICE,
    CATEGORIES,
    SOURCES,
    STATES,
    TicketFilter,
    TicketPage,
    choice_at,
)
from bot.settings import Settings
from bot.telegram.callbacks import ListMenu, TicketListCb
from bot.telegram.i18n import t
from bot.telegram.replies import Replier
from bot.telegram.ticket_list_views import list_keyboard, list_text, menu_keyboard, menu_text
from models import Department, Grid


async def tickets_command(
    message: Message, command: CommandObject, reply: Replier, actor: Actor, settings: Settings
) -> None:
    """``/tickets`` (every open ticket in scope), or with filters typed after it."""
    wanted = await listing.parse_filter(
        actor.session, actor.who, actor.roles, command.args, actor.now
    )
    page = await listing.list_tickets(
        actor.session, actor.who, actor.roles, wanted, page=0, now=actor.now
    )
    reply.text(
        list_text(page, t, settings.tz, await _names(actor, page.filter)),
        list_keyboard(page, t),
    )


async def list_pressed(
    query: CallbackQuery,
    callback_data: TicketListCb,
    reply: Replier,
    actor: Actor,
    settings: Settings,
) -> None:
    """A filter, a page or a choice: the message becomes what was asked for."""
    if callback_data.overdue > 1:
        raise InvalidInput(BAD_CHOICE)  # no button of ours says more than yes or no
    wanted = TicketFilter(
        state=choice_at(STATES, callback_data.state),
        overdue=bool(callback_data.overdue),
        category=choice_at(CATEGORIES, callback_data.category),
        source=choice_at(SOURCES, callback_data.source),
        grid_id=callback_data.grid or None,
        department_id=callback_data.department or None,
    )
    if callback_data.menu == ListMenu.LIST:
        page = await listing.list_tickets(
            actor.session, actor.who, actor.roles, wanted, page=callback_data.page, now=actor.now
        )
        await query.answer()
        _show(query, reply, list_text(page, t, settings.tz, await _names(actor, wanted)), page)
        return
    if wanted.grid_id is not None:
        await listing.check_grid(actor.session, actor.who, actor.roles, wanted.grid_id, actor.now)
    grids = (
        await listing.grid_choices(actor.session, actor.who, actor.roles, wanted, actor.now)
        if callback_data.menu == ListMenu.GRID
        else []
    )
    departments = (
        await listing.department_choices(actor.session)
        if callback_data.menu == ListMenu.DEPARTMENT
        else []
    )
    await query.answer()
    keyboard = menu_keyboard(callback_data.menu, wanted, t, grids=grids, departments=departments)
    if isinstance(query.message, Message):
        reply.edit(query.message.message_id, menu_text(callback_data.menu, t), keyboard)
    else:
        reply.text(menu_text(callback_data.menu, t), keyboard)


def _show(query: CallbackQuery, reply: Replier, text: str, page: TicketPage) -> None:
    if isinstance(query.message, Message):
        reply.edit(query.message.message_id, text, list_keyboard(page, t))
    else:
        reply.text(text, list_keyboard(page, t))


async def _names(actor: Actor, wanted: TicketFilter) -> dict[str, str]:
    """The names of the grid and department filtered by, for the summary line."""
    names = {}
    if wanted.grid_id is not None:
        grid = await actor.session.get(Grid, wanted.grid_id)
        if grid is not None:
            names["grid"] = grid.name
    if wanted.department_id is not None:
        department = await actor.session.get(Department, wanted.department_id)
        if department is not None:
            names["department"] = department.name
    return names


async def list_forged(query: CallbackQuery) -> None:
    """/tickets data no button of ours carries: the stale-button answer."""
    await query.answer(_("This button is out of date. Send /tickets to begin again."))


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(tickets_command, Command("tickets"))
    router.callback_query.register(list_pressed, TicketListCb.filter())
    router.callback_query.register(list_forged, F.data.startswith(f"{TicketListCb.__prefix__}:"))
    return router
