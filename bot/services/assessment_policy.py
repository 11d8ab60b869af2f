"""The assessment policy (考核办法): which measures count, their weights, and the veto rules.

**Measures are a registry** (:data:`MEASURES`): each has a key, a short title and a definition
(shown by ``/score help`` and in the workbook's definitions sheet), and whether a lower value
is better. The computation of each lives in :mod:`bot.services.scorecards`; a feature adds
its measure here and its figure there (inspections on time, urges, on-site check send-backs
and spot checks have theirs).

**Weights and veto rules are data**: a JSON file an admin downloads with ``/score file``, edits
and sends back with the caption ``/score``, like the deadline policy. The defaults follow the
seed's plans (方案1 §5, 方案5, 方案6, 方案8): visits against quota weigh most, then tickets
accepted and closed on time and residents' satisfaction, then redo and meeting attendance;
one veto rule — a major or urgent safety or fire hazard that missed its deadline (安全生产
一票否决, 方案5) — makes the period's result "vetoed" whatever the score.

The file::

    {"version": 1,
     "weights": {"visits": 40, "response": 15, "on_time_closure": 15,
                 "satisfaction": 15, "redo": 5, "meetings": 10},
     "veto": [{"kind": "missed_deadline", "categories": ["safety", "fire"],
               "handling": ["urgent", "major"], "at_least": 1}]}

A weight is a whole number from 0 to 100 (0 leaves the measure out); at least one is above 0.
Unknown keys are refused, so a typo never silently drops a measure.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import InvalidInput, NotAllowed
from bot.i18n import N_
from bot.services import policy_fields
from bot.services.people import RoleInGrid
from bot.services.permissions import Action, authorize
from models import AssessmentPolicyVersion, AuditLog, Grid, HandlingKind, Person, TicketCategory

MAX_POLICY_BYTES = 64 * 1024
MAX_WEIGHT = 100
MAX_VETO_RULES = 20
MAX_AT_LEAST = 1000


@dataclass(frozen=True)
class Measure:
    """One assessment measure (考核指标)."""

    key: str
    title: str  # msgid, short: a column header, a chart label
    definition: str  # msgid: what is counted, numerator over denominator
    lower_is_better: bool = False


MEASURES: tuple[Measure, ...] = (
    Measure(
        "visits",
        N_("Visits (走访)"),
        N_(
            "Households that had the visits a visit rule asks, over the households the rule "
            "covers: every rule of the period's length or shorter, for each of its periods "
            "within the period (a period still running: up to now). Households count for the "
            "worker they are assigned to now."
        ),
    ),
    Measure(
        "inspections",
        N_("Inspections on time (按期巡查)"),
        N_(
            "Places to inspect whose routine inspection was not overdue at the end of the "
            "period (a period still running: now) — inspected within their type's cadence "
            "before it — over the places to inspect then. A worker's figure counts the places "
            "of their grid."
        ),
    ),
    Measure(
        "response",
        N_("Accepted on time (及时签收)"),
        N_(
            "Tickets filed in the period that were accepted by their accept deadline, over "
            "those due for acceptance. A worker's figure counts the tickets they accepted."
        ),
    ),
    Measure(
        "on_time_closure",
        N_("Closed on time (按期结案)"),
        N_(
            "Tickets filed in the period and closed that were finished by their deadline and "
            "never escalated for a missed one, over the tickets closed."
        ),
    ),
    Measure(
        "satisfaction",
        N_("Satisfaction (满意度)"),
        N_(
            "Tickets rated satisfied or basically satisfied (by the reporter, else at the "
            "return visit), over the tickets rated."
        ),
    ),
    Measure(
        "redo",
        N_("Redo (重办)"),
        N_(
            "Tickets reopened because the reporter was not satisfied, over the tickets "
            "resolved. Lower is better: the score counts the share not reopened."
        ),
        lower_is_better=True,
    ),
    Measure(
        "meetings",
        N_("Meetings (例会)"),
        N_(
            "Meetings that started in the period (not cancelled) that the person checked in "
            "to, over the meetings they were invited to. A grid counts its workers' invites."
        ),
    ),
    Measure(
        "urged",
        N_("Urged (督查催办)"),
        N_(
            "Tickets filed in the period that a supervisor urged (催办) at least once, over the "
            "tickets filed. Lower is better: the score counts the share never urged."
        ),
        lower_is_better=True,
    ),
    Measure(
        "send_backs",
        N_("Sent back at the check (核查退回)"),
        N_(
            "On-site checks (核查) in the period that sent the ticket back to its handler, over "
            "all on-site checks of the period. Lower is better."
        ),
        lower_is_better=True,
    ),
    Measure(
        "spot_checks",
        N_("Spot checks found false (抽查不属实)"),
        N_(
            "Visits and closed tickets a supervisor spot-checked (抽查) in the period and found "
            "false, over those spot-checked; they count for the worker whose work was drawn. "
            "Lower is better."
        ),
        lower_is_better=True,
    ),
    Measure(
        "follow_ups",
        N_("Follow-ups on time (随访)"),
        N_(
            "Follow-ups of tagged people (随访) due in the period that were made on time: each "
            "tag whose cadence is the period's length or shorter counts once per cadence "
            "period within the period (a running one: up to now), on time if it got its "
            "follow-ups within that cadence period. They count for the worker the household "
            "is assigned to now."
        ),
    ),
)
MEASURE_KEYS: tuple[str, ...] = tuple(m.key for m in MEASURES)

DEFAULT_WEIGHTS: dict[str, int] = {
    "visits": 40,
    "inspections": 10,
    "response": 15,
    "on_time_closure": 15,
    "satisfaction": 15,
    "redo": 5,
    "meetings": 10,
    "urged": 5,
    "send_backs": 5,
    "spot_checks": 5,
    "follow_ups": 10,
}


@dataclass(frozen=True)
class VetoKind:
    """A kind of veto rule (一票否决) the data can check today."""

    key: str
    definition: str  # msgid


VETO_KINDS: tuple[VetoKind, ...] = (
    VetoKind(
        "missed_deadline",
        N_(
            "Vetoed (一票否决): at least {at_least} ticket(s) of the listed categories and "
            "handling kinds, in the person's charge (accepted by them) or in the grid, "
            "escalated in the period because a deadline was missed."
        ),
    ),
)


@dataclass(frozen=True)
class VetoRule:
    kind: str
    categories: tuple[str, ...]
    handling: tuple[str, ...]
    at_least: int = 1


@dataclass(frozen=True)
class AssessmentPolicy:
    weights: Mapping[str, int]
    veto: tuple[VetoRule, ...]

    def weight(self, key: str) -> int:
        return int(self.weights.get(key, 0))


DEFAULT_POLICY = AssessmentPolicy(
    weights=DEFAULT_WEIGHTS,
    veto=(
        VetoRule(
            "missed_deadline",
            categories=(TicketCategory.SAFETY.value, TicketCategory.FIRE.value),
            handling=(HandlingKind.URGENT.value, HandlingKind.MAJOR.value),
        ),
    ),
)


def policy_to_json(policy: AssessmentPolicy) -> dict[str, Any]:
    return {
        "version": 1,
        "weights": {key: policy.weight(key) for key in MEASURE_KEYS},
        "veto": [
            {
                "kind": rule.kind,
                "categories": list(rule.categories),
                "handling": list(rule.handling),
                "at_least": rule.at_least,
            }
            for rule in policy.veto
        ],
    }


ASSESSMENT_FILE = policy_fields.PolicyFile(
    too_large=N_("That file is too large for an assessment policy."),
    not_utf8=N_("The assessment file must be UTF-8 text (JSON)."),
    not_json=N_("The assessment file is not valid JSON."),
    unknown_version=N_("I only know version 1 of the assessment file."),
)


def _refuse(message: str, **params: Any) -> InvalidInput:
    return InvalidInput(message, **params)


def _keys(data: Mapping[str, Any], allowed: Sequence[str]) -> None:
    for key in data:
        if key not in allowed:
            raise _refuse(
                N_("The assessment file has an entry “{key}” I do not know."),
                key=policy_fields.echo(key),
            )


def _names(value: Any, allowed: Sequence[str], what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or len(value) > len(allowed):
        raise _refuse(N_("In a veto rule, “{what}” must be a list of names."), what=what)
    names: list[str] = []
    for item in value:
        if not isinstance(item, str) or item not in allowed:
            raise _refuse(
                N_("In a veto rule, “{value}” is not a valid value of “{what}”."),
                value=policy_fields.echo(item),
                what=what,
            )
        if item not in names:
            names.append(item)
    return tuple(names)


def _whole(value: Any, low: int, high: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _refuse(
            N_("“{what}” must be a whole number from {low} to {high}, not {value}."),
            what=what,
            low=low,
            high=high,
            value=policy_fields.echo(value),
        )
    return value


def parse_policy(raw: bytes | str) -> AssessmentPolicy:
    """Read and check an assessment file; refuse it whole, with a clear reason, if anything
    in it is wrong (nothing is half-applied)."""
    data = policy_fields.read_object(raw, MAX_POLICY_BYTES, ASSESSMENT_FILE)
    _keys(data, ("version", "weights", "veto"))
    weights_in = data.get("weights")
    if not isinstance(weights_in, dict):
        raise _refuse(N_("The assessment file needs “weights”, one per measure."))
    _keys(weights_in, MEASURE_KEYS)
    weights = {key: _whole(weights_in.get(key, 0), 0, MAX_WEIGHT, key) for key in MEASURE_KEYS}
    if not any(weights.values()):
        raise _refuse(N_("At least one measure needs a weight above 0."))
    veto_in = data.get("veto", [])
    if not isinstance(veto_in, list) or len(veto_in) > MAX_VETO_RULES:
        raise _refuse(N_("“veto” must be a list of at most {count} rules."), count=MAX_VETO_RULES)
    rules: list[VetoRule] = []
    for item in veto_in:
        if not isinstance(item, dict):
            raise _refuse(N_("Each veto rule must be written in braces {{ }}."))
        _keys(item, ("kind", "categories", "handling", "at_least"))
        if item.get("kind") not in {k.key for k in VETO_KINDS}:
            raise _refuse(
                N_("“{value}” is not a kind of veto rule I know."),
                value=policy_fields.echo(item.get("kind")),
            )
        rules.append(
            VetoRule(
                kind=str(item["kind"]),
                categories=_names(
                    item.get("categories"), [c.value for c in TicketCategory], "categories"
                ),
                handling=_names(item.get("handling"), [h.value for h in HandlingKind], "handling"),
                at_least=_whole(item.get("at_least", 1), 1, MAX_AT_LEAST, "at_least"),
            )
        )
    return AssessmentPolicy(weights=weights, veto=tuple(rules))


async def current_policy(session: AsyncSession) -> AssessmentPolicy:
    """The newest stored version, else the defaults."""
    row = (
        await session.exec(
            select(AssessmentPolicyVersion).order_by(col(AssessmentPolicyVersion.id).desc())
        )
    ).first()
    return DEFAULT_POLICY if row is None else parse_policy(json.dumps(row.body))


async def set_policy(
    session: AsyncSession,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    raw: bytes | str,
    now: datetime,
) -> AssessmentPolicy:
    """Store a new version: the weights are street-wide, so only an admin of the street centre
    may change them."""
    root = (await session.exec(select(Grid).where(Grid.tier == 0).order_by(col(Grid.id)))).first()
    if root is None:
        raise NotAllowed(N_("Set up the street centre grid first."))
    await authorize(session, actor, roles, Action.MANAGE, root, now)
    policy = parse_policy(raw)
    session.add(
        AssessmentPolicyVersion(body=policy_to_json(policy), created_by=actor.id, created_at=now)
    )
    session.add(
        AuditLog(at=now, actor_id=actor.id, action="assessment_policy_set", object_type="policy")
    )
    return policy
