"""Rental houses and their tenants (出租房屋, 谁出租、谁负责).

A grid worker opens a rental for a household's address and gets a single-use link for its
landlord (:func:`open_rental`); the landlord opens it (:func:`claim_rental`) and from then on
registers tenants through the bot — name, ID number, phone, where they came from, the move-in
day and how long they expect to stay — or hands out a link with which tenants register
themselves (:func:`tenant_link`). A tenant is a person of the household (relation ``tenant``,
population type 流动), so every rule of the people register applies to them: the ID number
encrypted with a keyed hash, the role × field table, "show" audited, erasure and retention.

Residence registration (居住登记) is due ``PEOPLE__RESIDENCE_REGISTRATION_DAYS`` after moving
in; the worker confirms it on the next visit (:func:`confirm_tenancy`). Before it lapses the
landlord and the worker are reminded, once it has lapsed the grid's head is told
(:func:`send_reminders`). A tenant who moves out is recorded (:func:`move_out`), not deleted.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.i18n import N_, gettext_for
from bot.services import outbox
from bot.services.daily_push import locale_of, reachable
from bot.services.id_numbers import IdVault, birth_date, is_male, parse_id_number
from bot.services.members import masked
from bot.services.people import RoleInGrid
from bot.services.permissions import Action, authorize, scope_paths, within
from bot.services.personal_fields import Access, PersonalField, Screen, access
from bot.services.phones import normalize_phone
from bot.services.schedule import in_quiet_hours
from bot.settings import Settings
from models import (
    AuditLog,
    Gender,
    Grid,
    Household,
    HouseholdMember,
    OutboxLane,
    Person,
    Relation,
    Rental,
    ResidenceStatus,
    Role,
    RoleAssignment,
    Tenancy,
)

LANDLORD_LINK_TTL = timedelta(days=14)
MAX_NAME = 50
MAX_ORIGIN = 100
MAX_STAY_MONTHS = 120
MAX_LISTED = 30
REMINDER_BATCH = 200

NO_SUCH_HOUSEHOLD = N_("No household has the code {code}.")
BAD_LANDLORD = N_("Write the landlord's name (at most 50 characters).")
LINK_REFUSED = N_(
    "This link is not valid or has expired. Ask the person who gave it to you for a new one."
)
NOT_LANDLORD = N_("Sorry, only the landlord of this house can do that.")
RENTAL_ENDED = N_("This rental house is no longer on the register.")
BAD_NAME = N_("Write the tenant's full name (at most 50 characters).")
BAD_ORIGIN = N_("Write where the tenant came from: a province, city or county (2–100 characters).")
BAD_DATE = N_("{value} is not a date. Write it like 2026-12-01.")
FUTURE_MOVE_IN = N_(
    "The move-in date {value} is in the future. Register tenants once they live here."
)
OLD_MOVE_IN = N_("The move-in date {value} is more than five years ago.")
BAD_STAY = N_(
    "Write how long the tenant expects to stay: a number of months (1–120), "
    "as 6 or 6个月 or 1年, or the last day, like 2027-06-30."
)
STAY_BEFORE_MOVE_IN = N_("The stay must end after the move-in date.")
ALREADY_REGISTERED = N_(
    "This ID number is already in the people register. Your grid worker will check it with you."
)
FORM_LOST = N_("This registration was interrupted. Please start it again from /rentals.")
ALREADY_CONFIRMED = N_("This tenant's residence registration was confirmed already.")
ALREADY_MOVED_OUT = N_("This tenant has moved out already.")

LANDLORD_REMINDER = N_(
    "⏳ Residence registration of your tenant {name} ({address}) is due by {day}. "
    "Please make sure they are at home with their ID card when the grid worker calls, "
    "or contact the grid worker."
)
WORKER_REMINDER = N_(
    "⏳ Residence registration of tenant {name} at {address} lapses after {day}. "
    "Confirm it on your visit: /rentals"
)
HEAD_LAPSED = N_(
    "⚠️ Residence registration lapsed: tenant {name} at {address} was due by {day} and "
    "has not been confirmed. /rentals lapsed shows every lapsed registration."
)
WORKER_NEW_TENANT = N_(
    "🏠 New tenant at {address}: {name}, moved in on {day}, registered by {who}. "
    "Confirm the registration on your next visit, by {due}: /rentals"
)
BY_LANDLORD = N_("the landlord")
BY_THEMSELVES = N_("the tenant themselves")


def link_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _new_token() -> str:
    return secrets.token_urlsafe(24)  # 32 characters of A-Za-z0-9_-


# --- opening a rental and claiming it ---------------------------------------------------------


@dataclass(frozen=True)
class IssuedLink:
    rental: Rental
    household: Household
    token: str  # shown once, in the link; only its hash is stored


def clean_text(text: str, limit: int) -> str:
    folded = unicodedata.normalize("NFKC", text[: limit * 4])
    cleaned = " ".join("".join(ch if ch.isprintable() else " " for ch in folded).split())
    return cleaned


async def household_by_code(session: AsyncSession, code: str) -> Household:
    word = clean_text(code, 32)
    found = (await session.exec(select(Household).where(Household.code == word))).one_or_none()
    if found is None or not word:
        raise NotFound(NO_SUCH_HOUSEHOLD, code=word[:32] or "—")
    return found


async def open_rental(
    session: AsyncSession,
    *,
    person: Person,
    roles: Sequence[RoleInGrid],
    household_code: str,
    landlord_name: str,
    landlord_phone: str | None,
    now: datetime,
) -> IssuedLink:
    """A worker (head, administrator) of the household's grid puts it on the register as a
    rental house (or gives its landlord a fresh link) — the link works once, for 14 days."""
    household = await household_by_code(session, household_code)
    await authorize(session, person, roles, Action.VISIT, household, now)
    name = clean_text(landlord_name, MAX_NAME)
    if not name or len(name) > MAX_NAME:
        raise InvalidInput(BAD_LANDLORD)
    phone = normalize_phone(landlord_phone) if landlord_phone else None
    rental = (
        await session.exec(
            select(Rental).where(
                Rental.household_id == household.id, col(Rental.ended_at).is_(None)
            )
        )
    ).first()
    token = _new_token()
    if rental is None:
        assert household.id is not None
        rental = Rental(
            household_id=household.id,
            landlord_name=name,
            created_by=person.id,
            created_at=now,
            updated_at=now,
        )
    elif rental.landlord_name != name:
        rental.landlord_id = None  # another landlord: the link decides who it is
    rental.landlord_name = name
    rental.landlord_phone = phone or rental.landlord_phone
    rental.link_hash = link_hash(token)
    rental.link_expires_at = now + LANDLORD_LINK_TTL
    rental.updated_at = now
    session.add(rental)
    await session.flush()
    session.add(
        AuditLog(
            at=now,
            actor_id=person.id,
            action="rental:link",
            object_type="rental",
            object_id=rental.id,
            data={"household": household.id},
        )
    )
    return IssuedLink(rental, household, token)


async def claim_rental(
    session: AsyncSession, *, person: Person, token: str, now: datetime
) -> tuple[Rental, Household]:
    """The landlord opens the worker's link: they answer for this house from now on."""
    rental = (
        await session.exec(select(Rental).where(Rental.link_hash == link_hash(token)))
    ).one_or_none()
    if (
        rental is None
        or rental.ended_at is not None
        or rental.link_expires_at is None
        or rental.link_expires_at <= now
    ):
        raise InvalidInput(LINK_REFUSED)
    household = await session.get(Household, rental.household_id)
    if household is None:
        raise InvalidInput(LINK_REFUSED)
    rental.landlord_id = person.id
    rental.link_hash = None  # used: it works once
    rental.link_expires_at = None
    rental.updated_at = now
    session.add(rental)
    session.add(
        AuditLog(
            at=now,
            actor_id=person.id,
            action="rental:landlord",
            object_type="rental",
            object_id=rental.id,
        )
    )
    return rental, household


async def landlord_rental(session: AsyncSession, person: Person, rental_id: int) -> Rental:
    """The rental, if ``person`` is its landlord and it is still on the register."""
    rental = await session.get(Rental, rental_id)
    if rental is None or rental.landlord_id is None or rental.landlord_id != person.id:
        raise NotAllowed(NOT_LANDLORD)
    if rental.ended_at is not None:
        raise InvalidInput(RENTAL_ENDED)
    return rental


async def tenant_link(
    session: AsyncSession, *, person: Person, rental_id: int, now: datetime
) -> str:
    """A link with which tenants of the landlord's house register themselves; a new one
    replaces the last (which stops working)."""
    rental = await landlord_rental(session, person, rental_id)
    token = _new_token()
    rental.tenant_link_hash = link_hash(token)
    rental.updated_at = now
    session.add(rental)
    return token


async def rental_of_tenant_link(session: AsyncSession, token: str) -> tuple[Rental, Household]:
    """The house a tenant's link is for (refused once replaced or the house is off the
    register)."""
    return await rental_of_tenant_digest(session, link_hash(token))


async def rental_of_tenant_digest(session: AsyncSession, digest: str) -> tuple[Rental, Household]:
    rental = (
        await session.exec(select(Rental).where(Rental.tenant_link_hash == digest))
    ).one_or_none()
    household = None if rental is None else await session.get(Household, rental.household_id)
    if rental is None or rental.ended_at is not None or household is None:
        raise InvalidInput(LINK_REFUSED)
    return rental, household


# --- what a tenant's registration says -------------------------------------------------------


def parse_name(text: str) -> str:
    name = clean_text(text, MAX_NAME)
    if not name or len(name) > MAX_NAME or name.startswith("/"):
        raise InvalidInput(BAD_NAME)
    return name


@dataclass(frozen=True)
class SealedNumber:
    """An ID number as a conversation may keep it: sealed, never plain."""

    cipher: str
    digest: str
    birth_date: date
    gender: Gender


async def seal_number(
    session: AsyncSession, text: str, *, vault: IdVault, today: date
) -> SealedNumber:
    """Check a typed ID number (cn.ric), refuse one already registered, seal it."""
    number = parse_id_number(text, today=today)
    sealed = vault.seal(number)
    taken = (
        await session.exec(
            select(col(HouseholdMember.id)).where(HouseholdMember.id_hash == sealed.digest)
        )
    ).first()
    if taken is not None:
        raise InvalidInput(ALREADY_REGISTERED)
    gender = Gender.MALE if is_male(number) else Gender.FEMALE
    return SealedNumber(sealed.cipher, sealed.digest, birth_date(number), gender)


def parse_phone(text: str) -> str:
    return normalize_phone(text)


def parse_origin(text: str) -> str:
    origin = clean_text(text, MAX_ORIGIN)
    if len(origin) < 2 or len(origin) > MAX_ORIGIN or origin.startswith("/"):
        raise InvalidInput(BAD_ORIGIN)
    return origin


_DATE = re.compile(r"(\d{4})(?:[-/.]|年)(\d{1,2})(?:[-/.]|月)(\d{1,2})[日号]?")
_MONTHS = re.compile(r"(\d{1,3})(?:个月|個月|月|months?|m)?", re.IGNORECASE)
_YEARS = re.compile(r"(\d{1,2})(?:年|years?|y)", re.IGNORECASE)


def _date(text: str) -> date | None:
    folded = "".join(unicodedata.normalize("NFKC", text[:40]).split())
    match = _DATE.fullmatch(folded)
    if match is None:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def _shown(text: str) -> str:
    return clean_text(text, 40)[:40] or "—"


def parse_move_in(text: str, *, today: date) -> date:
    day = _date(text)
    if day is None:
        raise InvalidInput(BAD_DATE, value=_shown(text))
    if day > today:
        raise InvalidInput(FUTURE_MOVE_IN, value=day.isoformat())
    if day < today - timedelta(days=5 * 366):
        raise InvalidInput(OLD_MOVE_IN, value=day.isoformat())
    return day


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise ValueError("no such month")  # pragma: no cover - 28 always exists


def parse_stay(text: str, *, moved_in: date) -> date:
    """The last day of the expected stay: months (``6``, ``6个月``), years (``1年``) or a
    date after the move-in."""
    folded = "".join(unicodedata.normalize("NFKC", text[:40]).split())
    day = _date(folded)
    if day is not None:
        if day <= moved_in:
            raise InvalidInput(STAY_BEFORE_MOVE_IN)
        if day > _add_months(moved_in, MAX_STAY_MONTHS):
            raise InvalidInput(BAD_STAY)
        return day
    years = _YEARS.fullmatch(folded)
    months_match = _MONTHS.fullmatch(folded)
    if years is not None:
        months = int(years[1]) * 12
    elif months_match is not None:
        months = int(months_match[1])
    else:
        raise InvalidInput(BAD_STAY)
    if not 1 <= months <= MAX_STAY_MONTHS:
        raise InvalidInput(BAD_STAY)
    return _add_months(moved_in, months)


@dataclass(frozen=True)
class TenantForm:
    name: str
    number: SealedNumber
    phone: str
    origin: str
    moved_in: date
    stay_until: date


def form_of(data: dict[str, Any], *, stay: str) -> TenantForm:
    """The registration from what a conversation kept (and the last answer, the stay)."""
    try:
        moved_in = date.fromisoformat(str(data["moved_in"]))
        number = SealedNumber(
            cipher=str(data["cipher"]),
            digest=str(data["digest"]),
            birth_date=date.fromisoformat(str(data["born"])),
            gender=Gender(str(data["gender"])),
        )
        fields = (str(data["name"]), str(data["phone"]), str(data["origin"]))
    except (KeyError, ValueError):
        raise InvalidInput(FORM_LOST) from None
    return TenantForm(
        name=fields[0],
        number=number,
        phone=fields[1],
        origin=fields[2],
        moved_in=moved_in,
        stay_until=parse_stay(stay, moved_in=moved_in),
    )


# --- registering, confirming, moving out -----------------------------------------------------


def due_day(moved_in: date, days: int) -> date:
    """The last day residence registration may be done (居住登记 within ``days``)."""
    return moved_in + timedelta(days=days)


async def register_tenant(
    session: AsyncSession,
    *,
    person: Person,
    rental_id: int,
    form: TenantForm,
    tenant_digest: str | None,
    settings: Settings,
    now: datetime,
) -> tuple[Tenancy, HouseholdMember]:
    """Register a tenant of a rental: by its landlord, or by the tenant with the house's
    link (``tenant_digest``: the link's hash, checked again here). The grid's worker is
    told to confirm it."""
    if tenant_digest is not None:
        rental, household = await rental_of_tenant_digest(session, tenant_digest)
        if rental.id != rental_id:
            raise InvalidInput(LINK_REFUSED)
    else:
        rental = await landlord_rental(session, person, rental_id)
        found = await session.get(Household, rental.household_id)
        if found is None:
            raise NotFound()
        household = found
    taken = (
        await session.exec(
            select(col(HouseholdMember.id)).where(HouseholdMember.id_hash == form.number.digest)
        )
    ).first()
    if taken is not None:
        raise InvalidInput(ALREADY_REGISTERED)
    assert household.id is not None and rental.id is not None
    member = HouseholdMember(
        household_id=household.id,
        name=form.name,
        relation=Relation.TENANT,
        gender=form.number.gender,
        birth_date=form.number.birth_date,
        id_cipher=form.number.cipher,
        id_hash=form.number.digest,
        phone=form.phone,
        status=ResidenceStatus.FLOATING,
        moved_in=form.moved_in,
        origin=form.origin,
        stay_until=form.stay_until,
        created_at=now,
        updated_at=now,
    )
    session.add(member)
    await session.flush()
    assert member.id is not None
    tenancy = Tenancy(
        rental_id=rental.id,
        member_id=member.id,
        registered_by=person.id,
        self_registered=tenant_digest is not None,
        registered_at=now,
        due_on=due_day(form.moved_in, settings.people.residence_registration_days),
    )
    session.add(tenancy)
    await session.flush()
    session.add(
        AuditLog(
            at=now,
            actor_id=person.id,
            action="tenant:register",
            object_type="member",
            object_id=member.id,
            data={"rental": rental.id, "self": tenant_digest is not None},
        )
    )
    who = BY_THEMSELVES if tenant_digest is not None else BY_LANDLORD
    for worker in await workers_of(session, household):
        if not reachable(worker):
            continue
        locale = locale_of(worker, settings)
        _tell(
            session,
            worker,
            gettext_for(
                locale,
                WORKER_NEW_TENANT,
                address=household.address,
                name=form.name,
                day=form.moved_in.isoformat(),
                who=gettext_for(locale, who),
                due=tenancy.due_on.isoformat(),
            ),
            now,
            ref=f"tn:{tenancy.id}:{worker.id}",
        )
    return tenancy, member


async def _tenancy_at(
    session: AsyncSession, tenancy_id: int
) -> tuple[Tenancy, HouseholdMember, Rental, Household]:
    tenancy = await session.get(Tenancy, tenancy_id)
    member = None if tenancy is None else await session.get(HouseholdMember, tenancy.member_id)
    rental = None if tenancy is None else await session.get(Rental, tenancy.rental_id)
    household = None if rental is None else await session.get(Household, rental.household_id)
    if tenancy is None or member is None or rental is None or household is None:
        raise NotFound()
    return tenancy, member, rental, household


async def confirm_tenancy(
    session: AsyncSession,
    *,
    person: Person,
    roles: Sequence[RoleInGrid],
    tenancy_id: int,
    now: datetime,
) -> Tenancy:
    """The worker saw the tenant (on a visit) and confirms the residence registration."""
    tenancy, member, _rental, household = await _tenancy_at(session, tenancy_id)
    await authorize(session, person, roles, Action.VISIT, household, now)
    if tenancy.ended_on is not None:
        raise InvalidInput(ALREADY_MOVED_OUT)
    if tenancy.confirmed_at is not None:
        raise InvalidInput(ALREADY_CONFIRMED)
    tenancy.confirmed_at = now
    tenancy.confirmed_by = person.id
    session.add(tenancy)
    session.add(
        AuditLog(
            at=now,
            actor_id=person.id,
            action="tenant:confirm",
            object_type="member",
            object_id=member.id,
            data={"tenancy": tenancy.id},
        )
    )
    return tenancy


async def move_out(
    session: AsyncSession,
    *,
    person: Person,
    roles: Sequence[RoleInGrid],
    tenancy_id: int,
    today: date,
    now: datetime,
) -> Tenancy:
    """The tenant moved out (by the landlord or a worker of the grid): recorded, kept."""
    tenancy, member, rental, household = await _tenancy_at(session, tenancy_id)
    is_landlord = rental.landlord_id is not None and rental.landlord_id == person.id
    if not is_landlord:
        await authorize(session, person, roles, Action.VISIT, household, now)
    if tenancy.ended_on is not None:
        raise InvalidInput(ALREADY_MOVED_OUT)
    day = max(today, member.moved_in or today)
    tenancy.ended_on = day
    member.moved_out = day
    member.updated_at = now
    session.add(tenancy)
    session.add(member)
    session.add(
        AuditLog(
            at=now,
            actor_id=person.id,
            action="tenant:moved_out",
            object_type="member",
            object_id=member.id,
            data={"tenancy": tenancy.id},
        )
    )
    return tenancy


async def household_of(session: AsyncSession, rental: Rental) -> Household:
    household = await session.get(Household, rental.household_id)
    if household is None:
        raise NotFound()
    return household


async def tenant_name(
    session: AsyncSession, person: Person, roles: Sequence[RoleInGrid], tenancy: Tenancy
) -> str:
    """The tenant's name as ``person`` may see it: in full for the house's landlord (who
    registered them) and as the personal-field table says for staff."""
    _tenancy, member, rental, household = await _tenancy_at(session, tenancy.id or 0)
    if rental.landlord_id is not None and rental.landlord_id == person.id:
        return member.name or "—"
    grid = await session.get(Grid, household.grid_id)
    return _name_for(roles, member, grid.path if grid is not None else "")


# --- lists ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TenantLine:
    tenancy_id: int
    name: str  # as the reader may see it (masked if the table says so)
    address: str
    household_code: str
    moved_in: date | None
    due_on: date
    confirmed: bool
    lapsed: bool
    ended: bool


@dataclass(frozen=True)
class RentalView:
    rental_id: int
    address: str
    household_code: str
    tenants: list[TenantLine]


def _lapsed(tenancy: Tenancy, today: date) -> bool:
    return tenancy.confirmed_at is None and tenancy.ended_on is None and tenancy.due_on < today


def _line(
    tenancy: Tenancy, member: HouseholdMember, household: Household, name: str, today: date
) -> TenantLine:
    assert tenancy.id is not None
    return TenantLine(
        tenancy_id=tenancy.id,
        name=name,
        address=household.address,
        household_code=household.code,
        moved_in=member.moved_in,
        due_on=tenancy.due_on,
        confirmed=tenancy.confirmed_at is not None,
        lapsed=_lapsed(tenancy, today),
        ended=tenancy.ended_on is not None,
    )


async def landlord_rentals(session: AsyncSession, person: Person, today: date) -> list[RentalView]:
    """The houses ``person`` lets, with their tenants (those living there first)."""
    rentals = (
        await session.exec(
            select(Rental, Household)
            .join(Household, col(Household.id) == col(Rental.household_id))
            .where(Rental.landlord_id == person.id, col(Rental.ended_at).is_(None))
            .order_by(col(Rental.id))
        )
    ).all()
    views = []
    for rental, household in rentals[:MAX_LISTED]:
        rows = (
            await session.exec(
                select(Tenancy, HouseholdMember)
                .join(HouseholdMember, col(HouseholdMember.id) == col(Tenancy.member_id))
                .where(Tenancy.rental_id == rental.id)
                .order_by(col(Tenancy.ended_on).is_not(None), col(Tenancy.id))
            )
        ).all()
        assert rental.id is not None
        views.append(
            RentalView(
                rental.id,
                household.address,
                household.code,
                [_line(t, m, household, m.name, today) for t, m in rows[:MAX_LISTED]],
            )
        )
    return views


def _name_for(roles: Sequence[RoleInGrid], member: HouseholdMember, grid_path: str) -> str:
    level = access(roles, PersonalField.NAME, Screen.LIST, grid_path)
    if level == Access.SHOWN:
        return member.name
    return str(masked(PersonalField.NAME, member.name) or "—")


async def staff_tenancies(
    session: AsyncSession, roles: Sequence[RoleInGrid], today: date, *, lapsed_only: bool = False
) -> list[TenantLine]:
    """Tenants still to confirm in the reader's grids (lapsed ones first), as the reader may
    see their names."""
    paths = scope_paths(roles, Action.READ_SENSITIVE)
    if not paths:
        return []
    query = (
        select(Tenancy, HouseholdMember, Household, Grid)
        .join(HouseholdMember, col(HouseholdMember.id) == col(Tenancy.member_id))
        .join(Rental, col(Rental.id) == col(Tenancy.rental_id))
        .join(Household, col(Household.id) == col(Rental.household_id))
        .join(Grid, col(Grid.id) == col(Household.grid_id))
        .where(
            col(Tenancy.confirmed_at).is_(None),
            col(Tenancy.ended_on).is_(None),
            _under(paths),
        )
        .order_by(col(Tenancy.due_on), col(Tenancy.id))
        .limit(MAX_LISTED)
    )
    if lapsed_only:
        query = query.where(col(Tenancy.due_on) < today)
    rows = (await session.exec(query)).all()
    return [_line(t, m, h, _name_for(roles, m, g.path), today) for t, m, h, g in rows]


def _under(paths: Sequence[str]) -> ColumnElement[bool]:
    return or_(*(col(Grid.path).startswith(p) for p in paths))


def is_staff(roles: Sequence[RoleInGrid]) -> bool:
    return bool(scope_paths(roles, Action.READ_SENSITIVE))


# --- counts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RentalCounts:
    """A grid's rental houses, their tenants living there, and lapsed registrations."""

    rentals: int = 0
    tenants: int = 0
    lapsed: int = 0


async def grid_rental_counts(session: AsyncSession, grid: Grid, today: date) -> RentalCounts:
    under = col(Grid.path).startswith(grid.path)
    rentals = (
        await session.exec(
            select(func.count())
            .select_from(Rental)
            .join(Household, col(Household.id) == col(Rental.household_id))
            .join(Grid, col(Grid.id) == col(Household.grid_id))
            .where(under, col(Rental.ended_at).is_(None))
        )
    ).one()
    base = (
        select(func.count())
        .select_from(Tenancy)
        .join(Rental, col(Rental.id) == col(Tenancy.rental_id))
        .join(Household, col(Household.id) == col(Rental.household_id))
        .join(Grid, col(Grid.id) == col(Household.grid_id))
        .where(under, col(Tenancy.ended_on).is_(None))
    )
    tenants = (await session.exec(base)).one()
    lapsed = (
        await session.exec(
            base.where(col(Tenancy.confirmed_at).is_(None), col(Tenancy.due_on) < today)
        )
    ).one()
    return RentalCounts(int(rentals), int(tenants), int(lapsed))


async def counts_for_staff(
    session: AsyncSession, roles: Sequence[RoleInGrid], grid: Grid, today: date
) -> RentalCounts | None:
    """The grid's rental counts for its staff and those above (None for anyone else)."""
    if not any(
        r.role not in (Role.RESIDENT, Role.DEPARTMENT) and within(r.grid_path, grid.path)
        for r in roles
    ):
        return None
    return await grid_rental_counts(session, grid, today)


# --- who is told ---------------------------------------------------------------------------


async def workers_of(session: AsyncSession, household: Household) -> list[Person]:
    """The household's own worker, or else the workers of its grid."""
    if household.worker_id is not None:
        worker = await session.get(Person, household.worker_id)
        if worker is not None and worker.active:
            return [worker]
    return list(
        (
            await session.exec(
                select(Person)
                .join(RoleAssignment, col(RoleAssignment.person_id) == col(Person.id))
                .where(
                    RoleAssignment.role == Role.WORKER,
                    RoleAssignment.grid_id == household.grid_id,
                    col(RoleAssignment.active).is_(True),
                    col(Person.active).is_(True),
                )
                .order_by(col(Person.id))
            )
        ).all()
    )


async def heads_of(session: AsyncSession, household: Household) -> list[Person]:
    """The heads of the nearest grid above (or of) the household's that has one."""
    grid = await session.get(Grid, household.grid_id)
    if grid is None:
        return []
    chain = [int(part) for part in grid.path.strip("/").split("/") if part.isdigit()]
    rows = (
        await session.exec(
            select(RoleAssignment.grid_id, Person)
            .join(Person, col(Person.id) == col(RoleAssignment.person_id))
            .where(
                RoleAssignment.role == Role.HEAD,
                col(RoleAssignment.active).is_(True),
                col(RoleAssignment.grid_id).in_(chain),
                col(Person.active).is_(True),
            )
            .order_by(col(Person.id))
        )
    ).all()
    if not rows:
        return []
    nearest = max(chain.index(grid_id) for grid_id, _ in rows)
    return [p for grid_id, p in rows if chain.index(grid_id) == nearest]


def _tell(session: AsyncSession, person: Person, text: str, now: datetime, *, ref: str) -> None:
    assert person.telegram_id is not None
    outbox.send_text(
        session,
        chat_id=person.telegram_id,
        text=text,
        now=now,
        parse_mode=None,
        person_id=person.id,
        ref=ref,
        lane=OutboxLane.NOTICE,
    )


async def send_reminders(session: AsyncSession, now: datetime, settings: Settings) -> int:
    """Residence registrations about to lapse: the landlord and the worker are reminded
    (once, ``PEOPLE__RESIDENCE_REMINDER_DAYS`` before); lapsed ones: the grid's head is told
    (once). Returns how many messages were queued; the caller commits."""
    if in_quiet_hours(now, settings):
        return 0
    today = now.astimezone(settings.tz).date()
    lead = timedelta(days=settings.people.residence_reminder_days)
    open_rows = (
        col(Tenancy.confirmed_at).is_(None),
        col(Tenancy.ended_on).is_(None),
    )
    joined = (
        select(Tenancy, HouseholdMember, Rental, Household)
        .join(HouseholdMember, col(HouseholdMember.id) == col(Tenancy.member_id))
        .join(Rental, col(Rental.id) == col(Tenancy.rental_id))
        .join(Household, col(Household.id) == col(Rental.household_id))
    )
    queued = 0
    soon = (
        await session.exec(
            joined.where(
                *open_rows,
                col(Tenancy.reminded_at).is_(None),
                col(Tenancy.due_on) <= today + lead,
            )
            .order_by(col(Tenancy.due_on), col(Tenancy.id))
            .limit(REMINDER_BATCH)
        )
    ).all()
    for tenancy, member, rental, household in soon:
        name, day = member.name or "—", tenancy.due_on.isoformat()
        landlord = (
            None if rental.landlord_id is None else await session.get(Person, rental.landlord_id)
        )
        if landlord is not None and reachable(landlord):
            text = gettext_for(
                locale_of(landlord, settings),
                LANDLORD_REMINDER,
                name=name,
                address=household.address,
                day=day,
            )
            _tell(session, landlord, text, now, ref=f"tr:{tenancy.id}:l")
            queued += 1
        for worker in await workers_of(session, household):
            if reachable(worker):
                text = gettext_for(
                    locale_of(worker, settings),
                    WORKER_REMINDER,
                    name=name,
                    address=household.address,
                    day=day,
                )
                _tell(session, worker, text, now, ref=f"tr:{tenancy.id}:w{worker.id}")
                queued += 1
        tenancy.reminded_at = now
        session.add(tenancy)
    lapsed = (
        await session.exec(
            joined.where(
                *open_rows,
                col(Tenancy.lapse_told_at).is_(None),
                col(Tenancy.due_on) < today,
            )
            .order_by(col(Tenancy.due_on), col(Tenancy.id))
            .limit(REMINDER_BATCH)
        )
    ).all()
    for tenancy, member, _rental, household in lapsed:
        for head in await heads_of(session, household):
            if reachable(head):
                text = gettext_for(
                    locale_of(head, settings),
                    HEAD_LAPSED,
                    name=member.name or "—",
                    address=household.address,
                    day=tenancy.due_on.isoformat(),
                )
                _tell(session, head, text, now, ref=f"tr:{tenancy.id}:h{head.id}")
                queued += 1
        tenancy.lapse_told_at = now
        session.add(tenancy)
    return queued
