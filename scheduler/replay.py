"""Run the sweeps that would have fired in a window of time, at once and in order (tests).

The end-to-end harness moves a shared :class:`~bot.clock.FrozenClock` by minutes or days and
then calls :func:`run_due` (or :meth:`Replay.catch_up`): no sleeping, no real waiting. Fire
times come from the same APScheduler triggers the live scheduler uses, and each run is
recorded in ``JobRun`` by the same wrapper.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from bot.clock import FrozenClock
from scheduler.context import JobContext
from scheduler.registry import Registry
from scheduler.runs import RunOutcome, run_recorded


async def run_due(
    registry: Registry,
    ctx: JobContext,
    since: datetime,
    until: datetime,
    *,
    coalesce: bool = False,
    raise_errors: bool = False,
) -> list[RunOutcome]:
    """Run every sweep firing in ``(since, until]``, in fire-time order; return the runs.

    Each run sees a clock frozen at its own fire time (``ctx.clock`` is not moved), so a
    08:00 push replayed at noon still happens "at 08:00". ``coalesce`` runs each sweep once,
    at its last fire time in the window, as a scheduler that was down would on its return:
    use it to jump days ahead past minute-by-minute sweeps. A failing sweep is recorded and
    the others still run, as in production; ``raise_errors`` then re-raises the first
    failure once the whole window has run.
    """
    if until < since:
        raise ValueError("the window ends before it starts")
    outcomes: list[RunOutcome] = []
    for due in registry.due(since, until, coalesce=coalesce):
        outcomes.append(await run_recorded(due.job, replace(ctx, clock=FrozenClock(due.at))))
    failures = [outcome.error for outcome in outcomes if outcome.error is not None]
    if raise_errors and failures:
        raise failures[0]
    return outcomes


class Replay:
    """Remembers how far the sweeps have run, so each call runs only what came due since."""

    def __init__(self, registry: Registry, ctx: JobContext, start: datetime | None = None):
        self.registry = registry
        self.ctx = ctx
        self.reached = start if start is not None else ctx.clock.now()

    async def catch_up(
        self, *, coalesce: bool = False, raise_errors: bool = True
    ) -> list[RunOutcome]:
        """Run what fired between the last call and ``ctx.clock.now()``."""
        since, until = self.reached, self.ctx.clock.now()
        self.reached = until
        return await run_due(
            self.registry, self.ctx, since, until, coalesce=coalesce, raise_errors=raise_errors
        )
