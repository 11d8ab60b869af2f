"""Grid codes (网格编码): one hierarchical, all-digit code per grid.

The scheme follows Beijing's 15-digit grid code (district 6 + street 3 + community 3 + grid 3,
"建立社区责任网格编码制度") and widens it for GridBot's tree of a street centre and three tiers
below it (方案1, 方案8)::

    tier 0  street / township centre (街道 / 乡镇)     350211 001              9 digits
    tier 1  community / administrative village (一级)  350211 001 003         12 digits
    tier 2  二级网格                                   350211 001 003 02      14 digits
    tier 3  三级网格                                   350211 001 003 02 07   16 digits
    tier 4+ deeper tiers, when configured                             + 2 digits each

- The first six digits are the administrative division code of the district or county
  (行政区划代码, GB/T 2260), the next three number the street within it.
- A child's code is its parent's code followed by its own number, so a code names its whole
  chain of ancestors and ``parent_of`` is a prefix cut.
- Every part is a number from 1 up, zero-padded: a part of all zeros is never valid. A tier-1
  part can reach 999; tier 2 and below reach 99.
- Codes are ASCII digits only. The validators do not clean up input; a parser of typed text
  calls :func:`normalize_code` first (it folds full-width digits "１２３" and drops spaces).

Everything here is pure: no database, no clock.
"""

from __future__ import annotations

import unicodedata

from bot.errors import InvalidInput
from bot.i18n import N_

DISTRICT_DIGITS = 6  # 行政区划代码 of the district / county
STREET_DIGITS = 3  # the street / township within it
COMMUNITY_DIGITS = 3  # tier 1: community / administrative village
GRID_DIGITS = 2  # tier 2 and every deeper tier
MAX_TIER = 6  # as deep as ``Grid.tier`` allows

_SHOWN_MAX = 40  # a hostile code is cut to this many characters inside a message


class InvalidGridCode(InvalidInput):
    """A grid code that breaks the scheme; ``params`` fill the message's slots."""


WRONG_LENGTH = N_("The grid code {code} must be {length} digits.")
ZERO_PART = N_("The grid code {code} has a part of all zeros; numbering starts at 1.")
WRONG_PARENT = N_("The grid code {code} must begin with its parent grid's code {parent}.")
NOT_A_CODE = N_("{code} is not a grid code.")
TOO_DEEP = N_("Grids can be nested at most {max_tier} tiers below the street centre.")
PARENT_FULL = N_("The grid {code} already has the most sub-grids its code allows ({limit}).")


def code_length(tier: int) -> int:
    """The number of digits of a code at ``tier`` (0 = street centre)."""
    _check_tier(tier)
    if tier == 0:
        return DISTRICT_DIGITS + STREET_DIGITS
    return DISTRICT_DIGITS + STREET_DIGITS + COMMUNITY_DIGITS + GRID_DIGITS * (tier - 1)


def part_widths(tier: int) -> tuple[int, ...]:
    """The width of each part of a code at ``tier``, district first."""
    _check_tier(tier)
    widths = [DISTRICT_DIGITS, STREET_DIGITS]
    if tier >= 1:
        widths.append(COMMUNITY_DIGITS)
    widths.extend([GRID_DIGITS] * max(tier - 1, 0))
    return tuple(widths)


def validate_code(code: str, tier: int, parent_code: str | None = None) -> None:
    """Accept a code for a grid at ``tier`` under ``parent_code``, or raise InvalidGridCode.

    With ``parent_code`` None only the code's own shape is checked (length, digits, no part of
    all zeros); with a parent, the code must also extend the parent's code by one part.
    ``tier`` is the program's, not the user's: a negative tier is a ValueError; a tier deeper
    than the scheme allows is an InvalidGridCode.
    """
    if tier == 0 and parent_code is not None:
        raise ValueError("a street centre (tier 0) has no parent grid")
    length = code_length(tier)
    if len(code) != length or not _is_ascii_digits(code):
        raise InvalidGridCode(WRONG_LENGTH, code=_shown(code), length=length)
    position = 0
    for width in part_widths(tier):
        if code[position : position + width] == "0" * width:
            raise InvalidGridCode(ZERO_PART, code=_shown(code))
        position += width
    if parent_code is not None and (
        len(parent_code) != code_length(tier - 1) or code[: len(parent_code)] != parent_code
    ):
        raise InvalidGridCode(WRONG_PARENT, code=_shown(code), parent=_shown(parent_code))


def tier_of(code: str) -> int:
    """The tier a well-formed code belongs to, found from its length."""
    if _is_ascii_digits(code):
        for tier in range(MAX_TIER + 1):
            if len(code) == code_length(tier):
                validate_code(code, tier)
                return tier
    raise InvalidGridCode(NOT_A_CODE, code=_shown(code))


def parent_of(code: str) -> str | None:
    """The code of the parent grid, or None for a street centre."""
    tier = tier_of(code)
    if tier == 0:
        return None
    return code[: code_length(tier - 1)]


def child_code(parent_code: str, parent_tier: int, index: int) -> str:
    """The code of the ``index``-th child (1, 2, ...) of the grid ``parent_code``."""
    validate_code(parent_code, parent_tier)
    if index < 1:
        raise ValueError(f"child index {index} is below 1")
    tier = parent_tier + 1
    if tier > MAX_TIER:
        raise InvalidGridCode(TOO_DEEP, max_tier=MAX_TIER)
    width = part_widths(tier)[-1]
    limit = 10**width - 1
    if index > limit:
        raise InvalidGridCode(PARENT_FULL, code=parent_code, limit=limit)
    return f"{parent_code}{index:0{width}d}"


def normalize_code(text: str) -> str:
    """Typed text made ready for validation: full-width digits folded, spaces and dashes gone.

    The result is not checked; pass it to :func:`validate_code` or :func:`tier_of`.
    """
    if len(text) > 4 * code_length(MAX_TIER):
        return text  # far too long to be a code whatever it holds; keep the work bounded
    folded = unicodedata.normalize("NFKC", text)
    return "".join(ch for ch in folded if not ch.isspace() and ch not in "-_./")


def _check_tier(tier: int) -> None:
    if tier < 0:
        raise ValueError(f"grid tier {tier} is below 0")
    if tier > MAX_TIER:
        raise InvalidGridCode(TOO_DEEP, max_tier=MAX_TIER)


def _is_ascii_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _shown(text: str) -> str:
    """A code as quoted back in a message: cut short, control characters dropped."""
    cleaned = "".join(ch for ch in text[:_SHOWN_MAX] if ch.isprintable())
    return cleaned + "…" if len(text) > _SHOWN_MAX else cleaned
