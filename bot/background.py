"""Long work an update hands off (后台任务): ledgers to build, files to import.

An update's transaction should be short: on SQLite it holds the write lock from its first
statement, so a 20-second export inside it keeps every other person waiting (and past the busy
timeout, failing). The handler answers at once ("正在生成…"), starts the work here, and
commits. The work runs in a task of its own: it reads in a read-only session (no write lock),
does its CPU-heavy part in a thread, and writes its result — an outbox row with the file, an
audit record — in one short transaction at the end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.db import SessionFactory

log = logging.getLogger(__name__)

Work = Callable[[], Awaitable[None]]


@dataclass
class BackgroundWork:
    """Runs handed-off work in tasks of its own, for as long as the bot runs.

    ``sessions`` write (one short transaction each, please); ``readers`` only read and take no
    write lock; ``wake_outbox`` is called after each piece of work, for what it queued.
    """

    sessions: SessionFactory
    readers: SessionFactory
    wake_outbox: Callable[[], None]
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def start(self, name: str, work: Work) -> None:
        """Run ``work`` in the background; a failure is logged (the work tells the person)."""
        task = asyncio.create_task(self._run(name, work), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, name: str, work: Work) -> None:
        try:
            await work()
        except Exception:
            log.exception("background work %s failed", name)
        finally:
            self.wake_outbox()

    @property
    def busy(self) -> bool:
        """Some work is still running (tests wait for this to end)."""
        return bool(self._tasks)

    async def close(self) -> None:
        """Stop what still runs (at shutdown)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
