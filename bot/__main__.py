"""The ``gridbot`` command line: run, db, demo-data, sandbox."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from bot.clock import SystemClock
from bot.i18n import N_, gettext_for
from bot.settings import LOCALES, Settings

log = logging.getLogger("gridbot")

SETTING_HINTS: dict[str, str] = {
    "bot_token": N_(
        "The bot token is malformed. Copy it exactly as @BotFather gave it "
        "(digits, a colon, then about 35 letters) into BOT_TOKEN in .env."
    ),
    "database_url": N_(
        "DATABASE_URL is not supported. Use sqlite+aiosqlite:///gridbot.db or "
        "postgresql+asyncpg://user:password@host/dbname."
    ),
    "redis_url": N_("REDIS_URL must start with redis:// or rediss://."),
    "timezone": N_("TIMEZONE is not a known time zone; use a name such as Asia/Shanghai."),
    "default_locale": N_("DEFAULT_LOCALE must be one of zh_Hans, zh_Hant, en."),
}


def cli_locale() -> str:
    wanted = os.environ.get("DEFAULT_LOCALE", "zh_Hans")
    return wanted if wanted in LOCALES else "zh_Hans"


def fail(message: str, **params: str) -> int:
    """Print one translated, actionable line and return the exit status."""
    print(gettext_for(cli_locale(), message, **params), file=sys.stderr)  # noqa: T201
    return 2


def load_settings() -> Settings | int:
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        hint = SETTING_HINTS.get(field)
        if hint is None:
            return fail(N_("A setting is invalid: {field}. Check your .env file."), field=field)
        return fail(hint)


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    if settings.bot_token is None:
        return fail(
            N_(
                "No bot token: set BOT_TOKEN in .env (ask @BotFather for one), "
                "or try GridBot without a token: gridbot sandbox"
            )
        )
    from bot.app import build_app, close, run_polling, run_webhook
    from bot.db import create_engine
    from bot.migrate import is_up_to_date

    async def main() -> int:
        engine = create_engine(settings.database_url)
        if not await is_up_to_date(engine):
            await engine.dispose()
            return fail(
                N_("The database is not set up or is out of date. Run first: gridbot db upgrade")
            )
        app = build_app(settings, SystemClock(), engine=engine)
        try:
            if args.webhook:
                await run_webhook(app, scheduler=not args.no_scheduler)
            else:
                await run_polling(app, scheduler=not args.no_scheduler)
        finally:
            await close(app)
        return 0

    return asyncio.run(main())


def cmd_scheduler(settings: Settings, args: argparse.Namespace) -> int:
    from bot.db import create_engine, create_session_factory
    from bot.migrate import is_up_to_date
    from scheduler.service import run_scheduler

    async def main() -> int:
        engine = create_engine(settings.database_url)
        try:
            if not await is_up_to_date(engine):
                return fail(
                    N_(
                        "The database is not set up or is out of date. "
                        "Run first: gridbot db upgrade"
                    )
                )
            await run_scheduler(
                engine=engine,
                sessions=create_session_factory(engine),
                clock=SystemClock(),
                settings=settings,
            )
        finally:
            await engine.dispose()
        return 0

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return 0


def cmd_db(settings: Settings, args: argparse.Namespace) -> int:
    from bot import migrate

    if args.action == "upgrade":
        migrate.upgrade(settings.database_url)
        print(gettext_for(cli_locale(), N_("The database is up to date.")))  # noqa: T201
        return 0

    async def current() -> str | None:
        from bot.db import create_engine

        engine = create_engine(settings.database_url)
        try:
            return await migrate.current_revision(engine)
        finally:
            await engine.dispose()

    print(asyncio.run(current()) or "-")  # noqa: T201
    return 0


def cmd_demo_data(settings: Settings, args: argparse.Namespace) -> int:
    from bot import migrate
    from bot.db import create_engine, create_session_factory
    from bot.services.demo import DemoDataExists, load_demo_data

    migrate.upgrade(settings.database_url)

    async def main() -> int:
        engine = create_engine(settings.database_url)
        try:
            async with create_session_factory(engine)() as session:
                summary = await load_demo_data(session, SystemClock().now(), seed=args.seed)
                await session.commit()
        except DemoDataExists:
            return fail(
                N_("The database already holds grids; demo data goes only into an empty one.")
            )
        finally:
            await engine.dispose()
        print(  # noqa: T201
            gettext_for(
                cli_locale(),
                N_(
                    "Demo community loaded: {grids} grids, {households} households, "
                    "{people} people."
                ),
                grids=summary.grids,
                households=summary.households,
                people=summary.people,
            )
        )
        return 0

    return asyncio.run(main())


def cmd_sandbox(settings: Settings, args: argparse.Namespace) -> int:
    from bot.clock import SystemClock
    from bot.sandbox.ratelimit import RateLimits
    from bot.trial import run_trial

    try:
        asyncio.run(
            run_trial(
                settings,
                SystemClock(),
                host=args.host,
                port=args.port,
                rate_limits=RateLimits.named(args.rate_limits),
            )
        )
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        return fail(
            N_("Cannot listen on {host}:{port} ({reason}). Try another port: --port 8090"),
            host=args.host,
            port=str(args.port),
            reason=exc.strerror or str(exc),
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gridbot",
        description="GridBot — community grid management (社区网格化管理) on Telegram.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug output")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the bot (polling unless --webhook)")
    run.add_argument("--webhook", action="store_true", help="serve a webhook instead of polling")
    run.add_argument(
        "--no-scheduler",
        action="store_true",
        help="do not run the scheduler here (run `gridbot scheduler` in one other process)",
    )
    run.set_defaults(handler=cmd_run)

    alone = commands.add_parser("scheduler", help="run only the scheduler (one leader acts)")
    alone.set_defaults(handler=cmd_scheduler)

    db = commands.add_parser("db", help="database migrations")
    db.add_argument("action", choices=["upgrade", "current"])
    db.set_defaults(handler=cmd_db)

    sandbox = commands.add_parser(
        "sandbox", help="try GridBot with no token: fake Telegram + bot + web chat page"
    )
    sandbox.add_argument("--host", default="127.0.0.1", help="address to listen on")
    sandbox.add_argument("--port", type=int, default=None, help="web page port (default 8080)")
    sandbox.add_argument(
        "--rate-limits",
        choices=["bucket", "sliding", "off"],
        default="bucket",
        help="Telegram's flood limits: 30/s as a token bucket (default), as a strict "
        "sliding one-second window, or off",
    )
    sandbox.set_defaults(handler=cmd_sandbox)

    demo = commands.add_parser("demo-data", help="load the sample community into an empty db")
    demo.add_argument("--seed", type=int, default=2026, help="random seed (default 2026)")
    demo.set_defaults(handler=cmd_demo_data)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        logging.getLogger("alembic").setLevel(logging.WARNING)
    settings = load_settings()
    if isinstance(settings, int):
        return settings
    if getattr(args, "port", 0) is None:
        args.port = settings.sandbox_port
    status: int = args.handler(settings, args)
    return status


if __name__ == "__main__":
    sys.exit(main())
