"""Delivering a broadcast (宣传 / 应急通知): recipients queued in rounds, progress, receipts.

A confirmed broadcast is written out in rounds of :data:`ROUND` people, each round one short
transaction that writes the people's recipient rows (the key is broadcast × person: nobody is
written twice), queues their messages in the outbox and moves the broadcast's ``cursor`` on —
the cursor moves only from the value the round read, so two processes racing over the same
round cannot both commit it. A restart goes on from the cursor. The outbox does the rest at
Telegram's pace: a normal broadcast is bulk work that waits out quiet hours; an emergency one
is urgent (quiet hours do not hold it) and goes in the notice lane, before bulk work.

The sender sees one progress message, edited as figures move (sent / not delivered /
waiting, and for an emergency how many tapped "收到"). Once nothing waits, the figures are
frozen on the broadcast (the outbox forgets sent rows after 30 days). ``confirm_minutes``
after an emergency broadcast started, the people who have not confirmed are listed — to the
sender, and to each household's grid worker for theirs — to be phoned.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import models
from bot.clock import Clock
from bot.db import SessionFactory
from bot.errors import DomainError
from bot.i18n import N_, gettext_for, resolve_locale
from bot.services import broadcast_reach, broadcasts, outbox
from bot.services.broadcasts import (
    DONE,
    SENDING,
    Audience,
    audience_label,
    audience_of,
    audience_people,
    reach,
)
from bot.services.people import RoleInGrid
from bot.services.schedule import in_quiet_hours
from bot.settings import Settings
from models import (
    AuditLog,
    Broadcast,
    BroadcastRecipient,
    Grid,
    Household,
    OutboxLane,
    OutboxMessage,
    OutboxStatus,
    Person,
)

log = logging.getLogger(__name__)
RECIPIENTS = models.metadata.tables[str(BroadcastRecipient.__tablename__)]

ROUND = 500  # recipients per transaction
PROGRESS_EVERY = 2.0  # seconds between progress edits while a broadcast goes out live
LISTED_AT_MOST = 300  # people named in one list of who has not confirmed
GRID_NAME_SHOWN = 30  # characters of the grid's name in a recipient's header

ReceiptMarkup = Callable[[int, str], dict[str, Any]]
"""``(broadcast_id, locale)`` → the "收到" keyboard, in Bot API JSON (the Telegram layer's)."""

EMERGENCY_HEADER = N_("🚨 <b>Emergency notice</b> · {grid}")
NOTICE_HEADER = N_("📢 <b>Notice</b> · {grid}")
CONFIRM_PLEASE = N_("Please tap “Received” below so we know you have read it.")


def progress_ref(broadcast_id: int) -> str:
    """Names the sender's progress message, so each edit finds it."""
    return f"broadcast:{broadcast_id}:progress"


class RoundLost(Exception):
    """Another process committed this round first: this one is rolled back."""


def _locale(person: Person | Any, settings: Settings) -> str:
    return resolve_locale(person.locale, person.telegram_language, settings.default_locale)


def recipient_copy(
    broadcast: Broadcast, grid: Grid, locale: str
) -> tuple[str, str, dict[str, Any]]:
    """The message a recipient gets: its Bot API method, and its parameters without
    ``chat_id`` and ``reply_markup``. The sender's text is shown as written (escaped)."""
    name = grid.name if len(grid.name) <= GRID_NAME_SHOWN else grid.name[: GRID_NAME_SHOWN - 1]
    header = gettext_for(
        locale, EMERGENCY_HEADER if broadcast.emergency else NOTICE_HEADER, grid=_esc(name)
    )
    parts = [header, _esc(broadcast.text)] if broadcast.text else [header]
    if broadcast.emergency:
        parts.append(gettext_for(locale, CONFIRM_PLEASE))
    text = "\n\n".join(parts)
    if broadcast.photo_file_id:
        return "sendPhoto", "caption", {"photo": broadcast.photo_file_id, "caption": text}
    if broadcast.document_file_id:
        return "sendDocument", "caption", {"document": broadcast.document_file_id, "caption": text}
    return "sendMessage", "text", {"text": text}


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def copy_payload(
    broadcast: Broadcast,
    grid: Grid,
    chat_id: int,
    locale: str,
    receipt: ReceiptMarkup | None,
) -> tuple[str, dict[str, Any]]:
    method, _, params = recipient_copy(broadcast, grid, locale)
    payload: dict[str, Any] = {"chat_id": chat_id, **params, "parse_mode": "HTML"}
    if broadcast.emergency and receipt is not None and broadcast.id is not None:
        payload["reply_markup"] = receipt(broadcast.id, locale)
    return method, outbox.fitted(method, payload)


async def queue_round(
    session: AsyncSession,
    broadcast_id: int,
    now: datetime,
    settings: Settings,
    receipt: ReceiptMarkup | None,
) -> int:
    """Write (and queue) the next round of a sending broadcast's recipients; return how
    many were written — 0 when every one is (the broadcast is then marked so).

    Raises :class:`RoundLost` when another process moved the cursor meanwhile: roll back."""
    broadcast = await session.get(Broadcast, broadcast_id)
    if broadcast is None or broadcast.status != SENDING or broadcast.queued_all:
        return 0
    grid = await session.get(Grid, broadcast.grid_id)
    if grid is None:
        return 0
    audience = await audience_of(session, broadcast.audience, confirmed=True)
    people = (
        await session.exec(
            select(Person)
            .where(
                col(Person.id).in_(audience_people(audience, grid.path)),
                col(Person.active).is_(True),
                col(Person.id) > broadcast.cursor,
            )
            .order_by(col(Person.id))
            .limit(ROUND)
        )
    ).all()
    cursor = broadcast.cursor
    if not people:
        await _move(session, broadcast_id, cursor, cursor, queued_all=True)
        await session.refresh(broadcast)
        return 0
    ids = [person.id for person in people]
    written = set(
        (
            await session.exec(
                select(BroadcastRecipient.person_id).where(
                    BroadcastRecipient.broadcast_id == broadcast_id,
                    col(BroadcastRecipient.person_id).in_(ids),
                )
            )
        ).all()
    )
    fresh = [person for person in people if person.id not in written]
    reachable = [p for p in fresh if p.telegram_id is not None and p.reachable]
    rows = []
    for person in reachable:
        assert person.telegram_id is not None
        method, payload = copy_payload(
            broadcast, grid, person.telegram_id, _locale(person, settings), receipt
        )
        rows.append(_outbox_row(person, method, payload, now, broadcast.emergency))
    outbox_ids: dict[int, int] = {}
    if rows:
        connection = await session.connection()
        result = await connection.execute(
            insert(outbox.OUTBOX).returning(outbox.OUTBOX.c.id, sort_by_parameter_order=True),
            rows,
        )
        outbox_ids = {
            person.id or 0: row_id
            for person, row_id in zip(reachable, result.scalars().all(), strict=True)
        }
    if fresh:
        connection = await session.connection()
        await connection.execute(
            insert(RECIPIENTS),
            [
                {
                    "broadcast_id": broadcast_id,
                    "person_id": person.id,
                    "chat_id": person.telegram_id,
                    "outbox_id": outbox_ids.get(person.id or 0),
                    "household_id": person.household_id,
                    "confirmed_at": None,
                    "created_at": now,
                }
                for person in fresh
            ],
        )
    await _move(session, broadcast_id, cursor, people[-1].id or cursor)
    await session.refresh(broadcast)  # the cursor moved in SQL: the object follows
    return len(people)


def _outbox_row(
    person: Person, method: str, payload: dict[str, Any], now: datetime, emergency: bool
) -> dict[str, Any]:
    return {
        "chat_id": person.telegram_id,
        "person_id": person.id,
        "method": method,
        "payload": payload,
        "ref": None,
        "edit_ref": None,
        "urgent": emergency,  # quiet hours do not hold an emergency
        "lane": OutboxLane.NOTICE if emergency else OutboxLane.BULK,
        "status": OutboxStatus.PENDING,
        "not_before": now,
        "expires_at": None,
        "attempts": 0,
        "created_at": now,
    }


async def _move(
    session: AsyncSession, broadcast_id: int, read: int, to: int, *, queued_all: bool = False
) -> None:
    moved = await session.exec(
        update(Broadcast)
        .where(col(Broadcast.id) == broadcast_id, col(Broadcast.cursor) == read)
        .where(col(Broadcast.queued_all).is_(False))
        .values(cursor=to, queued_all=queued_all)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:
        raise RoundLost(broadcast_id)


@dataclass(frozen=True)
class Progress:
    """Where a broadcast stands."""

    total: int  # people it is for (as far as known while rounds are still being written)
    sent: int
    failed: int  # not delivered: no Telegram account, blocked the bot, refused
    waiting: int
    confirmed: int
    written_all: bool = False  # every recipient is written: none will be added

    @property
    def finished(self) -> bool:
        return self.waiting == 0 and self.written_all


async def progress(session: AsyncSession, broadcast: Broadcast, grid: Grid) -> Progress:
    recipient = BroadcastRecipient
    statuses: Counter[str] = Counter(
        {
            str(status): int(count)
            for status, count in (
                await session.exec(
                    select(OutboxMessage.status, func.count())
                    .select_from(recipient)
                    .join(OutboxMessage, col(OutboxMessage.id) == col(recipient.outbox_id))
                    .where(recipient.broadcast_id == broadcast.id)
                    .group_by(OutboxMessage.status)
                )
            ).all()
        }
    )
    written, without_outbox, confirmed = (
        await session.exec(
            select(
                func.count(),
                func.count().filter(col(recipient.outbox_id).is_(None)),
                func.count(col(recipient.confirmed_at)),
            ).where(recipient.broadcast_id == broadcast.id)
        )
    ).one()
    total = int(written)
    if not broadcast.queued_all:
        audience = await audience_of(session, broadcast.audience, confirmed=True)
        total = max(total, (await reach(session, audience, grid.path)).total)
    sent = statuses[OutboxStatus.SENT]
    failed = int(without_outbox) + statuses[OutboxStatus.FAILED] + statuses[OutboxStatus.DROPPED]
    # rows whose outbox row is gone (purged) count as sent: only finished rows are purged
    gone = int(written) - int(without_outbox) - sum(statuses.values())
    waiting = max(0, total - sent - gone - failed)
    return Progress(total, sent + gone, failed, waiting, int(confirmed), broadcast.queued_all)


PROGRESS_TITLE = N_("📢 Broadcast #{id} to {audience} of {grid}")
EMERGENCY_TITLE = N_("🚨 Emergency broadcast #{id} to {audience} of {grid}")
PROGRESS_FIGURES = N_("Sent: {sent} / {total}\nNot delivered: {failed}\nWaiting: {waiting}")
CONFIRMED = N_("Confirmed “Received”: {confirmed} / {sent}")
QUIET = N_("Quiet hours: it goes out after {time}.")
FINISHED = N_("Finished at {time}.")


def progress_text(
    broadcast: Broadcast,
    audience: Audience,
    grid: Grid,
    figures: Progress,
    locale: str,
    now: datetime,
    settings: Settings,
) -> str:
    title = gettext_for(
        locale,
        EMERGENCY_TITLE if broadcast.emergency else PROGRESS_TITLE,
        id=broadcast.id,
        audience=_esc(audience_label(audience, locale)),
        grid=_esc(grid.name),
    )
    lines = [
        title,
        gettext_for(
            locale,
            PROGRESS_FIGURES,
            sent=figures.sent,
            total=figures.total,
            failed=figures.failed,
            waiting=figures.waiting,
        ),
    ]
    if broadcast.emergency:
        lines.append(
            gettext_for(locale, CONFIRMED, confirmed=figures.confirmed, sent=figures.sent)
        )
    if figures.finished:
        local = (broadcast.finished_at or now).astimezone(settings.tz)
        lines.append(gettext_for(locale, FINISHED, time=local.strftime("%m-%d %H:%M")))
    elif not broadcast.emergency and in_quiet_hours(now, settings):
        lines.append(gettext_for(locale, QUIET, time=settings.quiet_hours.end.strftime("%H:%M")))
    return "\n".join(lines)


async def refresh_progress(
    session: AsyncSession, broadcast_id: int, now: datetime, settings: Settings
) -> Progress | None:
    """Edit the sender's progress message if its figures moved; once nothing waits and every
    recipient is written, freeze the figures and mark the broadcast done. An emergency one's
    receipts keep moving the message until who has not confirmed is listed."""
    broadcast = await session.get(Broadcast, broadcast_id)
    if broadcast is None or not followed(broadcast):
        return None
    grid = await session.get(Grid, broadcast.grid_id)
    sender = await session.get(Person, broadcast.sender_id)
    if grid is None or sender is None:
        return None
    figures = await progress(session, broadcast, grid)
    finished = figures.finished
    # households reached count as micro-lectures where a quota rule says so (微宣讲)
    await broadcast_reach.record_reach(session, broadcast, now, settings.tz)
    audience = await audience_of(session, broadcast.audience, confirmed=True)
    locale = _locale(sender, settings)
    text = progress_text(broadcast, audience, grid, figures, locale, now, settings)
    if text != broadcast.progress_text and sender.telegram_id is not None:
        outbox.enqueue(
            session,
            chat_id=sender.telegram_id,
            method="editMessageText",
            payload={"chat_id": sender.telegram_id, "text": text, "parse_mode": "HTML"},
            now=now,
            person_id=sender.id,
            ref=progress_ref(broadcast_id),  # found by the next edit even if this one was
            edit_ref=progress_ref(broadcast_id),  # sent as a new message (the first was gone)
            urgent=True,
            lane=OutboxLane.NOTICE,
        )
        broadcast.progress_text = text
    if finished and broadcast.status == SENDING:
        broadcast.status = DONE
        broadcast.finished_at = now
        broadcast.sent_count = figures.sent
        broadcast.failed_count = figures.failed
    session.add(broadcast)
    return figures


def preview(
    session: AsyncSession,
    broadcast: Broadcast,
    grid: Grid,
    sender: Person,
    chat_id: int,
    locale: str,
    now: datetime,
) -> None:
    """The draft as its recipients will see it (without the "收到" button), to its sender."""
    method, payload = copy_payload(broadcast, grid, chat_id, locale, None)
    outbox.enqueue(
        session,
        chat_id=chat_id,
        method=method,
        payload=payload,
        now=now,
        person_id=sender.id,
        urgent=True,
        lane=OutboxLane.REPLY,
    )


def first_progress(
    session: AsyncSession,
    broadcast: Broadcast,
    audience: Audience,
    grid: Grid,
    sender: Person,
    total: int,
    now: datetime,
    settings: Settings,
) -> None:
    """The progress message, as the broadcast starts: the draft card (sent with the
    progress ref) edited into it, its buttons gone — or a new message if the card is gone."""
    if sender.telegram_id is None or broadcast.id is None:
        return
    figures = Progress(total, 0, 0, total, 0)
    locale = _locale(sender, settings)
    text = progress_text(broadcast, audience, grid, figures, locale, now, settings)
    outbox.enqueue(
        session,
        chat_id=sender.telegram_id,
        method="editMessageText",
        payload={"chat_id": sender.telegram_id, "text": text, "parse_mode": "HTML"},
        now=now,
        person_id=sender.id,
        ref=progress_ref(broadcast.id),
        edit_ref=progress_ref(broadcast.id),
        urgent=True,
        lane=OutboxLane.REPLY,
    )
    broadcast.progress_text = text
    session.add(broadcast)


# -- who has not confirmed ------------------------------------------------------------------

UNCONFIRMED_TITLE = N_(
    "🚨 Emergency broadcast #{id}: {count} people have not confirmed “Received” after "
    "{minutes} minutes. Please phone them:"
)
UNCONFIRMED_YOURS = N_(
    "🚨 Emergency broadcast #{id}: {count} of your households have not confirmed “Received” "
    "after {minutes} minutes. Please phone them:"
)
ALL_CONFIRMED = N_("🚨 Emergency broadcast #{id}: all {count} people confirmed “Received”.")
NOT_DELIVERED = N_("not delivered")
NO_PHONE = N_("no phone")
AND_MORE = N_("… and {count} more.")


@dataclass(frozen=True)
class Unconfirmed:
    person: Person
    household: Household | None
    delivered: bool


async def unconfirmed(session: AsyncSession, broadcast_id: int) -> list[Unconfirmed]:
    """Recipients who have not tapped "收到", by person id."""
    rows = (
        await session.exec(
            select(BroadcastRecipient, Person, Household, OutboxMessage.status)
            .join(Person, col(Person.id) == BroadcastRecipient.person_id)
            .join(
                Household,
                col(Household.id) == col(BroadcastRecipient.household_id),
                isouter=True,
            )
            .join(
                OutboxMessage,
                col(OutboxMessage.id) == col(BroadcastRecipient.outbox_id),
                isouter=True,
            )
            .where(
                BroadcastRecipient.broadcast_id == broadcast_id,
                col(BroadcastRecipient.confirmed_at).is_(None),
            )
            .order_by(col(BroadcastRecipient.person_id))
        )
    ).all()
    return [
        Unconfirmed(
            person,
            household,
            recipient.outbox_id is not None and status in (OutboxStatus.SENT, None),
        )
        for recipient, person, household, status in rows
    ]


def _list_text(locale: str, title: str, people: list[Unconfirmed], **params: Any) -> str:
    lines = [gettext_for(locale, title, count=len(people), **params)]
    for number, each in enumerate(people[:LISTED_AT_MOST], start=1):
        parts = [_esc(each.person.name), _esc(each.person.phone or gettext_for(locale, NO_PHONE))]
        if each.household is not None:
            parts.append(_esc(each.household.address))
        if not each.delivered:
            parts.append(gettext_for(locale, NOT_DELIVERED))
        lines.append(f"{number}. " + " · ".join(parts))
    if len(people) > LISTED_AT_MOST:
        lines.append(gettext_for(locale, AND_MORE, count=len(people) - LISTED_AT_MOST))
    return "\n".join(lines)


async def due_reminders(session: AsyncSession, now: datetime) -> list[int]:
    """Emergency broadcasts whose confirmation time is up and whose list is not sent."""
    rows = (
        await session.exec(
            select(Broadcast).where(
                col(Broadcast.emergency).is_(True),
                col(Broadcast.status).in_([SENDING, DONE]),
                col(Broadcast.reminded_at).is_(None),
                col(Broadcast.started_at).is_not(None),
            )
        )
    ).all()
    return [
        b.id
        for b in rows
        if b.id is not None
        and b.started_at is not None
        and b.started_at + timedelta(minutes=b.confirm_minutes) <= now
    ]


async def send_unconfirmed(
    session: AsyncSession, broadcast_id: int, now: datetime, settings: Settings
) -> int:
    """List who has not confirmed to the sender, and to each household's worker their own;
    once (``reminded_at``). Returns how many people were listed."""
    claimed = await session.exec(
        update(Broadcast)
        .where(col(Broadcast.id) == broadcast_id, col(Broadcast.reminded_at).is_(None))
        .values(reminded_at=now)
        .execution_options(synchronize_session=False)
    )
    broadcast = await session.get(Broadcast, broadcast_id)
    if claimed.rowcount != 1 or broadcast is None:
        return 0
    await session.refresh(broadcast)  # reminded_at was set in SQL: the object follows
    people = await unconfirmed(session, broadcast_id)
    sender = await session.get(Person, broadcast.sender_id)
    minutes = broadcast.confirm_minutes
    if sender is not None and sender.telegram_id is not None:
        locale = _locale(sender, settings)
        if people:
            text = _list_text(locale, UNCONFIRMED_TITLE, people, id=broadcast_id, minutes=minutes)
        else:
            total = (
                await session.exec(
                    select(func.count()).where(BroadcastRecipient.broadcast_id == broadcast_id)
                )
            ).one()
            text = gettext_for(locale, ALL_CONFIRMED, id=broadcast_id, count=total)
        outbox.send_text(
            session,
            chat_id=sender.telegram_id,
            text=text,
            now=now,
            person_id=sender.id,
            urgent=True,
            lane=OutboxLane.NOTICE,
        )
    by_worker: dict[int, list[Unconfirmed]] = defaultdict(list)
    for each in people:
        if each.household is not None and each.household.worker_id is not None:
            by_worker[each.household.worker_id].append(each)
    workers = {
        w.id: w
        for w in (
            await session.exec(select(Person).where(col(Person.id).in_(list(by_worker))))
        ).all()
    }
    for worker_id, theirs in by_worker.items():
        worker = workers.get(worker_id)
        if worker is None or worker.telegram_id is None or worker.id == broadcast.sender_id:
            continue
        outbox.send_text(
            session,
            chat_id=worker.telegram_id,
            text=_list_text(
                _locale(worker, settings),
                UNCONFIRMED_YOURS,
                theirs,
                id=broadcast_id,
                minutes=minutes,
            ),
            now=now,
            person_id=worker.id,
            urgent=True,
            lane=OutboxLane.NOTICE,
        )
    if people:  # phones went out: a sensitive read (个人信息保护法), audited
        session.add(
            AuditLog(
                at=now,
                actor_id=broadcast.sender_id,
                action="read_sensitive",
                object_type="broadcast",
                object_id=broadcast_id,
                detail="unconfirmed list",
                data={"people": len(people), "workers": len(by_worker)},
            )
        )
    return len(people)


# -- driving it -----------------------------------------------------------------------------


def followed(broadcast: Broadcast) -> bool:
    """Its progress message still moves: it is going out, or it is an emergency whose
    receipts are still being counted (until who has not confirmed is listed)."""
    return broadcast.status == SENDING or (
        broadcast.status == DONE and broadcast.emergency and broadcast.reminded_at is None
    )


async def sending(session: AsyncSession) -> list[int]:
    """The broadcasts the minute sweep follows (see :func:`followed`)."""
    counting = (
        (col(Broadcast.status) == DONE)
        & col(Broadcast.emergency).is_(True)
        & col(Broadcast.reminded_at).is_(None)
    )
    query = select(Broadcast.id).where((col(Broadcast.status) == SENDING) | counting)
    return [i for i in (await session.exec(query.order_by(col(Broadcast.id)))).all() if i]


async def queue_all(
    sessions: SessionFactory,
    clock: Clock,
    settings: Settings,
    broadcast_id: int,
    receipt: ReceiptMarkup | None,
    wake: Callable[[], None] | None = None,
) -> int:
    """Every round of a broadcast, each its own transaction; a round another process won
    is left to it. Returns how many recipients this call wrote."""
    written = 0
    while True:
        async with sessions() as session:
            try:
                done = await queue_round(session, broadcast_id, clock.now(), settings, receipt)
                await session.commit()
            except (RoundLost, IntegrityError):  # another process wrote this round first
                await session.rollback()
                return written
        if not done:
            return written
        written += done
        if wake is not None:
            wake()  # the first rounds go out while the rest are written
        await asyncio.sleep(0)


async def follow(
    sessions: SessionFactory,
    clock: Clock,
    settings: Settings,
    broadcast_id: int,
    wake: Callable[[], None] | None = None,
) -> None:
    """Edit the progress message every ``PROGRESS_EVERY`` seconds while the broadcast is going
    out now; stop when it is done, or when what waits cannot go yet (quiet hours) — the
    minute sweep takes over then."""
    while True:
        async with sessions() as session:
            figures = await refresh_progress(session, broadcast_id, clock.now(), settings)
            await session.commit()
        if wake is not None:
            wake()
        if figures is None or figures.finished:
            return
        async with sessions() as session:
            broadcast = await session.get(Broadcast, broadcast_id)
            held = (
                broadcast is None
                or not broadcast.emergency
                and in_quiet_hours(clock.now(), settings)
            )
        if held:
            return
        await asyncio.sleep(PROGRESS_EVERY)


@dataclass(frozen=True)
class Start:
    """Who confirmed which broadcast, with the roles they held then."""

    person_id: int
    roles: tuple[RoleInGrid, ...]
    broadcast_id: int


async def start_and_run(
    sessions: SessionFactory,
    clock: Clock,
    settings: Settings,
    start: Start,
    receipt: ReceiptMarkup | None,
    wake: Callable[[], None] | None = None,
) -> None:
    """Confirmed: start the broadcast (checked again: a second press finds it started) and
    turn the sender's draft card into its progress message, in one transaction; then
    :func:`run` it."""
    async with sessions() as session:
        person = await session.get(Person, start.person_id)
        if person is None:
            return
        try:
            broadcast, grid, total = await broadcasts.start(
                session, person, start.roles, start.broadcast_id, clock.now()
            )
        except DomainError as refused:
            log.info("broadcast %s not started: %s", start.broadcast_id, refused.message)
            return
        audience = await audience_of(session, broadcast.audience, confirmed=True)
        first_progress(session, broadcast, audience, grid, person, total, clock.now(), settings)
        await session.commit()
    await run(sessions, clock, settings, start.broadcast_id, receipt, wake)


async def run(
    sessions: SessionFactory,
    clock: Clock,
    settings: Settings,
    broadcast_id: int,
    receipt: ReceiptMarkup | None,
    wake: Callable[[], None] | None = None,
) -> None:
    """A broadcast just confirmed, live: written out, then followed until it is done."""
    await queue_all(sessions, clock, settings, broadcast_id, receipt, wake)
    await follow(sessions, clock, settings, broadcast_id, wake)


async def sweep(
    sessions: SessionFactory,
    clock: Clock,
    settings: Settings,
    receipt: ReceiptMarkup | None,
    wake: Callable[[], None] | None = None,
) -> None:
    """The minute sweep: goes on with broadcasts a restart interrupted, moves every sending
    broadcast's progress, and lists who has not confirmed where that is due."""
    async with sessions() as session:
        ids = await sending(session)
    for broadcast_id in ids:
        await queue_all(sessions, clock, settings, broadcast_id, receipt, wake)
        async with sessions() as session:
            await refresh_progress(session, broadcast_id, clock.now(), settings)
            await session.commit()
    async with sessions() as session:
        due = await due_reminders(session, clock.now())
    for broadcast_id in due:
        async with sessions() as session:
            await send_unconfirmed(session, broadcast_id, clock.now(), settings)
            await session.commit()
    if wake is not None:
        wake()
