"""Filing: a resident's report becomes a ticket, routed and on the clock at once; a neighbour
with the same problem follows the existing ticket instead."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from math import asin, cos, radians, sin, sqrt

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import DomainError, InvalidInput
from bot.i18n import N_
from bot.routing import escalation
from bot.routing.policy import policy_to_json
from bot.routing.rules import TicketFacts, route
from bot.services.ticket_notices import Notice, TicketNotifier
from bot.services.ticket_numbers import next_short_number, street_id_of
from bot.services.tickets import casework
from bot.services.tickets.concerned import followers, grid_at_tier, holders, links_to_people
from bot.services.tickets.deadlines import calendar_for, current_policy, store_clock
from bot.services.tickets.kernel import AlreadyHandled, load, record_event, save, tell
from bot.services.tickets.placing import Placement
from bot.services.tickets.text import clean_text
from bot.settings import Settings
from models import (
    OPEN_TICKET_STATES,
    Counter,
    Grid,
    HandlingKind,
    Person,
    Role,
    Ticket,
    TicketCategory,
    TicketEventKind,
    TicketPhoto,
    TicketSource,
    TicketState,
)

MAX_PHOTOS = 5


DUPLICATE_WINDOW = timedelta(days=3)


DUPLICATE_RADIUS_M = 300.0


class TooManyReports(DomainError):
    message = N_(
        "You have reported {count} problems in the last {window}. Please wait a little, or "
        "call your grid worker if it is urgent."
    )


class Muted(DomainError):
    message = N_(
        "Sorry, you cannot report problems through the bot at the moment ({reason}). "
        "Please call your grid worker."
    )


@dataclass(frozen=True)
class Report:
    """What a person reported, as the /report conversation gathered it."""

    category: TicketCategory
    description: str
    urgent: bool = False
    address: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    household_id: int | None = None
    photo_file_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Intake:
    """A ticket staff file by hand (staff intake): where it came from, and for whom.

    ``reporter_id`` is the caller when they are a GridBot user (they follow the ticket in the
    chat); otherwise nobody is messaged about it but its handlers."""

    source: TicketSource
    reporter_id: int | None = None
    caller_name: str | None = None
    caller_phone: str | None = None
    hotline_number: str | None = None


async def check_may_report(
    session: AsyncSession, person: Person, settings: Settings, now: datetime
) -> None:
    """Refuse a muted person or one over the hourly or daily limit, before they type."""
    if person.muted_until is not None and person.muted_until > now:
        raise Muted(reason=person.muted_reason or "—")
    for window, limit, label in (
        (timedelta(hours=1), settings.reports.per_hour, N_("hour")),
        (timedelta(days=1), settings.reports.per_day, N_("day")),
    ):
        count = (
            await session.exec(
                select(func.count()).where(
                    Ticket.reporter_id == person.id, col(Ticket.created_at) > now - window
                )
            )
        ).one()
        if count >= limit:
            raise TooManyReports(count=count, window=label)


async def next_number(session: AsyncSession, grid: Grid, local_day: str) -> str:
    """``<grid code>-<YYYYMMDD>-<nnn>``, the long number kept inside (people read the short one,
    :mod:`bot.services.ticket_numbers`): unique even when two file at once."""
    name = f"ticket:{grid.code}:{local_day}"
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        insert(Counter)
        .values(name=name, value=1)
        .on_conflict_do_update(index_elements=["name"], set_={"value": Counter.value + 1})
        .returning(col(Counter.value))
    )
    value = (await session.exec(statement)).scalar_one()
    return f"{grid.code}-{local_day}-{value:03d}"


async def file_ticket(
    session: AsyncSession,
    notifier: TicketNotifier,
    *,
    reporter: Person,
    grid: Grid,
    report: Report,
    settings: Settings,
    now: datetime,
    placement: Placement | None = None,
    intake: Intake | None = None,
    limited: bool = True,
) -> Ticket:
    """File a problem and dispatch it at once: routed, on the clock, owners told.

    ``reporter`` files it; with ``intake`` they are staff filing by hand (巡查, 来电, 来访,
    12345, 交办): the ticket keeps its source and caller, and its reporter is the caller only
    when the caller is a GridBot user. ``limited=False`` skips the reporter's hourly and daily
    limits: for a ticket staff file from a record (a hazard not fixed at its re-inspection, a
    place refusing inspection), which is not a report typed by a person.

    ``grid`` is the reporter's grid; ``placement`` (from
    :func:`~bot.services.tickets.placing.place_report`), when given, is where the problem is:
    the ticket goes to its grid, and a point the map cannot place well (outside every grid, or
    where the lowest grids are not mapped) is shown to the street centre.
    """
    if intake is None and limited:
        await check_may_report(session, reporter, settings, now)
    if placement is not None:
        grid = placement.grid
    description = clean_text(report.description)
    if len(report.photo_file_ids) > MAX_PHOTOS:
        raise InvalidInput(N_("At most {limit} photos, please."), limit=MAX_PHOTOS)
    policy = await current_policy(session)
    calendar = await calendar_for(session, policy)
    kind = HandlingKind.URGENT if report.urgent else HandlingKind.GENERAL
    decision = route(TicketFacts(report.category, kind, grid.code, grid.path, grid.tier), policy)
    local_day = calendar.local_day(now).strftime("%Y%m%d")
    street_id = street_id_of(grid)
    ticket = Ticket(
        number=await next_number(session, grid, local_day),
        street_id=street_id,
        short_number=await next_short_number(session, street_id),
        grid_id=grid.id or 0,
        reporter_id=reporter.id if intake is None else intake.reporter_id,
        source=TicketSource.TELEGRAM if intake is None else intake.source,
        filed_by_id=None if intake is None else reporter.id,
        caller_name=None if intake is None else intake.caller_name,
        caller_phone=None if intake is None else intake.caller_phone,
        hotline_number=None if intake is None else intake.hotline_number,
        category=report.category,
        kind=kind,
        description=description,
        address=(report.address or "")[:300] or None,
        latitude=report.latitude,
        longitude=report.longitude,
        household_id=report.household_id,
        routing_rule=decision.rule,
        sla={"policy": policy_to_json(policy)},
        created_at=now,
        updated_at=now,
    )
    owner_grid = await grid_at_tier(session, grid, decision.owner.tier)
    ticket.owner_grid_id = owner_grid.id
    clock = escalation.start_clock(decision.owner, kind, policy, calendar, now)
    store_clock(ticket, clock, policy, calendar)
    session.add(ticket)
    await session.flush()
    assert ticket.id is not None
    lead, assists = await casework.start_at_department(
        session, ticket, decision, policy, calendar, now
    )
    if lead is not None:
        await save(session, ticket, now)
    for file_id in report.photo_file_ids:
        session.add(TicketPhoto(ticket_id=ticket.id, file_id=file_id, created_at=now))
    record_event(
        session,
        ticket,
        now,
        TicketEventKind.SUBMITTED,
        from_state=None,
        to_state=TicketState.SUBMITTED,
        actor=reporter,
        data={
            **({"placed_by": placement.by.value} if placement is not None else {}),
            **({"source": intake.source.value} if intake is not None else {}),
        },
    )
    record_event(
        session,
        ticket,
        now,
        TicketEventKind.DISPATCHED,
        from_state=TicketState.SUBMITTED,
        to_state=TicketState(ticket.state),
        data={
            "rule": decision.rule,
            "tier": decision.owner.tier,
            "role": decision.owner.role,
            **({"department": lead.code} if lead is not None else {}),
        },
    )
    informed = await links_to_people(session, grid, decision.inform)
    await tell(
        session, notifier, Notice.FILED, ticket, now, actor=reporter, reporters=[], others=informed
    )
    await casework.tell_assists(session, notifier, ticket, assists, now)
    if placement is not None and placement.centre_told:
        street = await grid_at_tier(session, grid, 0)
        assert street.id is not None
        centre = await holders(session, street.id, Role.CENTER)
        await tell(
            session,
            notifier,
            Notice.OUTSIDE_GRIDS,
            ticket,
            now,
            actor=reporter,
            reporters=[],
            owners=[],
            others=centre,
            extra={"placed_by": placement.by.value},
        )
    return ticket


async def likely_duplicates(
    session: AsyncSession,
    *,
    grid: Grid,
    category: TicketCategory,
    latitude: float | None,
    longitude: float | None,
    now: datetime,
) -> list[Ticket]:
    """Open tickets of the same grid and category from the last few days, nearest first
    (those with a location further than a few hundred metres are left out)."""
    rows = (
        await session.exec(
            select(Ticket)
            .where(
                Ticket.grid_id == grid.id,
                Ticket.category == category,
                col(Ticket.state).in_(list(OPEN_TICKET_STATES)),
                col(Ticket.created_at) > now - DUPLICATE_WINDOW,
            )
            .order_by(col(Ticket.created_at).desc())
            .limit(20)
        )
    ).all()
    if latitude is None or longitude is None:
        return list(rows[:3])
    near = [
        (t, _metres(latitude, longitude, t.latitude, t.longitude))
        for t in rows
        if t.latitude is not None and t.longitude is not None
    ]
    near = [(t, d) for t, d in near if d <= DUPLICATE_RADIUS_M]
    near.sort(key=lambda pair: pair[1])
    without_place = [t for t in rows if t.latitude is None]
    return [t for t, _ in near][:3] + without_place[: max(0, 3 - len(near))]


def _metres(lat1: float, lon1: float, lat2: float | None, lon2: float | None) -> float:
    """Great-circle distance, good enough for "is it the same street corner?"."""
    assert lat2 is not None and lon2 is not None
    dlat, dlon = radians(lat2 - lat1), radians(lon2 - lon1)
    a = sin(dlat / 2) ** 2 + cos(radians(lat1)) * cos(radians(lat2)) * sin(dlon / 2) ** 2
    return 2 * 6_371_000 * asin(sqrt(a))


async def join_ticket(
    session: AsyncSession,
    notifier: TicketNotifier,
    *,
    person: Person,
    ticket_id: int,
    now: datetime,
) -> Ticket:
    """A resident reporting the same problem follows the existing ticket instead."""
    ticket = await load(session, ticket_id)
    if ticket.state not in OPEN_TICKET_STATES:
        raise AlreadyHandled(state=ticket.state, name="—")
    if person.id != ticket.reporter_id and person.id not in {
        p.id for p in await followers(session, ticket)
    }:
        state = TicketState(ticket.state)
        record_event(
            session,
            ticket,
            now,
            TicketEventKind.JOINED,
            from_state=state,
            to_state=state,
            actor=person,
        )
        await tell(
            session,
            notifier,
            Notice.JOINED,
            ticket,
            now,
            actor=person,
            reporters=[person],
            owners=[],
        )
    return ticket
