"""The end-to-end harness: the real bot against the sandbox Bot API server over HTTP.

Every end-to-end test drives GridBot only through this: personas act in the sandbox, the
unmodified bot (polling or webhook) answers through its outbox, and the test reads what each
persona sees. One :class:`~bot.clock.FrozenClock` is shared by the bot, its sender and the
sandbox, so a test moves time with :meth:`Harness.advance` instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject
from pydantic import SecretStr
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.app import App, build_app, close, running, webhook_server
from bot.clock import FrozenClock
from bot.db import create_engine, create_session_factory
from bot.i18n import resolve_locale
from bot.sandbox.app import RunningSandbox, run_sandbox
from bot.sandbox.client import Persona, SandboxClient
from bot.sandbox.ratelimit import RateLimits
from bot.sandbox.server import SandboxServer
from bot.services.demo import DEMO_PERSONAS, load_demo_data
from bot.services.id_numbers import IdVault
from bot.services.ticket_numbers import counter_name
from bot.settings import LimitSettings, PeopleSettings, Settings, WebhookSettings
from models import Counter, Grid, Person, Ticket, TicketCategory
from scheduler.context import JobContext
from scheduler.registry import default_registry
from scheduler.replay import Replay
from tests.e2e.language import LanguageWatch, data_strings

SHORT_NUMBERS_FROM = 2047  # the street's last short ticket number before a test
TOKEN = "200000001:GridBotEndToEndTestToken_abcdefghij"
BOT_USERNAME = "gridbot_test_bot"
PEOPLE_KEY = "kUX3Y7nT6h1r8l0f2Q1p5VZ6bq2dXy0qJ9wW3nHk4rE="  # the demo's ID numbers (e2e only)
Mode = Literal["polling", "webhook"]


class InFlight(BaseMiddleware):
    """Counts the updates the dispatcher is handling right now."""

    def __init__(self) -> None:
        self.count = 0

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        self.count += 1
        try:
            return await handler(event, data)
        finally:
            self.count -= 1


@dataclass
class Harness:
    sandbox: RunningSandbox
    client: SandboxClient
    clock: FrozenClock
    settings: Settings
    mode: Mode = "polling"
    app: App | None = None
    webhook_url: str | None = None  # where the bot's webhook server listens (webhook mode)
    inflight: InFlight = field(default_factory=InFlight)
    language: LanguageWatch = field(default_factory=lambda: LanguageWatch("zh_Hans"))
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _stack: contextlib.AsyncExitStack | None = None
    _sweeps: Replay | None = None

    @property
    def sweeps(self) -> Replay:
        """The scheduler's sweeps, replayed deterministically on the shared clock (the live
        APScheduler follows the wall clock, so the harness never starts it)."""
        if self._sweeps is None:
            assert self.app is not None
            context = JobContext(
                sessions=self.app.sessions,
                clock=self.clock,
                settings=self.settings,
                wake_outbox=self.app.sender.wake,
                readers=self.app.work.readers,  # as the scheduler's: reads take no write lock
            )
            self._sweeps = Replay(default_registry(self.settings), context)
        return self._sweeps

    @property
    def server(self) -> SandboxServer:
        return self.sandbox.server

    # -- the bot ------------------------------------------------------------------------------

    async def start_bot(self) -> App:
        """Build and start the real application (a fresh one each time: a "process")."""
        app = build_app(self.settings, self.clock)
        app.dispatcher.update.outer_middleware.register(self.inflight)
        # the counter must wrap everything, so it goes first among the outer middlewares
        middlewares = app.dispatcher.update.outer_middleware._middlewares
        middlewares.insert(0, middlewares.pop())
        stack = contextlib.AsyncExitStack()
        await stack.enter_async_context(running(app))
        if self.mode == "polling":
            self._tasks.append(await start_polling(app))
        else:
            local = await stack.enter_async_context(webhook_server(app))
            self.webhook_url = local
            secret = self.settings.webhook.secret
            await app.bot.set_webhook(
                local,
                secret_token=secret.get_secret_value() if secret else None,
                allowed_updates=app.dispatcher.resolve_used_update_types(),
            )
        self._stack = stack
        self.app = app
        # the sweeps replay on this process's sessions; their timeline starts with the first bot
        reached = self._sweeps.reached if self._sweeps is not None else None
        self._sweeps = None
        if reached is not None:
            self.sweeps.reached = reached
        else:
            _ = self.sweeps
        await self.settle()
        return app

    async def stop_bot(self) -> None:
        """Stop the bot between two updates, as a process killed while idle would be.

        What was committed stays (FSM state, outbox rows); cancelling idle tasks leaves no
        database connection half-open (warnings are errors in the tests).
        """
        if self.app is None:
            return
        await self.settle()
        app, self.app = self.app, None
        if self.mode == "polling":
            with contextlib.suppress(RuntimeError):
                await app.dispatcher.stop_polling()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._stack is not None:
            await self._stack.aclose()
            self._stack = None
        await close(app)

    async def restart_bot(self) -> App:
        await self.stop_bot()
        return await self.start_bot()

    # -- waiting and time -----------------------------------------------------------------------

    async def settle(self, timeout: float = 20.0) -> None:
        """Wait until the bot has handled every update and sent everything that is due."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        quiet = 0
        while quiet < 3:
            if loop.time() > deadline:
                raise TimeoutError("the bot did not settle")
            await asyncio.sleep(0.02)
            quiet = 0 if await self._busy() else quiet + 1

    async def _busy(self) -> bool:
        if self.inflight.count:
            return True
        bot = self.server.get_bot(TOKEN.split(":")[0])
        if bot.updates.pending_count():
            return True
        if self.app is not None and self.app.work.busy:  # an export or import still running
            return True
        return self.app is not None and await self.app.sender.due_count() > 0

    async def advance(self, delta: timedelta, *, jump: bool = False) -> None:
        """Move the shared clock forward, run every scheduler sweep that fired meanwhile (each
        at its own fire time, in order), then let the bot deliver what became due.

        ``jump`` runs each sweep once, at its last fire time: for leaps of a day or more, when
        what happened in between does not matter to the test (a day is 1,440 deadline sweeps).
        """
        self.clock.advance(delta)
        assert self.app is not None
        await self.sweeps.catch_up(coalesce=jump)
        self.app.sender.wake()
        await self.settle()

    # -- people ---------------------------------------------------------------------------------

    async def persona(self, name: str) -> Persona:
        """A demo person (``resident``, ``worker``, ``head``, ``center``, ``admin``, …)."""
        return await self.persona_of(DEMO_PERSONAS[name])

    async def persona_of(self, telegram_id: int) -> Persona:
        """Any demo person by their Telegram id (a department's staff, another worker)."""
        if telegram_id not in self.server.users:
            async with self.session() as session:
                person = (
                    await session.exec(select(Person).where(Person.telegram_id == telegram_id))
                ).one()
            self.server.create_user(
                person.name,
                user_id=telegram_id,
                phone_number=(person.phone or "").lstrip("+") or None,
            )
            # demo people have talked to the bot before (staff joined by invitation)
            self.server.get_bot(BOT_USERNAME).relation(telegram_id).started = True
            self.language.reads(
                telegram_id,
                resolve_locale(
                    person.locale, person.telegram_language, self.settings.default_locale
                ),
            )
        user = self.server.users[telegram_id].to_api()
        return self.client.persona_for(user, bot=BOT_USERNAME)

    async def newcomer(
        self,
        first_name: str,
        *,
        last_name: str | None = None,
        language_code: str = "zh-hans",
        phone: str | None = None,
    ) -> Persona:
        persona = await self.client.persona(
            first_name,
            bot=BOT_USERNAME,
            last_name=last_name,
            language_code=language_code,
            phone_number=phone,
        )
        locale = resolve_locale(None, language_code, self.settings.default_locale)
        self.language.reads(persona.id, locale)
        return persona

    async def use_locale(self, persona: Persona, locale: str) -> None:
        """``persona`` chooses ``locale`` (as /language would), from now on."""
        async with self.session() as session:
            person = (
                await session.exec(select(Person).where(Person.telegram_id == persona.id))
            ).one()
            person.locale = locale
            session.add(person)
            await session.commit()
        self.language.reads(persona.id, locale)

    async def check_language(self) -> None:
        """Fail on any text the bot showed in a language its reader does not read (see
        ``tests/e2e/language.py``)."""
        await self.settle()
        async with self.session() as session:
            data = await data_strings(session)
        problems = self.language.problems(data)
        assert not problems, "texts in the wrong language:\n" + "\n".join(problems)

    async def forge_press(self, persona: Persona, callback_data: str) -> None:
        """A tampered client sends ``callback_data`` that no button of ours ever carried."""
        await persona.forge_press(callback_data)
        await self.settle()

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        engine = create_engine(self.settings.database_url)
        try:
            async with create_session_factory(engine)() as session:
                yield session
        finally:
            await engine.dispose()


def sandbox_settings(
    sandbox_url: str,
    database_url: str,
    *,
    token: str = TOKEN,
    limits: LimitSettings | None = None,
    **more: Any,
) -> Settings:
    """The bot's settings against a sandbox (here and in ``bench/load.py``): no ``.env``; by
    default no pacing of its own, as the sandbox's flood limits are off."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        bot_token=SecretStr(token),
        telegram_api_url=sandbox_url,
        database_url=database_url,
        limits=limits or LimitSettings(per_chat_interval=0.0, retry_base_seconds=0.02),
        webhook=WebhookSettings(port=0, secret=SecretStr("e2e-secret-token")),
        **{"people": PeopleSettings(key=SecretStr(PEOPLE_KEY)), **more},
    )


async def start_polling(app: App) -> asyncio.Task[None]:
    """The bot polls the sandbox (an update at a time, each handled as a task) until cancelled."""
    await app.bot.delete_webhook(drop_pending_updates=False)
    return asyncio.create_task(
        app.dispatcher.start_polling(
            app.bot,
            handle_as_tasks=True,
            handle_signals=False,
            close_bot_session=False,
            polling_timeout=1,
            allowed_updates=app.dispatcher.resolve_used_update_types(),
        )
    )


@contextlib.asynccontextmanager
async def harness(
    database_url: str,
    clock: FrozenClock,
    *,
    demo: bool = True,
    mode: Mode = "polling",
    rate_limits: RateLimits | None = None,
    web: bool = False,
    check_language: bool = True,
) -> AsyncIterator[Harness]:
    """A sandbox on a free port, the demo community (optional), and the bot running on them.

    When the test ends well, every text the bot showed is checked against the language of
    its reader (``check_language``; :meth:`Harness.check_language`)."""
    server = SandboxServer(clock=clock.now, rate_limits=rate_limits or RateLimits.off())
    server.register_bot(TOKEN, username=BOT_USERNAME, first_name="网格通")
    if demo:
        engine = create_engine(database_url)
        async with create_session_factory(engine)() as session:
            await load_demo_data(session, clock.now(), vault=IdVault(PEOPLE_KEY))
            # a street that has filed tickets before: short numbers read 2048, 2049, …, which
            # a test can tell apart from the other digits on a screen
            for street in (await session.exec(select(Grid).where(Grid.tier == 0))).all():
                session.add(Counter(name=counter_name(street.id or 0), value=SHORT_NUMBERS_FROM))
            await session.commit()
        await engine.dispose()
    async with (
        run_sandbox(server, web=web) as sandbox,
        SandboxClient(sandbox.url) as client,
    ):
        settings = sandbox_settings(sandbox.url, database_url)
        h = Harness(sandbox, client, clock, settings, mode)
        h.language.default_locale = settings.default_locale
        h.language.bot_id = int(TOKEN.split(":")[0])
        stop_watching = server.watch(h.language)
        await h.start_bot()
        try:
            yield h
            if check_language:
                await h.check_language()
        finally:
            stop_watching()
            await h.stop_bot()


async def file_ticket_for(
    h: Harness, persona_name: str, description: str, **report: Any
) -> Ticket:
    """File a ticket for a demo resident straight through the service (what /report ends in),
    with the bot's own notifier, and let the bot deliver what it caused."""
    from bot.services import tickets
    from bot.services.notice_board import resident_grid
    from bot.telegram.ticket_notifier import TelegramTicketNotifier

    async with h.session() as session:
        person = (
            await session.exec(
                select(Person).where(Person.telegram_id == DEMO_PERSONAS[persona_name])
            )
        ).one()
        assert person.id is not None
        grid = await resident_grid(session, person.id)
        assert grid is not None
        ticket = await tickets.file_ticket(
            session,
            TelegramTicketNotifier(h.settings),
            reporter=person,
            grid=grid,
            report=tickets.Report(
                category=report.pop("category", TicketCategory.FACILITY),
                description=description,
                **report,
            ),
            settings=h.settings,
            now=h.clock.now(),
        )
        await session.commit()
    assert h.app is not None
    h.app.sender.wake()
    await h.settle()
    return ticket
