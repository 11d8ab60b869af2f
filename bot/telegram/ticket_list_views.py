"""/tickets in the chat: a page of tickets with a button each, a row of filter buttons, ◀ ▶,
and one filter's choices as big buttons (easy on a small phone; nothing has to be typed)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot import labels
from bot.services.ticket_numbers import shown_number
from bot.services.tickets.listing import (
    CATEGORIES,
    FILTERS,
    SOURCES,
    STATES,
    FilterName,
    TicketFilter,
    TicketPage,
    choice_index,
)
from bot.telegram.callbacks import ListMenu, TicketAction, TicketCb, TicketListCb
from bot.telegram.render import bold, code, esc
from bot.telegram.ticket_views import local_time
from models import Department, Grid, TicketState

Translate = Callable[..., str]

MENU_OF: dict[FilterName, ListMenu] = {
    FilterName.STATE: ListMenu.STATE,
    FilterName.CATEGORY: ListMenu.CATEGORY,
    FilterName.SOURCE: ListMenu.SOURCE,
    FilterName.GRID: ListMenu.GRID,
    FilterName.DEPARTMENT: ListMenu.DEPARTMENT,
}


def list_cb(wanted: TicketFilter, *, page: int = 0, menu: ListMenu = ListMenu.LIST) -> str:
    return TicketListCb(
        state=choice_index(STATES, wanted.state),
        overdue=1 if wanted.overdue else 0,
        category=choice_index(CATEGORIES, wanted.category),
        source=choice_index(SOURCES, wanted.source),
        grid=wanted.grid_id or 0,
        department=wanted.department_id or 0,
        page=page,
        menu=menu,
    ).pack()


def filter_summary(wanted: TicketFilter, t: Translate, names: dict[str, str]) -> str:
    """The filters in force, in words: "超期 · 消防隐患 · 网格 A"."""
    parts = []
    if wanted.state is not None:
        parts.append(t(labels.TICKET_STATE[wanted.state]))
    if wanted.overdue:
        parts.append(t("overdue"))
    if wanted.category is not None:
        parts.append(t(labels.TICKET_CATEGORY[wanted.category]))
    if wanted.source is not None:
        parts.append(t(labels.TICKET_SOURCE[wanted.source]))
    parts += [names[key] for key in ("grid", "department") if key in names]
    return " · ".join(esc(p) for p in parts)


def list_text(page: TicketPage, t: Translate, tz: Any, names: dict[str, str]) -> str:
    heading = (
        t("Tickets ({total}), soonest deadline first:", total=page.total)
        if page.filter.state is None
        else t("Tickets ({total}):", total=page.total)
    )
    lines = [bold(heading)]
    if page.filter.any:
        lines.append(t("Filter: {filters}", filters=filter_summary(page.filter, t, names)))
    if not page.tickets:
        lines.append(t("No tickets match. 👍"))
    for ticket in page.tickets:
        late = "⚠️ " if (ticket.id or 0) in page.overdue_ids else ""
        lines.append(
            f"• {late}{code(shown_number(ticket))} "
            f"{esc(t(labels.TICKET_CATEGORY[ticket.category]))} · "
            f"{esc(page.grid_names.get(ticket.grid_id, '—'))} · "
            f"{esc(t(labels.TICKET_STATE[TicketState(ticket.state)]))} · "
            f"⏰ {local_time(ticket.next_deadline_at, tz)}"
        )
    if page.pages > 1:
        lines.append(t("Page {page} of {pages}", page=page.page + 1, pages=page.pages))
    return "\n".join(lines)


def list_keyboard(page: TicketPage, t: Translate) -> InlineKeyboardMarkup:
    rows: list[list[InlineKeyboardButton]] = []
    numbers = [
        InlineKeyboardButton(
            text=shown_number(ticket),
            callback_data=TicketCb(action=TicketAction.OPEN, id=ticket.id or 0).pack(),
        )
        for ticket in page.tickets
    ]
    rows += [numbers[i : i + 2] for i in range(0, len(numbers), 2)]
    wanted = page.filter
    filters = []
    for spec in FILTERS:
        if spec.name == FilterName.OVERDUE:
            mark = "✔ " if wanted.overdue else ""
            data = list_cb(replace(wanted, overdue=not wanted.overdue))
        else:
            mark = "✔ " if _set(wanted, spec.name) else ""
            data = list_cb(wanted, page=page.page, menu=MENU_OF[spec.name])
        filters.append(InlineKeyboardButton(text=mark + t(spec.button), callback_data=data))
    rows += [filters[i : i + 3] for i in range(0, len(filters), 3)]
    paging = []
    if page.page > 0:
        paging.append(
            InlineKeyboardButton(
                text=t("◀ Previous"), callback_data=list_cb(wanted, page=page.page - 1)
            )
        )
    if page.page < page.pages - 1:
        paging.append(
            InlineKeyboardButton(
                text=t("Next ▶"), callback_data=list_cb(wanted, page=page.page + 1)
            )
        )
    if paging:
        rows.append(paging)
    if wanted.any:
        rows.append(
            [
                InlineKeyboardButton(
                    text=t("Clear the filters"), callback_data=list_cb(TicketFilter())
                )
            ]
        )
    return InlineKeyboardMarkup(inline_keyboard=rows)


def _set(wanted: TicketFilter, name: FilterName) -> bool:
    return {
        FilterName.STATE: wanted.state is not None,
        FilterName.CATEGORY: wanted.category is not None,
        FilterName.SOURCE: wanted.source is not None,
        FilterName.GRID: wanted.grid_id is not None,
        FilterName.DEPARTMENT: wanted.department_id is not None,
        FilterName.OVERDUE: wanted.overdue,
    }[name]


def menu_text(menu: ListMenu, t: Translate) -> str:
    questions = {
        ListMenu.STATE: t("Show tickets in which state?"),
        ListMenu.CATEGORY: t("Show tickets of which category?"),
        ListMenu.SOURCE: t("Show tickets from which source?"),
        ListMenu.GRID: t("Show tickets in which grid?"),
        ListMenu.DEPARTMENT: t("Show tickets with which department?"),
    }
    return bold(questions[menu])


def menu_keyboard(
    menu: ListMenu,
    wanted: TicketFilter,
    t: Translate,
    *,
    grids: Sequence[tuple[Grid, int]] = (),
    departments: Sequence[Department] = (),
) -> InlineKeyboardMarkup:
    """One filter's choices, a big button each, "all" first and "back" last."""
    choices: list[tuple[str, TicketFilter]] = []
    if menu == ListMenu.STATE:
        choices.append((t("All open tickets"), replace(wanted, state=None)))
        choices += [(t(labels.TICKET_STATE[s]), replace(wanted, state=s)) for s in STATES]
    elif menu == ListMenu.CATEGORY:
        choices.append((t("All categories"), replace(wanted, category=None)))
        choices += [
            (t(labels.TICKET_CATEGORY[c]), replace(wanted, category=c)) for c in CATEGORIES
        ]
    elif menu == ListMenu.SOURCE:
        choices.append((t("All sources"), replace(wanted, source=None)))
        choices += [
            (t(labels.TICKET_SOURCE.get(s, s.value)), replace(wanted, source=s)) for s in SOURCES
        ]
    elif menu == ListMenu.GRID:
        choices.append((t("All my grids"), replace(wanted, grid_id=None)))
        choices += [
            (f"{grid.name} ({count})", replace(wanted, grid_id=grid.id)) for grid, count in grids
        ]
    else:
        choices.append((t("All departments"), replace(wanted, department_id=None)))
        choices += [(d.name, replace(wanted, department_id=d.id)) for d in departments]
    buttons = [
        InlineKeyboardButton(text=label, callback_data=list_cb(chosen))
        for label, chosen in choices
    ]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    rows.append([InlineKeyboardButton(text=t("◀ Back"), callback_data=list_cb(wanted))])
    return InlineKeyboardMarkup(inline_keyboard=rows)
