"""Grids, invitations, onboarding and the notice board on the demo community."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import FrozenClock
from bot.errors import InvalidInput, NotAllowed
from bot.services import deeplinks, grids, invites, notice_board, onboarding, people
from bot.services.demo import DEMO_PERSONAS, load_demo_data
from bot.services.permissions import Action
from bot.services.phones import InvalidPhone, mask_phone, normalize_phone
from bot.services.qr import qr_png
from models import AuditLog, Grid, Household, Person, Role, RoleAssignment


async def person(session: AsyncSession, persona: str) -> Person:
    return (
        await session.exec(select(Person).where(Person.telegram_id == DEMO_PERSONAS[persona]))
    ).one()


@pytest.fixture
async def demo(session: AsyncSession, clock: FrozenClock) -> AsyncSession:
    await load_demo_data(session, clock.now())
    await session.flush()
    return session


async def roles(session: AsyncSession, who: Person) -> list[people.RoleInGrid]:
    assert who.id is not None
    return await people.roles_of(session, who.id)


async def test_grid_tree_counts_and_pages(demo: AsyncSession) -> None:
    root = (await demo.exec(select(Grid).where(Grid.tier == 0))).one()
    first = await grids.grid_tree(demo, root, page=0, per_page=8)
    assert first.total == 40 and first.pages == 5
    top = first.rows[0]
    assert top.grid.id == root.id
    assert top.households == (await demo.exec(select(Household))).all().__len__()
    leaf = next(r for r in first.rows if r.grid.tier == 3)
    assert len(leaf.workers) == 1 and 20 <= leaf.households <= 30
    last = await grids.grid_tree(demo, root, page=99, per_page=8)
    assert last.page == 4


async def test_span_warnings_find_an_unstaffed_grid_and_an_overloaded_worker(
    demo: AsyncSession, clock: FrozenClock
) -> None:
    root = (await demo.exec(select(Grid).where(Grid.tier == 0))).one()
    assert await grids.span_warnings(demo, root) == []
    worker = await person(demo, "worker")
    other = await person(demo, "other_worker")
    # the other worker leaves; their households go to our worker (now well over 30)
    await demo.exec(  # type: ignore[call-overload]
        RoleAssignment.__table__.delete().where(  # type: ignore[attr-defined]
            RoleAssignment.person_id == other.id
        )
    )
    for household in await demo.exec(select(Household).where(Household.worker_id == other.id)):
        household.worker_id = worker.id
        demo.add(household)
    await demo.flush()
    messages = {w.message for w in await grids.span_warnings(demo, root)}
    assert "This grid has no grid worker." in messages
    assert "{name} looks after {count} households (at most {limit})." in messages


async def test_admin_creates_renames_and_moves_grids(
    demo: AsyncSession, clock: FrozenClock
) -> None:
    admin = await person(demo, "admin")
    admin_roles = await roles(demo, admin)
    now = clock.now()
    community = (await demo.exec(select(Grid).where(Grid.tier == 1).order_by(Grid.code))).first()
    assert community is not None
    new = await grids.create_grid(
        demo, actor=admin, roles=admin_roles, parent=community, name="  新建 网格 ", now=now
    )
    assert new.name == "新建 网格" and new.tier == 2 and new.code.startswith(community.code)
    assert new.path == f"{community.path}{new.id}/"
    child = await grids.create_grid(
        demo, actor=admin, roles=admin_roles, parent=new, name="楼栋", now=now
    )
    other_community = (
        await demo.exec(select(Grid).where(Grid.tier == 1).order_by(col(Grid.code).desc()))
    ).first()
    assert other_community is not None
    await grids.move_grid(
        demo, actor=admin, roles=admin_roles, grid=new, new_parent=other_community, now=now
    )
    await demo.refresh(child)
    assert new.code.startswith(other_community.code)
    assert child.code.startswith(new.code) and child.path.startswith(new.path)
    with pytest.raises(InvalidInput):
        await grids.move_grid(
            demo, actor=admin, roles=admin_roles, grid=new, new_parent=child, now=now
        )
    with pytest.raises(InvalidInput):
        await grids.rename_grid(demo, actor=admin, roles=admin_roles, grid=new, name=" ", now=now)
    worker = await person(demo, "worker")
    with pytest.raises(NotAllowed):
        await grids.rename_grid(
            demo, actor=worker, roles=await roles(demo, worker), grid=new, name="x", now=now
        )


async def test_notice_fields_are_validated(demo: AsyncSession, clock: FrozenClock) -> None:
    admin = await person(demo, "admin")
    grid = (await demo.exec(select(Grid).where(Grid.tier == 3))).first()
    assert grid is not None
    kw = {"actor": admin, "roles": await roles(demo, admin), "grid": grid, "now": clock.now()}
    await grids.set_notice(demo, field_name="phone", value="0592-6123456", **kw)
    assert grid.complaint_phone == "+865926123456"
    with pytest.raises(InvalidPhone):
        await grids.set_notice(demo, field_name="phone", value="call me", **kw)
    with pytest.raises(InvalidInput):
        await grids.set_notice(demo, field_name="colour", value="red", **kw)
    with pytest.raises(InvalidInput):
        await grids.set_notice(demo, field_name="area", value="x" * 501, **kw)


async def test_find_grid_by_code_or_name(demo: AsyncSession) -> None:
    grid = (await demo.exec(select(Grid).where(Grid.tier == 3))).first()
    assert grid is not None
    full_width = grid.code.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    assert (await grids.find_grid(demo, full_width)).id == grid.id
    assert (await grids.find_grid(demo, f" {grid.name} ")).id == grid.id
    with pytest.raises(grids.GridNotFound):
        await grids.find_grid(demo, "no such grid")


async def test_invitation_is_single_use_and_expires(
    demo: AsyncSession, clock: FrozenClock
) -> None:
    admin = await person(demo, "admin")
    grid = (await demo.exec(select(Grid).where(Grid.tier == 3))).first()
    assert grid is not None
    now = clock.now()
    issued = await invites.create_invite(
        demo, actor=admin, roles=await roles(demo, admin), role=Role.WORKER, grid=grid, now=now
    )
    assert len(issued.token) >= 22 and issued.token not in issued.invite.token_hash
    payload = deeplinks.invite_payload(issued.token)
    assert len(payload) <= 64
    assert deeplinks.parse_start_payload(payload) == deeplinks.UseInvite(issued.token)
    newcomer = Person(name="新人", telegram_id=1, created_at=now, updated_at=now)
    demo.add(newcomer)
    await demo.flush()
    _, joined = await invites.redeem_invite(demo, person=newcomer, token=issued.token, now=now)
    assert joined.id == grid.id
    assert {r.role for r in await roles(demo, newcomer)} == {Role.WORKER}
    with pytest.raises(invites.InviteUsed):
        await invites.redeem_invite(demo, person=newcomer, token=issued.token, now=now)
    late = await invites.create_invite(
        demo, actor=admin, roles=await roles(demo, admin), role=Role.HEAD, grid=grid, now=now
    )
    with pytest.raises(invites.InviteExpired):
        await invites.redeem_invite(
            demo, person=newcomer, token=late.token, now=now + timedelta(hours=73)
        )
    revoked = await invites.create_invite(
        demo, actor=admin, roles=await roles(demo, admin), role=Role.HEAD, grid=grid, now=now
    )
    await invites.revoke_invite(
        demo,
        actor=admin,
        roles=await roles(demo, admin),
        invite_id=revoked.invite.id or 0,
        now=now,
    )
    with pytest.raises(invites.InviteRevoked):
        await invites.redeem_invite(demo, person=newcomer, token=revoked.token, now=now)
    with pytest.raises(invites.InviteRefused):
        await invites.redeem_invite(demo, person=newcomer, token="A" * 32, now=now)


async def test_a_worker_cannot_invite(demo: AsyncSession, clock: FrozenClock) -> None:
    worker = await person(demo, "worker")
    grid = (await demo.exec(select(Grid).where(Grid.tier == 3))).first()
    assert grid is not None
    with pytest.raises(NotAllowed):
        await invites.create_invite(
            demo,
            actor=worker,
            roles=await roles(demo, worker),
            role=Role.ADMIN,
            grid=grid,
            now=clock.now(),
        )


async def test_a_resident_joins_and_is_matched_to_their_household(
    demo: AsyncSession, clock: FrozenClock
) -> None:
    now = clock.now()
    household = (await demo.exec(select(Household).where(Household.is_business == False))).first()  # noqa: E712
    assert household is not None and household.phone is not None
    grid = await demo.get(Grid, household.grid_id)
    assert grid is not None
    newcomer = Person(name="居民", telegram_id=2, created_at=now, updated_at=now)
    demo.add(newcomer)
    await demo.flush()
    assert await onboarding.join_grid(demo, person=newcomer, grid=grid, now=now)
    assert not await onboarding.join_grid(demo, person=newcomer, grid=grid, now=now)
    shared = household.phone.lstrip("+")  # Telegram sends contacts without the plus
    matched = await onboarding.bind_phone(demo, person=newcomer, grid=grid, phone=shared, now=now)
    assert matched is not None and matched.id == household.id
    assert newcomer.household_id == household.id
    board = await notice_board.notice_board(demo, grid)
    assert board.workers and board.heads and board.households >= 20
    assert board.complaint_phone is not None
    assert await notice_board.resident_grid(demo, newcomer.id or 0) == grid
    audits = (await demo.exec(select(AuditLog.action))).all()
    assert "resident_join" in audits


@given(st.one_of(st.none(), st.text(max_size=200)))
def test_start_payload_parser_never_crashes(payload: str | None) -> None:
    result = deeplinks.parse_start_payload(payload)
    assert result is None or isinstance(
        result,
        deeplinks.JoinGrid
        | deeplinks.UseInvite
        | deeplinks.BecomeLandlord
        | deeplinks.RegisterAsTenant,
    )


@given(st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True))
def test_only_our_prefixes_are_links(payload: str) -> None:
    result = deeplinks.parse_start_payload(payload)
    if result is not None:
        assert payload.startswith(("join_", "inv_", "ll_", "tn_"))


def test_deep_links_round_trip() -> None:
    assert deeplinks.parse_start_payload(deeplinks.join_payload("3502110010010101")) == (
        deeplinks.JoinGrid("3502110010010101")
    )
    assert deeplinks.parse_start_payload("join_12") is None
    assert deeplinks.parse_start_payload("inv_short") is None
    assert deeplinks.parse_start_payload("join_" + "1" * 60) is None  # over 64 in all


@given(st.text(max_size=100))
def test_phone_normaliser_accepts_or_refuses_cleanly(raw: str) -> None:
    try:
        number = normalize_phone(raw)
    except InvalidPhone:
        return
    assert number.startswith("+")


def test_phone_forms() -> None:
    assert normalize_phone("138 1234 5678") == "+8613812345678"
    assert normalize_phone("8613812345678") == "+8613812345678"
    assert normalize_phone("+86-138-1234-5678") == "+8613812345678"
    assert mask_phone("+8613812345678") == "138****5678"


def test_qr_png_is_a_png() -> None:
    png = qr_png("https://t.me/gridbot?start=join_3502110010010101")
    assert png.startswith(b"\x89PNG")


async def test_grid_choices_walk_ones_own_scope_a_page_at_a_time(
    demo: AsyncSession, clock: FrozenClock
) -> None:
    now = clock.now()
    admin = await person(demo, "admin")
    admin_roles = await roles(demo, admin)
    street = (await demo.exec(select(Grid).where(Grid.tier == 0))).one()
    top = await grids.grid_choices(demo, admin, admin_roles, Action.MANAGE, now)
    assert top.parent is not None and top.parent.id == street.id  # one subtree: opened at once
    assert top.up is None and all(c.children for c in top.choices)  # communities
    community = top.choices[0].grid
    for n in range(19):  # a community with far more grids than a page
        extra = Grid(
            code=f"{community.code}8{n:02d}",
            name=f"新网格{n}",
            tier=2,
            parent_id=community.id,
            created_at=now,
        )
        demo.add(extra)
        await demo.flush()
        extra.path = f"{community.path}{extra.id}/"
    await demo.flush()
    below = await grids.grid_choices(
        demo, admin, admin_roles, Action.MANAGE, now, parent_id=community.id or 0
    )
    assert below.up == street.id and len(below.choices) == grids.CHOICES_PER_PAGE
    last = await grids.grid_choices(
        demo, admin, admin_roles, Action.MANAGE, now, parent_id=community.id or 0, page=99
    )
    assert last.page == last.pages - 1 and 0 < len(last.choices) <= grids.CHOICES_PER_PAGE
    pages = [
        await grids.grid_choices(
            demo, admin, admin_roles, Action.MANAGE, now, parent_id=community.id or 0, page=p
        )
        for p in range(below.pages)
    ]
    shown = [c.grid.id for page in pages for c in page.choices]
    assert len(shown) == len(set(shown))  # no grid on two pages
    total = (await demo.exec(select(Grid).where(Grid.parent_id == community.id))).all()
    assert sorted(shown) == sorted(g.id for g in total)

    head = await person(demo, "head")
    head_roles = await roles(demo, head)
    own = await grids.grid_choices(demo, head, head_roles, Action.ORGANISE, now)
    assert own.parent is not None and own.up is None
    assert all(c.grid.parent_id == own.parent.id for c in own.choices)
    with pytest.raises(NotAllowed):  # the street above the head's grid: outside, and audited
        await grids.grid_choices(
            demo, head, head_roles, Action.ORGANISE, now, parent_id=street.id or 0
        )
    with pytest.raises(NotAllowed):  # a head manages no grid at all
        await grids.grid_choices(demo, head, head_roles, Action.MANAGE, now)
    assert invites.invitable_roles(head_roles) == []
    assert Role.RESIDENT not in invites.invitable_roles(admin_roles)
