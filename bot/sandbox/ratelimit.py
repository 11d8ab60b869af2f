"""Telegram's flood limits, as token buckets on an injectable monotonic clock.

Limits per bot: about 30 messages a second overall, one a second in a chat (a short burst is
tolerated) and 20 a minute in a group.  A refused send gets HTTP 429 with ``retry_after``: the
whole seconds until every bucket involved holds a token again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from bot.sandbox.clock import MonotonicClock


@dataclass(frozen=True)
class RateLimits:
    """Flood-limit settings; ``scaled(10)`` makes every refill ten times faster."""

    enabled: bool = True
    global_per_second: float = 30.0
    global_burst: float = 30.0
    chat_per_second: float = 1.0
    chat_burst: float = 3.0
    group_per_minute: float = 20.0
    group_burst: float = 20.0

    @classmethod
    def off(cls) -> RateLimits:
        return cls(enabled=False)

    def scaled(self, factor: float) -> RateLimits:
        """Refill rates multiplied by ``factor`` (burst sizes unchanged)."""
        if factor <= 0:
            raise ValueError("factor must be positive")
        return replace(
            self,
            global_per_second=self.global_per_second * factor,
            chat_per_second=self.chat_per_second * factor,
            group_per_minute=self.group_per_minute * factor,
        )


class TokenBucket:
    """``capacity`` tokens, refilled at ``rate`` tokens a second."""

    def __init__(self, capacity: float, rate: float, now: float) -> None:
        self.capacity = capacity
        self.rate = rate
        self.tokens = capacity
        self.updated = now

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = max(self.updated, now)

    def wait_time(self, now: float) -> float:
        """Seconds until one token is available (0 if one is available now)."""
        self._refill(now)
        if self.tokens >= 1.0 - 1e-9:
            return 0.0
        return (1.0 - self.tokens) / self.rate

    def take(self, now: float) -> None:
        self._refill(now)
        self.tokens -= 1.0


class RateLimiter:
    """The buckets of every bot and chat; :meth:`acquire` answers 0 or a ``retry_after``."""

    def __init__(self, limits: RateLimits, monotonic: MonotonicClock) -> None:
        self.limits = limits
        self._monotonic = monotonic
        self._buckets: dict[tuple[object, ...], TokenBucket] = {}

    def configure(self, limits: RateLimits) -> None:
        """Replace the settings; buckets start full again."""
        self.limits = limits
        self._buckets.clear()

    def _bucket(self, key: tuple[object, ...], capacity: float, rate: float) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None or bucket.capacity != capacity or bucket.rate != rate:
            bucket = TokenBucket(capacity, rate, self._monotonic())
            self._buckets[key] = bucket
        return bucket

    def acquire(self, bot_id: int, chat_id: int, *, is_group: bool, count: int = 1) -> int:
        """Take ``count`` messages' worth for a send.

        Returns 0, or the seconds to wait before retrying (and then takes nothing).
        """
        limits = self.limits
        if not limits.enabled:
            return 0
        now = self._monotonic()
        buckets = [
            self._bucket(("bot", bot_id), limits.global_burst, limits.global_per_second),
            self._bucket(("chat", bot_id, chat_id), limits.chat_burst, limits.chat_per_second),
        ]
        if is_group:
            buckets.append(
                self._bucket(
                    ("group", bot_id, chat_id), limits.group_burst, limits.group_per_minute / 60
                )
            )
        wait = max(bucket.wait_time(now) for bucket in buckets)
        if wait > 0:
            return max(1, math.ceil(wait - 1e-9))
        for bucket in buckets:
            for _ in range(count):
                bucket.take(now)
        return 0
