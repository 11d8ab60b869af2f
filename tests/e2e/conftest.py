"""End-to-end fixtures: a fresh migrated SQLite database and the harness per test."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.clock import FrozenClock
from tests.e2e.harness import Harness, harness

# scripts/compare_scenarios.py: each test's rows to a file (tests/e2e/scenario_dump.py)
if os.environ.get("GRIDBOT_TEST_E2E_DUMP"):
    from tests.e2e.scenario_dump import scenario_dump  # noqa: F401  (an autouse fixture)


@pytest.fixture
def e2e_database_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "e2e.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
async def h(e2e_database_url: str, clock: FrozenClock) -> AsyncIterator[Harness]:
    """The bot, polling the sandbox, on the demo community."""
    async with harness(e2e_database_url, clock) as running:
        yield running


@pytest.fixture
async def h_webhook(e2e_database_url: str, clock: FrozenClock) -> AsyncIterator[Harness]:
    """The same, with the sandbox delivering updates to the bot's webhook."""
    async with harness(e2e_database_url, clock, mode="webhook") as running:
        yield running
