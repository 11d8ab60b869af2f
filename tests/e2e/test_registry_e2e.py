"""The registry end to end: grids, invitations, joining by QR link, /mygrid, forged callbacks."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlmodel import col, select

from bot.services.deeplinks import join_payload
from bot.services.demo import DEMO_PERSONAS
from bot.telegram.callbacks import (
    GridEditCb,
    GridOp,
    HouseholdCb,
    InviteGridCb,
    InviteRoleCb,
    MuteSpan,
    NoticeField,
    NoticeFieldCb,
    PersonAction,
    PersonCb,
    PersonGridCb,
    PersonMuteCb,
    PickStep,
)
from models import AuditLog, Grid, Household, Invite, Person, Role, RoleAssignment
from tests.e2e.harness import Harness

pytestmark = pytest.mark.e2e


async def test_admin_adds_a_grid_and_invites_a_worker_who_joins(h: Harness) -> None:
    admin = await h.persona("admin")
    async with h.session() as session:
        community = (await session.exec(select(Grid).where(Grid.tier == 1))).first()
    assert community is not None
    await admin.send(f"/grid add {community.code} 新建测试网格")
    added = await admin.next_message()
    match = re.search(r"编码 (\d+)", added.text)
    assert match, added.text
    new_code = match.group(1)

    await admin.send(f"/invite 网格员 {new_code}")
    invitation = await admin.next_message()
    link = re.search(r"https://t\.me/(\w+)\?start=(\S+)", invitation.text)
    assert link, invitation.text
    assert "72" in invitation.text
    payload = link.group(2)

    newcomer = await h.newcomer("赵新")
    await newcomer.start(payload)
    welcome = await newcomer.next_message()
    assert "网格员" in welcome.text and "新建测试网格" in welcome.text
    await h.settle()
    menu = [c["command"] for c in (await newcomer.transcript()).commands]
    assert "households" in menu and "invite" not in menu

    second = await h.newcomer("钱多")
    await second.start(payload)
    assert "已经被使用过" in (await second.next_message()).text

    await admin.send("/grid")
    tree = await admin.next_message()
    assert "新建测试网格" in tree.text or tree.buttons  # first page, or more pages to go


async def test_resident_joins_by_qr_link_shares_phone_and_sees_mygrid(h: Harness) -> None:
    worker = await h.persona("worker")
    await worker.send("/qr")
    qr = await worker.next_message()
    assert qr.photo is not None and "扫码加入" in (qr.caption or "")

    async with h.session() as session:
        grid_id = (
            await session.exec(
                select(RoleAssignment.grid_id)
                .join(Person, col(Person.id) == RoleAssignment.person_id)
                .where(Person.telegram_id == worker.id, RoleAssignment.role == Role.WORKER)
            )
        ).one()
        grid = await session.get(Grid, grid_id)
        household = (
            await session.exec(
                select(Household).where(
                    Household.grid_id == grid_id, col(Household.is_business).is_(False)
                )
            )
        ).first()
    assert grid is not None and household is not None and household.phone is not None

    resident = await h.newcomer("孙阿姨", phone=household.phone.lstrip("+"))
    await resident.start(join_payload(grid.code))
    asked = await resident.next_message()
    assert grid.name in asked.text
    assert (await resident.transcript()).reply_keyboard == [["📱 分享我的手机号"], ["跳过"]]
    await resident.press("📱 分享我的手机号")
    done = await resident.next_message()
    assert household.address in done.text

    await resident.send("/mygrid")
    board = await resident.next_message()
    assert "网格公示" in board.text and grid.name in board.text
    assert "网格员" in board.text
    card = await resident.next_message()
    assert card.contact is not None


async def test_a_forged_callback_for_another_grids_household_is_refused(h: Harness) -> None:
    worker = await h.persona("worker")
    await worker.send("/households")
    listing = await worker.next_message()
    assert listing.buttons  # their own households, as buttons
    async with h.session() as session:
        me = (await session.exec(select(Person).where(Person.telegram_id == worker.id))).one()
        foreign = (
            await session.exec(select(Household).where(Household.worker_id != me.id))
        ).first()
    assert foreign is not None and foreign.id is not None

    await h.forge_press(worker, HouseholdCb(id=foreign.id).pack())
    transcript = await worker.transcript()
    assert transcript.toast is not None
    assert "不在您负责的网格范围内" in transcript.toast["text"]
    assert foreign.head_name not in transcript.texts[-1]
    async with h.session() as session:
        refused = (
            await session.exec(select(AuditLog).where(AuditLog.action == "refused:read_sensitive"))
        ).all()
    assert [(r.object_type, r.object_id) for r in refused] == [("household", foreign.id)]

    await worker.press(listing.buttons[0])
    own = await worker.next_message()
    assert "地址" in own.text


async def test_an_admin_mutes_a_resident_who_is_told_politely(h: Harness) -> None:
    admin = await h.persona("admin")
    resident = await h.persona("resident")
    async with h.session() as session:
        phone = (
            await session.exec(select(Person.phone).where(Person.telegram_id == resident.id))
        ).one()
    assert phone is not None
    await admin.send(f"/people mute {phone} 24 反复恶意反映")
    assert "24" in (await admin.next_message()).text
    await resident.send("/report")
    refused = await resident.next_message()
    assert "反复恶意反映" in refused.text and "网格员" in refused.text
    async with h.session() as session:
        audited = (
            await session.exec(select(AuditLog).where(AuditLog.action == "person_mute"))
        ).all()
    assert len(audited) == 1
    await admin.send(f"/people mute {phone} 0")
    assert "可以" in (await admin.next_message()).text


def callback_data_of(message: Any) -> list[str]:
    return [key["callback_data"] for row in message.inline_keyboard for key in row]


async def test_invite_by_buttons_role_then_grid_drilled_down_and_paged(h: Harness) -> None:
    """Seen: /invite needed a role and a grid code typed; bare, it printed English words."""
    admin = await h.persona("admin")
    async with h.session() as session:
        street = (await session.exec(select(Grid).where(Grid.tier == 0))).one()
        community = (
            await session.exec(select(Grid).where(Grid.parent_id == street.id).order_by(Grid.code))
        ).first()
        assert community is not None
        tier2 = (
            await session.exec(
                select(Grid).where(Grid.parent_id == community.id).order_by(Grid.code)
            )
        ).first()
        assert tier2 is not None
        # a tier-2 grid with twenty more grids below it than one page shows
        for n in range(20):
            extra = Grid(
                code=f"{tier2.code}9{n:02d}",
                name=f"加密网格{n:02d}",
                tier=3,
                parent_id=tier2.id,
                created_at=h.clock.now(),
            )
            session.add(extra)
            await session.flush()
            extra.path = f"{tier2.path}{extra.id}/"
        await session.commit()

    await admin.send("/invite")
    roles = await admin.next_message()
    assert roles.buttons[:6] == [
        "网格员",
        "网格长",
        "综合调处中心工作人员",
        "职能部门",
        "督查人员",
        "系统管理员",
    ]
    assert "居民" not in roles.buttons
    await admin.press("网格员")
    await h.settle()
    picker = (await admin.transcript()).bot_messages[-1]
    assert picker.message_id == roles.message_id  # the same message, now the grids
    assert picker.buttons[0] == f"✅ {street.name}" and f"📂 {community.name}" in picker.buttons
    await admin.press(f"📂 {community.name}")
    await h.settle()
    await admin.press(f"📂 {tier2.name}")
    await h.settle()
    level = (await admin.transcript()).bot_messages[-1]
    grid_buttons = [b for b in level.buttons if "网格" in b and not b.startswith("✅")]
    assert 0 < len(grid_buttons) <= 8 and "下一页 ▶" in level.buttons
    seen = set(grid_buttons)
    while "下一页 ▶" in level.buttons:
        await admin.press("下一页 ▶")
        await h.settle()
        level = (await admin.transcript()).bot_messages[-1]
        page = [b for b in level.buttons if "网格" in b and not b.startswith("✅")]
        assert len(page) <= 8
        seen |= set(page)
        assert all(len(data.encode()) <= 64 for data in callback_data_of(level))
    assert {f"加密网格{n:02d}" for n in range(20)} <= seen
    await admin.press("加密网格19")
    await h.settle()
    invitation = (await admin.transcript()).bot_messages[-1]
    link = re.search(r"https://t\.me/(\w+)\?start=(\S+)", invitation.text)
    assert link and "加密网格19" in invitation.text, invitation.text

    newcomer = await h.newcomer("周新")
    await newcomer.start(link.group(2))
    welcome = await newcomer.next_message()
    assert "网格员" in welcome.text and "加密网格19" in welcome.text

    await admin.send("/invite 网格长")  # a role typed without a grid: on to the grid
    typed = await admin.next_message()
    assert f"✅ {street.name}" in typed.buttons

    await admin.send("/invite")  # the pending list is gone: the link was used
    await admin.next_message()
    await admin.press("职能部门")
    await h.settle()
    await admin.press(f"✅ {street.name}")
    await h.settle()
    departments = (await admin.transcript()).bot_messages[-1]
    assert "哪个部门" in departments.text and departments.buttons
    await admin.press(departments.buttons[0])
    await h.settle()
    issued = (await admin.transcript()).bot_messages[-1]
    assert "职能部门" in issued.text and "https://t.me/" in issued.text


async def test_a_forged_invite_press_for_a_grid_outside_ones_scope_is_refused(h: Harness) -> None:
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
        # the head also administers their own grid, and nothing else
        session.add(
            RoleAssignment(
                person_id=me.id or 0,
                role=Role.ADMIN,
                grid_id=own.id or 0,
                created_at=h.clock.now(),
            )
        )
        await session.commit()
        foreign = (
            await session.exec(
                select(Grid).where(~col(Grid.path).startswith(own.path), Grid.tier == 3)
            )
        ).first()
    assert foreign is not None and foreign.id is not None

    await head.send("/invite")
    await head.next_message()
    await head.press("网格员")
    await h.settle()
    picker = (await head.transcript()).bot_messages[-1]
    assert picker.buttons[0] == f"✅ {own.name}"
    assert foreign.name not in picker.buttons

    for step in (PickStep.CHOOSE, PickStep.OPEN):
        forged = InviteGridCb(role=Role.WORKER, grid=foreign.id, page=0, step=step)
        await h.forge_press(head, forged.pack())
        toast = (await head.transcript()).toast
        assert toast is not None and "不在您负责的网格范围内" in toast["text"]
    await h.forge_press(head, InviteRoleCb(role=Role.RESIDENT).pack())
    assert "不能邀请" in ((await head.transcript()).toast or {}).get("text", "")
    await h.forge_press(head, "ig:worker:+7:0:c")  # not in its packed form: a stale button
    assert "按钮已失效" in ((await head.transcript()).toast or {}).get("text", "")
    async with h.session() as session:
        assert (await session.exec(select(Invite))).all() == []
        refused = (
            await session.exec(select(AuditLog).where(AuditLog.action == "refused:manage"))
        ).all()
    assert {r.object_id for r in refused} == {foreign.id}

    resident = await h.persona("resident")
    await resident.send("/invite")
    answer = await resident.next_message()
    assert "管理员" in answer.text and not answer.buttons


async def test_usage_texts_in_chinese_have_no_english_words_and_the_chinese_words_work(
    h: Harness,
) -> None:
    """Seen: the Chinese usage of /grid, /people and /holidays told people to type add,
    rename, move, notice, area…, off, set, mute, work, remove."""
    admin = await h.persona("admin")
    commands = ("/grid 帮助", "/people 调整 13900000000", "/people 禁言 139", "/holidays")
    for command in (*commands, "/quota_rules 设置"):
        await admin.send(command)
        usage = (await admin.next_message()).text
        words = set(re.findall(r"[A-Za-z]+", usage)) - {"grid", "people", "holidays", "quota"}
        words -= {"rules"}  # /quota_rules
        assert not words, (command, words, usage)

    async with h.session() as session:
        community = (await session.exec(select(Grid).where(Grid.tier == 1))).first()
        resident = (
            await session.exec(
                select(Person).where(Person.telegram_id == DEMO_PERSONAS["resident"])
            )
        ).one()
    assert community is not None and resident.phone is not None
    await admin.send(f"/grid 新增 {community.code} 中文命令网格")
    added = (await admin.next_message()).text
    code = re.search(r"编码 (\d+)", added)
    assert code, added
    await admin.send(f"/grid 改名 {code.group(1)} 改过名的网格")
    assert "改过名的网格" in (await admin.next_message()).text
    await admin.send(f"/grid 公示 {code.group(1)} 投诉电话 0592-1234567")
    assert "已更新" in (await admin.next_message()).text
    async with h.session() as session:
        grid = (await session.exec(select(Grid).where(Grid.code == code.group(1)))).one()
    assert grid.name == "改过名的网格" and grid.complaint_phone == "+865921234567"
    await admin.send(f"/people 禁言 {resident.phone} 2 测试")
    assert "2" in (await admin.next_message()).text
    await admin.send("/holidays 休息 2027-02-10 春节调休")
    assert "2027-02-10" in (await admin.next_message()).text


async def test_grid_changes_by_buttons_only_the_name_and_text_are_typed(h: Harness) -> None:
    admin = await h.persona("admin")
    async with h.session() as session:
        street = (await session.exec(select(Grid).where(Grid.tier == 0))).one()
        communities = (
            await session.exec(select(Grid).where(Grid.parent_id == street.id).order_by(Grid.code))
        ).all()
    first, second = communities[0], communities[1]

    await admin.send("/grid 新增")
    picker = await admin.next_message()
    assert picker.buttons[0] == f"✅ {street.name}"
    await admin.press(f"📂 {first.name}")
    await h.settle()
    await admin.press(f"✅ {first.name}")
    await h.settle()
    assert "名称" in (await admin.transcript()).bot_messages[-1].text
    await admin.send("按钮新建网格")
    added = await admin.next_message()
    assert "按钮新建网格" in added.text

    await admin.send("/grid 改名")
    await admin.next_message()
    await admin.press(f"📂 {first.name}")
    await h.settle()
    await admin.press("按钮新建网格")
    await h.settle()
    await admin.send("改名后的网格")
    assert "改名后的网格" in (await admin.next_message()).text

    await admin.send("/grid 移动")
    await admin.next_message()
    await admin.press(f"📂 {first.name}")
    await h.settle()
    await admin.press("改名后的网格")
    await h.settle()
    assert "改名后的网格" in (await admin.transcript()).bot_messages[-1].text  # where to?
    await admin.press(f"📂 {second.name}")
    await h.settle()
    await admin.press(f"✅ {second.name}")
    await h.settle()
    assert second.name in (await admin.transcript()).bot_messages[-1].text

    await admin.send("/grid 公示")
    await admin.next_message()
    await admin.press(f"📂 {second.name}")
    await h.settle()
    await admin.press("改名后的网格")
    await h.settle()
    await admin.press("☎️ 投诉电话")
    await h.settle()
    await admin.send("0592-7654321")
    assert "已更新" in (await admin.next_message()).text
    async with h.session() as session:
        moved = (await session.exec(select(Grid).where(Grid.name == "改名后的网格"))).one()
    assert moved.parent_id == second.id and moved.complaint_phone == "+865927654321"


async def test_a_forged_grid_change_outside_ones_scope_is_refused(h: Harness) -> None:
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
        session.add(
            RoleAssignment(
                person_id=me.id or 0,
                role=Role.ADMIN,
                grid_id=own.id or 0,
                created_at=h.clock.now(),
            )
        )
        await session.commit()
        foreign = (
            await session.exec(
                select(Grid).where(~col(Grid.path).startswith(own.path), Grid.tier == 3)
            )
        ).first()
    assert foreign is not None and foreign.id is not None
    forged = [
        GridEditCb(op=GridOp.RENAME, subject=0, grid=foreign.id, page=0, step=PickStep.CHOOSE),
        GridEditCb(op=GridOp.ADD, subject=0, grid=foreign.id, page=0, step=PickStep.OPEN),
        GridEditCb(
            op=GridOp.MOVE, subject=foreign.id, grid=own.id or 0, page=0, step=PickStep.CHOOSE
        ),
        NoticeFieldCb(grid=foreign.id, field=NoticeField.PHONE),
    ]
    await head.send("/grid 改名")
    picker = await head.next_message()
    assert foreign.name not in picker.buttons and picker.buttons[0] == f"✅ {own.name}"
    for data in forged:
        await h.forge_press(head, data.pack())
        toast = (await head.transcript()).toast
        assert toast is not None and "不在您负责的网格范围内" in toast["text"], data
    await head.send("我改的名字")  # no step was opened: nothing is renamed
    await h.settle()
    async with h.session() as session:
        again = await session.get(Grid, foreign.id)
    assert (
        again is not None and again.name == foreign.name and again.parent_id == foreign.parent_id
    )


async def test_people_by_buttons_card_role_and_grid_mute_and_deactivate(h: Harness) -> None:
    admin = await h.persona("admin")
    async with h.session() as session:
        worker = (
            await session.exec(select(Person).where(Person.telegram_id == DEMO_PERSONAS["worker"]))
        ).one()
        other = (
            await session.exec(
                select(Person).where(Person.telegram_id == DEMO_PERSONAS["other_worker"])
            )
        ).one()
        other_grid = (
            await session.exec(
                select(Grid)
                .join(RoleAssignment, col(RoleAssignment.grid_id) == Grid.id)
                .where(RoleAssignment.person_id == other.id, RoleAssignment.role == Role.WORKER)
            )
        ).one()
        parent = await session.get(Grid, other_grid.parent_id)
        community = await session.get(Grid, parent.parent_id if parent else 0)
    assert parent is not None and community is not None

    await admin.send(f"/people {worker.name}")
    listing = await admin.next_message()
    assert worker.name in listing.buttons
    await admin.press(worker.name)
    await h.settle()
    card = (await admin.transcript()).bot_messages[-1]
    assert "调整角色或网格" in " ".join(card.buttons)
    await admin.press("🔁 调整角色或网格")
    await h.settle()
    await admin.press("网格员")
    await h.settle()
    await admin.press(f"📂 {community.name}")
    await h.settle()
    await admin.press(f"📂 {parent.name}")
    await h.settle()
    await admin.press(other_grid.name)
    await h.settle()
    done = (await admin.transcript()).bot_messages[-1]
    assert worker.name in done.text and other_grid.name in done.text
    async with h.session() as session:
        held = (
            await session.exec(
                select(RoleAssignment).where(
                    RoleAssignment.person_id == worker.id, RoleAssignment.role == Role.WORKER
                )
            )
        ).all()
    assert [a.grid_id for a in held] == [other_grid.id]

    await admin.send(f"/people {worker.name}")
    await admin.next_message()
    await admin.press(worker.name)
    await h.settle()
    await admin.press("🔇 暂停其反映问题")
    await h.settle()
    await admin.press("24 小时")
    await h.settle()
    await admin.send("多次恶意反映")
    assert "24" in (await admin.next_message()).text

    await admin.send("/people 停用")  # no phone: the list, to pick from
    listing = await admin.next_message()
    assert listing.buttons
    await admin.send(f"/people {worker.name}")
    await admin.next_message()
    await admin.press(worker.name)
    await h.settle()
    await admin.press("🚫 停用（已离开）")
    await h.settle()
    await admin.press("确定停用")
    await h.settle()
    assert "停用" in (await admin.transcript()).bot_messages[-1].text
    async with h.session() as session:
        gone = await session.get(Person, worker.id)
    assert gone is not None and not gone.active and gone.muted_until is not None


async def test_a_forged_people_press_outside_ones_scope_is_refused(h: Harness) -> None:
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
        session.add(
            RoleAssignment(
                person_id=me.id or 0,
                role=Role.ADMIN,
                grid_id=own.id or 0,
                created_at=h.clock.now(),
            )
        )
        await session.commit()
        stranger = (
            await session.exec(
                select(Person)
                .join(RoleAssignment, col(RoleAssignment.person_id) == Person.id)
                .join(Grid, col(Grid.id) == RoleAssignment.grid_id)
                .where(~col(Grid.path).startswith(own.path), RoleAssignment.role == Role.WORKER)
            )
        ).first()
        inside = (await session.exec(select(Grid).where(Grid.parent_id == own.id))).first()
    assert stranger is not None and stranger.id is not None and inside is not None
    await head.send("/people")
    listing = await head.next_message()
    assert stranger.name not in listing.buttons
    forged = [
        PersonCb(action=PersonAction.OFF_YES, person=stranger.id),
        PersonCb(action=PersonAction.OPEN, person=stranger.id),
        PersonMuteCb(person=stranger.id, hours=MuteSpan.WEEK),
        PersonGridCb(
            person=stranger.id, role=Role.WORKER, grid=inside.id or 0, page=0, step=PickStep.CHOOSE
        ),
    ]
    for data in forged:
        await h.forge_press(head, data.pack())
        toast = (await head.transcript()).toast
        assert toast is not None and "不在您负责的网格范围内" in toast["text"], data
    async with h.session() as session:
        again = await session.get(Person, stranger.id)
        moved = (
            await session.exec(
                select(RoleAssignment).where(
                    RoleAssignment.person_id == stranger.id, RoleAssignment.grid_id == inside.id
                )
            )
        ).first()
    assert again is not None and again.active and again.muted_until is None and moved is None
