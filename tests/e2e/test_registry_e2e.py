"""The registry end to end: grids, invitations, joining by QR link, /mygrid, forged callbacks."""

from __future__ import annotations

import re

import pytest
from sqlmodel import col, select

from bot.services.deeplinks import join_payload
from bot.telegram.callbacks import HouseholdCb
from models import AuditLog, Grid, Household, Person, Role, RoleAssignment
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
