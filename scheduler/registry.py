"""The registry of sweeps: each job declared once, with its trigger and its function.

A sweep is a periodic job that picks what is due from the database (the outbox, deadlines,
reminders), so running it late or twice is harmless and a restart loses nothing. The same
declarations feed the live APScheduler (:mod:`scheduler.service`) and the deterministic
replay of tests (:mod:`scheduler.replay`), through the same APScheduler trigger objects.

To add a job: write a thin ``async def my_sweep(ctx: JobContext) -> None`` in
:mod:`scheduler.jobs` and one :class:`Sweep` line in :data:`SWEEPS`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.i18n import N_
from bot.settings import Settings
from scheduler import jobs
from scheduler.context import JobContext

JobFunc = Callable[[JobContext], Awaitable[None]]

JOB_ID = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")  # JobRun.job_id holds 64 characters
# Intervals count from this local midnight (a Monday), so "every 15 minutes" fires at
# :00, :15, :30 and :45 in every process, whenever it started.
INTERVAL_EPOCH = datetime(2024, 1, 1)  # noqa: DTZ001 - made local to the configured zone
AFTER = timedelta(milliseconds=1)  # fire times are whole seconds; "strictly after" a moment


@dataclass(frozen=True)
class Every:
    """A fixed interval, aligned on whole multiples of it since a local midnight."""

    interval: timedelta

    def __post_init__(self) -> None:
        seconds = self.interval.total_seconds()
        if seconds < 1 or seconds != int(seconds):
            raise ValueError("an interval must be a positive whole number of seconds")

    def build(self, tz: tzinfo) -> BaseTrigger:
        return IntervalTrigger(
            seconds=int(self.interval.total_seconds()),
            start_date=INTERVAL_EPOCH.replace(tzinfo=tz),
            timezone=tz,
        )


@dataclass(frozen=True)
class Cron:
    """Calendar times in the configured zone; fields as in APScheduler's ``CronTrigger``.

    ``Cron(hour=8)`` is every day at 08:00; ``Cron(day_of_week="mon", hour=8)`` weekly;
    ``Cron(day="1,16", hour=8)`` half-monthly (半月); ``Cron(day=1, hour=8)`` monthly.
    Unnamed fields above the ones given mean "every"; minute and second default to 0.
    """

    month: int | str | None = None
    day: int | str | None = None
    day_of_week: int | str | None = None
    hour: int | str | None = None
    minute: int | str = 0
    second: int | str = 0

    def build(self, tz: tzinfo) -> BaseTrigger:
        fields: dict[str, Any] = {
            "month": self.month,
            "day": self.day,
            "day_of_week": self.day_of_week,
            "hour": self.hour,
            "minute": self.minute,
            "second": self.second,
        }
        return CronTrigger(timezone=tz, **{k: v for k, v in fields.items() if v is not None})


Trigger = Every | Cron


@dataclass(frozen=True)
class Sweep:
    """One job: a stable id (its APScheduler id and JobRun key), a name msgid, when, what."""

    id: str
    name: str
    trigger: Trigger
    run: JobFunc


@dataclass(frozen=True)
class ScheduledSweep:
    """A sweep with its trigger built in the configured time zone."""

    sweep: Sweep
    trigger: BaseTrigger = field(compare=False)

    @property
    def id(self) -> str:
        return self.sweep.id

    @property
    def name(self) -> str:
        return self.sweep.name

    @property
    def run(self) -> JobFunc:
        return self.sweep.run

    def next_fire_after(self, moment: datetime) -> datetime | None:
        """The first fire time strictly after ``moment``."""
        fire: datetime | None = self.trigger.get_next_fire_time(None, moment + AFTER)
        return fire

    def fire_times(self, since: datetime, until: datetime) -> Iterator[datetime]:
        """Every fire time in ``(since, until]``, in order."""
        fire = self.next_fire_after(since)
        while fire is not None and fire <= until:
            yield fire
            fire = self.next_fire_after(fire)


@dataclass(frozen=True)
class Due:
    """A sweep and one time it fires."""

    at: datetime
    job: ScheduledSweep


class Registry:
    """The declared sweeps, bound to the configured time zone, in declaration order."""

    def __init__(self, sweeps: Iterable[Sweep], tz: tzinfo) -> None:
        self.tz = tz
        self._jobs: dict[str, ScheduledSweep] = {}
        for sweep in sweeps:
            if not JOB_ID.fullmatch(sweep.id):
                raise ValueError(f"job id {sweep.id!r} must match {JOB_ID.pattern}")
            if sweep.id in self._jobs:
                raise ValueError(f"job id {sweep.id!r} is declared twice")
            self._jobs[sweep.id] = ScheduledSweep(sweep, sweep.trigger.build(tz))

    def __iter__(self) -> Iterator[ScheduledSweep]:
        return iter(self._jobs.values())

    def __len__(self) -> int:
        return len(self._jobs)

    def __getitem__(self, job_id: str) -> ScheduledSweep:
        return self._jobs[job_id]

    def due(self, since: datetime, until: datetime, *, coalesce: bool = False) -> list[Due]:
        """Every fire in ``(since, until]``, by time, then in declaration order.

        The window is open at ``since`` and closed at ``until``, so consecutive windows
        ``(t0, t1]``, ``(t1, t2]`` fire each time exactly once. With ``coalesce``, a sweep
        fires once, at its last fire time in the window (APScheduler's own coalescing).
        """
        if since.tzinfo is None or until.tzinfo is None:
            raise ValueError("the window needs aware datetimes")
        order = {job_id: index for index, job_id in enumerate(self._jobs)}
        found: list[Due] = []
        for job in self:
            times = list(job.fire_times(since, until))
            if coalesce:
                times = times[-1:]
            found.extend(Due(at, job) for at in times)
        found.sort(key=lambda due: (due.at, order[due.job.id]))
        return found


# Every job GridBot runs, declared once. Housekeeping runs in the small hours (local time).
SWEEPS: tuple[Sweep, ...] = (
    Sweep(
        "tickets.deadlines",
        N_("Ticket deadlines: warn, escalate, flag"),
        Every(timedelta(minutes=1)),
        jobs.escalate_overdue,
    ),
    Sweep(
        "tickets.reminders",
        N_("Assisting asks and on-site checks nobody acted on: reminded"),
        Every(timedelta(minutes=10)),
        jobs.remind_idle,
    ),
    Sweep(
        "duty.pages",
        N_("Urgent tickets the operator on duty did not accept: to the whole centre"),
        Every(timedelta(minutes=1)),
        jobs.widen_duty_pages,
    ),
    Sweep(
        "duty.gaps",
        N_("Gaps in the duty rota, warned a day ahead"),
        Every(timedelta(hours=1)),
        jobs.duty_gaps,
    ),
    Sweep(
        "tickets.return_visits",
        N_("Return visits for resolved tickets nobody rated"),
        Every(timedelta(minutes=15)),
        jobs.return_visits,
    ),
    Sweep(
        "broadcasts.deliver",
        N_("Broadcasts: resume after a restart, progress, who has not confirmed"),
        Every(timedelta(minutes=1)),
        jobs.deliver_broadcasts,
    ),
    Sweep(
        "conversations.idle",
        N_("End /report conversations left idle"),
        Every(timedelta(minutes=5)),
        jobs.expire_idle_reports,
    ),
    Sweep(
        "housekeeping.processed_updates",
        N_("Forget handled Telegram updates"),
        Cron(hour=3, minute=10),
        jobs.purge_processed_updates,
    ),
    Sweep(
        "housekeeping.outbox",
        N_("Clean up old outgoing messages"),
        Cron(hour=3, minute=20),
        jobs.purge_outbox,
    ),
    Sweep(
        "people.retention",
        N_("Erase the data of people who moved out long ago"),
        Cron(hour=3, minute=40),
        jobs.erase_moved_out,
    ),
    Sweep(
        "digests.weekly",
        N_("Weekly digest to grid heads"),
        Cron(day_of_week="mon", hour=8, minute=30),
        jobs.weekly_digests,
    ),
    Sweep(
        "digests.disputes",
        N_("Half-monthly dispute screening to the centre"),
        Cron(day="1,16", hour=9),
        jobs.dispute_screenings,
    ),
    Sweep(
        "digests.monthly",
        N_("Monthly assessment indicators to the centre"),
        Cron(day=1, hour=9, minute=30),
        jobs.monthly_indicators,
    ),
    Sweep(
        "visits.daily_push",
        N_("Morning task push to grid workers (from 08:00, every 15 minutes)"),
        Every(timedelta(minutes=15)),
        jobs.daily_task_push,
    ),
    Sweep(
        "party.daily_push",
        N_("Morning push to party members: their contact households still due"),
        Every(timedelta(minutes=15)),
        jobs.party_push,
    ),
    Sweep(
        "visits.quota_reminders",
        N_("Quota reminders five working days before a period ends"),
        Cron(hour=9, minute=15),
        jobs.quota_reminders,
    ),
    Sweep(
        "rentals.registration",
        N_("Tenants' residence registrations: reminders before they lapse, lapses to heads"),
        Cron(hour=9, minute=45),
        jobs.residence_registration_reminders,
    ),
    Sweep(
        "visits.follow_up_reminders",
        N_("Follow-up reminders: due before a period ends, missed after it"),
        Cron(hour=9, minute=20),
        jobs.follow_up_reminders,
    ),
)


# Declared only when BACKUP__DIR is set: before the housekeeping, at 03:00 local time.
NIGHTLY_BACKUP = Sweep(
    "housekeeping.backup",
    N_("Nightly database backup"),
    Cron(hour=3, minute=0),
    jobs.nightly_backup,
)


def default_registry(settings: Settings) -> Registry:
    """The registry the bot runs: :data:`SWEEPS` in the configured time zone, and the nightly
    backup when a backup folder is configured."""
    backup = (NIGHTLY_BACKUP,) if settings.backup.dir is not None else ()
    return Registry((*SWEEPS, *backup), settings.tz)
