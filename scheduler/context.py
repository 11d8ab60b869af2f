"""What a scheduled job receives: the session factory, the clock and the settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.clock import Clock
from bot.db import SessionFactory
from bot.settings import Settings


@dataclass(frozen=True)
class JobContext:
    """Everything a job may use; no aiogram objects (jobs reach Telegram through the outbox).

    ``wake_outbox`` tells an outbox sender in the same process that a job committed messages,
    so they go out now rather than at the sender's next poll. ``readers`` are sessions for
    long read-only work (on SQLite they take no write lock); without them jobs read in
    ``sessions``.
    """

    sessions: SessionFactory
    clock: Clock
    settings: Settings
    wake_outbox: Callable[[], None] | None = None
    readers: SessionFactory | None = None

    def reading(self) -> SessionFactory:
        return self.readers or self.sessions
