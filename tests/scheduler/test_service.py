"""The live scheduler: only the leader acts; a takeover runs missed fires once, at once.

APScheduler times its jobs by the wall clock, so these tests freeze the job clock at the real
present; they wait on events, never on fixed sleeps.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

import pytest
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_SCHEDULER_RESUMED,
    JobExecutionEvent,
)
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.clock import FrozenClock, SystemClock
from bot.db import SessionFactory, create_session_factory
from bot.settings import Settings
from models import JobRun, SchedulerLease
from scheduler.context import JobContext
from scheduler.leader import LeaseLock, leader_lock_for
from scheduler.registry import Cron, Registry, Sweep
from scheduler.service import SchedulerService

from .conftest import SHANGHAI, Calls

WAIT = 5.0  # the most a test waits for an event that normally comes within milliseconds


def now_clock() -> FrozenClock:
    return FrozenClock(SystemClock().now())


def registry_of(calls: Calls) -> Registry:
    return Registry(
        [
            Sweep("broken", "broken", Cron(hour=3), calls.failing("broken")),
            Sweep("daily", "daily", Cron(hour=8), calls.recorder("daily")),
            Sweep("weekly", "weekly", Cron(day_of_week="mon", hour=8), calls.recorder("weekly")),
            Sweep("fresh", "fresh", Cron(day=1, hour=8), calls.recorder("fresh")),
        ],
        SHANGHAI,
    )


def finished(service: SchedulerService, *job_ids: str) -> asyncio.Event:
    """Set once APScheduler has seen each of these jobs finish (recorded runs included)."""
    event, waiting = asyncio.Event(), set(job_ids)

    def seen(job: JobExecutionEvent) -> None:
        waiting.discard(job.job_id)
        if not waiting:
            event.set()

    service.scheduler.add_listener(seen, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    return event


def service(
    engine: AsyncEngine, clock: FrozenClock, settings: Settings, registry: Registry, lock_name: str
) -> SchedulerService:
    ctx = JobContext(create_session_factory(engine), clock, settings)
    lock = LeaseLock(engine, clock, name=lock_name, lease=timedelta(seconds=45))
    return SchedulerService(registry, ctx, lock, renew_every=0.01)


async def test_only_the_leader_loads_jobs_and_a_lapsed_leader_is_replaced(
    engine: AsyncEngine, settings: Settings, calls: Calls
) -> None:
    clock, name = now_clock(), uuid.uuid4().hex
    a = service(engine, clock, settings, registry_of(calls), name)
    b = service(engine, clock, settings, registry_of(calls), name)
    a.scheduler.start(paused=True)
    b.scheduler.start(paused=True)
    try:
        assert await a.tick()
        assert not await b.tick()
        assert sorted(job.id for job in a.scheduler.get_jobs()) == [
            "broken",
            "daily",
            "fresh",
            "weekly",
        ]
        assert b.scheduler.get_jobs() == []
        # nothing ran before: every job waits for its next fire time
        for job in a.scheduler.get_jobs():
            assert job.next_run_time > clock.now()

        clock.advance(timedelta(seconds=46))  # a hangs and its lease lapses
        assert await b.tick()
        assert not await a.tick()
        assert a.scheduler.get_jobs() == []
        assert len(b.scheduler.get_jobs()) == 4
        assert calls.seen == []
    finally:
        await a.stop()
        await b.stop()


async def test_a_takeover_runs_each_missed_fire_once_and_survives_errors(
    engine: AsyncEngine, settings: Settings, calls: Calls
) -> None:
    clock = now_clock()
    now = clock.now()
    sessions = create_session_factory(engine)
    async with sessions() as session:
        for job_id in ("broken", "daily"):  # last run three days ago: fires were missed
            session.add(JobRun(job_id=job_id, last_started_at=now - timedelta(days=3)))
        session.add(JobRun(job_id="weekly", last_started_at=now - timedelta(seconds=1)))
        await session.commit()

    leader = service(engine, clock, settings, registry_of(calls), uuid.uuid4().hex)
    ran = finished(leader, "broken", "daily")
    leader.scheduler.start(paused=True)
    try:
        assert await leader.tick()
        await asyncio.wait_for(ran.wait(), WAIT)
        await asyncio.sleep(0.05)  # room for a wrong second run to show up
        assert sorted(job_id for job_id, _ in calls.seen) == ["broken", "daily"]
        assert leader.scheduler.running
        for job in leader.scheduler.get_jobs():  # back on the timetable
            assert job.next_run_time > now
    finally:
        await leader.stop()

    async with sessions() as session:
        runs = {run.job_id: run for run in (await session.exec(select(JobRun))).all()}
    assert runs["broken"].last_status == "error"
    assert runs["broken"].last_error == "RuntimeError: boom"
    assert runs["daily"].last_status == "ok"
    assert runs["daily"].last_started_at == now
    assert runs["weekly"].last_finished_at is None  # untouched


async def test_a_process_that_no_longer_leads_runs_nothing(
    engine: AsyncEngine, settings: Settings, calls: Calls
) -> None:
    clock = now_clock()
    follower = service(engine, clock, settings, registry_of(calls), uuid.uuid4().hex)
    await follower._fire("daily")
    assert calls.seen == []
    async with create_session_factory(engine)() as session:
        assert await session.get(JobRun, "daily") is None


async def test_stopping_the_leader_hands_over_to_the_waiting_process(
    engine: AsyncEngine, settings: Settings, calls: Calls
) -> None:
    clock, name = now_clock(), uuid.uuid4().hex
    a = service(engine, clock, settings, registry_of(calls), name)
    b = service(engine, clock, settings, registry_of(calls), name)
    a_leads, b_leads = resumed(a), resumed(b)
    first = asyncio.create_task(a.run())
    await asyncio.wait_for(a_leads.wait(), WAIT)
    second = asyncio.create_task(b.run())
    await asyncio.sleep(0.05)  # b tries several times meanwhile
    assert not b.leading

    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    assert not a.scheduler.running
    await asyncio.wait_for(b_leads.wait(), WAIT)
    assert b.leading
    second.cancel()
    await asyncio.gather(second, return_exceptions=True)
    async with create_session_factory(engine)() as session:
        assert await session.get(SchedulerLease, name) is None  # released on the way out


async def test_the_database_lock_is_used_by_default(
    engine: AsyncEngine, settings: Settings, calls: Calls
) -> None:
    clock, name = now_clock(), uuid.uuid4().hex
    ctx = JobContext(create_session_factory(engine), clock, settings)
    one = SchedulerService(registry_of(calls), ctx, leader_lock_for(engine, clock, name=name))
    two = SchedulerService(registry_of(calls), ctx, leader_lock_for(engine, clock, name=name))
    one.scheduler.start(paused=True)
    two.scheduler.start(paused=True)
    try:
        assert [await one.tick(), await two.tick()] == [True, False]
    finally:
        await one.stop()
        await two.stop()


def resumed(service: SchedulerService) -> asyncio.Event:
    """Set when the service's scheduler resumes, that is when it starts leading."""
    event = asyncio.Event()
    service.scheduler.add_listener(lambda _: event.set(), EVENT_SCHEDULER_RESUMED)
    return event


class FlakyLock:
    """A lock whose database is unreachable on the first try."""

    holder = "flaky"

    def __init__(self) -> None:
        self.tries = 0

    async def try_lead(self) -> bool:
        self.tries += 1
        if self.tries == 1:
            raise ConnectionError("database unreachable")
        return True

    def leads(self, now: datetime) -> bool:
        return self.tries > 1

    async def release(self) -> None:
        return None


async def test_an_unreachable_database_only_delays_leading(
    engine: AsyncEngine, settings: Settings, calls: Calls
) -> None:
    clock = now_clock()
    ctx = JobContext(create_session_factory(engine), clock, settings)
    flaky = SchedulerService(registry_of(calls), ctx, FlakyLock())
    flaky.scheduler.start(paused=True)
    try:
        assert not await flaky.tick()
        assert await flaky.tick()
        assert len(flaky.scheduler.get_jobs()) == 4
    finally:
        await flaky.stop()
        await flaky.stop()  # stopping twice is harmless


class HeldLock:
    """A lock this process always holds, given back without touching the database."""

    holder = "alone"

    async def try_lead(self) -> bool:
        return True

    def leads(self, now: datetime) -> bool:
        return True

    async def release(self) -> None:
        return None  # returns at once: nothing else gives a job time to end meanwhile


async def missed(sessions: SessionFactory, clock: FrozenClock, job_id: str) -> None:
    """Make ``job_id``'s last run three days old: it runs at once when the scheduler leads."""
    async with sessions() as session:
        session.add(JobRun(job_id=job_id, last_started_at=clock.now() - timedelta(days=3)))
        await session.commit()


async def test_stopping_waits_for_the_jobs_under_way(
    engine: AsyncEngine, settings: Settings
) -> None:
    """A job still running when the scheduler stops is cancelled and waited for, cleanup
    included: none is left to run on after the app has closed its engine, nor to be cancelled
    a second time when the event loop closes."""
    clock, sessions = now_clock(), create_session_factory(engine)
    began, cleaned = asyncio.Event(), asyncio.Event()
    runs: list[asyncio.Task[object] | None] = []

    async def slow(ctx: JobContext) -> None:
        runs.append(asyncio.current_task())
        began.set()
        try:
            await asyncio.Event().wait()  # until cancelled
        finally:
            await asyncio.sleep(0.2)  # its cleanup takes a while (a connection to close, say)
            cleaned.set()

    await missed(sessions, clock, "slow")
    registry = Registry([Sweep("slow", "slow", Cron(hour=3), slow)], SHANGHAI)
    scheduler = SchedulerService(registry, JobContext(sessions, clock, settings), HeldLock())
    running = asyncio.create_task(scheduler.run())
    await asyncio.wait_for(began.wait(), WAIT)

    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    assert cleaned.is_set()
    assert [run is not None and run.done() for run in runs] == [True]


async def test_a_job_waiting_for_the_sqlite_write_lock_does_not_hang_the_exit(
    pooled_engine: AsyncEngine, settings: Settings
) -> None:
    """The hang seen at exit (``gridbot sandbox``, the e2e suite on a loaded machine): a job
    waiting for SQLite's write lock when the scheduler stops. Cancelled, the job closes its
    connection in a task SQLAlchemy shields; had the scheduler left the job running, closing
    the event loop (``asyncio.run``) would cancel that task as well, and it would then wait
    forever for aiosqlite's worker thread, gone meanwhile."""
    if pooled_engine.dialect.name != "sqlite":
        pytest.skip("SQLite's write lock")
    clock, sessions = now_clock(), create_session_factory(pooled_engine)
    began, go, waiting = asyncio.Event(), asyncio.Event(), asyncio.Event()
    runs: list[asyncio.Task[object]] = []

    async def writer(ctx: JobContext) -> None:
        runs.extend(task for task in [asyncio.current_task()] if task is not None)
        began.set()
        await go.wait()
        async with ctx.sessions() as session:
            await session.get(JobRun, "writer")  # BEGIN IMMEDIATE waits in the driver's thread

    def beginning(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement == "BEGIN IMMEDIATE":
            waiting.set()

    await missed(sessions, clock, "writer")
    registry = Registry([Sweep("writer", "writer", Cron(hour=3), writer)], SHANGHAI)
    scheduler = SchedulerService(registry, JobContext(sessions, clock, settings), HeldLock())
    before = asyncio.all_tasks()
    running = asyncio.create_task(scheduler.run())
    await asyncio.wait_for(began.wait(), WAIT)
    holder = sessions()
    await holder.get(JobRun, "writer")  # holds the write lock
    event.listen(pooled_engine.sync_engine, "before_cursor_execute", beginning)
    go.set()
    await asyncio.wait_for(waiting.wait(), WAIT)
    event.remove(pooled_engine.sync_engine, "before_cursor_execute", beginning)

    async def letting_go() -> None:
        await asyncio.sleep(0.3)  # the holder lets go a little after the stop began
        await holder.rollback()
        await holder.close()

    holder_ends = asyncio.create_task(letting_go())
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    for _ in range(3):  # what the stop left running gets going, as it has when the loop closes
        await asyncio.sleep(0)
    left = asyncio.all_tasks() - before - {holder_ends}
    # as asyncio.run does with every task left when it closes the loop, in its order (a set's):
    # here the one that hangs, the job's run before the task that closes its connection
    for task in sorted(left, key=lambda task: task not in runs):
        task.cancel()
    stuck: set[asyncio.Task[object]] = set()
    if left:
        _, stuck = await asyncio.wait(left, timeout=WAIT)
    try:
        assert not stuck, [task.get_coro() for task in stuck]
    finally:
        for task in stuck:  # a second cancellation frees them
            task.cancel()
        await asyncio.gather(*stuck, holder_ends, return_exceptions=True)
