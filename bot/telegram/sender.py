"""Delivers the outbox under Telegram's limits (发送队列).

What it promises, and how:

* **Nothing is lost.** Rows are leased (``lease_until``) before they are sent and the lease is
  renewed while this process holds them; a row leased by a process that died is picked up
  again once its lease has run out. A request whose answer never came (the process died while
  it was on the wire, or it timed out) may be repeated: delivery is at least once, because
  Telegram has no idempotency key.
* **In order per chat.** One worker per chat sends that chat's rows strictly in id order (a
  retry waits in place), and no process leases rows of a chat whose earlier rows another
  process still holds.
* **Telegram's limits.** About 30 messages a second in all — a leaky bucket whose burst is a
  third of a second's worth, so a server-side bucket of the same rate is never drained by
  network jitter — one a second per private chat and one every three seconds per group
  (20 a minute). A 429 pauses *every* send for its ``retry_after`` (as python-telegram-bot's
  rate limiter does) and does not count as an attempt.
* **Transient faults** — 5xx, an answer that is not the Bot API's JSON (a proxy's 502 page), a
  dropped connection, a timeout — are retried with exponential backoff, at most
  ``limits.max_attempts`` times; the attempts are stored, so a restart keeps counting.
* **Permanent refusals.** A 400 fails the row (``message is not modified`` counts as sent).
  A 403 fails the row and the chat's other held rows without sending them, marks the person
  unreachable and — once, when they turn unreachable — calls ``on_unreachable`` in the same
  transaction (``bot.services.unreachable.tell_head`` tells their grid head).
* **As stored.** A row's parameters go to Telegram as the JSON the outbox keeps
  (:func:`post_stored`); aiogram's objects of the call are built only for a file upload and to
  read an answer that is not a plain success, so errors are aiogram's own.

Statuses are written by group commit: whoever has a finished row to record writes every
finished row waiting at that moment in one transaction, so commits never cap the throughput.

**An update's own replies go out at once.** The update's transaction leases the rows it adds
(:meth:`OutboxSender.claim`, just before its commit) when nothing of that chat is waiting or
on its way; right after the commit they are handed to a chat worker
(:meth:`OutboxSender.committed`) with no lease transaction of their own. Everything else —
a chat with earlier rows still pending, a row not yet due — is left to the next lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http import HTTPStatus
from itertools import groupby
from pathlib import Path
from typing import Any

import aiogram.methods
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods.base import TelegramMethod
from aiogram.types import FSInputFile, Message
from aiohttp import ClientError, ClientTimeout
from aiolimiter import AsyncLimiter
from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    String,
    bindparam,
    column,
    event,
    func,
    or_,
    update,
)
from sqlalchemy import inspect as orm_state
from sqlalchemy.orm import Session
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.db import SessionFactory
from bot.services import outbox
from bot.services.schedule import in_quiet_hours
from bot.settings import Settings
from models import OutboxMessage, OutboxStatus, Person
from models.types import UTCDateTime

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)  # how long a leased row is ours without a renewal
RENEW_EVERY = 30.0  # seconds between lease renewals while rows are held
BATCH = 500  # rows leased at most per query
HOLD = 500  # rows held in memory at most (about 17 s of sending at 30/s)
LOW_WATER = HOLD // 2  # lease more only once the held rows fall below this
PER_CHAT = 20  # rows of one chat per lease, so one busy chat cannot starve the others
GROUP_SLOWER = 3.0  # groups get 20 messages a minute: three times the private-chat interval
BURST_SECONDS = 1 / 3  # the global limiter's burst, in seconds' worth of messages
MAX_BACKOFF = 60.0
WRITE_ATTEMPTS = 5  # tries to record a status before the lease is left to expire
RECORD_PAUSE = 0.001  # seconds an outcome waits before it is recorded (see OutboxSender._write)
LEASE_LOCK = 0x4F555442  # pg_advisory_xact_lock key that serialises leasing ("OUTB")
CHAT_LOCK = "gridbot outbox chat "  # + chat id, hashed: the lock of a chat's claim
NOT_MODIFIED = "message is not modified"
NOT_SENT_UNREACHABLE = "not sent: the chat answered 403 before"
MESSAGE_METHODS = ("send", "edit", "copy", "forward")
TRANSIENT = (TelegramServerError, TelegramNetworkError, ClientDecodeError, TimeoutError)

UnreachableHook = Callable[[AsyncSession, int, datetime], Awaitable[Any]]
"""``(session, chat_id, now)``, in the transaction that marks the chat's person unreachable."""

_ADDED = "gridbot.outbox_added"  # Session.info key: the outbox rows a tracked session added


_WAITING = (  # built once: this runs for every update with a reply
    select(OutboxMessage.chat_id)
    .where(
        col(OutboxMessage.chat_id).in_(bindparam("chats", expanding=True)),
        col(OutboxMessage.id).not_in(bindparam("mine", expanding=True)),
        col(OutboxMessage.status) == OutboxStatus.PENDING,
        or_(
            col(OutboxMessage.not_before) <= bindparam("now"),
            col(OutboxMessage.lease_until) >= bindparam("now"),
        ),
    )
    .distinct()
)
"""The chats among ``chats`` with a row other than ``mine`` due or on its way (:meth:`claim`)."""

_LOCK_THEN_WAITING = select(
    func.gridbot_claim_waiting(
        bindparam("prefix", type_=String),
        bindparam("chats", type_=ARRAY(BigInteger)),
        bindparam("mine", type_=ARRAY(BigInteger)),
        bindparam("now", type_=UTCDateTime),
    )
    .table_valued(column("chat_id", BigInteger))
    .c.chat_id
)
"""PostgreSQL: lock ``chats`` until the commit (in the order given), then the test of
:data:`_WAITING` (written again in the function: a change to one is a change to both) — two
statements of one function (migration 0005), so the check sees what committed while a lock
was awaited, in one round trip."""


_RECORD = update(outbox.OUTBOX).where(outbox.OUTBOX.c.id == bindparam("row_id"))
"""A row's new values: the columns to set are the parameters' other keys."""


@event.listens_for(Session, "transient_to_pending")
def _note_added(session: Session, instance: object) -> None:
    added: list[OutboxMessage] | None = session.info.get(_ADDED)
    if added is not None and isinstance(instance, OutboxMessage):
        added.append(instance)


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

    @property
    def uploads(self) -> bool:
        """It sends a file from disk (a multipart request)."""
        return "_upload" in self.payload

    def build(self) -> TelegramMethod[Any]:
        """aiogram's object of the call (validated)."""
        data = dict(self.payload)
        upload = data.pop("_upload", None)
        if upload:
            path = Path(upload["path"])
            data[upload["field"]] = FSInputFile(path, filename=upload.get("filename"))
        return METHODS[self.method.lower()].model_validate(data)


_JSON_BODY = {"Content-Type": "application/json"}


async def post_stored(bot: Bot, session: AiohttpSession, call: StoredCall) -> Any:
    """Make ``call`` with its stored parameters as the JSON body (the Bot API takes one for
    every call but a file upload), and return the answer's ``result`` as JSON.

    aiogram's own way (``bot(call.build())``) validates the parameters into a pydantic model
    and dumps them out again, then validates the answer into one (a ``Message`` …): about
    0.3 ms of CPU on the way of every reply, for parameters the outbox stored as JSON and an
    answer of which the sender reads one number. Anything but a plain success is handed to
    aiogram's ``check_response`` with the call built then, so errors are raised exactly as
    aiogram raises them.
    """
    http = await session.create_session()
    url = session.api.api_url(token=bot.token, method=call.method)
    try:
        async with http.post(
            url,
            data=session.json_dumps(call.payload),
            headers=_JSON_BODY,
            timeout=ClientTimeout(total=session.timeout),
        ) as response:
            status, content = response.status, await response.text()
    except TimeoutError as exc:
        raise TelegramNetworkError(call.build(), "Request timeout error") from exc
    except ClientError as exc:
        raise TelegramNetworkError(call.build(), f"{type(exc).__name__}: {exc}") from exc
    if status == HTTPStatus.OK:
        try:
            answer = session.json_loads(content)
        except ValueError:
            answer = None
        if isinstance(answer, dict) and answer.get("ok") is True:
            return answer.get("result")
    return session.check_response(bot, call.build(), status, content).result


def _message_id(result: Any) -> int | None:
    """The id of the message a call sent or edited, from its answer (aiogram's or JSON)."""
    if isinstance(result, Message):
        return result.message_id
    if isinstance(result, dict):
        message_id = result.get("message_id")
        if isinstance(message_id, int) and not isinstance(message_id, bool):
            return message_id
    return None


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
class Handoff:
    """An update's outbox rows on their way from its transaction to the sender."""

    rows: list[OutboxMessage] = field(default_factory=list)  # leased in the transaction
    wake: bool = False  # it added rows that were not leased: the sender should look


@dataclass
class _Held:
    """The rows this process has leased and not yet settled."""

    chat_of: dict[int, int] = field(default_factory=dict)  # row id -> chat id
    tried: set[int] = field(default_factory=set)  # a request went out: it may have arrived

    def chats(self) -> set[int]:
        return set(self.chat_of.values())


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
    ) -> None:
        self.bot = bot
        self.sessions = sessions
        self.clock = clock
        self.settings = settings
        self.on_unreachable = on_unreachable
        limits = settings.limits
        burst = max(1.0, limits.messages_per_second * BURST_SECONDS)
        self._global = AsyncLimiter(burst, burst / limits.messages_per_second)
        self._per_chat = limits.per_chat_interval
        self._retry_base = limits.retry_base_seconds
        self._max_attempts = limits.max_attempts
        self._chat_ready: dict[int, float] = {}  # loop time before which a chat waits
        self._paused_until = 0.0  # loop time before which nothing is sent (a 429)
        self._slots = asyncio.Semaphore(concurrency)  # requests on the wire at once
        self._wake = asyncio.Event()
        self._held = _Held()
        self._workers: set[asyncio.Task[None]] = set()
        self._writes: list[_Write] = []
        self._write_lock = asyncio.Lock()
        self._running = False  # run() is delivering: rows may be handed over
        self._lease_again = False  # a lease may have left rows behind: look when a worker ends

    # -- the public face ------------------------------------------------------------------------

    def wake(self) -> None:
        """Something was committed to the outbox: look now instead of at the next poll."""
        self._wake.set()

    async def run(self, poll_seconds: float = 1.0) -> None:
        """Deliver forever (cancel the task to stop): lease what is due while there is room,
        one worker per chat, and lease again when woken, when the held rows run low, or every
        ``poll_seconds``."""
        async with self._keeping_leases():
            self._running = True
            try:
                while True:
                    self._wake.clear()
                    room = min(BATCH, HOLD - len(self._held.chat_of))
                    try:
                        leased = await self._lease(room)
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        log.exception("leasing from the outbox failed; retrying")
                        leased = []
                    for rows in _by_chat(leased):
                        self._start_worker(rows)
                    if room <= 0 or len(leased) >= room:
                        self._lease_again = True
                    if len(leased) < room or room <= 0:  # all that may go now is out
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._wake.wait(), poll_seconds)
            finally:
                self._running = False

    @property
    def running(self) -> bool:
        """``run()`` is delivering (an update's own rows may be handed to it)."""
        return self._running

    # -- an update's own replies ------------------------------------------------------------

    def track(self, session: AsyncSession) -> None:
        """Note the outbox rows ``session`` adds from now on (an update's, for :meth:`claim`)."""
        session.sync_session.info[_ADDED] = []

    async def claim(self, session: AsyncSession) -> Handoff:
        """Just before a tracked session commits: lease its own new rows of every chat that has
        nothing pending before them and nothing on its way, so that they go out the moment
        the transaction commits (pass the result to :meth:`committed`).

        The rows are written leased; then one ``SELECT`` looks for anything else of their
        chats that is due or on its way, and the chats that have some are given back to the
        next lease (their rows' lease is cleared again). On SQLite the update's chat was
        already asked in the person's query (:func:`outbox.reads_backlog_ahead`): no
        ``SELECT`` unless other chats got rows too. On PostgreSQL the chats are first
        locked until the commit (``pg_advisory_xact_lock``), so that two processes handling
        updates of one chat at once do not both claim it: the second sees the first's rows —
        the locks and the check are one call of ``gridbot_claim_waiting`` (migration 0005).
        On SQLite the update's write lock already keeps everyone else out.

        A chat this process is sending to, a row not yet due, a chat with rows flushed before
        now (they are not told apart from anyone else's), and everything while the sender is
        not running are left to the next lease.
        """
        added: list[OutboxMessage] = session.sync_session.info.pop(_ADDED, None) or []
        rows = [row for row in added if orm_state(row).pending or orm_state(row).persistent]
        if not rows:
            return Handoff()
        if not self._running:
            return Handoff(wake=True)
        now = self.clock.now()
        quiet = in_quiet_hours(now, self.settings)
        held = self._held.chats()
        own: dict[int, list[OutboxMessage]] = {}
        for row in rows:
            own.setdefault(row.chat_id, []).append(row)

        def due(row: OutboxMessage) -> bool:
            return row.not_before <= now and (row.urgent or not quiet)

        chats = sorted(
            chat
            for chat, chat_rows in own.items()
            if chat not in held
            and all(orm_state(row).pending for row in chat_rows)
            and any(due(row) for row in chat_rows)
        )
        claimed = {chat: [row for row in own[chat] if due(row)] for chat in chats}
        for row in (row for chat_rows in claimed.values() for row in chat_rows):
            row.lease_until = now + LEASE
        if not claimed:
            return Handoff(wake=True)
        await session.flush()  # every row lock the update takes is taken before the chat locks
        mine = [row.id for chat_rows in claimed.values() for row in chat_rows]
        if session.get_bind().dialect.name == "postgresql":
            params = {"prefix": CHAT_LOCK, "chats": chats, "mine": mine, "now": now}
            waiting = list((await session.exec(_LOCK_THEN_WAITING, params=params)).all())
        else:
            read = outbox.read_backlogs(session)
            waiting = [chat for chat in chats if chat in read and read[chat].in_the_way(now)]
            if unread := [chat for chat in chats if chat not in read]:
                params = {"chats": unread, "mine": mine, "now": now}
                waiting += (await session.exec(_WAITING, params=params)).all()
        for chat in waiting:
            for row in claimed.pop(chat):
                row.lease_until = None  # written at commit
        kept = [row for chat_rows in claimed.values() for row in chat_rows]
        return Handoff(kept, wake=len(kept) < len(rows))

    def committed(self, handoff: Handoff) -> None:
        """The transaction of :meth:`claim` committed: send its leased rows now, one worker per
        chat, and look for the rest."""
        if handoff.rows:
            if not self._running:  # stopped meanwhile: the leases run out, another run sends
                log.warning("%d claimed outbox rows wait for their lease", len(handoff.rows))
            else:
                for rows in _by_chat(sorted(handoff.rows, key=lambda r: (r.chat_id, r.id or 0))):
                    if rows[0].chat_id in self._held.chats():  # leased by us meanwhile
                        self._hand_back(rows)
                    else:
                        self._register(rows)
                        self._start_worker(rows)
        if handoff.wake:
            self.wake()

    def _hand_back(self, rows: list[OutboxMessage]) -> None:
        """Another worker of ours took the chat between claim and commit: free the rows for
        the next lease, which sends them after that worker's."""
        ids = [row.id for row in rows if row.id is not None]

        async def release() -> None:
            async with self.sessions() as session:
                await session.exec(
                    update(OutboxMessage)
                    .where(col(OutboxMessage.id).in_(ids))
                    .values(lease_until=None)
                )
                await session.commit()
            self.wake()

        task = asyncio.create_task(release())
        self._workers.add(task)
        task.add_done_callback(self._worker_done)

    async def drain_once(self) -> int:
        """Lease what is due, deliver it chat by chat, and return how many rows were handled."""
        async with self._keeping_leases():
            batch = await self._lease(BATCH)
            await asyncio.gather(*(self._deliver_chat(rows) for rows in _by_chat(batch)))
            return len(batch)

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

    async def _lease(self, limit: int) -> list[OutboxMessage]:
        """Take up to ``limit`` due rows, oldest first, at most ``PER_CHAT`` of a chat, none of
        a chat whose rows someone (this process included) still holds."""
        if limit <= 0:
            return []
        now = self.clock.now()
        held_chats = self._held.chats()
        async with self.sessions() as session:
            if session.get_bind().dialect.name == "postgresql":
                await session.exec(select(func.pg_advisory_xact_lock(LEASE_LOCK)))
            busy = select(OutboxMessage.chat_id).where(
                col(OutboxMessage.status) == OutboxStatus.PENDING,
                col(OutboxMessage.lease_until) >= now,
            )
            lease_until = col(OutboxMessage.lease_until)
            conditions = [
                *self._due(now),
                or_(lease_until.is_(None), lease_until < now),
                col(OutboxMessage.chat_id).not_in(busy),
            ]
            if held_chats:
                conditions.append(col(OutboxMessage.chat_id).not_in(held_chats))
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
            leased = await session.exec(  # one round trip: lease and read back
                update(OutboxMessage)
                .where(col(OutboxMessage.id).in_(chosen.scalar_subquery()))
                .values(lease_until=now + LEASE)
                .returning(OutboxMessage)
                .execution_options(synchronize_session=False)
            )
            rows: list[OutboxMessage] = sorted(
                leased.scalars().all(), key=lambda row: (row.chat_id, row.id or 0)
            )
            await session.commit()
        per_chat = Counter(row.chat_id for row in rows)
        if held_chats or any(count >= PER_CHAT for count in per_chat.values()):
            self._lease_again = True  # rows of those chats may still wait
        self._register(rows)
        return rows

    def _register(self, rows: Iterable[OutboxMessage]) -> None:
        """The rows are leased to this process: renew their leases until they are settled."""
        for row in rows:
            assert row.id is not None
            self._held.chat_of[row.id] = row.chat_id

    def _start_worker(self, rows: list[OutboxMessage]) -> None:
        worker = asyncio.create_task(self._deliver_chat(rows))
        self._workers.add(worker)
        worker.add_done_callback(self._worker_done)

    @contextlib.asynccontextmanager
    async def _keeping_leases(self) -> AsyncIterator[None]:
        """Renew the held leases while the block runs; on the way out (cancelled, say) stop the
        workers, record what they had finished, and hand back every held row never tried."""
        renewer = asyncio.create_task(self._renew_leases())
        try:
            yield
        finally:
            renewer.cancel()
            workers = list(self._workers)
            for worker in workers:
                worker.cancel()
            await asyncio.gather(renewer, *workers, return_exceptions=True)
            await self._flush_writes()
            await self._release_held()

    async def _renew_leases(self) -> None:
        while True:
            await asyncio.sleep(RENEW_EVERY)
            ids = list(self._held.chat_of)
            if not ids:
                continue
            try:
                async with self.sessions() as session:
                    await session.exec(
                        update(OutboxMessage)
                        .where(
                            col(OutboxMessage.id).in_(ids),
                            col(OutboxMessage.status) == OutboxStatus.PENDING,
                        )
                        .values(lease_until=self.clock.now() + LEASE)
                    )
                    await session.commit()
            except Exception:
                log.exception("renewing %d outbox leases failed", len(ids))

    async def _flush_writes(self) -> None:
        batch, self._writes = self._writes, []
        if not batch:
            return
        try:
            await self._write_batch(batch)
        except Exception:  # their leases run out and they are sent again
            log.exception("could not record %d outbox rows", len(batch))

    async def _release_held(self) -> None:
        """Give back rows never tried; a row tried but not recorded keeps its lease, because
        the request may have arrived."""
        ids = [i for i in self._held.chat_of if i not in self._held.tried]
        self._held = _Held()
        if not ids:
            return
        try:
            async with self.sessions() as session:
                await session.exec(
                    update(OutboxMessage)
                    .where(
                        col(OutboxMessage.id).in_(ids),
                        col(OutboxMessage.status) == OutboxStatus.PENDING,
                    )
                    .values(lease_until=None)
                )
                await session.commit()
        except Exception:  # the leases run out by themselves
            log.exception("could not release %d outbox leases", len(ids))

    def _worker_done(self, worker: asyncio.Task[None]) -> None:
        self._workers.discard(worker)
        if not worker.cancelled() and worker.exception() is not None:
            log.error("an outbox chat worker stopped", exc_info=worker.exception())
        if self._lease_again and len(self._held.chat_of) < LOW_WATER:
            self._lease_again = False
            self._wake.set()

    # -- delivering -----------------------------------------------------------------------------

    async def _deliver_chat(self, rows: list[OutboxMessage]) -> None:
        """One chat's rows, strictly in order (retries wait in place rather than reorder)."""
        for index, row in enumerate(rows):
            try:
                outcome = await self._deliver(row)
            except Exception as exc:  # a malformed row must not stop the chat or the round
                log.exception("outbox %s could not be delivered", row.id)
                outcome = Outcome(OutboxStatus.FAILED, row.attempts, error=repr(exc))
            if outcome.unreachable:
                await self._settle_unreachable(row, outcome, rows[index + 1 :])
                return
            await self._settle(row, outcome)

    async def _deliver(self, row: OutboxMessage) -> Outcome:
        attempts = row.attempts
        if row.expires_at is not None and row.expires_at <= self.clock.now():
            return Outcome(OutboxStatus.DROPPED, attempts, error="expired before delivery")
        call = await self._call_for(row)
        is_message = row.method.lower().startswith(MESSAGE_METHODS)
        while True:
            try:
                result = await self._send(row, call, is_message=is_message)
            except TelegramRetryAfter as exc:
                log.warning("429 for chat %s: all sends wait %ss", row.chat_id, exc.retry_after)
                self._pause(row.chat_id, exc.retry_after)
                continue
            except TelegramForbiddenError as exc:
                return Outcome(OutboxStatus.FAILED, attempts, error=exc.message, unreachable=True)
            except TelegramBadRequest as exc:
                if NOT_MODIFIED in exc.message:
                    return Outcome(OutboxStatus.SENT, attempts)
                log.error("outbox %s refused: %s", row.id, exc.message)
                return Outcome(OutboxStatus.FAILED, attempts, error=exc.message)
            except TRANSIENT as exc:
                attempts += 1
                error = f"{type(exc).__name__}: {exc}"
                if attempts >= self._max_attempts:
                    return Outcome(OutboxStatus.FAILED, attempts, error=error)
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

    async def _send(self, row: OutboxMessage, call: StoredCall, *, is_message: bool) -> Any:
        """One request, when a 429 pause, the chat's pace and the global limit allow it
        (Telegram's limits count messages, not menus or pins: those wait only for a 429)."""
        assert row.id is not None
        await self._pace(row.chat_id, is_message=is_message)
        async with self._slots:
            self._held.tried.add(row.id)
            if isinstance(self.bot.session, AiohttpSession) and not call.uploads:
                return await post_stored(self.bot, self.bot.session, call)
            return await self.bot(call.build())

    async def _pace(self, chat_id: int, *, is_message: bool) -> None:
        """Wait for any 429 pause and the chat's turn, then for a global token."""
        loop = asyncio.get_running_loop()
        while True:
            ready = self._chat_ready.get(chat_id, 0.0) if is_message else 0.0
            wait = max(ready, self._paused_until) - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            if not is_message:
                return
            await self._global.acquire()
            if self._paused_until <= loop.time():  # no 429 came while we queued
                break
        interval = self._per_chat * (GROUP_SLOWER if chat_id < 0 else 1.0)
        self._chat_ready[chat_id] = loop.time() + interval
        if len(self._chat_ready) > 10_000:
            now = loop.time()
            self._chat_ready = {c: t for c, t in self._chat_ready.items() if t > now}

    def _pause(self, chat_id: int, retry_after: float) -> None:
        until = asyncio.get_running_loop().time() + retry_after
        self._paused_until = max(self._paused_until, until)
        self._chat_ready[chat_id] = max(self._chat_ready.get(chat_id, 0.0), until)

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
        """Record how the row ended and let go of it."""
        await _forget_upload(row)
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
        await self._write(row, values)  # if it fails for good, the lease runs out
        self._let_go([row])

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
        Returns False when the database stayed out of reach (the lease will run out).

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
            async with self._write_lock:
                if mine.done:
                    return True
                batch, self._writes = self._writes, []
                try:
                    await self._write_batch(batch)
                except BaseException as exc:
                    self._writes[:0] = batch
                    if not isinstance(exc, Exception):
                        raise  # cancelled: what waits is flushed on the way out
                    log.exception("recording %d outbox rows failed", len(batch))
                else:
                    for write in batch:
                        write.done = True
                    return True
            await asyncio.sleep(0.1 * 2**attempt)
        return mine.done

    async def _write_batch(self, batch: Iterable[_Write]) -> None:
        """One transaction; one ``executemany`` for the rows with the same columns to set."""
        alike: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for write in batch:
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
                self._held.chat_of.pop(row.id, None)
                self._held.tried.discard(row.id)


def _by_chat(rows: list[OutboxMessage]) -> list[list[OutboxMessage]]:
    """Rows (ordered by chat, then id) split into one list per chat."""
    return [list(chat_rows) for _, chat_rows in groupby(rows, key=lambda m: m.chat_id)]


async def _forget_upload(row: OutboxMessage) -> None:
    """A temporary file made for this row is not needed once the row has ended."""
    upload = row.payload.get("_upload")
    if upload and upload.get("delete_after"):
        await asyncio.to_thread(Path(upload["path"]).unlink, missing_ok=True)


def _as_new_message(edit_payload: dict[str, Any]) -> dict[str, Any]:
    """The original message was never delivered: send the edited content as a new one."""
    return {k: v for k, v in edit_payload.items() if k not in {"message_id", "inline_message_id"}}
