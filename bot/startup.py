"""What ``gridbot`` checks before it starts, and the one line it says when a check fails.

A broken setting or an unreachable service ends the command with one translated line saying
what to do (exit status 2), never a traceback: the database (an SQLite file that is missing,
locked, not a database or in a missing folder; PostgreSQL refusing, unreachable, or missing
the database or role), Redis, and the Bot API server. Each check raises
:class:`StartupProblem`; the command line prints it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from bot.i18n import N_

if TYPE_CHECKING:
    from aiogram import Bot
    from sqlalchemy.ext.asyncio import AsyncEngine

    from bot.settings import Settings

LOCK_WAIT_SECONDS = 10.0  # as long as the bot waits for SQLite's write lock (bot.db)
CONNECT_TIMEOUT_SECONDS = 10.0  # Redis and the Bot API, at start

BAD_DATABASE_URL = N_(
    "DATABASE_URL is not supported. Use sqlite+aiosqlite:///gridbot.db or "
    "postgresql+asyncpg://user:password@host/dbname."
)
NOT_UP_TO_DATE = N_("The database is not set up or is out of date. Run first: gridbot db upgrade")
NO_DATABASE_FILE = N_(
    "There is no database file {path}. Create it with: gridbot db upgrade "
    "(or set DATABASE_URL to the file you meant)."
)
NO_FOLDER = N_(
    "The folder {folder} of the database file does not exist. Create it, or set DATABASE_URL "
    "to a file in an existing folder."
)
LOCKED = N_(
    "The database {path} is locked by another program (another gridbot, or a tool that has "
    "it open). Close that program, then try again."
)
NOT_A_DATABASE = N_(
    "{path} is not a GridBot database (it holds something else, or is damaged). Set "
    "DATABASE_URL to the right file, or move this one away and run: gridbot db upgrade"
)
CANNOT_OPEN = N_(
    "Cannot open the database file {path} ({reason}). Check that the file and its folder can "
    "be read and written by this user."
)
PG_UNREACHABLE = N_(
    "Cannot reach PostgreSQL at {host}:{port} ({reason}). Start it, or correct the host and "
    "port in DATABASE_URL."
)
PG_NO_DATABASE = N_(
    "PostgreSQL at {host}:{port} has no database {database}. Create it (createdb {database}), "
    "or correct the name in DATABASE_URL."
)
PG_NO_ROLE = N_(
    "PostgreSQL at {host}:{port} has no role {user}. Create it (createuser {user}), or "
    "correct the user in DATABASE_URL."
)
PG_REFUSED = N_(
    "PostgreSQL at {host}:{port} refused the user {user} ({reason}). Check the user and "
    "password in DATABASE_URL and the server's pg_hba.conf."
)
DATABASE_FAILED = N_("Cannot use the database ({reason}). Check DATABASE_URL.")
NEWER_DATABASE = N_(
    "The database was upgraded by a newer GridBot ({reason}). Run that version, or restore "
    "the backup taken before the upgrade."
)
REDIS_UNREACHABLE = N_(
    "Cannot reach Redis at {address} ({reason}). Start it, correct REDIS_URL, or remove "
    "REDIS_URL to keep conversations in the database."
)
TELEGRAM_UNREACHABLE = N_(
    "Cannot reach the Bot API at {url} ({reason}). Check the network (or proxy), or "
    "TELEGRAM_API_URL if you set it."
)
TELEGRAM_REFUSED_TOKEN = N_(
    "The Bot API at {url} refused the bot token. Copy it again from @BotFather into BOT_TOKEN."
)
TELEGRAM_FAILED = N_(
    "The Bot API at {url} answered with an error ({reason}). Check TELEGRAM_API_URL and BOT_TOKEN."
)
WEBHOOK_NEEDS_URL = N_(
    "gridbot run --webhook needs WEBHOOK__URL: the public https:// address Telegram sends "
    "updates to (for example https://bot.example.org/telegram/webhook)."
)
PEOPLE_KEY_MISSING = N_(
    "The database holds resident ID numbers but PEOPLE__KEY is not set. Set it to the key "
    "they were stored with (see docs/people.md); without it no ID number can be read or found."
)
PEOPLE_KEY_BAD = N_(
    "PEOPLE__KEY is not a key: it must be 32 bytes in url-safe base64. Make one with: "
    "gridbot people-key new"
)
PEOPLE_KEY_WRONG = N_(
    "PEOPLE__KEY does not open the resident ID numbers in the database: they were stored "
    "with another key. Set the key they were stored with (see docs/people.md)."
)


class StartupProblem(Exception):
    """A start-up failure the operator can fix: ``message`` is a catalog msgid, filled with
    ``params``."""

    def __init__(self, message: str, **params: str) -> None:
        super().__init__(message.format(**params) if params else message)
        self.message = message
        self.params = params


def _reason(error: BaseException) -> str:
    """The first line of what a driver said, short enough for one line."""
    text = str(error).strip().splitlines()
    first = text[0] if text else type(error).__name__
    return first[:200]


# -- the database --------------------------------------------------------------------------------


def sqlite_file(database_url: str) -> Path | None:
    """The file an SQLite URL names (``None``: not SQLite, in memory, or a URI we leave be)."""
    try:
        url = make_url(database_url)
    except ArgumentError:
        raise StartupProblem(BAD_DATABASE_URL) from None
    if url.get_backend_name() != "sqlite":
        return None
    name = url.database or ""
    if name in ("", ":memory:") or name.startswith("file:") or url.query.get("uri"):
        return None
    return Path(name).expanduser().resolve()


def check_sqlite_file(database_url: str, *, may_create: bool = False) -> None:
    """An SQLite database file is there (or, with ``may_create``, its folder is), is a
    database, and its write lock can be taken within the bot's own wait.

    Plain :mod:`sqlite3`, before any engine: a file that is no database never reaches the
    driver's thread, and nothing is created by looking.
    """
    path = sqlite_file(database_url)
    if path is None:
        return
    if not path.parent.is_dir():
        raise StartupProblem(NO_FOLDER, folder=str(path.parent))
    if not path.exists():
        if may_create:
            return
        raise StartupProblem(NO_DATABASE_FILE, path=str(path))
    try:
        connection = sqlite3.connect(
            f"{path.as_uri()}?mode=rw", uri=True, timeout=LOCK_WAIT_SECONDS
        )
    except sqlite3.Error as error:
        raise StartupProblem(CANNOT_OPEN, path=str(path), reason=_reason(error)) from None
    try:
        connection.execute("PRAGMA schema_version").fetchone()  # reads the header
        connection.execute("BEGIN IMMEDIATE")  # the write lock, as every update takes it
        connection.execute("ROLLBACK")
    except sqlite3.Error as error:
        raise _sqlite_problem(error, path) from None
    finally:
        connection.close()


def _sqlite_problem(error: BaseException, path: Path) -> StartupProblem:
    text = str(error).lower()
    if "locked" in text or "busy" in text:
        return StartupProblem(LOCKED, path=str(path))
    if "not a database" in text or "malformed" in text or "encrypted" in text:
        return StartupProblem(NOT_A_DATABASE, path=str(path))
    if "unable to open" in text and not path.parent.is_dir():
        return StartupProblem(NO_FOLDER, folder=str(path.parent))
    return StartupProblem(CANNOT_OPEN, path=str(path), reason=_reason(error))


DATABASE_ERRORS: tuple[type[BaseException], ...] = (DBAPIError, OSError, TimeoutError)
"""What connecting to a database raises: the driver's errors (as SQLAlchemy wraps them), and
the socket's own when PostgreSQL cannot be reached."""


def explain_database_error(error: BaseException, database_url: str) -> StartupProblem:
    """One line for an error met while connecting to or migrating the database."""
    url = make_url(database_url)
    cause = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    path = sqlite_file(database_url)
    if path is not None:
        return _sqlite_problem(cause, path)
    where = {"host": url.host or "localhost", "port": str(url.port or 5432)}
    if url.get_backend_name() == "postgresql":
        state = getattr(cause, "sqlstate", None)
        if state == "3D000":  # invalid_catalog_name
            return StartupProblem(PG_NO_DATABASE, database=url.database or "", **where)
        if state == "28000" and "does not exist" in str(cause):  # invalid_authorization_spec
            return StartupProblem(PG_NO_ROLE, user=url.username or "", **where)
        if state in {"28000", "28P01"}:  # no pg_hba entry, wrong password
            return StartupProblem(
                PG_REFUSED, user=url.username or "", reason=_reason(cause), **where
            )
        if isinstance(cause, OSError | TimeoutError):
            reason = "timed out" if isinstance(cause, TimeoutError) else _reason(cause)
            return StartupProblem(PG_UNREACHABLE, reason=reason, **where)
    return StartupProblem(DATABASE_FAILED, reason=_reason(cause))


async def check_database(engine: AsyncEngine, database_url: str) -> None:
    """The database answers and is migrated to this version's head."""
    from bot import migrate

    try:
        up_to_date = await migrate.is_up_to_date(engine)
    except DATABASE_ERRORS as error:
        raise explain_database_error(error, database_url) from None
    if not up_to_date:
        raise StartupProblem(NOT_UP_TO_DATE)


async def check_people_key(engine: AsyncEngine, settings: Settings) -> None:
    """``PEOPLE__KEY`` is a key, and the one the stored ID numbers were sealed with; required
    as soon as one is stored."""
    from sqlalchemy import text

    from bot.services.id_numbers import BadKey, WrongKey, vault_for

    async with engine.connect() as connection:
        sealed = (
            await connection.execute(
                text("SELECT id_cipher FROM household_member WHERE id_cipher IS NOT NULL LIMIT 1")
            )
        ).scalar_one_or_none()
    key = settings.people.key
    if key is None:
        if sealed is not None:
            raise StartupProblem(PEOPLE_KEY_MISSING)
        return
    try:
        vault = vault_for(key.get_secret_value(), settings.people.older_keys)
    except BadKey:
        raise StartupProblem(PEOPLE_KEY_BAD) from None
    if sealed is not None:
        try:
            vault.open(str(sealed))
        except WrongKey:
            raise StartupProblem(PEOPLE_KEY_WRONG) from None


# -- Redis and the Bot API ---------------------------------------------------------------------


async def check_redis(redis_url: str) -> None:
    """Redis answers a PING (the conversations' store when ``REDIS_URL`` is set)."""
    from redis.asyncio import Redis
    from redis.exceptions import RedisError

    client = Redis.from_url(
        redis_url,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_timeout=CONNECT_TIMEOUT_SECONDS,
    )
    try:
        await client.ping()
    except (RedisError, OSError) as error:
        raise StartupProblem(
            REDIS_UNREACHABLE, address=_redis_address(redis_url), reason=_reason(error)
        ) from None
    finally:
        await client.aclose()


def _redis_address(redis_url: str) -> str:
    """Where Redis is, without a password."""
    from urllib.parse import urlsplit

    parts = urlsplit(redis_url)
    if parts.scheme == "unix":
        return parts.path
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"


async def check_telegram(bot: Bot, settings: Settings) -> None:
    """The Bot API answers ``getMe`` with this token."""
    from aiogram.exceptions import (
        TelegramAPIError,
        TelegramNetworkError,
        TelegramUnauthorizedError,
    )

    url = settings.telegram_api_url or "https://api.telegram.org"
    token = bot.token
    try:
        await bot.get_me(request_timeout=int(CONNECT_TIMEOUT_SECONDS))
    except TelegramUnauthorizedError:
        raise StartupProblem(TELEGRAM_REFUSED_TOKEN, url=url) from None
    except TelegramNetworkError as error:
        reason = _reason(error).removeprefix("HTTP Client says - ").replace(token, "…")
        raise StartupProblem(TELEGRAM_UNREACHABLE, url=url, reason=reason) from None
    except TelegramAPIError as error:
        reason = _reason(error).replace(token, "…")
        raise StartupProblem(TELEGRAM_FAILED, url=url, reason=reason) from None
