"""Placing: the place of a report, not the reporter's home, chooses the grid it goes to.

In order:

1. a shared point inside the loaded grid boundaries (:mod:`bot.services.boundaries`): the
   deepest grid holding it. Where the boundaries stop short of the lowest grids (the grid
   found has grids below it), the reporter's own grid if it lies inside the one found (the
   nearer guess), else the grid found, and the street centre is told so that it sends the
   ticket down (下派) to the right grid;
2. "at my home": the grid of the reporter's household;
3. a typed address that names households of the reporter's street, all in one grid (see
   :func:`normalize_address` and :func:`names_same_place` for what counts as the same
   address; an address without the name of a place, "5号楼2单元", names none): that grid;
4. otherwise the reporter's own grid — and when a point was shared but lies outside every
   grid's boundary, the street centre is told so that someone looks at where it belongs;
   likewise when that "own grid" is an area with grids below it (a partner's Open311 report
   with no place the map or the register knows lands on the street the key was issued for):
   the centre is told at once to send it down, rather than hearing of it at the first deadline.
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import Row
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services import boundaries
from bot.services.tickets.concerned import grid_at_tier
from models import Grid, Household

MAX_HOUSEHOLDS = 50_000  # addresses of one street compared with a typed one
ADDRESS_BATCH = 5_000  # addresses read and compared at a time
MIN_TYPED = 3  # characters of a normalised typed address worth comparing


class PlacedBy(StrEnum):
    POINT = "point"  # the shared point lies in the grid
    HOME = "home"  # "at my home": the household's grid
    ADDRESS = "address"  # the typed address is one of the grid's households'
    AREA = "area"  # the point lies in a grid whose lower grids are not mapped: centre told
    REPORTER = "reporter"  # nothing else placed it: the reporter's own grid
    OUTSIDE = "outside"  # a point outside every grid: the reporter's grid, the centre told
    UNPLACED = "unplaced"  # nothing placed it and the reporter's grid is an area: centre told


@dataclass(frozen=True)
class Placement:
    grid: Grid
    by: PlacedBy

    @property
    def centre_told(self) -> bool:
        """The map could not place it well: the street centre looks at where it belongs."""
        return self.by in (PlacedBy.OUTSIDE, PlacedBy.AREA, PlacedBy.UNPLACED)


async def place_report(
    session: AsyncSession,
    *,
    home: Grid,
    latitude: float | None = None,
    longitude: float | None = None,
    address: str | None = None,
    household_id: int | None = None,
) -> Placement:
    """The grid a report at this place goes to; ``home`` is the reporter's grid."""
    outside = False
    if latitude is not None and longitude is not None:
        located = await boundaries.locate(session, latitude, longitude)
        if located.grid_ids:
            grid = await session.get(Grid, located.grid_ids[0])
            if grid is not None and await _has_children(session, grid):
                # the map stops above the lowest grids here: the reporter's own grid if it
                # lies in this area, else the area's grid, with the centre told to pass it on
                if home.path.startswith(grid.path):
                    return Placement(home, PlacedBy.POINT)
                return Placement(grid, PlacedBy.AREA)
            if grid is not None:
                return Placement(grid, PlacedBy.POINT)
        outside = located.mapped
    if household_id is not None:
        household = await session.get(Household, household_id)
        if household is not None:
            grid = await session.get(Grid, household.grid_id)
            if grid is not None:
                return Placement(grid, PlacedBy.HOME)
    if address:
        grid = await _grid_of_address(session, home, address)
        if grid is not None:
            return Placement(grid, PlacedBy.ADDRESS)
    if outside:
        return Placement(home, PlacedBy.OUTSIDE)
    if await _has_children(session, home):
        return Placement(home, PlacedBy.UNPLACED)
    return Placement(home, PlacedBy.REPORTER)


async def _has_children(session: AsyncSession, grid: Grid) -> bool:
    child = (await session.exec(select(Grid.id).where(Grid.parent_id == grid.id).limit(1))).first()
    return child is not None


# --- addresses ----------------------------------------------------------------------------------

# "3号楼", "3#楼", "3#", "3幢", "3栋", "3座" all name building 3
_BUILDING = re.compile(r"([0-9]+)(?:号楼|#楼|#|幢|栋|座)")
_ROOM = re.compile(r"([0-9]+)(?:室|号房)")
_UNITS = re.compile(r"[0-9]|栋|单元|号|室|楼|层")  # what is left is the name of a place
_NOISE = re.compile(r"[\s\-_,.;:/\\()\[\]{}'\"`~!?、，。；：（）【】《》“”‘’·—…]+")


def normalize_address(text: str) -> str:
    """An address reduced to what tells it apart: full-width folded, spaces and punctuation
    gone, and the usual ways of writing a building (3号楼 / 3幢 / 3#楼 / 3座 → 3栋) and a flat
    (501室 → 501) made one. Chinese numerals are left as they are (三号楼 is not 3栋)."""
    folded = unicodedata.normalize("NFKC", text).lower()
    folded = _BUILDING.sub(r"\1栋", folded)
    folded = _ROOM.sub(r"\1", folded)
    return _NOISE.sub("", folded)


def names_same_place(typed: str, registered: str) -> bool:
    """Whether a typed address (normalised) names the registered one (normalised): one holds
    the other, and a number is never cut in two (3栋 is not 13栋, 10 is not 101)."""
    short, long = (typed, registered) if len(typed) <= len(registered) else (registered, typed)
    if len(short) < MIN_TYPED:
        return False
    start = long.find(short)
    while start != -1:
        end = start + len(short)
        before_ok = start == 0 or not (short[0].isdigit() and long[start - 1].isdigit())
        after_ok = end == len(long) or not (short[-1].isdigit() and long[end].isdigit())
        if before_ok and after_ok:
            return True
        start = long.find(short, start + 1)
    return False


async def _grid_of_address(session: AsyncSession, home: Grid, address: str) -> Grid | None:
    """The one grid whose households the typed address names, within the reporter's street;
    None when none does, or households of several grids do."""
    typed = normalize_address(address)
    if len(_UNITS.sub("", typed)) < 2:
        return None  # "5号楼2单元" alone: building 5 of which compound? Near home, most likely
    street = await grid_at_tier(session, home, 0)
    connection = await session.connection()  # plain rows: no ORM loading of 50,000 of them
    addresses = await connection.stream(
        select(Household.grid_id, Household.address)
        .join(Grid, col(Grid.id) == Household.grid_id)
        .where(col(Grid.path).startswith(street.path))
        .limit(MAX_HOUSEHOLDS)
        .execution_options(yield_per=ADDRESS_BATCH)
    )
    grid_ids: set[int] = set()
    async for batch in addresses.partitions():  # compared in a thread: the loop stays free
        grid_ids |= await asyncio.to_thread(_grids_named, typed, batch)
    if len(grid_ids) != 1:
        return None
    return await session.get(Grid, grid_ids.pop())


def _grids_named(typed: str, households: Iterable[Row[int, str]]) -> set[int]:
    """The grids of the households whose registered address ``typed`` (normalised) names."""
    return {
        grid_id
        for grid_id, registered in households
        if names_same_place(typed, normalize_address(registered))
    }
