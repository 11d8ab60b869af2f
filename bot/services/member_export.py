"""The residents ledger (人口台账): the people of the asker's households as an XLSX workbook.

As the other ledgers (:mod:`bot.services.exports`: scope, streaming, audit), with each field
as :data:`bot.services.personal_fields.ACCESS` allows on ``Screen.EXPORT`` in the member's
grid: shown, masked, or ``***``. A field the table gives "on request" is written in full —
the export is the request — and then the export is audited as sensitive and every page of
the workbook is watermarked with who exported it and when (also in the file's properties and
on a last sheet). Erased people (删除权) are not listed; the last sheet counts them.
The columns are the import's (:mod:`bot.services.member_import`), so a ledger exported in
full reads back.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.i18n import N_
from bot.labels import GENDER, PARTY_KIND, RELATION, RESIDENCE_STATUS
from models import (
    AuditLog,
    Gender,
    Grid,
    Household,
    HouseholdMember,
    PartyKind,
    Person,
    Relation,
    ResidenceStatus,
)

from .exports import EXPORT_BATCH, GRID_NAME, ledger_scope, stream_ledger, under_paths
from .id_numbers import IdVault
from .imports import Translate, display_phone
from .member_import import MEMBER_COLUMNS
from .members import HIDDEN, raw_value
from .members import masked as masked_value
from .people import RoleInGrid
from .personal_fields import Access, PersonalField, Screen, access
from .tabular import CellValue, Sheet

MEMBERS_SHEET = N_("Residents ledger")
ABOUT_SHEET = N_("About this export")
WATERMARK = N_("Exported by {name} on {time}. Personal information: for official use only.")
ERASED_COUNT = N_("People whose data was erased on request or after the retention period")

# the ledger's columns: (import column key or None, personal field or None)
_COLUMNS: tuple[tuple[str, PersonalField | None], ...] = (
    ("household", None),
    ("grid_code", None),
    ("grid_name", None),
    ("name", PersonalField.NAME),
    ("relation", PersonalField.RELATION),
    ("id_number", PersonalField.ID_NUMBER),
    ("gender", PersonalField.GENDER),
    ("birth_date", PersonalField.BIRTH_DATE),
    ("phone", PersonalField.PHONE),
    ("status", PersonalField.STATUS),
    ("moved_in", PersonalField.MOVED_IN),
    ("moved_out", PersonalField.MOVED_OUT),
    ("party", PersonalField.PARTY),
)


def _cell(name: PersonalField, level: Access, raw: object, translate: Translate) -> CellValue:
    if level == Access.HIDDEN:
        return HIDDEN
    if raw is None or raw == "":
        return None
    if level == Access.MASKED:
        shown = masked_value(name, raw)
        return None if shown is None else str(shown)
    if isinstance(raw, Relation):
        return translate(RELATION[raw])
    if isinstance(raw, Gender):
        return translate(GENDER[raw])
    if isinstance(raw, ResidenceStatus):
        return translate(RESIDENCE_STATUS[raw])
    if isinstance(raw, PartyKind):
        return translate(PARTY_KIND[raw])
    if name == PersonalField.PHONE:
        return display_phone(str(raw))
    if isinstance(raw, date):
        return raw.isoformat()
    return str(raw)


async def export_members(
    session: AsyncSession,
    actor: Person,
    roles: Sequence[RoleInGrid],
    *,
    vault: IdVault | None,
    now: datetime,
    translate: Translate,
    grid_code: str | None = None,
    masked: bool = False,
    audit_into: AsyncSession | None = None,
) -> bytes:
    """The residents ledger of the asker's grids as XLSX bytes; see the module."""
    scope = await ledger_scope(session, actor, roles, grid_code, masked, now)
    columns: list[Any] = [HouseholdMember, Household.code, Grid.code, Grid.name, Grid.path]
    statement = (
        select(*columns)
        .join(Household, col(Household.id) == col(HouseholdMember.household_id))
        .join(Grid, col(Grid.id) == col(Household.grid_id))
        .where(under_paths(scope.paths), col(HouseholdMember.forgotten_at).is_(None))
        .order_by(col(Grid.code), col(Household.code), col(HouseholdMember.id))
    )
    in_full: set[PersonalField] = set()

    def level(name: PersonalField, path: str) -> Access:
        found = access(roles, name, Screen.EXPORT, path)
        if masked and found > Access.MASKED:
            return Access.MASKED if name in _MASKABLE else found
        return found

    def line(record: Any) -> list[CellValue]:
        member, household_code, grid_code_, grid_name, path = record
        cells: list[CellValue] = [household_code, grid_code_, grid_name]
        for _key, name in _COLUMNS[3:]:
            assert name is not None
            found = level(name, path)
            raw = raw_value(member, name, vault)
            if found == Access.ON_REQUEST and raw:
                in_full.add(name)
            cells.append(_cell(name, found, raw, translate))
        return cells

    labels = {c.key: c.label for c in MEMBER_COLUMNS}
    headers = [
        labels.get(key, GRID_NAME if key == "grid_name" else N_("Grid code"))
        for key, _field in _COLUMNS
    ]
    watermark = translate(WATERMARK).format(
        name=actor.name, time=now.strftime("%Y-%m-%d %H:%M UTC")
    )
    sheet = Sheet(
        title=translate(MEMBERS_SHEET),
        headers=[translate(h) for h in headers],
        rows=(),
        widths=[20, 18, 20, 12, 10, 22, 6, 12, 14, 12, 12, 12, 14],
        text_columns=frozenset({0, 1, 5, 8}),
        auto_filter=True,
        watermark=watermark,
    )
    erased = int(
        (
            await session.exec(
                select(func.count())
                .select_from(HouseholdMember)
                .join(Household, col(Household.id) == col(HouseholdMember.household_id))
                .join(Grid, col(Grid.id) == col(Household.grid_id))
                .where(under_paths(scope.paths), col(HouseholdMember.forgotten_at).is_not(None))
            )
        ).one()
    )
    about = Sheet(
        title=translate(ABOUT_SHEET),
        headers=[watermark],
        rows=[[translate(ERASED_COUNT), erased]],
        widths=[80, 10],
    )
    rows = await session.stream(statement.execution_options(yield_per=EXPORT_BATCH))
    data, count, _unmasked = await stream_ledger(rows, sheet, line, lambda _: False, tail=[about])
    sensitive = sorted(f.value for f in in_full)
    (audit_into or session).add(
        AuditLog(
            at=now,
            actor_id=actor.id,
            action="export:members",
            object_type="grid" if scope.grid is not None else None,
            object_id=scope.grid.id if scope.grid is not None else None,
            detail=",".join(scope.paths),
            data={
                "rows": count,
                "sensitive": bool(sensitive),
                "fields_in_full": sensitive,
                "watermark": watermark,
            },
        )
    )
    return data


_MASKABLE = frozenset({PersonalField.ID_NUMBER, PersonalField.PHONE, PersonalField.BIRTH_DATE})
