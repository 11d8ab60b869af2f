"""Counting the SQL statements an engine runs (how many round trips a piece of work costs)."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine


def describe(statement: str) -> str:
    """``SELECT fsm_record``, ``UPDATE outbox``, ``BEGIN``: the verb and the table."""
    words = statement.replace('"', "").split()
    verb = words[0].upper()
    if verb in ("SELECT", "DELETE") and (table := _outer_from(words)):
        return f"{verb} {table}"
    if verb == "INSERT":
        return f"INSERT {words[2]}"
    if verb == "UPDATE":
        return f"UPDATE {words[1]}"
    return verb


def _outer_from(words: list[str]) -> str | None:
    """The table after the statement's own ``FROM`` (not a subquery's, in parentheses)."""
    depth = 0
    for index, word in enumerate(words[:-1]):
        if word == "FROM" and depth == 0:
            return words[index + 1].split("(")[0]  # a table, or a function's name
        depth += word.count("(") - word.count(")")
    return None


class Statements:
    """Records what ``engine`` runs while the ``with`` block lasts.

    ``seen`` has every statement (:func:`describe`d); ``transactions`` counts the transactions
    begun (on SQLite the ``BEGIN IMMEDIATE`` goes with the first statement, asyncpg begins its
    own: neither shows in ``seen``).
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine.sync_engine
        self.seen: list[str] = []
        self.transactions = 0

    def __enter__(self) -> Statements:
        event.listen(self.engine, "before_cursor_execute", self._statement)
        event.listen(self.engine, "begin", self._begin)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        event.remove(self.engine, "before_cursor_execute", self._statement)
        event.remove(self.engine, "begin", self._begin)

    def _statement(self, _connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.seen.append(describe(statement))

    def _begin(self, _connection: Any) -> None:
        self.transactions += 1

    def on(self, table: str) -> list[str]:
        """The statements on ``table``, in order."""
        return [s for s in self.seen if s.endswith(f" {table}")]

    def without_begin(self) -> list[str]:
        return [s for s in self.seen if s != "BEGIN"]
