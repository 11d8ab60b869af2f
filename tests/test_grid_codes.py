"""Grid codes (网格编码): the scheme, its validator, and hostile input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.errors import InvalidInput
from bot.services import grid_codes
from bot.services.grid_codes import (
    MAX_TIER,
    InvalidGridCode,
    child_code,
    code_length,
    normalize_code,
    parent_of,
    tier_of,
    validate_code,
)

CENTRE = "350211001"
COMMUNITY = "350211001003"
TIER2 = "35021100100302"
TIER3 = "3502110010030207"
MESSAGES = {
    grid_codes.WRONG_LENGTH,
    grid_codes.ZERO_PART,
    grid_codes.WRONG_PARENT,
    grid_codes.NOT_A_CODE,
    grid_codes.TOO_DEEP,
    grid_codes.PARENT_FULL,
}


def test_lengths_follow_the_scheme() -> None:
    assert [code_length(t) for t in range(MAX_TIER + 1)] == [9, 12, 14, 16, 18, 20, 22]
    assert code_length(MAX_TIER) <= 32  # Grid.code and Household.code hold 32 characters


def test_children_extend_their_parent() -> None:
    assert child_code(CENTRE, 0, 3) == COMMUNITY
    assert child_code(COMMUNITY, 1, 2) == TIER2
    assert child_code(TIER2, 2, 7) == TIER3
    assert child_code(TIER3, 3, 12) == TIER3 + "12"
    assert child_code(CENTRE, 0, 999) == CENTRE + "999"


def test_tier_and_parent_are_read_from_the_code() -> None:
    chain = [CENTRE, COMMUNITY, TIER2, TIER3]
    for tier, code in enumerate(chain):
        assert tier_of(code) == tier
        validate_code(code, tier, chain[tier - 1] if tier else None)
    assert [parent_of(code) for code in chain] == [None, *chain[:-1]]


@pytest.mark.parametrize(
    ("code", "tier", "parent", "message"),
    [
        ("35021100", 0, None, grid_codes.WRONG_LENGTH),
        ("3502110011", 0, None, grid_codes.WRONG_LENGTH),
        ("35021100a", 0, None, grid_codes.WRONG_LENGTH),
        ("３５０２１１００１", 0, None, grid_codes.WRONG_LENGTH),  # full-width digits
        (" 350211001", 0, None, grid_codes.WRONG_LENGTH),
        ("350211001\n", 0, None, grid_codes.WRONG_LENGTH),
        ("35021100١", 0, None, grid_codes.WRONG_LENGTH),  # an Arabic-Indic digit
        ("000000001", 0, None, grid_codes.ZERO_PART),  # district
        ("350211000", 0, None, grid_codes.ZERO_PART),  # street
        ("350211001000", 1, CENTRE, grid_codes.ZERO_PART),  # community
        ("35021100100300", 2, COMMUNITY, grid_codes.ZERO_PART),
        ("3502110010030200", 3, TIER2, grid_codes.ZERO_PART),
        ("350211002003", 1, CENTRE, grid_codes.WRONG_PARENT),
        ("35021100100302", 2, "350211001004", grid_codes.WRONG_PARENT),
        ("35021100100302", 2, CENTRE, grid_codes.WRONG_PARENT),  # a grandparent
        ("35021100100302", 2, "", grid_codes.WRONG_PARENT),
        (TIER3, 3, TIER3, grid_codes.WRONG_PARENT),
        (TIER3, MAX_TIER + 1, TIER2, grid_codes.TOO_DEEP),
    ],
)
def test_bad_codes_are_refused(code: str, tier: int, parent: str | None, message: str) -> None:
    with pytest.raises(InvalidGridCode) as caught:
        validate_code(code, tier, parent)
    assert caught.value.message == message
    assert isinstance(caught.value, InvalidInput)  # the error handler translates it


@pytest.mark.parametrize("text", ["", "35021100", "350211001x", "1" * 13, "0" * 12, "abc"])
def test_tier_of_refuses_what_is_not_a_code(text: str) -> None:
    with pytest.raises(InvalidGridCode):
        tier_of(text)
    with pytest.raises(InvalidGridCode):
        parent_of(text)


def test_child_numbers_are_bounded() -> None:
    with pytest.raises(InvalidGridCode) as caught:
        child_code(CENTRE, 0, 1000)
    assert caught.value.message == grid_codes.PARENT_FULL
    assert caught.value.params == {"code": CENTRE, "limit": 999}
    with pytest.raises(InvalidGridCode):
        child_code(COMMUNITY, 1, 100)
    deepest = CENTRE + "001" + "01" * (MAX_TIER - 1)
    with pytest.raises(InvalidGridCode) as caught:
        child_code(deepest, MAX_TIER, 1)
    assert caught.value.message == grid_codes.TOO_DEEP
    with pytest.raises(ValueError):
        child_code(CENTRE, 0, 0)
    with pytest.raises(InvalidGridCode):
        child_code(CENTRE + "1", 0, 1)  # the parent's own code is checked


def test_program_errors_are_not_user_errors() -> None:
    with pytest.raises(ValueError):
        validate_code(CENTRE, -1)
    with pytest.raises(ValueError):
        validate_code(CENTRE, 0, CENTRE)  # a street centre has no parent


def test_normalize_code_folds_what_people_type() -> None:
    assert normalize_code("３５０２１１００１") == CENTRE
    assert normalize_code(" 350211 001-003\u3000") == COMMUNITY
    assert tier_of(normalize_code("３５０ ２１１ ００１ ００３")) == 1


# --- hostile input -----------------------------------------------------------------------------

digits = st.text(st.sampled_from("0123456789"), min_size=0, max_size=24)
hostile = st.one_of(
    st.text(max_size=40),
    st.text(max_size=5000),
    digits,
    st.text(st.sampled_from("0123456789０１２３４５６７８９ \t\n\u3000-١"), max_size=30),
    st.builds(lambda a, b: a + b, st.sampled_from([CENTRE, COMMUNITY, TIER2, TIER3]), digits),
)
tiers = st.integers(min_value=0, max_value=MAX_TIER + 2)


def _check_refusal(error: InvalidGridCode) -> None:
    assert error.message in MESSAGES
    shown = error.message.format(**error.params)  # every slot is filled
    assert len(shown) < 200  # a hostile code is quoted back cut short


@given(code=hostile, tier=tiers, parent=st.one_of(st.none(), hostile))
def test_validator_never_crashes(code: str, tier: int, parent: str | None) -> None:
    if tier == 0:
        parent = None
    try:
        validate_code(code, tier, parent)
    except InvalidGridCode as error:
        _check_refusal(error)
    else:
        assert code.isascii() and code.isdigit() and len(code) == code_length(tier)
        assert tier_of(code) == tier
        if parent is not None:
            assert parent_of(code) == parent


@given(text=hostile)
def test_readers_never_crash(text: str) -> None:
    for read in (tier_of, parent_of):
        try:
            read(text)
        except InvalidGridCode as error:
            _check_refusal(error)
    normalized = normalize_code(text)
    assert isinstance(normalized, str)


@given(indexes=st.lists(st.integers(min_value=1, max_value=99), max_size=MAX_TIER))
def test_codes_built_from_children_are_valid(indexes: list[int]) -> None:
    code, tier = CENTRE, 0
    for index in indexes:
        child = child_code(code, tier, index)
        validate_code(child, tier + 1, code)
        assert parent_of(child) == code
        code, tier = child, tier + 1
    assert tier_of(code) == tier
    assert normalize_code("".join(chr(ord(c) + 0xFEE0) for c in code)) == code  # full-width
