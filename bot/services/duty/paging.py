"""Paging the operator on duty first (值班呼叫) — the on-call pattern of escalation chains.

When an urgent or major ticket comes to the street centre (filed there, escalated up to it,
classified or taken up to it) or the centre's top-of-chain flag is raised on a ticket nobody
accepted, only the operator on duty gets the card: :func:`page_first`, called by the ticket
kernel's ``tell``, narrows the owners and records a :class:`~models.DutyPage`. If the ticket is
still not accepted at the centre after the policy's ``duty.first_minutes``, the sweep
(:func:`widen_unaccepted`) tells the rest of the centre. With nobody on duty (a gap in the
rota, or the operator on duty no longer an operator), everyone is told at once, as before.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services.duty.rota import on_duty, operators
from bot.services.ticket_notices import Notice, TicketNotifier, TicketUpdate
from bot.services.tickets.deadlines import current_policy
from models import DutyPage, HandlingKind, Person, Role, Ticket, TicketState

log = logging.getLogger(__name__)

URGENT_KINDS = frozenset({HandlingKind.URGENT, HandlingKind.MAJOR})
UNACCEPTED = frozenset({TicketState.DISPATCHED, TicketState.REOPENED, TicketState.TRANSFERRED})
# the notices that bring a ticket (or its flag) to the centre's operators
PAGED = frozenset(
    {
        Notice.FILED,
        Notice.ESCALATED,
        Notice.RECLASSIFIED,
        Notice.TAKEN_UP,
        Notice.SENT_DOWN,
        Notice.OVERDUE_AT_TOP,
    }
)


def _at_centre(ticket: Ticket) -> bool:
    return (
        ticket.owner_role == Role.CENTER
        and ticket.owner_department_id is None
        and ticket.owner_grid_id is not None
        and ticket.assignee_id is None
        and ticket.state in UNACCEPTED
    )


async def page_first(
    session: AsyncSession,
    ticket: Ticket,
    notice: Notice,
    owners: Sequence[Person],
    now: datetime,
) -> tuple[list[Person], list[Person], int | None]:
    """Whom to tell now, whom to hold back, and for how many minutes (None: nobody is held
    back). Records the page when the operator on duty is told first."""
    told = list(owners)
    if notice not in PAGED or not _at_centre(ticket) or ticket.id is None:
        return told, [], None
    if notice != Notice.OVERDUE_AT_TOP and ticket.kind not in URGENT_KINDS:
        return told, [], None
    grid_id = ticket.owner_grid_id
    assert grid_id is not None
    duty = await on_duty(session, grid_id, now)
    if duty is None or duty.id not in {o.id for o in told}:
        return told, [], None
    rest = [o for o in told if o.id != duty.id]
    if not rest:
        return told, [], None
    minutes = (await current_policy(session)).duty.first_minutes
    session.add(
        DutyPage(
            ticket_id=ticket.id,
            grid_id=grid_id,
            person_id=duty.id or 0,
            notice=notice.value,
            paged_at=now,
            widen_at=now + timedelta(minutes=minutes),
        )
    )
    return [duty], rest, minutes


async def not_yet_told(
    session: AsyncSession, ticket: Ticket, owners: Sequence[Person]
) -> list[Person]:
    """Of ``owners``, those the ticket's latest page held back (only while it is at the
    centre it was paged at and the page did not widen): they never got its card, so they
    get none of its later changes either."""
    if ticket.owner_role != Role.CENTER or ticket.id is None or not owners:
        return []
    page = (
        await session.exec(
            select(DutyPage)
            .where(DutyPage.ticket_id == ticket.id)
            .order_by(col(DutyPage.id).desc())
            .limit(1)
        )
    ).first()
    if page is None or page.widened or page.grid_id != ticket.owner_grid_id:
        return []
    if page.notice == Notice.OVERDUE_AT_TOP:
        return []  # only the flag was held back: the card had reached them all before
    return [o for o in owners if o.id != page.person_id]


async def widen_unaccepted(
    session: AsyncSession, notifier: TicketNotifier, now: datetime, *, batch: int = 200
) -> int:
    """The sweep: pages whose minutes have passed. A ticket still unaccepted at the same
    centre goes to every operator there; either way the page is done. Commits per page.
    Returns how many tickets were widened."""
    due = (
        await session.exec(
            select(DutyPage.id)
            .where(col(DutyPage.done_at).is_(None), col(DutyPage.widen_at) <= now)
            .order_by(col(DutyPage.widen_at), col(DutyPage.id))
            .limit(batch)
        )
    ).all()
    widened = 0
    for page_id in due:
        try:
            widened += await _widen_one(session, notifier, page_id or 0, now)
            await session.commit()
        except Exception:
            await session.rollback()
            log.exception("duty page %s could not be widened", page_id)
    return widened


async def _widen_one(
    session: AsyncSession, notifier: TicketNotifier, page_id: int, now: datetime
) -> int:
    page = await session.get(DutyPage, page_id, with_for_update=True)
    if page is None or page.done_at is not None:
        return 0
    page.done_at = now
    session.add(page)
    ticket = await session.get(Ticket, page.ticket_id)
    if ticket is None or not _at_centre(ticket) or ticket.owner_grid_id != page.grid_id:
        return 0  # accepted, or moved on: nobody else needs the page
    rest = [p for p in await operators(session, page.grid_id) if p.id != page.person_id]
    if not rest:
        return 0
    page.widened = True
    duty = await session.get(Person, page.person_id)
    minutes = max(1, round((page.widen_at - page.paged_at).total_seconds() / 60))
    await notifier(
        session,
        TicketUpdate(
            Notice.DUTY_WIDENED,
            ticket,
            owners=rest,
            others=[duty] if duty is not None else [],
            extra={"duty": duty.name if duty else "—", "minutes": str(minutes)},
        ),
        now,
    )
    return 1
