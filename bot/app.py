"""Assembly: settings, engine, Bot, Dispatcher, routers, middlewares, the outbox sender.

Built once here and passed down; there are no module-level bots, dispatchers or engines.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import PRODUCTION, TelegramAPIServer
from aiogram.exceptions import TelegramBadRequest
from aiogram.fsm.storage.base import BaseStorage
from aiogram.methods import AnswerCallbackQuery, Response, TelegramMethod
from aiogram.methods.base import TelegramType
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.background import BackgroundWork
from bot.backup import database_in_use
from bot.clock import Clock
from bot.db import (
    SessionFactory,
    create_engine,
    create_reader_factory,
    create_session_factory,
)
from bot.metrics import Metrics
from bot.open311 import Open311
from bot.services import outbox, quotas, unreachable
from bot.settings import Settings
from bot.telegram.commands import default_menus
from bot.telegram.fsm_storage import DatabaseStorage
from bot.telegram.i18n import CatalogI18n, PersonI18nMiddleware
from bot.telegram.middlewares import (
    UpdateContextMiddleware,
    UpdateFsmMiddleware,
    UpdateMetricsMiddleware,
)
from bot.telegram.pacing import SharedPacer, shared_pacer
from bot.telegram.sender import EVEN_PACE, OutboxSender, own_pacer
from bot.telegram.ticket_notifier import TelegramTicketNotifier
from bot.watch import Watch, serving
from handlers import build_router

if TYPE_CHECKING:
    from scheduler.service import SchedulerService

log = logging.getLogger(__name__)

STALE_QUERY = "query is too old"  # Telegram's 400 for a callback query answered or expired


@dataclass
class App:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    sessions: SessionFactory
    bot: Bot
    dispatcher: Dispatcher
    sender: OutboxSender
    work: BackgroundWork
    metrics: Metrics
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    scheduler: SchedulerService | None = None  # while this process competes to lead it

    def task_alive(self, name: str) -> bool:
        """Whether the background task ``name`` (the outbox sender, say) is running."""
        return any(task.get_name() == name and not task.done() for task in self.tasks)


def build_storage(settings: Settings, sessions: SessionFactory, clock: Clock) -> BaseStorage:
    if settings.redis_url:
        from aiogram.fsm.storage.redis import RedisStorage

        # bounded waits: a Redis that stops answering fails an update, it does not hang it
        timeouts = {"socket_connect_timeout": 5, "socket_timeout": 5}
        return RedisStorage.from_url(settings.redis_url, connection_kwargs=timeouts)
    return DatabaseStorage(sessions, clock)


def install_update_middlewares(
    dispatcher: Dispatcher,
    context: UpdateContextMiddleware,
    metrics: UpdateMetricsMiddleware | None = None,
) -> None:
    """Put the update's context between aiogram's own middlewares, and the FSM after it
    (the metrics, when given, first: they time all of it).

    ``Dispatcher()`` registers ``ErrorsMiddleware``, ``UserContextMiddleware`` (the user and
    chat of the event) and ``FSMContextMiddleware`` (which reads the conversation's state) as
    the update's outer middlewares. The context goes after the user context, which the person
    needs, and before the FSM, which is replaced by :class:`UpdateFsmMiddleware`: the state
    is then read in the update's own transaction (one session, and on SQLite one write lock,
    per update), and not at all for a redelivered update.
    """
    outer = dispatcher.update.outer_middleware
    if dispatcher.fsm in outer:
        outer.unregister(dispatcher.fsm)
    dispatcher.fsm = UpdateFsmMiddleware.replacing(dispatcher.fsm)
    if metrics is not None:
        outer.register(metrics)
    outer.register(context)
    outer.register(dispatcher.fsm)


class BotApiSession(AiohttpSession):
    """aiogram's HTTP session, with each answer's model built once per process.

    aiogram reads every answer through ``Response[method.__returning__]``. pydantic keeps
    parametrized models in a weak cache, so once the garbage collector has run (and in a bot
    that touches a database it runs all the time) the model is built again: 10–20 ms of CPU,
    on most requests. Holding each one here keeps pydantic's cache warm.
    """

    _answer_models: ClassVar[dict[Any, type[Response[Any]]]] = {}

    def check_response(
        self, bot: Bot, method: TelegramMethod[TelegramType], status_code: int, content: str
    ) -> Response[TelegramType]:
        returning = method.__returning__
        if returning not in self._answer_models:
            self._answer_models[returning] = Response[returning]  # type: ignore[valid-type]
        try:
            return super().check_response(bot, method, status_code, content)
        except TelegramBadRequest as error:
            if isinstance(method, AnswerCallbackQuery) and STALE_QUERY in error.message:
                # The button's spinner is a courtesy: a press answered already (by a worker
                # that died before its transaction committed, so the update came again) or
                # answered late (after about 15 s) must not fail the update; that would
                # make it come again and again, holding up the chat's next updates.
                log.info("callback query %s was not answered: %s", method.callback_query_id, error)
                return Response[Any](ok=True, result=True)
            raise


def build_bot(settings: Settings) -> Bot:
    if settings.bot_token is None:
        raise ValueError("no bot token")
    api = PRODUCTION
    if settings.telegram_api_url:
        api = TelegramAPIServer.from_base(settings.telegram_api_url)
    return Bot(settings.bot_token.get_secret_value(), session=BotApiSession(api=api))


def build_pacer(settings: Settings, bot: Bot) -> SharedPacer | None:
    """With Redis, one send pace for every process of the bot (``bot.telegram.pacing``);
    without, each process paces itself (the sender's own :class:`Pacer`)."""
    if not settings.redis_url:
        return None
    limit = settings.limits.messages_per_second
    return shared_pacer(settings.redis_url, bot.id, limit * EVEN_PACE, alone=own_pacer(limit))


def build_app(
    settings: Settings,
    clock: Clock,
    *,
    engine: AsyncEngine | None = None,
    bot: Bot | None = None,
) -> App:
    engine = engine or create_engine(settings.database_url)
    sessions = create_session_factory(engine)
    bot = bot or build_bot(settings)
    metrics = Metrics()
    sender = OutboxSender(
        bot,
        sessions,
        clock,
        settings,
        on_unreachable=unreachable.tell_head,
        metrics=metrics,
        pacer=build_pacer(settings, bot),
    )
    work = BackgroundWork(sessions, create_reader_factory(engine), sender.wake)
    storage = build_storage(settings, sessions, clock)
    dispatcher = Dispatcher(
        storage=storage,
        settings=settings,
        clock=clock,
        sessions=sessions,
        sender=sender,
        work=work,
        notifier=TelegramTicketNotifier(settings),
    )
    install_update_middlewares(
        dispatcher,
        UpdateContextMiddleware(sessions, clock, sender, settings, storage),
        UpdateMetricsMiddleware(metrics),
    )
    PersonI18nMiddleware(CatalogI18n(settings.default_locale)).setup(dispatcher)
    dispatcher.include_router(build_router())
    return App(settings, clock, engine, sessions, bot, dispatcher, sender, work, metrics)


async def prepare(app: App) -> None:
    """At start: queue the command menus for people with no role (each menu language), and
    install the default visit rules (方案1 §2) if none were ever made."""
    async with app.sessions() as session:
        now = app.clock.now()
        for payload in default_menus(app.settings.default_locale):
            outbox.enqueue(session, chat_id=0, method="setMyCommands", payload=payload, now=now)
        await quotas.ensure_default_rules(session, now, tz=app.settings.tz)
        await session.commit()
    app.sender.wake()


@asynccontextmanager
async def running(app: App, *, scheduler: bool = False) -> AsyncIterator[App]:
    """Background tasks for as long as the bot runs: the outbox sender, and the scheduler
    unless another process runs it (``gridbot run --no-scheduler``). The database is marked in
    use meanwhile, so ``gridbot restore`` refuses to replace it
    (:func:`bot.backup.database_in_use`)."""
    with database_in_use(app.settings.database_url):
        async with _running(app, scheduler=scheduler):
            yield app


@asynccontextmanager
async def _running(app: App, *, scheduler: bool) -> AsyncIterator[App]:
    await prepare(app)
    app.tasks.append(asyncio.create_task(app.sender.run(), name="outbox-sender"))
    if scheduler:
        from scheduler.service import build_scheduler

        app.scheduler = build_scheduler(
            engine=app.engine,
            sessions=app.sessions,
            clock=app.clock,
            settings=app.settings,
            wake_outbox=app.sender.wake,
        )
        app.tasks.append(asyncio.create_task(app.scheduler.run(), name="scheduler"))
    try:
        yield app
    finally:
        for task in app.tasks:
            task.cancel()
        for task in app.tasks:
            with suppress(asyncio.CancelledError):
                await task
        app.tasks.clear()
        app.scheduler = None
        await app.work.close()


async def close(app: App) -> None:
    await app.sender.close()
    await app.dispatcher.storage.close()
    await app.bot.session.close()
    await app.engine.dispose()


async def run_polling(app: App, *, scheduler: bool = True, watch: bool = True) -> None:
    """Poll for updates until cancelled; ``watch``: serve /healthz, /metrics and Open311 on
    their own port (``settings.watch``) when enabled there."""
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(running(app, scheduler=scheduler))
        if watch and app.settings.watch.enabled:
            hosting = app.settings.watch
            more = Open311(app).routes()
            await stack.enter_async_context(
                serving(Watch(app), hosting.host, hosting.port, more=more)
            )
        await app.dispatcher.start_polling(
            app.bot,
            handle_as_tasks=True,
            allowed_updates=app.dispatcher.resolve_used_update_types(),
            close_bot_session=False,
        )


@asynccontextmanager
async def webhook_server(app: App, *, reuse_port: bool = False) -> AsyncIterator[str]:
    """Serve updates over HTTP (several bot processes can sit behind one proxy, or share the
    port: ``reuse_port``, ``SO_REUSEPORT``, as ``gridbot run --workers`` does).

    Registers the webhook with Telegram unless ``settings.webhook.url`` is unset, in which
    case the caller registers it (the sandbox harness does). Yields the local base URL.
    """
    from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
    from aiohttp import web

    hook = app.settings.webhook
    secret = hook.secret.get_secret_value() if hook.secret else None
    web_app = web.Application()
    # an update is answered once it is handled and committed, not on arrival: a worker that
    # dies meanwhile leaves it unanswered, so Telegram delivers it again (to another worker),
    # and Telegram sends a chat's next update only after this one's answer, so one chat's
    # updates are handled in order even across workers
    SimpleRequestHandler(
        dispatcher=app.dispatcher, bot=app.bot, secret_token=secret, handle_in_background=False
    ).register(web_app, path=hook.path)
    setup_application(web_app, app.dispatcher, bot=app.bot)
    web_app.add_routes(Watch(app).routes())  # /healthz and /metrics beside the webhook
    web_app.add_routes(Open311(app).routes())  # and Open311
    runner = web.AppRunner(web_app)
    await runner.setup()
    site = web.TCPSite(runner, hook.host, hook.port, reuse_port=reuse_port or None)
    await site.start()
    port = runner.addresses[0][1]
    try:
        if hook.url:
            await app.bot.set_webhook(
                hook.url,
                secret_token=secret,
                allowed_updates=app.dispatcher.resolve_used_update_types(),
            )
        yield f"http://{hook.host}:{port}{hook.path}"
    finally:
        await runner.cleanup()


async def run_webhook(
    app: App,
    *,
    scheduler: bool = True,
    worker: int | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve the webhook until ``stop`` is set (or until cancelled).

    ``worker``: this is webhook worker n of ``gridbot run --workers`` (:mod:`bot.workers`): it
    shares the webhook's port with the others (a probe there reaches any of them), so it
    also serves its own ``/healthz`` and ``/metrics`` on ``WATCH__PORT`` + n − 1 when
    ``WATCH__ENABLED``."""
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(running(app, scheduler=scheduler))
        await stack.enter_async_context(webhook_server(app, reuse_port=worker is not None))
        if worker is not None and app.settings.watch.enabled:
            hosting = app.settings.watch
            await stack.enter_async_context(
                serving(Watch(app), hosting.host, hosting.port + worker - 1)
            )
        await (stop or asyncio.Event()).wait()
