"""Party members and their contact households (党员联系户, 方案1).

A person of the register may be a party member (正式/预备/流动, :attr:`HouseholdMember.party`)
of a branch (党支部, :class:`models.PartyBranch`, kept by the administrators of its grid). The
head or a worker of the member's grid gives them contact households (联系户) in that grid
(one party contact per household; at most ``PARTY__MAX_HOUSEHOLDS``, 方案1: 20–30). The
cadence is the settings' (``PARTY__CONTACT_PERIOD``: at least one contact a month,
``PARTY__LECTURE_PERIOD``: a policy micro-lecture a quarter). A party member who uses the bot
— an active person whose phone is the register's, as a place's responsible person is found —
gets a morning push of the households still due and records her contacts; the grid's staff
see the coverage (households with a party contact).

Who may do what, always inside the member's grid (their household's grid or above it):
membership — heads and administrators; contact households — workers, heads, administrators;
branches — administrators; coverage — all staff but departments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, Protocol

from sqlalchemy import delete, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.i18n import N_, resolve_locale
from bot.services import outbox, tickets
from bot.services.import_report import CellProblem
from bot.services.member_import import parse_party
from bot.services.outbox import sent_refs
from bot.services.people import RoleInGrid
from bot.services.periods import Period, PeriodKind, period_start
from bot.services.permissions import Action, authorize, within
from bot.services.schedule import in_quiet_hours
from bot.settings import PartySettings, Settings
from models import (
    AuditLog,
    Grid,
    Household,
    HouseholdMember,
    OutboxLane,
    PartyBranch,
    PartyContact,
    PartyContactLog,
    PartyKind,
    Person,
    Role,
    VisitKind,
)

PUSH_TIME = time(8, 0)  # local, as the workers' push
PAGE_SIZE = 8  # households on a page of the picker
MAX_IN_PUSH = 30  # households named in a push (a member has at most PARTY__MAX_HOUSEHOLDS)

MAY_SET = frozenset({Role.HEAD, Role.ADMIN})
MAY_ASSIGN = frozenset({Role.WORKER, Role.HEAD, Role.ADMIN})
MAY_SEE = frozenset({Role.WORKER, Role.HEAD, Role.CENTER, Role.SUPERVISOR, Role.ADMIN})

NOT_IN_SCOPE = N_("Sorry, this person is outside the grids you look after.")
ONLY_HEADS_SET = N_("Only the grid head or an administrator can set someone's party membership.")
ONLY_STAFF_ASSIGN = N_("Only the grid's worker, its head or an administrator can assign contacts.")
NOT_A_PARTY_MEMBER = N_("Resident #{id} is not recorded as a party member.")
GONE = N_("Resident #{id} has moved out or their data was erased.")
BAD_KIND = N_(
    "Write full, probationary or floating (正式, 预备, 流动) — or masses (群众) to record that "
    "someone is not a party member."
)
NO_SUCH_BRANCH = N_(
    "No party branch called “{name}” serves this person's grid. See /party branches."
)
BRANCH_NAME = N_("A branch's name is 1 to 100 characters.")
BRANCH_EXISTS = N_("The grid already has a branch called “{name}”.")
OTHER_GRID = N_("That household is not in the party member's grid.")
TOO_MANY = N_("{name} already has {count} contact households, the most one party member takes.")
NOT_YOUR_HOUSEHOLD = N_("You are not the party contact of this household.")


@dataclass(frozen=True)
class Placed:
    """A register row with its household and grid."""

    member: HouseholdMember
    household: Household
    grid: Grid


def _kind(settings: PartySettings) -> PeriodKind:
    return PeriodKind(settings.contact_period)


def _lecture_kind(settings: PartySettings) -> PeriodKind | None:
    return None if settings.lecture_period == "none" else PeriodKind(settings.lecture_period)


def holds(roles: Sequence[RoleInGrid], allowed: frozenset[Role], path: str) -> bool:
    """Some role in ``allowed`` is held over ``path`` (a missing path matches nothing)."""
    return any(r.role in allowed and within(r.grid_path, path) for r in roles)


def _refusal(person: Person, action: str, object_id: int | None, now: datetime) -> AuditLog:
    return AuditLog(
        at=now, actor_id=person.id, action=action, object_type="member", object_id=object_id
    )


async def placed(session: AsyncSession, member_id: int) -> Placed:
    member = await session.get(HouseholdMember, member_id)
    household = None if member is None else await session.get(Household, member.household_id)
    grid = None if household is None else await session.get(Grid, household.grid_id)
    if member is None or household is None or grid is None:
        raise NotFound()
    return Placed(member, household, grid)


def parse_kind(text: str) -> PartyKind | None:
    """A party standing as written in the chat (None: not a party member)."""
    try:
        return parse_party(text)
    except CellProblem:
        raise InvalidInput(BAD_KIND) from None


# --- branches (党支部) --------------------------------------------------------------------------


async def add_branch(
    session: AsyncSession,
    person: Person,
    roles: Sequence[RoleInGrid],
    grid: Grid,
    name: str,
    now: datetime,
) -> PartyBranch:
    """A new branch serving ``grid`` and the grids below it (administrators of the grid)."""
    await authorize(session, person, roles, Action.MANAGE, grid, now)
    name = " ".join(name.split())
    if not 1 <= len(name) <= 100:
        raise InvalidInput(BRANCH_NAME)
    same = await session.exec(
        select(PartyBranch.id).where(PartyBranch.grid_id == grid.id, PartyBranch.name == name)
    )
    if same.first() is not None:
        raise InvalidInput(BRANCH_EXISTS, name=name)
    assert grid.id is not None
    branch = PartyBranch(grid_id=grid.id, name=name, created_at=now)
    session.add(branch)
    await session.flush()
    session.add(
        AuditLog(
            at=now,
            actor_id=person.id,
            action="party:branch",
            object_type="grid",
            object_id=grid.id,
            detail=name,
        )
    )
    return branch


@dataclass(frozen=True)
class BranchRow:
    branch: PartyBranch
    grid: Grid
    members: int


async def branches_in_scope(session: AsyncSession, roles: Sequence[RoleInGrid]) -> list[BranchRow]:
    """The branches the reader's grids hold or lie under, with their party members."""
    if not any(r.role in MAY_SEE for r in roles):
        raise NotAllowed(N_("This command is for grid staff."))
    rows = (await session.exec(select(PartyBranch, Grid).join(Grid))).all()
    counted = dict(
        (
            await session.exec(
                select(HouseholdMember.party_branch_id, func.count())
                .where(*_active_party())
                .group_by(col(HouseholdMember.party_branch_id))
            )
        ).all()
    )
    paths = [r.grid_path for r in roles if r.role in MAY_SEE]
    return sorted(
        (
            BranchRow(branch, grid, int(counted.get(branch.id, 0)))
            for branch, grid in rows
            if any(within(p, grid.path) or within(grid.path, p) for p in paths)
        ),
        key=lambda row: (row.grid.path, row.branch.name),
    )


async def _branch_for(session: AsyncSession, grid: Grid, text: str | None) -> PartyBranch | None:
    """The branch named ``text`` (or ``#id``) serving ``grid``; without a name, the only
    branch serving it (None if there is none or several)."""
    serving = [
        branch
        for branch, path in (await session.exec(select(PartyBranch, Grid.path).join(Grid))).all()
        if within(path, grid.path)
    ]
    if not text:
        return serving[0] if len(serving) == 1 else None
    word = " ".join(text.split())
    for branch in serving:
        if branch.name == word or f"#{branch.id}" == word:
            return branch
    raise NotFound(NO_SUCH_BRANCH, name=word[:40])


# --- membership -------------------------------------------------------------------------------


def _active_party() -> list[Any]:
    return [
        col(HouseholdMember.party).is_not(None),
        col(HouseholdMember.forgotten_at).is_(None),
        col(HouseholdMember.moved_out).is_(None),
    ]


async def set_party(
    session: AsyncSession,
    person: Person,
    roles: Sequence[RoleInGrid],
    member_id: int,
    kind: PartyKind | None,
    branch_name: str | None,
    now: datetime,
) -> tuple[Placed, PartyBranch | None]:
    """Record (or, with ``kind`` None, clear) a person's party membership and branch; heads
    and administrators of the person's grid; audited. Clearing ends their contacts."""
    place = await placed(session, member_id)
    if not person.active or not holds(roles, MAY_SET, place.grid.path):
        raise NotAllowed(ONLY_HEADS_SET, audit=_refusal(person, "refused:party", member_id, now))
    member = place.member
    if member.forgotten_at is not None or member.moved_out is not None:
        raise InvalidInput(GONE, id=member_id)
    branch = await _branch_for(session, place.grid, branch_name) if kind is not None else None
    if kind is not None and branch is None and member.party_branch_id is not None:
        branch = await session.get(PartyBranch, member.party_branch_id)
    member.party = kind
    member.party_branch_id = None if branch is None else branch.id
    member.updated_at = now
    session.add(member)
    if kind is None:
        await session.exec(delete(PartyContact).where(col(PartyContact.member_id) == member_id))
    session.add(
        AuditLog(
            at=now,
            actor_id=person.id,
            action="party:set",
            object_type="member",
            object_id=member_id,
            detail=place.grid.path,
            data={"party": kind.value if kind else None, "branch": member.party_branch_id},
        )
    )
    return place, branch


async def party_member(
    session: AsyncSession,
    person: Person,
    roles: Sequence[RoleInGrid],
    member_id: int,
    now: datetime,
) -> Placed:
    """A party member whose contacts the reader may assign (their grid's staff)."""
    place = await placed(session, member_id)
    if not person.active or not holds(roles, MAY_ASSIGN, place.grid.path):
        raise NotAllowed(
            ONLY_STAFF_ASSIGN, audit=_refusal(person, "refused:party_assign", member_id, now)
        )
    member = place.member
    if member.forgotten_at is not None or member.moved_out is not None:
        raise InvalidInput(GONE, id=member_id)
    if member.party is None:
        raise InvalidInput(NOT_A_PARTY_MEMBER, id=member_id)
    return place


# --- contact households (联系户) ----------------------------------------------------------------


@dataclass(frozen=True)
class PickRow:
    household: Household
    mine: bool  # a contact household of this party member
    other: str | None  # the name of another party member who has it


@dataclass(frozen=True)
class Picker:
    place: Placed
    rows: tuple[PickRow, ...]
    page: int
    pages: int
    chosen: int  # this member's contact households, all pages


async def picker(
    session: AsyncSession,
    person: Person,
    roles: Sequence[RoleInGrid],
    member_id: int,
    page: int,
    now: datetime,
) -> Picker:
    """A page of the households of the party member's grid, theirs marked."""
    place = await party_member(session, person, roles, member_id, now)
    households = (
        await session.exec(
            select(Household)
            .where(Household.grid_id == place.grid.id)
            .order_by(col(Household.code))
        )
    ).all()
    contacts = {
        household_id: (other_id, name)
        for household_id, other_id, name in (
            await session.exec(
                select(PartyContact.household_id, PartyContact.member_id, HouseholdMember.name)
                .join(HouseholdMember, col(HouseholdMember.id) == PartyContact.member_id)
                .join(Household, col(Household.id) == PartyContact.household_id)
                .where(Household.grid_id == place.grid.id, *_active_party())
            )
        ).all()
    }
    pages = max(1, -(-len(households) // PAGE_SIZE))
    page = min(max(page, 0), pages - 1)
    rows = []
    for household in households[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]:
        found = contacts.get(household.id or 0)
        mine = found is not None and found[0] == member_id
        rows.append(PickRow(household, mine, found[1] if found and not mine else None))
    chosen = sum(1 for other_id, _name in contacts.values() if other_id == member_id)
    return Picker(place, tuple(rows), page, pages, chosen)


async def toggle_contact(
    session: AsyncSession,
    person: Person,
    roles: Sequence[RoleInGrid],
    member_id: int,
    household_id: int,
    now: datetime,
    settings: PartySettings,
) -> bool:
    """Make the household one of the party member's contact households (taking it from
    whoever had it), or stop it being one; True if it is now theirs. Audited."""
    place = await party_member(session, person, roles, member_id, now)
    household = await session.get(Household, household_id)
    if household is None:
        raise NotFound()
    if household.grid_id != place.grid.id:
        raise NotAllowed(OTHER_GRID)
    current = (
        await session.exec(select(PartyContact).where(PartyContact.household_id == household_id))
    ).first()
    assigned = not (current is not None and current.member_id == member_id)
    if assigned:
        count = (
            await session.exec(
                select(func.count())
                .select_from(PartyContact)
                .where(PartyContact.member_id == member_id)
            )
        ).one()
        if int(count) >= settings.max_households:
            raise InvalidInput(TOO_MANY, name=place.member.name, count=int(count))
        if current is None:
            current = PartyContact(household_id=household_id, member_id=member_id, assigned_at=now)
        current.member_id, current.assigned_by, current.assigned_at = member_id, person.id, now
        session.add(current)
    else:
        assert current is not None
        await session.delete(current)
    session.add(
        AuditLog(
            at=now,
            actor_id=person.id,
            action="party:assign" if assigned else "party:unassign",
            object_type="household",
            object_id=household_id,
            data={"member": member_id},
        )
    )
    return assigned


# --- what a party member owes ------------------------------------------------------------------


@dataclass(frozen=True)
class ContactDue:
    """One contact household as its party member sees it."""

    household: Household
    last: datetime | None  # the last contact made
    contact_due: bool  # no contact yet this contact period
    lecture_due: bool  # no micro-lecture yet this lecture period


@dataclass(frozen=True)
class PartyPlan:
    member: HouseholdMember
    branch: str | None
    households: tuple[ContactDue, ...]

    @property
    def due(self) -> tuple[ContactDue, ...]:
        return tuple(h for h in self.households if h.contact_due or h.lecture_due)


def _bounds(kind: PeriodKind, now: datetime, settings: Settings) -> datetime:
    today = now.astimezone(settings.tz).date()
    return Period(kind, period_start(kind, today)).utc_bounds(settings.tz)[0]


async def plans_for(
    session: AsyncSession, members: Sequence[HouseholdMember], now: datetime, settings: Settings
) -> list[PartyPlan]:
    """Each party member's contact households, with what is due this period."""
    ids = [m.id for m in members if m.id is not None]
    if not ids:
        return []
    households = (
        await session.exec(
            select(PartyContact.member_id, Household)
            .join(Household, col(Household.id) == PartyContact.household_id)
            .where(col(PartyContact.member_id).in_(ids))
            .order_by(col(Household.code))
        )
    ).all()
    contact_from = _bounds(_kind(settings.party), now, settings)
    lecture_kind = _lecture_kind(settings.party)
    lecture_from = _bounds(lecture_kind, now, settings) if lecture_kind else None
    logs = (
        await session.exec(
            select(PartyContactLog).where(
                col(PartyContactLog.member_id).in_(ids),
                col(PartyContactLog.contacted_at) >= min(contact_from, lecture_from or now),
            )
        )
    ).all()
    last: dict[tuple[int, int], datetime] = {}
    lectured: set[tuple[int, int]] = set()
    contacted: set[tuple[int, int]] = set()
    for log in logs:
        key = (log.member_id, log.household_id)
        if log.contacted_at >= contact_from:
            contacted.add(key)
        lecture = log.kind == VisitKind.LECTURE
        if lecture and lecture_from is not None and log.contacted_at >= lecture_from:
            lectured.add(key)
    latest = (
        await session.exec(
            select(
                PartyContactLog.member_id,
                PartyContactLog.household_id,
                func.max(PartyContactLog.contacted_at),
            )
            .where(col(PartyContactLog.member_id).in_(ids))
            .group_by(col(PartyContactLog.member_id), col(PartyContactLog.household_id))
        )
    ).all()
    for member_id, household_id, at in latest:
        last[(member_id, household_id)] = at
    branches = {
        b.id: b.name
        for b in (
            await session.exec(
                select(PartyBranch).where(
                    col(PartyBranch.id).in_([m.party_branch_id for m in members])
                )
            )
        ).all()
    }
    by_member: dict[int, list[ContactDue]] = {}
    for member_id, household in households:
        key = (member_id, household.id or 0)
        by_member.setdefault(member_id, []).append(
            ContactDue(
                household,
                last.get(key),
                key not in contacted,
                lecture_from is not None and key not in lectured,
            )
        )
    return [
        PartyPlan(m, branches.get(m.party_branch_id), tuple(by_member.get(m.id or 0, ())))
        for m in members
    ]


async def register_rows_of(session: AsyncSession, person: Person) -> list[HouseholdMember]:
    """The party members of the register who are this bot user (the same phone)."""
    if not person.phone or not person.active:
        return []
    return list(
        (
            await session.exec(
                select(HouseholdMember)
                .where(HouseholdMember.phone == person.phone, *_active_party())
                .order_by(col(HouseholdMember.id))
            )
        ).all()
    )


async def my_plans(
    session: AsyncSession, person: Person, now: datetime, settings: Settings
) -> list[PartyPlan]:
    """What the person owes as a party member (empty: they are none, as far as we know)."""
    return await plans_for(session, await register_rows_of(session, person), now, settings)


async def record_check(
    session: AsyncSession, person: Person, household_id: int, now: datetime
) -> tuple[HouseholdMember, Household]:
    """The person's register row that is the household's party contact, and the household;
    refused (and audited) when she is not its party contact."""
    household = await session.get(Household, household_id)
    if household is None:
        raise NotFound()
    mine = {m.id: m for m in await register_rows_of(session, person)}
    contact = (
        await session.exec(select(PartyContact).where(PartyContact.household_id == household_id))
    ).first()
    if contact is None or contact.member_id not in mine:
        raise NotAllowed(
            NOT_YOUR_HOUSEHOLD,
            audit=AuditLog(
                at=now,
                actor_id=person.id,
                action="refused:party_contact",
                object_type="household",
                object_id=household_id,
            ),
        )
    return mine[contact.member_id], household


async def record_contact(
    session: AsyncSession, person: Person, household_id: int, kind: VisitKind, now: datetime
) -> tuple[HouseholdMember, Household]:
    """Record that the person (a party member) contacted one of her contact households."""
    member, household = await record_check(session, person, household_id, now)
    assert member.id is not None
    session.add(
        PartyContactLog(
            member_id=member.id,
            household_id=household_id,
            kind=kind,
            contacted_at=now,
            recorded_by=person.id,
        )
    )
    await session.flush()
    return member, household


# --- coverage and who is whose contact ----------------------------------------------------------


@dataclass(frozen=True)
class Coverage:
    """党员联系户 in a grid subtree: households, those with a party contact, those contacted
    this contact period, and the party members living there."""

    households: int
    covered: int
    contacted: int
    party_members: int


async def coverage(
    session: AsyncSession,
    roles: Sequence[RoleInGrid],
    grid: Grid,
    now: datetime,
    settings: Settings,
) -> Coverage | None:
    """The grid's coverage for its staff (None for anyone else)."""
    if not holds(roles, MAY_SEE, grid.path):
        return None
    under = col(Grid.path).startswith(grid.path, autoescape=True)
    households = (
        await session.exec(select(func.count()).select_from(Household).join(Grid).where(under))
    ).one()
    covered_ids = (
        select(PartyContact.household_id)
        .join(HouseholdMember, col(HouseholdMember.id) == PartyContact.member_id)
        .join(Household, col(Household.id) == PartyContact.household_id)
        .join(Grid, col(Grid.id) == Household.grid_id)
        .where(under, *_active_party())
    )
    covered = (await session.exec(select(func.count()).select_from(covered_ids.subquery()))).one()
    since = _bounds(_kind(settings.party), now, settings)
    contacted = (
        await session.exec(
            select(func.count(func.distinct(PartyContactLog.household_id))).where(
                col(PartyContactLog.household_id).in_(covered_ids),
                col(PartyContactLog.contacted_at) >= since,
            )
        )
    ).one()
    party_members = (
        await session.exec(
            select(func.count())
            .select_from(HouseholdMember)
            .join(Household, col(Household.id) == HouseholdMember.household_id)
            .join(Grid, col(Grid.id) == Household.grid_id)
            .where(under, *_active_party())
        )
    ).one()
    return Coverage(int(households), int(covered), int(contacted), int(party_members))


async def contact_of_household(session: AsyncSession, household_id: int | None) -> str | None:
    """The name of the household's party contact (shown to the household in /mygrid)."""
    if household_id is None:
        return None
    return (
        await session.exec(
            select(HouseholdMember.name)
            .join(PartyContact, col(PartyContact.member_id) == HouseholdMember.id)
            .where(PartyContact.household_id == household_id, *_active_party())
        )
    ).first()


def party_people(grid_path: str) -> SelectOfScalar[int]:
    """The ids of the bot users who are party members living in the subtree at
    ``grid_path`` (matched by phone): a broadcast audience."""
    phones = (
        select(HouseholdMember.phone)
        .join(Household, col(Household.id) == HouseholdMember.household_id)
        .join(Grid, col(Grid.id) == Household.grid_id)
        .where(
            col(Grid.path).startswith(grid_path, autoescape=True),
            col(HouseholdMember.phone).is_not(None),
            *_active_party(),
        )
    )
    return select(col(Person.id)).where(col(Person.phone).in_(phones))  # type: ignore[return-value]


# --- the party member's morning push ----------------------------------------------------------


@dataclass(frozen=True)
class PartyPush:
    person: Person
    day: date
    plans: tuple[PartyPlan, ...]


class PartyPushRenderer(Protocol):
    """Turns a push into messages (text, Bot API keyboard) in the person's language."""

    def __call__(
        self, push: PartyPush, locale: str, settings: Settings
    ) -> list[tuple[str, dict[str, Any] | None]]: ...


def push_ref(person_id: int, day: date) -> str:
    return f"yp:{person_id}:{day.isoformat()}"


async def send_party_pushes(
    session: AsyncSession, now: datetime, settings: Settings, render: PartyPushRenderer
) -> int:
    """From 08:00 on working days: each party member who uses the bot hears which of her
    contact households are still due (nothing if none is) — once a day, by the outbox ref."""
    local = now.astimezone(settings.tz)
    if local.time() < PUSH_TIME or in_quiet_hours(now, settings):
        return 0
    calendar = await tickets.calendar_for(session, await tickets.current_policy(session))
    today = local.date()
    if not calendar.is_workday(today):
        return 0
    rows = (
        await session.exec(
            select(Person, HouseholdMember)
            .join(HouseholdMember, col(HouseholdMember.phone) == Person.phone)
            .join(PartyContact, col(PartyContact.member_id) == HouseholdMember.id)
            .where(
                col(Person.active).is_(True),
                col(Person.reachable).is_(True),
                col(Person.telegram_id).is_not(None),
                *_active_party(),
            )
            .distinct()
            .order_by(col(Person.id), col(HouseholdMember.id))
        )
    ).all()
    people: dict[int, tuple[Person, list[HouseholdMember]]] = {}
    for person, member in rows:
        people.setdefault(person.id or 0, (person, []))[1].append(member)
    done = await sent_refs(session, [push_ref(pid, today) for pid in people])
    sent = 0
    for person_id, (person, members) in people.items():
        ref = push_ref(person_id, today)
        if ref in done:
            continue
        plans = tuple(p for p in await plans_for(session, members, now, settings) if p.due)
        if not plans:
            continue
        locale = resolve_locale(person.locale, person.telegram_language, settings.default_locale)
        assert person.telegram_id is not None
        for index, (text, markup) in enumerate(
            render(PartyPush(person, today, plans), locale, settings)
        ):
            outbox.send_text(
                session,
                chat_id=person.telegram_id,
                text=text,
                now=now,
                reply_markup=markup,
                person_id=person.id,
                ref=ref if index == 0 else f"{ref}#{index + 1}",
                lane=OutboxLane.BULK,
            )
        sent += 1
    return sent
