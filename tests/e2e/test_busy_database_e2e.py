"""An update that meets a busy database (SQLite's write lock held by someone else's long work)
is rolled back whole and handled again: its person gets the reply, once, and no error."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from bot.services import people
from bot.telegram import middlewares
from tests.e2e.harness import Harness

pytestmark = pytest.mark.e2e


def failing_first(
    monkeypatch: pytest.MonkeyPatch, times: int, message: str = "database is locked"
) -> list[int]:
    """Make the person lookup of the next ``times`` updates fail as a busy SQLite would."""
    calls: list[int] = []
    real = people.get_or_create_with_roles

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) <= times:
            raise OperationalError("SELECT …", {}, sqlite3.OperationalError(message))
        return await real(*args, **kwargs)

    monkeypatch.setattr(people, "get_or_create_with_roles", flaky)
    monkeypatch.setattr(middlewares, "BUSY_PAUSE", 0.01)
    return calls


async def test_a_busy_database_is_waited_out(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    resident = await h.persona("resident")
    calls = failing_first(monkeypatch, times=2)
    await resident.send("/help")
    answer = await resident.next_message()
    assert "出了点问题" not in answer.text and "/report" in answer.text
    await h.settle()
    assert len(calls) == 3
    transcript = await resident.transcript()
    assert sum(1 for m in transcript.messages if m.from_bot) == 1  # the reply, once


async def test_a_database_that_stays_busy_gets_the_apology(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    resident = await h.persona("resident")
    calls = failing_first(monkeypatch, times=10)
    await resident.send("/help")
    assert "出了点问题" in (await resident.next_message()).text
    assert len(calls) == middlewares.BUSY_ATTEMPTS


async def test_other_database_errors_are_not_retried(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    resident = await h.persona("resident")
    calls = failing_first(monkeypatch, times=10, message="no such table: person")
    await resident.send("/help")
    assert "出了点问题" in (await resident.next_message()).text
    assert len(calls) == 1
