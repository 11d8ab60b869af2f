"""Household and people import: encodings, XLSX, row errors, all or nothing, idempotence,
scope, workers, templates, and hostile files (Hypothesis)."""

from __future__ import annotations

import contextlib
import csv
import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook, load_workbook
from openpyxl.utils.exceptions import IllegalCharacterError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import FrozenClock
from bot.errors import NotAllowed
from bot.i18n import gettext_for
from bot.services import grid_codes, household_import, import_cells, imports, tabular
from bot.services.addresses import address_key
from bot.services.grid_codes import NOT_A_CODE
from bot.services.import_report import CellProblem
from bot.services.imports import (
    AMBIGUOUS_WORKER,
    BAD_CATEGORY,
    BAD_MEMBERS,
    BAD_PHONE,
    BAD_YES_NO,
    DUPLICATE_CODE,
    DUPLICATE_ROLE,
    EMPTY,
    EXCEL_ROUNDED,
    GRID_OUT_OF_SCOPE,
    HOUSEHOLD_COLUMNS,
    HOUSEHOLD_OUT_OF_SCOPE,
    NEED_DEPARTMENT,
    NO_GRID,
    NO_WORKER_NAME,
    NO_WORKER_PHONE,
    NOT_LOWEST_GRID,
    NOT_MOBILE,
    PEOPLE_COLUMNS,
    PHONE_OTHER_NAME,
    ROLE_NOT_BY_FILE,
    TOO_LONG,
    WORKER_ELSEWHERE,
    ImportReport,
    RowError,
    display_phone,
    household_template,
    import_households,
    import_people,
    normalise_phone,
    parse_households,
    parse_people,
    people_template,
    read_household_file,
    read_people_file,
)
from bot.services.people import RoleInGrid, roles_of
from bot.services.tabular import (
    BAD_TEXT,
    BAD_WORKBOOK,
    DUPLICATE_COLUMN,
    EMPTY_FILE,
    MISSING_COLUMNS,
    NO_HEADER,
    NO_ROWS,
    OLD_EXCEL,
    TOO_BIG,
    TOO_MANY_ROWS,
    FileProblem,
    header_key,
)
from models import AuditLog, Grid, Household, HouseholdCategory, Person, Role, RoleAssignment
from models.registry import Department

# --- a small community, built in each test ----------------------------------------------------

STREET = "350211001"
EAST = "350211001001"  # community (tier 1)
EAST_2 = "35021100100101"  # tier 2
EAST_A = "3502110010010101"  # tier 3
EAST_B = "3502110010010102"  # tier 3
WEST = "350211001002"  # another community
WEST_A = "3502110010020101"  # tier 3 below it (its tier-2 grid is 35021100100201)

WORKER_A = "+8613800000001"  # works in EAST_A
WORKER_B = "+8613800000002"  # works in EAST_B
WORKER_W = "+8613800000003"  # works in WEST_A


@dataclass
class Community:
    grids: dict[str, Grid]
    admin: Person  # administrator of the whole street
    east_admin: Person  # administrator of the EAST community only
    workers: dict[str, Person]  # by phone
    head: Person  # grid head of EAST_2
    now: datetime

    async def roles(self, session: AsyncSession, person: Person) -> list[RoleInGrid]:
        assert person.id is not None
        return await roles_of(session, person.id)


async def build_community(session: AsyncSession, now: datetime) -> Community:
    grids: dict[str, Grid] = {}
    for code, name, tier, parent in (
        (STREET, "杏林街道", 0, None),
        (EAST, "杏东社区", 1, STREET),
        (WEST, "杏西社区", 1, STREET),
        (EAST_2, "杏东花园片区", 2, EAST),
        ("35021100100201", "杏西新村片区", 2, WEST),
        (EAST_A, "杏东花园1号楼", 3, EAST_2),
        (EAST_B, "杏东花园2号楼", 3, EAST_2),
        (WEST_A, "杏西新村1号楼", 3, "35021100100201"),
    ):
        parent_grid = grids[parent] if parent else None
        grid = Grid(
            code=code,
            name=name,
            tier=tier,
            parent_id=parent_grid.id if parent_grid else None,
            created_at=now,
        )
        session.add(grid)
        await session.flush()
        grid.path = f"{parent_grid.path if parent_grid else '/'}{grid.id}/"
        grids[code] = grid
    await session.flush()

    async def person(name: str, phone: str, role: Role, grid: str) -> Person:
        row = Person(name=name, phone=phone, created_at=now, updated_at=now)
        session.add(row)
        await session.flush()
        assert row.id is not None and grids[grid].id is not None
        session.add(
            RoleAssignment(person_id=row.id, role=role, grid_id=grids[grid].id, created_at=now)
        )
        return row

    admin = await person("管理员", "+8613900000001", Role.ADMIN, STREET)
    east_admin = await person("杏东管理员", "+8613900000002", Role.ADMIN, EAST)
    head = await person("网格长老陈", "+8613900000003", Role.HEAD, EAST_2)
    workers = {
        WORKER_A: await person("王芳", WORKER_A, Role.WORKER, EAST_A),
        WORKER_B: await person("李娜", WORKER_B, Role.WORKER, EAST_B),
        WORKER_W: await person("王芳", WORKER_W, Role.WORKER, WEST_A),  # same name, elsewhere
    }
    await session.flush()
    return Community(grids, admin, east_admin, workers, head, now)


# --- files ------------------------------------------------------------------------------------

HEADER_ZH = [
    "户编号",
    "网格编码",
    "户主姓名",
    "联系电话",
    "地址",
    "家庭人口",
    "户类别",
    "重点户",
    "工商企业户",
    "责任网格员",
    "备注",
]
HEADER_EN = [
    "code",
    "grid_code",
    "head_name",
    "phone",
    "address",
    "members",
    "categories",
    "key",
    "business",
    "worker_phone",
    "note",
]


def household(n: int, grid: str = EAST_A, **changes: str) -> list[str]:
    """A good row: household ``n`` of a grid, in the columns of HEADER_ZH."""
    values = {
        "code": f"{grid}{n:03d}",
        "grid_code": grid,
        "head_name": f"住户{n}",
        "phone": f"1391234{n:04d}",
        "address": f"杏东花园1号楼 {n}室",
        "members": str(1 + n % 5),
        "categories": "低保、空巢" if n % 3 == 0 else "",
        "key": "",
        "business": "否",
        "worker": {EAST_A: WORKER_A, EAST_B: WORKER_B, WEST_A: WORKER_W}[grid][3:],
        "note": "",
    }
    values.update(changes)
    return list(values.values())


def to_csv(
    rows: Sequence[Sequence[str]], header: Sequence[str] = HEADER_ZH, newline: str = "\r\n"
) -> str:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator=newline)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def to_xlsx(rows: Sequence[Sequence[Any]], header: Sequence[str] = HEADER_ZH) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(list(header))
    for row in rows:
        sheet.append(list(row))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


async def households_in_db(session: AsyncSession) -> dict[str, Household]:
    return {h.code: h for h in await session.exec(select(Household))}


async def run_import(
    session: AsyncSession, community: Community, data: bytes, who: Person | None = None
) -> ImportReport:
    actor = who or community.admin
    return await import_households(
        session, actor, await community.roles(session, actor), data, now=community.now
    )


def reasons(report: ImportReport) -> list[tuple[int, str, str]]:
    return [(e.row, e.column, e.reason) for e in report.errors]


# --- reading files ----------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030", "utf-16"])
async def test_csv_in_every_encoding_excel_writes_imports(
    session: AsyncSession, clock: FrozenClock, encoding: str
) -> None:
    community = await build_community(session, clock.now())
    rows = [household(n) for n in range(1, 7)]
    report = await run_import(session, community, to_csv(rows).encode(encoding))
    assert report == ImportReport(created=6)
    stored = await households_in_db(session)
    first = stored[f"{EAST_A}003"]
    assert first.head_name == "住户3"
    assert first.phone == "+8613912340003"
    assert first.members == 4
    assert first.categories == HouseholdCategory.SUBSISTENCE | HouseholdCategory.EMPTY_NEST
    assert first.is_key  # any category makes a key household
    assert not stored[f"{EAST_A}001"].is_key
    assert first.worker_id == community.workers[WORKER_A].id
    assert first.grid_id == community.grids[EAST_A].id
    assert first.created_at == clock.now()


async def test_xlsx_with_a_title_row_merged_cells_blank_rows_and_numbers(
    session: AsyncSession, clock: FrozenClock
) -> None:
    community = await build_community(session, clock.now())
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["杏东花园住户台账"])
    sheet.merge_cells("A1:K1")
    sheet.append(HEADER_ZH)
    sheet.append([f"{EAST_A}001", EAST_A, "张伟", 13912340001, "1号楼 101", 3.0, "重病", "是"])
    sheet.append([])
    sheet.append([None] * 11)
    sheet.append([f"{EAST_A}002", EAST_A, "刘洋", "0592-6123456", "1号楼 102", 2, None, None])
    sheet.append([f"{EAST_A}003", EAST_A, "陈静", None, "1号楼 201", None, "留守儿童户"])
    sheet.merge_cells("H5:H6")
    buffer = io.BytesIO()
    workbook.save(buffer)
    report = await run_import(session, community, buffer.getvalue())
    assert report == ImportReport(created=3)
    stored = await households_in_db(session)
    assert stored[f"{EAST_A}001"].phone == "+8613912340001"
    assert stored[f"{EAST_A}001"].members == 3
    assert stored[f"{EAST_A}001"].categories == HouseholdCategory.ILLNESS_DISABILITY
    assert stored[f"{EAST_A}002"].phone == "+865926123456"
    assert stored[f"{EAST_A}003"].members == 1  # empty means one
    assert stored[f"{EAST_A}003"].categories == HouseholdCategory.LEFT_BEHIND_CHILDREN


async def test_xlsx_rows_are_numbered_as_excel_shows_them(
    session: AsyncSession, clock: FrozenClock
) -> None:
    community = await build_community(session, clock.now())
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet["C1"] = "住户台账"  # a title row above the header
    sheet.append(HEADER_ZH)  # row 2
    sheet.append(household(1))  # row 3
    sheet.append(household(2, members="多"))  # row 4
    sheet.cell(row=9, column=1, value=f"{EAST_A}009")  # rows 5-8 left blank
    for column, value in enumerate(household(9, phone="12")[1:], start=2):
        sheet.cell(row=9, column=column, value=value)
    buffer = io.BytesIO()
    workbook.save(buffer)
    report = await run_import(session, community, buffer.getvalue())
    assert reasons(report) == [(4, "家庭人口", BAD_MEMBERS), (9, "联系电话", BAD_PHONE)]


def test_a_csv_with_mixed_line_endings_reads_every_row() -> None:
    rows = [household(n) for n in range(1, 5)]
    text = to_csv(rows[:1], newline="\r\n") + "\n".join(",".join(r) for r in rows[1:3]) + "\r"
    text += ",".join(rows[3]) + "\r\n"
    table = read_household_file(text.encode("utf-8"))
    good, errors = parse_households(table)
    assert errors == []
    assert [h.row for h in good] == [2, 3, 4, 5]


def test_english_and_sloppy_headers_are_understood() -> None:
    header = [" Code ", "GRID_CODE", "head name", "phone", "address", "Members"]
    table = read_household_file(to_csv([household(1)[:6]], header=header).encode())
    assert set(table.positions) == {
        "code",
        "grid_code",
        "head_name",
        "phone",
        "address",
        "members",
    }
    full_width = ["户编号＊", "网格编码（必填）", "户 主 姓 名", "联系电话", "地址"]
    table = read_household_file(to_csv([household(1)[:5]], header=full_width).encode())
    assert table.headers["grid_code"] == "网格编码（必填）"
    assert header_key("Responsible grid worker (phone)") == header_key("responsible_grid_worker")


def test_column_aliases_name_one_column_each() -> None:
    for columns in (HOUSEHOLD_COLUMNS, PEOPLE_COLUMNS):
        seen: dict[str, str] = {}
        for column in columns:
            for name in {column.key, column.label, *column.aliases}:
                key = header_key(name)
                assert seen.setdefault(key, column.key) == column.key, name


@pytest.mark.parametrize(
    "data,reason",
    [
        (b"", EMPTY_FILE),
        (b"  \r\n\r\n ", EMPTY_FILE),
        ("户编号,网格编码,户主姓名,地址\r\n".encode(), NO_ROWS),
        (b"name,age\r\nx,1\r\n", NO_HEADER),
        ("户编号,户主姓名,地址\r\n1,2,3\r\n".encode(), MISSING_COLUMNS),
        ("户编号,网格编码,户主姓名,地址,户号\r\n1,2,3,4,5\r\n".encode(), DUPLICATE_COLUMN),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), OLD_EXCEL),
        (b"PK\x03\x04 this is no zip at all", BAD_WORKBOOK),
        (bytes(range(256)) * 4, BAD_TEXT),
    ],
)
def test_files_that_cannot_be_used_say_why(data: bytes, reason: str) -> None:
    with pytest.raises(FileProblem) as refused:
        read_household_file(data)
    assert refused.value.message == reason


def test_a_zip_that_is_not_a_workbook_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "not a workbook")
    with pytest.raises(FileProblem) as refused:
        read_household_file(buffer.getvalue())
    assert refused.value.message == BAD_WORKBOOK


def test_size_and_row_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    data = to_csv([household(n) for n in range(1, 8)]).encode()
    monkeypatch.setattr(tabular, "MAX_ROWS", 5)
    with pytest.raises(FileProblem) as refused:
        read_household_file(data)
    assert refused.value.message == TOO_MANY_ROWS
    assert refused.value.params == {"limit": 5}
    monkeypatch.setattr(tabular, "MAX_FILE_BYTES", 100)
    with pytest.raises(FileProblem) as refused:
        read_household_file(data)
    assert refused.value.message == TOO_BIG


def test_a_cell_bigger_than_the_csv_module_allows_is_a_clear_error() -> None:
    data = to_csv([household(1, note="x" * 200_000)]).encode()
    with pytest.raises(FileProblem) as refused:
        read_household_file(data)
    assert refused.value.params == {"row": 2}


# --- checking rows ----------------------------------------------------------------------------


def test_every_bad_cell_is_named_with_its_row_and_header() -> None:
    rows = [
        household(1),
        household(2, phone="12345", members="120", categories="低保、富裕户", key="也许"),
        household(3, head_name="", address="   "),
        household(1),  # the same household again
        household(5, head_name="张" * 51),
    ]
    good, errors = parse_households(read_household_file(to_csv(rows).encode()))
    assert [h.row for h in good] == [2]
    assert [(e.row, e.column, e.reason) for e in errors] == [
        (3, "联系电话", BAD_PHONE),
        (3, "家庭人口", BAD_MEMBERS),
        (3, "户类别", BAD_CATEGORY),
        (3, "重点户", BAD_YES_NO),
        (4, "户主姓名", EMPTY),
        (4, "地址", EMPTY),
        (5, "户编号", DUPLICATE_CODE),
        (6, "户主姓名", TOO_LONG),
    ]
    assert errors[2].params == {"value": "富裕户"}
    assert errors[6].params == {"value": f"{EAST_A}001", "first": 2}


@pytest.mark.parametrize(
    "text,flags",
    [
        ("低保五保户", HouseholdCategory.SUBSISTENCE),
        ("五保", HouseholdCategory.SUBSISTENCE),
        ("重残 空巢", HouseholdCategory.ILLNESS_DISABILITY | HouseholdCategory.EMPTY_NEST),
        (
            "留守儿童户，烈属",
            HouseholdCategory.LEFT_BEHIND_CHILDREN | HouseholdCategory.MILITARY_MARTYR,
        ),
        ("易返贫致贫户;军属", HouseholdCategory.POVERTY_RISK | HouseholdCategory.MILITARY_MARTYR),
        ("低保/空巢", HouseholdCategory.SUBSISTENCE | HouseholdCategory.EMPTY_NEST),
        ("subsistence / five-guarantee、empty-nest elderly", 9),
        ("低保五保戶、空巢老人戶", 9),  # Traditional Chinese, from the zh_Hant catalog
        ("无", 0),
        ("普通户", 0),
        ("", 0),
    ],
)
def test_categories_by_name_short_name_and_in_any_language(text: str, flags: int) -> None:
    assert imports.parse_categories(text) == flags


@pytest.mark.parametrize(
    "text,expected",
    [
        ("138 1234 5678", "+8613812345678"),
        ("１３８１２３４５６７８", "+8613812345678"),
        ("+86 138-1234-5678", "+8613812345678"),
        ("0592-6123456", "+865926123456"),
        ("123", None),
        ("", None),
        ("abc", None),
        ("1" * 200, None),
    ],
)
def test_phone_numbers_are_stored_in_e164(text: str, expected: str | None) -> None:
    assert normalise_phone(text) == expected


def test_phones_are_shown_the_way_chinese_ledgers_write_them() -> None:
    assert display_phone("+8613812345678") == "13812345678"
    assert display_phone("+865926123456") == "05926123456"
    assert display_phone("+85261234567").startswith("+852")


def test_excel_rounded_codes_are_caught() -> None:
    data = to_xlsx([[3502110010010101001, 3502110010010101, "张伟", None, "1号楼"]])
    _, errors = parse_households(read_household_file(data))
    assert [(e.column, e.reason) for e in errors] == [
        ("户编号", EXCEL_ROUNDED),
        ("网格编码", EXCEL_ROUNDED),
    ]
    csv_data = to_csv([household(1, code="3.50211E+18")]).encode()
    _, errors = parse_households(read_household_file(csv_data))
    assert [e.reason for e in errors] == [EXCEL_ROUNDED]


def test_a_row_error_renders_in_the_admins_language() -> None:
    error = RowError(7, "联系电话", BAD_PHONE, {"value": "123"})
    assert error.render("en") == "Row 7, column 联系电话: 123 is not a valid phone number."


# --- the database: all or nothing, idempotence, updates ---------------------------------------


async def test_three_bad_rows_are_reported_and_nothing_is_imported(
    session: AsyncSession, clock: FrozenClock
) -> None:
    community = await build_community(session, clock.now())
    rows = [household(n) for n in range(1, 11)]
    rows[2] = household(3, phone="110")  # row 4
    rows[5] = household(6, grid_code="3502110010019999")  # row 7: no such grid
    rows[8] = household(9, worker="13800000002")  # row 10: a worker of another grid
    report = await run_import(session, community, to_csv(rows).encode())
    assert report.bad_rows == (4, 7, 10)
    assert (report.created, report.updated, report.unchanged) == (0, 0, 0)
    assert reasons(report) == [
        (4, "联系电话", BAD_PHONE),
        (7, "网格编码", NO_GRID),
        (10, "责任网格员", WORKER_ELSEWHERE),
    ]
    assert report.errors[2].params == {"value": "13800000002", "grid": EAST_A}
    assert await households_in_db(session) == {}
    audits = await session.exec(select(AuditLog).where(AuditLog.action == "import:households"))
    assert audits.all() == []


async def test_reimporting_the_same_file_changes_nothing(
    session: AsyncSession, clock: FrozenClock
) -> None:
    community = await build_community(session, clock.now())
    data = to_csv([household(n) for n in range(1, 9)]).encode("gbk")
    assert await run_import(session, community, data) == ImportReport(created=8)
    clock.advance(__import__("datetime").timedelta(days=1))
    community.now = clock.now()
    assert await run_import(session, community, data) == ImportReport(unchanged=8)
    stored = await households_in_db(session)
    assert all(h.updated_at < clock.now() for h in stored.values())


async def test_a_changed_row_updates_its_household(
    session: AsyncSession, clock: FrozenClock
) -> None:
    community = await build_community(session, clock.now())
    rows = [household(n) for n in range(1, 6)]
    await run_import(session, community, to_csv(rows).encode())
    rows[1] = household(2, address="杏东花园1号楼 999室", categories="烈属", worker="")
    rows[3] = household(4, grid_code=EAST_B, worker=WORKER_B)
    rows.append(household(6))
    report = await run_import(session, community, to_csv(rows).encode())
    assert report == ImportReport(created=1, updated=2, unchanged=3)
    stored = await households_in_db(session)
    moved, changed = stored[f"{EAST_A}004"], stored[f"{EAST_A}002"]
    assert moved.grid_id == community.grids[EAST_B].id
    assert moved.worker_id == community.workers[WORKER_B].id
    assert changed.address == "杏东花园1号楼 999室"
    assert changed.address_key == "杏东花园(1)栋(999)"  # matched as typed from now on
    assert all(h.address_key == address_key(h.address) for h in stored.values())
    assert changed.categories == HouseholdCategory.MILITARY_MARTYR and changed.is_key
    assert changed.worker_id is None


async def test_columns_missing_from_the_file_are_left_alone(
    session: AsyncSession, clock: FrozenClock
) -> None:
    community = await build_community(session, clock.now())
    await run_import(session, community, to_csv([household(1, note="独居老人")]).encode())
    short = to_csv([household(1)[:5]], header=HEADER_ZH[:5]).encode()
    assert await run_import(session, community, short) == ImportReport(unchanged=1)
    stored = (await households_in_db(session))[f"{EAST_A}001"]
    assert stored.note == "独居老人"
    assert stored.worker_id == community.workers[WORKER_A].id


async def test_grids_must_exist_be_lowest_and_in_the_admins_scope(
    session: AsyncSession, clock: FrozenClock
) -> None:
    community = await build_community(session, clock.now())
    rows = [
        household(1, grid_code=EAST_2),  # tier 2 with grids below
        household(2, grid_code="12345"),  # not even a code
        household(3, grid=WEST_A),  # outside the EAST admin's grids
        household(4),
    ]
    report = await run_import(session, community, to_csv(rows).encode(), community.east_admin)
    assert reasons(report) == [
        (2, "网格编码", NOT_LOWEST_GRID),
        (3, "网格编码", NOT_A_CODE),
        (4, "网格编码", GRID_OUT_OF_SCOPE),
    ]
    assert (await run_import(session, community, to_csv(rows[2:]).encode())).ok


async def test_a_household_registered_elsewhere_cannot_be_pulled_in(
    session: AsyncSession, clock: FrozenClock
) -> None:
    community = await build_community(session, clock.now())
    await run_import(session, community, to_csv([household(1, grid=WEST_A)]).encode())
    moved = household(1, grid=WEST_A, grid_code=EAST_A, worker=WORKER_A)
    report = await run_import(session, community, to_csv([moved]).encode(), community.east_admin)
    assert reasons(report) == [(2, "户编号", HOUSEHOLD_OUT_OF_SCOPE)]


async def test_workers_by_phone_or_by_a_name_unique_in_the_grid(
    session: AsyncSession, clock: FrozenClock
) -> None:
    community = await build_community(session, clock.now())
    session.add(
        RoleAssignment(
            person_id=community.workers[WORKER_B].id or 0,
            role=Role.WORKER,
            grid_id=community.grids[EAST_2].id or 0,  # covers EAST_A and EAST_B
            created_at=clock.now(),
        )
    )
    twin = Person(
        name="李娜", phone="+8613800000009", created_at=clock.now(), updated_at=clock.now()
    )
    session.add(twin)
    await session.flush()
    session.add(
        RoleAssignment(
            person_id=twin.id or 0,
            role=Role.WORKER,
            grid_id=community.grids[EAST_A].id or 0,
            created_at=clock.now(),
        )
    )
    await session.flush()
    rows = [
        household(1, worker="王芳"),  # one 王芳 here, another in WEST_A
        household(2, worker=WORKER_B),  # works over the tier-2 grid above
        household(3, worker="13700000000"),  # nobody
        household(4, worker="赵六"),  # no such worker
        household(5, worker="李娜"),  # two of them over EAST_A
    ]
    report = await run_import(session, community, to_csv(rows).encode())
    assert reasons(report) == [
        (4, "责任网格员", NO_WORKER_PHONE),
        (5, "责任网格员", NO_WORKER_NAME),
        (6, "责任网格员", AMBIGUOUS_WORKER),
    ]
    report = await run_import(session, community, to_csv(rows[:2]).encode())
    assert report == ImportReport(created=2)
    stored = await households_in_db(session)
    assert stored[f"{EAST_A}001"].worker_id == community.workers[WORKER_A].id
    assert stored[f"{EAST_A}002"].worker_id == community.workers[WORKER_B].id


async def test_only_administrators_import(session: AsyncSession, clock: FrozenClock) -> None:
    community = await build_community(session, clock.now())
    with pytest.raises(NotAllowed) as refused:
        await run_import(session, community, to_csv([household(1)]).encode(), community.head)
    assert refused.value.audit is not None
    assert refused.value.audit.action == "refused:manage"


async def test_progress_is_told_after_every_chunk(
    session: AsyncSession, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    community = await build_community(session, clock.now())
    monkeypatch.setattr(household_import, "CHUNK_ROWS", 2)
    monkeypatch.setattr(household_import, "LOOKUP_CHUNK", 3)
    told: list[tuple[int, int]] = []

    async def progress(done: int, total: int) -> None:
        told.append((done, total))

    rows = [household(n) for n in range(1, 6)]
    report = await import_households(
        session,
        community.admin,
        await community.roles(session, community.admin),
        to_csv(rows).encode(),
        now=clock.now(),
        progress=progress,
    )
    assert report == ImportReport(created=5)
    assert told == [(2, 5), (4, 5), (5, 5)]
    # a bad row in the last chunk undoes the chunks already written
    rows.append(household(6, members="-1"))
    rows[0] = household(1, address="新地址")
    report = await run_import(session, community, to_csv(rows).encode())
    assert report.bad_rows == (7,)
    assert (await households_in_db(session))[f"{EAST_A}001"].address != "新地址"


async def test_a_successful_import_is_audited(session: AsyncSession, clock: FrozenClock) -> None:
    community = await build_community(session, clock.now())
    await run_import(session, community, to_csv([household(1), household(2)]).encode())
    audit = (
        await session.exec(select(AuditLog).where(AuditLog.action == "import:households"))
    ).one()
    assert audit.actor_id == community.admin.id
    assert audit.data == {"created": 2, "updated": 0, "unchanged": 0}


# --- templates --------------------------------------------------------------------------------


@pytest.mark.parametrize("locale", ["zh_Hans", "zh_Hant", "en"])
async def test_the_household_template_filled_in_imports(
    session: AsyncSession, clock: FrozenClock, locale: str
) -> None:
    community = await build_community(session, clock.now())
    template = household_template(lambda m: gettext_for(locale, m))
    workbook = load_workbook(io.BytesIO(template))
    assert workbook.sheetnames[1] == gettext_for(locale, "Instructions")
    sheet = workbook.worksheets[0]
    sheet.append(household(1))
    buffer = io.BytesIO()
    workbook.save(buffer)
    assert await run_import(session, community, buffer.getvalue()) == ImportReport(created=1)


def test_the_default_template_is_in_simplified_chinese() -> None:
    sheet = load_workbook(io.BytesIO(household_template())).worksheets[0]
    headers = [c.value for c in sheet[1]]
    assert headers == [gettext_for("zh_Hans", c.label) for c in HOUSEHOLD_COLUMNS]
    explained = load_workbook(io.BytesIO(household_template())).worksheets[1]
    text = " ".join(str(c.value) for row in explained.iter_rows() for c in row if c.value)
    assert gettext_for("zh_Hans", "subsistence / five-guarantee") in text


# --- people -----------------------------------------------------------------------------------

PEOPLE_HEADER = ["姓名", "手机号", "角色", "网格编码", "部门"]


async def run_people(
    session: AsyncSession, community: Community, rows: Sequence[Sequence[str]]
) -> ImportReport:
    data = to_csv(rows, header=PEOPLE_HEADER).encode("utf-8-sig")
    roles = await community.roles(session, community.admin)
    return await import_people(session, community.admin, roles, data, now=community.now)


async def test_people_are_created_matched_by_phone_and_given_roles(
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
    await session.flush()
    rows = [
        ["赵敏", "13700000001", "网格员", EAST_B, ""],
        ["赵敏", "137 0000 0001", "grid head", EAST_2, ""],  # a second role, English label
        ["王芳", WORKER_A[3:], "网格员", EAST_B, ""],  # an existing worker, one more grid
        ["孙警官", "13700000002", "部门", STREET, "杏林派出所"],
        ["周主任", "13700000003", "综合调处中心", STREET, ""],
    ]
    report = await run_people(session, community, rows)
    assert report == ImportReport(created=5)
    people = {p.phone: p for p in await session.exec(select(Person))}
    zhao = people["+8613700000001"]
    assert zhao.id is not None
    assert {(r.role, r.grid_code) for r in await roles_of(session, zhao.id)} == {
        (Role.WORKER, EAST_B),
        (Role.HEAD, EAST_2),
    }
    officer = people["+8613700000002"]
    held = (
        await session.exec(select(RoleAssignment).where(RoleAssignment.person_id == officer.id))
    ).one()
    assert held.department_id == police.id
    # the same file again: nothing to do; a new name is an update
    assert await run_people(session, community, rows) == ImportReport(unchanged=5)
    rows[4][0] = "周晓梅"
    assert await run_people(session, community, rows) == ImportReport(updated=1, unchanged=4)
    await session.refresh(people["+8613700000003"])
    assert people["+8613700000003"].name == "周晓梅"


async def test_an_ended_role_is_taken_up_again(session: AsyncSession, clock: FrozenClock) -> None:
    community = await build_community(session, clock.now())
    held = (
        await session.exec(
            select(RoleAssignment).where(
                RoleAssignment.person_id == community.workers[WORKER_B].id
            )
        )
    ).one()
    held.active = False
    session.add(held)
    await session.flush()
    report = await run_people(session, community, [["李娜", WORKER_B, "网格员", EAST_B, ""]])
    assert report == ImportReport(updated=1)
    await session.refresh(held)
    assert held.active


async def test_bad_people_rows_are_reported_and_nothing_is_written(
    session: AsyncSession, clock: FrozenClock
) -> None:
    community = await build_community(session, clock.now())
    rows = [
        ["赵敏", "13700000001", "网格员", EAST_B, ""],
        ["钱多", "13700000001", "网格员", EAST_A, ""],  # the same phone, another name
        ["孙警官", "13700000002", "部门", STREET, ""],  # a department without its name
        ["吴用", "05926123456", "网格员", EAST_A, ""],  # a landline
        ["郑和", "13700000004", "管理员", STREET, ""],  # not by file
        ["赵敏", "13700000001", "网格员", EAST_B, ""],  # row 2 again
        ["冯七", "13700000005", "网格员", "3502110010019999", ""],
    ]
    report = await run_people(session, community, rows)
    assert reasons(report) == [
        (3, "手机号", PHONE_OTHER_NAME),
        (4, "部门", NEED_DEPARTMENT),
        (5, "手机号", NOT_MOBILE),
        (6, "角色", ROLE_NOT_BY_FILE),
        (7, "角色", DUPLICATE_ROLE),
        (8, "网格编码", NO_GRID),
    ]
    phones = {p.phone for p in await session.exec(select(Person))}
    assert "+8613700000001" not in phones


async def test_the_people_template_filled_in_imports(
    session: AsyncSession, clock: FrozenClock
) -> None:
    community = await build_community(session, clock.now())
    workbook = load_workbook(io.BytesIO(people_template()))
    workbook.worksheets[0].append(["赵敏", "13700000001", "网格员", EAST_B])
    buffer = io.BytesIO()
    workbook.save(buffer)
    roles = await community.roles(session, community.admin)
    report = await import_people(
        session, community.admin, roles, buffer.getvalue(), now=clock.now()
    )
    assert report == ImportReport(created=1)
    count = await session.exec(select(Person).where(col(Person.phone) == "+8613700000001"))
    assert len(count.all()) == 1


# --- hostile input (Hypothesis) ---------------------------------------------------------------

KNOWN_REASONS = {
    value
    for module in (imports, grid_codes)
    for name, value in vars(module).items()
    if name.isupper() and isinstance(value, str)
}
HOSTILE_TEXT = st.one_of(
    st.text(max_size=40),
    st.text(min_size=1, max_size=20).map(lambda t: (t * 10_000)[:10_000]),
    st.sampled_from(
        [
            '=HYPERLINK("http://evil")',
            "+1",
            "-1",
            "@SUM(A1)",
            "\t",
            "   ",
            "\u3000",
            "１２３",
            "👨‍👩‍👧",
            "\x00",
            "\u202e",
            "3.50211E+15",
            "'=1+1",
            "低保、、，,;",
        ]
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000))
def test_random_bytes_are_a_table_or_a_file_problem(data: bytes) -> None:
    for candidate in (data, b"PK\x03\x04" + data):
        try:
            read_household_file(candidate)
            read_people_file(candidate)
        except FileProblem:
            pass


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(HOSTILE_TEXT, min_size=0, max_size=12), min_size=1, max_size=6))
def test_hostile_cells_give_row_errors_never_a_crash(rows: list[list[str]]) -> None:
    files = [to_csv(rows).encode(), to_csv([r[:5] for r in rows], header=PEOPLE_HEADER).encode()]
    with contextlib.suppress(IllegalCharacterError):  # what no workbook can hold
        files.append(to_xlsx(rows))
    for data in files:
        try:
            households = read_household_file(data)
        except FileProblem:
            households = None
        if households is not None:
            good, errors = parse_households(households)
            assert len(good) + len({e.row for e in errors}) == len(households.rows)
            for error in errors:
                assert error.reason in KNOWN_REASONS, error.reason
                assert error.render("zh_Hans")
        try:
            people_table = read_people_file(data)
        except FileProblem:
            continue
        people, problems = parse_people(people_table)
        assert all(p.phone.startswith("+") for p in people)
        for problem in problems:
            assert problem.reason in KNOWN_REASONS, problem.reason
            assert problem.render("en")


@settings(max_examples=300, deadline=None)
@given(HOSTILE_TEXT)
def test_cell_parsers_take_any_text(text: str) -> None:
    phone = normalise_phone(text)
    assert phone is None or phone.startswith("+")
    try:
        flags = imports.parse_categories(text)
    except CellProblem as problem:
        assert problem.reason == BAD_CATEGORY
    else:
        assert 0 <= flags < 64
    with contextlib.suppress(CellProblem):
        imports.parse_role(text)


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"1[0-9]{10}", fullmatch=True), st.sampled_from(["", "+86", "86", "0086 "]))
def test_the_mobile_fast_path_agrees_with_a_full_parse(number: str, prefix: str) -> None:
    text = prefix + number
    assert normalise_phone(text) == import_cells._parsed_phone.__wrapped__(text)


KNOWN_HEADERS = [*HEADER_ZH, *HEADER_EN, "序号", "户主", "Household code"]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.one_of(st.sampled_from(KNOWN_HEADERS), HOSTILE_TEXT), max_size=14),
    st.lists(st.lists(HOSTILE_TEXT, max_size=14), max_size=4),
)
def test_any_header_row_is_read_or_refused_clearly(
    header: list[str], rows: list[list[str]]
) -> None:
    data = to_csv(rows, header=header).encode("utf-8")
    try:
        table = read_household_file(data)
    except FileProblem as problem:
        assert problem.message in {
            EMPTY_FILE,
            NO_HEADER,
            NO_ROWS,
            MISSING_COLUMNS,
            DUPLICATE_COLUMN,
            BAD_TEXT,  # a NUL character: binary, not text
            tabular.BAD_CSV_ROW,
            tabular.LONG_CELL,
        }
        assert gettext_for("zh_Hans", problem.message, **problem.params)
        return
    assert {"code", "grid_code", "head_name", "address"} <= set(table.positions)
    parse_households(table)


def test_a_formula_in_a_workbook_is_never_imported_as_text() -> None:
    data = to_xlsx([[f"{EAST_A}001", EAST_A, "=1+1", None, '=HYPERLINK("http://x")']])
    _, errors = parse_households(read_household_file(data))
    # openpyxl saves no computed value, so the cells read as empty: nothing runs, nothing leaks
    assert [(e.column, e.reason) for e in errors] == [("户主姓名", EMPTY), ("地址", EMPTY)]


def sparse_far_right_workbook(rows: int) -> bytes:
    """A small file that openpyxl would inflate to 16,384 cells a row: a value in column A
    and one in XFD, the last column Excel has, on every row."""
    cells = "".join(
        f'<row r="{r}"><c r="A{r}" t="inlineStr"><is><t>x</t></is></c>'
        f'<c r="XFD{r}" t="inlineStr"><is><t>y</t></is></c></row>'
        for r in range(1, rows + 1)
    )
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    pkg = "http://schemas.openxmlformats.org/package/2006/relationships"
    parts = {
        "[Content_Types].xml": (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'
        ),
        "_rels/.rels": (
            f'<Relationships xmlns="{pkg}"><Relationship Id="rId1" '
            f'Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
        ),
        "xl/workbook.xml": (
            f'<workbook xmlns="{main}" xmlns:r="{rel}"><sheets>'
            '<sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            f'<Relationships xmlns="{pkg}"><Relationship Id="rId1" '
            f'Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'
        ),
        "xl/worksheets/sheet1.xml": (
            f'<worksheet xmlns="{main}"><sheetData>{cells}</sheetData></worksheet>'
        ),
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
    return out.getvalue()


def test_cells_far_to_the_right_are_never_read() -> None:
    """Seen: a 107 KB workbook took 207 s of CPU and 371 MB to read — every row padded out to
    the last column. Only the first MAX_COLUMNS columns are read now."""
    rows = tabular.read_rows(sparse_far_right_workbook(200))
    assert len(rows) == 200 and all(row.cells == ("x",) for row in rows)


def test_a_file_that_reads_too_slowly_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tabular, "PARSE_SECONDS", 0.0)
    with pytest.raises(tabular.FileProblem) as refused:
        tabular.read_rows(sparse_far_right_workbook(50))
    assert refused.value.message == tabular.TOO_SLOW


def test_a_cell_longer_than_any_field_is_refused_with_its_row() -> None:
    text = "户编号,户主姓名\nA1,张三\nA2," + "长" * (tabular.MAX_CELL + 1) + "\n"
    with pytest.raises(tabular.FileProblem) as refused:
        tabular.read_rows(text.encode("utf-8"))
    assert refused.value.message == tabular.LONG_CELL
    assert refused.value.params["row"] == 3
