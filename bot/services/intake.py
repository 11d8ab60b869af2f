"""Staff intake (受理登记): a grid worker, head, centre operator, admin or department member
files a ticket by hand for a grid in their scope, saying where it came from — found on
patrol (巡查发现), a phone call (来电), a visit to the desk (来访), the 12345 hotline (with its
order number) or handed down from above (上级交办).

Filed for a caller, it keeps the caller's name and phone (shown masked, 138****1234); the
caller hears about it in the chat only when their phone is a GridBot user's, who then follows
it like their own report. The ticket is routed, put on the clock and told to its owners like
any other (:func:`bot.services.tickets.file_ticket`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from datetime import datetime
from typing import Final

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.i18n import N_
from bot.services.grids import GridChoices, grid_choices
from bot.services.people import RoleInGrid
from bot.services.permissions import GRID_PATH, within
from bot.services.phones import normalize_phone
from bot.services.ticket_notices import TicketNotifier
from bot.services.tickets import Intake, Report, file_ticket
from bot.settings import Settings
from models import (
    STAFF_SOURCES,
    AuditLog,
    Grid,
    Person,
    Role,
    Ticket,
    TicketCategory,
    TicketSource,
)

STAFF_ROLES: Final = frozenset({Role.WORKER, Role.HEAD, Role.CENTER, Role.DEPARTMENT, Role.ADMIN})
CALLER_SOURCES: Final = frozenset(
    {TicketSource.PHONE, TicketSource.DESK, TicketSource.HOTLINE, TicketSource.HANDED_DOWN}
)
MAX_CALLER_NAME: Final = 50
MAX_CALLER_TEXT: Final = 120
HOTLINE_NUMBER: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-]{3,39}")
SKIP_WORDS: Final = frozenset({"-", "—", "无", "無", "跳过", "跳過", "skip", "none"})

NOT_STAFF = N_("Filing for others is for grid workers, heads, the centre and departments.")
OUTSIDE_SCOPE = N_("Sorry, this is outside the grids you look after.")
NOT_A_SOURCE = N_("Please choose where the report came from with the buttons.")
BAD_HOTLINE = N_(
    "A 12345 order number is 4 to 40 letters, digits or dashes, such as 2026120700123."
)
BAD_CALLER = N_(
    "Please send the caller's name and phone number, such as 王秀英 13812341234, or just the "
    "name. Send - if they would not say."
)


def is_staff(roles: Sequence[RoleInGrid]) -> bool:
    """Does the person hold a role that may file for others?"""
    return any(r.role in STAFF_ROLES for r in roles)


def intake_paths(roles: Sequence[RoleInGrid]) -> list[str]:
    """The grid subtrees a person may file for: every staff role's grid (a department's: the
    area it serves)."""
    paths = sorted(
        {r.grid_path for r in roles if r.role in STAFF_ROLES and GRID_PATH.fullmatch(r.grid_path)}
    )
    return [p for p in paths if not any(p != q and p.startswith(q) for q in paths)]


async def choices(
    session: AsyncSession,
    person: Person,
    roles: Sequence[RoleInGrid],
    now: datetime,
    *,
    parent_id: int = 0,
    page: int = 0,
) -> GridChoices:
    """The grid picker of staff intake, over the person's intake scope."""
    if not is_staff(roles):
        raise NotAllowed(NOT_STAFF)
    return await grid_choices(
        session,
        person,
        roles,
        None,
        now,
        parent_id=parent_id,
        page=page,
        paths=intake_paths(roles),
    )


async def grid_in_scope(
    session: AsyncSession, person: Person, roles: Sequence[RoleInGrid], grid_id: int, now: datetime
) -> Grid:
    """The grid, if the person may file for it; else refused and audited."""
    grid = await session.get(Grid, grid_id)
    if grid is None:
        raise NotFound()
    if not person.active or not any(within(p, grid.path) for p in intake_paths(roles)):
        refusal = AuditLog(
            at=now,
            actor_id=person.id,
            action="refused:intake",
            object_type="grid",
            object_id=grid.id,
            detail=grid.path,
        )
        raise NotAllowed(OUTSIDE_SCOPE, audit=refusal)
    return grid


def clean_hotline_number(text: str) -> str:
    number = unicodedata.normalize("NFKC", text or "").strip()
    if HOTLINE_NUMBER.fullmatch(number) is None:
        raise InvalidInput(BAD_HOTLINE)
    return number


def parse_caller(text: str) -> tuple[str | None, str | None]:
    """``王秀英 13812341234`` → the name and the phone (E.164); ``王秀英`` → the name only;
    ``-`` → neither. A number that is no phone number is refused."""
    cleaned = unicodedata.normalize("NFKC", text or "").strip()
    if not cleaned or len(cleaned) > MAX_CALLER_TEXT:
        raise InvalidInput(BAD_CALLER)
    if cleaned.lower() in SKIP_WORDS:
        return None, None
    cleaned = "".join(ch for ch in cleaned if ch.isprintable())
    match = re.search(r"\+?[0-9][0-9 \-]{5,18}[0-9]", cleaned)
    phone = None
    if match is not None:
        phone = normalize_phone(match.group(0))
        cleaned = (cleaned[: match.start()] + " " + cleaned[match.end() :]).strip()
    name = " ".join(cleaned.replace(",", " ").replace("，", " ").split()) or None
    if name is not None and (
        len(name) > MAX_CALLER_NAME
        or not any(ch.isalpha() for ch in name)
        or any(ch.isdigit() for ch in name)  # a short or broken phone number left in it
    ):
        raise InvalidInput(BAD_CALLER)
    return name, phone


async def _gridbot_user(session: AsyncSession, phone: str | None) -> Person | None:
    """The GridBot user with this phone, if exactly one active person has it and uses the bot."""
    if phone is None:
        return None
    people = (
        await session.exec(
            select(Person).where(
                Person.phone == phone,
                col(Person.active).is_(True),
                col(Person.telegram_id).is_not(None),
            )
        )
    ).all()
    return people[0] if len(people) == 1 else None


async def file_for(
    session: AsyncSession,
    notifier: TicketNotifier,
    *,
    staff: Person,
    roles: Sequence[RoleInGrid],
    grid_id: int,
    source: TicketSource,
    category: TicketCategory,
    description: str,
    settings: Settings,
    now: datetime,
    caller_name: str | None = None,
    caller_phone: str | None = None,
    hotline_number: str | None = None,
) -> Ticket:
    """File a ticket by hand for a grid in the staff member's scope (checked and audited)."""
    if not is_staff(roles):
        raise NotAllowed(NOT_STAFF)
    if source not in STAFF_SOURCES:
        raise InvalidInput(NOT_A_SOURCE)
    grid = await grid_in_scope(session, staff, roles, grid_id, now)
    number = clean_hotline_number(hotline_number or "") if source == TicketSource.HOTLINE else None
    if source not in CALLER_SOURCES:
        caller_name = caller_phone = None
    user = await _gridbot_user(session, caller_phone)
    intake = Intake(
        source=source,
        reporter_id=user.id if user is not None else None,
        caller_name=(caller_name or None) and caller_name[:MAX_CALLER_NAME],
        caller_phone=caller_phone,
        hotline_number=number,
    )
    return await file_ticket(
        session,
        notifier,
        reporter=staff,
        grid=grid,
        report=Report(category, description),
        settings=settings,
        now=now,
        intake=intake,
    )
