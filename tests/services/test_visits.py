"""Logging visits (走访), the diary (民情日记), tallies, edits, withdrawals and amendments."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import FrozenClock
from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.services import quotas, visits
from bot.services.people import RoleInGrid
from bot.services.periods import PeriodKind
from models import (
    AuditLog,
    Grid,
    Household,
    HouseholdCategory,
    Person,
    Role,
    Visit,
    VisitKind,
    VisitTally,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def role(kind: Role, grid: Grid) -> list[RoleInGrid]:
    assert grid.id is not None
    return [RoleInGrid(kind, grid.id, grid.name, grid.code, grid.tier, grid.path)]


@dataclass
class World:
    """A street centre, a community, a tier-2 grid with two tier-3 grids, and their people.

    ``worker`` serves grid ``g1`` with a key household (empty-nest elderly), an ordinary one
    and a subsistence household; ``other`` serves ``g2`` with one ordinary household.
    """

    root: Grid
    tier2: Grid
    g1: Grid
    g2: Grid
    worker: Person
    other: Person
    head: Person
    admin: Person
    key: Household
    ordinary: Household
    subsistence: Household
    next_door: Household

    @property
    def worker_roles(self) -> list[RoleInGrid]:
        return role(Role.WORKER, self.g1)

    @property
    def other_roles(self) -> list[RoleInGrid]:
        return role(Role.WORKER, self.g2)

    @property
    def head_roles(self) -> list[RoleInGrid]:
        return role(Role.HEAD, self.tier2)

    @property
    def admin_roles(self) -> list[RoleInGrid]:
        return role(Role.ADMIN, self.root)


async def build_world(session: AsyncSession, now: datetime, *, rules: bool = True) -> World:
    async def grid(code: str, name: str, tier: int, parent: Grid | None) -> Grid:
        row = Grid(
            code=code,
            name=name,
            tier=tier,
            parent_id=None if parent is None else parent.id,
            created_at=now,
        )
        session.add(row)
        await session.flush()
        row.path = f"{'/' if parent is None else parent.path}{row.id}/"
        session.add(row)
        return row

    root = await grid("350211001", "杏林街道", 0, None)
    community = await grid("350211001001", "杏东社区", 1, root)
    tier2 = await grid("350211001001001", "杏东花园", 2, community)
    g1 = await grid("350211001001001001", "杏东花园一组", 3, tier2)
    g2 = await grid("350211001001001002", "杏东花园二组", 3, tier2)

    def person(name: str) -> Person:
        return Person(name=name, created_at=now, updated_at=now)

    worker, other, head, admin = (person(n) for n in ("王芳", "李强", "张建国", "陈敏"))
    session.add_all([worker, other, head, admin])
    await session.flush()

    def household(code: str, grid: Grid, who: Person, name: str, categories: int = 0) -> Household:
        return Household(
            code=code,
            grid_id=grid.id or 0,
            worker_id=who.id,
            address=f"杏东花园{code[-2:]}号",
            head_name=name,
            categories=categories,
            is_key=categories != 0,
            created_at=now,
            updated_at=now,
        )

    key = household("H01", g1, worker, "刘秀英", HouseholdCategory.EMPTY_NEST)
    ordinary = household("H02", g1, worker, "赵伟")
    subsistence = household("H03", g1, worker, "孙桂兰", HouseholdCategory.SUBSISTENCE)
    next_door = household("H04", g2, other, "周涛")
    session.add_all([key, ordinary, subsistence, next_door])
    await session.flush()
    if rules:
        await quotas.ensure_default_rules(session, now, tz=SHANGHAI)
    return World(
        root, tier2, g1, g2, worker, other, head, admin, key, ordinary, subsistence, next_door
    )


async def tally(
    session: AsyncSession, household: Household, period: str, start: str
) -> tuple[int, int, int] | None:
    row = (
        await session.exec(
            select(VisitTally)
            .where(
                VisitTally.household_id == household.id,
                VisitTally.period == period,
                col(VisitTally.period_start) == datetime.fromisoformat(start).date(),
            )
            .execution_options(populate_existing=True)
        )
    ).one_or_none()
    return None if row is None else (row.contacts, row.in_person, row.lectures)


@pytest.fixture
async def world(session: AsyncSession, clock: FrozenClock) -> World:
    return await build_world(session, clock.now())


async def test_a_home_visit_is_written_counted_and_reported(
    session: AsyncSession, world: World, clock: FrozenClock
) -> None:
    now = clock.now()
    result = await visits.log_visit(
        session,
        world.worker,
        world.worker_roles,
        world.key.id or 0,
        VisitKind.IN_PERSON,
        "  老人身体不错，提醒注意用电安全。 \n",
        now,
        photo_file_id="AgACAgUAAxkBAAIB",
        latitude=24.57,
        longitude=118.05,
        tz=SHANGHAI,
    )
    assert result.visit.note == "老人身体不错，提醒注意用电安全。"
    assert result.visit.visited_at == now and result.visit.latitude == 24.57
    counted = {(c.rule_name, c.done, c.required, c.met) for c in result.counted}
    assert counted == {
        ("Monthly contact with every household", 1, 1, True),
        ("Monthly home visit to key households", 1, 1, True),
    }
    assert all(c.just_met for c in result.counted)
    assert await tally(session, world.key, "month", "2026-03-01") == (1, 1, 0)
    assert await tally(session, world.key, "quarter", "2026-01-01") == (1, 1, 0)
    assert await tally(session, world.key, "year", "2026-01-01") == (1, 1, 0)

    clock.advance(timedelta(hours=1))
    again = await visits.log_visit(
        session,
        world.worker,
        world.worker_roles,
        world.key.id or 0,
        "lecture",
        "讲解医保政策",
        clock.now(),
        tz=SHANGHAI,
    )
    assert {(c.rule_name, c.done, c.just_met) for c in again.counted} == {
        ("Monthly contact with every household", 2, False),
        ("Quarterly policy micro-lecture for every household", 1, True),
    }
    assert await tally(session, world.key, "quarter", "2026-01-01") == (2, 1, 1)


async def test_an_ordinary_household_phone_call_counts_only_as_contact(
    session: AsyncSession, world: World, clock: FrozenClock
) -> None:
    result = await visits.log_visit(
        session,
        world.worker,
        world.worker_roles,
        world.ordinary.id or 0,
        "phone",
        "电话询问近况",
        clock.now(),
        tz=SHANGHAI,
    )
    assert [c.rule_name for c in result.counted] == ["Monthly contact with every household"]


async def test_the_boundary_follows_shanghai_time(session: AsyncSession, world: World) -> None:
    late_march = datetime(2026, 3, 31, 23, 30, tzinfo=SHANGHAI)
    early_april = datetime(2026, 4, 1, 0, 10, tzinfo=SHANGHAI)
    for at in (late_march, early_april):
        await visits.log_visit(
            session,
            world.worker,
            world.worker_roles,
            world.ordinary.id or 0,
            "in_person",
            "入户走访",
            at.astimezone(UTC),
            tz=SHANGHAI,
        )
    assert await tally(session, world.ordinary, "month", "2026-03-01") == (1, 1, 0)
    assert await tally(session, world.ordinary, "quarter", "2026-01-01") == (1, 1, 0)
    assert await tally(session, world.ordinary, "month", "2026-04-01") == (1, 1, 0)
    assert await tally(session, world.ordinary, "quarter", "2026-04-01") == (1, 1, 0)
    assert await tally(session, world.ordinary, "year", "2026-01-01") == (2, 2, 0)


async def test_outside_the_workers_grid_is_refused_with_an_audit_record(
    session: AsyncSession, world: World, clock: FrozenClock
) -> None:
    with pytest.raises(NotAllowed) as refused:
        await visits.log_visit(
            session,
            world.worker,
            world.worker_roles,
            world.next_door.id or 0,
            "phone",
            "打错了",
            clock.now(),
        )
    assert refused.value.audit is not None
    assert refused.value.audit.action == "refused:visit"
    assert await tally(session, world.next_door, "month", "2026-03-01") is None
    with pytest.raises(NotFound):
        await visits.log_visit(
            session, world.worker, world.worker_roles, 999_999, "phone", "x", clock.now()
        )


@pytest.mark.parametrize(
    "note, message",
    [
        ("", "Please write a few words about the visit."),
        (" \n\t\u3000 ", "Please write a few words about the visit."),
        ("\u200b\u200b", "Please write a few words about the visit."),
        ("好" * 2001, "The note is too long: {length} characters, at most {limit}."),
    ],
)
async def test_empty_and_overlong_notes_are_refused_clearly(
    session: AsyncSession, world: World, clock: FrozenClock, note: str, message: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        await visits.log_visit(
            session,
            world.worker,
            world.worker_roles,
            world.key.id or 0,
            "phone",
            note,
            clock.now(),
        )
    assert refused.value.message == message


async def test_hostile_but_meaningful_notes_are_kept_on_every_database(
    session: AsyncSession, world: World, clock: FrozenClock
) -> None:
    note = "\x00老人说：\u202e水管漏了\U0001f6b0\r\n１２３号楼 " + "好" * 1980
    result = await visits.log_visit(
        session, world.worker, world.worker_roles, world.key.id or 0, "other", note, clock.now()
    )
    stored = (await session.exec(select(Visit.note).where(Visit.id == result.visit.id))).one()
    assert stored == result.visit.note
    assert "\x00" not in stored and "\r" not in stored
    assert stored.startswith("老人说：\u202e水管漏了\U0001f6b0\n１２３号楼")
    with pytest.raises(InvalidInput):
        await visits.log_visit(
            session,
            world.worker,
            world.worker_roles,
            world.key.id or 0,
            "teleport",
            "x",
            clock.now(),
        )
    with pytest.raises(InvalidInput):
        await visits.log_visit(
            session,
            world.worker,
            world.worker_roles,
            world.key.id or 0,
            "phone",
            "x",
            clock.now(),
            latitude=float("nan"),
            longitude=1.0,
        )


@given(st.text(max_size=3000) | st.text(alphabet=" \t\n\u3000\u200b\x00好", max_size=40))
def test_any_note_is_cleaned_or_refused_with_a_typed_error(text: str) -> None:
    try:
        note = visits.parse_note(text)
    except InvalidInput as refusal:
        assert refusal.message in {
            "Please write a few words about the visit.",
            "The note is too long: {length} characters, at most {limit}.",
        }
        return
    assert 1 <= len(note) <= visits.NOTE_LIMIT
    assert note == note.strip() and "\x00" not in note
    note.encode("utf-8")  # no lone surrogates: every database can store it


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=30)
@given(st.builds(str.__mul__, st.text(min_size=1, max_size=5), st.integers(2001, 10_000)))
def test_ten_thousand_characters_are_refused_not_crashed(text: str) -> None:
    with pytest.raises(InvalidInput):
        visits.parse_note(text)


@given(st.text(max_size=40) | st.sampled_from(list(VisitKind)))
def test_any_kind_is_a_visit_kind_or_a_typed_error(value: str) -> None:
    with contextlib.suppress(InvalidInput):
        assert visits.parse_kind(value) in set(VisitKind)


@given(
    st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
)
def test_any_location_is_a_place_or_a_typed_error(
    latitude: float | None, longitude: float | None
) -> None:
    try:
        place = visits.parse_place(latitude, longitude)
    except InvalidInput:
        return
    assert place is None or (-90 <= place[0] <= 90 and -180 <= place[1] <= 180)


async def test_the_author_edits_the_same_day_and_the_tallies_follow(
    session: AsyncSession, world: World, clock: FrozenClock
) -> None:
    logged = await visits.log_visit(
        session,
        world.worker,
        world.worker_roles,
        world.key.id or 0,
        "phone",
        "电话联系",
        clock.now(),
        tz=SHANGHAI,
    )
    clock.set(datetime(2026, 3, 12, 23, 50, tzinfo=SHANGHAI))  # still the same local day
    edited = await visits.edit_visit(
        session,
        world.worker,
        world.worker_roles,
        logged.visit.id or 0,
        clock.now(),
        kind="in_person",
        note="其实是上门走访",
        tz=SHANGHAI,
    )
    assert not edited.amended
    assert {c.rule_name for c in edited.counted} == {
        "Monthly contact with every household",
        "Monthly home visit to key households",
    }
    assert await tally(session, world.key, "month", "2026-03-01") == (1, 1, 0)
    assert (
        await session.exec(select(AuditLog).where(AuditLog.action == "visit:amend"))
    ).all() == []
    with pytest.raises(InvalidInput):
        await visits.edit_visit(
            session,
            world.worker,
            world.worker_roles,
            logged.visit.id or 0,
            clock.now(),
            note="其实是上门走访",
            tz=SHANGHAI,
        )
    noted = await visits.edit_visit(
        session,
        world.worker,
        world.worker_roles,
        logged.visit.id or 0,
        clock.now(),
        note="上门走访，老人说腿脚不便",
        tz=SHANGHAI,
    )
    assert noted.visit.note == "上门走访，老人说腿脚不便"
    assert await tally(session, world.key, "month", "2026-03-01") == (1, 1, 0)


async def test_next_day_the_author_is_refused_and_the_head_amends_with_an_audit(
    session: AsyncSession, world: World, clock: FrozenClock
) -> None:
    logged = await visits.log_visit(
        session,
        world.worker,
        world.worker_roles,
        world.key.id or 0,
        "in_person",
        "入户",
        clock.now(),
        tz=SHANGHAI,
    )
    visit_id = logged.visit.id or 0
    clock.set(datetime(2026, 3, 13, 0, 5, tzinfo=SHANGHAI))  # the next local day
    with pytest.raises(NotAllowed) as refused:
        await visits.edit_visit(
            session,
            world.worker,
            world.worker_roles,
            visit_id,
            clock.now(),
            note="改",
            tz=SHANGHAI,
        )
    assert refused.value.audit is not None
    assert refused.value.audit.action == "refused:amend_visit"
    with pytest.raises(NotAllowed):  # another worker, even a neighbour, may not
        await visits.withdraw_visit(
            session, world.other, world.other_roles, visit_id, clock.now(), tz=SHANGHAI
        )

    amended = await visits.edit_visit(
        session,
        world.head,
        world.head_roles,
        visit_id,
        clock.now(),
        kind="phone",
        note="核实后为电话联系",
        tz=SHANGHAI,
    )
    assert amended.amended
    assert await tally(session, world.key, "month", "2026-03-01") == (1, 0, 0)
    audit = (await session.exec(select(AuditLog).where(AuditLog.action == "visit:amend"))).one()
    assert audit.actor_id == world.head.id and audit.object_id == visit_id
    assert audit.data["before"]["kind"] == "in_person"
    assert audit.data["after"]["kind"] == "phone"
    assert audit.data["after"]["note"] == "核实后为电话联系"


async def test_withdrawing_takes_the_visit_off_the_tallies(
    session: AsyncSession, world: World, clock: FrozenClock
) -> None:
    first = await visits.log_visit(
        session,
        world.worker,
        world.worker_roles,
        world.key.id or 0,
        "lecture",
        "微宣讲：防诈骗",
        clock.now(),
        tz=SHANGHAI,
    )
    clock.advance(timedelta(hours=2))
    second = await visits.log_visit(
        session,
        world.worker,
        world.worker_roles,
        world.key.id or 0,
        "in_person",
        "入户",
        clock.now(),
        tz=SHANGHAI,
    )
    assert await tally(session, world.key, "month", "2026-03-01") == (2, 1, 1)
    withdrawn = await visits.withdraw_visit(
        session,
        world.worker,
        world.worker_roles,
        second.visit.id or 0,
        clock.now(),
        reason="记错了户",
        tz=SHANGHAI,
    )
    assert withdrawn.withdrawn_at == clock.now()
    assert await tally(session, world.key, "month", "2026-03-01") == (1, 0, 1)
    row = (
        await session.exec(
            select(VisitTally)
            .where(VisitTally.household_id == world.key.id, VisitTally.period == "year")
            .execution_options(populate_existing=True)
        )
    ).one()
    assert row.last_visit_at == first.visit.visited_at
    with pytest.raises(InvalidInput):
        await visits.withdraw_visit(
            session,
            world.worker,
            world.worker_roles,
            second.visit.id or 0,
            clock.now(),
            tz=SHANGHAI,
        )
    assert [e.visit_id for e in await visits.diary(session, world.worker.id or 0)] == [
        first.visit.id
    ]
    every = await visits.diary(session, world.worker.id or 0, include_withdrawn=True)
    assert [e.withdrawn for e in every] == [True, False]


async def test_a_head_withdrawing_later_is_audited(
    session: AsyncSession, world: World, clock: FrozenClock
) -> None:
    logged = await visits.log_visit(
        session,
        world.worker,
        world.worker_roles,
        world.ordinary.id or 0,
        "phone",
        "电话",
        clock.now(),
    )
    clock.advance(timedelta(days=3))
    await visits.withdraw_visit(
        session, world.head, world.head_roles, logged.visit.id or 0, clock.now(), reason="重复"
    )
    audit = (await session.exec(select(AuditLog).where(AuditLog.action == "visit:withdraw"))).one()
    assert audit.detail == "重复" and audit.actor_id == world.head.id
    assert await tally(session, world.ordinary, "month", "2026-03-01") is None  # no contact left


async def test_the_diary_pages_newest_first_with_household_names(
    session: AsyncSession, world: World, clock: FrozenClock
) -> None:
    logged = []
    for household in (world.key, world.ordinary, world.subsistence):
        clock.advance(timedelta(minutes=30))
        result = await visits.log_visit(
            session,
            world.worker,
            world.worker_roles,
            household.id or 0,
            "phone",
            f"联系{household.head_name}",
            clock.now(),
        )
        logged.append(result.visit.id)
    page = await visits.diary(session, world.worker.id or 0, limit=2)
    assert [e.visit_id for e in page] == logged[::-1][:2]
    assert page[0].household_name == "孙桂兰" and page[0].worker_name == "王芳"
    rest = await visits.diary(session, world.worker.id or 0, limit=2, before=page[-1].visit_id)
    assert [e.visit_id for e in rest] == [logged[0]]
    assert rest[0].address == "杏东花园01号"
    assert await visits.diary(session, world.other.id or 0) == []


async def test_household_history_needs_the_right_to_view(
    session: AsyncSession, world: World, clock: FrozenClock
) -> None:
    await visits.log_visit(
        session, world.worker, world.worker_roles, world.key.id or 0, "phone", "电话", clock.now()
    )
    seen = await visits.household_history(
        session, world.head, world.head_roles, world.key.id or 0, clock.now()
    )
    assert [e.note for e in seen] == ["电话"]
    with pytest.raises(NotAllowed):
        await visits.household_history(
            session, world.other, world.other_roles, world.key.id or 0, clock.now()
        )


async def test_results_name_rules_by_msgid_for_translation(
    session: AsyncSession, world: World, clock: FrozenClock
) -> None:
    result = await visits.log_visit(
        session,
        world.worker,
        world.worker_roles,
        world.key.id or 0,
        "in_person",
        "入户",
        clock.now(),
    )
    rules = {r.id: r for r in await quotas.list_rules(session, clock.now())}
    names = {quotas.rule_name(rules[c.rule_id], "zh_Hans") for c in result.counted}
    assert len(names) == 2
    periods = {c.period for c in result.counted}
    assert periods == {PeriodKind.MONTH}
