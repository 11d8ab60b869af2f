"""Who acts in an update, and with what: the one context an update's work is done in."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services.people import RoleInGrid
from bot.services.ticket_notices import TicketNotifier
from models import Person


@dataclass(frozen=True)
class Actor:
    """The update's unit of work (built once per update by the update's middleware and passed
    down): its transaction, the moment it is handled at, the person behind it (``None`` for
    an update from no one, a channel post say), their active roles, their language, and how
    the people a ticket concerns are told."""

    session: AsyncSession
    now: datetime
    person: Person | None
    locale: str
    notifier: TicketNotifier
    roles: list[RoleInGrid] = field(default_factory=list)

    @property
    def who(self) -> Person:
        """The person behind the update, for handlers of updates that always come from
        someone (every message and button press from a user does)."""
        if self.person is None:
            raise LookupError("this update comes from no one")
        return self.person
