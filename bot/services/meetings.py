"""Meetings (例会): convene, invite, remind, check in, minutes, problems, absentees.

DOMAIN.md §6: the grid party branch meets quarterly and hears every grid head and worker; each
tier-2 head convenes all tier-3 workers at least quarterly; what they cannot solve goes up.

Every timer of a meeting is an outbox row with a due time (``not_before``): the reminders 24 h
and 1 h before (the last expiring at the start, an earlier one when the next is due, so a
reminder that can no longer help is dropped, not sent late), the check-in button at the start
(expiring when check-in closes), the organiser's "it has ended: minutes?" prompt at the end,
and the invitation to a later occurrence of a series (due when the occurrence before it
starts). Each row has a ``ref`` ``mt:<meeting>:<kind>:<person>``; moving or cancelling a
meeting marks its still-pending rows DROPPED and writes new ones, so a restart neither loses
nor repeats a reminder.

Recurrence: a series is created up front (:data:`SERIES_LENGTH` occurrences, each with its own
invitations and reminders), and topped up to :data:`SERIES_AHEAD` occurrences ahead whenever
the minutes of one are recorded — the moment an occurrence is known to have ended.

Services describe a message (:class:`MeetingMessage`); a :class:`MeetingNotifier` (the
Telegram side: ``bot.telegram.meeting_views``) renders it in the recipient's language and
queues it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, tzinfo
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import DomainError, InvalidInput, NotAllowed, NotFound
from bot.i18n import N_
from bot.services import tickets
from bot.services.meeting_times import (
    Recurrence,
    clean_line,
    clean_place,
    clean_title,
    occurrences,
    shown,
)
from bot.services.people import RoleInGrid
from bot.services.permissions import Action, authorize, same
from bot.settings import Settings
from models import (
    AuditLog,
    Grid,
    Meeting,
    MeetingInvite,
    OutboxMessage,
    OutboxStatus,
    Person,
    Role,
    RoleAssignment,
    Rsvp,
)

# -- the rules of the game ---------------------------------------------------------------------

REMINDER_LEADS: tuple[timedelta, ...] = (timedelta(hours=24), timedelta(hours=1))
"""Reminders go out this long before the start (a lead already past when scheduled is skipped;
each expires when the next is due, the last at the start)."""
URGENT_LEAD = timedelta(hours=1)
"""Reminders this close to the start ignore quiet hours."""
CHECK_IN_OPENS = timedelta(minutes=30)  # check-in accepted from 30 min before the start
CHECK_IN_CLOSES = timedelta(hours=2)  # … until 2 h after it
NEAR = timedelta(hours=24)  # invitations and notices about a meeting this close are urgent
DEFAULT_DURATION = 60  # minutes
SERIES_LENGTH = 4  # occurrences created up front
SERIES_AHEAD = 3  # occurrences kept ahead when a series is topped up
MAX_REASON = 500
MAX_NAMES = 50
USUAL_START = time(14, 30)  # the quarterly meeting's time when there is none to go by


class InviteeGroup(StrEnum):
    """Who a meeting invites, relative to its grid (the grid and every grid below it)."""

    WORKERS = "workers"  # 网格员
    HEADS = "heads"  # 网格长
    STAFF = "staff"  # both
    NAMED = "named"  # the people named


class MeetingNotice(StrEnum):
    INVITED = "invited"  # an invitation with attend / cannot attend
    REMINDER = "reminder"  # 24 h / 1 h before
    CHECK_IN = "check_in"  # at the start: the check-in (签到) button
    MOVED = "moved"  # the time changed
    CANCELLED = "cancelled"
    SUMMARY = "summary"  # the organiser's card: who answered what (edited in place)
    ENDED = "ended"  # to the organiser at the end: minutes, problems, absentees


class RefKind(StrEnum):
    """The middle part of an outbox ``ref``: ``mt:<meeting>:<kind>:<person>``."""

    INVITATION = "inv"
    REMINDER = "r"  # followed by the lead in minutes: r1440, r60
    CHECK_IN = "ci"
    ENDED = "end"
    SUMMARY = "sum"


def ref_of(meeting_id: int, kind: str, person_id: int) -> str:
    return f"mt:{meeting_id}:{kind}:{person_id}"


# -- refusals ------------------------------------------------------------------------------------


class MeetingClosed(DomainError):
    message = N_("This meeting was cancelled.")


class MeetingStarted(DomainError):
    message = N_("This meeting has already started; it can no longer be changed.")


class NotInvited(NotAllowed):
    message = N_("You are not invited to this meeting.")


class CheckInClosed(DomainError):
    message = N_("Check-in is open from {opens} to {closes}.")


# -- what the notifier is told -------------------------------------------------------------------


@dataclass(frozen=True)
class Attendance:
    """Who answered what, and who checked in (签到)."""

    attending: list[Person] = field(default_factory=list)
    declined: list[tuple[Person, str]] = field(default_factory=list)
    pending: list[Person] = field(default_factory=list)
    checked_in: list[Person] = field(default_factory=list)

    @property
    def invited(self) -> int:
        return len(self.attending) + len(self.declined) + len(self.pending)


@dataclass(frozen=True)
class MeetingMessage:
    """One message about a meeting to one person; the notifier renders and queues it."""

    notice: MeetingNotice
    meeting: Meeting
    recipient: Person
    grid_name: str
    organiser_name: str
    ref: str | None = None
    edit: bool = False  # edit the message with ``ref`` instead of sending a new one
    not_before: datetime | None = None
    expires_at: datetime | None = None
    urgent: bool = False
    lead: timedelta | None = None  # reminders
    previous_start: datetime | None = None  # moved
    attendance: Attendance | None = None  # summary
    rsvp: Rsvp | None = None  # the recipient's own answer, if any


class MeetingNotifier(Protocol):
    async def __call__(
        self, session: AsyncSession, message: MeetingMessage, now: datetime
    ) -> None:
        """Render ``message`` in the recipient's language and queue it in ``session``."""
        ...


@dataclass(frozen=True)
class MeetingDraft:
    """What the /meeting conversation gathered."""

    grid_id: int
    title: str
    starts_at: datetime
    place: str = ""
    invitees: InviteeGroup = InviteeGroup.WORKERS
    named_ids: tuple[int, ...] = ()
    recurrence: Recurrence | None = None
    duration_minutes: int = DEFAULT_DURATION


# -- who -----------------------------------------------------------------------------------------


async def organisable_grid(
    session: AsyncSession,
    person: Person,
    roles: Sequence[RoleInGrid],
    now: datetime,
    grid: Grid | None = None,
) -> Grid:
    """The grid a meeting is for: the one named, else the widest the person may organise in."""
    if grid is None:
        for held in roles:
            if held.role in {Role.HEAD, Role.CENTER, Role.ADMIN}:
                grid = await session.get(Grid, held.grid_id)
                break
    if grid is None:
        raise NotAllowed(N_("Only grid heads and centre operators can convene meetings."))
    await authorize(session, person, roles, Action.ORGANISE, grid, now)
    return grid


@dataclass(frozen=True)
class QuarterlyProposal:
    """The quarterly grid meeting as /meeting proposes it, ready for one tap."""

    grid: Grid
    starts_at: datetime
    place: str


async def propose_quarterly(
    session: AsyncSession,
    person: Person,
    roles: Sequence[RoleInGrid],
    now: datetime,
    tz: tzinfo,
    grid: Grid | None = None,
) -> QuarterlyProposal:
    """The grid (the one named, else the widest the person may organise in), the next working
    day (holidays and make-up days counted) at the time and place of the last meeting this
    person convened there — at :data:`USUAL_START` with no place the first time."""
    grid = await organisable_grid(session, person, roles, now, grid)
    last = (
        await session.exec(
            select(Meeting)
            .where(
                Meeting.organiser_id == person.id,
                Meeting.grid_id == grid.id,
                col(Meeting.cancelled_at).is_(None),
            )
            # the newest meeting, and of a series created at once its first occurrence
            .order_by(col(Meeting.created_at).desc(), col(Meeting.id))
            .limit(1)
        )
    ).first()
    at = last.starts_at.astimezone(tz).time() if last is not None else USUAL_START
    calendar = await tickets.calendar_for(session, await tickets.current_policy(session))
    day = calendar.next_working_day(now.astimezone(tz).date())
    starts_at = datetime.combine(day, at, tzinfo=tz).astimezone(now.tzinfo)
    return QuarterlyProposal(grid, starts_at, last.place if last is not None else "")


async def staff_under(session: AsyncSession, grid: Grid, role_set: set[Role]) -> list[Person]:
    """Active people holding one of the roles on the grid or any grid below it."""
    return list(
        (
            await session.exec(
                select(Person)
                .join(RoleAssignment, col(RoleAssignment.person_id) == Person.id)
                .join(Grid, col(Grid.id) == RoleAssignment.grid_id)
                .where(
                    col(Grid.path).startswith(grid.path),
                    col(RoleAssignment.role).in_([r.value for r in role_set]),
                    col(RoleAssignment.active).is_(True),
                    col(Person.active).is_(True),
                )
                .distinct()
                .order_by(col(Person.id))
            )
        ).all()
    )


GROUP_ROLES: dict[InviteeGroup, set[Role]] = {
    InviteeGroup.WORKERS: {Role.WORKER},
    InviteeGroup.HEADS: {Role.HEAD},
    InviteeGroup.STAFF: {Role.WORKER, Role.HEAD},
}


def split_names(text: str | None) -> list[str]:
    """Names or phone numbers typed in one message, separated by commas, 、, ; or spaces."""
    normal = unicodedata.normalize("NFKC", (text or "")[: MAX_NAMES * 40])
    words = list(dict.fromkeys(w for w in re.split(r"[\s,，、;；]+", normal) if w))
    if not words:
        raise InvalidInput(N_("Please write the names of the people to invite."))
    if len(words) > MAX_NAMES:
        raise InvalidInput(N_("At most {limit} names at a time, please."), limit=MAX_NAMES)
    return words


async def find_named(session: AsyncSession, grid: Grid, text: str) -> list[Person]:
    """People named in ``text`` (names or phone numbers, separated by commas, 、 or spaces)
    among those who hold any role in the grid's subtree."""
    words = split_names(text)
    candidates = await staff_under(session, grid, set(Role))
    found: dict[int, Person] = {}
    for word in words:
        digits = "".join(ch for ch in word if ch.isdigit())
        if len(digits) >= 7 and len(digits) == len(word.lstrip("+")):
            matches = [p for p in candidates if (p.phone or "").endswith(digits)]
        else:
            matches = [p for p in candidates if p.name == word]
        if not matches:
            raise InvalidInput(
                N_("No one called {name} works in {grid}."), name=word[:50], grid=grid.name
            )
        if len(matches) > 1:
            raise InvalidInput(
                N_("Several people are called {name}; please write their phone number instead."),
                name=word[:50],
            )
        person = matches[0]
        assert person.id is not None
        found[person.id] = person
    return list(found.values())


async def invitees_for(
    session: AsyncSession, grid: Grid, draft: MeetingDraft, organiser_id: int
) -> list[Person]:
    if draft.invitees == InviteeGroup.NAMED:
        if not draft.named_ids:
            raise InvalidInput(N_("Please write the names of the people to invite."))
        allowed = {p.id: p for p in await staff_under(session, grid, set(Role))}
        chosen = [allowed[i] for i in dict.fromkeys(draft.named_ids) if i in allowed]
    else:
        chosen = await staff_under(session, grid, GROUP_ROLES[draft.invitees])
    chosen = [p for p in chosen if p.id != organiser_id]
    if not chosen:
        raise InvalidInput(N_("There is no one to invite in {grid}."), grid=grid.name)
    return chosen


# -- creating ------------------------------------------------------------------------------------


async def create_meeting(
    session: AsyncSession,
    notifier: MeetingNotifier,
    *,
    organiser: Person,
    roles: Sequence[RoleInGrid],
    draft: MeetingDraft,
    settings: Settings,
    now: datetime,
) -> list[Meeting]:
    """Create a meeting (or a series of them), invite, and schedule every reminder.

    A series gets :data:`SERIES_LENGTH` occurrences; the first one's invitations go out now,
    each later one's when the occurrence before it starts. Returns the meetings, first first.
    """
    grid = await session.get(Grid, draft.grid_id)
    if grid is None:
        raise NotFound()
    await authorize(session, organiser, roles, Action.ORGANISE, grid, now)
    assert organiser.id is not None
    if draft.starts_at <= now:
        raise InvalidInput(
            N_("That time has already passed: {when}. Please give a time in the future."),
            when=shown(draft.starts_at, settings.tz),
        )
    title = clean_title(draft.title)
    place = clean_place(draft.place) if draft.place.strip() else ""
    people = await invitees_for(session, grid, draft, organiser.id)
    starts = occurrences(draft.starts_at, draft.recurrence, SERIES_LENGTH, settings.tz)
    created: list[Meeting] = []
    for index, starts_at in enumerate(starts):
        meeting = Meeting(
            organiser_id=organiser.id,
            grid_id=draft.grid_id,
            title=title,
            place=place,
            starts_at=starts_at,
            duration_minutes=draft.duration_minutes,
            recurrence=draft.recurrence.value if draft.recurrence else None,
            series_id=created[0].id if created else None,
            created_at=now,
            updated_at=now,
        )
        session.add(meeting)
        await session.flush()
        if draft.recurrence is not None and not created:
            meeting.series_id = meeting.id  # the first occurrence names the series
        invite_at = None if index == 0 else starts[index - 1]
        await _open(session, notifier, meeting, organiser, grid, people, now, invite_at)
        created.append(meeting)
    session.add(
        AuditLog(
            at=now,
            actor_id=organiser.id,
            action="meeting_created",
            object_type="meeting",
            object_id=created[0].id,
            detail=f"{len(created)} occurrence(s), {len(people)} invited",
        )
    )
    return created


async def _open(
    session: AsyncSession,
    notifier: MeetingNotifier,
    meeting: Meeting,
    organiser: Person,
    grid: Grid,
    people: Sequence[Person],
    now: datetime,
    invite_at: datetime | None,
) -> None:
    """Invite ``people`` to a new meeting and schedule its timers."""
    assert meeting.id is not None
    for person in people:
        assert person.id is not None
        session.add(MeetingInvite(meeting_id=meeting.id, person_id=person.id))
        await notifier(
            session,
            _message(
                MeetingNotice.INVITED,
                meeting,
                person,
                grid,
                organiser,
                ref=ref_of(meeting.id, RefKind.INVITATION, person.id),
                not_before=invite_at,
                expires_at=meeting.starts_at,
                urgent=meeting.starts_at - (invite_at or now) <= NEAR,
            ),
            now,
        )
    await session.flush()
    await _schedule(session, notifier, meeting, organiser, grid, people, now)
    if invite_at is None:  # the organiser's card; a later occurrence's first reply makes it
        await _summary(session, notifier, meeting, organiser, grid, now, edit=False)


async def _schedule(
    session: AsyncSession,
    notifier: MeetingNotifier,
    meeting: Meeting,
    organiser: Person,
    grid: Grid,
    people: Sequence[Person],
    now: datetime,
) -> None:
    """Reminders and check-in buttons for ``people`` (reminders for the organiser too), and
    the organiser's end-of-meeting prompt, as rows due later."""
    assert meeting.id is not None and organiser.id is not None
    for person in people:
        await _timers(session, notifier, meeting, organiser, grid, person, now)
    if all(p.id != organiser.id for p in people):
        await _timers(session, notifier, meeting, organiser, grid, organiser, now, check_in=False)
    await notifier(
        session,
        _message(
            MeetingNotice.ENDED,
            meeting,
            organiser,
            grid,
            organiser,
            ref=ref_of(meeting.id, RefKind.ENDED, organiser.id),
            not_before=ends_at(meeting),
        ),
        now,
    )


async def _timers(
    session: AsyncSession,
    notifier: MeetingNotifier,
    meeting: Meeting,
    organiser: Person,
    grid: Grid,
    person: Person,
    now: datetime,
    *,
    check_in: bool = True,
) -> None:
    """One person's reminders and check-in button. A reminder expires when the next one is
    due (the last one at the start), so a process that was down sends at most one, late."""
    assert meeting.id is not None and person.id is not None
    leads = sorted(REMINDER_LEADS, reverse=True)
    for index, lead in enumerate(leads):
        due = meeting.starts_at - lead
        if due <= now:
            continue  # the invitation itself is fresher than this reminder would be
        superseded = leads[index + 1] if index + 1 < len(leads) else timedelta(0)
        kind = f"{RefKind.REMINDER}{int(lead.total_seconds() // 60)}"
        await notifier(
            session,
            _message(
                MeetingNotice.REMINDER,
                meeting,
                person,
                grid,
                organiser,
                ref=ref_of(meeting.id, kind, person.id),
                not_before=due,
                expires_at=meeting.starts_at - superseded,
                urgent=lead <= URGENT_LEAD,
                lead=lead,
            ),
            now,
        )
    if check_in:
        await notifier(
            session,
            _message(
                MeetingNotice.CHECK_IN,
                meeting,
                person,
                grid,
                organiser,
                ref=ref_of(meeting.id, RefKind.CHECK_IN, person.id),
                not_before=meeting.starts_at,
                expires_at=meeting.starts_at + CHECK_IN_CLOSES,
                urgent=True,
            ),
            now,
        )


def ends_at(meeting: Meeting) -> datetime:
    return meeting.starts_at + timedelta(minutes=meeting.duration_minutes)


def _message(
    notice: MeetingNotice,
    meeting: Meeting,
    recipient: Person,
    grid: Grid,
    organiser: Person,
    **details: Any,
) -> MeetingMessage:
    return MeetingMessage(
        notice, meeting, recipient, grid_name=grid.name, organiser_name=organiser.name, **details
    )


async def _summary(
    session: AsyncSession,
    notifier: MeetingNotifier,
    meeting: Meeting,
    organiser: Person,
    grid: Grid,
    now: datetime,
    *,
    edit: bool = True,
) -> None:
    assert meeting.id is not None and organiser.id is not None
    await notifier(
        session,
        _message(
            MeetingNotice.SUMMARY,
            meeting,
            organiser,
            grid,
            organiser,
            ref=ref_of(meeting.id, RefKind.SUMMARY, organiser.id),
            edit=edit,
            urgent=True,
            attendance=await attendance(session, meeting.id),
        ),
        now,
    )


async def withdraw(
    session: AsyncSession,
    meeting_id: int,
    kinds: Sequence[str] | None = None,
    person_id: int | None = None,
) -> int:
    """Mark a meeting's still-pending timers DROPPED (all of them, or those of ``kinds``,
    of one person or everyone). Rows already sent or leased for sending stay as they are."""
    prefixes = [f"mt:{meeting_id}:{kind}" for kind in (kinds or [""])]
    conditions = [
        col(OutboxMessage.ref).startswith(prefix, autoescape=True) for prefix in prefixes
    ]
    query = (
        update(OutboxMessage)
        .where(col(OutboxMessage.status) == OutboxStatus.PENDING)
        .where(or_(*conditions))
        .values(status=OutboxStatus.DROPPED, last_error="withdrawn: the meeting changed")
    )
    if person_id is not None:
        query = query.where(col(OutboxMessage.person_id) == person_id)
    result = await session.exec(query)
    return int(result.rowcount or 0)


# -- reading -------------------------------------------------------------------------------------


async def load(session: AsyncSession, meeting_id: int) -> Meeting:
    meeting = await session.get(Meeting, meeting_id)
    if meeting is None:
        raise NotFound()
    return meeting


async def facts(session: AsyncSession, meeting: Meeting) -> tuple[Grid, Person]:
    """The meeting's grid and organiser."""
    grid = await session.get(Grid, meeting.grid_id)
    organiser = await session.get(Person, meeting.organiser_id)
    if grid is None or organiser is None:
        raise NotFound()
    return grid, organiser


async def invites_of(session: AsyncSession, meeting_id: int) -> list[tuple[MeetingInvite, Person]]:
    rows = await session.exec(
        select(MeetingInvite, Person)
        .join(Person, col(Person.id) == MeetingInvite.person_id)
        .where(MeetingInvite.meeting_id == meeting_id)
        .order_by(col(MeetingInvite.id))
    )
    return list(rows.all())


async def attendance(session: AsyncSession, meeting_id: int) -> Attendance:
    result = Attendance()
    for invite, person in await invites_of(session, meeting_id):
        if invite.rsvp == Rsvp.ATTENDING:
            result.attending.append(person)
        elif invite.rsvp == Rsvp.DECLINED:
            result.declined.append((person, invite.reason or ""))
        else:
            result.pending.append(person)
        if invite.checked_in_at is not None:
            result.checked_in.append(person)
    return result


async def my_invite(session: AsyncSession, meeting_id: int, person: Person) -> MeetingInvite:
    invite = (
        await session.exec(
            select(MeetingInvite).where(
                MeetingInvite.meeting_id == meeting_id, MeetingInvite.person_id == person.id
            )
        )
    ).one_or_none()
    if invite is None:
        raise NotInvited()
    return invite


async def upcoming_for(
    session: AsyncSession, person: Person, now: datetime, *, limit: int = 10
) -> list[tuple[Meeting, MeetingInvite | None]]:
    """Meetings a person is invited to or organises that have not ended, soonest first."""
    invited = select(MeetingInvite.meeting_id).where(MeetingInvite.person_id == person.id)
    meetings = (
        await session.exec(
            select(Meeting)
            .where(
                col(Meeting.cancelled_at).is_(None),
                col(Meeting.starts_at) > now - timedelta(hours=12),
                or_(col(Meeting.organiser_id) == person.id, col(Meeting.id).in_(invited)),
            )
            .order_by(col(Meeting.starts_at), col(Meeting.id))
            .limit(limit * 2)
        )
    ).all()
    found: list[tuple[Meeting, MeetingInvite | None]] = []
    for meeting in meetings:
        if ends_at(meeting) <= now:
            continue
        assert meeting.id is not None
        invite = (
            await session.exec(
                select(MeetingInvite).where(
                    MeetingInvite.meeting_id == meeting.id, MeetingInvite.person_id == person.id
                )
            )
        ).one_or_none()
        found.append((meeting, invite))
    return found[:limit]


# -- answering -----------------------------------------------------------------------------------


def ensure_open(meeting: Meeting, now: datetime) -> None:
    """Refuse changes and answers to a cancelled meeting or one that has started."""
    if meeting.cancelled_at is not None:
        raise MeetingClosed()
    if meeting.starts_at <= now:
        raise MeetingStarted()


async def answerable(
    session: AsyncSession, person: Person, meeting_id: int, now: datetime
) -> Meeting:
    """A meeting the person is invited to and may still answer."""
    meeting = await load(session, meeting_id)
    ensure_open(meeting, now)
    await my_invite(session, meeting_id, person)
    return meeting


async def rsvp(
    session: AsyncSession,
    notifier: MeetingNotifier,
    *,
    person: Person,
    meeting_id: int,
    attending: bool,
    reason: str | None = None,
    now: datetime,
) -> MeetingInvite:
    """Attend, or cannot attend with a reason. The organiser's card is updated; a person who
    cannot attend gets no reminders (and gets them back if they change their mind)."""
    meeting = await load(session, meeting_id)
    ensure_open(meeting, now)
    invite = await my_invite(session, meeting_id, person)
    assert person.id is not None
    was_declined = invite.rsvp == Rsvp.DECLINED
    if attending:
        invite.rsvp, invite.reason = Rsvp.ATTENDING, None
    else:
        invite.rsvp = Rsvp.DECLINED
        invite.reason = clean_line(reason, maximum=MAX_REASON, what=N_("reason for not attending"))
    invite.answered_at = now
    session.add(invite)
    await session.flush()
    grid, organiser = await facts(session, meeting)
    kinds = [RefKind.REMINDER.value, RefKind.CHECK_IN.value]
    if not attending:
        await withdraw(session, meeting_id, kinds, person.id)
    elif was_declined:
        await _timers(session, notifier, meeting, organiser, grid, person, now)
    await _summary(session, notifier, meeting, organiser, grid, now)
    return invite


async def check_in(
    session: AsyncSession,
    *,
    person: Person,
    meeting_id: int,
    settings: Settings,
    now: datetime,
) -> MeetingInvite:
    """Record attendance (签到), from :data:`CHECK_IN_OPENS` before the start to
    :data:`CHECK_IN_CLOSES` after it. Pressing twice keeps the first time."""
    meeting = await load(session, meeting_id)
    if meeting.cancelled_at is not None:
        raise MeetingClosed()
    invite = await my_invite(session, meeting_id, person)
    opens = meeting.starts_at - CHECK_IN_OPENS
    closes = meeting.starts_at + CHECK_IN_CLOSES
    if not opens <= now <= closes:
        raise CheckInClosed(opens=shown(opens, settings.tz), closes=shown(closes, settings.tz))
    if invite.checked_in_at is None:
        invite.checked_in_at = now
        if invite.rsvp != Rsvp.ATTENDING:
            invite.rsvp, invite.reason = Rsvp.ATTENDING, None
            invite.answered_at = invite.answered_at or now
        session.add(invite)
    return invite


# -- changing ------------------------------------------------------------------------------------


async def managed(
    session: AsyncSession,
    actor: Person,
    roles: Sequence[RoleInGrid],
    meeting_id: int,
    now: datetime,
) -> Meeting:
    """A meeting the actor may run: its organiser, or anyone who may organise in its grid."""
    meeting = await load(session, meeting_id)
    if not (actor.active and same(meeting.organiser_id, actor.id)):
        await authorize(session, actor, roles, Action.ORGANISE, meeting, now)
    return meeting


async def move_meeting(
    session: AsyncSession,
    notifier: MeetingNotifier,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    meeting_id: int,
    starts_at: datetime,
    now: datetime,
) -> Meeting:
    """Change the time: old timers withdrawn, new ones scheduled, every invitee told once."""
    meeting = await managed(session, actor, roles, meeting_id, now)
    ensure_open(meeting, now)
    if starts_at <= now:
        raise InvalidInput(N_("Please give a time in the future."))
    if starts_at == meeting.starts_at:
        raise InvalidInput(N_("The meeting is already at that time."))
    assert meeting.id is not None
    previous = meeting.starts_at
    meeting.starts_at = starts_at
    meeting.updated_at = now
    session.add(meeting)
    await withdraw(
        session,
        meeting.id,
        [RefKind.INVITATION, RefKind.REMINDER, RefKind.CHECK_IN, RefKind.ENDED],
    )
    grid, organiser = await facts(session, meeting)
    rows = await invites_of(session, meeting.id)
    for invite, person in rows:
        await notifier(
            session,
            _message(
                MeetingNotice.MOVED,
                meeting,
                person,
                grid,
                organiser,
                urgent=min(previous, starts_at) - now <= NEAR,
                expires_at=starts_at,
                previous_start=previous,
                rsvp=Rsvp(invite.rsvp),
            ),
            now,
        )
    coming = [person for invite, person in rows if invite.rsvp != Rsvp.DECLINED]
    await _schedule(session, notifier, meeting, organiser, grid, coming, now)
    await _summary(session, notifier, meeting, organiser, grid, now)
    session.add(
        AuditLog(
            at=now,
            actor_id=actor.id,
            action="meeting_moved",
            object_type="meeting",
            object_id=meeting.id,
            detail=f"{previous.isoformat()} -> {starts_at.isoformat()}",
        )
    )
    return meeting


async def cancel_meeting(
    session: AsyncSession,
    notifier: MeetingNotifier,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    meeting_id: int,
    now: datetime,
    following: bool = False,
) -> list[Meeting]:
    """Cancel a meeting (and, with ``following``, every later occurrence of its series):
    pending timers dropped, every invitee told once per meeting."""
    meeting = await managed(session, actor, roles, meeting_id, now)
    ensure_open(meeting, now)
    targets = [meeting]
    if following and meeting.series_id is not None:
        targets = list(
            (
                await session.exec(
                    select(Meeting)
                    .where(
                        Meeting.series_id == meeting.series_id,
                        col(Meeting.starts_at) >= meeting.starts_at,
                        col(Meeting.cancelled_at).is_(None),
                    )
                    .order_by(col(Meeting.starts_at))
                )
            ).all()
        )
    grid, organiser = await facts(session, meeting)
    for target in targets:
        assert target.id is not None
        told = target is meeting or target.starts_at - now <= NEAR
        invited = await _invitations_out(session, target.id)
        target.cancelled_at = now
        target.updated_at = now
        session.add(target)
        await withdraw(session, target.id)
        for invite, person in await invites_of(session, target.id):
            if not told and person.id not in invited:
                continue  # a later occurrence they were never invited to: nothing to take back
            await notifier(
                session,
                _message(
                    MeetingNotice.CANCELLED,
                    target,
                    person,
                    grid,
                    organiser,
                    urgent=target.starts_at - now <= NEAR,
                    expires_at=target.starts_at,
                    rsvp=Rsvp(invite.rsvp),
                ),
                now,
            )
        await _summary(session, notifier, target, organiser, grid, now)
    session.add(
        AuditLog(
            at=now,
            actor_id=actor.id,
            action="meeting_cancelled",
            object_type="meeting",
            object_id=meeting.id,
            detail=f"{len(targets)} occurrence(s)",
        )
    )
    return targets


async def _invitations_out(session: AsyncSession, meeting_id: int) -> set[int]:
    """Who has been sent the invitation to a meeting (the ids of those people)."""
    prefix = f"mt:{meeting_id}:{RefKind.INVITATION}:"
    rows = await session.exec(
        select(OutboxMessage.person_id).where(
            col(OutboxMessage.ref).startswith(prefix, autoescape=True),
            col(OutboxMessage.status) == OutboxStatus.SENT,
        )
    )
    return {person_id for person_id in rows.all() if person_id is not None}


# -- series --------------------------------------------------------------------------------------


async def extend_series(
    session: AsyncSession,
    notifier: MeetingNotifier,
    *,
    meeting: Meeting,
    settings: Settings,
    now: datetime,
) -> list[Meeting]:
    """Keep :data:`SERIES_AHEAD` occurrences of the meeting's series ahead of ``now``.

    New occurrences copy the latest one (title, place, duration, invitees) at the series'
    rhythm. A series whose latest occurrence was cancelled has stopped and is left alone.
    """
    if meeting.series_id is None or meeting.recurrence is None:
        return []
    series = list(
        (
            await session.exec(
                select(Meeting)
                .where(Meeting.series_id == meeting.series_id)
                .order_by(col(Meeting.starts_at))
            )
        ).all()
    )
    latest, first = series[-1], series[0]
    if latest.cancelled_at is not None:
        return []
    ahead = sum(1 for m in series if m.starts_at > now and m.cancelled_at is None)
    missing = SERIES_AHEAD - ahead
    if missing <= 0:
        return []
    assert latest.id is not None
    people = [person for _, person in await invites_of(session, latest.id)]
    grid, organiser = await facts(session, latest)
    rhythm = Recurrence(meeting.recurrence)
    starts = occurrences(first.starts_at, rhythm, len(series) + missing, settings.tz)[
        len(series) :
    ]
    created: list[Meeting] = []
    previous = latest.starts_at
    for starts_at in starts:
        occurrence = Meeting(
            organiser_id=latest.organiser_id,
            grid_id=latest.grid_id,
            title=latest.title,
            place=latest.place,
            starts_at=starts_at,
            duration_minutes=latest.duration_minutes,
            recurrence=latest.recurrence,
            series_id=latest.series_id,
            created_at=now,
            updated_at=now,
        )
        session.add(occurrence)
        await session.flush()
        await _open(
            session, notifier, occurrence, organiser, grid, people, now, max(previous, now)
        )
        previous = starts_at
        created.append(occurrence)
    return created
