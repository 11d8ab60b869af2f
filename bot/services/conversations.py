"""Conversations in progress (aiogram FSM state in the database): locking and idle expiry.

A resident who starts ``/report`` and walks away should not find a half-finished report
waiting days later; :func:`expire_idle` ends such conversations after
``Settings.fsm_idle_minutes`` and tells the person, in their language, that nothing was sent.
The scheduler calls it periodically; it only needs the session and ``now``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.i18n import N_, gettext_for, resolve_locale
from bot.services import outbox
from models import FsmRecord, Person

# The StatesGroup of the /report conversation is ``handlers.report.NewReport``; its states are
# stored as "NewReport:<step>" (a test keeps the two in step).
REPORT_STATE_PREFIX = "NewReport:"

EXPIRED = N_(
    "Your report was not sent, because there was no answer for a while. "
    "Send /report to start again."
)


def chat_and_user(key: str) -> tuple[int, int] | None:
    """The chat and user ids in an FSM record key (``bot:chat:user:thread:…``), if readable."""
    parts = key.split(":")
    if len(parts) < 3:
        return None
    try:
        return int(parts[1]), int(parts[2])
    except ValueError:
        return None


async def hold(session: AsyncSession, key: str) -> None:
    """Lock one conversation's record until the transaction ends.

    Two updates of one conversation handled at once (the photos of an album) then take turns
    on PostgreSQL; SQLite already serialises writing transactions. A missing record (a new
    conversation, or the state kept in Redis) locks nothing.
    """
    await session.get(FsmRecord, key, with_for_update=True, populate_existing=True)


async def expire_idle(
    session: AsyncSession, now: datetime, idle: timedelta, default_locale: str
) -> int:
    """End the /report conversations idle for longer than ``idle``; tell each person.

    The delete is one statement that re-checks the age, so a conversation the person touched
    a moment ago is kept. Returns how many conversations ended.
    """
    expired = (
        await session.exec(
            delete(FsmRecord)
            .where(
                col(FsmRecord.updated_at) < now - idle,
                col(FsmRecord.state).startswith(REPORT_STATE_PREFIX),
            )
            .returning(col(FsmRecord.key))
        )
    ).all()
    ids = [pair for pair in (chat_and_user(key) for (key,) in expired) if pair is not None]
    people = {
        person.telegram_id: person
        for person in (
            await session.exec(
                select(Person).where(col(Person.telegram_id).in_([user for _, user in ids]))
            )
        ).all()
    }
    for chat_id, user_id in ids:
        person = people.get(user_id)
        locale = resolve_locale(
            person.locale if person else None,
            person.telegram_language if person else None,
            default_locale,
        )
        outbox.send_text(
            session,
            chat_id=chat_id,
            text=gettext_for(locale, EXPIRED),
            now=now,
            reply_markup={"remove_keyboard": True},  # the location button of the place step
            person_id=person.id if person else None,
        )
    return len(expired)
