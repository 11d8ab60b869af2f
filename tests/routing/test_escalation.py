"""The escalation state machine, step by step, at fixed instants."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.clock import FrozenClock
from bot.errors import InvalidInput, NotAllowed
from bot.routing.escalation import (
    AtTheTop,
    ClockMarks,
    ClockStopped,
    Escalate,
    FlagOverdueAtTop,
    Step,
    TicketClock,
    Warn,
    accept,
    advance,
    apply,
    escalate_by_hand,
    next_deadline,
    pause,
    reopen,
    resume,
    start_clock,
    warn_at,
)
from bot.routing.policy import ChainLink, Policy, load_default_policy
from bot.routing.working_time import WorkCalendar
from models.enums import HandlingKind, Role, TicketState
from tests.routing.support import local, policy_with

POLICY = load_default_policy()
CAL = WorkCalendar.for_policy(POLICY)
WORKER_3 = ChainLink(3, Role.WORKER)
HEAD_2 = ChainLink(2, Role.HEAD)
HEAD_1 = ChainLink(1, Role.HEAD)
CENTRE = ChainLink(0, Role.CENTER)
THURSDAY_9 = local(2026, 3, 12, 9)  # the conftest clock's start


def dispatch(
    kind: HandlingKind = HandlingKind.GENERAL,
    owner: ChainLink = WORKER_3,
    at: datetime = THURSDAY_9,
    policy: Policy = POLICY,
) -> TicketClock:
    return start_clock(owner, kind, policy, CAL, at)


def run(
    clock: TicketClock, now: datetime, policy: Policy = POLICY
) -> tuple[list[Step], TicketClock]:
    steps = advance(clock, policy, CAL, now)
    for step in steps:
        clock = apply(clock, step)
    assert advance(clock, policy, CAL, now) == []  # idempotent once applied
    return steps, clock


# --- dispatch and the first deadlines -------------------------------------------------------


def test_the_clock_starts_at_dispatch(clock: FrozenClock) -> None:
    ticket = dispatch(at=clock.now())
    assert ticket.state is TicketState.DISPATCHED
    assert ticket.dispatched_at == ticket.window_start == clock.now()
    assert ticket.accept_deadline == local(2026, 3, 12, 17, 30)  # the same working day
    assert ticket.resolve_deadline == local(2026, 3, 17, 17, 30)  # 3 working days
    assert ticket.cap_deadline == local(2026, 4, 2, 17, 30)  # 15 working days
    assert next_deadline(ticket) == ticket.accept_deadline
    # 80 % of the 6.5 working hours from 09:00 to 17:30
    assert warn_at(ticket, POLICY, CAL) == local(2026, 3, 12, 16, 12)


def test_reported_at_17_29_or_17_31() -> None:
    assert dispatch(at=local(2026, 3, 12, 17, 29)).accept_deadline == local(2026, 3, 12, 17, 30)
    assert dispatch(at=local(2026, 3, 12, 17, 31)).accept_deadline == local(2026, 3, 13, 17, 30)


def test_nothing_is_due_before_the_warning(clock: FrozenClock) -> None:
    ticket = dispatch(at=clock.now())
    clock.set(local(2026, 3, 12, 16, 11))
    assert advance(ticket, POLICY, CAL, clock.now()) == []


def test_the_warning_comes_once(clock: FrozenClock) -> None:
    ticket = dispatch(at=clock.now())
    clock.set(local(2026, 3, 12, 16, 12))
    steps, ticket = run(ticket, clock.now())
    assert steps == [Warn(deadline=local(2026, 3, 12, 17, 30), which="accept")]
    assert ticket.warned
    assert warn_at(ticket, POLICY, CAL) is None
    assert next_deadline(ticket) == local(2026, 3, 12, 17, 30)
    clock.set(local(2026, 3, 12, 17, 0))
    assert advance(ticket, POLICY, CAL, clock.now()) == []


def test_accepting_moves_the_warning_to_the_resolve_deadline() -> None:
    ticket = apply(dispatch(), Warn(local(2026, 3, 12, 17, 30), "accept"))
    ticket = accept(ticket, local(2026, 3, 12, 10))
    assert ticket.state is TicketState.ACCEPTED
    assert not ticket.warned
    assert next_deadline(ticket) == local(2026, 3, 17, 17, 30)
    warning = warn_at(ticket, POLICY, CAL)
    assert warning is not None and THURSDAY_9 < warning < local(2026, 3, 17, 17, 30)
    assert accept(ticket, local(2026, 3, 12, 11)) == ticket  # a second tap changes nothing


# --- escalation ---------------------------------------------------------------------------


def test_not_accepted_in_time_goes_one_tier_up() -> None:
    steps, ticket = run(dispatch(), local(2026, 3, 12, 17, 30))
    assert steps == [
        Escalate(
            from_tier=3,
            to_tier=2,
            to_role=Role.HEAD,
            reason="accept_overdue",
            at=local(2026, 3, 12, 17, 30),
            new_accept_deadline=local(2026, 3, 13, 10, 30),  # 2 working hours, next morning
            new_resolve_deadline=local(2026, 3, 18, 17, 30),
            from_role=Role.WORKER,
        )
    ]
    assert ticket.owner == HEAD_2
    assert ticket.state is TicketState.DISPATCHED
    assert ticket.escalations == 1
    assert ticket.window_start == local(2026, 3, 12, 17, 30)


def test_not_resolved_in_time_goes_one_tier_up() -> None:
    ticket = accept(dispatch(), local(2026, 3, 12, 10))
    steps, ticket = run(ticket, local(2026, 3, 17, 17, 30))
    assert [(s.reason, s.at) for s in steps if isinstance(s, Escalate)] == [
        ("resolve_overdue", local(2026, 3, 17, 17, 30))
    ]
    assert ticket.owner == HEAD_2
    assert ticket.accepted_at is None  # the head must accept it now
    assert ticket.resolve_deadline == local(2026, 3, 23, 17, 30)  # counted from Wednesday


def test_after_an_outage_each_tier_is_passed_in_turn_from_the_deadline_before() -> None:
    steps, ticket = run(dispatch(), local(2026, 4, 30, 9))
    assert [type(step) for step in steps] == [Escalate, Escalate, Escalate, FlagOverdueAtTop]
    escalations = [step for step in steps if isinstance(step, Escalate)]
    assert [(s.from_tier, s.to_tier) for s in escalations] == [(3, 2), (2, 1), (1, 0)]
    assert escalations[0].at == local(2026, 3, 12, 17, 30)
    for before, after in zip(escalations, escalations[1:], strict=False):
        assert after.at == before.new_accept_deadline
    flag = steps[-1]
    assert isinstance(flag, FlagOverdueAtTop)
    assert flag.at == escalations[-1].new_accept_deadline
    assert flag.which == "accept"
    assert ticket.owner == CENTRE and ticket.top_flagged
    assert next_deadline(ticket) is None
    assert warn_at(ticket, POLICY, CAL) is None


def test_the_top_is_flagged_once_and_never_loops() -> None:
    steps, ticket = run(dispatch(HandlingKind.MAJOR, CENTRE), local(2026, 3, 12, 10, 0))
    assert steps == [FlagOverdueAtTop(at=local(2026, 3, 12, 10), which="accept")]
    ticket = accept(ticket, local(2026, 3, 12, 11))
    for later in (local(2026, 3, 13), local(2026, 6, 1)):
        assert advance(ticket, POLICY, CAL, later) == []


def test_the_cap_sends_a_ticket_straight_to_the_top() -> None:
    def slow_tiers(body: dict[str, Any]) -> None:
        general = body["kinds"]["general"]
        general["cap"] = "12 working_days"
        for tier in general["tiers"].values():
            tier["resolve"] = "10 working_days"

    policy = policy_with(slow_tiers)
    ticket = accept(dispatch(policy=policy), local(2026, 3, 12, 9, 30))
    cap = ticket.cap_deadline
    assert cap == local(2026, 3, 30, 17, 30)
    steps, ticket = run(ticket, local(2026, 3, 26, 17, 30), policy)
    assert [(s.reason, s.to_tier) for s in steps if isinstance(s, Escalate)] == [
        ("resolve_overdue", 2)
    ]
    assert ticket.resolve_deadline == cap  # the tier's 10 days are cut by the cap
    ticket = accept(ticket, local(2026, 3, 27, 9))
    steps, ticket = run(ticket, local(2026, 4, 20), policy)
    assert steps[0] == Escalate(
        from_tier=2,
        to_tier=0,
        to_role=Role.CENTER,
        reason="cap_overdue",
        at=cap,
        new_accept_deadline=local(2026, 3, 31, 10, 30),
        new_resolve_deadline=local(2026, 4, 15, 17, 30),  # 10 working days, Qingming skipped
        from_role=Role.HEAD,
    )
    assert steps[1:] == [FlagOverdueAtTop(at=cap, which="cap")]


def test_urgent_clocks_run_round_the_clock() -> None:
    saturday_night = local(2026, 3, 14, 3)
    ticket = dispatch(HandlingKind.URGENT, at=saturday_night)
    assert ticket.accept_deadline == local(2026, 3, 14, 3, 10)
    assert ticket.resolve_deadline == local(2026, 3, 14, 5)
    assert ticket.cap_deadline is None
    assert warn_at(ticket, POLICY, CAL) == local(2026, 3, 14, 3, 8)
    steps, ticket = run(ticket, local(2026, 3, 14, 3, 25))
    assert [(s.to_tier, s.at) for s in steps if isinstance(s, Escalate)] == [
        (2, local(2026, 3, 14, 3, 10)),
        (1, local(2026, 3, 14, 3, 20)),
    ]
    assert ticket.accept_deadline == local(2026, 3, 14, 3, 30)


def test_a_department_that_misses_its_deadline_is_flagged_not_escalated() -> None:
    ticket = replace(
        accept(dispatch(), local(2026, 3, 12, 10)),
        state=TicketState.TRANSFERRED,
        tier=0,
        role=Role.DEPARTMENT,
    )
    steps, ticket = run(ticket, local(2026, 3, 18))
    assert steps == [FlagOverdueAtTop(at=local(2026, 3, 17, 17, 30), which="resolve")]


# --- stopped clocks -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "state",
    [
        TicketState.SUBMITTED,
        TicketState.WAITING_REPORTER,
        TicketState.RESOLVED,
        TicketState.CLOSED,
        TicketState.REJECTED,
        TicketState.DUPLICATE,
    ],
)
def test_stopped_tickets_produce_no_steps(state: TicketState) -> None:
    ticket = replace(dispatch(), state=state)
    assert advance(ticket, POLICY, CAL, local(2027, 1, 1)) == []
    assert next_deadline(ticket) is None
    assert warn_at(ticket, POLICY, CAL) is None
    with pytest.raises(ClockStopped):
        escalate_by_hand(ticket, POLICY, CAL, local(2026, 3, 12, 10), "cannot solve")


def test_a_ticket_never_dispatched_has_no_clock() -> None:
    ticket = TicketClock(
        state=TicketState.SUBMITTED,
        kind=HandlingKind.GENERAL,
        tier=3,
        role=Role.WORKER,
        dispatched_at=None,
        window_start=None,
        accept_deadline=None,
        resolve_deadline=None,
    )
    assert advance(ticket, POLICY, CAL, local(2026, 3, 12)) == []
    assert next_deadline(ticket) is None


# --- waiting for the reporter ---------------------------------------------------------------


def test_pause_and_resume_shift_deadlines_by_the_working_time_paused() -> None:
    ticket = accept(dispatch(), local(2026, 3, 12, 9, 30))
    paused = pause(ticket, local(2026, 3, 12, 10))
    assert paused.state is TicketState.WAITING_REPORTER
    assert pause(paused, local(2026, 3, 12, 11)) == paused
    assert advance(paused, POLICY, CAL, local(2026, 3, 30)) == []
    assert next_deadline(paused) is None
    resumed = resume(paused, POLICY, CAL, local(2026, 3, 16, 10))  # Monday
    assert resumed.state is TicketState.IN_PROGRESS
    assert resumed.paused_at is None
    # 14 working hours paused: Tuesday 17:30 becomes Thursday 17:30
    assert resumed.resolve_deadline == local(2026, 3, 19, 17, 30)
    assert ticket.resolve_deadline and resumed.resolve_deadline and ticket.cap_deadline
    before = CAL.working_time_between(local(2026, 3, 12, 10), ticket.resolve_deadline)
    after = CAL.working_time_between(local(2026, 3, 16, 10), resumed.resolve_deadline)
    assert before == after
    assert resumed.cap_deadline == CAL.add_working(ticket.cap_deadline, timedelta(hours=14))
    assert resume(resumed, POLICY, CAL, local(2026, 3, 17)) == resumed


def test_a_deadline_passed_before_the_pause_stays_passed() -> None:
    ticket = pause(dispatch(), local(2026, 3, 12, 17, 45))  # the sweep had not run yet
    resumed = resume(ticket, POLICY, CAL, local(2026, 3, 13, 9))
    assert resumed.state is TicketState.DISPATCHED
    assert resumed.accept_deadline == local(2026, 3, 12, 17, 30)
    steps = advance(resumed, POLICY, CAL, local(2026, 3, 13, 9))
    assert isinstance(steps[0], Escalate) and steps[0].at == local(2026, 3, 12, 17, 30)


def test_round_the_clock_pauses_count_wall_time() -> None:
    ticket = dispatch(HandlingKind.URGENT, at=local(2026, 3, 14, 3))
    paused = pause(ticket, local(2026, 3, 14, 3, 5))
    resumed = resume(paused, POLICY, CAL, local(2026, 3, 14, 4, 5))
    assert resumed.accept_deadline == local(2026, 3, 14, 4, 10)
    assert resumed.resolve_deadline == local(2026, 3, 14, 6)


def test_only_a_running_clock_can_pause_or_be_accepted() -> None:
    closed = replace(dispatch(), state=TicketState.CLOSED)
    with pytest.raises(ClockStopped):
        pause(closed, local(2026, 3, 12, 10))
    with pytest.raises(ClockStopped):
        accept(closed, local(2026, 3, 12, 10))


# --- reopening ------------------------------------------------------------------------------


def test_reopen_gives_fresh_deadlines() -> None:
    _, flagged = run(dispatch(), local(2026, 4, 30))
    resolved = replace(flagged, state=TicketState.RESOLVED)
    now = local(2026, 5, 6, 15)  # after the May Day holiday
    again = reopen(resolved, POLICY, CAL, now)
    assert again.state is TicketState.REOPENED
    assert again.owner == CENTRE
    assert not again.top_flagged and not again.warned and again.accepted_at is None
    assert again.window_start == now
    assert again.accept_deadline == local(2026, 5, 6, 17)
    assert again.cap_deadline is not None and again.cap_deadline > now
    assert next_deadline(again) == again.accept_deadline
    steps, _ = run(again, local(2026, 5, 6, 17))
    assert steps == [FlagOverdueAtTop(at=local(2026, 5, 6, 17), which="accept")]


def test_only_a_finished_ticket_can_be_reopened() -> None:
    with pytest.raises(NotAllowed):
        reopen(dispatch(), POLICY, CAL, local(2026, 3, 12, 10))


# --- by hand --------------------------------------------------------------------------------


def test_escalating_by_hand_counts_from_now() -> None:
    now = local(2026, 3, 12, 11)
    step = escalate_by_hand(dispatch(), POLICY, CAL, now, "  Needs the\n community's  seal \x07")
    assert step.reason == "by_hand"
    assert step.note == "Needs the community's seal"
    assert (step.from_tier, step.to_tier, step.to_role, step.at) == (3, 2, Role.HEAD, now)
    assert step.new_accept_deadline == local(2026, 3, 12, 15)
    ticket = apply(dispatch(), step)
    assert ticket.owner == HEAD_2 and ticket.escalations == 1


def test_the_top_cannot_escalate_by_hand() -> None:
    with pytest.raises(AtTheTop):
        escalate_by_hand(dispatch(owner=CENTRE), POLICY, CAL, THURSDAY_9, "too big")


def test_a_department_cannot_escalate_by_hand() -> None:
    ticket = replace(dispatch(), state=TicketState.TRANSFERRED, role=Role.DEPARTMENT)
    with pytest.raises(NotAllowed):
        escalate_by_hand(ticket, POLICY, CAL, THURSDAY_9, "not ours")


@pytest.mark.parametrize("reason", ["", "   ", "\u3000\n", "\x00\x01", "x" * 501])
def test_escalating_by_hand_needs_a_short_reason(reason: str) -> None:
    with pytest.raises(InvalidInput):
        escalate_by_hand(dispatch(), POLICY, CAL, THURSDAY_9, reason)


@given(st.text(max_size=600) | st.sampled_from(["🙂" * 10_000, "１２３", " " * 10_000]))
def test_any_reason_is_kept_or_clearly_refused(reason: str) -> None:
    try:
        step = escalate_by_hand(dispatch(), POLICY, CAL, THURSDAY_9, reason)
    except InvalidInput as error:
        error.message.format(**error.params)
    else:
        assert step.note and 0 < len(step.note) <= 500
        assert step.note == step.note.strip()


# --- what the glue stores -------------------------------------------------------------------


def test_clock_marks_round_trip_through_json() -> None:
    ticket = apply(dispatch(), Warn(local(2026, 3, 12, 17, 30), "accept"))
    marks = ticket.marks
    assert ClockMarks.from_json(marks.to_json()) == marks
    assert ClockMarks.from_json({}) == ClockMarks(None, None, False, False)
    assert ClockMarks.from_json(None) == ClockMarks(None, None, False, False)
    with pytest.raises(ValueError):
        ClockMarks.from_json({"window_start": 5})


def test_a_clock_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="aware"):
        replace(dispatch(), accept_deadline=datetime(2026, 3, 12, 17, 30))
    with pytest.raises(ValueError, match="aware"):
        advance(dispatch(), POLICY, CAL, datetime(2026, 3, 12, 17, 30))
    assert dispatch(at=THURSDAY_9.astimezone(UTC)).dispatched_at == THURSDAY_9


def test_a_clock_without_marks_still_escalates() -> None:
    ticket = replace(dispatch(), window_start=None, cap_deadline=None)
    assert warn_at(ticket, POLICY, CAL) == local(2026, 3, 12, 16, 12)  # counted from dispatch
    steps = advance(ticket, POLICY, CAL, local(2026, 3, 12, 17, 30))
    assert [type(step) for step in steps] == [Escalate]
