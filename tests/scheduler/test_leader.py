"""The leader lock: one leader at a time; a dead leader's lock passes to another process."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.clock import FrozenClock
from bot.db import create_engine, create_session_factory
from models import SchedulerLease
from scheduler.leader import (
    AdvisoryLock,
    LeaseLock,
    advisory_key,
    current_leader,
    leader_lock_for,
)

LEASE = timedelta(seconds=45)


def unique_name() -> str:
    """Lock names of their own, so parallel test runs on one server never meet."""
    return f"test-{uuid.uuid4().hex[:16]}"


def lease_pair(engine: AsyncEngine, clock: FrozenClock) -> tuple[LeaseLock, LeaseLock]:
    name = unique_name()
    return (
        LeaseLock(engine, clock, name=name, holder="process-a", lease=LEASE),
        LeaseLock(engine, clock, name=name, holder="process-b", lease=LEASE),
    )


async def test_of_two_lease_holders_one_leads(engine: AsyncEngine, clock: FrozenClock) -> None:
    a, b = lease_pair(engine, clock)
    assert await a.try_lead()
    assert not await b.try_lead()
    assert a.leads(clock.now())
    assert not b.leads(clock.now())


async def test_renewing_keeps_the_lease(engine: AsyncEngine, clock: FrozenClock) -> None:
    a, b = lease_pair(engine, clock)
    assert await a.try_lead()
    for _ in range(4):  # renewed every 30 s, well inside 45 s: never lapses
        clock.advance(timedelta(seconds=30))
        assert await a.try_lead()
        assert not await b.try_lead()


async def test_a_lapsed_lease_is_taken_over(engine: AsyncEngine, clock: FrozenClock) -> None:
    a, b = lease_pair(engine, clock)
    assert await a.try_lead()
    clock.advance(timedelta(seconds=44))
    assert not await b.try_lead()
    clock.advance(timedelta(seconds=2))  # a stopped renewing 46 s ago
    assert not a.leads(clock.now())  # a knows it, without asking the database
    assert await b.try_lead()
    assert not await a.try_lead()  # and cannot take it back while b renews
    async with engine.connect() as connection:
        holder = await connection.scalar(
            select(SchedulerLease.holder).where(SchedulerLease.name == a.name)
        )
    assert holder == "process-b"


async def test_a_released_lease_passes_at_once(engine: AsyncEngine, clock: FrozenClock) -> None:
    a, b = lease_pair(engine, clock)
    assert await a.try_lead()
    await a.release()
    assert not a.leads(clock.now())
    assert await b.try_lead()
    await a.release()  # releasing what one does not hold changes nothing
    assert not await a.try_lead()


async def test_two_processes_racing_for_a_new_lease_get_one_leader(
    engine: AsyncEngine, clock: FrozenClock
) -> None:
    name = unique_name()
    locks = [LeaseLock(engine, clock, name=name, holder=f"p{i}", lease=LEASE) for i in range(4)]
    results = await asyncio.gather(*(lock.try_lead() for lock in locks))
    assert sorted(results) == [False, False, False, True]


async def test_the_lock_suits_the_database(clock: FrozenClock) -> None:
    sqlite = create_engine("sqlite+aiosqlite:///:memory:")
    postgres = create_engine("postgresql+asyncpg://gridbot@localhost/gridbot")
    assert isinstance(leader_lock_for(sqlite, clock), LeaseLock)
    assert isinstance(leader_lock_for(postgres, clock), AdvisoryLock)
    await sqlite.dispose()
    await postgres.dispose()


# PostgreSQL advisory lock ------------------------------------------------------------------


@pytest.fixture
async def pg_engines(database_url: str) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    """Two engines with their own pools, as two processes would have."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the advisory lock is PostgreSQL's")
    first, second = create_engine(database_url), create_engine(database_url)
    yield first, second
    await first.dispose()
    await second.dispose()


async def holder_pid(engine: AsyncEngine, name: str) -> int | None:
    key = advisory_key(name) & 0xFFFF_FFFF_FFFF_FFFF
    async with engine.connect() as connection:
        pid = await connection.scalar(
            text(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND classid = :high AND objid = :low AND objsubid = 1"
            ),
            {"high": key >> 32, "low": key & 0xFFFF_FFFF},
        )
    return int(pid) if pid is not None else None


async def test_of_two_advisory_holders_one_leads(
    pg_engines: tuple[AsyncEngine, AsyncEngine], clock: FrozenClock
) -> None:
    name = unique_name()
    a = AdvisoryLock(pg_engines[0], name=name)
    b = AdvisoryLock(pg_engines[1], name=name)
    try:
        assert await a.try_lead()
        assert not await b.try_lead()
        assert await a.try_lead()  # still held: its connection is alive
        assert a.leads(clock.now()) and not b.leads(clock.now())
        await a.release()
        assert await holder_pid(pg_engines[1], name) is None  # not left on a pooled connection
        assert await b.try_lead()
        assert not await a.try_lead()
    finally:
        await a.release()
        await b.release()


async def test_losing_the_connection_loses_the_lead(
    pg_engines: tuple[AsyncEngine, AsyncEngine], clock: FrozenClock
) -> None:
    name = unique_name()
    a = AdvisoryLock(pg_engines[0], name=name)
    b = AdvisoryLock(pg_engines[1], name=name)
    try:
        assert await a.try_lead()
        pid = await holder_pid(pg_engines[1], name)
        assert pid is not None
        async with pg_engines[1].connect() as connection:  # the leader's connection dies
            # waits (up to 5 s) until the backend is gone, and its lock with it
            await connection.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
            await connection.commit()
        assert await b.try_lead()
        assert not await a.try_lead()  # a notices on its next check
        assert not a.leads(clock.now())
    finally:
        await a.release()
        await b.release()


# Who leads (for /status) -------------------------------------------------------------------


async def test_everyone_can_see_who_leads(database_url: str, clock: FrozenClock) -> None:
    """Whichever lock the database uses, any process reads the holder's name — and nobody
    once it lets go (or, for a lease, once the lease has lapsed)."""
    first, second = create_engine(database_url), create_engine(database_url)
    if first.dialect.name != "postgresql":  # both engines share one migrated SQLite file
        await second.dispose()
        second = first
    name = unique_name()
    lock = leader_lock_for(first, clock, name=name, holder="host-1:4242:abcd")
    try:
        async with create_session_factory(second)() as session:
            assert await current_leader(session, clock.now(), name=name) is None
        assert await lock.try_lead()
        async with create_session_factory(second)() as session:
            assert await current_leader(session, clock.now(), name=name) == "host-1:4242:abcd"
        if isinstance(lock, LeaseLock):
            async with create_session_factory(second)() as session:
                later = clock.now() + LEASE + timedelta(seconds=1)
                assert await current_leader(session, later, name=name) is None
        await lock.release()
        async with create_session_factory(second)() as session:
            assert await current_leader(session, clock.now(), name=name) is None
    finally:
        await lock.release()
        await first.dispose()
        await second.dispose()
