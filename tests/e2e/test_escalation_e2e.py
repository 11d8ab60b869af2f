"""Deadlines end to end, with a policy of seconds and the shared clock advanced."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest
from sqlmodel import col, select

from bot.routing.policy import load_default_policy, policy_to_json
from bot.services.ticket_numbers import shown_number
from models import PolicyVersion, TicketEvent
from tests.e2e.harness import Harness, file_ticket_for

pytestmark = pytest.mark.e2e


def seconds_policy() -> dict[str, object]:
    """The shipped policy with every general-ticket window shrunk to five minutes, round the
    clock (the sweep runs on every minute, so windows shorter than that would skip warnings)."""
    body = copy.deepcopy(policy_to_json(load_default_policy()))
    general = body["kinds"]["general"]
    general["round_the_clock"] = True
    general["cap"] = None
    general["tiers"] = {
        str(tier): {"accept": "300 seconds", "resolve": "3000 seconds"} for tier in (3, 2, 1, 0)
    }
    return body


async def test_a_ticket_nobody_accepts_climbs_to_the_centre(h: Harness) -> None:
    async with h.session() as session:
        session.add(PolicyVersion(body=seconds_policy(), created_at=h.clock.now()))
        await session.commit()
    resident = await h.persona("resident")
    worker, head = await h.persona("worker"), await h.persona("head")
    community_head, center = await h.persona("community_head"), await h.persona("center")
    ticket = await file_ticket_for(h, "resident", "垃圾桶满了三天没人清运，味道很大")
    assert shown_number(ticket) in (await worker.next_message()).text

    await h.advance(timedelta(minutes=4))  # 80% of the window: the worker is warned once
    warning = await worker.next_message()
    assert "即将到期" in warning.text
    await h.advance(timedelta(seconds=30))
    await worker.no_message()

    await h.advance(timedelta(seconds=30))
    for owner in (head, community_head, center):
        if owner is not head:
            await h.advance(timedelta(minutes=5))
        card = await owner.next_message()
        assert shown_number(ticket) in card.text and "✅ 签收" in card.buttons
        came_up = await owner.next_message()
        assert "上报给您" in came_up.text and "超时未签收" in came_up.text

    await h.advance(timedelta(minutes=5))  # overdue at the top: flagged, never looped
    flagged = [m.text for m in (await center.transcript()).bot_messages if "超期" in m.text]
    assert len(flagged) == 1
    await h.advance(timedelta(minutes=30))
    flagged = [m.text for m in (await center.transcript()).bot_messages if "超期" in m.text]
    assert len(flagged) == 1

    told = [m.text for m in (await resident.transcript()).bot_messages if "已上报至" in m.text]
    assert len(told) == 3  # once per tier climbed
    async with h.session() as session:
        actions = (
            await session.exec(
                select(TicketEvent.action)
                .where(TicketEvent.ticket_id == ticket.id)
                .order_by(col(TicketEvent.id))
            )
        ).all()
    assert actions.count("escalated") == 3 and actions.count("overdue") == 1


async def test_an_outage_escalates_once_per_tier_it_missed(h: Harness) -> None:
    async with h.session() as session:
        session.add(PolicyVersion(body=seconds_policy(), created_at=h.clock.now()))
        await session.commit()
    ticket = await file_ticket_for(h, "resident", "电梯困人报警按钮没有反应")
    await h.stop_bot()
    h.clock.advance(timedelta(minutes=16))  # the bot is down past three deadlines
    await h.start_bot()
    await h.advance(timedelta(seconds=1))
    async with h.session() as session:
        events = (
            await session.exec(
                select(TicketEvent)
                .where(TicketEvent.ticket_id == ticket.id, TicketEvent.action == "escalated")
                .order_by(col(TicketEvent.id))
            )
        ).all()
    assert [e.data["to_tier"] for e in events] == [2, 1, 0]
    passed = [e.data["deadline_passed"] for e in events]
    assert passed == sorted(passed) and len(set(passed)) == 3  # each at its own true time
