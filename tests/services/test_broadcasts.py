"""Broadcasts (宣传 / 应急通知) on the real database: who may send where, the notice's limits
(Telegram counts UTF-16 units), forged presses, recipients written once, progress, receipts
and the list of who has not confirmed."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import FrozenClock
from bot.db import create_session_factory
from bot.errors import InvalidInput, NotAllowed
from bot.services import broadcast_delivery as delivery
from bot.services import broadcasts, people, tags
from bot.services.broadcasts import HEADER_ROOM, Notice, check_notice
from bot.services.demo import DEMO_PERSONAS, load_demo_data
from bot.services.message_size import MAX_CAPTION, MAX_MESSAGE, utf16_length, visible_length
from bot.settings import LOCALES, Settings
from bot.telegram.broadcast_views import receipt_markup
from models import (
    AuditLog,
    Broadcast,
    BroadcastRecipient,
    Grid,
    Household,
    HouseholdMember,
    OutboxLane,
    OutboxMessage,
    OutboxStatus,
    Person,
    PersonTag,
    Relation,
    ResidenceStatus,
    Role,
)
from tests.conftest import T0

SETTINGS = Settings(_env_file=None)  # type: ignore[call-arg]
TEXT_LIMIT = MAX_MESSAGE - HEADER_ROOM
CAPTION_LIMIT = MAX_CAPTION - HEADER_ROOM


# -- the notice (pure) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "notice",
    [
        Notice(""),
        Notice("   \n\t "),
        Notice("字" * (TEXT_LIMIT + 1)),
        Notice("😀" * (TEXT_LIMIT // 2 + 1)),  # an emoji is two UTF-16 units
        Notice("字" * (CAPTION_LIMIT + 1), photo_file_id="AgAD"),
        Notice("a" * 1_000_000),
    ],
)
def test_a_notice_that_is_empty_or_too_long_is_refused_with_its_length(notice: Notice) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_notice(notice)
    if notice.text.strip():
        assert refused.value.params["length"] == str(utf16_length(notice.text))
        assert refused.value.params["limit"] == str(notice.limit)


def test_a_notice_at_the_limit_or_only_a_photo_is_taken() -> None:
    assert check_notice(Notice("字" * TEXT_LIMIT)).text == "字" * TEXT_LIMIT
    assert check_notice(Notice("😀" * (TEXT_LIMIT // 2))).text
    assert check_notice(Notice("", document_file_id="BQAD")).document_file_id == "BQAD"
    assert check_notice(Notice("  停水通知  ")).text == "停水通知"


@given(st.text(max_size=5000))
@hsettings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
def test_any_text_is_taken_within_the_limit_or_refused(text: str) -> None:
    try:
        notice = check_notice(Notice(text))
    except InvalidInput:
        return
    assert 0 < utf16_length(notice.text) <= TEXT_LIMIT


@pytest.mark.parametrize("emergency", [False, True])
@pytest.mark.parametrize("locale", LOCALES)
def test_the_longest_notice_fits_one_message_in_every_language(
    emergency: bool, locale: str
) -> None:
    """The header and the "收到" line fit in the room kept for them, with the longest grid
    name and a text of markup characters (escaped, they count once each)."""
    grid = Grid(code="1", name="网" * 100, tier=0, path="/1/", created_at=T0)
    for text, media, limit in (
        ("<&>" * (TEXT_LIMIT // 3), None, MAX_MESSAGE),
        ("字" * CAPTION_LIMIT, "AgAD", MAX_CAPTION),
    ):
        broadcast = Broadcast(
            id=1,
            sender_id=1,
            grid_id=1,
            text=text,
            photo_file_id=media,
            emergency=emergency,
            created_at=T0,
        )
        method, key, params = delivery.recipient_copy(broadcast, grid, locale)
        assert visible_length(params[key], "HTML") <= limit, (method, locale)


# -- on the database --------------------------------------------------------------------------


@pytest.fixture
async def demo(session: AsyncSession, clock: FrozenClock) -> AsyncSession:
    await load_demo_data(session, clock.now())
    await session.flush()
    return session


async def person(session: AsyncSession, persona: str) -> Person:
    return (
        await session.exec(select(Person).where(Person.telegram_id == DEMO_PERSONAS[persona]))
    ).one()


async def roles(session: AsyncSession, who: Person) -> list[people.RoleInGrid]:
    assert who.id is not None
    return await people.roles_of(session, who.id)


async def draft_of(session: AsyncSession, persona: str, text: str = "停水通知") -> Broadcast:
    who = await person(session, persona)
    held = await roles(session, who)
    grid = await broadcasts.broadcast_grid(session, who, held, None, T0)
    return await broadcasts.create_draft(session, who, held, grid, Notice(text), T0, SETTINGS)


async def test_only_heads_the_centre_and_admins_may_broadcast(demo: AsyncSession) -> None:
    for persona in ("resident", "worker", "department", "supervisor"):
        who = await person(demo, persona)
        with pytest.raises(NotAllowed):
            await broadcasts.broadcast_grid(demo, who, await roles(demo, who), None, T0)
    for persona in ("head", "community_head", "center", "admin"):
        who = await person(demo, persona)
        grid = await broadcasts.broadcast_grid(demo, who, await roles(demo, who), None, T0)
        assert grid.id is not None


async def test_an_audience_outside_ones_scope_is_refused_and_audited(demo: AsyncSession) -> None:
    head = await person(demo, "head")
    held = await roles(demo, head)
    own = {r.grid_path for r in held}
    outside = (
        await demo.exec(select(Grid).where(Grid.tier == 3).order_by(col(Grid.id).desc()))
    ).first()
    assert outside is not None and not any(outside.path.startswith(p) for p in own)
    with pytest.raises(NotAllowed) as refused:
        await broadcasts.broadcast_grid(demo, head, held, outside, T0)
    assert refused.value.audit is not None
    assert refused.value.audit.action == "refused:broadcast"
    with pytest.raises(NotAllowed):
        await broadcasts.create_draft(demo, head, held, outside, Notice("x"), T0, SETTINGS)


async def test_a_forged_press_on_another_persons_draft_is_refused_and_audited(
    demo: AsyncSession,
) -> None:
    draft = await draft_of(demo, "head")
    assert draft.id is not None
    for persona in ("other_worker", "community_head", "admin"):
        other = await person(demo, persona)
        with pytest.raises(NotAllowed) as refused:
            await broadcasts.start(demo, other, await roles(demo, other), draft.id, T0)
        assert refused.value.audit is not None
        assert refused.value.audit.object_id == draft.id
    head = await person(demo, "head")
    held = await roles(demo, head)
    with pytest.raises(InvalidInput):
        await broadcasts.set_audience(demo, head, held, draft.id, "party_members", T0)
    await broadcasts.start(demo, head, held, draft.id, T0)
    with pytest.raises(NotAllowed):  # a second press of ✅
        await broadcasts.start(demo, head, held, draft.id, T0)
    with pytest.raises(NotAllowed):
        await broadcasts.toggle_emergency(demo, head, held, draft.id, T0)


async def test_recipients_are_written_once_even_when_a_round_runs_again(
    demo: AsyncSession,
) -> None:
    draft = await draft_of(demo, "head")
    head = await person(demo, "head")
    assert draft.id is not None
    _, grid, total = await broadcasts.start(demo, head, await roles(demo, head), draft.id, T0)
    assert total > 0
    written = await delivery.queue_round(demo, draft.id, T0, SETTINGS, receipt_markup)
    assert written == total
    assert await delivery.queue_round(demo, draft.id, T0, SETTINGS, receipt_markup) == 0
    # a process that read the old cursor runs the round again: nobody is written twice
    await demo.exec(
        update(Broadcast).where(col(Broadcast.id) == draft.id).values(cursor=0, queued_all=False)
    )
    ident, grid_name = draft.id, grid.name
    demo.expire_all()
    await delivery.queue_round(demo, ident, T0, SETTINGS, receipt_markup)
    recipients = (
        await demo.exec(select(BroadcastRecipient).where(BroadcastRecipient.broadcast_id == ident))
    ).all()
    assert len(recipients) == total
    ids = [r.outbox_id for r in recipients if r.outbox_id is not None]
    rows = (await demo.exec(select(OutboxMessage).where(col(OutboxMessage.id).in_(ids)))).all()
    assert len(rows) == len(ids) == len(set(ids))
    assert {(row.lane, row.urgent) for row in rows} == {(OutboxLane.BULK, False)}
    assert all("reply_markup" not in row.payload for row in rows)
    assert all(grid_name in row.payload["text"] for row in rows)


async def test_an_emergency_is_urgent_goes_first_and_asks_for_a_receipt(
    demo: AsyncSession,
) -> None:
    draft = await draft_of(demo, "head", "台风预警：今晚请勿外出")
    head = await person(demo, "head")
    held = await roles(demo, head)
    assert draft.id is not None
    await broadcasts.toggle_emergency(demo, head, held, draft.id, T0)
    await broadcasts.start(demo, head, held, draft.id, T0)
    await delivery.queue_round(demo, draft.id, T0, SETTINGS, receipt_markup)
    rows = (
        await demo.exec(
            select(OutboxMessage)
            .join(BroadcastRecipient, col(BroadcastRecipient.outbox_id) == OutboxMessage.id)
            .where(BroadcastRecipient.broadcast_id == draft.id)
        )
    ).all()
    assert rows
    assert {(row.lane, row.urgent) for row in rows} == {(OutboxLane.NOTICE, True)}
    keyboard = rows[0].payload["reply_markup"]["inline_keyboard"]
    assert keyboard[0][0]["callback_data"] == f"rc:{draft.id}"


async def test_receipts_progress_and_the_list_of_who_has_not_confirmed(
    demo: AsyncSession,
) -> None:
    draft = await draft_of(demo, "head", "停水")
    head = await person(demo, "head")
    held = await roles(demo, head)
    assert draft.id is not None
    await broadcasts.toggle_emergency(demo, head, held, draft.id, T0)
    ident = draft.id
    _, _, total = await broadcasts.start(demo, head, held, ident, T0)
    await delivery.queue_round(demo, ident, T0, SETTINGS, receipt_markup)
    await delivery.queue_round(demo, ident, T0, SETTINGS, receipt_markup)
    figures = await delivery.refresh_progress(demo, ident, T0, SETTINGS)
    assert figures is not None and figures.waiting == total and not figures.finished

    outbox_ids = select(BroadcastRecipient.outbox_id).where(
        BroadcastRecipient.broadcast_id == ident
    )
    await demo.exec(
        update(OutboxMessage)
        .where(col(OutboxMessage.id).in_(outbox_ids))
        .values(status=OutboxStatus.SENT)
    )
    demo.expire_all()
    figures = await delivery.refresh_progress(demo, ident, T0, SETTINGS)
    assert figures is not None and figures.finished and figures.sent == total
    broadcast = await demo.get(Broadcast, ident)
    assert broadcast is not None and broadcast.status == "done" and broadcast.sent_count == total

    resident, stranger = await person(demo, "resident"), await person(demo, "center")
    assert await broadcasts.confirm_receipt(demo, resident, ident, T0) is True
    assert await broadcasts.confirm_receipt(demo, resident, ident, T0) is False
    figures = await delivery.refresh_progress(demo, ident, T0, SETTINGS)  # receipts move it
    assert figures is not None and figures.confirmed == 1
    with pytest.raises(NotAllowed) as refused:
        await broadcasts.confirm_receipt(demo, stranger, ident, T0)
    assert refused.value.audit is not None

    assert await delivery.due_reminders(demo, T0 + timedelta(minutes=29)) == []
    later = T0 + timedelta(minutes=SETTINGS.broadcast_confirm_minutes)
    assert await delivery.due_reminders(demo, later) == [ident]
    listed = await delivery.send_unconfirmed(demo, ident, later, SETTINGS)
    assert listed == total - 1
    assert await delivery.send_unconfirmed(demo, ident, later, SETTINGS) == 0  # once
    assert await delivery.refresh_progress(demo, ident, later, SETTINGS) is None  # listed: still
    audits = (
        await demo.exec(
            select(func.count()).where(
                AuditLog.action == "read_sensitive", AuditLog.object_type == "broadcast"
            )
        )
    ).one()
    assert audits == 1


async def test_an_empty_audience_cannot_be_sent(demo: AsyncSession) -> None:
    draft = await draft_of(demo, "head")
    head = await person(demo, "head")
    held = await roles(demo, head)
    assert draft.id is not None
    await demo.exec(
        update(Person)
        .where(col(Person.id).in_(broadcasts.audience_people(broadcasts.AUDIENCES[0], "/")))
        .values(active=False)
    )
    with pytest.raises(InvalidInput):
        await broadcasts.check_start(demo, head, held, draft.id, T0)
    assert Role.RESIDENT in broadcasts.AUDIENCES[0].roles


async def chronic_bot_user(demo: AsyncSession) -> tuple[PersonTag, Grid]:
    """The demo resident, in the register of the first household by her phone, tagged 慢性病
    (``chronic``); returns the tag and the household's grid."""
    resident = await person(demo, "resident")
    home = (await demo.exec(select(Household).order_by(col(Household.id)))).first()
    assert home is not None and home.id is not None
    member = HouseholdMember(
        household_id=home.id,
        name="王秀英",
        relation=Relation.SPOUSE,
        phone=resident.phone,
        status=ResidenceStatus.REGISTERED,
        created_at=T0,
        updated_at=T0,
    )
    demo.add(member)
    await demo.flush()
    assert member.id is not None
    tag = PersonTag(member_id=member.id, tag="chronic", tagged_at=T0)
    demo.add(tag)
    await demo.flush()
    grid = await demo.get(Grid, home.grid_id)
    assert grid is not None
    return tag, grid


async def test_a_tags_people_are_an_audience_for_those_who_may_read_tags(
    demo: AsyncSession,
) -> None:
    """慢性病 residents told of a free check-up: an admin (who may read tags in the grid)
    gets one audience per tag, reaching the tagged residents who use the bot; the centre
    (tags masked) gets none, and a forged or unknown tag key is refused."""
    _, grid = await chronic_bot_user(demo)

    admin = await person(demo, "admin")
    held = await roles(demo, admin)
    offered = {a.key for a in await broadcasts.audiences_for(demo, held, grid)}
    assert "tag_chronic" in offered and "residents" in offered
    assert offered <= {a.key for a in broadcasts.AUDIENCES} | {
        f"tag_{tag}" for tag in await tags.tags_in_use(demo, grid.path)
    }  # only the tags someone in the grid carries
    audience = await broadcasts.audience_of(demo, "tag_chronic")
    assert audience.label == "慢性病"
    assert (await broadcasts.reach(demo, audience, grid.path)).total == 1
    draft = await draft_of(demo, "admin")
    assert draft.id is not None
    draft, _ = await broadcasts.set_audience(demo, admin, held, draft.id, "tag_chronic", T0)
    assert draft.audience == "tag_chronic"
    for forged in ("tag_nope", "tag_", "tag_chronic%", ""):
        with pytest.raises(InvalidInput):
            await broadcasts.set_audience(demo, admin, held, draft.id, forged, T0)

    centre = await person(demo, "center")
    centre_roles = await roles(demo, centre)
    assert all(
        not a.key.startswith(broadcasts.TAG_AUDIENCE)
        for a in await broadcasts.audiences_for(demo, centre_roles, grid)
    )
    centre_draft = await draft_of(demo, "center")
    assert centre_draft.id is not None
    with pytest.raises(InvalidInput):
        await broadcasts.set_audience(
            demo, centre, centre_roles, centre_draft.id, "tag_chronic", T0
        )


async def test_a_tag_broadcast_goes_on_when_its_tag_leaves_the_policy(
    demo: AsyncSession,
) -> None:
    """A broadcast to 慢性病 residents is confirmed; before its recipients are written, the
    last one is untagged and a tags file without 慢性病 is saved. Delivery neither stops on
    an unknown audience nor shows its key in English: its rounds end, and the progress
    message names the audience in the sender's language."""
    tag, grid = await chronic_bot_user(demo)
    admin = await person(demo, "admin")
    held = await roles(demo, admin)
    draft = await draft_of(demo, "admin")
    assert draft.id is not None
    await broadcasts.set_audience(demo, admin, held, draft.id, "tag_chronic", T0)
    broadcast, _, total = await broadcasts.start(demo, admin, held, draft.id, T0)
    assert total == 1

    tag.ended_at = T0
    demo.add(tag)
    without = tags.policy_to_json(
        tags.TagPolicy(tuple(t for t in tags.DEFAULT_POLICY.tags if t.key != "chronic"))
    )
    await tags.set_policy(demo, actor=admin, roles=held, raw=json.dumps(without), now=T0)
    await demo.flush()
    with pytest.raises(InvalidInput):  # no new draft may choose it
        await broadcasts.audience_of(demo, "tag_chronic")

    assert broadcast.id is not None
    assert await delivery.queue_round(demo, broadcast.id, T0, SETTINGS, receipt_markup) == 0
    figures = await delivery.refresh_progress(demo, broadcast.id, T0, SETTINGS)
    assert figures is not None and figures.finished
    assert broadcast.status == broadcasts.DONE
    assert "“chronic”标签人员" in (broadcast.progress_text or "")
    assert "tag_chronic" not in (broadcast.progress_text or "")


async def test_two_processes_writing_the_same_rounds_write_each_recipient_once(
    engine: AsyncEngine, clock: FrozenClock
) -> None:
    """Two writers race over one broadcast's rounds (PostgreSQL: both read the same cursor,
    the second's recipient rows wait on the first's and then clash with them): one round is
    rolled back whole, so nobody gets two outbox rows."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time")
    sessions = create_session_factory(engine)
    async with sessions() as session:
        await load_demo_data(session, clock.now())
        draft = await draft_of(session, "head")
        head = await person(session, "head")
        assert draft.id is not None
        ident = draft.id
        _, _, total = await broadcasts.start(session, head, await roles(session, head), ident, T0)
        await session.commit()
    written = await asyncio.gather(
        delivery.queue_all(sessions, clock, SETTINGS, ident, receipt_markup),
        delivery.queue_all(sessions, clock, SETTINGS, ident, receipt_markup),
    )
    assert sum(written) <= total
    await delivery.queue_all(sessions, clock, SETTINGS, ident, receipt_markup)  # the rest
    async with sessions() as session:
        recipients = (
            await session.exec(
                select(BroadcastRecipient).where(BroadcastRecipient.broadcast_id == ident)
            )
        ).all()
        queued = (await session.exec(select(func.count()).select_from(OutboxMessage))).one()
    assert len(recipients) == total
    assert queued == len([r for r in recipients if r.outbox_id is not None])
