"""Party members' contact households (党员联系户) end to end, on the demo community through the
sandbox: an admin imports a resident who uses the bot as a party member (the 政治面貌 column);
the head records her as a probationary member of her grid's branch from the chat; the worker
picks two contact households for her; her own morning push names them and she records a
contact; /mygrid shows her as the households' contact and the head the coverage. Forged
buttons and odd /party arguments get clear answers."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import col, select

from bot import labels
from bot.i18n import gettext_for
from bot.services.id_numbers import with_check_digit
from bot.telegram.callbacks import PartyContactCb, PartyContactKind, PartyPickCb
from models import (
    AuditLog,
    Grid,
    Household,
    HouseholdMember,
    PartyContact,
    PartyContactLog,
    PartyKind,
    Person,
    VisitKind,
)
from tests.e2e.harness import Harness

pytestmark = pytest.mark.e2e

HEADER = ["户编号", "姓名", "与户主关系", "公民身份号码", "人口类别", "联系电话", "政治面貌"]


def t(msgid: str, **params: Any) -> str:
    return gettext_for("zh_Hans", msgid, **params)


def sheet(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


async def test_a_party_member_gets_her_contact_households_and_her_push(h: Harness) -> None:
    admin = await h.persona("admin")
    head = await h.persona("head")
    worker = await h.persona("worker")
    resident = await h.persona("resident")
    async with h.session() as session:
        her = (await session.exec(select(Person).where(Person.telegram_id == resident.id))).one()
        home = await session.get(Household, her.household_id)
        assert home is not None and her.phone
        grid = await session.get(Grid, home.grid_id)
        assert grid is not None
        neighbours = [
            n
            for n in (
                await session.exec(
                    select(Household)
                    .where(Household.grid_id == grid.id, Household.id != home.id)
                    .order_by(col(Household.code))
                )
            ).all()
        ][:2]
    number = with_check_digit("11010119850412002")  # a woman born 1985-04-12

    # the admin registers her with the ledger's 政治面貌 column; a bad word is named
    row = [home.code, "陈晓梅", "配偶", number, "户籍", her.phone[3:], "中共党员"]
    await admin.send_document(sheet([[*row[:6], "党员吧"]]), filename="人口.csv", caption="人口")
    await h.settle()
    assert "党员吧" in (await admin.transcript()).texts[-1]
    await admin.send_document(sheet([row]), filename="人口.csv", caption="人口")
    await h.settle()
    async with h.session() as session:
        member = (
            await session.exec(select(HouseholdMember).where(HouseholdMember.name == "陈晓梅"))
        ).one()
    assert member.party == PartyKind.FULL and member.id is not None

    # the head records her as probationary from the chat; her grid's branch comes with it
    await head.send(f"/party 设置 #{member.id} 预备")
    answer = (await head.next_message()).text
    assert t(labels.PARTY_KIND[PartyKind.PROBATIONARY]) in answer and "党支部" in answer
    for hostile in ("/party 设置", f"/party 设置 #{member.id} 好人", "/party 设置 #99999999 正式"):
        await head.send(hostile)
        reply = (await head.next_message()).text
        assert reply and "Traceback" not in reply
    await worker.send(f"/party 设置 #{member.id} 正式")  # a worker may not
    assert "网格长" in (await worker.next_message()).text

    # the worker picks two contact households for her
    await worker.send(f"/party 联系户 #{member.id}")
    picker = await worker.next_message()
    assert "陈晓梅" in picker.text, picker.text
    for household in neighbours:  # on the first page (by number), maybe another's now
        data = PartyPickCb(member=member.id, household=household.id or 0, page=0).pack()
        assert data in str(picker.raw["inline_keyboard"])
        await worker.press(callback_data=data)
        await h.settle()
    async with h.session() as session:
        chosen = (
            await session.exec(
                select(PartyContact.household_id).where(PartyContact.member_id == member.id)
            )
        ).all()
    assert sorted(chosen) == sorted(n.id for n in neighbours)

    # her own morning push (she uses the bot with the register's phone): both households
    await h.advance(timedelta(minutes=15))
    push = next(
        m for m in (await resident.transcript()).bot_messages if "待联系的联系户" in m.text
    )
    assert all(n.head_name in push.text for n in neighbours)
    await resident.press(t("📝 Contacted {name}", name=neighbours[0].head_name))
    await h.settle()
    await resident.press(t(labels.VISIT_KIND[VisitKind.LECTURE]))
    await h.settle()
    assert "已记录" in (await resident.transcript()).texts[-1]
    async with h.session() as session:
        log = (await session.exec(select(PartyContactLog))).all()
    assert [(x.household_id, x.kind) for x in log if x.member_id == member.id] == [
        (neighbours[0].id, VisitKind.LECTURE)
    ]
    await h.advance(timedelta(minutes=15))  # one push a day
    pushes = [m for m in (await resident.transcript()).bot_messages if "待联系的联系户" in m.text]
    assert len(pushes) == 1

    # /mygrid: she sees her households; the head sees the coverage
    await resident.send("/mygrid")
    await h.settle()
    assert any("您是 2 户的联系党员" in x for x in (await resident.transcript()).texts[-3:])
    await head.send("/mygrid")
    await h.settle()
    coverage = next(x for x in (await head.transcript()).texts if "党员联系户：" in x)
    assert "户有联系党员" in coverage
    # her own household gets a contact too (a demo party member of the grid): she sees who
    async with h.session() as session:
        demo_member = (
            await session.exec(
                select(HouseholdMember)
                .join(Household, col(Household.id) == HouseholdMember.household_id)
                .where(
                    Household.grid_id == grid.id,
                    col(HouseholdMember.party).is_not(None),
                    HouseholdMember.id != member.id,
                )
            )
        ).first()
    assert demo_member is not None and demo_member.id is not None
    await worker.send(f"/party 联系户 #{demo_member.id}")
    await worker.next_message()
    await worker.press(
        callback_data=PartyPickCb(member=demo_member.id, household=home.id or 0, page=0).pack()
    )
    await h.settle()
    await resident.send("/mygrid")
    await h.settle()
    assert any(
        f"本户的联系党员（党员联系户）：{demo_member.name}" in x
        for x in (await resident.transcript()).texts[-3:]
    )
    await resident.send("/party")
    await h.settle()
    assert any("陈晓梅" in x for x in (await resident.transcript()).texts[-2:])

    # forged presses: not her household; not the worker's to pick for
    other = await h.persona("other_worker")  # the neighbouring grid's: not hers to pick for
    await other.send("/party")
    await h.settle()
    await h.forge_press(
        other, PartyPickCb(member=member.id, household=neighbours[0].id or 0, page=0).pack()
    )
    assert (await other.transcript()).toast is not None
    await h.forge_press(
        worker, PartyContactCb(household=neighbours[1].id or 0, kind=PartyContactKind.PHONE).pack()
    )
    assert "联系党员" in ((await worker.transcript()).toast or {}).get("text", "")
    await h.forge_press(worker, "yc:1:z")
    assert (await worker.transcript()).toast is not None
    async with h.session() as session:
        refused = (
            await session.exec(
                select(AuditLog).where(col(AuditLog.action).startswith("refused:party"))
            )
        ).all()
    assert len(refused) >= 2
