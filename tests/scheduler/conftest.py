"""Fixtures of the scheduler tests: a job context on the test database, recording sweeps."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import FrozenClock
from bot.db import create_engine, create_session_factory
from bot.settings import Settings
from scheduler.context import JobContext

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A wall-clock time in Shanghai."""
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


@dataclass
class Calls:
    """What the recording sweeps saw: (job id, the job's ``now``)."""

    seen: list[tuple[str, datetime]] = field(default_factory=list)

    def recorder(self, job_id: str) -> Callable[[JobContext], Awaitable[None]]:
        async def sweep(ctx: JobContext) -> None:
            self.seen.append((job_id, ctx.clock.now()))

        return sweep

    def failing(self, job_id: str) -> Callable[[JobContext], Awaitable[None]]:
        async def sweep(ctx: JobContext) -> None:
            self.seen.append((job_id, ctx.clock.now()))
            raise RuntimeError("boom")

        return sweep

    def count(self, job_id: str) -> int:
        return sum(1 for seen_id, _ in self.seen if seen_id == job_id)


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The jobs' settings; files they write (digest charts, workbooks) go to the test's own
    folder, not the checkout."""
    return Settings(_env_file=None, timezone="Asia/Shanghai", data_dir=tmp_path)  # type: ignore[call-arg]


@pytest.fixture
async def pooled_engine(engine: AsyncEngine, database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine with a connection pool, as the bot has (``engine`` empties PostgreSQL after)."""
    pooled = create_engine(database_url)
    yield pooled
    await pooled.dispose()


@pytest.fixture
def ctx(pooled_engine: AsyncEngine, clock: FrozenClock, settings: Settings) -> JobContext:
    """Jobs' context on the test database (not rolled back: each test has its own data)."""
    return JobContext(
        sessions=create_session_factory(pooled_engine), clock=clock, settings=settings
    )
