"""Handling a ticket, by the people it is with: 签收, progress notes, a question to the reporter
and their answer, 办结, 上报 by hand, 转办, duplicates and 不予受理."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.i18n import N_
from bot.routing import escalation
from bot.services.notice_board import post_outcome
from bot.services.people import RoleInGrid
from bot.services.permissions import Action, permits, target_of
from bot.services.ticket_notices import Notice, TicketNotifier
from bot.services.ticket_numbers import parse_number, shown_number, tickets_numbered
from bot.services.tickets import casework
from bot.services.tickets.concerned import Lookups, followers, owners
from bot.services.tickets.deadlines import clock_of, policy_of, store_clock
from bot.services.tickets.kernel import (
    ACCEPTABLE,
    MOVABLE,
    WORKING,
    load,
    load_for_handling,
    moved_on,
    record_event,
    tell,
    transition,
)
from bot.services.tickets.sweep import apply_escalation
from bot.services.tickets.text import MAX_NOTE, clean_text
from bot.services.tickets.verifying import hold_for_check, verifies
from models import (
    OPEN_TICKET_STATES,
    AuditLog,
    Department,
    Person,
    Role,
    Ticket,
    TicketEventKind,
    TicketPhoto,
    TicketState,
)

NO_OTHER_TICKET = N_("There is no other ticket numbered {number}.")


async def accept(
    session: AsyncSession,
    notifier: TicketNotifier,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    now: datetime,
) -> Ticket:
    """签收: the first owner to press wins; the others are told who has it."""
    ticket = await load_for_handling(
        session, actor=actor, roles=roles, ticket_id=ticket_id, states=ACCEPTABLE, now=now
    )
    taken = ticket.assignee_id is not None and ticket.assignee_id != actor.id
    if taken and ticket.state != TicketState.REOPENED:
        raise await moved_on(session, ticket)
    policy, calendar = await policy_of(session, ticket)
    before = TicketState(ticket.state)
    store_clock(ticket, escalation.accept(clock_of(ticket), now), policy, calendar)
    ticket.assignee_id = actor.id
    await transition(session, ticket, now, TicketEventKind.ACCEPTED, before=before, actor=actor)
    await tell(session, notifier, Notice.ACCEPTED, ticket, now, actor=actor)
    return ticket


async def add_note(
    session: AsyncSession,
    notifier: TicketNotifier,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    text: str,
    now: datetime,
) -> Ticket:
    """A progress note (处理进展), shown to the reporter."""
    note = clean_text(text, minimum=2, maximum=MAX_NOTE)
    ticket = await load_for_handling(
        session, actor=actor, roles=roles, ticket_id=ticket_id, states=WORKING, now=now
    )
    before = TicketState(ticket.state)
    ticket.state = TicketState.IN_PROGRESS
    await transition(
        session, ticket, now, TicketEventKind.NOTE, before=before, actor=actor, note=note
    )
    await tell(session, notifier, Notice.NOTE, ticket, now, actor=actor, note=note)
    return ticket


async def ask_reporter(
    session: AsyncSession,
    notifier: TicketNotifier,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    question: str,
    now: datetime,
) -> Ticket:
    """Ask the reporter something; the clock pauses until they answer."""
    text = clean_text(question, minimum=2, maximum=MAX_NOTE)
    ticket = await load_for_handling(
        session, actor=actor, roles=roles, ticket_id=ticket_id, states=WORKING, now=now
    )
    if ticket.reporter_id is None:
        raise InvalidInput(
            N_("Nobody reported this ticket through the bot, so there is nobody to ask.")
        )
    policy, calendar = await policy_of(session, ticket)
    before = TicketState(ticket.state)
    store_clock(ticket, escalation.pause(clock_of(ticket), now), policy, calendar)
    await transition(
        session, ticket, now, TicketEventKind.ASKED, before=before, actor=actor, note=text
    )
    await tell(session, notifier, Notice.QUESTION, ticket, now, actor=actor, note=text)
    return ticket


async def answer_question(
    session: AsyncSession,
    notifier: TicketNotifier,
    *,
    reporter: Person,
    ticket_id: int,
    text: str,
    now: datetime,
) -> Ticket:
    """The reporter's answer goes to the handler and the clock runs again."""
    answer = clean_text(text, minimum=1, maximum=MAX_NOTE)
    ticket = await load(session, ticket_id)
    if ticket.reporter_id != reporter.id:
        raise NotAllowed()
    if ticket.state != TicketState.WAITING_REPORTER:
        raise await moved_on(session, ticket)
    policy, calendar = await policy_of(session, ticket)
    clock = escalation.resume(clock_of(ticket), policy, calendar, now)
    store_clock(ticket, clock, policy, calendar)
    await transition(
        session,
        ticket,
        now,
        TicketEventKind.ANSWERED,
        before=TicketState.WAITING_REPORTER,
        actor=reporter,
        note=answer,
    )
    await tell(session, notifier, Notice.ANSWER, ticket, now, actor=reporter, note=answer)
    return ticket


async def resolve(
    session: AsyncSession,
    notifier: TicketNotifier,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    text: str,
    now: datetime,
    photo_file_id: str | None = None,
) -> Ticket:
    """办结: what was done (and a photo); the reporter is asked to rate it — after the on-site
    check (:mod:`.verifying`) where the kind's policy asks for one."""
    note = clean_text(text, minimum=2, maximum=MAX_NOTE)
    ticket = await load_for_handling(
        session, actor=actor, roles=roles, ticket_id=ticket_id, states=WORKING, now=now
    )
    # 主办 resolves only after its 协办 have answered or run out of time
    timed_out = await casework.check_assists_done(session, ticket, now)
    policy, calendar = await policy_of(session, ticket)
    before = TicketState(ticket.state)
    if verifies(policy, ticket):  # 核查: checked on site before the reporter rates it
        await hold_for_check(
            session,
            notifier,
            ticket,
            before=before,
            actor=actor,
            note=note,
            photo_file_id=photo_file_id,
            now=now,
        )
        if photo_file_id:
            assert ticket.id is not None
            session.add(
                TicketPhoto(
                    ticket_id=ticket.id, file_id=photo_file_id, stage="resolution", created_at=now
                )
            )
        return ticket
    clock = clock_of(ticket)
    store_clock(ticket, replace(clock, state=TicketState.RESOLVED), policy, calendar)
    ticket.resolved_at = now
    ticket.assignee_id = ticket.assignee_id or actor.id
    await transition(
        session,
        ticket,
        now,
        TicketEventKind.RESOLVED,
        before=before,
        actor=actor,
        note=note,
        data={"assists_timed_out": timed_out} if timed_out else None,
    )
    assert ticket.id is not None
    if photo_file_id:
        session.add(
            TicketPhoto(
                ticket_id=ticket.id, file_id=photo_file_id, stage="resolution", created_at=now
            )
        )
    reporters = await followers(session, ticket)
    until = await post_outcome(  # 公示, for a kind whose policy asks for it
        session, ticket, note, policy, calendar, now, names=[p.name for p in reporters]
    )
    await tell(
        session,
        notifier,
        Notice.RESOLVED,
        ticket,
        now,
        actor=actor,
        note=note,
        photo_file_id=photo_file_id,
        extra={"notice_until": until.isoformat()} if until else None,
    )
    return ticket


async def escalate(
    session: AsyncSession,
    notifier: TicketNotifier,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    reason: str,
    now: datetime,
) -> Ticket:
    """上报 by hand: one tier up, with a reason; the street centre is the top."""
    ticket = await load_for_handling(
        session, actor=actor, roles=roles, ticket_id=ticket_id, states=MOVABLE, now=now
    )
    if ticket.owner_department_id is not None:
        raise InvalidInput(
            N_(
                "A ticket transferred to a department cannot be escalated; "
                "ask the centre to take it back."
            )
        )
    lookups = Lookups()
    policy, calendar = await policy_of(session, ticket, lookups=lookups)
    step = escalation.escalate_by_hand(clock_of(ticket), policy, calendar, now, reason)
    await apply_escalation(
        session, notifier, ticket, step, policy, calendar, now, actor=actor, lookups=lookups
    )
    return ticket


async def transfer(
    session: AsyncSession,
    notifier: TicketNotifier,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    department_id: int,
    now: datetime,
) -> Ticket:
    """转办: a functional department takes it; its staff get the card."""
    ticket = await load_for_handling(
        session, actor=actor, roles=roles, ticket_id=ticket_id, states=MOVABLE, now=now
    )
    department = await session.get(Department, department_id)
    if department is None or not department.active:
        raise NotFound()
    previous = await owners(session, ticket)
    before = TicketState(ticket.state)
    await casework.start_transfer_clock(session, ticket, now)  # the department's windows
    ticket.owner_department_id = department.id
    ticket.owner_role = Role.DEPARTMENT
    ticket.assignee_id = None
    ticket.state = TicketState.TRANSFERRED
    await transition(
        session,
        ticket,
        now,
        TicketEventKind.TRANSFERRED,
        before=before,
        actor=actor,
        data={"department": department.code},
    )
    await tell(
        session,
        notifier,
        Notice.TRANSFERRED,
        ticket,
        now,
        actor=actor,
        others=previous,
        extra={"department": department.name},
    )
    return ticket


async def mark_duplicate(
    session: AsyncSession,
    notifier: TicketNotifier,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    original_number: str,
    now: datetime,
) -> Ticket:
    """The same problem as another open ticket: this one closes, its reporter follows that one."""
    ticket = await load_for_handling(
        session, actor=actor, roles=roles, ticket_id=ticket_id, states=MOVABLE, now=now
    )
    wanted = parse_number(original_number)
    # a short number names a ticket of this ticket's street; the long one is unique anyway
    original = next(
        (
            other
            for other in await tickets_numbered(session, wanted)
            if other.id != ticket.id
            and (isinstance(wanted, str) or other.street_id == ticket.street_id)
        ),
        None,
    )
    typed = original_number.strip()[:40]
    if original is None:
        raise InvalidInput(NO_OTHER_TICKET, number=typed)
    target = await target_of(session, original)
    if not permits(roles, Action.HANDLE, target, actor.id):
        # out of the marker's grids: answered as if there were none (and audited), so that
        # typing numbers finds out nothing, and no reporter is attached to a stranger's case
        refusal = AuditLog(
            at=now,
            actor_id=actor.id,
            action="refused:duplicate",
            object_type="ticket",
            object_id=original.id,
        )
        raise NotAllowed(NO_OTHER_TICKET, audit=refusal, number=typed)
    number = shown_number(original)
    if original.category != ticket.category:
        raise InvalidInput(
            N_("Ticket {number} is about another kind of problem; it cannot be the same one."),
            number=number,
        )
    if original.state not in OPEN_TICKET_STATES:
        raise InvalidInput(N_("Ticket {number} is no longer open."), number=number)
    before = TicketState(ticket.state)
    ticket.duplicate_of_id = original.id
    ticket.state = TicketState.DUPLICATE
    ticket.closed_at = now
    ticket.next_deadline_at = ticket.warn_at = None
    await transition(
        session,
        ticket,
        now,
        TicketEventKind.DUPLICATE,
        before=before,
        actor=actor,
        data={"original": original.number},
    )
    joined = TicketState(original.state)
    for follower in await followers(session, ticket):
        record_event(
            session,
            original,
            now,
            TicketEventKind.JOINED,
            from_state=joined,
            to_state=joined,
            actor=follower,
        )
    await tell(
        session,
        notifier,
        Notice.DUPLICATE,
        ticket,
        now,
        actor=actor,
        extra={"original": shown_number(original)},
    )
    return ticket


async def reject(
    session: AsyncSession,
    notifier: TicketNotifier,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    reason: str,
    now: datetime,
) -> Ticket:
    """不予受理: outside the grid's remit; the reason goes to the reporter."""
    text = clean_text(reason, minimum=2, maximum=MAX_NOTE)
    ticket = await load_for_handling(
        session, actor=actor, roles=roles, ticket_id=ticket_id, states=MOVABLE, now=now
    )
    before = TicketState(ticket.state)
    ticket.state = TicketState.REJECTED
    ticket.closed_at = now
    ticket.solved = False
    ticket.next_deadline_at = ticket.warn_at = None
    await transition(
        session, ticket, now, TicketEventKind.REJECTED, before=before, actor=actor, note=text
    )
    await tell(session, notifier, Notice.REJECTED, ticket, now, actor=actor, note=text)
    return ticket


STATES_FOR: dict[str, frozenset[TicketState]] = {
    "accept": ACCEPTABLE,
    "note": WORKING,
    "ask": WORKING,
    "resolve": WORKING,
    "escalate": MOVABLE,
    "transfer": MOVABLE,
    "duplicate": MOVABLE,
    "reject": MOVABLE,
}


async def ensure_actionable(
    session: AsyncSession,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    ticket_id: int,
    action: str,
    now: datetime,
) -> Ticket:
    """Check before asking someone to type: may ``actor`` do ``action`` on the ticket now?"""
    return await load_for_handling(
        session, actor=actor, roles=roles, ticket_id=ticket_id, states=STATES_FOR[action], now=now
    )
