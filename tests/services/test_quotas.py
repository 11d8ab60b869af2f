"""Quota rules as data, and the engine: due pairs, progress, the daily plan, the reminder."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import FrozenClock
from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.services import quotas, visits
from bot.services.periods import PeriodKind
from bot.services.quotas import RuleCounts, RuleHouseholds
from models import AuditLog, DailyPush, Household, HouseholdCategory, Person
from tests.services.test_visits import World, build_world

SHANGHAI = ZoneInfo("Asia/Shanghai")
MONTHLY_CONTACT = "Monthly contact with every household"
KEY_MONTHLY = "Monthly home visit to key households"
LECTURE = "Quarterly policy micro-lecture for every household"
ORDINARY_QUARTERLY = "Quarterly home visit to ordinary households"


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI).astimezone(UTC)  # type: ignore[misc]


@pytest.fixture
async def world(session: AsyncSession, clock: FrozenClock) -> World:
    # the rules are installed at the start of the year, so Q1 and February have rules too
    await quotas.ensure_default_rules(session, at(2026, 1, 2, 9), tz=SHANGHAI)
    return await build_world(session, clock.now(), rules=False)


async def names_by_id(session: AsyncSession) -> dict[int, str]:
    rules = await quotas.list_rules(session, at(2026, 1, 1), tz=SHANGHAI, history=True)
    return {r.id or 0: r.name for r in rules}


async def due(
    session: AsyncSession, now: datetime, **scope: object
) -> set[tuple[str, str, int, int]]:
    """(household code, rule name, done, required) of every due pair."""
    names = await names_by_id(session)
    codes = {h.id: h.code for h in (await session.exec(select(Household))).all()}
    items = await quotas.due_pairs(session, now, tz=SHANGHAI, **scope)  # type: ignore[arg-type]
    return {(codes[i.household_id], names[i.rule_id], i.done, i.required) for i in items}


async def visit(
    session: AsyncSession, world: World, household_code: str, kind: str, when: datetime
) -> None:
    household = {
        h.code: h for h in (world.key, world.ordinary, world.subsistence, world.next_door)
    }[household_code]
    who, roles = (
        (world.other, world.other_roles)
        if household is world.next_door
        else (world.worker, world.worker_roles)
    )
    await visits.log_visit(
        session, who, roles, household.id or 0, kind, "走访记录", when, tz=SHANGHAI
    )


async def test_default_rules_are_installed_once(session: AsyncSession, clock: FrozenClock) -> None:
    first = await quotas.ensure_default_rules(session, clock.now(), tz=SHANGHAI)
    second = await quotas.ensure_default_rules(session, clock.now(), tz=SHANGHAI)
    assert [r.id for r in first] == [r.id for r in second]
    assert [r.name for r in first] == [MONTHLY_CONTACT, KEY_MONTHLY, LECTURE, ORDINARY_QUARTERLY]
    assert [(r.households, r.counts, r.period, r.required) for r in first] == [
        ("all", "any", "month", 1),
        ("key", "in_person", "month", 1),
        ("all", "lecture", "quarter", 1),
        ("ordinary", "in_person", "quarter", 1),
    ]
    assert {r.valid_from for r in first} == {date(2026, 3, 1), date(2026, 1, 1)}
    assert quotas.describe_rule(first[1], "zh_Hans")
    assert quotas.describe_rule(first[1], "en") == (
        "key households: at least 1 × home visit a month"
    )


async def test_at_the_start_everyone_owes_everything(
    session: AsyncSession, world: World, clock: FrozenClock
) -> None:
    assert await due(session, clock.now()) == {
        ("H01", MONTHLY_CONTACT, 0, 1),
        ("H01", KEY_MONTHLY, 0, 1),
        ("H01", LECTURE, 0, 1),
        ("H02", MONTHLY_CONTACT, 0, 1),
        ("H02", LECTURE, 0, 1),
        ("H02", ORDINARY_QUARTERLY, 0, 1),
        ("H03", MONTHLY_CONTACT, 0, 1),
        ("H03", KEY_MONTHLY, 0, 1),
        ("H03", LECTURE, 0, 1),
        ("H04", MONTHLY_CONTACT, 0, 1),
        ("H04", LECTURE, 0, 1),
        ("H04", ORDINARY_QUARTERLY, 0, 1),
    }
    items = await quotas.due_pairs(session, clock.now(), worker_ids=[world.other.id or 0])
    assert {i.household_id for i in items} == {world.next_door.id}
    assert all(i.worker_id == world.other.id and not i.is_key for i in items)
    in_g1 = await quotas.due_pairs(session, clock.now(), grid_path=world.g1.path)
    assert {i.household_id for i in in_g1} == {
        world.key.id,
        world.ordinary.id,
        world.subsistence.id,
    }
    assert {i.is_key for i in in_g1 if i.household_id == world.key.id} == {True}


async def test_visits_discharge_what_they_count_for(
    session: AsyncSession, world: World, clock: FrozenClock
) -> None:
    now = clock.now()
    await visit(session, world, "H01", "phone", now)  # contact, not a home visit
    await visit(session, world, "H02", "in_person", now)  # contact + ordinary quarterly
    await visit(session, world, "H03", "lecture", now)  # contact + lecture, not a home visit
    assert await due(session, now, worker_ids=[world.worker.id]) == {
        ("H01", KEY_MONTHLY, 0, 1),
        ("H01", LECTURE, 0, 1),
        ("H02", LECTURE, 0, 1),
        ("H03", KEY_MONTHLY, 0, 1),
    }
    # a new quarter: everything is owed again
    april = await due(session, at(2026, 4, 1, 0, 10), worker_ids=[world.worker.id])
    assert {d[1] for d in april if d[0] == "H02"} == {
        MONTHLY_CONTACT,
        LECTURE,
        ORDINARY_QUARTERLY,
    }


async def test_a_new_month_in_the_same_quarter_keeps_the_quarterly_visit(
    session: AsyncSession, world: World, clock: FrozenClock
) -> None:
    await visit(session, world, "H02", "in_person", at(2026, 2, 10, 10))
    assert {d[1] for d in await due(session, clock.now()) if d[0] == "H02"} == {
        MONTHLY_CONTACT,
        LECTURE,
    }


async def test_the_boundary_counts_in_shanghai_time(session: AsyncSession, world: World) -> None:
    await visit(session, world, "H02", "in_person", at(2026, 3, 31, 23, 30))
    march = await due(session, at(2026, 3, 31, 23, 40), worker_ids=[world.worker.id])
    assert not {d for d in march if d[0] == "H02" and d[1] != LECTURE}
    april = await due(session, at(2026, 4, 1, 0, 5), worker_ids=[world.worker.id])
    assert {d[1] for d in april if d[0] == "H02"} == {MONTHLY_CONTACT, LECTURE, ORDINARY_QUARTERLY}
    await visit(session, world, "H02", "in_person", at(2026, 4, 1, 0, 10))
    april = await due(session, at(2026, 4, 1, 9), worker_ids=[world.worker.id])
    assert {d[1] for d in april if d[0] == "H02"} == {LECTURE}


async def test_a_category_rule_covers_only_its_category(
    session: AsyncSession, world: World, clock: FrozenClock
) -> None:
    rule = await quotas.add_rule(
        session,
        world.admin,
        world.admin_roles,
        clock.now(),
        name="低保户每月两次入户",
        households="低保五保户",
        counts="入户",
        period="每月",
        required="２",
        tz=SHANGHAI,
    )
    assert (rule.households, rule.category, rule.required) == (
        "category",
        int(HouseholdCategory.SUBSISTENCE),
        2,
    )
    await visit(session, world, "H03", "in_person", clock.now())
    pairs = await due(session, clock.now())
    assert ("H03", "低保户每月两次入户", 1, 2) in pairs
    assert not {p for p in pairs if p[1] == "低保户每月两次入户" and p[0] != "H03"}
    assert (
        await session.exec(select(AuditLog).where(AuditLog.action == "quota_rule:add"))
    ).one().object_id == rule.id


async def test_a_change_applies_from_the_current_period_on(
    session: AsyncSession, world: World, clock: FrozenClock
) -> None:
    rules = {r.name: r for r in await quotas.list_rules(session, clock.now(), tz=SHANGHAI)}
    await visit(session, world, "H02", "phone", at(2026, 2, 10, 10))
    assert ("H02", MONTHLY_CONTACT, 1, 1) not in await due(session, at(2026, 2, 20, 10))

    changed = await quotas.change_rule(
        session,
        world.admin,
        world.admin_roles,
        rules[MONTHLY_CONTACT].id or 0,
        clock.now(),  # 12 March
        required="2",
        tz=SHANGHAI,
    )
    assert changed.valid_from == date(2026, 3, 1) and changed.required == 2
    assert rules[MONTHLY_CONTACT].valid_until == date(2026, 3, 1)
    # February is still judged by the rule of February: met with one contact
    assert not {d for d in await due(session, at(2026, 2, 20, 10)) if d[0] == "H02"} & {
        ("H02", MONTHLY_CONTACT, 1, 1)
    }
    await visit(session, world, "H02", "phone", clock.now())
    assert ("H02", MONTHLY_CONTACT, 1, 2) in await due(session, clock.now())
    current = await quotas.list_rules(session, clock.now(), tz=SHANGHAI)
    assert [r.name for r in current].count(MONTHLY_CONTACT) == 1
    audit = (
        await session.exec(select(AuditLog).where(AuditLog.action == "quota_rule:change"))
    ).one()
    assert audit.data["before"]["required"] == 1 and audit.data["after"]["required"] == 2


async def test_a_quarterly_change_mid_quarter_rejudges_the_quarter_not_the_last(
    session: AsyncSession, world: World, clock: FrozenClock
) -> None:
    rules = {r.name: r for r in await quotas.list_rules(session, clock.now(), tz=SHANGHAI)}
    await visit(session, world, "H04", "lecture", at(2026, 2, 3, 10))
    assert not {d for d in await due(session, clock.now()) if d[:2] == ("H04", LECTURE)}
    changed = await quotas.change_rule(
        session,
        world.admin,
        world.admin_roles,
        rules[LECTURE].id or 0,
        clock.now(),
        required=2,
        name="每季度两次微宣讲",
        tz=SHANGHAI,
    )
    assert changed.valid_from == date(2026, 1, 1)
    assert ("H04", "每季度两次微宣讲", 1, 2) in await due(session, clock.now())
    with pytest.raises(InvalidInput):  # the old rule is over
        await quotas.change_rule(
            session,
            world.admin,
            world.admin_roles,
            rules[LECTURE].id or 0,
            clock.now(),
            required=3,
        )
    retired = await quotas.retire_rule(
        session, world.admin, world.admin_roles, changed.id or 0, clock.now(), tz=SHANGHAI
    )
    assert retired.valid_until == date(2026, 1, 1)
    assert not {d for d in await due(session, clock.now()) if d[1] == "每季度两次微宣讲"}


async def test_rule_changes_are_for_administrators_of_the_whole_area(
    session: AsyncSession, world: World, clock: FrozenClock
) -> None:
    rule = (await quotas.list_rules(session, clock.now(), tz=SHANGHAI))[0]
    with pytest.raises(NotAllowed) as refused:
        await quotas.change_rule(
            session, world.head, world.head_roles, rule.id or 0, clock.now(), required=2
        )
    assert refused.value.audit is not None and refused.value.audit.action == "refused:manage"
    with pytest.raises(NotFound):
        await quotas.change_rule(
            session, world.admin, world.admin_roles, 424242, clock.now(), required=2
        )
    with pytest.raises(InvalidInput) as same:
        await quotas.change_rule(
            session, world.admin, world.admin_roles, rule.id or 0, clock.now(), required="1"
        )
    assert same.value.message == "That is what visit rule {rule} already says."


@pytest.mark.parametrize("value", ["-1", "0", "999999", "abc", "", "  ", "1.5", "一", "101"])
async def test_hostile_required_counts_are_refused_with_a_clear_message(
    session: AsyncSession, world: World, clock: FrozenClock, value: str
) -> None:
    rule = (await quotas.list_rules(session, clock.now(), tz=SHANGHAI))[0]
    with pytest.raises(InvalidInput) as refused:
        await quotas.change_rule(
            session, world.admin, world.admin_roles, rule.id or 0, clock.now(), required=value
        )
    assert refused.value.message == (
        "The number of visits must be a whole number from 1 to {max}, not “{value}”."
    )
    assert refused.value.params["max"] == quotas.MAX_REQUIRED


@pytest.mark.parametrize(
    "text, expected",
    [
        ("all", (RuleHouseholds.ALL, 0)),
        ("重点户", (RuleHouseholds.KEY, 0)),
        ("普通戶", (RuleHouseholds.ORDINARY, 0)),
        ("空巢老人", (RuleHouseholds.CATEGORY, int(HouseholdCategory.EMPTY_NEST))),
        ("empty-nest elderly", (RuleHouseholds.CATEGORY, int(HouseholdCategory.EMPTY_NEST))),
        ("LEFT_BEHIND_CHILDREN", (RuleHouseholds.CATEGORY, 16)),
        ("留守兒童戶", (RuleHouseholds.CATEGORY, 16)),
        ("烈属军属户", (RuleHouseholds.CATEGORY, 32)),
    ],
)
def test_household_groups_in_the_words_admins_use(
    text: str, expected: tuple[RuleHouseholds, int]
) -> None:
    assert quotas.parse_households(text) == expected


def test_counts_periods_and_numbers_in_the_words_admins_use() -> None:
    assert quotas.parse_counts("微宣讲") is RuleCounts.LECTURE
    assert quotas.parse_counts("Home visit") is RuleCounts.IN_PERSON
    assert quotas.parse_counts("任意联系") is RuleCounts.ANY
    assert quotas.parse_period("季度") is PeriodKind.QUARTER
    assert quotas.parse_period("Monthly") is PeriodKind.MONTH
    assert quotas.parse_required("３次") == 3
    assert quotas.parse_required(100) == 100
    for bad in ("cats", "重要户", "🏠"):
        with pytest.raises(InvalidInput):
            quotas.parse_households(bad)
    with pytest.raises(InvalidInput):
        quotas.parse_required(True)


hostile = (
    st.text(max_size=200)
    | st.text(alphabet="０１２３４５６７８９-+ 次\u3000\u200b", max_size=12)
    | st.builds(str.__mul__, st.sampled_from(["9", "好", " ", "🏠"]), st.integers(1, 10_000))
)


@given(hostile)
def test_any_rule_text_parses_or_is_refused_with_a_typed_error(text: str) -> None:
    for parse in (
        quotas.parse_households,
        quotas.parse_counts,
        quotas.parse_period,
        quotas.parse_required,
        quotas.parse_rule_name,
    ):
        try:
            parse(text)
        except InvalidInput as refusal:
            assert refusal.message
            for value in refusal.params.values():
                assert len(str(value)) <= 30 or isinstance(value, int)


@given(st.integers())
def test_any_integer_required_is_in_range_or_refused(number: int) -> None:
    try:
        assert 1 <= quotas.parse_required(number) <= quotas.MAX_REQUIRED
    except InvalidInput:
        assert not 1 <= number <= quotas.MAX_REQUIRED


async def test_progress_puts_workers_and_grids_side_by_side(
    session: AsyncSession, world: World, clock: FrozenClock
) -> None:
    await visit(session, world, "H01", "in_person", clock.now())
    await visit(session, world, "H04", "phone", clock.now())
    by_worker = await quotas.progress(
        session, clock.now(), by="worker", scope_path=world.tier2.path, tz=SHANGHAI
    )
    assert [p.subject_name for p in by_worker] == ["李强", "王芳"]  # by name
    cells = {
        (p.subject_name, c.rule_name): (c.fulfilled, c.households)
        for p in by_worker
        for c in p.cells
    }
    assert cells[("王芳", MONTHLY_CONTACT)] == (1, 3)
    assert cells[("王芳", KEY_MONTHLY)] == (1, 2)
    assert cells[("王芳", ORDINARY_QUARTERLY)] == (0, 1)
    assert cells[("李强", MONTHLY_CONTACT)] == (1, 1)
    assert cells[("李强", KEY_MONTHLY)] == (0, 0)
    first = by_worker[0].cells[0]
    assert first.period is PeriodKind.MONTH and first.period_start == date(2026, 3, 1)

    by_grid = await quotas.progress(
        session, clock.now(), by="grid", scope_path=world.tier2.path, tz=SHANGHAI
    )
    assert [p.subject_id for p in by_grid] == [world.g1.id, world.g2.id]
    assert by_grid[0].cells[0].households == 3
    whole = await quotas.progress(
        session, clock.now(), by="grid", scope_path=world.root.path, tz=SHANGHAI
    )
    assert len(whole) == 1 and whole[0].cells[0].households == 4
    assert whole[0].cells[0].missing == 2
    mine = await quotas.progress(
        session,
        clock.now(),
        by="worker",
        scope_path=world.g1.path,
        worker_ids=[world.worker.id or 0],
        tz=SHANGHAI,
    )
    assert [p.subject_id for p in mine] == [world.worker.id]


async def test_the_daily_plan_spreads_the_work_key_and_overdue_first(
    session: AsyncSession, world: World, clock: FrozenClock
) -> None:
    # February: the ordinary household was contacted, the key ones were not (overdue now)
    await visit(session, world, "H02", "in_person", at(2026, 2, 10, 10))
    plans = await quotas.plan_daily_push(session, clock.now(), tz=SHANGHAI)
    assert set(plans) == {world.worker.id, world.other.id}
    plan = plans[world.worker.id or 0]
    assert plan.local_day == date(2026, 3, 12)
    assert plan.due_households == 3
    # all three owe a monthly rule; 14 working days are left in March → 1 today
    assert [(h.last_day, h.working_days_left, h.households) for h in plan.horizons] == [
        (date(2026, 3, 31), 14, 3)
    ]
    assert plan.target_today == 1
    first = plan.suggestions[0]
    assert first.is_key and first.overdue
    assert first.household_id in {world.key.id, world.subsistence.id}
    assert first.head_name in {"刘秀英", "孙桂兰"}

    # the last working day of March: everything still owed is for today
    last = await quotas.plan_daily_push(session, at(2026, 3, 31, 8), tz=SHANGHAI)
    assert last[world.worker.id or 0].target_today == 3
    codes = [s.code for s in last[world.worker.id or 0].suggestions]
    assert codes[-1] == "H02" and set(codes[:2]) == {"H01", "H03"}  # key first
    assert not last[world.worker.id or 0].suggestions[-1].overdue

    # a calendar that makes the rest of March a holiday leaves one day: today
    def holiday_after_today(day: date) -> bool:
        return day <= date(2026, 3, 12)

    squeezed = await quotas.plan_daily_push(session, clock.now(), holiday_after_today, tz=SHANGHAI)
    assert squeezed[world.worker.id or 0].target_today == 3

    for code in ("H01", "H02", "H03"):
        await visit(session, world, code, "in_person", clock.now())
    await visit(session, world, "H01", "lecture", clock.now())
    await visit(session, world, "H02", "lecture", clock.now())
    await visit(session, world, "H03", "lecture", clock.now())
    done = await quotas.plan_daily_push(session, clock.now(), tz=SHANGHAI)
    assert world.worker.id not in done
    only = await quotas.plan_daily_push(
        session, clock.now(), worker_ids=[world.other.id or 0], tz=SHANGHAI
    )
    assert set(only) == {world.other.id}


async def test_quarter_only_debts_are_spread_over_the_quarter(
    session: AsyncSession, world: World
) -> None:
    # 1 April: every household is contacted, the quarterly rules remain (ends 30 June)
    day = at(2026, 4, 1, 9)
    for code in ("H01", "H02", "H03"):
        await visit(session, world, code, "in_person" if code != "H02" else "phone", day)
    plan = (await quotas.plan_daily_push(session, day, tz=SHANGHAI))[world.worker.id or 0]
    assert [(h.last_day, h.households) for h in plan.horizons] == [(date(2026, 6, 30), 3)]
    assert plan.target_today == 1
    assert plan.suggestions[0].last_visit_at == day  # an aware datetime on every database


async def test_the_reminder_comes_five_working_days_before_the_end(
    session: AsyncSession, world: World
) -> None:
    await visit(session, world, "H04", "lecture", at(2026, 3, 2, 10))
    await visit(session, world, "H04", "in_person", at(2026, 3, 2, 11))
    assert await quotas.short_workers(session, at(2026, 3, 24, 9), tz=SHANGHAI) == []
    assert await quotas.short_workers(session, at(2026, 3, 28, 9), tz=SHANGHAI) == []  # Sat
    short = await quotas.short_workers(session, at(2026, 3, 25, 9), tz=SHANGHAI)
    assert [s.worker_id for s in short] == [world.worker.id]  # the other has done it all
    names = await names_by_id(session)
    reminder = short[0]
    assert reminder.last_day == date(2026, 3, 31) and reminder.working_days_left == 5
    assert {(names[f.rule_id], f.households) for f in reminder.shortfalls} == {
        (MONTHLY_CONTACT, 3),
        (KEY_MONTHLY, 2),
        (LECTURE, 3),
        (ORDINARY_QUARTERLY, 1),
    }


async def test_a_daily_push_is_claimed_once(
    session: AsyncSession, world: World, clock: FrozenClock
) -> None:
    day = date(2026, 3, 12)
    worker_id = world.worker.id or 0
    assert await quotas.claim_daily_push(session, worker_id, day, clock.now())
    assert not await quotas.claim_daily_push(session, worker_id, day, clock.now())
    assert await quotas.claim_daily_push(session, worker_id, day + timedelta(days=1), clock.now())
    rows = (await session.exec(select(DailyPush).where(DailyPush.worker_id == worker_id))).all()
    assert len(rows) == 2


async def test_two_processes_claiming_the_same_push_get_one_yes(
    engine: AsyncEngine, clock: FrozenClock
) -> None:
    now = clock.now()
    async with AsyncSession(engine, expire_on_commit=False) as setup:
        worker = Person(name="王芳", created_at=now, updated_at=now)
        setup.add(worker)
        await setup.commit()
    worker_id = worker.id or 0

    async def claim() -> bool:
        async with AsyncSession(engine) as session:
            won = await quotas.claim_daily_push(session, worker_id, date(2026, 3, 12), now)
            await asyncio.sleep(0)  # let the other claimant run into the first one's row
            await session.commit()
            return won

    results = await asyncio.gather(claim(), claim())
    assert sorted(results) == [False, True]
    async with AsyncSession(engine) as check:
        assert len((await check.exec(select(DailyPush))).all()) == 1


async def test_no_rules_means_nothing_is_due(session: AsyncSession, clock: FrozenClock) -> None:
    world = await build_world(session, clock.now(), rules=False)
    assert await quotas.due_pairs(session, clock.now()) == []
    assert await quotas.plan_daily_push(session, clock.now()) == {}
    rows = await quotas.progress(session, clock.now(), by="worker", scope_path=world.root.path)
    assert all(p.cells == () for p in rows)
