"""Long work never makes anyone else's update fail (issue: "one slow update locks the
database"): an admin's export of a large ledger and an import of a heavy workbook run while
twenty residents write to the bot; every resident gets the right reply.

The bench (``bench/load.py``) runs the same at full size (300,000 households); here the sizes
are smaller so the suite stays quick, and the mechanism is the same: the export reads in a
read-only session and builds the workbook in a thread, the import parses before it takes the
write lock, and neither holds the update's transaction. It runs on SQLite and on PostgreSQL
(a database of its own on the suite's server, dropped at the end).
"""

from __future__ import annotations

import asyncio
import io
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import insert
from sqlalchemy.engine import make_url
from sqlmodel import select

from bot import migrate
from bot.clock import FrozenClock
from models import Grid, Household
from tests.conftest import _on_server, run_database_name
from tests.e2e.harness import Harness, harness

pytestmark = pytest.mark.e2e

HOUSEHOLDS = 30_000
IMPORT_ROWS = 20_000
RESIDENTS = 20


@pytest.fixture(params=["sqlite", "postgresql"])
def long_work_url(
    request: pytest.FixtureRequest, sqlite_template: Path, tmp_path: Path
) -> Iterator[str]:
    """A fresh migrated database: a copy of the SQLite template, or a PostgreSQL database of
    this test's own (the demo community goes in empty tables), dropped at the end."""
    if request.param == "sqlite":
        path = tmp_path / "e2e.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    server = make_url(str(request.getfixturevalue("pg_url")))
    name = run_database_name(server.database, os.getpid(), "lw" + secrets.token_hex(3))
    asyncio.run(_on_server(server, f'CREATE DATABASE "{name}"'))
    try:
        url = server.set(database=name).render_as_string(hide_password=False)
        migrate.upgrade(url)
        yield url
    finally:
        asyncio.run(_on_server(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def h(long_work_url: str, clock: FrozenClock) -> AsyncIterator[Harness]:
    """The bot, polling the sandbox, on the demo community in that database (in this module,
    in place of the SQLite-only ``h`` of the e2e fixtures)."""
    async with harness(long_work_url, clock) as running:
        yield running


async def many_households(h: Harness) -> None:
    async with h.session() as session:
        grids = (await session.exec(select(Grid.id).where(Grid.tier == 3))).all()
        now = h.clock.now()
        rows = [
            {
                "code": f"L{n:07d}",
                "grid_id": grids[n % len(grids)],
                "address": f"长街{n}号",
                "head_name": f"住户{n}",
                "phone": f"+86139{n:08d}",
                "members": 1 + n % 5,
                "categories": 0,
                "is_key": False,
                "is_business": False,
                "created_at": now,
                "updated_at": now,
            }
            for n in range(HOUSEHOLDS)
        ]
        await session.exec(insert(Household), params=rows)  # type: ignore[call-overload]
        await session.commit()


def heavy_workbook() -> bytes:
    """A sheet of long rows that are all wrong: slow to read and check, imports nothing."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(["户编号", "网格编码", "户主姓名", "联系电话", "地址", "家庭人口"])
    for n in range(IMPORT_ROWS):
        sheet.append([f"X{n}", "nowhere", "某" * 40, "12345", "地" * 150, "many"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def test_an_export_and_an_import_never_hold_up_twenty_residents(h: Harness) -> None:
    await many_households(h)
    admin = await h.persona("admin")
    residents = [await h.newcomer(f"居民{n}") for n in range(RESIDENTS)]

    await admin.send("/export households")
    await admin.send_document(heavy_workbook(), filename="住户.xlsx")
    answers = await asyncio.gather(*(r.send("/help") for r in residents))
    assert len(answers) == RESIDENTS
    await h.settle(timeout=120)

    for resident in residents:
        texts = [m.text for m in (await resident.transcript()).bot_messages]
        assert len(texts) == 1, texts
        assert "/help —" in texts[0]  # the help anyone gets
        assert "系统出了点问题" not in texts[0]
    admin_texts = [m.text for m in (await admin.transcript()).bot_messages]
    assert any("正在生成台账" in text for text in admin_texts)
    documents = [m.document for m in (await admin.transcript()).bot_messages if m.document]
    names = sorted(d["file_name"].split("-")[0] for d in documents)
    assert names == ["households", "rows"]  # the ledger, and the import's rows to fix
    assert any("未导入任何数据" in text for text in admin_texts)
