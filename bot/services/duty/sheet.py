"""The duty rota from a sheet (值班表): CSV (UTF-8 or GBK) or XLSX, all rows or none.

Columns: the operator's phone (required), their name (optional, checked against the phone
when given), the shift's start and end (``2026-12-08 08:00``, or Excel date-times). Every bad
row is named — an unknown phone, someone who is not an operator of the centre, a name that is
not the phone's, an end before the start, a shift longer than :data:`~.rota.MAX_SHIFT`, one
already over, two rows overlapping — and with any, nothing changes. A good sheet replaces the
centre's shifts inside the span it covers (from its first start to its last end): the new
rota for those days.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import InvalidInput
from bot.i18n import N_, gettext_for
from bot.services.duty.rota import (
    BAD_TIME,
    MAX_SHIFT,
    check_span,
    editable_centre,
    operators,
    parse_when,
)
from bot.services.imports import ImportReport, RowError, normalise_phone
from bot.services.people import RoleInGrid
from bot.services.tabular import Column, Table, read_table, shown
from bot.settings import LOCALES
from models import AuditLog, DutyShift, DutySwap, Person

MAX_SHEET_BYTES = 2 * 1024 * 1024  # a month of shifts is a few kilobytes
MAX_SHIFTS = 2_000

COLUMNS: tuple[Column, ...] = (
    Column(
        "phone",
        N_("Phone"),
        ("手机号", "电话", "手机", "值班电话", "手機號", "電話"),
        required=True,
    ),
    Column("name", N_("Name"), ("姓名", "值班员", "值班員", "name")),
    Column(
        "start", N_("Starts"), ("开始", "开始时间", "開始", "開始時間", "start"), required=True
    ),
    Column("end", N_("Ends"), ("结束", "结束时间", "結束", "結束時間", "end"), required=True),
)

TOO_LARGE = N_("A duty rota sheet may be at most {limit} KB.")
TOO_MANY = N_("A duty rota sheet may hold at most {limit} shifts.")
EMPTY = N_("This cell is empty.")
UNKNOWN_PHONE = N_("Nobody with the phone number {value} is an operator of this centre.")
OTHER_NAME = N_("The phone number {value} belongs to {name}.")
OVERLAP_ROW = N_("It overlaps the shift in row {first}.")


@dataclass(frozen=True)
class _Parsed:
    row: int
    person: Person
    starts_at: datetime
    ends_at: datetime


def _labels() -> dict[str, set[str]]:
    return {c.key: {gettext_for(locale, c.label) for locale in LOCALES} for c in COLUMNS}


def read_rota_file(data: bytes) -> Table:
    """The table of an uploaded rota; raises an ``InvalidInput`` if it cannot be used."""
    if len(data) > MAX_SHEET_BYTES:
        raise InvalidInput(TOO_LARGE, limit=MAX_SHEET_BYTES // 1024)
    table = read_table(data, COLUMNS, _labels())
    if len(table.rows) > MAX_SHIFTS:
        raise InvalidInput(TOO_MANY, limit=MAX_SHIFTS)
    return table


async def import_rota(
    session: AsyncSession,
    actor: Person,
    roles: Sequence[RoleInGrid],
    data: bytes,
    now: datetime,
    *,
    tz: tzinfo,
) -> ImportReport:
    """Check every row; with no error, replace the shifts in the sheet's span (audited)."""
    grid = await editable_centre(session, actor, roles, now)
    assert grid.id is not None
    if len(data) > MAX_SHEET_BYTES:  # refused before the parse, which runs off the loop
        raise InvalidInput(TOO_LARGE, limit=MAX_SHEET_BYTES // 1024)
    table = await asyncio.to_thread(read_rota_file, data)
    by_phone = {p.phone: p for p in await operators(session, grid.id) if p.phone}
    errors: list[RowError] = []
    parsed: list[_Parsed] = []
    for row in table.rows:

        def bad(key: str, reason: str, **params: Any) -> None:
            column = table.headers.get(key, key)
            errors.append(RowError(row.number, column, reason, params))  # noqa: B023

        phone_text = table.cell(row, "phone")
        person = by_phone.get(normalise_phone(phone_text) or "") if phone_text else None
        if not phone_text:
            bad("phone", EMPTY)
        elif person is None:
            bad("phone", UNKNOWN_PHONE, value=shown(phone_text))
        name = table.cell(row, "name")
        if person is not None and name and name.strip() != person.name:
            bad("name", OTHER_NAME, value=shown(phone_text), name=person.name)
        times: list[datetime] = []
        for key in ("start", "end"):
            text = table.cell(row, key)
            if not text:
                bad(key, EMPTY)
                continue
            try:
                times.append(parse_when(text, tz))
            except InvalidInput:
                bad(key, BAD_TIME, value=shown(text))
        if len(times) == 2:
            problem = check_span(times[0], times[1], now)
            if problem is not None:
                bad("end", problem, days=MAX_SHIFT.days)
            elif person is not None:
                parsed.append(_Parsed(row.number, person, times[0], times[1]))
    ordered = sorted(parsed, key=lambda p: p.starts_at)
    for before, after in zip(ordered, ordered[1:], strict=False):
        if after.starts_at < before.ends_at:
            errors.append(
                RowError(
                    after.row,
                    table.headers.get("start", "start"),
                    OVERLAP_ROW,
                    {"first": before.row},
                )
            )
    if errors:
        return ImportReport(errors=tuple(sorted(errors, key=lambda e: (e.row, e.column))))
    if not ordered:
        return ImportReport()
    span_start, span_end = ordered[0].starts_at, max(p.ends_at for p in ordered)
    replaced = (
        await session.exec(
            select(DutyShift.id).where(
                DutyShift.grid_id == grid.id,
                col(DutyShift.starts_at) < span_end,
                col(DutyShift.ends_at) > span_start,
                col(DutyShift.ends_at) > now,
            )
        )
    ).all()
    if replaced:
        await session.exec(delete(DutySwap).where(col(DutySwap.shift_id).in_(replaced)))
        await session.exec(delete(DutyShift).where(col(DutyShift.id).in_(replaced)))
    for item in ordered:
        session.add(
            DutyShift(
                grid_id=grid.id,
                person_id=item.person.id or 0,
                starts_at=item.starts_at,
                ends_at=item.ends_at,
                source="sheet",
                created_by=actor.id,
                created_at=now,
            )
        )
    session.add(
        AuditLog(
            at=now,
            actor_id=actor.id,
            action="duty:import",
            object_type="grid",
            object_id=grid.id,
            data={
                "shifts": len(ordered),
                "replaced": len(replaced),
                "from": span_start.isoformat(),
                "until": span_end.isoformat(),
            },
        )
    )
    await session.flush()
    return ImportReport(created=len(ordered), updated=0, unchanged=0)
