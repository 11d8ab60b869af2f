"""``gridbot sandbox``: GridBot with no token and no network.

Starts the sandbox Bot API server with its web chat page, loads the demo community into an
empty database, gives every demo person a sandbox account (so the page can act as any of them),
and runs the unmodified bot against the sandbox.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from pydantic import SecretStr
from sqlmodel import col, select

from bot import migrate
from bot.app import build_app, close, run_polling
from bot.clock import Clock
from bot.db import create_engine, create_session_factory
from bot.i18n import gettext_for
from bot.labels import ROLE
from bot.open311 import Open311
from bot.sandbox.app import run_sandbox
from bot.sandbox.ratelimit import RateLimits
from bot.sandbox.server import SandboxServer
from bot.services import members, people
from bot.services.demo import DemoDataExists, load_demo_data
from bot.services.demo_rota import load_demo_rota
from bot.services.id_numbers import new_key
from bot.settings import Settings
from bot.watch import Watch
from models import Person, Role

log = logging.getLogger(__name__)

SANDBOX_TOKEN = "100000001:GridBotSandboxToken_NotForTelegram000"
SANDBOX_USERNAME = "gridbot_sandbox_bot"


KEY_FILE = "people.key"  # the sandbox's ID-number key, kept beside its database


def with_sandbox_key(settings: Settings) -> Settings:
    """The settings with an ID-number key: ``PEOPLE__KEY`` if set, else the one kept in the
    data folder (made there the first time, readable by this user only)."""
    if settings.people.key is not None:
        return settings
    path = settings.data_dir / KEY_FILE
    if path.exists():
        key = path.read_text(encoding="ascii").strip()
    else:
        key = new_key()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(key + "\n", encoding="ascii")
        log.info("made a new ID-number key for the sandbox in %s", path)
    people = settings.people.model_copy(update={"key": SecretStr(key)})
    return settings.model_copy(update={"people": people})


async def prepare_database(settings: Settings, clock: Clock) -> None:
    """Migrate, and load the demo community (with a duty rota) if the database is empty."""
    await asyncio.to_thread(migrate.upgrade, settings.database_url)
    engine = create_engine(settings.database_url)
    try:
        async with create_session_factory(engine)() as session:
            try:
                await load_demo_data(
                    session, clock.now(), vault=members.optional_vault(settings.people)
                )
            except DemoDataExists:
                return
            # the sandbox only: a rota, so /duty shows who is on (see bot.services.demo_rota)
            await load_demo_rota(session, clock.now(), settings.tz)
            await session.commit()
            log.info("demo community loaded, with a duty rota")
    finally:
        await engine.dispose()


# the web page lists people under their most senior role, in this order
ROLE_ORDER = (
    Role.ADMIN,
    Role.CENTER,
    Role.SUPERVISOR,
    Role.DEPARTMENT,
    Role.HEAD,
    Role.WORKER,
    Role.RESIDENT,
)
PAGE_LOCALES = ("zh_Hans", "en")  # the web page speaks Simplified Chinese and English


def role_heading(role: Role) -> str:
    """A role as the web page's list of people heads it, e.g. "网格员 Grid worker"."""
    zh, en = (gettext_for(locale, ROLE[role]) for locale in PAGE_LOCALES)
    return f"{zh} {en[:1].upper()}{en[1:]}"


def page_labels(roles: Sequence[people.RoleInGrid]) -> tuple[str | None, str | None, int]:
    """The web page's group (most senior role) and note (every role's grid) for a person with
    ``roles``, and where their group comes in :data:`ROLE_ORDER`."""
    if not roles:
        return None, None, len(ROLE_ORDER)
    main = min(roles, key=lambda r: ROLE_ORDER.index(r.role))
    note = " · ".join(
        r.grid_name
        if r.role == main.role
        else f"{gettext_for(PAGE_LOCALES[0], ROLE[r.role])} {r.grid_name}"
        for r in roles
    )
    return role_heading(main.role), note, ROLE_ORDER.index(main.role)


async def sandbox_accounts(
    server: SandboxServer, settings: Settings, *, bot_username: str = SANDBOX_USERNAME
) -> int:
    """A sandbox account for every person with a Telegram id, listed on the web page under
    their most senior role (their grids in its note), most senior roles first."""
    engine = create_engine(settings.database_url)
    accounts = []
    try:
        async with create_session_factory(engine)() as session:
            persons = (
                await session.exec(select(Person).where(col(Person.telegram_id).is_not(None)))
            ).all()
            roles = await people.roles_of_many(
                session, [p.id for p in persons if p.id is not None]
            )
    finally:
        await engine.dispose()
    for person in persons:
        assert person.telegram_id is not None and person.id is not None
        if person.telegram_id in server.users:
            continue
        group, note, rank = page_labels(roles.get(person.id, []))
        accounts.append((rank, person.telegram_id, person, group, note))
    for _, telegram_id, person, group, note in sorted(accounts, key=lambda a: a[:2]):
        server.create_user(
            person.name,
            language_code="zh-hans",
            phone_number=(person.phone or "").lstrip("+") or None,
            user_id=telegram_id,
            group=group,
            note=note,
        )
        # demo people have talked to the bot before (staff joined by invitation), so the bot
        # may write to them first, as it may to real ones
        server.get_bot(bot_username).relation(telegram_id).started = True
    return len(accounts)


async def run_trial(
    settings: Settings,
    clock: Clock,
    *,
    host: str,
    port: int,
    rate_limits: RateLimits | None = None,
) -> None:
    settings = with_sandbox_key(settings)
    await prepare_database(settings, clock)
    server = SandboxServer(clock=clock.now, rate_limits=rate_limits)
    server.register_bot(SANDBOX_TOKEN, username=SANDBOX_USERNAME, first_name="网格通 GridBot")
    accounts = await sandbox_accounts(server, settings)  # after the bot: they start it
    watch = Watch()  # /healthz and /metrics beside the chat page, once the bot is built
    civic = Open311()  # and Open311 (/open311/v2/…)
    async with run_sandbox(
        server, host=host, port=port, web=True, routes=[*watch.routes(), *civic.routes()]
    ) as sandbox:
        trial = settings.model_copy(
            update={"bot_token": SecretStr(SANDBOX_TOKEN), "telegram_api_url": sandbox.url}
        )
        app = build_app(trial, clock)
        watch.app = civic.app = app
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
