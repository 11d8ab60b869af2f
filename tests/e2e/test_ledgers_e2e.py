"""Ledgers end to end: an admin's GBK file with bad rows, then a good one, then /export."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook
from sqlmodel import col, select

from bot.telegram.callbacks import ExportCb, ExportGridCb, Ledger, PickStep
from models import Grid, Household, Person, Role, RoleAssignment
from tests.e2e.harness import Harness

pytestmark = pytest.mark.e2e

HEADER = "户编号,网格编码,户主姓名,联系电话,地址,家庭人口,户类别,重点户,工商企业户,责任网格员,备注"


async def test_an_admin_imports_a_gbk_file_and_exports_the_ledger(h: Harness) -> None:
    admin = await h.persona("admin")
    async with h.session() as session:
        grid = (await session.exec(select(Grid).where(Grid.tier == 3).order_by(Grid.code))).first()
        assert grid is not None
        worker = (
            await session.exec(
                select(Person)
                .join(RoleAssignment, col(RoleAssignment.person_id) == Person.id)
                .where(RoleAssignment.grid_id == grid.id, RoleAssignment.role == Role.WORKER)
            )
        ).one()
    good = [
        f"T{grid.code}901,{grid.code},张大爷,13912340001,新村1号,2,空巢老人,是,否,{worker.phone},",
        f"T{grid.code}902,{grid.code},李阿姨,13912340002,新村2号,3,,否,否,{worker.phone},",
    ]
    bad = [
        f"T{grid.code}903,{grid.code},王五,12345,新村3号,2,,否,否,,",  # bad phone
        f"T{grid.code}904,999999999999999,赵六,13912340004,新村4号,2,,否,否,,",  # no grid
        f"T{grid.code}901,{grid.code},重复,13912340005,新村5号,abc,,否,否,,",  # duplicate, members
    ]
    await admin.send_document("\n".join([HEADER, *good, *bad]).encode("gbk"), filename="住户.csv")
    await h.settle()
    report = (await admin.transcript()).texts[-1]
    assert "未导入任何数据" in report, report
    for row in (4, 5, 6):
        assert f"第 {row} 行" in report
    async with h.session() as session:
        assert (
            await session.exec(select(Household).where(col(Household.code).startswith("T")))
        ).first() is None

    await admin.send_document("\n".join([HEADER, *good]).encode("gbk"), filename="住户.csv")
    await h.settle()
    assert "2" in (await admin.transcript()).texts[-1]
    async with h.session() as session:
        imported = (
            await session.exec(select(Household).where(col(Household.code).startswith("T")))
        ).all()
    assert {h_.head_name for h_ in imported} == {"张大爷", "李阿姨"}

    await admin.send(f"/export households {grid.code}")
    assert "正在生成台账" in (await admin.next_message()).text  # at once; the file follows
    ledger = await admin.next_message()
    assert ledger.document is not None
    book = load_workbook(io.BytesIO(await h.client.download(ledger.document["file_id"])))
    cells = [str(c.value) for row in book.active.iter_rows() for c in row if c.value]
    assert "张大爷" in cells and "李阿姨" in cells

    resident = await h.persona("resident")
    await resident.send_document("\n".join([HEADER, *good]).encode("gbk"), filename="x.csv")
    await h.settle()
    assert "管理员" in (await resident.transcript()).texts[-1]


async def test_a_long_error_report_comes_as_a_file_and_the_last_word_always_arrives(
    h: Harness,
) -> None:
    """Seen: 35 bad rows under a 196-character header (190 emoji) left the admin at
    "已核对 35 / 35 行…" for ever — the report was cut by Python characters (Telegram counts
    UTF-16 units) and the failed edit was swallowed."""
    admin = await h.persona("admin")
    header = HEADER + "," + "🏠" * 190
    bad = [f"B{n:03d},999999999999999,王{n},12345,新村{n}号,abc,,否,否,,," for n in range(35)]
    await admin.send_document("\n".join([header, *bad]).encode("utf-8"), filename="住户.csv")
    await h.settle()
    messages = (await admin.transcript()).bot_messages
    [sheet] = [m for m in messages if m.document]
    book = load_workbook(io.BytesIO(await h.client.download(sheet.document["file_id"])))
    rows = list(book.active.iter_rows(values_only=True))
    assert rows[0] == ("行号", "列名", "问题")
    assert {row[0] for row in rows[1:]} == set(range(2, 37))  # every bad row, by its number
    final = messages[-1] if not messages[-1].document else messages[-2]
    assert "未导入任何数据" in final.text


async def test_bare_export_and_template_offer_buttons_that_do_what_typing_does(
    h: Harness,
) -> None:
    """Seen: bare /export and /template printed a usage text with English words in it."""
    admin = await h.persona("admin")
    await admin.send("/export")
    offer = await admin.next_message()
    assert offer.buttons == [
        "🏠 住户台账",
        "📂 只导出某个网格的住户",
        "👥 人员台账",
        "📂 只导出某个网格的人员",
        "👪 人口台账",
        "📂 只导出某个网格的人口",
        "📋 工单台账",
        "📂 某个网格的工单",
        "🚶 走访台账",
        "📂 某个网格的走访",
        "🗓 例会台账",
        "📂 某个网格的例会",
    ]
    assert "/export" in offer.text and "人员" in offer.text
    await admin.press("👥 人员台账")
    assert "正在生成台账" in (await admin.next_message()).text
    ledger = await admin.next_message()
    assert ledger.document is not None and ledger.document["file_name"].startswith("people-")
    book = load_workbook(io.BytesIO(await h.client.download(ledger.document["file_id"])))
    assert book.active.max_row > 1  # the people over the whole street

    await admin.send("/template")
    offer = await admin.next_message()
    assert offer.buttons == ["🏠 空白住户表", "👥 空白人员表", "👪 空白人口表"]
    await admin.press("👥 空白人员表")
    sheet = await admin.next_message()
    assert sheet.document is not None and sheet.document["file_name"] == "people.xlsx"
    assert "人员" in (sheet.caption or "")
    await admin.send("/template 住户")  # typed stays a shortcut
    assert (await admin.next_message()).document["file_name"] == "households.xlsx"

    worker = await h.persona("worker")  # no ledger to export: no buttons, a clear answer
    await worker.send("/export")
    refused = await worker.next_message()
    assert not refused.buttons and "没有导出台账的权限" in refused.text
    await h.forge_press(worker, ExportCb(ledger=Ledger.PEOPLE).pack())
    toast = (await worker.transcript()).toast
    assert toast is not None and "没有导出台账的权限" in toast["text"]
    assert not any(m.document for m in (await worker.transcript()).bot_messages)


async def test_a_head_exports_one_grid_picked_from_their_own_and_a_forged_grid_is_refused(
    h: Harness,
) -> None:
    head = await h.persona("head")
    async with h.session() as session:
        me = (await session.exec(select(Person).where(Person.telegram_id == head.id))).one()
        own = (
            await session.exec(
                select(Grid)
                .join(RoleAssignment, col(RoleAssignment.grid_id) == Grid.id)
                .where(RoleAssignment.person_id == me.id, RoleAssignment.role == Role.HEAD)
            )
        ).one()
        leaf = (
            await session.exec(select(Grid).where(Grid.parent_id == own.id).order_by(Grid.code))
        ).first()
        foreign = (
            await session.exec(
                select(Grid).where(~col(Grid.path).startswith(own.path), Grid.tier == 3)
            )
        ).first()
    assert leaf is not None and foreign is not None and foreign.id is not None
    await head.send("/export")
    await head.next_message()
    await head.press("📂 只导出某个网格的住户")
    await h.settle()
    picker = (await head.transcript()).bot_messages[-1]
    assert picker.buttons[0] == f"✅ {own.name}" and leaf.name in picker.buttons
    assert foreign.name not in picker.buttons

    forged = ExportGridCb(ledger=Ledger.HOUSEHOLDS, grid=foreign.id, page=0, step=PickStep.CHOOSE)
    await h.forge_press(head, forged.pack())
    toast = (await head.transcript()).toast
    assert toast is not None and foreign.code in toast["text"]
    assert not any(m.document for m in (await head.transcript()).bot_messages)

    await head.press(leaf.name)
    await h.settle()
    ledger = (await head.transcript()).bot_messages[-1]
    assert ledger.document is not None
    book = load_workbook(io.BytesIO(await h.client.download(ledger.document["file_id"])))
    grids_in_ledger = {
        str(row[1]) for row in book.active.iter_rows(min_row=2, values_only=True) if row[1]
    }
    assert grids_in_ledger == {leaf.code}  # that grid's households, no other's
