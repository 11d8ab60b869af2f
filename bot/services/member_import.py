"""Importing the people of households (人口导入) from the admin's CSV or XLSX file.

Used like :func:`bot.services.imports.import_households` (all or nothing; every bad cell of
every bad row named; the caller commits), with the ID-number vault besides::

    report = await import_members(session, admin, roles, data, vault=vault, now=now)

Columns, Chinese header first, English key accepted:

======================  ==============  ==========================================================
户编号 (household)       required        an existing household in the grids the admin manages
姓名 (name)              required
与户主关系 (relation)    required        户主/本人, 配偶, 子女, 父母, 孙子女, 祖父母, 兄弟姐妹,
                                        儿媳/女婿, 租户, 其他 (and the usual single words)
公民身份号码 (id_number)  required        18 characters, checked (length, birth date, check digit);
                                        it identifies the person: a known number updates them
性别 (gender)            optional        男/女; empty: read from the ID number; must agree with it
出生日期 (birth_date)    optional        empty: read from the ID number; must agree with it
联系电话 (phone)         optional        any valid Chinese number
人口类别 (status)        required        户籍, 常住, 流动
迁入日期 (moved_in)      optional        a date, not in the future
迁出日期 (moved_out)     optional        a date, not in the future, not before 迁入日期
======================  ==============  ==========================================================

Dates are read as 2024-03-15, 2024/3/15, 2024.3.15, 2024年3月15日, 20240315 or a date cell.
ID numbers are quoted back masked (``350***********1234``) in the errors: the row number
says where to look, and a chat is no place for whole numbers.
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any

from sqlalchemy import insert, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.i18n import N_, join_list
from bot.labels import GENDER, PARTY_KIND, RELATION, RESIDENCE_STATUS
from bot.services.permissions import within
from models import (
    Gender,
    Grid,
    Household,
    HouseholdMember,
    PartyKind,
    Person,
    Relation,
    ResidenceStatus,
)

from .id_numbers import (
    IdVault,
    InvalidIdNumber,
    birth_date,
    is_male,
    mask_id_number,
    normalise_id_number,
    parse_id_number,
)
from .import_cells import in_every_catalog as _every_catalog
from .import_cells import words as _words
from .import_report import CellProblem, read_rows
from .import_report import chunks as _chunks
from .imports import (
    BAD_PHONE,
    EMPTY,
    EXCEL_ROUNDED,
    HOUSEHOLD_OUT_OF_SCOPE,
    LOOKUP_CHUNK,
    TOO_LONG,
    ImportReport,
    Progress,
    RowError,
    Translate,
    audit_import,
    catalog_labels,
    comparable,
    error_order,
    make_template,
    manage_scope,
    normalise_phone,
)
from .people import RoleInGrid
from .tabular import Column, Row, Table, clean_text, read_table, shown

CHUNK_ROWS = 1_000  # rows checked and written per step (each ID number is encrypted)

NO_HOUSEHOLD = N_("There is no household with the code {value}.")
BAD_RELATION = N_(
    "{value} is not a relation to the head of household. Use head, spouse, child, parent, "
    "grandchild, grandparent, brother or sister, in-law, tenant or other."
)
BAD_GENDER = N_("{value} is neither male nor female.")
BAD_STATUS = N_("{value} is not registered, permanent or floating population.")
BAD_PARTY = N_(
    "{value} is not a party membership. Use full, probationary or floating party member, "
    "or leave it empty (or write masses) for someone who is not one."
)
BAD_DATE = N_("{value} is not a date. Write it like 2024-03-15.")
FUTURE_DATE = N_("The date {value} is in the future.")
EARLY_DATE = N_("The date {value} is before 1900.")
OUT_BEFORE_IN = N_("The move-out date {value} is before the move-in date.")
GENDER_DISAGREES = N_("{value} does not agree with the gender in the ID number.")
BIRTH_DISAGREES = N_("The birth date {value} does not agree with the ID number, which says {day}.")
DUPLICATE_ID = N_("The ID number {value} is also in row {first}.")
MEMBER_ELSEWHERE = N_(
    "The person with the ID number {value} is registered in a household outside the grids "
    "you manage."
)

MEMBER_COLUMNS: tuple[Column, ...] = (
    Column(
        "household",
        N_("Household code"),
        ("户编号", "户号", "户编码", "住户编号", "household_code"),
        required=True,
    ),
    Column("name", N_("Full name"), ("姓名", "名字", "人员姓名"), required=True),
    Column(
        "relation",
        N_("Relation to the head"),
        ("与户主关系", "与户主的关系", "关系", "家庭关系"),
        required=True,
    ),
    Column(
        "id_number",
        N_("Resident ID number"),
        ("公民身份号码", "身份证号", "身份证号码", "身份证", "证件号码", "id", "id_no"),
        required=True,
    ),
    Column("gender", N_("Gender"), ("性别", "sex")),
    Column("birth_date", N_("Date of birth"), ("出生日期", "出生年月日", "生日", "birthday")),
    Column("phone", N_("Contact phone"), ("联系电话", "电话", "手机号", "手机号码", "手机")),
    Column(
        "status",
        N_("Population type"),
        ("人口类别", "人口类型", "户籍类别", "居住类别", "类别"),
        required=True,
    ),
    Column("moved_in", N_("Move-in date"), ("迁入日期", "入住日期", "迁入时间")),
    Column("moved_out", N_("Move-out date"), ("迁出日期", "离开日期", "迁出时间")),
    Column("party", N_("Party membership"), ("政治面貌", "党员类别", "党籍")),
)

_MEMBER_FIELDS = (
    "household_id",
    "name",
    "relation",
    "gender",
    "birth_date",
    "phone",
    "status",
    "moved_in",
    "moved_out",
    "party",
)


RELATION_WORDS: dict[Relation, list[str]] = {
    Relation.HEAD: _words("户主 本人 户主本人 head self"),
    Relation.SPOUSE: _words("配偶 妻 夫 妻子 丈夫 爱人 spouse wife husband"),
    Relation.CHILD: _words(
        "子女 子 女 儿子 女儿 长子 次子 长女 次女 养子 养女 child son daughter"
    ),
    Relation.PARENT: _words("父母 父 母 父亲 母亲 岳父 岳母 公公 婆婆 parent father mother"),
    Relation.GRANDCHILD: _words("孙子女 孙子 孙女 外孙 外孙女 外孙子 grandchild"),
    Relation.GRANDPARENT: _words("祖父母 祖父 祖母 外祖父 外祖母 爷爷 奶奶 grandparent"),
    Relation.SIBLING: _words("兄弟姐妹 兄 弟 姐 妹 哥哥 弟弟 姐姐 妹妹 sibling"),
    Relation.IN_LAW: _words("儿媳 女婿 媳妇 in_law"),
    Relation.TENANT: _words("租户 租客 承租人 tenant"),
    Relation.OTHER: _words("其他 其它 亲属 other"),
}
PARTY_WORDS: dict[PartyKind | None, list[str]] = {
    PartyKind.FULL: _words("中共党员 党员 正式党员 正式 full party_member"),
    PartyKind.PROBATIONARY: _words("中共预备党员 预备党员 预备 預備 probationary"),
    PartyKind.FLOATING: _words("流动党员 流動黨員 流动 流動 floating"),
    None: _words("群众 群眾 共青团员 团员 无党派人士 无 masses none"),  # not a party member
}
GENDER_WORDS: dict[Gender, list[str]] = {
    Gender.MALE: _words("男 男性 m male"),
    Gender.FEMALE: _words("女 女性 f female"),
}
STATUS_WORDS: dict[ResidenceStatus, list[str]] = {
    ResidenceStatus.REGISTERED: _words("户籍 户籍人口 本地户籍 registered"),
    ResidenceStatus.RESIDENT: _words("常住 常住人口 resident permanent"),
    ResidenceStatus.FLOATING: _words("流动 流动人口 暂住 外来 floating"),
}


@cache
def _vocabulary(kind: str) -> dict[str, Any]:
    vocabularies: dict[str, tuple[Mapping[Any, list[str]], Mapping[Any, str]]] = {
        "relation": (RELATION_WORDS, RELATION),
        "gender": (GENDER_WORDS, GENDER),
        "status": (STATUS_WORDS, RESIDENCE_STATUS),
    }
    words, labels = vocabularies[kind]
    found: dict[str, Any] = {}
    for value, listed in words.items():
        for word in (*listed, *_every_catalog(labels[value]), value.value):
            found.setdefault(comparable(word), value)
    return found


@cache
def _party_vocabulary() -> dict[str, PartyKind | None]:
    found: dict[str, PartyKind | None] = {}
    for value, listed in PARTY_WORDS.items():
        named = (*_every_catalog(PARTY_KIND[value]), value.value) if value is not None else ()
        for word in (*listed, *named):
            found.setdefault(comparable(word), value)
    return found


def parse_party(text: str) -> PartyKind | None:
    """A party membership as people write it (None: not a party member); CellProblem if it
    is none of the words."""
    key = comparable(text[:40])
    found = _party_vocabulary()
    if key not in found:
        raise CellProblem(BAD_PARTY, value=shown(text))
    return found[key]


def parse_word(kind: str, text: str) -> Any:
    """A relation, gender or status as people write it; CellProblem if it is none."""
    found = _vocabulary(kind).get(comparable(text[:40]))
    if found is None:
        reason = {"relation": BAD_RELATION, "gender": BAD_GENDER, "status": BAD_STATUS}[kind]
        raise CellProblem(reason, value=shown(text))
    return found


_DATE_SHAPES = (
    re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T]00:00(?::00(?:\.0+)?)?)?"),
    re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})[日号]?"),
    re.compile(r"(\d{4})(\d{2})(\d{2})"),
)


def parse_date(text: str, *, today: date) -> date | None:
    """A date as people and spreadsheets write it; None for an empty cell; CellProblem if
    it is no date, is before 1900 or is after ``today``."""
    folded = "".join(unicodedata.normalize("NFKC", text[:40]).split())
    if not folded:
        return None
    for shape in _DATE_SHAPES:
        match = shape.fullmatch(folded)
        if match is None:
            continue
        try:
            day = date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            break
        if day.year < 1900:
            raise CellProblem(EARLY_DATE, value=shown(text))
        if day > today:
            raise CellProblem(FUTURE_DATE, value=shown(text))
        return day
    raise CellProblem(BAD_DATE, value=shown(text))


def masked_text(text: str) -> str:
    """What a row says in an ID-number cell, as the errors quote it: ``350***********1234``."""
    number = normalise_id_number(text)
    if len(number) <= 7:
        return "*" * len(number)
    return f"{number[:3]}{'*' * (len(number) - 7)}{number[-4:]}"


@dataclass(frozen=True, slots=True)
class MemberRow:
    """One person as a row of the file says it (before the database is asked)."""

    row: int
    household: str
    name: str
    relation: Relation
    id_number: str
    gender: Gender
    birth_date: date
    status: ResidenceStatus
    phone: str | None = None
    moved_in: date | None = None
    moved_out: date | None = None
    party: PartyKind | None = None


class MemberReader:
    """Reads the rows of a member file one by one; remembers ID numbers to catch repeats."""

    def __init__(self, table: Table, today: date) -> None:
        self.table = table
        self.today = today
        self._first_row: dict[str, int] = {}

    def _error(self, row: int, key: str, problem: CellProblem) -> RowError:
        return RowError(row, self.table.headers.get(key, key), problem.reason, problem.params)

    def read(self, row: Row) -> MemberRow | list[RowError]:
        table, today = self.table, self.today
        errors: list[RowError] = []

        def cell(key: str, read: Callable[[], Any]) -> Any:
            try:
                return read()
            except CellProblem as problem:
                errors.append(self._error(row.number, key, problem))
                return None

        def optional(key: str, read: Callable[[str], Any]) -> Any:
            text = table.cell(row, key)
            return cell(key, lambda: read(text)) if text.strip() else None

        household = cell("household", lambda: _household_code(table, row))
        name = cell("name", lambda: _text(table.cell(row, "name"), 100))
        relation = cell(
            "relation", lambda: parse_word("relation", _filled(table, row, "relation"))
        )
        number = cell("id_number", lambda: _id_number(table, row, today))
        gender = optional("gender", lambda text: parse_word("gender", text))
        born = optional("birth_date", lambda text: parse_date(text, today=today))
        phone = optional("phone", lambda text: _phone(table, row, text))
        status = cell("status", lambda: parse_word("status", _filled(table, row, "status")))
        moved_in = optional("moved_in", lambda text: parse_date(text, today=today))
        moved_out = optional("moved_out", lambda text: parse_date(text, today=today))
        party = optional("party", parse_party)
        if number is not None:
            said = Gender.MALE if is_male(number) else Gender.FEMALE
            if gender is not None and gender != said:
                problem = CellProblem(GENDER_DISAGREES, value=shown(table.cell(row, "gender")))
                errors.append(self._error(row.number, "gender", problem))
            gender = said
            day = birth_date(number)
            if born is not None and born != day:
                problem = CellProblem(BIRTH_DISAGREES, value=born.isoformat(), day=day.isoformat())
                errors.append(self._error(row.number, "birth_date", problem))
            born = day
            first = self._first_row.setdefault(number, row.number)
            if first != row.number:
                problem = CellProblem(DUPLICATE_ID, value=mask_id_number(number), first=first)
                errors.append(self._error(row.number, "id_number", problem))
        if moved_in is not None and moved_out is not None and moved_out < moved_in:
            problem = CellProblem(OUT_BEFORE_IN, value=moved_out.isoformat())
            errors.append(self._error(row.number, "moved_out", problem))
        if errors:
            return errors
        return MemberRow(
            row.number,
            household,
            name,
            relation,
            number,
            gender,
            born,
            status,
            phone,
            moved_in,
            moved_out,
            party,
        )


def _filled(table: Table, row: Row, key: str) -> str:
    text = table.cell(row, key)
    if not text.strip():
        raise CellProblem(EMPTY)
    return text


def _text(raw: str, limit: int) -> str:
    text = clean_text(raw)
    if not text:
        raise CellProblem(EMPTY)
    if len(text) > limit:
        raise CellProblem(TOO_LONG, limit=limit)
    return text


def _household_code(table: Table, row: Row) -> str:
    raw = table.cell(row, "household")
    text = "".join(unicodedata.normalize("NFKC", raw[:64]).split())
    if not text:
        raise CellProblem(EMPTY)
    if table.is_imprecise(row, "household"):
        raise CellProblem(EXCEL_ROUNDED, value=shown(raw))
    if len(text) > 32:
        raise CellProblem(TOO_LONG, limit=32)
    return text


def _id_number(table: Table, row: Row, today: date) -> str:
    raw = table.cell(row, "id_number")
    if not raw.strip():
        raise CellProblem(EMPTY)
    if table.is_imprecise(row, "id_number"):
        raise CellProblem(EXCEL_ROUNDED, value=masked_text(raw))
    try:
        return parse_id_number(raw, today=today)
    except InvalidIdNumber as problem:
        raise CellProblem(problem.message, value=masked_text(raw)) from None


def _phone(table: Table, row: Row, raw: str) -> str:
    if table.is_imprecise(row, "phone"):
        raise CellProblem(EXCEL_ROUNDED, value=shown(raw))
    phone = normalise_phone(raw)
    if phone is None:
        raise CellProblem(BAD_PHONE, value=shown(raw))
    return phone


def parse_members(table: Table, today: date) -> tuple[list[MemberRow], list[RowError]]:
    """Every row of a member file read and checked on its own (pure: no database)."""
    return read_rows(MemberReader(table, today), table.rows)


def read_member_file(data: bytes) -> Table:
    """The table of an uploaded member file; raises FileProblem if it cannot be used."""
    return read_table(data, MEMBER_COLUMNS, catalog_labels(MEMBER_COLUMNS))


# --- the database -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Stored:
    id: int
    values: dict[str, Any]
    grid_path: str


async def import_members(
    session: AsyncSession,
    actor: Person,
    roles: Sequence[RoleInGrid],
    data: bytes,
    *,
    vault: IdVault,
    now: datetime,
    today: date | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import a member file in the caller's transaction (the caller commits): every row
    checked, then all written or — if any row is wrong — nothing. A person is matched by
    the keyed hash of their ID number; only the columns present in the file are written."""
    scope = manage_scope(actor, roles, now)
    today = today or now.date()
    table = await asyncio.to_thread(read_member_file, data)
    reader = MemberReader(table, today)
    total = len(table.rows)
    errors: list[RowError] = []
    households: dict[str, tuple[int, str] | None] = {}
    created = updated = unchanged = 0
    savepoint = await session.begin_nested()
    try:
        for start in range(0, total, CHUNK_ROWS):
            chunk, problems = read_rows(reader, table.rows[start : start + CHUNK_ROWS])
            errors.extend(problems)
            await _load_households(session, households, {m.household for m in chunk})
            digests = {m.row: vault.digest(m.id_number) for m in chunk}
            stored = await _stored_members(session, list(digests.values()))
            inserts: list[dict[str, Any]] = []
            updates: list[dict[str, Any]] = []
            for member in chunk:
                found = households.get(member.household)
                problem: tuple[str, CellProblem] | None = None
                before = stored.get(digests[member.row])
                if found is None:
                    problem = (
                        "household",
                        CellProblem(NO_HOUSEHOLD, value=shown(member.household)),
                    )
                elif not any(within(p, found[1]) for p in scope):
                    problem = (
                        "household",
                        CellProblem(HOUSEHOLD_OUT_OF_SCOPE, value=shown(member.household)),
                    )
                elif before is not None and not any(within(p, before.grid_path) for p in scope):
                    problem = (
                        "id_number",
                        CellProblem(MEMBER_ELSEWHERE, value=mask_id_number(member.id_number)),
                    )
                if problem is not None:
                    key, cell = problem
                    errors.append(
                        RowError(member.row, table.headers[key], cell.reason, cell.params)
                    )
                    continue
                assert found is not None
                values = _values(table, member, found[0], before)
                if before is None:
                    sealed = vault.seal(member.id_number)
                    inserts.append(
                        {
                            **values,
                            "id_cipher": sealed.cipher,
                            "id_hash": sealed.digest,
                            "created_at": now,
                            "updated_at": now,
                        }
                    )
                elif values == before.values:
                    unchanged += 1
                else:
                    updates.append({"id": before.id, **values, "updated_at": now})
            if not errors:
                if inserts:
                    await session.exec(
                        # NULLs written, not left out: one statement for the whole chunk
                        insert(HouseholdMember).execution_options(render_nulls=True),
                        params=inserts,
                    )
                if updates:
                    await session.exec(update(HouseholdMember), params=updates)
                created += len(inserts)
                updated += len(updates)
            if progress is not None:
                await progress(min(start + CHUNK_ROWS, total), total)
    except BaseException:
        await savepoint.rollback()
        raise
    if errors:
        await savepoint.rollback()
        return ImportReport(errors=tuple(sorted(errors, key=error_order)))
    await savepoint.commit()
    report = ImportReport(created=created, updated=updated, unchanged=unchanged)
    audit_import(session, actor, "import:members", report, now)
    return report


def _values(
    table: Table, member: MemberRow, household_id: int, before: _Stored | None
) -> dict[str, Any]:
    """The person's fields after the import: the file's columns over what is stored."""
    old: Mapping[str, Any] = before.values if before is not None else {}

    def kept(key: str, value: Any) -> Any:
        return value if table.has(key) else old.get(key)

    return {
        "household_id": household_id,
        "name": member.name,
        "relation": member.relation,
        "gender": member.gender,
        "birth_date": member.birth_date,
        "phone": kept("phone", member.phone),
        "status": member.status,
        "moved_in": kept("moved_in", member.moved_in),
        "moved_out": kept("moved_out", member.moved_out),
        "party": kept("party", member.party),
    }


async def _load_households(
    session: AsyncSession, known: dict[str, tuple[int, str] | None], codes: Iterable[str]
) -> None:
    wanted = sorted(set(codes) - known.keys())
    for part in _chunks(wanted, LOOKUP_CHUNK):
        rows = await session.exec(
            select(col(Household.id), col(Household.code), col(Grid.path))
            .join(Grid, col(Grid.id) == col(Household.grid_id))
            .where(col(Household.code).in_(part))
        )
        for household_id, code, path in rows:
            assert household_id is not None
            known[code] = (household_id, path)
    for code in wanted:
        known.setdefault(code, None)


async def _stored_members(session: AsyncSession, digests: Sequence[str]) -> dict[str, _Stored]:
    stored: dict[str, _Stored] = {}
    columns = [getattr(HouseholdMember, name) for name in _MEMBER_FIELDS]
    for part in _chunks(digests, LOOKUP_CHUNK):
        rows = await session.exec(
            select(col(HouseholdMember.id), col(HouseholdMember.id_hash), col(Grid.path), *columns)
            .join(Household, col(Household.id) == col(HouseholdMember.household_id))
            .join(Grid, col(Grid.id) == col(Household.grid_id))
            .where(col(HouseholdMember.id_hash).in_(part))
        )
        for found in rows:
            member_id, digest, path = found[0], found[1], found[2]
            assert member_id is not None and digest is not None
            values: dict[str, Any] = dict(zip(_MEMBER_FIELDS, found[3:], strict=True))
            stored[digest] = _Stored(member_id, values, path)
    return stored


# --- the template -----------------------------------------------------------------------------

MEMBER_HELP: dict[str, str] = {
    "household": N_("Required. The code of the household the person lives in (see /export)."),
    "name": N_("Required. The person's full name."),
    "relation": N_("Required. One of: {relations}."),
    "id_number": N_(
        "Required. The 18-character resident ID number. It identifies the person: a row with "
        "a number already registered updates that person. It is stored encrypted."
    ),
    "gender": N_("{genders}. Empty: read from the ID number."),
    "birth_date": N_("For example 2024-03-15. Empty: read from the ID number."),
    "phone": N_("A mobile or landline number, for example 13812345678 or 0592-6123456."),
    "status": N_("Required. One of: {statuses}."),
    "moved_in": N_("When the person came to live here, for example 2024-03-15."),
    "moved_out": N_("When the person left. Their data is erased some years later."),
    "party": N_("{parties}. Empty for someone who is not a party member."),
}
MEMBER_NOTES = (
    N_(
        "Only the first sheet is read. Keep the header row as it is; other columns are "
        "ignored. Format the ID number and phone columns as text, or Excel changes them."
    ),
    N_(
        "Importing the same file again changes nothing. If any row is wrong, nothing is "
        "imported and the bot lists every row to fix."
    ),
)


def member_template(translate: Translate) -> bytes:
    """An empty member list to fill in (XLSX), with a sheet explaining each column."""
    params = {
        "relations": join_list(translate, (translate(x) for x in RELATION.values())),
        "genders": join_list(translate, (translate(x) for x in GENDER.values())),
        "statuses": join_list(translate, (translate(x) for x in RESIDENCE_STATUS.values())),
        "parties": join_list(translate, (translate(x) for x in PARTY_KIND.values())),
    }
    return make_template(
        MEMBER_COLUMNS,
        N_("Household members"),
        MEMBER_HELP,
        MEMBER_NOTES,
        params,
        translate,
        text_keys=("household", "id_number", "phone", "birth_date", "moved_in", "moved_out"),
    )
