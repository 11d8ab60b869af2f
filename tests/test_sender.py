"""The outbox sender against a scripted fake Bot API, on the real database; and who is told
when a person turns unreachable (``bot.services.unreachable``)."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from aiogram import Bot
from aiogram.client.session.base import BaseSession
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import EditMessageText, SendMessage, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import Chat, Message
from aiohttp import ClientConnectorError, ConnectionTimeoutError
from sqlalchemy import update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import FrozenClock
from bot.db import SessionFactory, create_session_factory
from bot.i18n import gettext_for
from bot.services import outbox, people, unreachable
from bot.services.demo import DEMO_PERSONAS, load_demo_data
from bot.settings import LimitSettings, Settings
from bot.telegram import sender as sender_module
from bot.telegram.sender import LEASE, NOT_SENT_UNREACHABLE, OutboxSender, may_have_arrived
from models import OutboxLane, OutboxMessage, OutboxStatus, Person
from tests.statements import Statements

TOKEN = "123456789:AAFakeTokenForTestsOnly_abcdefghijk"
SENT_AT = datetime(2026, 3, 12, 1, 0, tzinfo=UTC)

Fault = Callable[[TelegramMethod[Any]], BaseException]


def server_error(method: TelegramMethod[Any]) -> BaseException:
    return TelegramServerError(method, "Internal Server Error")


def proxy_page(method: TelegramMethod[Any]) -> BaseException:
    return ClientDecodeError("Failed to decode object", ValueError("not JSON"), "<html>502</html>")


def dropped(method: TelegramMethod[Any]) -> BaseException:
    return TelegramNetworkError(method, "ServerDisconnectedError")


def blocked(method: TelegramMethod[Any]) -> BaseException:
    return TelegramForbiddenError(method, "Forbidden: bot was blocked by the user")


def too_many(seconds: float) -> Fault:
    def fault(method: TelegramMethod[Any]) -> BaseException:
        message = f"Too Many Requests: retry after {seconds}"
        return TelegramRetryAfter(method, message, seconds)  # type: ignore[arg-type]

    return fault


@dataclass
class Call:
    at: float  # event-loop time the request started
    chat_id: int
    method: TelegramMethod[Any]
    answered: str  # "ok", or the fault's class name


class ScriptedSession(BaseSession):
    """Answers like Telegram, unless the chat's script says otherwise: a fault to raise,
    ``HANG`` (the request never comes back, as when the process dies with it on the wire) or
    ``SLOW`` (the message arrives at once, its answer when ``answer`` is set)."""

    HANG = "hang"
    SLOW = "slow"

    def __init__(self) -> None:
        super().__init__()
        self.script: dict[int, list[Fault | str]] = defaultdict(list)
        self.calls: list[Call] = []
        self.on_the_wire = asyncio.Event()
        self.answer = asyncio.Event()
        self._next_message_id = 100

    def delivered(self, chat_id: int | None = None) -> list[str]:
        """Texts that reached Telegram, in order."""
        return [
            str(getattr(c.method, "text", ""))
            for c in self.calls
            if c.answered == "ok" and (chat_id is None or c.chat_id == chat_id)
        ]

    async def close(self) -> None:
        return None

    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None
    ) -> TelegramType:
        chat_id = int(getattr(method, "chat_id", 0) or 0)
        call = Call(asyncio.get_running_loop().time(), chat_id, method, "ok")
        self.calls.append(call)
        script = self.script.get(chat_id)
        if script:
            step = script.pop(0)
            if step == self.HANG:
                call.answered = "hang"
                self.on_the_wire.set()
                await asyncio.Event().wait()
            if step == self.SLOW:
                self.on_the_wire.set()
                await self.answer.wait()
            else:
                assert callable(step)
                error = step(method)
                call.answered = type(error).__name__
                raise error
        if method.__returning__ is bool:
            return True  # type: ignore[return-value]
        self._next_message_id += 1
        return Message(  # type: ignore[return-value]
            message_id=getattr(method, "message_id", None) or self._next_message_id,
            date=SENT_AT,
            chat=Chat(id=chat_id, type="private"),
            text=getattr(method, "text", None),
        )

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        yield b""


class HookCalls:
    """An ``on_unreachable`` hook that records what it saw inside the sender's transaction."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, bool | None]] = []

    async def __call__(self, session: AsyncSession, chat_id: int, now: datetime) -> None:
        reachable = (
            await session.exec(select(Person.reachable).where(Person.telegram_id == chat_id))
        ).first()
        self.calls.append((chat_id, reachable))


@pytest.fixture
def sessions(engine: AsyncEngine) -> SessionFactory:
    return create_session_factory(engine)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        bot_token=TOKEN,
        database_url=database_url,
        limits=LimitSettings(per_chat_interval=0.0, retry_base_seconds=0.01, max_attempts=4),
    )


def sender_for(
    fake: ScriptedSession,
    sessions: SessionFactory,
    clock: FrozenClock,
    settings: Settings,
    hook: HookCalls | None = None,
) -> OutboxSender:
    return OutboxSender(Bot(TOKEN, session=fake), sessions, clock, settings, on_unreachable=hook)


async def enqueue(
    sessions: SessionFactory, clock: FrozenClock, messages: list[tuple[int, str]], **extra: Any
) -> list[int]:
    async with sessions() as session:
        rows = [
            outbox.send_text(session, chat_id=chat_id, text=text, now=clock.now(), **extra)
            for chat_id, text in messages
        ]
        await session.commit()
    return [row.id or 0 for row in rows]


async def rows_by_id(sessions: SessionFactory) -> dict[int, OutboxMessage]:
    async with sessions() as session:
        rows = (await session.exec(select(OutboxMessage))).all()
    return {row.id or 0: row for row in rows}


async def test_every_chat_gets_its_messages_once_and_in_order(
    sessions: SessionFactory, clock: FrozenClock, settings: Settings
) -> None:
    fake = ScriptedSession()
    fake.script[1002] = [server_error]  # the second chat's first message needs a retry
    messages = [(chat, f"{chat}-{n}") for n in range(4) for chat in (1001, 1002, 1003)]
    await enqueue(sessions, clock, messages)
    sender = sender_for(fake, sessions, clock, settings)

    assert await sender.drain_once() == 12
    for chat in (1001, 1002, 1003):
        assert fake.delivered(chat) == [f"{chat}-{n}" for n in range(4)]
    rows = await rows_by_id(sessions)
    assert {r.status for r in rows.values()} == {OutboxStatus.SENT}
    assert len({r.message_id for r in rows.values()}) == 12
    assert all(r.lease_until is None and r.sent_at == clock.now() for r in rows.values())
    assert await sender.due_count() == 0 and await sender.drain_once() == 0


async def test_outcomes_that_finish_together_are_recorded_in_one_transaction(
    engine: AsyncEngine, sessions: SessionFactory, clock: FrozenClock, settings: Settings
) -> None:
    await enqueue(sessions, clock, [(chat, f"to {chat}") for chat in (1101, 1102, 1103)])
    settings.limits.messages_per_second = 1e6  # the three go out together
    sender = sender_for(ScriptedSession(), sessions, clock, settings)

    with Statements(engine) as sql:
        assert await sender.drain_once() == 3
    # the lease, then the three outcomes: one executemany in one transaction
    assert sql.on("outbox")[-1] == "UPDATE outbox"
    assert sql.transactions == 2
    rows = await rows_by_id(sessions)
    assert {r.status for r in rows.values()} == {OutboxStatus.SENT}


async def test_a_sender_stopped_before_it_records_an_outcome_records_it_on_the_way_out(
    sessions: SessionFactory,
    clock: FrozenClock,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sender_module, "RECORD_PAUSE", 60.0)  # stopped in the pause, surely
    await enqueue(sessions, clock, [(1201, "hello")])
    fake = ScriptedSession()
    sender = sender_for(fake, sessions, clock, settings)
    task = asyncio.create_task(sender.run(poll_seconds=60))
    await until(lambda: bool(sender._writes))  # sent; its outcome waits to be recorded
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert fake.delivered(1201) == ["hello"]
    [row] = (await rows_by_id(sessions)).values()
    assert row.status == OutboxStatus.SENT and row.lease_until is None  # not sent again


async def test_a_429_pauses_every_send_for_retry_after_and_is_no_attempt(
    sessions: SessionFactory, clock: FrozenClock, settings: Settings
) -> None:
    fake = ScriptedSession()
    fake.script[2001] = [too_many(0.2)]
    await enqueue(sessions, clock, [(2001, "a"), (2002, "b"), (2003, "c")])
    sender = sender_for(fake, sessions, clock, settings)

    await sender.drain_once()
    refused, *after = fake.calls
    assert refused.chat_id == 2001 and refused.answered == "TelegramRetryAfter"
    assert sorted(c.chat_id for c in after) == [2001, 2002, 2003]
    assert all(c.at >= refused.at + 0.2 for c in after)  # nobody sent during the pause
    rows = await rows_by_id(sessions)
    assert [(r.status, r.attempts) for r in rows.values()] == [(OutboxStatus.SENT, 0)] * 3


async def test_a_429_on_a_menu_waits_too(
    sessions: SessionFactory, clock: FrozenClock, settings: Settings
) -> None:
    fake = ScriptedSession()
    fake.script[0] = [too_many(0.1)]
    async with sessions() as session:
        outbox.enqueue(
            session,
            chat_id=0,
            method="setMyCommands",
            payload={"commands": [{"command": "help", "description": "帮助"}]},
            now=clock.now(),
        )
        await session.commit()
    await sender_for(fake, sessions, clock, settings).drain_once()
    refused, accepted = fake.calls
    assert (refused.answered, accepted.answered) == ("TelegramRetryAfter", "ok")
    assert accepted.at >= refused.at + 0.1


async def test_5xx_a_proxy_page_and_a_dropped_connection_are_retried_with_backoff(
    sessions: SessionFactory, clock: FrozenClock, settings: Settings
) -> None:
    fake = ScriptedSession()
    fake.script[3001] = [server_error, proxy_page, dropped]
    [row_id] = await enqueue(sessions, clock, [(3001, "路灯坏了")])
    sender = sender_for(fake, sessions, clock, settings)

    await sender.drain_once()
    answers = [c.answered for c in fake.calls]
    assert answers == ["TelegramServerError", "ClientDecodeError", "TelegramNetworkError", "ok"]
    gaps = [b.at - a.at for a, b in zip(fake.calls, fake.calls[1:], strict=False)]
    assert [gap >= wait for gap, wait in zip(gaps, (0.01, 0.02, 0.04), strict=True)] == [True] * 3
    row = (await rows_by_id(sessions))[row_id]
    assert row.status == OutboxStatus.SENT and row.attempts == 3
    assert row.last_error is not None and "ServerDisconnected" in row.last_error


async def test_after_max_attempts_the_row_fails_and_the_chat_goes_on(
    sessions: SessionFactory, clock: FrozenClock, settings: Settings
) -> None:
    fake = ScriptedSession()
    fake.script[3101] = [server_error] * 4
    first, second = await enqueue(sessions, clock, [(3101, "one"), (3101, "two")])
    sender = sender_for(fake, sessions, clock, settings)

    await sender.drain_once()
    rows = await rows_by_id(sessions)
    assert (rows[first].status, rows[first].attempts) == (OutboxStatus.FAILED, 4)
    assert rows[first].last_error is not None and "Internal Server Error" in rows[first].last_error
    assert rows[second].status == OutboxStatus.SENT
    assert fake.delivered(3101) == ["two"]


async def test_403_marks_the_person_unreachable_and_calls_the_hook_once(
    sessions: SessionFactory, clock: FrozenClock, settings: Settings
) -> None:
    async with sessions() as session:
        person = await people.get_or_create_by_telegram(
            session, telegram_id=4001, name="王大爷", language_code="zh-hans", now=clock.now()
        )
        await session.commit()
    fake = ScriptedSession()
    fake.script[4001] = [blocked, blocked]
    hook = HookCalls()
    sender = sender_for(fake, sessions, clock, settings, hook)
    first, second, other = await enqueue(
        sessions, clock, [(4001, "one"), (4001, "two"), (4002, "to someone else")]
    )

    await sender.drain_once()
    rows = await rows_by_id(sessions)
    assert rows[first].status == rows[second].status == OutboxStatus.FAILED
    assert rows[first].last_error == "Forbidden: bot was blocked by the user"
    assert rows[second].last_error == NOT_SENT_UNREACHABLE  # never tried: the chat is gone
    assert rows[other].status == OutboxStatus.SENT
    assert [c.chat_id for c in fake.calls].count(4001) == 1
    assert hook.calls == [(4001, False)]  # inside the transaction that marked them

    await enqueue(sessions, clock, [(4001, "three")])  # still blocked: no second telling
    await sender.drain_once()
    assert hook.calls == [(4001, False)]

    async with sessions() as session:  # they write to the bot again, then block it again
        again = await people.get_or_create_by_telegram(
            session, telegram_id=4001, name=person.name, language_code=None, now=clock.now()
        )
        assert again.reachable
        await session.commit()
    fake.script[4001] = [blocked]
    await enqueue(sessions, clock, [(4001, "four")])
    await sender.drain_once()
    assert hook.calls == [(4001, False), (4001, False)]


async def test_a_row_held_by_a_dead_sender_is_sent_once_after_its_lease_ran_out(
    sessions: SessionFactory,
    clock: FrozenClock,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sender_module, "WIRE_GRACE", 0.05)  # the answer never comes
    dying_bot = ScriptedSession()
    dying_bot.script[5001] = [ScriptedSession.HANG]
    first, second, elsewhere = await enqueue(
        sessions, clock, [(5001, "first"), (5001, "second"), (5002, "elsewhere")]
    )
    dying = sender_for(dying_bot, sessions, clock, settings)
    task = asyncio.create_task(dying.run())
    await asyncio.wait_for(dying_bot.on_the_wire.wait(), 10)
    await until(lambda: dying_bot.delivered() == ["elsewhere"])  # its turn at the pace
    task.cancel()  # the process dies with "first" on the wire
    with pytest.raises(asyncio.CancelledError):
        await task
    rows = await rows_by_id(sessions)
    assert rows[first].lease_until is not None  # it may have arrived: wait for the lease
    assert rows[second].lease_until is None  # never sent: handed back at once
    assert dying_bot.delivered() == ["elsewhere"]

    survivor_bot = ScriptedSession()
    survivor = sender_for(survivor_bot, sessions, clock, settings)
    assert await survivor.drain_once() == 0  # the chat is held: "second" may not overtake
    clock.advance(LEASE + timedelta(seconds=1))
    assert await survivor.drain_once() == 2
    assert survivor_bot.delivered() == ["first", "second"]
    rows = await rows_by_id(sessions)
    assert {rows[i].status for i in (first, second, elsewhere)} == {OutboxStatus.SENT}
    assert await survivor.drain_once() == 0


async def test_a_lease_left_by_a_killed_process_runs_out(
    sessions: SessionFactory, clock: FrozenClock, settings: Settings
) -> None:
    [row_id] = await enqueue(sessions, clock, [(5101, "after the crash")])
    async with sessions() as session:  # leased, then the process was killed outright
        await session.exec(
            update(OutboxMessage)
            .where(col(OutboxMessage.id) == row_id)
            .values(lease_until=clock.now() + LEASE)
        )
        await session.commit()
    fake = ScriptedSession()
    sender = sender_for(fake, sessions, clock, settings)
    assert await sender.drain_once() == 0 and await sender.due_count() == 1
    clock.advance(LEASE)
    assert await sender.drain_once() == 0  # not before the lease is over
    clock.advance(timedelta(seconds=1))
    assert await sender.drain_once() == 1
    assert fake.delivered() == ["after the crash"]


async def test_two_senders_at_once_send_each_row_once_in_order(
    sessions: SessionFactory, clock: FrozenClock, settings: Settings
) -> None:
    chats = range(6001, 6009)
    await enqueue(sessions, clock, [(chat, f"{chat}-{n}") for n in range(6) for chat in chats])
    one, other = ScriptedSession(), ScriptedSession()
    senders = [sender_for(fake, sessions, clock, settings) for fake in (one, other)]

    handled = 0
    while await senders[0].due_count():
        rounds = await asyncio.gather(*(s.drain_once() for s in senders))
        handled += sum(rounds)
    assert handled == 48
    for chat in chats:
        texts = one.delivered(chat) + other.delivered(chat)
        assert sorted(texts) == [f"{chat}-{n}" for n in range(6)]
        assert texts in (one.delivered(chat), other.delivered(chat))  # one sender per chat
        assert texts == [f"{chat}-{n}" for n in range(6)]


async def test_an_edit_follows_its_message_and_a_lost_one_becomes_a_new_message(
    sessions: SessionFactory, clock: FrozenClock, settings: Settings
) -> None:
    async with sessions() as session:
        card = outbox.send_text(session, chat_id=7001, text="card", now=clock.now(), ref="tk:1")
        for ref in ("tk:1", "tk:gone"):
            outbox.enqueue(
                session,
                chat_id=7001,
                method="editMessageText",
                payload={"chat_id": 7001, "text": f"edited {ref}"},
                edit_ref=ref,
                now=clock.now(),
            )
        await session.commit()
    fake = ScriptedSession()
    await sender_for(fake, sessions, clock, settings).drain_once()
    sent, edit, fallback = (c.method for c in fake.calls)
    assert isinstance(sent, SendMessage)
    assert isinstance(edit, EditMessageText)
    assert edit.message_id == (await rows_by_id(sessions))[card.id or 0].message_id
    assert isinstance(fallback, SendMessage) and fallback.text == "edited tk:gone"


async def test_quiet_hours_hold_non_urgent_rows_and_expired_rows_are_dropped(
    sessions: SessionFactory, clock: FrozenClock, settings: Settings
) -> None:
    clock.set(datetime(2026, 3, 12, 14, 0, tzinfo=UTC))  # 22:00 in Shanghai
    [later] = await enqueue(sessions, clock, [(8001, "tomorrow is fine")])
    [now] = await enqueue(sessions, clock, [(8002, "fire!")], urgent=True)
    [stale] = await enqueue(
        sessions, clock, [(8003, "meeting at 21:30")], urgent=True, expires_at=clock.now()
    )
    fake = ScriptedSession()
    sender = sender_for(fake, sessions, clock, settings)
    assert await sender.drain_once() == 2
    rows = await rows_by_id(sessions)
    assert rows[later].status == OutboxStatus.PENDING
    assert rows[now].status == OutboxStatus.SENT
    assert rows[stale].status == OutboxStatus.DROPPED
    assert fake.delivered() == ["fire!"]


async def test_run_delivers_what_is_committed_while_it_runs(
    sessions: SessionFactory, clock: FrozenClock, settings: Settings
) -> None:
    fake = ScriptedSession()
    sender = sender_for(fake, sessions, clock, settings)
    task = asyncio.create_task(sender.run(poll_seconds=5))
    try:
        for n in range(3):
            await enqueue(sessions, clock, [(9001, f"reply {n}"), (9002, f"notice {n}")])
            sender.wake()
        for _ in range(500):
            if await sender.due_count() == 0:
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert fake.delivered(9001) == [f"reply {n}" for n in range(3)]
    assert fake.delivered(9002) == [f"notice {n}" for n in range(3)]


# -- lanes, pace and calls that are not messages ----------------------------------------------


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("it did not happen")


@asynccontextmanager
async def delivering(sender: OutboxSender) -> AsyncIterator[None]:
    """``sender.run()`` in the background, polling too rarely to matter: only a wake leases."""
    task = asyncio.create_task(sender.run(poll_seconds=60))
    try:
        yield
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def queue_bulk(sessions: SessionFactory, clock: FrozenClock, chats: range) -> None:
    async with sessions() as session:
        rows = [outbox.text_row(chat_id=c, text=f"push {c}", now=clock.now()) for c in chats]
        await outbox.insert_rows(session, rows)
        await session.commit()


async def test_a_reply_goes_before_the_bulk_push_that_was_queued_first(
    sessions: SessionFactory,
    clock: FrozenClock,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The 08:00 push is draining when a resident answers: the reply is not sent after the
    push, only after the few bulk rows already on their way."""
    monkeypatch.setattr(sender_module, "BULK_SECONDS", 0.1)  # 20 bulk rows held at 200/s
    settings.limits.messages_per_second = 200
    await queue_bulk(sessions, clock, range(20_001, 20_401))
    fake = ScriptedSession()
    sender = sender_for(fake, sessions, clock, settings)
    async with delivering(sender):
        sender.wake()
        await until(lambda: len(fake.calls) >= 10)
        await enqueue(sessions, clock, [(9001, "reply")], lane=OutboxLane.REPLY, urgent=True)
        sender.wake()
        await until(lambda: fake.delivered(9001) == ["reply"])
        ahead = [c.chat_id for c in fake.calls].index(9001)
    assert ahead < 10 + 2 * sender._bulk_hold  # not behind the 400 of the push


async def test_a_chat_with_a_reply_sends_its_earlier_bulk_row_first(
    sessions: SessionFactory, clock: FrozenClock, settings: Settings
) -> None:
    await queue_bulk(sessions, clock, range(9101, 9102))
    await enqueue(sessions, clock, [(9101, "reply")], lane=OutboxLane.REPLY)
    fake = ScriptedSession()
    await sender_for(fake, sessions, clock, settings).drain_once()
    assert fake.delivered(9101) == ["push 9101", "reply"]


async def test_the_pacer_lets_the_best_lane_through_next_and_keeps_an_even_pace() -> None:
    pacer = sender_module.Pacer(rate=500.0)
    order: list[str] = []
    released: list[float] = []

    async def send(name: str, lane: int) -> None:
        await pacer.acquire(lane)
        released.append(asyncio.get_running_loop().time())
        order.append(name)

    bulk = [asyncio.create_task(send(f"bulk {n}", OutboxLane.BULK)) for n in range(10)]
    await asyncio.sleep(0)  # the bulk sends are waiting
    reply = asyncio.create_task(send("reply", OutboxLane.REPLY))
    await asyncio.gather(*bulk, reply)
    assert order.index("reply") <= 1  # only the send that found the pacer idle went before
    # released one interval apart at the least (a task may resume late, never early)
    assert released[-1] - released[0] >= (len(released) - 1) * pacer.interval * 0.99


def test_a_late_send_costs_the_pacer_no_slot_and_no_server_window_holds_more_than_30() -> None:
    """Sends go a little after their slots, some up to 30 ms (a busy loop), and reach the
    server up to 25 ms after they went: the rate stays at the pace, and no second of the
    server's holds more than 30 of them, however the delays fall."""
    rng = random.Random(17)
    pacer = sender_module.Pacer(rate=30.0, window=1.0, spread=1.01, jitter=0.03)
    on_wire: list[tuple[float, sender_module.Turn]] = []  # (when the answer comes, the send)
    went: list[float] = []
    counted: list[float] = []  # when the server counted each send
    now = 100.0
    for _ in range(3_000):
        late = rng.uniform(0.0, 0.030) if rng.random() < 0.1 else rng.uniform(0.0, 0.002)
        now += late
        while True:  # answers that came meanwhile, then the next slot
            for answered, turn in [each for each in on_wire if each[0] <= now]:
                turn.ended = answered
                on_wire.remove((answered, turn))
            slot = pacer.next_slot(now)
            if slot <= now:
                break
            now = min([slot] + [answered for answered, _ in on_wire]) + late
        delay = rng.uniform(0.0, 0.025)
        turn = pacer.take(now)
        went.append(now)
        counted.append(now + delay)
        on_wire.append((now + delay + rng.uniform(0.0, 0.050), turn))  # late answers
    assert (len(went) - 1) / (went[-1] - went[0]) >= 0.95 * 30
    counted.sort()
    assert all(counted[n + 30] - counted[n] >= 1.0 for n in range(len(counted) - 30))


def test_an_idle_pacer_lets_one_send_go_at_once_and_the_next_an_interval_later() -> None:
    pacer = sender_module.Pacer(rate=30.0, window=1.0, spread=1.01)
    pacer.take(10.0).ended = 10.01
    assert pacer.next_slot(10.0) == pytest.approx(10.0 + 1.01 / 30)
    assert pacer.next_slot(60.0) == 60.0  # idle for a while: no burst of what was missed
    pacer.take(60.0)
    assert pacer.next_slot(60.0) == pytest.approx(60.0 + 1.01 / 30)


async def test_the_pacer_waits_for_the_answer_to_the_send_a_window_before() -> None:
    pacer = sender_module.Pacer(rate=5.0, window=0.1, spread=0.1)  # 1 send in any 0.1 s
    first = await pacer.acquire(OutboxLane.BULK)
    second = asyncio.create_task(pacer.acquire(OutboxLane.BULK))
    await asyncio.sleep(0.2)
    assert not second.done()  # the first send's answer has not come
    pacer.ended(first)
    answered = asyncio.get_running_loop().time()
    await asyncio.wait_for(second, 1)
    assert asyncio.get_running_loop().time() - answered >= 0.1 * 0.99


async def test_a_cancelled_waiter_gives_its_turn_to_the_next() -> None:
    pacer = sender_module.Pacer(rate=500.0)
    await pacer.acquire(OutboxLane.BULK)  # the pacer is busy now
    gone = asyncio.create_task(pacer.acquire(OutboxLane.REPLY))
    stays = asyncio.create_task(pacer.acquire(OutboxLane.BULK))
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.wait_for(stays, 1)


async def test_a_menu_that_keeps_failing_never_holds_up_the_chats_messages(
    sessions: SessionFactory,
    clock: FrozenClock,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Seen against another Bot API server: ``setMyCommands`` answered 500, retried, and the
    chat's /help reply waited behind it for two minutes."""
    fake = ScriptedSession()
    fake.script[0] = [server_error] * 4  # the fake reads a chat id off the method: none
    async with sessions() as session:
        menu = outbox.enqueue(
            session,
            chat_id=9201,
            method="setMyCommands",
            payload={
                "commands": [{"command": "help", "description": "帮助"}],
                "scope": {"type": "chat", "chat_id": 9201},
            },
            now=clock.now(),
        )
        await session.commit()
    await enqueue(sessions, clock, [(9201, "the /help reply")], lane=OutboxLane.REPLY)
    sender = sender_for(fake, sessions, clock, settings)
    await sender.drain_once()
    methods = [type(c.method).__name__ for c in fake.calls]
    assert methods.index("SendMessage") < len(methods) - 1  # not after the menu gave up
    assert fake.delivered(9201) == ["the /help reply"]
    assert (await rows_by_id(sessions))[menu.id or 0].status == OutboxStatus.FAILED
    assert sender.gave_up == {"setMyCommands": 1}
    [warning] = [r for r in caplog.records if r.levelname == "WARNING" and "gave up" in r.message]
    assert "setMyCommands" in warning.message and "9201" in warning.message


async def test_a_call_that_is_not_a_message_is_always_a_control_row(
    sessions: SessionFactory, clock: FrozenClock
) -> None:
    async with sessions() as session:
        row = outbox.enqueue(
            session,
            chat_id=1,
            method="pinChatMessage",
            payload={"chat_id": 1, "message_id": 5},
            now=clock.now(),
            lane=OutboxLane.REPLY,
        )
    assert row.lane == OutboxLane.CONTROL


# -- who is told (bot.services.unreachable) ----------------------------------------------------


async def demo_person(session: AsyncSession, persona: str) -> Person:
    return (
        await session.exec(select(Person).where(Person.telegram_id == DEMO_PERSONAS[persona]))
    ).one()


@pytest.fixture
async def demo(session: AsyncSession, clock: FrozenClock) -> AsyncSession:
    await load_demo_data(session, clock.now())
    await session.flush()
    return session


async def told_texts(session: AsyncSession, chat_id: int) -> list[str]:
    rows = await session.exec(
        select(OutboxMessage)
        .where(OutboxMessage.chat_id == chat_id)
        .order_by(col(OutboxMessage.id))
    )
    return [str(row.payload["text"]) for row in rows]


async def test_a_resident_who_blocks_the_bot_is_reported_to_their_grid_head(
    demo: AsyncSession, clock: FrozenClock
) -> None:
    resident = await demo_person(demo, "resident")
    head = await demo_person(demo, "head")
    head.locale = "en"
    demo.add(head)
    told = await unreachable.tell_head(demo, DEMO_PERSONAS["resident"], clock.now())

    assert [p.id for p in told] == [head.id]
    await demo.refresh(resident)
    assert resident.reachable is False
    [text] = await told_texts(demo, DEMO_PERSONAS["head"])
    assert text == (
        f"{resident.name} (resident) can no longer be reached through the bot (blocked it or "
        f"never started it); please contact them another way.\nPhone: {resident.phone}"
    )


async def test_a_head_who_is_gone_is_reported_one_tier_up_and_skipped_for_others(
    demo: AsyncSession, clock: FrozenClock
) -> None:
    head = await demo_person(demo, "head")
    community_head = await demo_person(demo, "community_head")
    told = await unreachable.tell_head(demo, DEMO_PERSONAS["head"], clock.now())
    assert [p.id for p in told] == [community_head.id]  # not themselves
    [text] = await told_texts(demo, DEMO_PERSONAS["community_head"])
    assert head.name in text and gettext_for("zh_Hans", "grid head") in text

    # the grid's own head cannot be reached either: the worker's absence goes further up
    told = await unreachable.tell_head(demo, DEMO_PERSONAS["worker"], clock.now())
    assert [p.id for p in told] == [community_head.id]


async def test_nobody_is_told_about_a_chat_that_is_no_persons_or_has_no_head_above(
    demo: AsyncSession, clock: FrozenClock
) -> None:
    assert await unreachable.tell_head(demo, -1001000000001, clock.now()) == []
    assert await unreachable.tell_head(demo, DEMO_PERSONAS["center"], clock.now()) == []


async def test_senders_renewing_and_recording_at_once_never_deadlock(
    database_url: str,
    sessions: SessionFactory,
    clock: FrozenClock,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Seen on PostgreSQL under load: ``deadlock detected`` renewing outbox leases while
    statuses were recorded. Renewals, releases and status writes now lock rows in id order
    and skip rows another transaction is writing."""
    if not database_url.startswith("postgresql"):
        pytest.skip("row locks and deadlocks are PostgreSQL's")
    monkeypatch.setattr(sender_module, "RENEW_EVERY", 0.005)  # renew all the time
    settings.limits.messages_per_second = 1e6
    chats = range(31_001, 31_031)
    await enqueue(sessions, clock, [(chat, f"{chat}-{n}") for n in range(10) for chat in chats])
    fakes = [ScriptedSession() for _ in range(3)]
    senders = [sender_for(fake, sessions, clock, settings) for fake in fakes]
    tasks = [asyncio.create_task(s.run(poll_seconds=0.01)) for s in senders]
    try:
        for _ in range(3000):
            if await senders[0].due_count() == 0:
                break
            await asyncio.sleep(0.01)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for chat in chats:
        texts = [text for fake in fakes for text in fake.delivered(chat)]
        assert sorted(texts) == sorted(f"{chat}-{n}" for n in range(10))  # each once
    problems = [r for r in caplog.records if r.levelname == "ERROR" and r.name.startswith("bot.")]
    assert [r.getMessage() for r in problems] == []  # no lease, renewal or write failed
    assert not any("deadlock" in (r.exc_text or r.getMessage()) for r in caplog.records)


# -- nothing sent twice that need not be -------------------------------------------------------


def connection_refused(method: TelegramMethod[Any]) -> BaseException:
    """aiogram's error when the connection could not be made: the request never left."""
    key = SimpleNamespace(host="api.telegram.org", port=443, ssl=True)
    error = TelegramNetworkError(method, "ClientConnectorError: Connection refused")
    error.__cause__ = ClientConnectorError(key, ConnectionRefusedError(111, "refused"))  # type: ignore[arg-type]
    return error


def read_timeout(method: TelegramMethod[Any]) -> BaseException:
    error = TelegramNetworkError(method, "Request timeout error")
    error.__cause__ = TimeoutError()
    return error


def test_an_error_means_telegram_did_nothing_only_when_it_answered_or_was_never_reached() -> None:
    method = SendMessage(chat_id=1, text="x")
    did_nothing = [server_error, proxy_page, too_many(3.0), blocked, connection_refused]
    for fault in did_nothing:
        assert not may_have_arrived(fault(method)), fault
    assert not may_have_arrived(TelegramEntityTooLarge(method, "Request Entity Too Large"))
    connect_timeout = TelegramNetworkError(method, "Request timeout error")
    connect_timeout.__cause__ = ConnectionTimeoutError()
    assert not may_have_arrived(connect_timeout)
    for fault in (dropped, read_timeout):  # the request went out; no answer came
        assert may_have_arrived(fault(method)), fault
    assert may_have_arrived(asyncio.CancelledError())


async def test_a_sent_row_whose_outcome_could_not_be_recorded_is_never_sent_again(
    sessions: SessionFactory,
    clock: FrozenClock,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The database refuses the outcome for longer than the sender retries it, and the lease
    runs out meanwhile: the outcome is written later, and the message is not sent again."""
    monkeypatch.setattr(sender_module, "WRITE_ATTEMPTS", 2)
    [row_id] = await enqueue(sessions, clock, [(7001, "just once")])
    fake = ScriptedSession()
    sender = sender_for(fake, sessions, clock, settings)
    write_batch = sender._write_batch
    refused: list[int] = []

    async def away(batch: Any) -> None:
        if len(refused) < 2:  # as many times as the sender tries
            refused.append(len(refused))
            raise OperationalError("UPDATE outbox", {}, Exception("database is locked"))
        await write_batch(batch)

    monkeypatch.setattr(sender, "_write_batch", away)
    task = asyncio.create_task(sender.run(poll_seconds=0.01))
    try:
        await until(lambda: len(refused) == 2)
        clock.advance(LEASE + timedelta(seconds=1))  # the lease it took has run out
        for _ in range(2000):
            row = (await rows_by_id(sessions))[row_id]
            if row.status == OutboxStatus.SENT and not sender._held.stream_of:
                break
            await asyncio.sleep(0.005)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert fake.delivered(7001) == ["just once"]
    row = (await rows_by_id(sessions))[row_id]
    assert row.status == OutboxStatus.SENT and row.message_id is not None


async def test_a_sender_stopped_with_a_request_on_the_wire_records_its_answer(
    sessions: SessionFactory, clock: FrozenClock, settings: Settings
) -> None:
    """A restart while a message is on the wire: the answer comes while the sender stops, so
    the message is recorded as sent — not left as "may have arrived" and sent again."""
    first, second = await enqueue(sessions, clock, [(7101, "on the wire"), (7101, "next")])
    fake = ScriptedSession()
    fake.script[7101] = [ScriptedSession.SLOW]
    sender = sender_for(fake, sessions, clock, settings)
    task = asyncio.create_task(sender.run(poll_seconds=60))
    await asyncio.wait_for(fake.on_the_wire.wait(), 10)
    workers = list(sender._workers)
    task.cancel()
    await until(lambda: all(w.cancelling() or w.done() for w in workers))  # it is stopping…
    fake.answer.set()  # …when Telegram's answer comes
    with pytest.raises(asyncio.CancelledError):
        await task
    rows = await rows_by_id(sessions)
    assert rows[first].status == OutboxStatus.SENT and rows[first].message_id is not None
    assert rows[first].lease_until is None
    assert rows[second].status == OutboxStatus.PENDING and rows[second].lease_until is None

    clock.advance(LEASE + timedelta(seconds=1))
    survivor_bot = ScriptedSession()
    survivor = sender_for(survivor_bot, sessions, clock, settings)
    assert await survivor.drain_once() == 1
    assert fake.delivered(7101) + survivor_bot.delivered(7101) == ["on the wire", "next"]


async def test_a_stopped_sender_hands_back_what_telegram_refused_and_keeps_what_may_have_arrived(
    sessions: SessionFactory, clock: FrozenClock, settings: Settings
) -> None:
    settings.limits.retry_base_seconds = 60.0  # both wait out their backoff when stopped
    refused, maybe = await enqueue(sessions, clock, [(7201, "refused"), (7202, "maybe")])
    fake = ScriptedSession()
    fake.script[7201] = [server_error]
    fake.script[7202] = [dropped]
    sender = sender_for(fake, sessions, clock, settings)
    task = asyncio.create_task(sender.run(poll_seconds=60))
    for _ in range(2000):
        rows = await rows_by_id(sessions)
        if rows[refused].attempts == 1 and rows[maybe].attempts == 1:
            break
        await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    rows = await rows_by_id(sessions)
    assert rows[refused].lease_until is None  # a 5xx: nothing happened, the next one sends it
    assert rows[maybe].lease_until is not None  # no answer: wait for the lease
    assert "may have arrived" in (rows[maybe].last_error or "")
    assert "may have arrived" not in (rows[refused].last_error or "")


async def test_a_deletion_whose_answer_was_lost_is_done_when_the_message_is_gone(
    sessions: SessionFactory, clock: FrozenClock, settings: Settings
) -> None:
    def gone(method: TelegramMethod[Any]) -> BaseException:
        return TelegramBadRequest(method, "Bad Request: message to delete not found")

    async with sessions() as session:
        rows = [
            outbox.enqueue(
                session,
                chat_id=chat_id,
                method="deleteMessage",
                payload={"chat_id": chat_id, "message_id": 41},
                now=clock.now(),
            )
            for chat_id in (7301, 7302)
        ]
        await session.commit()
    after_lost, never_there = (row.id or 0 for row in rows)
    fake = ScriptedSession()
    fake.script[7301] = [dropped, gone]  # the first deletion worked; its answer was lost
    fake.script[7302] = [gone]  # there was nothing to delete
    sender = sender_for(fake, sessions, clock, settings)
    assert await sender.drain_once() == 2
    rows_now = await rows_by_id(sessions)
    assert rows_now[after_lost].status == OutboxStatus.SENT
    assert rows_now[never_there].status == OutboxStatus.FAILED


async def test_a_transaction_runs_to_its_end_when_its_caller_is_cancelled() -> None:
    """A transaction cut off midway would keep SQLite's write lock: the stop waits for it."""
    finished: list[bool] = []
    gate = asyncio.Event()

    @sender_module.whole
    async def transaction() -> None:
        await gate.wait()
        finished.append(True)

    task = asyncio.create_task(transaction())
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.sleep(0)
    assert not task.done()  # still in its transaction
    gate.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert finished == [True]


@pytest.mark.parametrize("turns", [0, 1, 2, 3])
async def test_a_sender_stops_when_a_wake_and_the_stop_come_together(
    sessions: SessionFactory, clock: FrozenClock, settings: Settings, turns: int
) -> None:
    """Python 3.11's ``asyncio.wait_for`` returns instead of raising when it is cancelled
    just as what it waits for comes: a sender woken as it was stopped never stopped (the
    suite once hung 300 s on it)."""
    sender = sender_for(ScriptedSession(), sessions, clock, settings)
    task = asyncio.create_task(sender.run(poll_seconds=60))
    await until(lambda: bool(getattr(sender._wake, "_waiters", None)))  # idle, waiting
    sender.wake()
    for _ in range(turns):
        await asyncio.sleep(0)
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=5)
    assert done, "the sender went on running after it was stopped"
