"""Grid names that show nothing (zero-width spaces, joiners, direction marks, fillers) are
refused like an empty name, on creation and on renaming; visible names keep their letters."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import FrozenClock
from bot.errors import InvalidInput
from bot.services import grids, people
from bot.services.demo import DEMO_PERSONAS, load_demo_data
from models import Grid, Person

INVISIBLE = st.sampled_from(
    [
        "\u200b",  # zero-width space
        "\u200c",  # zero-width non-joiner
        "\u200d",  # zero-width joiner
        "\u2060",  # word joiner
        "\ufeff",  # byte order mark
        "\u200e",  # left-to-right mark
        "\u202e",  # right-to-left override
        "\u00ad",  # soft hyphen
        "\u034f",  # combining grapheme joiner
        "\ufe0f",  # variation selector
        "\u3164",  # Hangul filler
        "\u2800",  # Braille blank
        "\u3000",  # ideographic space
        " ",
        "\t",
        "\n",
    ]
)
SHOWS_NOTHING = st.lists(INVISIBLE, min_size=1, max_size=30).map("".join)
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
async def demo(session: AsyncSession, clock: FrozenClock) -> AsyncSession:
    await load_demo_data(session, clock.now())
    await session.flush()
    return session


async def admin_of(session: AsyncSession) -> tuple[Person, list[people.RoleInGrid]]:
    admin = (
        await session.exec(select(Person).where(Person.telegram_id == DEMO_PERSONAS["admin"]))
    ).one()
    assert admin.id is not None
    return admin, await people.roles_of(session, admin.id)


@FUZZ
@given(name=SHOWS_NOTHING)
async def test_a_name_that_shows_nothing_is_refused(
    demo: AsyncSession, clock: FrozenClock, name: str
) -> None:
    admin, roles = await admin_of(demo)
    community = (await demo.exec(select(Grid).where(Grid.tier == 1))).first()
    assert community is not None
    old = community.name
    with pytest.raises(InvalidInput):
        await grids.create_grid(
            demo, actor=admin, roles=roles, parent=community, name=name, now=clock.now()
        )
    with pytest.raises(InvalidInput):
        await grids.rename_grid(
            demo, actor=admin, roles=roles, grid=community, name=name, now=clock.now()
        )
    assert community.name == old


async def test_a_visible_name_keeps_its_letters_without_the_invisible_ones(
    demo: AsyncSession, clock: FrozenClock
) -> None:
    admin, roles = await admin_of(demo)
    community = (await demo.exec(select(Grid).where(Grid.tier == 1))).first()
    assert community is not None
    grid = await grids.create_grid(
        demo,
        actor=admin,
        roles=roles,
        parent=community,
        name="\u200b新\u200d建\u3000 网格\ufeff",
        now=clock.now(),
    )
    assert grid.name == "新建 网格"
    renamed = await grids.rename_grid(
        demo, actor=admin, roles=roles, grid=grid, name="🏠\u200d一组", now=clock.now()
    )
    assert renamed.name == "🏠一组"
