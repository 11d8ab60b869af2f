"""The two models of the overall flood limit: a token bucket and a strict sliding window.

Time is a :class:`ManualClock`; nothing sleeps.
"""

from __future__ import annotations

import aiohttp
import pytest
from aiogram import Bot
from hypothesis import given
from hypothesis import strategies as st

from bot.__main__ import build_parser
from bot.sandbox.app import RunningSandbox
from bot.sandbox.client import SandboxClient, SandboxClientError
from bot.sandbox.clock import ManualClock
from bot.sandbox.ratelimit import RateLimiter, RateLimits, SlidingWindow
from bot.sandbox.server import SandboxServer
from tests.sandbox.conftest import BOT_ID
from tests.sandbox.helpers import raw_call

BOT = 1


def sends(limiter: RateLimiter, chats: range) -> list[int]:
    """One message to each chat in turn: the ``retry_after`` of each (0 = sent)."""
    return [limiter.acquire(BOT, chat, is_group=False) for chat in chats]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def test_both_models_let_thirty_through_at_once_and_refuse_the_next(clock: ManualClock) -> None:
    for limits in (RateLimits(), RateLimits.sliding()):
        limiter = RateLimiter(limits, clock.monotonic)
        assert sends(limiter, range(30)) == [0] * 30
        assert limiter.acquire(BOT, 99, is_group=False) == 1


def test_the_bucket_lets_a_burst_through_that_the_window_refuses(clock: ManualClock) -> None:
    bucket = RateLimiter(RateLimits(), clock.monotonic)
    window = RateLimiter(RateLimits.sliding(), clock.monotonic)
    assert sends(bucket, range(30)) == sends(window, range(30)) == [0] * 30
    clock.advance(0.5)
    # the bucket has refilled 15 tokens: 45 sends in half a second
    assert sends(bucket, range(100, 115)) == [0] * 15
    # the window still holds the 30 sends of half a second ago
    assert sends(window, range(100, 115)) == [1] * 15


def test_the_window_frees_each_slot_one_second_after_its_send(clock: ManualClock) -> None:
    limiter = RateLimiter(RateLimits.sliding(), clock.monotonic)
    for chat in range(30):  # evenly paced at 30 a second: never refused
        assert limiter.acquire(BOT, chat, is_group=False) == 0
        clock.advance(1 / 30)
    # a second after the first send, the first slot is free again, and only that one
    assert limiter.acquire(BOT, 100, is_group=False) == 0
    assert limiter.acquire(BOT, 101, is_group=False) == 1
    clock.advance(1 / 30)
    assert limiter.acquire(BOT, 101, is_group=False) == 0


def test_a_refused_send_takes_nothing(clock: ManualClock) -> None:
    limiter = RateLimiter(RateLimits.sliding(), clock.monotonic)
    assert sends(limiter, range(30)) == [0] * 30
    for _ in range(50):  # a sender hammering through its 429s does not push the window on
        assert limiter.acquire(BOT, 99, is_group=False) == 1
    clock.advance(1)
    assert sends(limiter, range(100, 130)) == [0] * 30


def test_retry_after_counts_whole_seconds_until_the_window_has_room(clock: ManualClock) -> None:
    limiter = RateLimiter(RateLimits(model="sliding", window_seconds=3.0), clock.monotonic)
    assert sends(limiter, range(90)) == [0] * 90  # 30 a second: 90 in a window of three
    clock.advance(0.5)
    assert limiter.acquire(BOT, 99, is_group=False) == 3  # 2.5 s until the first leaves
    clock.advance(2.4)
    assert limiter.acquire(BOT, 99, is_group=False) == 1
    clock.advance(0.1)
    assert limiter.acquire(BOT, 99, is_group=False) == 0


def test_per_chat_and_group_limits_are_the_same_in_both_models(clock: ManualClock) -> None:
    for model in ("bucket", "sliding"):
        limiter = RateLimiter(RateLimits(model=model), clock.monotonic)
        # one chat: a burst of three, then one a second
        assert [limiter.acquire(BOT, 7, is_group=False) for _ in range(4)] == [0, 0, 0, 1]
        clock.advance(1)
        assert limiter.acquire(BOT, 7, is_group=False) == 0
        # a group: 20 a minute, then one every three seconds
        limiter.configure(RateLimits(model=model, chat_per_second=100, chat_burst=100))
        group = [limiter.acquire(BOT, -100, is_group=True) for _ in range(21)]
        assert group == [0] * 20 + [3]
        clock.advance(60)


def test_an_album_takes_a_slot_per_message(clock: ManualClock) -> None:
    limiter = RateLimiter(RateLimits.sliding(), clock.monotonic)
    assert limiter.acquire(BOT, 1, is_group=False, count=10) == 0
    assert sends(limiter, range(100, 120)) == [0] * 20
    assert limiter.acquire(BOT, 2, is_group=False, count=1) == 1
    too_big = RateLimiter(RateLimits(model="sliding", global_per_second=5), clock.monotonic)
    assert too_big.acquire(BOT, 3, is_group=False, count=10) == 3600  # never fits: an hour


def test_configure_switches_models_and_starts_afresh(clock: ManualClock) -> None:
    limiter = RateLimiter(RateLimits(), clock.monotonic)
    assert sends(limiter, range(30)) == [0] * 30
    limiter.configure(RateLimits.sliding())
    assert sends(limiter, range(100, 130)) == [0] * 30
    assert limiter.acquire(BOT, 99, is_group=False) == 1
    limiter.configure(RateLimits.off())
    assert sends(limiter, range(1000)) == [0] * 1000


@given(gaps=st.lists(st.floats(min_value=0, max_value=0.2), min_size=1, max_size=200))
def test_the_window_never_holds_more_than_its_limit(gaps: list[float]) -> None:
    """Whatever the timing of the attempts, no one-second window holds more than 30 sends."""
    clock = ManualClock()
    limiter = RateLimiter(RateLimits.sliding(), clock.monotonic)
    sent: list[float] = []
    for n, gap in enumerate(gaps):
        clock.advance(gap)
        if limiter.acquire(BOT, n, is_group=False) == 0:
            sent.append(clock.monotonic())
    for i, start in enumerate(sent):
        assert sum(1 for t in sent[i:] if t < start + 1 - 1e-9) <= 30


def test_the_window_alone(clock: ManualClock) -> None:
    window = SlidingWindow(limit=2, window=1.0)
    now = clock.monotonic()
    assert window.wait_time(now) == 0
    window.take(now)
    window.take(now + 0.25)
    assert window.wait_time(now + 0.5) == pytest.approx(0.5)
    assert window.wait_time(now + 1.0) == 0


@pytest.mark.parametrize(
    "settings",
    [
        {"model": "leaky"},
        {"model": 5},
        {"model": None},
        {"model": ["sliding"]},
        {"model": "sliding", "window_seconds": 0},
        {"model": "sliding", "window_seconds": -1},
        {"model": "sliding", "window_seconds": "一秒"},
        {"model": "SLIDING"},
        {"model": "sliding\u0000"},
    ],
)
async def test_the_control_api_refuses_a_model_it_does_not_know(
    sandbox: RunningSandbox,
    server: SandboxServer,
    client: SandboxClient,
    settings: dict[str, object],
) -> None:
    before = server.rate_limiter.limits
    with pytest.raises(SandboxClientError) as refused:
        await client.set_rate_limits(**settings)
    assert refused.value.status == 400
    assert server.rate_limiter.limits == before


async def test_the_sliding_model_over_http(
    sandbox: RunningSandbox,
    server: SandboxServer,
    client: SandboxClient,
    sandbox_clock: ManualClock,
    bot: Bot,
) -> None:
    people = [server.create_user(f"居民{i}") for i in range(45)]
    for person in people:
        server.start(BOT_ID, person.id)
    await client.set_rate_limits(model="sliding")
    assert server.rate_limiter.limits == RateLimits.sliding()

    async def burst(who: list[int]) -> list[int]:
        async with aiohttp.ClientSession() as session:
            return [
                (
                    await raw_call(
                        sandbox,
                        "sendMessage",
                        json={"chat_id": chat_id, "text": "通知"},
                        session=session,
                    )
                )[0]
                for chat_id in who
            ]

    assert await burst([p.id for p in people[:30]]) == [200] * 30
    sandbox_clock.advance(0.5)
    statuses = await burst([p.id for p in people[30:]])
    assert statuses == [429] * 15  # the bucket would have sent these 15
    sandbox_clock.advance(0.5)
    assert await burst([p.id for p in people[30:]]) == [200] * 15


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        ([], RateLimits()),
        (["--rate-limits", "bucket"], RateLimits()),
        (["--rate-limits", "sliding"], RateLimits.sliding()),
        (["--rate-limits", "off"], RateLimits.off()),
    ],
)
def test_gridbot_sandbox_chooses_the_model(flag: list[str], expected: RateLimits) -> None:
    args = build_parser().parse_args(["sandbox", *flag])
    assert RateLimits.named(args.rate_limits) == expected


@pytest.mark.parametrize("value", ["leaky", "", "Sliding", "sliding ", "滑动"])
def test_gridbot_sandbox_refuses_another_model(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["sandbox", "--rate-limits", value])
    with pytest.raises(ValueError):
        RateLimits.named(value)
