"""Open311 (GeoReport v2) without HTTP: the services, the public view of requests, partner keys
and filing a partner's report as a ticket.

- **Services** are the ticket categories (``service_code`` ``facility``, ``fire``…), named in
  the configured default language.
- **A request** is a ticket, seen as a public notice board would show it: its number, whether
  it is open or closed, its category, its description with phone numbers, resident ID numbers
  and the reporter's name masked, when it came in and last changed, its grid's name as the
  address, the street centre's name as the agency, and its location rounded to 3 decimals
  (about 100 m). Never a name, a phone number or an e-mail address of anyone.
- **Keys** are issued by admins (``/apikey new``), stored as their SHA-256 and shown once.
  Each key files as a reporter of its own (the partner, with no Telegram account), so the
  report limits count per key (``OPEN311__PER_HOUR``/``OPEN311__PER_DAY``).
- **Filing** goes through the ticket kernel's :func:`~bot.services.tickets.file_ticket`, with
  the source recorded (``TicketSource.OPEN311``) and the caller's own details kept beside the
  ticket, out of every public answer. Where it lands is decided as for a report in the chat
  (:func:`~bot.services.tickets.place_report`): the grid its point lies in on the boundary
  map, else the grid of the registered household its address names, else the grid of the key
  (the one the issuing admin runs, the street as a rule), routed like any ticket of that grid
  (with the shipped policy: a worker of that grid if there is one, else the centre once the
  first deadline passes); a point outside the map tells the centre, as in the chat.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.i18n import N_, gettext_for
from bot.labels import TICKET_CATEGORY, TICKET_STATE
from bot.logs import redact
from bot.services import tickets
from bot.services.notice_board import public_text
from bot.services.people import RoleInGrid
from bot.services.permissions import within
from bot.services.ticket_notices import TicketNotifier
from bot.services.ticket_numbers import shown_number
from bot.settings import ReportLimits, Settings
from models import (
    OPEN_TICKET_STATES,
    ApiKey,
    AuditLog,
    Grid,
    Open311Request,
    Person,
    Role,
    Ticket,
    TicketCategory,
    TicketSource,
    TicketState,
)

MAX_RESULTS = 1000  # requests in one answer, newest first
SPAN = timedelta(days=90)  # the default and the longest date range of a listing (the spec's)
COORDINATE_DECIMALS = 3  # about 100 m: the street corner, not the door
MAX_PARTNER = 60
BATCH = 100  # requests made public between two turns of the event loop

FOR_ADMINS = N_("This command is for administrators.")
NO_SUCH_KEY = N_("There is no key {id} among the keys of your grids.")


class Status(StrEnum):
    """GeoReport's two statuses: every state still being worked on is ``open``."""

    OPEN = "open"
    CLOSED = "closed"


def status_of(state: TicketState | str) -> Status:
    return Status.OPEN if TicketState(state) in OPEN_TICKET_STATES else Status.CLOSED


# --- services ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Service:
    code: str
    name: str


def service_list(locale: str) -> list[Service]:
    """Every category a request may have, named in ``locale``."""
    return [Service(c.value, gettext_for(locale, TICKET_CATEGORY[c])) for c in TicketCategory]


def category_of(code: str) -> TicketCategory | None:
    try:
        return TicketCategory(code)
    except ValueError:
        return None


# --- the public view -------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestQuery:
    """What ``GET requests`` asks for. ``numbers``, when given, overrides everything else
    (the spec's rule for ``service_request_id``); empty sets mean "any"."""

    start: datetime
    end: datetime
    statuses: frozenset[Status] = frozenset()
    categories: frozenset[TicketCategory] = frozenset()
    numbers: tuple[str, ...] = ()


@dataclass(frozen=True)
class PublicRequest:
    """One ticket as anyone may read it (the GeoReport fields, in their order)."""

    service_request_id: str
    status: Status
    status_notes: str
    service_name: str
    service_code: str
    description: str
    agency_responsible: str
    requested_datetime: str
    updated_datetime: str
    address: str
    lat: float | None
    long: float | None


def public_description(text: str, names: Iterable[str | None]) -> str:
    """The description as a notice board prints it: phone numbers, resident ID numbers and
    the people's ``names`` masked (:func:`~bot.services.notice_board.public_text`), and then
    once more anything a log would mask (a mobile written in groups, a token)."""
    return redact(public_text(text, [n for n in names if n]))


def round_coordinate(value: float | None) -> float | None:
    return None if value is None else round(value, COORDINATE_DECIMALS)


def w3c_time(moment: datetime, tz: ZoneInfo) -> str:
    """``2026-12-07T09:30:00+08:00``: ISO 8601 with the offset, as GeoReport asks."""
    return moment.astimezone(tz).isoformat(timespec="seconds")


async def public_requests(
    session: AsyncSession,
    query: RequestQuery,
    *,
    locale: str,
    tz: ZoneInfo,
    limit: int = MAX_RESULTS,
) -> list[PublicRequest]:
    """The tickets ``query`` asks for, newest first, at most ``limit`` of them."""
    statement = (
        select(Ticket, Grid, Person.name, Open311Request)
        .join(Grid, col(Grid.id) == Ticket.grid_id)
        .outerjoin(Person, col(Person.id) == Ticket.reporter_id)
        .outerjoin(Open311Request, col(Open311Request.ticket_id) == Ticket.id)
    )
    if query.numbers:
        statement = statement.where(col(Ticket.number).in_(query.numbers))
    else:
        statement = statement.where(
            col(Ticket.created_at) >= query.start, col(Ticket.created_at) <= query.end
        )
        if query.categories:
            statement = statement.where(col(Ticket.category).in_(sorted(query.categories)))
        if query.statuses and len(query.statuses) < len(Status):
            states = sorted(OPEN_TICKET_STATES)
            if Status.OPEN in query.statuses:
                statement = statement.where(col(Ticket.state).in_(states))
            else:
                statement = statement.where(col(Ticket.state).not_in(states))
    statement = statement.order_by(col(Ticket.created_at).desc(), col(Ticket.id).desc())
    rows = (await session.exec(statement.limit(limit))).all()
    streets = await _street_names(session, {ticket.street_id for ticket, _, _, _ in rows})
    found: list[PublicRequest] = []
    for first in range(0, len(rows), BATCH):
        if first:
            await asyncio.sleep(0)  # masking costs ~0.3 ms a ticket: let updates in between
        found += [
            _public(ticket, grid, streets, names=_names(reporter, caller), locale=locale, tz=tz)
            for ticket, grid, reporter, caller in rows[first : first + BATCH]
        ]
    return found


def _names(reporter: str | None, caller: Open311Request | None) -> list[str | None]:
    """Whose names a description may not show: the reporter's, an Open311 caller's."""
    if caller is None:
        return [reporter]
    first, last = caller.first_name or "", caller.last_name or ""
    return [reporter, first, last, f"{first} {last}".strip(), f"{last}{first}"]


async def public_request(
    session: AsyncSession, number: str, *, locale: str, tz: ZoneInfo
) -> PublicRequest | None:
    far = datetime.min.replace(tzinfo=tz)
    found = await public_requests(
        session, RequestQuery(far, far, numbers=(number,)), locale=locale, tz=tz, limit=1
    )
    return found[0] if found else None


async def _street_names(session: AsyncSession, ids: set[int]) -> dict[int, str]:
    """The streets' (tier-0 grids') names, by id."""
    if not ids:
        return {}
    rows = (await session.exec(select(Grid.id, Grid.name).where(col(Grid.id).in_(ids)))).all()
    return {grid_id: name for grid_id, name in rows if grid_id is not None}


def _public(
    ticket: Ticket,
    grid: Grid,
    streets: dict[int, str],
    *,
    names: Sequence[str | None],
    locale: str,
    tz: ZoneInfo,
) -> PublicRequest:
    category = TicketCategory(ticket.category)
    return PublicRequest(
        service_request_id=ticket.number,
        status=status_of(ticket.state),
        status_notes=gettext_for(locale, TICKET_STATE[TicketState(ticket.state)]),
        service_name=gettext_for(locale, TICKET_CATEGORY[category]),
        service_code=category.value,
        description=public_description(ticket.description, names),
        agency_responsible=streets.get(ticket.street_id, grid.name),
        requested_datetime=w3c_time(ticket.created_at, tz),
        updated_datetime=w3c_time(ticket.updated_at, tz),
        address=grid.name,
        lat=round_coordinate(ticket.latitude),
        long=round_coordinate(ticket.longitude),
    )


# --- keys ------------------------------------------------------------------------------------


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def admin_grids(roles: Sequence[RoleInGrid]) -> list[RoleInGrid]:
    grids = sorted((r for r in roles if r.role == Role.ADMIN), key=lambda r: r.grid_tier)
    if not grids:
        raise NotAllowed(FOR_ADMINS)
    return grids


async def issue_key(
    session: AsyncSession,
    *,
    admin: Person,
    roles: Sequence[RoleInGrid],
    partner: str,
    now: datetime,
) -> tuple[ApiKey, str]:
    """A new key for ``partner``; returns it with the secret, which is stored only hashed."""
    top = admin_grids(roles)[0]
    name = " ".join(partner.split())
    if not name or not any(ch.isalnum() for ch in name):
        raise InvalidInput(N_("Please give the partner's name: /apikey new <name>"))
    if len(name) > MAX_PARTNER:
        raise InvalidInput(
            N_("That is {length} characters; please keep it under {limit}."),
            length=len(name),
            limit=MAX_PARTNER,
        )
    reporter = Person(name=f"Open311 · {name}", created_at=now, updated_at=now)
    session.add(reporter)
    await session.flush()
    assert reporter.id is not None
    secret = secrets.token_urlsafe(32)
    key = ApiKey(
        partner=name,
        key_hash=hash_key(secret),
        person_id=reporter.id,
        grid_id=top.grid_id,
        created_by_id=admin.id,
        created_at=now,
    )
    session.add(key)
    await session.flush()
    session.add(
        AuditLog(
            at=now, actor_id=admin.id, action="apikey_issued", object_type="api_key",
            object_id=key.id, detail=name,
        )
    )  # fmt: skip
    return key, secret


async def keys_in_scope(session: AsyncSession, roles: Sequence[RoleInGrid]) -> list[ApiKey]:
    """The keys of the grids this admin runs, newest first."""
    scopes = [r.grid_path for r in admin_grids(roles)]
    rows = (
        await session.exec(
            select(ApiKey, Grid.path)
            .join(Grid, col(Grid.id) == ApiKey.grid_id)
            .order_by(col(ApiKey.id).desc())
        )
    ).all()
    return [key for key, path in rows if any(within(scope, path) for scope in scopes)]


async def revoke_key(
    session: AsyncSession,
    *,
    admin: Person,
    roles: Sequence[RoleInGrid],
    key_id: int,
    now: datetime,
) -> ApiKey:
    """Switch a key off for good; what it filed stays."""
    key = next((k for k in await keys_in_scope(session, roles) if k.id == key_id), None)
    if key is None:
        raise NotFound(NO_SUCH_KEY, id=key_id)
    if key.active:
        key.active = False
        key.revoked_at = now
        session.add(key)
        session.add(
            AuditLog(
                at=now,
                actor_id=admin.id,
                action="apikey_revoked",
                object_type="api_key",
                object_id=key.id,
                detail=key.partner,
            )
        )
    return key


async def key_for(session: AsyncSession, secret: str) -> ApiKey | None:
    """The active key ``secret`` is, or ``None``."""
    if not secret or len(secret) > 200:
        return None
    return (
        await session.exec(
            select(ApiKey).where(ApiKey.key_hash == hash_key(secret), col(ApiKey.active).is_(True))
        )
    ).first()


# --- filing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Submission:
    """What a partner app posted (already checked for shape by the HTTP layer)."""

    category: TicketCategory
    description: str
    latitude: float | None = None
    longitude: float | None = None
    address: str | None = None
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None


async def placement_for(
    session: AsyncSession, key: ApiKey, submission: Submission
) -> tickets.Placement:
    """Where a partner's report lands: as a report in the chat would
    (:func:`~bot.services.tickets.place_report`: the grid the point is in, else the grid of an
    address matching a registered household's), with the key's grid as the reporter's home."""
    home = await session.get(Grid, key.grid_id)
    if home is None:
        raise NotFound()
    return await tickets.place_report(
        session,
        home=home,
        latitude=submission.latitude,
        longitude=submission.longitude,
        address=submission.address,
    )


async def file_request(
    session: AsyncSession,
    notifier: TicketNotifier,
    *,
    key: ApiKey,
    submission: Submission,
    settings: Settings,
    now: datetime,
) -> Filed:
    """File a partner's report as a ticket in the normal flow: routed, on the clock, its
    owners told; over the key's limits it is refused with
    :class:`~bot.services.tickets.TooManyReports`."""
    reporter = await session.get(Person, key.person_id)
    if reporter is None:
        raise NotFound()
    placement = await placement_for(session, key, submission)
    limits = ReportLimits(per_hour=settings.open311.per_hour, per_day=settings.open311.per_day)
    ticket = await tickets.file_ticket(
        session,
        notifier,
        reporter=reporter,
        grid=placement.grid,
        placement=placement,
        report=tickets.Report(
            category=submission.category,
            description=submission.description,
            address=submission.address,
            latitude=submission.latitude,
            longitude=submission.longitude,
        ),
        settings=settings.model_copy(update={"reports": limits}),
        now=now,
    )
    ticket.source = TicketSource.OPEN311
    session.add(ticket)
    assert ticket.id is not None and key.id is not None
    session.add(
        Open311Request(
            ticket_id=ticket.id,
            api_key_id=key.id,
            email=submission.email,
            first_name=submission.first_name,
            last_name=submission.last_name,
            phone=submission.phone,
            created_at=now,
        )
    )
    key.last_used_at = now
    session.add(key)
    await session.flush()
    return Filed(ticket, placement.grid)


@dataclass(frozen=True)
class Filed:
    ticket: Ticket
    grid: Grid

    def notice(self, locale: str) -> str:
        """What the caller reads back: the ticket's number as people say it on the phone
        (its short one), and where it is taken up."""
        return gettext_for(
            locale,
            N_("Filed as ticket {number}; {grid} will take it up."),
            number=shown_number(self.ticket),
            grid=self.grid.name,
        )
