"""Fixtures: a sandbox on 127.0.0.1 (free port) with a manual clock, and real aiogram bots."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession

from bot.sandbox.app import RunningSandbox, run_sandbox
from bot.sandbox.client import SandboxClient
from bot.sandbox.clock import ManualClock
from bot.sandbox.media import sample_png
from bot.sandbox.ratelimit import RateLimits
from bot.sandbox.server import SandboxServer
from bot.sandbox.state import SandboxUser
from bot.sandbox.updates import WebhookSettings

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw_"
BOT_ID = 123456789
OTHER_TOKEN = "987654321:BBHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw_"


def png(width: int = 4, height: int = 3) -> bytes:
    """A real (tiny) PNG image."""
    return sample_png(width, height)


class QuickSession(AiohttpSession):
    """aiogram's session without the 250 ms pause it takes on close (for TLS, unused here)."""

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


@pytest.fixture
def sandbox_clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def server(sandbox_clock: ManualClock) -> SandboxServer:
    """A sandbox with flood limits off (tests that need them switch them on)."""
    return SandboxServer(
        clock=sandbox_clock.now,
        monotonic=sandbox_clock.monotonic,
        rate_limits=RateLimits.off(),
        webhook=WebhookSettings(timeout=2.0, retry_base=0.05, retry_max=0.2),
    )


@pytest.fixture
async def sandbox(server: SandboxServer) -> AsyncIterator[RunningSandbox]:
    async with run_sandbox(server, web=True) as running:
        yield running


def make_bot(sandbox: RunningSandbox, token: str = TOKEN) -> Bot:
    return Bot(token, session=QuickSession(api=sandbox.telegram_api_server()))


@pytest.fixture
async def bot(sandbox: RunningSandbox) -> AsyncIterator[Bot]:
    tg_bot = make_bot(sandbox)
    sandbox.server.register_bot(TOKEN, username="gridbot_test_bot", first_name="网格助手")
    yield tg_bot
    await tg_bot.session.close()


@pytest.fixture
async def client(sandbox: RunningSandbox) -> AsyncIterator[SandboxClient]:
    async with SandboxClient(sandbox.url) as sandbox_client:
        yield sandbox_client


@pytest.fixture
def alice(server: SandboxServer, bot: Bot) -> SandboxUser:
    """A resident who has started the bot."""
    user = server.create_user("Alice", last_name="王", username="alice_w")
    server.start(BOT_ID, user.id)
    return user


@pytest.fixture
def bob(server: SandboxServer, bot: Bot) -> SandboxUser:
    """A resident who has never talked to the bot."""
    return server.create_user("Bob")
