"""Household visits (走访) and the worker's diary (民情日记).

Every visit is a diary entry: who, which household, what kind (phone, home visit, policy
micro-lecture, other), when and what was learnt. Logging one also bumps the household's
:class:`~models.VisitTally` rows of the month, quarter and year it falls in, which the quota
engine (:mod:`bot.services.quotas`) reads, and reports the rules the visit counted toward::

    result = await log_visit(session, me, roles, household_id, "in_person", text, now, tz=tz)
    for rule in result.counted:  # "this counts toward: key household monthly visit (1/1 ✓)"
        ...

The author may edit or withdraw a visit on the local day it was logged; after that only a
head over the household's grid may (``Action.AMEND_VISIT``), and each such amendment is
written to the audit log. Withdrawing takes the visit off the tallies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import Table, and_, case, delete, func, or_, select, update
from sqlmodel import col
from sqlmodel import select as orm_select
from sqlmodel.ext.asyncio.session import AsyncSession

import models
from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.i18n import N_
from bot.services.people import RoleInGrid
from bot.services.periods import DEFAULT_TZ, PeriodKind, local_day, local_midnight, periods_of
from bot.services.permissions import Action, authorize, permits, same, target_of
from bot.services.quotas import (
    RuleCounts,
    applies_to,
    clean_text,
    counts_toward,
    dialect_insert,
    echo,
    list_rules,
)
from models import AuditLog, Household, Person, Visit, VisitKind

NOTE_LIMIT = 2000  # characters of a diary note
REASON_LIMIT = 500  # characters of a withdrawal reason
FILE_ID_LIMIT = 255  # Visit.photo_file_id
DIARY_PAGE_LIMIT = 100

TALLY: Table = models.metadata.tables["visit_tally"]
VISIT: Table = models.metadata.tables["visit"]


@dataclass(frozen=True)
class RuleProgress:
    """Where a household stands on one rule after a visit: "key monthly visit (1/1 ✓)"."""

    rule_id: int
    rule_name: str  # a msgid for the default rules: translate with quotas.rule_name
    period: PeriodKind
    period_start: date
    done: int
    required: int

    @property
    def met(self) -> bool:
        return self.done >= self.required

    @property
    def just_met(self) -> bool:
        """This visit was the one that met the rule."""
        return self.done == self.required


@dataclass(frozen=True)
class VisitResult:
    """A logged or edited visit and the rules it counts toward (in the visit's periods)."""

    visit: Visit
    household: Household
    counted: tuple[RuleProgress, ...]
    amended: bool = False  # changed by someone other than the author on the day (audited)


@dataclass(frozen=True)
class DiaryEntry:
    """One line of the diary (民情日记) or of a household's visit history."""

    visit_id: int
    household_id: int
    household_code: str
    household_name: str  # the head of the household (户主)
    address: str
    worker_id: int
    worker_name: str
    kind: VisitKind
    visited_at: datetime
    note: str
    photo_file_id: str | None
    withdrawn: bool


# --- parsing ----------------------------------------------------------------------------------


def parse_note(text: str) -> str:
    """A diary note: cleaned (see :func:`quotas.clean_text`), 1–2000 characters."""
    note = clean_text(text)
    if not note:
        raise InvalidInput(N_("Please write a few words about the visit."))
    if len(note) > NOTE_LIMIT:
        raise InvalidInput(
            N_("The note is too long: {length} characters, at most {limit}."),
            length=len(note),
            limit=NOTE_LIMIT,
        )
    return note


def parse_kind(value: str | VisitKind) -> VisitKind:
    try:
        return VisitKind(value.strip().lower() if isinstance(value, str) else value)
    except ValueError:
        raise InvalidInput(N_("“{value}” is not a kind of visit."), value=echo(value)) from None


def parse_place(latitude: float | None, longitude: float | None) -> tuple[float, float] | None:
    """Both coordinates or neither, finite and on the globe."""
    if latitude is None and longitude is None:
        return None
    if (
        latitude is None
        or longitude is None
        or not (math.isfinite(latitude) and math.isfinite(longitude))
        or not (-90 <= latitude <= 90 and -180 <= longitude <= 180)
    ):
        raise InvalidInput(N_("That location is not a place on the map."))
    return float(latitude), float(longitude)


def parse_file_id(value: str | None) -> str | None:
    if value is None:
        return None
    file_id = value.strip()
    if not file_id or len(file_id) > FILE_ID_LIMIT or not file_id.isprintable():
        raise InvalidInput(N_("That photo could not be kept. Please send it again."))
    return file_id


# --- logging, editing, withdrawing --------------------------------------------------------------


async def log_visit(
    session: AsyncSession,
    worker: Person,
    roles: Sequence[RoleInGrid],
    household_id: int,
    kind: str | VisitKind,
    note: str,
    now: datetime,
    photo_file_id: str | None = None,
    latitude: float | None = None,
    longitude: float | None = None,
    *,
    tz: tzinfo = DEFAULT_TZ,
) -> VisitResult:
    """Write a visit made now into the diary and the tallies; say which rules it advanced.

    Raises :class:`NotFound` for an unknown household, :class:`NotAllowed` (with its audit
    record) outside the grids ``worker`` serves, :class:`InvalidInput` for an empty or
    overlong note, an unknown kind, an impossible location or a malformed photo id.
    """
    household = await session.get(Household, household_id)
    if household is None:
        raise NotFound(N_("That household is not in the register."))
    await authorize(session, worker, roles, Action.VISIT, household, now)
    visit_kind = parse_kind(kind)
    text = parse_note(note)
    place = parse_place(latitude, longitude)
    if worker.id is None:
        raise ValueError("the worker must be a saved person")
    visit = Visit(
        household_id=household_id,
        worker_id=worker.id,
        kind=visit_kind,
        visited_at=now,
        note=text,
        photo_file_id=parse_file_id(photo_file_id),
        latitude=place[0] if place else None,
        longitude=place[1] if place else None,
        created_at=now,
        updated_at=now,
    )
    session.add(visit)
    await session.flush()
    counts = await _add_to_tallies(session, household_id, visit_kind, now, tz)
    counted = await _counted(session, household, visit_kind, now, counts, tz)
    return VisitResult(visit, household, counted)


async def edit_visit(
    session: AsyncSession,
    person: Person,
    roles: Sequence[RoleInGrid],
    visit_id: int,
    now: datetime,
    *,
    kind: str | VisitKind | None = None,
    note: str | None = None,
    photo_file_id: str | None = None,
    tz: tzinfo = DEFAULT_TZ,
) -> VisitResult:
    """Change a visit's kind, note or photo (its time and household stay).

    The author may on the local day it was logged; after that — or for someone else's
    visit — only a head over the household's grid, and the amendment is audited.
    """
    visit, household, amended = await _changeable(session, person, roles, visit_id, now, tz)
    before = _snapshot(visit)
    old_kind = VisitKind(visit.kind)
    new_kind = old_kind if kind is None else parse_kind(kind)
    new_note = visit.note if note is None else parse_note(note)
    new_photo = visit.photo_file_id if photo_file_id is None else parse_file_id(photo_file_id)
    if (new_kind, new_note, new_photo) == (old_kind, visit.note, visit.photo_file_id):
        raise InvalidInput(N_("Nothing was changed."))
    visit.kind, visit.note, visit.photo_file_id = new_kind, new_note, new_photo
    visit.updated_at = now
    session.add(visit)
    await session.flush()
    if new_kind is not old_kind:
        await _take_from_tallies(session, visit, old_kind, tz)
        counts = await _add_to_tallies(session, household.id or 0, new_kind, visit.visited_at, tz)
    else:
        counts = await _tally_counts(session, household.id or 0, visit.visited_at, tz)
    if amended:
        session.add(_amendment(person, visit, "visit:amend", now, before, None))
    counted = await _counted(session, household, new_kind, visit.visited_at, counts, tz)
    return VisitResult(visit, household, counted, amended)


async def add_extras(
    session: AsyncSession,
    person: Person,
    roles: Sequence[RoleInGrid],
    visit_id: int,
    now: datetime,
    *,
    photo_file_id: str | None = None,
    latitude: float | None = None,
    longitude: float | None = None,
    tz: tzinfo = DEFAULT_TZ,
) -> Visit:
    """Attach a photo and/or the place to a visit already in the diary (the optional step
    after the note). Same permission as :func:`edit_visit`; a later photo replaces the
    earlier one. The tallies do not change."""
    visit, _household, amended = await _changeable(session, person, roles, visit_id, now, tz)
    before = _snapshot(visit)
    photo = parse_file_id(photo_file_id)
    place = parse_place(latitude, longitude)
    if photo is None and place is None:
        raise InvalidInput(N_("Nothing was changed."))
    if photo is not None:
        visit.photo_file_id = photo
    if place is not None:
        visit.latitude, visit.longitude = place
    visit.updated_at = now
    session.add(visit)
    await session.flush()
    if amended:
        session.add(_amendment(person, visit, "visit:amend", now, before, None))
    return visit


async def withdraw_visit(
    session: AsyncSession,
    person: Person,
    roles: Sequence[RoleInGrid],
    visit_id: int,
    now: datetime,
    *,
    reason: str | None = None,
    tz: tzinfo = DEFAULT_TZ,
) -> Visit:
    """Withdraw a visit logged by mistake: it leaves the diary's count and the tallies.

    Same permission as :func:`edit_visit`; the row stays (``withdrawn_at``) for the record.
    """
    visit, _household, amended = await _changeable(session, person, roles, visit_id, now, tz)
    why = None if reason is None else clean_text(reason)
    if why is not None and len(why) > REASON_LIMIT:
        raise InvalidInput(
            N_("The reason is too long: {length} characters, at most {limit}."),
            length=len(why),
            limit=REASON_LIMIT,
        )
    before = _snapshot(visit)
    visit.withdrawn_at = now
    visit.updated_at = now
    session.add(visit)
    await session.flush()
    await _take_from_tallies(session, visit, VisitKind(visit.kind), tz)
    if amended:
        session.add(_amendment(person, visit, "visit:withdraw", now, before, why or None))
    return visit


async def _changeable(
    session: AsyncSession,
    person: Person,
    roles: Sequence[RoleInGrid],
    visit_id: int,
    now: datetime,
    tz: tzinfo,
) -> tuple[Visit, Household, bool]:
    """The visit, its household, and whether changing it is an amendment (not the author's
    own same-day correction). Refuses everyone else."""
    visit = await session.get(Visit, visit_id)
    household = None if visit is None else await session.get(Household, visit.household_id)
    if visit is None or household is None:
        raise NotFound(N_("That visit is not in the diary."))
    if visit.withdrawn_at is not None:
        raise InvalidInput(N_("This visit has already been withdrawn."))
    target = await target_of(session, visit)
    own_today = same(visit.worker_id, person.id) and local_day(visit.visited_at, tz) == local_day(
        now, tz
    )
    if person.active and own_today and permits(roles, Action.VISIT, target, person.id):
        return visit, household, False
    if person.active and permits(roles, Action.AMEND_VISIT, target, person.id):
        return visit, household, True
    refusal = AuditLog(
        at=now,
        actor_id=person.id,
        action=f"refused:{Action.AMEND_VISIT.value}",
        object_type="visit",
        object_id=visit.id,
        detail=target.grid_path,
    )
    raise NotAllowed(
        N_(
            "Only the author can change a visit, on the day it was logged. "
            "After that, please ask your grid head."
        ),
        audit=refusal,
    )


def _snapshot(visit: Visit) -> dict[str, Any]:
    return {
        "kind": str(visit.kind),
        "note": visit.note,
        "photo_file_id": visit.photo_file_id,
        "latitude": visit.latitude,
        "longitude": visit.longitude,
        "worker_id": visit.worker_id,
        "visited_at": visit.visited_at.isoformat(),
    }


def _amendment(
    person: Person,
    visit: Visit,
    action: str,
    now: datetime,
    before: dict[str, Any],
    reason: str | None,
) -> AuditLog:
    return AuditLog(
        at=now,
        actor_id=person.id,
        action=action,
        object_type="visit",
        object_id=visit.id,
        detail=reason,
        data={"before": before, "after": _snapshot(visit)},
    )


# --- the tallies ----------------------------------------------------------------------------

Counts = dict[PeriodKind, tuple[int, int, int, int]]  # contacts, in_person, lectures, broadcasts
TALLY_INDEX = {"contacts": 0, "in_person": 1, "lectures": 2, "broadcasts": 3}


def _increments(kind: VisitKind) -> tuple[int, int, int]:
    return 1, int(kind is VisitKind.IN_PERSON), int(kind is VisitKind.LECTURE)


async def _add_to_tallies(
    session: AsyncSession, household_id: int, kind: VisitKind, at: datetime, tz: tzinfo
) -> Counts:
    """Count a visit in its month, quarter and year: one upsert of three rows."""
    contacts, in_person, lectures = _increments(kind)
    insert = dialect_insert(session, TALLY)
    rows = [
        {
            "household_id": household_id,
            "period": kind_.value,
            "period_start": period.start,
            "contacts": contacts,
            "in_person": in_person,
            "lectures": lectures,
            "last_visit_at": at,
        }
        for kind_, period in periods_of(at, tz).items()
    ]
    t = TALLY.c
    statement = (
        insert.values(rows)
        .on_conflict_do_update(
            index_elements=["household_id", "period", "period_start"],
            set_={
                "contacts": t.contacts + insert.excluded.contacts,
                "in_person": t.in_person + insert.excluded.in_person,
                "lectures": t.lectures + insert.excluded.lectures,
                "last_visit_at": case(
                    (
                        t.last_visit_at.is_(None)
                        | (insert.excluded.last_visit_at > t.last_visit_at),
                        insert.excluded.last_visit_at,
                    ),
                    else_=t.last_visit_at,
                ),
            },
        )
        .returning(t.period, t.contacts, t.in_person, t.lectures, t.broadcasts)
    )
    connection = await session.connection()
    return {
        PeriodKind(period): (contacts_, in_person_, lectures_, broadcasts_)
        for period, contacts_, in_person_, lectures_, broadcasts_ in await connection.execute(
            statement
        )
    }


async def _take_from_tallies(
    session: AsyncSession, visit: Visit, kind: VisitKind, tz: tzinfo
) -> None:
    """Uncount a visit (already withdrawn or changed in the session) from its three tallies.

    A decrement, not a recount, so a visit logged at the same moment by another process is
    never lost; the last visit time is looked up again among the visits that remain, and a
    row left with no contact is deleted (no row = no contact in that period).
    """
    contacts, in_person, lectures = _increments(kind)
    t = TALLY.c
    v = VISIT.c
    connection = await session.connection()
    for period_kind, period in periods_of(visit.visited_at, tz).items():
        begins, ends = period.utc_bounds(tz)
        latest = (
            select(func.max(v.visited_at))
            .where(
                v.household_id == visit.household_id,
                v.withdrawn_at.is_(None),
                v.visited_at >= begins,
                v.visited_at < ends,
            )
            .scalar_subquery()
        )
        await connection.execute(
            update(TALLY)
            .where(
                t.household_id == visit.household_id,
                t.period == period_kind.value,
                t.period_start == period.start,
            )
            .values(
                contacts=_minus(t.contacts, contacts),
                in_person=_minus(t.in_person, in_person),
                lectures=_minus(t.lectures, lectures),
                last_visit_at=latest,
            )
        )
    # a tally row exists only while its period counts a contact: the engine reads the key alone
    await connection.execute(
        delete(TALLY).where(
            t.household_id == visit.household_id,
            t.contacts <= 0,
            or_(
                *(
                    and_(t.period == kind_.value, t.period_start == period.start)
                    for kind_, period in periods_of(visit.visited_at, tz).items()
                )
            ),
        )
    )


def _minus(column: Any, amount: int) -> Any:
    return case((column > amount, column - amount), else_=0) if amount else column


async def _tally_counts(
    session: AsyncSession, household_id: int, at: datetime, tz: tzinfo
) -> Counts:
    """The household's counts in the month, quarter and year containing ``at``."""
    t = TALLY.c
    connection = await session.connection()
    rows = await connection.execute(
        select(t.period, t.contacts, t.in_person, t.lectures, t.broadcasts).where(
            t.household_id == household_id,
            or_(
                *(
                    and_(t.period == kind.value, t.period_start == period.start)
                    for kind, period in periods_of(at, tz).items()
                )
            ),
        )
    )
    return {
        PeriodKind(period): (contacts, in_person, lectures, broadcasts)
        for period, contacts, in_person, lectures, broadcasts in rows
    }


async def _counted(
    session: AsyncSession,
    household: Household,
    kind: VisitKind,
    at: datetime,
    counts: Counts,
    tz: tzinfo,
) -> tuple[RuleProgress, ...]:
    """The rules in force at ``at`` that a visit of ``kind`` to ``household`` counts for."""
    periods = periods_of(at, tz)
    return tuple(
        RuleProgress(
            rule_id=rule.id or 0,
            rule_name=rule.name,
            period=PeriodKind(rule.period),
            period_start=periods[PeriodKind(rule.period)].start,
            done=sum(
                counts.get(PeriodKind(rule.period), (0, 0, 0, 0))[TALLY_INDEX[name]]
                for name in RuleCounts(rule.counts).tally_columns
            ),
            required=rule.required,
        )
        for rule in await list_rules(session, at, tz=tz)
        if applies_to(rule, is_key=household.is_key, categories=household.categories)
        and counts_toward(kind, rule)
    )


# --- reading the diary --------------------------------------------------------------------------


async def visited_today(
    session: AsyncSession, household_ids: Sequence[int], now: datetime, tz: tzinfo
) -> dict[int, Visit]:
    """The latest visit (not withdrawn, by anyone) each of ``household_ids`` received on the
    local day of ``now``; households not visited today are absent."""
    if not household_ids:
        return {}
    start = local_midnight(local_day(now, tz), tz)
    end = local_midnight(local_day(now, tz) + timedelta(days=1), tz)
    rows = await session.exec(
        orm_select(Visit)
        .where(
            col(Visit.household_id).in_(list(household_ids)),
            col(Visit.withdrawn_at).is_(None),
            col(Visit.visited_at) >= start,
            col(Visit.visited_at) < end,
        )
        .order_by(col(Visit.visited_at), col(Visit.id))
    )
    return {visit.household_id: visit for visit in rows}


async def diary(
    session: AsyncSession,
    worker_id: int,
    limit: int = 20,
    before: int | None = None,
    *,
    include_withdrawn: bool = False,
) -> list[DiaryEntry]:
    """A worker's recent visits (民情日记), newest first, with the households' names.

    ``before`` is the id of the last entry of the previous page (keyset paging). The caller
    decides who may read whose diary (a worker their own; a head after ``authorize``).
    """
    where = [col(Visit.worker_id) == worker_id]
    if not include_withdrawn:
        where.append(col(Visit.withdrawn_at).is_(None))
    return await _entries(session, where, limit, before)


async def household_history(
    session: AsyncSession,
    person: Person,
    roles: Sequence[RoleInGrid],
    household_id: int,
    now: datetime,
    *,
    limit: int = 20,
    before: int | None = None,
) -> list[DiaryEntry]:
    """The visits a household received, newest first, for someone allowed to see it."""
    household = await session.get(Household, household_id)
    if household is None:
        raise NotFound(N_("That household is not in the register."))
    await authorize(session, person, roles, Action.VIEW, household, now)
    where = [col(Visit.household_id) == household_id, col(Visit.withdrawn_at).is_(None)]
    return await _entries(session, where, limit, before)


async def _entries(
    session: AsyncSession, where: list[Any], limit: int, before: int | None
) -> list[DiaryEntry]:
    limit = max(1, min(limit, DIARY_PAGE_LIMIT))
    if before is not None:
        cursor = await session.get(Visit, before)
        if cursor is None:
            raise NotFound(N_("That visit is not in the diary."))
        where.append(
            (col(Visit.visited_at) < cursor.visited_at)
            | ((col(Visit.visited_at) == cursor.visited_at) & (col(Visit.id) < before))
        )
    rows = await session.exec(
        orm_select(Visit, Household, Person)
        .join(Household, col(Household.id) == Visit.household_id)
        .join(Person, col(Person.id) == Visit.worker_id)
        .where(*where)
        .order_by(col(Visit.visited_at).desc(), col(Visit.id).desc())
        .limit(limit)
    )
    return [
        DiaryEntry(
            visit_id=visit.id or 0,
            household_id=household.id or 0,
            household_code=household.code,
            household_name=household.head_name,
            address=household.address,
            worker_id=person.id or 0,
            worker_name=person.name,
            kind=VisitKind(visit.kind),
            visited_at=visit.visited_at,
            note=visit.note,
            photo_file_id=visit.photo_file_id,
            withdrawn=visit.withdrawn_at is not None,
        )
        for visit, household, person in rows
    ]
