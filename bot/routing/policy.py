"""The routing and deadline policy (限时办理): typed, validated, stored as JSON.

A :class:`Policy` says four things:

- **who receives a new ticket** — ordered routing rules, first match wins, a catch-all last;
- **how the tiers escalate** — the chain from the grid worker up to the street centre;
- **how long each step may take** — per handling kind and tier, the time to accept and the
  time to resolve, an overall cap from dispatch, whether the clock runs round the clock, and
  whether the outcome must be publicly noticed (公示) and for how long (``notice_period``,
  5 working days unless set). Business hours and the time zone that
  working time is counted in are part of it too;
- **how long a department (职能部门) has** — a ticket a rule sends to a department (主办), the
  assisting ones (协办) asked to answer, and how far a 延期 may move a deadline
  (:class:`DepartmentTerms`; optional in a file: the defaults when absent);
- **whom a person in danger calls** — the emergency numbers (110 police, 119 fire, 120
  ambulance) and, per category, which of them a report of that kind shows first
  (:class:`EmergencyPolicy`; optional in a file: the shipped one's when absent).

The shipped defaults are ``bot/routing/default_policy.json`` (:func:`load_default_policy`). An
admin edits a copy; the glue validates it with :func:`parse_policy` (any JSON text, bytes or
already-decoded value in; a :class:`Policy` or an :class:`InvalidPolicy` naming the bad
setting out — never another exception), stores :func:`policy_to_json` in
``PolicyVersion.body`` and snapshots it into ``Ticket.sla`` when a ticket is dispatched, so
an open ticket keeps the policy it was created under. The file format is described in
``docs/routing.md``.

Everything here is pure: no database, no clock.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any, Final, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.errors import InvalidInput
from bot.i18n import N_
from models.enums import HandlingKind, Role, TicketCategory

FORMAT: Final = 1
DEFAULT_POLICY_PATH: Final = Path(__file__).resolve().parent / "default_policy.json"
MAX_TIER: Final = 6  # as deep as ``Grid.tier`` allows
MAX_TEXT: Final = 100_000  # characters of policy JSON an admin may send
MAX_ROUTES: Final = 100
MAX_GRID_SCOPES: Final = 200
MAX_RULE_NAME: Final = 64  # ``Ticket.routing_rule`` holds 64 characters
MAX_BUSINESS_SPANS: Final = 6
MIN_BUSINESS_DAY: Final = timedelta(hours=1)
_SHOWN_MAX: Final = 40  # hostile text is cut to this many characters inside a message

E = TypeVar("E", bound=StrEnum)


class InvalidPolicy(InvalidInput):
    """A policy that cannot be used; ``params["path"]`` names the setting, e.g.
    ``kinds.general.tiers.3.accept``."""


NOT_JSON = N_("The policy is not valid JSON.")
NOT_JSON_AT = N_("The policy is not valid JSON (line {line}, column {column}).")
TOO_LARGE = N_("The policy is too large: at most {limit} characters.")
NOT_OBJECT = N_("The setting {path} must be a JSON object.")
NOT_LIST = N_("The setting {path} must be a list.")
NOT_TEXT = N_("The setting {path} must be text.")
NOT_BOOL = N_("The setting {path} must be true or false.")
NOT_WHOLE = N_("The setting {path} must be a whole number from {low} to {high}.")
NOT_FRACTION = N_("The setting {path} must be a number between 0 and 1, or null.")
MISSING = N_("The setting {path} is missing.")
UNKNOWN = N_("The setting {path} is not known. Check its spelling.")
BAD_CHOICE = N_("The setting {path} must be one of: {choices}.")
TOO_MANY = N_("The setting {path} has too many entries (at most {limit}).")
EMPTY_LIST = N_("The setting {path} must not be empty.")
BAD_FORMAT = N_("This policy is in format {value}; this version of GridBot reads format {format}.")
BAD_DURATION = N_(
    "The setting {path} ({value}) must be a number and a unit, such as 3 working_days. "
    "Units: {units}."
)
DURATION_RANGE = N_("The setting {path} must be from {low} to {high} {unit}.")
BAD_SPAN = N_("The setting {path} ({value}) must be a time span such as 08:30-12:00.")
SPANS_OUT_OF_ORDER = N_(
    "The business hours must be in order, each ending after it starts, without overlaps."
)
SPANS_TOO_SHORT = N_("The business hours must add up to at least one hour a day.")
BAD_ZONE = N_("The setting {path} ({value}) must be a time zone such as Asia/Shanghai.")
BAD_RULE_NAME = N_(
    "The setting {path} must be a name of 1 to {limit} printable characters, with no spaces "
    "at either end."
)
DUPLICATE_RULE = N_("Two routing rules are named {value}; each name must be different.")
NO_DEFAULT_RULE = N_(
    "The last routing rule must match every ticket: give it no categories, kinds or grids."
)
BAD_GRID_SCOPE = N_(
    "The setting {path} ({value}) must be a grid code (digits) or a grid path such as /1/4/."
)
CHAIN_NOT_UPWARDS = N_(
    "The escalation chain must go upwards: each link a higher tier, or a higher role in "
    "the same tier, than the one before it."
)
NOT_A_LINK = N_("The setting {path} must name a link of the escalation chain.")
MISSING_TIER = N_("The setting {path} has no time limits for tier {tier}.")
BAD_PHONE = N_("The setting {path} ({value}) must be a phone number such as 119 or 0592-5556789.")
NAMED_TWICE = N_("The setting {path} names {value} twice.")
BAD_DEPARTMENT_CODE = N_(
    "The setting {path} ({value}) must be a department's code: 1 to 32 lowercase letters, "
    "digits or underscores."
)
NEED_A_TARGET = N_(
    "The routing rule {path} must say where tickets go: a link (to) or a department."
)
WALL_UNITS_ONLY = N_(
    "The setting {path} runs round the clock, so its durations must be in seconds, minutes, "
    "hours or days."
)


class Unit(StrEnum):
    """How a :class:`Duration` is counted: wall-clock units, or working time."""

    SECONDS = "seconds"
    MINUTES = "minutes"
    HOURS = "hours"
    DAYS = "days"
    WORKING_MINUTES = "working_minutes"
    WORKING_HOURS = "working_hours"
    WORKING_DAYS = "working_days"


WALL_UNITS: Final[Mapping[Unit, timedelta]] = {
    Unit.SECONDS: timedelta(seconds=1),
    Unit.MINUTES: timedelta(minutes=1),
    Unit.HOURS: timedelta(hours=1),
    Unit.DAYS: timedelta(days=1),
}
WORKING_TIME_UNITS: Final[Mapping[Unit, timedelta]] = {
    Unit.WORKING_MINUTES: timedelta(minutes=1),
    Unit.WORKING_HOURS: timedelta(hours=1),
}
# A year's worth of each unit: enough for any real time limit, and it keeps the calendar's
# walk over working days short.
MAX_AMOUNT: Final[Mapping[Unit, int]] = {
    Unit.SECONDS: 366 * 86_400,
    Unit.MINUTES: 366 * 1_440,
    Unit.HOURS: 366 * 24,
    Unit.DAYS: 366,
    Unit.WORKING_MINUTES: 2_000 * 60,
    Unit.WORKING_HOURS: 2_000,
    Unit.WORKING_DAYS: 250,
}
_UNIT_NAMES: Final[Mapping[str, Unit]] = {
    **{unit.value: unit for unit in Unit},
    **{unit.value[:-1]: unit for unit in Unit},  # "1 working_day", "1 hour"
}


@dataclass(frozen=True)
class Duration:
    """A time limit such as ``3 working_days``.

    Wall-clock units (seconds … days) are plain elapsed time. ``working_minutes`` and
    ``working_hours`` count time inside business hours on working days. ``N working_days``
    ends at the close of business of the N-th working day after the day the work could start
    (the day of dispatch, or the next working day when dispatched after hours) — the day
    itself is not counted (民法典 第二百零一条); ``0 working_days`` is "the same working day".
    """

    amount: int
    unit: Unit

    def __post_init__(self) -> None:
        low = 0 if self.unit is Unit.WORKING_DAYS else 1
        if not low <= self.amount <= MAX_AMOUNT[self.unit]:
            raise ValueError(f"{self.amount} {self.unit} is out of range")

    @property
    def is_working_time(self) -> bool:
        return self.unit not in WALL_UNITS

    @property
    def is_same_working_day(self) -> bool:
        return self.unit is Unit.WORKING_DAYS and self.amount == 0

    def __str__(self) -> str:
        return f"{self.amount} {self.unit.value}"


class EmergencyService(StrEnum):
    """Whom a person in danger calls (in China: 110, 119, 120)."""

    POLICE = "police"  # 110: violence, public security, a dispute turning violent
    FIRE = "fire"  # 119: fire, and rescue — a gas leak, someone trapped, a collapse
    AMBULANCE = "ambulance"  # 120: injuries, someone taken ill


@dataclass(frozen=True)
class EmergencyCall:
    service: EmergencyService
    number: str


@dataclass(frozen=True)
class EmergencyAdvice:
    """What a report of some category tells a person in danger: ``first`` the numbers for
    that kind of problem, in order, then ``others`` — the rest, for anything else."""

    first: tuple[EmergencyCall, ...]
    others: tuple[EmergencyCall, ...]


@dataclass(frozen=True)
class EmergencyPolicy:
    """The emergency numbers, and which of them each category of problem shows first."""

    numbers: Mapping[EmergencyService, str]
    default: tuple[EmergencyService, ...]  # for a category the policy does not name
    categories: Mapping[TicketCategory, tuple[EmergencyService, ...]]

    def advice(self, category: TicketCategory | None) -> EmergencyAdvice:
        known = category is not None and category in self.categories
        first = self.categories[category] if known and category is not None else self.default
        rest = [service for service in self.default if service not in first]
        rest += [service for service in EmergencyService if service not in first + tuple(rest)]
        return EmergencyAdvice(
            first=tuple(EmergencyCall(s, self.numbers[s]) for s in first),
            others=tuple(EmergencyCall(s, self.numbers[s]) for s in rest),
        )


class Inform(StrEnum):
    """Which other links of the chain hear about a new ticket at once (urgent, major)."""

    NONE = "none"
    BELOW = "below"
    ABOVE = "above"
    ALL = "all"


# The order of roles inside one tier: a head is above the workers of the same grid.
ROLE_RANK: Final[Mapping[Role, int]] = {Role.WORKER: 0, Role.HEAD: 1, Role.CENTER: 2}


@dataclass(frozen=True)
class ChainLink:
    """A place a ticket can be owned: a role over a grid of some tier (0 = street centre)."""

    tier: int
    role: Role

    @property
    def rank(self) -> tuple[int, int] | None:
        """Orders links bottom to top; None for a role outside the chain (a department)."""
        if self.role not in ROLE_RANK:
            return None
        return (-self.tier, ROLE_RANK[self.role])


@dataclass(frozen=True)
class Windows:
    """The time limits at one tier, both counted from the moment the ticket arrived there."""

    accept: Duration
    resolve: Duration


DEFAULT_NOTICE_PERIOD: Final = Duration(5, Unit.WORKING_DAYS)


@dataclass(frozen=True)
class KindPolicy:
    """The deadlines of one handling kind (一般性 / 需协调 / 突发 / 需审批 / 重大)."""

    round_the_clock: bool
    public_notice: bool  # the outcome must be publicly noticed (公示)
    cap: Duration | None  # the whole handling, from dispatch, at most
    tiers: Mapping[int, Windows]
    # how long a publicly noticed outcome stays on the grid's notice board, from resolution
    notice_period: Duration = DEFAULT_NOTICE_PERIOD
    # 核查结案: a resolved ticket is checked on site (the grid worker or the centre) before
    # the reporter is asked to rate it
    verify: bool = False

    def windows(self, tier: int) -> Windows:
        """The limits at ``tier``; a tier the policy does not name takes the nearest one."""
        if tier in self.tiers:
            return self.tiers[tier]
        nearest = min(self.tiers, key=lambda known: (abs(known - tier), -known))
        return self.tiers[nearest]


DEPARTMENT_CODE: Final = re.compile(r"[a-z0-9_]{1,32}")


@dataclass(frozen=True)
class DepartmentTerms:
    """The time a department has: to accept (签收) and resolve a ticket it leads (主办), for an
    assisting department (协办) to answer, and how far past its deadline a 延期 may go."""

    accept: Duration
    resolve: Duration
    assist: Duration
    max_extension: Duration


DEFAULT_DEPARTMENT_TERMS: Final = DepartmentTerms(
    accept=Duration(4, Unit.WORKING_HOURS),
    resolve=Duration(5, Unit.WORKING_DAYS),
    assist=Duration(3, Unit.WORKING_DAYS),
    max_extension=Duration(10, Unit.WORKING_DAYS),
)


@dataclass(frozen=True)
class RouteRule:
    """One routing rule; an empty criterion matches everything.

    ``grids`` holds grid-code prefixes (``"350211001003"``) and grid-path prefixes
    (``"/1/4/"``); the ticket's grid matches when it is inside any of them. ``department``
    (a department's code) sends the ticket straight to that department as its lead (主办),
    with ``assist`` departments asked to answer (协办); ``to`` is then the link that watches
    over it and takes it back (the top, unless the rule says otherwise).
    """

    name: str
    to: ChainLink
    categories: frozenset[TicketCategory] = frozenset()
    kinds: frozenset[HandlingKind] = frozenset()
    grids: tuple[str, ...] = ()
    inform: Inform = Inform.NONE
    department: str | None = None
    assist: tuple[str, ...] = ()

    @property
    def matches_everything(self) -> bool:
        return not (self.categories or self.kinds or self.grids)


MAX_DUTY_MINUTES: Final = 240


@dataclass(frozen=True)
class DutyPolicy:
    """The centre's duty rota (值班): an urgent ticket or a flag at the centre goes to the
    operator on duty first, and to the rest of the centre only if it is not accepted within
    ``first_minutes`` (wall-clock minutes, 1 to :data:`MAX_DUTY_MINUTES`)."""

    first_minutes: int = 10


@dataclass(frozen=True)
class Policy:
    """A validated routing and deadline policy; build it with :func:`parse_policy`."""

    timezone: str
    business_hours: tuple[tuple[time, time], ...]
    official_holidays: bool  # count China's public holidays and make-up days (调休)
    warn_fraction: float | None  # warn once this share of a window has passed; None = never
    chain: tuple[ChainLink, ...]  # bottom to top; the last link is the top
    routes: tuple[RouteRule, ...]
    kinds: Mapping[HandlingKind, KindPolicy]
    emergency: EmergencyPolicy
    duty: DutyPolicy = field(default_factory=lambda: DutyPolicy())
    departments: DepartmentTerms = field(default_factory=lambda: DEFAULT_DEPARTMENT_TERMS)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def top(self) -> ChainLink:
        return self.chain[-1]

    def windows(self, kind: HandlingKind, tier: int) -> Windows:
        return self.kinds[kind].windows(tier)


# --- reading -------------------------------------------------------------------------------


def parse_policy(raw: Any) -> Policy:
    """Validate an admin's policy: JSON text or bytes, or an already-decoded JSON value.

    Raises :class:`InvalidPolicy` (an ``InvalidInput``) for anything that is not a usable
    policy; its ``params`` always fill the message's slots.
    """
    if isinstance(raw, bytes | bytearray):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidPolicy(NOT_JSON) from None
    if isinstance(raw, str):
        raw = _decode_json(raw)
    return _read_policy(raw)


def load_default_policy() -> Policy:
    """The policy GridBot ships with (``default_policy.json``)."""
    return _default_policy()


@cache
def _default_policy() -> Policy:
    return parse_policy(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))


def parse_duration(raw: Any, path: str = "duration") -> Duration:
    """``"3 working_days"`` → ``Duration(3, Unit.WORKING_DAYS)``; singular units and
    full-width digits are accepted, anything else is an :class:`InvalidPolicy`."""
    if not isinstance(raw, str):
        raise InvalidPolicy(NOT_TEXT, path=path)
    units = ", ".join(unit.value for unit in Unit)
    text = " ".join(unicodedata.normalize("NFKC", raw[:_SHOWN_MAX]).split()).lower()
    match = re.fullmatch(r"([0-9]{1,9}) ?([a-z_ ]+)", text) if len(raw) <= _SHOWN_MAX else None
    unit = _UNIT_NAMES.get(match[2].strip().replace(" ", "_")) if match else None
    if match is None or unit is None:
        raise InvalidPolicy(BAD_DURATION, path=path, value=_shown(raw), units=units)
    amount = int(match[1])
    low = 0 if unit is Unit.WORKING_DAYS else 1
    if not low <= amount <= MAX_AMOUNT[unit]:
        raise InvalidPolicy(
            DURATION_RANGE, path=path, low=low, high=MAX_AMOUNT[unit], unit=unit.value
        )
    return Duration(amount, unit)


def _decode_json(text: str) -> Any:
    if len(text) > MAX_TEXT:
        raise InvalidPolicy(TOO_LARGE, limit=MAX_TEXT)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidPolicy(NOT_JSON_AT, line=exc.lineno, column=exc.colno) from None
    except (ValueError, RecursionError):  # a number too long to read, nesting too deep
        raise InvalidPolicy(NOT_JSON) from None


_TOP_KEYS: Final = frozenset(
    {
        "format",
        "timezone",
        "business_hours",
        "official_holidays",
        "warn_fraction",
        "chain",
        "routes",
        "kinds",
        "emergency",
        "duty",
        "departments",
    }
)
_DUTY_KEYS: Final = frozenset({"first_minutes"})


def _read_policy(raw: Any) -> Policy:
    body = _object(
        raw,
        "policy",
        _TOP_KEYS,
        required=_TOP_KEYS - {"format", "emergency", "duty", "departments"},
    )
    if "format" in body and (type(body["format"]) is not int or body["format"] != FORMAT):
        raise InvalidPolicy(BAD_FORMAT, value=_shown(body["format"]), format=FORMAT)
    chain = _read_chain(body["chain"])
    return Policy(
        timezone=_read_zone(body["timezone"], "timezone"),
        business_hours=_read_business_hours(body["business_hours"]),
        official_holidays=_bool(body["official_holidays"], "official_holidays"),
        warn_fraction=_read_fraction(body["warn_fraction"], "warn_fraction"),
        chain=chain,
        routes=_read_routes(body["routes"], chain),
        kinds=_read_kinds(body["kinds"], chain),
        # a policy stored before the emergency numbers were part of it takes the shipped ones
        emergency=(
            _read_emergency(body["emergency"])
            if "emergency" in body
            else load_default_policy().emergency
        ),
        departments=(
            _read_department_terms(body["departments"])
            if "departments" in body
            else DEFAULT_DEPARTMENT_TERMS
        ),
        # likewise the duty rota's minutes
        duty=_read_duty(body["duty"]) if "duty" in body else load_default_policy().duty,
    )


def _read_duty(raw: Any) -> DutyPolicy:
    body = _object(raw, "duty", _DUTY_KEYS, required=_DUTY_KEYS)
    return DutyPolicy(
        first_minutes=_whole(body["first_minutes"], "duty.first_minutes", 1, MAX_DUTY_MINUTES)
    )


_DEPARTMENT_KEYS: Final = frozenset({"accept", "resolve", "assist", "max_extension"})


def _read_department_terms(raw: Any) -> DepartmentTerms:
    body = _object(raw, "departments", _DEPARTMENT_KEYS, required=frozenset())

    def duration(key: str) -> Duration:
        if key not in body:
            default: Duration = getattr(DEFAULT_DEPARTMENT_TERMS, key)
            return default
        return parse_duration(body[key], f"departments.{key}")

    return DepartmentTerms(
        accept=duration("accept"),
        resolve=duration("resolve"),
        assist=duration("assist"),
        max_extension=duration("max_extension"),
    )


def _read_department_code(raw: Any, path: str) -> str:
    text = _text(raw, path)
    if DEPARTMENT_CODE.fullmatch(text) is None:
        raise InvalidPolicy(BAD_DEPARTMENT_CODE, path=path, value=_shown(text))
    return text


def _read_zone(raw: Any, path: str) -> str:
    text = _text(raw, path)
    if len(text) > 64 or not re.fullmatch(r"[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*", text):
        raise InvalidPolicy(BAD_ZONE, path=path, value=_shown(text))
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidPolicy(BAD_ZONE, path=path, value=_shown(text)) from None
    return text


def _read_business_hours(raw: Any) -> tuple[tuple[time, time], ...]:
    items = _list(raw, "business_hours", MAX_BUSINESS_SPANS, allow_empty=False)
    spans = tuple(_read_span(item, f"business_hours.{i}") for i, item in enumerate(items))
    for (_, closes), (opens, _) in zip(spans, spans[1:], strict=False):
        if opens < closes:
            raise InvalidPolicy(SPANS_OUT_OF_ORDER)
    total = sum((_minutes(closes) - _minutes(opens) for opens, closes in spans), 0)
    if timedelta(minutes=total) < MIN_BUSINESS_DAY:
        raise InvalidPolicy(SPANS_TOO_SHORT)
    return spans


def _read_span(raw: Any, path: str) -> tuple[time, time]:
    text = _text(raw, path)
    match = re.fullmatch(r"([0-9]{2}):([0-9]{2})-([0-9]{2}):([0-9]{2})", text.replace(" ", ""))
    if match is None:
        raise InvalidPolicy(BAD_SPAN, path=path, value=_shown(text))
    hours_1, minutes_1, hours_2, minutes_2 = (int(part) for part in match.groups())
    if max(hours_1, hours_2) > 23 or max(minutes_1, minutes_2) > 59:
        raise InvalidPolicy(BAD_SPAN, path=path, value=_shown(text))
    opens, closes = time(hours_1, minutes_1), time(hours_2, minutes_2)
    if closes <= opens:
        raise InvalidPolicy(SPANS_OUT_OF_ORDER)
    return opens, closes


def _read_fraction(raw: Any, path: str) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise InvalidPolicy(NOT_FRACTION, path=path)
    value = float(raw)
    if not (math.isfinite(value) and 0 < value < 1):
        raise InvalidPolicy(NOT_FRACTION, path=path)
    return value


def _read_chain(raw: Any) -> tuple[ChainLink, ...]:
    items = _list(raw, "chain", MAX_TIER + 1, allow_empty=False)
    chain = tuple(_read_link(item, f"chain.{i}") for i, item in enumerate(items))
    ranks = [link.rank for link in chain]
    if any(
        low is None or high is None or high <= low
        for low, high in zip(ranks, ranks[1:], strict=False)
    ):
        raise InvalidPolicy(CHAIN_NOT_UPWARDS)
    return chain


_CHAIN_ROLES: Final = tuple(ROLE_RANK)


def _read_link(raw: Any, path: str) -> ChainLink:
    body = _object(raw, path, frozenset({"tier", "role"}), required=frozenset({"tier", "role"}))
    tier = _whole(body["tier"], f"{path}.tier", 0, MAX_TIER)
    role = _choice(body["role"], f"{path}.role", _CHAIN_ROLES)
    return ChainLink(tier, role)


_CATEGORIES: Final = tuple(TicketCategory)
_KINDS: Final = tuple(HandlingKind)
_INFORMS: Final = tuple(Inform)
_ROUTE_KEYS: Final = frozenset(
    {"name", "categories", "kinds", "grids", "to", "inform", "department", "assist"}
)
MAX_ASSIST: Final = 5


def _read_routes(raw: Any, chain: tuple[ChainLink, ...]) -> tuple[RouteRule, ...]:
    items = _list(raw, "routes", MAX_ROUTES, allow_empty=False)
    rules: list[RouteRule] = []
    for i, item in enumerate(items):
        path = f"routes.{i}"
        body = _object(item, path, _ROUTE_KEYS, required=frozenset({"name"}))
        name = _text(body["name"], f"{path}.name")
        if not (0 < len(name) <= MAX_RULE_NAME and name.isprintable() and name == name.strip()):
            raise InvalidPolicy(BAD_RULE_NAME, path=f"{path}.name", limit=MAX_RULE_NAME)
        if any(rule.name == name for rule in rules):
            raise InvalidPolicy(DUPLICATE_RULE, value=_shown(name))
        department = (
            _read_department_code(body["department"], f"{path}.department")
            if "department" in body
            else None
        )
        if "to" not in body and department is None:
            raise InvalidPolicy(NEED_A_TARGET, path=path)
        to = _read_link(body["to"], f"{path}.to") if "to" in body else chain[-1]
        if to not in chain:
            raise InvalidPolicy(NOT_A_LINK, path=f"{path}.to")
        assist: list[str] = []
        for j, code in enumerate(_list(body.get("assist", []), f"{path}.assist", MAX_ASSIST)):
            code = _read_department_code(code, f"{path}.assist.{j}")
            if code in assist or code == department:
                raise InvalidPolicy(NAMED_TWICE, path=f"{path}.assist", value=code)
            assist.append(code)
        if assist and department is None:
            raise InvalidPolicy(MISSING, path=f"{path}.department")
        rules.append(
            RouteRule(
                name=name,
                to=to,
                categories=_choices(body.get("categories", []), f"{path}.categories", _CATEGORIES),
                kinds=_choices(body.get("kinds", []), f"{path}.kinds", _KINDS),
                grids=_read_grid_scopes(body.get("grids", []), f"{path}.grids"),
                inform=_choice(body.get("inform", Inform.NONE.value), f"{path}.inform", _INFORMS),
                department=department,
                assist=tuple(assist),
            )
        )
    if not rules[-1].matches_everything or rules[-1].department is not None:
        raise InvalidPolicy(NO_DEFAULT_RULE)
    return tuple(rules)


def _read_grid_scopes(raw: Any, path: str) -> tuple[str, ...]:
    scopes: list[str] = []
    for i, item in enumerate(_list(raw, path, MAX_GRID_SCOPES)):
        text = _text(item, f"{path}.{i}")
        is_code = re.fullmatch(r"[0-9]{1,32}", text) is not None
        is_path = re.fullmatch(r"/([0-9]{1,12}/){1,16}", text) is not None
        if not (is_code or is_path):
            raise InvalidPolicy(BAD_GRID_SCOPE, path=f"{path}.{i}", value=_shown(text))
        scopes.append(text)
    return tuple(scopes)


_KIND_KEYS: Final = frozenset({"round_the_clock", "public_notice", "cap", "tiers"})
_OPTIONAL_KIND_KEYS: Final = frozenset({"notice_period", "verify"})


def _read_kinds(raw: Any, chain: tuple[ChainLink, ...]) -> dict[HandlingKind, KindPolicy]:
    names = frozenset(kind.value for kind in HandlingKind)
    body = _object(raw, "kinds", names, required=names)
    return {
        kind: _read_kind(body[kind.value], f"kinds.{kind.value}", chain) for kind in HandlingKind
    }


def _read_kind(raw: Any, path: str, chain: tuple[ChainLink, ...]) -> KindPolicy:
    body = _object(raw, path, _KIND_KEYS | _OPTIONAL_KIND_KEYS, required=_KIND_KEYS)
    round_the_clock = _bool(body["round_the_clock"], f"{path}.round_the_clock")
    cap = None if body["cap"] is None else parse_duration(body["cap"], f"{path}.cap")
    tier_names = frozenset(str(tier) for tier in range(MAX_TIER + 1))
    tiers_raw = _object(body["tiers"], f"{path}.tiers", tier_names, required=frozenset())
    tiers = {
        int(name): _read_windows(tiers_raw[name], f"{path}.tiers.{name}")
        for name in sorted(tiers_raw, key=int)
    }
    for link in chain:
        if link.tier not in tiers:
            raise InvalidPolicy(MISSING_TIER, path=f"{path}.tiers", tier=link.tier)
    durations = [cap] if cap is not None else []
    durations += [d for windows in tiers.values() for d in (windows.accept, windows.resolve)]
    if round_the_clock and any(duration.is_working_time for duration in durations):
        raise InvalidPolicy(WALL_UNITS_ONLY, path=path)
    return KindPolicy(
        round_the_clock=round_the_clock,
        public_notice=_bool(body["public_notice"], f"{path}.public_notice"),
        cap=cap,
        tiers=tiers,
        notice_period=(
            parse_duration(body["notice_period"], f"{path}.notice_period")
            if "notice_period" in body
            else DEFAULT_NOTICE_PERIOD
        ),
        verify=_bool(body["verify"], f"{path}.verify") if "verify" in body else False,
    )


def _read_windows(raw: Any, path: str) -> Windows:
    keys = frozenset({"accept", "resolve"})
    body = _object(raw, path, keys, required=keys)
    return Windows(
        accept=parse_duration(body["accept"], f"{path}.accept"),
        resolve=parse_duration(body["resolve"], f"{path}.resolve"),
    )


_EMERGENCY_KEYS: Final = frozenset({"numbers", "default", "categories"})
_SERVICES: Final = tuple(EmergencyService)
_SERVICE_NAMES: Final = frozenset(service.value for service in EmergencyService)
_PHONE: Final = re.compile(r"\+?[0-9][0-9 \-]{1,18}[0-9]")


def _read_emergency(raw: Any) -> EmergencyPolicy:
    path = "emergency"
    body = _object(raw, path, _EMERGENCY_KEYS, required=frozenset({"numbers", "default"}))
    numbers_raw = _object(
        body["numbers"], f"{path}.numbers", _SERVICE_NAMES, required=_SERVICE_NAMES
    )
    numbers: dict[EmergencyService, str] = {}
    for service in EmergencyService:
        where = f"{path}.numbers.{service.value}"
        number = _text(numbers_raw[service.value], where)
        if _PHONE.fullmatch(number) is None:
            raise InvalidPolicy(BAD_PHONE, path=where, value=_shown(number))
        numbers[service] = number
    names = frozenset(category.value for category in TicketCategory)
    categories_raw = _object(
        body.get("categories", {}), f"{path}.categories", names, required=frozenset()
    )
    return EmergencyPolicy(
        numbers=numbers,
        default=_services(body["default"], f"{path}.default"),
        categories={
            category: _services(categories_raw[category.value], f"{path}.categories.{category}")
            for category in TicketCategory
            if category.value in categories_raw
        },
    )


def _services(raw: Any, path: str) -> tuple[EmergencyService, ...]:
    """An ordered list of emergency services, each at most once, at least one."""
    items = _list(raw, path, len(_SERVICES), allow_empty=False)
    services: list[EmergencyService] = []
    for i, item in enumerate(items):
        service = _choice(item, f"{path}.{i}", _SERVICES)
        if service in services:
            raise InvalidPolicy(NAMED_TWICE, path=path, value=service.value)
        services.append(service)
    return tuple(services)


# --- small readers -------------------------------------------------------------------------


def _object(
    raw: Any, path: str, allowed: frozenset[str], *, required: frozenset[str]
) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise InvalidPolicy(NOT_OBJECT, path=path)
    for key in raw:
        if not isinstance(key, str) or key not in allowed:
            raise InvalidPolicy(UNKNOWN, path=f"{path}.{_shown(key)}")
    for key in sorted(required):
        if key not in raw:
            raise InvalidPolicy(MISSING, path=f"{path}.{key}")
    return raw


def _list(raw: Any, path: str, limit: int, *, allow_empty: bool = True) -> list[Any]:
    if not isinstance(raw, list | tuple):
        raise InvalidPolicy(NOT_LIST, path=path)
    if len(raw) > limit:
        raise InvalidPolicy(TOO_MANY, path=path, limit=limit)
    if not raw and not allow_empty:
        raise InvalidPolicy(EMPTY_LIST, path=path)
    return list(raw)


def _text(raw: Any, path: str) -> str:
    if not isinstance(raw, str):
        raise InvalidPolicy(NOT_TEXT, path=path)
    return raw


def _bool(raw: Any, path: str) -> bool:
    if not isinstance(raw, bool):
        raise InvalidPolicy(NOT_BOOL, path=path)
    return raw


def _whole(raw: Any, path: str, low: int, high: int) -> int:
    if type(raw) is not int or not low <= raw <= high:
        raise InvalidPolicy(NOT_WHOLE, path=path, low=low, high=high)
    return raw


def _choice(raw: Any, path: str, choices: tuple[E, ...]) -> E:
    for choice in choices:
        if raw == choice.value and isinstance(raw, str):
            return choice
    raise InvalidPolicy(BAD_CHOICE, path=path, choices=", ".join(c.value for c in choices))


def _choices(raw: Any, path: str, choices: tuple[E, ...]) -> frozenset[E]:
    items = _list(raw, path, len(choices))
    return frozenset(_choice(item, f"{path}.{i}", choices) for i, item in enumerate(items))


def _minutes(moment: time) -> int:
    return moment.hour * 60 + moment.minute


def _shown(raw: Any) -> str:
    """A hostile value, made safe to quote in a message: short and printable."""
    if isinstance(raw, str):
        text = raw
    elif raw is None or isinstance(raw, bool) or (isinstance(raw, int) and abs(raw) < 10**18):
        text = json.dumps(raw)
    else:
        text = type(raw).__name__
    cut = "".join(ch if ch.isprintable() else "?" for ch in text[:_SHOWN_MAX])
    return cut + "…" if len(text) > _SHOWN_MAX else cut


# --- writing -------------------------------------------------------------------------------


def policy_to_json(policy: Policy) -> dict[str, Any]:
    """The canonical JSON form; ``parse_policy(policy_to_json(p)) == p``."""
    return {
        "format": FORMAT,
        "timezone": policy.timezone,
        "business_hours": [
            f"{opens:%H:%M}-{closes:%H:%M}" for opens, closes in policy.business_hours
        ],
        "official_holidays": policy.official_holidays,
        "warn_fraction": policy.warn_fraction,
        "chain": [_link_json(link) for link in policy.chain],
        "routes": [_route_json(rule) for rule in policy.routes],
        "kinds": {kind.value: _kind_json(policy.kinds[kind]) for kind in HandlingKind},
        "emergency": _emergency_json(policy.emergency),
        "duty": {"first_minutes": policy.duty.first_minutes},
        "departments": {
            "accept": str(policy.departments.accept),
            "resolve": str(policy.departments.resolve),
            "assist": str(policy.departments.assist),
            "max_extension": str(policy.departments.max_extension),
        },
    }


def _emergency_json(emergency: EmergencyPolicy) -> dict[str, Any]:
    return {
        "numbers": {service.value: emergency.numbers[service] for service in EmergencyService},
        "default": [service.value for service in emergency.default],
        "categories": {
            category.value: [service.value for service in emergency.categories[category]]
            for category in TicketCategory
            if category in emergency.categories
        },
    }


def _link_json(link: ChainLink) -> dict[str, Any]:
    return {"tier": link.tier, "role": link.role.value}


def _route_json(rule: RouteRule) -> dict[str, Any]:
    body: dict[str, Any] = {"name": rule.name}
    if rule.categories:
        body["categories"] = [c.value for c in TicketCategory if c in rule.categories]
    if rule.kinds:
        body["kinds"] = [k.value for k in HandlingKind if k in rule.kinds]
    if rule.grids:
        body["grids"] = list(rule.grids)
    body["to"] = _link_json(rule.to)
    body["inform"] = rule.inform.value
    if rule.department is not None:
        body["department"] = rule.department
    if rule.assist:
        body["assist"] = list(rule.assist)
    return body


def _kind_json(kind: KindPolicy) -> dict[str, Any]:
    body: dict[str, Any] = {
        "round_the_clock": kind.round_the_clock,
        "public_notice": kind.public_notice,
    }
    if kind.public_notice or kind.notice_period != DEFAULT_NOTICE_PERIOD:
        body["notice_period"] = str(kind.notice_period)
    if kind.verify:
        body["verify"] = True
    body["cap"] = None if kind.cap is None else str(kind.cap)
    body["tiers"] = {
        str(tier): {"accept": str(w.accept), "resolve": str(w.resolve)}
        for tier, w in sorted(kind.tiers.items(), reverse=True)
    }
    return body
