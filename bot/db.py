"""The database engine and sessions (SQLite by default, PostgreSQL at scale)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import sqlite_adapter

SessionFactory = async_sessionmaker[AsyncSession]


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    # let SQLAlchemy, not the driver, open transactions (see ``_sqlite_begin``)
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    # checkpoints off the event loop: see bot.sqlite_adapter (other connections keep SQLite's)
    if isinstance(dbapi_connection, sqlite_adapter.OneTripConnection):
        cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    """Take the write lock when a transaction starts.

    A deferred SQLite transaction that reads, then writes, fails at once with "database is
    locked" if another writer committed in between; starting with BEGIN IMMEDIATE makes it
    wait its turn (``busy_timeout``) instead. One community's load is far below the limit.
    """
    dbapi_connection = connection.connection.dbapi_connection
    if isinstance(dbapi_connection, sqlite_adapter.OneTripConnection):
        dbapi_connection.begin_with_next("BEGIN IMMEDIATE")  # no trip of its own
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """Build the async engine for ``url`` with the pragmas SQLite needs."""
    if url.startswith("sqlite"):
        kwargs.setdefault("module", sqlite_adapter.dbapi())  # see bot.sqlite_adapter
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", 10)
    return create_async_engine(url, **kwargs)


def create_session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"
