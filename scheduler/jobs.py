"""The jobs: thin sweeps that open a session, call one service with ``now``, and commit.

Each takes only the :class:`~scheduler.context.JobContext`; its schedule is declared in
:data:`scheduler.registry.SWEEPS`, and its run is recorded by :mod:`scheduler.runs`.
"""

from __future__ import annotations

import logging

from bot.services import jobs as housekeeping
from bot.services import tickets
from bot.telegram.ticket_notifier import TelegramTicketNotifier
from scheduler.context import JobContext

log = logging.getLogger(__name__)


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


async def escalate_overdue(ctx: JobContext) -> None:
    """The deadline sweep (限时办理): warn, escalate a tier per passed deadline, flag the top."""
    async with ctx.sessions() as session:
        steps = await tickets.escalate_overdue(
            session, TelegramTicketNotifier(ctx.settings), ctx.clock.now()
        )
        await session.commit()
    if steps:
        log.info("deadline sweep took %d steps", steps)
        if ctx.wake_outbox is not None:
            ctx.wake_outbox()
