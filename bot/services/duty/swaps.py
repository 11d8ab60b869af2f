"""Swapping a shift (换班): an operator asks a colleague to take one of their shifts; the shift
moves only when the colleague agrees. Both presses are checked again here: only the shift's
operator may ask, only the colleague asked may answer, only while the shift is theirs and not
over; a refusal is audited.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import InvalidInput, NotAllowed
from bot.i18n import N_
from bot.services.duty.rota import EDITORS, centre_id, operators
from bot.services.people import RoleInGrid
from models import AuditLog, DutyShift, DutySwap, Person

NOT_YOURS = N_("Only the operator on that shift can ask someone to take it.")
NOT_ASKED = N_("This request to swap was not made to you.")
NOT_COLLEAGUE = N_("You can only hand a shift to another operator of your centre.")
SHIFT_OVER = N_("That shift is over, or no longer on the rota.")
ANSWERED = N_("This request was already answered.")
MOVED = N_("The shift is no longer with the operator who asked.")


@dataclass(frozen=True)
class SwapFacts:
    swap: DutySwap
    shift: DutyShift
    asker: Person
    colleague: Person


def _refusal(
    message: str, actor: Person, now: datetime, object_type: str, object_id: int
) -> NotAllowed:
    return NotAllowed(
        message,
        audit=AuditLog(
            at=now,
            actor_id=actor.id,
            action="refused:duty_swap",
            object_type=object_type,
            object_id=object_id,
        ),
    )


async def own_shift(
    session: AsyncSession, actor: Person, shift_id: int, now: datetime
) -> DutyShift:
    """The actor's own shift, still to come or running; refused (audited) otherwise."""
    shift = await session.get(DutyShift, shift_id)
    if shift is None or shift.person_id != actor.id:
        raise _refusal(NOT_YOURS, actor, now, "duty_shift", shift_id)
    if shift.ends_at <= now:
        raise InvalidInput(SHIFT_OVER)
    return shift


async def colleagues(
    session: AsyncSession, actor: Person, shift_id: int, now: datetime
) -> list[Person]:
    """Whom the actor may hand their shift to: the other operators of its centre."""
    shift = await own_shift(session, actor, shift_id, now)
    return [p for p in await operators(session, shift.grid_id) if p.id != actor.id]


async def ask_swap(
    session: AsyncSession,
    actor: Person,
    roles: Sequence[RoleInGrid],
    shift_id: int,
    colleague_id: int,
    now: datetime,
) -> SwapFacts:
    """Ask ``colleague_id`` to take the actor's shift; nothing moves until they agree."""
    shift = await own_shift(session, actor, shift_id, now)
    if centre_id(roles, EDITORS) != shift.grid_id:
        raise _refusal(NOT_YOURS, actor, now, "duty_shift", shift_id)
    colleague = next(
        (p for p in await operators(session, shift.grid_id) if p.id == colleague_id), None
    )
    if colleague is None or colleague.id == actor.id:
        raise _refusal(NOT_COLLEAGUE, actor, now, "person", colleague_id)
    swap = DutySwap(
        shift_id=shift.id or 0,
        from_person_id=actor.id or 0,
        to_person_id=colleague.id or 0,
        asked_at=now,
    )
    session.add(swap)
    await session.flush()
    return SwapFacts(swap, shift, actor, colleague)


async def answer_swap(
    session: AsyncSession, actor: Person, swap_id: int, agree: bool, now: datetime
) -> SwapFacts:
    """The colleague's answer: agreed, the shift is theirs from now (audited)."""
    swap = await session.get(DutySwap, swap_id, with_for_update=True)
    if swap is None or swap.to_person_id != actor.id:
        raise _refusal(NOT_ASKED, actor, now, "duty_swap", swap_id)
    if swap.state != "asked":
        raise InvalidInput(ANSWERED)
    shift = await session.get(DutyShift, swap.shift_id)
    asker = await session.get(Person, swap.from_person_id)
    if shift is None or asker is None or shift.ends_at <= now:
        raise InvalidInput(SHIFT_OVER)
    if shift.person_id != swap.from_person_id:
        raise InvalidInput(MOVED)
    swap.state = "agreed" if agree else "declined"
    swap.answered_at = now
    session.add(swap)
    if agree:
        if actor.id not in {p.id for p in await operators(session, shift.grid_id)}:
            raise _refusal(NOT_COLLEAGUE, actor, now, "duty_swap", swap_id)
        shift.person_id = actor.id or 0
        shift.source = "swap"
        session.add(shift)
        session.add(
            AuditLog(
                at=now,
                actor_id=actor.id,
                action="duty:swap",
                object_type="duty_shift",
                object_id=shift.id,
                data={"from": asker.id, "to": actor.id, "swap": swap.id},
            )
        )
        # other open requests for the same shift are moot now
        for other in (
            await session.exec(
                select(DutySwap).where(
                    DutySwap.shift_id == shift.id,
                    DutySwap.state == "asked",
                    col(DutySwap.id) != swap.id,
                )
            )
        ).all():
            other.state = "declined"
            other.answered_at = now
            session.add(other)
    return SwapFacts(swap, shift, asker, actor)
