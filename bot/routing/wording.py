"""Display names for routing, as catalog msgids (the glue translates with ``gettext_for``).

Durations: ``UNIT[duration.unit]`` is a ``(one, many)`` pair with an ``{n}`` slot — pick
``one`` when ``n == 1`` — and a same-working-day limit (``0 working_days``) reads
``SAME_WORKING_DAY``. A time to accept or to resolve reads as a whole phrase
(:func:`limit_msgid`: "1 个工作日内签收", "当天签收"), and a link of the chain by its role, with
the grid's level in words only where the chain has that role more than once
(:func:`link_name`: "网格员", "二级网格长", "一级网格长", "街道中心") — never a tier number.
Roles and handling kinds are in ``bot.labels``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from bot.i18n import N_
from bot.routing.escalation import Reason, Which
from bot.routing.policy import ChainLink, Duration, Inform, Unit
from models.enums import Role

UNIT: dict[Unit, tuple[str, str]] = {
    Unit.SECONDS: (N_("{n} second"), N_("{n} seconds")),
    Unit.MINUTES: (N_("{n} minute"), N_("{n} minutes")),
    Unit.HOURS: (N_("{n} hour"), N_("{n} hours")),
    Unit.DAYS: (N_("{n} day"), N_("{n} days")),
    Unit.WORKING_MINUTES: (N_("{n} working minute"), N_("{n} working minutes")),
    Unit.WORKING_HOURS: (N_("{n} working hour"), N_("{n} working hours")),
    Unit.WORKING_DAYS: (N_("{n} working day"), N_("{n} working days")),
}
SAME_WORKING_DAY = N_("the same working day")

DEADLINE: dict[Which, str] = {
    "accept": N_("time to accept"),
    "resolve": N_("time to resolve"),
    "cap": N_("overall time limit"),
}

ESCALATION_REASON: dict[Reason, str] = {
    "accept_overdue": N_("not accepted in time"),
    "resolve_overdue": N_("not resolved in time"),
    "cap_overdue": N_("over the overall time limit"),
    "by_hand": N_("sent up by hand"),
}

INFORM: dict[Inform, str] = {
    Inform.NONE: N_("nobody else is told at once"),
    Inform.BELOW: N_("the tiers below are told at once"),
    Inform.ABOVE: N_("the tiers above are told at once"),
    Inform.ALL: N_("every tier is told at once"),
}


def duration_msgid(duration: Duration) -> str:
    """The msgid that names ``duration``; fill its ``{n}`` with ``duration.amount``."""
    if duration.is_same_working_day:
        return SAME_WORKING_DAY
    one, many = UNIT[duration.unit]
    return one if duration.amount == 1 else many


# a time limit as a whole phrase: (within a duration, the same working day)
LIMIT: dict[Literal["accept", "resolve"], tuple[str, str]] = {
    "accept": (N_("accept within {duration}"), N_("accept the same working day")),
    "resolve": (N_("resolve within {duration}"), N_("resolve the same working day")),
}


def limit_msgid(which: Literal["accept", "resolve"], duration: Duration) -> str:
    """The msgid of "accept/resolve within …"; fill its ``{duration}`` (if it has one) with the
    translated :func:`duration_msgid`."""
    within, same_day = LIMIT[which]
    return same_day if duration.is_same_working_day else within


# the level of a grid, in words, for telling apart two links of the chain with one role
LEVEL: dict[int, str] = {
    0: N_("street-level"),
    1: N_("first-level"),
    2: N_("second-level"),
    3: N_("third-level"),
    4: N_("fourth-level"),
    5: N_("fifth-level"),
    6: N_("sixth-level"),
}
LEVELLED_ROLE = N_("{level} {role}")  # "二级网格长", "second-level grid head"
STREET_CENTRE = N_("street centre")


@dataclass(frozen=True)
class LinkName:
    """How a link of the chain is named: by its ``role`` (``bot.labels.ROLE``) or a ``place``
    msgid instead (the street centre), with a ``level`` msgid (``LEVELLED_ROLE``) when the
    chain has the role at more than one tier."""

    role: Role
    place: str | None = None
    level: str | None = None


def link_name(link: ChainLink, chain: Sequence[ChainLink]) -> LinkName:
    if link.role == Role.CENTER and link.tier == 0:
        return LinkName(link.role, place=STREET_CENTRE)
    tiers = {other.tier for other in chain if other.role == link.role}
    if len(tiers) > 1 and link.tier in LEVEL:
        return LinkName(link.role, level=LEVEL[link.tier])
    return LinkName(link.role)
