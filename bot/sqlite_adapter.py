"""SQLAlchemy's aiosqlite adapter: a statement that cannot wait runs where it is asked for, any
other is one trip to the connection's thread.

aiosqlite runs every call on a ``sqlite3`` connection in a thread of its own and wakes the
event loop with the answer; SQLAlchemy's adapter makes four such calls a statement (open a
cursor, execute, fetch the rows, close the cursor). Each trip costs two thread wake-ups —
0.1–0.3 ms, more than SQLite takes for the statement itself. :class:`OneTripCursor` does all
four in one function, so a statement is one trip at most, and none at all once the statement
cannot wait for anyone:

* every transaction starts with ``BEGIN IMMEDIATE`` (:mod:`bot.db`). It is tried on the event
  loop's thread with no busy timeout; when another connection holds the write lock it fails at
  once and goes to the connection's thread, which waits its turn (``busy_timeout``) while the
  loop runs on (:meth:`OneTripConnection.begin_here`);
* with the write lock held, no statement of the transaction can wait for a lock (in WAL mode
  readers never block the writer), so they run on the event loop's thread, and so do the
  commit and the rollback. On SQLite every transaction of GridBot's holds the write lock from
  its first statement, so a long statement already keeps every other update waiting wherever
  it runs; here it also holds up the loop's sends for as long as it runs — less than the
  Python work of turning its rows into objects, which is on the loop anyway;
* the one thing that could make a commit slow, the WAL checkpoint SQLite runs at commit once
  the log is long, is switched off on our connections (``wal_autocheckpoint=0``); every
  :data:`CHECKPOINT_EVERY` commits of the engine, the committing connection runs a
  ``PASSIVE`` checkpoint on its thread.

Everything else (connecting, the batches of ``stream()``) is SQLAlchemy's own, on the thread.

The engine takes it as its DBAPI module (``create_async_engine(..., module=...)``, a
documented parameter): :func:`dbapi`. It relies on ``aiosqlite.Connection._execute`` (run a
function on the connection's thread), as aiosqlite's own cursor and SQLAlchemy's adapter do,
and opens every ``sqlite3`` connection with ``check_same_thread=False`` (the connection's
mutex keeps its calls one at a time, whichever thread makes them);
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
from sqlalchemy.util.concurrency import await_

CHECKPOINT_EVERY = 200
"""An engine's commits between two WAL checkpoints (SQLite's own default is a checkpoint once
the log holds 1,000 pages; an update writes a handful)."""

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


def _checkpoint(connection: sqlite3.Connection) -> None:
    """On the connection's thread: copy the WAL into the database as far as no reader needs it
    (``PASSIVE``: waits for no one)."""
    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").close()


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
            if begin is not None and adapted.begin_here(begin):
                begin = None
            try:
                if adapted.writing:
                    outcome = _run(connection._conn, operation, parameters, many, None)
                else:
                    outcome = await connection._execute(  # type: ignore[no-untyped-call]
                        _run, connection._conn, operation, parameters, many, begin
                    )
                    adapted.writing = begin is not None and outcome[-1]
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
    """The transaction's side of the trips saved:

    * the ``BEGIN`` goes with the transaction's first statement (:meth:`begin_with_next`),
      tried first on the event loop's thread (:meth:`begin_here`);
    * it knows whether its transaction holds the write lock (``writing``: then its statements,
      commit and rollback need no trip) and, from each trip, whether a transaction is open, so
      a rollback with nothing to roll back — the pool's reset of every connection it takes
      back after a commit — costs nothing.
    """

    __slots__ = ("in_transaction", "begin", "writing", "busy_timeout")
    _cursor_cls = OneTripCursor  # type: ignore[assignment]
    _ss_cursor_cls = StreamingCursor

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        self.in_transaction = True  # not known yet
        self.begin: str | None = None
        self.writing = False
        self.busy_timeout: int | None = None  # the connection's own, read on first use

    def begin_with_next(self, statement: str) -> None:
        """Send ``statement`` (``BEGIN IMMEDIATE``) on the same trip as the next statement; a
        transaction that ends before it sends any sends none."""
        self.begin = statement

    def begin_here(self, statement: str) -> bool:
        """Try ``statement`` on this thread without waiting: ``True`` if the transaction began
        (and holds the write lock), ``False`` if the database is busy — then it goes to the
        connection's thread, which waits for its turn."""
        connection: sqlite3.Connection = self._connection._conn
        if self.busy_timeout is None:
            self.busy_timeout = int(connection.execute("PRAGMA busy_timeout").fetchone()[0])
        connection.execute("PRAGMA busy_timeout=0")
        try:
            connection.execute(statement)
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                raise
            return False
        finally:
            connection.execute(f"PRAGMA busy_timeout={self.busy_timeout}")
        self.writing = self.in_transaction = True
        return True

    def commit(self) -> None:
        self.begin = None
        if self.writing and self._connection._connection is not None:
            try:
                self._connection._conn.commit()
            except Exception as error:
                self._handle_exception(error)
        elif self.in_transaction:
            super().commit()
        else:
            return  # no statement began a transaction: nothing to commit
        self.in_transaction = self.writing = False
        dbapi: OneTripDBAPI = self.dbapi
        dbapi.commits += 1
        if dbapi.commits % CHECKPOINT_EVERY == 0 and self._connection._connection is not None:
            await_(self._connection._execute(_checkpoint, self._connection._conn))

    def rollback(self) -> None:
        self.begin = None
        if self.writing and self._connection._connection is not None:
            try:
                self._connection._conn.rollback()
            except Exception as error:
                self._handle_exception(error)
        elif self.in_transaction:
            super().rollback()
        else:
            return  # nothing to roll back: the pool's reset after a commit costs nothing
        self.in_transaction = self.writing = False


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """One per engine; counts the engine's commits, for the WAL checkpoints."""

    def __init__(self, aiosqlite: Any, sqlite: Any) -> None:
        super().__init__(aiosqlite, sqlite)
        self.commits = 0

    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        # statements run on the loop's thread too (one at a time): SQLAlchemy says so for a
        # file, not for ``:memory:``
        kw["check_same_thread"] = False
        adapted = super().connect(*arg, **kw)
        return OneTripConnection(self, adapted._connection)


def dbapi() -> OneTripDBAPI:
    """The DBAPI module for ``create_async_engine(url, module=dbapi())``."""
    return OneTripDBAPI(aiosqlite, sqlite3)
