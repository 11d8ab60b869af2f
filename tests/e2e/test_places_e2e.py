"""The place decides the grid, end to end: the demo community is on the map, a resident of one
grid reports a problem in another by sharing a location or typing an address, a location
outside every grid goes home with the street centre told, and an admin's hostile GeoJSON
files are refused in words with nothing half-loaded."""

from __future__ import annotations

import json

import pytest
from sqlmodel import col, func, select

from bot.i18n import gettext_for
from bot.sandbox.client import Persona
from bot.services import boundaries
from bot.services.demo import build_demo_community
from bot.services.ticket_numbers import shown_number
from bot.services.tickets import PlacedBy
from bot.telegram import report_views as views
from bot.telegram.ticket_notifier import OUTSIDE_GRIDS_TEXT
from models import Counter, Grid, GridBoundary, Household, Ticket, TicketCategory
from tests.e2e.harness import Harness
from tests.e2e.test_report_e2e import newest_ticket, start_report

pytestmark = pytest.mark.e2e

ZH = "zh_Hans"
# inside the second tier-3 grid (杏东花园, where "other_worker" works); the resident lives in
# the first
IN_THE_NEIGHBOURS_GRID = (24.575, 118.0345)
SHANGHAI = (31.2304, 121.4737)


def zh(msgid: str, **params: object) -> str:
    return gettext_for(ZH, msgid, **params)


async def grid(h: Harness, code: str) -> Grid:
    async with h.session() as session:
        return (await session.exec(select(Grid).where(Grid.code == code))).one()


async def report_up_to_the_place(resident: Persona, description: str) -> None:
    await start_report(resident, TicketCategory.FACILITY, description)
    await resident.press(zh(views.NO_PHOTOS))
    await resident.next_message()  # where is it?


async def summary_after_the_place(resident: Persona) -> str:
    await resident.next_message()  # the place, noted
    await resident.next_message()  # is anyone in danger?
    await resident.press(zh(views.DANGER_NO))
    summary = await resident.next_message()
    assert zh("Please check your report:") in summary.text
    return summary.text


async def test_a_location_in_another_grid_goes_to_that_grid(h: Harness) -> None:
    resident = await h.persona("resident")
    neighbours_worker = await h.persona("other_worker")
    worker = await h.persona("worker")
    await report_up_to_the_place(resident, "隔壁楼门口的井盖丢了，晚上很危险")
    await resident.press_reply(zh(views.SEND_LOCATION), location=IN_THE_NEIGHBOURS_GRID)
    summary = await summary_after_the_place(resident)
    there = await grid(h, "3502110010010102")
    assert zh(views.PLACED_TEXT[PlacedBy.POINT], grid=there.name) in summary
    await resident.press(zh(views.SEND))
    done = await resident.next_message()

    ticket = await newest_ticket(h)
    assert shown_number(ticket) in done.text and ticket.grid_id == there.id
    assert ticket.number.startswith(there.code)
    card = await neighbours_worker.next_message()
    assert shown_number(ticket) in card.text
    await h.settle()
    told_at_home = (await worker.transcript()).bot_messages
    assert all(shown_number(ticket) not in m.text for m in told_at_home)


async def test_a_typed_address_goes_to_the_grid_of_its_households(h: Harness) -> None:
    resident = await h.persona("resident")
    there = await grid(h, "3502110010020202")  # 西亭苑, in another community
    async with h.session() as session:
        household = (
            await session.exec(
                select(Household)
                .where(Household.grid_id == there.id)
                .order_by(col(Household.id))
                .limit(1)
            )
        ).one()
    # "杏西社区 西亭苑 5号楼 1单元 101" typed as "西亭苑５幢１单元１０１室"
    place, building, unit, flat = household.address.split()[1:]
    typed = f"{place}{building.replace('号楼', '幢')}{unit}{flat}室"
    typed = typed.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    await report_up_to_the_place(resident, "楼道灯坏了一个星期了")
    await resident.send(typed)
    summary = await summary_after_the_place(resident)
    assert zh(views.PLACED_TEXT[PlacedBy.ADDRESS], grid=there.name) in summary
    await resident.press(zh(views.SEND))
    await resident.next_message()
    ticket = await newest_ticket(h)
    assert ticket.grid_id == there.id and ticket.address == typed


async def test_a_location_outside_every_grid_goes_home_and_the_centre_is_told(
    h: Harness,
) -> None:
    resident = await h.persona("resident")
    centre = await h.persona("center")
    worker = await h.persona("worker")
    await report_up_to_the_place(resident, "出差路过看到路边有大坑")
    await resident.press_reply(zh(views.SEND_LOCATION), location=SHANGHAI)
    summary = await summary_after_the_place(resident)
    home = await grid(h, "3502110010010101")
    assert zh(views.PLACED_TEXT[PlacedBy.OUTSIDE], grid=home.name) in summary
    await resident.press(zh(views.SEND))
    await resident.next_message()

    ticket = await newest_ticket(h)
    assert ticket.grid_id == home.id
    assert shown_number(ticket) in (await worker.next_message()).text  # the home grid's worker
    told = await centre.next_message()
    assert told.text == zh(
        OUTSIDE_GRIDS_TEXT,
        number=shown_number(ticket),
        latitude="31.23040",
        longitude="121.47370",
        grid=home.name,
    )


async def boundaries_as_they_are(h: Harness) -> tuple[int, int | None]:
    async with h.session() as session:
        count = (await session.exec(select(func.count()).select_from(GridBoundary))).one()
        version = (
            await session.exec(
                select(Counter.value).where(Counter.name == boundaries.VERSION_COUNTER)
            )
        ).first()
    return count, version


def rectangle(west: float, south: float, east: float, north: float) -> dict[str, object]:
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


def demo_features() -> list[dict[str, object]]:
    return [
        {"type": "Feature", "properties": {"code": g.code}, "geometry": rectangle(*g.bounds)}
        for g in build_demo_community().grids
    ]


def geojson(features: list[dict[str, object]]) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": features}).encode()


# aiohttp warns that a 10 MB body given as bytes holds up the test's own event loop a moment
@pytest.mark.filterwarnings("ignore:Sending a large body directly with raw bytes:ResourceWarning")
async def test_hostile_boundary_files_are_refused_and_nothing_is_half_loaded(
    h: Harness,
) -> None:
    admin = await h.persona("admin")
    before = await boundaries_as_they_are(h)
    assert before[0] == 40

    async def answer_to(data: bytes, name: str) -> str:
        await admin.send_document(data, filename=name)
        assert zh("Checking the grid boundaries…") in (await admin.next_message()).text
        return (await admin.next_message()).text

    unknown = demo_features()
    unknown[5] = {**unknown[5], "properties": {"code": "350211001009"}}
    text = await answer_to(geojson(unknown), "网格边界.geojson")
    assert zh("Nothing was loaded: the file has {count} problems to fix.", count=1) in text
    assert (
        zh(
            "Feature {number}: {reason}",
            number=6,
            reason=zh(boundaries.UNKNOWN_GRID, code="350211001009"),
        )
        in text
    )

    crossing = demo_features()
    bow_tie = [[118.03, 24.573], [118.033, 24.577], [118.033, 24.573], [118.03, 24.577]]
    crossing[4] = {**crossing[4], "geometry": {"type": "Polygon", "coordinates": [bow_tie]}}
    code = str(crossing[4]["properties"]["code"])  # type: ignore[index]
    text = await answer_to(geojson(crossing), "boundaries.json")
    assert zh(boundaries.CROSSES_ITSELF, code=code, lat="24.575", lng="118.0315") in text

    text = await answer_to(b"\x00nonsense" * (10 * 1024 * 1024 // 9), "big.geojson")
    assert text == zh(boundaries.NOT_JSON, line=1, column=1)

    assert await boundaries_as_they_are(h) == before

    resident = await h.persona("resident")
    await resident.send_document(geojson(demo_features()), filename="map.geojson")
    await h.settle()
    assert zh(boundaries.NOT_AN_ADMIN) in (await resident.transcript()).texts[-1]
    assert await boundaries_as_they_are(h) == before

    text = await answer_to(geojson(demo_features()), "网格边界.geojson")
    assert (
        zh(
            "Grid boundaries loaded: {loaded} grids ({replaced} boundaries replaced).",
            loaded=40,
            replaced=40,
        )
        in text
    )
    count, version = await boundaries_as_they_are(h)
    assert count == 40 and version != before[1]
    async with h.session() as session:
        assert (await session.exec(select(Ticket))).all() == []
