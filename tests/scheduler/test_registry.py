"""Fire times of the declared sweeps: pure functions of the window, in Asia/Shanghai."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.settings import Settings
from scheduler.context import JobContext
from scheduler.registry import SWEEPS, Cron, Every, Registry, Sweep, default_registry

from .conftest import SHANGHAI, local


async def idle(ctx: JobContext) -> None:
    return None


def sweep(job_id: str, trigger: Every | Cron) -> Sweep:
    return Sweep(job_id, job_id, trigger, idle)


CALENDAR = Registry(
    [
        sweep("escalation", Every(timedelta(minutes=1))),
        sweep("daily-push", Cron(hour=8)),
        sweep("weekly-digest", Cron(day_of_week="mon", hour=8, minute=30)),
        sweep("half-monthly-digest", Cron(day="1,16", hour=9)),
        sweep("monthly-digest", Cron(day=1, hour=9, minute=30)),
    ],
    SHANGHAI,
)


def counts(registry: Registry, since: datetime, until: datetime, **kw: bool) -> dict[str, int]:
    return dict(Counter(due.job.id for due in registry.due(since, until, **kw)))


def test_a_window_across_midnight_a_week_and_a_month() -> None:
    # Sunday 29 March 23:58 (exclusive) to Wednesday 1 April 09:30 (inclusive), local time
    found = counts(CALENDAR, local(2026, 3, 29, 23, 58), local(2026, 4, 1, 9, 30))
    assert found == {
        "escalation": 1 + 2 * 1440 + 9 * 60 + 31,  # 23:59, two whole days, 00:00..09:30
        "daily-push": 3,  # 30 Mar, 31 Mar, 1 Apr
        "weekly-digest": 1,  # Monday 30 March
        "half-monthly-digest": 1,  # 1 April
        "monthly-digest": 1,  # 1 April 09:30, the window's last instant
    }


def test_calendar_fires_land_on_local_wall_clock_times() -> None:
    pushes = [
        due.at
        for due in CALENDAR.due(local(2026, 3, 12), local(2026, 3, 15))
        if due.job.id == "daily-push"
    ]
    assert pushes == [local(2026, 3, day, 8) for day in (12, 13, 14)]
    assert pushes[0] == datetime(2026, 3, 12, 0, 0, tzinfo=UTC)


def test_a_whole_year_of_digests() -> None:
    year = Registry([s.sweep for s in CALENDAR if s.id != "escalation"], SHANGHAI)
    found = counts(year, local(2026, 1, 1) - timedelta(seconds=1), local(2027, 1, 1))
    assert found == {
        "daily-push": 365,
        "weekly-digest": 52,
        "half-monthly-digest": 24,
        "monthly-digest": 12,
    }


def test_fires_run_in_time_order_then_in_declaration_order() -> None:
    tied = Registry([sweep("b-second", Cron(hour=8)), sweep("a-first", Cron(hour=8))], SHANGHAI)
    due = tied.due(local(2026, 3, 12), local(2026, 3, 14))
    assert [(d.at, d.job.id) for d in due] == [
        (local(2026, 3, 12, 8), "b-second"),
        (local(2026, 3, 12, 8), "a-first"),
        (local(2026, 3, 13, 8), "b-second"),
        (local(2026, 3, 13, 8), "a-first"),
    ]


def test_the_window_is_open_at_its_start_and_closed_at_its_end() -> None:
    push = CALENDAR["daily-push"]
    eight = local(2026, 3, 12, 8)
    assert list(push.fire_times(eight, eight + timedelta(days=1))) == [eight + timedelta(days=1)]
    assert list(push.fire_times(eight - timedelta(seconds=1), eight)) == [eight]
    assert push.next_fire_after(eight) == local(2026, 3, 13, 8)


def test_intervals_are_aligned_whatever_the_moment_asked() -> None:
    quarter = Registry([sweep("q", Every(timedelta(minutes=15)))], SHANGHAI)["q"]
    assert quarter.next_fire_after(local(2026, 3, 12, 10, 7)) == local(2026, 3, 12, 10, 15)
    assert quarter.next_fire_after(local(2026, 3, 12, 10, 15)) == local(2026, 3, 12, 10, 30)
    odd = datetime(2026, 3, 12, 2, 7, 33, 123456, tzinfo=UTC)
    assert quarter.next_fire_after(odd) == local(2026, 3, 12, 10, 15)


def test_coalescing_fires_each_sweep_once_at_its_last_time() -> None:
    due = CALENDAR.due(local(2026, 3, 1), local(2026, 4, 30, 12), coalesce=True)
    assert [(d.job.id, d.at) for d in due] == [
        ("monthly-digest", local(2026, 4, 1, 9, 30)),
        ("half-monthly-digest", local(2026, 4, 16, 9)),
        ("weekly-digest", local(2026, 4, 27, 8, 30)),
        ("daily-push", local(2026, 4, 30, 8)),
        ("escalation", local(2026, 4, 30, 12)),
    ]


HOURLY = Registry(
    [
        sweep("hourly", Every(timedelta(hours=1))),
        sweep("daily-push", Cron(hour=8)),
        sweep("half-monthly-digest", Cron(day="1,16", hour=9)),
    ],
    SHANGHAI,
)
START = local(2026, 1, 1)
minutes = st.integers(min_value=0, max_value=40 * 24 * 60)


@settings(max_examples=40, deadline=None)
@given(minutes, minutes, minutes)
def test_consecutive_windows_fire_everything_exactly_once(a: int, b: int, c: int) -> None:
    first, middle, last = (START + timedelta(minutes=m) for m in sorted((a, b, c)))
    whole = HOURLY.due(first, last)
    split = HOURLY.due(first, middle) + HOURLY.due(middle, last)
    assert [(d.at, d.job.id) for d in split] == [(d.at, d.job.id) for d in whole]
    assert all(d.at.astimezone(SHANGHAI).hour == 8 for d in whole if d.job.id == "daily-push")


def test_declarations_are_checked_when_the_registry_is_built() -> None:
    with pytest.raises(ValueError, match="declared twice"):
        Registry([sweep("same", Cron(hour=1)), sweep("same", Cron(hour=2))], SHANGHAI)
    with pytest.raises(ValueError, match="must match"):
        Registry([sweep("Has Spaces", Cron(hour=1))], SHANGHAI)
    with pytest.raises(ValueError, match="must match"):
        Registry([sweep("x" * 65, Cron(hour=1))], SHANGHAI)
    with pytest.raises(ValueError):
        Registry([sweep("bad-cron", Cron(hour=25))], SHANGHAI)
    with pytest.raises(ValueError, match="whole number of seconds"):
        Every(timedelta(milliseconds=1500))
    with pytest.raises(ValueError, match="aware"):
        CALENDAR.due(datetime(2026, 3, 1), datetime(2026, 3, 2))


def test_the_default_registry_holds_every_declared_sweep_in_the_configured_zone() -> None:
    registry = default_registry(Settings(_env_file=None, timezone="Asia/Shanghai"))  # type: ignore[call-arg]
    assert [job.id for job in registry] == [s.id for s in SWEEPS]
    assert {"housekeeping.processed_updates", "housekeeping.outbox"} <= {s.id for s in SWEEPS}
    for job in registry:  # every sweep fires within a month (the monthly digest at the latest)
        fire = job.next_fire_after(local(2026, 3, 12, 9))
        assert fire is not None
        assert local(2026, 3, 12, 9) < fire <= local(2026, 4, 12, 9)
