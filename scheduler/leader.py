"""The leader lock: exactly one scheduler process runs the jobs at a time.

APScheduler 3 cannot share a job store between processes, so every process that may schedule
(``gridbot run`` by default, ``gridbot scheduler``) competes for one lock and only the holder
runs jobs; the others keep trying and take over when the leader goes away.

- PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) held on a dedicated
  connection kept open. The server frees it when that connection ends, so losing the
  connection is losing leadership.
- SQLite (or anywhere else): a lease row in ``scheduler_lease`` (name, holder, expires_at),
  taken or renewed in one UPDATE that succeeds only if the lease has expired or is already
  ours. The holder renews it every ~15 s for ~45 s; when it dies, another process takes over
  once the lease runs out, well within a minute.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
import uuid
from contextlib import suppress
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import delete, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from models import SchedulerLease

log = logging.getLogger(__name__)

LOCK_NAME = "scheduler"
LEASE = timedelta(seconds=45)
RENEW_EVERY = timedelta(seconds=15)
APPLICATION_PREFIX = "gridbot-leader "  # the lock connection's application_name
CHECK_TIMEOUT = 10.0  # seconds a liveness check of the advisory lock's connection may take


class LeaderLock(Protocol):
    """Who may run the jobs. ``try_lead`` is called every :data:`RENEW_EVERY`."""

    holder: str

    async def try_lead(self) -> bool:
        """Take the lock, or keep it if held; True while this process is the leader."""
        ...

    def leads(self, now: datetime) -> bool:
        """Whether this process may still act, judged locally between two ``try_lead``."""
        ...

    async def release(self) -> None:
        """Give the lock up at once (on shutdown), so another process need not wait."""
        ...


def default_holder() -> str:
    """A name for this process, unique even for two processes on one host."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaseLock:
    """A lease row, taken and renewed atomically (the SQLite leader lock).

    Timings come from ``clock`` and ``lease``, so tests expire a lease by moving a
    :class:`~bot.clock.FrozenClock` instead of waiting.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        clock: Clock,
        *,
        name: str = LOCK_NAME,
        holder: str | None = None,
        lease: timedelta = LEASE,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.name = name
        self.holder = holder or default_holder()
        self.lease = lease
        self._valid_until: datetime | None = None

    async def try_lead(self) -> bool:
        now = self.clock.now()
        expires_at = now + self.lease
        try:
            async with self.engine.begin() as connection:
                leads = await self._take(connection, now, expires_at)
        except IntegrityError:  # another process created the row first
            leads = False
        self._valid_until = expires_at if leads else None
        return leads

    async def _take(
        self, connection: AsyncConnection, now: datetime, expires_at: datetime
    ) -> bool:
        taken = await connection.execute(
            update(SchedulerLease)
            .where(
                col(SchedulerLease.name) == self.name,
                or_(
                    col(SchedulerLease.expires_at) < now,
                    col(SchedulerLease.holder) == self.holder,
                ),
            )
            .values(holder=self.holder, expires_at=expires_at)
        )
        if taken.rowcount:
            return True
        exists = await connection.scalar(
            select(col(SchedulerLease.name)).where(col(SchedulerLease.name) == self.name)
        )
        if exists is not None:
            return False
        await connection.execute(
            insert(SchedulerLease).values(
                name=self.name, holder=self.holder, expires_at=expires_at
            )
        )
        return True

    def leads(self, now: datetime) -> bool:
        return self._valid_until is not None and now < self._valid_until

    async def release(self) -> None:
        if self._valid_until is None:
            return
        self._valid_until = None
        async with self.engine.begin() as connection:
            await connection.execute(
                delete(SchedulerLease).where(
                    col(SchedulerLease.name) == self.name,
                    col(SchedulerLease.holder) == self.holder,
                )
            )


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_try_advisory_lock`` from a readable name."""
    digest = hashlib.blake2b(f"gridbot.{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class AdvisoryLock:
    """A PostgreSQL advisory lock on a dedicated connection (the PostgreSQL leader lock).

    The connection is checked out of the engine's pool for as long as the lock is held, in
    autocommit mode (no transaction stays open), and invalidated when given up, so a pooled
    connection never carries the lock to someone else. Each ``try_lead`` of the holder checks
    that the connection is still alive; if it is not, the lock is gone with it.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        name: str = LOCK_NAME,
        holder: str | None = None,
        check_timeout: float = CHECK_TIMEOUT,
    ) -> None:
        self.engine = engine
        self.key = advisory_key(name)
        self.holder = holder or default_holder()
        self.check_timeout = check_timeout
        self._connection: AsyncConnection | None = None

    async def try_lead(self) -> bool:
        if self._connection is not None:
            return await self._still_held(self._connection)
        connection = await self.engine.connect()
        try:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            # named after its holder, so anyone can see who leads (:func:`current_leader`)
            await connection.execute(
                text("SELECT set_config('application_name', :name, false)"),
                {"name": f"{APPLICATION_PREFIX}{self.holder}"[:63]},
            )
            got = await connection.scalar(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}
            )
        except BaseException:
            await _discard(connection)
            raise
        if got:
            self._connection = connection
            return True
        await connection.close()
        return False

    async def _still_held(self, connection: AsyncConnection) -> bool:
        try:
            async with asyncio.timeout(self.check_timeout):
                await connection.execute(text("SELECT 1"))
        except Exception:  # TimeoutError included: a half-open connection counts as lost
            log.warning("the scheduler lock's connection is gone: leadership lost", exc_info=True)
            self._connection = None
            await _discard(connection)
            return False
        return True

    def leads(self, now: datetime) -> bool:
        return self._connection is not None

    async def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        with suppress(Exception):
            await connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
        await _discard(connection)


async def _discard(connection: AsyncConnection) -> None:
    """Close the connection for good (not back to the pool), which frees its locks."""
    with suppress(Exception):
        await connection.invalidate()
    with suppress(Exception):
        await connection.close()


async def current_leader(
    session: AsyncSession, now: datetime, *, name: str = LOCK_NAME
) -> str | None:
    """Who holds the leader lock now (a holder name: host, process and a tag), or None."""
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        holder = await connection.scalar(
            text(
                "SELECT a.application_name FROM pg_locks l "
                "JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted "
                "AND ((l.classid::bigint << 32) | l.objid::bigint) = (:key)::bigint "
                "LIMIT 1"
            ),
            {"key": advisory_key(name)},
        )
        return str(holder).removeprefix(APPLICATION_PREFIX) if holder is not None else None
    lease = (
        await connection.execute(
            select(col(SchedulerLease.holder), col(SchedulerLease.expires_at)).where(
                col(SchedulerLease.name) == name
            )
        )
    ).one_or_none()
    if lease is None or lease.expires_at <= now:
        return None
    return str(lease.holder)


def leader_lock_for(
    engine: AsyncEngine,
    clock: Clock,
    *,
    name: str = LOCK_NAME,
    holder: str | None = None,
    lease: timedelta = LEASE,
) -> LeaderLock:
    """The advisory lock on PostgreSQL, the lease row elsewhere."""
    if engine.dialect.name == "postgresql":
        return AdvisoryLock(engine, name=name, holder=holder)
    return LeaseLock(engine, clock, name=name, holder=holder, lease=lease)
