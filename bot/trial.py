"""``gridbot sandbox``: GridBot with no token and no network.

Starts the sandbox Bot API server with its web chat page, loads the demo community into an
empty database, gives every demo person a sandbox account (so the page can act as any of them),
and runs the unmodified bot against the sandbox.
"""

from __future__ import annotations

import asyncio
import logging

from pydantic import SecretStr
from sqlmodel import col, select

from bot import migrate
from bot.app import build_app, close, run_polling
from bot.clock import Clock
from bot.db import create_engine, create_session_factory
from bot.i18n import gettext_for
from bot.labels import ROLE
from bot.sandbox.app import run_sandbox
from bot.sandbox.ratelimit import RateLimits
from bot.sandbox.server import SandboxServer
from bot.services import people
from bot.services.demo import DemoDataExists, load_demo_data
from bot.settings import Settings
from bot.watch import Watch
from models import Person

log = logging.getLogger(__name__)

SANDBOX_TOKEN = "100000001:GridBotSandboxToken_NotForTelegram000"
SANDBOX_USERNAME = "gridbot_sandbox_bot"


async def prepare_database(settings: Settings, clock: Clock) -> None:
    """Migrate, and load the demo community if the database is empty."""
    await asyncio.to_thread(migrate.upgrade, settings.database_url)
    engine = create_engine(settings.database_url)
    try:
        async with create_session_factory(engine)() as session:
            try:
                await load_demo_data(session, clock.now())
            except DemoDataExists:
                return
            await session.commit()
            log.info("demo community loaded")
    finally:
        await engine.dispose()


async def sandbox_accounts(server: SandboxServer, settings: Settings) -> int:
    """A sandbox account for every person with a Telegram id, labelled with their role."""
    engine = create_engine(settings.database_url)
    created = 0
    try:
        async with create_session_factory(engine)() as session:
            persons = (
                await session.exec(select(Person).where(col(Person.telegram_id).is_not(None)))
            ).all()
            for person in persons:
                assert person.telegram_id is not None and person.id is not None
                if person.telegram_id in server.users:
                    continue
                roles = await people.roles_of(session, person.id)
                label = " · ".join(
                    f"{gettext_for(settings.default_locale, ROLE[r.role])} {r.grid_name}"
                    for r in roles
                )
                server.create_user(
                    person.name,
                    last_name=f"({label})" if label else None,
                    language_code="zh-hans",
                    phone_number=(person.phone or "").lstrip("+") or None,
                    user_id=person.telegram_id,
                )
                # demo people have talked to the bot before (staff joined by invitation), so
                # the bot may write to them first, as it may to real ones
                server.get_bot(SANDBOX_USERNAME).relation(person.telegram_id).started = True
                created += 1
    finally:
        await engine.dispose()
    return created


async def run_trial(
    settings: Settings,
    clock: Clock,
    *,
    host: str,
    port: int,
    rate_limits: RateLimits | None = None,
) -> None:
    await prepare_database(settings, clock)
    server = SandboxServer(clock=clock.now, rate_limits=rate_limits)
    server.register_bot(SANDBOX_TOKEN, username=SANDBOX_USERNAME, first_name="网格通 GridBot")
    accounts = await sandbox_accounts(server, settings)  # after the bot: they start it
    watch = Watch()  # /healthz and /metrics beside the chat page, once the bot is built
    async with run_sandbox(
        server, host=host, port=port, web=True, routes=watch.routes()
    ) as sandbox:
        trial = settings.model_copy(
            update={"bot_token": SecretStr(SANDBOX_TOKEN), "telegram_api_url": sandbox.url}
        )
        app = build_app(trial, clock)
        watch.app = app
        log.info("sandbox ready: open %s (%d demo accounts)", sandbox.url, accounts)
        print(  # noqa: T201
            gettext_for(
                settings.default_locale,
                "GridBot sandbox is running: open {url} in a browser. Press Ctrl+C to stop.",
                url=sandbox.url,
            ),
            flush=True,
        )
        try:
            await run_polling(app, watch=False)  # served on the sandbox's port instead
        finally:
            await close(app)
