"""Person tags and follow-ups: the tags file refused whole, tagging in scope only, what is due
(and overdue), recording with the short form (a home visit too), the on-time counts."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import FrozenClock
from bot.errors import InvalidInput, NotAllowed
from bot.services import follow_ups, tags
from bot.services.periods import Period, PeriodKind
from models import AuditLog, FollowUp, Household, HouseholdMember, ResidenceStatus, Visit

from .test_daily_push import SETTINGS
from .test_imports import EAST, EAST_A, WEST_A, WORKER_A, WORKER_W, Community, build_community

TZ = ZoneInfo("Asia/Shanghai")
ANSWERS = "135/85；6.1；1；头晕减轻"  # full-width separators, a choice by its number, a note


@pytest.fixture
async def community(session: AsyncSession, clock: FrozenClock) -> Community:
    return await build_community(session, clock.now())


async def _member(session: AsyncSession, community: Community, grid: str, worker: str) -> int:
    now = community.now
    household = Household(
        code=f"H{grid}",
        grid_id=community.grids[grid].id or 0,
        worker_id=community.workers[worker].id,
        address="1号",
        head_name="户主",
        created_at=now,
        updated_at=now,
    )
    session.add(household)
    await session.flush()
    member = HouseholdMember(
        household_id=household.id or 0,
        name="张秀英",
        relation="head",
        status=ResidenceStatus.REGISTERED,
        created_at=now,
        updated_at=now,
    )
    session.add(member)
    await session.flush()
    return member.id or 0


def test_the_default_tags_round_trip_and_a_bad_file_is_refused_whole() -> None:
    body = tags.policy_to_json(tags.DEFAULT_POLICY)
    assert tags.parse_policy(json.dumps(body, ensure_ascii=False)) == tags.DEFAULT_POLICY
    names = {t.name for t in tags.DEFAULT_POLICY.tags}
    assert {"社区矫正", "刑满释放", "吸毒人员", "严重精神障碍", "慢性病", "孕产妇"} <= names
    assert {"高龄独居", "残疾", "留守儿童", "低保"} <= names
    for broken in (
        b"\xff\xfe",
        "[1]",
        json.dumps({"tags": []}),
        json.dumps({**body, "extra": 1}),
        json.dumps({"tags": [{**body["tags"][0], "follow_up": {"period": "week"}}]}),
        json.dumps({"tags": [{**body["tags"][0], "form": []}]}),
        json.dumps({"tags": [body["tags"][0], body["tags"][0]]}),
        json.dumps({"tags": [{**body["tags"][0], "sensitivity": "public"}]}),
    ):
        with pytest.raises(InvalidInput):
            tags.parse_policy(broken)


async def test_a_tag_put_in_scope_is_due_recorded_and_counted(
    session: AsyncSession, community: Community
) -> None:
    worker = community.workers[WORKER_A]
    roles = await community.roles(session, worker)
    member_id = await _member(session, community, EAST_A, WORKER_A)
    outsider = await _member(session, community, WEST_A, WORKER_W)
    with pytest.raises(NotAllowed):  # another grid's person
        await tags.tag_member(session, worker, roles, outsider, "慢性病", community.now)
    with pytest.raises(InvalidInput):
        await tags.tag_member(session, worker, roles, member_id, "不存在", community.now)
    row, tag, new = await tags.tag_member(
        session, worker, roles, member_id, "慢性病", community.now
    )
    assert new and tag.key == "chronic"
    assert not (
        await tags.tag_member(session, worker, roles, member_id, "chronic", community.now)
    )[2]
    audit = (await session.exec(select(AuditLog).where(AuditLog.action == "tag:add"))).all()
    assert len(audit) == 1 and audit[0].data == {"tag": "chronic", "sensitive": True}

    policy = await tags.current_policy(session)
    due = await follow_ups.due_by_worker(session, [worker.id or 0], policy, community.now, tz=TZ)
    assert [(d.tag, d.done, d.times, d.overdue) for d in due[worker.id or 0]] == [
        ("chronic", 0, 1, False)
    ]
    with pytest.raises(InvalidInput):  # one answer short
        await follow_ups.record(
            session, worker, roles, row.id or 0, "135/85", "随访", community.now, tz=TZ
        )
    with pytest.raises(InvalidInput):  # not one of the choices
        await follow_ups.record(
            session, worker, roles, row.id or 0, "135/85; 6.1; 9", "随访", community.now, tz=TZ
        )
    recorded = await follow_ups.record(
        session,
        worker,
        roles,
        row.id or 0,
        "135/85；6.1；1；头晕减轻",
        "随访",
        community.now,
        tz=TZ,
    )
    assert recorded.follow_up.answers == {"bp": "135/85", "sugar": "6.1", "medication": "规律服药"}
    assert recorded.follow_up.note == "头晕减轻" and (recorded.done, recorded.times) == (1, 1)
    visit = (await session.exec(select(Visit))).one()  # a home visit in the diary too
    assert visit.kind == "in_person" and visit.note == "随访"
    due = await follow_ups.due_by_worker(session, [worker.id or 0], policy, community.now, tz=TZ)
    assert due == {}
    progress = await follow_ups.current_progress(
        session, community.now, tz=TZ, scope_path=community.grids[EAST].path
    )
    assert [(p.tag_name, p.done, p.total) for p in progress] == [("慢性病", 1, 1)]
    quarter = Period(PeriodKind.QUARTER, _quarter_start(community.now))
    figures = await follow_ups.on_time_counts(
        session, quarter, scope_path=community.grids[EAST].path, now=community.now, tz=TZ
    )
    assert [(f.worker_id, f.on_time, f.due) for f in figures] == [(worker.id, 1, 1)]
    assert len((await session.exec(select(FollowUp))).all()) == 1


async def test_a_missed_period_makes_the_follow_up_overdue_and_reminded(
    session: AsyncSession, community: Community
) -> None:
    worker = community.workers[WORKER_A]
    worker.telegram_id = 777
    roles = await community.roles(session, worker)
    member_id = await _member(session, community, EAST_A, WORKER_A)
    earlier = community.now - timedelta(days=200)
    await tags.tag_member(session, worker, roles, member_id, "严重精神障碍", earlier)
    policy = await tags.current_policy(session)
    due = await follow_ups.due_by_worker(session, [worker.id or 0], policy, community.now, tz=TZ)
    (item,) = due[worker.id or 0]
    assert item.tag == "mental" and item.overdue and item.partner == "health"
    at = datetime(2026, 12, 8, 9, 20, tzinfo=TZ)  # a Tuesday, mid-month
    first = await follow_ups.send_reminders(session, at, SETTINGS)
    assert first == 1  # missed last month
    assert await follow_ups.send_reminders(session, at + timedelta(hours=1), SETTINGS) == 0


def _quarter_start(now: datetime) -> date:
    day = now.astimezone(TZ).date()
    return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)


async def test_only_a_street_admin_changes_the_tags_and_a_tag_in_use_stays(
    session: AsyncSession, community: Community
) -> None:
    worker = community.workers[WORKER_A]
    member_id = await _member(session, community, EAST_A, WORKER_A)
    await tags.tag_member(
        session, worker, await community.roles(session, worker), member_id, "低保", community.now
    )
    body = tags.policy_to_json(tags.DEFAULT_POLICY)
    without = {**body, "tags": [t for t in body["tags"] if t["key"] != "subsistence"]}
    admin_roles = await community.roles(session, community.admin)
    with pytest.raises(NotAllowed):
        await tags.set_policy(
            session,
            actor=community.east_admin,
            roles=await community.roles(session, community.east_admin),
            raw=json.dumps(body),
            now=community.now,
        )
    with pytest.raises(InvalidInput):
        await tags.set_policy(
            session,
            actor=community.admin,
            roles=admin_roles,
            raw=json.dumps(without),
            now=community.now,
        )
    body["tags"][0]["follow_up"]["times"] = 2
    policy = await tags.set_policy(
        session, actor=community.admin, roles=admin_roles, raw=json.dumps(body), now=community.now
    )
    assert (await tags.current_policy(session)) == policy
    assert policy.tags[0].follow_up is not None and policy.tags[0].follow_up.times == 2
