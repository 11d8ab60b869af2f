"""Pure: routing rules that name a department, the department's clock, and a 延期's date."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.errors import InvalidInput
from bot.routing import departments as clock_steps
from bot.routing.escalation import start_clock
from bot.routing.policy import (
    ChainLink,
    InvalidPolicy,
    load_default_policy,
    parse_policy,
    policy_to_json,
)
from bot.routing.rules import TicketFacts, route
from bot.routing.working_time import WorkCalendar
from models import HandlingKind, Role, TicketCategory, TicketState

NOW = datetime(2026, 3, 12, 1, 0, tzinfo=UTC)  # Thursday 09:00 in Shanghai


def with_rule(rule: dict[str, Any], **top: Any) -> dict[str, Any]:
    body = copy.deepcopy(policy_to_json(load_default_policy()))
    body["routes"].insert(0, rule)
    body.update(top)
    return body


def test_a_rule_sends_a_category_to_a_department_with_assisting_ones() -> None:
    policy = parse_policy(
        with_rule(
            {"name": "fire", "categories": ["fire"], "department": "xfz", "assist": ["police"]}
        )
    )
    assert parse_policy(policy_to_json(policy)) == policy
    facts = TicketFacts(TicketCategory.FIRE, HandlingKind.GENERAL, "3502", "/1/2/3/4/", 3)
    decision = route(facts, policy)
    assert (decision.department, decision.assist) == ("xfz", ("police",))
    assert decision.owner == policy.top  # the centre watches over it
    other = TicketFacts(TicketCategory.SANITATION, HandlingKind.GENERAL, "3502", "/1/2/3/4/", 3)
    assert route(other, policy).department is None


@pytest.mark.parametrize(
    "rule",
    [
        {"name": "x", "categories": ["fire"], "department": "BAD CODE"},
        {"name": "x", "categories": ["fire"], "department": "a" * 33},
        {"name": "x", "categories": ["fire"], "department": 7},
        {"name": "x", "categories": ["fire"]},  # neither to nor department
        {
            "name": "x",
            "categories": ["fire"],
            "to": {"tier": 0, "role": "center"},
            "assist": ["p"],
        },
        {"name": "x", "categories": ["fire"], "department": "xfz", "assist": ["xfz"]},
        {"name": "x", "categories": ["fire"], "department": "xfz", "assist": ["a", "a"]},
        {"name": "x", "categories": ["fire"], "department": "xfz", "assist": list("abcdef")},
        {"name": "x", "categories": ["fire"], "department": "xfz", "assist": "police"},
    ],
)
def test_bad_department_rules_are_refused(rule: dict[str, Any]) -> None:
    with pytest.raises(InvalidPolicy):
        parse_policy(with_rule(rule))


def test_bad_department_terms_are_refused() -> None:
    for terms in ({"assist": "soon"}, {"typo": "3 days"}, {"resolve": 5}, []):
        with pytest.raises(InvalidPolicy):
            parse_policy(
                with_rule(
                    {"name": "d", "department": "d", "categories": ["fire"]}, departments=terms
                )
            )


def test_the_department_clock_and_an_extension() -> None:
    policy = load_default_policy()
    calendar = WorkCalendar.for_policy(policy, {})
    clock = start_clock(ChainLink(3, Role.WORKER), HandlingKind.GENERAL, policy, calendar, NOW)
    at_department = clock_steps.to_department(clock, policy, calendar, NOW)
    assert at_department.state == TicketState.TRANSFERRED and at_department.role == Role.DEPARTMENT
    assert at_department.resolve_deadline == calendar.add(NOW, policy.departments.resolve)
    wanted = clock_steps.parse_wanted_date("2026-03-26", calendar, NOW)
    assert wanted.astimezone(policy.tz).strftime("%m-%d %H:%M") == "03-26 17:30"
    longer = clock_steps.extend(at_department, policy, calendar, NOW, wanted)
    assert longer.resolve_deadline == wanted and longer.cap_deadline is not None
    assert longer.cap_deadline >= wanted
    with pytest.raises(InvalidInput):  # not later than it is now
        clock_steps.extend(longer, policy, calendar, NOW, wanted)
    with pytest.raises(InvalidInput):  # too far
        clock_steps.extend(at_department, policy, calendar, NOW, wanted + timedelta(days=60))


@pytest.mark.parametrize(
    "text", ["", "明天", "2026-02-30", "13-01", "2025-01-01", "2030-01-01", "9" * 50, "03/1x"]
)
def test_bad_dates_are_refused(text: str) -> None:
    policy = load_default_policy()
    with pytest.raises(InvalidInput):
        clock_steps.parse_wanted_date(text, WorkCalendar.for_policy(policy, {}), NOW)


def test_dates_people_write() -> None:
    policy = load_default_policy()
    calendar = WorkCalendar.for_policy(policy, {})
    for text in ("2026-03-20", "2026年3月20日", "3月20日", "03-20", "２０２６－０３－２０"):
        assert (
            f"{clock_steps.parse_wanted_date(text, calendar, NOW).astimezone(policy.tz):%m-%d}"
            == "03-20"
        )
    # a month-day already past this year is next year's
    assert clock_steps.parse_wanted_date("01-05", calendar, NOW).year == 2027
