"""Which grid a report goes to: its point, the home, a typed address, or the reporter's grid —
and the street centre told of a point outside every grid. On the demo community (mapped)."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import delete
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import FrozenClock
from bot.services import boundaries, tickets
from bot.services.addresses import address_key, names_same_place, normalize_address
from bot.services.demo import DEMO_PERSONAS, load_demo_data
from bot.services.notice_board import resident_grid
from bot.services.ticket_notices import Notice
from bot.services.tickets import PlacedBy, place_report
from bot.settings import Settings
from models import (
    Counter,
    Grid,
    GridBoundary,
    Household,
    Person,
    Role,
    RoleAssignment,
    TicketCategory,
    TicketEvent,
)
from tests.fakes import RecordingNotifier

INSIDE_JINYUAN_VILLAGE = (24.5695, 118.0525)  # 锦园社区, 后埔里 片区, its second group
OUTSIDE = (31.2304, 121.4737)  # Shanghai


@pytest.mark.parametrize(
    ("typed", "normalised"),
    [
        ("杏东花园 3号楼 1单元 101", "杏东花园3栋1单元101"),
        ("杏东花园３幢１单元１０１室", "杏东花园3栋1单元101"),
        ("杏东花园3#楼1单元", "杏东花园3栋1单元"),
        ("杏东花园3座, 1单元", "杏东花园3栋1单元"),
        ("Apple Street 12号", "applestreet12号"),
        ("杏东花园三号楼", "杏东花园三号楼"),  # Chinese numerals are left alone
    ],
)
def test_addresses_are_normalised(typed: str, normalised: str) -> None:
    assert normalize_address(typed) == normalised


@pytest.mark.parametrize(
    ("typed", "registered", "same"),
    [
        ("杏东花园3栋", "杏东社区杏东花园3栋1单元101", True),
        ("杏东花园3栋1单元101门口", "杏东社区杏东花园3栋1单元101", False),  # not a part of it
        ("杏东社区杏东花园3栋1单元101门口", "杏东社区杏东花园3栋1单元101", True),
        ("杏东花园13栋", "杏东社区杏东花园3栋1单元101", False),
        ("杏东路1", "杏东社区杏东路12号", False),  # 1 is not 12
        ("杏东路12", "杏东社区杏东路12号", True),
        ("12号", "杏东社区杏东路112号", False),
        ("东门", "杏东社区东门", False),  # too short to tell anything apart
    ],
)
def test_a_typed_address_names_a_registered_one(typed: str, registered: str, same: bool) -> None:
    assert names_same_place(normalize_address(typed), normalize_address(registered)) is same


async def resident(session: AsyncSession, now: datetime) -> tuple[Person, Grid]:
    await load_demo_data(session, now)
    person = (
        await session.exec(select(Person).where(Person.telegram_id == DEMO_PERSONAS["resident"]))
    ).one()
    assert person.id is not None
    grid = await resident_grid(session, person.id)
    assert grid is not None
    return person, grid


async def grid(session: AsyncSession, code: str) -> Grid:
    return (await session.exec(select(Grid).where(Grid.code == code))).one()


async def test_a_point_chooses_the_grid_it_lies_in(
    session: AsyncSession, clock: FrozenClock
) -> None:
    _, home = await resident(session, clock.now())
    lat, lng = INSIDE_JINYUAN_VILLAGE
    placed = await place_report(session, home=home, latitude=lat, longitude=lng)
    assert placed.by is PlacedBy.POINT and placed.grid.code == "3502110010030202"
    # where the map stops above the lowest grids, the home grid if it lies there
    await session.exec(delete(GridBoundary).where(GridBoundary.grid_id == home.id))
    await boundaries.new_version(session)
    home_point = await place_report(session, home=home, latitude=24.576, longitude=118.0305)
    assert home_point.grid.id == home.id and home_point.by is PlacedBy.POINT
    placed = await place_report(session, home=home, latitude=lat, longitude=lng)
    assert placed.by is PlacedBy.POINT and placed.grid.code == "3502110010030202"


async def test_a_typed_address_chooses_its_households_grid(
    session: AsyncSession, clock: FrozenClock
) -> None:
    _, home = await resident(session, clock.now())
    household = (
        await session.exec(
            select(Household)
            .join(Grid, Grid.id == Household.grid_id)
            .where(Grid.code == "3502110010020101")
        )
    ).first()
    assert household is not None
    typed = household.address.replace("社区 ", "社区").replace("号楼", "幢") + "室"
    placed = await place_report(session, home=home, address=typed)
    assert placed.by is PlacedBy.ADDRESS and placed.grid.id == household.grid_id
    # the name of a place with grids of its own names no single grid: the reporter's grid
    vague = await place_report(session, home=home, address="杏西新村")
    assert vague.by is PlacedBy.REPORTER and vague.grid.id == home.id
    # a building and a unit without the name of the place: most likely near home, even when
    # only one household of the street has that building number
    household.address = "杏西社区 杏西新村 88号楼 1单元 101"
    household.address_key = address_key(household.address)  # as an import would keep it
    session.add(household)
    await session.flush()
    named = await place_report(session, home=home, address="杏西新村88号楼")
    assert named.by is PlacedBy.ADDRESS and named.grid.id == household.grid_id
    bare = await place_report(session, home=home, address="88号楼1单元")
    assert bare.by is PlacedBy.REPORTER and bare.grid.id == home.id


async def test_at_home_chooses_the_households_grid(
    session: AsyncSession, clock: FrozenClock
) -> None:
    person, home = await resident(session, clock.now())
    placed = await place_report(session, home=home, household_id=person.household_id)
    assert placed.by is PlacedBy.HOME and placed.grid.id == home.id


async def test_a_point_outside_every_grid_goes_home_and_the_centre_is_told(
    session: AsyncSession, clock: FrozenClock
) -> None:
    person, home = await resident(session, clock.now())
    lat, lng = OUTSIDE
    placed = await place_report(session, home=home, latitude=lat, longitude=lng)
    assert placed.by is PlacedBy.OUTSIDE and placed.grid.id == home.id
    notifier = RecordingNotifier()
    ticket = await tickets.file_ticket(
        session,
        notifier,
        reporter=person,
        grid=home,
        report=tickets.Report(
            TicketCategory.FACILITY, "路灯坏了好几天了", latitude=lat, longitude=lng
        ),
        settings=Settings(_env_file=None),  # type: ignore[call-arg]
        now=clock.now(),
        placement=placed,
    )
    assert ticket.grid_id == home.id
    assert notifier.notices() == [Notice.FILED, Notice.OUTSIDE_GRIDS]
    told = notifier.updates[-1].others
    centre = await grid(session, "350211001")
    holders = (
        await session.exec(
            select(RoleAssignment.person_id).where(
                RoleAssignment.grid_id == centre.id, RoleAssignment.role == Role.CENTER
            )
        )
    ).all()
    assert told and {p.id for p in told} == set(holders)
    submitted = (
        await session.exec(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id))
    ).first()
    assert submitted is not None and submitted.data == {"placed_by": "outside"}


async def test_without_a_map_a_point_goes_home_and_nobody_is_bothered(
    session: AsyncSession, clock: FrozenClock
) -> None:
    _, home = await resident(session, clock.now())
    await session.exec(delete(GridBoundary))
    await session.exec(delete(Counter))
    lat, lng = INSIDE_JINYUAN_VILLAGE
    placed = await place_report(session, home=home, latitude=lat, longitude=lng)
    assert placed.by is PlacedBy.REPORTER and placed.grid.id == home.id


async def test_a_report_filed_in_another_grid_goes_to_that_grids_worker(
    session: AsyncSession, clock: FrozenClock
) -> None:
    person, home = await resident(session, clock.now())
    lat, lng = INSIDE_JINYUAN_VILLAGE
    placed = await place_report(session, home=home, latitude=lat, longitude=lng)
    notifier = RecordingNotifier()
    ticket = await tickets.file_ticket(
        session,
        notifier,
        reporter=person,
        grid=home,
        report=tickets.Report(
            TicketCategory.FACILITY, "村口的井盖丢了", latitude=lat, longitude=lng
        ),
        settings=Settings(_env_file=None),  # type: ignore[call-arg]
        now=clock.now(),
        placement=placed,
    )
    village = await grid(session, "3502110010030202")
    assert ticket.grid_id == village.id and ticket.number.startswith(village.code)
    assert notifier.notices() == [Notice.FILED]
    worker = (
        await session.exec(
            select(RoleAssignment.person_id).where(
                RoleAssignment.grid_id == village.id, RoleAssignment.role == Role.WORKER
            )
        )
    ).one()
    assert [p.id for p in await tickets.owners(session, ticket)] == [worker]


async def test_where_the_lowest_grids_are_not_mapped_the_centre_passes_it_on(
    session: AsyncSession, clock: FrozenClock
) -> None:
    person, home = await resident(session, clock.now())
    village = await grid(session, "3502110010030202")
    await session.exec(delete(GridBoundary).where(GridBoundary.grid_id == village.id))
    await boundaries.new_version(session)
    lat, lng = INSIDE_JINYUAN_VILLAGE
    placed = await place_report(session, home=home, latitude=lat, longitude=lng)
    area = await grid(session, "35021100100302")  # its tier-2 grid, still on the map
    assert placed.by is PlacedBy.AREA and placed.grid.id == area.id and placed.centre_told
    notifier = RecordingNotifier()
    ticket = await tickets.file_ticket(
        session,
        notifier,
        reporter=person,
        grid=home,
        report=tickets.Report(
            TicketCategory.FACILITY, "村口的井盖丢了", latitude=lat, longitude=lng
        ),
        settings=Settings(_env_file=None),  # type: ignore[call-arg]
        now=clock.now(),
        placement=placed,
    )
    assert ticket.grid_id == area.id
    assert notifier.notices() == [Notice.FILED, Notice.OUTSIDE_GRIDS]
    assert notifier.updates[-1].extra == {"placed_by": "area"} and notifier.updates[-1].others
