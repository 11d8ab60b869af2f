"""Shared fixtures: a migrated database per test (SQLite always, PostgreSQL when configured)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool
from sqlmodel.ext.asyncio.session import AsyncSession

import models
from bot import migrate
from bot.clock import FrozenClock
from bot.db import create_engine

PG_URL = os.environ.get("GRIDBOT_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("GRIDBOT_TEST_REDIS_URL")
# A Thursday morning in Shanghai, far from holidays: 2026-03-12 09:00 +08:00
T0 = datetime(2026, 3, 12, 1, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each test gets a copy."""
    path = tmp_path_factory.mktemp("db") / "template.db"
    migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_url() -> str | None:
    """The PostgreSQL test database, reset and migrated once per run."""
    if not PG_URL:
        return None
    import asyncio

    async def reset() -> None:
        engine = create_engine(PG_URL, poolclass=NullPool)
        async with engine.begin() as connection:
            await connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
        await engine.dispose()

    asyncio.run(reset())
    migrate.upgrade(PG_URL)
    return PG_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, sqlite_template: Path, tmp_path: Path) -> str:
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
        if url is None:
            pytest.skip("GRIDBOT_TEST_DATABASE_URL is not set (PostgreSQL tests run in .ci/run)")
        return str(url)
    path = tmp_path / "gridbot.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """The test's engine; on PostgreSQL every table is emptied afterwards."""
    engine = create_engine(database_url, poolclass=NullPool)
    yield engine
    if engine.dialect.name == "postgresql":
        tables = ", ".join(f'"{t.name}"' for t in models.metadata.sorted_tables)
        async with engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    await engine.dispose()


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session inside a transaction that is rolled back after the test."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        session = AsyncSession(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        try:
            yield session
        finally:
            await session.close()
            await transaction.rollback()
