"""The empty household and people lists an admin fills in (XLSX), with a sheet explaining
each column in the admin's language.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bot.i18n import N_, gettext_for, join_list
from bot.labels import HOUSEHOLD_CATEGORY, ROLE
from bot.settings import LOCALES

from .household_import import HOUSEHOLD_COLUMNS
from .import_cells import NO, ROLE_WORDS, ROLES_BY_FILE, YES
from .import_report import Translate
from .people_import import PEOPLE_COLUMNS
from .tabular import Column, Sheet, write_workbook

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
