"""How long a publicly noticed outcome (公示) stays on the board: ``notice_period``."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from bot.routing.policy import (
    DEFAULT_NOTICE_PERIOD,
    Duration,
    InvalidPolicy,
    Unit,
    load_default_policy,
    parse_policy,
    policy_to_json,
)
from models.enums import HandlingKind
from tests.routing.support import default_json, policy_with


def test_approval_outcomes_are_noticed_for_five_working_days_by_default() -> None:
    approval = load_default_policy().kinds[HandlingKind.APPROVAL]
    assert approval.public_notice and approval.notice_period == Duration(5, Unit.WORKING_DAYS)
    assert approval.notice_period == DEFAULT_NOTICE_PERIOD


def test_a_policy_without_the_setting_takes_the_default() -> None:
    def drop(body: dict[str, Any]) -> None:
        del body["kinds"]["approval"]["notice_period"]

    assert policy_with(drop).kinds[HandlingKind.APPROVAL].notice_period == DEFAULT_NOTICE_PERIOD


def test_an_admin_sets_another_period_and_it_round_trips() -> None:
    def longer(body: dict[str, Any]) -> None:
        body["kinds"]["approval"]["notice_period"] = "7 working_days"
        body["kinds"]["major"]["notice_period"] = "3 days"  # kept, though unused for now

    policy = policy_with(longer)
    assert policy.kinds[HandlingKind.APPROVAL].notice_period == Duration(7, Unit.WORKING_DAYS)
    assert parse_policy(policy_to_json(policy)) == policy
    body = policy_to_json(load_default_policy())
    assert "notice_period" not in body["kinds"]["general"]  # only where it means something
    assert body["kinds"]["approval"]["notice_period"] == "5 working_days"


@pytest.mark.parametrize("value", ["five days", 5, None, "0 days", "3 fortnights", ""])
def test_a_bad_period_is_refused_naming_the_setting(value: Any) -> None:
    body = copy.deepcopy(default_json())
    body["kinds"]["approval"]["notice_period"] = value
    with pytest.raises(InvalidPolicy) as refused:
        parse_policy(body)
    assert refused.value.params["path"] == "kinds.approval.notice_period"
    refused.value.message.format(**refused.value.params)
