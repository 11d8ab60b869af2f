"""Casework with departments (职能部门, 12345 接诉即办): the lead (主办) and assisting (协办)
departments, 退单 (a department returns a ticket that is not theirs) and 延期申请 (it asks for
more time; the centre above decides).

- **At a department.** A routing rule naming a department (``RouteRule.department``) or the
  centre's 转办 puts the ticket with its lead department: the clock restarts with the policy's
  department windows (:func:`bot.routing.departments.to_department`). Assisting departments
  named by the rule are asked at once, each with its own deadline (``departments.assist``).
- **协办.** The centre over the ticket may add an assisting department by hand
  (:func:`add_assist`). An assisting department answers once (:func:`answer_assist`); the
  lead sees the answer. The lead resolves the ticket only when every assisting department
  has answered or its deadline has passed (:func:`check_assists_done`, called by 办结).
- **退单.** The lead department gives the ticket back with a reason (:func:`return_ticket`): it
  goes to the street centre (the top of the chain, clock restarted there, an event
  ``returned``), whose operators re-dispatch it — 转办 to another department or 下派.
- **延期.** The lead department (or an assisting one, for its answer date) asks for a new
  date with a reason (:func:`ask_extension`): an
  :class:`~models.ExtensionRequest` and an event ``extension_asked``; the centre over the
  ticket approves or refuses (:func:`decide_extension`, ``Action.DISPATCH``). Only approval
  moves the deadline (``extension_approved`` with the old and new deadline); a refusal is
  ``extension_refused``. One request open at a time.

Everything goes through the kernel: load for an action (scope checked, refusals audited),
transition and record the event, tell the people concerned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.i18n import N_
from bot.routing import departments as department_clock
from bot.routing import escalation
from bot.routing.policy import Policy
from bot.routing.rules import RouteDecision
from bot.routing.working_time import WorkCalendar
from bot.services.people import RoleInGrid
from bot.services.permissions import Action, authorize
from bot.services.ticket_notices import Notice, TicketNotifier
from bot.services.ticket_numbers import shown_number
from bot.services.tickets.concerned import (
    department_of,
    department_staff,
    grid_at_tier,
    holders,
    load_grid,
    owners,
)
from bot.services.tickets.deadlines import clock_of, policy_of, store_clock
from bot.services.tickets.kernel import (
    MOVABLE,
    WORKING,
    load,
    load_for_handling,
    moved_on,
    record_event,
    tell,
    transition,
)
from bot.services.tickets.text import MAX_NOTE, clean_text
from models import (
    AuditLog,
    Department,
    ExtensionRequest,
    Person,
    Role,
    Ticket,
    TicketAssist,
    TicketEventKind,
    TicketState,
)

NOT_AT_A_DEPARTMENT = N_("Only a department handling this ticket can do that.")
ASSISTS_PENDING = N_(
    "The assisting departments have not all answered yet: {names}. Ticket {number} can be "
    "resolved once they answer or their deadline passes ({deadline})."
)
EXTENSION_OPEN = N_("A request for more time for this ticket is already waiting for a decision.")
EXTENSION_DECIDED = N_("This request for more time was already decided.")
ASSIST_DONE = N_("Your department has already answered this ticket.")
NOT_YOUR_ASSIST = N_("Only the staff of the assisting department can answer this.")


@dataclass(frozen=True)
class Returned:
    ticket: Ticket
    department: Department


@dataclass(frozen=True)
class ExtensionAsked:
    ticket: Ticket
    request: ExtensionRequest


def clean_reason(text: str) -> str:
    """A 退单 or 延期 reason: 2 to :data:`MAX_NOTE` characters, trimmed."""
    return clean_text(text, minimum=2, maximum=MAX_NOTE)


async def start_at_department(
    session: AsyncSession,
    ticket: Ticket,
    decision: RouteDecision,
    policy: Policy,
    calendar: WorkCalendar,
    now: datetime,
) -> tuple[Department | None, list[TicketAssist]]:
    """A new ticket whose rule names a department: with that department, its windows running,
    the assisting departments asked. A department that does not exist (or was retired) leaves
    the ticket with the rule's link (``to``), which hears of it as usual."""
    if decision.department is None:
        return None, []
    lead = await _department_by_code(session, decision.department)
    if lead is None:
        return None, []
    ticket.owner_department_id = lead.id
    store_clock(
        ticket,
        department_clock.to_department(clock_of(ticket), policy, calendar, now),
        policy,
        calendar,
    )
    assists: list[TicketAssist] = []
    due = department_clock.assist_due(policy, calendar, now)
    for code in decision.assist:
        helper = await _department_by_code(session, code)
        if helper is None or helper.id == lead.id:
            continue
        assert ticket.id is not None and helper.id is not None
        assist = TicketAssist(
            ticket_id=ticket.id, department_id=helper.id, due_at=due, created_at=now
        )
        session.add(assist)
        assists.append(assist)
    if assists:
        await session.flush()
    return lead, assists


async def tell_assists(
    session: AsyncSession,
    notifier: TicketNotifier,
    ticket: Ticket,
    assists: Sequence[TicketAssist],
    now: datetime,
    *,
    actor: Person | None = None,
) -> None:
    """Each assisting department's staff hear they are asked (协办), with the answer button."""
    lead = await department_of(session, ticket)
    state = TicketState(ticket.state)
    for assist in assists:
        helper = await session.get(Department, assist.department_id)
        if helper is None:
            continue
        record_event(
            session,
            ticket,
            now,
            TicketEventKind.ASSIST_ASKED,
            from_state=state,
            to_state=state,
            actor=actor,
            data={"department": helper.code, "due": assist.due_at.isoformat()},
        )
        await tell(
            session,
            notifier,
            Notice.ASSIST_ASKED,
            ticket,
            now,
            actor=actor,
            reporters=[],
            owners=[],
            others=await department_staff(session, helper.id or 0),
            extra={
                "department": helper.name,
                "lead": lead.name if lead else "—",
                "assist_id": str(assist.id),
                "due": assist.due_at.isoformat(),
            },
        )


async def start_transfer_clock(session: AsyncSession, ticket: Ticket, now: datetime) -> None:
    """转办 by hand: the department's windows run from now (the policy the ticket has)."""
    policy, calendar = await policy_of(session, ticket)
    store_clock(
        ticket,
        department_clock.to_department(clock_of(ticket), policy, calendar, now),
        policy,
        calendar,
    )


async def assists_of(session: AsyncSession, ticket_id: int) -> list[TicketAssist]:
    return list(
        (
            await session.exec(
                select(TicketAssist)
                .where(TicketAssist.ticket_id == ticket_id)
                .order_by(col(TicketAssist.id))
            )
        ).all()
    )


async def check_assists_done(session: AsyncSession, ticket: Ticket, now: datetime) -> list[str]:
    """Refuse 办结 while an assisting department has neither answered nor run out of time;
    else the codes of those that timed out without answering (for the event)."""
    assert ticket.id is not None
    waiting: list[TicketAssist] = []
    timed_out: list[str] = []
    for assist in await assists_of(session, ticket.id):
        if assist.answered_at is not None:
            continue
        department = await session.get(Department, assist.department_id)
        if assist.due_at > now:
            waiting.append(assist)
        elif department is not None:
            timed_out.append(department.code)
    if waiting:
        names = []
        for assist in waiting:
            department = await session.get(Department, assist.department_id)
            names.append(department.name if department else "—")
        latest = max(a.due_at for a in waiting)
        policy, _ = await policy_of(session, ticket)
        raise InvalidInput(
            ASSISTS_PENDING,
            names="、".join(names),
            number=shown_number(ticket),
            deadline=department_clock.local(latest, policy),
        )
    return timed_out


async def answer_assist(
    session: AsyncSession,
    notifier: TicketNotifier,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    assist_id: int,
    text: str,
    now: datetime,
) -> Ticket:
    """An assisting department's answer (协办意见): once, by its staff, while the ticket is open
    at its lead; the lead's staff read it."""
    answer = clean_text(text, minimum=2, maximum=MAX_NOTE)
    assist = await session.get(TicketAssist, assist_id)
    if assist is None:
        raise NotFound()
    ticket = await load(session, assist.ticket_id)
    mine = any(
        r.role == Role.DEPARTMENT and r.department_id == assist.department_id for r in roles
    )
    if not mine or not actor.active:
        refusal = AuditLog(
            at=now,
            actor_id=actor.id,
            action="refused:assist",
            object_type="ticket",
            object_id=ticket.id,
        )
        raise NotAllowed(NOT_YOUR_ASSIST, audit=refusal)
    if ticket.state not in MOVABLE:
        raise await moved_on(session, ticket)
    if assist.answered_at is not None:
        raise InvalidInput(ASSIST_DONE)
    assist.answered_at = now
    assist.answered_by = actor.id
    assist.answer = answer
    session.add(assist)
    helper = await session.get(Department, assist.department_id)
    state = TicketState(ticket.state)
    record_event(
        session,
        ticket,
        now,
        TicketEventKind.ASSIST_ANSWERED,
        from_state=state,
        to_state=state,
        actor=actor,
        note=answer,
        data={"department": helper.code if helper else None},
    )
    await tell(
        session,
        notifier,
        Notice.ASSIST_ANSWERED,
        ticket,
        now,
        actor=actor,
        note=answer,
        reporters=[],
        extra={"department": helper.name if helper else "—"},
    )
    return ticket


async def assist_for_answer(
    session: AsyncSession,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    assist_id: int,
    now: datetime,
) -> tuple[TicketAssist, Ticket]:
    """Before asking someone to type an assisting answer: may they, and is it still open?"""
    assist = await session.get(TicketAssist, assist_id)
    if assist is None:
        raise NotFound()
    ticket = await load(session, assist.ticket_id)
    if not any(
        r.role == Role.DEPARTMENT and r.department_id == assist.department_id for r in roles
    ):
        refusal = AuditLog(
            at=now,
            actor_id=actor.id,
            action="refused:assist",
            object_type="ticket",
            object_id=ticket.id,
        )
        raise NotAllowed(NOT_YOUR_ASSIST, audit=refusal)
    if assist.answered_at is not None:
        raise InvalidInput(ASSIST_DONE)
    if ticket.state not in MOVABLE:
        raise await moved_on(session, ticket)
    return assist, ticket


async def _lead_ticket(
    session: AsyncSession,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    now: datetime,
) -> tuple[Ticket, Department]:
    """The ticket, if ``actor`` is on the staff of the department that leads it now."""
    ticket = await load_for_handling(
        session, actor=actor, roles=roles, ticket_id=ticket_id, states=MOVABLE, now=now
    )
    department = await department_of(session, ticket)
    in_it = department is not None and any(
        r.role == Role.DEPARTMENT and r.department_id == department.id for r in roles
    )
    if department is None or not in_it:
        raise NotAllowed(NOT_AT_A_DEPARTMENT)
    return ticket, department


async def check_lead(
    session: AsyncSession,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    now: datetime,
) -> Ticket:
    """Before asking for a reason: is ``actor`` on the lead department's staff?"""
    ticket, _ = await _lead_ticket(session, actor=actor, roles=roles, ticket_id=ticket_id, now=now)
    return ticket


async def return_ticket(
    session: AsyncSession,
    notifier: TicketNotifier,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    reason: str,
    now: datetime,
) -> Returned:
    """退单: the lead department gives the ticket back to the street centre with a reason; the
    centre's operators get the card to re-dispatch it."""
    note = clean_reason(reason)
    ticket, department = await _lead_ticket(
        session, actor=actor, roles=roles, ticket_id=ticket_id, now=now
    )
    policy, calendar = await policy_of(session, ticket)
    previous = await owners(session, ticket)
    step = escalation.dispatch_to(clock_of(ticket), policy, calendar, now, policy.top, note)
    grid = await load_grid(session, ticket.grid_id)
    owner_grid = await grid_at_tier(session, grid, step.to_tier)
    before = TicketState(ticket.state)
    store_clock(ticket, escalation.apply_dispatch(clock_of(ticket), step), policy, calendar)
    ticket.owner_grid_id = owner_grid.id
    ticket.owner_department_id = None
    ticket.assignee_id = None
    await transition(
        session,
        ticket,
        now,
        TicketEventKind.RETURNED,
        before=before,
        actor=actor,
        note=note,
        data={"department": department.code, "to_tier": step.to_tier, "to_role": step.to_role},
    )
    await tell(
        session,
        notifier,
        Notice.RETURNED,
        ticket,
        now,
        actor=actor,
        note=note,
        reporters=[],
        others=previous,
        extra={"department": department.name},
    )
    return Returned(ticket, department)


async def _open_request(
    session: AsyncSession, ticket_id: int, department_id: int | None
) -> ExtensionRequest | None:
    return (
        await session.exec(
            select(ExtensionRequest).where(
                ExtensionRequest.ticket_id == ticket_id,
                ExtensionRequest.department_id == department_id,
                col(ExtensionRequest.approved).is_(None),
            )
        )
    ).first()


async def _open_assist(
    session: AsyncSession, ticket_id: int, department_ids: Sequence[int | None]
) -> TicketAssist | None:
    """An unanswered assisting ask of the ticket to one of these departments."""
    return (
        await session.exec(
            select(TicketAssist).where(
                TicketAssist.ticket_id == ticket_id,
                col(TicketAssist.department_id).in_([d for d in department_ids if d]),
                col(TicketAssist.answered_at).is_(None),
            )
        )
    ).first()


async def _asking_department(
    session: AsyncSession,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    now: datetime,
) -> tuple[Ticket, Department, TicketAssist | None]:
    """Who asks for more time: the lead department's staff (its resolve deadline), or an
    assisting department's with its ask unanswered (its answer deadline)."""
    ticket = await load(session, ticket_id)
    lead = await department_of(session, ticket)
    own = [r.department_id for r in roles if r.role == Role.DEPARTMENT]
    if lead is None or lead.id not in own:
        assist = await _open_assist(session, ticket_id, own) if actor.active else None
        if assist is not None:
            if ticket.state not in MOVABLE:
                raise await moved_on(session, ticket)
            helper = await session.get(Department, assist.department_id)
            assert helper is not None
            return ticket, helper, assist
    ticket, department = await _lead_ticket(
        session, actor=actor, roles=roles, ticket_id=ticket_id, now=now
    )
    return ticket, department, None


async def check_asking(
    session: AsyncSession,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    now: datetime,
) -> Ticket:
    """Before asking for a 延期 reason: the lead's staff, or an assisting department's."""
    ticket, _department, _assist = await _asking_department(
        session, actor=actor, roles=roles, ticket_id=ticket_id, now=now
    )
    return ticket


async def ask_extension(
    session: AsyncSession,
    notifier: TicketNotifier,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    reason: str,
    wanted_text: str,
    now: datetime,
) -> ExtensionAsked:
    """延期申请: the lead department asks for a new resolve date, or an assisting department
    for a new answer date (the close of business that day), with a reason; the street
    centre's operators over the ticket get approve / refuse buttons. Nothing moves yet."""
    note = clean_reason(reason)
    ticket, department, assist = await _asking_department(
        session, actor=actor, roles=roles, ticket_id=ticket_id, now=now
    )
    if assist is None and ticket.state not in WORKING | {TicketState.TRANSFERRED}:
        raise await moved_on(session, ticket)
    assert ticket.id is not None
    if await _open_request(session, ticket.id, department.id) is not None:
        raise InvalidInput(EXTENSION_OPEN)
    policy, calendar = await policy_of(session, ticket)
    wanted = department_clock.parse_wanted_date(wanted_text, calendar, now)
    if assist is None:
        department_clock.check_extension(clock_of(ticket), policy, calendar, wanted)
        old = ticket.resolve_deadline
    else:
        department_clock.check_assist_extension(assist.due_at, policy, calendar, wanted)
        old = assist.due_at
    request = ExtensionRequest(
        ticket_id=ticket.id,
        department_id=department.id,
        asked_by=actor.id or 0,
        reason=note,
        old_deadline=old,
        wanted=wanted,
        asked_at=now,
    )
    session.add(request)
    await session.flush()
    state = TicketState(ticket.state)
    record_event(
        session,
        ticket,
        now,
        TicketEventKind.EXTENSION_ASKED,
        from_state=state,
        to_state=state,
        actor=actor,
        note=note,
        data={
            "request": request.id,
            "wanted": wanted.isoformat(),
            "department": department.code,
            **({"assist": assist.id} if assist is not None else {}),
        },
    )
    await tell(
        session,
        notifier,
        Notice.EXTENSION_ASKED,
        ticket,
        now,
        actor=actor,
        note=note,
        reporters=[],
        owners=[],
        others=await _centre_over(session, ticket),
        extra={
            "department": department.name,
            "request_id": str(request.id),
            "wanted": wanted.isoformat(),
            **({"assist_deadline": old.isoformat()} if assist is not None and old else {}),
        },
    )
    return ExtensionAsked(ticket, request)


async def _centre_over(session: AsyncSession, ticket: Ticket) -> list[Person]:
    grid = await load_grid(session, ticket.grid_id)
    street = await grid_at_tier(session, grid, 0)
    return await holders(session, street.id or 0, Role.CENTER)


async def decide_extension(
    session: AsyncSession,
    notifier: TicketNotifier,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    request_id: int,
    approve: bool,
    now: datetime,
) -> tuple[Ticket, ExtensionRequest]:
    """The centre over the ticket approves (the deadline moves to the date asked) or refuses
    (it stays). Anyone else is refused and audited; a decided request is not decided again."""
    request = await session.get(ExtensionRequest, request_id)
    if request is None:
        raise NotFound()
    ticket = await load(session, request.ticket_id)
    await authorize(session, actor, roles, Action.DISPATCH, ticket, now)
    if request.approved is not None:
        raise InvalidInput(EXTENSION_DECIDED)
    if ticket.state not in MOVABLE:
        raise await moved_on(session, ticket)
    if ticket.owner_department_id != request.department_id:
        assist = await _open_assist(session, ticket.id or 0, [request.department_id])
        if assist is None:
            raise await moved_on(session, ticket)
        return await _decide_assist_extension(
            session, notifier, actor, ticket, request, assist, approve, now
        )
    policy, calendar = await policy_of(session, ticket)
    before = TicketState(ticket.state)
    old = ticket.resolve_deadline
    request.decided_by = actor.id
    request.decided_at = now
    request.approved = approve
    session.add(request)
    data = {
        "request": request.id,
        "old": old.isoformat() if old else None,
        "wanted": request.wanted.isoformat(),
    }
    if approve:
        clock = department_clock.extend(clock_of(ticket), policy, calendar, now, request.wanted)
        store_clock(ticket, clock, policy, calendar)
        await transition(
            session,
            ticket,
            now,
            TicketEventKind.EXTENSION_APPROVED,
            before=before,
            actor=actor,
            note=request.reason,
            data=data,
        )
    else:
        record_event(
            session,
            ticket,
            now,
            TicketEventKind.EXTENSION_REFUSED,
            from_state=before,
            to_state=before,
            actor=actor,
            note=request.reason,
            data=data,
        )
    await tell(
        session,
        notifier,
        Notice.EXTENSION_APPROVED if approve else Notice.EXTENSION_REFUSED,
        ticket,
        now,
        actor=actor,
        reporters=[],
        extra={"wanted": request.wanted.isoformat()},
    )
    return ticket, request


MAX_ASSISTS = 5  # as a routing rule's ``assist``
ASSIST_NOT_AT_DEPARTMENT = N_(
    "Ticket {number} is not with a lead department: transfer it to one (转办) first."
)
ASSIST_TAKEN = N_("That department is already the lead or assisting on this ticket.")
ASSISTS_FULL = N_("A ticket can have at most {count} assisting departments.")


async def assist_candidates(
    session: AsyncSession,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    now: datetime,
) -> tuple[Ticket, list[Department]]:
    """The departments the centre over the ticket may add as assisting (协办) by hand: active,
    neither its lead nor already asked. Only the centre (``Action.DISPATCH``), only while the
    ticket is open at a lead department."""
    ticket = await load(session, ticket_id)
    await authorize(session, actor, roles, Action.DISPATCH, ticket, now)
    if ticket.state not in MOVABLE:
        raise await moved_on(session, ticket)
    if ticket.owner_department_id is None:
        raise InvalidInput(ASSIST_NOT_AT_DEPARTMENT, number=shown_number(ticket))
    assert ticket.id is not None
    taken = {a.department_id for a in await assists_of(session, ticket.id)}
    if len(taken) >= MAX_ASSISTS:
        raise InvalidInput(ASSISTS_FULL, count=MAX_ASSISTS)
    taken.add(ticket.owner_department_id)
    active = (
        await session.exec(
            select(Department).where(col(Department.active).is_(True)).order_by(col(Department.id))
        )
    ).all()
    return ticket, [d for d in active if d.id not in taken]


async def add_assist(
    session: AsyncSession,
    notifier: TicketNotifier,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    department_id: int,
    now: datetime,
) -> tuple[Ticket, TicketAssist, Department]:
    """The centre asks one more department to assist (协办) by hand: its own deadline from the
    policy the ticket has (``departments.assist``), an event ``assist_asked`` by the operator,
    its staff told with the answer button — as if a routing rule had named it."""
    ticket, candidates = await assist_candidates(
        session, actor=actor, roles=roles, ticket_id=ticket_id, now=now
    )
    helper = next((d for d in candidates if d.id == department_id), None)
    if helper is None:
        known = await session.get(Department, department_id)
        if known is None or not known.active:
            raise NotFound()
        raise InvalidInput(ASSIST_TAKEN)
    policy, calendar = await policy_of(session, ticket)
    assert ticket.id is not None and helper.id is not None
    assist = TicketAssist(
        ticket_id=ticket.id,
        department_id=helper.id,
        due_at=department_clock.assist_due(policy, calendar, now),
        created_at=now,
    )
    session.add(assist)
    await session.flush()
    await tell_assists(session, notifier, ticket, [assist], now, actor=actor)
    return ticket, assist, helper


async def _decide_assist_extension(
    session: AsyncSession,
    notifier: TicketNotifier,
    actor: Person,
    ticket: Ticket,
    request: ExtensionRequest,
    assist: TicketAssist,
    approve: bool,
    now: datetime,
) -> tuple[Ticket, ExtensionRequest]:
    """An assisting department's 延期: approval moves its answer deadline (checked again), a
    refusal leaves it; its staff hear which."""
    policy, calendar = await policy_of(session, ticket)
    old = assist.due_at
    if approve:
        department_clock.check_assist_extension(old, policy, calendar, request.wanted)
        assist.due_at = request.wanted
        session.add(assist)
    request.decided_by = actor.id
    request.decided_at = now
    request.approved = approve
    session.add(request)
    state = TicketState(ticket.state)
    record_event(
        session,
        ticket,
        now,
        TicketEventKind.EXTENSION_APPROVED if approve else TicketEventKind.EXTENSION_REFUSED,
        from_state=state,
        to_state=state,
        actor=actor,
        note=request.reason,
        data={
            "request": request.id,
            "assist": assist.id,
            "old": old.isoformat(),
            "wanted": request.wanted.isoformat(),
        },
    )
    await tell(
        session,
        notifier,
        Notice.EXTENSION_APPROVED if approve else Notice.EXTENSION_REFUSED,
        ticket,
        now,
        actor=actor,
        reporters=[],
        owners=[],
        others=await department_staff(session, assist.department_id),
        extra={"wanted": request.wanted.isoformat(), "assist_deadline": assist.due_at.isoformat()},
    )
    return ticket, request


async def _department_by_code(session: AsyncSession, code: str) -> Department | None:
    department = (await session.exec(select(Department).where(Department.code == code))).first()
    return department if department is not None and department.active else None


async def assist_pending_for(
    session: AsyncSession, roles: Sequence[RoleInGrid]
) -> list[tuple[TicketAssist, Ticket]]:
    """The assisting asks waiting for the person's departments' answer, oldest first."""
    departments = [r.department_id for r in roles if r.department_id is not None]
    if not departments:
        return []
    rows = (
        await session.exec(
            select(TicketAssist, Ticket)
            .join(Ticket, col(Ticket.id) == TicketAssist.ticket_id)
            .where(
                col(TicketAssist.department_id).in_(departments),
                col(TicketAssist.answered_at).is_(None),
            )
            .order_by(col(TicketAssist.id))
        )
    ).all()
    return [(assist, ticket) for assist, ticket in rows]
