"""Casework end to end through the sandbox: departments by buttons, a category routed straight
to a department, 延期 asked and approved, 退单 and re-dispatch, 主办 / 协办, and staff intake."""

from __future__ import annotations

import copy
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, select

from bot.routing.policy import load_default_policy, policy_to_json
from bot.sandbox.client import ChatMessage, Persona
from bot.services.demo import TELEGRAM_ID_BASE
from bot.services.ticket_numbers import shown_number
from bot.services.tickets import reminders
from bot.services.tickets.deadlines import policy_of
from bot.telegram.callbacks import AssistAddCb, ExtensionCb, ExtensionDecision
from models import (
    AuditLog,
    Department,
    ExtensionRequest,
    Person,
    PolicyVersion,
    RoleAssignment,
    Ticket,
    TicketAssist,
    TicketCategory,
    TicketEvent,
    TicketSource,
    TicketState,
)
from tests.e2e.harness import Harness, file_ticket_for

pytestmark = pytest.mark.e2e
SHANGHAI = ZoneInfo("Asia/Shanghai")

POLICE, URBAN, PROPERTY = (TELEGRAM_ID_BASE + 11 + i for i in range(3))


async def said(persona: Persona, words: str) -> ChatMessage:
    """Wait until the bot's newest message to ``persona`` contains ``words``; that message."""
    transcript = await persona.wait_until(
        lambda t: bool(t.bot_messages) and words in t.bot_messages[-1].text
    )
    return transcript.bot_messages[-1]


LINK = re.compile(r"https://t\.me/(\w+)\?start=(\S+)")


async def test_an_admin_routes_fire_hazards_to_a_new_fire_station_which_gets_more_time(
    h: Harness,
) -> None:
    admin, resident, center = (
        await h.persona("admin"),
        await h.persona("resident"),
        await h.persona("center"),
    )
    await admin.send("/departments")
    listing = await admin.next_message()
    assert "职能部门" in listing.text and "➕ 新增部门" in listing.buttons
    await admin.press("➕ 新增部门")
    assert "名称" in (await admin.next_message()).text
    await admin.send("消防站 xfz")
    card = await admin.next_message()
    assert "消防站" in card.text and "xfz" in card.text and "🏷 负责类别" in card.buttons
    await admin.press("🏷 负责类别")
    await h.settle()
    await admin.press("消防隐患")
    await h.settle()
    categories = (await admin.transcript()).bot_messages[-1]
    assert "✅ 消防隐患" in categories.buttons
    await admin.press("✔️ 完成")
    await h.settle()
    await admin.press("📮 这些类别直接派给本部门")
    await h.settle()
    card = (await admin.transcript()).bot_messages[-1]
    assert "直接派单给该部门：是" in card.text, card.text
    await admin.press("👥 邀请人员")
    await h.settle()
    invitation = (await admin.transcript()).bot_messages[-1]
    link = LINK.search(invitation.text)
    assert link and "职能部门" in invitation.text, invitation.text

    firefighter = await h.newcomer("李消防")
    await firefighter.start(link.group(2))
    assert "部门" in (await firefighter.next_message()).text
    await h.settle()
    async with h.session() as session:
        joined = (
            await session.exec(
                select(RoleAssignment)
                .join(Person, col(Person.id) == RoleAssignment.person_id)
                .where(Person.telegram_id == firefighter.id)
            )
        ).one()
        station = (await session.exec(select(Department).where(Department.code == "xfz"))).one()
    assert joined.department_id == station.id  # the link made them the station's staff

    ticket = await file_ticket_for(
        h, "resident", "楼道里电动车飞线充电，有火灾隐患", category=TicketCategory.FIRE
    )
    new_card = await firefighter.next_message()
    assert shown_number(ticket) in new_card.text and "⏳ 申请延期" in new_card.buttons
    async with h.session() as session:
        row = (await session.exec(select(Ticket).where(Ticket.id == ticket.id))).one()
        station = (await session.exec(select(Department).where(Department.code == "xfz"))).one()
        assert row.owner_department_id == station.id and row.routing_rule == "dept:xfz"
        old_deadline = row.resolve_deadline
    assert old_deadline is not None

    await firefighter.press("✅ 签收")
    await h.settle()
    await firefighter.press("⏳ 申请延期")
    assert "理由" in (await firefighter.next_message()).text
    await firefighter.send("x" * 2100)  # over-long: refused, asked again
    assert "字" in (await firefighter.next_message()).text
    await firefighter.send("需协调供电公司停电后整改线路")
    assert "日期" in (await firefighter.next_message()).text
    await firefighter.send("2026-02-30")  # no such day
    assert "年-月-日" in (await firefighter.next_message()).text
    await firefighter.send("2026-03-13")  # before the deadline now
    assert "必须晚于" in (await firefighter.next_message()).text
    await firefighter.send("2026-03-26")
    asked = await firefighter.next_message()
    assert "街道中心" in asked.text and "批准前" in asked.text

    request = await center.next_message()
    assert "申请延期" in request.text or "延期申请" in request.text
    assert "✅ 批准" in request.buttons and "需协调供电公司" in request.text
    await center.press("✅ 批准")
    await h.settle()
    decided = (await center.transcript()).bot_messages[-1]
    assert "已批准" in decided.text and "03-26 17:30" in decided.text, decided.text

    told = await firefighter.next_message()
    while "批准" not in told.text:
        told = await firefighter.next_message()
    assert "新期限" in told.text and "03-26 17:30" in told.text
    transcript = await firefighter.transcript()
    card_now = [m for m in transcript.bot_messages if shown_number(ticket) in m.text][0]
    assert "办结期限：03-26 17:30" in card_now.text, card_now.text
    async with h.session() as session:
        events = [
            e.action
            for e in (
                await session.exec(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id))
            ).all()
        ]
    assert "extension_asked" in events and "extension_approved" in events
    assert resident  # the reporter heard nothing of the department's paperwork
    await h.check_language()


async def test_a_department_returns_a_ticket_and_the_centre_redispatches_it(h: Harness) -> None:
    center = await h.persona("center")
    police = await h.persona_of(POLICE)
    company = await h.persona_of(PROPERTY)
    ticket = await file_ticket_for(
        h, "resident", "物业长期不修电梯，老人上下楼困难", category=TicketCategory.PROPERTY
    )
    async with h.session() as session:
        police_dept = (
            await session.exec(select(Department).where(Department.code == "police"))
        ).one()
    from bot.services import tickets
    from bot.services.people import roles_of
    from bot.telegram.ticket_notifier import TelegramTicketNotifier

    async with h.session() as session:  # the centre transferred it to the police, by mistake
        operator = (
            await session.exec(select(Person).where(Person.telegram_id == center.id))
        ).one()
        await tickets.transfer(
            session,
            TelegramTicketNotifier(h.settings),
            actor=operator,
            roles=await roles_of(session, operator.id or 0),
            ticket_id=ticket.id or 0,
            department_id=police_dept.id or 0,
            now=h.clock.now(),
        )
        await session.commit()
    assert h.app is not None
    h.app.sender.wake()
    await h.settle()
    card = await police.next_message()
    assert "↩️ 退单" in card.buttons
    await police.press("↩️ 退单", message_id=card.message_id)
    await police.wait_until(lambda t: "理由" in t.bot_messages[-1].text)
    await police.send("电梯维修属物业服务，不是派出所职责")
    await police.wait_until(lambda t: "退回" in t.bot_messages[-1].text)
    await h.settle()
    transcript = await center.transcript()
    returned = [m for m in transcript.bot_messages if "退单" in m.text and "电梯" in m.text]
    assert returned, [m.text for m in transcript.bot_messages]
    centre_card = [
        m for m in transcript.bot_messages if shown_number(ticket) in m.text and m.buttons
    ][-1]
    assert "🏢 转部门" in centre_card.buttons
    await center.press("🏢 转部门", message_id=centre_card.message_id)
    await h.settle()
    await center.press("杏林物业服务有限公司")
    await h.settle()
    assert shown_number(ticket) in (await company.next_message()).text
    async with h.session() as session:
        row = (await session.exec(select(Ticket).where(Ticket.id == ticket.id))).one()
        assert row.state == TicketState.TRANSFERRED
        returned_events = (
            await session.exec(
                select(TicketEvent).where(
                    TicketEvent.ticket_id == ticket.id, TicketEvent.action == "returned"
                )
            )
        ).all()
    assert len(returned_events) == 1 and "物业" in (returned_events[0].note or "")
    await h.check_language()


async def test_a_lead_and_an_assisting_department_both_answer_before_it_resolves(
    h: Harness,
) -> None:
    body = copy.deepcopy(policy_to_json(load_default_policy()))
    body["routes"].insert(
        0,
        {
            "name": "building-to-urban",
            "categories": ["illegal_building"],
            "department": "urban_construction",
            "assist": ["police"],
        },
    )
    async with h.session() as session:
        session.add(PolicyVersion(body=body, created_at=h.clock.now()))
        await session.commit()
    resident = await h.persona("resident")
    urban, police = await h.persona_of(URBAN), await h.persona_of(POLICE)
    ticket = await file_ticket_for(
        h, "resident", "楼顶私自搭建彩钢棚", category=TicketCategory.ILLEGAL_BUILDING
    )
    lead_card = await urban.next_message()
    assert shown_number(ticket) in lead_card.text
    ask = await police.next_message()
    assert "协办" in ask.text and "✍️ 协办答复" in ask.buttons

    await urban.press("✅ 签收")
    await h.settle()
    await urban.press("✔️ 办结")
    await h.settle()
    await urban.send("已责令拆除")
    refused = await urban.wait_until(
        lambda t: any("协办部门尚未全部答复" in m.text for m in t.bot_messages)
    )
    assert refused

    await police.press("✍️ 协办答复")
    assert "协办意见" in (await police.next_message()).text
    await police.send("已派民警到场，当事人同意自行拆除")
    assert "主办部门" in (await police.next_message()).text
    await h.settle()
    heard = await urban.wait_until(
        lambda t: any("协办答复" in m.text and "自行拆除" in m.text for m in t.bot_messages)
    )
    assert heard
    await urban.send("/cancel")  # leaves the prompt: never taken as the result (it once was)
    await h.settle()
    async with h.session() as session:
        row = (await session.exec(select(Ticket).where(Ticket.id == ticket.id))).one()
    assert row.state == TicketState.ACCEPTED
    await urban.press("✔️ 办结", message_id=lead_card.message_id)
    await h.settle()
    await urban.send("违建已拆除，恢复原状")
    await h.settle()
    rate = await resident.wait_until(
        lambda t: any("办结" in m.text or "满意" in " ".join(m.buttons) for m in t.bot_messages)
    )
    assert rate
    async with h.session() as session:
        row = (await session.exec(select(Ticket).where(Ticket.id == ticket.id))).one()
    assert row.state == TicketState.RESOLVED
    await h.check_language()


async def test_a_worker_files_a_patrol_finding_and_a_call_for_an_elderly_caller(
    h: Harness,
) -> None:
    worker = await h.persona("worker")
    await worker.send("/report")
    first = await worker.next_message()
    assert "还没有加入网格" not in first.text and "受理登记" in first.text
    await worker.press("巡查发现")
    category = await worker.next_message()
    assert "什么类型" in category.text
    await worker.press("公共设施损坏")
    assert "具体位置" in (await worker.next_message()).text
    await worker.send("3号楼东侧路灯不亮，晚上很黑")
    filed = await worker.next_message()
    assert "巡查发现" in filed.text

    await worker.send("/report")
    await said(worker, "受理登记")
    await worker.press("来电")
    await said(worker, "什么类型")
    await worker.press("民生求助")
    await said(worker, "姓名和电话")
    await worker.send("张三 12345")  # not a phone number: asked again
    await said(worker, "请发送诉求人的姓名和电话")
    await worker.send("王秀英 13812341234")
    await said(worker, "具体位置")
    await worker.send("独居老人家中水管漏水，需要上门帮忙")
    await h.settle()
    replies = [m for m in (await worker.transcript()).bot_messages if "电话回复" in m.text]
    assert replies and "王秀英 138****1234" in replies[-1].text
    await h.settle()
    transcript = await worker.transcript()
    cards = [m for m in transcript.bot_messages if "来源：来电" in m.text]
    assert cards and "138****1234" in cards[-1].text and "13812341234" not in cards[-1].text
    async with h.session() as session:
        rows = (
            await session.exec(select(Ticket).where(col(Ticket.filed_by_id).is_not(None)))
        ).all()
    sources = {TicketSource(r.source) for r in rows}
    assert sources == {TicketSource.PATROL, TicketSource.PHONE}
    assert all(r.reporter_id is None for r in rows)
    await h.check_language()


async def test_forged_extension_decisions_and_a_bad_department_sheet_are_refused(
    h: Harness,
) -> None:
    admin, worker = await h.persona("admin"), await h.persona("worker")
    fire = await h.persona_of(TELEGRAM_ID_BASE + 14)
    ticket = await file_ticket_for(
        h, "resident", "楼道堆满纸箱，堵塞消防通道", category=TicketCategory.FIRE
    )
    async with h.session() as session:
        station = (await session.exec(select(Department).where(Department.code == "fire"))).one()
        row = (await session.exec(select(Ticket).where(Ticket.id == ticket.id))).one()
        row.owner_department_id = station.id
        row.owner_role = "department"
        row.state = TicketState.TRANSFERRED
        session.add(row)
        assert row.resolve_deadline is not None
        request = ExtensionRequest(
            ticket_id=row.id or 0,
            department_id=station.id,
            asked_by=(await session.exec(select(Department.id))).first() or 1,
            reason="需要更多时间",
            wanted=row.resolve_deadline.replace(day=row.resolve_deadline.day + 1),
            asked_at=h.clock.now(),
        )
        session.add(request)
        await session.commit()
        await session.refresh(request)
    for someone in (worker, fire):  # a chat with a message of the bot to press on
        await someone.send("/help")
        await someone.next_message()
    forged = ExtensionCb(id=request.id or 0, decision=ExtensionDecision.APPROVE).pack()
    await h.forge_press(worker, forged)  # a worker is not the centre: refused
    await h.forge_press(fire, forged)  # nor the department itself
    async with h.session() as session:
        refusals = (
            await session.exec(
                select(AuditLog).where(
                    AuditLog.action == "refused:dispatch", AuditLog.object_id == ticket.id
                )
            )
        ).all()
        kept = await session.get(ExtensionRequest, request.id)
    assert len(refusals) == 2 and kept is not None and kept.approved is None

    # a worker forging the admin's department buttons: refused and audited, nothing changes
    await h.forge_press(worker, f"dm:y:{station.id}:0")  # "retire it, yes"
    async with h.session() as session:
        refused = (
            await session.exec(select(AuditLog).where(AuditLog.action == "refused:manage"))
        ).all()
        still = await session.get(Department, station.id)
    assert refused and still is not None and still.active

    bad = "部门名称,部门编码,负责类别\n消防站,XFZ!,消防隐患\n城管队,cgd,不存在的类别\n"
    await admin.send_document(bad.encode("utf-8"), "departments.csv", caption="部门")
    await h.settle()
    result = await admin.wait_until(lambda t: any("未导入" in m.text for m in t.bot_messages))
    text = [m for m in result.bot_messages if "导入" in m.text][-1].text
    assert "XFZ!" in text and "不存在的类别" in text
    async with h.session() as session:
        names = {d.name for d in (await session.exec(select(Department))).all()}
    assert "城管队" not in names and "消防站" not in names

    good = "部门名称,部门编码,负责类别,电话\n城管执法队,cgd,违章搭建、环境卫生,0592-5550110\n"
    await admin.send_document(good.encode("utf-8"), "departments.csv", caption="部门")
    await admin.wait_until(lambda t: any("新增 1 条" in m.text for m in t.bot_messages))
    async with h.session() as session:
        added = (await session.exec(select(Department).where(Department.code == "cgd"))).one()
    assert added.categories == ["illegal_building", "sanitation"]


async def test_the_centre_adds_an_assisting_department_by_hand(h: Harness) -> None:
    """🤝: a ticket the rule sent to the 城建办 alone; the centre asks the police to assist,
    who are told with the answer button; a worker's forged press is refused and audited."""
    body = copy.deepcopy(policy_to_json(load_default_policy()))
    body["routes"].insert(
        0,
        {
            "name": "building-to-urban",
            "categories": ["illegal_building"],
            "department": "urban_construction",
        },
    )
    async with h.session() as session:
        session.add(PolicyVersion(body=body, created_at=h.clock.now()))
        await session.commit()
    centre, worker = await h.persona("center"), await h.persona("worker")
    urban, police = await h.persona_of(URBAN), await h.persona_of(POLICE)
    ticket = await file_ticket_for(
        h, "resident", "楼顶私自搭建彩钢棚", category=TicketCategory.ILLEGAL_BUILDING
    )
    await urban.next_message()
    await centre.send("/ticket " + shown_number(ticket))
    await h.settle()
    await h.forge_press(centre, AssistAddCb(id=ticket.id or 0).pack())
    picker = await centre.wait_until(lambda t: any("协办部门" in m.text for m in t.bot_messages))
    assert picker
    await centre.press("杏林派出所")
    done = await centre.wait_until(
        lambda t: any("已请杏林派出所协办" in m.text for m in t.bot_messages)
    )
    assert done
    ask = await police.wait_until(lambda t: any("协办" in m.text for m in t.bot_messages))
    assert any("✍️ 协办答复" in m.buttons and "⏳ 申请延期" in m.buttons for m in ask.bot_messages)

    # the assisting department asks for more time for its answer; the centre approves
    async with h.session() as session:
        assist = (
            await session.exec(select(TicketAssist).where(TicketAssist.ticket_id == ticket.id))
        ).one()
    wanted = (assist.due_at + timedelta(days=4)).astimezone(SHANGHAI).date()
    police.cursor = (await police.transcript()).bot_messages[-1].message_id
    await police.press("⏳ 申请延期")
    assert "理由" in (await police.next_message()).text
    await police.send("需调取监控核实当事人身份")
    assert "日期" in (await police.next_message()).text
    await police.send(wanted.isoformat())
    assert "批准前" in (await police.next_message()).text
    request = await centre.wait_until(
        lambda t: any("✅ 批准" in m.buttons for m in t.bot_messages)
    )
    assert request
    await centre.press("✅ 批准")
    await h.settle()
    told = await police.wait_until(lambda t: any("新期限" in m.text for m in t.bot_messages))
    assert told
    async with h.session() as session:
        moved = (
            await session.exec(select(TicketAssist).where(TicketAssist.id == assist.id))
        ).one()
    assert moved.due_at.astimezone(SHANGHAI).date() >= wanted > assist.due_at.date()

    await worker.send("/start")
    await h.settle()
    await h.forge_press(worker, AssistAddCb(id=ticket.id or 0, department=1).pack())
    async with h.session() as session:
        refused = (
            await session.exec(
                select(AuditLog).where(
                    AuditLog.action == "refused:dispatch", AuditLog.object_id == ticket.id
                )
            )
        ).all()
        assists = (
            await session.exec(select(TicketAssist).where(TicketAssist.ticket_id == ticket.id))
        ).all()
    assert len(refused) == 1 and len(assists) == 1
    await h.check_language()


async def test_an_unanswered_assisting_ask_is_reminded_once(h: Harness) -> None:
    """A working day with no answer: the reminder sweep asks the assisting department again,
    once, with its buttons."""
    body = copy.deepcopy(policy_to_json(load_default_policy()))
    body["routes"].insert(
        0,
        {
            "name": "building-to-urban",
            "categories": ["illegal_building"],
            "department": "urban_construction",
            "assist": ["police"],
        },
    )
    async with h.session() as session:
        session.add(PolicyVersion(body=body, created_at=h.clock.now()))
        await session.commit()
    police = await h.persona_of(POLICE)
    ticket = await file_ticket_for(
        h, "resident", "楼顶私自搭建彩钢棚", category=TicketCategory.ILLEGAL_BUILDING
    )
    await police.wait_until(lambda t: any("协办" in m.text for m in t.bot_messages))
    async with h.session() as session:
        assist = (
            await session.exec(select(TicketAssist).where(TicketAssist.ticket_id == ticket.id))
        ).one()
        _policy, calendar = await policy_of(session, ticket)
    for _ in range(2):  # twice past the moment: one reminder
        h.clock.set(
            calendar.add(assist.created_at, reminders.REMIND_AFTER) + timedelta(minutes=11)
        )
        await h.sweeps.catch_up(coalesce=True)
        assert h.app is not None
        h.app.sender.wake()
        await h.settle()
    transcript = await police.wait_until(lambda t: any("提醒" in m.text for m in t.bot_messages))
    reminded = [m for m in transcript.bot_messages if "提醒：贵部门尚未答复" in m.text]
    assert len(reminded) == 1 and "✍️ 协办答复" in reminded[0].buttons
    await h.check_language()
