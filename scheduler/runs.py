"""Each run of a job recorded in ``JobRun``: started, finished, ok or error (for /jobs).

The wrapper keeps the jobs thin and keeps one failing job from stopping the others: the
error is logged and recorded, never raised into the scheduler.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from bot.services import jobs as job_records
from scheduler.context import JobContext
from scheduler.registry import ScheduledSweep

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOutcome:
    """How one run went; ``error`` is the exception the job raised, if any."""

    job_id: str
    started_at: datetime
    finished_at: datetime
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def describe(error: Exception) -> str:
    """The text kept in ``JobRun.last_error``."""
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


async def run_recorded(job: ScheduledSweep, ctx: JobContext) -> RunOutcome:
    """Run ``job`` once, recording its start and its end in their own transactions."""
    started_at = ctx.clock.now()
    async with ctx.sessions() as session:
        await job_records.record_start(session, job.id, started_at)
        await session.commit()
    error: Exception | None = None
    try:
        await job.run(ctx)
    except Exception as exc:
        log.exception("job %s failed", job.id)
        error = exc
    finished_at = ctx.clock.now()
    async with ctx.sessions() as session:
        await job_records.record_finish(
            session, job.id, finished_at, error=describe(error) if error is not None else None
        )
        await session.commit()
    if ctx.wake_outbox is not None:
        ctx.wake_outbox()
    return RunOutcome(job.id, started_at, finished_at, error)
