"""The demo community: deterministic, consistent, and only for an empty database."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import Counter

import phonenumbers
import pytest
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import FrozenClock
from bot.services.demo import (
    CATEGORY_SHARES,
    DEMO_PERSONAS,
    TELEGRAM_ID_BASE,
    DemoCommunity,
    DemoDataExists,
    DemoSummary,
    build_demo_community,
    load_demo_data,
)
from bot.services.grid_codes import tier_of, validate_code
from bot.services.people import roles_of
from models import Grid, Household, HouseholdCategory, Person, Role, RoleAssignment
from models.registry import Department

COMMUNITY = build_demo_community()


def digest(community: DemoCommunity) -> str:
    rows = dataclasses.astuple(community)  # nested: every grid, household and person
    return hashlib.sha256(json.dumps(rows, ensure_ascii=False).encode()).hexdigest()


def is_cn_number(text: str) -> bool:
    return phonenumbers.is_valid_number(phonenumbers.parse(text, "CN"))


# --- the description (pure) --------------------------------------------------------------------


def test_same_seed_same_community() -> None:
    assert digest(build_demo_community(2026)) == digest(COMMUNITY)
    assert digest(build_demo_community(7)) == digest(build_demo_community(7))
    assert digest(build_demo_community(7)) != digest(COMMUNITY)


def test_personas_do_not_depend_on_the_seed() -> None:
    ids = {p.telegram_id for p in build_demo_community(7).people}
    assert ids == {p.telegram_id for p in COMMUNITY.people}
    assert set(DEMO_PERSONAS.values()) <= ids


def test_grid_tree_shape_and_codes() -> None:
    assert Counter(g.tier for g in COMMUNITY.grids) == {0: 1, 1: 3, 2: 9, 3: 27}
    codes = [g.code for g in COMMUNITY.grids]
    assert len(set(codes)) == len(codes)
    for grid in COMMUNITY.grids:
        validate_code(grid.code, grid.tier, grid.parent_code)
        assert tier_of(grid.code) == grid.tier
        assert grid.area_desc and grid.services and grid.complaint_process
        assert is_cn_number(grid.complaint_phone)
    children = Counter(g.parent_code for g in COMMUNITY.grids if g.parent_code)
    assert set(children.values()) == {3}


def test_households_per_grid_and_their_codes() -> None:
    tier3 = {g.code for g in COMMUNITY.grids if g.tier == 3}
    per_grid = Counter(h.grid_code for h in COMMUNITY.households)
    assert set(per_grid) == tier3
    assert all(20 <= n <= 30 for n in per_grid.values()), per_grid
    assert 650 <= len(COMMUNITY.households) <= 750
    codes = [h.code for h in COMMUNITY.households]
    assert len(set(codes)) == len(codes)
    for h in COMMUNITY.households:
        assert h.code.startswith(h.grid_code) and len(h.code) <= 32
        assert 1 <= h.members <= 6
        assert 1 < len(h.head_name) <= 50 and len(h.address) <= 200
        assert h.address.split()[0] in {g.name for g in COMMUNITY.grids if g.tier == 1}


def test_category_shares_are_plausible() -> None:
    residential = [h for h in COMMUNITY.households if not h.is_business]
    for category, share in CATEGORY_SHARES.items():
        count = sum(1 for h in residential if h.categories & category)
        assert count == round(share * len(residential)), category
    assert all(h.categories == 0 for h in COMMUNITY.households if h.is_business)
    in_two = [h for h in residential if bin(h.categories).count("1") >= 2]
    assert 3 <= len(in_two) <= 0.1 * len(residential)
    empty_nest = HouseholdCategory.EMPTY_NEST
    assert not any(
        h.categories & empty_nest and h.categories & HouseholdCategory.LEFT_BEHIND_CHILDREN
        for h in residential
    )
    assert all(h.members <= 2 for h in residential if h.categories & empty_nest)
    businesses = len(COMMUNITY.households) - len(residential)
    assert 0.02 <= businesses / len(COMMUNITY.households) <= 0.04
    assert sum(h.is_key for h in COMMUNITY.households) == sum(
        1 for h in COMMUNITY.households if h.categories
    )


def test_phones_are_valid_and_unique() -> None:
    household_phones = [h.phone for h in COMMUNITY.households]
    staff_phones = [p.phone for p in COMMUNITY.people if p.role is not Role.RESIDENT]
    everything = household_phones + staff_phones + [g.complaint_phone for g in COMMUNITY.grids]
    assert len(set(household_phones + staff_phones)) == len(household_phones + staff_phones)
    for phone in household_phones + staff_phones:
        number = phonenumbers.parse(phone, "CN")
        assert phonenumbers.is_valid_number(number)
        assert phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.MOBILE
        assert phone == phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    assert all(is_cn_number(phone) for phone in everything)


def test_departments() -> None:
    codes = [d.code for d in COMMUNITY.departments]
    assert codes == ["police", "urban_construction", "property", "fire", "civil_affairs"]
    root = next(g.code for g in COMMUNITY.grids if g.tier == 0)
    assert all(d.grid_code == root and is_cn_number(d.phone) for d in COMMUNITY.departments)
    staffed = Counter(p.department_code for p in COMMUNITY.people if p.role is Role.DEPARTMENT)
    assert staffed == dict.fromkeys(codes, 1)
    names = {d.code: d.name for d in COMMUNITY.departments}
    for person in COMMUNITY.people:
        if person.department_code is not None:
            assert person.name.startswith(names[person.department_code] + "（")
        else:
            assert person.role is not Role.DEPARTMENT


def test_people_and_their_roles() -> None:
    by_role = Counter(p.role for p in COMMUNITY.people)
    assert by_role == {
        Role.WORKER: 27,
        Role.HEAD: 12,
        Role.RESIDENT: 27,
        Role.DEPARTMENT: 5,
        Role.CENTER: 1,
        Role.ADMIN: 1,
        Role.SUPERVISOR: 1,
    }
    ids = [p.telegram_id for p in COMMUNITY.people]
    assert len(set(ids)) == len(ids)
    assert all(TELEGRAM_ID_BASE < i < TELEGRAM_ID_BASE + 1000 for i in ids)
    staff_names = [p.name for p in COMMUNITY.people if p.role is not Role.RESIDENT]
    assert len(set(staff_names)) == len(staff_names)
    grids = {g.code: g for g in COMMUNITY.grids}
    workers = Counter(p.grid_code for p in COMMUNITY.people if p.role is Role.WORKER)
    assert set(workers) == {code for code, g in grids.items() if g.tier == 3}
    assert set(workers.values()) == {1}
    heads = {p.grid_code for p in COMMUNITY.people if p.role is Role.HEAD}
    assert heads == {code for code, g in grids.items() if g.tier in (1, 2)}
    households = {h.code: h for h in COMMUNITY.households}
    residents = [p for p in COMMUNITY.people if p.role is Role.RESIDENT]
    assert {p.grid_code for p in residents} == set(workers)
    for resident in residents:
        assert resident.household_code is not None
        home = households[resident.household_code]
        assert home.grid_code == resident.grid_code and not home.is_business
        assert (resident.name, resident.phone) == (home.head_name, home.phone)


def test_personas_work_together() -> None:
    people = {p.telegram_id: p for p in COMMUNITY.people}
    grids = {g.code: g for g in COMMUNITY.grids}
    persona = {name: people[i] for name, i in DEMO_PERSONAS.items()}
    expected_roles = {
        "resident": Role.RESIDENT,
        "worker": Role.WORKER,
        "head": Role.HEAD,
        "community_head": Role.HEAD,
        "center": Role.CENTER,
        "admin": Role.ADMIN,
        "supervisor": Role.SUPERVISOR,
        "department": Role.DEPARTMENT,
        "other_resident": Role.RESIDENT,
        "other_worker": Role.WORKER,
    }
    assert {name: p.role for name, p in persona.items()} == expected_roles
    home = persona["resident"].grid_code
    assert persona["worker"].grid_code == home
    assert persona["head"].grid_code == grids[home].parent_code
    assert persona["community_head"].grid_code == grids[persona["head"].grid_code].parent_code
    assert grids[persona["center"].grid_code].tier == 0
    assert persona["department"].department_code == "police"
    neighbour = persona["other_resident"].grid_code
    assert neighbour != home and persona["other_worker"].grid_code == neighbour
    assert grids[neighbour].parent_code == grids[home].parent_code


# --- loading into the database -----------------------------------------------------------------


async def test_load_writes_the_description(session: AsyncSession, clock: FrozenClock) -> None:
    summary = await load_demo_data(session, clock.now())
    assert summary == DemoSummary(
        grids=len(COMMUNITY.grids),
        households=len(COMMUNITY.households),
        people=len(COMMUNITY.people),
        departments=len(COMMUNITY.departments),
    )
    households = (await session.exec(select(Household).order_by(col(Household.code)))).all()
    grids = {g.id: g for g in (await session.exec(select(Grid))).all()}
    people = {p.id: p for p in (await session.exec(select(Person))).all()}
    stored = [
        (
            h.code,
            grids[h.grid_id].code,
            h.address,
            h.head_name,
            h.phone,
            h.members,
            h.categories,
            h.is_business,
            h.note,
            h.is_key,
        )
        for h in households
    ]
    described = sorted((*dataclasses.astuple(h), h.is_key) for h in COMMUNITY.households)
    assert stored == described
    assert {(p.telegram_id, p.name, p.phone) for p in people.values()} == {
        (p.telegram_id, p.name, p.phone) for p in COMMUNITY.people
    }
    now = clock.now()
    assert all(h.created_at == now == h.updated_at for h in households)
    assert all(p.created_at == now == p.updated_at for p in people.values())
    assignments = (await session.exec(select(RoleAssignment))).all()
    assert len(assignments) == len(people)
    assert all(a.created_at == now and a.active for a in assignments)
    departments = {d.id: d for d in (await session.exec(select(Department))).all()}
    assert {(d.code, d.name, d.phone) for d in departments.values()} == {
        (d.code, d.name, d.phone) for d in COMMUNITY.departments
    }
    for assignment in assignments:
        if assignment.role == Role.DEPARTMENT:
            assert assignment.department_id is not None
            department = departments[assignment.department_id]
            assert people[assignment.person_id].name.startswith(department.name)
        else:
            assert assignment.department_id is None

    with pytest.raises(DemoDataExists):  # not twice
        await load_demo_data(session, clock.now(), seed=1)
    assert len((await session.exec(select(Grid))).all()) == len(COMMUNITY.grids)


async def test_tree_paths_workers_and_households(
    session: AsyncSession, clock: FrozenClock
) -> None:
    await load_demo_data(session, clock.now())
    grids = {g.id: g for g in (await session.exec(select(Grid))).all()}
    for grid in grids.values():
        if grid.parent_id is None:
            assert grid.tier == 0 and grid.path == f"/{grid.id}/"
        else:
            parent = grids[grid.parent_id]
            assert grid.tier == parent.tier + 1
            assert grid.path == f"{parent.path}{grid.id}/"
            validate_code(grid.code, grid.tier, parent.code)

    assignments = (await session.exec(select(RoleAssignment))).all()
    workers = [a for a in assignments if a.role == Role.WORKER]
    grid_of_worker = {a.person_id: a.grid_id for a in workers}
    per_grid = Counter(a.grid_id for a in workers)
    assert per_grid == {g.id: 1 for g in grids.values() if g.tier == 3}
    households = (await session.exec(select(Household))).all()
    for household in households:
        assert household.worker_id is not None
        assert grid_of_worker[household.worker_id] == household.grid_id
    load = Counter(h.worker_id for h in households)
    assert set(load) == set(grid_of_worker) and max(load.values()) <= 30

    residents = [a for a in assignments if a.role == Role.RESIDENT]
    by_id = {h.id: h for h in households}
    for assignment in residents:
        person = await session.get(Person, assignment.person_id)
        assert person is not None and person.household_id is not None
        home = by_id[person.household_id]
        assert home.grid_id == assignment.grid_id and home.phone == person.phone


async def test_personas_in_the_database(session: AsyncSession, clock: FrozenClock) -> None:
    await load_demo_data(session, clock.now())

    async def roles(persona: str) -> list[tuple[Role, int, str]]:
        person = (
            await session.exec(select(Person).where(Person.telegram_id == DEMO_PERSONAS[persona]))
        ).one()
        assert person.id is not None
        return [(r.role, r.grid_tier, r.grid_code) for r in await roles_of(session, person.id)]

    [(role, tier, home)] = await roles("resident")
    assert (role, tier) == (Role.RESIDENT, 3)
    assert await roles("worker") == [(Role.WORKER, 3, home)]
    assert await roles("head") == [(Role.HEAD, 2, home[:14])]
    assert await roles("community_head") == [(Role.HEAD, 1, home[:12])]
    for persona, role in [
        ("center", Role.CENTER),
        ("admin", Role.ADMIN),
        ("supervisor", Role.SUPERVISOR),
        ("department", Role.DEPARTMENT),
    ]:
        assert await roles(persona) == [(role, 0, home[:9])]


async def test_refuses_any_grid(session: AsyncSession, clock: FrozenClock) -> None:
    session.add(Grid(code="110101001", name="东华门街道", tier=0, created_at=clock.now()))
    await session.flush()
    with pytest.raises(DemoDataExists):
        await load_demo_data(session, clock.now())
    assert (await session.exec(select(Household))).first() is None


async def test_with_a_key_the_households_get_their_people(
    session: AsyncSession, clock: FrozenClock
) -> None:
    """Every residential household has as many people as its member count, with checked,
    distinct, encrypted ID numbers; the same seed gives the same people."""
    from datetime import date

    from bot.services.demo_members import demo_members
    from bot.services.id_numbers import IdVault, birth_date, is_male, new_key, parse_id_number
    from bot.services.members import MemberCounts
    from models import Gender, HouseholdMember, Relation

    vault = IdVault(new_key())
    summary = await load_demo_data(session, clock.now(), vault=vault)
    people = (await session.exec(select(HouseholdMember))).all()
    households = {
        h.id: h for h in (await session.exec(select(Household))).all() if not h.is_business
    }
    assert summary.members == len(people) == sum(max(1, h.members) for h in households.values())
    numbers = [vault.open(p.id_cipher or "") for p in people]
    assert len(set(numbers)) == len(numbers)
    today = clock.now().date()
    for person, number in zip(people, numbers, strict=True):
        assert parse_id_number(number, today=today) == number
        assert birth_date(number) == person.birth_date
        assert (person.gender == Gender.MALE) == is_male(number)
        assert person.id_hash == vault.digest(number)
    heads = Counter(p.household_id for p in people if p.relation == Relation.HEAD)
    assert set(heads) == set(households) and set(heads.values()) == {1}
    shares = Counter(p.status for p in people)
    assert shares["registered"] > shares["resident"] > 0 and shares["floating"] > 0
    assert MemberCounts(**{k: v for k, v in shares.items()}).total == len(people)
    again = demo_members([(1, "王芳", 4)], date(2026, 1, 1))
    assert again == demo_members([(1, "王芳", 4)], date(2026, 1, 1))


def test_the_demo_has_a_place_of_every_default_type_in_the_workers_grid() -> None:
    from bot.services.place_policy import DEFAULT_POLICY

    community = build_demo_community()
    assert {p.type_key for p in community.places} == {t.key for t in DEFAULT_POLICY.types}
    worker = next(p for p in community.people if p.telegram_id == DEMO_PERSONAS["worker"])
    assert {p.grid_code for p in community.places} == {worker.grid_code}


async def test_the_demo_has_party_members_none_of_them_a_bot_user(
    session: AsyncSession, clock: FrozenClock
) -> None:
    """Branches, party members with contact households in their own grid; no party member is
    a bot user and no persona's household is a contact household (the e2e tests see what
    they saw before)."""
    from bot.services.id_numbers import IdVault, new_key
    from models import HouseholdMember, PartyBranch, PartyContact

    await load_demo_data(session, clock.now(), vault=IdVault(new_key()))
    members = (
        await session.exec(select(HouseholdMember).where(col(HouseholdMember.party).is_not(None)))
    ).all()
    assert len(members) >= 10 and all(m.party_branch_id is not None for m in members)
    assert len((await session.exec(select(PartyBranch))).all()) >= 2
    phones = {p.phone for p in (await session.exec(select(Person))).all()}
    assert not any(m.phone in phones for m in members if m.phone)
    homes = {p.household_id for p in (await session.exec(select(Person))).all()}
    contacts = (await session.exec(select(PartyContact))).all()
    assert contacts and not any(c.household_id in homes for c in contacts)
    grid_of = {h.id: h.grid_id for h in (await session.exec(select(Household))).all()}
    by_id = {m.id: m for m in members}
    assert all(
        grid_of[c.household_id] == grid_of[by_id[c.member_id].household_id] for c in contacts
    )
