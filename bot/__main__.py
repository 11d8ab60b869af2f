"""The ``gridbot`` command line: run, db, demo-data, sandbox, backup and moving the data."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import ValidationError

from bot.clock import SystemClock
from bot.i18n import N_, gettext_for
from bot.logs import configure_logging
from bot.settings import LOCALES, Settings
from bot.startup import BAD_DATABASE_URL, StartupProblem

log = logging.getLogger("gridbot")

SETTING_HINTS: dict[str, str] = {
    "bot_token": N_(
        "The bot token is malformed. Copy it exactly as @BotFather gave it "
        "(digits, a colon, then about 35 letters) into BOT_TOKEN in .env."
    ),
    "database_url": BAD_DATABASE_URL,
    "telegram_api_url": N_(
        "TELEGRAM_API_URL must be an http:// or https:// address, such as "
        "http://127.0.0.1:8081 (or leave it out to use Telegram's own)."
    ),
    "redis_url": N_("REDIS_URL must start with redis:// or rediss://."),
    "timezone": N_("TIMEZONE is not a known time zone; use a name such as Asia/Shanghai."),
    "default_locale": N_("DEFAULT_LOCALE must be one of zh_Hans, zh_Hant, en."),
}


MAX_WORKERS = 64
WORKERS_RANGE = N_("--workers must be a number from 1 to {most}.")
WORKERS_NEED_WEBHOOK = N_(
    "--workers needs --webhook: Telegram hands a bot's updates to one poller only."
)
WORKERS_NEED_SERVERS = N_(
    "--workers needs PostgreSQL and Redis (DATABASE_URL=postgresql+asyncpg://…, "
    "REDIS_URL=redis://…): the workers share conversations and the sending pace through them. "
    "On SQLite run one process."
)
WORKERS_NEED_PORT = N_("--workers needs a fixed WEBHOOK__PORT (not 0): the workers share it.")


def cli_locale() -> str:
    wanted = os.environ.get("DEFAULT_LOCALE", "zh_Hans")
    return wanted if wanted in LOCALES else "zh_Hans"


def fail(message: str, locale: str | None = None, **params: str) -> int:
    """Print one translated, actionable line and return the exit status (in ``locale``, or
    before the settings are read in ``DEFAULT_LOCALE`` from the environment)."""
    print(gettext_for(locale or cli_locale(), message, **params), file=sys.stderr)  # noqa: T201
    return 2


def load_settings() -> Settings | int:
    try:
        return Settings()
    except UnicodeDecodeError as exc:  # .env is read as UTF-8
        return fail(
            N_(
                ".env is not UTF-8 text: line {line} holds the byte {byte}. Save the file as "
                "UTF-8 and try again."
            ),
            line=str(exc.object[: exc.start].count(b"\n") + 1),
            byte=f"0x{exc.object[exc.start]:02x}",
        )
    except OSError as exc:  # .env is a folder, or cannot be read
        return fail(N_("Cannot read .env ({reason})."), reason=exc.strerror or str(exc))
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        hint = SETTING_HINTS.get(field)
        if hint is None:
            return fail(N_("A setting is invalid: {field}. Check your .env file."), field=field)
        return fail(hint)


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    if settings.bot_token is None:
        raise StartupProblem(
            N_(
                "No bot token: set BOT_TOKEN in .env (ask @BotFather for one), "
                "or try GridBot without a token: gridbot sandbox"
            )
        )
    from bot import startup

    if args.webhook and not settings.webhook.url:
        raise StartupProblem(startup.WEBHOOK_NEEDS_URL)
    if args.workers != 1:
        return run_workers(settings, args)
    startup.check_sqlite_file(settings.database_url)
    from bot.app import build_app, close, run_polling, run_webhook
    from bot.db import create_engine

    async def main() -> int:
        engine = create_engine(settings.database_url)
        try:
            await startup.check_database(engine, settings.database_url)
            await startup.check_people_key(engine, settings)
            if settings.redis_url:
                await startup.check_redis(settings.redis_url)
        except StartupProblem:
            await engine.dispose()
            raise
        app = build_app(settings, SystemClock(), engine=engine)
        try:
            await startup.check_telegram(app.bot, settings)
            if args.webhook:
                await run_webhook(
                    app, scheduler=not args.no_scheduler, worker=args.worker, stop=stopped()
                )
            else:
                await run_polling(app, scheduler=not args.no_scheduler)
        finally:
            await close(app)
        return 0

    return asyncio.run(main())


def stopped() -> asyncio.Event:
    """Set on SIGTERM or SIGINT: a webhook process stops cleanly on either (what it handles
    is answered, what its outbox sender has on the wire is recorded)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


def run_workers(settings: Settings, args: argparse.Namespace) -> int:
    """``gridbot run --webhook --workers N``: N webhook processes sharing the port
    (:mod:`bot.workers`), on PostgreSQL and Redis."""
    from bot.workers import KEEP_DYING, RESTART_WINDOW, Supervisor, port_answers, worker_command

    if not 1 <= args.workers <= MAX_WORKERS:
        raise StartupProblem(WORKERS_RANGE, most=str(MAX_WORKERS))
    if not args.webhook:
        raise StartupProblem(WORKERS_NEED_WEBHOOK)
    from sqlalchemy.engine import make_url

    postgresql = make_url(settings.database_url).get_backend_name() == "postgresql"
    if not postgresql or not settings.redis_url:
        raise StartupProblem(WORKERS_NEED_SERVERS)
    if settings.webhook.port == 0:
        raise StartupProblem(WORKERS_NEED_PORT)
    supervisor = Supervisor(
        args.workers,
        lambda n: worker_command(n, scheduler=not args.no_scheduler, verbose=args.verbose),
        port_answers(settings.webhook.host, settings.webhook.port),
    )
    status = asyncio.run(supervisor.run())
    if supervisor.given_up is not None:
        return fail(
            KEEP_DYING,
            settings.default_locale,
            deaths=str(supervisor.given_up),
            seconds=str(int(RESTART_WINDOW)),
        )
    return status


def cmd_scheduler(settings: Settings, args: argparse.Namespace) -> int:
    from bot import startup

    startup.check_sqlite_file(settings.database_url)
    from bot.backup import database_in_use
    from bot.db import create_engine, create_session_factory
    from scheduler.service import build_scheduler

    async def main() -> int:
        engine = create_engine(settings.database_url)
        try:
            await startup.check_database(engine, settings.database_url)
            await startup.check_people_key(engine, settings)
            with database_in_use(settings.database_url):
                await build_scheduler(
                    engine=engine,
                    sessions=create_session_factory(engine),
                    clock=SystemClock(),
                    settings=settings,
                ).run()
        finally:
            await engine.dispose()
        return 0

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return 0


def upgrade_database(settings: Settings) -> None:
    """Migrate the database to head, or raise :class:`StartupProblem` saying why not."""
    from alembic.util import CommandError

    from bot import migrate, startup

    startup.check_sqlite_file(settings.database_url, may_create=True)
    try:
        migrate.upgrade(settings.database_url)
    except startup.DATABASE_ERRORS as error:
        raise startup.explain_database_error(error, settings.database_url) from None
    except CommandError as error:  # a revision this version does not know: a newer one's
        reason = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        raise StartupProblem(startup.NEWER_DATABASE, reason=reason) from None


def cmd_db(settings: Settings, args: argparse.Namespace) -> int:
    from bot import migrate, startup

    if args.action == "upgrade":
        upgrade_database(settings)
        print(gettext_for(settings.default_locale, N_("The database is up to date.")))  # noqa: T201
        return 0

    startup.check_sqlite_file(settings.database_url)

    async def current() -> str | None:
        from bot.db import create_engine

        engine = create_engine(settings.database_url)
        try:
            return await migrate.current_revision(engine)
        except startup.DATABASE_ERRORS as error:
            raise startup.explain_database_error(error, settings.database_url) from None
        finally:
            await engine.dispose()

    print(asyncio.run(current()) or "-")  # noqa: T201
    return 0


def cmd_demo_data(settings: Settings, args: argparse.Namespace) -> int:
    from bot.db import create_engine, create_session_factory
    from bot.services import members
    from bot.services.demo import DemoDataExists, load_demo_data

    upgrade_database(settings)

    async def main() -> int:
        engine = create_engine(settings.database_url)
        try:
            async with create_session_factory(engine)() as session:
                summary = await load_demo_data(
                    session,
                    SystemClock().now(),
                    seed=args.seed,
                    vault=members.optional_vault(settings.people),
                )
                await session.commit()
        except DemoDataExists:
            raise StartupProblem(
                N_("The database already holds grids; demo data goes only into an empty one.")
            ) from None
        finally:
            await engine.dispose()
        print(  # noqa: T201
            gettext_for(
                settings.default_locale,
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
        raise StartupProblem(
            N_("Cannot listen on {host}:{port} ({reason}). Try another port: --port 8090"),
            host=args.host,
            port=str(args.port),
            reason=exc.strerror or str(exc),
        ) from None
    return 0


def cmd_people_key(settings: Settings, args: argparse.Namespace) -> int:
    """``gridbot people-key new``: a fresh key; ``rotate``: every stored ID number sealed
    again with PEOPLE__KEY, read with it or PEOPLE__OLD_KEYS (docs/people.md)."""
    from bot.services.id_numbers import WrongKey, new_key

    if args.action == "new":
        print(new_key())  # noqa: T201
        return 0
    from bot import startup
    from bot.db import create_engine, create_session_factory
    from bot.errors import InvalidInput
    from bot.services import members

    startup.check_sqlite_file(settings.database_url)
    try:
        vault = members.vault_of(settings.people)
    except InvalidInput as problem:
        raise StartupProblem(problem.message) from None

    async def main() -> int:
        engine = create_engine(settings.database_url)
        last = 0
        try:
            await startup.check_database(engine, settings.database_url)
            sessions = create_session_factory(engine)
            while True:
                async with sessions() as session:
                    reached = await members.reseal_batch(session, vault, after_id=last)
                    await session.commit()
                if reached == last:
                    break
                last = reached
        except WrongKey:
            raise StartupProblem(startup.PEOPLE_KEY_WRONG) from None
        finally:
            await engine.dispose()
        say(settings, N_("ID numbers sealed again with the new key. Now remove PEOPLE__OLD_KEYS."))
        return 0

    return asyncio.run(main())


def say(settings: Settings, message: str, **params: str) -> None:
    print(gettext_for(settings.default_locale, message, **params))  # noqa: T201


def cmd_backup(settings: Settings, args: argparse.Namespace) -> int:
    from bot import backup

    written = backup.backup(settings.database_url, args.path, SystemClock().now(), settings.tz)
    say(settings, backup.BACKUP_WRITTEN, path=str(written))
    return 0


def cmd_restore(settings: Settings, args: argparse.Namespace) -> int:
    from bot import backup

    done = backup.restore(settings.database_url, args.path, SystemClock().now())
    say(settings, backup.RESTORED, backup=str(args.path), path=str(done.database))
    if done.kept is not None:
        say(settings, backup.KEPT, kept=str(done.kept))
    if done.older:
        say(settings, backup.RESTORED_OLDER)
    return 0


def cmd_export_all(settings: Settings, args: argparse.Namespace) -> int:
    from bot import moving

    done = moving.export_all(settings.database_url, args.path)
    say(
        settings,
        moving.EXPORTED,
        rows=str(done.rows),
        tables=str(done.tables),
        path=str(args.path),
    )
    return 0


def cmd_import_all(settings: Settings, args: argparse.Namespace) -> int:
    from bot import moving

    done = moving.import_all(settings.database_url, args.path)
    say(
        settings,
        moving.IMPORTED,
        rows=str(done.rows),
        tables=str(done.tables),
        path=str(args.path),
    )
    return 0


# backup, restore, export-all, import-all (bot/backup.py, bot/moving.py): each takes a PATH
DATA_COMMANDS: tuple[tuple[str, Callable[[Settings, argparse.Namespace], int], str], ...] = (
    (
        "backup",
        cmd_backup,
        "copy the SQLite database to PATH (a file, or a folder) while the bot runs; on "
        "PostgreSQL, print the pg_dump command",
    ),
    (
        "restore",
        cmd_restore,
        "replace the SQLite database with the backup at PATH (the bot must be stopped)",
    ),
    (
        "export-all",
        cmd_export_all,
        "write every table to PATH (a zip of JSON lines), to move a community to another database",
    ),
    (
        "import-all",
        cmd_import_all,
        "load an export-all file into an empty, migrated database (run gridbot db upgrade first)",
    ),
)


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
    run.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="with --webhook: N processes serving the webhook's port (SO_REUSEPORT, Linux), "
        "restarted when they die; needs PostgreSQL and Redis (docs/deploy.md)",
    )
    run.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)  # bot.workers
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

    keys = commands.add_parser(
        "people-key", help="the key of resident ID numbers: make a new one, or rotate to it"
    )
    keys.add_argument("action", choices=["new", "rotate"])
    keys.set_defaults(handler=cmd_people_key)

    demo = commands.add_parser("demo-data", help="load the sample community into an empty db")
    demo.add_argument("--seed", type=int, default=2026, help="random seed (default 2026)")
    demo.set_defaults(handler=cmd_demo_data)
    for name, handler, help_text in DATA_COMMANDS:
        data = commands.add_parser(name, help=help_text)
        data.add_argument("path", type=Path)
        data.set_defaults(handler=handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = load_settings()
    if isinstance(settings, int):
        return settings
    configure_logging(
        level=logging.DEBUG if args.verbose else logging.INFO, fmt=settings.log_format
    )
    if not args.verbose:
        logging.getLogger("alembic").setLevel(logging.WARNING)
    if getattr(args, "port", 0) is None:
        args.port = settings.sandbox_port
    try:
        status: int = args.handler(settings, args)
    except StartupProblem as problem:
        return fail(problem.message, settings.default_locale, **problem.params)
    return status


if __name__ == "__main__":
    sys.exit(main())
