"""The street centre choosing a ticket's owner (下派 / 上收): the pure step and its clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import InvalidInput, NotAllowed
from bot.routing.escalation import (
    AlreadyThere,
    ClockStopped,
    TicketClock,
    accept,
    advance,
    apply,
    apply_dispatch,
    dispatch_to,
    next_deadline,
    pause,
    start_clock,
)
from bot.routing.policy import ChainLink, load_default_policy
from bot.routing.working_time import WorkCalendar
from models.enums import HandlingKind, Role, TicketState
from tests.routing.support import local
from tests.routing.test_escalation_properties import POLICIES

POLICY = load_default_policy()
CAL = WorkCalendar.for_policy(POLICY)
WORKER_3 = ChainLink(3, Role.WORKER)
HEAD_2 = ChainLink(2, Role.HEAD)
HEAD_1 = ChainLink(1, Role.HEAD)
CENTRE = ChainLink(0, Role.CENTER)
THURSDAY_9 = local(2026, 3, 12, 9)


def major_at_the_centre(at: datetime = THURSDAY_9) -> TicketClock:
    return start_clock(CENTRE, HandlingKind.MAJOR, POLICY, CAL, at)


def test_the_centre_sends_a_major_ticket_down_to_the_workers() -> None:
    clock = accept(major_at_the_centre(), local(2026, 3, 12, 9, 20))
    now = local(2026, 3, 12, 10)
    step = dispatch_to(clock, POLICY, CAL, now, WORKER_3, "  属地处置，  网格员先到现场 ")
    assert (step.from_tier, step.from_role, step.to, step.direction) == (
        0,
        Role.CENTER,
        WORKER_3,
        "down",
    )
    assert step.note == "属地处置， 网格员先到现场"
    assert step.new_accept_deadline == local(2026, 3, 12, 11)  # 1 working hour at tier 3
    assert step.new_resolve_deadline == local(2026, 3, 17, 17, 30)  # 3 working days
    moved = apply_dispatch(clock, step)
    assert moved.owner == WORKER_3 and moved.state is TicketState.DISPATCHED
    assert moved.dispatched_at == moved.window_start == now
    assert moved.accepted_at is None and not moved.warned
    assert moved.cap_deadline == clock.cap_deadline  # the overall cap does not move
    assert moved.escalations == clock.escalations  # not an escalation
    assert next_deadline(moved) == step.new_accept_deadline
    assert advance(moved, POLICY, CAL, now) == []


def test_without_a_reason_there_is_no_note() -> None:
    step = dispatch_to(major_at_the_centre(), POLICY, CAL, THURSDAY_9, HEAD_1)
    assert step.note is None and step.to == HEAD_1


def test_taking_a_ticket_up_skips_tiers() -> None:
    clock = start_clock(WORKER_3, HandlingKind.GENERAL, POLICY, CAL, THURSDAY_9)
    step = dispatch_to(clock, POLICY, CAL, local(2026, 3, 12, 11), CENTRE, "影响面大，中心直接办")
    assert step.direction == "up" and step.to == CENTRE
    assert step.new_accept_deadline == local(2026, 3, 12, 15)  # 2 working hours, lunch skipped


def test_the_cap_bounds_the_new_windows() -> None:
    clock = major_at_the_centre()
    assert clock.cap_deadline is not None
    now = clock.cap_deadline - timedelta(hours=1)  # an hour before the 15-working-day cap
    step = dispatch_to(clock, POLICY, CAL, now, HEAD_2)
    assert step.new_resolve_deadline == clock.cap_deadline
    assert step.new_accept_deadline <= step.new_resolve_deadline


def test_past_the_cap_it_can_only_be_taken_up() -> None:
    clock = start_clock(HEAD_2, HandlingKind.GENERAL, POLICY, CAL, THURSDAY_9)
    assert clock.cap_deadline is not None
    late = clock.cap_deadline + timedelta(minutes=1)
    with pytest.raises(NotAllowed):
        dispatch_to(clock, POLICY, CAL, late, WORKER_3)
    step = dispatch_to(clock, POLICY, CAL, late, CENTRE)
    up = apply_dispatch(clock, step)
    # still overdue against the cap: flagged at the top once, not bounced anywhere
    (flag,) = advance(up, POLICY, CAL, late)
    assert flag == replace(flag, at=clock.cap_deadline, which="cap")
    assert advance(apply(up, flag), POLICY, CAL, late + timedelta(days=30)) == []


def test_a_ticket_with_a_department_comes_back_to_a_tier() -> None:
    clock = replace(
        start_clock(HEAD_1, HandlingKind.GENERAL, POLICY, CAL, THURSDAY_9),
        state=TicketState.TRANSFERRED,
        role=Role.DEPARTMENT,
        top_flagged=True,  # it was overdue at the department
    )
    step = dispatch_to(clock, POLICY, CAL, local(2026, 3, 13, 9), HEAD_1, "部门退回，社区牵头")
    assert step.from_role is Role.DEPARTMENT and step.direction == "down"
    back = apply_dispatch(clock, step)
    assert back.owner == HEAD_1 and not back.top_flagged and back.running
    to_top = dispatch_to(clock, POLICY, CAL, local(2026, 3, 13, 9), CENTRE)
    assert to_top.direction == "up"


def test_it_refuses_where_it_already_is_and_what_is_not_in_the_chain() -> None:
    clock = major_at_the_centre()
    with pytest.raises(AlreadyThere):
        dispatch_to(clock, POLICY, CAL, THURSDAY_9, CENTRE)
    for link in (ChainLink(3, Role.HEAD), ChainLink(5, Role.WORKER), ChainLink(0, Role.ADMIN)):
        with pytest.raises(NotAllowed):
            dispatch_to(clock, POLICY, CAL, THURSDAY_9, link)
    with pytest.raises(NotAllowed):
        dispatch_to(clock, POLICY, CAL, THURSDAY_9, ChainLink(0, Role.DEPARTMENT))


def test_a_stopped_clock_cannot_be_dispatched() -> None:
    waiting = pause(accept(major_at_the_centre(), THURSDAY_9), local(2026, 3, 12, 10))
    with pytest.raises(ClockStopped):
        dispatch_to(waiting, POLICY, CAL, local(2026, 3, 12, 11), WORKER_3)
    closed = replace(major_at_the_centre(), state=TicketState.CLOSED)
    with pytest.raises(ClockStopped):
        dispatch_to(closed, POLICY, CAL, THURSDAY_9, WORKER_3)


@pytest.mark.parametrize("reason", ["", "   ", "\u3000\n", "\x00\x01", "x" * 501])
def test_a_given_reason_must_be_short_words(reason: str) -> None:
    with pytest.raises(InvalidInput):
        dispatch_to(major_at_the_centre(), POLICY, CAL, THURSDAY_9, WORKER_3, reason)


# --- properties ----------------------------------------------------------------------------

starts = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2026, 10, 31), timezones=st.just(UTC)
)
any_link = st.builds(ChainLink, st.integers(min_value=0, max_value=6), st.sampled_from(Role))


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(sorted(POLICIES)),
    st.sampled_from(HandlingKind),
    st.sampled_from(POLICY.chain),
    any_link,
    starts,
    st.integers(min_value=0, max_value=40 * 24 * 60),
    st.booleans(),
    st.booleans(),
)
def test_any_dispatch_gives_one_new_owner_on_a_running_clock(
    policy_name: str,
    kind: HandlingKind,
    owner: ChainLink,
    target: ChainLink,
    start: datetime,
    minutes_later: int,
    accepted: bool,
    with_department: bool,
) -> None:
    policy = POLICIES[policy_name]
    clock = start_clock(owner, kind, policy, CAL, start)
    if accepted:
        clock = accept(clock, start)
    if with_department:
        clock = replace(clock, state=TicketState.TRANSFERRED, role=Role.DEPARTMENT)
    now = start + timedelta(minutes=minutes_later)
    cap = clock.cap_deadline
    past_cap = cap is not None and cap <= now
    try:
        step = dispatch_to(clock, policy, CAL, now, target, "现场核实后处理")
    except AlreadyThere:
        assert target == clock.owner
        return
    except NotAllowed:
        assert target not in policy.chain or (past_cap and target != policy.top)
        return
    assert target in policy.chain and target != clock.owner
    assert step.to == target and (step.from_tier, step.from_role) == (clock.tier, clock.role)
    mine = clock.owner.rank
    higher = target == policy.top if mine is None else (target.rank or (0, 0)) > mine
    assert step.direction == ("up" if higher else "down")
    assert step.new_accept_deadline > now and step.new_resolve_deadline > now
    assert step.new_accept_deadline <= step.new_resolve_deadline
    if cap is not None and cap > now:
        assert step.new_resolve_deadline <= cap
    moved = apply_dispatch(clock, step)
    assert moved.owner == target and moved.running
    assert moved.state is TicketState.DISPATCHED and moved.accepted_at is None
    assert moved.dispatched_at == now and moved.cap_deadline == cap
    assert moved.escalations == clock.escalations
    if not past_cap:
        assert advance(moved, policy, CAL, now) == []  # nothing is due at the moment of it
        due = next_deadline(moved)
        assert due is not None and due > now
