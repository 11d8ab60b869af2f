"""The daily push kept current: one message per worker per day, edited as its items are done.

A visit logged (or withdrawn) for a household changes the push of the worker who serves it:
the household is struck through and loses its button, the counts move. The push is rebuilt
from what it named when it was made (:attr:`models.DailyPush.content`) and what has happened
since, rendered again, and each of its messages whose text or buttons changed is edited in
place through the outbox (``editMessageText`` with ``edit_ref``: the sender finds the
message id Telegram gave the push when it was sent). A message that would not change is not
touched — Telegram refuses an edit that changes nothing. A push never delivered (dropped as
stale, refused) is left alone, and an edit goes stale when the push does.

Also here: what the chat needs to know before a visit is logged — whether the household was
already visited today (:func:`visit_target`), so that a second visit is asked about first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy import or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services import (
    daily_push,
    follow_ups,
    inspections,
    outbox,
    place_policy,
    quotas,
    tags,
    visits,
)
from bot.services.daily_push import MorningPush, PushRenderer, locale_of, push_ref, reachable
from bot.services.people import RoleInGrid
from bot.services.periods import local_midnight
from bot.settings import Settings
from models import (
    OPEN_TICKET_STATES,
    DailyPush,
    Household,
    Meeting,
    OutboxLane,
    OutboxMessage,
    OutboxStatus,
    Person,
    Place,
    Ticket,
    Visit,
    VisitKind,
)

SHOWN = (OutboxStatus.PENDING, OutboxStatus.SENT)  # rows whose content is (or will be) seen


@dataclass(frozen=True)
class VisitTarget:
    """A household a worker may log a visit for, and its latest visit today, if any."""

    household: Household
    visited_today: Visit | None


async def visit_target(
    session: AsyncSession,
    worker: Person,
    roles: Sequence[RoleInGrid],
    household_id: int,
    now: datetime,
    *,
    tz: tzinfo,
) -> VisitTarget:
    """The household (a forged id is refused, see :func:`daily_push.visitable`) and whether
    it was visited today."""
    household = await daily_push.visitable(session, worker, roles, household_id, now)
    today = await visits.visited_today(session, [household.id or 0], now, tz)
    return VisitTarget(household, today.get(household.id or 0))


async def log_visit(
    session: AsyncSession,
    worker: Person,
    roles: Sequence[RoleInGrid],
    household_id: int,
    kind: str | VisitKind,
    note: str,
    now: datetime,
    *,
    settings: Settings,
    render: PushRenderer,
) -> visits.VisitResult:
    """Log a visit (:func:`visits.log_visit`) and bring the household's worker's push up to
    date."""
    result = await visits.log_visit(
        session, worker, roles, household_id, kind, note, now, tz=settings.tz
    )
    await refresh_push_of(session, result.household, now, settings, render)
    return result


async def withdraw_visit(
    session: AsyncSession,
    person: Person,
    roles: Sequence[RoleInGrid],
    visit_id: int,
    now: datetime,
    *,
    settings: Settings,
    render: PushRenderer,
) -> Visit:
    """Withdraw a visit (:func:`visits.withdraw_visit`); the household is open again in
    today's push if no other visit today remains."""
    visit = await visits.withdraw_visit(session, person, roles, visit_id, now, tz=settings.tz)
    household = await session.get(Household, visit.household_id)
    if household is not None:
        await refresh_push_of(session, household, now, settings, render)
    return visit


async def refresh_push_of(
    session: AsyncSession,
    household: Household,
    now: datetime,
    settings: Settings,
    render: PushRenderer,
) -> int:
    """Refresh today's push of the worker who serves ``household`` (see :func:`refresh_push`)."""
    if household.worker_id is None:
        return 0
    worker = await session.get(Person, household.worker_id)
    return 0 if worker is None else await refresh_push(session, worker, now, settings, render)


async def refresh_push(
    session: AsyncSession,
    worker: Person,
    now: datetime,
    settings: Settings,
    render: PushRenderer,
) -> int:
    """Queue the edits that bring ``worker``'s push of today up to date; return how many.

    Nothing is queued for a worker with no push today (or one made before pushes kept
    their content), for a push that was dropped or refused, nor for a message whose text
    and buttons would stay the same."""
    if worker.id is None or worker.telegram_id is None or not reachable(worker):
        return 0
    day = now.astimezone(settings.tz).date()
    record = await session.get(DailyPush, (worker.id, day))
    if record is None or record.outcome != "sent" or not record.content:
        return 0
    ref = push_ref(worker.id, day)
    rows = await _push_rows(session, worker.telegram_id, ref)
    first = next((row for row in rows if row.ref == ref), None)
    if first is None or first.status not in SHOWN:
        return 0
    push = await rebuild(session, worker, record, now, settings.tz)
    parts = render(push, locale_of(worker, settings), settings)
    queued = 0
    for index, (text, keyboard) in enumerate(parts):
        part_ref = ref if index == 0 else f"{ref}#{index + 1}"
        shown = _shown(rows, part_ref)
        if shown is None:  # the push has grown a message: send it
            outbox.send_text(
                session,
                chat_id=worker.telegram_id,
                text=text,
                now=now,
                reply_markup=keyboard,
                person_id=worker.id,
                ref=part_ref,
                lane=OutboxLane.NOTICE,
                expires_at=first.expires_at,
            )
        elif shown.get("text") == text and shown.get("reply_markup") == keyboard:
            continue
        else:
            payload: dict[str, Any] = {
                "chat_id": worker.telegram_id,
                "text": text,
                "parse_mode": "HTML",
            }
            if keyboard is not None:  # without one, Telegram takes the buttons away
                payload["reply_markup"] = keyboard
            outbox.enqueue(
                session,
                chat_id=worker.telegram_id,
                method="editMessageText",
                payload=payload,
                now=now,
                person_id=worker.id,
                edit_ref=part_ref,
                lane=OutboxLane.NOTICE,
                expires_at=first.expires_at,
            )
        queued += 1
    return queued


async def rebuild(
    session: AsyncSession, worker: Person, record: DailyPush, now: datetime, tz: tzinfo
) -> MorningPush:
    """The push as it stands now: what it named when made, with what has been done since
    (households visited today, tickets no longer open) and the worker's current count of
    households still due."""
    content = record.content or {}
    overdue = {int(hid): bool(late) for hid, late in content.get("households", [])}
    households = await _by_id(session, Household, list(overdue))
    suggestions = tuple(
        quotas.Suggestion(
            household.id or 0,
            household.code,
            household.head_name,
            household.address,
            household.is_key,
            overdue[household.id or 0],
            (),
            None,
        )
        for household in households
    )
    visited = await visits.visited_today(session, list(overdue), now, tz)
    plans = await quotas.plan_daily_push(session, now, worker_ids=[worker.id or 0], tz=tz)
    plan = plans.get(worker.id or 0)
    tickets = await _by_id(session, Ticket, [int(i) for i in content.get("tickets", [])])
    meetings = await _by_id(session, Meeting, [int(i) for i in content.get("meetings", [])])
    due = {int(item[0]): (str(item[1]), int(item[2])) for item in content.get("inspections", [])}
    places = await _by_id(session, Place, list(due))
    policy = await place_policy.current_policy(session)
    named = inspections.for_push(
        [
            inspections.DuePlace(p, due[p.id or 0][0], record.created_at, due[p.id or 0][1])
            for p in places
        ],
        policy,
    )
    since = local_midnight(record.day, tz)
    inspected = await inspections.inspected_since(session, list(due), since)
    named_follow_ups = await follow_ups.named_in_push(
        session, content.get("follow_ups", []), await tags.current_policy(session)
    )
    followed = await follow_ups.followed_since(
        session, [f.person_tag_id for f in named_follow_ups], since
    )
    return MorningPush(
        worker,
        record.day,
        quotas.WorkerPlan(
            worker.id or 0,
            record.day,
            plan.due_households if plan is not None else 0,
            len(suggestions),
            (),
            suggestions,
        ),
        tuple(tickets),
        tuple(m for m in meetings if m.cancelled_at is None),
        composed_at=record.created_at,
        visited=frozenset(visited),
        closed=frozenset(t.id or 0 for t in tickets if t.state not in OPEN_TICKET_STATES),
        inspections=named,
        inspected=frozenset(inspected),
        inspections_due=int(content.get("inspections_due", len(named))),
        follow_ups=named_follow_ups,
        followed=followed,
        follow_ups_due=int(content.get("follow_ups_due", len(named_follow_ups))),
    )


async def _by_id(session: AsyncSession, model: Any, ids: list[int]) -> list[Any]:
    """The rows of ``model`` with ``ids``, in the order of ``ids`` (missing ones left out)."""
    if not ids:
        return []
    found = {row.id: row for row in await session.exec(select(model).where(model.id.in_(ids)))}
    return [found[i] for i in ids if i in found]


async def _push_rows(session: AsyncSession, chat_id: int, ref: str) -> list[OutboxMessage]:
    """The outbox rows that sent or edited the push's messages, oldest first."""
    parts = f"{ref}#"
    rows = await session.exec(
        select(OutboxMessage)
        .where(
            OutboxMessage.chat_id == chat_id,
            or_(
                col(OutboxMessage.ref) == ref,
                col(OutboxMessage.ref).startswith(parts, autoescape=True),
                col(OutboxMessage.edit_ref) == ref,
                col(OutboxMessage.edit_ref).startswith(parts, autoescape=True),
            ),
        )
        .order_by(col(OutboxMessage.id))
    )
    return list(rows.all())


def _shown(rows: Sequence[OutboxMessage], part_ref: str) -> dict[str, Any] | None:
    """What the message ``part_ref`` shows (or will, once what is queued is sent): the
    payload of the last row that sent or edited it; ``None`` if it was never sent."""
    shown: dict[str, Any] | None = None
    for row in rows:
        if row.status in SHOWN and part_ref in (row.ref, row.edit_ref):
            shown = row.payload
    return shown
