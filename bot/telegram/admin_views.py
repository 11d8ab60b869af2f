"""Buttons for admin and head commands that take arguments: the ledger, the role, the grid and
the department are picked with buttons; typed arguments stay as a shortcut.

A grid picker shows one level of the tree at a time, at most
:data:`~bot.services.grids.CHOICES_PER_PAGE` grids a page: tapping a grid with grids below it
opens that level (whose first button chooses the grid itself); a grid with none below is
chosen at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from bot import labels
from bot.i18n import N_
from bot.services.grids import GridChoices
from bot.services.staff import DepartmentPage, PeoplePage
from bot.telegram.callbacks import (
    CancelCb,
    ExportCb,
    ExportGridCb,
    ExportPeriodCb,
    InviteRoleCb,
    Ledger,
    MuteSpan,
    PeoplePageCb,
    PersonAction,
    PersonCb,
    PersonMuteCb,
    PersonRoleCb,
    PickStep,
    SpanChoice,
)
from models import Person, Role

PackPick = Callable[[int, int, PickStep], str]
"""Callback data of one grid-picker button: (grid id, page, step) → packed data."""

EXPORT_LABELS: Mapping[Ledger, str] = {
    Ledger.HOUSEHOLDS: N_("🏠 Household ledger"),
    Ledger.PEOPLE: N_("👥 People ledger"),
    Ledger.MEMBERS: N_("👪 Residents ledger"),
    Ledger.TICKETS: N_("📋 Ticket ledger"),
    Ledger.VISITS: N_("🚶 Visit ledger"),
    Ledger.MEETINGS: N_("🗓 Meeting ledger"),
}
ONE_GRID_LABELS: Mapping[Ledger, str] = {
    Ledger.HOUSEHOLDS: N_("📂 Households of one grid"),
    Ledger.PEOPLE: N_("📂 People of one grid"),
    Ledger.MEMBERS: N_("📂 Residents of one grid"),
    Ledger.TICKETS: N_("📂 Tickets of one grid"),
    Ledger.VISITS: N_("📂 Visits of one grid"),
    Ledger.MEETINGS: N_("📂 Meetings of one grid"),
}
SPAN_LABELS: Mapping[SpanChoice, str] = {
    SpanChoice.THIS_MONTH: N_("This month"),
    SpanChoice.LAST_MONTH: N_("Last month"),
    SpanChoice.THIS_QUARTER: N_("This quarter"),
    SpanChoice.LAST_QUARTER: N_("Last quarter"),
}
TEMPLATE_LABELS: Mapping[Ledger, str] = {
    Ledger.HOUSEHOLDS: N_("🏠 Empty household sheet"),
    Ledger.PEOPLE: N_("👥 Empty people sheet"),
    Ledger.MEMBERS: N_("👪 Empty residents sheet"),
}
MAX_LABEL = 40  # characters of a grid's or department's name on a button


def make_button(text: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data)


def _cancel_row() -> list[InlineKeyboardButton]:
    return [make_button(_("Cancel"), CancelCb().pack())]


def ledger_keyboard(
    labels_of: Mapping[Ledger, str], make: Callable[[Ledger], CallbackData]
) -> InlineKeyboardMarkup:
    """One button per ledger."""
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [make_button(_(label), make(ledger).pack())] for ledger, label in labels_of.items()
        ]
    )


def export_keyboard() -> InlineKeyboardMarkup:
    """Each ledger over every grid one looks after, or over one grid picked from them."""
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                make_button(_(label), ExportCb(ledger=ledger).pack()),
                make_button(
                    _(ONE_GRID_LABELS[ledger]),
                    ExportGridCb(ledger=ledger, grid=0, page=0, step=PickStep.OPEN).pack(),
                ),
            ]
            for ledger, label in EXPORT_LABELS.items()
        ]
    )


def span_keyboard(ledger: Ledger, grid_id: int) -> InlineKeyboardMarkup:
    """Which period: two big buttons a row."""
    buttons = [
        make_button(_(label), ExportPeriodCb(ledger=ledger, grid=grid_id, span=span).pack())
        for span, label in SPAN_LABELS.items()
    ]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    return InlineKeyboardMarkup(inline_keyboard=[*rows, _cancel_row()])


def role_keyboard(roles: list[Role]) -> InlineKeyboardMarkup:
    """The roles one may invite to, two a row."""
    buttons = [make_button(_(labels.ROLE[role]), InviteRoleCb(role=role).pack()) for role in roles]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    return InlineKeyboardMarkup(inline_keyboard=[*rows, _cancel_row()])


def grid_picker_text(question: str, choices: GridChoices) -> str:
    """The question, where in the tree the picker is, and the page."""
    lines = [question]
    if choices.parent is not None:
        lines.append(_("Now in: {grid}").format(grid=choices.parent.name))
    lines.append(_("Tap a grid to choose it; 📂 opens the grids below it."))
    if choices.pages > 1:
        lines.append(
            _("Page {page} of {pages}").format(page=choices.page + 1, pages=choices.pages)
        )
    return "\n".join(lines)


def grid_picker_keyboard(choices: GridChoices, pack: PackPick) -> InlineKeyboardMarkup:
    """This level's grid itself, the grids below it (📂 when they have more below), the
    pages, the way up, and Cancel."""
    rows: list[list[InlineKeyboardButton]] = []
    parent = choices.parent
    if parent is not None:
        text = _("✅ {grid}").format(grid=parent.name[:MAX_LABEL])
        rows.append([make_button(text, pack(parent.id or 0, 0, PickStep.CHOOSE))])
    for choice in choices.choices:
        grid, name = choice.grid, choice.grid.name[:MAX_LABEL]
        if choice.children:
            rows.append([make_button(f"📂 {name}", pack(grid.id or 0, 0, PickStep.OPEN))])
        else:
            rows.append([make_button(name, pack(grid.id or 0, 0, PickStep.CHOOSE))])
    here = parent.id or 0 if parent is not None else 0
    moves = []
    if choices.page > 0:
        moves.append(make_button(_("◀ Previous"), pack(here, choices.page - 1, PickStep.OPEN)))
    if choices.page < choices.pages - 1:
        moves.append(make_button(_("Next ▶"), pack(here, choices.page + 1, PickStep.OPEN)))
    if moves:
        rows.append(moves)
    if choices.up is not None:
        rows.append([make_button(_("⬆️ Up a level"), pack(choices.up, 0, PickStep.OPEN))])
    rows.append(_cancel_row())
    return InlineKeyboardMarkup(inline_keyboard=rows)


PackDepartment = Callable[[int, int], str]
"""Callback data of a department button: (department id or 0 for a page, page) → packed."""


def department_keyboard(page: DepartmentPage, pack: PackDepartment) -> InlineKeyboardMarkup:
    rows = [
        [make_button(department.name[:MAX_LABEL], pack(department.id or 0, 0))]
        for department in page.departments
    ]
    moves = []
    if page.page > 0:
        moves.append(make_button(_("◀ Previous"), pack(0, page.page - 1)))
    if page.page < page.pages - 1:
        moves.append(make_button(_("Next ▶"), pack(0, page.page + 1)))
    if moves:
        rows.append(moves)
    rows.append(_cancel_row())
    return InlineKeyboardMarkup(inline_keyboard=rows)


def people_keyboard(page: PeoplePage) -> InlineKeyboardMarkup | None:
    """A button per person on the page (their card), two a row, and the pages."""
    buttons = [
        make_button(
            row.person.name[:MAX_LABEL],
            PersonCb(action=PersonAction.OPEN, person=row.person.id or 0).pack(),
        )
        for row in page.rows
    ]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    moves = []
    if page.page > 0:
        moves.append(make_button(_("◀ Previous"), PeoplePageCb(page=page.page - 1).pack()))
    if page.page < page.pages - 1:
        moves.append(make_button(_("Next ▶"), PeoplePageCb(page=page.page + 1).pack()))
    if moves:
        rows.append(moves)
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


def person_keyboard(person: Person) -> InlineKeyboardMarkup:
    """What an administrator can do about one person."""

    def act(text: str, action: PersonAction) -> InlineKeyboardButton:
        return make_button(text, PersonCb(action=action, person=person.id or 0).pack())

    rows = [[act(_("🔁 Another role or grid"), PersonAction.SET)]]
    if person.muted_until is not None:
        rows.append([act(_("🔊 Let them report again"), PersonAction.UNMUTE)])
    else:
        rows.append([act(_("🔇 Stop them reporting for a while"), PersonAction.MUTE)])
    if person.active:
        rows.append([act(_("🚫 Deactivate (they left)"), PersonAction.OFF)])
    return InlineKeyboardMarkup(inline_keyboard=rows)


MUTE_LABELS: Mapping[MuteSpan, str] = {
    MuteSpan.DAY: N_("24 hours"),
    MuteSpan.THREE_DAYS: N_("3 days"),
    MuteSpan.WEEK: N_("7 days"),
}


def mute_keyboard(person: Person) -> InlineKeyboardMarkup:
    buttons = [
        make_button(_(label), PersonMuteCb(person=person.id or 0, hours=span).pack())
        for span, label in MUTE_LABELS.items()
    ]
    return InlineKeyboardMarkup(inline_keyboard=[buttons, _cancel_row()])


def confirm_off_keyboard(person: Person) -> InlineKeyboardMarkup:
    yes = PersonCb(action=PersonAction.OFF_YES, person=person.id or 0).pack()
    return InlineKeyboardMarkup(
        inline_keyboard=[[make_button(_("Yes, deactivate"), yes), *_cancel_row()]]
    )


def person_role_keyboard(person: Person, roles: list[Role]) -> InlineKeyboardMarkup:
    buttons = [
        make_button(_(labels.ROLE[role]), PersonRoleCb(person=person.id or 0, role=role).pack())
        for role in roles
    ]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    return InlineKeyboardMarkup(inline_keyboard=[*rows, _cancel_row()])
