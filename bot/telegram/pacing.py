"""One pace for every process of a bot: Telegram's ~30 messages a second, shared in Redis.

Telegram counts a bot's messages, not a process's. Each process's :class:`~bot.telegram.sender.
Pacer` lets one send through every ``1 / rate`` seconds; N processes that each do so send N
times the limit and draw 429s. With Redis configured, every process of the bot takes its
sending slots from one key instead (:class:`SharedPacer`):

* The key holds the time of the bot's next free slot. A small Lua script (atomic in Redis,
  timed by Redis's own clock, so the hosts' clocks do not matter) gives the slot to whoever
  asks once it has come, and moves the key one interval on; a caller that asks too early is
  told how long to wait, and asks again then. A slot is never promised ahead, so a process
  that wakes late cannot bunch its send with the next one, and an idle process takes no share
  from a busy one. The interval counts from the slot, or from the moment it was taken when that
  was later — less :data:`LATE_CREDIT` of an interval, so that a loaded machine, which wakes
  every caller a little late, does not lose that lateness on every send. Sends are then at
  least (1 − credit) intervals apart, and any one second holds at most ⌈rate + credit⌉ of
  them as they are taken: 30 at the sender's 29.1 a second.
* Within a process, the best lane asks first (replies before bulk, as the local pacer does);
  between processes, slots go to whoever asks when one is free.
* A 429 seen by any process pushes the key past its ``retry_after``: every process waits.
* If Redis cannot be reached, the process paces itself alone (its local :class:`Pacer`) and
  says so once in the log; the 429 handling keeps the bot safe meanwhile.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from redis.exceptions import RedisError

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

KEY_PREFIX = "gridbot:pace:"  # + the bot's id: one pace per bot, whatever the database
TIMEOUT = 5.0  # seconds a Redis call may take before this process paces itself alone
LATE_CREDIT = 0.5  # of an interval: how late a slot may be taken without losing the lateness

# KEYS[1]: the next free slot (microseconds of Redis's clock, written in full: no exponent);
# ARGV[1]: the interval, ARGV[2]: the lateness credit (µs). Returns 0: the slot is ours, send
# now; or the µs until it is free.
TAKE_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local slot = tonumber(redis.call('GET', KEYS[1]) or '0')
if slot > now then
  return math.ceil(slot - now)
end
local interval = tonumber(ARGV[1])
local after = math.max(slot, now - tonumber(ARGV[2])) + interval
local ttl = math.ceil((after - now) / 1000) + 60000
redis.call('SET', KEYS[1], string.format('%.0f', after), 'PX', ttl)
return 0
"""

# KEYS[1]: the next free slot; ARGV[1]: microseconds every process must wait (a 429's).
PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local until_ = now + tonumber(ARGV[1])
local slot = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ > slot then
  local ttl = math.ceil(tonumber(ARGV[1]) / 1000) + 60000
  redis.call('SET', KEYS[1], string.format('%.0f', until_), 'PX', ttl)
end
return 1
"""


@dataclass
class Turn:
    """One send the pacer let through: when it went and when its answer came (``inf`` while it
    is on the wire)."""

    went: float
    ended: float = math.inf


class Pace(Protocol):
    """What the outbox sender asks before each message it sends."""

    async def acquire(self, lane: int) -> Turn:
        """Wait for this message's slot (``lane``: its place, the lower the sooner)."""
        ...

    def ended(self, turn: Turn) -> None:
        """The answer to ``turn``'s send came (or it was never sent)."""
        ...

    async def pause(self, seconds: float) -> None:
        """Telegram answered 429: no message may go for ``seconds``."""
        ...


class _Turns:
    """Lets one waiter of this process at a time through, the lowest ``(lane, arrival)``
    first (a cancelled waiter gives its turn to the next)."""

    def __init__(self) -> None:
        self._busy = False
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    async def take(self, lane: int) -> None:
        if not self._busy and not self._waiting:
            self._busy = True
            return
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (lane, next(self._order), ready))
        try:
            await ready
        except asyncio.CancelledError:
            if ready.done() and not ready.cancelled():  # the turn came as we were cancelled
                self.give()
            raise

    def give(self) -> None:
        while self._waiting:
            _, _, ready = heapq.heappop(self._waiting)
            if not ready.done():
                ready.set_result(None)
                return
        self._busy = False


class SharedPacer:
    """Every process of the bot ``bot_id`` takes its sending slots from one Redis key, at
    ``rate`` messages a second in all; ``alone`` paces this process while Redis is away."""

    def __init__(self, redis: Redis, bot_id: int, rate: float, alone: Pace) -> None:
        self.redis = redis
        self.key = f"{KEY_PREFIX}{bot_id}"
        self.interval_us = max(1, round(1_000_000 / rate))
        self.credit_us = round(self.interval_us * LATE_CREDIT)
        self.alone = alone
        self._turns = _Turns()
        self._take: Any = redis.register_script(TAKE_SLOT)
        self._pause: Any = redis.register_script(PAUSE)
        self._redis_away = False

    async def acquire(self, lane: int) -> Turn:
        await self._turns.take(lane)
        try:
            while True:
                try:
                    async with asyncio.timeout(TIMEOUT):
                        wait_us = await self._take(
                            keys=[self.key], args=[self.interval_us, self.credit_us]
                        )
                except (RedisError, OSError, TimeoutError) as error:
                    self._away(error)
                    break
                self._back()
                if not int(wait_us):
                    return Turn(asyncio.get_running_loop().time())
                await asyncio.sleep(int(wait_us) / 1_000_000)
        finally:
            self._turns.give()
        return await self.alone.acquire(lane)

    def ended(self, turn: Turn) -> None:
        self.alone.ended(turn)  # a turn of the shared pace is nothing to it: just re-armed

    async def pause(self, seconds: float) -> None:
        await self.alone.pause(seconds)
        try:
            async with asyncio.timeout(TIMEOUT):
                await self._pause(keys=[self.key], args=[round(seconds * 1_000_000)])
        except (RedisError, OSError, TimeoutError) as error:
            self._away(error)

    async def close(self) -> None:
        await self.redis.aclose()

    def _away(self, error: BaseException) -> None:
        if not self._redis_away:
            self._redis_away = True
            log.warning(
                "the shared send pace in Redis is out of reach (%s): this process paces "
                "itself alone until it is back",
                type(error).__name__,
            )

    def _back(self) -> None:
        if self._redis_away:
            self._redis_away = False
            log.warning("the shared send pace in Redis is back")


def shared_pacer(redis_url: str, bot_id: int, rate: float, alone: Pace) -> SharedPacer:
    """A :class:`SharedPacer` on the Redis at ``redis_url`` (connections made when used)."""
    from redis.asyncio import Redis

    redis = Redis.from_url(redis_url, socket_connect_timeout=TIMEOUT, socket_timeout=TIMEOUT)
    return SharedPacer(redis, bot_id, rate, alone)
