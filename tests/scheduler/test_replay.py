"""The deterministic runner: due sweeps run at once, in order, each at its own fire time."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from bot.clock import FrozenClock
from models import JobRun, OutboxMessage, OutboxStatus, ProcessedUpdate
from scheduler.context import JobContext
from scheduler.registry import SWEEPS, Cron, Every, Registry, Sweep
from scheduler.replay import Replay, run_due

from .conftest import SHANGHAI, Calls, local


def calendar(calls: Calls) -> Registry:
    return Registry(
        [
            Sweep(
                "six-hourly", "six-hourly", Every(timedelta(hours=6)), calls.recorder("six-hourly")
            ),
            Sweep("daily-push", "daily-push", Cron(hour=8), calls.recorder("daily-push")),
            Sweep(
                "weekly-digest",
                "weekly-digest",
                Cron(day_of_week="mon", hour=8),
                calls.recorder("weekly-digest"),
            ),
            Sweep(
                "monthly-digest",
                "monthly-digest",
                Cron(day=1, hour=8),
                calls.recorder("monthly-digest"),
            ),
        ],
        SHANGHAI,
    )


async def job_runs(ctx: JobContext) -> dict[str, JobRun]:
    async with ctx.sessions() as session:
        return {run.job_id: run for run in (await session.exec(select(JobRun))).all()}


async def test_each_fire_runs_once_in_order_at_its_own_time(ctx: JobContext, calls: Calls) -> None:
    registry = calendar(calls)
    since, until = local(2026, 3, 28), local(2026, 4, 1, 12)  # Saturday to Wednesday noon
    outcomes = await run_due(registry, ctx, since, until)

    assert [(o.job_id, o.started_at) for o in outcomes] == calls.seen
    assert calls.seen == [(due.job.id, due.at) for due in registry.due(since, until)]
    assert calls.count("six-hourly") == 3 + 4 + 4 + 4 + 3  # Sat 06..18, Sun-Tue, Wed 00..12
    assert calls.count("daily-push") == 5
    assert calls.count("weekly-digest") == 1  # Monday 30 March
    assert calls.count("monthly-digest") == 1  # 1 April
    assert [at for _, at in calls.seen] == sorted(at for _, at in calls.seen)
    # at 08:00 on Monday 30 March two sweeps fire: in declaration order
    at_eight = [job_id for job_id, at in calls.seen if at == local(2026, 3, 30, 8)]
    assert at_eight == ["daily-push", "weekly-digest"]
    assert ctx.clock.now() == datetime(2026, 3, 12, 1, 0, tzinfo=UTC)  # the shared clock stays

    runs = await job_runs(ctx)
    assert runs["daily-push"].last_started_at == local(2026, 4, 1, 8)
    assert runs["daily-push"].last_finished_at == local(2026, 4, 1, 8)
    assert runs["monthly-digest"].last_status == "ok"
    assert runs["six-hourly"].last_error is None


async def test_a_failing_sweep_is_recorded_and_the_others_still_run(
    ctx: JobContext, calls: Calls
) -> None:
    registry = Registry(
        [
            Sweep("broken", "broken", Cron(hour=8), calls.failing("broken")),
            Sweep("healthy", "healthy", Cron(hour=8), calls.recorder("healthy")),
        ],
        SHANGHAI,
    )
    outcomes = await run_due(registry, ctx, local(2026, 3, 12), local(2026, 3, 13, 12))
    assert [(o.job_id, o.ok) for o in outcomes] == [
        ("broken", False),
        ("healthy", True),
        ("broken", False),
        ("healthy", True),
    ]
    runs = await job_runs(ctx)
    assert runs["broken"].last_status == "error"
    assert runs["broken"].last_error == "RuntimeError: boom"
    assert runs["healthy"].last_status == "ok"

    with pytest.raises(RuntimeError, match="boom"):
        await run_due(
            registry, ctx, local(2026, 3, 13, 12), local(2026, 3, 14, 12), raise_errors=True
        )
    assert calls.count("healthy") == 3  # ran even though the one before it failed


async def test_a_later_success_clears_the_recorded_error(ctx: JobContext, calls: Calls) -> None:
    failing = Registry([Sweep("flaky", "flaky", Cron(hour=8), calls.failing("flaky"))], SHANGHAI)
    fixed = Registry([Sweep("flaky", "flaky", Cron(hour=8), calls.recorder("flaky"))], SHANGHAI)
    await run_due(failing, ctx, local(2026, 3, 12), local(2026, 3, 12, 12))
    await run_due(fixed, ctx, local(2026, 3, 12, 12), local(2026, 3, 13, 12))
    run = (await job_runs(ctx))["flaky"]
    assert (run.last_status, run.last_error) == ("ok", None)
    assert run.last_started_at == local(2026, 3, 13, 8)


async def test_catching_up_after_each_move_of_the_shared_clock(
    ctx: JobContext, calls: Calls, clock: FrozenClock
) -> None:
    registry = calendar(calls)
    start = clock.now()
    replay = Replay(registry, ctx)
    for step in (timedelta(minutes=30), timedelta(hours=23), timedelta(days=2), timedelta(0)):
        clock.advance(step)
        await replay.catch_up()
    expected = [(due.job.id, due.at) for due in registry.due(start, clock.now())]
    assert calls.seen == expected

    calls.seen.clear()
    clock.advance(timedelta(days=30))  # a month ahead, each sweep once
    await replay.catch_up(coalesce=True)
    assert sorted(job_id for job_id, _ in calls.seen) == sorted(job.id for job in registry)


async def test_the_window_must_not_run_backwards(ctx: JobContext, calls: Calls) -> None:
    with pytest.raises(ValueError, match="before it starts"):
        await run_due(calendar(calls), ctx, local(2026, 3, 2), local(2026, 3, 1))


async def test_the_housekeeping_sweeps_purge_on_their_nightly_run(ctx: JobContext) -> None:
    now = ctx.clock.now()  # Thursday 09:00 in Shanghai
    async with ctx.sessions() as session:
        session.add(ProcessedUpdate(bot_id=1, update_id=1, at=now - timedelta(days=3)))
        session.add(ProcessedUpdate(bot_id=1, update_id=2, at=now))
        session.add(
            OutboxMessage(
                chat_id=5,
                method="sendMessage",
                status=OutboxStatus.SENT,
                not_before=now - timedelta(days=40),
                created_at=now - timedelta(days=40),
                sent_at=now - timedelta(days=40),
            )
        )
        await session.commit()

    nightly = Registry(
        [s for s in SWEEPS if s.id.startswith("housekeeping.")], ctx.settings.tz
    )  # the minute-by-minute sweeps are tested on their own
    outcomes = await run_due(nightly, ctx, now, now + timedelta(days=1))
    assert {o.job_id for o in outcomes} == {
        "housekeeping.processed_updates",
        "housekeeping.outbox",
    }
    assert all(o.ok for o in outcomes)
    assert {o.started_at for o in outcomes} == {
        local(2026, 3, 13, 3, 10),
        local(2026, 3, 13, 3, 20),
    }
    async with ctx.sessions() as session:
        assert (await session.exec(select(ProcessedUpdate.update_id))).all() == [2]
        assert (await session.exec(select(OutboxMessage))).all() == []


async def test_jobs_wake_the_outbox_sender_after_their_run(ctx: JobContext, calls: Calls) -> None:
    woken: list[bool] = []
    awake = replace(ctx, wake_outbox=lambda: woken.append(True))
    registry = Registry([Sweep("push", "push", Cron(hour=8), calls.recorder("push"))], SHANGHAI)
    await run_due(registry, awake, local(2026, 3, 12), local(2026, 3, 14))
    assert woken == [True, True]
