"""Rental houses and tenants (出租房屋, 谁出租、谁负责): the worker's link for a landlord, a
tenant registered by the landlord or by themselves, the worker's confirmation, the move-out
kept on record, the reminders before a residence registration lapses and the head's notice
after, the grid's counts — and hostile links, dates and names refused cleanly."""

from __future__ import annotations

import contextlib
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import FrozenClock
from bot.errors import DomainError, InvalidInput, NotAllowed
from bot.services import deeplinks, rentals
from bot.settings import Settings
from models import (
    AuditLog,
    Household,
    HouseholdMember,
    OutboxMessage,
    Person,
    Relation,
    ResidenceStatus,
    Tenancy,
)

from .test_imports import EAST_A, WORKER_A, WORKER_B, Community, build_community
from .test_member_import import KEY, VAULT, id_number

SETTINGS = Settings(_env_file=None, people={"key": KEY})  # type: ignore[call-arg]


@pytest.fixture
async def community(session: AsyncSession, clock: FrozenClock) -> Community:
    built = await build_community(session, clock.now())
    for n, person in enumerate(
        [built.workers[WORKER_A], built.workers[WORKER_B], built.head], start=1
    ):
        person.telegram_id = 7_000_000 + n
        session.add(person)
    household = Household(
        code="HR1",
        grid_id=built.grids[EAST_A].id or 0,
        worker_id=built.workers[WORKER_A].id,
        address="杏东花园1号楼302",
        head_name="王房东",
        created_at=built.now,
        updated_at=built.now,
    )
    session.add(household)
    await session.flush()
    return built


async def _landlord(session: AsyncSession, community: Community, name: str = "王房东") -> Person:
    person = Person(
        name=name,
        telegram_id=7_100_000 + len(name),
        created_at=community.now,
        updated_at=community.now,
    )
    session.add(person)
    await session.flush()
    return person


async def _form(session: AsyncSession, n: int, moved_in: date, today: date) -> rentals.TenantForm:
    number = await rentals.seal_number(session, id_number(n), vault=VAULT, today=today)
    return rentals.TenantForm(
        name=f"租户{n}",
        number=number,
        phone=rentals.parse_phone(f"139 1234 56{n:02d}"),
        origin=rentals.parse_origin("江西省赣州市"),
        moved_in=moved_in,
        stay_until=rentals.parse_stay("6个月", moved_in=moved_in),
    )


async def _open(session: AsyncSession, community: Community, landlord: Person) -> tuple[int, str]:
    worker = community.workers[WORKER_A]
    issued = await rentals.open_rental(
        session,
        person=worker,
        roles=await community.roles(session, worker),
        household_code="HR1",
        landlord_name="王房东",
        landlord_phone="13812345678",
        now=community.now,
    )
    assert issued.rental.link_hash is not None and issued.token not in issued.rental.link_hash
    await rentals.claim_rental(session, person=landlord, token=issued.token, now=community.now)
    assert issued.rental.id is not None
    return issued.rental.id, issued.token


async def test_a_landlord_registers_a_tenant_the_worker_confirms_and_the_move_out_is_kept(
    session: AsyncSession, community: Community
) -> None:
    today = community.now.date()
    landlord = await _landlord(session, community)
    other = community.workers[WORKER_B]
    with pytest.raises(NotAllowed):  # another grid's worker may not open this house
        await rentals.open_rental(
            session,
            person=other,
            roles=await community.roles(session, other),
            household_code="HR1",
            landlord_name="王房东",
            landlord_phone=None,
            now=community.now,
        )
    rental_id, token = await _open(session, community, landlord)
    with pytest.raises(InvalidInput):  # the landlord's link works once
        await rentals.claim_rental(session, person=other, token=token, now=community.now)

    form = await _form(session, 1, today - timedelta(days=3), today)
    with pytest.raises(NotAllowed):  # only the landlord registers through the house
        await rentals.register_tenant(
            session,
            person=other,
            rental_id=rental_id,
            form=form,
            tenant_digest=None,
            settings=SETTINGS,
            now=community.now,
        )
    tenancy, member = await rentals.register_tenant(
        session,
        person=landlord,
        rental_id=rental_id,
        form=form,
        tenant_digest=None,
        settings=SETTINGS,
        now=community.now,
    )
    assert member.relation == Relation.TENANT and member.status == ResidenceStatus.FLOATING
    assert member.id_cipher is not None and id_number(1) not in member.id_cipher
    assert VAULT.open(member.id_cipher) == id_number(1)
    assert member.origin == "江西省赣州市" and member.stay_until is not None
    assert tenancy.due_on == form.moved_in + timedelta(days=30)
    told = (
        await session.exec(
            select(OutboxMessage).where(
                OutboxMessage.chat_id == community.workers[WORKER_A].telegram_id
            )
        )
    ).all()
    assert len(told) == 1 and "租户1" in told[0].payload["text"]
    with pytest.raises(InvalidInput):  # the same ID number twice
        await rentals.seal_number(session, id_number(1), vault=VAULT, today=today)

    counts = await rentals.grid_rental_counts(session, community.grids[EAST_A], today)
    assert counts == rentals.RentalCounts(rentals=1, tenants=1, lapsed=0)
    head_lines = await rentals.staff_tenancies(
        session, await community.roles(session, community.head), today
    )
    assert [line.name for line in head_lines] == ["租户1"]
    assert (
        await rentals.staff_tenancies(session, await community.roles(session, other), today) == []
    )

    assert tenancy.id is not None
    with pytest.raises(NotAllowed):
        await rentals.confirm_tenancy(
            session,
            person=other,
            roles=await community.roles(session, other),
            tenancy_id=tenancy.id,
            now=community.now,
        )
    worker = community.workers[WORKER_A]
    await rentals.confirm_tenancy(
        session,
        person=worker,
        roles=await community.roles(session, worker),
        tenancy_id=tenancy.id,
        now=community.now,
    )
    assert tenancy.confirmed_by == worker.id
    with pytest.raises(InvalidInput):
        await rentals.confirm_tenancy(
            session,
            person=worker,
            roles=await community.roles(session, worker),
            tenancy_id=tenancy.id,
            now=community.now,
        )
    await rentals.move_out(
        session, person=landlord, roles=[], tenancy_id=tenancy.id, today=today, now=community.now
    )
    await session.flush()
    await session.refresh(member)
    assert member.moved_out == today and member.name == "租户1"  # recorded, not deleted
    counts = await rentals.grid_rental_counts(session, community.grids[EAST_A], today)
    assert counts == rentals.RentalCounts(rentals=1, tenants=0, lapsed=0)
    views = await rentals.landlord_rentals(session, landlord, today)
    assert [line.ended for line in views[0].tenants] == [True]
    actions = set((await session.exec(select(AuditLog.action))).all())
    assert {"rental:link", "rental:landlord", "tenant:register", "tenant:confirm"} <= actions


async def test_tenants_register_themselves_with_the_houses_link(
    session: AsyncSession, community: Community
) -> None:
    today = community.now.date()
    landlord = await _landlord(session, community)
    rental_id, _token = await _open(session, community, landlord)
    first = await rentals.tenant_link(
        session, person=landlord, rental_id=rental_id, now=community.now
    )
    second = await rentals.tenant_link(
        session, person=landlord, rental_id=rental_id, now=community.now
    )
    with pytest.raises(InvalidInput):  # replaced
        await rentals.rental_of_tenant_link(session, first)
    rental, _household = await rentals.rental_of_tenant_link(session, second)
    tenant = await _landlord(session, community, "自助租户")
    _tenancy, member = await rentals.register_tenant(
        session,
        person=tenant,
        rental_id=rental_id,
        form=await _form(session, 2, today, today),
        tenant_digest=rentals.link_hash(second),
        settings=SETTINGS,
        now=community.now,
    )
    assert member.household_id == rental.household_id
    with pytest.raises(InvalidInput):  # a link's hash for another house does not do
        await rentals.register_tenant(
            session,
            person=tenant,
            rental_id=rental_id + 1,
            form=await _form(session, 3, today, today),
            tenant_digest=rentals.link_hash(second),
            settings=SETTINGS,
            now=community.now,
        )
    with pytest.raises(NotAllowed):
        await rentals.tenant_link(session, person=tenant, rental_id=rental_id, now=community.now)


async def test_landlord_and_worker_are_reminded_then_the_head_is_told(
    session: AsyncSession, community: Community
) -> None:
    today = community.now.date()  # 09:00 in Shanghai: not quiet hours
    landlord = await _landlord(session, community)
    rental_id, _token = await _open(session, community, landlord)
    early, late = (
        await _form(session, 4, today - timedelta(days=10), today),
        await _form(session, 5, today - timedelta(days=26), today),
    )
    for form in (early, late):
        await rentals.register_tenant(
            session,
            person=landlord,
            rental_id=rental_id,
            form=form,
            tenant_digest=None,
            settings=SETTINGS,
            now=community.now,
        )

    async def sent(chat_id: int | None, prefix: str = "tr:") -> list[str]:
        rows = (
            await session.exec(
                select(OutboxMessage).where(
                    OutboxMessage.chat_id == chat_id, col(OutboxMessage.ref).startswith(prefix)
                )
            )
        ).all()
        return [row.payload["text"] for row in rows]

    # due in 4 days (within the 5 days' lead): the landlord and the worker, the late one only
    assert await rentals.send_reminders(session, community.now, SETTINGS) == 2
    assert (
        len(await sent(landlord.telegram_id)) == 1
        and "租户5" in (await sent(landlord.telegram_id))[0]
    )
    assert len(await sent(community.workers[WORKER_A].telegram_id)) == 1
    assert await sent(community.head.telegram_id) == []
    assert await rentals.send_reminders(session, community.now, SETTINGS) == 0  # once

    # five days on it has lapsed: the head is told (once); the early one is reminded now
    later = community.now + timedelta(days=5)
    assert await rentals.send_reminders(session, later, SETTINGS) == 1
    head = await sent(community.head.telegram_id)
    assert len(head) == 1 and "租户5" in head[0] and "逾期" in head[0]
    assert await rentals.send_reminders(session, later, SETTINGS) == 0
    counts = await rentals.grid_rental_counts(session, community.grids[EAST_A], later.date())
    assert counts.lapsed == 1 and counts.tenants == 2
    lapsed = await rentals.staff_tenancies(
        session,
        await community.roles(session, community.head),
        later.date(),
        lapsed_only=True,
    )
    assert [line.name for line in lapsed] == ["租户5"] and lapsed[0].lapsed
    # quiet hours: nothing goes out at night
    night = community.now.replace(hour=15)  # 23:00 in Shanghai
    assert await rentals.send_reminders(session, night + timedelta(days=30), SETTINGS) == 0
    stays = (await session.exec(select(Tenancy))).all()
    assert all(s.reminded_at is not None for s in stays if s.due_on <= later.date())


def test_dates_stays_and_names_as_people_write_them() -> None:
    moved_in = date(2026, 1, 31)
    assert rentals.parse_stay("6", moved_in=moved_in) == date(2026, 7, 31)
    assert rentals.parse_stay("6个月", moved_in=moved_in) == date(2026, 7, 31)
    assert rentals.parse_stay("１年", moved_in=moved_in) == date(2027, 1, 31)
    assert rentals.parse_stay("1", moved_in=moved_in) == date(2026, 2, 28)
    assert rentals.parse_stay("2026年9月1日", moved_in=moved_in) == date(2026, 9, 1)
    today = date(2026, 3, 12)
    assert rentals.parse_move_in("2026/3/1", today=today) == date(2026, 3, 1)
    for bad_stay in ("0", "121", "2025-01-01", "abc", "", "1e9", "9" * 50, "6 weeks"):
        with pytest.raises(InvalidInput):
            rentals.parse_stay(bad_stay, moved_in=moved_in)
    for bad_day in ("2026-02-30", "2026-04-01", "2000-01-01", "昨天", "", "'; --", "\x00"):
        with pytest.raises(InvalidInput):
            rentals.parse_move_in(bad_day, today=today)
    for bad_name in ("", "   ", "/start", "名" * 51, "\u200b\n"):
        with pytest.raises(InvalidInput):
            rentals.parse_name(bad_name)
    assert rentals.parse_name(" 张\x00三 ") == "张 三"


@given(st.text(max_size=80))
def test_typed_answers_are_accepted_or_refused_cleanly(text: str) -> None:
    for parse in (
        lambda: rentals.parse_name(text),
        lambda: rentals.parse_origin(text),
        lambda: rentals.parse_move_in(text, today=date(2026, 3, 12)),
        lambda: rentals.parse_stay(text, moved_in=date(2026, 3, 1)),
        lambda: rentals.parse_phone(text),
    ):
        with contextlib.suppress(DomainError):
            parse()


def test_hostile_rental_links_are_no_links() -> None:
    token = "A" * 32
    assert deeplinks.parse_start_payload(deeplinks.landlord_payload(token)) == (
        deeplinks.BecomeLandlord(token)
    )
    assert deeplinks.parse_start_payload(deeplinks.tenant_payload(token)) == (
        deeplinks.RegisterAsTenant(token)
    )
    for hostile in (
        "ll_",
        "ll_short",
        "tn_" + "A" * 21,
        "ll_" + "A" * 62,  # over 64 in all
        "ll_" + "A" * 31 + "=",
        "tn_" + "A" * 31 + "/",
        "LL_" + "A" * 32,
        "ll_../../etc/passwd",
        "ll_" + "大" * 32,
    ):
        assert deeplinks.parse_start_payload(hostile) is None, hostile
        assert not deeplinks.is_rental_link(hostile)


async def test_unknown_or_stale_links_are_refused(
    session: AsyncSession, community: Community
) -> None:
    landlord = await _landlord(session, community)
    for token in ("A" * 32, "x" * 22):
        with pytest.raises(InvalidInput):
            await rentals.claim_rental(session, person=landlord, token=token, now=community.now)
        with pytest.raises(InvalidInput):
            await rentals.rental_of_tenant_link(session, token)
    worker = community.workers[WORKER_A]
    issued = await rentals.open_rental(
        session,
        person=worker,
        roles=await community.roles(session, worker),
        household_code="HR1",
        landlord_name="王房东",
        landlord_phone=None,
        now=community.now,
    )
    with pytest.raises(InvalidInput):  # expired after 14 days
        await rentals.claim_rental(
            session,
            person=landlord,
            token=issued.token,
            now=community.now + rentals.LANDLORD_LINK_TTL,
        )
    with pytest.raises(DomainError):
        await rentals.open_rental(
            session,
            person=worker,
            roles=await community.roles(session, worker),
            household_code="'; DROP TABLE rental; --",
            landlord_name="王",
            landlord_phone=None,
            now=community.now,
        )
    members = (await session.exec(select(HouseholdMember))).all()
    assert members == []
