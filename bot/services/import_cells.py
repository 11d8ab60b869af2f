"""Reading one cell of an import file: the words people write (是/否, the six categories,
roles) in every catalog, phone numbers, codes, and texts within their limits.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache, lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

from bot.i18n import N_, gettext_for
from bot.labels import HOUSEHOLD_CATEGORY, ROLE
from bot.settings import LOCALES
from models import HouseholdCategory, Role

from .grid_codes import normalize_code
from .import_report import (
    BAD_CATEGORY,
    BAD_CODE,
    BAD_MEMBERS,
    BAD_PHONE,
    BAD_YES_NO,
    EMPTY,
    EXCEL_ROUNDED,
    NOT_MOBILE,
    TOO_LONG,
    CellProblem,
)
from .tabular import Column, Row, Table, clean_text, shown


def words(text: str) -> list[str]:
    return text.split()


MAX_MEMBERS = 99

# the longest each field may be (the table's column sizes)
LIMITS = {"code": 32, "head_name": 50, "address": 200, "note": 500, "name": 100}

YES_WORDS = words("是 是的 有 对 y yes true t 1 √ ✓ ✔")
NO_WORDS = words("否 不是 无 没有 不 非 n no false f 0 × ✗ ✘")
YES, NO = N_("yes"), N_("no")

# the six categories (六类户) as people write them, besides their labels in every catalog
CATEGORY_WORDS: dict[HouseholdCategory, list[str]] = {
    HouseholdCategory.SUBSISTENCE: words(
        "低保五保户 低保五保 低保户 五保户 低保 五保 subsistence"
    ),
    HouseholdCategory.ILLNESS_DISABILITY: (
        words("重病重残户 重病重残 重病户 重残户 重病 重残 重殘 illness_disability")
    ),
    HouseholdCategory.POVERTY_RISK: (
        words("易返贫致贫户 易返贫致贫 返贫致贫 易返贫 易致贫 返贫 致贫 poverty_risk")
    ),
    HouseholdCategory.EMPTY_NEST: words("空巢老人户 空巢老人 空巢户 空巢 empty_nest"),
    HouseholdCategory.LEFT_BEHIND_CHILDREN: (
        words("留守儿童户 留守儿童 留守户 留守 left_behind_children")
    ),
    HouseholdCategory.MILITARY_MARTYR: (
        words("烈属军属户 烈属军属 烈属户 军属户 烈属 军属 烈屬 軍屬 military_martyr")
    ),
}
NO_CATEGORY_WORDS = words("无 普通 普通户 none - — /")

# roles as people write them, besides their labels in every catalog
ROLE_WORDS: dict[Role, list[str]] = {
    Role.WORKER: words("网格员 专职网格员 兼职网格员 worker"),
    Role.HEAD: words("网格长 head"),
    Role.CENTER: words("中心 综合调处中心 调处中心 分中心 中心操作员 center centre"),
    Role.DEPARTMENT: words("部门 职能部门 部门人员 department"),
    Role.SUPERVISOR: words("督查 督查组 督查员 纪委 supervisor"),
    Role.ADMIN: words("管理员 系统管理员 admin administrator"),
    Role.RESIDENT: words("居民 群众 村民 resident"),
}
ROLES_BY_FILE = frozenset({Role.WORKER, Role.HEAD, Role.CENTER, Role.DEPARTMENT, Role.SUPERVISOR})


def comparable(text: str) -> str:
    """A word as compared: NFKC, case-folded, without spaces."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text).casefold() if not ch.isspace())


def in_every_catalog(msgid: str) -> set[str]:
    return {gettext_for(locale, msgid) for locale in LOCALES}


@cache
def catalog_labels(columns: tuple[Column, ...]) -> dict[str, set[str]]:
    return {c.key: in_every_catalog(c.label) for c in columns}


@cache
def yes_no_words() -> dict[str, bool]:
    words = {comparable(w): True for w in (*YES_WORDS, *in_every_catalog(YES))}
    words.update({comparable(w): False for w in (*NO_WORDS, *in_every_catalog(NO))})
    return words


@cache
def category_words() -> dict[str, int]:
    words = {comparable(w): 0 for w in NO_CATEGORY_WORDS}
    for category, names in CATEGORY_WORDS.items():
        for name in (*names, *in_every_catalog(HOUSEHOLD_CATEGORY[category])):
            words[comparable(name)] = int(category)
    return words


@cache
def role_words() -> dict[str, Role]:
    words: dict[str, Role] = {}
    for role, names in ROLE_WORDS.items():
        for name in (*names, *in_every_catalog(ROLE[role])):
            words.setdefault(comparable(name), role)
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
    mobile = _MAINLAND_MOBILE.fullmatch(PHONE_SEPARATORS.sub("", folded))
    if mobile is not None and _cn_mobile().fullmatch(mobile.group(1)):
        return "+86" + mobile.group(1)
    return _parsed_phone(folded)


PHONE_SEPARATORS = re.compile(r"[\s\-().]")
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


def required_text(table: Table, row: Row, key: str) -> str:
    text = clean_text(table.cell(row, key))
    if not text:
        raise CellProblem(EMPTY)
    return limited(text, key)


def optional_text(table: Table, row: Row, key: str) -> str | None:
    text = clean_text(table.cell(row, key))
    return limited(text, key) if text else None


def limited(text: str, key: str) -> str:
    limit = LIMITS.get(key)
    if limit is not None and len(text) > limit:
        raise CellProblem(TOO_LONG, limit=limit)
    return text


_CODE_CHARS = re.compile(r"[\w\-./]+")
_SCIENTIFIC = re.compile(r"\d+(\.\d+)?e\+?\d+", re.IGNORECASE)


def code_cell(table: Table, row: Row, key: str, *, grid: bool = False) -> str:
    """A household or grid code: full-width folded, spaces dropped, not mangled by Excel."""
    raw = table.cell(row, key)
    if raw.isascii() and raw.isalnum():
        text = raw  # the usual case, already clean
    elif grid:
        text = normalize_code(raw)
    else:
        text = "".join(unicodedata.normalize("NFKC", raw).split())
    if not text:
        raise CellProblem(EMPTY)
    if table.is_imprecise(row, key) or _SCIENTIFIC.fullmatch(text):
        raise CellProblem(EXCEL_ROUNDED, value=shown(raw))
    if len(text) > 32:
        raise CellProblem(TOO_LONG, limit=32)
    if not grid and not _CODE_CHARS.fullmatch(text):
        raise CellProblem(BAD_CODE, value=shown(raw))
    return text


def phone_cell(table: Table, row: Row, key: str, *, mobile: bool = False) -> str | None:
    raw = table.cell(row, key)
    if not raw.strip():
        return None
    if table.is_imprecise(row, key):
        raise CellProblem(EXCEL_ROUNDED, value=shown(raw))
    phone = normalise_phone(raw)
    if phone is None:
        raise CellProblem(BAD_PHONE, value=shown(raw))
    if mobile and not is_mobile(phone):
        raise CellProblem(NOT_MOBILE, value=shown(raw))
    return phone


def members_cell(table: Table, row: Row) -> int:
    raw = table.cell(row, "members")
    text = comparable(raw[:40]).removesuffix("人").removesuffix("口")
    if not text:
        return 1
    if text.endswith(".0"):
        text = text[:-2]  # Excel's numbers, written as text by some tools
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_MEMBERS:
        raise CellProblem(BAD_MEMBERS, value=shown(raw))
    return int(text)


def yes_cell(table: Table, row: Row, key: str) -> bool | None:
    raw = table.cell(row, key)
    if not raw.strip():
        return None
    answer = yes_no_words().get(comparable(raw[:40]))
    if answer is None:
        raise CellProblem(BAD_YES_NO, value=shown(raw))
    return answer


_CATEGORY_SEPARATORS = re.compile(r"[、，,;；|\n]+")
_CATEGORY_SPLIT = re.compile(r"[\s/]+")


def parse_categories(text: str) -> int:
    """The HouseholdCategory flags written in a cell; raise on a word that is none of them.

    Pieces are separated by 、 ， , ; ； | or line breaks; a piece that is not a category as a
    whole is split again on spaces and ``/``.
    """
    known = category_words()
    flags = 0
    for piece in _CATEGORY_SEPARATORS.split(text[:2000]):
        word = comparable(piece)
        if not word:
            continue
        if word in known:
            flags |= known[word]
            continue
        for part in _CATEGORY_SPLIT.split(piece):
            if not part:
                continue
            found = known.get(comparable(part))
            if found is None:
                raise CellProblem(BAD_CATEGORY, value=shown(part))
            flags |= found
    return flags
