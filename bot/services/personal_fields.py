"""Who sees which personal field of a household member, where: the one table (个人信息保护法).

Every field has a sensitivity (ordinary, personal, sensitive). :data:`ACCESS` says, for each
role, each field and each screen that shows people, how the field is shown to that role — and
only for members of households inside the grid subtree the role is held over (its scope):
outside it every field is hidden, and nothing of the member is listed at all.

- ``HIDDEN``: not shown (an export writes ``***``);
- ``MASKED``: shown masked (``110***********1234``, ``138****5678``, the birth year only),
  and nothing more;
- ``ON_REQUEST``: masked by default, with a "show" button; the unmasked read is audited
  (who, what, when, why) — in an export: written in full, the export audited and watermarked;
- ``SHOWN``: shown as it is.

Whoever holds several roles gets, field by field, the widest access any of them gives over
the member's grid. ``tests/services/test_personal_fields.py`` walks every role, field and
screen through the real screens and the export: it is the table's proof.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum, StrEnum

from bot.i18n import N_
from bot.services.people import RoleInGrid
from bot.services.permissions import within
from models import Role


class Sensitivity(StrEnum):
    ORDINARY = "ordinary"  # 一般信息
    PERSONAL = "personal"  # 个人信息
    SENSITIVE = "sensitive"  # 敏感个人信息 (ID numbers, health, minors, hardship …)


class PersonalField(StrEnum):
    NAME = "name"
    RELATION = "relation"
    GENDER = "gender"
    BIRTH_DATE = "birth_date"
    ID_NUMBER = "id_number"
    PHONE = "phone"
    STATUS = "status"
    MOVED_IN = "moved_in"
    MOVED_OUT = "moved_out"
    PARTY = "party"  # 政治面貌: 正式/预备/流动党员 (the column holds the PartyKind)
    ORIGIN = "origin"  # 来自何处 (floating people, tenants)
    STAY_UNTIL = "stay_until"  # 拟居住期限
    TAGS = "tags"  # person tags: special groups, health, minors, hardship (bot/services/tags.py)


class Screen(StrEnum):
    LIST = "list"  # the members on a household's card (/households → a household)
    CARD = "card"  # one member's card
    EXPORT = "export"  # the residents ledger (/export)


class Access(IntEnum):
    HIDDEN = 0
    MASKED = 1
    ON_REQUEST = 2
    SHOWN = 3


SENSITIVITY: dict[PersonalField, Sensitivity] = {
    PersonalField.NAME: Sensitivity.PERSONAL,
    PersonalField.RELATION: Sensitivity.ORDINARY,
    PersonalField.GENDER: Sensitivity.ORDINARY,
    PersonalField.BIRTH_DATE: Sensitivity.PERSONAL,
    PersonalField.ID_NUMBER: Sensitivity.SENSITIVE,
    PersonalField.PHONE: Sensitivity.PERSONAL,
    PersonalField.STATUS: Sensitivity.ORDINARY,
    PersonalField.MOVED_IN: Sensitivity.ORDINARY,
    PersonalField.MOVED_OUT: Sensitivity.ORDINARY,
    # political affiliation is not on the law's sensitive list (art. 28), but it is nobody
    # else's business: personal, shown to the grid's own people only
    PersonalField.PARTY: Sensitivity.PERSONAL,
    PersonalField.ORIGIN: Sensitivity.PERSONAL,
    PersonalField.STAY_UNTIL: Sensitivity.ORDINARY,
    PersonalField.TAGS: Sensitivity.SENSITIVE,
}

FIELD_LABEL: dict[PersonalField, str] = {
    PersonalField.NAME: N_("Full name"),
    PersonalField.RELATION: N_("Relation to the head"),
    PersonalField.GENDER: N_("Gender"),
    PersonalField.BIRTH_DATE: N_("Date of birth"),
    PersonalField.ID_NUMBER: N_("Resident ID number"),
    PersonalField.PHONE: N_("Contact phone"),
    PersonalField.STATUS: N_("Population type"),
    PersonalField.MOVED_IN: N_("Move-in date"),
    PersonalField.MOVED_OUT: N_("Move-out date"),
    PersonalField.PARTY: N_("Party membership"),
    PersonalField.ORIGIN: N_("Came from"),
    PersonalField.STAY_UNTIL: N_("Expected to stay until"),
    PersonalField.TAGS: N_("Groups followed up"),
}

_H, _M, _R, _S = Access.HIDDEN, Access.MASKED, Access.ON_REQUEST, Access.SHOWN
_F = PersonalField

# (list, card, export) for each role and field, inside the role's scope
_TABLE: dict[Role, dict[PersonalField, tuple[Access, Access, Access]]] = {
    # 网格员: serves the household at the door — names and phones, the number on request
    Role.WORKER: {
        _F.NAME: (_S, _S, _H),
        _F.RELATION: (_S, _S, _H),
        _F.GENDER: (_S, _S, _H),
        _F.BIRTH_DATE: (_M, _S, _H),
        _F.ID_NUMBER: (_H, _R, _H),
        _F.PHONE: (_H, _R, _H),
        _F.STATUS: (_S, _S, _H),
        _F.MOVED_IN: (_H, _S, _H),
        _F.MOVED_OUT: (_H, _S, _H),
        _F.PARTY: (_H, _S, _H),
        _F.ORIGIN: (_H, _S, _H),
        _F.STAY_UNTIL: (_H, _S, _H),
        _F.TAGS: (_H, _R, _H),  # the worker follows them up: on request
    },
    # 网格长: as the worker on screen; the ledger with the number and phone masked
    Role.HEAD: {
        _F.NAME: (_S, _S, _S),
        _F.RELATION: (_S, _S, _S),
        _F.GENDER: (_S, _S, _S),
        _F.BIRTH_DATE: (_M, _S, _S),
        _F.ID_NUMBER: (_H, _R, _M),
        _F.PHONE: (_H, _R, _M),
        _F.STATUS: (_S, _S, _S),
        _F.MOVED_IN: (_H, _S, _S),
        _F.MOVED_OUT: (_H, _S, _S),
        _F.PARTY: (_S, _S, _S),
        _F.ORIGIN: (_H, _S, _S),
        _F.STAY_UNTIL: (_H, _S, _S),
        _F.TAGS: (_H, _R, _H),
    },
    # 中心: handles what comes up; sees the number on request, exports it masked
    Role.CENTER: {
        _F.NAME: (_S, _S, _S),
        _F.RELATION: (_S, _S, _S),
        _F.GENDER: (_S, _S, _S),
        _F.BIRTH_DATE: (_M, _S, _M),
        _F.ID_NUMBER: (_H, _R, _M),
        _F.PHONE: (_H, _R, _M),
        _F.STATUS: (_S, _S, _S),
        _F.MOVED_IN: (_H, _S, _S),
        _F.MOVED_OUT: (_H, _S, _S),
        _F.PARTY: (_H, _S, _S),
        _F.ORIGIN: (_H, _S, _S),
        _F.STAY_UNTIL: (_H, _S, _S),
        _F.TAGS: (_H, _M, _H),
    },
    # 部门: acts on the tickets transferred to it, never on the register
    Role.DEPARTMENT: {field: (_H, _H, _H) for field in PersonalField},
    # 督查: inspects that the register is kept, not who is in it
    Role.SUPERVISOR: {
        _F.NAME: (_S, _S, _S),
        _F.RELATION: (_S, _S, _S),
        _F.GENDER: (_S, _S, _S),
        _F.BIRTH_DATE: (_M, _M, _M),
        _F.ID_NUMBER: (_H, _M, _M),
        _F.PHONE: (_H, _M, _M),
        _F.STATUS: (_S, _S, _S),
        _F.MOVED_IN: (_H, _S, _S),
        _F.MOVED_OUT: (_H, _S, _S),
        _F.PARTY: (_H, _S, _S),
        _F.ORIGIN: (_H, _M, _M),
        _F.STAY_UNTIL: (_H, _S, _S),
        _F.TAGS: (_H, _M, _H),
    },
    # 管理员: keeps the register; the whole ledger is theirs to import and export
    Role.ADMIN: {
        _F.NAME: (_S, _S, _S),
        _F.RELATION: (_S, _S, _S),
        _F.GENDER: (_S, _S, _S),
        _F.BIRTH_DATE: (_M, _S, _S),
        _F.ID_NUMBER: (_H, _R, _R),
        _F.PHONE: (_H, _R, _R),
        _F.STATUS: (_S, _S, _S),
        _F.MOVED_IN: (_H, _S, _S),
        _F.MOVED_OUT: (_H, _S, _S),
        _F.PARTY: (_S, _S, _S),
        _F.ORIGIN: (_H, _S, _S),
        _F.STAY_UNTIL: (_H, _S, _S),
        _F.TAGS: (_H, _R, _H),  # tags people; tags are in no ledger
    },
    # 居民: other residents are never shown
    Role.RESIDENT: {field: (_H, _H, _H) for field in PersonalField},
}

_SCREENS = (Screen.LIST, Screen.CARD, Screen.EXPORT)
ACCESS: dict[tuple[Role, PersonalField, Screen], Access] = {
    (role, field, screen): row[_SCREENS.index(screen)]
    for role, fields in _TABLE.items()
    for field, row in fields.items()
    for screen in _SCREENS
}
"""role × field × screen → access, inside the role's scope (outside: HIDDEN)."""


def access(
    roles: Iterable[RoleInGrid], field: PersonalField, screen: Screen, grid_path: str | None
) -> Access:
    """The widest access any role held over ``grid_path`` gives to ``field`` on ``screen``."""
    best = Access.HIDDEN
    for held in roles:
        if within(held.grid_path, grid_path):
            best = max(best, ACCESS[(held.role, field, screen)])
    return best


def may_see_member(roles: Iterable[RoleInGrid], screen: Screen, grid_path: str | None) -> bool:
    """Whether the member is on the screen at all: some field is more than hidden."""
    roles = list(roles)
    return any(access(roles, f, screen, grid_path) > Access.HIDDEN for f in PersonalField)
