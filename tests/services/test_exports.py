"""Ledger exports: scope, masking, formula neutralisation, audit, and the round trip through
the import (the XLSX is read back with openpyxl)."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import FrozenClock
from bot.errors import NotAllowed, NotFound
from bot.i18n import gettext_for
from bot.services import exports
from bot.services.exports import HIDDEN, export_households, export_people, mask_phone
from bot.services.imports import (
    ImportReport,
    import_households,
    import_people,
    parse_categories,
)
from bot.services.permissions import ROLE_ACTIONS, Action
from models import AuditLog, Household, HouseholdCategory, Person, Role, RoleAssignment
from models.registry import Department

from .test_imports import (
    EAST_2,
    EAST_A,
    EAST_B,
    STREET,
    WEST_A,
    WORKER_A,
    Community,
    build_community,
    household,
    run_import,
    to_csv,
)


def in_(locale: str) -> Callable[[str], str]:
    return lambda msgid: gettext_for(locale, msgid)


def read_back(data: bytes) -> list[dict[str, Any]]:
    """The first sheet as dicts by header (cells as openpyxl reads them)."""
    sheet = load_workbook(io.BytesIO(data)).worksheets[0]
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    header = rows[0]
    return [dict(zip(header, row, strict=True)) for row in rows[1:]]


async def loaded(session: AsyncSession, clock: FrozenClock) -> Community:
    """The community with six households: three in EAST_A, two in EAST_B, one in WEST_A."""
    community = await build_community(session, clock.now())
    rows = [household(n) for n in (1, 2, 3)]
    rows += [household(n, grid=EAST_B) for n in (1, 2)]
    rows += [household(1, grid=WEST_A, categories="重残")]
    report = await run_import(session, community, to_csv(rows).encode())
    assert report == ImportReport(created=6)
    return community


async def export(
    session: AsyncSession,
    community: Community,
    who: Person,
    locale: str = "en",
    **options: Any,
) -> bytes:
    roles = await community.roles(session, who)
    return await export_households(
        session, who, roles, now=community.now, translate=in_(locale), **options
    )


async def test_the_admin_exports_every_household_with_headers_in_their_language(
    session: AsyncSession, clock: FrozenClock
) -> None:
    community = await loaded(session, clock)
    rows = read_back(await export(session, community, community.admin, "en"))
    assert [r["Household code"] for r in rows] == [
        f"{EAST_A}001",
        f"{EAST_A}002",
        f"{EAST_A}003",
        f"{EAST_B}001",
        f"{EAST_B}002",
        f"{WEST_A}001",
    ]
    third = rows[2]
    assert third["Contact phone"] == "13912340003"
    # listed the English way, and read back by the import
    assert third["Household categories"] == "subsistence / five-guarantee, empty-nest elderly"
    assert HouseholdCategory(parse_categories(third["Household categories"])) == (
        HouseholdCategory.SUBSISTENCE | HouseholdCategory.EMPTY_NEST
    )
    assert third["Key household"] == "yes"
    assert third["Responsible grid worker (phone)"] == WORKER_A[3:]
    assert third["Grid worker's name"] == "王芳"
    assert third["Grid name"] == "杏东花园1号楼"
    assert third["Household members"] == 4


async def test_a_head_exports_only_the_subtree_they_lead(
    session: AsyncSession, clock: FrozenClock
) -> None:
    community = await loaded(session, clock)
    rows = read_back(await export(session, community, community.head))
    assert {r["Grid code"] for r in rows} == {EAST_A, EAST_B}
    narrowed = read_back(await export(session, community, community.head, grid_code=EAST_B))
    assert {r["Grid code"] for r in narrowed} == {EAST_B}
    # asking for the whole street gives the part of it the head holds
    wide = read_back(await export(session, community, community.head, grid_code=STREET))
    assert len(wide) == 5
    with pytest.raises(NotAllowed) as refused:
        await export(session, community, community.head, grid_code=WEST_A)
    assert refused.value.audit is not None
    with pytest.raises(NotFound):
        await export(session, community, community.head, grid_code="3502110010019999")


async def test_workers_and_residents_cannot_export(
    session: AsyncSession, clock: FrozenClock
) -> None:
    community = await loaded(session, clock)
    with pytest.raises(NotAllowed):
        await export(session, community, community.workers[WORKER_A])


async def test_a_masked_ledger_hides_phones_and_categories(
    session: AsyncSession, clock: FrozenClock
) -> None:
    community = await loaded(session, clock)
    rows = read_back(await export(session, community, community.admin, masked=True))
    third = rows[2]
    assert third["Contact phone"] == "139****0003"
    assert third["Household categories"] == HIDDEN
    assert third["Key household"] == HIDDEN
    assert third["Business household"] == "no"  # not sensitive
    assert third["Responsible grid worker (phone)"] == WORKER_A[3:]  # public (公示)


async def test_without_read_sensitive_the_ledger_is_masked(
    session: AsyncSession, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    community = await loaded(session, clock)
    monkeypatch.setitem(ROLE_ACTIONS, Role.HEAD, frozenset({Action.VIEW, Action.EXPORT}))
    rows = read_back(await export(session, community, community.head))
    assert {r["Contact phone"] for r in rows} == {f"139****000{n}" for n in (1, 2, 3)}
    assert {r["Household categories"] for r in rows} == {HIDDEN}
    audit = (
        await session.exec(select(AuditLog).where(AuditLog.action == "export:households"))
    ).one()
    assert audit.data == {"rows": 5, "unmasked_rows": 0, "sensitive": False}


async def test_cells_that_look_like_formulas_are_neutralised(
    session: AsyncSession, clock: FrozenClock
) -> None:
    community = await loaded(session, clock)
    hostile = {
        '=HYPERLINK("http://evil.example","点我")': '\'=HYPERLINK("http://evil.example","点我")',
        "+1+1": "'+1+1",
        "-2+3": "'-2+3",
        "@SUM(A1:A9)": "'@SUM(A1:A9)",
        "\tcmd": "'\tcmd",
        "\r=1": "'\n=1",  # XML reads a carriage return back as a line feed
        "正常备注": "正常备注",
    }
    grid_id = community.grids[EAST_A].id or 0
    for n, (note, _) in enumerate(hostile.items(), start=100):
        session.add(
            Household(
                code=f"F{n}",
                grid_id=grid_id,
                address=note,
                head_name=note[:50],
                note=note,
                created_at=clock.now(),
                updated_at=clock.now(),
            )
        )
    await session.flush()
    rows = {
        r["Household code"]: r
        for r in read_back(await export(session, community, community.admin))
    }
    for n, expected in enumerate(hostile.values(), start=100):
        row = rows[f"F{n}"]
        assert row["Remarks"] == expected
        assert row["Household address"] == expected
    sheet = load_workbook(
        io.BytesIO(await export(session, community, community.admin))
    ).worksheets[0]
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)


@pytest.mark.parametrize("locale", ["zh_Hans", "zh_Hant", "en"])
async def test_an_exported_ledger_imports_back_unchanged(
    session: AsyncSession, clock: FrozenClock, locale: str
) -> None:
    community = await loaded(session, clock)
    ledger = await export(session, community, community.admin, locale)
    roles = await community.roles(session, community.admin)
    report = await import_households(session, community.admin, roles, ledger, now=clock.now())
    assert report == ImportReport(unchanged=6)


async def test_every_export_is_audited(session: AsyncSession, clock: FrozenClock) -> None:
    community = await loaded(session, clock)
    await export(session, community, community.head, grid_code=EAST_2)
    audit = (
        await session.exec(select(AuditLog).where(AuditLog.action == "export:households"))
    ).one()
    assert audit.actor_id == community.head.id
    assert audit.object_id == community.grids[EAST_2].id
    assert audit.data == {"rows": 5, "unmasked_rows": 5, "sensitive": True}


async def test_a_ledger_read_in_several_batches_keeps_every_row_in_order(
    session: AsyncSession, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A city's ledger is read and written a batch at a time; the batches join up."""
    monkeypatch.setattr(exports, "EXPORT_BATCH", 4)
    community = await loaded(session, clock)
    whole = read_back(await export(session, community, community.admin, "en"))
    monkeypatch.setattr(exports, "EXPORT_BATCH", 1)
    one_by_one = read_back(await export(session, community, community.admin, "en"))
    assert len(whole) == 6
    assert one_by_one == whole
    audits = (
        await session.exec(select(AuditLog).where(AuditLog.action == "export:households"))
    ).all()
    assert [a.data["rows"] for a in audits] == [6, 6]
    roles = await community.roles(session, community.admin)
    people = read_back(
        await export_people(
            session, community.admin, roles, now=community.now, translate=in_("en")
        )
    )
    assert len(people) > 1


# --- people -----------------------------------------------------------------------------------


async def test_the_people_ledger_lists_staff_roles_and_imports_back(
    session: AsyncSession, clock: FrozenClock
) -> None:
    community = await build_community(session, clock.now())
    police = Department(
        name="杏林派出所",
        code="police",
        grid_id=community.grids[STREET].id or 0,
        created_at=clock.now(),
    )
    session.add(police)
    resident = Person(
        name="居民甲", phone="+8613600000001", created_at=clock.now(), updated_at=clock.now()
    )
    session.add(resident)
    await session.flush()
    session.add(
        RoleAssignment(
            person_id=resident.id or 0,
            role=Role.RESIDENT,
            grid_id=community.grids[EAST_A].id or 0,
            created_at=clock.now(),
        )
    )
    officer = Person(
        name="孙警官",
        phone="+8613700000002",
        telegram_id=42,
        created_at=clock.now(),
        updated_at=clock.now(),
    )
    session.add(officer)
    await session.flush()
    session.add(
        RoleAssignment(
            person_id=officer.id or 0,
            role=Role.DEPARTMENT,
            grid_id=community.grids[STREET].id or 0,
            department_id=police.id,
            created_at=clock.now(),
        )
    )
    await session.flush()
    roles = await community.roles(session, community.admin)
    data = await export_people(
        session, community.admin, roles, now=clock.now(), translate=in_("zh_Hans")
    )
    rows = read_back(data)
    names = {r[gettext_for("zh_Hans", "Full name")] for r in rows}
    assert "居民甲" not in names
    assert {"管理员", "孙警官", "王芳", "李娜", "网格长老陈"} <= names
    officer_row = next(r for r in rows if r[gettext_for("zh_Hans", "Full name")] == "孙警官")
    assert officer_row[gettext_for("zh_Hans", "Department (code or name)")] == "police"
    assert officer_row[gettext_for("zh_Hans", "Uses the bot")] == gettext_for("zh_Hans", "yes")
    assert officer_row[gettext_for("zh_Hans", "Role")] == gettext_for("zh_Hans", "department")
    report = await import_people(session, community.admin, roles, data, now=clock.now())
    assert report == ImportReport(unchanged=len(rows))


async def test_the_people_ledger_is_masked_outside_read_sensitive(
    session: AsyncSession, clock: FrozenClock
) -> None:
    community = await build_community(session, clock.now())
    roles = await community.roles(session, community.head)
    rows = read_back(
        await export_people(
            session, community.head, roles, now=clock.now(), translate=in_("en"), masked=True
        )
    )
    assert {r["Full name"] for r in rows} == {"网格长老陈", "王芳", "李娜"}
    assert {r["Mobile number"] for r in rows} == {"139****0003", "138****0001", "138****0002"}


def test_mask_phone() -> None:
    assert mask_phone("+8613812345678") == "138****5678"
    assert mask_phone("+865926123456") == "059****3456"
    assert mask_phone("12") == HIDDEN
