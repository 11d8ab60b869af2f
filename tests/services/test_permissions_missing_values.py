"""No permission ever rests on a missing value (a department, a grid, a reporter).

A department role stored without its department once matched every ticket with no
department (``None == None``); an empty grid path matched every grid (``"".startswith``).
These properties run every action against roles and targets whose deciding values are
missing, and none may be permitted.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot.services.people import RoleInGrid
from bot.services.permissions import Action, Target, permits, scope_paths
from models import Role

KINDS = ("grid", "household", "ticket", "meeting", "visit")
GRID_PATHS = st.sampled_from(["/1/", "/1/4/", "/1/4/17/", "/2/9/"])
MISSING_PATHS = st.sampled_from(["", "/", "//", "/unknown/", " ", "/1/x/"])
IDS = st.integers(min_value=1, max_value=5)


@st.composite
def held_roles(
    draw: st.DrawFn, paths: st.SearchStrategy[str], departments: st.SearchStrategy[int | None]
) -> RoleInGrid:
    path = draw(paths)
    return RoleInGrid(
        role=draw(st.sampled_from(Role)),
        grid_id=draw(IDS),
        grid_name="g",
        grid_code="c",
        grid_tier=1,
        grid_path=path,
        department_id=draw(departments),
    )


@st.composite
def targets(
    draw: st.DrawFn,
    paths: st.SearchStrategy[str],
    departments: st.SearchStrategy[int | None],
    reporters: st.SearchStrategy[int | None],
) -> Target:
    return Target(
        kind=draw(st.sampled_from(KINDS)),
        id=draw(st.none() | IDS),
        grid_path=draw(paths),
        reporter_id=draw(reporters),
        department_id=draw(departments),
    )


@given(
    roles=st.lists(held_roles(MISSING_PATHS, st.none()), max_size=4),
    action=st.sampled_from(Action),
    target=targets(GRID_PATHS | MISSING_PATHS, st.none() | IDS, st.none() | IDS),
)
def test_roles_with_no_grid_and_no_department_permit_nothing(
    roles: list[RoleInGrid], action: Action, target: Target
) -> None:
    assert not permits(roles, action, target, person_id=None)
    assert scope_paths(roles, action) == []


@given(
    roles=st.lists(held_roles(GRID_PATHS | MISSING_PATHS, st.none() | IDS), max_size=4),
    action=st.sampled_from(Action),
    target=targets(MISSING_PATHS, st.none(), st.none()),
    person_id=st.none() | IDS,
)
def test_a_target_with_no_grid_no_department_and_no_reporter_is_out_of_every_scope(
    roles: list[RoleInGrid], action: Action, target: Target, person_id: int | None
) -> None:
    assert not permits(roles, action, target, person_id=person_id)


@given(
    roles=st.lists(
        held_roles(GRID_PATHS, st.none()).map(
            lambda held: RoleInGrid(**{**held.__dict__, "role": Role.DEPARTMENT})
        ),
        min_size=1,
        max_size=4,
    ),
    action=st.sampled_from(Action),
    target=targets(GRID_PATHS, st.none(), st.none()),
)
def test_a_department_role_without_a_department_acts_on_no_ticket(
    roles: list[RoleInGrid], action: Action, target: Target
) -> None:
    """Its grid still lets it see the grid tree (VIEW of a grid), and nothing else."""
    allowed = permits(roles, action, target, person_id=None)
    if target.kind != "grid" or action != Action.VIEW:
        assert not allowed


def test_the_forged_card_of_the_issue_is_refused() -> None:
    """``/people set <phone> department 350211001`` stored this role; a ``tk:o`` for an
    untransferred ticket street-wide was then shown."""
    nameless = RoleInGrid(
        role=Role.DEPARTMENT,
        grid_id=1,
        grid_name="街道",
        grid_code="350211001",
        grid_tier=1,
        grid_path="/1/",
        department_id=None,
    )
    untransferred = Target("ticket", 7, "/1/4/17/", reporter_id=3, department_id=None)
    assert not permits([nameless], Action.VIEW, untransferred, person_id=9)
    assert not permits([nameless], Action.HANDLE, untransferred, person_id=9)


def test_a_reporter_sees_their_ticket_and_a_missing_reporter_matches_nobody() -> None:
    mine = Target("ticket", 7, "/1/4/17/", reporter_id=3)
    assert permits([], Action.VIEW, mine, person_id=3)
    orphan = Target("ticket", 7, "/1/4/17/", reporter_id=None)
    assert not permits([], Action.VIEW, orphan, person_id=None)
