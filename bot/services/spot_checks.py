"""Spot checks (抽查) by a supervisor (督查): a random sample of a period's visits and closed
tickets in their scope, to call back; each marked confirmed (属实) or false (不属实).

- :func:`draw` picks up to :data:`SAMPLE_VISITS` visits (not withdrawn) and
  :data:`SAMPLE_TICKETS` tickets closed in the span, at random, never one already drawn, and
  keeps each as a :class:`~models.SpotCheck` row naming the worker whose work it is. The
  supervisor needs the phone numbers to call back: the draw is a sensitive read, audited.
- :func:`mark` records the result once; it is on the worker's record (``SpotCheck.worker_id``)
  and the assessment reads it (:mod:`bot.services.scorecards`, :mod:`bot.services.indicators`).

Only ``Action.SUPERVISE`` over the item's grid may draw or mark (refusals audited).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from sqlalchemy import func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import DomainError, NotAllowed, NotFound
from bot.i18n import N_
from bot.services.grids import find_grid
from bot.services.people import RoleInGrid
from bot.services.periods import local_midnight
from bot.services.permissions import Action, authorize, scope_paths
from bot.services.spans import Span
from models import (
    AuditLog,
    Grid,
    Household,
    Person,
    SpotCheck,
    SpotCheckKind,
    SpotCheckResult,
    Ticket,
    TicketState,
    Visit,
    VisitKind,
)

SAMPLE_VISITS = 5
SAMPLE_TICKETS = 3
NOT_A_SUPERVISOR = N_("Spot checks are for supervisors (督查).")


class AlreadyMarked(DomainError):
    message = N_("This spot check was already recorded.")


@dataclass(frozen=True)
class SpotItem:
    """One drawn item, with what the supervisor needs to call back."""

    check: SpotCheck
    worker_name: str | None
    at: datetime  # the visit, or when the ticket was closed
    grid_name: str
    subject: str  # the household's address, or the ticket's number
    contact_name: str | None
    contact_phone: str | None
    note: str
    visit_kind: VisitKind | None = None


def _paths(person: Person, roles: Sequence[RoleInGrid], now: datetime) -> list[str]:
    paths = scope_paths(roles, Action.SUPERVISE)
    if not person.active or not paths:
        refusal = AuditLog(at=now, actor_id=person.id, action="refused:supervise")
        raise NotAllowed(NOT_A_SUPERVISOR, audit=refusal)
    return paths


async def draw(
    session: AsyncSession,
    actor: Person,
    roles: Sequence[RoleInGrid],
    *,
    span: Span,
    tz: tzinfo,
    now: datetime,
    grid_code: str | None = None,
) -> list[SpotItem]:
    """Draw a sample of the span's visits and closed tickets in scope (or under one grid)."""
    paths = _paths(actor, roles, now)
    if grid_code is not None:
        grid = await find_grid(session, grid_code)
        await authorize(session, actor, roles, Action.SUPERVISE, grid, now)
        paths = [grid.path]
    begin, end = local_midnight(span.start, tz), local_midnight(span.end, tz)
    under = or_(*(col(Grid.path).startswith(p) for p in paths))
    drawn_visits = select(SpotCheck.visit_id).where(col(SpotCheck.visit_id).is_not(None))
    drawn_tickets = select(SpotCheck.ticket_id).where(col(SpotCheck.ticket_id).is_not(None))
    visits = (
        await session.exec(
            select(Visit, Household, Grid)
            .join(Household, col(Household.id) == col(Visit.household_id))
            .join(Grid, col(Grid.id) == col(Household.grid_id))
            .where(
                under,
                col(Visit.visited_at) >= begin,
                col(Visit.visited_at) < end,
                col(Visit.withdrawn_at).is_(None),
                col(Visit.id).not_in(drawn_visits),
            )
            .order_by(func.random())
            .limit(SAMPLE_VISITS)
        )
    ).all()
    closed = (
        await session.exec(
            select(Ticket, Grid)
            .join(Grid, col(Grid.id) == col(Ticket.grid_id))
            .where(
                under,
                col(Ticket.state) == TicketState.CLOSED,
                col(Ticket.closed_at) >= begin,
                col(Ticket.closed_at) < end,
                col(Ticket.id).not_in(drawn_tickets),
            )
            .order_by(func.random())
            .limit(SAMPLE_TICKETS)
        )
    ).all()
    people_ids = {v.worker_id for v, _, _ in visits} | {
        pid for t, _ in closed for pid in (t.assignee_id, t.reporter_id) if pid is not None
    }
    people = {
        p.id: p
        for p in (await session.exec(select(Person).where(col(Person.id).in_(people_ids)))).all()
    }
    items: list[SpotItem] = []
    for visit, household, grid in visits:
        check = _row(actor, SpotCheckKind.VISIT, grid, span, now, worker_id=visit.worker_id)
        check.visit_id = visit.id
        worker = people.get(visit.worker_id)
        items.append(
            SpotItem(
                check,
                worker.name if worker else None,
                visit.visited_at,
                grid.name,
                household.address,
                household.head_name,
                household.phone,
                visit.note,
                VisitKind(visit.kind),
            )
        )
    for ticket, grid in closed:
        check = _row(actor, SpotCheckKind.TICKET, grid, span, now, worker_id=ticket.assignee_id)
        check.ticket_id = ticket.id
        handler = people.get(ticket.assignee_id) if ticket.assignee_id else None
        reporter = people.get(ticket.reporter_id) if ticket.reporter_id else None
        assert ticket.closed_at is not None
        items.append(
            SpotItem(
                check,
                handler.name if handler else None,
                ticket.closed_at,
                grid.name,
                ticket.number,
                reporter.name if reporter else None,
                reporter.phone if reporter else None,
                ticket.description[:200],
            )
        )
    for item in items:
        session.add(item.check)
    await session.flush()
    session.add(
        AuditLog(
            at=now,
            actor_id=actor.id,
            action="read_sensitive",
            object_type="spot_check",
            detail=",".join(paths),
            data={
                "visits": len(visits),
                "tickets": len(closed),
                "checks": [i.check.id for i in items],
            },
        )
    )
    return items


def _row(
    actor: Person,
    kind: SpotCheckKind,
    grid: Grid,
    span: Span,
    now: datetime,
    *,
    worker_id: int | None,
) -> SpotCheck:
    assert actor.id is not None and grid.id is not None
    return SpotCheck(
        supervisor_id=actor.id,
        kind=kind,
        worker_id=worker_id,
        grid_id=grid.id,
        period_start=span.start,
        period_end=span.end,
        drawn_at=now,
    )


async def mark(
    session: AsyncSession,
    actor: Person,
    roles: Sequence[RoleInGrid],
    *,
    check_id: int,
    result: SpotCheckResult,
    now: datetime,
) -> SpotCheck:
    """Record what the call back found, once; on the worker's record from now on."""
    check = await session.get(SpotCheck, check_id)
    if check is None:
        raise NotFound()
    grid = await session.get(Grid, check.grid_id)
    if grid is None:
        raise NotFound()
    await authorize(session, actor, roles, Action.SUPERVISE, grid, now)
    if check.result is not None:
        raise AlreadyMarked()
    check.result = result
    check.checked_at = now
    session.add(check)
    session.add(
        AuditLog(
            at=now,
            actor_id=actor.id,
            action=f"spot_check:{result.value}",
            object_type=check.kind,
            object_id=check.visit_id or check.ticket_id,
            detail=grid.path,
            data={"spot_check": check.id, "worker": check.worker_id},
        )
    )
    return check
