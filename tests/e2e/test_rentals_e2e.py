"""Rental houses end to end (出租房屋, 谁出租、谁负责), on the demo community through the sandbox:
a worker gives a landlord his link; the landlord registers two tenants through it (a mistyped
ID number is refused in words on the way); the worker is told and confirms one; the other's
residence registration (居住登记) nears its deadline and the landlord and the worker are
reminded, then it lapses and the head is told and sees it in /mygrid and /rentals 逾期.
Hostile links and forged buttons get clear answers."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlmodel import col, select

from bot.i18n import gettext_for
from bot.services.id_numbers import with_check_digit
from bot.telegram import rental_views as views
from bot.telegram.callbacks import RentalAction, RentalCb, TenancyAction, TenancyCb
from models import Household, HouseholdMember, Person, Rental, Role, RoleAssignment, Tenancy
from tests.e2e.harness import Harness

pytestmark = pytest.mark.e2e

ZH = "zh_Hans"
LINK = re.compile(r"start=((?:ll|tn)_[A-Za-z0-9_-]+)")


def zh(msgid: str, **params: object) -> str:
    return gettext_for(ZH, msgid, **params)


async def test_a_landlord_registers_two_tenants_and_one_lapses(h: Harness) -> None:
    worker = await h.persona("worker")
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
        let = select(Rental.household_id)
        house = (
            await session.exec(
                select(Household)
                .where(
                    Household.grid_id == grid_id,
                    col(Household.is_business).is_(False),
                    col(Household.id).not_in(let),
                )
                .order_by(col(Household.id))
            )
        ).first()
        assert house is not None
    today = h.clock.now().date()  # 09:00 in Shanghai

    # the worker opens the house and gets the landlord's link
    await worker.send(f"/rental {house.code} 王建国 13812345678")
    await h.settle()
    text = (await worker.transcript()).texts[-1]
    assert "出租房屋" in text and house.address in text
    found = LINK.search(text)
    assert found is not None
    payload = found.group(1)

    # the landlord opens it
    landlord = await h.newcomer("王建国")
    await landlord.start(payload)
    await h.settle()
    welcome = (await landlord.transcript()).texts[-1]
    assert "房东" in welcome and house.address in welcome

    # he registers two tenants; a mistyped ID number and a future date are refused on the way
    numbers = [
        with_check_digit("36050219900315123"),
        with_check_digit("34010419950721224"),
    ]
    moved_in = [today - timedelta(days=27), today - timedelta(days=2)]
    for n, (name, number, day) in enumerate(
        zip(("李租客", "赵租客"), numbers, moved_in, strict=True)
    ):
        await landlord.press(zh(views.ADD_BUTTON))
        await h.settle()
        assert (await landlord.transcript()).texts[-1] == zh(views.ASK_NAME)
        await landlord.send(name)
        await h.settle()
        if n == 0:
            wrong = number[:-1] + ("1" if number[-1] == "0" else "0")
            await landlord.send(wrong)
            await h.settle()
            assert "校验码" in (await landlord.transcript()).texts[-1]
        await landlord.send(number.lower())
        await h.settle()
        await landlord.send(f"1391234567{n}")
        await h.settle()
        await landlord.send("江西省萍乡市")
        await h.settle()
        if n == 0:
            await landlord.send((today + timedelta(days=3)).isoformat())
            await h.settle()
            assert "将来" in (await landlord.transcript()).texts[-1]
        await landlord.send(day.isoformat())
        await h.settle()
        await landlord.send("6个月")
        await h.settle()
        done = (await landlord.transcript()).texts[-1]
        due = (day + timedelta(days=h.settings.people.residence_registration_days)).isoformat()
        assert zh(views.REGISTERED, name=name, due=due) == done
    transcript = "\n".join(m.text for m in (await landlord.transcript()).messages if m.from_bot)
    assert not any(number in transcript for number in numbers)  # never echoed back

    worker_texts = "\n".join((await worker.transcript()).texts)
    assert "新租户" in worker_texts and "李租客" in worker_texts and "赵租客" in worker_texts

    async with h.session() as session:
        stays = (
            await session.exec(
                select(Tenancy, HouseholdMember)
                .join(HouseholdMember, col(HouseholdMember.id) == col(Tenancy.member_id))
                .where(HouseholdMember.household_id == house.id)
                .order_by(col(Tenancy.id))
            )
        ).all()
    assert [m.name for _, m in stays] == ["李租客", "赵租客"]
    assert all(m.id_cipher and m.id_cipher.startswith("gAAAAA") for _, m in stays)
    first, second = (t for t, _ in stays)

    # the worker confirms the second on a visit
    await worker.send("/rentals")
    await h.settle()
    listed = (await worker.transcript()).texts[-1]
    assert "李租客" in listed and "赵租客" in listed
    await worker.press(zh(views.CONFIRM_BUTTON, name="赵租客"))
    await h.settle()
    assert zh(views.CONFIRMED, name="赵租客") in (await worker.transcript()).texts[-1]

    # 09:45: the first is due in three days — the landlord and the worker are reminded
    await h.advance(timedelta(hours=1))
    landlord_last = (await landlord.transcript()).texts[-1]
    assert "李租客" in landlord_last and "居住登记" in landlord_last
    assert "李租客" in (await worker.transcript()).texts[-1]
    assert "逾期：" not in "\n".join((await head.transcript()).texts)

    # four days on it has lapsed: the head is told, once
    await h.advance(timedelta(days=4), jump=True)
    head_texts = (await head.transcript()).texts
    told = [t for t in head_texts if "居住登记逾期" in t]
    assert len(told) == 1 and "李租客" in told[0]
    await h.advance(timedelta(days=1), jump=True)
    assert len([t for t in (await head.transcript()).texts if "居住登记逾期" in t]) == 1

    # the head sees it in /mygrid's counts and /rentals 逾期
    await head.send("/mygrid")
    await h.settle()
    board = next(t for t in reversed((await head.transcript()).texts) if "出租房屋" in t)
    assert "逾期未办居住登记" in board
    await head.send("/rentals 逾期")
    await h.settle()
    lapsed = (await head.transcript()).texts[-1]
    assert "李租客" in lapsed and "赵租客" not in lapsed

    # the landlord records the move-out of the second: kept, not deleted
    await landlord.send("/rentals")
    await h.settle()
    await landlord.press(zh(views.OUT_BUTTON, name="赵租客"))
    await h.settle()
    async with h.session() as session:
        member = await session.get(HouseholdMember, second.member_id)
        assert member is not None and member.moved_out is not None and member.name == "赵租客"

    # hostile links and forged buttons
    stranger = await h.newcomer("路人")
    await stranger.start("ll_" + "A" * 32)  # well formed, no such link
    await h.settle()
    assert "链接无效" in (await stranger.transcript()).texts[-1]
    await stranger.start(payload)  # used already
    await h.settle()
    assert "链接无效" in (await stranger.transcript()).texts[-1]
    for hostile in ("ll_<script>", "tn_" + "x" * 70, "ll_", "tn_../../x"):
        await stranger.send(f"/start {hostile}")
        await h.settle()
        answer = (await stranger.transcript()).texts[-1]
        assert answer and "Traceback" not in answer
    await h.forge_press(
        stranger, TenancyCb(action=TenancyAction.CONFIRM, tenancy=first.id or 0).pack()
    )
    assert (await stranger.transcript()).toast is not None
    await h.forge_press(stranger, RentalCb(action=RentalAction.ADD, rental=1).pack())
    assert "房东" in ((await stranger.transcript()).toast or {}).get("text", "")
    await h.forge_press(stranger, "rx:c:99999999999")
    assert (await stranger.transcript()).toast is not None
    async with h.session() as session:
        lapsed_row = await session.get(Tenancy, first.id)
        assert lapsed_row is not None and lapsed_row.confirmed_at is None
    await h.check_language()


async def test_a_tenant_registers_themselves_with_the_houses_link(h: Harness) -> None:
    worker = await h.persona("worker")
    async with h.session() as session:
        worker_person = (
            await session.exec(select(Person).where(Person.telegram_id == worker.id))
        ).one()
        house = (
            await session.exec(
                select(Household)
                .where(
                    Household.worker_id == worker_person.id,
                    col(Household.id).not_in(select(Rental.household_id)),
                )
                .order_by(col(Household.id).desc())
            )
        ).first()
        assert house is not None
    await worker.send(f"/rental {house.code} 陈房东")
    await h.settle()
    found = LINK.search((await worker.transcript()).texts[-1])
    assert found is not None
    landlord = await h.newcomer("陈房东")
    await landlord.start(found.group(1))
    await h.settle()
    await landlord.press(zh(views.LINK_BUTTON))
    await h.settle()
    tenant_link = LINK.search((await landlord.transcript()).texts[-1])
    assert tenant_link is not None and tenant_link.group(1).startswith("tn_")

    tenant = await h.newcomer("孙自助")
    await tenant.start(tenant_link.group(1))
    await h.settle()
    welcome = (await tenant.transcript()).texts[-1]
    assert house.address in welcome and zh(views.ASK_NAME) in welcome
    today = h.clock.now().date()
    answers = [
        "孙自助",
        with_check_digit("43010219880808123"),
        "13712345678",
        "湖南省长沙市",
        "2026年3月1日",
        "2027-02-28",
    ]
    for answer in answers:
        await tenant.send(answer)
        await h.settle()
    done = (await tenant.transcript()).texts[-1]
    assert "孙自助" in done and "居住登记" in done
    async with h.session() as session:
        member = (
            await session.exec(select(HouseholdMember).where(HouseholdMember.name == "孙自助"))
        ).one()
        stay = (await session.exec(select(Tenancy).where(Tenancy.member_id == member.id))).one()
    assert member.household_id == house.id and stay.self_registered
    assert member.moved_in is not None and member.moved_in <= today
    assert "孙自助" in (await worker.transcript()).texts[-1]  # told to confirm
    # the landlord's list shows the tenant waiting for the worker
    await landlord.send("/rentals")
    await h.settle()
    assert "孙自助" in (await landlord.transcript()).texts[-1]
    await h.check_language()
