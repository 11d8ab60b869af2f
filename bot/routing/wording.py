"""Display names for routing, as catalog msgids (the glue translates with ``gettext_for``).

Durations: ``UNIT[duration.unit]`` is a ``(one, many)`` pair with an ``{n}`` slot — pick
``one`` when ``n == 1`` — and a same-working-day limit (``0 working_days``) reads
``SAME_WORKING_DAY``. Roles and handling kinds are in ``bot.labels``.
"""

from __future__ import annotations

from bot.i18n import N_
from bot.routing.escalation import Reason, Which
from bot.routing.policy import Duration, Inform, Unit

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
