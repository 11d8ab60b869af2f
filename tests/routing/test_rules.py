"""Routing rules: first match wins, a catch-all last; who hears of a ticket at once."""

from __future__ import annotations

from typing import Any

import pytest

from bot.routing.policy import ChainLink, Inform, load_default_policy
from bot.routing.rules import TicketFacts, chain_to_notify, next_link, route
from models.enums import HandlingKind, Role, TicketCategory
from tests.routing.support import policy_with

POLICY = load_default_policy()
WORKER_3 = ChainLink(3, Role.WORKER)
HEAD_2 = ChainLink(2, Role.HEAD)
HEAD_1 = ChainLink(1, Role.HEAD)
CENTRE = ChainLink(0, Role.CENTER)
CODE = "3502110010030207"
PATH = "/1/4/17/40/"


def facts(
    kind: HandlingKind = HandlingKind.GENERAL,
    category: TicketCategory = TicketCategory.SANITATION,
    code: str = CODE,
    path: str = PATH,
    tier: int = 3,
) -> TicketFacts:
    return TicketFacts(category, kind, code, path, tier)


def test_a_general_ticket_goes_to_the_reporters_grid_workers() -> None:
    decision = route(facts(), POLICY)
    assert decision.rule == "default"
    assert decision.owner == WORKER_3
    assert decision.inform == ()


def test_a_major_ticket_goes_to_the_centre_with_the_chain_informed() -> None:
    decision = route(facts(HandlingKind.MAJOR), POLICY)
    assert decision.rule == "major-to-centre"
    assert decision.owner == CENTRE
    assert decision.inform == (WORKER_3, HEAD_2, HEAD_1)


def test_an_urgent_ticket_is_reported_up_at_once() -> None:
    decision = route(facts(HandlingKind.URGENT), POLICY)
    assert decision.owner == WORKER_3
    assert decision.inform == (HEAD_2, HEAD_1, CENTRE)


def test_coordination_and_approval_start_at_the_community() -> None:
    for kind in (HandlingKind.COORDINATION, HandlingKind.APPROVAL):
        decision = route(facts(kind), POLICY)
        assert decision.owner == HEAD_1
        assert decision.inform == (WORKER_3, HEAD_2)  # the worker gives feedback on the spot


def test_a_ticket_on_a_shallow_grid_goes_to_that_grids_people() -> None:
    decision = route(facts(code="350211001003", path="/1/4/", tier=1), POLICY)
    assert decision.owner == ChainLink(1, Role.WORKER)
    assert next_link(POLICY, decision.owner) == HEAD_1
    major = route(facts(HandlingKind.MAJOR, code="350211001003", path="/1/4/", tier=1), POLICY)
    assert major.inform == (HEAD_1,)  # nobody below a community-level grid to tell


def special_rules(body: dict[str, Any]) -> None:
    body["routes"][:0] = [
        {
            "name": "fire-in-community-3",
            "categories": ["fire"],
            "grids": ["350211001003"],
            "to": {"tier": 1, "role": "head"},
            "inform": "below",
        },
        {
            "name": "wages-by-path",
            "categories": ["wages", "dispute"],
            "kinds": ["general"],
            "grids": ["/1/4/"],
            "to": {"tier": 2, "role": "head"},
        },
        {"name": "all-fire", "categories": ["fire"], "to": {"tier": 0, "role": "center"}},
    ]


SPECIAL = policy_with(special_rules)


@pytest.mark.parametrize(
    ("ticket", "rule", "owner"),
    [
        (facts(category=TicketCategory.FIRE), "fire-in-community-3", HEAD_1),
        (facts(category=TicketCategory.FIRE, code="3502110010040207"), "all-fire", CENTRE),
        (facts(category=TicketCategory.WAGES), "wages-by-path", HEAD_2),
        (facts(category=TicketCategory.WAGES, path="/1/45/17/40/"), "default", WORKER_3),
        (facts(HandlingKind.URGENT, TicketCategory.WAGES), "urgent-report-up-at-once", WORKER_3),
        (facts(HandlingKind.MAJOR, TicketCategory.FIRE), "fire-in-community-3", HEAD_1),
        (facts(category=TicketCategory.OTHER), "default", WORKER_3),
    ],
)
def test_the_first_matching_rule_wins(ticket: TicketFacts, rule: str, owner: ChainLink) -> None:
    decision = route(ticket, SPECIAL)
    assert (decision.rule, decision.owner) == (rule, owner)


def test_every_ticket_gets_an_owner() -> None:
    for kind in HandlingKind:
        for category in TicketCategory:
            decision = route(facts(kind, category), SPECIAL)
            assert decision.owner.rank is not None
            assert decision.rule in {rule.name for rule in SPECIAL.routes}


def test_the_chain_goes_up_one_link_at_a_time_and_stops_at_the_top() -> None:
    assert next_link(POLICY, WORKER_3) == HEAD_2
    assert next_link(POLICY, HEAD_2) == HEAD_1
    assert next_link(POLICY, HEAD_1) == CENTRE
    assert next_link(POLICY, CENTRE) is None
    assert next_link(POLICY, ChainLink(2, Role.WORKER)) == HEAD_2
    assert next_link(POLICY, ChainLink(5, Role.WORKER)) == WORKER_3
    assert next_link(POLICY, ChainLink(0, Role.DEPARTMENT)) is None


@pytest.mark.parametrize(
    ("inform", "expected"),
    [
        (Inform.NONE, ()),
        (Inform.BELOW, (WORKER_3,)),
        (Inform.ABOVE, (HEAD_1, CENTRE)),
        (Inform.ALL, (WORKER_3, HEAD_1, CENTRE)),
    ],
)
def test_chain_to_notify(inform: Inform, expected: tuple[ChainLink, ...]) -> None:
    assert chain_to_notify(POLICY, HEAD_2, inform) == expected


def test_a_department_informs_nobody_through_the_chain() -> None:
    assert chain_to_notify(POLICY, ChainLink(0, Role.DEPARTMENT), Inform.ALL) == ()
