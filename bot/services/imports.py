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

from .household_import import (
    HOUSEHOLD_COLUMNS,
    HouseholdReader,
    HouseholdRow,
    import_households,
    parse_households,
    read_household_file,
)
from .import_cells import (
    CATEGORY_WORDS,
    LIMITS,
    MAX_MEMBERS,
    NO,
    NO_CATEGORY_WORDS,
    NO_WORDS,
    ROLE_WORDS,
    ROLES_BY_FILE,
    YES,
    YES_WORDS,
    catalog_labels,
    comparable,
    display_phone,
    is_mobile,
    normalise_phone,
    parse_categories,
)
from .import_report import (
    AMBIGUOUS_DEPARTMENT,
    AMBIGUOUS_WORKER,
    BAD_CATEGORY,
    BAD_CODE,
    BAD_MEMBERS,
    BAD_PHONE,
    BAD_ROLE,
    BAD_YES_NO,
    CHUNK_ROWS,
    DUPLICATE_CODE,
    DUPLICATE_ROLE,
    EMPTY,
    EXCEL_ROUNDED,
    GRID_OUT_OF_SCOPE,
    HOUSEHOLD_OUT_OF_SCOPE,
    LOOKUP_CHUNK,
    NEED_DEPARTMENT,
    NO_DEPARTMENT,
    NO_GRID,
    NO_WORKER_NAME,
    NO_WORKER_PHONE,
    NOT_AN_ADMIN,
    NOT_LOWEST_GRID,
    NOT_MOBILE,
    PHONE_OTHER_NAME,
    ROLE_NOT_BY_FILE,
    ROW_ERROR,
    SHARED_PHONE,
    TOO_LONG,
    WORKER_ELSEWHERE,
    Importer,
    ImportReport,
    Progress,
    RowError,
    Translate,
    audit_import,
    error_order,
    manage_scope,
)
from .import_templates import (
    HOUSEHOLD_HELP,
    HOUSEHOLD_NOTES,
    PEOPLE_HELP,
    PEOPLE_NOTES,
    household_template,
    make_template,
    people_template,
)
from .people_import import (
    PEOPLE_COLUMNS,
    PeopleReader,
    PersonRow,
    import_people,
    parse_people,
    parse_role,
    read_people_file,
)

__all__ = [
    "AMBIGUOUS_DEPARTMENT",
    "AMBIGUOUS_WORKER",
    "BAD_CATEGORY",
    "BAD_CODE",
    "BAD_MEMBERS",
    "BAD_PHONE",
    "BAD_ROLE",
    "BAD_YES_NO",
    "CATEGORY_WORDS",
    "CHUNK_ROWS",
    "DUPLICATE_CODE",
    "DUPLICATE_ROLE",
    "EMPTY",
    "EXCEL_ROUNDED",
    "GRID_OUT_OF_SCOPE",
    "HOUSEHOLD_COLUMNS",
    "HOUSEHOLD_HELP",
    "HOUSEHOLD_NOTES",
    "HOUSEHOLD_OUT_OF_SCOPE",
    "HouseholdReader",
    "HouseholdRow",
    "ImportReport",
    "Importer",
    "LIMITS",
    "LOOKUP_CHUNK",
    "MAX_MEMBERS",
    "NEED_DEPARTMENT",
    "NO",
    "NOT_AN_ADMIN",
    "NOT_LOWEST_GRID",
    "NOT_MOBILE",
    "NO_CATEGORY_WORDS",
    "NO_DEPARTMENT",
    "NO_GRID",
    "NO_WORDS",
    "NO_WORKER_NAME",
    "NO_WORKER_PHONE",
    "PEOPLE_COLUMNS",
    "PEOPLE_HELP",
    "PEOPLE_NOTES",
    "PHONE_OTHER_NAME",
    "PeopleReader",
    "PersonRow",
    "Progress",
    "ROLES_BY_FILE",
    "ROLE_NOT_BY_FILE",
    "ROLE_WORDS",
    "ROW_ERROR",
    "RowError",
    "SHARED_PHONE",
    "TOO_LONG",
    "Translate",
    "WORKER_ELSEWHERE",
    "YES",
    "YES_WORDS",
    "audit_import",
    "catalog_labels",
    "comparable",
    "display_phone",
    "error_order",
    "household_template",
    "import_households",
    "import_people",
    "is_mobile",
    "make_template",
    "manage_scope",
    "normalise_phone",
    "parse_categories",
    "parse_households",
    "parse_people",
    "parse_role",
    "people_template",
    "read_household_file",
    "read_people_file",
]
