"""Time sources of the sandbox: a wall clock for ``date`` fields and a monotonic one for limits.

The server takes both as plain callables, so a test can pass a :class:`ManualClock` and move
time forward instead of sleeping::

    clock = ManualClock()
    server = SandboxServer(clock=clock.now, monotonic=clock.monotonic)
    clock.advance(16)  # a callback query is now too old; rate-limit buckets have refilled
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from bot.clock import SystemClock

WallClock = Callable[[], datetime]
MonotonicClock = Callable[[], float]


def system_now() -> datetime:
    """The real time, timezone-aware (UTC), read where GridBot reads it: ``bot.clock``."""
    return SystemClock().now()


def system_monotonic() -> float:
    return time.monotonic()


class ManualClock:
    """A clock that only moves when told to; serves as both wall and monotonic source."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
        if self._now.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self._monotonic = 1000.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> None:
        """Move both sources ``seconds`` forward."""
        if seconds < 0:
            raise ValueError("time does not go backwards")
        self._now += timedelta(seconds=seconds)
        self._monotonic += seconds

    def set(self, moment: datetime) -> None:
        """Jump the wall clock to ``moment`` (the monotonic source moves by the same amount)."""
        if moment.tzinfo is None:
            raise ValueError("moment must be timezone-aware")
        delta = (moment - self._now).total_seconds()
        self.advance(delta)


def unix(moment: datetime) -> int:
    """Unix seconds of an aware datetime, as Telegram's ``date`` fields."""
    return int(moment.timestamp())
