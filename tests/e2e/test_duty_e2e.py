"""The centre's duty rota (值班) end to end: paging the operator on duty first, a swap agreed
by both, a gap warned a day ahead, and hostile sheets and presses."""

from __future__ import annotations

import copy
import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from openpyxl import Workbook
from sqlmodel import col, select

from bot.routing.policy import load_default_policy, policy_to_json
from bot.sandbox.client import Persona
from bot.services.demo import TELEGRAM_ID_BASE
from bot.services.ticket_numbers import shown_number
from bot.telegram.callbacks import DutyAction, DutyAnswer, DutyCb, DutySwapCb
from models import (
    AuditLog,
    DutyGapWarning,
    DutyPage,
    DutyShift,
    DutySwap,
    Grid,
    Person,
    PolicyVersion,
    Role,
    RoleAssignment,
)
from tests.e2e.harness import BOT_USERNAME, Harness, file_ticket_for

pytestmark = pytest.mark.e2e

TZ = ZoneInfo("Asia/Shanghai")
SECOND_OPERATOR = TELEGRAM_ID_BASE + 950
SECOND_PHONE = "+8613900009950"


def local(moment: datetime) -> str:
    return moment.astimezone(TZ).strftime("%Y-%m-%d %H:%M")


async def second_operator(h: Harness) -> Persona:
    """A second centre operator at the street centre (the demo has one), in the sandbox."""
    async with h.session() as session:
        street = (await session.exec(select(Grid).where(Grid.tier == 0))).first()
        assert street is not None and street.id is not None
        person = Person(
            name="值班员小林",
            phone=SECOND_PHONE,
            telegram_id=SECOND_OPERATOR,
            created_at=h.clock.now(),
            updated_at=h.clock.now(),
        )
        session.add(person)
        await session.flush()
        assert person.id is not None
        session.add(
            RoleAssignment(
                person_id=person.id,
                role=Role.CENTER,
                grid_id=street.id,
                created_at=h.clock.now(),
            )
        )
        await session.commit()
    h.server.create_user("值班员小林", user_id=SECOND_OPERATOR, phone_number=SECOND_PHONE[1:])
    h.server.get_bot(BOT_USERNAME).relation(SECOND_OPERATOR).started = True
    h.language.reads(SECOND_OPERATOR, "zh_Hans")
    user = h.server.users[SECOND_OPERATOR].to_api()
    return h.client.persona_for(user, bot=BOT_USERNAME)


async def center_phone(h: Harness) -> str:
    center = await h.persona("center")
    async with h.session() as session:
        person = (await session.exec(select(Person).where(Person.telegram_id == center.id))).one()
    assert person.phone is not None
    return person.phone


async def urgent_to_centre_policy(h: Harness, minutes: int) -> None:
    """Urgent reports go straight to the centre (报告即上报); the duty has ``minutes``."""
    body = copy.deepcopy(policy_to_json(load_default_policy()))
    for route in body["routes"]:
        if route["name"] == "urgent-report-up-at-once":
            route["to"] = {"tier": 0, "role": "center"}
    body["duty"] = {"first_minutes": minutes}
    async with h.session() as session:
        session.add(PolicyVersion(body=body, created_at=h.clock.now()))
        await session.commit()


async def add_shift(h: Harness, phone: str, start: datetime, end: datetime) -> str:
    admin = await h.persona("admin")
    await admin.send(f"/duty 新增 {phone} {local(start)} {local(end)}")
    return (await admin.next_message()).text


async def test_an_urgent_ticket_reaches_the_duty_first_then_everyone(h: Harness) -> None:
    await urgent_to_centre_policy(h, minutes=5)
    duty, center = await second_operator(h), await h.persona("center")
    now = h.clock.now()
    added = await add_shift(h, SECOND_PHONE, now - timedelta(hours=1), now + timedelta(hours=8))
    assert "已加入值班表" in added and "值班员小林" in added

    await center.send("/duty")
    shown = (await center.next_message()).text
    assert "现在值班" in shown and "值班员小林" in shown

    ticket = await file_ticket_for(h, "resident", "小区配电箱冒烟，有焦味", urgent=True)
    card = await duty.next_message()
    assert shown_number(ticket) in card.text and "✅ 签收" in card.buttons
    first = await duty.next_message()
    assert "您正在值班" in first.text and "5 分钟" in first.text
    await center.no_message()

    await h.advance(timedelta(minutes=6))
    came = [m for m in (await center.transcript()).bot_messages if shown_number(ticket) in m.text]
    assert any("✅ 签收" in m.buttons for m in came), [m.text for m in came]
    assert any("未在 5 分钟内签收" in m.text for m in came)
    told = [m.text for m in (await duty.transcript()).bot_messages]
    assert any("未在 5 分钟内签收" in text for text in told)
    async with h.session() as session:
        page = (await session.exec(select(DutyPage).where(DutyPage.ticket_id == ticket.id))).one()
    assert page.widened and page.done_at is not None

    # widened once: later sweeps tell nobody again
    await h.advance(timedelta(minutes=1))
    again = [m for m in (await center.transcript()).bot_messages if "未在 5 分钟内签收" in m.text]
    assert len(again) == 1
    await h.check_language()


async def test_a_ticket_the_duty_accepts_in_time_stays_with_them(h: Harness) -> None:
    await urgent_to_centre_policy(h, minutes=5)
    duty, center = await second_operator(h), await h.persona("center")
    now = h.clock.now()
    await add_shift(h, SECOND_PHONE, now - timedelta(hours=1), now + timedelta(hours=8))
    ticket = await file_ticket_for(h, "resident", "楼道里有人晕倒了", urgent=True)
    await duty.next_message()
    await duty.next_message()
    await duty.press("✅ 签收")
    await h.settle()
    await h.advance(timedelta(minutes=6))
    texts = [m.text for m in (await center.transcript()).bot_messages]
    assert not any(shown_number(ticket) in text for text in texts)
    async with h.session() as session:
        page = (await session.exec(select(DutyPage).where(DutyPage.ticket_id == ticket.id))).one()
    assert not page.widened and page.done_at is not None


async def test_with_nobody_on_duty_everyone_gets_it_at_once(h: Harness) -> None:
    await urgent_to_centre_policy(h, minutes=5)
    duty, center = await second_operator(h), await h.persona("center")
    ticket = await file_ticket_for(h, "resident", "河边护栏断了", urgent=True)
    for operator in (duty, center):
        assert shown_number(ticket) in (await operator.next_message()).text
    async with h.session() as session:
        assert not (await session.exec(select(DutyPage))).all()


async def test_a_swap_agreed_by_both_and_forged_presses(h: Harness) -> None:
    duty, center = await second_operator(h), await h.persona("center")
    now = h.clock.now()
    start, end = now + timedelta(hours=2), now + timedelta(hours=10)
    await add_shift(h, SECOND_PHONE, start, end)
    async with h.session() as session:
        shift = (await session.exec(select(DutyShift))).one()
    assert shift.id is not None

    # forged: someone else's shift, and a colleague from nowhere
    worker = await h.persona("worker")
    await worker.send("/duty")
    assert "街道中心工作人员" in (await worker.next_message()).text
    await h.forge_press(worker, DutyCb(action=DutyAction.SWAP, shift=shift.id).pack())
    toast = (await worker.transcript()).toast
    assert toast is not None and "只有该班次的值班人员" in toast["text"]
    await duty.send("/duty")
    listing = await duty.next_message()
    assert "您的班次" in listing.text
    await h.forge_press(duty, DutyCb(action=DutyAction.ASK, shift=shift.id, person=999_999).pack())
    toast = (await duty.transcript()).toast
    assert toast is not None and "其他值守人员" in toast["text"]

    await duty.press(f"🔁 {local(start)}")
    await h.settle()
    await duty.press(center.first_name)
    await h.settle()
    assert "已询问" in (await duty.transcript()).bot_messages[-1].text
    request = await center.next_message()
    assert "请您替班" in request.text and request.buttons == ["✅ 同意接班", "✖ 不行"]
    async with h.session() as session:
        swap = (await session.exec(select(DutySwap))).one()
        still = await session.get(DutyShift, shift.id)
        assert still is not None and still.person_id == shift.person_id  # not before the yes
    assert swap.id is not None

    # a third person cannot answer for the colleague
    await h.forge_press(worker, DutySwapCb(swap=swap.id, answer=DutyAnswer.AGREE).pack())
    toast = (await worker.transcript()).toast
    assert toast is not None and "不是发给您的" in toast["text"]

    await center.press("✅ 同意接班")
    await h.settle()
    assert "现在由您值班" in (await center.transcript()).bot_messages[-1].text
    assert "已同意" in (await duty.next_message()).text
    async with h.session() as session:
        moved = await session.get(DutyShift, shift.id)
        center_person = (
            await session.exec(select(Person).where(Person.telegram_id == center.id))
        ).one()
        assert moved is not None and moved.person_id == center_person.id
        actions = (
            await session.exec(select(AuditLog.action).where(col(AuditLog.action).like("%duty%")))
        ).all()
    assert "duty:swap" in actions and actions.count("refused:duty_swap") >= 3
    # the same yes again changes nothing
    await h.forge_press(center, DutySwapCb(swap=swap.id, answer=DutyAnswer.AGREE).pack())
    toast = (await center.transcript()).toast
    assert toast is not None and "已经答复" in toast["text"]
    await h.check_language()


async def test_a_gap_is_warned_a_day_ahead_once(h: Harness) -> None:
    duty, center = await second_operator(h), await h.persona("center")
    now = h.clock.now()
    await add_shift(h, SECOND_PHONE, now, now + timedelta(hours=3))
    await add_shift(h, await center_phone(h), now + timedelta(hours=5), now + timedelta(days=2))
    await h.advance(timedelta(hours=1), jump=True)
    for operator in (duty, center):
        warned = [
            m.text for m in (await operator.transcript()).bot_messages if "无人值班" in m.text
        ]
        assert len(warned) == 1, warned
        assert local(now + timedelta(hours=3)) in warned[0]
        assert local(now + timedelta(hours=5)) in warned[0]
    await h.advance(timedelta(hours=1), jump=True)
    for operator in (duty, center):
        warned = [
            m.text for m in (await operator.transcript()).bot_messages if "无人值班" in m.text
        ]
        assert len(warned) == 1
    async with h.session() as session:
        assert len((await session.exec(select(DutyGapWarning))).all()) == 1


def _csv(rows: list[list[str]], encoding: str = "utf-8") -> bytes:
    lines = ["手机号,姓名,开始,结束", *(",".join(row) for row in rows)]
    return "\n".join(lines).encode(encoding)


async def test_a_rota_sheet_all_or_nothing_every_bad_row_named(h: Harness) -> None:
    await second_operator(h)
    admin = await h.persona("admin")
    center = await center_phone(h)
    day = h.clock.now().astimezone(TZ) + timedelta(days=1)

    def at(hour: int) -> str:
        return (day.replace(hour=0, minute=0) + timedelta(hours=hour)).strftime("%Y-%m-%d %H:%M")

    bad = _csv(
        [
            [SECOND_PHONE, "值班员小林", at(8), at(20)],
            [center, "", at(19), at(32)],  # overlaps row 2
            ["13912345678", "", at(32), at(44)],  # nobody
            [SECOND_PHONE, "", at(50), at(44)],  # ends before it starts
            [SECOND_PHONE, "张三", at(60), at(70)],  # not the phone's name
            [center, "", "明天早上", at(80)],  # not a time
        ],
        "gbk",
    )
    await admin.send_document(bad, "值班表.csv", caption="/duty")
    answer = (await admin.next_message()).text
    assert "未保存任何内容" in answer and "5 行" in answer
    for row, words in (
        (3, "第 2 行"),
        (4, "13912345678"),
        (5, "晚于"),
        (6, "属于 值班员小林"),
        (7, "明天早上"),
    ):
        assert f"第 {row} 行" in answer and words in answer, (row, answer)
    async with h.session() as session:
        assert not (await session.exec(select(DutyShift))).all()

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["手机号", "姓名", "开始", "结束"])
    base = day.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    sheet.append(
        [SECOND_PHONE[3:], "值班员小林", base + timedelta(hours=8), base + timedelta(hours=20)]
    )
    sheet.append([center[3:], None, base + timedelta(hours=20), base + timedelta(hours=32)])
    data = io.BytesIO()
    workbook.save(data)
    await admin.send_document(data.getvalue(), "rota.xlsx", caption="/duty 值班表")
    assert "值班表已保存：共 2 个班次" in (await admin.next_message()).text
    async with h.session() as session:
        assert len((await session.exec(select(DutyShift))).all()) == 2

    ten_mb = io.BytesIO(b"\x00\xff" * (1024 * 1024 * 5))  # bytes this large warn in aiohttp
    await admin.send_document(ten_mb, "nonsense.csv", caption="/duty")  # type: ignore[arg-type]
    assert "最大 2048 KB" in (await admin.next_message()).text
    await admin.send_document(b"\x00garbage\xff" * 1000, "nonsense.xlsx", caption="/duty")
    refused = (await admin.next_message()).text
    assert refused and "值班表已保存" not in refused
    async with h.session() as session:
        assert len((await session.exec(select(DutyShift))).all()) == 2

    worker = await h.persona("worker")
    await worker.send_document(_csv([[center, "", at(8), at(9)]]), "r.csv", caption="/duty")
    assert "只有中心值守人员和系统管理员" in (await worker.next_message()).text
    async with h.session() as session:
        refusals = (
            await session.exec(select(AuditLog).where(AuditLog.action == "refused:duty_edit"))
        ).all()
    assert refusals
    await h.check_language()


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("新增 13912345678 2030-01-01 08:00 2030-01-01 20:00", "没有登记"),
        ("新增 {phone} 2030-01-01 20:00 2030-01-01 08:00", "晚于"),
        ("新增 {phone} 2030-01-01 08:00 2030-01-20 08:00", "最长 7 天"),
        ("新增 {phone} 2020-01-01 08:00 2020-01-01 20:00", "已经结束"),
        ("新增 {phone} 2030-13-01 08:00 2030-13-01 20:00", "无法识别"),
        ("新增 {phone} 明天 早上 后天 晚上", "无法识别"),
        ("新增 {phone}", "/duty 新增 <手机号>"),
        ("删除 abc", "/duty 删除"),
        ("删除 424242", "没有编号为 424242"),
        ("开除 1", "/duty 新增 <手机号>"),
    ],
)
async def test_hostile_duty_words_get_a_clear_answer(
    h: Harness, words: str, expected: str
) -> None:
    admin = await h.persona("admin")
    phone = await center_phone(h)
    await admin.send("/duty " + words.format(phone=phone))
    answer = (await admin.next_message()).text
    assert expected in answer, answer
    async with h.session() as session:
        assert not (await session.exec(select(DutyShift))).all()


async def test_overlapping_shifts_from_the_chat_are_refused(h: Harness) -> None:
    await second_operator(h)
    now = h.clock.now()
    await add_shift(h, SECOND_PHONE, now + timedelta(hours=1), now + timedelta(hours=9))
    answer = await add_shift(
        h, await center_phone(h), now + timedelta(hours=8), now + timedelta(hours=12)
    )
    assert "时间重叠" in answer and "值班员小林" in answer
    resident = await h.persona("resident")
    await resident.send(f"/duty 新增 {SECOND_PHONE} 2030-01-01 08:00 2030-01-01 20:00")
    assert "只有中心值守人员和系统管理员" in (await resident.next_message()).text
    async with h.session() as session:
        assert len((await session.exec(select(DutyShift))).all()) == 1


async def test_duty_reads_in_every_language(h: Harness) -> None:
    duty = await second_operator(h)
    center, admin = await h.persona("center"), await h.persona("admin")
    await h.use_locale(center, "en")
    await h.use_locale(admin, "zh_Hant")
    now = h.clock.now()
    await admin.send(f"/duty 新增 {SECOND_PHONE} {local(now)} {local(now + timedelta(hours=2))}")
    assert "已加入值班表" in (await admin.next_message()).text
    await admin.send(f"/duty 新增 {SECOND_PHONE} 明天 早上 後天 晚上")
    assert "無法識別" in (await admin.next_message()).text
    await center.send("/duty")
    shown = (await center.next_message()).text
    assert "On duty now" in shown and "值班员小林" in shown
    await h.advance(timedelta(hours=1), jump=True)  # the gap after the shift: warned in English
    warned = [m.text for m in (await center.transcript()).bot_messages if "Nobody is on" in m.text]
    assert len(warned) == 1
    assert any("无人值班" in m.text for m in (await duty.transcript()).bot_messages)
    await h.check_language()


async def test_the_overdue_flag_at_the_top_goes_to_the_duty_first(h: Harness) -> None:
    from tests.e2e.test_escalation_e2e import seconds_policy

    body = seconds_policy()
    body["duty"] = {"first_minutes": 2}
    async with h.session() as session:
        session.add(PolicyVersion(body=body, created_at=h.clock.now()))
        await session.commit()
    duty, center = await second_operator(h), await h.persona("center")
    now = h.clock.now()
    await add_shift(h, SECOND_PHONE, now - timedelta(hours=1), now + timedelta(hours=8))
    ticket = await file_ticket_for(h, "resident", "路灯坏了一个星期")
    await h.advance(timedelta(minutes=20))  # four tiers of five minutes: up at the centre
    for operator in (duty, center):  # a general ticket's card reaches every operator
        texts = [m.text for m in (await operator.transcript()).bot_messages]
        assert any("上报给您" in text for text in texts), texts

    await h.advance(timedelta(minutes=5))  # overdue at the top: the flag to the duty first
    flagged = [m.text for m in (await duty.transcript()).bot_messages if "超期" in m.text]
    assert len(flagged) == 1
    assert not [m.text for m in (await center.transcript()).bot_messages if "超期" in m.text]
    await h.advance(timedelta(minutes=3))
    came = [m.text for m in (await center.transcript()).bot_messages]
    assert any("未在 2 分钟内签收" in text and shown_number(ticket) in text for text in came)
