"""定性: a ticket's handling kind is set, and it is routed again by the policy's rules."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import InvalidInput, NotAllowed
from bot.routing.escalation import (
    PAST_THE_CAP,
    ClockStopped,
    SameKind,
    TicketClock,
    accept,
    advance,
    apply_reclassify,
    next_deadline,
    pause,
    reclassify,
    start_clock,
)
from bot.routing.policy import ChainLink, load_default_policy
from bot.routing.rules import TicketFacts, route
from bot.routing.working_time import WorkCalendar
from models.enums import HandlingKind, Role, TicketCategory, TicketState
from tests.routing.support import local, policy_with
from tests.routing.test_escalation_properties import POLICIES

POLICY = load_default_policy()
CAL = WorkCalendar.for_policy(POLICY)
WORKER_3 = ChainLink(3, Role.WORKER)
HEAD_2 = ChainLink(2, Role.HEAD)
HEAD_1 = ChainLink(1, Role.HEAD)
CENTRE = ChainLink(0, Role.CENTER)
THURSDAY_9 = local(2026, 3, 12, 9)


def facts(kind: HandlingKind, tier: int = 3) -> TicketFacts:
    return TicketFacts(TicketCategory.FACILITY, kind, "3502110010030207", "/1/4/17/40/", tier)


def general_at_the_workers(at: datetime = THURSDAY_9) -> TicketClock:
    return start_clock(WORKER_3, HandlingKind.GENERAL, POLICY, CAL, at)


def test_a_worker_classifies_a_ticket_as_major_and_it_goes_to_the_centre() -> None:
    clock = accept(general_at_the_workers(), local(2026, 3, 12, 9, 30))
    now = local(2026, 3, 12, 10)
    step = reclassify(clock, facts(HandlingKind.MAJOR), POLICY, CAL, now, " 涉及多户，  影响大 ")
    assert (step.from_kind, step.to_kind, step.rule) == (
        HandlingKind.GENERAL,
        HandlingKind.MAJOR,
        "major-to-centre",
    )
    assert step.to == CENTRE and step.moves
    assert step.inform == (WORKER_3, HEAD_2, HEAD_1)  # the whole chain hears of it
    assert step.note == "涉及多户， 影响大"
    assert step.new_accept_deadline == local(2026, 3, 12, 11)  # 1 working hour at the centre
    assert step.new_cap_deadline == clock.cap_deadline  # both caps are 15 working days
    moved = apply_reclassify(clock, step)
    assert moved.kind is HandlingKind.MAJOR and moved.owner == CENTRE
    assert moved.state is TicketState.DISPATCHED and moved.accepted_at is None
    assert moved.dispatched_at == moved.window_start == now
    assert moved.escalations == clock.escalations  # not an escalation
    assert next_deadline(moved) == step.new_accept_deadline
    assert advance(moved, POLICY, CAL, now) == []


def test_coordination_and_approval_go_to_the_community_head() -> None:
    clock = general_at_the_workers()
    for kind, rule in (
        (HandlingKind.COORDINATION, "coordination-to-community"),
        (HandlingKind.APPROVAL, "approval-to-community"),
    ):
        step = reclassify(clock, facts(kind), POLICY, CAL, THURSDAY_9 + timedelta(hours=1))
        assert step.rule == rule and step.to == HEAD_1 and step.note is None
        assert step.inform == (WORKER_3, HEAD_2)  # those below are told
        # the new kind's windows at tier 1: 2 working hours to accept
        assert step.new_accept_deadline == local(2026, 3, 12, 12)  # 10:00 + 2 hours


def test_a_kind_whose_rule_keeps_the_owner_restarts_the_clock_in_place() -> None:
    accepted_at = local(2026, 3, 12, 9, 5)
    clock = accept(general_at_the_workers(), accepted_at)
    now = local(2026, 3, 12, 9, 30)
    step = reclassify(clock, facts(HandlingKind.URGENT), POLICY, CAL, now)
    assert not step.moves and step.to == WORKER_3
    assert step.inform == (HEAD_2, HEAD_1, CENTRE)  # urgent: reported up at once
    assert step.new_resolve_deadline == now + timedelta(hours=2)  # round the clock
    stays = apply_reclassify(clock, step)
    assert stays.state is TicketState.ACCEPTED and stays.accepted_at == accepted_at
    assert stays.dispatched_at == clock.dispatched_at
    assert stays.kind is HandlingKind.URGENT and stays.window_start == now
    assert next_deadline(stays) == step.new_resolve_deadline


def test_a_downgrade_brings_the_ticket_back_to_the_workers_with_a_cap_from_now() -> None:
    urgent = start_clock(WORKER_3, HandlingKind.URGENT, POLICY, CAL, THURSDAY_9)
    assert urgent.cap_deadline is None  # urgent has no overall cap
    now = local(2026, 3, 12, 9, 20)
    step = reclassify(urgent, facts(HandlingKind.GENERAL), POLICY, CAL, now, "现场核实，不紧急")
    general_cap = POLICY.kinds[HandlingKind.GENERAL].cap
    assert general_cap is not None
    assert step.new_cap_deadline == CAL.add(now, general_cap)  # a cap appears, from now
    assert step.new_resolve_deadline == local(2026, 3, 17, 17, 30)  # 3 working days


def test_a_reclassification_never_moves_the_cap_later() -> None:
    def long_approval(body: dict[str, object]) -> None:
        kinds = body["kinds"]
        assert isinstance(kinds, dict)
        kinds["approval"]["cap"] = "30 working_days"

    policy = policy_with(long_approval)
    clock = start_clock(WORKER_3, HandlingKind.GENERAL, policy, CAL, THURSDAY_9)
    later = local(2026, 3, 20, 9)
    step = reclassify(clock, facts(HandlingKind.APPROVAL), policy, CAL, later)
    assert step.new_cap_deadline is not None and step.new_cap_deadline == clock.cap_deadline
    assert step.new_resolve_deadline <= step.new_cap_deadline


def test_the_same_kind_a_stopped_clock_and_an_empty_reason_are_refused() -> None:
    clock = general_at_the_workers()
    with pytest.raises(SameKind):
        reclassify(clock, facts(HandlingKind.GENERAL), POLICY, CAL, THURSDAY_9)
    waiting = pause(accept(clock, THURSDAY_9), local(2026, 3, 12, 10))
    with pytest.raises(ClockStopped):
        reclassify(waiting, facts(HandlingKind.MAJOR), POLICY, CAL, local(2026, 3, 12, 11))
    closed = replace(clock, state=TicketState.CLOSED)
    with pytest.raises(ClockStopped):
        reclassify(closed, facts(HandlingKind.MAJOR), POLICY, CAL, THURSDAY_9)
    for reason in ("", "  \u3000", "\x00", "x" * 501):
        with pytest.raises(InvalidInput):
            reclassify(clock, facts(HandlingKind.MAJOR), POLICY, CAL, THURSDAY_9, reason)


def test_past_the_cap_only_a_kind_that_goes_to_the_top_is_allowed() -> None:
    clock = start_clock(HEAD_1, HandlingKind.GENERAL, POLICY, CAL, THURSDAY_9)
    assert clock.cap_deadline is not None
    late = clock.cap_deadline + timedelta(minutes=5)
    with pytest.raises(NotAllowed) as refused:
        reclassify(clock, facts(HandlingKind.COORDINATION), POLICY, CAL, late)
    assert refused.value.message == PAST_THE_CAP
    step = reclassify(clock, facts(HandlingKind.MAJOR), POLICY, CAL, late)
    assert step.to == CENTRE and step.new_cap_deadline == clock.cap_deadline


def test_a_ticket_at_a_department_comes_back_into_the_chain() -> None:
    clock = replace(
        start_clock(HEAD_1, HandlingKind.GENERAL, POLICY, CAL, THURSDAY_9),
        state=TicketState.TRANSFERRED,
        role=Role.DEPARTMENT,
    )
    step = reclassify(clock, facts(HandlingKind.MAJOR), POLICY, CAL, local(2026, 3, 13, 9))
    assert step.moves and step.from_role is Role.DEPARTMENT and step.to == CENTRE


def test_a_shallow_grid_takes_the_rule_at_its_own_tier() -> None:
    """A community-level ticket (tier 1): approval goes to the community head, general to the
    tier-1 workers the default rule would pick there."""
    clock = start_clock(ChainLink(1, Role.WORKER), HandlingKind.GENERAL, POLICY, CAL, THURSDAY_9)
    step = reclassify(clock, facts(HandlingKind.URGENT, tier=1), POLICY, CAL, THURSDAY_9)
    assert step.to == ChainLink(1, Role.WORKER) and not step.moves
    assert step.inform == (HEAD_1, CENTRE)  # nobody below the grid to tell


# --- properties ----------------------------------------------------------------------------

starts = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2026, 10, 31), timezones=st.just(UTC)
)


@settings(max_examples=250, deadline=None)
@given(
    st.sampled_from(sorted(POLICIES)),
    st.sampled_from(HandlingKind),
    st.sampled_from(HandlingKind),
    st.sampled_from(TicketCategory),
    st.sampled_from(POLICY.chain),
    st.integers(min_value=1, max_value=3),
    starts,
    st.integers(min_value=0, max_value=40 * 24 * 60),
    st.booleans(),
    st.booleans(),
)
def test_any_reclassification_follows_the_rules_and_keeps_the_clock_sound(
    policy_name: str,
    old_kind: HandlingKind,
    new_kind: HandlingKind,
    category: TicketCategory,
    owner: ChainLink,
    grid_tier: int,
    start: datetime,
    minutes_later: int,
    accepted: bool,
    with_department: bool,
) -> None:
    policy = POLICIES[policy_name]
    if owner.tier > grid_tier:
        owner = ChainLink(grid_tier, owner.role)
    clock = start_clock(owner, old_kind, policy, CAL, start)
    if accepted:
        clock = accept(clock, start)
    if with_department:
        clock = replace(clock, state=TicketState.TRANSFERRED, role=Role.DEPARTMENT)
    now = start + timedelta(minutes=minutes_later)
    ticket_facts = TicketFacts(category, new_kind, "35021100100302", "/1/4/17/", grid_tier)
    decision = route(ticket_facts, policy)
    old_cap = clock.cap_deadline
    try:
        step = reclassify(clock, ticket_facts, policy, CAL, now, "核实后定性")
    except SameKind:
        assert new_kind is old_kind
        return
    except NotAllowed:
        assert old_cap is not None and old_cap <= now and decision.owner != policy.top
        return
    assert new_kind is not old_kind
    # routed by the policy's rules with the new kind, exactly as a new ticket would be
    assert (step.rule, step.to, step.inform) == (decision.rule, decision.owner, decision.inform)
    assert step.moves == (step.to != clock.owner)
    assert step.to.tier <= grid_tier
    # the cap never moves later; new windows lie after the moment, inside a cap still ahead
    cap = step.new_cap_deadline
    if old_cap is not None:
        assert cap is not None and cap <= old_cap
    assert step.new_accept_deadline > now and step.new_resolve_deadline > now
    assert step.new_accept_deadline <= step.new_resolve_deadline
    if cap is not None and cap > now:
        assert step.new_resolve_deadline <= cap
    after = apply_reclassify(clock, step)
    assert after.kind is new_kind and after.owner == step.to and after.running
    assert after.escalations == clock.escalations and not after.warned
    if step.moves:
        assert after.state is TicketState.DISPATCHED and after.accepted_at is None
        assert after.dispatched_at == now
    else:
        assert (after.state, after.accepted_at) == (clock.state, clock.accepted_at)
    if cap is None or cap > now:
        assert advance(after, policy, CAL, now) == []  # nothing is due at the moment of it
        due = next_deadline(after)
        assert due is not None and due > now
