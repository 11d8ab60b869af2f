"""Two deadline sweeps at once (two processes: two engines) act on each ticket once.

PostgreSQL only: there each ticket is taken ``FOR UPDATE SKIP LOCKED`` under the version lock;
SQLite has a single writer, so two sweeps cannot overlap there in the first place.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool
from sqlmodel import col, select

import models
from bot.clock import FrozenClock
from bot.db import create_engine, create_session_factory
from bot.services import tickets
from bot.services.demo import DEMO_PERSONAS, load_demo_data
from bot.services.notice_board import resident_grid
from bot.services.ticket_notices import Notice
from bot.settings import ReportLimits, Settings
from models import Person, TicketCategory, TicketEvent
from tests.fakes import RecordingNotifier

TICKETS = 30
SWEEP_ACTIONS = ("warned", "escalated", "overdue")


@pytest.fixture
async def engines(pg_url: str) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    """Two engines on the run's database, as two processes would have; emptied afterwards."""
    pair = (create_engine(pg_url, poolclass=NullPool), create_engine(pg_url, poolclass=NullPool))
    try:
        yield pair
    finally:
        tables = ", ".join(f'"{t.name}"' for t in models.metadata.sorted_tables)
        async with pair[0].begin() as connection:
            await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        for engine in pair:
            await engine.dispose()


async def file_tickets(engine: AsyncEngine, clock: FrozenClock) -> list[int]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        reports=ReportLimits(per_hour=TICKETS, per_day=TICKETS),
    )
    async with create_session_factory(engine)() as session:
        await load_demo_data(session, clock.now())
        await session.flush()
        ids: list[int] = []
        for persona in ("resident", "other_resident"):
            reporter = (
                await session.exec(
                    select(Person).where(Person.telegram_id == DEMO_PERSONAS[persona])
                )
            ).one()
            assert reporter.id is not None
            grid = await resident_grid(session, reporter.id)
            assert grid is not None
            for n in range(TICKETS // 2):
                ticket = await tickets.file_ticket(
                    session,
                    RecordingNotifier(),
                    reporter=reporter,
                    grid=grid,
                    report=tickets.Report(TicketCategory.FACILITY, f"第{n}号路灯不亮了"),
                    settings=settings,
                    now=clock.now(),
                )
                ids.append(ticket.id or 0)
        await session.commit()
    return ids


async def sweep(engine: AsyncEngine, notifier: RecordingNotifier, clock: FrozenClock) -> int:
    async with create_session_factory(engine)() as session:
        steps = await tickets.escalate_overdue(session, notifier, clock.now())
        await session.commit()
    return steps


async def test_two_sweeps_at_once_escalate_each_ticket_exactly_once(
    engines: tuple[AsyncEngine, AsyncEngine], clock: FrozenClock
) -> None:
    ids = await file_tickets(engines[0], clock)
    clock.advance(timedelta(days=1))  # Friday morning: Thursday's accept deadline has passed
    notifiers = (RecordingNotifier(), RecordingNotifier())

    steps = await asyncio.gather(
        *(sweep(e, n, clock) for e, n in zip(engines, notifiers, strict=True))
    )

    async with create_session_factory(engines[0])() as session:
        events = (
            await session.exec(
                select(TicketEvent.ticket_id, TicketEvent.action).where(
                    col(TicketEvent.action).in_(SWEEP_ACTIONS)
                )
            )
        ).all()
    escalated = Counter(ticket_id for ticket_id, action in events if action == "escalated")
    assert escalated == dict.fromkeys(ids, 1)
    assert sum(steps) == len(events)  # every step taken is one event, none taken twice
    told = Counter(
        update.ticket.id
        for notifier in notifiers
        for update in notifier.updates
        if update.notice == Notice.ESCALATED
    )
    assert told == dict.fromkeys(ids, 1)
    assert await sweep(engines[1], RecordingNotifier(), clock) == 0  # nothing left due
