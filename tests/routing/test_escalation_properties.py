"""Properties of the escalation state machine under any sequence of events (Hypothesis)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import NotAllowed
from bot.routing.escalation import (
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
from bot.routing.rules import next_link
from bot.routing.working_time import WorkCalendar
from models.enums import HandlingKind, TicketState
from tests.routing.support import policy_with

DEFAULT = load_default_policy()


def seconds_everywhere(body: dict[str, Any]) -> None:
    """The kind of policy the glue's tests use: tiny windows, round the clock."""
    for kind in body["kinds"].values():
        kind["round_the_clock"] = True
        kind["cap"] = "50 minutes"
        for tier in kind["tiers"].values():
            tier["accept"] = "90 seconds"
            tier["resolve"] = "20 minutes"


TINY = policy_with(seconds_everywhere)
POLICIES = {"default": DEFAULT, "tiny": TINY}
CAL = WorkCalendar.for_policy(DEFAULT)
ACTIONS = ("sweep", "sweep", "sweep", "accept", "pause", "resume", "by_hand", "resolve", "reopen")

starts = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2026, 10, 31), timezones=st.just(UTC)
)
owners = st.sampled_from(DEFAULT.chain)
events = st.lists(
    st.tuples(st.sampled_from(ACTIONS), st.integers(min_value=0, max_value=3 * 24 * 60)),
    max_size=25,
)


def rank(link: ChainLink) -> tuple[int, int]:
    value = link.rank
    assert value is not None
    return value


def check_steps(
    clock: TicketClock, steps: list[Step], policy: Policy, now: datetime, *, swept: bool = True
) -> TicketClock:
    """The invariants of one sweep; returns the clock with the steps applied."""
    if not clock.running:
        assert steps == []
    last_at: datetime | None = None
    for index, step in enumerate(steps):
        if isinstance(step, Escalate):
            assert (step.from_tier, step.from_role) == (clock.tier, clock.role)  # one owner
            target = ChainLink(step.to_tier, step.to_role)
            assert target in policy.chain
            assert rank(clock.owner) < rank(target) <= rank(policy.top)  # up, never above top
            assert step.new_accept_deadline > step.at and step.new_resolve_deadline > step.at
            assert step.new_accept_deadline <= step.new_resolve_deadline
            assert step.at <= now
            assert last_at is None or step.at >= last_at  # replayed in their true order
            last_at = step.at
        elif isinstance(step, FlagOverdueAtTop):
            assert next_link(policy, clock.owner) is None
            assert not clock.top_flagged
            assert step.at <= now
            assert index == len(steps) - 1
        else:
            assert isinstance(step, Warn)
            assert step.deadline > now
            assert not clock.warned
            assert index == len(steps) - 1
        clock = apply(clock, step)
    if swept:
        assert advance(clock, policy, CAL, now) == []  # idempotent
    return clock


def check_sweep_finds_it(clock: TicketClock, policy: Policy, now: datetime) -> None:
    """A ticket the sweep would not select (next_deadline_at, warn_at) has nothing due."""
    due = next_deadline(clock)
    warning = warn_at(clock, policy, CAL)
    selected = (due is not None and due <= now) or (warning is not None and warning <= now)
    if not selected:
        assert advance(clock, policy, CAL, now) == []


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted(POLICIES)), st.sampled_from(HandlingKind), owners, starts, events)
def test_any_history_keeps_the_invariants(
    policy_name: str,
    kind: HandlingKind,
    owner: ChainLink,
    start: datetime,
    history: list[tuple[str, int]],
) -> None:
    policy = POLICIES[policy_name]
    now = start
    clock = start_clock(owner, kind, policy, CAL, now)
    assert clock.accept_deadline is not None and clock.accept_deadline > now
    highest = rank(clock.owner)
    flags = 0
    for action, gap in history:
        now += timedelta(minutes=gap)
        check_sweep_finds_it(clock, policy, now)
        if action == "sweep":
            steps = advance(clock, policy, CAL, now)
            clock = check_steps(clock, steps, policy, now)
            flags += sum(isinstance(step, FlagOverdueAtTop) for step in steps)
            assert flags <= 1  # the top is flagged at most once per round
        elif action == "accept" and clock.running:
            clock = accept(clock, now)
        elif action == "pause" and clock.running:
            clock = pause(clock, now)
            assert advance(clock, policy, CAL, now + timedelta(days=400)) == []
        elif action == "resume":
            clock = resume(clock, policy, CAL, now)
        elif action == "by_hand":
            try:
                step = escalate_by_hand(clock, policy, CAL, now, "cannot solve it here")
            except ClockStopped:
                assert not clock.running
            except NotAllowed:
                assert next_link(policy, clock.owner) is None
            else:
                clock = check_steps(clock, [step], policy, now, swept=False)
        elif action == "resolve" and clock.running:
            clock = replace(clock, state=TicketState.RESOLVED)
            assert advance(clock, policy, CAL, now + timedelta(days=400)) == []
        elif action == "reopen" and clock.state is TicketState.RESOLVED:
            clock = reopen(clock, policy, CAL, now)
            assert clock.accept_deadline is not None and clock.accept_deadline > now
            assert clock.resolve_deadline is not None and clock.resolve_deadline > now
            assert not clock.top_flagged
            flags = 0
        assert rank(clock.owner) >= highest  # the history of tiers only goes up
        highest = rank(clock.owner)
        assert rank(clock.owner) <= rank(policy.top)


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(sorted(POLICIES)),
    st.sampled_from(HandlingKind),
    owners,
    starts,
    st.lists(st.integers(min_value=0, max_value=20 * 24 * 60), min_size=1, max_size=6),
    st.booleans(),
)
def test_an_outage_gives_the_same_escalations_as_regular_sweeps(
    policy_name: str,
    kind: HandlingKind,
    owner: ChainLink,
    start: datetime,
    gaps: list[int],
    accepted: bool,
) -> None:
    """Sweeping once after a long outage passes the same tiers, at the same instants, as
    sweeping all along."""
    policy = POLICIES[policy_name]
    clock = start_clock(owner, kind, policy, CAL, start)
    if accepted:
        clock = accept(clock, start)
    regular, steady = [], clock
    now = start
    for gap in gaps:
        now += timedelta(minutes=gap)
        steps = advance(steady, policy, CAL, now)
        steady = check_steps(steady, steps, policy, now)
        regular += [step for step in steps if not isinstance(step, Warn)]
    late_steps = advance(clock, policy, CAL, now)
    late = check_steps(clock, late_steps, policy, now)
    assert [step for step in late_steps if not isinstance(step, Warn)] == regular
    assert replace(late, warned=False) == replace(steady, warned=False)
