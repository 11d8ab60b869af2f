"""Ledgers of a period (台账): the tickets filed, the visits made and the meetings held in the
asker's grids over a span of days, as XLSX workbooks — the monthly and quarterly books a
street office keeps (12345 接诉即办 月度台账, 民情日记, 例会记录).

They follow :mod:`bot.services.exports` exactly: the same scope (``Action.EXPORT``, one grid's
subtree when a code is given; refusals audited), the same streaming (a server-side cursor, a
batch at a time, cells made in a worker thread), the same masking — phone numbers as
``138****5678`` and phone numbers and identity numbers inside free text as ``***`` where the
asker has no ``Action.READ_SENSITIVE``, and everywhere with ``masked=True`` — the same
formula neutralisation (every cell goes through :func:`~bot.services.tabular.neutralise`)
and an audit record per export. Headers are in the asker's language (Chinese first); times
are local.

A ticket belongs to the period it was filed in (立案时间), a visit to the day it was made, a
meeting to the day it began.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy import func, select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.i18n import N_
from bot.labels import (
    HANDLING_KIND,
    RATING,
    TICKET_CATEGORY,
    TICKET_SOURCE,
    TICKET_STATE,
    VISIT_KIND,
)
from bot.services.exports import (
    EXPORT_BATCH,
    audit_export,
    ledger_scope,
    mask_phone,
    stream_ledger,
    under_paths,
)
from bot.services.imports import NO, YES, Translate, display_phone
from bot.services.notice_board import public_text
from bot.services.people import RoleInGrid
from bot.services.periods import local_midnight
from bot.services.spans import Span
from bot.services.tabular import CellValue, Sheet
from bot.services.ticket_numbers import shown_number
from models import (
    Department,
    Grid,
    HandlingKind,
    Household,
    Meeting,
    MeetingInvite,
    Person,
    Rating,
    Rsvp,
    Ticket,
    TicketCategory,
    TicketEvent,
    TicketEventKind,
    TicketSource,
    TicketState,
    Visit,
    VisitKind,
)

TICKETS_SHEET = N_("Ticket ledger")
VISITS_SHEET = N_("Visit ledger")
MEETINGS_SHEET = N_("Meeting ledger")
TIME_FORMAT = "%Y-%m-%d %H:%M"

TICKET_HEADERS = (
    N_("Ticket number"),
    N_("Full number"),
    N_("Grid code"),
    N_("Grid name"),
    N_("Category"),
    N_("Handling kind"),
    N_("Source"),
    N_("State"),
    N_("Reporter"),
    N_("Reporter's phone"),
    N_("Address"),
    N_("Description"),
    N_("Filed at"),
    N_("Accepted at"),
    N_("Resolved at"),
    N_("Checked on site at"),
    N_("Closed at"),
    N_("Handler"),
    N_("Department"),
    N_("Rating"),
    N_("Overdue"),
    N_("Urges"),
)
VISIT_HEADERS = (
    N_("Visited at"),
    N_("Grid code"),
    N_("Grid name"),
    N_("Household code"),
    N_("Head of household"),
    N_("Phone"),
    N_("Address"),
    N_("Kind of visit"),
    N_("Grid worker's name"),
    N_("Record"),
    N_("Photo"),
    N_("Ticket number"),
)
MEETING_HEADERS = (
    N_("Starts at"),
    N_("Grid code"),
    N_("Grid name"),
    N_("Title"),
    N_("Place"),
    N_("Organiser"),
    N_("Invited"),
    N_("Attending"),
    N_("Declined"),
    N_("Checked in"),
    N_("Cancelled"),
    N_("Minutes"),
)


def _local(instant: datetime | None, tz: tzinfo) -> str | None:
    return instant.astimezone(tz).strftime(TIME_FORMAT) if instant else None


def _bounds(span: Span, tz: tzinfo) -> tuple[datetime, datetime]:
    return local_midnight(span.start, tz), local_midnight(span.end, tz)


def _free_text(text: str | None, open_: bool) -> str | None:
    """Free text as written, or with phone and identity numbers masked."""
    if not text:
        return text
    return text if open_ else public_text(text)


def _phone(stored: str | None, open_: bool) -> str | None:
    if not stored:
        return None
    return display_phone(stored) if open_ else mask_phone(stored)


async def export_tickets(
    session: AsyncSession,
    actor: Person,
    roles: Sequence[RoleInGrid],
    *,
    span: Span,
    tz: tzinfo,
    now: datetime,
    translate: Translate,
    grid_code: str | None = None,
    masked: bool = False,
    audit_into: AsyncSession | None = None,
) -> bytes:
    """The tickets filed in ``span`` in the asker's grids (工单台账)."""
    scope = await ledger_scope(session, actor, roles, grid_code, masked, now)
    begin, end = _bounds(span, tz)
    urges = (
        select(func.count(col(TicketEvent.id)))
        .where(
            col(TicketEvent.ticket_id) == col(Ticket.id),
            col(TicketEvent.action) == TicketEventKind.URGED,
        )
        .scalar_subquery()
    )
    reporter = col(Person.id) == col(Ticket.reporter_id)
    statement = (
        select(
            Ticket,
            col(Grid.code),
            col(Grid.name),
            col(Grid.path),
            select(col(Person.name)).where(reporter).scalar_subquery(),
            select(col(Person.phone)).where(reporter).scalar_subquery(),
            select(col(Person.name))
            .where(col(Person.id) == col(Ticket.assignee_id))
            .scalar_subquery(),
            select(col(Department.name))
            .where(col(Department.id) == col(Ticket.owner_department_id))
            .scalar_subquery(),
            urges,
        )
        .join(Grid, col(Grid.id) == col(Ticket.grid_id))
        .where(
            under_paths(scope.paths), col(Ticket.created_at) >= begin, col(Ticket.created_at) < end
        )
        .order_by(col(Ticket.created_at), col(Ticket.id))
    )
    yes, no = translate(YES), translate(NO)

    def line(record: Any) -> list[CellValue]:
        ticket, code, grid_name, path, name, phone, handler, department, urged = record
        open_ = scope.unmasked(path)
        rating = ticket.rating
        overdue = ticket.next_deadline_at is not None and ticket.next_deadline_at <= now
        return [
            shown_number(ticket),
            ticket.number,
            code,
            grid_name,
            translate(TICKET_CATEGORY[TicketCategory(ticket.category)]),
            translate(HANDLING_KIND[HandlingKind(ticket.kind)]),
            translate(TICKET_SOURCE.get(TicketSource(ticket.source), str(ticket.source))),
            translate(TICKET_STATE[TicketState(ticket.state)]),
            name,
            _phone(phone, open_),
            _free_text(ticket.address, open_),
            _free_text(ticket.description, open_),
            _local(ticket.created_at, tz),
            _local(ticket.accepted_at, tz),
            _local(ticket.resolved_at, tz),
            _local(ticket.verified_at, tz),
            _local(ticket.closed_at, tz),
            handler,
            department,
            translate(RATING[Rating(rating)]) if rating else None,
            yes if overdue else no,
            int(urged or 0),
        ]

    sheet = Sheet(
        title=translate(TICKETS_SHEET),
        headers=[translate(h) for h in TICKET_HEADERS],
        rows=(),
        widths=[10, 24, 16, 16, 14, 10, 12, 14, 10, 14, 28, 40] + [16] * 5 + [10, 14, 10, 8, 8],
        text_columns=frozenset({0, 1, 2, 9}),
        auto_filter=True,
    )
    rows = await session.stream(statement.execution_options(yield_per=EXPORT_BATCH))
    data, count, unmasked = await stream_ledger(
        rows, sheet, line, lambda record: scope.unmasked(record[3])
    )
    audit_export(audit_into or session, actor, "export:tickets", scope, count, unmasked, now)
    return data


async def export_visits(
    session: AsyncSession,
    actor: Person,
    roles: Sequence[RoleInGrid],
    *,
    span: Span,
    tz: tzinfo,
    now: datetime,
    translate: Translate,
    grid_code: str | None = None,
    masked: bool = False,
    audit_into: AsyncSession | None = None,
) -> bytes:
    """The visits made in ``span`` to households of the asker's grids (走访台账 / 民情日记);
    withdrawn ones are left out."""
    scope = await ledger_scope(session, actor, roles, grid_code, masked, now)
    begin, end = _bounds(span, tz)
    statement = (
        select(
            Visit,
            col(Household.code),
            col(Household.head_name),
            col(Household.phone),
            col(Household.address),
            col(Grid.code),
            col(Grid.name),
            col(Grid.path),
            select(col(Person.name))
            .where(col(Person.id) == col(Visit.worker_id))
            .scalar_subquery(),
            select(col(Ticket.number))
            .where(col(Ticket.id) == col(Visit.ticket_id))
            .scalar_subquery(),
        )
        .join(Household, col(Household.id) == col(Visit.household_id))
        .join(Grid, col(Grid.id) == col(Household.grid_id))
        .where(
            under_paths(scope.paths),
            col(Visit.visited_at) >= begin,
            col(Visit.visited_at) < end,
            col(Visit.withdrawn_at).is_(None),
        )
        .order_by(col(Visit.visited_at), col(Visit.id))
    )
    yes, no = translate(YES), translate(NO)

    def line(record: Any) -> list[CellValue]:
        visit, code, head, phone, address, grid_code_, grid_name, path, worker, number = record
        open_ = scope.unmasked(path)
        return [
            _local(visit.visited_at, tz),
            grid_code_,
            grid_name,
            code,
            head,
            _phone(phone, open_),
            address,
            translate(VISIT_KIND[VisitKind(visit.kind)]),
            worker,
            _free_text(visit.note, open_),
            yes if visit.photo_file_id else no,
            number,
        ]

    sheet = Sheet(
        title=translate(VISITS_SHEET),
        headers=[translate(h) for h in VISIT_HEADERS],
        rows=(),
        widths=[16, 16, 16, 20, 10, 14, 32, 12, 10, 40, 6, 24],
        text_columns=frozenset({1, 3, 5, 11}),
        auto_filter=True,
    )
    rows = await session.stream(statement.execution_options(yield_per=EXPORT_BATCH))
    data, count, unmasked = await stream_ledger(
        rows, sheet, line, lambda record: scope.unmasked(record[7])
    )
    audit_export(audit_into or session, actor, "export:visits", scope, count, unmasked, now)
    return data


async def export_meetings(
    session: AsyncSession,
    actor: Person,
    roles: Sequence[RoleInGrid],
    *,
    span: Span,
    tz: tzinfo,
    now: datetime,
    translate: Translate,
    grid_code: str | None = None,
    masked: bool = False,
    audit_into: AsyncSession | None = None,
) -> bytes:
    """The meetings that began in ``span`` in the asker's grids (例会台账), with their
    attendance; the minutes with phone numbers masked unless the asker may read them."""
    scope = await ledger_scope(session, actor, roles, grid_code, masked, now)
    begin, end = _bounds(span, tz)

    def invites(*where: Any) -> Any:
        return (
            select(func.count(col(MeetingInvite.id)))
            .where(col(MeetingInvite.meeting_id) == col(Meeting.id), *where)
            .scalar_subquery()
        )

    statement = (
        select(
            Meeting,
            col(Grid.code),
            col(Grid.name),
            col(Grid.path),
            select(col(Person.name))
            .where(col(Person.id) == col(Meeting.organiser_id))
            .scalar_subquery(),
            invites(),
            invites(col(MeetingInvite.rsvp) == Rsvp.ATTENDING),
            invites(col(MeetingInvite.rsvp) == Rsvp.DECLINED),
            invites(col(MeetingInvite.checked_in_at).is_not(None)),
        )
        .join(Grid, col(Grid.id) == col(Meeting.grid_id))
        .where(
            under_paths(scope.paths), col(Meeting.starts_at) >= begin, col(Meeting.starts_at) < end
        )
        .order_by(col(Meeting.starts_at), col(Meeting.id))
    )
    yes, no = translate(YES), translate(NO)

    def line(record: Any) -> list[CellValue]:
        meeting, code, grid_name, path, organiser, invited, attending, declined, came = record
        open_ = scope.unmasked(path)
        return [
            _local(meeting.starts_at, tz),
            code,
            grid_name,
            meeting.title,
            meeting.place,
            organiser,
            int(invited or 0),
            int(attending or 0),
            int(declined or 0),
            int(came or 0),
            yes if meeting.cancelled_at else no,
            _free_text(meeting.minutes, open_),
        ]

    sheet = Sheet(
        title=translate(MEETINGS_SHEET),
        headers=[translate(h) for h in MEETING_HEADERS],
        rows=(),
        widths=[16, 16, 16, 30, 20, 10, 8, 8, 8, 8, 8, 50],
        text_columns=frozenset({1}),
        auto_filter=True,
    )
    rows = await session.stream(statement.execution_options(yield_per=EXPORT_BATCH))
    data, count, unmasked = await stream_ledger(
        rows, sheet, line, lambda record: scope.unmasked(record[3])
    )
    audit_export(audit_into or session, actor, "export:meetings", scope, count, unmasked, now)
    return data
