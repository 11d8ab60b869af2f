"""Importing households (住户导入) and people (人员导入) from the admin's CSV or XLSX files.

A handler does three things: download the file the admin sent, call one service, render::

    report = await import_households(session, admin, roles, data, now=now, progress=show)
    # report.errors empty: commit, and tell "created / updated / unchanged";
    # otherwise: nothing was written; send report.errors (the first few dozen, and how many
    # more), each rendered with error.render(locale) — plain text: escape it for HTML.

``progress(done, total)`` is awaited after each chunk of CHUNK_ROWS rows checked (and written);
reading the file comes before the first call and runs in a worker thread, so a large workbook
does not stall the bot. Templates to fill in: :func:`household_template`, :func:`people_template`.

What the file can get wrong as a whole (too big, unreadable, no header row, a column missing or
twice) raises :class:`~bot.services.tabular.FileProblem`, an ``InvalidInput``. What rows get
wrong comes back as :class:`RowError` s in the :class:`ImportReport`, every bad cell of every
bad row, and then **nothing** is written (all or nothing). Importing the same file twice changes
nothing the second time.

Households (:func:`import_households`) — columns, Chinese header first, English key accepted:

======================  ====================  =====================================================
户编号 (code)            required              matched against existing households: a known code
                                              updates that household, a new one creates it
网格编码 (grid_code)     required              an existing grid of tier 3, or a grid with no
                                              sub-grids; inside the grids the admin manages
户主姓名 (head_name)     required
联系电话 (phone)         optional              any valid Chinese number (mobile or landline);
                                              stored in E.164 form, ``+8613812345678``
地址 (address)           required
家庭人口 (members)       optional, 0–99        empty means 1
户类别 (categories)      optional              the six categories (六类户) by name, several
                                              separated by 、 ， , ; / or spaces; short names
                                              (低保 五保 重病 重残 空巢 留守 烈属 军属 …) too
重点户 (key)             optional, 是/否       a household in any category is always key
工商企业户 (business)    optional, 是/否
责任网格员 (worker)      optional              the worker's **phone number** (unambiguous); a
                                              name is accepted when exactly one worker of that
                                              name works in the grid. The worker must hold the
                                              worker role over the household's grid.
备注 (note)              optional
======================  ====================  =====================================================

Only the columns present in the file are written: a file without 备注 leaves notes alone. An
empty cell in a present column means "none" (no phone, no category, no worker, no note, 否).
Two rows with the same household code are an error; two households sharing a phone number are
not (a shop and its owner's home often do).

People (:func:`import_people`): 姓名 (name), 手机号 (phone, a mobile number, which identifies the
person), 角色 (role: 网格员, 网格长, 中心, 部门, 督查 …), 网格编码 (grid_code), 部门 (department:
code or name, for department staff). One row per role: a person with two roles takes two rows.
The import adds people and roles, renames people and re-activates roles; it never removes a
role. Administrator and resident roles are not given by file (a ledger listing them still
imports: a role already held is just confirmed).

Headers are matched loosely (full-width characters, spaces, case, ``*`` marks and notes in
brackets do not matter) and also in every catalog's translation of the column labels, so a
ledger exported by :mod:`bot.services.exports` in any language reads back.
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache, lru_cache
from typing import Any, Protocol

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType
from sqlalchemy import insert, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import NotAllowed
from bot.i18n import N_, gettext_for, join_list
from bot.labels import HOUSEHOLD_CATEGORY, ROLE
from bot.services.addresses import address_key
from bot.services.permissions import Action, scope_paths, within
from bot.settings import LOCALES
from models import AuditLog, Grid, Household, HouseholdCategory, Person, Role, RoleAssignment
from models.registry import Department

from .grid_codes import InvalidGridCode, normalize_code, tier_of
from .people import RoleInGrid
from .tabular import Column, Row, Sheet, Table, clean_text, read_table, shown, write_workbook

Translate = Callable[[str], str]
"""A gettext-like callable: msgid in, text in the reader's language out."""

Progress = Callable[[int, int], Awaitable[None]]
"""Called with (rows done, rows in the file) every :data:`CHUNK_ROWS` rows."""


class Importer(Protocol):
    """An import as a handler runs it: (session, actor, roles, data, now=, progress=)."""

    def __call__(
        self,
        session: AsyncSession,
        actor: Person,
        roles: Sequence[RoleInGrid],
        data: bytes,
        *,
        now: datetime,
        progress: Progress | None = None,
    ) -> Awaitable[ImportReport]: ...


CHUNK_ROWS = 2_000  # rows checked and written per step, and how often progress is told
LOOKUP_CHUNK = 1_000  # values in one SQL ``IN (...)``
MAX_MEMBERS = 99

ROW_ERROR = N_("Row {row}, column {column}: {reason}")

# reasons a row is refused; ``value`` is the cell as written, cut short
EMPTY = N_("This cell must not be empty.")
TOO_LONG = N_("This is too long: at most {limit} characters.")
BAD_CODE = N_("The household code {value} may hold only letters, digits and - _ . /")
EXCEL_ROUNDED = N_(
    "Excel has stored {value} as a number and may have changed its last digits. "
    "Format the column as text and type the code again."
)
DUPLICATE_CODE = N_("The household code {value} is also in row {first}.")
BAD_PHONE = N_("{value} is not a valid phone number.")
NOT_MOBILE = N_("{value} is not a mobile phone number.")
BAD_MEMBERS = N_("{value} is not a number of people from 0 to 99.")
BAD_CATEGORY = N_("{value} is not one of the six household categories.")
BAD_YES_NO = N_("{value} is neither yes nor no.")
NO_GRID = N_("There is no grid with the code {value}.")
NOT_LOWEST_GRID = N_("The grid {value} has grids below it; households belong to the lowest ones.")
GRID_OUT_OF_SCOPE = N_("The grid {value} is outside the grids you manage.")
HOUSEHOLD_OUT_OF_SCOPE = N_(
    "The household {value} is registered in a grid outside the grids you manage."
)
NO_WORKER_PHONE = N_("No grid worker has the phone number {value}.")
WORKER_ELSEWHERE = N_(
    "The grid worker with the phone number {value} does not work in grid {grid}."
)
NO_WORKER_NAME = N_("No grid worker named {value} works in grid {grid}.")
AMBIGUOUS_WORKER = N_(
    "Several grid workers named {value} work in grid {grid}; give the phone number instead."
)
BAD_ROLE = N_(
    "{value} is not a role. Use grid worker, grid head, centre, department or supervisor."
)
ROLE_NOT_BY_FILE = N_(
    "The role {value} cannot be given by file; a file may list it only for someone who "
    "already holds it."
)
NEED_DEPARTMENT = N_("Department staff need the department's code or name.")
NO_DEPARTMENT = N_("There is no department {value}.")
AMBIGUOUS_DEPARTMENT = N_("Several departments are named {value}; use the department's code.")
PHONE_OTHER_NAME = N_("The phone number {value} belongs to {name} in row {first}.")
DUPLICATE_ROLE = N_("The same person, role and grid are already in row {first}.")
SHARED_PHONE = N_("Several people are registered with the phone number {value}.")
NOT_AN_ADMIN = N_("Only an administrator can import households and people.")


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowError:
    """A bad cell: the row as the admin sees it in Excel (header = row 1 of a plain file),
    the column's header as written in the file, and why (a msgid with ``params``)."""

    row: int
    column: str
    reason: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def render(self, locale: str) -> str:
        """One line in the admin's language (plain text: escape it before sending as HTML)."""
        reason = gettext_for(locale, self.reason, **self.params)
        return gettext_for(locale, ROW_ERROR, row=self.row, column=self.column, reason=reason)


@dataclass(frozen=True)
class ImportReport:
    """What an import did; with errors it did nothing (created = updated = unchanged = 0)."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: tuple[RowError, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def bad_rows(self) -> tuple[int, ...]:
        """The numbers of the rows to fix, in order."""
        return tuple(sorted({e.row for e in self.errors}))


class _CellError(Exception):
    def __init__(self, reason: str, **params: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.params = params


# --- columns ----------------------------------------------------------------------------------

HOUSEHOLD_COLUMNS: tuple[Column, ...] = (
    Column(
        "code",
        N_("Household code"),
        ("户编号", "户号", "户编码", "住户编号", "household_code"),
        required=True,
    ),
    Column(
        "grid_code",
        N_("Grid code"),
        ("网格编码", "网格编号", "网格代码", "所属网格编码", "所属网格", "grid"),
        required=True,
    ),
    Column("head_name", N_("Head of household"), ("户主姓名", "户主", "head"), required=True),
    Column(
        "phone",
        N_("Contact phone"),
        ("联系电话", "电话", "联系方式", "手机号", "手机号码", "手机", "tel", "mobile"),
    ),
    Column(
        "address",
        N_("Household address"),
        ("地址", "住址", "家庭住址", "详细地址", "address"),
        required=True,
    ),
    Column("members", N_("Household members"), ("家庭人口", "家庭人数", "人口", "人口数", "人数")),
    Column(
        "categories",
        N_("Household categories"),
        ("户类别", "类别", "户类型", "六类户", "类型", "category"),
    ),
    Column("key", N_("Key household"), ("重点户", "是否重点户", "is_key")),
    Column("business", N_("Business household"), ("工商企业户", "企业户", "is_business")),
    Column(
        "worker",
        N_("Responsible grid worker (phone)"),
        ("责任网格员", "网格员", "网格员电话", "网格员手机号", "worker_phone"),
    ),
    Column("note", N_("Remarks"), ("备注", "说明", "notes", "remark")),
)

PEOPLE_COLUMNS: tuple[Column, ...] = (
    Column("name", N_("Full name"), ("姓名", "名字", "人员姓名"), required=True),
    Column(
        "phone",
        N_("Mobile number"),
        ("手机号", "手机号码", "手机", "联系电话", "电话", "mobile"),
        required=True,
    ),
    Column("role", N_("Role"), ("角色", "职务", "岗位", "身份"), required=True),
    Column(
        "grid_code",
        N_("Grid code"),
        ("网格编码", "网格编号", "网格代码", "所属网格编码", "所属网格", "grid"),
        required=True,
    ),
    Column(
        "department",
        N_("Department (code or name)"),
        ("部门", "所属部门", "职能部门", "部门编码", "department_code"),
    ),
)


def _words(text: str) -> list[str]:
    return text.split()


# the longest each field may be (the table's column sizes)
LIMITS = {"code": 32, "head_name": 50, "address": 200, "note": 500, "name": 100}

YES_WORDS = _words("是 是的 有 对 y yes true t 1 √ ✓ ✔")
NO_WORDS = _words("否 不是 无 没有 不 非 n no false f 0 × ✗ ✘")
YES, NO = N_("yes"), N_("no")

# the six categories (六类户) as people write them, besides their labels in every catalog
CATEGORY_WORDS: dict[HouseholdCategory, list[str]] = {
    HouseholdCategory.SUBSISTENCE: _words(
        "低保五保户 低保五保 低保户 五保户 低保 五保 subsistence"
    ),
    HouseholdCategory.ILLNESS_DISABILITY: (
        _words("重病重残户 重病重残 重病户 重残户 重病 重残 重殘 illness_disability")
    ),
    HouseholdCategory.POVERTY_RISK: (
        _words("易返贫致贫户 易返贫致贫 返贫致贫 易返贫 易致贫 返贫 致贫 poverty_risk")
    ),
    HouseholdCategory.EMPTY_NEST: _words("空巢老人户 空巢老人 空巢户 空巢 empty_nest"),
    HouseholdCategory.LEFT_BEHIND_CHILDREN: (
        _words("留守儿童户 留守儿童 留守户 留守 left_behind_children")
    ),
    HouseholdCategory.MILITARY_MARTYR: (
        _words("烈属军属户 烈属军属 烈属户 军属户 烈属 军属 烈屬 軍屬 military_martyr")
    ),
}
NO_CATEGORY_WORDS = _words("无 普通 普通户 none - — /")

# roles as people write them, besides their labels in every catalog
ROLE_WORDS: dict[Role, list[str]] = {
    Role.WORKER: _words("网格员 专职网格员 兼职网格员 worker"),
    Role.HEAD: _words("网格长 head"),
    Role.CENTER: _words("中心 综合调处中心 调处中心 分中心 中心操作员 center centre"),
    Role.DEPARTMENT: _words("部门 职能部门 部门人员 department"),
    Role.SUPERVISOR: _words("督查 督查组 督查员 纪委 supervisor"),
    Role.ADMIN: _words("管理员 系统管理员 admin administrator"),
    Role.RESIDENT: _words("居民 群众 村民 resident"),
}
ROLES_BY_FILE = frozenset({Role.WORKER, Role.HEAD, Role.CENTER, Role.DEPARTMENT, Role.SUPERVISOR})


def _word(text: str) -> str:
    """A word as compared: NFKC, case-folded, without spaces."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text).casefold() if not ch.isspace())


def _in_every_catalog(msgid: str) -> set[str]:
    return {gettext_for(locale, msgid) for locale in LOCALES}


@cache
def _catalog_labels(columns: tuple[Column, ...]) -> dict[str, set[str]]:
    return {c.key: _in_every_catalog(c.label) for c in columns}


@cache
def _yes_no() -> dict[str, bool]:
    words = {_word(w): True for w in (*YES_WORDS, *_in_every_catalog(YES))}
    words.update({_word(w): False for w in (*NO_WORDS, *_in_every_catalog(NO))})
    return words


@cache
def _categories() -> dict[str, int]:
    words = {_word(w): 0 for w in NO_CATEGORY_WORDS}
    for category, names in CATEGORY_WORDS.items():
        for name in (*names, *_in_every_catalog(HOUSEHOLD_CATEGORY[category])):
            words[_word(name)] = int(category)
    return words


@cache
def _roles() -> dict[str, Role]:
    words: dict[str, Role] = {}
    for role, names in ROLE_WORDS.items():
        for name in (*names, *_in_every_catalog(ROLE[role])):
            words.setdefault(_word(name), role)
    return words


# --- cells ------------------------------------------------------------------------------------


def normalise_phone(text: str) -> str | None:
    """A phone number as people write it (``138 1234 5678``, ``0592-6123456``, ``+86…``,
    full-width digits) in E.164 form, or None if it is not a valid number (region CN).

    Mainland mobile numbers, nearly every number in a household list, are checked against
    phonenumbers' own pattern for them directly: a full parse costs a hundred times more.
    """
    folded = unicodedata.normalize("NFKC", text[:64]).strip()
    if not folded or len(folded) > 32:
        return None
    mobile = _MAINLAND_MOBILE.fullmatch(_PHONE_SEPARATORS.sub("", folded))
    if mobile is not None and _cn_mobile().fullmatch(mobile.group(1)):
        return "+86" + mobile.group(1)
    return _parsed_phone(folded)


_PHONE_SEPARATORS = re.compile(r"[\s\-().]")
_MAINLAND_MOBILE = re.compile(r"(?:\+86|0086|86)?(1\d{10})")


@cache
def _cn_mobile() -> re.Pattern[str]:
    """The national numbers phonenumbers takes for Chinese mobiles."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region("CN")
    mobile = metadata.mobile if metadata is not None else None
    pattern = mobile.national_number_pattern if mobile is not None else None
    return re.compile(pattern or "(?!)")  # without metadata every number takes the full parse


@lru_cache(maxsize=16_384)
def _parsed_phone(text: str) -> str | None:
    try:
        number = phonenumbers.parse(text, "CN")
    except NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return str(phonenumbers.format_number(number, PhoneNumberFormat.E164))


def is_mobile(e164: str) -> bool:
    if e164.startswith("+86") and _cn_mobile().fullmatch(e164[3:]):
        return True
    number = phonenumbers.parse(e164, None)
    kind = phonenumbers.number_type(number)
    return kind in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)


def display_phone(stored: str) -> str:
    """A stored number as a Chinese ledger shows it: ``13812345678``, ``05926123456``;
    numbers abroad in international form. Anything unparsable is shown as stored."""
    if stored.startswith("+86") and _cn_mobile().fullmatch(stored[3:]):
        return stored[3:]
    return _displayed(stored)


@lru_cache(maxsize=4_096)
def _displayed(stored: str) -> str:
    try:
        number = phonenumbers.parse(stored, "CN")
    except NumberParseException:
        return stored
    if number.country_code == 86:
        national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
        return "".join(ch for ch in str(national) if ch.isdigit())
    return str(phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL))


def _required_text(table: Table, row: Row, key: str) -> str:
    text = clean_text(table.cell(row, key))
    if not text:
        raise _CellError(EMPTY)
    return _limited(text, key)


def _optional_text(table: Table, row: Row, key: str) -> str | None:
    text = clean_text(table.cell(row, key))
    return _limited(text, key) if text else None


def _limited(text: str, key: str) -> str:
    limit = LIMITS.get(key)
    if limit is not None and len(text) > limit:
        raise _CellError(TOO_LONG, limit=limit)
    return text


_CODE_CHARS = re.compile(r"[\w\-./]+")
_SCIENTIFIC = re.compile(r"\d+(\.\d+)?e\+?\d+", re.IGNORECASE)


def _code(table: Table, row: Row, key: str, *, grid: bool = False) -> str:
    """A household or grid code: full-width folded, spaces dropped, not mangled by Excel."""
    raw = table.cell(row, key)
    if raw.isascii() and raw.isalnum():
        text = raw  # the usual case, already clean
    elif grid:
        text = normalize_code(raw)
    else:
        text = "".join(unicodedata.normalize("NFKC", raw).split())
    if not text:
        raise _CellError(EMPTY)
    if table.is_imprecise(row, key) or _SCIENTIFIC.fullmatch(text):
        raise _CellError(EXCEL_ROUNDED, value=shown(raw))
    if len(text) > 32:
        raise _CellError(TOO_LONG, limit=32)
    if not grid and not _CODE_CHARS.fullmatch(text):
        raise _CellError(BAD_CODE, value=shown(raw))
    return text


def _phone(table: Table, row: Row, key: str, *, mobile: bool = False) -> str | None:
    raw = table.cell(row, key)
    if not raw.strip():
        return None
    if table.is_imprecise(row, key):
        raise _CellError(EXCEL_ROUNDED, value=shown(raw))
    phone = normalise_phone(raw)
    if phone is None:
        raise _CellError(BAD_PHONE, value=shown(raw))
    if mobile and not is_mobile(phone):
        raise _CellError(NOT_MOBILE, value=shown(raw))
    return phone


def _members(table: Table, row: Row) -> int:
    raw = table.cell(row, "members")
    text = _word(raw[:40]).removesuffix("人").removesuffix("口")
    if not text:
        return 1
    if text.endswith(".0"):
        text = text[:-2]  # Excel's numbers, written as text by some tools
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_MEMBERS:
        raise _CellError(BAD_MEMBERS, value=shown(raw))
    return int(text)


def _yes(table: Table, row: Row, key: str) -> bool | None:
    raw = table.cell(row, key)
    if not raw.strip():
        return None
    answer = _yes_no().get(_word(raw[:40]))
    if answer is None:
        raise _CellError(BAD_YES_NO, value=shown(raw))
    return answer


_CATEGORY_SEPARATORS = re.compile(r"[、，,;；|\n]+")
_CATEGORY_SPLIT = re.compile(r"[\s/]+")


def parse_categories(text: str) -> int:
    """The HouseholdCategory flags written in a cell; raise on a word that is none of them.

    Pieces are separated by 、 ， , ; ； | or line breaks; a piece that is not a category as a
    whole is split again on spaces and ``/``.
    """
    known = _categories()
    flags = 0
    for piece in _CATEGORY_SEPARATORS.split(text[:2000]):
        word = _word(piece)
        if not word:
            continue
        if word in known:
            flags |= known[word]
            continue
        for part in _CATEGORY_SPLIT.split(piece):
            if not part:
                continue
            found = known.get(_word(part))
            if found is None:
                raise _CellError(BAD_CATEGORY, value=shown(part))
            flags |= found
    return flags


# --- households: reading rows -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HouseholdRow:
    """One household as a row of the file says it (before the database is asked)."""

    row: int
    code: str
    grid_code: str
    head_name: str
    address: str
    phone: str | None = None
    members: int = 1
    categories: int = 0
    key: bool = False
    business: bool = False
    worker_phone: str | None = None
    worker_name: str | None = None
    note: str | None = None


class HouseholdReader:
    """Reads the rows of a household file one by one; remembers codes to catch repeats."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self._first_row: dict[str, int] = {}

    def read(self, row: Row) -> HouseholdRow | list[RowError]:
        table = self.table
        errors: list[RowError] = []

        def cell(key: str, read: Callable[[], Any]) -> Any:
            try:
                return read()
            except _CellError as problem:
                errors.append(_error(table, row.number, key, problem))
                return None

        code = cell("code", lambda: _code(table, row, "code"))
        grid_code = cell("grid_code", lambda: _code(table, row, "grid_code", grid=True))
        head_name = cell("head_name", lambda: _required_text(table, row, "head_name"))
        address = cell("address", lambda: _required_text(table, row, "address"))
        phone = cell("phone", lambda: _phone(table, row, "phone")) if table.has("phone") else None
        members = cell("members", lambda: _members(table, row)) if table.has("members") else 1
        categories = (
            cell("categories", lambda: parse_categories(table.cell(row, "categories")))
            if table.has("categories")
            else 0
        )
        key = cell("key", lambda: _yes(table, row, "key")) if table.has("key") else None
        business = (
            cell("business", lambda: _yes(table, row, "business"))
            if table.has("business")
            else None
        )
        worker_phone = worker_name = None
        if table.has("worker"):
            raw = table.cell(row, "worker")
            if raw.strip():
                worker_phone = normalise_phone(raw)
                if worker_phone is None:
                    worker_name = cell("worker", lambda: _worker_name(raw))
        note = (
            cell("note", lambda: _optional_text(table, row, "note")) if table.has("note") else None
        )

        if code is not None:
            first = self._first_row.setdefault(code, row.number)
            if first != row.number:
                errors.append(
                    RowError(
                        row.number,
                        table.headers["code"],
                        DUPLICATE_CODE,
                        {"value": code, "first": first},
                    )
                )
        if errors:
            return errors
        return HouseholdRow(
            row=row.number,
            code=code,
            grid_code=grid_code,
            head_name=head_name,
            address=address,
            phone=phone,
            members=members,
            categories=categories or 0,
            key=bool(key),
            business=bool(business),
            worker_phone=worker_phone,
            worker_name=worker_name,
            note=note,
        )


def _worker_name(raw: str) -> str:
    """A worker given by name; digits that are no phone number are a bad number, not a name."""
    if _PHONE_SEPARATORS.sub("", unicodedata.normalize("NFKC", raw[:64])).lstrip("+").isdigit():
        raise _CellError(BAD_PHONE, value=shown(raw))
    return _limited(clean_text(raw), "name")


def parse_households(table: Table) -> tuple[list[HouseholdRow], list[RowError]]:
    """Every row of a household file read and checked on its own (pure: no database)."""
    reader = HouseholdReader(table)
    good: list[HouseholdRow] = []
    errors: list[RowError] = []
    for row in table.rows:
        result = reader.read(row)
        if isinstance(result, list):
            errors.extend(result)
        else:
            good.append(result)
    return good, errors


def read_household_file(data: bytes) -> Table:
    """The table of an uploaded household file; raises FileProblem if it cannot be used."""
    return read_table(data, HOUSEHOLD_COLUMNS, _catalog_labels(HOUSEHOLD_COLUMNS))


def read_people_file(data: bytes) -> Table:
    """The table of an uploaded people file; raises FileProblem if it cannot be used."""
    return read_table(data, PEOPLE_COLUMNS, _catalog_labels(PEOPLE_COLUMNS))


# --- households: the database -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _GridInfo:
    id: int
    code: str
    tier: int
    path: str
    has_children: bool

    @property
    def takes_households(self) -> bool:
        """Households live in tier-3 grids, or in the lowest grids of a shallower tree."""
        return self.tier >= 1 and (self.tier == 3 or not self.has_children)


_HOUSEHOLD_FIELDS = (
    "grid_id",
    "worker_id",
    "address",
    "address_key",
    "head_name",
    "phone",
    "members",
    "categories",
    "is_key",
    "is_business",
    "note",
)


@dataclass(frozen=True, slots=True)
class _Stored:
    """A household already in the database: its id, fields and the path of its grid."""

    id: int
    values: dict[str, Any]
    grid_path: str


class _Workers:
    """Active grid workers (网格员) with the grids they cover, by phone and by name."""

    def __init__(self, rows: Iterable[tuple[int, str | None, str, str]]) -> None:
        self.by_phone: dict[str, list[tuple[int, str]]] = {}
        self.by_name: dict[str, list[tuple[int, str]]] = {}
        for person_id, phone, name, path in rows:
            e164 = normalise_phone(phone) if phone else None
            if e164 is not None:
                self.by_phone.setdefault(e164, []).append((person_id, path))
            self.by_name.setdefault(_word(name), []).append((person_id, path))

    def find(self, household: HouseholdRow, grid: _GridInfo) -> int | None:
        """The worker of a household row, or raise _CellError saying why there is none."""
        if household.worker_phone is not None:
            held = self.by_phone.get(household.worker_phone, [])
            if not held:
                raise _CellError(NO_WORKER_PHONE, value=display_phone(household.worker_phone))
            for person_id, path in held:
                if within(path, grid.path):
                    return person_id
            raise _CellError(
                WORKER_ELSEWHERE, value=display_phone(household.worker_phone), grid=grid.code
            )
        if household.worker_name is not None:
            named = {
                person_id
                for person_id, path in self.by_name.get(_word(household.worker_name), [])
                if within(path, grid.path)
            }
            if not named:
                raise _CellError(
                    NO_WORKER_NAME, value=shown(household.worker_name), grid=grid.code
                )
            if len(named) > 1:
                raise _CellError(
                    AMBIGUOUS_WORKER, value=shown(household.worker_name), grid=grid.code
                )
            return named.pop()
        return None


async def import_households(
    session: AsyncSession,
    actor: Person,
    roles: Sequence[RoleInGrid],
    data: bytes,
    *,
    now: datetime,
    progress: Progress | None = None,
) -> ImportReport:
    """Import a household file (CSV or XLSX bytes) in the caller's transaction; the caller commits.

    Only an administrator may (``Action.MANAGE``), and only into the grids they manage: else
    NotAllowed. A file that cannot be read raises FileProblem. Otherwise the report tells what
    was created, updated and left unchanged — or, if any row is bad, every bad cell, and then
    nothing at all is written. Rows are checked and written in chunks of CHUNK_ROWS with
    set-based look-ups and bulk statements; ``progress`` hears after each chunk.
    """
    scope = _manage_scope(actor, roles, now)
    table = await asyncio.to_thread(read_household_file, data)  # CPU-bound: keep the loop free
    reader = HouseholdReader(table)
    total = len(table.rows)
    workers: _Workers | None = None
    grids: dict[str, _GridInfo | None] = {}
    errors: list[RowError] = []
    created = updated = unchanged = 0
    savepoint = await session.begin_nested()
    try:
        for start in range(0, total, CHUNK_ROWS):
            chunk: list[HouseholdRow] = []
            for row in table.rows[start : start + CHUNK_ROWS]:
                result = reader.read(row)
                if isinstance(result, list):
                    errors.extend(result)
                else:
                    chunk.append(result)
            await _load_grids(session, grids, {h.grid_code for h in chunk})
            if workers is None and any(h.worker_phone or h.worker_name for h in chunk):
                workers = await _load_workers(session)
            stored = await _stored_households(session, [h.code for h in chunk])
            inserts: list[dict[str, Any]] = []
            updates: list[dict[str, Any]] = []
            for household in chunk:
                try:
                    grid = _household_grid(household, grids, scope)
                except _CellError as problem:
                    errors.append(_error(table, household.row, "grid_code", problem))
                    continue
                before = stored.get(household.code)
                if before is not None and not any(within(p, before.grid_path) for p in scope):
                    errors.append(
                        RowError(
                            household.row,
                            table.headers["code"],
                            HOUSEHOLD_OUT_OF_SCOPE,
                            {"value": shown(household.code)},
                        )
                    )
                    continue
                worker_id: int | None = None
                try:
                    worker_id = workers.find(household, grid) if workers is not None else None
                except _CellError as problem:
                    errors.append(_error(table, household.row, "worker", problem))
                    continue
                values = _household_values(table, household, grid, worker_id, before)
                if before is None:
                    inserts.append(
                        {"code": household.code, **values, "created_at": now, "updated_at": now}
                    )
                elif values == before.values:
                    unchanged += 1
                else:
                    updates.append({"id": before.id, **values, "updated_at": now})
            if not errors:
                if inserts:
                    await session.exec(insert(Household), params=inserts)
                if updates:
                    await session.exec(update(Household), params=updates)
                created += len(inserts)
                updated += len(updates)
            if progress is not None:
                await progress(min(start + CHUNK_ROWS, total), total)
    except BaseException:
        await savepoint.rollback()
        raise
    if errors:
        await savepoint.rollback()
        return ImportReport(errors=tuple(sorted(errors, key=_error_order)))
    await savepoint.commit()
    report = ImportReport(created=created, updated=updated, unchanged=unchanged)
    _audit_import(session, actor, "import:households", report, now)
    return report


def _household_grid(
    household: HouseholdRow, grids: Mapping[str, _GridInfo | None], scope: Sequence[str]
) -> _GridInfo:
    grid = grids.get(household.grid_code)
    if grid is None:
        raise _grid_not_found(household.grid_code)
    if not any(within(p, grid.path) for p in scope):
        raise _CellError(GRID_OUT_OF_SCOPE, value=grid.code)
    if not grid.takes_households:
        raise _CellError(NOT_LOWEST_GRID, value=grid.code)
    return grid


def _grid_not_found(code: str) -> _CellError:
    """Why a grid code is unknown: its shape if it is malformed, else that it does not exist."""
    try:
        tier_of(code)
    except InvalidGridCode as problem:
        return _CellError(problem.message, **problem.params)
    return _CellError(NO_GRID, value=shown(code))


def _household_values(
    table: Table,
    household: HouseholdRow,
    grid: _GridInfo,
    worker_id: int | None,
    before: _Stored | None,
) -> dict[str, Any]:
    """The household's fields after the import: the file's columns over what is stored."""
    old: dict[str, Any] = (
        before.values
        if before is not None
        else {
            "worker_id": None,
            "phone": None,
            "members": 1,
            "categories": 0,
            "is_key": False,
            "is_business": False,
            "note": None,
        }
    )
    categories = household.categories if table.has("categories") else old["categories"]
    if table.has("key"):
        marked_key = household.key
    else:  # keep a key mark made by hand, not one that only followed from the categories
        marked_key = bool(old["is_key"]) and not old["categories"]
    return {
        "grid_id": grid.id,
        "worker_id": worker_id if table.has("worker") else old["worker_id"],
        "address": household.address,
        "address_key": address_key(household.address),
        "head_name": household.head_name,
        "phone": household.phone if table.has("phone") else old["phone"],
        "members": household.members if table.has("members") else old["members"],
        "categories": categories,
        "is_key": marked_key or categories != 0,
        "is_business": household.business if table.has("business") else old["is_business"],
        "note": household.note if table.has("note") else old["note"],
    }


async def _load_grids(
    session: AsyncSession, known: dict[str, _GridInfo | None], codes: Iterable[str]
) -> None:
    """Add the grids of ``codes`` not yet looked up to ``known`` (None: no such grid)."""
    wanted = sorted(set(codes) - known.keys())
    found: dict[str, tuple[int, int, str]] = {}
    for part in _chunks(wanted, LOOKUP_CHUNK):
        rows = await session.exec(
            select(col(Grid.id), col(Grid.code), col(Grid.tier), col(Grid.path)).where(
                col(Grid.code).in_(part)
            )
        )
        for grid_id, code, tier, path in rows:
            assert grid_id is not None
            found[code] = (grid_id, tier, path)
    parents: set[int] = set()
    for ids in _chunks(sorted(g[0] for g in found.values()), LOOKUP_CHUNK):
        rows_ = await session.exec(
            select(col(Grid.parent_id)).where(col(Grid.parent_id).in_(ids)).distinct()
        )
        parents.update(p for p in rows_ if p is not None)
    for code in wanted:
        hit = found.get(code)
        known[code] = (
            None
            if hit is None
            else _GridInfo(hit[0], code, hit[1], hit[2], has_children=hit[0] in parents)
        )


async def _load_workers(session: AsyncSession) -> _Workers:
    rows = await session.exec(
        select(col(Person.id), col(Person.phone), col(Person.name), col(Grid.path))
        .join(RoleAssignment, col(RoleAssignment.person_id) == col(Person.id))
        .join(Grid, col(Grid.id) == col(RoleAssignment.grid_id))
        .where(
            col(RoleAssignment.role) == Role.WORKER,
            col(RoleAssignment.active).is_(True),
            col(Person.active).is_(True),
        )
    )
    return _Workers(
        (person_id, phone, name, path)
        for person_id, phone, name, path in rows
        if person_id is not None
    )


async def _stored_households(session: AsyncSession, codes: Sequence[str]) -> dict[str, _Stored]:
    stored: dict[str, _Stored] = {}
    columns = [getattr(Household, name) for name in _HOUSEHOLD_FIELDS]
    for part in _chunks(codes, LOOKUP_CHUNK):
        rows = await session.exec(
            select(col(Household.id), col(Household.code), col(Grid.path), *columns)
            .join(Grid, col(Grid.id) == col(Household.grid_id))
            .where(col(Household.code).in_(part))
        )
        for found in rows:
            household_id, code, path = found[0], found[1], found[2]
            assert household_id is not None
            values: dict[str, Any] = dict(zip(_HOUSEHOLD_FIELDS, found[3:], strict=True))
            stored[code] = _Stored(household_id, values, path)
    return stored


# --- people -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PersonRow:
    """One role of one person as a row of the file says it."""

    row: int
    name: str
    phone: str  # E.164
    role: Role
    grid_code: str
    department: str | None = None
    role_text: str = ""  # the role as written, to quote back


def parse_role(text: str) -> Role:
    """A role as people write it (网格员, 网格长, 中心, 部门, 督查 … or the English names)."""
    role = _roles().get(_word(text[:80]))
    if role is None:
        raise _CellError(BAD_ROLE, value=shown(text))
    return role


class PeopleReader:
    """Reads the rows of a people file one by one; catches a phone number given two names
    and the same role given twice."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self._names: dict[str, tuple[str, int]] = {}
        self._roles: dict[tuple[str, Role, str], int] = {}

    def read(self, row: Row) -> PersonRow | list[RowError]:
        table = self.table
        errors: list[RowError] = []

        def cell(key: str, read: Callable[[], Any]) -> Any:
            try:
                return read()
            except _CellError as problem:
                errors.append(_error(table, row.number, key, problem))
                return None

        name = cell("name", lambda: _required_text(table, row, "name"))
        phone = cell("phone", lambda: _required(_phone(table, row, "phone", mobile=True)))
        role = cell("role", lambda: parse_role(table.cell(row, "role")))
        grid_code = cell("grid_code", lambda: _code(table, row, "grid_code", grid=True))
        department = cell("department", lambda: _department_text(table, row))
        if role == Role.DEPARTMENT and department is None and not table.has("department"):
            errors.append(_error(table, row.number, "role", _CellError(NEED_DEPARTMENT)))
        if phone is not None and name is not None:
            first_name, first_row = self._names.setdefault(phone, (name, row.number))
            if _word(first_name) != _word(name):
                problem = _CellError(
                    PHONE_OTHER_NAME,
                    value=display_phone(phone),
                    name=shown(first_name),
                    first=first_row,
                )
                errors.append(_error(table, row.number, "phone", problem))
            if role is not None and grid_code is not None:
                first = self._roles.setdefault((phone, role, grid_code), row.number)
                if first != row.number:
                    problem = _CellError(DUPLICATE_ROLE, first=first)
                    errors.append(_error(table, row.number, "role", problem))
        if errors:
            return errors
        role_text = shown(table.cell(row, "role"))
        return PersonRow(row.number, name, phone, role, grid_code, department, role_text)


def _required(value: str | None) -> str:
    if value is None:
        raise _CellError(EMPTY)
    return value


def _department_text(table: Table, row: Row) -> str | None:
    text = clean_text(table.cell(row, "department"))
    if len(text) > 100:
        raise _CellError(TOO_LONG, limit=100)
    return text or None


def parse_people(table: Table) -> tuple[list[PersonRow], list[RowError]]:
    """Every row of a people file read and checked on its own (pure: no database)."""
    reader = PeopleReader(table)
    good: list[PersonRow] = []
    errors: list[RowError] = []
    for row in table.rows:
        result = reader.read(row)
        if isinstance(result, list):
            errors.extend(result)
        else:
            good.append(result)
    return good, errors


@dataclass
class _PeoplePlan:
    """What a people import will write."""

    new_people: dict[str, str] = field(default_factory=dict)  # phone -> name
    renames: dict[int, str] = field(default_factory=dict)  # person id -> name
    new_roles: dict[tuple[str, Role, int], int | None] = field(default_factory=dict)
    revived_roles: dict[int, int | None] = field(default_factory=dict)  # assignment -> dept


async def import_people(
    session: AsyncSession,
    actor: Person,
    roles: Sequence[RoleInGrid],
    data: bytes,
    *,
    now: datetime,
    progress: Progress | None = None,
) -> ImportReport:
    """Import a people file (workers, heads, centre, department and supervisor staff).

    A person is matched by phone number among active people and created if new (they link
    their Telegram account later, by invitation); a changed name is updated; each row's role
    over its grid is added, or re-activated if it had ended. Roles missing from the file are
    left alone. A row counts as created if it adds a person or a role, as updated if it
    renames a person or re-activates a role. Refusals, errors and all-or-nothing as in
    :func:`import_households`; the caller commits.
    """
    scope = _manage_scope(actor, roles, now)
    table = await asyncio.to_thread(read_people_file, data)
    rows, errors = parse_people(table)
    grids: dict[str, _GridInfo | None] = {}
    await _load_grids(session, grids, {p.grid_code for p in rows})
    departments = await _load_departments(session)
    people = await _people_by_phone(session, {p.phone for p in rows})
    held = await _assignments_of(session, [m[0][0] for m in people.values() if len(m) == 1])
    plan = _PeoplePlan()
    created = updated = unchanged = 0
    for person in rows:
        try:
            grid_id, department_id = _role_target(person, grids, scope, departments)
        except _RowProblem as problem:
            errors.append(_error(table, person.row, problem.key, problem.cell))
            continue
        matches = people.get(person.phone, [])
        if len(matches) > 1:
            shared = _CellError(SHARED_PHONE, value=display_phone(person.phone))
            errors.append(_error(table, person.row, "phone", shared))
            continue
        target = (person.phone, person.role, grid_id)
        person_id, name = matches[0] if matches else (None, person.name)
        assignment = held.get((person_id, person.role, grid_id)) if person_id else None
        confirmed = assignment is not None and assignment[1] and assignment[2] == department_id
        if not confirmed and person.role not in ROLES_BY_FILE:
            refused = _CellError(ROLE_NOT_BY_FILE, value=person.role_text)
            errors.append(_error(table, person.row, "role", refused))
            continue
        if person_id is None:
            plan.new_people.setdefault(person.phone, person.name)
            plan.new_roles[target] = department_id
            created += 1
            continue
        renamed = name != person.name and person_id not in plan.renames
        if renamed:
            plan.renames[person_id] = person.name
        if assignment is None:
            plan.new_roles[target] = department_id
            created += 1
        elif not confirmed:
            plan.revived_roles[assignment[0]] = department_id
            updated += 1
        elif renamed:
            updated += 1
        else:
            unchanged += 1
    if progress is not None:
        await progress(len(table.rows), len(table.rows))
    if errors:
        return ImportReport(errors=tuple(sorted(errors, key=_error_order)))
    await _write_people(session, plan, now)
    report = ImportReport(created=created, updated=updated, unchanged=unchanged)
    _audit_import(session, actor, "import:people", report, now)
    return report


class _RowProblem(Exception):
    def __init__(self, key: str, cell: _CellError) -> None:
        super().__init__(key)
        self.key = key
        self.cell = cell


def _role_target(
    person: PersonRow,
    grids: Mapping[str, _GridInfo | None],
    scope: Sequence[str],
    departments: Sequence[Department],
) -> tuple[int, int | None]:
    """The grid id and department id of a person's row, or _RowProblem saying what is wrong."""
    grid = grids.get(person.grid_code)
    if grid is None:
        raise _RowProblem("grid_code", _grid_not_found(person.grid_code))
    if not any(within(p, grid.path) for p in scope):
        raise _RowProblem("grid_code", _CellError(GRID_OUT_OF_SCOPE, value=grid.code))
    if person.role != Role.DEPARTMENT:
        return grid.id, None
    try:
        return grid.id, _department(departments, person.department or "")
    except _CellError as problem:
        raise _RowProblem("department", problem) from None


async def _write_people(session: AsyncSession, plan: _PeoplePlan, now: datetime) -> None:
    phones = sorted(plan.new_people)
    for part in _chunks(phones, CHUNK_ROWS):
        await session.exec(
            insert(Person),
            params=[
                {"name": plan.new_people[p], "phone": p, "created_at": now, "updated_at": now}
                for p in part
            ],
        )
    ids = {
        phone: matches[0][0]
        for phone, matches in (
            await _people_by_phone(session, {k[0] for k in plan.new_roles})
        ).items()
        if matches
    }
    if plan.renames:
        await session.exec(
            update(Person),
            params=[{"id": i, "name": n, "updated_at": now} for i, n in plan.renames.items()],
        )
    if plan.new_roles:
        await session.exec(
            insert(RoleAssignment),
            params=[
                {
                    "person_id": ids[phone],
                    "role": role,
                    "grid_id": grid_id,
                    "department_id": department_id,
                    "active": True,
                    "created_at": now,
                }
                for (phone, role, grid_id), department_id in plan.new_roles.items()
            ],
        )
    if plan.revived_roles:
        await session.exec(
            update(RoleAssignment),
            params=[
                {"id": i, "active": True, "department_id": d}
                for i, d in plan.revived_roles.items()
            ],
        )


async def _people_by_phone(
    session: AsyncSession, phones: Iterable[str]
) -> dict[str, list[tuple[int, str]]]:
    """Active people by E.164 phone number: (id, name) of each (several if shared).

    Numbers stored the national way (``13812345678``) are found too.
    """
    wanted = {phone: phone for phone in phones}
    wanted.update({display_phone(phone): phone for phone in list(wanted)})
    found: dict[str, list[tuple[int, str]]] = {}
    for part in _chunks(sorted(wanted), LOOKUP_CHUNK):
        rows = await session.exec(
            select(col(Person.id), col(Person.phone), col(Person.name)).where(
                col(Person.phone).in_(part), col(Person.active).is_(True)
            )
        )
        for person_id, phone, name in rows:
            assert person_id is not None and phone is not None
            found.setdefault(wanted[phone], []).append((person_id, name))
    return found


async def _assignments_of(
    session: AsyncSession, person_ids: Sequence[int]
) -> dict[tuple[int, Role, int], tuple[int, bool, int | None]]:
    """(person, role, grid) -> (assignment id, active, department) for these people."""
    held: dict[tuple[int, Role, int], tuple[int, bool, int | None]] = {}
    for part in _chunks(sorted(set(person_ids)), LOOKUP_CHUNK):
        rows = await session.exec(
            select(RoleAssignment).where(col(RoleAssignment.person_id).in_(part))
        )
        for a in rows:
            assert a.id is not None
            held[(a.person_id, Role(a.role), a.grid_id)] = (a.id, a.active, a.department_id)
    return held


async def _load_departments(session: AsyncSession) -> list[Department]:
    return list(await session.exec(select(Department).where(col(Department.active).is_(True))))


def _department(departments: Sequence[Department], text: str) -> int:
    """A department by code (exact) or by name (when only one has it)."""
    if not text:
        raise _CellError(NEED_DEPARTMENT)
    word = _word(text)
    by_code = [d for d in departments if _word(d.code) == word]
    if by_code:
        assert by_code[0].id is not None
        return by_code[0].id
    by_name = [d for d in departments if _word(d.name) == word]
    if not by_name:
        raise _CellError(NO_DEPARTMENT, value=shown(text))
    if len(by_name) > 1:
        raise _CellError(AMBIGUOUS_DEPARTMENT, value=shown(text))
    assert by_name[0].id is not None
    return by_name[0].id


# --- shared -----------------------------------------------------------------------------------


def _manage_scope(actor: Person, roles: Sequence[RoleInGrid], now: datetime) -> list[str]:
    """The grid subtrees the actor manages; NotAllowed (with its audit record) if none."""
    paths = scope_paths(roles, Action.MANAGE)
    if not actor.active or not paths:
        refusal = AuditLog(
            at=now, actor_id=actor.id, action="refused:manage", object_type="import"
        )
        raise NotAllowed(NOT_AN_ADMIN, audit=refusal)
    return paths


def _audit_import(
    session: AsyncSession, actor: Person, action: str, report: ImportReport, now: datetime
) -> None:
    session.add(
        AuditLog(
            at=now,
            actor_id=actor.id,
            action=action,
            data={
                "created": report.created,
                "updated": report.updated,
                "unchanged": report.unchanged,
            },
        )
    )


def _error(table: Table, row: int, key: str, problem: _CellError) -> RowError:
    column = table.headers.get(key, key)
    return RowError(row, column, problem.reason, problem.params)


def _error_order(error: RowError) -> tuple[int, str]:
    return error.row, error.column


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# shared with the other registers' imports (bot/services/member_import.py)
manage_scope = _manage_scope
audit_import = _audit_import
catalog_labels = _catalog_labels
comparable = _word
error_order = _error_order


# --- templates --------------------------------------------------------------------------------

HOUSEHOLD_HELP: dict[str, str] = {
    "code": N_(
        "Required. The household's own code, unique in the whole street. A row whose code "
        "is already registered updates that household."
    ),
    "grid_code": N_("Required. The code of the lowest grid the household belongs to."),
    "head_name": N_("Required. The name of the head of household, or of the business."),
    "phone": N_("A mobile or landline number, for example 13812345678 or 0592-6123456."),
    "address": N_("Required. The full address."),
    "members": N_("How many people live in the household, 0 to 99. Empty means 1."),
    "categories": N_(
        "Any of the six categories, separated by 、: {categories}. Short names such as 低保, "
        "重残, 空巢 or 留守 are understood. Leave it empty for an ordinary household."
    ),
    "key": N_("{yes} or {no}. A household in any of the six categories is always a key one."),
    "business": N_("{yes} or {no}: a shop or company rather than a family."),
    "worker": N_(
        "The mobile number of the grid worker who looks after the household (a name also "
        "works when no other worker of the grid has it). The worker must already be "
        "registered in that grid."
    ),
    "note": N_("Anything else worth knowing."),
}
HOUSEHOLD_NOTES = (
    N_(
        "Only the first sheet is read. Keep the header row as it is; other columns are "
        "ignored. Format code and phone columns as text, or Excel may change long numbers."
    ),
    N_(
        "Importing the same file again changes nothing. If any row is wrong, nothing is "
        "imported and the bot lists every row to fix."
    ),
)
PEOPLE_HELP: dict[str, str] = {
    "name": N_("Required. The person's full name."),
    "phone": N_(
        "Required. Their mobile number. It identifies the person: one person, one number."
    ),
    "role": N_("Required. One of: {roles}. A person with several roles takes one row for each."),
    "grid_code": N_("Required. The code of the grid the role covers, with every grid below it."),
    "department": N_("For department staff only: the department's code or name."),
}
PEOPLE_NOTES = (
    N_(
        "Only the first sheet is read. Keep the header row as it is; other columns are "
        "ignored. Format the phone column as text."
    ),
    N_(
        "Importing adds people and roles and corrects names; it never removes a role. "
        "If any row is wrong, nothing is imported and the bot lists every row to fix."
    ),
)


def _in_default_locale(msgid: str) -> str:
    return gettext_for(LOCALES[0], msgid)


def household_template(translate: Translate = _in_default_locale) -> bytes:
    """An empty household list to fill in (XLSX): the header row, and a sheet explaining
    each column. ``translate`` gives the admin's language (Simplified Chinese by default)."""
    categories = join_list(translate, (translate(label) for label in HOUSEHOLD_CATEGORY.values()))
    params = {"categories": categories, "yes": translate(YES), "no": translate(NO)}
    return _template(
        HOUSEHOLD_COLUMNS,
        N_("Households"),
        HOUSEHOLD_HELP,
        HOUSEHOLD_NOTES,
        params,
        translate,
        text_keys=("code", "grid_code", "phone", "worker"),
        yes_no_keys=("key", "business"),
    )


def people_template(translate: Translate = _in_default_locale) -> bytes:
    """An empty people list to fill in (XLSX), with a sheet explaining each column."""
    roles = join_list(translate, (translate(ROLE[r]) for r in ROLE_WORDS if r in ROLES_BY_FILE))
    return _template(
        PEOPLE_COLUMNS,
        N_("People"),
        PEOPLE_HELP,
        PEOPLE_NOTES,
        {"roles": roles},
        translate,
        text_keys=("phone", "grid_code"),
        roles=[translate(ROLE[r]) for r in ROLE_WORDS if r in ROLES_BY_FILE],
    )


def _template(
    columns: Sequence[Column],
    title: str,
    help_texts: Mapping[str, str],
    notes: Sequence[str],
    params: Mapping[str, str],
    translate: Translate,
    *,
    text_keys: Sequence[str] = (),
    yes_no_keys: Sequence[str] = (),
    roles: Sequence[str] = (),
) -> bytes:
    keys = [c.key for c in columns]
    choices: dict[int, Sequence[str]] = {
        keys.index(k): (translate(YES), translate(NO)) for k in yes_no_keys
    }
    if roles:
        choices[keys.index("role")] = roles
    data = Sheet(
        title=translate(title),
        headers=[translate(c.label) for c in columns],
        rows=(),
        widths=[max(14, 2 * len(translate(c.label)) + 4) for c in columns],
        text_columns=frozenset(keys.index(k) for k in text_keys),
        choices=choices,
    )
    explained = [
        (translate(c.label), translate(help_texts[c.key]).format(**params)) for c in columns
    ]
    explained.extend(("", translate(note)) for note in notes)
    instructions = Sheet(
        title=translate(N_("Instructions")),
        headers=[translate(N_("Column")), translate(N_("How to fill it in"))],
        rows=explained,
        widths=[24, 100],
    )
    return write_workbook([data, instructions])


make_template = _template  # the other registers' templates are made the same way
