"""Hazards (隐患): what an inspection finds, its fix-by date, the re-inspection, the ticket.

A hazard's life (the diagram is in ``docs/inspections.md``)::

    found (a checklist item failed) ── open ──▶ reported (the responsible person says "fixed",
      with a photo) ──▶ at the re-inspection (复查) on the fix-by date:
          fixed      → closed (``fixed``)
          not fixed  → ``ticket``: a ticket filed through the ticket kernel, which escalates
                       up the tier chain on its deadlines like any other
    withdrawn: the inspection that found it was withdrawn

A saved routine inspection's answers can be corrected (:func:`correct_inspection`) under the
visit rules, within :data:`CORRECTION_WINDOW`: the hazards follow, the old answer is audited.

The fix-by date comes from the place-types file by the item's severity (一般, 较大, 重大).
The place's responsible person is told when they use GridBot (their phone number is the one
in the place register); the caller renders the words (:class:`Finding` says who and what).
A place refusing inspection (拒绝检查) is recorded and becomes a ticket at once, naming the
department the place type names (消防, 市场监管, 应急 …).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import DomainError, InvalidInput, NotAllowed, NotFound
from bot.i18n import N_, gettext_for
from bot.services import tickets
from bot.services.inspections import (
    OPEN_HAZARD_STATES,
    RECHECK,
    RESULTS,
    ROUTINE,
    CheckLine,
    changeable,
    check_answers,
    checklist_of,
    file_id_ok,
    new_inspection,
    parse_point,
    place_to_inspect,
)
from bot.services.people import RoleInGrid
from bot.services.periods import DEFAULT_TZ
from bot.services.place_policy import PlacePolicy, current_policy
from bot.services.ticket_notices import TicketNotifier
from bot.settings import LOCALES, Settings
from models import (
    AuditLog,
    Department,
    Grid,
    Hazard,
    Inspection,
    Person,
    Place,
    Ticket,
    TicketCategory,
)

FIRE_DEPARTMENTS = frozenset({"fire"})

HAZARD_TICKET = N_(
    "Hazard not fixed at re-inspection (复查未整改): {place}, {address} — {item}. "
    "Found {found}, to be fixed by {fix_by}."
)
REFUSAL_TICKET = N_(
    "Place refused inspection (拒绝检查): {place}, {address}. Department to take it: {department}."
)


@dataclass(frozen=True)
class Finding:
    """What an inspection did, for the chat: the record, the hazards it opened, fixed or
    turned into tickets, and the responsible person to tell (None: not a GridBot user)."""

    inspection: Inspection
    place: Place
    opened: tuple[Hazard, ...] = ()
    fixed: tuple[Hazard, ...] = ()
    ticketed: tuple[tuple[Hazard, Ticket], ...] = ()
    responsible: Person | None = None
    ticket: Ticket | None = None  # a refusal's ticket
    extra: dict[str, str] = field(default_factory=dict)


def _in_default_locale(msgid: str, **params: object) -> str:
    return gettext_for(LOCALES[0], msgid, **params)


async def responsible_of(session: AsyncSession, place: Place) -> Person | None:
    """The place's responsible person, when they use GridBot: the one active person whose
    phone is the register's (none when no one or several have it)."""
    if not place.responsible_phone:
        return None
    people = (
        await session.exec(
            select(Person).where(
                Person.phone == place.responsible_phone,
                col(Person.active).is_(True),
                col(Person.telegram_id).is_not(None),
            )
        )
    ).all()
    return people[0] if len(people) == 1 else None


async def record_inspection(
    session: AsyncSession,
    notifier: TicketNotifier,
    *,
    inspector: Person,
    roles: Sequence[RoleInGrid],
    place_id: int,
    kind: str,
    results: Mapping[str, str],
    photos: Mapping[str, str],
    latitude: float | None,
    longitude: float | None,
    settings: Settings,
    now: datetime,
) -> Finding:
    """Save an inspection (routine or re-inspection) whose every line is answered.

    Routine: each failed item opens a hazard, fixed by the date its severity gives.
    Re-inspection: each open hazard answered ``pass`` is fixed and closed; ``fail`` becomes a
    ticket (filed by the inspector for the place's grid, urgent for a grave one); ``na``
    leaves it open."""
    if kind not in (ROUTINE, RECHECK):
        raise InvalidInput(N_("Please answer every item of the checklist."))
    place, grid = await place_to_inspect(session, inspector, roles, place_id, now)
    policy = await current_policy(session)
    lines = await checklist_of(session, place, policy, kind)
    if not lines:
        raise InvalidInput(N_("There is nothing to re-inspect at this place."))
    check_answers(lines, results, photos)
    point = parse_point(latitude, longitude)
    inspection = await new_inspection(
        session,
        place=place,
        inspector=inspector,
        kind=kind,
        now=now,
        policy=policy,
        results=results,
        photos=photos,
        point=point,
    )
    assert inspection.id is not None
    if kind == ROUTINE:
        opened = await _open_hazards(session, place, inspection, policy, lines, now)
        responsible = await responsible_of(session, place) if opened else None
        return Finding(inspection, place, opened=tuple(opened), responsible=responsible)
    fixed: list[Hazard] = []
    ticketed: list[tuple[Hazard, Ticket]] = []
    for line in lines:
        hazard = await session.get(Hazard, int(line.key[1:]))
        assert hazard is not None
        answer = results[line.key]
        if answer == "na":
            continue
        hazard.recheck_id = inspection.id
        if answer == "pass":
            hazard.state = "fixed"
            hazard.closed_at = now
            fixed.append(hazard)
        else:
            ticket = await _hazard_ticket(
                session,
                notifier,
                inspector,
                place,
                grid,
                hazard,
                photos.get(line.key),
                policy,
                settings,
                now,
            )
            hazard.state = "ticket"
            hazard.ticket_id = ticket.id
            ticketed.append((hazard, ticket))
        session.add(hazard)
    await session.flush()
    return Finding(inspection, place, fixed=tuple(fixed), ticketed=tuple(ticketed))


async def _open_hazards(
    session: AsyncSession,
    place: Place,
    inspection: Inspection,
    policy: PlacePolicy,
    lines: Sequence[CheckLine],
    now: datetime,
) -> list[Hazard]:
    opened: list[Hazard] = []
    for line in lines:
        key, text, severity = line.key, line.text, line.severity
        if inspection.results.get(key) != "fail":
            continue
        assert place.id is not None and inspection.id is not None
        hazard = Hazard(
            place_id=place.id,
            inspection_id=inspection.id,
            item_key=key,
            item_text=text[:100],
            severity=severity,
            state="open",
            found_at=now,
            fix_by=policy.fix_by(severity, now),
            photo_file_id=inspection.photos.get(key),
        )
        session.add(hazard)
        opened.append(hazard)
    await session.flush()
    return opened


def _category(policy: PlacePolicy, place: Place) -> TicketCategory:
    place_type = policy.type(place.type_key)
    department = place_type.department if place_type is not None else None
    return TicketCategory.FIRE if department in FIRE_DEPARTMENTS else TicketCategory.SAFETY


async def _hazard_ticket(
    session: AsyncSession,
    notifier: TicketNotifier,
    inspector: Person,
    place: Place,
    grid: Grid,
    hazard: Hazard,
    photo: str | None,
    policy: PlacePolicy,
    settings: Settings,
    now: datetime,
) -> Ticket:
    description = _in_default_locale(
        HAZARD_TICKET,
        place=place.name,
        address=place.address,
        item=hazard.item_text,
        found=hazard.found_at.astimezone(settings.tz).strftime("%Y-%m-%d"),
        fix_by=hazard.fix_by.astimezone(settings.tz).strftime("%Y-%m-%d"),
    )
    photos = tuple(p for p in (hazard.photo_file_id, photo) if p)
    return await tickets.file_ticket(
        session,
        notifier,
        reporter=inspector,
        grid=grid,
        report=tickets.Report(
            category=_category(policy, place),
            description=description,
            urgent=hazard.severity == "grave",
            address=place.address,
            latitude=place.latitude,
            longitude=place.longitude,
            photo_file_ids=photos[: tickets.MAX_PHOTOS],
        ),
        settings=settings,
        now=now,
        limited=False,
    )


async def record_refusal(
    session: AsyncSession,
    notifier: TicketNotifier,
    *,
    inspector: Person,
    roles: Sequence[RoleInGrid],
    place_id: int,
    latitude: float | None,
    longitude: float | None,
    settings: Settings,
    now: datetime,
) -> Finding:
    """The place refused to be inspected: recorded, and a ticket filed at once naming the
    department the place type names (it is not due again until the ticket is dealt with:
    the routine date does not move)."""
    place, grid = await place_to_inspect(session, inspector, roles, place_id, now)
    policy = await current_policy(session)
    point = parse_point(latitude, longitude)
    inspection = await new_inspection(
        session,
        place=place,
        inspector=inspector,
        kind=ROUTINE,
        now=now,
        policy=policy,
        point=point,
        refused=True,
    )
    place_type = policy.type(place.type_key)
    code = (place_type.department if place_type is not None else None) or ""
    registered = await _department(session, code)
    department = registered.name if registered is not None else (code or "—")
    ticket = await tickets.file_ticket(
        session,
        notifier,
        reporter=inspector,
        grid=grid,
        report=tickets.Report(
            category=_category(policy, place),
            description=_in_default_locale(
                REFUSAL_TICKET, place=place.name, address=place.address, department=department
            ),
            address=place.address,
            latitude=point[0] if point else place.latitude,
            longitude=point[1] if point else place.longitude,
        ),
        settings=settings,
        now=now,
        limited=False,
    )
    inspection.ticket_id = ticket.id
    session.add(inspection)
    moved = registered is not None and await _to_department(
        session, notifier, inspector, roles, ticket, registered, now
    )
    session.add(
        AuditLog(
            at=now,
            actor_id=inspector.id,
            action="inspection:refused",
            object_type="place",
            object_id=place.id,
            data={"ticket": ticket.id, "department": department, "transferred": moved},
        )
    )
    return Finding(inspection, place, ticket=ticket, extra={"department": department})


async def _department(session: AsyncSession, code: str) -> Department | None:
    if not code:
        return None
    return (
        await session.exec(
            select(Department).where(Department.code == code, col(Department.active).is_(True))
        )
    ).first()


async def _to_department(
    session: AsyncSession,
    notifier: TicketNotifier,
    inspector: Person,
    roles: Sequence[RoleInGrid],
    ticket: Ticket,
    department: Department,
    now: datetime,
) -> bool:
    """Transfer (转办) a refusal's ticket to the department the place type names, through the
    ticket kernel, when that department is registered and the inspector may transfer the
    ticket (they are among its owners); otherwise it stays on the grid's chain, where the
    department is named in its description and it escalates like any other."""
    if department.id is None or ticket.id is None:
        return False
    try:
        async with session.begin_nested():
            await tickets.transfer(
                session,
                notifier,
                actor=inspector,
                roles=roles,
                ticket_id=ticket.id,
                department_id=department.id,
                now=now,
            )
    except DomainError:
        return False
    return True


# --- correcting an inspection ----------------------------------------------------------------

CORRECTION_WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class Correction:
    """One checklist answer of a saved inspection corrected: the answer before and after, the
    hazard it opened (now a failure) or withdrew (no longer one), and the responsible person
    to tell of an opened one (None: not a GridBot user)."""

    inspection: Inspection
    place: Place
    line: CheckLine
    before: str
    after: str
    opened: Hazard | None = None
    withdrawn: Hazard | None = None
    responsible: Person | None = None


async def correctable(
    session: AsyncSession,
    person: Person,
    roles: Sequence[RoleInGrid],
    inspection_id: int,
    now: datetime,
    tz: tzinfo = DEFAULT_TZ,
) -> tuple[Inspection, Place, bool, list[CheckLine]]:
    """The inspection, its place, whether a change is an amendment, and the checklist lines
    it answered — if this person may correct it (the visit rules, :func:`changeable`) and it
    is a routine inspection (not a refusal) of the last :data:`CORRECTION_WINDOW`."""
    inspection, place, amended = await changeable(session, person, roles, inspection_id, now, tz)
    if inspection.kind != ROUTINE or inspection.refused:
        raise InvalidInput(N_("Only the answers of a routine inspection can be corrected."))
    if now - inspection.inspected_at > CORRECTION_WINDOW:
        raise InvalidInput(
            N_("This inspection is more than {days} days old and can no longer be corrected."),
            days=CORRECTION_WINDOW.days,
        )
    lines = await checklist_of(session, place, await current_policy(session), ROUTINE)
    return inspection, place, amended, [line for line in lines if line.key in inspection.results]


async def correct_inspection(
    session: AsyncSession,
    person: Person,
    roles: Sequence[RoleInGrid],
    inspection_id: int,
    *,
    item: int,
    result: str,
    photo_file_id: str | None,
    now: datetime,
    tz: tzinfo = DEFAULT_TZ,
) -> Correction:
    """Correct the answer to checklist line ``item`` (its index) of a saved inspection.

    A new failure needs its photo and opens a hazard, fixed by the date its severity gives
    from the inspection's day; a failure corrected away withdraws its hazard — refused once
    that hazard was re-inspected or became a ticket. The old answer (and photo) is kept in
    the audit record (``inspection:correct``, ``inspection:amend-correct`` for a head's)."""
    inspection, place, amended, lines = await correctable(
        session, person, roles, inspection_id, now, tz
    )
    if not 0 <= item < len(lines) or result not in RESULTS:
        raise InvalidInput(N_("That item is not on this inspection."))
    line = lines[item]
    before = str(inspection.results.get(line.key))
    if before == result:
        raise InvalidInput(N_("That item already reads so."))
    if result == "fail" and not file_id_ok(photo_file_id):
        raise InvalidInput(N_("Please send a photo of “{item}”, which failed."), item=line.text)
    withdrawn = None
    if before == "fail":
        withdrawn = (
            await session.exec(
                select(Hazard).where(
                    Hazard.inspection_id == inspection.id, Hazard.item_key == line.key
                )
            )
        ).first()
        if withdrawn is not None and withdrawn.state not in OPEN_HAZARD_STATES:
            raise InvalidInput(
                N_("The hazard of “{item}” was already re-inspected; it cannot be corrected."),
                item=line.text,
            )
        if withdrawn is not None:
            withdrawn.state = "withdrawn"
            withdrawn.closed_at = now
            session.add(withdrawn)
    old_photo = inspection.photos.get(line.key)
    photos = {k: v for k, v in inspection.photos.items() if k != line.key}
    if result == "fail" and photo_file_id:
        photos[line.key] = photo_file_id
    inspection.results = {**inspection.results, line.key: result}
    inspection.photos = photos
    inspection.updated_at = now
    session.add(inspection)
    opened = None
    if result == "fail":
        policy = await current_policy(session)
        assert place.id is not None and inspection.id is not None
        opened = Hazard(
            place_id=place.id,
            inspection_id=inspection.id,
            item_key=line.key,
            item_text=line.text[:100],
            severity=line.severity,
            state="open",
            found_at=inspection.inspected_at,
            fix_by=policy.fix_by(line.severity, inspection.inspected_at),
            photo_file_id=photo_file_id,
        )
        session.add(opened)
    await session.flush()
    session.add(
        AuditLog(
            at=now,
            actor_id=person.id,
            action="inspection:amend-correct" if amended else "inspection:correct",
            object_type="inspection",
            object_id=inspection.id,
            data={
                "item": line.key,
                "before": before,
                "after": result,
                "photo_before": old_photo,
                "hazard_opened": opened.id if opened is not None else None,
                "hazard_withdrawn": withdrawn.id if withdrawn is not None else None,
            },
        )
    )
    responsible = await responsible_of(session, place) if opened is not None else None
    return Correction(inspection, place, line, before, result, opened, withdrawn, responsible)


@dataclass(frozen=True)
class FixReport:
    hazard: Hazard
    place: Place
    inspector: Person | None


async def hazard_of_responsible(
    session: AsyncSession, person: Person, hazard_id: int, now: datetime
) -> tuple[Hazard, Place]:
    """An open hazard at a place this person is responsible for (their phone is the
    register's); else NotFound, or NotAllowed with its audit record."""
    hazard = await session.get(Hazard, hazard_id)
    place = None if hazard is None else await session.get(Place, hazard.place_id)
    if hazard is None or place is None:
        raise NotFound(N_("That hazard is not on record."))
    if not person.phone or person.phone != place.responsible_phone or not person.active:
        raise NotAllowed(
            N_("Only the person responsible for the place can say a hazard is fixed."),
            audit=AuditLog(
                at=now,
                actor_id=person.id,
                action="refused:hazard_fixed",
                object_type="hazard",
                object_id=hazard.id,
            ),
        )
    if hazard.state not in OPEN_HAZARD_STATES:
        raise InvalidInput(N_("This hazard is no longer open."))
    return hazard, place


async def report_fixed(
    session: AsyncSession, person: Person, hazard_id: int, photo_file_id: str, now: datetime
) -> FixReport:
    """The responsible person says the hazard is fixed, with a photo: it waits for the
    re-inspection (复查), which decides; the inspector is told (by the caller)."""
    hazard, place = await hazard_of_responsible(session, person, hazard_id, now)
    if not photo_file_id or len(photo_file_id) > 255 or not photo_file_id.isprintable():
        raise InvalidInput(N_("That photo could not be kept. Please send it again."))
    hazard.state = "reported"
    hazard.reported_fixed_at = now
    hazard.reported_photo_file_id = photo_file_id
    session.add(hazard)
    inspection = await session.get(Inspection, hazard.inspection_id)
    inspector = None if inspection is None else await session.get(Person, inspection.inspector_id)
    await session.flush()
    return FixReport(hazard, place, inspector)


async def hazards_of_place(session: AsyncSession, place_id: int) -> list[Hazard]:
    return list(
        (
            await session.exec(
                select(Hazard).where(Hazard.place_id == place_id).order_by(col(Hazard.id))
            )
        ).all()
    )
