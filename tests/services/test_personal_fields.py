"""The personal-field table's proof: every role, against every field, on every screen and in
the export that shows household members — what the reader gets is what ``ACCESS`` says, inside
the role's grids, and nothing at all outside them. Then: "show" is audited with its purpose,
erasure keeps the counts, the retention rule, and a database copy holds no plain ID number."""

from __future__ import annotations

import io
import shutil
import sqlite3
from datetime import date, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

import models
from bot.clock import FrozenClock
from bot.db import create_engine, create_session_factory
from bot.errors import NotAllowed
from bot.i18n import gettext_for
from bot.labels import PARTY_KIND
from bot.services import members, tags
from bot.services.households import household_card
from bot.services.member_export import export_members
from bot.services.member_import import import_members
from bot.services.members import Purpose, masked
from bot.services.people import roles_of
from bot.services.personal_fields import ACCESS, Access, PersonalField, Screen
from bot.telegram.i18n import CatalogI18n
from bot.telegram.member_views import member_text, members_section
from models import (
    AuditLog,
    Household,
    HouseholdMember,
    PartyKind,
    Person,
    ResidenceStatus,
    Role,
    RoleAssignment,
)

from .test_imports import EAST, EAST_A, WEST_A, Community, build_community, to_csv
from .test_member_import import HEADER, TODAY, VAULT, id_number

PLAIN = {
    PersonalField.NAME: "张秀英",
    PersonalField.ID_NUMBER: id_number(11, "19850412", female=True),
    PersonalField.PHONE: "+8613912345678",
    PersonalField.BIRTH_DATE: date(1985, 4, 12),
    PersonalField.ORIGIN: "江西省赣州市",
    PersonalField.STAY_UNTIL: date(2027, 6, 30),
}
OUTSIDER_NUMBER = id_number(12, "19700101")
TAGGED = ("慢性病", "严重精神障碍")
REVEALED = {PersonalField.ID_NUMBER, PersonalField.PHONE, PersonalField.TAGS}


async def _setup(session: AsyncSession, community: Community) -> tuple[int, int]:
    """A household in EAST_A with one member, and one in WEST_A (outside EAST)."""
    ids = []
    for code, grid in (("HE1", EAST_A), ("HW1", WEST_A)):
        household = Household(
            code=code,
            grid_id=community.grids[grid].id or 0,
            address="1号",
            head_name="户主",
            created_at=community.now,
            updated_at=community.now,
        )
        session.add(household)
    await session.flush()
    rows = [
        [
            "HE1",
            PLAIN[PersonalField.NAME],
            "配偶",
            PLAIN[PersonalField.ID_NUMBER],
            "",
            "13912345678",
            "户籍",
            "2020-01-01",
        ],
        ["HW1", "李四", "户主", OUTSIDER_NUMBER, "", "", "流动", ""],
    ]
    report = await import_members(
        session,
        community.admin,
        await community.roles(session, community.admin),
        to_csv(rows, HEADER).encode(),
        vault=VAULT,
        now=community.now,
        today=TODAY,
    )
    assert report.ok, report.errors
    stored = (await session.exec(select(HouseholdMember))).all()
    for member in stored:  # the person inside is a party member (政治面貌): a field like others
        if member.name == PLAIN[PersonalField.NAME]:
            member.party = PartyKind.FULL
            session.add(member)
    for member in stored:  # a floating person's origin and planned stay (出租房屋的租户)
        member.origin = PLAIN[PersonalField.ORIGIN]
        member.stay_until = PLAIN[PersonalField.STAY_UNTIL]
        session.add(member)
    await session.flush()
    found = {m.name: m.id for m in stored}
    ids.extend([found[PLAIN[PersonalField.NAME]] or 0, found["李四"] or 0])
    admin_roles = await community.roles(session, community.admin)
    for word in TAGGED:  # tags are a sensitive field of the table too
        await tags.tag_member(session, community.admin, admin_roles, ids[0], word, community.now)
    return ids[0], ids[1]


async def _reader(session: AsyncSession, community: Community, role: Role) -> Person:
    """Someone holding ``role`` over the EAST community (which holds EAST_A, not WEST_A)."""
    person = Person(name=f"读者{role.value}", created_at=community.now, updated_at=community.now)
    session.add(person)
    await session.flush()
    session.add(
        RoleAssignment(
            person_id=person.id or 0,
            role=role,
            grid_id=community.grids[EAST].id or 0,
            department_id=None,
            created_at=community.now,
        )
    )
    await session.flush()
    return person


def _raw(field: PersonalField, member: HouseholdMember) -> object:
    if field == PersonalField.ID_NUMBER:
        return PLAIN[PersonalField.ID_NUMBER]
    if field == PersonalField.TAGS:
        return "、".join(TAGGED)
    return getattr(member, field.value)


@pytest.fixture
async def community(session: AsyncSession, clock: FrozenClock) -> Community:
    return await build_community(session, clock.now())


@pytest.mark.parametrize("role", list(Role))
async def test_every_role_every_field_every_screen(
    session: AsyncSession, community: Community, role: Role
) -> None:
    inside, outside = await _setup(session, community)
    reader = await _reader(session, community, role)
    roles = await roles_of(session, reader.id or 0)
    member = await session.get(HouseholdMember, inside)
    assert member is not None
    number = PLAIN[PersonalField.ID_NUMBER]
    i18n = CatalogI18n("zh_Hans")

    def expected(field: PersonalField, screen: Screen) -> Access:
        return ACCESS[(role, field, screen)]

    # Screen.LIST: the members on the household's card
    household = await session.get(Household, member.household_id)
    assert household is not None
    try:
        card = await household_card(
            session,
            person=reader,
            roles=roles,
            household_id=household.id or 0,
            now=community.now,
            vault=VAULT,
        )
        listed = card.members
    except NotAllowed:
        listed = []
    for field in PersonalField:
        want = expected(field, Screen.LIST)
        views = [v for v in listed if v.id == inside]
        if want == Access.HIDDEN:
            assert not views or field not in views[0].fields, (role, field)
            continue
        assert views, (role, field, "the member is not listed")
        _check(views[0].shown(field), want, field, _raw(field, member))
    with i18n.context(), i18n.use_locale("zh_Hans"):
        listed_text = members_section(listed)
    assert number not in listed_text and number[:3] + "*" * 11 not in listed_text

    # Screen.CARD: the member's own card, and "show"
    try:
        view = await members.member_card(
            session, person=reader, roles=roles, member_id=inside, vault=VAULT, now=community.now
        )
    except NotAllowed:
        view = None
    for field in PersonalField:
        want = expected(field, Screen.CARD)
        if want == Access.HIDDEN:
            assert view is None or field not in view.fields, (role, field)
        else:
            assert view is not None, (role, field)
            _check(view.shown(field), want, field, _raw(field, member))
        before = len(
            (await session.exec(select(AuditLog).where(AuditLog.action == "reveal"))).all()
        )
        if want >= Access.ON_REQUEST and field in REVEALED:
            value = await members.reveal(
                session,
                person=reader,
                roles=roles,
                member_id=inside,
                name=field,
                purpose=Purpose.VISIT,
                vault=VAULT,
                now=community.now,
            )
            assert value == str(_raw(field, member))
            logged = (
                await session.exec(select(AuditLog).where(AuditLog.action == "reveal"))
            ).all()
            assert len(logged) == before + 1
            assert logged[-1].actor_id == reader.id and logged[-1].data["field"] == field.value
            assert logged[-1].data["purpose"] == "visit" and logged[-1].at == community.now
        elif field in REVEALED:
            with pytest.raises(NotAllowed):
                await members.reveal(
                    session,
                    person=reader,
                    roles=roles,
                    member_id=inside,
                    name=field,
                    purpose=Purpose.VISIT,
                    vault=VAULT,
                    now=community.now,
                )
    if view is not None:
        with i18n.context(), i18n.use_locale("zh_Hans"):
            shown_text = member_text(view)
        if expected(PersonalField.ID_NUMBER, Screen.CARD) < Access.SHOWN:
            assert number not in shown_text

    # Screen.EXPORT: the residents ledger
    try:
        data = await export_members(
            session,
            reader,
            roles,
            vault=VAULT,
            now=community.now,
            translate=lambda m: gettext_for("zh_Hans", m),
        )
    except NotAllowed:
        data = None
    columns = [
        PersonalField.NAME,
        PersonalField.RELATION,
        PersonalField.ID_NUMBER,
        PersonalField.GENDER,
        PersonalField.BIRTH_DATE,
        PersonalField.PHONE,
        PersonalField.STATUS,
        PersonalField.MOVED_IN,
        PersonalField.MOVED_OUT,
        PersonalField.PARTY,
    ]
    if data is None:
        assert all(expected(f, Screen.EXPORT) == Access.HIDDEN for f in PersonalField), role
    else:
        sheet = load_workbook(io.BytesIO(data)).worksheets[0]
        rows = [[c.value for c in r] for r in sheet.iter_rows(min_row=2)]
        assert [r[0] for r in rows] == ["HE1"]  # never the household outside the scope
        cells = dict(zip(columns, rows[0][3:], strict=True))
        for field in columns:
            want = expected(field, Screen.EXPORT)
            cell = cells[field]
            raw = _raw(field, member)
            if want == Access.HIDDEN:
                assert cell == "***", (role, field)
            elif want == Access.MASKED:
                assert cell == (None if raw is None else str(masked(field, raw))), (role, field)
            elif field in PLAIN or field == PersonalField.MOVED_IN:
                shown = raw.isoformat() if isinstance(raw, date) else raw
                if field == PersonalField.PHONE:
                    shown = "13912345678"
                assert cell == shown, (role, field, cell)
            elif field == PersonalField.PARTY:
                assert cell == gettext_for("zh_Hans", PARTY_KIND[PartyKind.FULL]), (role, cell)
        in_full = expected(PersonalField.ID_NUMBER, Screen.EXPORT) >= Access.ON_REQUEST
        audit = (
            await session.exec(select(AuditLog).where(AuditLog.action == "export:members"))
        ).all()[-1]
        assert audit.actor_id == reader.id and audit.data["sensitive"] == in_full
        if in_full:
            assert "id_number" in audit.data["fields_in_full"]
        workbook = load_workbook(io.BytesIO(data))
        assert reader.name in (workbook.worksheets[0].oddHeader.center.text or "")
        assert reader.name in str(workbook.worksheets[-1]["A1"].value)

    # outside the role's grids: nothing, for every role
    with pytest.raises(NotAllowed):
        await members.member_card(
            session, person=reader, roles=roles, member_id=outside, vault=VAULT, now=community.now
        )


def _check(value: object, want: Access, field: PersonalField, raw: object) -> None:
    if want == Access.SHOWN:
        assert value == raw, (field, value)
    else:  # masked, with or without a "show" button
        assert value == masked(field, raw), (field, value)
        if raw is not None:
            assert value != raw, (field, value)


async def test_forgetting_erases_the_person_and_keeps_the_counts(
    session: AsyncSession, community: Community
) -> None:
    inside, _outside = await _setup(session, community)
    grid = community.grids[EAST_A]
    before = await members.grid_counts(session, grid)
    assert before == members.MemberCounts(registered=1)
    roles = await community.roles(session, community.east_admin)
    with pytest.raises(NotAllowed):  # a head may not erase
        head_roles = await community.roles(session, community.head)
        await members.forget(
            session, person=community.head, roles=head_roles, member_id=inside, now=community.now
        )
    await members.forget(
        session, person=community.east_admin, roles=roles, member_id=inside, now=community.now
    )
    member = await session.get(HouseholdMember, inside)
    assert member is not None
    assert (member.name, member.id_cipher, member.id_hash, member.phone, member.birth_date) == (
        "",
        None,
        None,
        None,
        None,
    )
    assert member.status == ResidenceStatus.REGISTERED and member.forgotten_at == community.now
    assert member.party is None  # party membership is personal data too
    assert await members.grid_counts(session, grid) == before
    audit = (await session.exec(select(AuditLog).where(AuditLog.action == "forget"))).one()
    assert audit.actor_id == community.east_admin.id and audit.object_id == inside
    # the number is free again: registering the person anew is a new row
    with pytest.raises(Exception, match="erased"):
        await members.forget(
            session,
            person=community.east_admin,
            roles=roles,
            member_id=inside,
            now=community.now,
        )


async def test_people_who_moved_out_long_ago_are_erased_by_the_retention_rule(
    session: AsyncSession, community: Community
) -> None:
    inside, outside = await _setup(session, community)
    long_ago, lately = (
        await session.get(HouseholdMember, inside),
        await session.get(HouseholdMember, outside),
    )
    assert long_ago is not None and lately is not None
    long_ago.moved_out = TODAY - timedelta(days=365 * 3 + 10)
    lately.moved_out = TODAY - timedelta(days=300)
    await session.flush()
    erased = await members.erase_moved_out(session, now=community.now, today=TODAY, years=3)
    assert erased == 1
    await session.refresh(long_ago)
    await session.refresh(lately)
    assert long_ago.forgotten_at is not None and long_ago.id_cipher is None
    assert lately.forgotten_at is None and lately.id_cipher is not None
    assert await members.erase_moved_out(session, now=community.now, today=TODAY, years=3) == 0


async def test_find_a_member_by_number_or_register_number(
    session: AsyncSession, community: Community
) -> None:
    inside, _outside = await _setup(session, community)
    number = PLAIN[PersonalField.ID_NUMBER]
    found = await members.find_member(session, number.lower(), vault=VAULT, today=TODAY)
    assert found.id == inside
    assert (
        await members.find_member(session, f"#{inside}", vault=VAULT, today=TODAY)
    ).id == inside
    for hostile in ("", "#", "#-1", "abc", "1" * 40, "#99999999999", "'; --", "\x00"):
        with pytest.raises(Exception) as raised:
            await members.find_member(session, hostile, vault=VAULT, today=TODAY)
        assert hasattr(raised.value, "message"), hostile


async def _leave_traces(session: AsyncSession, community: Community) -> None:
    """Import people, show a number (audited), export the full ledger (audited)."""
    inside, _outside = await _setup(session, community)
    roles = await community.roles(session, community.admin)
    await members.reveal(
        session,
        person=community.admin,
        roles=roles,
        member_id=inside,
        name=PersonalField.ID_NUMBER,
        purpose=Purpose.REGISTER,
        vault=VAULT,
        now=community.now,
    )
    await export_members(
        session, community.admin, roles, vault=VAULT, now=community.now, translate=lambda m: m
    )


async def test_a_database_copy_holds_no_plain_id_number(
    session: AsyncSession,
    engine: AsyncEngine,
    clock: FrozenClock,
    sqlite_template: Path,
    tmp_path: Path,
) -> None:
    numbers = [PLAIN[PersonalField.ID_NUMBER], OUTSIDER_NUMBER]
    if engine.dialect.name != "sqlite":  # every row of every table, as pg_dump would hold it
        await _leave_traces(session, await build_community(session, clock.now()))
        await session.flush()
        connection = await session.connection()
        dump = []
        for table in models.metadata.sorted_tables:
            dump.extend(str(r) for r in await connection.execute(table.select()))
        joined = "\n".join(dump)
        assert "gAAAAA" in joined  # the Fernet tokens are there
        assert not any(n in joined for n in numbers)
        return
    # SQLite: a database of its own, committed, and then read as a file
    path = tmp_path / "copy.db"
    shutil.copy(sqlite_template, path)
    own = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with create_session_factory(own)() as writing:
            await _leave_traces(writing, await build_community(writing, clock.now()))
            await writing.commit()
    finally:
        await own.dispose()
    connection = sqlite3.connect(path)
    try:
        dump_text = "\n".join(connection.iterdump())
    finally:
        connection.close()
    assert 'INSERT INTO "household_member"' in dump_text and "gAAAAA" in dump_text
    raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*") if p.is_file())
    assert b"gAAAAA" in raw
    for number in numbers:
        assert number not in dump_text
        for variant in (number, number.lower(), "".join(f"{c}\x00" for c in number)):
            assert variant.encode() not in raw


def test_the_table_covers_everything_and_keeps_the_law() -> None:
    """Every role, field and screen has an entry; a sensitive field is never shown outright
    (masked, or on request and audited); residents and departments see no one; only
    administrators take ID numbers out in full."""
    from bot.services.personal_fields import SENSITIVITY, Sensitivity

    for role in Role:
        for field in PersonalField:
            for screen in Screen:
                level = ACCESS[(role, field, screen)]
                if SENSITIVITY[field] == Sensitivity.SENSITIVE:
                    assert level != Access.SHOWN, (role, field, screen)
                if role in {Role.RESIDENT, Role.DEPARTMENT}:
                    assert level == Access.HIDDEN, (role, field, screen)
                if field == PersonalField.ID_NUMBER and screen == Screen.EXPORT:
                    assert (level >= Access.ON_REQUEST) == (role == Role.ADMIN)
                if screen == Screen.LIST:
                    assert level <= Access.MASKED or SENSITIVITY[field] != Sensitivity.SENSITIVE


async def test_households_are_found_by_a_members_name_or_whole_id_number(
    session: AsyncSession, community: Community
) -> None:
    from bot.services.households import list_households

    await _setup(session, community)
    head_roles = await community.roles(session, community.head)  # EAST_2: HE1, not HW1
    number = PLAIN[PersonalField.ID_NUMBER]
    for query in (PLAIN[PersonalField.NAME], number, number.lower()):
        page = await list_households(session, head_roles, query=query, vault=VAULT)
        assert [h.code for h in page.rows] == ["HE1"], query
    assert (await list_households(session, head_roles, query=number)).rows == []  # no key
    assert (
        await list_households(session, head_roles, query=OUTSIDER_NUMBER, vault=VAULT)
    ).rows == []
    assert (await list_households(session, head_roles, query="李四", vault=VAULT)).rows == []
