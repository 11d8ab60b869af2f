"""The policy file: shipped defaults, the parser, hostile admin input, the /sla summary."""

from __future__ import annotations

import copy
import json
import string
from collections.abc import Callable
from datetime import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.errors import InvalidInput
from bot.routing import wording
from bot.routing.policy import (
    ChainLink,
    Duration,
    Inform,
    InvalidPolicy,
    Policy,
    Unit,
    load_default_policy,
    parse_duration,
    parse_policy,
    policy_to_json,
)
from bot.routing.summary import summarize
from models.enums import HandlingKind, Role, TicketCategory
from tests.routing.support import default_json, policy_with

WORKER_3 = ChainLink(3, Role.WORKER)
HEAD_2 = ChainLink(2, Role.HEAD)
HEAD_1 = ChainLink(1, Role.HEAD)
CENTRE = ChainLink(0, Role.CENTER)


def refused(raw: Any) -> InvalidPolicy:
    with pytest.raises(InvalidPolicy) as caught:
        parse_policy(raw)
    error = caught.value
    error.message.format(**error.params)  # every slot of the message is filled
    return error


def broken(change: Any) -> InvalidPolicy:
    body = copy.deepcopy(default_json())
    change(body)
    return refused(body)


# --- the shipped defaults -------------------------------------------------------------------


def test_the_defaults_follow_the_domain() -> None:
    policy = load_default_policy()
    assert policy.timezone == "Asia/Shanghai"
    assert policy.business_hours == ((time(8, 30), time(12)), (time(14), time(17, 30)))
    assert policy.chain == (WORKER_3, HEAD_2, HEAD_1, CENTRE)
    assert policy.top == CENTRE
    assert policy.warn_fraction == 0.8
    general = policy.kinds[HandlingKind.GENERAL]
    assert general.windows(3).accept == Duration(0, Unit.WORKING_DAYS)  # the same working day
    assert [general.windows(t).resolve.amount for t in (3, 2, 1)] == [3, 3, 5]
    assert general.cap == Duration(15, Unit.WORKING_DAYS)
    urgent = policy.kinds[HandlingKind.URGENT]
    assert urgent.round_the_clock
    assert urgent.windows(3).accept == Duration(10, Unit.MINUTES)
    assert urgent.windows(3).resolve == Duration(2, Unit.HOURS)
    approval = policy.kinds[HandlingKind.APPROVAL]
    assert approval.public_notice
    assert approval.cap == Duration(15, Unit.WORKING_DAYS)
    assert policy.routes[-1].matches_everything


def test_the_policy_round_trips_through_json() -> None:
    policy = load_default_policy()
    body = policy_to_json(policy)
    assert parse_policy(body) == policy
    assert parse_policy(json.dumps(body)) == policy
    assert parse_policy(json.dumps(body).encode()) == policy
    assert json.loads(json.dumps(body)) == body


def test_a_tier_the_policy_does_not_name_takes_the_nearest() -> None:
    general = load_default_policy().kinds[HandlingKind.GENERAL]
    assert general.windows(5) == general.windows(3)


def test_the_summary_shows_each_kind_from_where_it_starts() -> None:
    summary = summarize(load_default_policy())
    assert summary.warn_percent == 80
    by_kind = {item.kind: item for item in summary.kinds}
    general = by_kind[HandlingKind.GENERAL]
    assert general.rule == "default"
    assert [limits.link for limits in general.limits] == [WORKER_3, HEAD_2, HEAD_1, CENTRE]
    major = by_kind[HandlingKind.MAJOR]
    assert major.starts_at == CENTRE
    assert [limits.link for limits in major.limits] == [CENTRE]
    assert major.inform == (WORKER_3, HEAD_2, HEAD_1)
    coordination = by_kind[HandlingKind.COORDINATION]
    assert [limits.link for limits in coordination.limits] == [HEAD_1, CENTRE]
    assert by_kind[HandlingKind.URGENT].inform == (HEAD_2, HEAD_1, CENTRE)
    assert by_kind[HandlingKind.APPROVAL].public_notice
    assert summary.exceptions == ()


def test_rules_on_categories_or_grids_are_listed_as_exceptions() -> None:
    def add_rule(body: dict[str, Any]) -> None:
        body["routes"].insert(
            0, {"name": "fire", "categories": ["fire"], "to": {"tier": 0, "role": "center"}}
        )

    summary = summarize(policy_with(add_rule))
    assert [rule.name for rule in summary.exceptions] == ["fire"]


def test_labels_name_every_duration() -> None:
    assert wording.duration_msgid(Duration(0, Unit.WORKING_DAYS)) == wording.SAME_WORKING_DAY
    assert wording.duration_msgid(Duration(1, Unit.WORKING_DAYS)) == "{n} working day"
    assert wording.duration_msgid(Duration(3, Unit.WORKING_DAYS)) == "{n} working days"
    assert set(wording.UNIT) == set(Unit)
    assert set(wording.INFORM) == set(Inform)


# --- durations ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3 working_days", Duration(3, Unit.WORKING_DAYS)),
        ("1 working_day", Duration(1, Unit.WORKING_DAYS)),
        ("0 working_days", Duration(0, Unit.WORKING_DAYS)),
        ("  2   working hours ", Duration(2, Unit.WORKING_HOURS)),
        ("10 minutes", Duration(10, Unit.MINUTES)),
        ("10minutes", Duration(10, Unit.MINUTES)),
        ("30 seconds", Duration(30, Unit.SECONDS)),
        ("2 Hours", Duration(2, Unit.HOURS)),
        ("１５ working_days", Duration(15, Unit.WORKING_DAYS)),  # full-width digits
    ],
)
def test_durations_are_read(text: str, expected: Duration) -> None:
    assert parse_duration(text) == expected
    assert parse_duration(str(expected)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "3",
        "working_days",
        "3 wokring_days",
        "-3 days",
        "1.5 hours",
        "3 working_days extra",
        "٣ days",  # an Arabic-Indic digit
        "3 days" + " " * 100,
        "🕐 hours",
        "x" * 10_000,
    ],
)
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(InvalidPolicy):
        parse_duration(text)


@pytest.mark.parametrize("text", ["0 hours", "0 seconds", "367 days", "251 working_days"])
def test_durations_out_of_range_are_refused(text: str) -> None:
    with pytest.raises(InvalidPolicy) as caught:
        parse_duration(text, "kinds.general.cap")
    assert caught.value.params["path"] == "kinds.general.cap"


def test_a_duration_is_text() -> None:
    with pytest.raises(InvalidPolicy):
        parse_duration(3)
    with pytest.raises(ValueError):
        Duration(0, Unit.HOURS)


@given(st.text(max_size=200))
def test_any_text_is_a_duration_or_a_clear_refusal(text: str) -> None:
    try:
        duration = parse_duration(text)
    except InvalidPolicy as error:
        error.message.format(**error.params)
    else:
        assert parse_duration(str(duration)) == duration


# --- refusals, setting by setting -----------------------------------------------------------


def test_invalid_json_says_where() -> None:
    error = refused('{"timezone": "Asia/Shanghai",\n "chain": [}')
    assert error.params == {"line": 2, "column": 12}


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "null",
        "[]",
        "42",
        '"policy"',
        "[" * 100_000,
        "1" * 5_000,
        b"\xff\xfe",
        "🙂" * 10_000,
        " " * (10**5 + 1),
    ],
)
def test_hostile_documents_are_refused(raw: Any) -> None:
    refused(raw)


def test_a_typo_in_a_setting_name_is_named() -> None:
    error = broken(lambda body: body.update(bussiness_hours=[]))
    assert error.message == "The setting {path} is not known. Check its spelling."
    assert error.params["path"] == "policy.bussiness_hours"


def test_a_missing_kind_is_named() -> None:
    error = broken(lambda body: body["kinds"].pop("approval"))
    assert error.params["path"] == "kinds.approval"


def test_a_bad_duration_is_named_with_its_path() -> None:
    def typo(body: dict[str, Any]) -> None:
        body["kinds"]["general"]["tiers"]["3"]["accept"] = "2 wokring_hours"

    error = broken(typo)
    assert error.params["path"] == "kinds.general.tiers.3.accept"
    assert error.params["value"] == "2 wokring_hours"


def test_round_the_clock_kinds_use_wall_time() -> None:
    def working_urgent(body: dict[str, Any]) -> None:
        body["kinds"]["urgent"]["tiers"]["2"]["resolve"] = "2 working_hours"

    error = broken(working_urgent)
    assert error.params["path"] == "kinds.urgent"


@pytest.mark.parametrize(
    "spans",
    [
        ["08:30-12:00", "11:00-17:30"],  # overlap
        ["14:00-17:30", "08:30-12:00"],  # out of order
        ["12:00-08:30"],  # ends before it starts
        ["08:30-08:45"],  # a quarter of an hour a day
        ["8:30-12:00"],
        ["08:30-24:00"],
        ["08:60-12:00"],
        ["０８:３０-１２:００"],
        [],
        "08:30-17:30",
        [830],
    ],
)
def test_bad_business_hours_are_refused(spans: Any) -> None:
    broken(lambda body: body.update(business_hours=spans))


@pytest.mark.parametrize(
    "zone", ["Mars/Olympus", "", "../../etc/passwd", "Asia/Shanghai ", "x" * 300, 8, "UTC\x00"]
)
def test_unknown_time_zones_are_refused(zone: Any) -> None:
    broken(lambda body: body.update(timezone=zone))


def test_other_zones_are_accepted() -> None:
    assert policy_with(lambda body: body.update(timezone="Asia/Hong_Kong")).timezone == (
        "Asia/Hong_Kong"
    )


@pytest.mark.parametrize("fraction", [0, 1, 1.5, -0.2, True, "0.8", float("nan"), float("inf")])
def test_bad_warning_fractions_are_refused(fraction: Any) -> None:
    broken(lambda body: body.update(warn_fraction=fraction))


def test_warnings_can_be_turned_off() -> None:
    assert policy_with(lambda body: body.update(warn_fraction=None)).warn_fraction is None


def test_rule_names_are_unique() -> None:
    def twice(body: dict[str, Any]) -> None:
        body["routes"][0]["name"] = "default"

    error = broken(twice)
    assert error.params["value"] == "default"


@pytest.mark.parametrize("name", ["", " padded ", "a" * 65, "line\nbreak", 7])
def test_rule_names_fit_the_ticket_column(name: Any) -> None:
    broken(lambda body: body["routes"][0].update(name=name))


def test_rule_names_may_be_chinese() -> None:
    policy = policy_with(lambda body: body["routes"][0].update(name="重大事项直报街道中心"))
    assert policy.routes[0].name == "重大事项直报街道中心"


def test_the_last_rule_must_catch_everything() -> None:
    error = broken(lambda body: body["routes"].pop())
    assert "last routing rule" in error.message


def test_rules_send_tickets_to_links_of_the_chain() -> None:
    def to_nowhere(body: dict[str, Any]) -> None:
        body["routes"][0]["to"] = {"tier": 2, "role": "worker"}

    assert broken(to_nowhere).params["path"] == "routes.0.to"


@pytest.mark.parametrize(
    "scope", ["/1/4", "1/4/", "/a/", "35021100１", "", "/", "3" * 33, "/1//4/"]
)
def test_bad_grid_scopes_are_refused(scope: str) -> None:
    broken(lambda body: body["routes"][0].update(grids=[scope]))


def test_unknown_categories_kinds_and_roles_are_refused() -> None:
    broken(lambda body: body["routes"][0].update(categories=["noise"]))
    broken(lambda body: body["routes"][0].update(kinds=["MAJOR"]))
    broken(lambda body: body["routes"][0].update(inform="everyone"))
    broken(lambda body: body["chain"][0].update(role="resident"))


@pytest.mark.parametrize(
    "chain",
    [
        [],
        [{"tier": 0, "role": "center"}, {"tier": 3, "role": "worker"}],  # downwards
        [{"tier": 3, "role": "worker"}, {"tier": 3, "role": "worker"}],  # repeated
        [{"tier": 3, "role": "head"}, {"tier": 3, "role": "worker"}],  # head below worker
        [{"tier": 7, "role": "worker"}],
        [{"tier": True, "role": "worker"}],
        [{"tier": 3.0, "role": "worker"}],
        [{"tier": 3}],
    ],
)
def test_the_chain_must_go_upwards(chain: Any) -> None:
    broken(lambda body: body.update(chain=chain))


def test_a_deeper_chain_is_accepted_when_every_kind_covers_it() -> None:
    def deeper(body: dict[str, Any]) -> None:
        body["chain"].insert(0, {"tier": 4, "role": "worker"})
        for kind in body["kinds"].values():
            kind["tiers"]["4"] = kind["tiers"]["3"]

    assert policy_with(deeper).chain[0] == ChainLink(4, Role.WORKER)


def test_every_kind_covers_every_tier_of_the_chain() -> None:
    error = broken(lambda body: body["kinds"]["major"]["tiers"].pop("2"))
    assert error.params == {"path": "kinds.major.tiers", "tier": 2}


def test_only_format_1_is_read() -> None:
    broken(lambda body: body.update(format=2))
    broken(lambda body: body.update(format="1"))
    assert policy_with(lambda body: body.pop("format")) == load_default_policy()


def test_the_error_is_an_invalid_input() -> None:
    assert isinstance(refused("[]"), InvalidInput)


# --- hostile input, generated ---------------------------------------------------------------

HOSTILE_TEXT = st.one_of(
    st.text(max_size=50),
    st.sampled_from(["", " ", "\u3000", "🙂", "\x00", "１２", "x" * 10_000, "NaN"]),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    HOSTILE_TEXT,
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(
            st.one_of(HOSTILE_TEXT, st.sampled_from(sorted(default_json()))), children, max_size=5
        ),
    ),
    max_leaves=20,
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths(child, (*prefix, index))
    return found


DEFAULT_PATHS = paths(default_json())[1:]


def parse_or_refuse(raw: Any) -> Policy | None:
    try:
        return parse_policy(raw)
    except InvalidPolicy as error:
        error.message.format(**error.params)
        return None


@given(JSON_VALUES)
def test_any_json_value_is_a_policy_or_a_clear_refusal(raw: Any) -> None:
    parse_or_refuse(raw)


@given(st.one_of(st.text(max_size=300), st.binary(max_size=300)))
def test_any_text_is_a_policy_or_a_clear_refusal(raw: str | bytes) -> None:
    parse_or_refuse(raw)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(DEFAULT_PATHS), JSON_VALUES)
def test_the_defaults_with_one_setting_broken_are_a_policy_or_a_clear_refusal(
    path: tuple[Any, ...], value: Any
) -> None:
    body = copy.deepcopy(default_json())
    parent = body
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    policy = parse_or_refuse(body)
    if policy is not None:
        assert parse_policy(policy_to_json(policy)) == policy


@given(st.sampled_from(DEFAULT_PATHS))
def test_the_defaults_with_one_setting_removed_are_a_policy_or_a_clear_refusal(
    path: tuple[Any, ...],
) -> None:
    body = copy.deepcopy(default_json())
    parent = body
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    parse_or_refuse(body)


@given(st.text(alphabet=string.printable + "网格　🙂", min_size=1, max_size=10_000))
def test_long_hostile_rule_names_are_refused_or_kept_whole(name: str) -> None:
    body = copy.deepcopy(default_json())
    body["routes"][0]["name"] = name
    policy = parse_or_refuse(body)
    if policy is not None:
        assert policy.routes[0].name == name
        assert len(name) <= 64


# --- emergency numbers (110 / 119 / 120) ---------------------------------------------------


def first_numbers(policy: Policy, category: TicketCategory) -> list[str]:
    return [call.number for call in policy.emergency.advice(category).first]


def test_a_person_in_danger_is_told_the_number_for_the_kind_of_problem_first() -> None:
    policy = load_default_policy()
    assert first_numbers(policy, TicketCategory.FIRE) == ["119", "120"]
    assert first_numbers(policy, TicketCategory.SAFETY)[0] == "119"  # a gas leak: the brigade
    assert first_numbers(policy, TicketCategory.DISPUTE) == ["110", "120"]
    assert first_numbers(policy, TicketCategory.OUTSIDERS) == ["110"]
    assert first_numbers(policy, TicketCategory.LIVELIHOOD)[0] == "120"
    assert first_numbers(policy, TicketCategory.SANITATION) == ["110", "119", "120"]
    for category in TicketCategory:  # every number is always shown, first or after
        advice = policy.emergency.advice(category)
        numbers = [call.number for call in advice.first + advice.others]
        assert sorted(numbers) == ["110", "119", "120"]


def test_a_policy_without_emergency_numbers_takes_the_shipped_ones() -> None:
    older = policy_with(lambda body: body.pop("emergency"))
    assert older.emergency == load_default_policy().emergency


def test_an_admin_may_change_the_numbers_and_the_order() -> None:
    def local(body: dict[str, Any]) -> None:
        body["emergency"]["numbers"]["fire"] = "0592-5556119"
        body["emergency"]["categories"] = {"property": ["fire", "police"]}

    policy = policy_with(local)
    assert first_numbers(policy, TicketCategory.PROPERTY) == ["0592-5556119", "110"]
    assert first_numbers(policy, TicketCategory.FIRE) == ["110", "0592-5556119", "120"]
    assert parse_policy(policy_to_json(policy)) == policy


@pytest.mark.parametrize(
    "change,path",
    [
        (lambda e: e.update(numbers=[]), "emergency.numbers"),
        (lambda e: e["numbers"].pop("fire"), "emergency.numbers.fire"),
        (lambda e: e["numbers"].update(gas="95598"), "emergency.numbers.gas"),
        (lambda e: e["numbers"].update(fire=119), "emergency.numbers.fire"),
        (lambda e: e["numbers"].update(fire="fire!"), "emergency.numbers.fire"),
        (lambda e: e["numbers"].update(fire="1" * 21), "emergency.numbers.fire"),
        (lambda e: e["numbers"].update(fire="1\u202e9"), "emergency.numbers.fire"),
        (lambda e: e.update(default=[]), "emergency.default"),
        (lambda e: e.update(default=["fire", "fire"]), "emergency.default"),
        (lambda e: e.update(default=["swat"]), "emergency.default.0"),
        (lambda e: e.update(default="police"), "emergency.default"),
        (lambda e: e["categories"].update(arson=["fire"]), "emergency.categories.arson"),
        (lambda e: e["categories"].update(fire=[]), "emergency.categories.fire"),
        (lambda e: e["categories"].update(fire=[None]), "emergency.categories.fire.0"),
        (lambda e: e.update(extra=1), "emergency.extra"),
        (lambda e: e.pop("numbers"), "emergency.numbers"),
    ],
)
def test_bad_emergency_settings_are_refused_by_name(
    change: Callable[[dict[str, Any]], None], path: str
) -> None:
    assert broken(lambda body: change(body["emergency"])).params["path"] == path


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=30),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.sampled_from(["numbers", "default", "categories", "fire", "police", "x"]),
                inner,
                max_size=4,
            )
        ),
        max_leaves=12,
    )
)
def test_any_emergency_section_is_a_policy_or_a_clear_refusal(section: Any) -> None:
    body = copy.deepcopy(default_json())
    body["emergency"] = section
    try:
        parse_policy(body)
    except InvalidPolicy as error:
        error.message.format(**error.params)


@pytest.mark.parametrize(
    "duty",
    [
        {"first_minutes": 0},
        {"first_minutes": 241},
        {"first_minutes": "10"},
        {"first_minutes": 2.5},
        {"first_minutes": True},
        {},
        {"first_minutes": 10, "pager": "on"},
        [10],
        "10 minutes",
    ],
)
def test_bad_duty_settings_are_refused(duty: Any) -> None:
    error = broken(lambda body: body.update(duty=duty))
    assert str(error.params.get("path", "")).startswith("duty")


def test_the_duty_minutes_round_trip_and_default() -> None:
    assert policy_with(lambda body: body.update(duty={"first_minutes": 3})).duty.first_minutes == 3
    assert policy_with(lambda body: body.pop("duty")).duty.first_minutes == 10
