"""``gridbot run``, ``scheduler``, ``db upgrade`` and ``db current`` with broken settings and
unreachable services: one translated line saying what to do, exit status 2, no traceback.

``main()`` runs in this process with its arguments; PostgreSQL is tried on 127.0.0.1 with a
database or role that does not exist, and an unreachable server is a closed loopback port.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from bot.__main__ import main
from bot.settings import Settings
from tests.fakes import TOKEN

COMMANDS = [["run"], ["scheduler"], ["db", "upgrade"], ["db", "current"]]
IDS = [" ".join(c) for c in COMMANDS]
PG_URL = os.environ.get("GRIDBOT_TEST_DATABASE_URL")


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> Iterator[CLI]:
    monkeypatch.chdir(tmp_path)
    # these tests read a .env as the command line does: only their own, in their folder
    monkeypatch.setitem(Settings.model_config, "env_file", ".env")
    yield CLI(monkeypatch, capsys, tmp_path)


class CLI:
    def __init__(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], home: Path
    ) -> None:
        self.monkeypatch, self.capsys, self.home = monkeypatch, capsys, home

    def __call__(self, argv: list[str], **env: str) -> str:
        """Run ``gridbot argv`` and return its one line of error output."""
        env.setdefault("BOT_TOKEN", TOKEN)
        env.setdefault("DEFAULT_LOCALE", "en")
        for key, value in env.items():
            self.monkeypatch.setenv(key, value)
        status = main(argv)
        out = self.capsys.readouterr()
        assert status == 2, (out.out, out.err)
        assert "Traceback" not in out.err
        assert out.err.count("\n") == 1 and out.err.endswith("\n"), out.err
        return out.err

    def sqlite(self, name: str) -> str:
        return f"sqlite+aiosqlite:///{self.home / name}"


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from bot import migrate

    path = tmp_path_factory.mktemp("startup") / "migrated.db"
    migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


# -- SQLite ------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", COMMANDS[:2] + COMMANDS[3:], ids=IDS[:2] + IDS[3:])
def test_a_missing_sqlite_file_is_not_created_but_named(cli: CLI, argv: list[str]) -> None:
    err = cli(argv, DATABASE_URL=cli.sqlite("nothing.db"))
    assert "There is no database file" in err and "gridbot db upgrade" in err
    assert not (cli.home / "nothing.db").exists()


@pytest.mark.parametrize("argv", COMMANDS, ids=IDS)
def test_a_junk_file_is_no_database(cli: CLI, argv: list[str]) -> None:
    (cli.home / "junk.db").write_bytes(b"PK\x03\x04 this is a zip, not a database" * 50)
    err = cli(argv, DATABASE_URL=cli.sqlite("junk.db"))
    assert "is not a GridBot database" in err and "junk.db" in err


@pytest.mark.parametrize("argv", COMMANDS, ids=IDS)
def test_a_file_in_a_missing_folder(cli: CLI, argv: list[str]) -> None:
    err = cli(argv, DATABASE_URL=cli.sqlite("no/such/folder/gridbot.db"))
    assert "does not exist" in err and "folder" in err
    assert not (cli.home / "no").exists()


@pytest.mark.parametrize("argv", COMMANDS, ids=IDS)
def test_a_locked_database_says_to_close_the_other_program(
    cli: CLI, argv: list[str], migrated: Path
) -> None:
    """Another program holds the lock for longer than the bot waits (10 s)."""
    path = cli.home / "locked.db"
    shutil.copy(migrated, path)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        err = cli(argv, DATABASE_URL=cli.sqlite("locked.db"))
    finally:
        holder.close()
    assert "is locked by another program" in err


# -- PostgreSQL --------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", COMMANDS, ids=IDS)
def test_postgresql_not_listening(cli: CLI, argv: list[str]) -> None:
    port = closed_port()
    err = cli(argv, DATABASE_URL=f"postgresql+asyncpg://gridbot@127.0.0.1:{port}/gridbot")
    assert f"Cannot reach PostgreSQL at 127.0.0.1:{port}" in err


def pg_server() -> tuple[str, int, str]:
    """Host, port and user of the test PostgreSQL (127.0.0.1 only)."""
    if not PG_URL:
        pytest.skip("GRIDBOT_TEST_DATABASE_URL is not set (PostgreSQL tests run in .ci/run)")
    url = make_url(PG_URL)
    if url.host not in ("127.0.0.1", "localhost"):
        pytest.skip("PostgreSQL start-up tests only run against a loopback server")
    return "127.0.0.1", url.port or 5432, url.username or "postgres"


@pytest.mark.parametrize("argv", COMMANDS, ids=IDS)
def test_postgresql_without_the_database(cli: CLI, argv: list[str]) -> None:
    host, port, user = pg_server()
    url = f"postgresql+asyncpg://{user}@{host}:{port}/gridbot_no_such_database"
    err = cli(argv, DATABASE_URL=url)
    assert "has no database gridbot_no_such_database" in err and "createdb" in err


@pytest.mark.parametrize("argv", COMMANDS, ids=IDS)
def test_postgresql_without_the_role(cli: CLI, argv: list[str]) -> None:
    host, port, _ = pg_server()
    url = f"postgresql+asyncpg://gridbot_no_such_role:secret@{host}:{port}/postgres"
    err = cli(argv, DATABASE_URL=url)
    assert "no role gridbot_no_such_role" in err or "refused the user" in err
    assert "secret" not in err


# -- settings and the Bot API ------------------------------------------------------------------


@pytest.mark.parametrize("argv", COMMANDS, ids=IDS)
def test_an_env_file_that_is_not_utf8(cli: CLI, argv: list[str]) -> None:
    (cli.home / ".env").write_bytes(b"TIMEZONE=Asia/Shanghai\nDATABASE_URL=\xb2\xe2\xca\xd4.db\n")
    err = cli(argv)
    assert ".env is not UTF-8" in err and "line 2" in err and "0xb2" in err


def test_an_unreachable_bot_api(cli: CLI, migrated: Path) -> None:
    port = closed_port()
    err = cli(
        ["run"],
        DATABASE_URL=f"sqlite+aiosqlite:///{migrated}",
        TELEGRAM_API_URL=f"http://127.0.0.1:{port}",
    )
    assert f"Cannot reach the Bot API at http://127.0.0.1:{port}" in err
    assert TOKEN not in err and TOKEN.split(":")[1] not in err


@pytest.mark.parametrize("address", ["not a url", "http://[::1", "ftp://127.0.0.1", "http://h:x"])
def test_an_invalid_bot_api_address(cli: CLI, migrated: Path, address: str) -> None:
    err = cli(["run"], DATABASE_URL=f"sqlite+aiosqlite:///{migrated}", TELEGRAM_API_URL=address)
    assert err.startswith("TELEGRAM_API_URL must be an http:// or https:// address")


def test_a_closed_redis_port_stops_the_start(cli: CLI, migrated: Path) -> None:
    port = closed_port()
    err = cli(
        ["run"],
        DATABASE_URL=f"sqlite+aiosqlite:///{migrated}",
        REDIS_URL=f"redis://:hunter2@127.0.0.1:{port}/0",
        TELEGRAM_API_URL=f"http://127.0.0.1:{closed_port()}",
    )
    assert f"Cannot reach Redis at 127.0.0.1:{port}" in err and "hunter2" not in err


def test_a_webhook_needs_its_address(cli: CLI, migrated: Path) -> None:
    err = cli(["run", "--webhook"], DATABASE_URL=f"sqlite+aiosqlite:///{migrated}")
    assert "WEBHOOK__URL" in err


def test_the_line_is_in_the_default_locale_from_the_settings(cli: CLI) -> None:
    (cli.home / ".env").write_text(f"DEFAULT_LOCALE=zh_Hant\nBOT_TOKEN={TOKEN}\n")
    cli.monkeypatch.delenv("DEFAULT_LOCALE", raising=False)
    status = main(["db", "current"])
    err = cli.capsys.readouterr().err
    assert status == 2 and "沒有資料庫檔案" in err, err
    (cli.home / ".env").unlink()
    status = main(["db", "current"])
    err = cli.capsys.readouterr().err
    assert status == 2 and "没有数据库文件" in err, err  # zh_Hans without a setting
