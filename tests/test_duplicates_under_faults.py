"""Duplicates under faults (issue 18, item 12): the outbox sender against the sandbox while it
answers 20 % of sends with a 5xx, drops 10 % of the requests, loses 10 % of the answers, has a
429 storm, and the sender is restarted with requests on the wire. The sandbox's fault log says
of every request whether it acted and whether its answer came back (``bench.duplicates``)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from bench import duplicates

SEED = 2026


async def test_only_a_lost_answer_ever_makes_a_message_arrive_twice(
    engine: AsyncEngine, database_url: str
) -> None:
    figures = await duplicates.measure(
        database_url, chats=60, seed=SEED, restart_after=2 / 3, latency=0.2
    )
    assert figures.statuses == {"sent": 300} and figures.missing == 0  # nothing lost
    faults = figures.outcomes
    assert faults["drop"] and faults["error_500"] + faults["error_502"] and faults["429"]
    assert figures.lost_answers > 0 and figures.dups  # the mix did bite
    # none after a 5xx, a drop, a 429, an answered success or a stop: only after lost answers
    assert [d for d in figures.dups if d.cause != "lost_response"] == []
    assert len(figures.dups) <= figures.lost_answers
    assert all(not d.avoidable for d in figures.dups)
