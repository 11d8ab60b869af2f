"""The live scheduler: APScheduler in this process, acting only while it holds the leader lock.

Every process that may schedule runs a :class:`SchedulerService` (:func:`build_scheduler`).
Each starts an ``AsyncIOScheduler`` paused and asks for the lock every
:data:`~scheduler.leader.RENEW_EVERY`; the one that gets it loads the registry's jobs and
resumes, the others keep asking. A leader that loses the lock pauses at once and drops its jobs.

On taking over, each job's next run is the first fire time after its last recorded start
(``JobRun``), so a fire missed while no one led (a restart, a leader change) runs once, at once,
and a fire the previous leader already ran is not run again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import Clock
from bot.db import SessionFactory, create_reader_factory
from bot.services import jobs as job_records
from bot.settings import Settings
from scheduler.context import JobContext
from scheduler.leader import RENEW_EVERY, LeaderLock, leader_lock_for
from scheduler.registry import Registry, default_registry
from scheduler.runs import run_recorded

log = logging.getLogger(__name__)

JOB_DEFAULTS = {
    "coalesce": True,  # missed fires run once, not once per miss
    "max_instances": 1,  # a sweep still running when it fires again is not started twice
    "misfire_grace_time": None,  # however late: sweeps pick what is due, so late is harmless
}
STOP_GRACE = 15.0
"""Seconds a stopping scheduler waits for the jobs it cancelled to end. A job waiting for
SQLite's write lock sees its cancellation only when the driver's thread returns (at the latest
when ``busy_timeout``, 10 s, runs out), and then still closes its connection."""


class SchedulerService:
    """One process's scheduler and its claim to leadership."""

    def __init__(
        self,
        registry: Registry,
        ctx: JobContext,
        lock: LeaderLock,
        *,
        renew_every: float = RENEW_EVERY.total_seconds(),
    ) -> None:
        self.registry = registry
        self.ctx = ctx
        self.lock = lock
        self.renew_every = renew_every
        self.leading = False
        self._stopped = False
        self._jobs: set[asyncio.Task[object]] = set()  # the runs under way
        self.scheduler = AsyncIOScheduler(timezone=registry.tz, job_defaults=JOB_DEFAULTS)

    async def run(self) -> None:
        """Compete for leadership and run the jobs while leading, until cancelled."""
        self.scheduler.start(paused=True)
        try:
            while True:
                await self.tick()
                await asyncio.sleep(self.renew_every)
        finally:
            await self.stop()

    async def tick(self) -> bool:
        """Take or renew the lock once and start or stop acting accordingly.

        Any failure (the database unreachable, say) means not acting until the next tick; the
        loop itself never dies of it.
        """
        try:
            leads = await self.lock.try_lead()
            if leads and not self.leading:
                await self._take_over()
        except Exception:
            log.exception("scheduler round failed; not acting until the next one")
            leads = False
        if not leads and self.leading:
            self._step_down()
        return self.leading

    async def _take_over(self) -> None:
        now = self.ctx.clock.now()
        async with self.ctx.sessions() as session:
            runs = await job_records.last_runs(session)
        for job in self.registry:
            run = runs.get(job.id)
            next_run = job_records.next_due(
                job, run.last_started_at if run is not None else None, now
            )
            self.scheduler.add_job(
                self._fire,
                trigger=job.trigger,
                args=(job.id,),
                id=job.id,
                name=job.id,
                next_run_time=next_run,
                replace_existing=True,
            )
        self.leading = True
        self.scheduler.resume()
        log.info("scheduler %s leads: %d jobs", self.lock.holder, len(self.registry))

    def _step_down(self) -> None:
        self.scheduler.pause()
        self.scheduler.remove_all_jobs()
        self.leading = False
        log.warning("scheduler %s lost the lead; its jobs are stopped", self.lock.holder)

    async def _fire(self, job_id: str) -> None:
        if not (self.leading and self.lock.leads(self.ctx.clock.now())):
            log.warning("job %s skipped: this scheduler no longer leads", job_id)
            return
        run = asyncio.current_task()
        assert run is not None  # APScheduler runs each coroutine job in a task of its own
        self._jobs.add(run)  # so that stop() can wait for it
        try:
            await run_recorded(self.registry[job_id], self.ctx)
        finally:
            self._jobs.discard(run)

    async def stop(self) -> None:
        """Stop acting, end the runs under way, and hand the lock over at once.

        The runs are cancelled and waited for (:data:`STOP_GRACE` at most), so that none is
        still in its cleanup when the caller closes the engine, nor when the event loop closes
        and cancels every task left (``asyncio.run``). A run cancelled while it waited for
        SQLite's write lock closes its connection in a shielded task of SQLAlchemy's; cancel
        that one too and it waits forever for aiosqlite's worker thread, already gone, and
        the process hangs on its way out.
        """
        if self.scheduler.running and not self._stopped:
            self.scheduler.shutdown(wait=False)  # takes effect on the next loop iteration
        self._stopped = True
        self.leading = False
        await self._end_jobs()
        try:
            await self.lock.release()
        except Exception:
            log.exception("the scheduler lock could not be released; it will lapse")

    async def _end_jobs(self) -> None:
        runs = list(self._jobs)
        if not runs:
            return
        for task in runs:
            if not task.cancelling():  # APScheduler's shutdown cancels them too
                task.cancel()
        _, stuck = await asyncio.wait(runs, timeout=STOP_GRACE)
        if stuck:
            log.error("%d scheduled jobs did not stop within %g s", len(stuck), STOP_GRACE)


def build_scheduler(
    *,
    engine: AsyncEngine,
    sessions: SessionFactory,
    clock: Clock,
    settings: Settings,
    wake_outbox: Callable[[], None] | None = None,
    registry: Registry | None = None,
) -> SchedulerService:
    """GridBot's scheduler for this process; ``await service.run()`` runs it until cancelled.

    Inside ``gridbot run`` it runs as a task next to the outbox sender, with
    ``wake_outbox=app.sender.wake``; alone (``gridbot scheduler``) it is awaited.
    """
    ctx = JobContext(
        sessions=sessions,
        clock=clock,
        settings=settings,
        wake_outbox=wake_outbox,
        readers=create_reader_factory(engine),
    )
    return SchedulerService(
        registry if registry is not None else default_registry(settings),
        ctx,
        leader_lock_for(engine, clock),
    )
