"""The services behind the jobs: housekeeping purges, run records and the /jobs overview."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import FrozenClock
from bot.services import jobs
from bot.services.demo import load_demo_data
from bot.services.jobs import JobState
from models import OutboxMessage, OutboxStatus, ProcessedUpdate
from scheduler.context import JobContext
from scheduler.registry import Cron, Every, Registry, Sweep

from .conftest import SHANGHAI, local


async def idle(ctx: JobContext) -> None:
    return None


REGISTRY = Registry(
    [
        Sweep("escalation", "Escalate overdue tickets", Every(timedelta(minutes=1)), idle),
        Sweep("daily-push", "Morning task push", Cron(hour=8), idle),
    ],
    SHANGHAI,
)


def outbox_row(
    status: OutboxStatus, due: datetime, sent: datetime | None = None, chat_id: int = 7
) -> OutboxMessage:
    return OutboxMessage(
        chat_id=chat_id,
        method="sendMessage",
        payload={"chat_id": chat_id, "text": status.value},
        status=status,
        not_before=due,
        created_at=due - timedelta(hours=1),
        sent_at=sent,
    )


async def test_handled_update_ids_are_forgotten_after_48_hours(
    session: AsyncSession, clock: FrozenClock
) -> None:
    now = clock.now()
    for update_id, age in ((1, timedelta(hours=49)), (2, timedelta(hours=47)), (3, timedelta(0))):
        session.add(ProcessedUpdate(bot_id=9, update_id=update_id, at=now - age))
    await session.flush()
    assert await jobs.purge_processed_updates(session, now) == 1
    left = (await session.exec(select(ProcessedUpdate.update_id))).all()
    assert sorted(left) == [2, 3]


async def test_finished_outbox_rows_are_purged_by_age_and_status(
    session: AsyncSession, clock: FrozenClock
) -> None:
    now = clock.now()
    day = timedelta(days=1)
    rows = {
        "sent 31 days ago": outbox_row(OutboxStatus.SENT, now - 40 * day, now - 31 * day),
        "sent 29 days ago, due 40": outbox_row(OutboxStatus.SENT, now - 40 * day, now - 29 * day),
        "dropped 31 days ago": outbox_row(OutboxStatus.DROPPED, now - 31 * day),
        "dropped 29 days ago": outbox_row(OutboxStatus.DROPPED, now - 29 * day),
        "failed 31 days ago": outbox_row(OutboxStatus.FAILED, now - 31 * day),
        "failed 91 days ago": outbox_row(OutboxStatus.FAILED, now - 91 * day),
        "pending for 100 days": outbox_row(OutboxStatus.PENDING, now - 100 * day),
    }
    session.add_all(rows.values())
    await session.flush()
    ids = {label: row.id for label, row in rows.items()}

    assert await jobs.purge_outbox(session, now) == 3
    left = set((await session.exec(select(OutboxMessage.id))).all())
    assert {label for label, row_id in ids.items() if row_id in left} == {
        "sent 29 days ago, due 40",
        "dropped 29 days ago",
        "failed 31 days ago",
        "pending for 100 days",
    }
    assert await jobs.purge_outbox(session, now) == 0


async def test_the_overview_of_jobs_never_run(session: AsyncSession, clock: FrozenClock) -> None:
    overview = await jobs.jobs_overview(session, REGISTRY, clock.now())  # Thu 09:00 local
    assert [(i.id, i.name, i.state) for i in overview] == [
        ("escalation", "Escalate overdue tickets", JobState.NEVER_RUN),
        ("daily-push", "Morning task push", JobState.NEVER_RUN),
    ]
    assert overview[0].next_fire_at == local(2026, 3, 12, 9, 1)
    assert overview[1].next_fire_at == local(2026, 3, 13, 8)
    assert not any(i.overdue for i in overview)
    assert all(i.last_started_at is None and i.last_error is None for i in overview)


async def test_the_overview_follows_runs_through_their_states(
    session: AsyncSession, clock: FrozenClock
) -> None:
    started = local(2026, 3, 12, 8)
    await jobs.record_start(session, "daily-push", started)
    await session.flush()
    info = await _info(session, "daily-push", clock.now())
    assert (info.state, info.last_started_at, info.last_finished_at) == (
        JobState.RUNNING,
        started,
        None,
    )

    await jobs.record_finish(session, "daily-push", started + timedelta(seconds=3))
    await session.flush()
    info = await _info(session, "daily-push", clock.now())
    assert (info.state, info.last_error) == (JobState.OK, None)
    assert info.next_fire_at == local(2026, 3, 13, 8)

    await jobs.record_start(session, "daily-push", local(2026, 3, 13, 8))
    await jobs.record_finish(session, "daily-push", local(2026, 3, 13, 8, 1), error="x" * 900)
    await session.flush()
    info = await _info(session, "daily-push", local(2026, 3, 13, 9))
    assert info.state == JobState.ERROR
    assert info.last_error == "x" * 500
    assert jobs.JOB_STATE_LABEL[info.state] == "last run failed"


async def test_a_job_whose_fire_went_by_unrun_is_overdue(
    session: AsyncSession, clock: FrozenClock
) -> None:
    await jobs.record_start(session, "daily-push", local(2026, 3, 10, 8))
    await jobs.record_finish(session, "daily-push", local(2026, 3, 10, 8))
    await session.flush()
    info = await _info(session, "daily-push", clock.now())
    assert info.next_fire_at == local(2026, 3, 11, 8)  # the missed fire, still owed
    assert info.overdue
    on_time = await _info(session, "daily-push", local(2026, 3, 11, 8, 1))
    assert not on_time.overdue  # a minute late is not yet a stopped scheduler


async def test_a_finish_without_a_recorded_start_still_records(
    session: AsyncSession, clock: FrozenClock
) -> None:
    await jobs.record_finish(session, "escalation", clock.now(), error="gone")
    await session.flush()
    info = await _info(session, "escalation", clock.now())
    assert (info.state, info.last_started_at, info.last_error) == (
        JobState.ERROR,
        clock.now(),
        "gone",
    )
    runs = await jobs.last_runs(session)
    assert list(runs) == ["escalation"]


async def _info(session: AsyncSession, job_id: str, now: datetime) -> jobs.JobInfo:
    return next(i for i in await jobs.jobs_overview(session, REGISTRY, now) if i.id == job_id)


async def test_the_morning_push_goes_in_rounds_each_its_own_transaction(
    ctx: JobContext, pooled_engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Thousands of workers' pushes are planned in short transactions: the write lock is let
    go between rounds, and every worker still gets exactly one push."""
    from scheduler import jobs as job_module
    from tests.statements import Statements

    async with ctx.sessions() as session:
        await load_demo_data(session, local(2026, 3, 12, 7))
        await session.commit()
    monkeypatch.setattr(job_module, "PUSH_ROUND", 4)
    ctx.clock.set(local(2026, 3, 13, 8))  # type: ignore[attr-defined]
    with Statements(pooled_engine) as sql:
        await job_module.daily_task_push(ctx)
    async with ctx.sessions() as session:
        pushed = (
            await session.exec(
                select(OutboxMessage.chat_id).where(col(OutboxMessage.ref).startswith("dp:"))
            )
        ).all()
    assert len(pushed) == len(set(pushed)) == 27  # each worker once (the demo's 27)
    assert sql.transactions >= 27 // 4


async def test_the_morning_push_reads_its_rounds_without_the_write_lock(
    ctx: JobContext, pooled_engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each round is worked out in a read-only session and only claimed and queued in a
    writing one: a round's plan never holds the write lock (on PostgreSQL a write in the
    read-only session would fail), and every worker still gets exactly one push."""
    from dataclasses import replace

    from bot.db import create_reader_factory
    from scheduler import jobs as job_module

    async with ctx.sessions() as session:
        await load_demo_data(session, local(2026, 3, 12, 7))
        await session.commit()
    monkeypatch.setattr(job_module, "PUSH_ROUND", 5)
    monkeypatch.setattr(job_module, "ROUND_PAUSE", 0)
    ctx.clock.set(local(2026, 3, 13, 8))  # type: ignore[attr-defined]
    reading = replace(ctx, readers=create_reader_factory(pooled_engine))
    await job_module.daily_task_push(reading)
    await job_module.daily_task_push(reading)  # again: nobody twice
    async with ctx.sessions() as session:
        pushed = (
            await session.exec(
                select(OutboxMessage.chat_id).where(col(OutboxMessage.ref).startswith("dp:"))
            )
        ).all()
    assert len(pushed) == len(set(pushed)) == 27


async def test_the_monthly_digest_is_worked_out_without_the_write_lock(
    ctx: JobContext, pooled_engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A month of tickets is read in a read-only session: while the digest is worked out,
    anyone else's write goes through at once (on SQLite it would wait out the busy timeout
    and fail behind a job that held the write lock), and it is queued once, in a short
    writing transaction."""
    from dataclasses import replace

    from bot.db import create_reader_factory
    from bot.services import digests
    from scheduler import jobs as job_module

    async with ctx.sessions() as session:
        await load_demo_data(session, local(2026, 3, 12, 7))
        await session.commit()
    ctx.clock.set(local(2026, 4, 1, 9, 30))  # type: ignore[attr-defined]
    plan = digests.plan_monthly_indicators
    others: list[int] = []

    async def planned_meanwhile(*args: Any) -> list[digests.PlannedDigest]:
        made = await plan(*args)
        async with ctx.sessions() as other:  # someone else's update, while the job reads
            other.add(ProcessedUpdate(bot_id=9, update_id=len(others), at=ctx.clock.now()))
            await other.commit()
        others.append(len(made))
        return made

    monkeypatch.setattr(digests, "plan_monthly_indicators", planned_meanwhile)
    reading = replace(ctx, readers=create_reader_factory(pooled_engine))
    await job_module.monthly_indicators(reading)
    await job_module.monthly_indicators(reading)  # again: nobody twice
    async with ctx.sessions() as session:
        queued = (
            await session.exec(
                select(OutboxMessage.ref).where(col(OutboxMessage.ref).startswith("dg:month:"))
            )
        ).all()
    texts = [ref for ref in queued if "#" not in ref]  # each text, then its files (#file<n>)
    assert others[1] == 0 and others[0] == len(texts) == len(set(texts)) >= 1
    assert len(queued) == len(set(queued))
