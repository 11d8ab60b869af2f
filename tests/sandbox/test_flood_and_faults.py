"""Flood limits (429 with a correct retry_after) and faults injected on demand."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiogram import Bot
from aiogram.exceptions import (
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)

from bot.sandbox.app import RunningSandbox
from bot.sandbox.clock import ManualClock
from bot.sandbox.faults import FaultInjector, FaultKind, FaultRecord, Faults, duplicates
from bot.sandbox.ratelimit import RateLimiter, RateLimits
from bot.sandbox.server import SandboxServer
from bot.sandbox.state import SandboxUser
from tests.sandbox.conftest import BOT_ID
from tests.sandbox.helpers import raw_call


async def test_a_flood_to_one_chat_gets_429_with_the_refill_time(
    sandbox: RunningSandbox, server: SandboxServer, sandbox_clock: ManualClock, alice: SandboxUser
) -> None:
    server.set_rate_limits(RateLimits())
    async with aiohttp.ClientSession() as session:
        answers = [
            await raw_call(
                sandbox,
                "sendMessage",
                json={"chat_id": alice.id, "text": f"#{i}"},
                session=session,
            )
            for i in range(200)
        ]
    ok = [body for status, body in answers if status == 200]
    limited = [body for status, body in answers if status == 429]
    assert len(ok) == 3  # a burst of three, then one a second
    assert len(limited) == 197
    assert limited[0] == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 1",
        "parameters": {"retry_after": 1},
    }
    assert server.stats.delivered_to(alice.id) == 3

    sandbox_clock.advance(1)
    status, _ = await raw_call(sandbox, "sendMessage", json={"chat_id": alice.id, "text": "next"})
    assert status == 200
    status, body = await raw_call(sandbox, "sendMessage", json={"chat_id": alice.id, "text": "x"})
    assert (status, body["parameters"]["retry_after"]) == (429, 1)


async def test_aiogram_sees_retry_after(
    bot: Bot, server: SandboxServer, alice: SandboxUser
) -> None:
    server.set_rate_limits(RateLimits(chat_burst=1, chat_per_second=0.25))
    await bot.send_message(alice.id, "一")
    with pytest.raises(TelegramRetryAfter) as error:
        await bot.send_message(alice.id, "二")
    assert error.value.retry_after == 4


async def test_thirty_messages_a_second_overall(
    sandbox: RunningSandbox, server: SandboxServer, sandbox_clock: ManualClock, bot: Bot
) -> None:
    people = [server.create_user(f"居民{i}") for i in range(35)]
    for person in people:
        server.start(BOT_ID, person.id)
    server.set_rate_limits(RateLimits())
    statuses = [
        (await raw_call(sandbox, "sendMessage", json={"chat_id": p.id, "text": "通知"}))[0]
        for p in people
    ]
    assert statuses.count(200) == 30 and statuses.count(429) == 5
    sandbox_clock.advance(0.2)  # six tokens back at 30 a second
    status, _ = await raw_call(
        sandbox, "sendMessage", json={"chat_id": people[-1].id, "text": "x"}
    )
    assert status == 200


async def test_twenty_a_minute_in_a_group(
    sandbox: RunningSandbox, server: SandboxServer, sandbox_clock: ManualClock, alice: SandboxUser
) -> None:
    group = server.create_group(BOT_ID, "三号网格工作群", [alice.id])
    server.set_rate_limits(RateLimits(chat_per_second=100, chat_burst=100))
    statuses = [
        (await raw_call(sandbox, "sendMessage", json={"chat_id": group["id"], "text": "x"}))
        for _ in range(21)
    ]
    assert [status for status, _ in statuses].count(200) == 20
    assert statuses[-1][1]["parameters"]["retry_after"] == 3  # one message per three seconds
    sandbox_clock.advance(3)
    status, _ = await raw_call(sandbox, "sendMessage", json={"chat_id": group["id"], "text": "y"})
    assert status == 200


def test_limits_can_be_scaled_or_switched_off() -> None:
    clock = ManualClock()
    limiter = RateLimiter(RateLimits().scaled(10), clock.monotonic)
    assert [limiter.acquire(1, 2, is_group=False) for _ in range(4)] == [0, 0, 0, 1]
    clock.advance(0.1)
    assert limiter.acquire(1, 2, is_group=False) == 0
    limiter.configure(RateLimits.off())
    assert all(limiter.acquire(1, 2, is_group=True) == 0 for _ in range(1000))


async def test_server_errors_on_demand(
    bot: Bot, sandbox: RunningSandbox, server: SandboxServer, alice: SandboxUser
) -> None:
    server.set_faults(
        Faults(error_rate=1.0, error_codes=(500,), methods=frozenset({"sendMessage"}))
    )
    with pytest.raises(TelegramServerError) as error:
        await bot.send_message(alice.id, "x")
    assert error.value.message == "Internal Server Error"
    assert (await bot.get_me()).id == BOT_ID  # other methods are unaffected

    server.set_faults(Faults(error_rate=1.0, error_codes=(502,)))
    status, body = await raw_call(sandbox, "sendMessage", json={"chat_id": alice.id, "text": "x"})
    assert status == 502 and "502 Bad Gateway" in body  # nginx's HTML page, as Telegram's
    assert server.stats.delivered_to(alice.id) == 0
    assert server.stats.faults == {"error_500": 1, "error_502": 1}


async def test_dropped_connections_and_lost_responses(
    bot: Bot, server: SandboxServer, alice: SandboxUser
) -> None:
    server.set_faults(Faults(drop_rate=1.0))
    with pytest.raises(TelegramNetworkError):
        await bot.send_message(alice.id, "没送到")
    assert server.stats.delivered_to(alice.id) == 0

    server.set_faults(Faults(lost_response_rate=1.0))
    with pytest.raises(TelegramNetworkError):
        await bot.send_message(alice.id, "送到了，但回应丢了")
    assert server.stats.delivered_to(alice.id) == 1
    server.clear_faults()
    texts = [m.get("text") for m in server.transcript(BOT_ID, alice.id)["messages"]]
    assert texts[-1] == "送到了，但回应丢了"


async def test_latency(bot: Bot, server: SandboxServer) -> None:
    server.set_faults(Faults(latency=0.2))
    loop = asyncio.get_running_loop()
    started = loop.time()
    await bot.get_me()
    assert loop.time() - started >= 0.2


async def test_a_429_storm(
    bot: Bot, server: SandboxServer, sandbox_clock: ManualClock, alice: SandboxUser
) -> None:
    server.start_429_storm(duration=30, retry_after=7)
    with pytest.raises(TelegramRetryAfter) as error:
        await bot.send_message(alice.id, "风暴中")
    assert error.value.retry_after == 7
    assert (await bot.get_me()).id == BOT_ID  # only sends are refused
    sandbox_clock.advance(30)
    assert (await bot.send_message(alice.id, "风暴后")).text == "风暴后"


def test_faults_are_deterministic_for_a_seed() -> None:
    clock = ManualClock()
    faults = Faults(error_rate=0.3, drop_rate=0.2, lost_response_rate=0.1)

    def sequence(seed: int) -> list[FaultKind]:
        injector = FaultInjector(clock.monotonic, seed=seed)
        injector.configure(faults)
        return [injector.decide("sendMessage").kind for _ in range(50)]

    assert sequence(7) == sequence(7)
    assert sequence(7) != sequence(8)
    assert set(sequence(7)) == set(FaultKind)
    with pytest.raises(ValueError, match="sum to at most 1"):
        Faults(error_rate=0.8, drop_rate=0.5)


async def test_requests_and_deliveries_are_counted(
    bot: Bot, server: SandboxServer, alice: SandboxUser
) -> None:
    server.stats.reset()
    for i in range(5):
        await bot.send_message(alice.id, f"第{i}条")
    await bot.get_me()
    assert server.stats.requests["sendMessage"] == 5
    assert server.stats.requests["getMe"] == 1
    assert server.stats.delivered_to(alice.id) == 5
    assert server.stats.statuses[200] == 6


async def test_the_fault_log_says_whether_the_sandbox_acted_and_answered(
    bot: Bot, server: SandboxServer, alice: SandboxUser
) -> None:
    sends = frozenset({"sendMessage"})
    outcomes = [
        (Faults(error_rate=1.0, error_codes=(500,), methods=sends), TelegramServerError),
        (Faults(drop_rate=1.0, methods=sends), TelegramNetworkError),
        (Faults(lost_response_rate=1.0, methods=sends), TelegramNetworkError),
    ]
    for faults, error in outcomes:
        server.set_faults(faults)
        with pytest.raises(error):
            await bot.send_message(alice.id, "一条")
    server.set_faults(Faults(methods=sends))  # no faults, but their scope is still logged
    server.start_429_storm(duration=30, retry_after=3)
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(alice.id, "一条")
    server.faults.storm = None
    sent = await bot.send_message(alice.id, "一条")
    await bot.get_me()  # outside the faults' methods: not logged

    log = list(server.faults.log)
    assert [(r.outcome, r.acted, r.answered) for r in log] == [
        ("error_500", False, True),
        ("drop", False, False),
        ("lost_response", True, False),
        ("429", False, True),
        ("ok", True, True),
    ]
    assert {(r.method, r.chat_id, r.text) for r in log} == {("sendMessage", alice.id, "一条")}
    assert log[-1].message_ids == (sent.message_id,)
    assert all(r.seq < r.done for r in log) and [r.seq for r in log] == sorted(r.seq for r in log)

    # the lost answer's message and the last one are the same message, sent twice
    [dup] = duplicates(log)
    assert (dup.again, dup.earlier, dup.before) == (log[-1], (log[2],), log[3])
    assert not dup.avoidable and dup.cause == "lost_response" and dup.after == "429"
    assert server.stats.delivered_to(alice.id) == 2


async def test_a_request_the_client_stopped_waiting_for_is_logged_as_abandoned(
    bot: Bot, server: SandboxServer, alice: SandboxUser
) -> None:
    server.set_faults(Faults(latency=1.2, methods=frozenset({"sendMessage"})))
    with pytest.raises(TelegramNetworkError, match="timeout"):
        await bot.send_message(alice.id, "慢", request_timeout=1)
    for _ in range(100):  # the sandbox carries it out after the client has left
        if server.faults.log:
            break
        await asyncio.sleep(0.05)
    server.clear_faults()
    [record] = server.faults.log
    assert (record.outcome, record.acted, record.answered) == ("abandoned", True, False)


def test_a_message_sent_again_after_an_ok_is_an_avoidable_duplicate() -> None:
    def record(seq: int, outcome: str, *, acted: bool, answered: bool) -> FaultRecord:
        return FaultRecord(seq, seq + 1, "sendMessage", 5, "x", outcome, acted, answered)

    answered = record(1, "ok", acted=True, answered=True)
    again = record(3, "ok", acted=True, answered=True)
    other = FaultRecord(5, 6, "sendMessage", 5, "y", "ok", True, True)  # another text
    [dup] = duplicates([again, other, answered])
    assert dup.avoidable and dup.cause == "answered" and dup.before == answered
    assert duplicates([answered, again], methods=["editMessageText"]) == []
