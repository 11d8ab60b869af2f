"""Grid boundaries: the GeoJSON check (hostile files included), the all-or-nothing load, and
the point lookup with its per-version cache — on the demo community, whose grids are mapped."""

from __future__ import annotations

import contextlib
import json
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import FrozenClock
from bot.errors import InvalidInput, NotAllowed
from bot.services import boundaries
from bot.services.boundaries import (
    BAD_COORDINATES,
    CROSSES_ITSELF,
    DUPLICATE,
    NO_CODE,
    OUT_OF_SCOPE,
    OUTSIDE_CHINA,
    OVERLAP,
    SWAPPED,
    TOO_FEW_CORNERS,
    UNKNOWN_GRID,
    WRONG_TYPE,
    read_boundaries,
)
from bot.services.demo import DEMO_PERSONAS, build_demo_community, load_demo_data
from bot.services.people import RoleInGrid, roles_of
from models import Counter, Grid, GridBoundary, Person

Box = tuple[float, float, float, float]


def rectangle(west: float, south: float, east: float, north: float) -> dict[str, Any]:
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


def feature(code: object, geometry: object) -> dict[str, Any]:
    return {"type": "Feature", "properties": {"code": code}, "geometry": geometry}


def collection(*features: object) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": list(features)}).encode()


def demo_file(**changed: dict[str, Any]) -> bytes:
    """The demo community's own boundaries as an admin would send them (``changed``: a grid
    code's geometry replaced)."""
    return collection(
        *(
            feature(g.code, changed.get(g.code, rectangle(*g.bounds)))
            for g in build_demo_community().grids
        )
    )


def reasons(problems: list[boundaries.BoundaryProblem]) -> list[str]:
    return [p.reason for p in problems]


# --- reading a file -------------------------------------------------------------------------


def test_a_good_file_reads_whole() -> None:
    drawn, problems = read_boundaries(demo_file())
    assert problems == [] and len(drawn) == 40
    assert boundaries.overlaps(drawn) == []  # neighbours share edges; parents hold children


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"x" * (10 * 1024 * 1024), boundaries.NOT_JSON),  # 10 MB of nonsense
        (b"[" * (10 * 1024 * 1024), boundaries.TOO_NESTED),  # 10 MB of nesting
        (b"\xff\xfe\x00nonsense", boundaries.NOT_UTF8),
        (b"", boundaries.NOT_JSON),
        (b"[1, 2, 3]", boundaries.NOT_COLLECTION),
        (b'{"type": "FeatureCollection", "features": {}}', boundaries.NOT_COLLECTION),
        (b'{"type": "FeatureCollection", "features": []}', boundaries.NO_FEATURES),
        (b'{"type": "FeatureCollection", "features": [NaN]}', boundaries.NOT_NUMBER_TEXT),
        (b" " * (boundaries.MAX_FILE_BYTES + 1), boundaries.TOO_BIG),
    ],
)
def test_a_file_that_cannot_be_used_is_refused_as_a_whole(data: bytes, reason: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        read_boundaries(data)
    assert refused.value.message == reason


@pytest.mark.parametrize(
    ("limit", "value", "reason"),
    [
        ("MAX_POINTS", 20, boundaries.TOO_MANY_POINTS),
        ("MAX_FEATURES", 39, boundaries.TOO_MANY_FEATURES),
    ],
)
def test_too_many_corners_or_features_are_refused(
    monkeypatch: pytest.MonkeyPatch, limit: str, value: int, reason: str
) -> None:
    monkeypatch.setattr(boundaries, limit, value)
    with pytest.raises(InvalidInput) as refused:
        read_boundaries(demo_file())
    assert refused.value.message == reason


def test_each_bad_feature_is_named() -> None:
    bow_tie = {
        "type": "Polygon",
        "coordinates": [
            [[118.0, 24.5], [118.1, 24.6], [118.1, 24.5], [118.0, 24.6], [118.0, 24.5]]
        ],
    }
    data = collection(
        feature("350211001001", rectangle(118.0, 24.5, 118.1, 24.6)),
        {"type": "Feature", "properties": {}, "geometry": rectangle(118.0, 24.5, 118.1, 24.6)},
        feature("３５０２１１００１００２", bow_tie),  # full-width digits are folded
        feature("350211001001", rectangle(118.0, 24.5, 118.1, 24.6)),
        feature("350211001003", {"type": "Point", "coordinates": [118.0, 24.5]}),
        feature("35021100100101", {"type": "Polygon", "coordinates": [[["a", 1]]]}),
        feature("35021100100102", rectangle(24.5, 118.0, 24.6, 118.1)),
        feature("35021100100103", rectangle(2.35, 48.85, 2.36, 48.86)),  # Paris
        feature("35021100100201", {"type": "Polygon", "coordinates": [[[118.0, 24.5]] * 3]}),
        "not a feature",
        feature(True, rectangle(118.0, 24.5, 118.1, 24.6)),
    )
    drawn, problems = read_boundaries(data)
    assert [d.code for d in drawn] == ["350211001001"]
    assert [(p.number, p.reason) for p in problems] == [
        (2, NO_CODE),
        (3, CROSSES_ITSELF),
        (4, DUPLICATE),
        (5, WRONG_TYPE),
        (6, BAD_COORDINATES),
        (7, SWAPPED),
        (8, OUTSIDE_CHINA),
        (9, TOO_FEW_CORNERS),
        (10, boundaries.NOT_A_FEATURE),
        (11, boundaries.BAD_CODE),
    ]
    crossing = problems[1]
    assert crossing.params["code"] == "350211001002"
    assert crossing.render("zh_Hans") == (
        "第 3 个要素：网格 350211001002 的边界在 24.55, 118.05 附近自相交叉。"
    )
    assert crossing.render("en") == (
        "Feature 3: the boundary of grid 350211001002 crosses itself near 24.55, 118.05."
    )


def test_overlapping_neighbours_are_paired_but_not_a_grid_and_its_parent() -> None:
    drawn, _ = read_boundaries(
        collection(
            feature("350211001001", rectangle(118.00, 24.50, 118.10, 24.60)),
            feature("35021100100101", rectangle(118.00, 24.50, 118.05, 24.60)),
            feature("350211001002", rectangle(118.09, 24.50, 118.20, 24.60)),  # 1 km into 001
            feature("350211001003", rectangle(118.20, 24.50, 118.30, 24.60)),  # edge only
        )
    )
    [(first, second, area)] = boundaries.overlaps(drawn)
    assert (drawn[first].code, drawn[second].code) == ("350211001001", "350211001002")
    assert 10_000_000 < area < 12_000_000  # 0.01° × 0.1° at 24.5°N: about 11 km²


@settings(max_examples=150, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.sampled_from(
                    ["type", "features", "geometry", "coordinates", "properties", "code"]
                ),
                inner,
                max_size=4,
            )
        ),
        max_leaves=30,
    )
)
def test_any_json_is_read_or_refused_in_words(value: object) -> None:
    """Whatever JSON arrives, the answer is features, problems, or a refusal — never a crash."""
    for document in (
        value,
        {"type": "FeatureCollection", "features": [value]},
        {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": value}]},
        collection(feature("350211001001", {"type": "Polygon", "coordinates": value})),
    ):
        data = document if isinstance(document, bytes) else json.dumps(document).encode()
        with contextlib.suppress(InvalidInput):
            read_boundaries(data)


# --- loading ----------------------------------------------------------------------------------


async def demo(
    session: AsyncSession, now: datetime, name: str = "admin"
) -> tuple[Person, list[RoleInGrid]]:
    await load_demo_data(session, now)
    person = (
        await session.exec(select(Person).where(Person.telegram_id == DEMO_PERSONAS[name]))
    ).one()
    assert person.id is not None
    return person, await roles_of(session, person.id)


async def version(session: AsyncSession) -> int | None:
    return (
        await session.exec(select(Counter.value).where(Counter.name == boundaries.VERSION_COUNTER))
    ).first()


async def boundary_count(session: AsyncSession) -> int:
    return (await session.exec(select(func.count()).select_from(GridBoundary))).one()


async def test_the_demo_community_is_mapped(session: AsyncSession, clock: FrozenClock) -> None:
    await demo(session, clock.now())
    assert await boundary_count(session) == 40 and await version(session) is not None
    grid = (await session.exec(select(Grid).where(Grid.code == "3502110010020303"))).one()
    located = await boundaries.locate(session, 24.5665, 118.0465)  # inside its rectangle
    assert located.mapped and located.grid_ids[0] == grid.id
    assert len(located.grid_ids) == 4  # the grid, its tier-2 grid, community and street
    assert (await boundaries.locate(session, 31.23, 121.47)) == boundaries.Located(True, [])


async def test_a_file_with_a_problem_changes_nothing(
    session: AsyncSession, clock: FrozenClock
) -> None:
    admin, roles = await demo(session, clock.now())
    before, count = await version(session), await boundary_count(session)
    data = collection(
        feature("350211001001", rectangle(118.03, 24.565, 118.039, 24.577)),
        feature("350211009009", rectangle(118.10, 24.565, 118.11, 24.577)),  # no such grid
        feature("350211001002", rectangle(118.035, 24.565, 118.048, 24.577)),  # overlaps 001
    )
    report = await boundaries.load_boundaries(session, admin, roles, data, now=clock.now())
    assert not report.ok and report.loaded == 0
    assert [(p.number, p.reason) for p in report.problems] == [(2, UNKNOWN_GRID), (3, OVERLAP)]
    assert report.problems[1].params["first"] == "350211001001"
    assert await version(session) == before and await boundary_count(session) == count


async def test_a_good_file_replaces_the_map_and_names_grids_left_out(
    session: AsyncSession, clock: FrozenClock
) -> None:
    admin, roles = await demo(session, clock.now())
    before = await version(session)
    first = await boundaries.locate(session, 24.5665, 118.0465)
    # only the 杏东社区 community and two of its tier-3 grids, moved north by 0.1°
    data = collection(
        feature("350211001001", rectangle(118.03, 24.665, 118.039, 24.677)),
        feature("3502110010010101", rectangle(118.03, 24.673, 118.033, 24.677)),
        feature("3502110010010102", rectangle(118.033, 24.673, 118.036, 24.677)),
    )
    report = await boundaries.load_boundaries(session, admin, roles, data, now=clock.now())
    assert report.ok, report.problems
    assert (report.loaded, report.replaced, len(report.missing)) == (3, 40, 25)
    assert "3502110010010103" in report.missing and "3502110010010101" not in report.missing
    assert await version(session) != before and await boundary_count(session) == 3

    assert first.grid_ids and (await boundaries.locate(session, 24.5665, 118.0465)).grid_ids == []
    moved = await boundaries.locate(session, 24.675, 118.0345)
    tier3 = (await session.exec(select(Grid).where(Grid.code == "3502110010010102"))).one()
    assert moved.grid_ids[0] == tier3.id


async def test_only_an_admin_loads_and_only_their_grids(
    session: AsyncSession, clock: FrozenClock
) -> None:
    worker, roles = await demo(session, clock.now(), "worker")
    with pytest.raises(NotAllowed):
        await boundaries.load_boundaries(session, worker, roles, demo_file(), now=clock.now())
    admin, admin_roles = await demo_admin_of_one_community(session, clock)
    report = await boundaries.load_boundaries(
        session, admin, admin_roles, demo_file(), now=clock.now()
    )
    assert not report.ok
    outside = {p.params["code"] for p in report.problems if p.reason == OUT_OF_SCOPE}
    assert "350211001" in outside and "350211001002" in outside
    assert "350211001001" not in outside


async def demo_admin_of_one_community(
    session: AsyncSession, clock: FrozenClock
) -> tuple[Person, list[RoleInGrid]]:
    """An admin whose role covers only the first community."""
    from models import Role, RoleAssignment

    community = (await session.exec(select(Grid).where(Grid.code == "350211001001"))).one()
    person = Person(name="社区管理员", created_at=clock.now(), updated_at=clock.now())
    session.add(person)
    await session.flush()
    assert person.id is not None and community.id is not None
    session.add(
        RoleAssignment(
            person_id=person.id, role=Role.ADMIN, grid_id=community.id, created_at=clock.now()
        )
    )
    await session.flush()
    return person, await roles_of(session, person.id)


async def test_the_index_is_read_again_only_for_a_new_version(
    session: AsyncSession, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin, roles = await demo(session, clock.now())
    built: list[int] = []
    build = boundaries._build_index

    def counting(version: int, rows: Any) -> boundaries.BoundaryIndex:
        built.append(version)
        return build(version, rows)

    monkeypatch.setattr(boundaries, "_build_index", counting)
    for _ in range(3):
        await boundaries.locate(session, 24.5665, 118.0465)
    assert len(built) <= 1  # built once (or not at all, when an earlier test left it cached)
    report = await boundaries.load_boundaries(session, admin, roles, demo_file(), now=clock.now())
    assert report.ok
    await boundaries.locate(session, 24.5665, 118.0465)
    await boundaries.locate(session, 24.5665, 118.0465)
    assert built[-1] == await version(session) and built.count(built[-1]) == 1


async def test_no_boundaries_no_map(session: AsyncSession) -> None:
    assert await boundaries.locate(session, 24.5665, 118.0465) == boundaries.Located(False, [])
    assert (
        await session.exec(select(GridBoundary).where(col(GridBoundary.grid_id) > 0))
    ).first() is None
