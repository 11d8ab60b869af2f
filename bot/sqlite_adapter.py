"""SQLAlchemy's aiosqlite adapter, with each statement one trip to the connection's thread.

aiosqlite runs every call on a ``sqlite3`` connection in a thread of its own and wakes the
event loop with the answer; SQLAlchemy's adapter makes four such calls a statement (open a
cursor, execute, fetch the rows, close the cursor). Each trip costs the loop a wake-up — about
0.1 ms here, more than SQLite takes for the statement itself, so they were most of an update's
database time. :class:`OneTripCursor` does all four in one function on that thread, so a
statement costs one trip. Everything else (the connection, commit, rollback, the batches of
``stream()``) is SQLAlchemy's own.

The engine takes it as its DBAPI module (``create_async_engine(..., module=...)``, a
documented parameter): :func:`dbapi`. It relies on ``aiosqlite.Connection._execute`` (run a
function on the connection's thread), as aiosqlite's own cursor and SQLAlchemy's adapter do;
``tests/test_sqlite_adapter.py`` holds it to the behaviour the code needs.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
    AsyncAdapt_aiosqlite_ss_cursor,
)
from sqlalchemy.util import EMPTY_DICT

Outcome = tuple[Any, list[Any] | None, int, int | None, bool]
"""What one trip brings back: description, rows (None for a statement without any),
rowcount, lastrowid, and whether a transaction is open afterwards."""


def _run(
    connection: sqlite3.Connection, operation: str, parameters: Any, many: bool, begin: str | None
) -> Outcome:
    """On the connection's thread: the transaction's ``BEGIN`` if it is still to be sent, and
    the whole life of one cursor."""
    if begin is not None:
        connection.execute(begin)
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else None
        return description, rows, cursor.rowcount, cursor.lastrowid, connection.in_transaction
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A buffered cursor whose statement, rows and close are one trip to the thread."""

    __slots__ = ("_description", "_rowcount", "_lastrowid")

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        # no aiosqlite cursor: each statement opens and closes its own, on the thread
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return 1

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        pass  # every row is fetched at once

    async def _trip(self, operation: str, parameters: Any, many: bool) -> None:
        adapted: OneTripConnection = self._adapt_connection  # type: ignore[assignment]
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        async with adapted._execute_mutex:
            begin, adapted.begin = adapted.begin, None
            try:
                outcome: Outcome = await connection._execute(  # type: ignore[no-untyped-call]
                    _run, connection._conn, operation, parameters, many, begin
                )
            except BaseException:
                adapted.in_transaction = True  # not known: the next rollback goes through
                raise
        self._description, rows, self._rowcount, self._lastrowid, adapted.in_transaction = outcome
        self._rows = deque(rows) if rows else deque()

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        await self._trip(operation, parameters, many=False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        await self._trip(operation, seq_of_parameters, many=True)

    async def _async_soft_close(self) -> None:
        pass  # closed on the thread already

    def close(self) -> None:
        self._rows.clear()

    def nextset(self) -> None:
        return None  # SQLite gives one result set a statement: there is never a next one

    def setinputsizes(self, *inputsizes: Any) -> None:
        pass


class StreamingCursor(AsyncAdapt_aiosqlite_ss_cursor):
    """SQLAlchemy's server-side cursor (``stream()``), which fetches in batches, so it keeps
    aiosqlite's cursor; it sends a pending ``BEGIN`` first, on a trip of its own."""

    __slots__ = ()

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        adapted: OneTripConnection = self._adapt_connection  # type: ignore[assignment]
        begin, adapted.begin = adapted.begin, None
        adapted.in_transaction = True  # not known from here: a rollback goes through
        if begin is not None:
            await self._connection.execute(begin)
        return await super()._execute_async(operation, parameters)


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    """Two more trips saved per transaction:

    * the ``BEGIN`` goes with the transaction's first statement (:meth:`begin_with_next`);
    * it knows, from each trip, whether a transaction is open, so a rollback with nothing to
      roll back — the pool's reset of every connection it takes back after a commit — costs
      no trip.
    """

    __slots__ = ("in_transaction", "begin")
    _cursor_cls = OneTripCursor  # type: ignore[assignment]
    _ss_cursor_cls = StreamingCursor

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        self.in_transaction = True  # not known yet
        self.begin: str | None = None

    def begin_with_next(self, statement: str) -> None:
        """Send ``statement`` (``BEGIN IMMEDIATE``) on the same trip as the next statement; a
        transaction that ends before it sends any sends none."""
        self.begin = statement

    def commit(self) -> None:
        self.begin = None
        self.in_transaction = True  # until the commit is known to have happened
        super().commit()
        self.in_transaction = False

    def rollback(self) -> None:
        self.begin = None
        if self.in_transaction:
            super().rollback()
            self.in_transaction = False


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        adapted = super().connect(*arg, **kw)
        return OneTripConnection(self, adapted._connection)


def dbapi() -> OneTripDBAPI:
    """The DBAPI module for ``create_async_engine(url, module=dbapi())``."""
    return OneTripDBAPI(aiosqlite, sqlite3)
