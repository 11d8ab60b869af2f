"""The database engine and sessions (SQLite by default, PostgreSQL at scale).

Both drivers are used as SQLAlchemy ships them (aiosqlite, asyncpg). On SQLite a transaction
that may write starts with ``BEGIN IMMEDIATE``: it takes the write lock at its start and waits
its turn (``busy_timeout``, in the driver's thread, never on the event loop) instead of
failing with "database is locked" when it reads, then writes, after another writer committed
in between. Long read-only work — exports, digests, push plans, indicators — uses
:func:`create_reader_factory`: a plain ``BEGIN`` that takes no write lock, so in WAL mode it
never holds anyone up. SQLAlchemy documents this recipe for pysqlite and aiosqlite
("Serializable isolation / Savepoints / Transactional DDL").
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, event, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel.ext.asyncio.session import AsyncSession

SessionFactory = async_sessionmaker[AsyncSession]

READ_ONLY = "gridbot_read_only"  # execution option: a transaction that never writes
POOL_SIZE = 20  # connections kept per process; on PostgreSQL never more (no overflow churn)
POOL_TIMEOUT = 30.0  # seconds a session waits for a free connection before failing


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    # let SQLAlchemy, not the driver, open transactions (see ``_sqlite_begin``)
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    """``BEGIN IMMEDIATE`` for a transaction that may write, ``BEGIN`` for a read-only one."""
    if connection.get_execution_options().get(READ_ONLY):
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """Build the async engine for ``url``: SQLite's pragmas and transactions and
    :data:`POOL_SIZE` connections kept open (more opened when needed), or a fixed-size
    PostgreSQL pool (connections are opened once and kept, never churned by overflow)."""
    if url.startswith("sqlite"):
        if "poolclass" not in kwargs and make_url(url).database not in (None, "", ":memory:"):
            # kept open: beyond the default 5 each connection was opened and closed per use,
            # and opening one starts the driver's thread while the event loop waits for it
            kwargs.setdefault("pool_size", POOL_SIZE)
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", POOL_SIZE)
        kwargs.setdefault("max_overflow", 0)
        kwargs.setdefault("pool_timeout", POOL_TIMEOUT)
    return create_async_engine(url, **kwargs)


def create_session_factory(engine: AsyncEngine) -> SessionFactory:
    """Sessions for work that may write (on SQLite, each transaction takes the write lock)."""
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


def create_reader_factory(engine: AsyncEngine) -> SessionFactory:
    """Sessions for long read-only work: on SQLite they never take the write lock, so an
    export or a digest does not keep anyone else waiting. Writing in one is an error on
    PostgreSQL (``READ ONLY``) and, on SQLite, may fail with "database is locked"."""
    options: dict[str, Any] = {READ_ONLY: True}
    if engine.dialect.name == "postgresql":
        options["postgresql_readonly"] = True
    return async_sessionmaker(
        engine.execution_options(**options), class_=AsyncSession, expire_on_commit=False
    )


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"
