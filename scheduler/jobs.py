"""The jobs: thin sweeps that open a session, call one service with ``now``, and commit
(the deadline sweep commits ticket by ticket itself).

Each takes only the :class:`~scheduler.context.JobContext`; its schedule is declared in
:data:`scheduler.registry.SWEEPS`, and its run is recorded by :mod:`scheduler.runs`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from bot import backup
from bot.services import (
    broadcast_delivery,
    conversations,
    daily_push,
    digests,
    follow_ups,
    members,
    party,
    quotas,
    rentals,
    tickets,
)
from bot.services import jobs as housekeeping
from bot.services.duty import gaps, paging
from bot.services.tickets import reminders
from bot.settings import Settings
from bot.telegram.broadcast_views import receipt_markup
from bot.telegram.party_views import render_party_push
from bot.telegram.ticket_notifier import TelegramTicketNotifier, return_visit_renderer
from bot.telegram.visit_views import render_push
from scheduler.context import JobContext

log = logging.getLogger(__name__)
RETENTION_BATCH = 500  # people erased per transaction
DigestPlan = Callable[[AsyncSession, datetime, Settings], Awaitable[list[digests.PlannedDigest]]]


async def purge_processed_updates(ctx: JobContext) -> None:
    """Forget Telegram update ids handled more than 48 hours ago."""
    async with ctx.sessions() as session:
        purged = await housekeeping.purge_processed_updates(session, ctx.clock.now())
        await session.commit()
    log.info("forgot %d handled update ids", purged)


async def purge_outbox(ctx: JobContext) -> None:
    """Delete outbox rows sent or dropped 30 days ago, failed 90 days ago."""
    async with ctx.sessions() as session:
        purged = await housekeeping.purge_outbox(session, ctx.clock.now())
        await session.commit()
    log.info("deleted %d finished outbox rows", purged)


async def erase_moved_out(ctx: JobContext) -> None:
    """Each night: erase the personal data of people who moved out more than
    ``PEOPLE__RETENTION_YEARS`` ago (删除权 by the retention rule), a batch per commit."""
    now = ctx.clock.now()
    today = now.astimezone(ctx.settings.tz).date()
    erased = 0
    while True:
        async with ctx.sessions() as session:
            done = await members.erase_moved_out(
                session,
                now=now,
                today=today,
                years=ctx.settings.people.retention_years,
                batch=RETENTION_BATCH,
            )
            await session.commit()
        erased += done
        if done < RETENTION_BATCH:
            break
    if erased:
        log.info("erased the personal data of %d people who moved out", erased)


async def escalate_overdue(ctx: JobContext) -> None:
    """The deadline sweep (限时办理): warn, escalate a tier per passed deadline, flag the top.

    The service commits each ticket on its own, so a person acting on one waits for that one.
    """
    async with ctx.sessions() as session:
        steps = await tickets.escalate_overdue(
            session, TelegramTicketNotifier(ctx.settings), ctx.clock.now()
        )
    if steps:
        log.info("deadline sweep took %d steps", steps)
        if ctx.wake_outbox is not None:
            ctx.wake_outbox()


async def remind_idle(ctx: JobContext) -> None:
    """协办 asks and 待核查 tickets nobody acted on for a working day: asked again, once (the
    service commits each ticket on its own)."""
    async with ctx.sessions() as session:
        sent = await reminders.remind_idle(
            session, TelegramTicketNotifier(ctx.settings), ctx.clock.now()
        )
    _sent(ctx, sent, "reminders of assisting asks and on-site checks")


async def widen_duty_pages(ctx: JobContext) -> None:
    """值班: urgent tickets the operator on duty has not accepted in the policy's minutes go
    to the whole centre (the service commits page by page)."""
    async with ctx.sessions() as session:
        widened = await paging.widen_unaccepted(
            session, TelegramTicketNotifier(ctx.settings), ctx.clock.now()
        )
    _sent(ctx, widened, "duty pages widened to the whole centre")


async def duty_gaps(ctx: JobContext) -> None:
    """Gaps in the next day of a centre's duty rota, warned to its operators once."""
    async with ctx.sessions() as session:
        sent = await gaps.warn_gaps(session, ctx.clock.now(), ctx.settings)
        await session.commit()
    _sent(ctx, sent, "duty rota gap warnings")


async def weekly_digests(ctx: JobContext) -> None:
    """Monday morning: each grid head's digest of last week (每周简报), once per week."""
    await _digests(ctx, digests.plan_weekly_digests, "weekly digests")


async def dispute_screenings(ctx: JobContext) -> None:
    """The 1st and the 16th: open disputes to the centre (半月一排查一上报), once each."""
    await _digests(ctx, digests.plan_dispute_screenings, "dispute screenings")


async def monthly_indicators(ctx: JobContext) -> None:
    """The 1st: last month's assessment indicators (考核), with the month's charts and
    workbook, to the centre, once per month."""
    await _digests(ctx, digests.plan_monthly_indicators, "monthly indicator digests")


async def _digests(ctx: JobContext, plan: DigestPlan, what: str) -> None:
    """Read the figures and build the files in a reader session (no write lock while charts
    are drawn), then queue them in a short writing one."""
    now = ctx.clock.now()
    async with ctx.reading()() as reading:
        planned = await plan(reading, now, ctx.settings)
    async with ctx.sessions() as session:
        sent = await digests.queue_digests(session, planned, now)
        await session.commit()
    _sent(ctx, sent, what)


def _sent(ctx: JobContext, count: int, what: str) -> None:
    if count:
        log.info("sent %d %s", count, what)
        if ctx.wake_outbox is not None:
            ctx.wake_outbox()


async def expire_idle_reports(ctx: JobContext) -> None:
    """A /report left half-way for longer than FSM_IDLE_MINUTES ends, with a message."""
    async with ctx.sessions() as session:
        ended = await conversations.expire_idle(
            session,
            ctx.clock.now(),
            timedelta(minutes=ctx.settings.fsm_idle_minutes),
            ctx.settings.default_locale,
        )
        await session.commit()
    if ended and ctx.wake_outbox is not None:
        ctx.wake_outbox()


PUSH_ROUND = 200  # workers per transaction of the morning push
ROUND_PAUSE = 0.05  # seconds between rounds: writers waiting for the lock get their turn


async def daily_task_push(ctx: JobContext) -> None:
    """From 08:00 on working days: each worker's task push (每日任务推送), once per day — in
    rounds of ``PUSH_ROUND`` workers. Each round is worked out in a read-only session (no write
    lock held while thousands of plans are read) and only claimed and queued in a short
    writing transaction; between rounds the job steps aside for a moment, so residents'
    updates waiting for SQLite's write lock get it."""
    now = ctx.clock.now()
    async with ctx.sessions() as session:
        await quotas.ensure_default_rules(session, now, tz=ctx.settings.tz)
        await session.commit()
    sent = 0
    while True:
        async with ctx.reading()() as reading:
            planned = await daily_push.plan_round(
                reading, ctx.clock.now(), ctx.settings, limit=PUSH_ROUND
            )
        async with ctx.sessions() as session:
            done = await daily_push.queue_round(
                session, planned, ctx.clock.now(), ctx.settings, render_push
            )
            await session.commit()
        sent += done.sent
        if done.sent and ctx.wake_outbox is not None:
            ctx.wake_outbox()  # the first rounds go out while the rest are planned
        if done.workers < PUSH_ROUND:
            break
        await asyncio.sleep(ROUND_PAUSE)
    _sent(ctx, sent, "daily task pushes")


async def party_push(ctx: JobContext) -> None:
    """From 08:00 on working days: each party member who uses the bot hears which of her
    contact households (党员联系户) are still due — once a day."""
    async with ctx.sessions() as session:
        sent = await party.send_party_pushes(
            session, ctx.clock.now(), ctx.settings, render_party_push
        )
        await session.commit()
    if sent and ctx.wake_outbox is not None:
        ctx.wake_outbox()
    _sent(ctx, sent, "party contact pushes")


async def quota_reminders(ctx: JobContext) -> None:
    """Five working days before a period ends: workers short of quota and their heads."""
    async with ctx.sessions() as session:
        sent = await daily_push.send_quota_reminders(session, ctx.clock.now(), ctx.settings)
        await session.commit()
    _sent(ctx, sent, "quota reminders")


async def follow_up_reminders(ctx: JobContext) -> None:
    """Follow-ups (随访) still due five working days before their period ends, and those
    missed in the period just ended: each worker told once, counts only."""
    async with ctx.sessions() as session:
        sent = await follow_ups.send_reminders(session, ctx.clock.now(), ctx.settings)
        await session.commit()
    _sent(ctx, sent, "follow-up reminders")


async def return_visits(ctx: JobContext) -> None:
    """Resolved tickets left unrated for a working day become return visits (回访)."""
    async with ctx.sessions() as session:
        opened = await tickets.open_return_visits(
            session, return_visit_renderer(ctx.settings), ctx.clock.now()
        )
        await session.commit()
    if opened and ctx.wake_outbox is not None:
        ctx.wake_outbox()


async def nightly_backup(ctx: JobContext) -> None:
    """Each night: a backup of the SQLite database into ``BACKUP__DIR``, keeping the newest
    ``BACKUP__KEEP`` (declared only when ``BACKUP__DIR`` is set). Copied in a thread, with
    SQLite's online backup API: the bot keeps writing meanwhile."""
    folder = ctx.settings.backup.dir
    if folder is None:
        return
    written = await asyncio.to_thread(
        backup.nightly_backup,
        ctx.settings.database_url,
        folder,
        ctx.settings.backup.keep,
        ctx.clock.now(),
        ctx.settings.tz,
    )
    log.info("nightly backup written: %s", written)


async def deliver_broadcasts(ctx: JobContext) -> None:
    """Broadcasts: go on with one a restart interrupted (from its cursor), edit each sending
    one's progress message, and list who has not confirmed an emergency one in time."""
    await broadcast_delivery.sweep(
        ctx.sessions, ctx.clock, ctx.settings, receipt_markup, ctx.wake_outbox
    )


async def residence_registration_reminders(ctx: JobContext) -> None:
    """Tenants' residence registrations (居住登记): the landlord and the worker reminded
    before one lapses, the head told once it has lapsed — once each."""
    async with ctx.sessions() as session:
        sent = await rentals.send_reminders(session, ctx.clock.now(), ctx.settings)
        await session.commit()
    _sent(ctx, sent, "residence registration reminders")
