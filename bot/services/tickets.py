"""Tickets (事件 / 诉求): filing, handling, escalation by hand, rating — the 7-step loop.

"去有目的、来有问题、后有反馈": every change is one transaction that writes the ticket, its
event (who, when, from, to, why) and, through the :class:`~bot.services.notify.TicketNotifier`,
the messages it causes. Deadlines and escalation come from :mod:`bot.routing`; this module is
the glue that persists their decisions.

States (DESIGN.md): submitted → dispatched (the clock starts) → accepted → in_progress →
resolved → closed, with waiting_reporter (clock paused), escalated moves between tiers,
transferred (to a department), duplicate, rejected and reopened (重办).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from functools import cache
from math import asin, cos, radians, sin, sqrt
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, func, or_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import Select

from bot.i18n import N_
from bot.labels import TICKET_STATE
from bot.routing import escalation
from bot.routing.escalation import TicketClock
from bot.routing.policy import (
    ROLE_RANK,
    ChainLink,
    Policy,
    load_default_policy,
    parse_duration,
    parse_policy,
    policy_to_json,
)
from bot.routing.rules import TicketFacts, route
from bot.routing.working_time import WorkCalendar
from bot.services import outbox
from bot.services.errors import DomainError, InvalidInput, NotAllowed, NotFound
from bot.services.notice import post_outcome
from bot.services.notify import Notice, TicketNotifier, TicketUpdate
from bot.services.people import RoleInGrid
from bot.services.policy import Action, authorize, scope_paths
from bot.settings import Settings
from models import (
    OPEN_TICKET_STATES,
    CalendarDay,
    Counter,
    Department,
    Grid,
    HandlingKind,
    Person,
    PolicyVersion,
    Rating,
    ReturnVisit,
    Role,
    RoleAssignment,
    Ticket,
    TicketCategory,
    TicketEvent,
    TicketPhoto,
    TicketState,
)

MIN_TEXT, MAX_TEXT = 4, 2000
MAX_NOTE = 1000
MAX_PHOTOS = 5
DUPLICATE_WINDOW = timedelta(days=3)
DUPLICATE_RADIUS_M = 300.0

log = logging.getLogger(__name__)


class AlreadyHandled(DomainError):
    message = N_("This ticket has already moved on: {state}, by {name}.")


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


class NotYourTicket(NotAllowed):
    message = N_("Only the people handling this ticket can do that.")


# --- reading text --------------------------------------------------------------------------


def clean_text(raw: str | None, *, minimum: int = MIN_TEXT, maximum: int = MAX_TEXT) -> str:
    """A person's description or note: trimmed, bounded, and not empty or mere symbols.

    NUL and lone surrogates (which PostgreSQL refuses to store) are dropped first.
    """
    raw = "".join(ch for ch in raw or "" if ch != "\x00" and not "\ud800" <= ch <= "\udfff")
    text = " ".join((raw or "").split()) if raw and "\n" not in raw else (raw or "").strip()
    meaningful = sum(1 for ch in text if ch.isalnum())
    if not text or meaningful == 0:
        raise InvalidInput(N_("Please describe it in words."))
    if len(text) > maximum:
        raise InvalidInput(
            N_("That is {length} characters; please keep it under {limit}."),
            length=len(text),
            limit=maximum,
        )
    if meaningful < minimum:
        raise InvalidInput(N_("Please say a little more, so that it can be handled."))
    return text


# --- policy and clock ----------------------------------------------------------------------


async def current_policy(session: AsyncSession) -> Policy:
    """The newest admin policy, else the one GridBot ships with."""
    body = (
        await session.exec(
            select(PolicyVersion.body).order_by(col(PolicyVersion.id).desc()).limit(1)
        )
    ).first()
    return parse_policy(body) if body else load_default_policy()


async def calendar_for(session: AsyncSession, policy: Policy) -> WorkCalendar:
    return WorkCalendar.for_policy(policy, await _calendar_overrides(session))


async def _calendar_overrides(session: AsyncSession) -> dict[date, bool]:
    """The admin's holidays and make-up days (``CalendarDay``)."""
    days = (await session.exec(select(CalendarDay))).all()
    return {day.day: day.is_workday for day in days}


def clock_of(ticket: Ticket) -> TicketClock:
    marks = escalation.ClockMarks.from_json(ticket.sla.get("clock"))
    tier = int(ticket.sla.get("tier", 3))
    return TicketClock(
        state=TicketState(ticket.state),
        kind=HandlingKind(ticket.kind),
        tier=tier,
        role=Role(ticket.owner_role or Role.WORKER),
        dispatched_at=ticket.dispatched_at,
        window_start=marks.window_start,
        accept_deadline=ticket.accept_deadline,
        resolve_deadline=ticket.resolve_deadline,
        cap_deadline=marks.cap_deadline,
        accepted_at=ticket.accepted_at,
        paused_at=ticket.paused_at,
        warned=marks.warned,
        top_flagged=marks.top_flagged,
        escalations=ticket.escalation_count,
    )


def store_clock(
    ticket: Ticket, clock: TicketClock, policy: Policy, calendar: WorkCalendar
) -> None:
    """Copy a clock onto the ticket, with the two indexed sweep columns kept current."""
    ticket.state = clock.state
    ticket.owner_role = clock.role
    ticket.dispatched_at = clock.dispatched_at
    ticket.accept_deadline = clock.accept_deadline
    ticket.resolve_deadline = clock.resolve_deadline
    ticket.accepted_at = clock.accepted_at
    ticket.paused_at = clock.paused_at
    ticket.escalation_count = clock.escalations
    ticket.sla = {**ticket.sla, "clock": clock.marks.to_json(), "tier": clock.tier}
    ticket.next_deadline_at = escalation.next_deadline(clock)
    ticket.warn_at = escalation.warn_at(clock, policy, calendar)


async def policy_of(
    session: AsyncSession, ticket: Ticket, *, lookups: Lookups | None = None
) -> tuple[Policy, WorkCalendar]:
    """The policy the ticket was created under, and its calendar."""
    if lookups is not None:
        return await lookups.policy_of(session, ticket)
    raw = ticket.sla.get("policy")
    policy = parse_policy(raw) if raw else await current_policy(session)
    return policy, await calendar_for(session, policy)


# --- who is who ----------------------------------------------------------------------------


def _path_ids(grid: Grid) -> list[int]:
    """The ids on the grid's path: the street centre first, the grid itself last."""
    return [int(part) for part in grid.path.strip("/").split("/") if part]


async def ancestors(
    session: AsyncSession, grid: Grid, *, lookups: Lookups | None = None
) -> list[Grid]:
    """The grid's chain from the street centre down to the grid itself."""
    if lookups is not None:
        return await lookups.chain(session, grid)
    ids = _path_ids(grid)
    rows = {g.id: g for g in (await session.exec(select(Grid).where(col(Grid.id).in_(ids))))}
    return [rows[i] for i in ids if i in rows]


async def grid_at_tier(
    session: AsyncSession, grid: Grid, tier: int, *, lookups: Lookups | None = None
) -> Grid:
    chain = await ancestors(session, grid, lookups=lookups)
    candidates = [g for g in chain if g.tier <= tier]
    return candidates[-1] if candidates else chain[0]


def _holders_query(grid_ids: Sequence[int], roles: Sequence[Role]) -> Select[int, str, Person]:
    """Active people holding an active role over one of ``grid_ids``, by person id, with the
    grid and role of each assignment (a person holding two counts twice, as in the query
    :func:`holders` has always made)."""
    return (
        select(RoleAssignment.grid_id, RoleAssignment.role, Person)
        .join(RoleAssignment, col(RoleAssignment.person_id) == Person.id)
        .where(
            col(RoleAssignment.grid_id).in_(grid_ids),
            col(RoleAssignment.role).in_(roles),
            col(RoleAssignment.active).is_(True),
            col(Person.active).is_(True),
        )
        .order_by(col(Person.id))
    )


async def holders(
    session: AsyncSession, grid_id: int, role: Role, *, lookups: Lookups | None = None
) -> list[Person]:
    if lookups is not None:
        return await lookups.holders(session, grid_id, role)
    rows = (await session.exec(_holders_query([grid_id], [role]))).all()
    return [person for _, _, person in rows]


async def owners(
    session: AsyncSession, ticket: Ticket, *, lookups: Lookups | None = None
) -> list[Person]:
    """Whose card shows the actions: the department's staff, the assignee, or the role holders."""
    if ticket.owner_department_id is not None:
        return list(
            (
                await session.exec(
                    select(Person)
                    .join(RoleAssignment, col(RoleAssignment.person_id) == Person.id)
                    .where(
                        RoleAssignment.department_id == ticket.owner_department_id,
                        col(RoleAssignment.active).is_(True),
                    )
                )
            ).all()
        )
    if ticket.owner_grid_id is None or ticket.owner_role is None:
        return []
    return await holders(session, ticket.owner_grid_id, Role(ticket.owner_role), lookups=lookups)


async def followers(session: AsyncSession, ticket: Ticket) -> list[Person]:
    """The reporter and the residents who joined the ticket as the same problem."""
    joined = select(TicketEvent.actor_id).where(
        TicketEvent.ticket_id == ticket.id, TicketEvent.action == "joined"
    )
    found: ColumnElement[bool] = col(Person.id).in_(joined)
    if ticket.reporter_id is not None:
        found = or_(col(Person.id) == ticket.reporter_id, found)
    return list((await session.exec(select(Person).where(found).order_by(col(Person.id)))).all())


async def _links_to_people(
    session: AsyncSession, grid: Grid, links: Sequence[ChainLink]
) -> list[Person]:
    found: list[Person] = []
    for link in links:
        at = await grid_at_tier(session, grid, link.tier)
        assert at.id is not None
        found += await holders(session, at.id, link.role)
    return found


class Lookups:
    """What a deadline sweep reads once instead of once per ticket.

    Parsed policies (by their JSON body) with their working calendars (the admin's calendar
    days read once), grids and their chains, the holders of a role in a grid, the supervisors
    over a grid, the number of report photos of each ticket, and each ticket's followers as
    the sweep read them with its lock. Every helper that takes ``lookups=`` answers from here
    and asks the database only on a miss, so the answers are those the plain helpers give;
    :meth:`prefetch` fills it for a whole batch in a few queries. Made fresh for each sweep
    (or manual escalation) and dropped with it, so the next sweep sees a changed policy,
    calendar or role. Holding the grids and people also keeps them in the session's identity
    map, where ``session.get`` finds them without a query.
    """

    def __init__(self) -> None:
        self._overrides: dict[date, bool] | None = None
        self._current: Policy | None = None
        self._policies: dict[str, tuple[Policy, WorkCalendar]] = {}
        self._grids: dict[int, Grid] = {}
        self._holders: dict[tuple[int, Role], list[Person]] = {}
        self._supervisors: dict[int, list[Person]] = {}
        self._people: dict[int, Person] = {}
        self._followers: dict[int, list[Person]] = {}
        self.report_photos: dict[int, int] = {}  # ticket id -> photos filed with the report

    async def policy_of(
        self, session: AsyncSession, ticket: Ticket
    ) -> tuple[Policy, WorkCalendar]:
        raw = ticket.sla.get("policy")
        key = json.dumps(raw, sort_keys=True, ensure_ascii=False) if raw else ""
        known = self._policies.get(key)
        if known is None:
            if raw:
                policy = parse_policy(raw)
            else:
                if self._current is None:
                    self._current = await current_policy(session)
                policy = self._current
            if self._overrides is None:
                self._overrides = await _calendar_overrides(session)
            known = self._policies[key] = (
                policy,
                WorkCalendar.for_policy(policy, self._overrides),
            )
        return known

    async def chain(self, session: AsyncSession, grid: Grid) -> list[Grid]:
        ids = _path_ids(grid)
        missing = [i for i in ids if i not in self._grids]
        if missing:
            await self._load_grids(session, col(Grid.id).in_(missing))
        return [self._grids[i] for i in ids if i in self._grids]

    async def holders(self, session: AsyncSession, grid_id: int, role: Role) -> list[Person]:
        key = (grid_id, role)
        if key not in self._holders:
            await self._load_holders(session, [grid_id], [role])
        return list(self._holders[key])

    async def followers(self, session: AsyncSession, ticket: Ticket) -> list[Person]:
        """As :func:`followers`; from :meth:`know_followers` once the sweep has locked it."""
        assert ticket.id is not None
        known = self._followers.get(ticket.id)
        return list(known) if known is not None else await followers(session, ticket)

    async def know_followers(
        self, session: AsyncSession, ticket: Ticket, joined: Sequence[int | None]
    ) -> None:
        """Remember the ticket's reporter and those who ``joined`` it, read with its lock."""
        assert ticket.id is not None
        ids = sorted({i for i in (ticket.reporter_id, *joined) if i is not None})
        missing = [i for i in ids if i not in self._people]
        if missing:
            await self._load_people(session, col(Person.id).in_(missing))
        self._followers[ticket.id] = [self._people[i] for i in ids if i in self._people]

    async def supervisors_over(self, session: AsyncSession, grid: Grid) -> list[Person]:
        assert grid.id is not None
        if grid.id not in self._supervisors:
            chain = [g.id for g in await self.chain(session, grid)]
            self._supervisors[grid.id] = await _supervisors_on(session, chain)
        return list(self._supervisors[grid.id])

    async def prefetch(self, session: AsyncSession, ticket_ids: Sequence[int]) -> None:
        """Read, for the tickets about to be swept, their grids and grid chains, the chain
        roles' holders on all of those grids, their report photo counts, and their reporters
        and the residents who joined them: five queries for the batch instead of several per
        ticket."""
        if not ticket_ids:
            return
        of_tickets = select(Ticket.grid_id).where(col(Ticket.id).in_(ticket_ids))
        grids = await self._load_grids(session, col(Grid.id).in_(of_tickets))
        above = {i for g in grids for i in _path_ids(g)} - self._grids.keys()
        if above:
            await self._load_grids(session, col(Grid.id).in_(above))
        chain_ids = sorted({i for g in grids for i in _path_ids(g)} & self._grids.keys())
        await self._load_holders(session, chain_ids, list(ROLE_RANK))
        counted = await session.exec(
            select(TicketPhoto.ticket_id, func.count())
            .where(col(TicketPhoto.ticket_id).in_(ticket_ids), TicketPhoto.stage == "report")
            .group_by(col(TicketPhoto.ticket_id))
        )
        self.report_photos = dict.fromkeys(ticket_ids, 0)
        self.report_photos.update({ticket_id: int(count) for ticket_id, count in counted})
        reporters = select(Ticket.reporter_id).where(col(Ticket.id).in_(ticket_ids))
        joined = select(TicketEvent.actor_id).where(
            col(TicketEvent.ticket_id).in_(ticket_ids), TicketEvent.action == "joined"
        )
        await self._load_people(
            session, or_(col(Person.id).in_(reporters), col(Person.id).in_(joined))
        )

    async def _load_grids(
        self, session: AsyncSession, condition: ColumnElement[bool]
    ) -> list[Grid]:
        found = list((await session.exec(select(Grid).where(condition))).all())
        self._grids.update({g.id: g for g in found if g.id is not None})
        return found

    async def _load_people(self, session: AsyncSession, condition: ColumnElement[bool]) -> None:
        found = (await session.exec(select(Person).where(condition))).all()
        self._people.update({p.id: p for p in found if p.id is not None})

    async def _load_holders(
        self, session: AsyncSession, grid_ids: Sequence[int], roles: Sequence[Role]
    ) -> None:
        for grid_id in grid_ids:
            for role in roles:
                self._holders[(grid_id, role)] = []
        for grid_id, held, person in await session.exec(_holders_query(grid_ids, roles)):
            self._holders[(grid_id, Role(held))].append(person)


# --- filing --------------------------------------------------------------------------------


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
    """``<grid code>-<YYYYMMDD>-<nnn>``: readable, and unique even when two file at once."""
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
) -> Ticket:
    """File a problem and dispatch it at once: routed, on the clock, owners told."""
    await check_may_report(session, reporter, settings, now)
    description = clean_text(report.description)
    if len(report.photo_file_ids) > MAX_PHOTOS:
        raise InvalidInput(N_("At most {limit} photos, please."), limit=MAX_PHOTOS)
    policy = await current_policy(session)
    calendar = await calendar_for(session, policy)
    kind = HandlingKind.URGENT if report.urgent else HandlingKind.GENERAL
    decision = route(TicketFacts(report.category, kind, grid.code, grid.path, grid.tier), policy)
    local_day = calendar.local_day(now).strftime("%Y%m%d")
    ticket = Ticket(
        number=await next_number(session, grid, local_day),
        grid_id=grid.id or 0,
        reporter_id=reporter.id,
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
    for file_id in report.photo_file_ids:
        session.add(TicketPhoto(ticket_id=ticket.id, file_id=file_id, created_at=now))
    _event(session, ticket, now, reporter, "submitted", None, TicketState.SUBMITTED)
    _event(
        session,
        ticket,
        now,
        None,
        "dispatched",
        TicketState.SUBMITTED,
        TicketState.DISPATCHED,
        data={"rule": decision.rule, "tier": decision.owner.tier, "role": decision.owner.role},
    )
    informed = await _links_to_people(session, grid, decision.inform)
    await notifier(
        session,
        TicketUpdate(
            Notice.FILED,
            ticket,
            actor=reporter,
            owners=await owners(session, ticket),
            others=informed,
        ),
        now,
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
    ticket = await _load(session, ticket_id)
    if ticket.state not in OPEN_TICKET_STATES:
        raise AlreadyHandled(state=ticket.state, name="—")
    if person.id != ticket.reporter_id and person.id not in {
        p.id for p in await followers(session, ticket)
    }:
        _event(session, ticket, now, person, "joined", ticket.state, ticket.state)
        await notifier(
            session,
            TicketUpdate(Notice.JOINED, ticket, actor=person, reporters=[person]),
            now,
        )
    return ticket


# --- reading -------------------------------------------------------------------------------


async def _load(session: AsyncSession, ticket_id: int) -> Ticket:
    ticket = await session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound()
    return ticket


async def history(session: AsyncSession, ticket_id: int) -> list[tuple[TicketEvent, str | None]]:
    """The ticket's events, oldest first, with the actor's name."""
    rows = await session.exec(
        select(TicketEvent, Person.name)
        .join(Person, col(Person.id) == TicketEvent.actor_id, isouter=True)
        .where(TicketEvent.ticket_id == ticket_id)
        .order_by(col(TicketEvent.at), col(TicketEvent.id))
    )
    return [(event, name) for event, name in rows]


async def my_tickets(session: AsyncSession, person: Person, *, limit: int = 10) -> list[Ticket]:
    joined = select(TicketEvent.ticket_id).where(
        TicketEvent.actor_id == person.id, TicketEvent.action == "joined"
    )
    return list(
        (
            await session.exec(
                select(Ticket)
                .where(or_(col(Ticket.reporter_id) == person.id, col(Ticket.id).in_(joined)))
                .order_by(col(Ticket.created_at).desc())
                .limit(limit)
            )
        ).all()
    )


async def tickets_in_scope(
    session: AsyncSession,
    person: Person,
    roles: Sequence[RoleInGrid],
    *,
    states: Sequence[TicketState] | None = None,
    limit: int = 20,
) -> list[Ticket]:
    """Open tickets a person may handle, soonest deadline first."""
    wanted = list(states or OPEN_TICKET_STATES)
    paths = scope_paths(roles, Action.HANDLE)
    departments = [r.department_id for r in roles if r.department_id is not None]
    conditions = []
    if paths:
        conditions.append(
            col(Ticket.grid_id).in_(
                select(Grid.id).where(or_(*(col(Grid.path).startswith(p) for p in paths)))
            )
        )
    if departments:
        conditions.append(col(Ticket.owner_department_id).in_(departments))
    if not conditions:
        raise NotAllowed(N_("This command is for grid staff."))
    return list(
        (
            await session.exec(
                select(Ticket)
                .where(col(Ticket.state).in_(wanted), or_(*conditions))
                .order_by(col(Ticket.next_deadline_at).is_(None), col(Ticket.next_deadline_at))
                .limit(limit)
            )
        ).all()
    )


def _event(
    session: AsyncSession,
    ticket: Ticket,
    now: datetime,
    actor: Person | None,
    action: str,
    from_state: TicketState | None,
    to_state: TicketState | None,
    *,
    note: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    assert ticket.id is not None
    session.add(
        TicketEvent(
            ticket_id=ticket.id,
            at=now,
            actor_id=actor.id if actor else None,
            action=action,
            from_state=from_state,
            to_state=to_state,
            note=note,
            data=data or {},
        )
    )


# --- handling ------------------------------------------------------------------------------

ACCEPTABLE = frozenset({TicketState.DISPATCHED, TicketState.REOPENED, TicketState.TRANSFERRED})
WORKING = frozenset({TicketState.ACCEPTED, TicketState.IN_PROGRESS})
MOVABLE = ACCEPTABLE | WORKING


async def _holder_name(session: AsyncSession, ticket: Ticket) -> str:
    if ticket.assignee_id is not None:
        assignee = await session.get(Person, ticket.assignee_id)
        if assignee is not None:
            return assignee.name
    if ticket.owner_department_id is not None:
        department = await session.get(Department, ticket.owner_department_id)
        if department is not None:
            return department.name
    current = await owners(session, ticket)
    return "、".join(p.name for p in current) or "—"


async def _moved_on(session: AsyncSession, ticket: Ticket) -> AlreadyHandled:
    return AlreadyHandled(
        state=TICKET_STATE[TicketState(ticket.state)], name=await _holder_name(session, ticket)
    )


async def _for_handling(
    session: AsyncSession,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    states: frozenset[TicketState],
    now: datetime,
) -> Ticket:
    """The ticket, if ``actor`` may act on it now: in scope, among its owners (or its
    assignee once accepted, or the centre over it), and in one of ``states``."""
    ticket = await _load(session, ticket_id)
    await authorize(session, actor, roles, Action.HANDLE, ticket, now)
    if ticket.state not in states:
        raise await _moved_on(session, ticket)
    if any(r.role in {Role.CENTER, Role.ADMIN} for r in roles):
        return ticket  # authorize checked the scope
    if ticket.assignee_id is not None and ticket.state in WORKING | {TicketState.REOPENED}:
        if ticket.assignee_id != actor.id:
            raise await _moved_on(session, ticket)
        return ticket
    if actor.id not in {p.id for p in await owners(session, ticket)}:
        raise await _moved_on(session, ticket)
    return ticket


async def _save(session: AsyncSession, ticket: Ticket, now: datetime) -> None:
    """Flush with the version check: a change based on a stale read loses."""
    ticket.updated_at = now
    session.add(ticket)
    try:
        await session.flush()
    except StaleDataError:  # the caller's transaction is rolled back by whoever catches this
        raise AlreadyHandled(state="—", name="—") from None


async def _tell(
    session: AsyncSession,
    notifier: TicketNotifier,
    notice: Notice,
    ticket: Ticket,
    now: datetime,
    *,
    actor: Person | None = None,
    note: str | None = None,
    photo_file_id: str | None = None,
    others: Sequence[Person] = (),
    extra: dict[str, str] | None = None,
) -> None:
    await notifier(
        session,
        TicketUpdate(
            notice,
            ticket,
            actor=actor,
            note=note,
            photo_file_id=photo_file_id,
            reporters=await followers(session, ticket),
            owners=await owners(session, ticket),
            others=list(others),
            extra=extra or {},
        ),
        now,
    )


async def accept(
    session: AsyncSession,
    notifier: TicketNotifier,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    now: datetime,
) -> Ticket:
    """签收: the first owner to press wins; the others are told who has it."""
    ticket = await _for_handling(
        session, actor=actor, roles=roles, ticket_id=ticket_id, states=ACCEPTABLE, now=now
    )
    taken = ticket.assignee_id is not None and ticket.assignee_id != actor.id
    if taken and ticket.state != TicketState.REOPENED:
        raise await _moved_on(session, ticket)
    policy, calendar = await policy_of(session, ticket)
    before = TicketState(ticket.state)
    store_clock(ticket, escalation.accept(clock_of(ticket), now), policy, calendar)
    ticket.assignee_id = actor.id
    await _save(session, ticket, now)
    _event(session, ticket, now, actor, "accepted", before, TicketState.ACCEPTED)
    await _tell(session, notifier, Notice.ACCEPTED, ticket, now, actor=actor)
    return ticket


async def add_note(
    session: AsyncSession,
    notifier: TicketNotifier,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    text: str,
    now: datetime,
) -> Ticket:
    """A progress note (处理进展), shown to the reporter."""
    note = clean_text(text, minimum=2, maximum=MAX_NOTE)
    ticket = await _for_handling(
        session, actor=actor, roles=roles, ticket_id=ticket_id, states=WORKING, now=now
    )
    before = TicketState(ticket.state)
    ticket.state = TicketState.IN_PROGRESS
    await _save(session, ticket, now)
    _event(session, ticket, now, actor, "note", before, TicketState.IN_PROGRESS, note=note)
    await _tell(session, notifier, Notice.NOTE, ticket, now, actor=actor, note=note)
    return ticket


async def ask_reporter(
    session: AsyncSession,
    notifier: TicketNotifier,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    question: str,
    now: datetime,
) -> Ticket:
    """Ask the reporter something; the clock pauses until they answer."""
    text = clean_text(question, minimum=2, maximum=MAX_NOTE)
    ticket = await _for_handling(
        session, actor=actor, roles=roles, ticket_id=ticket_id, states=WORKING, now=now
    )
    if ticket.reporter_id is None:
        raise InvalidInput(
            N_("Nobody reported this ticket through the bot, so there is nobody to ask.")
        )
    policy, calendar = await policy_of(session, ticket)
    before = TicketState(ticket.state)
    store_clock(ticket, escalation.pause(clock_of(ticket), now), policy, calendar)
    await _save(session, ticket, now)
    _event(session, ticket, now, actor, "asked", before, TicketState.WAITING_REPORTER, note=text)
    await _tell(session, notifier, Notice.QUESTION, ticket, now, actor=actor, note=text)
    return ticket


async def answer_question(
    session: AsyncSession,
    notifier: TicketNotifier,
    *,
    reporter: Person,
    ticket_id: int,
    text: str,
    now: datetime,
) -> Ticket:
    """The reporter's answer goes to the handler and the clock runs again."""
    answer = clean_text(text, minimum=1, maximum=MAX_NOTE)
    ticket = await _load(session, ticket_id)
    if ticket.reporter_id != reporter.id:
        raise NotAllowed()
    if ticket.state != TicketState.WAITING_REPORTER:
        raise await _moved_on(session, ticket)
    policy, calendar = await policy_of(session, ticket)
    clock = escalation.resume(clock_of(ticket), policy, calendar, now)
    store_clock(ticket, clock, policy, calendar)
    await _save(session, ticket, now)
    _event(
        session,
        ticket,
        now,
        reporter,
        "answered",
        TicketState.WAITING_REPORTER,
        clock.state,
        note=answer,
    )
    await _tell(session, notifier, Notice.ANSWER, ticket, now, actor=reporter, note=answer)
    return ticket


async def waiting_for(session: AsyncSession, reporter: Person) -> Ticket | None:
    """The newest ticket of this reporter that waits for their answer."""
    return (
        await session.exec(
            select(Ticket)
            .where(
                Ticket.reporter_id == reporter.id,
                Ticket.state == TicketState.WAITING_REPORTER,
            )
            .order_by(col(Ticket.updated_at).desc())
            .limit(1)
        )
    ).first()


async def resolve(
    session: AsyncSession,
    notifier: TicketNotifier,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    text: str,
    now: datetime,
    photo_file_id: str | None = None,
) -> Ticket:
    """办结: what was done (and a photo); the reporter is asked to rate it."""
    note = clean_text(text, minimum=2, maximum=MAX_NOTE)
    ticket = await _for_handling(
        session, actor=actor, roles=roles, ticket_id=ticket_id, states=WORKING, now=now
    )
    policy, calendar = await policy_of(session, ticket)
    before = TicketState(ticket.state)
    clock = clock_of(ticket)
    store_clock(ticket, replace(clock, state=TicketState.RESOLVED), policy, calendar)
    ticket.resolved_at = now
    ticket.assignee_id = ticket.assignee_id or actor.id
    await _save(session, ticket, now)
    assert ticket.id is not None
    if photo_file_id:
        session.add(
            TicketPhoto(
                ticket_id=ticket.id, file_id=photo_file_id, stage="resolution", created_at=now
            )
        )
    _event(session, ticket, now, actor, "resolved", before, TicketState.RESOLVED, note=note)
    reporters = await followers(session, ticket)
    until = await post_outcome(  # 公示, for a kind whose policy asks for it
        session, ticket, note, policy, calendar, now, names=[p.name for p in reporters]
    )
    await _tell(
        session,
        notifier,
        Notice.RESOLVED,
        ticket,
        now,
        actor=actor,
        note=note,
        photo_file_id=photo_file_id,
        extra={"notice_until": until.isoformat()} if until else None,
    )
    return ticket


async def rate(
    session: AsyncSession,
    notifier: TicketNotifier,
    *,
    reporter: Person,
    ticket_id: int,
    rating: Rating,
    now: datetime,
    comment: str | None = None,
) -> Ticket:
    """满意 / 基本满意 close the ticket as solved; 不满意 reopens it to the same handler (重办)."""
    ticket = await _load(session, ticket_id)
    if ticket.reporter_id != reporter.id:
        raise NotAllowed(N_("Only the person who reported it can rate it."))
    if ticket.state != TicketState.RESOLVED:
        raise await _moved_on(session, ticket)
    text = clean_text(comment, minimum=1, maximum=MAX_NOTE) if comment else None
    ticket.rating_comment = text
    return await _apply_rating(
        session, notifier, ticket, reporter, rating, now, note=text, data={}
    )


async def _apply_rating(
    session: AsyncSession,
    notifier: TicketNotifier,
    ticket: Ticket,
    actor: Person,
    rating: Rating | None,
    now: datetime,
    *,
    note: str | None,
    data: dict[str, Any],
) -> Ticket:
    """A resolved ticket's rating, the reporter's own or heard on a return visit: 不满意
    reopens it to the same handler (重办) with fresh deadlines; anything else (or no rating at
    all after a return visit) closes it as solved."""
    policy, calendar = await policy_of(session, ticket)
    ticket.rating = rating
    data = {**data, "rating": rating.value if rating else None}
    if rating == Rating.UNSATISFIED:
        clock = escalation.reopen(clock_of(ticket), policy, calendar, now)
        store_clock(ticket, clock, policy, calendar)
        ticket.reopen_count += 1
        ticket.resolved_at = None
        await _save(session, ticket, now)
        _event(
            session,
            ticket,
            now,
            actor,
            "reopened",
            TicketState.RESOLVED,
            TicketState.REOPENED,
            note=note,
            data=data,
        )
        await _tell(session, notifier, Notice.REOPENED, ticket, now, actor=actor, note=note)
        return ticket
    store_clock(ticket, replace(clock_of(ticket), state=TicketState.CLOSED), policy, calendar)
    ticket.closed_at = now
    ticket.solved = True
    await _save(session, ticket, now)
    _event(
        session,
        ticket,
        now,
        actor,
        "closed",
        TicketState.RESOLVED,
        TicketState.CLOSED,
        note=note,
        data=data,
    )
    await _tell(session, notifier, Notice.CLOSED, ticket, now, actor=actor, note=note)
    return ticket


async def escalate(
    session: AsyncSession,
    notifier: TicketNotifier,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    reason: str,
    now: datetime,
) -> Ticket:
    """上报 by hand: one tier up, with a reason; the street centre is the top."""
    ticket = await _for_handling(
        session, actor=actor, roles=roles, ticket_id=ticket_id, states=MOVABLE, now=now
    )
    if ticket.owner_department_id is not None:
        raise InvalidInput(
            N_(
                "A ticket transferred to a department cannot be escalated; "
                "ask the centre to take it back."
            )
        )
    lookups = Lookups()
    policy, calendar = await policy_of(session, ticket, lookups=lookups)
    step = escalation.escalate_by_hand(clock_of(ticket), policy, calendar, now, reason)
    await apply_escalation(
        session, notifier, ticket, step, policy, calendar, now, actor=actor, lookups=lookups
    )
    return ticket


async def apply_escalation(
    session: AsyncSession,
    notifier: TicketNotifier,
    ticket: Ticket,
    step: escalation.Escalate,
    policy: Policy,
    calendar: WorkCalendar,
    now: datetime,
    *,
    actor: Person | None = None,
    lookups: Lookups | None = None,
) -> None:
    """Persist one escalation step: new owners and deadlines, an event, everyone told.

    ``lookups`` (a sweep's) answers who is who without asking the database again.
    """
    lookups = lookups or Lookups()
    previous = await owners(session, ticket, lookups=lookups)
    before = TicketState(ticket.state)
    grid = await _load_grid(session, ticket.grid_id)
    owner_grid = await grid_at_tier(session, grid, step.to_tier, lookups=lookups)
    clock = escalation.apply(clock_of(ticket), step)
    store_clock(ticket, clock, policy, calendar)
    ticket.owner_grid_id = owner_grid.id
    ticket.assignee_id = None
    await _save(session, ticket, now)
    _event(
        session,
        ticket,
        now,
        actor,
        "escalated",
        before,
        TicketState(ticket.state),
        note=step.note,
        data={
            "reason": step.reason,
            "from_tier": step.from_tier,
            "to_tier": step.to_tier,
            "to_role": step.to_role,
            "deadline_passed": step.at.isoformat(),
        },
    )
    now_owning = await owners(session, ticket, lookups=lookups)
    still = {o.id for o in now_owning}
    await _announce(
        session,
        notifier,
        Notice.ESCALATED,
        ticket,
        now,
        lookups,
        actor=actor,
        note=step.note,
        owners_now=now_owning,
        others=[p for p in previous if p.id not in still],
        extra={"reason": step.reason, "grid": owner_grid.name},
    )


async def _load_grid(session: AsyncSession, grid_id: int) -> Grid:
    grid = await session.get(Grid, grid_id)
    if grid is None:
        raise NotFound()
    return grid


async def transfer(
    session: AsyncSession,
    notifier: TicketNotifier,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    department_id: int,
    now: datetime,
) -> Ticket:
    """转办: a functional department takes it; its staff get the card."""
    ticket = await _for_handling(
        session, actor=actor, roles=roles, ticket_id=ticket_id, states=MOVABLE, now=now
    )
    department = await session.get(Department, department_id)
    if department is None or not department.active:
        raise NotFound()
    previous = await owners(session, ticket)
    before = TicketState(ticket.state)
    ticket.owner_department_id = department.id
    ticket.owner_role = Role.DEPARTMENT
    ticket.assignee_id = None
    ticket.state = TicketState.TRANSFERRED
    await _save(session, ticket, now)
    _event(
        session,
        ticket,
        now,
        actor,
        "transferred",
        before,
        TicketState.TRANSFERRED,
        data={"department": department.code},
    )
    await _tell(
        session,
        notifier,
        Notice.TRANSFERRED,
        ticket,
        now,
        actor=actor,
        others=previous,
        extra={"department": department.name},
    )
    return ticket


async def mark_duplicate(
    session: AsyncSession,
    notifier: TicketNotifier,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    original_number: str,
    now: datetime,
) -> Ticket:
    """The same problem as another open ticket: this one closes, its reporter follows that one."""
    ticket = await _for_handling(
        session, actor=actor, roles=roles, ticket_id=ticket_id, states=MOVABLE, now=now
    )
    number = original_number.strip().upper()[:40]
    original = (await session.exec(select(Ticket).where(Ticket.number == number))).first()
    if original is None or original.id == ticket.id:
        raise InvalidInput(N_("There is no other ticket numbered {number}."), number=number or "—")
    if original.state not in OPEN_TICKET_STATES:
        raise InvalidInput(N_("Ticket {number} is no longer open."), number=number)
    before = TicketState(ticket.state)
    ticket.duplicate_of_id = original.id
    ticket.state = TicketState.DUPLICATE
    ticket.closed_at = now
    ticket.next_deadline_at = ticket.warn_at = None
    await _save(session, ticket, now)
    _event(
        session,
        ticket,
        now,
        actor,
        "duplicate",
        before,
        TicketState.DUPLICATE,
        data={"original": original.number},
    )
    for follower in await followers(session, ticket):
        _event(session, original, now, follower, "joined", original.state, original.state)
    await _tell(
        session,
        notifier,
        Notice.DUPLICATE,
        ticket,
        now,
        actor=actor,
        extra={"original": original.number},
    )
    return ticket


async def reject(
    session: AsyncSession,
    notifier: TicketNotifier,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    reason: str,
    now: datetime,
) -> Ticket:
    """不予受理: outside the grid's remit; the reason goes to the reporter."""
    text = clean_text(reason, minimum=2, maximum=MAX_NOTE)
    ticket = await _for_handling(
        session, actor=actor, roles=roles, ticket_id=ticket_id, states=MOVABLE, now=now
    )
    before = TicketState(ticket.state)
    ticket.state = TicketState.REJECTED
    ticket.closed_at = now
    ticket.solved = False
    ticket.next_deadline_at = ticket.warn_at = None
    await _save(session, ticket, now)
    _event(session, ticket, now, actor, "rejected", before, TicketState.REJECTED, note=text)
    await _tell(session, notifier, Notice.REJECTED, ticket, now, actor=actor, note=text)
    return ticket


async def departments(session: AsyncSession) -> list[Department]:
    return list(
        (
            await session.exec(
                select(Department)
                .where(col(Department.active).is_(True))
                .order_by(col(Department.id))
            )
        ).all()
    )


STATES_FOR: dict[str, frozenset[TicketState]] = {
    "accept": ACCEPTABLE,
    "note": WORKING,
    "ask": WORKING,
    "resolve": WORKING,
    "escalate": MOVABLE,
    "transfer": MOVABLE,
    "duplicate": MOVABLE,
    "reject": MOVABLE,
}


async def ensure_actionable(
    session: AsyncSession,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    action: str,
    now: datetime,
) -> Ticket:
    """Check before asking someone to type: may ``actor`` do ``action`` on the ticket now?"""
    return await _for_handling(
        session, actor=actor, roles=roles, ticket_id=ticket_id, states=STATES_FOR[action], now=now
    )


async def viewable(
    session: AsyncSession,
    *,
    person: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    now: datetime,
) -> Ticket:
    """A ticket the person may see: their own, or one in their scope."""
    ticket = await _load(session, ticket_id)
    if person.id not in {p.id for p in await followers(session, ticket)}:
        await authorize(session, person, roles, Action.VIEW, ticket, now)
    return ticket


async def add_rating_comment(
    session: AsyncSession,
    notifier: TicketNotifier,
    *,
    reporter: Person,
    ticket_id: int,
    comment: str,
    now: datetime,
) -> Ticket:
    """The optional words after a rating; an unhappy reporter's reach the handler."""
    text = clean_text(comment, minimum=1, maximum=MAX_NOTE)
    ticket = await _load(session, ticket_id)
    if ticket.reporter_id != reporter.id or ticket.rating is None:
        raise NotAllowed()
    ticket.rating_comment = text
    await _save(session, ticket, now)
    _event(session, ticket, now, reporter, "rating_comment", ticket.state, ticket.state, note=text)
    if ticket.rating == Rating.UNSATISFIED:
        await notifier(
            session,
            TicketUpdate(
                Notice.ANSWER,
                ticket,
                actor=reporter,
                note=text,
                owners=await owners(session, ticket),
            ),
            now,
        )
    return ticket


async def card_facts(
    session: AsyncSession, ticket: Ticket, *, photos: int | None = None
) -> tuple[str, str | None, str | None, int]:
    """What a card shows besides the ticket: grid name, reporter, who has it, photo count
    (counted here unless the caller passes the number of report ``photos``)."""
    grid = await session.get(Grid, ticket.grid_id)
    reporter = await session.get(Person, ticket.reporter_id) if ticket.reporter_id else None
    holder = await session.get(Person, ticket.assignee_id) if ticket.assignee_id else None
    if photos is None:
        photos = (
            await session.exec(
                select(func.count()).where(
                    TicketPhoto.ticket_id == ticket.id, TicketPhoto.stage == "report"
                )
            )
        ).one()
    return (
        grid.name if grid else "—",
        reporter.name if reporter else None,
        holder.name if holder else None,
        int(photos),
    )


# --- the deadline sweep (限时办理) -----------------------------------------------------------


async def supervisors_over(
    session: AsyncSession, grid: Grid, *, lookups: Lookups | None = None
) -> list[Person]:
    """The supervisors (督查) whose scope covers ``grid``."""
    if lookups is not None:
        return await lookups.supervisors_over(session, grid)
    return await _supervisors_on(session, [g.id for g in await ancestors(session, grid)])


async def _supervisors_on(session: AsyncSession, grid_ids: Sequence[int | None]) -> list[Person]:
    return list(
        (
            await session.exec(
                select(Person)
                .join(RoleAssignment, col(RoleAssignment.person_id) == Person.id)
                .where(
                    RoleAssignment.role == Role.SUPERVISOR,
                    col(RoleAssignment.grid_id).in_(grid_ids),
                    col(RoleAssignment.active).is_(True),
                )
            )
        ).all()
    )


async def _announce(
    session: AsyncSession,
    notifier: TicketNotifier,
    notice: Notice,
    ticket: Ticket,
    now: datetime,
    lookups: Lookups,
    *,
    actor: Person | None = None,
    note: str | None = None,
    owners_now: Sequence[Person] | None = None,
    others: Sequence[Person] = (),
    extra: dict[str, str] | None = None,
) -> None:
    """:func:`_tell` with who is who from ``lookups`` (and the owners, when already known)."""
    assert ticket.id is not None
    if owners_now is None:
        owners_now = await owners(session, ticket, lookups=lookups)
    with session.no_autoflush:  # the step's event waits for the outbox rows: one flush
        reporters = await lookups.followers(session, ticket)
    await notifier(
        session,
        TicketUpdate(
            notice,
            ticket,
            actor=actor,
            note=note,
            reporters=reporters,
            owners=list(owners_now),
            others=list(others),
            extra=extra or {},
            report_photos=lookups.report_photos.get(ticket.id),
        ),
        now,
    )


async def escalate_overdue(
    session: AsyncSession, notifier: TicketNotifier, now: datetime, *, batch: int = 500
) -> int:
    """One sweep: warn before deadlines, escalate past them, flag the overdue at the top.

    Reads only tickets whose indexed ``next_deadline_at``/``warn_at`` has come, so its cost
    grows with what is due, not with all tickets. Who is who, the policies and the calendar
    are read once for the whole batch (:class:`Lookups`), in a read of their own. Then each
    ticket is settled in a short transaction of its own (:func:`settle_due`) and committed, so
    a person acting on a ticket of the batch waits for that one ticket at most, never for the
    batch; a ticket that fails is rolled back alone, logged, and stays due for the next sweep.

    Commits ``session`` once per ticket: it must keep its objects on commit (the sessions of
    :func:`bot.db.create_session_factory` do), so the batch's lookups stay readable. Returns
    the number of steps taken.
    """
    query = (
        select(Ticket.id)
        .where(or_(col(Ticket.next_deadline_at) <= now, col(Ticket.warn_at) <= now))
        .order_by(col(Ticket.next_deadline_at))
        .limit(batch)
    )
    ids = [ticket_id for ticket_id in (await session.exec(query)).all() if ticket_id is not None]
    lookups = await _lookups_for(session, ids)
    steps_taken = 0
    for position, ticket_id in enumerate(ids):
        try:
            steps = await settle_due(session, notifier, ticket_id, now, lookups)
            await session.commit()
        except Exception as error:
            await session.rollback()  # this ticket alone; it stays due for the next sweep
            if isinstance(error, StaleDataError | AlreadyHandled):
                log.info("ticket %s moved on while the sweep settled it", ticket_id)
            else:
                log.exception("the deadline sweep could not settle ticket %s", ticket_id)
            # a rollback expires every object the session holds, the lookups' too
            lookups = await _lookups_for(session, ids[position + 1 :])
            continue
        steps_taken += steps
    return steps_taken


async def _lookups_for(session: AsyncSession, ticket_ids: Sequence[int]) -> Lookups:
    """The batch's lookups, read in a transaction that ends before any ticket is locked."""
    lookups = Lookups()
    await lookups.prefetch(session, ticket_ids)
    await session.commit()
    return lookups


def _is_due(ticket: Ticket, now: datetime) -> bool:
    return any(at is not None and at <= now for at in (ticket.next_deadline_at, ticket.warn_at))


@cache
def _locked_with_followers(skip_locked: bool) -> Select[Ticket, int | None]:
    """The sweep's read of one ticket (``:ticket_id``), fresh from the database and locked
    (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's write transaction holds the whole
    database), one row per resident who joined it. A joining resident's event row waits for
    that lock (its key check on the ticket), so the followers read here stay true until the
    ticket's transaction commits. Built once: only the id changes."""
    query = (
        select(Ticket, TicketEvent.actor_id)
        .outerjoin(
            TicketEvent,
            and_(col(TicketEvent.ticket_id) == Ticket.id, col(TicketEvent.action) == "joined"),
        )
        .where(col(Ticket.id) == bindparam("ticket_id"))
        .execution_options(populate_existing=True)
    )
    if skip_locked:
        query = query.with_for_update(of=Ticket, skip_locked=True)
    return query


async def settle_due(
    session: AsyncSession,
    notifier: TicketNotifier,
    ticket_id: int,
    now: datetime,
    lookups: Lookups | None = None,
) -> int:
    """Take the steps one ticket has due, in the caller's transaction: lock it, check it is
    still due (a person or another sweep may have moved it since the batch was read), advance
    its clock (:func:`bot.routing.escalation.advance`), save it, record each step's event and
    queue its messages. A ticket locked by someone else is left for the next sweep. Returns the
    number of steps taken."""
    lookups = lookups or Lookups()
    query = _locked_with_followers(session.get_bind().dialect.name == "postgresql")
    rows = (await session.exec(query, params={"ticket_id": ticket_id})).all()
    if not rows or not _is_due(rows[0][0], now):
        return 0
    ticket = rows[0][0]
    await lookups.know_followers(session, ticket, [joined for _, joined in rows])
    policy, calendar = await policy_of(session, ticket, lookups=lookups)
    steps = escalation.advance(clock_of(ticket), policy, calendar, now)
    for step in steps:
        if isinstance(step, escalation.Escalate):
            await apply_escalation(
                session, notifier, ticket, step, policy, calendar, now, lookups=lookups
            )
            continue
        store_clock(ticket, escalation.apply(clock_of(ticket), step), policy, calendar)
        ticket.updated_at = now
        session.add(ticket)
        await session.flush()
        if isinstance(step, escalation.Warn):
            _event(
                session,
                ticket,
                now,
                None,
                "warned",
                ticket.state,
                ticket.state,
                data={"which": step.which, "deadline": step.deadline.isoformat()},
            )
            await _announce(session, notifier, Notice.WARNED, ticket, now, lookups)
        else:
            _event(
                session,
                ticket,
                now,
                None,
                "overdue",
                ticket.state,
                ticket.state,
                data={"which": step.which, "at": step.at.isoformat()},
            )
            grid = await _load_grid(session, ticket.grid_id)
            await _announce(
                session,
                notifier,
                Notice.OVERDUE_AT_TOP,
                ticket,
                now,
                lookups,
                others=await supervisors_over(session, grid, lookups=lookups),
            )
    if not steps:  # nothing due after all: make sure it leaves the sweep's index
        store_clock(ticket, clock_of(ticket), policy, calendar)
        session.add(ticket)
        await session.flush()
    return len(steps)


# --- return visits (回访) -------------------------------------------------------------------

RATING_WAIT = "1 working_days"  # a resolved ticket nobody rated gets a return visit after this

# (worker, ticket, return visit, reporter's name) -> (text, reply markup as Bot API JSON)
ReturnVisitRenderer = Callable[[Person, Ticket, ReturnVisit, str], tuple[str, dict[str, Any]]]


async def open_return_visits(
    session: AsyncSession, render: ReturnVisitRenderer, now: datetime
) -> int:
    """Resolved tickets the reporter has not rated within one working day become a return
    visit (回访) for the handler (or the grid's worker), who is asked to call and record it."""
    waiting = (
        await session.exec(
            select(Ticket)
            .where(
                Ticket.state == TicketState.RESOLVED,
                col(Ticket.resolved_at) <= now - timedelta(hours=12),
                ~col(Ticket.id).in_(select(ReturnVisit.ticket_id)),
            )
            .order_by(col(Ticket.resolved_at))
            .limit(500)
        )
    ).all()
    opened = 0
    for ticket in waiting:
        assert ticket.resolved_at is not None and ticket.id is not None
        _, calendar = await policy_of(session, ticket)
        due = calendar.add(ticket.resolved_at, parse_duration(RATING_WAIT))
        if due > now:
            continue
        worker = await session.get(Person, ticket.assignee_id) if ticket.assignee_id else None
        if worker is None or not worker.active:
            grid = await _load_grid(session, ticket.grid_id)
            workers = await holders(
                session, (await grid_at_tier(session, grid, 3)).id or 0, Role.WORKER
            )
            worker = workers[0] if workers else None
        visit = ReturnVisit(
            ticket_id=ticket.id,
            worker_id=worker.id if worker else None,
            due_at=due,
            created_at=now,
        )
        session.add(visit)
        await session.flush()
        _event(session, ticket, now, None, "return_visit_due", ticket.state, ticket.state)
        if worker is not None and worker.telegram_id is not None and worker.reachable:
            reporter = (
                await session.get(Person, ticket.reporter_id) if ticket.reporter_id else None
            )
            text, keyboard = render(worker, ticket, visit, reporter.name if reporter else "—")
            outbox.send_text(
                session,
                chat_id=worker.telegram_id,
                text=text,
                now=now,
                reply_markup=keyboard,
                person_id=worker.id,
                ref=f"rv:{visit.id}",
            )
        opened += 1
    return opened


async def record_return_visit(
    session: AsyncSession,
    notifier: TicketNotifier,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    visit_id: int,
    rating: Rating | None,
    now: datetime,
) -> Ticket:
    """What the reporter said on the phone: a rating closes or reopens the ticket like their own
    would; ``None`` (not reachable) closes it as resolved, unrated."""
    visit = await session.get(ReturnVisit, visit_id)
    if visit is None:
        raise NotFound()
    ticket = await _load(session, visit.ticket_id)
    await authorize(session, actor, roles, Action.HANDLE, ticket, now)
    if visit.done_at is not None or ticket.state != TicketState.RESOLVED:
        raise await _moved_on(session, ticket)
    visit.done_at = now
    visit.rating = rating
    visit.outcome = "rated" if rating else "unreachable"
    session.add(visit)
    return await _apply_rating(
        session, notifier, ticket, actor, rating, now, note=None, data={"return_visit": visit_id}
    )
