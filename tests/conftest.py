"""Shared fixtures: a migrated database per test (SQLite always, PostgreSQL when configured).

The suite is isolated from whoever runs it: before anything is collected, every environment
variable ``Settings`` would read is removed for the run and ``Settings`` reads no ``.env``, so
a ``DATABASE_URL`` exported for the real bot, or a ``.env`` beside the project, changes nothing.
Only the ``GRIDBOT_TEST_*`` variables and ``GRIDBOT_CI`` speak to the tests.

PostgreSQL and Redis are shared servers: two runs at once (two people, two worktrees, CI) must
not touch each other's data. Each run creates a database of its own on the server
``GRIDBOT_TEST_DATABASE_URL`` names, migrates it and drops it at the end, pass or fail; in Redis
each run writes only keys of its own and deletes only those.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from sqlmodel.ext.asyncio.session import AsyncSession

import models
from bot import migrate
from bot.clock import FrozenClock
from bot.db import create_engine
from bot.settings import Settings

TEST_DATABASE_URL = os.environ.get("GRIDBOT_TEST_DATABASE_URL")
TEST_REDIS_URL = os.environ.get("GRIDBOT_TEST_REDIS_URL")
# Set by .ci/run: the services and the browser are there, so a test that needs them fails
# instead of being skipped.
CI = os.environ.get("GRIDBOT_CI", "") not in ("", "0")
# A Thursday morning in Shanghai, far from holidays: 2026-03-12 09:00 +08:00
T0 = datetime(2026, 3, 12, 1, 0, tzinfo=UTC)
# PostgreSQL cuts identifiers at 63 bytes
MAX_IDENTIFIER = 63

_isolation = pytest.MonkeyPatch()


def settings_variables(names: Iterable[str]) -> list[str]:
    """Those of ``names`` that ``Settings`` reads: its fields, and their nested parts."""
    config = Settings.model_config
    prefix = config.get("env_prefix") or ""
    delimiter = config.get("env_nested_delimiter") or None
    case_sensitive = bool(config.get("case_sensitive"))

    def fold(name: str) -> str:
        return name if case_sensitive else name.lower()

    fields = {fold(prefix + field) for field in Settings.model_fields}
    read = []
    for name in names:
        folded = fold(name)
        if folded in fields or (delimiter is not None and folded.split(delimiter, 1)[0] in fields):
            read.append(name)
    return read


def pytest_configure(config: pytest.Config) -> None:
    for name in settings_variables(list(os.environ)):
        _isolation.delenv(name)
    _isolation.setitem(Settings.model_config, "env_file", None)


def pytest_unconfigure(config: pytest.Config) -> None:
    _isolation.undo()


def unavailable(reason: str) -> NoReturn:
    """Skip a test whose service or browser is not here; under ``GRIDBOT_CI`` fail it."""
    if CI:
        pytest.fail(f"{reason}; GRIDBOT_CI is set, so this test must run", pytrace=False)
    pytest.skip(reason)


def run_database_name(database: str | None, pid: int, suffix: str) -> str:
    """This run's own database: the configured database's name, the process, a random suffix.

    Lower case letters, digits and ``_`` only, at most 63 characters, so it needs no quoting
    rules of its own and PostgreSQL keeps it whole.
    """
    base = re.sub(r"[^a-z0-9_]+", "_", (database or "").lower()).strip("_") or "gridbot"
    tail = "_run{}_{}".format(pid, re.sub(r"[^a-z0-9]+", "", suffix.lower()))
    return base[: MAX_IDENTIFIER - len(tail)] + tail


async def _on_server(server: URL, statement: str) -> None:
    """One statement outside a transaction (CREATE/DROP DATABASE), on the configured database."""
    engine = create_async_engine(server, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


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
def pg_url() -> Iterator[str]:
    """This run's PostgreSQL database: created on the server ``GRIDBOT_TEST_DATABASE_URL``
    points at (connecting to the database it names), migrated, and dropped when the run ends,
    whether it passed or not."""
    if not TEST_DATABASE_URL:
        unavailable("GRIDBOT_TEST_DATABASE_URL is not set (PostgreSQL tests run in .ci/run)")
    server = make_url(TEST_DATABASE_URL)
    name = run_database_name(server.database, os.getpid(), secrets.token_hex(4))
    asyncio.run(_on_server(server, f'CREATE DATABASE "{name}"'))
    try:
        url = server.set(database=name).render_as_string(hide_password=False)
        migrate.upgrade(url)
        yield url
    finally:
        asyncio.run(_on_server(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis server of ``GRIDBOT_TEST_REDIS_URL``; tests write only keys of their own run
    there (another run may use the same database) and delete them, never the database."""
    if not TEST_REDIS_URL:
        unavailable("GRIDBOT_TEST_REDIS_URL is not set (Redis tests run in .ci/run)")
    return TEST_REDIS_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, sqlite_template: Path, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_url"))
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
