"""The people of households (实有人口): ID numbers and dates read from any hostile text, the
import (CSV in GBK and UTF-8, XLSX; all or nothing; every bad row named), and ID numbers
kept encrypted with a keyed hash."""

from __future__ import annotations

import io
from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import FrozenClock
from bot.services.id_numbers import (
    BAD_BIRTH,
    BAD_CHECK,
    BAD_FORMAT,
    BAD_LENGTH,
    FUTURE_BIRTH,
    OLD_NUMBER,
    IdVault,
    InvalidIdNumber,
    WrongKey,
    mask_id_number,
    new_key,
    parse_id_number,
    with_check_digit,
)
from bot.services.imports import EMPTY, EXCEL_ROUNDED, HOUSEHOLD_OUT_OF_SCOPE, ImportReport
from bot.services.member_import import (
    BAD_DATE,
    BAD_RELATION,
    BAD_STATUS,
    BIRTH_DISAGREES,
    DUPLICATE_ID,
    EARLY_DATE,
    FUTURE_DATE,
    GENDER_DISAGREES,
    NO_HOUSEHOLD,
    OUT_BEFORE_IN,
    CellProblem,
    import_members,
    member_template,
    parse_date,
    parse_word,
    read_member_file,
)
from models import Gender, Household, HouseholdMember, Person, Relation, ResidenceStatus

from .test_imports import EAST_A, WEST_A, Community, build_community, to_csv, to_xlsx

TODAY = date(2026, 12, 7)
KEY = "mPqIAbmCHoyAlKd0Y6bP8FZsYRwMkjI9aH8HaWgvb2E="
VAULT = IdVault(KEY)

HEADER = [
    "户编号",
    "姓名",
    "与户主关系",
    "公民身份号码",
    "性别",
    "联系电话",
    "人口类别",
    "迁入日期",
]


def id_number(n: int, born: str = "19800101", female: bool = False) -> str:
    """A valid number: region 350211, the birth date, a sequence whose last digit gives the
    gender (odd: male)."""
    sequence = f"{(n % 99) + 1:02d}{(2 if female else 1) + 2 * (n % 4)}"
    return with_check_digit(f"350211{born}{sequence}"[:17])


def numbers(count: int) -> list[str]:
    """``count`` different valid numbers (different birth dates)."""
    found: list[str] = []
    for n in range(count):
        born = date(1950, 1, 1).toordinal() + n * 37
        found.append(id_number(n, date.fromordinal(born).strftime("%Y%m%d")))
    return found


def member_row(n: int, household: str, number: str, **changes: str) -> list[str]:
    values = {
        "household": household,
        "name": f"居民{n}",
        "relation": "户主" if n % 4 == 0 else "子女",
        "id_number": number,
        "gender": "",
        "phone": f"1391234{n:04d}",
        "status": ("户籍", "常住", "流动")[n % 3],
        "moved_in": "2020-03-15" if n % 2 else "2019/1/2",
    }
    values.update(changes)
    return list(values.values())


async def households(session: AsyncSession, community: Community, count: int) -> list[str]:
    codes = []
    for n in range(count):
        grid = community.grids[EAST_A if n % 5 else WEST_A]
        code = f"H{n:04d}"
        session.add(
            Household(
                code=code,
                grid_id=grid.id or 0,
                address=f"{n}号",
                head_name=f"户主{n}",
                created_at=community.now,
                updated_at=community.now,
            )
        )
        codes.append(code)
    await session.flush()
    return codes


async def run(
    session: AsyncSession, community: Community, data: bytes, who: Person | None = None
) -> ImportReport:
    actor = who or community.admin
    return await import_members(
        session,
        actor,
        await community.roles(session, actor),
        data,
        vault=VAULT,
        now=community.now,
        today=TODAY,
    )


def reasons(report: ImportReport) -> list[tuple[int, str, str]]:
    return [(e.row, e.column, e.reason) for e in report.errors]


@pytest.fixture
async def community(session: AsyncSession, clock: FrozenClock) -> Community:
    return await build_community(session, clock.now())


# --- ID numbers -------------------------------------------------------------------------------

GOOD = id_number(7)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", BAD_LENGTH),
        ("12345", BAD_LENGTH),
        (GOOD[:15], OLD_NUMBER),
        (GOOD + "1", BAD_LENGTH),
        (GOOD[:-1] + ("0" if GOOD[-1] != "0" else "1"), BAD_CHECK),
        (with_check_digit("35021119800132011"), BAD_BIRTH),
        (with_check_digit("35021120991201011"), FUTURE_BIRTH),
        ("35021119800101ABCD", BAD_FORMAT),
        ("３５０２１１１９８００１０１１〇〇〇", BAD_FORMAT),
        ("'; DROP TABLE household_member; --", BAD_LENGTH),
        ("\u202e" + GOOD[:-1], BAD_FORMAT),
    ],
)
def test_bad_id_numbers_say_why(text: str, reason: str) -> None:
    with pytest.raises(InvalidIdNumber) as raised:
        parse_id_number(text, today=TODAY)
    assert raised.value.message == reason


def test_id_numbers_as_people_write_them() -> None:
    x_number = next(
        n for n in (with_check_digit(f"35021119800101{i:03d}") for i in range(200)) if n[-1] == "X"
    )
    assert parse_id_number(x_number.lower(), today=TODAY) == x_number
    full_width = GOOD.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    assert parse_id_number(full_width, today=TODAY) == GOOD
    assert parse_id_number(f" {GOOD[:6]} {GOOD[6:14]} {GOOD[14:]} ", today=TODAY) == GOOD
    assert mask_id_number(GOOD) == GOOD[:3] + "*" * 11 + GOOD[-4:]


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=80))
def test_any_text_is_a_checked_number_or_a_clear_refusal(text: str) -> None:
    try:
        number = parse_id_number(text, today=TODAY)
    except InvalidIdNumber as problem:
        assert problem.message in {
            BAD_LENGTH,
            OLD_NUMBER,
            BAD_FORMAT,
            BAD_BIRTH,
            FUTURE_BIRTH,
            BAD_CHECK,
        }
    else:
        assert len(number) == 18 and number[:17].isdigit()


def test_the_vault_seals_opens_and_hashes() -> None:
    sealed = VAULT.seal(GOOD)
    assert GOOD not in sealed.cipher and GOOD not in sealed.digest
    assert VAULT.open(sealed.cipher) == GOOD
    assert VAULT.digest(GOOD) == sealed.digest
    assert VAULT.seal(GOOD).cipher != sealed.cipher  # a fresh IV each time
    other = IdVault(new_key())
    with pytest.raises(WrongKey):
        other.open(sealed.cipher)
    assert other.digest(GOOD) != sealed.digest
    rotated = IdVault(new_key(), older=[KEY])
    again = rotated.rotate(sealed.cipher)
    assert rotated.open(again.cipher) == GOOD
    with pytest.raises(WrongKey):
        VAULT.open("not a token")


# --- dates and words --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "2024-03-15",
        "2024/3/15",
        "2024.3.15",
        "2024年3月15日",
        "20240315",
        "2024-03-15T00:00:00",
        "２０２４－０３－１５",
    ],
)
def test_dates_as_people_and_spreadsheets_write_them(text: str) -> None:
    assert parse_date(text, today=TODAY) == date(2024, 3, 15)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2024-02-30", BAD_DATE),
        ("15/03/2024", BAD_DATE),
        ("昨天", BAD_DATE),
        ("2027-01-01", FUTURE_DATE),
        ("1850-01-01", EARLY_DATE),
        ("9" * 40, BAD_DATE),
    ],
)
def test_bad_dates_say_why(text: str, reason: str) -> None:
    with pytest.raises(CellProblem) as raised:
        parse_date(text, today=TODAY)
    assert raised.value.reason == reason


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=60))
def test_any_text_is_a_date_or_a_clear_refusal(text: str) -> None:
    try:
        day = parse_date(text, today=TODAY)
    except CellProblem as problem:
        assert problem.reason in {BAD_DATE, FUTURE_DATE, EARLY_DATE}
    else:
        assert day is None or date(1900, 1, 1) <= day <= TODAY


@pytest.mark.parametrize(
    ("kind", "text", "value"),
    [
        ("relation", "户主", Relation.HEAD),
        ("relation", "女儿", Relation.CHILD),
        ("relation", "spouse", Relation.SPOUSE),
        ("gender", "女", Gender.FEMALE),
        ("gender", "Ｍ", Gender.MALE),
        ("status", "流动人口", ResidenceStatus.FLOATING),
        ("status", "户籍", ResidenceStatus.REGISTERED),
    ],
)
def test_words_of_the_register(kind: str, text: str, value: Any) -> None:
    assert parse_word(kind, text) == value


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=50))
def test_any_word_is_known_or_refused(text: str) -> None:
    for kind, reason in (("relation", BAD_RELATION), ("status", BAD_STATUS)):
        try:
            parse_word(kind, text)
        except CellProblem as problem:
            assert problem.reason == reason


# --- the import -------------------------------------------------------------------------------


async def test_two_hundred_people_one_bad_number_one_bad_date_then_fixed(
    session: AsyncSession, community: Community
) -> None:
    codes = await households(session, community, 50)
    ids = numbers(200)
    rows = [member_row(n, codes[n // 4], ids[n]) for n in range(200)]
    good_number, good_date = rows[41][3], rows[120][7]
    rows[41][3] = good_number[:-1] + ("0" if good_number[-1] != "0" else "1")
    rows[120][7] = "2023-02-30"
    report = await run(session, community, to_csv(rows, HEADER).encode("gbk"))
    assert reasons(report) == [(43, "公民身份号码", BAD_CHECK), (122, "迁入日期", BAD_DATE)]
    assert good_number not in " ".join(e.render("zh_Hans") for e in report.errors)
    assert (await session.exec(select(HouseholdMember))).all() == []
    rows[41][3], rows[120][7] = good_number, good_date
    report = await run(session, community, to_csv(rows, HEADER).encode("utf-8-sig"))
    assert (report.created, report.updated, report.unchanged, report.errors) == (200, 0, 0, ())
    stored = (await session.exec(select(HouseholdMember))).all()
    assert len(stored) == 200
    for member in stored:
        assert member.id_cipher is not None and member.id_hash is not None
        number = VAULT.open(member.id_cipher)
        assert number in ids and VAULT.digest(number) == member.id_hash
        assert number not in member.id_cipher
        assert member.birth_date is not None and member.gender is not None
    again = await run(session, community, to_xlsx(rows, HEADER))
    assert (again.created, again.updated, again.unchanged) == (0, 0, 200)


async def test_a_changed_row_updates_the_person_found_by_number(
    session: AsyncSession, community: Community
) -> None:
    codes = await households(session, community, 2)
    await run(session, community, to_csv([member_row(1, codes[1], GOOD)], HEADER).encode())
    moved = member_row(1, codes[1], GOOD.lower(), name="居民一", status="流动")
    report = await run(session, community, to_csv([moved], HEADER).encode())
    assert (report.created, report.updated) == (0, 1)
    member = (await session.exec(select(HouseholdMember))).one()
    assert (member.name, member.status) == ("居民一", ResidenceStatus.FLOATING)


async def test_every_bad_cell_of_every_bad_row_is_named(
    session: AsyncSession, community: Community
) -> None:
    codes = await households(session, community, 3)
    header = [*HEADER, "出生日期", "迁出日期"]
    female = id_number(3, female=True)
    rows = [
        [*member_row(0, codes[1], GOOD), "", ""],
        [*member_row(1, "NOPE", id_number(1), relation="邻居"), "", ""],
        [*member_row(2, codes[1], GOOD, status="游客"), "", ""],  # the same number again
        [*member_row(3, codes[1], female, gender="男"), "1981-01-01", ""],
        [*member_row(4, codes[1], "", name=""), "", ""],
        [*member_row(5, codes[1], id_number(5), moved_in="2024-01-01"), "", "2023-01-01"],
        [*member_row(6, "NOPE", id_number(6)), "", ""],
    ]
    report = await run(session, community, to_xlsx(rows, header))
    assert reasons(report) == [
        (3, "与户主关系", BAD_RELATION),
        (4, "人口类别", BAD_STATUS),
        (4, "公民身份号码", DUPLICATE_ID),
        (5, "出生日期", BIRTH_DISAGREES),
        (5, "性别", GENDER_DISAGREES),
        (6, "公民身份号码", EMPTY),
        (6, "姓名", EMPTY),
        (7, "迁出日期", OUT_BEFORE_IN),
        (8, "户编号", NO_HOUSEHOLD),
    ]
    assert (await session.exec(select(HouseholdMember))).all() == []


async def test_an_id_number_excel_rounded_is_caught(
    session: AsyncSession, community: Community
) -> None:
    codes = await households(session, community, 2)
    row: list[Any] = member_row(1, codes[1], GOOD)
    row[3] = int(GOOD[:17] + "0") if GOOD[-1] == "X" else int(GOOD)
    report = await run(session, community, to_xlsx([row], HEADER))
    assert reasons(report) == [(2, "公民身份号码", EXCEL_ROUNDED)]


async def test_only_households_in_the_admins_grids(
    session: AsyncSession, community: Community
) -> None:
    codes = await households(session, community, 2)  # H0000 is in the west, H0001 in the east
    rows = [member_row(0, codes[0], id_number(0)), member_row(1, codes[1], id_number(1))]
    report = await run(session, community, to_csv(rows, HEADER).encode(), community.east_admin)
    assert reasons(report) == [(2, "户编号", HOUSEHOLD_OUT_OF_SCOPE)]


def test_the_template_reads_back_as_a_member_file() -> None:
    sheet = load_workbook(io.BytesIO(member_template(lambda msgid: msgid))).worksheets[0]
    header = [str(c.value) for c in next(sheet.iter_rows(max_row=1))]
    row = ["H1", "a", "head", GOOD, "", "", "registered", "", "", ""]
    table = read_member_file(to_csv([row], header).encode())
    assert table.has("id_number") and table.has("status") and table.has("moved_out")


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(st.text(max_size=30), min_size=10, max_size=10), max_size=5))
def test_any_row_is_a_person_or_named_errors(cells: list[list[str]]) -> None:
    """Whatever the cells hold, a row reads as a person or as errors naming its columns —
    never an exception."""
    from bot.services.member_import import MEMBER_COLUMNS, MemberReader, MemberRow
    from bot.services.tabular import Row, Table

    keys = [c.key for c in MEMBER_COLUMNS]
    table = Table(
        header_row=1,
        positions={k: i for i, k in enumerate(keys)},
        headers={k: k for k in keys},
        rows=[Row(n + 2, tuple(row)) for n, row in enumerate(cells)],
    )
    reader = MemberReader(table, TODAY)
    for row in table.rows:
        result = reader.read(row)
        if isinstance(result, MemberRow):
            assert len(result.id_number) == 18 and result.birth_date <= TODAY
        else:
            assert result and all(e.row == row.number and e.column in keys for e in result)
