"""A broadcast as a policy micro-lecture (群发宣传计入微宣讲) for the households it reached.

A household is **reached** when a non-emergency broadcast was delivered (the outbox row sent)
to someone living there. Each reached household is recorded once per broadcast
(:class:`~models.BroadcastReach`, keyed by broadcast and household: a second run, a second
resident of the same household or a second process adds nothing) and adds one to the
``broadcasts`` count of its month, quarter and year (:class:`~models.VisitTally`).

Whether that counts is **policy data**: a quota rule whose ``counts`` is ``lecture_bc``
("micro-lecture or broadcast", 微宣讲或群发) adds the broadcasts to its lectures; a rule
counting ``lecture`` does not — broadcasts are recorded either way, so a rule changed later
counts the period's broadcasts at once. Emergency alerts (应急通知) are not 政策宣传 and never
count. Nothing is written into the workers' diaries (民情日记): a broadcast is not a visit.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from sqlalchemy import exists
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import models
from bot.services.periods import periods_of
from bot.services.quotas import dialect_insert
from models import Broadcast, BroadcastReach, BroadcastRecipient, OutboxMessage, OutboxStatus

REACH = models.metadata.tables[str(BroadcastReach.__tablename__)]
TALLY = models.metadata.tables["visit_tally"]


async def record_reach(
    session: AsyncSession, broadcast: Broadcast, now: datetime, tz: tzinfo
) -> int:
    """Record the households ``broadcast`` has reached since the last call, and count each in
    its tallies of ``now``'s periods; returns how many were new."""
    if broadcast.emergency or broadcast.id is None:
        return 0
    recipient = BroadcastRecipient
    already = exists().where(
        col(BroadcastReach.broadcast_id) == broadcast.id,
        col(BroadcastReach.household_id) == col(recipient.household_id),
    )
    found = (
        await session.exec(
            select(recipient.household_id)
            .distinct()
            .join(OutboxMessage, col(OutboxMessage.id) == col(recipient.outbox_id))
            .where(
                recipient.broadcast_id == broadcast.id,
                col(recipient.household_id).is_not(None),
                OutboxMessage.status == OutboxStatus.SENT,
                ~already,
            )
        )
    ).all()
    households = sorted(int(h) for h in found if h is not None)
    if not households:
        return 0
    connection = await session.connection()
    inserted = await connection.execute(
        dialect_insert(session, REACH)
        .values(
            [
                {"broadcast_id": broadcast.id, "household_id": h, "reached_at": now}
                for h in households
            ]
        )
        .on_conflict_do_nothing(index_elements=["broadcast_id", "household_id"])
        .returning(REACH.c.household_id)
    )
    new = [int(h) for (h,) in inserted]  # another process may have recorded some meanwhile
    if not new:
        return 0
    insert = dialect_insert(session, TALLY)
    t = TALLY.c
    await connection.execute(
        insert.values(
            [
                {
                    "household_id": household,
                    "period": kind.value,
                    "period_start": period.start,
                    "contacts": 0,
                    "in_person": 0,
                    "lectures": 0,
                    "broadcasts": 1,
                }
                for household in new
                for kind, period in periods_of(now, tz).items()
            ]
        ).on_conflict_do_update(
            index_elements=["household_id", "period", "period_start"],
            set_={"broadcasts": t.broadcasts + insert.excluded.broadcasts},
        )
    )
    return len(new)
