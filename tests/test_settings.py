"""Settings validation and the CLI's one-line answers to bad configuration."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.__main__ import main
from bot.settings import Settings
from tests.fakes import TOKEN


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_defaults_are_the_embedded_ones() -> None:
    s = settings()
    assert s.database_url == "sqlite+aiosqlite:///gridbot.db"
    assert s.redis_url is None
    assert s.timezone == "Asia/Shanghai"
    assert s.default_locale == "zh_Hans"
    assert s.bot_token is None


def test_the_suite_reads_no_setting_of_its_caller() -> None:
    """Neither the environment nor a ``.env`` of whoever runs the tests reaches them
    (tests/conftest.py; tests/test_suite_isolation.py runs this with hostile values in both)."""
    assert Settings().model_dump() == Settings.model_construct().model_dump()


@pytest.mark.parametrize(
    "token",
    [
        "abc",
        "123:short",
        "123456:" + "a" * 35 + " extra",
        "not-a-token:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(ValidationError):
        settings(bot_token=token)


def test_a_real_shaped_token_is_kept_secret() -> None:
    s = settings(bot_token=f"  {TOKEN}  ")
    assert s.bot_token is not None
    assert s.bot_token.get_secret_value() == TOKEN
    assert TOKEN not in repr(s)


@pytest.mark.parametrize(
    "field,value",
    [
        ("database_url", "mysql://root@localhost/db"),
        ("database_url", "gridbot.db"),
        ("redis_url", "http://localhost:6379"),
        ("timezone", "Mars/Olympus"),
        ("default_locale", "fr"),
    ],
)
def test_bad_values_are_refused(field: str, value: str) -> None:
    with pytest.raises(ValidationError):
        settings(**{field: value})


def test_nested_sections_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK__PORT", "9000")
    monkeypatch.setenv("QUIET_HOURS__START", "22:00")
    s = settings()
    assert s.webhook.port == 9000
    assert s.quiet_hours.start.hour == 22


def run_cli(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: object,
    argv: list[str],
    **env: str,
) -> tuple[int, str]:
    monkeypatch.chdir(str(tmp_path))
    for key in ("BOT_TOKEN", "DATABASE_URL", "DEFAULT_LOCALE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    status = main(argv)
    return status, capsys.readouterr().err


def test_run_without_token_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    status, err = run_cli(monkeypatch, capsys, tmp_path, ["run"], DEFAULT_LOCALE="en")
    assert status == 2
    assert err.count("\n") == 1
    assert "BOT_TOKEN" in err and "gridbot sandbox" in err
    assert "Traceback" not in err


def test_run_with_malformed_token_says_so_in_chinese(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    status, err = run_cli(monkeypatch, capsys, tmp_path, ["run"], BOT_TOKEN="12345")
    assert status == 2
    assert err.count("\n") == 1
    assert "@BotFather" in err and "令牌" in err


def test_run_refuses_an_unmigrated_database(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    status, err = run_cli(
        monkeypatch, capsys, tmp_path, ["run"], BOT_TOKEN=TOKEN, DEFAULT_LOCALE="en"
    )
    assert status == 2
    assert "gridbot db upgrade" in err


def test_bad_database_url_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    status, err = run_cli(
        monkeypatch,
        capsys,
        tmp_path,
        ["db", "upgrade"],
        DATABASE_URL="mysql://x",
        DEFAULT_LOCALE="en",
    )
    assert status == 2
    assert err.startswith("DATABASE_URL is not supported")
