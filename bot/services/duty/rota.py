"""The street centre's duty rota (值班): who is on duty when, read and edited.

A rota belongs to one centre: a tier-0 grid (the street or township) whose centre operators
(role ``center`` there) take turns on duty. A shift is one operator from ``starts_at`` to
``ends_at``; shifts of one centre never overlap. Centre operators and the administrators of
that street edit it (from the chat here, from a sheet in :mod:`.sheet`); every other staff
role of the street may read it. Every change and every refusal is audited.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.i18n import N_
from bot.services.imports import normalise_phone
from bot.services.people import RoleInGrid
from bot.services.permissions import GRID_PATH
from models import AuditLog, DutyShift, DutySwap, Grid, Person, Role, RoleAssignment

MAX_SHIFT = timedelta(days=7)
SHOWN_NEXT = 3  # shifts /duty lists after the current one
EDITORS = frozenset({Role.CENTER, Role.ADMIN})
READERS = frozenset({Role.CENTER, Role.ADMIN, Role.SUPERVISOR, Role.HEAD})

NOT_STAFF = N_("The duty rota is for the street centre's staff.")
NOT_EDITOR = N_("Only the centre's operators and administrators can change the duty rota.")
BAD_TIME = N_("“{value}” is not a time I can read. Write it like 2026-12-08 08:00.")
END_BEFORE_START = N_("The shift must end after it starts.")
TOO_LONG = N_("A shift may last at most {days} days.")
IN_THE_PAST = N_("That shift is already over.")
NOT_OPERATOR = N_("{value} is not an operator of this centre.")
UNKNOWN_PHONE = N_("Nobody with the phone number {value} is registered.")
OVERLAPS = N_("It overlaps {name}'s shift from {start} to {end}.")
NO_SHIFT = N_("There is no shift number {shift} in this centre's rota.")

_WHEN = re.compile(
    r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:[ T]+|\s*)(\d{1,2})[:：时](\d{2})分?(?::\d{2})?"
)


@dataclass(frozen=True)
class Shift:
    """A shift with its operator, for showing."""

    id: int
    person_id: int
    name: str
    starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True)
class DutyNow:
    """What /duty shows: the centre, who is on now (None: nobody), and the next shifts."""

    grid: Grid
    current: Shift | None
    upcoming: tuple[Shift, ...]
    mine: tuple[Shift, ...]  # the asker's own shifts still to come (or running)
    may_edit: bool


def parse_when(text: str, tz: tzinfo) -> datetime:
    """``2026-12-08 08:00`` (or ``2026/12/8 8:00``, ``2026年12月8日 8:00``, an Excel date-time)
    in the centre's zone, as an aware datetime; :class:`InvalidInput` otherwise."""
    folded = unicodedata.normalize("NFKC", text[:64]).strip()
    match = _WHEN.fullmatch(folded)
    if match is None:
        raise InvalidInput(BAD_TIME, value=_echo(text))
    year, month, day, hour, minute = (int(part) for part in match.groups())
    try:
        return datetime(year, month, day, hour, minute, tzinfo=tz)
    except ValueError:
        raise InvalidInput(BAD_TIME, value=_echo(text)) from None


def _echo(text: str) -> str:
    shown = "".join(ch if ch.isprintable() else "?" for ch in text[:24])
    return shown + ("…" if len(text) > 24 else "")


def check_span(starts_at: datetime, ends_at: datetime, now: datetime) -> str | None:
    """The msgid of what is wrong with a shift's times, or None."""
    if ends_at <= starts_at:
        return END_BEFORE_START
    if ends_at - starts_at > MAX_SHIFT:
        return TOO_LONG
    if ends_at <= now:
        return IN_THE_PAST
    return None


def centre_id(roles: Sequence[RoleInGrid], allowed: frozenset[Role]) -> int | None:
    """The street centre (tier-0 grid id) of the first of ``roles`` in ``allowed``."""
    for role in roles:
        if role.role in allowed and GRID_PATH.fullmatch(role.grid_path):
            return int(role.grid_path.strip("/").split("/")[0])
    return None


def may_edit(roles: Sequence[RoleInGrid], grid_id: int) -> bool:
    """A centre operator of that centre, or an administrator of the whole street."""
    return any(
        r.role in EDITORS
        and GRID_PATH.fullmatch(r.grid_path) is not None
        and r.grid_path == f"/{grid_id}/"
        for r in roles
    )


def refuse_edit(actor: Person, now: datetime, object_id: int | None) -> NotAllowed:
    return NotAllowed(
        NOT_EDITOR,
        audit=AuditLog(
            at=now,
            actor_id=actor.id,
            action="refused:duty_edit",
            object_type="duty_shift",
            object_id=object_id,
        ),
    )


async def editable_centre(
    session: AsyncSession, actor: Person, roles: Sequence[RoleInGrid], now: datetime
) -> Grid:
    """The centre whose rota ``actor`` may change; refused (and audited) otherwise."""
    grid_id = centre_id(roles, EDITORS)
    grid = await session.get(Grid, grid_id) if grid_id is not None else None
    if grid is None or grid.id is None or not actor.active or not may_edit(roles, grid.id):
        raise refuse_edit(actor, now, None)
    return grid


async def operators(session: AsyncSession, grid_id: int) -> list[Person]:
    """The active centre operators of a centre, by name."""
    rows = await session.exec(
        select(Person)
        .join(RoleAssignment, col(RoleAssignment.person_id) == Person.id)
        .where(
            RoleAssignment.grid_id == grid_id,
            RoleAssignment.role == Role.CENTER,
            col(RoleAssignment.active).is_(True),
            col(Person.active).is_(True),
        )
        .order_by(col(Person.name), col(Person.id))
    )
    return list({person.id: person for person in rows.all()}.values())


async def operator_by_phone(session: AsyncSession, grid_id: int, text: str) -> Person:
    """The centre operator with this phone number; :class:`InvalidInput` naming why not."""
    phone = normalise_phone(text)
    if phone is None:
        raise InvalidInput(UNKNOWN_PHONE, value=_echo(text))
    for person in await operators(session, grid_id):
        if person.phone == phone:
            return person
    known = (await session.exec(select(Person.id).where(Person.phone == phone))).first()
    raise InvalidInput(NOT_OPERATOR if known else UNKNOWN_PHONE, value=_echo(text))


async def shifts_between(
    session: AsyncSession, grid_id: int, since: datetime, until: datetime
) -> list[DutyShift]:
    """The centre's shifts that overlap ``[since, until)``, by start."""
    return list(
        (
            await session.exec(
                select(DutyShift)
                .where(
                    DutyShift.grid_id == grid_id,
                    col(DutyShift.starts_at) < until,
                    col(DutyShift.ends_at) > since,
                )
                .order_by(col(DutyShift.starts_at), col(DutyShift.id))
            )
        ).all()
    )


async def on_duty(session: AsyncSession, grid_id: int, now: datetime) -> Person | None:
    """The operator on duty at ``now`` — if they still are an active operator there."""
    for shift in await shifts_between(session, grid_id, now, now + timedelta(microseconds=1)):
        for person in await operators(session, grid_id):
            if person.id == shift.person_id:
                return person
    return None


async def add_shift(
    session: AsyncSession,
    actor: Person,
    roles: Sequence[RoleInGrid],
    now: datetime,
    *,
    phone: str,
    starts: str,
    ends: str,
    tz: tzinfo,
) -> Shift:
    """Put an operator on duty from ``starts`` to ``ends`` (typed words, checked)."""
    grid = await editable_centre(session, actor, roles, now)
    assert grid.id is not None
    person = await operator_by_phone(session, grid.id, phone)
    starts_at, ends_at = parse_when(starts, tz), parse_when(ends, tz)
    problem = check_span(starts_at, ends_at, now)
    if problem is not None:
        raise InvalidInput(problem, days=MAX_SHIFT.days)
    for other in await shifts_between(session, grid.id, starts_at, ends_at):
        holder = await session.get(Person, other.person_id)
        raise InvalidInput(
            OVERLAPS,
            name=holder.name if holder else "—",
            start=_local(other.starts_at, tz),
            end=_local(other.ends_at, tz),
        )
    shift = DutyShift(
        grid_id=grid.id,
        person_id=person.id or 0,
        starts_at=starts_at,
        ends_at=ends_at,
        source="chat",
        created_by=actor.id,
        created_at=now,
    )
    session.add(shift)
    await session.flush()
    session.add(_audit(actor, "duty:add", shift, now))
    return _shown(shift, person)


async def remove_shift(
    session: AsyncSession, actor: Person, roles: Sequence[RoleInGrid], shift_id: int, now: datetime
) -> Shift:
    """Take a shift off the rota (a shift already over stays, as the record)."""
    grid = await editable_centre(session, actor, roles, now)
    shift = await session.get(DutyShift, shift_id)
    if shift is None or shift.grid_id != grid.id:
        raise NotFound(NO_SHIFT, shift=shift_id)
    if shift.ends_at <= now:
        raise InvalidInput(IN_THE_PAST)
    person = await session.get(Person, shift.person_id)
    shown = _shown(shift, person)
    session.add(_audit(actor, "duty:remove", shift, now))
    await session.exec(delete(DutySwap).where(col(DutySwap.shift_id) == shift.id))
    await session.delete(shift)
    return shown


async def duty_now(
    session: AsyncSession, actor: Person, roles: Sequence[RoleInGrid], now: datetime
) -> DutyNow:
    """Who is on duty now and next at the asker's centre (/duty)."""
    grid_id = centre_id(roles, READERS)
    grid = await session.get(Grid, grid_id) if grid_id is not None else None
    if grid is None or grid.id is None:
        raise NotAllowed(NOT_STAFF)
    shifts = (
        await session.exec(
            select(DutyShift, Person)
            .join(Person, col(Person.id) == DutyShift.person_id)
            .where(DutyShift.grid_id == grid.id, col(DutyShift.ends_at) > now)
            .order_by(col(DutyShift.starts_at), col(DutyShift.id))
            .limit(200)
        )
    ).all()
    active = {p.id for p in await operators(session, grid.id)}
    current = next(
        (_shown(s, p) for s, p in shifts if s.starts_at <= now and p.id in active),
        None,
    )
    upcoming = tuple(_shown(s, p) for s, p in shifts if s.starts_at > now)[:SHOWN_NEXT]
    mine = tuple(_shown(s, p) for s, p in shifts if p.id == actor.id)[: SHOWN_NEXT + 2]
    return DutyNow(grid, current, upcoming, mine, may_edit(roles, grid.id))


def _shown(shift: DutyShift, person: Person | None) -> Shift:
    return Shift(
        id=shift.id or 0,
        person_id=shift.person_id,
        name=person.name if person else "—",
        starts_at=shift.starts_at,
        ends_at=shift.ends_at,
    )


def _local(moment: datetime, tz: tzinfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _audit(actor: Person, action: str, shift: DutyShift, now: datetime) -> AuditLog:
    return AuditLog(
        at=now,
        actor_id=actor.id,
        action=action,
        object_type="duty_shift",
        object_id=shift.id,
        data={
            "person": shift.person_id,
            "grid": shift.grid_id,
            "starts_at": shift.starts_at.isoformat(),
            "ends_at": shift.ends_at.isoformat(),
        },
    )
