"""The people register end to end, on the demo community through the sandbox: an admin
imports 200 people (one bad ID number and one bad date: both named, nothing imported; fixed:
all imported); a worker sees a household's people masked and shows an ID number for a
purpose (a pop-up, audited); a resident is forgotten and the counts stay right; forged
buttons and hostile /people forget arguments get clear answers."""

from __future__ import annotations

import csv
import io
import sqlite3
from datetime import date, timedelta

import pytest
from sqlmodel import col, func, select

from bot.services.id_numbers import IdVault, mask_id_number, with_check_digit
from bot.telegram.callbacks import (
    MemberAction,
    MemberCb,
    MemberRevealCb,
    RevealField,
    RevealPurpose,
)
from models import AuditLog, Grid, Household, HouseholdMember, Person, Role, RoleAssignment
from tests.e2e.harness import PEOPLE_KEY, Harness

pytestmark = pytest.mark.e2e

HEADER = [
    "户编号",
    "姓名",
    "与户主关系",
    "公民身份号码",
    "性别",
    "联系电话",
    "人口类别",
    "迁入日期",
]


def numbers(count: int) -> list[str]:
    """Valid numbers of Beijing's 东城区 (110101): no demo person has them."""
    first = date(1960, 1, 1)
    return [
        with_check_digit(f"110101{first + timedelta(days=53 * n):%Y%m%d}{(n % 90) + 10:02d}1")
        for n in range(count)
    ]


def sheet(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    return buffer.getvalue().encode("gbk")


async def test_the_people_register_through_the_sandbox(h: Harness) -> None:
    admin = await h.persona("admin")
    worker = await h.persona("worker")  # the first tier-3 grid's; "head" leads the grid above
    head = await h.persona("head")
    async with h.session() as session:
        worker_person = (
            await session.exec(select(Person).where(Person.telegram_id == worker.id))
        ).one()
        grid_id = (
            await session.exec(
                select(RoleAssignment.grid_id).where(
                    RoleAssignment.person_id == worker_person.id,
                    RoleAssignment.role == Role.WORKER,
                )
            )
        ).first()
        grid = await session.get(Grid, grid_id)
        assert grid is not None
        mine = (
            await session.exec(
                select(Household)
                .where(Household.grid_id == grid.id, col(Household.is_business).is_(False))
                .order_by(col(Household.id))
            )
        ).first()
        assert mine is not None
        others = (
            await session.exec(
                select(Household)
                .where(col(Household.is_business).is_(False), Household.id != mine.id)
                .order_by(col(Household.id))
            )
        ).all()[:49]
        households = [mine, *others]
        before = int((await session.exec(select(func.count()).select_from(HouseholdMember))).one())
    ids = numbers(200)
    rows = [
        [
            households[n // 4].code,
            f"新居民{n}",
            "子女",
            ids[n],
            "",
            f"1391234{n:04d}",
            ("户籍", "常住", "流动")[n % 3],
            "2024-05-01",
        ]
        for n in range(200)
    ]
    good_number = rows[17][3]
    rows[17][3] = good_number[:-1] + ("1" if good_number[-1] == "0" else "0")  # a typo
    rows[150][7] = "2024-13-01"

    # one bad ID number and one bad date: both named, nothing imported
    await admin.send_document(sheet(rows), filename="人口.csv", caption="人口")
    await h.settle()
    report = (await admin.transcript()).texts[-1]
    assert "未导入任何数据" in report, report
    assert "第 19 行" in report and "第 152 行" in report and "校验码" in report
    assert good_number not in report and rows[17][3] not in report  # quoted masked only
    async with h.session() as session:
        count = int((await session.exec(select(func.count()).select_from(HouseholdMember))).one())
    assert count == before

    # fixed: all imported
    rows[17][3], rows[150][7] = good_number, "2024-05-01"
    await admin.send_document(sheet(rows), filename="人口.csv", caption="人口")
    await h.settle()
    assert "200" in (await admin.transcript()).texts[-1]
    async with h.session() as session:
        count = int((await session.exec(select(func.count()).select_from(HouseholdMember))).one())
        assert count == before + 200
        vault = IdVault(PEOPLE_KEY)
        imported = (
            await session.exec(
                select(HouseholdMember).where(col(HouseholdMember.name).startswith("新居民"))
            )
        ).all()
        assert sorted(vault.open(m.id_cipher or "") for m in imported) == sorted(ids)

    # the worker of the first household's grid: its people, masked; one number shown
    first = households[0]
    member = next(m for m in imported if m.household_id == first.id)
    assert member.id is not None
    await worker.send(f"/households {first.code}")
    await h.settle()
    await worker.press(next(b for b in (await worker.next_message()).buttons if b))
    await h.settle()
    card = (await worker.transcript()).texts[-1]
    assert "登记人口" in card and member.name in card
    number = vault.open(member.id_cipher or "")
    assert number not in card
    await worker.press(f"👤 {member.name} · 子女 · {(member.birth_date or date.min).year}-**-**")
    await h.settle()
    member_card = (await worker.transcript()).texts[-1]
    assert mask_id_number(number) in member_card and number not in member_card
    await worker.press("👁 查看完整公民身份号码")
    await h.settle()
    await worker.press("入户走访核实")
    seen = await worker.wait_until(lambda t: bool(t.toast and t.toast["text"]), timeout=10)
    toast = seen.toast
    assert toast is not None and number in toast["text"] and toast["show_alert"]
    assert number not in "\n".join((await worker.transcript()).texts)  # never in the chat
    async with h.session() as session:
        audit = (await session.exec(select(AuditLog).where(AuditLog.action == "reveal"))).one()
    assert audit.actor_id == worker_person.id and audit.object_id == member.id
    assert audit.data == {"field": "id_number", "purpose": "visit", "household": first.id}

    # counts where the head looks, before and after a resident is forgotten
    await head.send("/mygrid")
    await h.settle()
    counts_before = next(t for t in (await head.transcript()).texts if "实有人口" in t)
    await admin.send(f"/people forget {number}")
    question = await admin.next_message()
    assert "无法恢复" in question.text and number not in question.text
    await admin.press("确认删除")
    await h.settle()
    assert "已删除" in (await admin.transcript()).texts[-1]
    await head.send("/mygrid")
    await h.settle()
    counts_after = [t for t in (await head.transcript()).texts if "实有人口" in t][-1]
    line = next(x for x in counts_before.splitlines() if "实有人口" in x)
    assert line in counts_after  # the same figures
    async with h.session() as session:
        erased = await session.get(HouseholdMember, member.id)
        assert erased is not None and erased.forgotten_at is not None
        assert (erased.name, erased.id_cipher, erased.phone) == ("", None, None)
        forget = (await session.exec(select(AuditLog).where(AuditLog.action == "forget"))).one()
        assert forget.object_id == member.id

    # hostile input: forged buttons, odd arguments
    await h.forge_press(
        worker, MemberCb(action=MemberAction.FORGET_YES, member=imported[-1].id or 0).pack()
    )
    assert "管理员" in ((await worker.transcript()).toast or {}).get("text", "")
    await h.forge_press(worker, "hv:999999:i:v")
    assert (await worker.transcript()).toast is not None
    await h.forge_press(worker, "hv:1:z:v")
    assert (await worker.transcript()).toast is not None
    other = imported[-1]
    await h.forge_press(
        worker,
        MemberRevealCb(
            member=other.id or 0, field=RevealField.ID_NUMBER, purpose=RevealPurpose.CASE
        ).pack(),
    )
    refusal = (await worker.transcript()).toast
    assert refusal is not None and vault.open(other.id_cipher or "") not in refusal["text"]
    for hostile in ("", "#", "abc", "1" * 17 + "Z", "#99999999", "'; DROP TABLE x; --"):
        await admin.send(f"/people forget {hostile}".strip())
        answer = (await admin.transcript()).texts[-1]
        assert answer and "Traceback" not in answer

    # and after all that, a copy of the database holds none of the numbers in the clear
    path = h.settings.database_url.split("///", 1)[1]
    copy = sqlite3.connect(path)
    try:
        dump = "\n".join(copy.iterdump())
    finally:
        copy.close()
    assert "gAAAAA" in dump
    assert not any(n in dump for n in ids)
