"""How the system is doing, read from the database: what ``/status`` shows an administrator and
what ``/metrics`` gives Prometheus (运行状态).

Everything here is a count over rows every process shares — the outbox backlog, the people
the bot cannot reach, the tickets past a deadline, the jobs' last runs — so any bot process
reports the same figures, whichever one sends, sweeps or leads the scheduler.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services.jobs import outbox_gave_up
from models import JobRun, OutboxMessage, OutboxStatus, Person, Role, Ticket, TicketState

# the states in which a ticket still runs against its deadlines (waiting on the reporter
# stops the clock; resolved, closed and the rest are done with them)
RUNNING_STATES = (
    TicketState.SUBMITTED,
    TicketState.DISPATCHED,
    TicketState.ACCEPTED,
    TicketState.IN_PROGRESS,
    TicketState.REOPENED,
)
UNREACHABLE_SHOWN = 10  # names listed in /status; the count covers everyone


@dataclass(frozen=True)
class JobTiming:
    """A job's last run: when it started, how long it took (None while it runs), how it ended."""

    job_id: str
    started_at: datetime | None
    seconds: float | None
    status: str | None


@dataclass(frozen=True)
class SystemStatus:
    backlog: dict[str, int]  # outbox rows by status (pending, failed…), kept for a while
    oldest_pending_seconds: float | None  # how long the oldest due message has waited
    overdue_by_role: dict[Role, int]  # tickets past a deadline, by the tier that owns them
    gave_up: int  # messages that failed for good in the last 24 hours
    unreachable_count: int
    unreachable_names: Sequence[str]  # the first few, by name
    jobs: Sequence[JobTiming]


async def system_status(session: AsyncSession, now: datetime) -> SystemStatus:
    backlog = {
        str(status): count
        for status, count in await session.exec(
            select(OutboxMessage.status, func.count()).group_by(col(OutboxMessage.status))
        )
    }
    oldest = (
        await session.exec(
            select(func.min(OutboxMessage.not_before)).where(
                col(OutboxMessage.status) == OutboxStatus.PENDING,
                col(OutboxMessage.not_before) <= now,
            )
        )
    ).one()
    overdue = await session.exec(
        select(Ticket.owner_role, func.count())
        .where(
            col(Ticket.state).in_(RUNNING_STATES),
            or_(
                and_(col(Ticket.accepted_at).is_(None), col(Ticket.accept_deadline) < now),
                col(Ticket.resolve_deadline) < now,
            ),
        )
        .group_by(col(Ticket.owner_role))
    )
    unreachable = col(Person.active).is_(True) & col(Person.reachable).is_(False)
    unreachable_count = (
        await session.exec(select(func.count()).select_from(Person).where(unreachable))
    ).one()
    names = await session.exec(
        select(Person.name).where(unreachable).order_by(col(Person.name)).limit(UNREACHABLE_SHOWN)
    )
    runs = await session.exec(select(JobRun).order_by(col(JobRun.job_id)))
    return SystemStatus(
        backlog=backlog,
        oldest_pending_seconds=(now - oldest).total_seconds() if oldest is not None else None,
        overdue_by_role={Role(role): count for role, count in overdue if role is not None},
        gave_up=sum((await outbox_gave_up(session, now)).values()),
        unreachable_count=unreachable_count,
        unreachable_names=list(names),
        jobs=[_timing(run) for run in runs],
    )


def _timing(run: JobRun) -> JobTiming:
    started, finished = run.last_started_at, run.last_finished_at
    if started is None or finished is None or finished < started:  # never run, or running
        return JobTiming(run.job_id, started, seconds=None, status=None)
    return JobTiming(run.job_id, started, (finished - started).total_seconds(), run.last_status)
