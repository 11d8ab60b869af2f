"""Place types (场所类型): how often each kind of place is inspected, and against what checklist.

Place types are **data**, like the deadline policy and the assessment policy: a JSON file an
admin downloads with ``/places file``, edits and sends back with the caption ``/places``. The
newest stored version applies; without one, :data:`DEFAULT_POLICY` does. The defaults follow
the seed's plans: 方案2 (fire-safety grids: the residents' committee checks shops and home
workshops monthly, the township quarterly, residential buildings weekly; key units are kept on
file, 户籍化管理), 方案7 (property patrols "每天不少于两次") and 方案15 (every business that
handles medicines, 涉药单位, on file per grid and inspected).

The file::

    {"version": 1,
     "fix_days": {"minor": 7, "major": 3, "grave": 1},
     "types": [
       {"key": "small_venue", "name": "九小场所", "department": "fire",
        "cadence": [{"by": "worker", "days": 30, "times": 1},
                    {"by": "center", "days": 90, "times": 1}],
        "checklist": [{"key": "exits_clear", "text": "疏散通道、安全出口畅通",
                       "severity": "grave"}, …]}, …]}

- ``cadence``: who inspects (``worker`` 网格员, ``head`` 网格长, ``center`` 街道/社区,
  ``department`` 职能部门) and how often: ``times`` inspections every ``days`` days (a patrol
  twice a day is ``{"days": 1, "times": 2}``). The worker's cadence decides what ``/inspect``
  and the daily push show as due.
- ``checklist``: the items (检查项) an inspection answers 合格 / 不合格 / 不适用; a failed item
  becomes a hazard (隐患) to be fixed within ``fix_days`` of its ``severity`` (一般 minor,
  较大 major, 重大 grave).
- ``department``: the code of the department (消防, 市场监管, 应急 …) a hazard that is not
  fixed, or a refusal to be inspected, goes to; empty: up the grid chain like any ticket.

Keys are short ASCII names (``a-z``, digits, ``_``) and unique; unknown entries are refused,
so a typo never silently drops a rule. The file is refused whole, with the reason, if any part
of it is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import InvalidInput, NotAllowed
from bot.i18n import N_
from bot.services import policy_fields
from bot.services.people import RoleInGrid
from bot.services.permissions import Action, authorize
from models import AuditLog, Grid, Person, Place, PlacePolicyVersion

MAX_POLICY_BYTES = 128 * 1024
MAX_TYPES = 30
MAX_ITEMS = 40  # a checklist one inspects on a phone, one button row per item
MAX_CADENCES = 4
MAX_DAYS = 366
MAX_TIMES = 10
MAX_FIX_DAYS = 365
MAX_NAME = 40
MAX_TEXT = 60

SEVERITIES: tuple[str, ...] = ("minor", "major", "grave")  # 一般, 较大, 重大
INSPECTORS: tuple[str, ...] = ("worker", "head", "center", "department")


@dataclass(frozen=True)
class Cadence:
    """``times`` inspections by ``by`` every ``days`` days."""

    by: str
    days: int
    times: int = 1

    @property
    def interval(self) -> timedelta:
        """How long after an inspection the next is due."""
        return timedelta(days=self.days) / self.times


@dataclass(frozen=True)
class CheckItem:
    """One item of a checklist (检查项)."""

    key: str
    text: str
    severity: str = "major"


@dataclass(frozen=True)
class PlaceType:
    """A kind of place (场所类型) with its cadence and checklist."""

    key: str
    name: str
    checklist: tuple[CheckItem, ...]
    cadence: tuple[Cadence, ...]
    department: str | None = None

    def cadence_of(self, by: str) -> Cadence | None:
        for cadence in self.cadence:
            if cadence.by == by:
                return cadence
        return None

    def item(self, key: str) -> CheckItem | None:
        for item in self.checklist:
            if item.key == key:
                return item
        return None


@dataclass(frozen=True)
class PlacePolicy:
    types: tuple[PlaceType, ...]
    fix_days: Mapping[str, int]

    def type(self, key: str) -> PlaceType | None:
        for place_type in self.types:
            if place_type.key == key:
                return place_type
        return None

    def fix_by(self, severity: str, found_at: datetime) -> datetime:
        """When a hazard of this severity found at ``found_at`` must be fixed by."""
        return found_at + timedelta(days=int(self.fix_days.get(severity, 3)))


def _items(*rows: tuple[str, str, str]) -> tuple[CheckItem, ...]:
    return tuple(CheckItem(key, text, severity) for key, text, severity in rows)


_EXITS = ("exits_clear", "疏散通道、安全出口畅通", "grave")
_EXTINGUISHER = ("extinguisher_valid", "灭火器配置齐全且在有效期内", "major")
_WIRING = ("no_loose_wiring", "无电线私拉乱接、超负荷用电", "major")
_GAS = ("gas_safe", "用火、用油、用气安全", "major")

DEFAULT_POLICY = PlacePolicy(
    fix_days={"minor": 7, "major": 3, "grave": 1},
    types=(
        PlaceType(
            "small_venue",
            "九小场所",
            _items(
                _EXITS,
                _EXTINGUISHER,
                _WIRING,
                _GAS,
                ("no_living_in", "无“三合一”住人现象", "grave"),
                ("self_check", "开展防火自查，员工“一懂三会”", "minor"),
            ),
            (Cadence("worker", 30), Cadence("center", 90)),
            "fire",
        ),
        PlaceType(
            "rental",
            "出租房屋",
            _items(
                ("tenants_registered", "租住人员已登记（谁出租、谁负责）", "minor"),
                _EXITS,
                _WIRING,
                ("no_ebike_charging", "无电动车室内停放、充电", "major"),
                _GAS,
            ),
            (Cadence("worker", 30),),
            "fire",
        ),
        PlaceType(
            "key_unit",
            "重点单位",
            _items(
                ("responsible_named", "消防安全责任人、管理人已落实", "minor"),
                _EXITS,
                ("facilities_maintained", "建筑消防设施维护保养到位", "major"),
                _EXTINGUISHER,
                ("drill_yearly", "每年至少组织一次疏散演练", "minor"),
                ("file_kept", "消防安全“户籍化”档案完整", "minor"),
            ),
            (Cadence("worker", 7), Cadence("center", 90)),
            "fire",
        ),
        PlaceType(
            "pharmacy",
            "涉药单位",
            _items(
                ("licence_shown", "药品经营许可证照齐全并公示", "major"),
                ("purchase_ledger", "药品进货台账完整", "minor"),
                ("no_expired_drugs", "无过期、变质药品", "grave"),
                ("prescription_rules", "处方药凭处方销售", "major"),
                ("storage_ok", "药品储存条件符合要求", "minor"),
            ),
            (Cadence("worker", 30),),
            "market",
        ),
        PlaceType(
            "enterprise",
            "企业",
            _items(
                ("safety_duty", "安全生产责任制落实", "minor"),
                ("hazmat_stored", "危险化学品规范存放", "grave"),
                ("equipment_safe", "设备设施安全防护完好", "major"),
                _EXITS,
                _EXTINGUISHER,
            ),
            (Cadence("worker", 30), Cadence("center", 90)),
            "emergency",
        ),
        PlaceType(
            "common_area",
            "小区公共部位",
            _items(
                ("corridor_clear", "楼道无堆放杂物", "major"),
                ("fire_lane_clear", "消防车通道畅通", "grave"),
                ("hydrant_ok", "消火栓、喷淋设施完好", "major"),
                ("lights_ok", "应急照明、疏散指示完好", "minor"),
            ),
            (Cadence("worker", 7), Cadence("department", 1, 2)),
            "property",
        ),
    ),
)


def policy_to_json(policy: PlacePolicy) -> dict[str, Any]:
    return {
        "version": 1,
        "fix_days": {severity: int(policy.fix_days[severity]) for severity in SEVERITIES},
        "types": [
            {
                "key": t.key,
                "name": t.name,
                "department": t.department or "",
                "cadence": [{"by": c.by, "days": c.days, "times": c.times} for c in t.cadence],
                "checklist": [
                    {"key": i.key, "text": i.text, "severity": i.severity} for i in t.checklist
                ],
            }
            for t in policy.types
        ],
    }


PLACE_TYPES_FILE = policy_fields.PolicyFile(
    too_large=N_("That file is too large for a place-types file."),
    not_utf8=N_("The place-types file must be UTF-8 text (JSON)."),
    not_json=N_("The place-types file is not valid JSON."),
    unknown_version=N_("I only know version 1 of the place-types file."),
)


def _keys(data: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
    for key in data:
        if key not in allowed:
            raise InvalidInput(
                N_("The place-types file has an entry “{key}” I do not know ({where})."),
                key=policy_fields.echo(key),
                where=where,
            )


def _whole(value: Any, low: int, high: int, what: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(
            N_("In {where}, “{what}” must be a whole number from {low} to {high}, not {value}."),
            where=where,
            what=what,
            low=low,
            high=high,
            value=policy_fields.echo(value),
        )
    return value


def _cadence(data: Any, where: str) -> tuple[Cadence, ...]:
    if not isinstance(data, list) or not 1 <= len(data) <= MAX_CADENCES:
        raise InvalidInput(
            N_("In {where}, “cadence” must be a list of 1 to {count} entries."),
            where=where,
            count=MAX_CADENCES,
        )
    found: list[Cadence] = []
    for entry in data:
        if not isinstance(entry, dict):
            raise InvalidInput(
                N_("In {where}, each cadence must be written in braces."), where=where
            )
        _keys(entry, ("by", "days", "times"), where)
        by = entry.get("by")
        if by not in INSPECTORS:
            raise InvalidInput(
                N_(
                    "In {where}, “{value}” is not who inspects: use worker, head, center or "
                    "department."
                ),
                where=where,
                value=policy_fields.echo(by),
            )
        if any(c.by == by for c in found):
            raise InvalidInput(
                N_("In {where}, the cadence of “{value}” is given twice."), where=where, value=by
            )
        days = _whole(entry.get("days"), 1, MAX_DAYS, "days", where)
        times = _whole(entry.get("times", 1), 1, MAX_TIMES, "times", where)
        found.append(Cadence(str(by), days, times))
    return tuple(found)


def _checklist(data: Any, where: str) -> tuple[CheckItem, ...]:
    if not isinstance(data, list) or not 1 <= len(data) <= MAX_ITEMS:
        raise InvalidInput(
            N_(
                "In {where}, the checklist has {count} items; it must have 1 to {limit} "
                "(an inspection is done on a phone)."
            ),
            where=where,
            count=len(data) if isinstance(data, list) else 0,
            limit=MAX_ITEMS,
        )
    items: list[CheckItem] = []
    for entry in data:
        if not isinstance(entry, dict):
            raise InvalidInput(
                N_("In {where}, each checklist item must be written in braces."), where=where
            )
        _keys(entry, ("key", "text", "severity"), where)
        key = policy_fields.key(entry.get("key"), where)
        if any(i.key == key for i in items):
            text = entry.get("text")
            raise InvalidInput(
                N_("In {where}, the checklist item key of “{value}” is used twice."),
                where=where,
                value=policy_fields.echo(text if isinstance(text, str) and text.strip() else key),
            )
        severity = entry.get("severity", "major")
        if severity not in SEVERITIES:
            raise InvalidInput(
                N_("In {where}, “{value}” is not a severity: use minor, major or grave."),
                where=where,
                value=policy_fields.echo(severity),
            )
        items.append(
            CheckItem(
                key, policy_fields.text(entry.get("text"), MAX_TEXT, "text", where), severity
            )
        )
    return tuple(items)


def _department(value: Any, where: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 32 or not value.strip():
        raise InvalidInput(
            N_("In {where}, “department” must be a department's code."), where=where
        )
    return value.strip()


def parse_policy(raw: bytes | str) -> PlacePolicy:
    """Read and check a place-types file; refuse it whole, with the reason, if anything is
    wrong (nothing is half-applied)."""
    data = policy_fields.read_object(raw, MAX_POLICY_BYTES, PLACE_TYPES_FILE)
    _keys(data, ("version", "fix_days", "types"), N_("the file"))
    fix_in = data.get("fix_days")
    if not isinstance(fix_in, dict):
        raise InvalidInput(N_("The place-types file needs “fix_days”: minor, major and grave."))
    _keys(fix_in, SEVERITIES, "fix_days")
    fix_days = {s: _whole(fix_in.get(s), 1, MAX_FIX_DAYS, s, "fix_days") for s in SEVERITIES}
    types_in = data.get("types")
    if not isinstance(types_in, list) or not 1 <= len(types_in) <= MAX_TYPES:
        raise InvalidInput(
            N_("“types” must be a list of 1 to {count} place types."), count=MAX_TYPES
        )
    types: list[PlaceType] = []
    for entry in types_in:
        if not isinstance(entry, dict):
            raise InvalidInput(N_("Each place type must be written in braces {{ }}."))
        key = policy_fields.key(entry.get("key"), "types")
        name = entry.get("name")
        # a type is named in messages as the admin knows it: by its name, else its key
        where = f"“{name.strip()}”" if isinstance(name, str) and name.strip() else key
        if any(t.key == key for t in types):
            raise InvalidInput(N_("The place type “{value}” is given twice."), value=where)
        _keys(entry, ("key", "name", "department", "cadence", "checklist"), where)
        cadence = _cadence(entry.get("cadence"), where)
        if not any(c.by == "worker" for c in cadence):
            raise InvalidInput(
                N_("In {where}, the cadence must say how often the grid worker inspects."),
                where=where,
            )
        types.append(
            PlaceType(
                key=key,
                name=policy_fields.text(entry.get("name"), MAX_NAME, "name", where),
                checklist=_checklist(entry.get("checklist"), where),
                cadence=cadence,
                department=_department(entry.get("department"), where),
            )
        )
    return PlacePolicy(types=tuple(types), fix_days=fix_days)


def _worker_interval(policy: PlacePolicy, key: str) -> timedelta | None:
    place_type = policy.type(key)
    cadence = place_type.cadence_of("worker") if place_type is not None else None
    return cadence.interval if cadence is not None else None


def _retimed(before: PlacePolicy, after: PlacePolicy) -> list[str]:
    """The types whose worker cadence the new version changes (or adds)."""
    return [
        t.key
        for t in after.types
        if _worker_interval(before, t.key) != _worker_interval(after, t.key)
    ]


async def current_policy(session: AsyncSession) -> PlacePolicy:
    """The newest stored version, else the defaults."""
    row = (
        await session.exec(
            select(PlacePolicyVersion).order_by(col(PlacePolicyVersion.id).desc()).limit(1)
        )
    ).first()
    return DEFAULT_POLICY if row is None else parse_policy(json.dumps(row.body))


def next_due(policy: PlacePolicy, place: Place) -> datetime | None:
    """When the place's next routine inspection is due by its type's worker cadence: when it
    was added if never inspected; none when its type has no such cadence."""
    place_type = policy.type(place.type_key)
    cadence = place_type.cadence_of("worker") if place_type is not None else None
    if cadence is None:
        return None
    if place.last_inspected_at is None:
        return place.created_at
    return place.last_inspected_at + cadence.interval


async def refresh_next_due(
    session: AsyncSession,
    policy: PlacePolicy,
    *,
    type_keys: Sequence[str] | None = None,
    place_ids: Sequence[int] | None = None,
) -> int:
    """Set ``Place.next_due_at`` again for the places of these types (a changed cadence) or
    these places (a changed type); how many were set."""
    statement = select(Place).execution_options(populate_existing=True)
    if type_keys is not None:
        statement = statement.where(col(Place.type_key).in_(list(type_keys)))
    if place_ids is not None:
        statement = statement.where(col(Place.id).in_(list(place_ids)))
    count = 0
    for place in await session.exec(statement):
        place.next_due_at = next_due(policy, place)
        session.add(place)
        count += 1
    await session.flush()
    return count


async def set_policy(
    session: AsyncSession,
    *,
    actor: Person,
    roles: Sequence[RoleInGrid],
    raw: bytes | str,
    now: datetime,
) -> PlacePolicy:
    """Store a new version. Place types are street-wide: only an admin of the street centre
    may change them. A type still used by a place cannot be dropped."""
    root = (await session.exec(select(Grid).where(Grid.tier == 0).order_by(col(Grid.id)))).first()
    if root is None:
        raise NotAllowed(N_("Set up the street centre grid first."))
    await authorize(session, actor, roles, Action.MANAGE, root, now)
    policy = parse_policy(raw)
    used = (await session.exec(select(col(Place.type_key)).distinct())).all()
    missing = sorted(set(used) - {t.key for t in policy.types})
    if missing:
        raise InvalidInput(
            N_("The place type “{value}” is still used by places; keep it in the file."),
            value=policy_fields.echo(missing[0]),
        )
    before = await current_policy(session)
    session.add(
        PlacePolicyVersion(body=policy_to_json(policy), created_by=actor.id, created_at=now)
    )
    await refresh_next_due(session, policy, type_keys=_retimed(before, policy))
    session.add(
        AuditLog(at=now, actor_id=actor.id, action="place_policy_set", object_type="policy")
    )
    return policy
