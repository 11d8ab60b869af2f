"""Placing: the place of a report, not the reporter's home, chooses the grid it goes to.

In order:

1. a shared point inside the loaded grid boundaries (:mod:`bot.services.boundaries`): the
   deepest grid holding it. Where the boundaries stop short of the lowest grids (the grid
   found has grids below it), the reporter's own grid if it lies inside the one found (the
   nearer guess), else the grid found, and the street centre is told so that it sends the
   ticket down (下派) to the right grid;
2. "at my home": the grid of the reporter's household;
3. a typed address that names households of the reporter's street, all in one grid (see
   :mod:`bot.services.addresses` for what counts as the same address; an address without the
   name of a place, "5号楼2单元", names none): that grid;
4. otherwise the reporter's own grid — and when a point was shared but lies outside every
   grid's boundary, the street centre is told so that someone looks at where it belongs;
   likewise when that "own grid" is an area with grids below it (a partner's Open311 report
   with no place the map or the register knows lands on the street the key was issued for):
   the centre is told at once to send it down, rather than hearing of it at the first deadline.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services import boundaries
from bot.services.addresses import (
    match_key,
    matching,
    names_a_place,
    normalize_address,
)
from bot.services.tickets.concerned import grid_at_tier
from models import Grid, Household


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


async def _grid_of_address(session: AsyncSession, home: Grid, address: str) -> Grid | None:
    """The one grid whose households the typed address names, within the reporter's street;
    None when none does, or households of several grids do. The database compares the typed
    address's key with each household's stored one (:mod:`bot.services.addresses`), reading
    the (grid, key) index only, and hands back at most two grids."""
    typed = normalize_address(address)
    if not names_a_place(typed):
        return None  # "5号楼2单元" alone: building 5 of which compound? Near home, most likely
    street = await grid_at_tier(session, home, 0)
    grid_ids = (
        await session.exec(
            select(Household.grid_id)
            .where(
                col(Household.grid_id).in_(
                    select(Grid.id).where(col(Grid.path).startswith(street.path))
                ),
                matching(col(Household.address_key), match_key(typed)),
            )
            .distinct()
            .limit(2)
        )
    ).all()
    if len(grid_ids) != 1:
        return None
    return await session.get(Grid, grid_ids[0])
