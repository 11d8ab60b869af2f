"""Delivers the outbox under Telegram's limits (发送队列).

What it promises, and how:

* **Nothing is lost.** Rows are leased (``lease_until``) before they are sent and the lease is
  renewed while this process holds them; a row leased by a process that died is picked up
  again once its lease has run out. A request whose answer never came (the connection broke
  after it went out, or it timed out) may be repeated: delivery is at least once, because
  Telegram has no idempotency key.
* **Nothing is sent twice that need not be.** A duplicate can only follow an answer that never
  came. An answer that says Telegram did nothing — a 5xx, a proxy's error page, a 429, a
  connection that could not be made — is retried freely; one that never came is retried too,
  and the row is marked as one that may have arrived (``last_error`` says so). A row whose
  success could not be recorded (the database was away) stays held, its lease renewed, until
  the outcome is written: it is never sent again. A sender that is stopped lets the requests
  on the wire finish (``WIRE_GRACE`` at most) and records what they did, so a restart does not
  turn them into "may have arrived"; and a stop never cuts a database transaction off midway
  (:func:`whole`: on SQLite that would keep the write lock, and nothing could be recorded).
  Under 20 % 5xx, 10 % dropped requests, 10 % lost answers and a 429 storm, the only
  duplicates are after lost answers (``python -m bench.duplicates``).
* **A reply is sent at once.** Whoever commits rows wakes the sender (:meth:`OutboxSender.wake`;
  an update does so when its transaction commits), and it leases them right away — no poll.
* **Replies before bulk.** Rows have a lane (``models.OutboxLane``): replies to what a person
  just did, then notices, then bulk pushes and broadcasts. The lease takes the chats with a
  reply or a notice first, and holds only a couple of seconds' worth of bulk rows, so a reply
  never queues behind a push; when sends compete for the global pace, the best lane goes
  first (:class:`Pacer`).
* **In order per chat.** One worker per chat sends that chat's messages strictly in id order
  (a retry waits in place); a chat's lane is its most urgent row's, so a reply is never sent
  before an earlier message of its own chat. Calls that are not messages (menus, pins:
  ``CONTROL``) go in an order of their own, so one that keeps failing never holds up a
  chat's messages. No process leases rows of a chat whose earlier rows another process holds.
* **Telegram's limits.** About 30 messages a second in all, paced evenly (one every 34 ms,
  with no bursts and no slot lost to a late timer; a send goes no sooner than a second after
  the answer to the one 30 before it, so a server that counts any one-second window sees no
  more than its limit, however the network delays the requests) — one a second per private
  chat and one every three seconds per group (20 a minute). A 429 pauses *every* send for its
  ``retry_after`` (as python-telegram-bot's rate limiter does) and does not count as an
  attempt. With Redis, the 30 a second is one pace shared by every process of the bot, and a
  429 pauses them all (``bot.telegram.pacing``).
* **Transient faults** — 5xx, an answer that is not the Bot API's JSON (a proxy's 502 page), a
  dropped connection, a timeout — are retried with exponential backoff, at most
  ``limits.max_attempts`` times; the attempts are stored, so a restart keeps counting. A row
  that gives up is logged at WARNING with its method, chat and error.
* **Permanent refusals.** A 400 fails the row (``message is not modified`` counts as sent, and
  so does ``message to delete not found`` after a deletion whose answer never came).
  A 403 fails the row and the chat's other held rows without sending them, marks the person
  unreachable and — once, when they turn unreachable — calls ``on_unreachable`` in the same
  transaction (``bot.services.unreachable.tell_head`` tells their grid head).
* **Through aiogram.** Every call is ``await bot(method)``, with the method object rebuilt from
  what the outbox stored (:class:`StoredCall`).

Statuses are written by group commit: whoever has a finished row to record writes every
finished row waiting at that moment in one transaction, so commits never cap the throughput.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import inspect
import itertools
import logging
import math
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import groupby
from pathlib import Path
from typing import Any, NamedTuple, ParamSpec, TypeVar

import aiogram.methods
from aiogram import Bot
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods.base import TelegramMethod
from aiogram.types import FSInputFile, Message
from aiohttp import ClientConnectorError, ConnectionTimeoutError
from sqlalchemy import ColumnElement, bindparam, func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.db import SessionFactory
from bot.metrics import Metrics
from bot.services import outbox
from bot.services.schedule import in_quiet_hours
from bot.settings import Settings
from bot.telegram.pacing import Pace, SharedPacer, Turn
from models import OutboxLane, OutboxMessage, OutboxStatus, Person

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)  # how long a leased row is ours without a renewal, by default
RENEW_EVERY = 30.0  # seconds between lease renewals while rows are held (at most: and 4 a lease)
HOLD = 500  # rows held in memory at most
BULK_SECONDS = 2.0  # bulk rows held at most: this many seconds of sending
PER_CHAT = 20  # rows of one chat per lease, so one busy chat cannot starve the others
GROUP_SLOWER = 3.0  # groups get 20 messages a minute: three times the private-chat interval
PACE_WINDOW = 1.0  # seconds that hold at most messages_per_second sends (counted as in Pacer)
PACE_SPREAD = 1.01  # ... spread evenly over this long: room for a late send to catch up in
PACE_JITTER = 0.1  # seconds after a send went by which Telegram counted it, answer or not
EVEN_PACE = 0.97  # the shared pace in Redis, of the limit: it counts no window, so jitter
# never bunches its even slots over the limit
MAX_BACKOFF = 60.0
WRITE_ATTEMPTS = 5  # tries to record a status before the row waits for the next flush
WIRE_GRACE = 5.0  # seconds a stopping sender waits for the answers of requests on the wire
STOP_GRACE = 10.0  # seconds a stopping sender waits for its workers to end
RECORD_PAUSE = 0.001  # seconds an outcome waits before it is recorded (see OutboxSender._write)
LEASE_LOCK = 0x4F555442  # pg_advisory_xact_lock key that serialises leasing ("OUTB")
NOT_MODIFIED = "message is not modified"
ALREADY_DELETED = "message to delete not found"  # after a deletion whose answer was lost: done
NOT_SENT_UNREACHABLE = "not sent: the chat answered 403 before"
TRANSIENT = (TelegramServerError, TelegramNetworkError, ClientDecodeError, TimeoutError)
MAY_HAVE_ARRIVED = " (no answer came: it may have arrived)"

P = ParamSpec("P")
T = TypeVar("T")


def whole(transaction: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """A database transaction runs to its end even when its caller is cancelled meanwhile (the
    cancellation takes effect right after): one cut off in the middle leaves its connection —
    on SQLite, the write lock — held until the garbage collector finds it, and every outcome
    the sender then fails to record is a message sent again."""

    @functools.wraps(transaction)
    async def running(*args: P.args, **kwargs: P.kwargs) -> T:
        task = asyncio.ensure_future(transaction(*args, **kwargs))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():
                await asyncio.wait([task])
            raise

    return running


UnreachableHook = Callable[[AsyncSession, int, datetime], Awaitable[Any]]
"""``(session, chat_id, now)``, in the transaction that marks the chat's person unreachable."""

_RECORD = update(outbox.OUTBOX).where(outbox.OUTBOX.c.id == bindparam("row_id"))
"""A row's new values: the columns to set are the parameters' other keys."""


def _method_classes() -> dict[str, type[TelegramMethod[Any]]]:
    found: dict[str, type[TelegramMethod[Any]]] = {}
    for _, cls in inspect.getmembers(aiogram.methods, inspect.isclass):
        if issubclass(cls, TelegramMethod) and cls is not TelegramMethod:
            found[str(cls.__api_method__).lower()] = cls
    return found


METHODS = _method_classes()


@dataclass(frozen=True)
class StoredCall:
    """A Bot API call as the outbox keeps it: the method's name and its JSON parameters
    (``_upload`` names a file on disk)."""

    method: str
    payload: dict[str, Any]

    def __post_init__(self) -> None:
        if self.method.lower() not in METHODS:
            raise ValueError(f"unknown Bot API method {self.method!r}")

    def build(self) -> TelegramMethod[Any]:
        """aiogram's object of the call (validated), for ``await bot(method)``."""
        data = dict(self.payload)
        upload = data.pop("_upload", None)
        if upload:
            path = Path(upload["path"])
            data[upload["field"]] = FSInputFile(path, filename=upload.get("filename"))
        return METHODS[self.method.lower()].model_validate(data)


def _message_id(result: Any) -> int | None:
    """The id of the message a call sent or edited, from its answer."""
    return result.message_id if isinstance(result, Message) else None


def may_have_arrived(error: BaseException) -> bool:
    """Whether Telegram may have carried out a request that ended in ``error``.

    Telegram answered, so it did nothing: a 5xx, a proxy's page that is not the Bot API's JSON,
    a 429, a 400, 403 or 413. The request never left: the connection could not be made (refused,
    no route, DNS, TLS, a connect timeout). Anything else — a connection closed while the
    answer was awaited, a read timeout, a cancelled request — may have arrived."""
    answered = isinstance(error, (TelegramAPIError, ClientDecodeError)) and not isinstance(
        error, TelegramNetworkError
    )
    if answered or isinstance(error, TelegramEntityTooLarge):  # a 413 is an answer too
        return False
    cause = error.__cause__ if isinstance(error, TelegramNetworkError) else error
    return not isinstance(cause, (ClientConnectorError, ConnectionTimeoutError))


class Stream(NamedTuple):
    """What must go in order: a chat's messages, or a chat's other calls (``control``)."""

    chat_id: int
    control: bool


def stream_of(row: OutboxMessage) -> Stream:
    return Stream(row.chat_id, row.lane == OutboxLane.CONTROL)


class Pacer:
    """At most ``rate`` sends in any ``window`` seconds, spread evenly — one every
    ``spread / rate`` seconds — the best lane first.

    Waiters are served by ``(lane, arrival)``: a reply that starts waiting behind a hundred
    bulk sends is the next to go. No bursts: a send that finds the pacer idle goes at once,
    the next one an interval later.

    The window is counted the way the server counts it, wherever the network's delay puts a
    request: the server counted a send at some moment between when it went and when its
    answer came — and, we assume, no later than ``jitter`` after it went — so the
    ``rate + 1``-th send goes no sooner than ``window`` after the earlier of those two moments
    of the send ``rate`` before it (:meth:`ended` tells the pacer an answer came). The even
    slots keep their places when a send goes a little late (a busy loop, a timer's jitter) —
    the next slot is one interval after the late one's *slot*, not after the moment it went —
    so a late timer costs no throughput (``spread`` a little over ``window`` leaves the room
    to catch up in). A pacer more than an interval behind starts again from now: what was
    missed while it was idle or stalled is not sent as a burst.
    """

    def __init__(
        self, rate: float, window: float = 1.0, spread: float = 1.0, jitter: float = math.inf
    ) -> None:
        self.window = window
        self.jitter = jitter
        self.per_window = max(1, int(rate * window))
        self.interval = spread / self.per_window
        self._next = -math.inf  # loop time of the next even slot
        self._recent: deque[Turn] = deque(maxlen=self.per_window)  # the last sends
        self._waiting: list[tuple[int, int, asyncio.Future[Turn]]] = []
        self._order = itertools.count()
        self._timer: asyncio.TimerHandle | None = None

    async def acquire(self, lane: int) -> Turn:
        """Wait for a turn to send; tell :meth:`ended` when its answer (or failure) came."""
        loop = asyncio.get_running_loop()
        if not self._waiting and self.next_slot(loop.time()) <= loop.time():
            return self.take(loop.time())
        ready: asyncio.Future[Turn] = loop.create_future()
        heapq.heappush(self._waiting, (lane, next(self._order), ready))
        self._arm(loop)
        return await ready

    def ended(self, turn: Turn) -> None:
        """The answer to ``turn``'s send came (or it was never sent)."""
        loop = asyncio.get_running_loop()
        turn.ended = min(turn.ended, loop.time())
        if self._waiting:
            self._arm(loop)

    def next_slot(self, now: float) -> float:
        """The earliest time the next send may go (``inf``: when an answer comes)."""
        slot = self._even_slot(now)
        if len(self._recent) == self.per_window:  # the window is full until its oldest leaves
            oldest = self._recent[0]
            slot = max(slot, min(oldest.ended, oldest.went + self.jitter) + self.window)
        return slot

    def take(self, now: float) -> Turn:
        """A send goes at ``now`` (no earlier than :meth:`next_slot`)."""
        self._next = self._even_slot(now) + self.interval
        turn = Turn(now)
        self._recent.append(turn)
        return turn

    def _even_slot(self, now: float) -> float:
        return self._next if now - self._next < self.interval else now

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        slot = self.next_slot(loop.time())
        if self._timer is not None and self._timer.when() > slot:
            self._timer.cancel()  # an answer came: the next send may go sooner than planned
            self._timer = None
        if self._timer is None and slot < math.inf:
            self._timer = loop.call_at(slot, self._release, loop)

    async def pause(self, seconds: float) -> None:
        """Nothing to do: the sender itself holds every send back after a 429."""

    def _release(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        if self.next_slot(loop.time()) <= loop.time():
            while self._waiting:
                _, _, ready = heapq.heappop(self._waiting)
                if not ready.done():  # a cancelled waiter gives its place to the next
                    ready.set_result(self.take(loop.time()))
                    break
        if self._waiting:
            self._arm(loop)


@dataclass
class Outcome:
    """How one row ended."""

    status: OutboxStatus
    attempts: int
    error: str | None = None
    message_id: int | None = None
    unreachable: bool = False


@dataclass
class _Write:
    """One row's new values, waiting for the next group commit."""

    row_id: int
    values: dict[str, Any]
    done: bool = False


@dataclass
class _OnWire:
    """A row's latest request: the attempts counted before it, and the request itself."""

    row: OutboxMessage
    attempts: int
    request: asyncio.Future[Any]


@dataclass
class _Held:
    """The rows this process has leased and not yet settled."""

    stream_of: dict[int, Stream] = field(default_factory=dict)  # row id -> its stream
    bulk: set[int] = field(default_factory=set)  # the row ids among them leased as bulk
    tried: set[int] = field(default_factory=set)  # a request of it may have arrived
    uncertain: set[int] = field(default_factory=set)  # an answer never came: it may have
    on_wire: dict[int, _OnWire] = field(default_factory=dict)  # row id -> latest request
    unrecorded: dict[int, OutboxMessage] = field(default_factory=dict)  # ended, not written

    def streams(self) -> set[Stream]:
        return set(self.stream_of.values())

    def answered(self, row_id: int, error: BaseException) -> None:
        """A request of the row ended in ``error``: was it one that may have arrived?"""
        if may_have_arrived(error):
            self.uncertain.add(row_id)
        elif row_id not in self.uncertain:
            self.tried.discard(row_id)  # every request of it was refused: hand it back

    def forget(self, row_id: int) -> None:
        self.stream_of.pop(row_id, None)
        self.bulk.discard(row_id)
        self.tried.discard(row_id)
        self.uncertain.discard(row_id)
        self.on_wire.pop(row_id, None)
        self.unrecorded.pop(row_id, None)


def own_pacer(rate: float) -> Pacer:
    """This process's pace at ``rate`` messages a second, counted as Telegram counts them."""
    return Pacer(rate, PACE_WINDOW, PACE_SPREAD, PACE_JITTER)


class OutboxSender:
    """The one way GridBot talks to Telegram (besides answering callback queries).

    ``run()`` delivers forever; ``drain_once()`` leases one batch, delivers it and returns
    (tests and scripts). Do not call both on one sender at the same time.
    """

    def __init__(
        self,
        bot: Bot,
        sessions: SessionFactory,
        clock: Clock,
        settings: Settings,
        *,
        on_unreachable: UnreachableHook | None = None,
        concurrency: int = 64,
        metrics: Metrics | None = None,
        pacer: Pace | None = None,
    ) -> None:
        self.bot = bot
        self.metrics = metrics or Metrics()  # counted for /metrics
        self.sessions = sessions
        self.clock = clock
        self.settings = settings
        self.on_unreachable = on_unreachable
        limits = settings.limits
        # this process's pace, or one shared by every process of the bot (bot.telegram.pacing)
        self._pacer: Pace = pacer or own_pacer(limits.messages_per_second)
        self._bulk_hold = max(1, int(limits.messages_per_second * BULK_SECONDS))
        self._per_chat = limits.per_chat_interval
        self._retry_base = limits.retry_base_seconds
        self._max_attempts = limits.max_attempts
        self._lease_for = timedelta(seconds=limits.lease_seconds)  # a leased row is ours this long
        self._chat_ready: dict[int, float] = {}  # loop time before which a chat waits
        self._paused_until = 0.0  # loop time before which nothing is sent (a 429)
        self._slots = asyncio.Semaphore(concurrency)  # requests on the wire at once
        self._wake = asyncio.Event()
        self._held = _Held()
        self._workers: set[asyncio.Task[None]] = set()
        self._writes: list[_Write] = []
        self._write_lock = asyncio.Lock()
        self._lease_again = False  # a lease may have left rows behind: look when a worker ends
        self.gave_up = Counter[str]()  # rows that failed for good since start, by method

    # -- the public face ------------------------------------------------------------------------

    async def close(self) -> None:
        """Let go of the shared pace's connections, if there is one."""
        if isinstance(self._pacer, SharedPacer):
            await self._pacer.close()

    def wake(self) -> None:
        """Something was committed to the outbox: lease it now instead of at the next poll."""
        self._wake.set()

    async def run(self, poll_seconds: float = 1.0) -> None:
        """Deliver forever (cancel the task to stop): lease what is due, one worker per
        stream, and lease again when woken, when a worker ends with rows left behind, or
        every ``poll_seconds`` (rows that fell due, leases of a dead process run out)."""
        async with self._keeping_leases():
            while True:
                self._wake.clear()
                try:
                    if self._writes:  # outcomes the database refused before: they go first
                        await self._flush()
                    leased = await self._lease()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("leasing from the outbox failed; retrying")
                    leased = []
                for rows in _by_stream(leased):
                    self._start_worker(rows)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(poll_seconds):  # never wait_for: see test_layering
                        await self._wake.wait()

    async def drain_once(self) -> int:
        """Lease what is due, deliver it stream by stream, and return how many rows were
        handled."""
        async with self._keeping_leases():
            batch = await self._lease()
            await asyncio.gather(*(self._deliver_stream(rows) for rows in _by_stream(batch)))
            return len(batch)

    @whole
    async def due_count(self) -> int:
        """Rows that may be sent now, leased or not (tests wait for this to reach zero)."""
        async with self.sessions() as session:
            count = await session.exec(
                select(func.count()).select_from(OutboxMessage).where(*self._due(self.clock.now()))
            )
            return int(count.one())

    # -- leasing --------------------------------------------------------------------------------

    def _due(self, now: datetime) -> list[ColumnElement[bool]]:
        """What may be sent now: pending, due, and urgent during quiet hours."""
        conditions: list[ColumnElement[bool]] = [
            col(OutboxMessage.status) == OutboxStatus.PENDING,
            col(OutboxMessage.not_before) <= now,
        ]
        if in_quiet_hours(now, self.settings):
            conditions.append(col(OutboxMessage.urgent).is_(True))
        return conditions

    @whole
    async def _lease(self) -> list[OutboxMessage]:
        """Take what may go now, in one transaction: first every stream with a reply or a
        notice due (and that stream's earlier rows), then bulk rows up to a couple of
        seconds' worth, then calls that are not messages. Never more than ``HOLD`` rows held,
        ``PER_CHAT`` of a stream, nor a stream that someone (this process included) holds."""
        room = HOLD - len(self._held.stream_of)
        if room <= 0:
            self._lease_again = True
            return []
        now = self.clock.now()
        held = self._held.streams()
        async with self.sessions() as session:
            if session.get_bind().dialect.name == "postgresql":
                await session.exec(select(func.pg_advisory_xact_lock(LEASE_LOCK)))
            urgent = await self._lease_streams(session, now, room, held, urgent_only=True)
            room -= len(urgent)
            bulk_room = min(room, self._bulk_hold - len(self._held.bulk))
            bulk = await self._lease_streams(session, now, bulk_room, held)
            room -= len(bulk)
            others = await self._lease_streams(session, now, room, held, control=True)
            await session.commit()
        rows = sorted([*urgent, *bulk, *others], key=lambda row: (stream_of(row), row.id or 0))
        self._register(rows, bulk={row.id for row in bulk if row.id is not None})
        return rows

    async def _lease_streams(
        self,
        session: AsyncSession,
        now: datetime,
        limit: int,
        held: set[Stream],
        *,
        control: bool = False,
        urgent_only: bool = False,
    ) -> list[OutboxMessage]:
        """Lease up to ``limit`` due messages (or, with ``control``, other calls), oldest
        first, at most ``PER_CHAT`` of a chat; with ``urgent_only``, only of the chats that
        have a reply or a notice due — with their earlier rows, whatever their lane."""
        if limit <= 0:
            return []
        lane = col(OutboxMessage.lane)
        kind = lane == OutboxLane.CONTROL if control else lane != OutboxLane.CONTROL
        lease_until = col(OutboxMessage.lease_until)
        free = or_(lease_until.is_(None), lease_until < now)
        busy = select(OutboxMessage.chat_id).where(
            col(OutboxMessage.status) == OutboxStatus.PENDING, lease_until >= now, kind
        )
        held_chats = {stream.chat_id for stream in held if stream.control == control}
        conditions = [*self._due(now), free, kind, col(OutboxMessage.chat_id).not_in(busy)]
        if held_chats:
            conditions.append(col(OutboxMessage.chat_id).not_in(held_chats))
        if urgent_only:
            wanted = select(OutboxMessage.chat_id).where(
                *self._due(now), free, lane < OutboxLane.BULK
            )
            conditions.append(col(OutboxMessage.chat_id).in_(wanted))
        ranked = (
            select(
                col(OutboxMessage.id).label("id"),
                func.row_number()
                .over(partition_by=col(OutboxMessage.chat_id), order_by=col(OutboxMessage.id))
                .label("place"),
            )
            .where(*conditions)
            .subquery()
        )
        chosen = (
            select(ranked.c.id)
            .where(ranked.c.place <= PER_CHAT)
            .order_by(ranked.c.id)
            .limit(limit)
        )
        locked = (  # rows another transaction is writing are left for the next lease
            select(OutboxMessage.id)
            .where(col(OutboxMessage.id).in_(chosen.scalar_subquery()))
            .order_by(col(OutboxMessage.id))
            .with_for_update(skip_locked=True)
        )
        leased = await session.exec(  # one round trip: lease and read back
            update(OutboxMessage)
            .where(col(OutboxMessage.id).in_(locked.scalar_subquery()))
            .values(lease_until=now + self._lease_for)
            .returning(OutboxMessage)
            .execution_options(synchronize_session=False)
        )
        rows = list(leased.scalars().all())
        per_chat = Counter(row.chat_id for row in rows)
        if held_chats or len(rows) >= limit or any(n >= PER_CHAT for n in per_chat.values()):
            self._lease_again = True  # rows may still wait
        return rows

    def _register(self, rows: Iterable[OutboxMessage], *, bulk: set[int]) -> None:
        """The rows are leased to this process: renew their leases until they are settled."""
        for row in rows:
            assert row.id is not None
            self._held.stream_of[row.id] = stream_of(row)
            if row.id in bulk:
                self._held.bulk.add(row.id)

    def _start_worker(self, rows: list[OutboxMessage]) -> None:
        worker = asyncio.create_task(self._deliver_stream(rows))
        self._workers.add(worker)
        worker.add_done_callback(self._worker_done)

    @contextlib.asynccontextmanager
    async def _keeping_leases(self) -> AsyncIterator[None]:
        """Renew the held leases while the block runs; on the way out (cancelled, say) stop the
        workers, let the requests on the wire end, record what they and the workers had
        finished, and hand back every held row that cannot have arrived."""
        renewer = asyncio.create_task(self._renew_leases())
        try:
            yield
        finally:
            renewer.cancel()
            workers = list(self._workers)
            for worker in workers:
                worker.cancel()
            ended, stuck = await asyncio.wait([renewer, *workers], timeout=STOP_GRACE)
            for task in ended:
                if not task.cancelled():
                    task.exception()  # retrieved: each worker logged its own failure
            if stuck:  # a stop must end: what they held is handed back below or runs out
                log.error("%d outbox tasks did not stop within %g s", len(stuck), STOP_GRACE)
            await self._finish_on_wire()
            if not await self._flush():  # their leases run out and they are sent again
                log.error("could not record %d outbox rows", len(self._writes))
            await self._release_held()

    async def _finish_on_wire(self) -> None:
        """Wait (``WIRE_GRACE`` at most) for the requests still on the wire, and queue what
        they did: sent, or refused (the row is handed back). One cut off may have arrived."""
        wires = [w for i, w in self._held.on_wire.items() if i in self._held.stream_of]
        pending = [w.request for w in wires if not w.request.done()]
        if pending:
            _, cut_off = await asyncio.wait(pending, timeout=WIRE_GRACE)
            for request in cut_off:
                request.cancel()
            await asyncio.gather(*cut_off, return_exceptions=True)
        queued = {w.row_id for w in self._writes if "status" in w.values}
        for wire in wires:
            row_id, request = wire.row.id or 0, wire.request
            if request.cancelled() or row_id in queued:
                continue
            error = request.exception()
            if error is not None:
                self._held.answered(row_id, error)
                continue
            outcome = Outcome(
                OutboxStatus.SENT, wire.attempts, message_id=_message_id(request.result())
            )
            await _forget_upload(wire.row)
            self._writes.append(_Write(row_id, self._values(outcome)))
            self._held.unrecorded[row_id] = wire.row

    async def _renew_leases(self) -> None:
        while True:
            await asyncio.sleep(min(RENEW_EVERY, self._lease_for.total_seconds() / 4))
            ids = sorted(self._held.stream_of)
            if not ids:
                continue
            try:
                await self._renew(ids)
            except Exception:
                log.exception("renewing %d outbox leases failed", len(ids))

    @whole
    async def _renew(self, ids: list[int]) -> None:
        async with self.sessions() as session:
            await session.exec(
                update(OutboxMessage)
                .where(col(OutboxMessage.id).in_(_lockable(ids)))
                .values(lease_until=self.clock.now() + self._lease_for)
            )
            await session.commit()

    @whole
    async def _release_held(self) -> None:
        """Give back rows that cannot have arrived (never tried, or every request of them
        refused); a row that may have arrived, or whose outcome is not recorded, keeps its
        lease."""
        ids = sorted(i for i in self._held.stream_of if i not in self._held.tried)
        self._held = _Held()
        if not ids:
            return
        try:
            async with self.sessions() as session:
                await session.exec(
                    update(OutboxMessage)
                    .where(col(OutboxMessage.id).in_(_lockable(ids)))
                    .values(lease_until=None)
                )
                await session.commit()
        except Exception:  # the leases run out by themselves
            log.exception("could not release %d outbox leases", len(ids))

    def _worker_done(self, worker: asyncio.Task[None]) -> None:
        self._workers.discard(worker)
        if not worker.cancelled() and worker.exception() is not None:
            log.error("an outbox chat worker stopped", exc_info=worker.exception())
        bulk_low = len(self._held.bulk) <= self._bulk_hold // 2
        if self._lease_again and bulk_low and len(self._held.stream_of) < HOLD:
            self._lease_again = False
            self._wake.set()

    # -- delivering -----------------------------------------------------------------------------

    async def _deliver_stream(self, rows: list[OutboxMessage]) -> None:
        """One stream's rows, strictly in order (retries wait in place rather than reorder)."""
        for index, row in enumerate(rows):
            lane = min(each.lane for each in rows[index:])  # what still waits behind this row
            try:
                outcome = await self._deliver(row, lane)
            except Exception as exc:  # a malformed row must not stop the chat or the round
                log.exception("outbox %s could not be delivered", row.id)
                outcome = Outcome(OutboxStatus.FAILED, row.attempts, error=repr(exc))
            if outcome.status == OutboxStatus.FAILED:
                self.gave_up[row.method] += 1
                log.warning(
                    "outbox %s gave up: %s to chat %s: %s",
                    row.id,
                    row.method,
                    row.chat_id,
                    outcome.error,
                )
            if outcome.unreachable:
                await self._settle_unreachable(row, outcome, rows[index + 1 :])
                return
            await self._settle(row, outcome)

    async def _deliver(self, row: OutboxMessage, lane: int) -> Outcome:
        attempts = row.attempts
        if row.expires_at is not None and row.expires_at <= self.clock.now():
            return Outcome(OutboxStatus.DROPPED, attempts, error="expired before delivery")
        call = await self._call_for(row)
        while True:
            try:
                result = await self._send(row, call, lane, attempts)
            except TelegramRetryAfter as exc:
                log.warning("429 for chat %s: all sends wait %ss", row.chat_id, exc.retry_after)
                self.metrics.too_many_requests.inc()
                self.metrics.retry_after_seconds.observe(exc.retry_after)
                self._held.answered(row.id or 0, exc)
                self._pause(row.chat_id, exc.retry_after)
                await self._pacer.pause(exc.retry_after)
                continue
            except TelegramForbiddenError as exc:
                return Outcome(OutboxStatus.FAILED, attempts, error=exc.message, unreachable=True)
            except TelegramBadRequest as exc:
                if NOT_MODIFIED in exc.message or (
                    ALREADY_DELETED in exc.message
                    and row.method.lower() == "deletemessage"
                    and row.id in self._held.uncertain
                ):
                    return Outcome(OutboxStatus.SENT, attempts)
                return Outcome(OutboxStatus.FAILED, attempts, error=exc.message)
            except TRANSIENT as exc:
                attempts += 1
                self._held.answered(row.id or 0, exc)
                error = f"{type(exc).__name__}: {exc}"
                if (row.id or 0) in self._held.uncertain:
                    error = error[: 500 - len(MAY_HAVE_ARRIVED)] + MAY_HAVE_ARRIVED
                if attempts >= self._max_attempts:
                    return Outcome(OutboxStatus.FAILED, attempts, error=error)
                self.metrics.sends.labels("retry").inc()
                await self._write(row, {"attempts": attempts, "last_error": error[:500]})
                await asyncio.sleep(min(self._retry_base * 2 ** (attempts - 1), MAX_BACKOFF))
                continue
            return Outcome(OutboxStatus.SENT, attempts, message_id=_message_id(result))

    async def _call_for(self, row: OutboxMessage) -> StoredCall:
        payload = dict(row.payload)
        method = row.method
        if row.edit_ref:
            message_id = await self._message_id_of(row.edit_ref, row.chat_id)
            if message_id is None:
                method, payload = "sendMessage", _as_new_message(payload)
            else:
                payload["message_id"] = message_id
        return StoredCall(method, payload)

    async def _send(self, row: OutboxMessage, call: StoredCall, lane: int, attempts: int) -> Any:
        """One request, when a 429 pause, the chat's pace and the global pace allow it
        (Telegram's limits count messages, not menus or pins: those wait only for a 429).

        The request is shielded: a sender that is stopped while it is on the wire waits for
        its answer (see :meth:`_finish_on_wire`) rather than leave it unknown."""
        assert row.id is not None
        method = call.build()  # before the wait: a row that cannot be built fails at once
        turn = await self._pace(row.chat_id, None if row.lane == OutboxLane.CONTROL else lane)
        try:
            async with self._slots:
                self._held.tried.add(row.id)
                request = asyncio.ensure_future(self.bot(method))
                self._held.on_wire[row.id] = _OnWire(row, attempts, request)
                return await asyncio.shield(request)
        finally:
            if turn is not None:  # the answer came, or the send never went (or we stop)
                self._pacer.ended(turn)

    async def _pace(self, chat_id: int, lane: int | None) -> Turn | None:
        """Wait for any 429 pause and the chat's turn, then for the global pace (a message,
        in ``lane``'s place; ``None``: not a message, which takes no turn)."""
        loop = asyncio.get_running_loop()
        while True:
            ready = self._chat_ready.get(chat_id, 0.0) if lane is not None else 0.0
            wait = max(ready, self._paused_until) - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            if lane is None:
                return None
            turn = await self._pacer.acquire(lane)
            if self._paused_until <= loop.time():  # no 429 came while we queued
                break
            self._pacer.ended(turn)  # not sent: wait out the pause and queue again
        interval = self._per_chat * (GROUP_SLOWER if chat_id < 0 else 1.0)
        self._chat_ready[chat_id] = loop.time() + interval
        if len(self._chat_ready) > 10_000:
            now = loop.time()
            self._chat_ready = {c: t for c, t in self._chat_ready.items() if t > now}
        return turn

    def _pause(self, chat_id: int, retry_after: float) -> None:
        until = asyncio.get_running_loop().time() + retry_after
        self._paused_until = max(self._paused_until, until)
        self._chat_ready[chat_id] = max(self._chat_ready.get(chat_id, 0.0), until)

    @whole
    async def _message_id_of(self, ref: str, chat_id: int) -> int | None:
        async with self.sessions() as session:
            return (
                await session.exec(
                    select(OutboxMessage.message_id)
                    .where(
                        OutboxMessage.ref == ref,
                        OutboxMessage.chat_id == chat_id,
                        OutboxMessage.status == OutboxStatus.SENT,
                        col(OutboxMessage.message_id).is_not(None),
                    )
                    .order_by(col(OutboxMessage.id).desc())
                    .limit(1)
                )
            ).first()

    # -- recording ------------------------------------------------------------------------------

    async def _settle(self, row: OutboxMessage, outcome: Outcome) -> None:
        """Record how the row ended and let go of it. If the database stays away, the row
        stays held (its lease renewed, its chat not leased again) until a later flush
        writes the outcome: a row sent is never sent again because it was not recorded."""
        self.metrics.sends.labels(str(outcome.status)).inc()
        await _forget_upload(row)
        if await self._write(row, self._values(outcome)):
            self._let_go([row])
        elif row.id is not None and row.id in self._held.stream_of:
            self._held.unrecorded[row.id] = row

    def _values(self, outcome: Outcome) -> dict[str, Any]:
        values: dict[str, Any] = {
            "status": outcome.status,
            "lease_until": None,
            "attempts": outcome.attempts,
        }
        if outcome.status == OutboxStatus.SENT:
            values["sent_at"] = self.clock.now()
            if outcome.message_id is not None:
                values["message_id"] = outcome.message_id
        if outcome.error:
            values["last_error"] = outcome.error[:500]
        return values

    @whole
    async def _settle_unreachable(
        self, row: OutboxMessage, outcome: Outcome, rest: list[OutboxMessage]
    ) -> None:
        """403: fail this row and the chat's held rows, and mark the person unreachable — all
        in one transaction, with the hook called when the person turns unreachable."""
        now = self.clock.now()
        for each in (row, *rest):
            await _forget_upload(each)
        async with self.sessions() as session:
            await session.exec(
                update(OutboxMessage)
                .where(col(OutboxMessage.id) == row.id)
                .values(
                    status=OutboxStatus.FAILED,
                    lease_until=None,
                    attempts=outcome.attempts,
                    last_error=(outcome.error or "")[:500],
                )
            )
            if rest:
                await session.exec(
                    update(OutboxMessage)
                    .where(col(OutboxMessage.id).in_([r.id for r in rest]))
                    .values(
                        status=OutboxStatus.FAILED,
                        lease_until=None,
                        last_error=NOT_SENT_UNREACHABLE,
                    )
                )
            turned = (
                await session.exec(
                    update(Person)
                    .where(col(Person.telegram_id) == row.chat_id, col(Person.reachable).is_(True))
                    .values(reachable=False, updated_at=now)
                    .returning(col(Person.id))
                )
            ).all()
            if turned and self.on_unreachable is not None:
                try:
                    async with session.begin_nested():
                        await self.on_unreachable(session, row.chat_id, now)
                except Exception:  # the person is still marked; only the telling is lost
                    log.exception("telling about unreachable chat %s failed", row.chat_id)
            await session.commit()
        self._let_go([row, *rest])
        if turned:
            self.wake()  # the hook may have queued messages

    async def _write(self, row: OutboxMessage, values: dict[str, Any]) -> bool:
        """Group commit: queue the row's values; whoever holds the lock writes all that wait.
        Returns False when the database stayed out of reach: the values stay queued for the
        next flush (the run loop tries before every lease).

        Recording is bookkeeping, not what anyone waits for: it first pauses a moment
        (``RECORD_PAUSE``), so that what is ready on the event loop goes first — the updates
        that came in meanwhile, the next sends, the next poll — and outcomes that finish
        meanwhile share the transaction. The row stays leased and held until it is recorded,
        and a sender stopped in the pause records it on the way out."""
        assert row.id is not None
        mine = _Write(row.id, values)
        self._writes.append(mine)
        await asyncio.sleep(RECORD_PAUSE)
        for attempt in range(WRITE_ATTEMPTS):
            if mine.done or await self._flush():
                return True
            await asyncio.sleep(0.1 * 2**attempt)
        return mine.done

    async def _flush(self) -> bool:
        """Write every queued outcome in one transaction; let go of the rows that waited for
        theirs. False when the database refused (they stay queued)."""
        async with self._write_lock:
            batch, self._writes = self._writes, []
            if not batch:
                return True
            try:
                await self._write_batch(batch)
            except BaseException as exc:
                self._writes[:0] = batch
                if not isinstance(exc, Exception):
                    raise  # cancelled: what waits is flushed on the way out
                log.exception("recording %d outbox rows failed", len(batch))
                return False
            for write in batch:
                write.done = True
                row = self._held.unrecorded.pop(write.row_id, None)
                if row is not None:
                    self._let_go([row])
            return True

    @whole
    async def _write_batch(self, batch: Iterable[_Write]) -> None:
        """One transaction; one ``executemany`` for the rows with the same columns to set."""
        alike: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for write in sorted(batch, key=lambda w: w.row_id):  # locks in id order: no deadlock
            alike.setdefault(tuple(sorted(write.values)), []).append(
                {**write.values, "row_id": write.row_id}
            )
        async with self.sessions() as session:
            for rows in alike.values():
                await session.exec(_RECORD, params=rows)
            await session.commit()

    def _let_go(self, rows: Iterable[OutboxMessage]) -> None:
        for row in rows:
            if row.id is not None:
                self._held.forget(row.id)


def _by_stream(rows: list[OutboxMessage]) -> list[list[OutboxMessage]]:
    """Rows (ordered by stream, then id) split into one list per stream."""
    return [list(each) for _, each in groupby(rows, key=stream_of)]


def _lockable(ids: list[int]) -> Any:
    """The pending rows among ``ids`` that no other transaction is writing, locked in id
    order: a renewal never waits on, nor deadlocks with, a status being recorded."""
    return (
        select(OutboxMessage.id)
        .where(
            col(OutboxMessage.id).in_(ids),
            col(OutboxMessage.status) == OutboxStatus.PENDING,
        )
        .order_by(col(OutboxMessage.id))
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )


async def _forget_upload(row: OutboxMessage) -> None:
    """A temporary file made for this row is not needed once the row has ended."""
    upload = row.payload.get("_upload")
    if upload and upload.get("delete_after"):
        await asyncio.to_thread(Path(upload["path"]).unlink, missing_ok=True)


def _as_new_message(edit_payload: dict[str, Any]) -> dict[str, Any]:
    """The original message was never delivered: send the edited content as a new one."""
    return {k: v for k, v in edit_payload.items() if k not in {"message_id", "inline_message_id"}}
