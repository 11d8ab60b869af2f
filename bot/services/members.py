"""The people of households as the people who serve them see them (实有人口).

Every screen that shows a member goes through :func:`member_views`: each field comes out as
the table in :mod:`bot.services.personal_fields` allows — shown, masked, masked with a "show"
button, or not at all — so no plain value the reader may not see ever leaves this module.
:func:`reveal` gives one field in full to a role allowed to ask, and audits the read with its
purpose. :func:`forget` erases a person's personal data on request (删除权) and
:func:`erase_moved_out` after the retention period; the row stays, so counts keep counting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.i18n import N_
from bot.services import tags
from bot.services.people import RoleInGrid
from bot.services.permissions import Action, permits, scope_paths, target_of, within
from bot.settings import PeopleSettings
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
    Role,
)

from .id_numbers import (
    BadKey,
    IdVault,
    InvalidIdNumber,
    WrongKey,
    mask_id_number,
    normalise_id_number,
    parse_id_number,
    vault_for,
)
from .personal_fields import Access, PersonalField, Screen, access
from .phones import mask_phone

NO_KEY = N_(
    "ID numbers cannot be used yet: the administrator has not set PEOPLE__KEY "
    "(see docs/people.md)."
)
BAD_KEY = N_("ID numbers cannot be used: PEOPLE__KEY is not a valid key (see docs/people.md).")
KEY_CHANGED = N_(
    "This ID number cannot be read: it was stored with another key than PEOPLE__KEY "
    "(see docs/people.md)."
)
NOT_YOURS = N_("Sorry, this person is outside the grids you look after.")
NOT_FOR_YOU = N_("Sorry, your role may not see this in full.")
ONLY_ADMIN_FORGETS = N_("Only an administrator can erase a person's data.")
NO_SUCH_MEMBER = N_("No one registered has the ID number {value}.")
BAD_MEMBER_REF = N_(
    "Write the person's register number (as #123, from their card) or their 18-character "
    "ID number."
)
ALREADY_FORGOTTEN = N_("This person's data was erased already.")
HIDDEN = "***"


class Purpose(StrEnum):
    """Why someone asks to see a field in full (kept in the audit log)."""

    VISIT = "visit"  # 入户走访核实
    CASE = "case"  # 办理诉求 / 事件
    REGISTER = "register"  # 登记核对


def vault_of(people: PeopleSettings) -> IdVault:
    """The ID-number vault of the settings, or a refusal saying the key is missing or bad."""
    if people.key is None:
        raise InvalidInput(NO_KEY)
    try:
        return vault_for(people.key.get_secret_value(), people.older_keys)
    except BadKey:
        raise InvalidInput(BAD_KEY) from None


def optional_vault(people: PeopleSettings) -> IdVault | None:
    """The vault, or None without a key (numbers are then shown as ``*`` only)."""
    return vault_of(people) if people.key is not None else None


@dataclass(frozen=True)
class FieldView:
    """One field as this reader may see it: ``value`` is plain only for SHOWN; otherwise
    masked (MASKED, ON_REQUEST) or None (HIDDEN, or nothing recorded)."""

    value: object
    access: Access


@dataclass(frozen=True)
class MemberView:
    id: int
    household_id: int
    household_code: str
    grid_path: str
    forgotten: bool
    moved_out: bool
    fields: dict[PersonalField, FieldView] = field(default_factory=dict)

    def shown(self, name: PersonalField) -> object:
        view = self.fields.get(name)
        return None if view is None else view.value

    @property
    def revealable(self) -> list[PersonalField]:
        return [f for f, v in self.fields.items() if v.access == Access.ON_REQUEST and v.value]


def masked(name: PersonalField, value: object) -> object:
    """A field's value with enough hidden that it cannot be used."""
    if value is None or value == "":
        return None
    if name == PersonalField.ID_NUMBER:
        return mask_id_number(str(value))
    if name == PersonalField.PHONE:
        return mask_phone(str(value))
    if name == PersonalField.BIRTH_DATE and isinstance(value, date):
        return f"{value.year}-**-**"
    if name == PersonalField.NAME:
        text = str(value)
        return text[:1] + "*" * max(1, len(text) - 1)
    return HIDDEN


_VOCABULARY: dict[PersonalField, type[StrEnum]] = {
    PersonalField.RELATION: Relation,
    PersonalField.GENDER: Gender,
    PersonalField.STATUS: ResidenceStatus,
    PersonalField.PARTY: PartyKind,
}


def raw_value(member: HouseholdMember, name: PersonalField, vault: IdVault | None) -> object:
    """A field as stored, typed (enums for the vocabularies), the ID number decrypted."""
    return _raw(member, name, vault)


def _raw(
    member: HouseholdMember,
    name: PersonalField,
    vault: IdVault | None,
    tag_names: str | None = None,
) -> object:
    if name == PersonalField.TAGS:
        return tag_names  # kept in their own table (bot/services/tags.py)
    if name == PersonalField.ID_NUMBER:
        if member.id_cipher is None:
            return None
        if vault is None:
            return "*" * 18
        try:
            return vault.open(member.id_cipher)
        except WrongKey:
            return "*" * 18
    value: object = getattr(member, name.value)
    kind = _VOCABULARY.get(name)
    if kind is not None and isinstance(value, str):
        return kind(value)  # the column holds the enum's value
    return value


def view_of(
    member: HouseholdMember,
    household: Household,
    grid_path: str,
    roles: Sequence[RoleInGrid],
    screen: Screen,
    vault: IdVault | None,
    tag_names: str | None = None,
) -> MemberView:
    """The member as ``roles`` may see them on ``screen`` (pure, apart from decrypting);
    ``tag_names``: the member's tags as :func:`tags.tag_names` writes them."""
    assert member.id is not None and household.id is not None
    fields: dict[PersonalField, FieldView] = {}
    for name in PersonalField:
        level = access(roles, name, screen, grid_path)
        if level == Access.HIDDEN:
            continue
        raw = _raw(member, name, vault, tag_names)
        value = raw if level == Access.SHOWN else masked(name, raw)
        fields[name] = FieldView(value, level)
    return MemberView(
        id=member.id,
        household_id=household.id,
        household_code=household.code,
        grid_path=grid_path,
        forgotten=member.forgotten_at is not None,
        moved_out=member.moved_out is not None,
        fields=fields,
    )


async def _member_and_place(
    session: AsyncSession, member_id: int
) -> tuple[HouseholdMember, Household, Grid]:
    member = await session.get(HouseholdMember, member_id)
    if member is None:
        raise NotFound()
    household = await session.get(Household, member.household_id)
    grid = await session.get(Grid, household.grid_id) if household is not None else None
    if household is None or grid is None:
        raise NotFound()
    return member, household, grid


def _refusal(person: Person, action: str, member_id: int | None, now: datetime) -> AuditLog:
    return AuditLog(
        at=now, actor_id=person.id, action=action, object_type="member", object_id=member_id
    )


async def household_members(
    session: AsyncSession,
    *,
    person: Person,
    roles: Sequence[RoleInGrid],
    household: Household,
    vault: IdVault | None,
) -> list[MemberView]:
    """The members on a household's card (Screen.LIST), people living there first."""
    grid = await session.get(Grid, household.grid_id)
    if grid is None or not person.active:
        return []
    rows = (
        await session.exec(
            select(HouseholdMember)
            .where(HouseholdMember.household_id == household.id)
            .order_by(
                col(HouseholdMember.moved_out).is_not(None),
                col(HouseholdMember.relation) != "head",
                col(HouseholdMember.birth_date),
                col(HouseholdMember.id),
            )
        )
    ).all()
    names = await _tag_names(session, rows)
    return [
        view_of(m, household, grid.path, roles, Screen.LIST, vault, names.get(m.id or 0))
        for m in rows
    ]


async def _tag_names(
    session: AsyncSession, rows: Sequence[HouseholdMember]
) -> dict[int, str | None]:
    """Each member's tags as the ``tags`` field shows them."""
    held = await tags.active_tags(session, [m.id or 0 for m in rows])
    if not held:
        return {}
    policy = await tags.current_policy(session)
    return {
        m.id or 0: tags.tag_names(policy, [t for t in held if t.member_id == m.id]) for m in rows
    }


async def member_card(
    session: AsyncSession,
    *,
    person: Person,
    roles: Sequence[RoleInGrid],
    member_id: int,
    vault: IdVault | None,
    now: datetime,
) -> MemberView:
    """One member's card (Screen.CARD); refused (and the refusal audited) out of scope."""
    member, household, grid = await _member_and_place(session, member_id)
    names = await _tag_names(session, [member])
    view = view_of(
        member, household, grid.path, roles, Screen.CARD, vault, names.get(member.id or 0)
    )
    if not person.active or not view.fields:
        raise NotAllowed(NOT_YOURS, audit=_refusal(person, "refused:member", member_id, now))
    return view


async def reveal(
    session: AsyncSession,
    *,
    person: Person,
    roles: Sequence[RoleInGrid],
    member_id: int,
    name: PersonalField,
    purpose: Purpose,
    vault: IdVault | None,
    now: datetime,
) -> str:
    """One field in full, for a role the table lets ask; the read is audited with its
    purpose (who, what, when, why). Refusals are audited too."""
    member, household, grid = await _member_and_place(session, member_id)
    level = access(roles, name, Screen.CARD, grid.path)
    if not person.active or level < Access.ON_REQUEST:
        refusal = _refusal(person, "refused:reveal", member_id, now)
        refusal.data = {"field": name.value}
        raise NotAllowed(NOT_FOR_YOU, audit=refusal)
    if name == PersonalField.ID_NUMBER:
        if member.id_cipher is None:
            raise NotFound()
        if vault is None:
            raise InvalidInput(NO_KEY)
        try:
            value = vault.open(member.id_cipher)
        except WrongKey:
            raise InvalidInput(KEY_CHANGED) from None
    elif name == PersonalField.TAGS:
        tag_names = (await _tag_names(session, [member])).get(member_id)
        if not tag_names:
            raise NotFound()
        value = tag_names
    else:
        raw = getattr(member, name.value)
        if raw is None or raw == "":
            raise NotFound()
        value = raw.isoformat() if isinstance(raw, date) else str(raw)
    session.add(
        AuditLog(
            at=now,
            actor_id=person.id,
            action="reveal",
            object_type="member",
            object_id=member_id,
            detail=grid.path,
            data={"field": name.value, "purpose": purpose.value, "household": household.id},
        )
    )
    return value


# --- finding, forgetting, retention -----------------------------------------------------------


async def find_member(
    session: AsyncSession, text: str, *, vault: IdVault | None, today: date
) -> HouseholdMember:
    """A member by register number (``#123``, ``123``) or by ID number (through the keyed
    hash: nothing is decrypted)."""
    word = "".join(text.split())[:64].lstrip("#＃")
    if word.isascii() and word.isdigit() and len(word) <= 9:
        member = await session.get(HouseholdMember, int(word))
        if member is None:
            raise NotFound()
        return member
    try:
        number = parse_id_number(text, today=today)
    except InvalidIdNumber as problem:
        if sum(ch.isdigit() for ch in normalise_id_number(text)) < 15:
            raise InvalidInput(BAD_MEMBER_REF) from None  # no number meant: say what is
        raise problem from None
    if vault is None:
        raise InvalidInput(NO_KEY)
    found = (
        await session.exec(
            select(HouseholdMember).where(HouseholdMember.id_hash == vault.digest(number))
        )
    ).one_or_none()
    if found is None:
        raise NotFound(NO_SUCH_MEMBER, value=mask_id_number(number))
    return found


async def managed_member(
    session: AsyncSession,
    *,
    person: Person,
    roles: Sequence[RoleInGrid],
    member: HouseholdMember,
    now: datetime,
) -> Household:
    """The member's household, if ``person`` manages its grid (an administrator); else a
    refusal with its audit record."""
    household = await session.get(Household, member.household_id)
    if household is None:
        raise NotFound()
    target = await target_of(session, household)
    if not person.active or not permits(roles, Action.MANAGE, target, person.id):
        raise NotAllowed(
            ONLY_ADMIN_FORGETS, audit=_refusal(person, "refused:forget", member.id, now)
        )
    return household


def may_erase(roles: Sequence[RoleInGrid], view: MemberView) -> bool:
    """Whether the reader may erase this member's data (offered a button for it)."""
    return any(within(p, view.grid_path) for p in scope_paths(roles, Action.MANAGE))


def _erased() -> dict[str, object]:
    return {
        "name": "",
        "birth_date": None,
        "id_cipher": None,
        "id_hash": None,
        "phone": None,
        "party": None,
        "party_branch_id": None,
        "origin": None,
    }


async def forget(
    session: AsyncSession,
    *,
    person: Person,
    roles: Sequence[RoleInGrid],
    member_id: int,
    now: datetime,
) -> HouseholdMember:
    """Erase a person's personal data on their request (删除权): name, ID number, phone,
    birth date and party membership go; household, relation, gender, status and moving
    dates stay, so counts and ledgers keep counting them. Only an administrator of the
    member's grid; audited."""
    member = await session.get(HouseholdMember, member_id)
    if member is None:
        raise NotFound()
    await managed_member(session, person=person, roles=roles, member=member, now=now)
    if member.forgotten_at is not None:
        raise InvalidInput(ALREADY_FORGOTTEN)
    for key, value in _erased().items():
        setattr(member, key, value)
    member.forgotten_at = now
    member.updated_at = now
    session.add(member)
    session.add(
        AuditLog(
            at=now,
            actor_id=person.id,
            action="forget",
            object_type="member",
            object_id=member_id,
            data={"household": member.household_id, "reason": "request"},
        )
    )
    return member


def retention_cutoff(today: date, years: int) -> date:
    """The day before which a move-out makes a person's data due for erasure."""
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February
        return today.replace(year=today.year - years, day=28)


async def erase_moved_out(
    session: AsyncSession, *, now: datetime, today: date, years: int, batch: int = 500
) -> int:
    """Erase the personal data of people who moved out more than ``years`` ago (one batch;
    the caller commits and calls again until it returns less than ``batch``). Audited."""
    cutoff = retention_cutoff(today, years)
    ids = list(
        (
            await session.exec(
                select(col(HouseholdMember.id))
                .where(
                    col(HouseholdMember.moved_out) < cutoff,
                    col(HouseholdMember.forgotten_at).is_(None),
                )
                .order_by(col(HouseholdMember.id))
                .limit(batch)
            )
        ).all()
    )
    if not ids:
        return 0
    await session.exec(
        update(HouseholdMember)
        .where(col(HouseholdMember.id).in_(ids))
        .values(**_erased(), forgotten_at=now, updated_at=now)
    )
    session.add(
        AuditLog(
            at=now,
            action="forget",
            object_type="member",
            detail=f"moved out before {cutoff.isoformat()}",
            data={"count": len(ids), "reason": "retention", "years": years},
        )
    )
    return len(ids)


# --- counts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberCounts:
    """People living in a grid (and the grids below it) by status (户籍/常住/流动); people
    who moved out are not counted. Erased people count like everyone else."""

    registered: int = 0
    resident: int = 0
    floating: int = 0

    @property
    def total(self) -> int:
        return self.registered + self.resident + self.floating


async def counts_for_staff(
    session: AsyncSession, roles: Sequence[RoleInGrid], grid: Grid
) -> MemberCounts | None:
    """The grid's counts for someone who serves in it or above it (None for residents and
    anyone else: they see the notice board only)."""
    if not any(
        r.role not in (Role.RESIDENT, Role.DEPARTMENT) and within(r.grid_path, grid.path)
        for r in roles
    ):
        return None
    return await grid_counts(session, grid)


async def grid_counts(session: AsyncSession, grid: Grid) -> MemberCounts:
    rows = await session.exec(
        select(col(HouseholdMember.status), func.count())
        .join(Household, col(Household.id) == col(HouseholdMember.household_id))
        .join(Grid, col(Grid.id) == col(Household.grid_id))
        .where(col(Grid.path).startswith(grid.path), col(HouseholdMember.moved_out).is_(None))
        .group_by(col(HouseholdMember.status))
    )
    found = {ResidenceStatus(status): int(count) for status, count in rows}
    return MemberCounts(
        registered=found.get(ResidenceStatus.REGISTERED, 0),
        resident=found.get(ResidenceStatus.RESIDENT, 0),
        floating=found.get(ResidenceStatus.FLOATING, 0),
    )


# --- key rotation -----------------------------------------------------------------------------


async def reseal_batch(
    session: AsyncSession, vault: IdVault, *, after_id: int, batch: int = 500
) -> int:
    """Seal again, with the vault's current key, the ID numbers of up to ``batch`` members
    after ``after_id`` (read with any key the vault knows), and hash them with it; returns the
    last id done (``after_id`` when none is left). WrongKey if a number opens with no key."""
    rows = (
        await session.exec(
            select(col(HouseholdMember.id), col(HouseholdMember.id_cipher))
            .where(col(HouseholdMember.id) > after_id, col(HouseholdMember.id_cipher).is_not(None))
            .order_by(col(HouseholdMember.id))
            .limit(batch)
        )
    ).all()
    last = after_id
    for member_id, cipher in rows:
        assert member_id is not None and cipher is not None
        sealed = vault.rotate(cipher)
        await session.exec(
            update(HouseholdMember)
            .where(col(HouseholdMember.id) == member_id)
            .values(id_cipher=sealed.cipher, id_hash=sealed.digest)
        )
        last = member_id
    return last
