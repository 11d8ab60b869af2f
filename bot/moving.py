"""Moving a community to another database: ``gridbot export-all`` / ``gridbot import-all``.

The path from a pilot to a city: the pilot's SQLite database is exported to one portable file
and imported into a migrated, empty PostgreSQL database (or the other way round). The file is
a zip: ``manifest.json`` (format, version, migration revision, each table's columns and row
count) and ``tables/<table>.jsonl``, one JSON object per row. Types survive the trip: datetimes
as ISO 8601 with their offset, dates and times as ISO 8601, bytes as base64, decimals and UUIDs
as strings, JSON columns as JSON.

Export reads every table in one read-only transaction (one consistent moment, even while the
bot runs). Import refuses a database that is not at the same migration or already holds a row,
then inserts every table in one transaction, parents before children (foreign-key order); a
reference that points forward in that order (a grid's parent, a person's household while a
household names its worker) is inserted empty and filled in once every row is there. On
PostgreSQL each table's id sequence is then moved past the highest id, so new rows get fresh
ids. Any bad row undoes the whole import and says which row of which table.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import secrets
import uuid
import zipfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Table, bindparam, func, select, text, update
from sqlalchemy import types as sa_types
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import NullPool

import models
from bot import migrate, startup
from bot.backup import NO_TARGET_FOLDER
from bot.db import READ_ONLY, create_engine
from bot.i18n import N_
from bot.startup import StartupProblem

FORMAT = "gridbot-export"
VERSION = 1
MANIFEST = "manifest.json"
BATCH = 1000  # rows per INSERT statement

EXPORTED = N_("Exported {rows} rows of {tables} tables to {path}.")
IMPORTED = N_("Imported {rows} rows of {tables} tables from {path}.")
EXPORT_EXISTS = N_("{path} already exists. Choose a new file name for the export.")
NO_EXPORT_FILE = N_("There is no export file {path}.")
NOT_AN_EXPORT = N_("{path} is not a GridBot export made by gridbot export-all ({reason}).")
OTHER_REVISION = N_(
    "{path} was exported at migration {revision}, but this GridBot is at {current}. Export "
    "and import with the same GridBot version (run gridbot db upgrade on the old database "
    "first)."
)
NOT_EMPTY = N_(
    "The database already holds data (table {table}). import-all loads only into an empty "
    "database: create a new one and run gridbot db upgrade on it."
)
BAD_ROW = N_(
    "Row {row} of table {table} in {path} cannot be imported ({reason}). Nothing was imported."
)
IMPORT_FAILED = N_("The import failed ({reason}). Nothing was imported.")
EXPORT_FAILED = N_("The export could not be written to {path} ({reason}).")


@dataclass(frozen=True)
class Moved:
    tables: int
    rows: int


class BadValue(ValueError):
    """A value in the file that does not fit its column."""


def tables() -> list[Table]:
    """Every table GridBot keeps, parents before children."""
    return list(models.metadata.sorted_tables)


# -- values -----------------------------------------------------------------------------------


def _kind(column: Column[Any]) -> str:
    kind = column.type
    if isinstance(kind, sa_types.TypeDecorator):
        kind = kind.impl_instance
    for type_, name in (
        (sa_types.DateTime, "datetime"),
        (sa_types.Date, "date"),
        (sa_types.Time, "time"),
        (sa_types.Interval, "interval"),
        (sa_types.LargeBinary, "bytes"),
        (sa_types.JSON, "json"),
        (sa_types.Boolean, "bool"),
        (sa_types.Float, "float"),
        (sa_types.Numeric, "decimal"),
        (sa_types.Integer, "int"),
        (sa_types.Uuid, "uuid"),
        (sa_types.String, "str"),
    ):
        if isinstance(kind, type_):
            return name
    return "json"


def encode(kind: str, value: Any) -> Any:
    """A column's value as JSON can carry it."""
    if value is None:
        return None
    if kind in ("datetime", "date", "time"):
        return value.isoformat()
    if kind == "interval":
        return value.total_seconds()
    if kind == "bytes":
        return base64.b64encode(value).decode("ascii")
    if kind in ("decimal", "uuid"):
        return str(value)
    return value


def decode(kind: str, value: Any) -> Any:
    """The value a column takes from its JSON form; :class:`BadValue` if it does not fit."""
    if value is None:
        return None
    try:
        if kind == "datetime":
            moment = datetime.fromisoformat(_text(value))
            if moment.tzinfo is None:
                raise BadValue("a datetime without its UTC offset")
            return moment.astimezone(UTC)
        if kind == "date":
            return date.fromisoformat(_text(value))
        if kind == "time":
            return time.fromisoformat(_text(value))
        if kind == "interval":
            return timedelta(seconds=_number(value))
        if kind == "bytes":
            return base64.b64decode(_text(value), validate=True)
        if kind == "decimal":
            return Decimal(_text(value))
        if kind == "uuid":
            return uuid.UUID(_text(value))
        if kind == "bool":
            if not isinstance(value, bool):
                raise BadValue(f"{value!r} is not true or false")
            return value
        if kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise BadValue(f"{value!r} is not a whole number")
            return value
        if kind == "float":
            return _number(value)
        if kind == "str":
            return _text(value)
    except (ValueError, InvalidOperation, OverflowError) as error:
        if isinstance(error, BadValue):
            raise
        raise BadValue(str(error)[:120] or type(error).__name__) from None
    return value  # json


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise BadValue(f"{value!r} is not text")
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadValue(f"{value!r} is not a number")
    return float(value)


# -- export -----------------------------------------------------------------------------------


@asynccontextmanager
async def _engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    startup.check_sqlite_file(database_url)
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        try:
            await startup.check_database(engine, database_url)
        except startup.DATABASE_ERRORS as error:
            raise startup.explain_database_error(error, database_url) from None
        yield engine
    finally:
        await engine.dispose()


def export_all(database_url: str, path: Path) -> Moved:
    """Write every table of the database at ``database_url`` to the zip at ``path`` (runs its
    own event loop: call it from sync code or a thread)."""
    path = path.expanduser().absolute()
    if path.exists():
        raise StartupProblem(EXPORT_EXISTS, path=str(path))
    if not path.parent.is_dir():
        raise StartupProblem(NO_TARGET_FOLDER, folder=str(path.parent))
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
    try:
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            moved = asyncio.run(_export_from(database_url, archive))
        os.replace(partial, path)
    except OSError as error:
        raise StartupProblem(EXPORT_FAILED, path=str(path), reason=str(error)[:200]) from None
    finally:
        partial.unlink(missing_ok=True)
    return moved


async def _export_from(database_url: str, archive: zipfile.ZipFile) -> Moved:
    async with _engine(database_url) as engine:
        options: dict[str, Any] = {READ_ONLY: True}
        if engine.dialect.name == "postgresql":
            options.update(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        async with engine.execution_options(**options).connect() as connection, connection.begin():
            return await _export(connection, archive)


async def _export(connection: AsyncConnection, archive: zipfile.ZipFile) -> Moved:
    revision = await connection.scalar(text("SELECT version_num FROM alembic_version"))
    listed: list[dict[str, Any]] = []
    total = 0
    for table in tables():
        kinds = {column.name: _kind(column) for column in table.columns}
        count = 0
        with archive.open(f"tables/{table.name}.jsonl", "w") as raw:
            out = io.TextIOWrapper(raw, encoding="utf-8", newline="\n")
            result = await connection.stream(select(table).order_by(*table.primary_key.columns))
            async for rows in result.mappings().partitions(BATCH):
                for row in rows:
                    record = {k: encode(kinds[k], v) for k, v in row.items()}
                    out.write(json.dumps(record, ensure_ascii=False) + "\n")
                    count += 1
            out.flush()
            out.detach()
        listed.append({"name": table.name, "rows": count, "columns": kinds})
        total += count
    with archive.open("tables/alembic_version.jsonl", "w") as raw:
        raw.write((json.dumps({"version_num": revision}) + "\n").encode())
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "revision": revision,
        "dialect": connection.dialect.name,
        "tables": listed,
    }
    archive.writestr(MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1))
    return Moved(len(listed), total)


# -- import -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Listed:
    table: Table
    rows: int


def read_manifest(archive: zipfile.ZipFile, path: Path) -> tuple[str, list[_Listed]]:
    """The export's revision and tables (in this code's insert order), checked against the
    tables this code knows."""

    def refuse(reason: str) -> StartupProblem:
        return StartupProblem(NOT_AN_EXPORT, path=str(path), reason=reason[:200])

    try:
        manifest = json.loads(archive.read(MANIFEST).decode("utf-8"))
    except KeyError:
        raise refuse(f"no {MANIFEST}") from None
    except (ValueError, zipfile.BadZipFile, OSError) as error:
        raise refuse(f"{MANIFEST}: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise refuse(f"{MANIFEST} does not name the format {FORMAT}")
    if manifest.get("version") != VERSION:
        raise refuse(f"format version {manifest.get('version')!r}, this GridBot reads {VERSION}")
    revision, listed = manifest.get("revision"), manifest.get("tables")
    if not isinstance(revision, str) or not isinstance(listed, list):
        raise refuse(f"{MANIFEST} has no revision or no table list")
    counts: dict[str, int] = {}
    for entry in listed:
        if not isinstance(entry, dict):
            raise refuse(f"{MANIFEST}: {entry!r} is not a table")
        name, rows = entry.get("name"), entry.get("rows")
        if not isinstance(name, str) or isinstance(rows, bool) or not isinstance(rows, int):
            raise refuse(f"{MANIFEST}: {entry!r} is not a table")
        counts[name] = rows
    known = tables()
    if revision == migrate.head_revision():
        missing = {t.name for t in known} - set(counts)
        unknown = set(counts) - {t.name for t in known}
        if missing or unknown:
            raise refuse(f"tables missing {sorted(missing)}, unknown {sorted(unknown)}")
    return revision, [_Listed(t, counts.get(t.name, 0)) for t in known]


def _rows(
    archive: zipfile.ZipFile, table: Table, path: Path
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each row of ``table`` in the export, numbered from 1, decoded for its columns."""
    kinds = {column.name: _kind(column) for column in table.columns}
    try:
        raw = archive.open(f"tables/{table.name}.jsonl")
    except KeyError:
        raise StartupProblem(
            NOT_AN_EXPORT, path=str(path), reason=f"no tables/{table.name}.jsonl"
        ) from None
    with raw, io.TextIOWrapper(raw, encoding="utf-8") as lines:
        number = 0
        try:
            for line in lines:
                if not line.strip():
                    continue
                number += 1
                yield number, _decode_row(table, kinds, line)
        except (BadValue, ValueError) as error:  # JSON, UTF-8 and value errors
            raise StartupProblem(
                BAD_ROW, row=str(number), table=table.name, path=str(path), reason=str(error)[:200]
            ) from None
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            raise StartupProblem(NOT_AN_EXPORT, path=str(path), reason=str(error)[:200]) from None


def _decode_row(table: Table, kinds: dict[str, str], line: str) -> dict[str, Any]:
    record = json.loads(line)
    if not isinstance(record, dict):
        raise BadValue("not a JSON object")
    if set(record) != set(kinds):
        unknown, missing = set(record) - set(kinds), set(kinds) - set(record)
        raise BadValue(f"unknown columns {sorted(unknown)}, missing {sorted(missing)}")
    row: dict[str, Any] = {}
    for name, value in record.items():
        try:
            row[name] = decode(kinds[name], value)
        except BadValue as error:
            raise BadValue(f"{name}: {error}") from None
    for column in table.primary_key.columns:
        if row.get(column.name) is None:
            raise BadValue(f"{column.name}: no value")
    return row


def _forward_references(order: list[Table]) -> dict[str, list[str]]:
    """Per table, the foreign-key columns that point to itself or to a later table: inserted
    empty, filled in at the end."""
    position = {table.name: index for index, table in enumerate(order)}
    forward: dict[str, list[str]] = {}
    for table in order:
        for key in table.foreign_keys:
            if position[key.column.table.name] >= position[table.name]:
                assert key.parent.nullable, f"{table.name}.{key.parent.name} must be nullable"
                forward.setdefault(table.name, []).append(key.parent.name)
    return forward


def import_all(database_url: str, path: Path) -> Moved:
    """Load the export at ``path`` into the empty, migrated database at ``database_url`` (runs
    its own event loop: call it from sync code or a thread)."""
    path = path.expanduser().absolute()
    if not path.is_file():
        raise StartupProblem(NO_EXPORT_FILE, path=str(path))
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise StartupProblem(NOT_AN_EXPORT, path=str(path), reason=str(error)[:200]) from None
    with archive:
        revision, listed = read_manifest(archive, path)
        head = migrate.head_revision() or "-"
        if revision != head:
            raise StartupProblem(
                OTHER_REVISION, path=str(path), revision=revision[:40], current=head
            )
        total = asyncio.run(_import_into(database_url, archive, listed, path))
    return Moved(len(listed), total)


async def _import_into(
    database_url: str, archive: zipfile.ZipFile, listed: list[_Listed], path: Path
) -> int:
    async with _engine(database_url) as engine:
        try:
            async with engine.begin() as connection:
                await _refuse_data(connection)
                return await _import(connection, archive, listed, path)
        except SQLAlchemyError as error:
            cause = getattr(error, "orig", None) or error
            reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
            raise StartupProblem(IMPORT_FAILED, reason=reason[:200]) from None


async def _refuse_data(connection: AsyncConnection) -> None:
    for table in tables():
        if await connection.scalar(select(func.count()).select_from(table)):
            raise StartupProblem(NOT_EMPTY, table=table.name)


async def _import(
    connection: AsyncConnection, archive: zipfile.ZipFile, listed: list[_Listed], path: Path
) -> int:
    forward = _forward_references([entry.table for entry in listed])
    later: dict[tuple[str, tuple[str, ...]], list[dict[str, Any]]] = {}
    total = 0
    for entry in listed:
        table, deferred = entry.table, forward.get(entry.table.name, [])
        keys = [column.name for column in table.primary_key.columns]
        batch: list[dict[str, Any]] = []
        count = 0
        for count, row in _rows(archive, table, path):  # noqa: B007 - the last number counts
            filled = {name: row[name] for name in deferred if row.get(name) is not None}
            if filled:
                group = later.setdefault((table.name, tuple(sorted(filled))), [])
                group.append({**{f"k_{k}": row[k] for k in keys}, **_prefixed(filled)})
                row = {**row, **dict.fromkeys(filled)}
            batch.append(row)
            if len(batch) >= BATCH:
                await _insert(connection, table, batch)
                batch = []
        if batch:
            await _insert(connection, table, batch)
        if count != entry.rows:
            raise StartupProblem(
                NOT_AN_EXPORT,
                path=str(path),
                reason=f"{table.name} holds {count} rows, the manifest says {entry.rows}",
            )
        total += count
    by_name = {entry.table.name: entry.table for entry in listed}
    for (name, columns), rows in later.items():  # one statement per table and columns
        table = by_name[name]
        statement = (
            update(table)
            .where(*(column == bindparam(f"k_{column.name}") for column in table.primary_key))
            .values({column: bindparam(f"v_{column}") for column in columns})
        )
        await connection.execute(statement, rows)
    if connection.dialect.name == "postgresql":
        await _reset_sequences(connection)
    return total


def _prefixed(values: dict[str, Any]) -> dict[str, Any]:
    return {f"v_{name}": value for name, value in values.items()}


async def _insert(connection: AsyncConnection, table: Table, rows: list[dict[str, Any]]) -> None:
    await connection.execute(table.insert(), rows)


async def _reset_sequences(connection: AsyncConnection) -> None:
    """Move each serial id's sequence past the highest id imported (PostgreSQL)."""
    quote = connection.dialect.identifier_preparer.quote
    for table in tables():
        keys = list(table.primary_key.columns)
        if len(keys) != 1 or _kind(keys[0]) != "int":
            continue
        column = keys[0].name
        await connection.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence(:table, :column), "  # noqa: S608
                f"COALESCE(MAX({quote(column)}), 0) + 1, false) FROM {quote(table.name)}"
            ),
            {"table": quote(table.name), "column": column},
        )
