"""Who a ticket concerns: its grid chain, the holders of a role, its owners, its followers, the
supervisors over it; and :class:`Lookups`, the same answers read once for a whole sweep."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date

from sqlalchemy import ColumnElement, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import Select

from bot.errors import NotFound
from bot.routing.policy import ROLE_RANK, ChainLink, Policy, parse_policy
from bot.routing.working_time import WorkCalendar
from bot.services.tickets.deadlines import calendar_overrides, current_policy
from models import (
    Department,
    Grid,
    Person,
    Role,
    RoleAssignment,
    Ticket,
    TicketEvent,
    TicketEventKind,
    TicketPhoto,
)


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


async def department_staff(session: AsyncSession, department_id: int) -> list[Person]:
    """The people holding an active role in the department (职能部门)."""
    return list(
        (
            await session.exec(
                select(Person)
                .join(RoleAssignment, col(RoleAssignment.person_id) == Person.id)
                .where(
                    RoleAssignment.department_id == department_id,
                    col(RoleAssignment.active).is_(True),
                    col(Person.active).is_(True),
                )
                .order_by(col(Person.id))
            )
        ).all()
    )


async def owners(
    session: AsyncSession, ticket: Ticket, *, lookups: Lookups | None = None
) -> list[Person]:
    """Whose card shows the actions: the department's staff, the assignee, or the role holders."""
    if ticket.owner_department_id is not None:
        return await department_staff(session, ticket.owner_department_id)
    if ticket.owner_grid_id is None or ticket.owner_role is None:
        return []
    return await holders(session, ticket.owner_grid_id, Role(ticket.owner_role), lookups=lookups)


async def department_of(session: AsyncSession, ticket: Ticket) -> Department | None:
    """The department the ticket was transferred to, while it has it."""
    if ticket.owner_department_id is None:
        return None
    return await session.get(Department, ticket.owner_department_id)


async def followers(session: AsyncSession, ticket: Ticket) -> list[Person]:
    """The reporter and the residents who joined the ticket as the same problem."""
    joined = select(TicketEvent.actor_id).where(
        TicketEvent.ticket_id == ticket.id, TicketEvent.action == TicketEventKind.JOINED
    )
    found: ColumnElement[bool] = col(Person.id).in_(joined)
    if ticket.reporter_id is not None:
        found = or_(col(Person.id) == ticket.reporter_id, found)
    return list((await session.exec(select(Person).where(found).order_by(col(Person.id)))).all())


async def links_to_people(
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
                self._overrides = await calendar_overrides(session)
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
            col(TicketEvent.ticket_id).in_(ticket_ids),
            TicketEvent.action == TicketEventKind.JOINED,
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


async def load_grid(session: AsyncSession, grid_id: int) -> Grid:
    grid = await session.get(Grid, grid_id)
    if grid is None:
        raise NotFound()
    return grid
