"""The SQLite adapter: a transaction that finds the write lock free runs on the event loop's
thread, one that must wait for it waits on aiosqlite's (a statement there is one trip, its
``BEGIN`` riding with it), and nothing else changes — rows, counts, errors, rollbacks, streams,
checkpoints."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import sqlite_adapter
from bot.db import create_engine, create_session_factory
from bot.sqlite_adapter import OneTripConnection


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'adapter.db'}")
    async with engine.begin() as connection:
        await connection.execute(
            text("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT UNIQUE)")
        )
    yield engine
    await engine.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of each function sent to a connection's thread."""
    seen: list[str] = []
    run_on_thread = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Callable[..., Any], *args: Any) -> Any:
        seen.append(getattr(fn, "__name__", repr(fn)))
        return await run_on_thread(self, fn, *args)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return seen


async def test_a_transaction_with_the_write_lock_free_makes_no_trip(
    engine: AsyncEngine, trips: list[str]
) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))  # the pool's connection is ready
        await connection.commit()
        dbapi = (await connection.get_raw_connection()).dbapi_connection
        assert isinstance(dbapi, OneTripConnection)
        dbapi._connection._conn.create_function("thread", 0, threading.get_ident)
        trips.clear()
        await connection.execute(text("INSERT INTO item (name) VALUES ('路灯')"))
        rows = (await connection.execute(text("SELECT id, name, thread() FROM item"))).all()
        await connection.execute(text("UPDATE item SET name = '井盖'"))
        await connection.commit()
    assert [tuple(row) for row in rows] == [(1, "路灯", threading.get_ident())]
    assert trips == []  # BEGIN IMMEDIATE, the statements and the commit: all on this thread
    async with engine.connect() as connection:
        names = (await connection.execute(text("SELECT name FROM item"))).scalars()
        assert list(names) == ["井盖"]


async def test_a_transaction_that_must_wait_for_the_lock_waits_on_the_thread(
    engine: AsyncEngine, trips: list[str]
) -> None:
    other = sqlite3.connect(engine.url.database or "", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another connection holds the write lock
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    async def insert() -> None:
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO item (name) VALUES ('等候')"))
            await connection.execute(text("UPDATE item SET name = name || '!'"))

    ticker = asyncio.create_task(tick())
    waiting = asyncio.create_task(insert())
    try:
        await asyncio.sleep(0.2)
        assert not waiting.done()
        assert ticks >= 10  # the event loop was never held up by the wait
        other.execute("INSERT INTO item (name) VALUES ('先到')")
        other.execute("COMMIT")
        await asyncio.wait_for(waiting, 5)
    finally:
        ticker.cancel()
        other.close()
    # the wait and its first statement went to the thread; with the lock held, the rest did not
    assert trips.count("_run") == 1
    async with engine.connect() as connection:
        names = (await connection.execute(text("SELECT name FROM item ORDER BY id"))).scalars()
        assert list(names) == ["先到!", "等候!"]


async def test_an_in_memory_database_works_too() -> None:
    engine = create_engine("sqlite+aiosqlite:///:memory:")
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE item (name TEXT)"))
            await connection.execute(text("INSERT INTO item (name) VALUES ('井盖')"))
            assert (await connection.execute(text("SELECT name FROM item"))).scalar() == "井盖"
    finally:
        await engine.dispose()


async def test_every_so_many_commits_the_wal_is_checkpointed_on_the_thread(
    engine: AsyncEngine, trips: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_adapter, "CHECKPOINT_EVERY", 3)
    async with engine.connect() as connection:
        automatic = (await connection.execute(text("PRAGMA wal_autocheckpoint"))).scalar_one()
        await connection.commit()
    assert automatic == 0  # never in a commit on the event loop
    trips.clear()
    for n in range(6):
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO item (name) VALUES (:n)"), {"n": str(n)})
    assert trips.count("_checkpoint") == 2
    check = sqlite3.connect(engine.url.database or "")
    try:  # (busy, frames in the log, frames copied): nothing written since the last one
        busy, frames, copied = check.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    finally:
        check.close()
    assert (busy, frames) == (0, copied)


async def test_the_transaction_takes_the_write_lock_with_its_first_statement(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
        dbapi = (await connection.get_raw_connection()).dbapi_connection
        assert isinstance(dbapi, OneTripConnection)
        assert dbapi.in_transaction  # a read holds BEGIN IMMEDIATE's lock too
        other = sqlite3.connect(engine.url.database or "", timeout=0)  # no waiting
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        finally:
            other.close()
        await connection.rollback()
        assert not dbapi.in_transaction


async def test_neither_the_pools_reset_nor_an_empty_transaction_makes_a_trip(
    engine: AsyncEngine, trips: list[str]
) -> None:
    sessions = create_session_factory(engine)
    async with sessions() as session:
        await session.exec(text("SELECT 1"))
        await session.commit()
    trips.clear()
    async with sessions() as session:
        await session.exec(text("INSERT INTO item (name) VALUES ('a')"))
        await session.commit()
    async with sessions() as session:  # a transaction that never ran a statement sends nothing
        await session.connection()
        await session.commit()
    assert trips == []


async def test_counts_ids_many_rows_and_returning(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        many = await connection.execute(
            text("INSERT INTO item (name) VALUES (:name)"), [{"name": f"n{i}"} for i in range(5)]
        )
        assert many.rowcount == 5
        one = await connection.execute(text("INSERT INTO item (name) VALUES ('last')"))
        assert one.lastrowid == 6
        returned = await connection.execute(
            text("UPDATE item SET name = name || '!' WHERE id > 3 RETURNING id")
        )
        assert sorted(returned.scalars()) == [4, 5, 6]
        gone = await connection.execute(text("DELETE FROM item WHERE id < 3"))
        assert gone.rowcount == 2
        assert (await connection.execute(text("SELECT count(*) FROM item"))).scalar_one() == 4
        assert (await connection.execute(text("SELECT name FROM item WHERE id = 99"))).all() == []


async def test_a_failed_statement_leaves_the_transaction_to_be_rolled_back(
    engine: AsyncEngine,
) -> None:
    sessions = create_session_factory(engine)
    async with sessions() as session:
        await session.exec(text("INSERT INTO item (name) VALUES ('dup')"))
        await session.commit()
    async with sessions() as session:
        await session.exec(text("INSERT INTO item (name) VALUES ('kept?')"))
        with pytest.raises(IntegrityError):
            await session.exec(text("INSERT INTO item (name) VALUES ('dup')"))
        await session.rollback()
        await session.exec(text("INSERT INTO item (name) VALUES ('after')"))
        await session.commit()
    async with sessions() as session:
        names = (await session.exec(text("SELECT name FROM item ORDER BY id"))).scalars()
        assert list(names) == ["dup", "after"]  # 'kept?' was rolled back with the failure


async def test_bad_sql_is_an_error_and_the_connection_goes_on(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        with pytest.raises(OperationalError):
            await connection.execute(text("SELEC nonsense"))
        await connection.rollback()
        assert (await connection.execute(text("SELECT 41 + 1"))).scalar_one() == 42


async def test_streamed_results_still_come_in_batches(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text("INSERT INTO item (name) VALUES (:name)"), [{"name": f"n{i}"} for i in range(250)]
        )
    async with engine.connect() as connection:
        result = await connection.stream(text("SELECT id FROM item ORDER BY id"))
        seen = [row[0] async for row in result]
        other = sqlite3.connect(engine.url.database or "", timeout=0)
        try:  # the transaction's BEGIN IMMEDIATE went before the streamed statement
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        finally:
            other.close()
        await connection.execute(text("DELETE FROM item"))
        await connection.rollback()
    assert seen == list(range(1, 251))
    async with engine.connect() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM item"))).scalar_one() == 250


@pytest.mark.parametrize(
    "run",
    [
        lambda c: c.execute(text("SELECT * FROM nowhere")),
        lambda c: c.execute(text("INSERT INTO item (id, name) VALUES (1, 'a'), (1, 'b')")),
    ],
)
async def test_errors_leave_the_rollback_to_go_through(
    engine: AsyncEngine, run: Callable[[Any], Awaitable[Any]]
) -> None:
    async with engine.connect() as connection:
        with pytest.raises((OperationalError, IntegrityError)):
            await run(connection)
        await connection.rollback()
        other = sqlite3.connect(engine.url.database or "", timeout=0)
        try:  # after an error the state is not known: it rolled back for real, and let go
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
        finally:
            other.close()
        assert (await connection.execute(text("SELECT count(*) FROM item"))).scalar_one() == 0
