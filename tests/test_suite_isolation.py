"""The suite itself: it passes wherever it is run, and under CI it skips nothing it must run.

Two of these tests run pytest again in a child process, as a person or CI would, with the
environment and working directory under their control.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from bot.settings import Settings
from tests.conftest import MAX_IDENTIFIER, run_database_name, settings_variables

ROOT = Path(__file__).resolve().parent.parent

# What a person running the real bot may have exported: every value differs from the default,
# several would make a bare ``Settings()`` fail. Names are matched case-insensitively.
HOSTILE_ENVIRONMENT = {
    "BOT_TOKEN": "12345",
    "DATABASE_URL": "sqlite+aiosqlite:///elsewhere.db",
    "redis_url": "redis://127.0.0.1:1/9",
    "TELEGRAM_API_URL": "http://127.0.0.1:9",
    "Timezone": "Europe/Paris",
    "LIMITS__MAX_ATTEMPTS": "1",
    "WEBHOOK__PORT": "1",
    "FSM_IDLE_MINUTES": "1",
    "DATA_DIR": "/nonexistent",
}
# ... and what a ``.env`` in the directory the tests are run from may say.
HOSTILE_DOTENV = {
    "DATABASE_URL": "sqlite+aiosqlite:///from-dotenv.db",
    "DEFAULT_LOCALE": "en",
    "QUIET_HOURS__START": "03:00",
    "REPORTS__PER_HOUR": "1",
    "WEBHOOK__URL": "https://example.invalid/hook",
    "LIMITS__MESSAGES_PER_SECOND": "0.5",
    "SANDBOX_PORT": "1",
}


def write_dotenv(directory: Path) -> Path:
    path = directory / ".env"
    path.write_text("".join(f"{k}={v}\n" for k, v in HOSTILE_DOTENV.items()), encoding="utf-8")
    return path


def child_environment(**extra: str) -> dict[str, str]:
    """This process's environment without the test switches, this worktree importable first."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GRIDBOT_")}
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    return environment | extra


def run_pytest(cwd: Path, environment: dict[str, str], *tests: str) -> tuple[int, str]:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += ["--rootdir", str(ROOT), *(str(ROOT / test) for test in tests)]
    done = subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True)
    return done.returncode, done.stdout + done.stderr


def test_the_hostile_values_do_reach_settings_read_plainly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without the suite's isolation, both sources would change what the tests see."""
    from_file = Settings(_env_file=write_dotenv(tmp_path))  # type: ignore[call-arg]
    assert from_file.database_url == HOSTILE_DOTENV["DATABASE_URL"]
    assert from_file.default_locale == "en"
    for name, value in HOSTILE_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match="malformed bot token"):
        Settings()
    assert set(HOSTILE_ENVIRONMENT) <= set(settings_variables(os.environ))


def test_settings_tests_pass_with_hostile_environment_and_dotenv(tmp_path: Path) -> None:
    write_dotenv(tmp_path)
    status, output = run_pytest(
        tmp_path, child_environment(**HOSTILE_ENVIRONMENT), "tests/test_settings.py"
    )
    assert status == 0, output
    assert " passed" in output and "failed" not in output


def test_under_ci_a_missing_browser_database_or_redis_fails(tmp_path: Path) -> None:
    """With ``GRIDBOT_CI`` set, a test that would be skipped for want of Chromium (none on this
    PATH), PostgreSQL or Redis (their URLs unset) fails, saying why."""
    empty = tmp_path / "bin"
    empty.mkdir()
    status, output = run_pytest(
        tmp_path,
        child_environment(GRIDBOT_CI="1", PATH=str(empty)),
        "tests/e2e/test_browser.py::test_a_worker_talks_to_the_bot_in_the_web_page",
        "tests/test_sweep_concurrency.py",
        "tests/test_fsm_storage.py::test_redis_storage_is_shared_between_workers",
    )
    assert status == 1, output
    assert "3 errors" in output and "skipped" not in output, output
    for reason in (
        "no Chromium on PATH",
        "GRIDBOT_TEST_DATABASE_URL is not set",
        "GRIDBOT_TEST_REDIS_URL is not set",
    ):
        assert any(
            line.startswith(reason) and line.endswith("GRIDBOT_CI is set, so this test must run")
            for line in output.splitlines()
        ), output


@pytest.mark.parametrize(
    "database,expected_base",
    [
        ("wt_issue25", "wt_issue25"),
        ("test", "test"),
        (None, "gridbot"),
        ("", "gridbot"),
        ('x"; DROP DATABASE postgres; --', "x_drop_database_postgres"),
        ("网格通", "gridbot"),
        ("Grid-Bot Test", "grid_bot_test"),
        ("a" * 200, "a" * (MAX_IDENTIFIER - len("_run4194304_0f1e2d3c"))),
    ],
)
def test_each_run_names_a_database_of_its_own(database: str | None, expected_base: str) -> None:
    name = run_database_name(database, 4194304, "0f1e2d3c")
    assert name == f"{expected_base}_run4194304_0f1e2d3c"
    assert len(name.encode()) <= MAX_IDENTIFIER
    assert run_database_name(database, 4194304, "0f1e2d3d") != name
    assert run_database_name(database, 4194305, "0f1e2d3c") != name


@given(st.one_of(st.none(), st.text()), st.integers(1, 2**22), st.text())
def test_a_run_database_name_is_always_a_plain_postgresql_identifier(
    database: str | None, pid: int, suffix: str
) -> None:
    name = run_database_name(database, pid, suffix)
    assert re.fullmatch(r"[a-z0-9_]{1,63}", name)
    assert f"_run{pid}_" in name


def test_only_the_variables_settings_reads_are_taken_away() -> None:
    names = [
        "DATABASE_URL",
        "database_url",
        "WEBHOOK__SECRET",
        "Quiet_Hours__End",
        "GRIDBOT_TEST_DATABASE_URL",
        "GRIDBOT_CI",
        "PATH",
        "HOME",
        "DATABASE",
        "WEBHOOKS__PORT",
    ]
    assert settings_variables(names) == names[:4]
