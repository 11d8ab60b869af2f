"""Telegram's flood limits on an injectable monotonic clock, in one of two models.

Limits per bot: about 30 messages a second overall, one a second in a chat (a short burst is
tolerated) and 20 a minute in a group.  A refused send gets HTTP 429 with ``retry_after``: the
whole seconds until every limit involved lets it through.

Telegram does not say how it counts, so the sandbox offers two readings of "30 a second":

* ``bucket`` (the default): a token bucket of 30 that refills at 30 a second.  A full bucket
  lets 30 through at once and then 30 a second more, so a burst after a quiet spell can put
  45 sends into half a second.
* ``sliding``: at most 30 sends in **any** one-second window (``window_seconds``), counted over
  the sends themselves.  A sender that bursts draws 429s here that the bucket would let
  through; one that paces evenly at or under 30 a second never does.

The per-chat and per-group limits are token buckets in both models.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, replace
from typing import Literal, get_args

from bot.sandbox.clock import MonotonicClock

RateModel = Literal["bucket", "sliding"]
RATE_MODELS: tuple[str, ...] = get_args(RateModel)


@dataclass(frozen=True)
class RateLimits:
    """Flood-limit settings; ``scaled(10)`` makes every refill ten times faster.

    ``model`` chooses how the bot's overall limit is counted (see the module); in the
    ``sliding`` model at most ``global_per_second`` sends fit in any ``window_seconds``.
    """

    enabled: bool = True
    global_per_second: float = 30.0
    global_burst: float = 30.0
    chat_per_second: float = 1.0
    chat_burst: float = 3.0
    group_per_minute: float = 20.0
    group_burst: float = 20.0
    model: RateModel = "bucket"
    window_seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.model not in RATE_MODELS:
            raise ValueError(f"model must be one of {', '.join(RATE_MODELS)}")
        if not self.window_seconds > 0:
            raise ValueError("window_seconds must be positive")

    @classmethod
    def off(cls) -> RateLimits:
        return cls(enabled=False)

    @classmethod
    def sliding(cls) -> RateLimits:
        """Telegram's limits, the overall one as a strict sliding one-second window."""
        return cls(model="sliding")

    @classmethod
    def named(cls, name: str) -> RateLimits:
        """``off``, ``bucket`` or ``sliding`` (a command-line choice)."""
        if name == "off":
            return cls.off()
        if name not in RATE_MODELS:
            raise ValueError(f"rate limits are off, {' or '.join(RATE_MODELS)}")
        return cls(model=name)  # type: ignore[arg-type]  # checked against RATE_MODELS

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

    def wait_time(self, now: float, count: int = 1) -> float:
        """Seconds until one token is available (0 if one is available now); a send of
        ``count`` messages (an album) needs only one and may take the bucket below zero."""
        self._refill(now)
        if self.tokens >= 1.0 - 1e-9:
            return 0.0
        return (1.0 - self.tokens) / self.rate

    def take(self, now: float, count: int = 1) -> None:
        self._refill(now)
        self.tokens -= count


class SlidingWindow:
    """At most ``limit`` sends in any ``window`` seconds: the times of the recent sends."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self.sent: deque[float] = deque()

    def _forget(self, now: float) -> None:
        # a send at ``now - window`` and one at ``now`` never share a window [x, x + window)
        while self.sent and self.sent[0] <= now - self.window + 1e-9:
            self.sent.popleft()

    def wait_time(self, now: float, count: int = 1) -> float:
        """Seconds until ``count`` more sends fit (0 if they fit now; ``inf`` never)."""
        if count > self.limit:
            return math.inf
        self._forget(now)
        over = len(self.sent) + count - self.limit
        if over <= 0:
            return 0.0
        return self.sent[over - 1] + self.window - now  # when the over-th oldest leaves

    def take(self, now: float, count: int = 1) -> None:
        self._forget(now)
        self.sent.extend([now] * count)


Limit = TokenBucket | SlidingWindow


class RateLimiter:
    """The limits of every bot and chat; :meth:`acquire` answers 0 or a ``retry_after``."""

    def __init__(self, limits: RateLimits, monotonic: MonotonicClock) -> None:
        self.limits = limits
        self._monotonic = monotonic
        self._buckets: dict[tuple[object, ...], TokenBucket] = {}
        self._windows: dict[tuple[object, ...], SlidingWindow] = {}

    def configure(self, limits: RateLimits) -> None:
        """Replace the settings; every limit starts afresh (full buckets, empty windows)."""
        self.limits = limits
        self._buckets.clear()
        self._windows.clear()

    def _bucket(self, key: tuple[object, ...], capacity: float, rate: float) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None or bucket.capacity != capacity or bucket.rate != rate:
            bucket = TokenBucket(capacity, rate, self._monotonic())
            self._buckets[key] = bucket
        return bucket

    def _window(self, key: tuple[object, ...], limit: int, window: float) -> SlidingWindow:
        found = self._windows.get(key)
        if found is None or found.limit != limit or found.window != window:
            found = SlidingWindow(limit, window)
            self._windows[key] = found
        return found

    def _overall(self, bot_id: int) -> Limit:
        limits = self.limits
        if limits.model == "sliding":
            per_window = max(1, math.floor(limits.global_per_second * limits.window_seconds))
            return self._window(("bot", bot_id), per_window, limits.window_seconds)
        return self._bucket(("bot", bot_id), limits.global_burst, limits.global_per_second)

    def acquire(self, bot_id: int, chat_id: int, *, is_group: bool, count: int = 1) -> int:
        """Take ``count`` messages' worth for a send.

        Returns 0, or the seconds to wait before retrying (and then takes nothing).
        """
        limits = self.limits
        if not limits.enabled:
            return 0
        now = self._monotonic()
        checks: list[Limit] = [
            self._overall(bot_id),
            self._bucket(("chat", bot_id, chat_id), limits.chat_burst, limits.chat_per_second),
        ]
        if is_group:
            checks.append(
                self._bucket(
                    ("group", bot_id, chat_id), limits.group_burst, limits.group_per_minute / 60
                )
            )
        wait = max(check.wait_time(now, count) for check in checks)
        if wait > 0:
            return max(1, math.ceil(min(wait, 3600.0) - 1e-9))
        for check in checks:
            check.take(now, count)
        return 0
