"""Deadlines and escalation (限时办理、逐级上报): a pure state machine over a ticket's clock.

"解决不了则及时上报": what a tier cannot solve in time goes one tier up, tier by tier, each
with a time limit, until the street centre — the top — where an overdue ticket is flagged to
the centre and the supervisors once, never lost and never looped.

The glue (``bot/services/tickets/``, the sweep job) uses it like this:

1. **Dispatch** — ``route(...)`` picks the owner; :func:`start_clock` starts the clock *at
   dispatch* (not at acceptance) and gives the first deadlines.
2. **Persist** — copy the :class:`TicketClock` onto the ticket: ``state``, ``owner_role``,
   ``dispatched_at``, ``accept_deadline``, ``resolve_deadline``, ``accepted_at``,
   ``paused_at`` and ``escalation_count`` have columns; the rest
   (:class:`ClockMarks`: window start, cap, warned, flagged) goes into ``Ticket.sla["clock"]``
   beside the policy snapshot ``Ticket.sla["policy"]``. Keep the two indexed columns current:
   ``Ticket.next_deadline_at = next_deadline(clock)`` and
   ``Ticket.warn_at = warn_at(clock, policy, calendar)``.
3. **Sweep** — select tickets with ``next_deadline_at <= now OR warn_at <= now`` (cost grows
   with the due tickets only), rebuild each clock, call :func:`advance`, and for every step
   persist ``clock = apply(clock, step)`` with a ``TicketEvent`` and its outbox messages in
   one transaction per ticket (optimistic lock on ``Ticket.version``: a stale run loses).
4. **People act** — :func:`accept`, :func:`pause` (waiting for the reporter),
   :func:`resume`, :func:`escalate_by_hand`, :func:`reopen`; persist the returned clock.
   The street centre picks the owner itself with :func:`dispatch_to` (下派 down the chain,
   上收 up to it, or back from a department); persist ``apply_dispatch(clock, step)``.
   A handler or the centre sets the handling kind with :func:`reclassify` (定性), which routes
   the ticket again by the policy's rules for the new kind; persist
   ``apply_reclassify(clock, step)``.

The policy and calendar are those the ticket was created under: ``parse_policy(sla["policy"])``
and ``WorkCalendar.for_policy(policy, overrides)`` with the admin's ``CalendarDay`` rows.

Invariants (tested with Hypothesis): one owner at a time; tiers only go up; never above the
top; every new deadline lies after the instant of its step; the top is flagged at most once
per round; closed, resolved and paused tickets produce no steps; ``advance`` on a clock that
already reflects its steps returns ``[]``; a restart after an outage yields one
:class:`Escalate` per tier passed, each computed from the previous deadline.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from bot.errors import InvalidInput, NotAllowed
from bot.i18n import N_
from bot.routing.policy import ChainLink, Policy
from bot.routing.rules import TicketFacts, next_link, route
from bot.routing.working_time import WorkCalendar
from models.enums import HandlingKind, Role, TicketState

Which = Literal["accept", "resolve", "cap"]
Reason = Literal["accept_overdue", "resolve_overdue", "cap_overdue", "by_hand"]

# The states in which a ticket's clock runs (unless it is paused).
RUNNING_STATES: Final = frozenset(
    {
        TicketState.DISPATCHED,
        TicketState.ACCEPTED,
        TicketState.IN_PROGRESS,
        TicketState.REOPENED,
        TicketState.TRANSFERRED,
    }
)
REOPENABLE_STATES: Final = frozenset({TicketState.RESOLVED, TicketState.CLOSED})
MAX_REASON: Final = 500


class AtTheTop(NotAllowed):
    """The ticket is already with the top of the chain (the street centre)."""

    message = N_("This ticket is already with the street centre; it cannot go any higher.")


class ClockStopped(NotAllowed):
    """The ticket's clock is not running: not dispatched, paused, or finished."""

    message = N_("This ticket is not open for that right now.")


DEPARTMENT_CANNOT_ESCALATE = N_(
    "A ticket transferred to a department cannot be escalated; ask the centre to take it back."
)
NOT_REOPENABLE = N_("Only a resolved or closed ticket can be reopened.")
REASON_MISSING = N_("Please say in a few words why the ticket should go up.")
REASON_TOO_LONG = N_("Please keep the reason under {limit} characters.")


@dataclass(frozen=True)
class TicketClock:
    """A frozen snapshot of a ticket's clock, built by the glue from a ``Ticket``.

    ``window_start`` is when the current owner's windows opened (dispatch, escalation,
    reopen), moved on by pauses; warnings are a fraction of the way from it to the deadline
    (from ``dispatched_at`` if it is missing). The clock runs without it: a ticket whose
    marks were lost still escalates.
    ``cap_deadline`` is the kind's overall cap counted from dispatch, moved on by pauses.
    ``warned`` says the warning of the pending deadline was sent; ``top_flagged`` that the
    ticket was flagged overdue at the top (or at a department).
    """

    state: TicketState
    kind: HandlingKind
    tier: int
    role: Role
    dispatched_at: datetime | None
    window_start: datetime | None
    accept_deadline: datetime | None
    resolve_deadline: datetime | None
    cap_deadline: datetime | None = None
    accepted_at: datetime | None = None
    paused_at: datetime | None = None
    warned: bool = False
    top_flagged: bool = False
    escalations: int = 0

    def __post_init__(self) -> None:
        for name in (
            "dispatched_at",
            "window_start",
            "accept_deadline",
            "resolve_deadline",
            "cap_deadline",
            "accepted_at",
            "paused_at",
        ):
            value = getattr(self, name)
            if value is not None and value.utcoffset() is None:
                raise ValueError(f"TicketClock.{name} must be an aware datetime")

    @property
    def owner(self) -> ChainLink:
        return ChainLink(self.tier, self.role)

    @property
    def running(self) -> bool:
        """The clock is ticking: an open, dispatched ticket not waiting for the reporter."""
        return (
            self.state in RUNNING_STATES
            and self.paused_at is None
            and self.accept_deadline is not None
            and self.resolve_deadline is not None
        )

    @property
    def marks(self) -> ClockMarks:
        return ClockMarks(self.window_start, self.cap_deadline, self.warned, self.top_flagged)


@dataclass(frozen=True)
class ClockMarks:
    """The part of a :class:`TicketClock` that ``Ticket`` has no column for.

    The glue keeps it as ``Ticket.sla["clock"] = marks.to_json()``.
    """

    window_start: datetime | None
    cap_deadline: datetime | None
    warned: bool
    top_flagged: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "window_start": _iso(self.window_start),
            "cap_deadline": _iso(self.cap_deadline),
            "warned": self.warned,
            "top_flagged": self.top_flagged,
        }

    @classmethod
    def from_json(cls, raw: Any) -> ClockMarks:
        """Read what :meth:`to_json` wrote; a missing or empty value gives blank marks."""
        if not raw:
            return cls(None, None, False, False)
        if not isinstance(raw, dict):
            raise ValueError("clock marks must be a JSON object")
        return cls(
            window_start=_from_iso(raw.get("window_start")),
            cap_deadline=_from_iso(raw.get("cap_deadline")),
            warned=bool(raw.get("warned", False)),
            top_flagged=bool(raw.get("top_flagged", False)),
        )


# --- steps ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Warn:
    """Tell the owner a deadline is near (once per deadline, before it passes)."""

    deadline: datetime
    which: Which


@dataclass(frozen=True)
class Escalate:
    """Move the ticket one link up the chain (上报), with fresh deadlines there.

    ``at`` is the deadline that passed (or the moment of a manual escalation); the new
    deadlines are counted from it, so steps replayed after an outage keep their true times.
    ``cap_overdue`` (the overall cap passed) goes straight to the top; ``note`` is the
    person's reason for a manual escalation.
    """

    from_tier: int
    to_tier: int
    to_role: Role
    reason: Reason
    at: datetime
    new_accept_deadline: datetime
    new_resolve_deadline: datetime
    from_role: Role | None = None
    note: str | None = None


@dataclass(frozen=True)
class FlagOverdueAtTop:
    """The ticket is overdue where nobody is above it: flag it to the centre and the
    supervisors (督查), once."""

    at: datetime
    which: Which


Step = Warn | Escalate | FlagOverdueAtTop


# --- the clock's life ----------------------------------------------------------------------


def start_clock(
    owner: ChainLink,
    kind: HandlingKind,
    policy: Policy,
    calendar: WorkCalendar,
    now: datetime,
) -> TicketClock:
    """Dispatch (派单): the clock starts now, with the owner's windows and the kind's cap."""
    now = _utc(now)
    cap = _cap_from(policy, calendar, kind, now)
    accept_by, resolve_by = _deadlines(policy, calendar, kind, owner.tier, now, cap)
    return TicketClock(
        state=TicketState.DISPATCHED,
        kind=kind,
        tier=owner.tier,
        role=owner.role,
        dispatched_at=now,
        window_start=now,
        accept_deadline=accept_by,
        resolve_deadline=resolve_by,
        cap_deadline=cap,
    )


def accept(clock: TicketClock, now: datetime) -> TicketClock:
    """The owner accepted (受理): the accept deadline is met; warnings now concern resolving."""
    if not clock.running:
        raise ClockStopped()
    if clock.accepted_at is not None:
        return clock
    return replace(clock, state=TicketState.ACCEPTED, accepted_at=_utc(now), warned=False)


def pause(clock: TicketClock, now: datetime) -> TicketClock:
    """Waiting for the reporter: the clock stops (pausing twice changes nothing)."""
    if clock.paused_at is not None:
        return clock
    if not clock.running:
        raise ClockStopped()
    return replace(clock, state=TicketState.WAITING_REPORTER, paused_at=_utc(now))


def resume(
    clock: TicketClock, policy: Policy, calendar: WorkCalendar, now: datetime
) -> TicketClock:
    """The reporter answered: every deadline not yet passed when the clock stopped moves on by
    the paused time — working time, or wall time for a round-the-clock kind."""
    paused_at = clock.paused_at
    if paused_at is None:
        return clock
    now = _utc(now)
    if policy.kinds[clock.kind].round_the_clock:
        paused = max(now - paused_at, timedelta(0))

        def shift(instant: datetime) -> datetime:
            return instant + paused

    else:
        paused = calendar.working_time_between(paused_at, now)

        def shift(instant: datetime) -> datetime:
            return calendar.add_working(instant, paused)

    def moved(instant: datetime | None) -> datetime | None:
        if instant is None or instant <= paused_at:
            return instant
        return shift(instant)

    return replace(
        clock,
        state=TicketState.IN_PROGRESS if clock.accepted_at else TicketState.DISPATCHED,
        paused_at=None,
        window_start=shift(clock.window_start) if clock.window_start else None,
        accept_deadline=moved(clock.accept_deadline),
        resolve_deadline=moved(clock.resolve_deadline),
        cap_deadline=moved(clock.cap_deadline),
    )


def reopen(
    clock: TicketClock, policy: Policy, calendar: WorkCalendar, now: datetime
) -> TicketClock:
    """The reporter was not satisfied (重办): back to the same owner with fresh deadlines and
    a fresh cap from now; it must be accepted again."""
    if clock.state not in REOPENABLE_STATES:
        raise NotAllowed(NOT_REOPENABLE)
    now = _utc(now)
    cap = _cap_from(policy, calendar, clock.kind, now)
    accept_by, resolve_by = _deadlines(policy, calendar, clock.kind, clock.tier, now, cap)
    return replace(
        clock,
        state=TicketState.REOPENED,
        window_start=now,
        accept_deadline=accept_by,
        resolve_deadline=resolve_by,
        cap_deadline=cap,
        accepted_at=None,
        paused_at=None,
        warned=False,
        top_flagged=False,
    )


def advance(
    clock: TicketClock, policy: Policy, calendar: WorkCalendar, now: datetime
) -> list[Step]:
    """What is due at ``now``, in order: escalations (one per tier passed, each from the
    deadline before), then at most one flag at the top, or else at most one warning."""
    now = _utc(now)
    steps: list[Step] = []
    current = clock
    while current.running and not current.top_flagged:
        instant, which = _due(current)
        if instant > now:
            warning = _warning(current, policy, calendar)
            if warning is not None and warning <= now:
                steps.append(Warn(deadline=instant, which=which))
            break
        above = next_link(policy, current.owner)
        if above is None:  # the top, or a department
            steps.append(FlagOverdueAtTop(at=instant, which=which))
            break
        target = policy.top if which == "cap" else above
        step = _escalation(current, target, _REASONS[which], instant, policy, calendar)
        steps.append(step)
        current = apply(current, step)
    return steps


def apply(clock: TicketClock, step: Step) -> TicketClock:
    """The clock after ``step`` — what the glue persists."""
    if isinstance(step, Warn):
        return replace(clock, warned=True)
    if isinstance(step, FlagOverdueAtTop):
        return replace(clock, top_flagged=True)
    return replace(
        clock,
        state=TicketState.DISPATCHED,
        tier=step.to_tier,
        role=step.to_role,
        window_start=step.at,
        accept_deadline=step.new_accept_deadline,
        resolve_deadline=step.new_resolve_deadline,
        accepted_at=None,
        warned=False,
        escalations=clock.escalations + 1,
    )


def escalate_by_hand(
    clock: TicketClock,
    policy: Policy,
    calendar: WorkCalendar,
    now: datetime,
    reason: str,
) -> Escalate:
    """The owner sends the ticket up now ("解决不了则及时上报"), saying why."""
    if not clock.running:
        raise ClockStopped()
    if clock.role is Role.DEPARTMENT:
        raise NotAllowed(DEPARTMENT_CANNOT_ESCALATE)
    above = next_link(policy, clock.owner)
    if above is None:
        raise AtTheTop()
    note = clean_reason(reason)
    return replace(_escalation(clock, above, "by_hand", _utc(now), policy, calendar), note=note)


# --- the centre chooses the owner (下派 / 上收) --------------------------------------------------

Direction = Literal["down", "up"]

NOT_IN_CHAIN = N_("That is not a tier of this ticket's chain.")
PAST_THE_CAP = N_(
    "This ticket is past its overall time limit, so it stays with the street centre: it can "
    "be taken up, not sent down."
)


class AlreadyThere(NotAllowed):
    """The ticket is already owned by the link it was to be sent to."""

    message = N_("The ticket is already with that tier; choose another one.")


@dataclass(frozen=True)
class Dispatch:
    """The centre sends the ticket to a chosen link of the chain (下派), or takes it up (上收).

    Unlike :class:`Escalate` it may go down, skip tiers, or bring a ticket back from a
    department. The clock restarts at ``at`` with the new owner's windows, inside the ticket's
    overall cap, which does not move. ``direction`` is ``up`` when the new owner is higher in
    the chain than the old one (from a department: when it goes to the top), else ``down``.
    """

    from_tier: int
    from_role: Role
    to_tier: int
    to_role: Role
    direction: Direction
    at: datetime
    new_accept_deadline: datetime
    new_resolve_deadline: datetime
    note: str | None = None

    @property
    def to(self) -> ChainLink:
        return ChainLink(self.to_tier, self.to_role)


def dispatch_to(
    clock: TicketClock,
    policy: Policy,
    calendar: WorkCalendar,
    now: datetime,
    link: ChainLink,
    reason: str | None = None,
) -> Dispatch:
    """The street centre hands the ticket to ``link`` now, optionally saying why.

    Refuses a stopped clock (:class:`ClockStopped`), a link outside the policy's chain, the
    link that owns it already (:class:`AlreadyThere`), anything but the top once the overall
    cap has passed, and an empty or over-long reason (``InvalidInput``).
    """
    if not clock.running:
        raise ClockStopped()
    if link not in policy.chain:
        raise NotAllowed(NOT_IN_CHAIN)
    if link == clock.owner:
        raise AlreadyThere()
    now = _utc(now)
    cap = clock.cap_deadline
    if link != policy.top and cap is not None and cap <= now:
        raise NotAllowed(PAST_THE_CAP)
    note = None if reason is None else clean_reason(reason)
    mine, theirs = clock.owner.rank, link.rank
    assert theirs is not None  # every link of the chain has a rank
    up = link == policy.top if mine is None else theirs > mine
    accept_by, resolve_by = _deadlines(policy, calendar, clock.kind, link.tier, now, cap)
    return Dispatch(
        from_tier=clock.tier,
        from_role=clock.role,
        to_tier=link.tier,
        to_role=link.role,
        direction="up" if up else "down",
        at=now,
        new_accept_deadline=accept_by,
        new_resolve_deadline=resolve_by,
        note=note,
    )


def apply_dispatch(clock: TicketClock, step: Dispatch) -> TicketClock:
    """The clock after a :class:`Dispatch`: a new owner, dispatched again at ``step.at`` (to be
    accepted anew), a fresh warning, and — while the cap is ahead — a fresh flag at the top.
    It is not an escalation: ``escalations`` is unchanged."""
    cap = clock.cap_deadline
    past_cap = cap is not None and cap <= step.at
    return replace(
        clock,
        state=TicketState.DISPATCHED,
        tier=step.to_tier,
        role=step.to_role,
        dispatched_at=step.at,
        window_start=step.at,
        accept_deadline=step.new_accept_deadline,
        resolve_deadline=step.new_resolve_deadline,
        accepted_at=None,
        paused_at=None,
        warned=False,
        top_flagged=clock.top_flagged and past_cap,
    )


# --- 定性: the handling kind is set, and the ticket re-routed --------------------------------


class SameKind(NotAllowed):
    """The ticket is already of the kind it was to be classified as."""

    message = N_("This ticket is already of that kind; choose another one.")


@dataclass(frozen=True)
class Reclassify:
    """A handler or the centre classifies the ticket (定性) as another handling kind.

    The ticket is routed again by the policy's rules with the new kind (``rule`` is the rule
    that matched): it goes to ``to`` — which may be where it is already — and the rule's
    ``inform`` links hear of it at once. The clock restarts at ``at`` with the new kind's
    windows at the new owner's tier; the overall cap becomes the new kind's cap counted from
    ``at``, but never later than the cap the ticket had (a reclassification never buys time).
    """

    from_kind: HandlingKind
    to_kind: HandlingKind
    rule: str
    from_tier: int
    from_role: Role
    to_tier: int
    to_role: Role
    inform: tuple[ChainLink, ...]
    at: datetime
    new_accept_deadline: datetime
    new_resolve_deadline: datetime
    new_cap_deadline: datetime | None
    note: str | None = None

    @property
    def to(self) -> ChainLink:
        return ChainLink(self.to_tier, self.to_role)

    @property
    def moves(self) -> bool:
        """The new kind's rule names another owner than the one the ticket has."""
        return (self.from_tier, self.from_role) != (self.to_tier, self.to_role)


def reclassify(
    clock: TicketClock,
    facts: TicketFacts,
    policy: Policy,
    calendar: WorkCalendar,
    now: datetime,
    reason: str | None = None,
) -> Reclassify:
    """定性: the ticket becomes ``facts.kind`` now, routed by the policy's rules for that kind.

    Refuses a stopped clock (:class:`ClockStopped`), the kind it has already
    (:class:`SameKind`), a move anywhere but the top once the overall cap has passed, and an
    empty or over-long reason (``InvalidInput``).
    """
    if not clock.running:
        raise ClockStopped()
    if facts.kind is clock.kind:
        raise SameKind()
    now = _utc(now)
    decision = route(facts, policy)
    owner = decision.owner
    cap = _cap_from(policy, calendar, facts.kind, now)
    if clock.cap_deadline is not None:
        cap = clock.cap_deadline if cap is None else min(cap, clock.cap_deadline)
    if owner != policy.top and cap is not None and cap <= now:
        raise NotAllowed(PAST_THE_CAP)
    note = None if reason is None else clean_reason(reason)
    accept_by, resolve_by = _deadlines(policy, calendar, facts.kind, owner.tier, now, cap)
    return Reclassify(
        from_kind=clock.kind,
        to_kind=facts.kind,
        rule=decision.rule,
        from_tier=clock.tier,
        from_role=clock.role,
        to_tier=owner.tier,
        to_role=owner.role,
        inform=decision.inform,
        at=now,
        new_accept_deadline=accept_by,
        new_resolve_deadline=resolve_by,
        new_cap_deadline=cap,
        note=note,
    )


def apply_reclassify(clock: TicketClock, step: Reclassify) -> TicketClock:
    """The clock after a :class:`Reclassify`: the new kind, fresh windows from ``step.at``, the
    new cap, a fresh warning. A ticket that moves is dispatched again (to be accepted anew, like
    :func:`apply_dispatch`); one that stays keeps its state and acceptance. Not an escalation:
    ``escalations`` is unchanged."""
    cap = step.new_cap_deadline
    past_cap = cap is not None and cap <= step.at
    moved = (
        replace(
            clock,
            state=TicketState.DISPATCHED,
            tier=step.to_tier,
            role=step.to_role,
            dispatched_at=step.at,
            accepted_at=None,
            paused_at=None,
        )
        if step.moves
        else clock
    )
    return replace(
        moved,
        kind=step.to_kind,
        window_start=step.at,
        accept_deadline=step.new_accept_deadline,
        resolve_deadline=step.new_resolve_deadline,
        cap_deadline=cap,
        warned=False,
        top_flagged=clock.top_flagged and past_cap,
    )


def clean_reason(text: str) -> str:
    """A person's reason, trimmed: spaces collapsed, invisible characters dropped."""
    visible = "".join(ch for ch in text if ch.isprintable() or ch.isspace())
    cleaned = " ".join(visible.split())
    if not cleaned:
        raise InvalidInput(REASON_MISSING)
    if len(cleaned) > MAX_REASON:
        raise InvalidInput(REASON_TOO_LONG, limit=MAX_REASON)
    return cleaned


def next_deadline(clock: TicketClock) -> datetime | None:
    """When :func:`advance` next has something other than a warning to do; for
    ``Ticket.next_deadline_at``. None when nothing can become due (stopped, or flagged)."""
    if not clock.running or clock.top_flagged:
        return None
    return _due(clock)[0]


def warn_at(clock: TicketClock, policy: Policy, calendar: WorkCalendar) -> datetime | None:
    """When the pending deadline's warning falls due; for ``Ticket.warn_at``. None when it
    was sent, warnings are off, or the window is too short to warn in."""
    if not clock.running or clock.top_flagged:
        return None
    return _warning(clock, policy, calendar)


# --- internals -----------------------------------------------------------------------------

_REASONS: Final[dict[Which, Reason]] = {
    "accept": "accept_overdue",
    "resolve": "resolve_overdue",
    "cap": "cap_overdue",
}


def _due(clock: TicketClock) -> tuple[datetime, Which]:
    """The first deadline that can pass: accept (until accepted) or resolve, or the cap."""
    assert clock.accept_deadline is not None and clock.resolve_deadline is not None
    pending: tuple[datetime, Which] = (
        (clock.accept_deadline, "accept")
        if clock.accepted_at is None
        else (clock.resolve_deadline, "resolve")
    )
    if clock.cap_deadline is not None and clock.cap_deadline <= pending[0]:
        return clock.cap_deadline, "cap"
    return pending


def _warning(clock: TicketClock, policy: Policy, calendar: WorkCalendar) -> datetime | None:
    fraction = policy.warn_fraction
    start = clock.window_start or clock.dispatched_at  # marks lost: count from dispatch
    if clock.warned or fraction is None or start is None:
        return None
    deadline, _ = _due(clock)
    if deadline <= start:
        return None
    working = calendar.working_time_between(start, deadline)
    if policy.kinds[clock.kind].round_the_clock or working <= timedelta(0):
        instant = start + (deadline - start) * fraction
    else:
        instant = calendar.add_working(start, working * fraction)
    return instant if instant < deadline else None


def _escalation(
    clock: TicketClock,
    target: ChainLink,
    reason: Reason,
    at: datetime,
    policy: Policy,
    calendar: WorkCalendar,
) -> Escalate:
    accept_by, resolve_by = _deadlines(
        policy, calendar, clock.kind, target.tier, at, clock.cap_deadline
    )
    return Escalate(
        from_tier=clock.tier,
        to_tier=target.tier,
        to_role=target.role,
        reason=reason,
        at=at,
        new_accept_deadline=accept_by,
        new_resolve_deadline=resolve_by,
        from_role=clock.role,
    )


def _deadlines(
    policy: Policy,
    calendar: WorkCalendar,
    kind: HandlingKind,
    tier: int,
    start: datetime,
    cap: datetime | None,
) -> tuple[datetime, datetime]:
    """The accept and resolve deadlines of a window opening at ``start``: resolve no later
    than a cap still ahead, accept no later than resolve. Both lie after ``start``."""
    windows = policy.windows(kind, tier)
    resolve_by = calendar.add(start, windows.resolve)
    if cap is not None and cap > start:
        resolve_by = min(resolve_by, cap)
    accept_by = min(calendar.add(start, windows.accept), resolve_by)
    return accept_by, resolve_by


def _cap_from(
    policy: Policy, calendar: WorkCalendar, kind: HandlingKind, start: datetime
) -> datetime | None:
    cap = policy.kinds[kind].cap
    return None if cap is None else calendar.add(start, cap)


def _utc(instant: datetime) -> datetime:
    if instant.utcoffset() is None:
        raise ValueError("routing needs aware datetimes")
    return instant.astimezone(UTC)


def _iso(instant: datetime | None) -> str | None:
    return None if instant is None else instant.astimezone(UTC).isoformat()


def _from_iso(raw: Any) -> datetime | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise ValueError("clock marks hold ISO 8601 instants")
    return _utc(datetime.fromisoformat(raw))
