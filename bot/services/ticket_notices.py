"""How services tell people about tickets without knowing Telegram.

A service describes what happened (:class:`TicketUpdate`) and hands it to a
:class:`TicketNotifier`; the Telegram side (``bot.telegram.ticket_notifier``) renders it in
each recipient's language and writes it to the outbox in the same transaction. Tests pass a
recording fake.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from sqlmodel.ext.asyncio.session import AsyncSession

from models import Person, Ticket


class Notice(StrEnum):
    FILED = "filed"  # owners get the new card; informed links a copy
    JOINED = "joined"  # another resident follows the ticket
    ACCEPTED = "accepted"
    NOTE = "note"
    QUESTION = "question"  # the handler asks the reporter
    ANSWER = "answer"  # the reporter answered
    COMPLAINT = "complaint"  # an unsatisfied reporter says what is still wrong (重办)
    RESOLVED = "resolved"  # the reporter is asked to rate
    CLOSED = "closed"
    REOPENED = "reopened"
    ESCALATED = "escalated"
    TRANSFERRED = "transferred"
    SENT_DOWN = "sent_down"  # the centre sent it down the chain (下派), or back from a department
    TAKEN_UP = "taken_up"  # the centre took it up (上收)
    RECLASSIFIED = "reclassified"  # 定性: a new handling kind, routed again by the rules
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    WARNED = "warned"  # a deadline is near
    OVERDUE_AT_TOP = "overdue_at_top"
    VERIFY = "verify"  # 办结 of a kind checked on site: the verifiers get the card
    VERIFIED = "verified"  # 核查通过: now the reporter is asked to rate
    SENT_BACK = "sent_back"  # 核查不通过: back to the handler with the reason
    URGED = "urged"  # 催办: a supervisor pings the owners
    OUTSIDE_GRIDS = "outside_grids"  # the map could not place its point: the centre is told
    DUTY_WIDENED = "duty_widened"  # the operator on duty did not accept: the whole centre
    RETURNED = "returned"  # 退单: a department gave it back; the centre re-dispatches it
    EXTENSION_ASKED = "extension_asked"  # 延期申请: the centre decides with buttons
    EXTENSION_APPROVED = "extension_approved"  # the new deadline
    EXTENSION_REFUSED = "extension_refused"  # the deadline stays
    ASSIST_ASKED = "assist_asked"  # 协办: an assisting department is asked to answer
    ASSIST_ANSWERED = "assist_answered"  # its answer, to the lead department
    REMINDED = "reminded"  # 待核查 a working day: the verifiers are asked again


@dataclass
class TicketUpdate:
    notice: Notice
    ticket: Ticket
    actor: Person | None = None
    note: str | None = None
    photo_file_id: str | None = None
    reporters: list[Person] = field(default_factory=list)  # the reporter and followers
    owners: list[Person] = field(default_factory=list)  # whose card shows the actions
    others: list[Person] = field(default_factory=list)  # previous owners, informed chain
    informed: list[Person] = field(default_factory=list)  # links told at once of a new kind
    extra: dict[str, str] = field(default_factory=dict)
    report_photos: int | None = None  # photos filed with the report, when the caller knows


class TicketNotifier(Protocol):
    async def __call__(self, session: AsyncSession, update: TicketUpdate, now: datetime) -> None:
        """Render ``update`` for everyone concerned and queue it in ``session``."""
        ...
