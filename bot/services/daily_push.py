"""The worker's morning task push (每日任务推送) and the end-of-period quota reminders.

**The push.** Each working day from 08:00 local, every grid worker gets one message: today's
suggested visits (:func:`bot.services.quotas.plan_daily_push`), their open tickets by deadline
and today's meetings. The sweep that sends it runs every 15 minutes and sends only to workers
not yet claimed for today (:func:`quotas.claim_daily_pushes`, in the transaction that enqueues
the message), so a bot that was down at 08:00 sends it at its next tick, and a restart never
sends a second one. Nothing goes out before 08:00 or in quiet hours; a worker with nothing
to do gets nothing (claimed as ``empty``). A worker who blocked the bot or left is claimed as
``unreachable`` and their grid head is told, once, how many visits are waiting.

The words and buttons of the push are the chat's business: the caller passes a
:class:`PushRenderer` (the Telegram one lives in ``bot.telegram.visit_views``).

**The reminders.** Five working days before a month, quarter or year ends, each worker still
short (:func:`quotas.short_workers`) is reminded, and each grid head gets the list of their
workers still short — once per period, by the outbox ``ref`` ``qr:<person>:<month start>``
(``qrh:`` for heads).

**A problem found on a visit** becomes a ticket filed by the worker for the household's grid,
with the diary note as its description (:func:`report_problem`).
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any, NamedTuple, Protocol

from sqlalchemy import or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from bot.errors import NotAllowed, NotFound
from bot.i18n import N_, gettext_for, resolve_locale
from bot.services import (
    follow_ups,
    inspections,
    meetings,
    outbox,
    place_policy,
    quotas,
    tags,
    tickets,
    visits,
)
from bot.services.follow_ups import DueFollowUp
from bot.services.message_size import split_message
from bot.services.outbox import sent_refs
from bot.services.people import RoleInGrid, roles_of_many
from bot.services.periods import PeriodKind, local_midnight, period_start
from bot.services.permissions import Action, authorize, scope_paths
from bot.services.schedule import in_quiet_hours
from bot.services.ticket_notices import TicketNotifier
from bot.services.unreachable import heads_over_many
from bot.settings import Settings
from models import (
    OPEN_TICKET_STATES,
    DailyPush,
    Grid,
    Household,
    Meeting,
    MeetingInvite,
    OutboxLane,
    Person,
    Role,
    RoleAssignment,
    Ticket,
    TicketCategory,
    Visit,
)

PUSH_TIME = time(8, 0)  # local: the push is sent from 08:00 on
MAX_TICKETS = 10  # open tickets named in a push
MAX_HOUSEHOLDS_NAMED = 30  # in a head's "visits waiting" message
TICKET_CHUNK = 1_000  # ticket ids in one IN (…)

Markup = dict[str, Any]  # an inline keyboard in Bot API JSON


@dataclass(frozen=True)
class MorningPush:
    """What one worker is told in the morning."""

    worker: Person
    local_day: date
    plan: quotas.WorkerPlan | None
    tickets: tuple[Ticket, ...]
    meetings: tuple[Meeting, ...]
    composed_at: datetime  # when the push was made: a late one is not worded "good morning"
    visited: frozenset[int] = frozenset()  # suggested households visited since (done)
    closed: frozenset[int] = frozenset()  # tickets no longer open since (done)
    inspections: tuple[inspections.DueInspection, ...] = ()  # places due today (巡查, 复查)
    inspected: frozenset[int] = frozenset()  # places of the push inspected since (done)
    inspections_due: int = 0  # all places due today, named or not
    follow_ups: tuple[DueFollowUp, ...] = ()  # tagged people due (随访)
    followed: frozenset[int] = frozenset()  # person tags of the push followed up since (done)
    follow_ups_due: int = 0  # all follow-ups due this period, named or not

    @property
    def suggestions(self) -> tuple[quotas.Suggestion, ...]:
        return self.plan.suggestions if self.plan is not None else ()

    def content(self) -> dict[str, Any]:
        """What the push names, as stored in :attr:`models.DailyPush.content`."""
        return {
            "households": [[s.household_id, s.overdue] for s in self.suggestions],
            "tickets": [ticket.id for ticket in self.tickets],
            "meetings": [meeting.id for meeting in self.meetings],
            "inspections": [[i.place_id, i.kind, i.hazards] for i in self.inspections],
            "inspections_due": self.inspections_due,
            "follow_ups": [[f.person_tag_id, f.done, f.overdue] for f in self.follow_ups],
            "follow_ups_due": self.follow_ups_due,
        }

    @property
    def empty(self) -> bool:
        return not (
            self.suggestions
            or self.tickets
            or self.meetings
            or self.inspections
            or self.follow_ups
        )


class PushRenderer(Protocol):
    """Turns a push into messages (text, keyboard) in the worker's language."""

    def __call__(
        self, push: MorningPush, locale: str, settings: Settings
    ) -> list[tuple[str, Markup | None]]: ...


WORKER_UNREACHABLE = N_(
    "{name} (grid worker) cannot get today's task push: {reason}. "
    "{count} households are due for a visit today; please arrange them another way."
)
REASON_BLOCKED = N_("the bot cannot reach them")
REASON_LEFT = N_("they are no longer active")
REMINDER_TITLE = N_(
    "⏳ {days} working days left until {day}. Visits still to make in your households:"
)
REMINDER_LINE = N_("• {rule}: {count} households")
HEAD_REMINDER_TITLE = N_("⏳ {days} working days left until {day}. Workers still short of quota:")
HEAD_REMINDER_WORKER = N_("{name}:")
REMINDER_HINT = N_("Send /visit to log a visit, /quota to see where you stand.")


def locale_of(person: Person, settings: Settings) -> str:
    return resolve_locale(person.locale, person.telegram_language, settings.default_locale)


def reachable(person: Person) -> bool:
    return person.active and person.reachable and person.telegram_id is not None


def push_ref(worker_id: int, day: date) -> str:
    return f"dp:{worker_id}:{day.isoformat()}"


# --- the morning push ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PushRound:
    """What one round of the morning push did: the workers it took, the pushes it queued."""

    workers: int
    sent: int


async def send_daily_pushes(
    session: AsyncSession, now: datetime, settings: Settings, render: PushRenderer
) -> int:
    """Queue today's push for every worker who has not had it (in one transaction); return
    how many were queued. The scheduler goes in rounds instead (:func:`push_round`)."""
    return (await push_round(session, now, settings, render)).sent


async def push_round(
    session: AsyncSession,
    now: datetime,
    settings: Settings,
    render: PushRenderer,
    *,
    limit: int | None = None,
) -> PushRound:
    """Queue today's push for up to ``limit`` workers who have not had it (all of them with
    ``None``), lowest ids first: :func:`plan_round` and :func:`queue_round` in one session.

    Does nothing before 08:00 local, in quiet hours or on a day off. Safe to run often and
    from several processes: each (worker, day) is claimed once, so rounds in transactions of
    their own go through everyone; a round that takes fewer than ``limit`` workers was the
    last.
    """
    await quotas.ensure_default_rules(session, now, tz=settings.tz)
    planned = await plan_round(session, now, settings, limit=limit)
    return await queue_round(session, planned, now, settings, render)


@dataclass(frozen=True)
class PlannedRound:
    """A round of the morning push worked out, not yet claimed or queued."""

    today: date
    workers: int  # taken this round: fewer than the limit means it was the last
    pushes: list[MorningPush]
    roles: dict[int, list[RoleInGrid]]
    outcomes: dict[int, str]  # worker id -> sent | empty | unreachable


async def plan_round(
    session: AsyncSession, now: datetime, settings: Settings, *, limit: int | None = None
) -> PlannedRound | None:
    """Work out the next round (reads only: on SQLite it can run in a read-only session and
    take no write lock). Set-based: a fixed number of queries per round (the plan, roles, open
    tickets and meetings are each read for the round's workers at once). None when there is
    nothing to push now (before 08:00, quiet hours, a day off, everyone done)."""
    local = now.astimezone(settings.tz)
    if local.time() < PUSH_TIME or in_quiet_hours(now, settings):
        return None
    calendar = await tickets.calendar_for(session, await tickets.current_policy(session))
    today = local.date()
    if not calendar.is_workday(today):
        return None
    pending = await _workers_not_pushed(session, today, limit)
    if not pending:
        return None
    worker_ids = [p.id or 0 for p in pending]
    plans = await quotas.plan_daily_push(
        session, now, calendar.is_workday, worker_ids=worker_ids, tz=settings.tz
    )
    roles = await roles_of_many(session, worker_ids)
    pushes = await compose_pushes(session, pending, plans, roles, today, now, settings)
    outcomes: dict[int, str] = {}
    for push in pushes:
        assert push.worker.id is not None
        if not reachable(push.worker):
            outcomes[push.worker.id] = "unreachable"
        else:
            outcomes[push.worker.id] = "empty" if push.empty else "sent"
    return PlannedRound(today, len(pending), pushes, roles, outcomes)


async def queue_round(
    session: AsyncSession,
    planned: PlannedRound | None,
    now: datetime,
    settings: Settings,
    render: PushRenderer,
) -> PushRound:
    """Claim the round's (worker, day) pairs and queue the pushes of those claimed — the
    short writing part of a round; a pair another process claimed first is left to it."""
    if planned is None:
        return PushRound(0, 0)
    pushes, outcomes = planned.pushes, planned.outcomes
    contents = {push.worker.id or 0: push.content() for push in pushes if not push.empty}
    # rendered before the claim takes the write lock, and in a worker thread: a round's
    # messages are tens of milliseconds of CPU that neither the lock nor the loop waits for
    to_send = [push for push in pushes if outcomes[push.worker.id or 0] == "sent"]
    rendered = await asyncio.to_thread(_render_each, to_send, settings, render)
    claimed = await quotas.claim_daily_pushes(session, planned.today, now, outcomes, contents)
    unreachable: dict[int, MorningPush] = {}
    rows: list[dict[str, Any]] = []
    sent = 0
    for push in pushes:
        worker_id = push.worker.id or 0
        if worker_id not in claimed:
            continue  # another process claimed it first
        if outcomes[worker_id] == "unreachable":
            if push.suggestions:
                unreachable[worker_id] = push
        elif outcomes[worker_id] == "sent":
            rows += push_rows(push, rendered[worker_id], now)
            sent += 1
    await outbox.insert_rows(session, rows)
    if unreachable:
        await _tell_heads_instead(session, unreachable, planned.roles, now, settings)
    return PushRound(planned.workers, sent)


def _render_each(
    pushes: Sequence[MorningPush], settings: Settings, render: PushRenderer
) -> dict[int, list[tuple[str, Markup | None]]]:
    """Each push's messages, by worker id (plain data in, plain data out: no session)."""
    return {
        push.worker.id or 0: render(push, locale_of(push.worker, settings), settings)
        for push in pushes
    }


async def compose_pushes(
    session: AsyncSession,
    workers: Sequence[Person],
    plans: Mapping[int, quotas.WorkerPlan],
    roles: Mapping[int, Sequence[RoleInGrid]],
    today: date,
    now: datetime,
    settings: Settings,
) -> list[MorningPush]:
    """Each worker's push: their plan, the open tickets they may handle (soonest deadline
    first, as :func:`tickets.tickets_in_scope`) and today's meetings (as
    :func:`meetings.upcoming_for`) — read for all workers in two queries."""
    ends = local_midnight(today + timedelta(days=1), settings.tz)
    open_tickets = await _open_tickets_by_worker(session, workers, roles)
    todays = await _meetings_by_person(session, now, ends)
    policy = await place_policy.current_policy(session)
    scopes = {w.id or 0: inspections.inspector_paths(roles.get(w.id or 0, ())) for w in workers}
    totals: dict[int, int] = {}
    due = await inspections.due_by_worker(
        session, scopes, policy, ends, limit=inspections.MAX_IN_PUSH, totals=totals
    )
    owed: dict[int, int] = {}
    followed = await follow_ups.due_by_worker(
        session,
        [w.id or 0 for w in workers],
        await tags.current_policy(session),
        now,
        tz=settings.tz,
        limit=follow_ups.MAX_IN_PUSH,
        totals=owed,
    )
    return [
        MorningPush(
            worker,
            today,
            plans.get(worker.id or 0),
            tuple(open_tickets.get(worker.id or 0, ())),
            tuple(todays.get(worker.id or 0, ())),
            composed_at=now,
            inspections=tuple(due.get(worker.id or 0, [])),
            inspections_due=totals.get(worker.id or 0, 0),
            follow_ups=tuple(followed.get(worker.id or 0, ())),
            follow_ups_due=owed.get(worker.id or 0, 0),
        )
        for worker in workers
    ]


async def _open_tickets_by_worker(
    session: AsyncSession, workers: Sequence[Person], roles: Mapping[int, Sequence[RoleInGrid]]
) -> dict[int, list[Ticket]]:
    """Up to :data:`MAX_TICKETS` open tickets per worker, in the grids where they may handle
    tickets or owned by their department. One read of the open tickets in the round's scopes
    (ids and grid paths only), matched in memory by grid path prefix (``/1/4/17/`` lies under
    ``/1/``, ``/1/4/`` and ``/1/4/17/``); then the tickets chosen are read whole. A round's
    read is the size of its workers' grids, not the city's open tickets."""
    scopes: dict[int, tuple[list[str], list[int]]] = {}
    for worker in workers:
        held = roles.get(worker.id or 0, ())
        paths = scope_paths(held, Action.HANDLE)
        departments = [r.department_id for r in held if r.department_id is not None]
        if paths or departments:
            scopes[worker.id or 0] = (paths, departments)
    if not scopes:
        return {}
    all_departments = sorted({d for _, departments in scopes.values() for d in departments})
    asked = {p for paths, _ in scopes.values() for p in paths}
    in_scope = [col(Grid.path).startswith(path) for path in _outermost(asked)]
    if all_departments:
        in_scope.append(col(Ticket.owner_department_id).in_(all_departments))
    rows = await session.exec(
        select(Ticket.id, Ticket.owner_department_id, Grid.path)
        .join(Grid, col(Grid.id) == Ticket.grid_id)
        .where(col(Ticket.state).in_(list(OPEN_TICKET_STATES)), or_(*in_scope))
        .order_by(
            col(Ticket.next_deadline_at).is_(None), col(Ticket.next_deadline_at), col(Ticket.id)
        )
    )
    under: dict[str, list[tuple[int, int]]] = {}  # path prefix -> (rank, ticket id), by rank
    of_department: dict[int, list[tuple[int, int]]] = {}
    scopes_above: dict[str, list[str]] = {}  # a grid's path -> the paths asked for above it
    for rank, (ticket_id, department_id, path) in enumerate(rows):
        entry = (rank, ticket_id or 0)
        if path not in scopes_above:
            parts = [part for part in path.split("/") if part]
            above = ("/" + "/".join(parts[:depth]) + "/" for depth in range(1, len(parts) + 1))
            scopes_above[path] = [prefix for prefix in above if prefix in asked]
        for prefix in scopes_above[path]:
            under.setdefault(prefix, []).append(entry)
        if department_id is not None:
            of_department.setdefault(department_id, []).append(entry)
    chosen_ids: dict[int, list[int]] = {}
    for worker_id, (paths, departments) in scopes.items():
        lists = [under.get(p, [])[:MAX_TICKETS] for p in paths]
        lists += [of_department.get(d, [])[:MAX_TICKETS] for d in departments]
        chosen = {rank: ticket_id for ranked in lists for rank, ticket_id in ranked}
        chosen_ids[worker_id] = [chosen[rank] for rank in sorted(chosen)[:MAX_TICKETS]]
    wanted = sorted({ticket_id for ids in chosen_ids.values() for ticket_id in ids})
    read: dict[int, Ticket] = {}
    for start in range(0, len(wanted), TICKET_CHUNK):
        for ticket in await session.exec(
            select(Ticket).where(col(Ticket.id).in_(wanted[start : start + TICKET_CHUNK]))
        ):
            read[ticket.id or 0] = ticket
    return {worker_id: [read[i] for i in ids] for worker_id, ids in chosen_ids.items()}


def _outermost(paths: set[str]) -> list[str]:
    """The paths not under another of them (``/1/4/`` is under ``/1/``)."""
    kept: list[str] = []
    for path in sorted(paths):
        if not kept or not path.startswith(kept[-1]):
            kept.append(path)
    return kept


async def _meetings_by_person(
    session: AsyncSession, now: datetime, ends: datetime
) -> dict[int, list[Meeting]]:
    """Meetings that have not ended and start before ``ends``, for their organiser and each
    person invited, soonest first."""
    todays = [
        meeting
        for meeting in (
            await session.exec(
                select(Meeting)
                .where(
                    col(Meeting.cancelled_at).is_(None),
                    col(Meeting.starts_at) > now - timedelta(hours=12),
                    col(Meeting.starts_at) < ends,
                )
                .order_by(col(Meeting.starts_at), col(Meeting.id))
            )
        ).all()
        if meetings.ends_at(meeting) > now
    ]
    if not todays:
        return {}
    invited = await session.exec(
        select(MeetingInvite.meeting_id, MeetingInvite.person_id).where(
            col(MeetingInvite.meeting_id).in_([m.id for m in todays])
        )
    )
    people_of: dict[int, set[int]] = {}
    for meeting_id, person_id in invited:
        people_of.setdefault(meeting_id, set()).add(person_id)
    found: dict[int, list[Meeting]] = {}
    for meeting in todays:
        for person_id in people_of.get(meeting.id or 0, set()) | {meeting.organiser_id}:
            found.setdefault(person_id, []).append(meeting)
    return found


def push_rows(
    push: MorningPush, parts: Sequence[tuple[str, Markup | None]], now: datetime
) -> list[dict[str, Any]]:
    """The rendered parts as outbox rows: not urgent (quiet hours hold them), stale after
    the day; the first carries the push's ``ref``."""
    worker = push.worker
    assert worker.telegram_id is not None and worker.id is not None
    ref = push_ref(worker.id, push.local_day)
    return [
        outbox.text_row(
            chat_id=worker.telegram_id,
            text=text,
            now=now,
            reply_markup=keyboard,
            person_id=worker.id,
            ref=ref if index == 0 else f"{ref}#{index + 1}",
            expires_at=now + timedelta(hours=16),
        )
        for index, (text, keyboard) in enumerate(parts)
    ]


def _pending_ids(today: date) -> SelectOfScalar[Any]:
    """Everyone who serves households or holds an active worker role, not yet claimed today."""
    serving = select(Household.worker_id).where(col(Household.worker_id).is_not(None))
    holding = select(RoleAssignment.person_id).where(
        RoleAssignment.role == Role.WORKER, col(RoleAssignment.active).is_(True)
    )
    claimed = select(DailyPush.worker_id).where(DailyPush.day == today)
    return select(Person.id).where(
        col(Person.id).in_(serving) | col(Person.id).in_(holding),
        col(Person.id).not_in(claimed),
    )


async def _workers_not_pushed(
    session: AsyncSession, today: date, limit: int | None
) -> list[Person]:
    rows = await session.exec(
        select(Person)
        .where(col(Person.id).in_(_pending_ids(today)))
        .order_by(col(Person.id))
        .limit(limit)
    )
    return list(rows.all())


async def _tell_heads_instead(
    session: AsyncSession,
    pushes: Mapping[int, MorningPush],
    roles: Mapping[int, Sequence[RoleInGrid]],
    now: datetime,
    settings: Settings,
) -> None:
    """Workers out of reach: the heads over each hear how many visits wait for them today."""
    held = {worker_id: roles.get(worker_id, ()) for worker_id in pushes}
    left = [worker_id for worker_id, own in held.items() if not own]
    # someone who left holds no role: reach the heads over the grid of their households
    held.update(await _household_grid_roles(session, left))
    heads = await heads_over_many(session, held)
    for worker_id, push in pushes.items():
        worker, plan = push.worker, push.suggestions
        reason = REASON_LEFT if not worker.active else REASON_BLOCKED
        for head, _ in heads.get(worker_id, []):
            assert head.telegram_id is not None
            locale = locale_of(head, settings)
            lines = [
                gettext_for(
                    locale,
                    WORKER_UNREACHABLE,
                    name=worker.name,
                    reason=gettext_for(locale, reason),
                    count=len(plan),
                )
            ]
            lines.extend(
                f"• {s.head_name} · {s.address} ({s.code})" for s in plan[:MAX_HOUSEHOLDS_NAMED]
            )
            for part in split_message("\n".join(lines)):
                outbox.send_text(
                    session,
                    chat_id=head.telegram_id,
                    text=part,
                    now=now,
                    parse_mode=None,  # names and addresses as typed: plain text
                    person_id=head.id,
                )


async def _household_grid_roles(
    session: AsyncSession, worker_ids: Sequence[int]
) -> dict[int, list[RoleInGrid]]:
    """For workers who hold no role any more: a worker role over the grid of (one of) the
    households still assigned to them, so the heads over that grid can be found."""
    if not worker_ids:
        return {}
    rows = await session.exec(
        select(Household.worker_id, Grid)
        .join(Grid, col(Grid.id) == Household.grid_id)
        .where(col(Household.worker_id).in_(list(worker_ids)))
        .order_by(col(Household.worker_id), col(Household.id))
    )
    found: dict[int, list[RoleInGrid]] = {}
    for worker_id, grid in rows:
        if worker_id is not None and worker_id not in found and grid.id is not None:
            found[worker_id] = [
                RoleInGrid(Role.WORKER, grid.id, grid.name, grid.code, grid.tier, grid.path)
            ]
    return found


# --- the end-of-period reminders ----------------------------------------------------------------


async def send_quota_reminders(session: AsyncSession, now: datetime, settings: Settings) -> int:
    """Remind workers short of quota, and their heads, five working days before a period
    ends — once per period and person. Returns how many messages were queued."""
    if in_quiet_hours(now, settings):
        return 0
    calendar = await tickets.calendar_for(session, await tickets.current_policy(session))
    await quotas.ensure_default_rules(session, now, tz=settings.tz)
    short = await quotas.short_workers(session, now, calendar.is_workday, tz=settings.tz)
    if not short:
        return 0
    people = {
        p.id: p
        for p in (
            await session.exec(
                select(Person).where(col(Person.id).in_([s.worker_id for s in short]))
            )
        ).all()
    }
    month = period_start(PeriodKind.MONTH, short[0].last_day).isoformat()
    worker_refs = {s.worker_id: f"qr:{s.worker_id}:{month}" for s in short}
    done = await sent_refs(session, worker_refs.values())
    queued = 0
    ids = [worker_id for worker_id in people if worker_id is not None]
    roles: dict[int, list[RoleInGrid]] = await roles_of_many(session, ids)
    roles.update(await _household_grid_roles(session, [i for i in ids if i not in roles]))
    heads = await heads_over_many(session, roles)
    by_head: dict[int, tuple[Person, list[quotas.ShortWorker]]] = {}
    for item in short:
        worker = people.get(item.worker_id)
        if worker is None or worker.id is None:
            continue
        for head, _ in heads.get(worker.id, []):
            assert head.id is not None
            by_head.setdefault(head.id, (head, []))[1].append(item)
        if worker_refs[item.worker_id] in done or not reachable(worker):
            continue
        _remind(session, worker, [item], worker_refs[item.worker_id], now, settings, people)
        queued += 1
    head_refs = {head_id: f"qrh:{head_id}:{month}" for head_id in by_head}
    done = await sent_refs(session, head_refs.values())
    for head_id, (head, items) in by_head.items():
        if head_refs[head_id] in done:
            continue
        _remind(session, head, items, head_refs[head_id], now, settings, people)
        queued += 1
    return queued


def _remind(
    session: AsyncSession,
    person: Person,
    items: Sequence[quotas.ShortWorker],
    ref: str,
    now: datetime,
    settings: Settings,
    people: dict[int | None, Person],
) -> None:
    assert person.telegram_id is not None
    locale = locale_of(person, settings)
    first = items[0]
    own = len(items) == 1 and first.worker_id == person.id
    title = REMINDER_TITLE if own else HEAD_REMINDER_TITLE
    lines = [
        gettext_for(
            locale, title, days=first.working_days_left, day=first.last_day.strftime("%m-%d")
        )
    ]
    for item in items:
        if not own:
            worker = people.get(item.worker_id)
            lines.append(
                gettext_for(locale, HEAD_REMINDER_WORKER, name=worker.name if worker else "—")
            )
        lines.extend(
            gettext_for(
                locale,
                REMINDER_LINE,
                rule=gettext_for(locale, shortfall.rule_name),
                count=shortfall.households,
            )
            for shortfall in item.shortfalls
        )
    if own:
        lines.append(gettext_for(locale, REMINDER_HINT))
    for index, part in enumerate(split_message("\n".join(lines))):
        outbox.send_text(
            session,
            chat_id=person.telegram_id,
            text=part,
            now=now,
            parse_mode=None,
            person_id=person.id,
            ref=ref if index == 0 else f"{ref}#{index + 1}",
            lane=OutboxLane.BULK,
        )


# --- choosing a household for /visit -------------------------------------------------------------

SEARCH_LIMIT = 50  # characters of a search that are used


class HouseholdRow(NamedTuple):
    """A household in /visit's list."""

    household: Household
    due: bool  # still owes a visit this period
    visited_today: bool  # someone logged a visit to it today (not a suggestion any more)


@dataclass(frozen=True)
class HouseholdChoice:
    """A page of the households a worker may log a visit for, most urgent first."""

    rows: tuple[HouseholdRow, ...]
    page: int
    pages: int
    total: int


def clean_search(text: str | None) -> str:
    """What a worker typed to find a household: NFKC, printable, trimmed, at most 50."""
    return quotas.clean_text(unicodedata.normalize("NFKC", text or ""))[:SEARCH_LIMIT].strip()


_WORD = re.compile(r"[0-9A-Za-z]+")


def match_rank(household: Household, words: str) -> int:
    """How well ``household`` matches a search: 0 exact, 1 prefix, 2 contains, 3 not at all.

    Compared, ignoring case: the number (户编号), the head's name, the whole address, and
    each part of the address — what spaces separate and each run of digits or Latin letters
    in it — so "302" is an exact match for "… 1单元 302" (and for "1单元302"), a prefix
    match for "… 3021", and only contains "1302" or a number with 302 inside it."""
    query = words.casefold()
    if not query:
        return 0
    address = household.address.casefold()
    fields = [household.code.casefold(), household.head_name.casefold(), address]
    parts = fields + address.split() + _WORD.findall(address)
    if query in parts:
        return 0
    if any(part.startswith(query) for part in parts):
        return 1
    if any(query in field for field in fields):
        return 2
    return 3


async def households_to_visit(
    session: AsyncSession,
    worker: Person,
    roles: Sequence[RoleInGrid],
    now: datetime,
    *,
    query: str = "",
    page: int = 0,
    page_size: int = 8,
    tz: tzinfo,
) -> HouseholdChoice:
    """The worker's own households (or, for staff with none, those in the grids they may
    visit), matching ``query`` in name, address or number — exact matches first, then
    those that begin with it, then those that contain it (:func:`match_rank`). Within
    each: today's suggestions first, then other key households still due, then those due,
    then the rest, and last those visited today (never a suggestion again the same day)."""
    assert worker.id is not None
    words = clean_search(query)
    own = col(Household.worker_id) == worker.id
    has_own = (await session.exec(select(Household.id).where(own).limit(1))).first()
    where: list[Any] = [own]
    if has_own is None:
        paths = scope_paths(roles, Action.VISIT)
        if not paths:
            raise NotAllowed(N_("This command is for grid staff."))
        where = [
            col(Household.grid_id).in_(
                select(Grid.id).where(or_(*(col(Grid.path).startswith(p) for p in paths)))
            )
        ]
    if words:
        where.append(
            or_(
                col(Household.head_name).contains(words, autoescape=True),
                col(Household.address).contains(words, autoescape=True),
                col(Household.code).contains(words, autoescape=True),
            )
        )
    found = list((await session.exec(select(Household).where(*where))).all())
    plan = (await quotas.plan_daily_push(session, now, worker_ids=[worker.id], tz=tz)).get(
        worker.id
    )
    suggested = {s.household_id: i for i, s in enumerate(plan.suggestions if plan else ())}
    due = {
        item.household_id
        for item in await quotas.due_pairs(session, now, worker_ids=[worker.id], tz=tz)
    }
    visited = set(await visits.visited_today(session, [h.id or 0 for h in found], now, tz))

    def order(household: Household) -> tuple[int, int, int, str, str]:
        hid = household.id or 0
        match = match_rank(household, words)
        if hid in visited:
            return match, 4, 0, household.address, household.code
        if hid in suggested:
            return match, 0, suggested[hid], "", ""
        rank = (1 if household.is_key else 2) if hid in due else 3
        return match, rank, 0, household.address, household.code

    found.sort(key=order)
    pages = max(1, -(-len(found) // page_size))
    page = min(max(page, 0), pages - 1)
    chosen = found[page * page_size : (page + 1) * page_size]
    return HouseholdChoice(
        tuple(HouseholdRow(h, (h.id or 0) in due, (h.id or 0) in visited) for h in chosen),
        page,
        pages,
        len(found),
    )


async def visitable(
    session: AsyncSession,
    worker: Person,
    roles: Sequence[RoleInGrid],
    household_id: int,
    now: datetime,
) -> Household:
    """The household, if ``worker`` may log a visit to it (a forged button is refused)."""
    household = await session.get(Household, household_id)
    if household is None:
        raise NotFound(N_("That household is not in the register."))
    await authorize(session, worker, roles, Action.VISIT, household, now)
    return household


async def household_named(session: AsyncSession, household_id: int) -> Household:
    household = await session.get(Household, household_id)
    if household is None:
        raise NotFound(N_("That household is not in the register."))
    return household


async def household_by_code(session: AsyncSession, text: str) -> Household:
    """The household whose number (户编号) is ``text`` (full-width digits accepted)."""
    number = clean_search(text).upper()
    household = (
        (await session.exec(select(Household).where(col(Household.code) == number))).first()
        if number
        else None
    )
    if household is None:
        raise NotFound(N_("No household has the number “{code}”."), code=number[:24] or "—")
    return household


# --- a problem found on a visit -----------------------------------------------------------------


async def report_problem(
    session: AsyncSession,
    notifier: TicketNotifier,
    *,
    worker: Person,
    visit_id: int,
    category: TicketCategory,
    settings: Settings,
    now: datetime,
) -> Ticket:
    """File the problem a worker found on their visit: a ticket for the household's grid,
    the diary note as its description, the visit linked to it (``Visit.ticket_id``)."""
    visit = await session.get(Visit, visit_id)
    household = None if visit is None else await session.get(Household, visit.household_id)
    if visit is None or household is None or visit.withdrawn_at is not None:
        raise NotFound(N_("That visit is not in the diary."))
    if visit.worker_id != worker.id:
        raise NotAllowed(N_("Only the worker who made the visit can report what they found."))
    if visit.ticket_id is not None:
        raise NotAllowed(N_("A ticket was already filed for this visit."))
    grid = await session.get(Grid, household.grid_id)
    assert grid is not None
    ticket = await tickets.file_ticket(
        session,
        notifier,
        reporter=worker,
        grid=grid,
        report=tickets.Report(
            category=category,
            description=visit.note,
            address=household.address,
            latitude=visit.latitude,
            longitude=visit.longitude,
            household_id=household.id,
            photo_file_ids=(visit.photo_file_id,) if visit.photo_file_id else (),
        ),
        settings=settings,
        now=now,
    )
    visit.ticket_id = ticket.id
    session.add(visit)
    return ticket
