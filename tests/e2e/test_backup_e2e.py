"""Backup and restore around the real, running bot: a backup is taken while it serves people,
a restore is refused until it stops, and the restarted bot works on the restored data."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlmodel import col, func, select

from bot import backup
from bot.services.ticket_numbers import shown_number
from bot.startup import StartupProblem
from models import Ticket
from tests.e2e.harness import Harness, file_ticket_for


async def ticket_count(h: Harness) -> int:
    async with h.session() as session:
        return (await session.exec(select(func.count(col(Ticket.id))))).one()


async def test_restore_waits_for_the_bot_to_stop_and_the_bot_runs_on_what_it_restored(
    h: Harness, tmp_path: Path
) -> None:
    url = h.settings.database_url
    kept = [
        shown_number(await file_ticket_for(h, "resident", f"第{n}号路灯不亮了")) for n in range(3)
    ]
    copy = await asyncio.to_thread(
        backup.backup, url, tmp_path / "copy.sqlite3", h.clock.now(), h.settings.tz
    )
    lost = await file_ticket_for(h, "resident", "楼道堆放杂物")  # after the backup
    assert await ticket_count(h) == 4

    with pytest.raises(StartupProblem) as refused:
        await asyncio.to_thread(backup.restore, url, copy, h.clock.now())
    assert refused.value.message == backup.BOT_RUNNING
    assert refused.value.params["path"] == str(make_url(url).database)

    await h.stop_bot()
    restored = await asyncio.to_thread(backup.restore, url, copy, h.clock.now())
    assert restored.kept is not None
    await h.start_bot()
    assert await ticket_count(h) == 3
    resident = await h.persona("resident")
    await resident.send("/my")
    mine = await resident.next_message()
    assert all(number in mine.text for number in kept) and shown_number(lost) not in mine.text
