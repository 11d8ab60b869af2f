"""Broadcasts (宣传通知) and emergency alerts (应急通知): writing one, its audience, receipts.

A head, centre operator or admin writes a notice (text, a photo or a file with a caption),
chooses who in a grid subtree of their own scope gets it, sees how many will, previews it and
confirms. Until then it is a draft only its sender may touch; every press on a draft's
buttons is checked again here (a forged press on someone else's broadcast, or on a grid
outside one's scope, is refused and audited). Delivery is :mod:`bot.services.broadcast_delivery`.

The audiences are data (:data:`AUDIENCES`): each names the roles whose holders in the subtree
get the notice, or a group of the people register (party members); and each tag of the tag
policy is an audience of its own (``tag_<key>``: 慢性病 residents told of a free check-up),
offered only to a sender whose roles may read people's tags in the grid (the role × field
table of :mod:`bot.services.personal_fields`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.i18n import N_, gettext_for
from bot.services import party, tags
from bot.services.message_size import MAX_CAPTION, MAX_MESSAGE, utf16_length
from bot.services.people import RoleInGrid
from bot.services.permissions import Action, authorize, permits, scope_paths, target_of
from bot.services.personal_fields import Access, PersonalField, Screen, access
from bot.settings import Settings
from models import AuditLog, Broadcast, BroadcastRecipient, Grid, Person, Role, RoleAssignment

DRAFT, SENDING, DONE, CANCELLED = "draft", "sending", "done", "cancelled"
HEADER_ROOM = 120  # UTF-16 units kept for the header every recipient's copy starts with


@dataclass(frozen=True)
class Audience:
    """Who in the grid subtree gets a broadcast: the holders of these roles there, or the
    people ``people`` names there (a register's group: party members)."""

    key: str
    label: str  # msgid; a tag's audience: the tag's name (data), shown as “慢性病”标签人员
    roles: frozenset[Role]
    people: Callable[[str], SelectOfScalar[int]] | None = None
    tagged: bool = False


AUDIENCES: tuple[Audience, ...] = (
    Audience("residents", N_("Residents"), frozenset({Role.RESIDENT})),
    Audience("workers", N_("Grid workers and heads"), frozenset({Role.WORKER, Role.HEAD})),
    Audience(
        "everyone",
        N_("Residents, workers and heads"),
        frozenset({Role.RESIDENT, Role.WORKER, Role.HEAD}),
    ),
    # 党员: party members of the register who use the bot (matched by phone)
    Audience("party", N_("Party members"), frozenset(), party.party_people),
)
AUDIENCE_BY_KEY = {audience.key: audience for audience in AUDIENCES}


TAG_AUDIENCE = "tag_"  # a tag's people: "tag_" and the tag's key
TAGGED_PEOPLE = N_("People tagged {tag}")


async def audience_of(session: AsyncSession, key: str, *, confirmed: bool = False) -> Audience:
    """The audience ``key`` names: one of :data:`AUDIENCES`, or a tag of the current policy.

    A ``confirmed`` broadcast keeps its tag's audience even if the tag has left the policy
    since (its people are found by the tag's key; its name is then the key): what is being
    sent is never stopped half-way by a new tags file."""
    audience = AUDIENCE_BY_KEY.get(key)
    tag_key = key.removeprefix(TAG_AUDIENCE) if key.startswith(TAG_AUDIENCE) else ""
    if audience is None and tag_key:
        tag = (await tags.current_policy(session)).tag(tag_key)
        if tag is not None:
            audience = _tag_audience(tag.key, tag.name)
        elif confirmed:
            audience = _tag_audience(tag_key, tag_key)
    if audience is None:
        raise InvalidInput(N_("Sorry, this audience is not known."))
    return audience


def _tag_audience(key: str, name: str) -> Audience:
    return Audience(
        TAG_AUDIENCE + key, name, frozenset(), partial(tags.tagged_people, key), tagged=True
    )


def audience_label(audience: Audience, locale: str) -> str:
    """An audience's name in ``locale`` (a tag's name is data: “慢性病”标签人员)."""
    if audience.tagged:
        return gettext_for(locale, TAGGED_PEOPLE, tag=audience.label)
    return gettext_for(locale, audience.label)


async def audiences_for(
    session: AsyncSession, roles: Sequence[RoleInGrid], grid: Grid
) -> tuple[Audience, ...]:
    """The audiences a sender may choose in ``grid``: the people of each tag someone there
    carries too, when the sender's roles may read people's tags there."""
    if access(roles, PersonalField.TAGS, Screen.CARD, grid.path) < Access.ON_REQUEST:
        return AUDIENCES
    policy = await tags.current_policy(session)
    used = await tags.tags_in_use(session, grid.path)
    return AUDIENCES + tuple(
        _tag_audience(tag.key, tag.name) for tag in policy.tags if tag.key in used
    )


@dataclass(frozen=True)
class Notice:
    """What the sender wrote: text, and at most one photo or file (then the text is its
    caption)."""

    text: str
    photo_file_id: str | None = None
    document_file_id: str | None = None

    @property
    def limit(self) -> int:
        """The longest text that fits, in UTF-16 units, with room for the header."""
        media = self.photo_file_id is not None or self.document_file_id is not None
        return (MAX_CAPTION if media else MAX_MESSAGE) - HEADER_ROOM


def check_notice(notice: Notice) -> Notice:
    """The notice cleaned of surrounding blanks; refused when empty or too long for one
    message (counted as Telegram counts: UTF-16 units)."""
    cleaned = Notice(notice.text.strip(), notice.photo_file_id, notice.document_file_id)
    if not cleaned.text and cleaned.photo_file_id is None and cleaned.document_file_id is None:
        raise InvalidInput(N_("The notice is empty. Write its text, or send a photo or a file."))
    length = utf16_length(cleaned.text)
    if length > cleaned.limit:
        raise InvalidInput(
            N_(
                "The notice is too long: {length} characters, at most {limit} fit in one "
                "message. Please shorten it and send it again."
            ),
            length=str(length),
            limit=str(cleaned.limit),
        )
    return cleaned


async def broadcast_grid(
    session: AsyncSession,
    person: Person,
    roles: Sequence[RoleInGrid],
    named: Grid | None,
    now: datetime,
) -> Grid:
    """The grid a new broadcast goes to: the one named (refused, and audited, outside one's
    scope) or the top of one's own."""
    if named is not None:
        await authorize(session, person, roles, Action.BROADCAST, named, now)
        return named
    paths = scope_paths(roles, Action.BROADCAST)
    if not person.active or not paths:
        raise NotAllowed(N_("Broadcasts are for grid heads, the centre and administrators."))
    grid = (await session.exec(select(Grid).where(Grid.path == paths[0]))).first()
    if grid is None:
        raise NotFound()
    return grid


async def create_draft(
    session: AsyncSession,
    person: Person,
    roles: Sequence[RoleInGrid],
    grid: Grid,
    notice: Notice,
    now: datetime,
    settings: Settings,
) -> Broadcast:
    """A draft to residents of ``grid``, not urgent; the sender changes that with buttons."""
    await authorize(session, person, roles, Action.BROADCAST, grid, now)
    notice = check_notice(notice)
    assert person.id is not None and grid.id is not None
    draft = Broadcast(
        sender_id=person.id,
        grid_id=grid.id,
        audience=AUDIENCES[0].key,
        text=notice.text,
        photo_file_id=notice.photo_file_id,
        document_file_id=notice.document_file_id,
        status=DRAFT,
        confirm_minutes=settings.broadcast_confirm_minutes,
        created_at=now,
    )
    session.add(draft)
    await session.flush()
    return draft


async def own_draft(
    session: AsyncSession,
    person: Person,
    roles: Sequence[RoleInGrid],
    broadcast_id: int,
    now: datetime,
) -> tuple[Broadcast, Grid]:
    """The draft a press is about, with its grid — only its sender's, only while it may
    still be broadcast to: anything else is refused and audited."""
    broadcast = await session.get(Broadcast, broadcast_id)
    grid = await session.get(Grid, broadcast.grid_id) if broadcast is not None else None
    if broadcast is None or grid is None:
        raise NotFound()
    target = await target_of(session, grid)
    if (
        broadcast.sender_id != person.id
        or not person.active
        or not permits(roles, Action.BROADCAST, target, person.id)
    ):
        refusal = AuditLog(
            at=now,
            actor_id=person.id,
            action="refused:broadcast",
            object_type="broadcast",
            object_id=broadcast_id,
            detail=grid.path,
        )
        raise NotAllowed(
            N_("Sorry, this broadcast is not yours to change or send."), audit=refusal
        )
    if broadcast.status != DRAFT:
        raise NotAllowed(N_("This broadcast has already been sent or cancelled."))
    return broadcast, grid


def audience_people(audience: Audience, grid_path: str) -> SelectOfScalar[int]:
    """The ids of the active people the audience names in the subtree at ``grid_path``."""
    if audience.people is not None:
        return audience.people(grid_path)
    return (
        select(RoleAssignment.person_id)
        .join(Grid, col(Grid.id) == RoleAssignment.grid_id)
        .where(
            col(RoleAssignment.active).is_(True),
            col(RoleAssignment.role).in_(audience.roles),
            col(Grid.path).startswith(grid_path, autoescape=True),
        )
    )


@dataclass(frozen=True)
class Reach:
    """How many a broadcast is for, and how many of them the bot can write to."""

    total: int
    reachable: int


async def reach(session: AsyncSession, audience: Audience, grid_path: str) -> Reach:
    people = audience_people(audience, grid_path)
    row = (
        await session.exec(
            select(
                func.count(),
                func.count().filter(
                    col(Person.telegram_id).is_not(None), col(Person.reachable).is_(True)
                ),
            ).where(col(Person.active).is_(True), col(Person.id).in_(people))
        )
    ).one()
    return Reach(int(row[0]), int(row[1]))


async def set_audience(
    session: AsyncSession,
    person: Person,
    roles: Sequence[RoleInGrid],
    broadcast_id: int,
    key: str,
    now: datetime,
) -> tuple[Broadcast, Grid]:
    broadcast, grid = await own_draft(session, person, roles, broadcast_id, now)
    chosen = [a for a in await audiences_for(session, roles, grid) if a.key == key]
    if not chosen:
        raise InvalidInput(N_("Sorry, this audience is not known."))
    broadcast.audience = chosen[0].key
    session.add(broadcast)
    return broadcast, grid


async def toggle_emergency(
    session: AsyncSession,
    person: Person,
    roles: Sequence[RoleInGrid],
    broadcast_id: int,
    now: datetime,
) -> tuple[Broadcast, Grid]:
    broadcast, grid = await own_draft(session, person, roles, broadcast_id, now)
    broadcast.emergency = not broadcast.emergency
    session.add(broadcast)
    return broadcast, grid


async def cancel(
    session: AsyncSession,
    person: Person,
    roles: Sequence[RoleInGrid],
    broadcast_id: int,
    now: datetime,
) -> Broadcast:
    broadcast, _ = await own_draft(session, person, roles, broadcast_id, now)
    broadcast.status = CANCELLED
    broadcast.finished_at = now
    session.add(broadcast)
    return broadcast


async def check_start(
    session: AsyncSession,
    person: Person,
    roles: Sequence[RoleInGrid],
    broadcast_id: int,
    now: datetime,
) -> None:
    """Whether :func:`start` would go ahead (for an answer before the start is handed off)."""
    broadcast, grid = await own_draft(session, person, roles, broadcast_id, now)
    if (
        await reach(session, await audience_of(session, broadcast.audience), grid.path)
    ).total == 0:
        raise InvalidInput(N_("Nobody in this audience: choose another one."))


async def start(
    session: AsyncSession,
    person: Person,
    roles: Sequence[RoleInGrid],
    broadcast_id: int,
    now: datetime,
) -> tuple[Broadcast, Grid, int]:
    """Confirmed: the broadcast starts sending (its recipients are queued in rounds by
    :func:`bot.services.broadcast_delivery.queue_round`). Audited. Returns it, its grid and
    how many it is for; refused when that is nobody."""
    broadcast, grid = await own_draft(session, person, roles, broadcast_id, now)
    audience = await audience_of(session, broadcast.audience)
    total = (await reach(session, audience, grid.path)).total
    if total == 0:
        raise InvalidInput(N_("Nobody in this audience: choose another one."))
    broadcast.status = SENDING
    broadcast.started_at = now
    session.add(broadcast)
    session.add(
        AuditLog(
            at=now,
            actor_id=person.id,
            action="broadcast:start",
            object_type="broadcast",
            object_id=broadcast.id,
            detail=grid.path,
            data={
                "audience": broadcast.audience,
                "emergency": broadcast.emergency,
                "people": total,
            },
        )
    )
    return broadcast, grid, total


async def confirm_receipt(
    session: AsyncSession, person: Person, broadcast_id: int, now: datetime
) -> bool:
    """A recipient taps "收到": recorded once (``True`` the first time). Someone the
    broadcast was not for is refused, and the attempt audited."""
    recipient = (
        await session.exec(
            select(BroadcastRecipient).where(
                BroadcastRecipient.broadcast_id == broadcast_id,
                BroadcastRecipient.person_id == person.id,
            )
        )
    ).first()
    if recipient is None:
        refusal = AuditLog(
            at=now,
            actor_id=person.id,
            action="refused:broadcast_receipt",
            object_type="broadcast",
            object_id=broadcast_id,
        )
        raise NotAllowed(N_("Sorry, this notice was not sent to you."), audit=refusal)
    if recipient.confirmed_at is not None:
        return False
    recipient.confirmed_at = now
    session.add(recipient)
    return True
