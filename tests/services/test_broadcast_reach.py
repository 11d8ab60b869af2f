"""A broadcast counted as a policy micro-lecture (群发宣传计入微宣讲) for the households it
reached: recorded once per broadcast and household, counted only by a rule that says so."""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import FrozenClock
from bot.services import broadcast_delivery as delivery
from bot.services import broadcast_reach, broadcasts, people, quotas
from bot.services.broadcasts import Notice
from bot.services.demo import DEMO_PERSONAS, load_demo_data
from bot.settings import Settings
from bot.telegram.broadcast_views import receipt_markup
from models import (
    Broadcast,
    BroadcastReach,
    BroadcastRecipient,
    Grid,
    OutboxMessage,
    OutboxStatus,
    Person,
    QuotaRule,
    VisitTally,
)
from tests.conftest import T0

SETTINGS = Settings(_env_file=None)  # type: ignore[call-arg]
LECTURE_RULE = "Quarterly policy micro-lecture for every household"


async def person(session: AsyncSession, persona: str) -> Person:
    return (
        await session.exec(select(Person).where(Person.telegram_id == DEMO_PERSONAS[persona]))
    ).one()


async def broadcast_delivered(session: AsyncSession, *, emergency: bool = False) -> int:
    """The demo head's broadcast to the residents of their grids, every message sent."""
    head = await person(session, "head")
    assert head.id is not None
    held = await people.roles_of(session, head.id)
    grid = await broadcasts.broadcast_grid(session, head, held, None, T0)
    draft = await broadcasts.create_draft(
        session, head, held, grid, Notice("垃圾分类新规宣传"), T0, SETTINGS
    )
    assert draft.id is not None
    ident = draft.id
    if emergency:
        await broadcasts.toggle_emergency(session, head, held, draft.id, T0)
    await broadcasts.start(session, head, held, draft.id, T0)
    while await delivery.queue_round(session, draft.id, T0, SETTINGS, receipt_markup):
        pass
    sent = select(BroadcastRecipient.outbox_id).where(BroadcastRecipient.broadcast_id == draft.id)
    await session.exec(
        update(OutboxMessage)
        .where(col(OutboxMessage.id).in_(sent))
        .values(status=OutboxStatus.SENT)
    )
    session.expire_all()
    return ident


async def reached_households(session: AsyncSession, broadcast_id: int) -> set[int]:
    """An independent count: households with a resident the broadcast was delivered to."""
    rows = await session.exec(
        select(BroadcastRecipient.household_id)
        .join(OutboxMessage, col(OutboxMessage.id) == col(BroadcastRecipient.outbox_id))
        .where(
            BroadcastRecipient.broadcast_id == broadcast_id,
            OutboxMessage.status == OutboxStatus.SENT,
            col(BroadcastRecipient.household_id).is_not(None),
        )
    )
    return {h for h in rows.all() if h is not None}


async def lectures_fulfilled(session: AsyncSession, rule_name: str) -> int:
    root = (await session.exec(select(Grid).where(col(Grid.parent_id).is_(None)))).first()
    assert root is not None
    rows = await quotas.progress(session, T0, by="grid", scope_path=root.path, tz=SETTINGS.tz)
    return sum(cell.fulfilled for row in rows for cell in row.cells if cell.rule_name == rule_name)


async def test_a_broadcast_counts_as_a_lecture_only_where_the_rule_says_so(
    session: AsyncSession, clock: FrozenClock
) -> None:
    await load_demo_data(session, clock.now())
    await quotas.ensure_default_rules(session, T0, tz=SETTINGS.tz)
    await session.flush()
    before = await lectures_fulfilled(session, LECTURE_RULE)
    ident = await broadcast_delivered(session)
    reached = await reached_households(session, ident)
    assert reached

    # the progress sweep records the households reached: once, however often it runs
    await delivery.refresh_progress(session, ident, T0, SETTINGS)
    broadcast = await session.get(Broadcast, ident)
    assert broadcast is not None
    assert await broadcast_reach.record_reach(session, broadcast, T0, SETTINGS.tz) == 0
    recorded = (
        await session.exec(
            select(BroadcastReach.household_id).where(BroadcastReach.broadcast_id == ident)
        )
    ).all()
    assert sorted(recorded) == sorted(reached)
    quarter = (
        await session.exec(
            select(func.sum(VisitTally.broadcasts)).where(VisitTally.period == "quarter")
        )
    ).one()
    assert quarter == len(reached)

    # the default rule counts lectures only: the broadcast changes nothing there
    assert await lectures_fulfilled(session, LECTURE_RULE) == before

    # the admin's rule says a broadcast counts (微宣讲或群发): the households reached now count
    admin = await person(session, "admin")
    assert admin.id is not None
    rule = (await session.exec(select(QuotaRule).where(QuotaRule.name == LECTURE_RULE))).one()
    assert rule.id is not None
    changed = await quotas.change_rule(
        session,
        admin,
        await people.roles_of(session, admin.id),
        rule.id,
        T0,
        counts="微宣讲或群发",
        tz=SETTINGS.tz,
    )
    await session.flush()
    assert changed.counts == "lecture_bc"
    # /quota_rules and /quota name the rule's kind in every language
    assert "群发宣传" in quotas.describe_rule(changed, "zh_Hans")
    assert "群發宣傳" in quotas.describe_rule(changed, "zh_Hant")
    assert "broadcast" in quotas.describe_rule(changed, "en")
    assert await lectures_fulfilled(session, LECTURE_RULE) == before + len(reached)


async def test_an_emergency_alert_is_not_a_lecture(
    session: AsyncSession, clock: FrozenClock
) -> None:
    await load_demo_data(session, clock.now())
    await session.flush()
    ident = await broadcast_delivered(session, emergency=True)
    await delivery.refresh_progress(session, ident, T0, SETTINGS)
    count = (
        await session.exec(select(func.count()).where(BroadcastReach.broadcast_id == ident))
    ).one()
    assert count == 0
