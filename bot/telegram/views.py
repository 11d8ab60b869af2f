"""How registry objects read in a chat (HTML for ``parse_mode=HTML``)."""

from __future__ import annotations

from datetime import tzinfo

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from bot import labels
from bot.i18n import ASIDE, join_clauses, join_list
from bot.services.grids import GridPage, SpanWarning
from bot.services.households import HouseholdCard, HouseholdPage
from bot.services.invites import PendingInvite
from bot.services.notice_board import NoticeBoard
from bot.services.phones import display_phone
from bot.services.staff import PeoplePage
from bot.telegram.callbacks import (
    GridPageCb,
    HouseholdCb,
    HouseholdPageCb,
    InviteRevokeCb,
    PeoplePageCb,
)
from bot.telegram.render import bold, code, esc

TIER_MARK = ["🏛", "🏘", "▫️", "·"]


def grid_page_text(page: GridPage) -> str:
    lines = [bold(_("Grids ({count})").format(count=page.total))]
    for row in page.rows:
        grid = row.grid
        indent = "    " * max(grid.tier, 0)
        mark = TIER_MARK[min(grid.tier, len(TIER_MARK) - 1)]
        lines.append(f"{indent}{mark} {bold(grid.name)} {code(grid.code)}")
        details = [
            _("{households} households, {people} people").format(
                households=row.households, people=row.residents
            )
        ]
        if row.heads:
            details.append(_("head: {names}").format(names=esc(join_list(_, row.heads))))
        if row.workers:
            details.append(_("workers: {names}").format(names=esc(join_list(_, row.workers))))
        lines.append(f"{indent}    " + join_clauses(_, details))
        for message, params in zip(row.warnings, row.warning_params, strict=True):
            lines.append(f"{indent}    ⚠️ " + esc(_(message).format(**params)))
    if page.pages > 1:
        lines.append(_("Page {page} of {pages}").format(page=page.page + 1, pages=page.pages))
    return "\n".join(lines)


PageCb = type[GridPageCb] | type[PeoplePageCb] | type[HouseholdPageCb]


def pager(page: int, pages: int, make: PageCb, **ids: int) -> InlineKeyboardMarkup | None:
    """◀ ▶ buttons for a paginated list (none when it fits on one page)."""
    if pages <= 1:
        return None
    buttons = []
    if page > 0:
        buttons.append(
            InlineKeyboardButton(
                text=_("◀ Previous"), callback_data=make(page=page - 1, **ids).pack()
            )
        )
    if page < pages - 1:
        buttons.append(
            InlineKeyboardButton(text=_("Next ▶"), callback_data=make(page=page + 1, **ids).pack())
        )
    return InlineKeyboardMarkup(inline_keyboard=[buttons])


def warnings_text(warnings: list[SpanWarning]) -> str:
    if not warnings:
        return _(
            "✅ No span-of-control problems: every grid has a worker and no one is overloaded."
        )
    lines = [bold(_("Span-of-control check: {count} problems").format(count=len(warnings)))]
    for warning in warnings:
        lines.append(
            f"⚠️ {code(warning.grid_code)} " + esc(_(warning.message).format(**warning.params))
        )
    return "\n".join(lines)


def notice_text(board: NoticeBoard) -> str:
    grid = board.grid
    lines = [
        "📋 " + bold(_("Grid notice board")),
        f"{bold(grid.name)} {code(grid.code)}",
    ]
    if board.parent_names:
        lines.append(esc(" › ".join(board.parent_names)))
    lines.append("")
    for worker in board.workers:
        lines.append(
            _("👤 Grid worker: {name} {phone}").format(
                name=bold(worker.name), phone=esc(display_phone(worker.phone))
            )
        )
    if not board.workers:
        lines.append(_("👤 Grid worker: not yet assigned"))
    for head in board.heads:
        lines.append(
            _("👥 Grid head ({grid}): {name} {phone}").format(
                grid=esc(head.grid_name),
                name=bold(head.name),
                phone=esc(display_phone(head.phone)),
            )
        )
    lines.append(
        _("🏠 {households} households, {people} people").format(
            households=board.households, people=board.people
        )
    )
    if board.area:
        lines.append(_("📍 Area: {text}").format(text=esc(board.area)))
    if board.services:
        lines.append(_("🛎 Services: {text}").format(text=esc(board.services)))
    if board.complaint_process:
        lines.append(_("📣 How to complain: {text}").format(text=esc(board.complaint_process)))
    if board.complaint_phone:
        lines.append(
            _("☎️ Complaint phone: {phone}").format(phone=esc(display_phone(board.complaint_phone)))
        )
    return "\n".join(lines)


def people_text(page: PeoplePage, query: str) -> str:
    if not page.rows:
        return _("Nobody found.") if query else _("No people in your grids yet.")
    title = _("People ({count})").format(count=page.total)
    lines = [bold(title)]
    for row in page.rows:
        person = row.person
        held = join_list(_, (f"{_(labels.ROLE[r])}·{g}" for r, g in row.roles)) or "—"
        status = "" if person.active else " " + _("(deactivated)")
        lines.append(
            f"• {bold(person.name)} {esc(display_phone(person.phone))}{esc(status)}\n  {esc(held)}"
        )
    if page.pages > 1:
        lines.append(_("Page {page} of {pages}").format(page=page.page + 1, pages=page.pages))
    return "\n".join(lines)


def invites_text(pending: list[PendingInvite], tz: tzinfo) -> str:
    """The invitations still waiting to be used, numbered like their withdraw buttons."""
    if not pending:
        return _("No invitation is waiting to be used.")
    lines = [bold(_("Invitations waiting to be used ({count})").format(count=len(pending)))]
    for number, each in enumerate(pending, start=1):
        role = _(labels.ROLE[each.invite.role])
        if each.department:
            role = _(ASIDE).format(text=role, aside=each.department)
        lines.append(
            _("{number}. {role} of {grid} — issued by {issuer}, valid until {until}").format(
                number=number,
                role=esc(role),
                grid=bold(each.grid.name),
                issuer=esc(each.issuer or "—"),
                until=each.invite.expires_at.astimezone(tz).strftime("%m-%d %H:%M"),
            )
        )
    lines.append(_("Press a number to withdraw that invitation: its link stops working."))
    return "\n".join(lines)


def invites_keyboard(pending: list[PendingInvite]) -> InlineKeyboardMarkup | None:
    if not pending:
        return None
    buttons = [
        InlineKeyboardButton(
            text=_("✖ Withdraw {number}").format(number=number),
            callback_data=InviteRevokeCb(id=each.invite.id or 0).pack(),
        )
        for number, each in enumerate(pending, start=1)
    ]
    return InlineKeyboardMarkup(
        inline_keyboard=[buttons[i : i + 4] for i in range(0, len(buttons), 4)]
    )


def households_text(page: HouseholdPage, query: str) -> str:
    if not page.rows:
        return _("No household found.") if query else _("No households in your grids yet.")
    lines = [bold(_("Households ({count})").format(count=page.total))]
    if page.pages > 1:
        lines.append(_("Page {page} of {pages}").format(page=page.page + 1, pages=page.pages))
    lines.append(_("Tap a household to see its details."))
    return "\n".join(lines)


def households_keyboard(page: HouseholdPage) -> InlineKeyboardMarkup:
    rows = [
        [
            InlineKeyboardButton(
                text=("⭐ " if h.is_key else "") + f"{h.head_name} · {h.address}"[:60],
                callback_data=HouseholdCb(id=h.id or 0).pack(),
            )
        ]
        for h in page.rows
    ]
    paging = pager(page.page, page.pages, HouseholdPageCb)
    if paging is not None:
        rows += paging.inline_keyboard
    return InlineKeyboardMarkup(inline_keyboard=rows)


def household_text(card: HouseholdCard) -> str:
    h = card.household
    lines = [
        ("⭐ " if h.is_key else "🏠 ") + bold(h.head_name) + " " + code(h.code),
        _("Address: {address}").format(address=esc(h.address)),
        _("Phone: {phone}").format(phone=esc(display_phone(h.phone))),
        _("Members: {count}").format(count=h.members),
        _("Grid: {grid}").format(grid=esc(card.grid.name)),
    ]
    if card.worker is not None:
        lines.append(_("Grid worker: {name}").format(name=esc(card.worker.name)))
    if card.categories:
        names = join_list(_, (_(labels.HOUSEHOLD_CATEGORY[c]) for c in card.categories))
        lines.append(_("Key household: {categories}").format(categories=esc(names)))
    if h.is_business:
        lines.append(_("Business (工商企业户)"))
    if h.note:
        lines.append(_("Note: {note}").format(note=esc(h.note)))
    return "\n".join(lines)
