"""Places, inspections and hazards end to end on the demo community: an admin imports 20
places of three types (and hostile files are refused in Chinese); the worker's morning push
lists the inspections due; /inspect a restaurant with a blocked exit and an expired
extinguisher (photos, location); two hazards with fix-by dates; the owner, a GridBot user,
answers one "fixed" with a photo; at the re-inspection one is fixed and one is not; the
unfixed one becomes a ticket that escalates."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, select

from bot.i18n import gettext_for
from bot.sandbox.client import ChatMessage
from bot.sandbox.media import sample_png
from bot.services.demo import DEMO_PERSONAS
from bot.services.place_policy import DEFAULT_POLICY, policy_to_json
from bot.services.ticket_numbers import shown_number
from bot.telegram import inspection_views as views
from models import (
    AuditLog,
    Grid,
    Hazard,
    Inspection,
    Person,
    Place,
    RoleAssignment,
    Ticket,
    TicketCategory,
    TicketEvent,
    TicketEventKind,
)
from tests.e2e.harness import Harness

pytestmark = pytest.mark.e2e

TZ = ZoneInfo("Asia/Shanghai")
JPEG = sample_png()
OWNER_PHONE = "13712340000"
HEADER = "场所编号,场所名称,场所类型,网格编码,地址,负责人,联系电话"


def t(msgid: str, **params: Any) -> str:
    return gettext_for("zh_Hans", msgid, **params)


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=TZ).astimezone(UTC)  # type: ignore[misc]


async def jump(h: Harness, moment: datetime) -> None:
    h.clock.set(moment)
    await h.sweeps.catch_up(coalesce=True)
    assert h.app is not None
    h.app.sender.wake()
    await h.settle()


async def until(persona: Any, predicate: Callable[[ChatMessage], bool]) -> ChatMessage:
    """Wait until the newest message of the bot in the chat (edits included) satisfies
    ``predicate``; return it."""
    transcript = await persona.wait_until(
        lambda tr: bool(tr.bot_messages) and predicate(tr.bot_messages[-1])
    )
    message: ChatMessage = transcript.bot_messages[-1]
    return message


async def worker_grid(h: Harness) -> str:
    async with h.session() as session:
        person = (
            await session.exec(select(Person).where(Person.telegram_id == DEMO_PERSONAS["worker"]))
        ).one()
        grid = (
            await session.exec(
                select(Grid)
                .join(RoleAssignment, col(RoleAssignment.grid_id) == col(Grid.id))
                .where(RoleAssignment.person_id == person.id)
            )
        ).first()
    assert grid is not None
    return grid.code


def places_csv(grid: str) -> bytes:
    kinds = ["九小场所"] * 8 + ["涉药单位"] * 6 + ["出租房屋"] * 6
    rows = [
        f"E2E{n:02d},场所{n},{kind},{grid},杏林路{n}号,店主{n},1390000{n:04d}"
        for n, kind in enumerate(kinds)
    ]
    rows[0] = f"E2E00,老王饭店,九小场所,{grid},杏林路1号,王老板,{OWNER_PHONE}"
    return "\n".join([HEADER, *rows]).encode("gbk")


async def send_policy(admin: Any, h: Harness, body: dict[str, Any]) -> str:
    await admin.send_document(
        json.dumps(body, ensure_ascii=False).encode(), "place-types.json", caption="/places"
    )
    await h.settle()
    return (await admin.transcript()).texts[-1]


async def test_hostile_place_files_are_refused_in_chinese(h: Harness) -> None:
    admin = await h.persona("admin")
    zero = copy.deepcopy(policy_to_json(DEFAULT_POLICY))
    zero["types"][0]["cadence"][0]["days"] = 0
    assert "九小场所" in (text := await send_policy(admin, h, zero)) and "整数" in text
    huge = copy.deepcopy(policy_to_json(DEFAULT_POLICY))
    huge["types"][0]["checklist"] = [
        {"key": f"k{i}", "text": f"检查项{i}", "severity": "minor"} for i in range(200)
    ]
    assert "200" in (text := await send_policy(admin, h, huge)) and "检查表" in text
    twice = copy.deepcopy(policy_to_json(DEFAULT_POLICY))
    twice["types"][0]["checklist"].append(dict(twice["types"][0]["checklist"][0]))
    assert "重复" in await send_policy(admin, h, twice)

    grid = await worker_grid(h)
    bad = "\n".join(
        [
            HEADER,
            f"X01,网吧,网吧,{grid},杏林路1号,,",
            "X02,小卖部,九小场所,3502119999999999,杏林路2号,,",
        ]
    ).encode("gbk")
    await admin.send_document(bad, "places.csv", caption="/places")
    await h.settle()
    report = (await admin.transcript()).texts[-1]
    assert "未导入任何数据" in report, report
    assert "第 2 行" in report and "网吧 不是场所类型" in report
    assert "第 3 行" in report and "3502119999999999" in report
    async with h.session() as session:
        assert (
            await session.exec(select(Place).where(col(Place.code).startswith("X")))
        ).first() is None


async def test_import_push_inspect_fixed_recheck_and_ticket(h: Harness) -> None:
    admin = await h.persona("admin")
    worker = await h.persona("worker")
    grid = await worker_grid(h)

    await admin.send_document(places_csv(grid), "场所.csv", caption="/places")
    await h.settle()
    assert (
        t(
            "Places imported: {created} new, {updated} updated, {unchanged} unchanged.",
            created=20,
            updated=0,
            unchanged=0,
        )
        in (await admin.transcript()).texts[-1]
    )

    # the owner of the restaurant uses GridBot: their phone is the register's
    owner = await h.newcomer("王老板", phone="86" + OWNER_PHONE)
    await owner.start()
    await h.settle()
    async with h.session() as session:
        known = (await session.exec(select(Person).where(Person.telegram_id == owner.id))).first()
        person = known or Person(
            name="王老板",
            telegram_id=owner.id,
            created_at=h.clock.now(),
            updated_at=h.clock.now(),
        )
        person.phone = "+86" + OWNER_PHONE
        session.add(person)
        await session.commit()

    # Friday 08:00: the worker's push lists the inspections due
    await jump(h, local(2026, 3, 13, 8, 0))
    push = "\n".join((await worker.transcript()).texts)
    assert t("Places to inspect today (巡查):") in push and "• 场所1 · 九小场所" in push
    async with h.session() as session:
        due = len((await session.exec(select(Place).where(col(Place.active)))).all())
    assert t("…and {count} more places due.", count=due - 10) in push

    # /inspect: the restaurant; a blocked exit and an expired extinguisher, with photos
    worker.cursor = (await worker.transcript()).bot_messages[-1].message_id
    await worker.send("/inspect 饭店")
    listing = await worker.next_message()
    await worker.press(next(b for b in listing.buttons if "老王饭店" in b))
    checklist = await worker.next_message()
    assert "疏散通道" in checklist.text and "137****0000" in checklist.text
    await worker.press("❌ " + t("Fail"))
    assert "疏散通道" in (await until(worker, lambda m: "照片" in m.text)).text
    await worker.send_photo(JPEG)
    await until(worker, lambda m: "▶️" in m.text and "灭火器" in m.text)
    await worker.press("❌ " + t("Fail"))
    await until(worker, lambda m: "照片" in m.text and "灭火器" in m.text)
    await worker.send_photo(JPEG)
    await until(worker, lambda m: bool(m.buttons) and t("✅ All the rest pass") in m.buttons)
    await worker.press(t("✅ All the rest pass"))
    await until(worker, lambda m: t("💾 Save") in m.buttons)
    await worker.send_location(24.575, 118.034)
    saved = await until(worker, lambda m: "已保存" in m.text)
    assert t("Hazards found ({count}):", count=2) in saved.text
    assert "整改期限 03-14" in saved.text and "整改期限 03-16" in saved.text
    async with h.session() as session:
        inspection = (await session.exec(select(Inspection))).one()
        assert inspection.latitude == pytest.approx(24.575)
        found = {hz.item_key: hz for hz in await session.exec(select(Hazard))}
    assert set(found) == {"exits_clear", "extinguisher_valid"}
    assert all(hz.photo_file_id for hz in found.values())

    # the owner is told, and answers one "fixed" with a photo
    notice = await until(owner, lambda m: "隐患整改通知" in m.text)
    await owner.press(next(b for b in notice.buttons if "灭火器" in b))
    await until(owner, lambda m: "整改后的照片" in m.text)
    await owner.send_photo(JPEG)
    await until(owner, lambda m: "复查" in m.text)
    await until(worker, lambda m: "负责人报告" in m.text)

    # three days on: the re-inspection; the extinguisher is fixed, the exit is not
    await jump(h, local(2026, 3, 16, 9, 0))
    worker.cursor = (await worker.transcript()).bot_messages[-1].message_id
    await worker.send("/inspect")
    listing = await worker.next_message()
    await worker.press(next(b for b in listing.buttons if b.startswith("🔁 老王饭店")))
    await until(worker, lambda m: "复查" in m.text and "▶️" in m.text)
    await worker.press("❌ " + t("Not fixed"))
    await until(worker, lambda m: "照片" in m.text)
    await worker.send_photo(JPEG)
    await until(worker, lambda m: "▶️" in m.text and "灭火器" in m.text)
    await worker.press("✅ " + t("Fixed"))
    await until(worker, lambda m: t("💾 Save") in m.buttons)
    await worker.press(t("💾 Save"))
    done = await until(worker, lambda m: "复查已保存" in m.text)
    assert "已整改 1 处，未整改 1 处" in done.text
    async with h.session() as session:
        states = {hz.item_key: hz.state for hz in await session.exec(select(Hazard))}
        hazard = (await session.exec(select(Hazard).where(Hazard.item_key == "exits_clear"))).one()
        ticket = await session.get(Ticket, hazard.ticket_id)
    assert states == {"exits_clear": "ticket", "extinguisher_valid": "fixed"}
    assert ticket is not None and ticket.category == TicketCategory.FIRE
    assert shown_number(ticket) in done.text

    # nobody accepts the urgent ticket: it climbs the chain like any other
    for _ in range(3):
        await h.advance(timedelta(minutes=6))
    async with h.session() as session:
        kinds = [
            e.action
            for e in await session.exec(
                select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)
            )
        ]
    assert TicketEventKind.ESCALATED in kinds, kinds
    assert views.RECHECK_SAVED  # the words checked above come from the views

    # the head's /quota shows inspection coverage; the ledgers of the month come as files
    head = await h.persona("head")
    await head.send("/quota")
    await h.settle()
    quota = "\n".join((await head.transcript()).texts)
    assert "巡查覆盖率" in quota and "九小场所" in quota
    await head.send("/indicators")
    await h.settle()
    shown = (await head.transcript()).texts[-1]
    assert "巡查覆盖率" in shown and "转为工单 1 处" in shown, shown
    await head.send("/export hazards 2026-03")
    await h.settle()
    ledger = (await head.transcript()).bot_messages[-1]
    assert ledger.document is not None and "hazards-202603" in str(ledger.document)
    await head.send("/export 隐患 2026-13")
    await h.settle()
    assert "不是月份" in (await head.transcript()).texts[-1]


async def test_forged_presses_are_refused(h: Harness) -> None:
    """A place outside one's grids, a hazard one is not responsible for: refused, audited."""
    worker = await h.persona("worker")
    other = await h.persona("other_worker")
    await worker.send("/inspect")
    await other.send("/inspect")
    await h.settle()
    async with h.session() as session:
        demo = (await session.exec(select(Place).order_by(col(Place.id)))).first()
    assert demo is not None  # the demo's places lie in the worker's grid, not the neighbour's
    await h.forge_press(other, views.InspectPickCb(id=demo.id or 0).pack())
    toast = (await other.transcript()).toast
    assert toast is not None and t("Sorry, this is outside the grids you look after.") in str(
        toast
    )
    await h.forge_press(worker, views.HazardFixedCb(id=2**31 - 1).pack())
    toast = (await worker.transcript()).toast
    assert toast is not None and t("That hazard is not on record.") in str(toast)
    async with h.session() as session:
        refused = (
            await session.exec(select(AuditLog).where(AuditLog.action == "refused:inspect"))
        ).all()
    assert len(refused) == 1


async def test_an_inspection_is_corrected_and_forged_corrections_are_refused(h: Harness) -> None:
    """✏️ on a saved inspection: an item passed by mistake becomes a failure with its photo
    (a hazard opens); a neighbour's forged press and an item not on it are refused."""
    worker = await h.persona("worker")
    other = await h.persona("other_worker")
    await worker.send("/inspect")
    listing = await worker.next_message()
    await worker.press(listing.buttons[0])
    await until(worker, lambda m: t("✅ All the rest pass") in m.buttons)
    await worker.press(t("✅ All the rest pass"))
    await until(worker, lambda m: t("💾 Save") in m.buttons)
    await worker.press(t("💾 Save"))
    saved = await until(worker, lambda m: t("✏️ Correct") in m.buttons)
    assert t("↩️ Withdraw") in saved.buttons
    await worker.press(t("✏️ Correct"))
    items = await until(worker, lambda m: "更正哪一项" in m.text)
    first = items.buttons[0]
    assert first.startswith("✅ ")
    await worker.press(first)
    await until(worker, lambda m: "❌ " + t("Fail") in m.buttons)
    await worker.press("❌ " + t("Fail"))
    await until(worker, lambda m: "照片" in m.text)
    await worker.send("没有照片")  # anything but a photo: asked again
    await until(worker, lambda m: "照片" in m.text and m.text != "没有照片")
    await worker.send_photo(JPEG)
    corrected = await until(worker, lambda m: "已更正" in m.text)
    assert "✅ " + t("Pass") in corrected.text and "❌ " + t("Fail") in corrected.text
    assert "整改期限" in corrected.text
    async with h.session() as session:
        inspection = (await session.exec(select(Inspection))).one()
        hazard = (await session.exec(select(Hazard))).one()
        audit = (
            await session.exec(select(AuditLog).where(AuditLog.action == "inspection:correct"))
        ).one()
    assert hazard.inspection_id == inspection.id and hazard.state == "open"
    assert inspection.results[hazard.item_key] == "fail"
    assert (audit.data["before"], audit.data["after"]) == ("pass", "fail")

    forged = views.CorrectCb(id=inspection.id or 0, item=0, step=views.CorrectStep.PASS)
    await other.send("/inspect")
    await h.settle()
    await h.forge_press(other, forged.pack())
    toast = (await other.transcript()).toast
    assert toast is not None and "只有巡查人本人" in str(toast)
    await h.forge_press(
        worker,
        views.CorrectCb(id=inspection.id or 0, item=999, step=views.CorrectStep.CHOOSE).pack(),
    )
    toast = (await worker.transcript()).toast
    assert toast is not None and t("That item is not on this inspection.") in str(toast)
    async with h.session() as session:
        refused = (
            await session.exec(select(AuditLog).where(AuditLog.action == "refused:amend_visit"))
        ).all()
        still = (await session.exec(select(Inspection))).one()
    assert len(refused) == 1 and still.results == inspection.results
