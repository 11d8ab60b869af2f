"""Scheduled jobs (定时任务): their run records, the /jobs overview, and housekeeping purges.

The scheduler package declares the jobs; this module only sees them through
:class:`ScheduledJob`, so it stays free of APScheduler and aiogram.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from sqlalchemy import ColumnElement, and_, delete, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.i18n import N_
from models import JobRun, OutboxMessage, OutboxStatus, ProcessedUpdate

PROCESSED_UPDATE_RETENTION = timedelta(hours=48)
OUTBOX_RETENTION = timedelta(days=30)
FAILED_OUTBOX_RETENTION = timedelta(days=90)
# A job whose next fire time is this far in the past is not being run: the scheduler is down.
OVERDUE_AFTER = timedelta(minutes=2)
ERROR_LENGTH = 500  # JobRun.last_error


class ScheduledJob(Protocol):
    """A declared job as the services see it: an id, a display name and its timetable."""

    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str:
        """A catalog msgid naming the job for /jobs."""
        ...

    def next_fire_after(self, moment: datetime) -> datetime | None:
        """The first fire time strictly after ``moment`` (None: it never fires again)."""
        ...


class JobStatus(StrEnum):
    """How the last run ended (``JobRun.last_status``)."""

    OK = "ok"
    ERROR = "error"


class JobState(StrEnum):
    """What /jobs shows for a job."""

    NEVER_RUN = "never_run"
    RUNNING = "running"
    OK = "ok"
    ERROR = "error"


JOB_STATE_LABEL: dict[JobState, str] = {
    JobState.NEVER_RUN: N_("not run yet"),
    JobState.RUNNING: N_("running now"),
    JobState.OK: N_("last run succeeded"),
    JobState.ERROR: N_("last run failed"),
}
OVERDUE_LABEL = N_("overdue: is the scheduler running?")


@dataclass(frozen=True)
class JobInfo:
    """One line of /jobs."""

    id: str
    name: str  # catalog msgid
    state: JobState
    next_fire_at: datetime | None
    overdue: bool
    last_started_at: datetime | None
    last_finished_at: datetime | None
    last_error: str | None


def next_due(
    job: ScheduledJob, last_started_at: datetime | None, now: datetime
) -> datetime | None:
    """When ``job`` should run next: its first fire after its last start, else after ``now``.

    The answer is in the past when a fire time went by with no run (the scheduler was down or
    changing leader); the scheduler then runs the job once, at once. A job that never ran waits
    for its next fire time, so a fresh install sends no surprise digest.
    """
    return job.next_fire_after(last_started_at or now)


async def record_start(session: AsyncSession, job_id: str, now: datetime) -> None:
    """Note that a run of ``job_id`` began (the caller commits)."""
    run = await session.get(JobRun, job_id)
    if run is None:
        run = JobRun(job_id=job_id)
    run.last_started_at = now
    session.add(run)


async def record_finish(
    session: AsyncSession, job_id: str, now: datetime, *, error: str | None = None
) -> None:
    """Note how the run of ``job_id`` ended: ``error`` is None on success (the caller commits)."""
    run = await session.get(JobRun, job_id)
    if run is None:
        run = JobRun(job_id=job_id, last_started_at=now)
    run.last_finished_at = now
    run.last_status = JobStatus.ERROR if error is not None else JobStatus.OK
    run.last_error = error[:ERROR_LENGTH] if error is not None else None
    session.add(run)


async def last_runs(session: AsyncSession) -> dict[str, JobRun]:
    """Every job's last run record, by job id."""
    return {run.job_id: run for run in (await session.exec(select(JobRun))).all()}


def _state(run: JobRun | None) -> JobState:
    if run is None or run.last_started_at is None:
        return JobState.NEVER_RUN
    if run.last_finished_at is None or run.last_finished_at < run.last_started_at:
        return JobState.RUNNING
    return JobState.ERROR if run.last_status == JobStatus.ERROR else JobState.OK


async def jobs_overview(
    session: AsyncSession, registry: Iterable[ScheduledJob], now: datetime
) -> list[JobInfo]:
    """What /jobs shows an administrator: every declared job, its next run and its last run."""
    runs = await last_runs(session)
    overview: list[JobInfo] = []
    for job in registry:
        run = runs.get(job.id)
        started = run.last_started_at if run is not None else None
        next_fire_at = next_due(job, started, now)
        overview.append(
            JobInfo(
                id=job.id,
                name=job.name,
                state=_state(run),
                next_fire_at=next_fire_at,
                overdue=next_fire_at is not None and next_fire_at < now - OVERDUE_AFTER,
                last_started_at=started,
                last_finished_at=run.last_finished_at if run is not None else None,
                last_error=run.last_error if run is not None else None,
            )
        )
    return overview


GAVE_UP_WINDOW = timedelta(hours=24)


async def outbox_gave_up(session: AsyncSession, now: datetime) -> dict[str, int]:
    """Outbox rows that failed for good in the last 24 hours, by Bot API method (what /jobs
    shows): a menu Telegram keeps refusing, messages to people who blocked the bot."""
    rows = await session.exec(
        select(OutboxMessage.method, func.count())
        .where(
            col(OutboxMessage.status) == OutboxStatus.FAILED,
            col(OutboxMessage.created_at) >= now - GAVE_UP_WINDOW,
        )
        .group_by(col(OutboxMessage.method))
        .order_by(col(OutboxMessage.method))
    )
    return {method: count for method, count in rows}


async def purge_processed_updates(session: AsyncSession, now: datetime) -> int:
    """Forget Telegram update ids handled more than 48 hours ago; return how many.

    Telegram redelivers an update for at most 24 hours, so older ids guard nothing.
    """
    result = await session.exec(
        delete(ProcessedUpdate).where(col(ProcessedUpdate.at) < now - PROCESSED_UPDATE_RETENTION)
    )
    return int(result.rowcount)


def _finished_before(cutoff: datetime) -> ColumnElement[bool]:
    """An outbox row's age counts from when it was sent, else from when it was due."""
    sent_at = col(OutboxMessage.sent_at)
    return or_(sent_at < cutoff, and_(sent_at.is_(None), col(OutboxMessage.not_before) < cutoff))


async def purge_outbox(session: AsyncSession, now: datetime) -> int:
    """Delete finished outbox rows (sent or dropped: 30 days, failed: 90); return how many.

    Pending rows are never touched (the sender drops the expired ones). A sent message older
    than this can no longer be edited in place: the sender sends the new text as a fresh one.
    """
    status = col(OutboxMessage.status)
    result = await session.exec(
        delete(OutboxMessage).where(
            or_(
                and_(
                    status.in_([OutboxStatus.SENT, OutboxStatus.DROPPED]),
                    _finished_before(now - OUTBOX_RETENTION),
                ),
                and_(
                    status == OutboxStatus.FAILED,
                    _finished_before(now - FAILED_OUTBOX_RETENTION),
                ),
            )
        )
    )
    return int(result.rowcount)
