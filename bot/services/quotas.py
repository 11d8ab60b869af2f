"""Visit quotas (走访任务): the rules, and the engine that says who is still due.

**Rules are data** (:class:`~models.QuotaRule`): *which households* (all, key, ordinary, or
one of the six categories), *what counts* (any contact, a home visit, a policy micro-lecture),
*how often* (calendar month, quarter or year in the community's time zone) and *how many*.
:func:`ensure_default_rules` installs the four of 方案1 §2 (DOMAIN.md §4). A change applies
from the current period on: the old rule ends (``valid_until``) where the current period
starts and its successor begins there, so a past period is still judged by the rule that
applied then.

**The engine** reads one :class:`~models.VisitTally` row per household and period — kept
current by :mod:`bot.services.visits` — so "who is still due" is households LEFT JOIN that
row, one set-based query for every worker at once (no query per worker or per household).
Every engine function takes ``now`` and, keyword-only, ``tz`` (pass ``settings.tz``; the
default is the settings' default, Asia/Shanghai).

Typical calls::

    await ensure_default_rules(session, now, tz=settings.tz)          # at start-up
    items = await due_pairs(session, now, worker_ids=[me.id], tz=tz)  # /due
    rows = await progress(session, now, by="worker", scope_path=head_grid.path, tz=tz)
    plans = await plan_daily_push(session, now, calendar.is_workday, tz=tz)  # morning job
    for worker_id, plan in plans.items():
        if await claim_daily_push(session, worker_id, plan.local_day, now):
            ...  # enqueue the push in the same transaction
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from enum import StrEnum
from functools import cache
from itertools import groupby
from operator import itemgetter
from typing import Any, Literal, NamedTuple

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Integer,
    String,
    Table,
    and_,
    any_,
    case,
    false,
    func,
    literal,
    or_,
    select,
    text,
    true,
    type_coerce,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col
from sqlmodel import select as orm_select
from sqlmodel.ext.asyncio.session import AsyncSession

import models
from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.i18n import N_, gettext_for
from bot.labels import HOUSEHOLD_CATEGORY, VISIT_KIND
from bot.services.people import RoleInGrid
from bot.services.periods import (
    DEFAULT_TZ,
    IsWorkday,
    Period,
    PeriodKind,
    is_weekday,
    local_day,
    period_of,
    periods_of,
    working_days_left,
)
from bot.services.permissions import GRID_PATH, ROLE_ACTIONS, Action
from bot.settings import LOCALES
from models import AuditLog, DailyPush, Grid, HouseholdCategory, Person, QuotaRule, VisitKind
from models.types import UTCDateTime

MAX_REQUIRED = 100  # visits a rule may ask for in one period
MAX_RULE_NAME = 100  # QuotaRule.name
REMINDER_WORKING_DAYS = 5  # "five working days before a period ends"
_ECHO = 24  # characters of a refused input quoted back in the error message
_RULES_LOCK = 0x51554F54  # pg_advisory_xact_lock key for installing the defaults ("QUOT")

HOUSEHOLD: Table = models.metadata.tables["household"]
TALLY: Table = models.metadata.tables["visit_tally"]


class RuleHouseholds(StrEnum):
    """Which households a rule covers (``QuotaRule.households``)."""

    ALL = "all"  # every contact household (联系户)
    KEY = "key"  # 重点户
    ORDINARY = "ordinary"  # 普通户: not key
    CATEGORY = "category"  # one of the six categories (六类户), in ``QuotaRule.category``


class RuleCounts(StrEnum):
    """What a rule counts (``QuotaRule.counts``), and the tally column that holds it."""

    ANY = "any"  # any contact: phone, home visit, lecture, WeChat …
    IN_PERSON = "in_person"  # 入户走访
    LECTURE = "lecture"  # 政策微宣讲
    # 政策微宣讲, a broadcast that reached the household counting as one (群发宣传)
    LECTURE_OR_BROADCAST = "lecture_bc"

    @property
    def tally_columns(self) -> tuple[str, ...]:
        """The tally columns whose sum the rule counts."""
        return {
            "any": ("contacts",),
            "in_person": ("in_person",),
            "lecture": ("lectures",),
            "lecture_bc": ("lectures", "broadcasts"),
        }[self.value]


@dataclass(frozen=True)
class RuleSpec:
    """What a rule asks, without its name and validity."""

    households: RuleHouseholds
    counts: RuleCounts
    period: PeriodKind
    required: int = 1
    category: int = 0  # a HouseholdCategory flag when households is CATEGORY


DEFAULT_RULES: tuple[tuple[str, RuleSpec], ...] = (
    (
        N_("Monthly contact with every household"),
        RuleSpec(RuleHouseholds.ALL, RuleCounts.ANY, PeriodKind.MONTH),
    ),
    (
        N_("Monthly home visit to key households"),
        RuleSpec(RuleHouseholds.KEY, RuleCounts.IN_PERSON, PeriodKind.MONTH),
    ),
    (
        N_("Quarterly policy micro-lecture for every household"),
        RuleSpec(RuleHouseholds.ALL, RuleCounts.LECTURE, PeriodKind.QUARTER),
    ),
    (
        N_("Quarterly home visit to ordinary households"),
        RuleSpec(RuleHouseholds.ORDINARY, RuleCounts.IN_PERSON, PeriodKind.QUARTER),
    ),
)
"""方案1 §2: the four rules a new installation starts with (names are catalog msgids)."""

HOUSEHOLDS_LABEL: dict[RuleHouseholds, str] = {
    RuleHouseholds.ALL: N_("every household"),
    RuleHouseholds.KEY: N_("key households"),
    RuleHouseholds.ORDINARY: N_("ordinary households"),
}
COUNTS_LABEL: dict[RuleCounts, str] = {
    RuleCounts.ANY: N_("contact of any kind"),
    RuleCounts.IN_PERSON: VISIT_KIND[VisitKind.IN_PERSON],
    RuleCounts.LECTURE: VISIT_KIND[VisitKind.LECTURE],
    RuleCounts.LECTURE_OR_BROADCAST: N_("policy micro-lecture or a broadcast that reached it"),
}
RULE_SENTENCE: dict[PeriodKind, str] = {
    PeriodKind.MONTH: N_("{households}: at least {required} × {counts} a month"),
    PeriodKind.QUARTER: N_("{households}: at least {required} × {counts} a quarter"),
    PeriodKind.YEAR: N_("{households}: at least {required} × {counts} a year"),
}


# --- reading rules -----------------------------------------------------------------------------


def in_force(rule: QuotaRule, period: Period) -> bool:
    """Whether ``rule`` judges ``period`` (a period of the rule's own kind)."""
    return rule.valid_from <= period.start and (
        rule.valid_until is None or period.start < rule.valid_until
    )


def rules_in_force(rules: Iterable[QuotaRule], instant: datetime, tz: tzinfo) -> list[QuotaRule]:
    """The rules that judge the periods containing ``instant``."""
    periods = periods_of(instant, tz)
    return [r for r in rules if in_force(r, periods[PeriodKind(r.period)])]


def applies_to(rule: QuotaRule, *, is_key: bool, categories: int) -> bool:
    """Whether ``rule`` covers a household with these flags (the pure twin of the SQL)."""
    households = RuleHouseholds(rule.households)
    if households is RuleHouseholds.KEY:
        return is_key
    if households is RuleHouseholds.ORDINARY:
        return not is_key
    if households is RuleHouseholds.CATEGORY:
        return bool(categories & rule.category)
    return True


def counts_toward(kind: VisitKind, rule: QuotaRule) -> bool:
    """Whether a visit of ``kind`` counts for ``rule`` (a lecture is not a home visit)."""
    counts = RuleCounts(rule.counts)
    if counts is RuleCounts.IN_PERSON:
        return kind is VisitKind.IN_PERSON
    if counts in (RuleCounts.LECTURE, RuleCounts.LECTURE_OR_BROADCAST):
        return kind is VisitKind.LECTURE
    return True


def rule_name(rule: QuotaRule, locale: str) -> str:
    """The rule's name in ``locale`` (default rules are named by catalog msgids)."""
    return gettext_for(locale, rule.name)


def describe_rule(rule: QuotaRule, locale: str) -> str:
    """What the rule asks, e.g. "重点户：每月至少 1 次入户走访"."""
    households = RuleHouseholds(rule.households)
    if households is RuleHouseholds.CATEGORY:
        group = gettext_for(locale, HOUSEHOLD_CATEGORY[HouseholdCategory(rule.category)])
    else:
        group = gettext_for(locale, HOUSEHOLDS_LABEL[households])
    return gettext_for(
        locale,
        RULE_SENTENCE[PeriodKind(rule.period)],
        households=group,
        required=rule.required,
        counts=gettext_for(locale, COUNTS_LABEL[RuleCounts(rule.counts)]),
    )


async def list_rules(
    session: AsyncSession, now: datetime, *, tz: tzinfo = DEFAULT_TZ, history: bool = False
) -> list[QuotaRule]:
    """The rules in force at ``now`` (with ``history``: every rule ever, ended ones too)."""
    rules = list((await session.exec(orm_select(QuotaRule).order_by(col(QuotaRule.id)))).all())
    return rules if history else rules_in_force(rules, now, tz)


# --- changing rules ----------------------------------------------------------------------------


async def ensure_default_rules(
    session: AsyncSession, now: datetime, *, tz: tzinfo = DEFAULT_TZ
) -> list[QuotaRule]:
    """Install the four default rules if no rule was ever made; return the rules in force.

    Idempotent, also with two processes starting at once (SQLite serialises writers; on
    PostgreSQL a transaction-scoped advisory lock does). The defaults apply from the current
    period of each; an administrator who retired a default does not get it back.
    """
    if session.get_bind().dialect.name == "postgresql":
        connection = await session.connection()
        await connection.execute(select(func.pg_advisory_xact_lock(_RULES_LOCK)))
    if (await session.exec(orm_select(QuotaRule.id).limit(1))).first() is None:
        for name, spec in DEFAULT_RULES:
            session.add(_new_rule(name, spec, now, tz, created_by=None))
        await session.flush()
    return await list_rules(session, now, tz=tz)


def draft_rule(
    admin: Person,
    roles: Sequence[RoleInGrid],
    now: datetime,
    *,
    name: str,
    households: str,
    counts: str,
    period: str,
    required: str | int,
    tz: tzinfo = DEFAULT_TZ,
) -> QuotaRule:
    """The rule :func:`add_rule` would add, not saved: for the "add this rule?" question.

    Checks and parses exactly as :func:`add_rule` does (it is what :func:`add_rule` calls).
    """
    _authorize_rules(admin, roles, now, None)
    group, category = parse_households(households)
    spec = RuleSpec(
        households=group,
        category=category,
        counts=parse_counts(counts),
        period=parse_period(period),
        required=parse_required(required),
    )
    return _new_rule(parse_rule_name(name), spec, now, tz, created_by=admin.id)


async def add_rule(
    session: AsyncSession,
    admin: Person,
    roles: Sequence[RoleInGrid],
    now: datetime,
    *,
    name: str,
    households: str,
    counts: str,
    period: str,
    required: str | int,
    tz: tzinfo = DEFAULT_TZ,
) -> QuotaRule:
    """Add a rule from an administrator's (untrusted) words; it applies from this period.

    ``households`` is ``all``/``key``/``ordinary`` or a category (``空巢老人``, ``empty_nest``
    …), ``counts`` ``any``/``in_person``/``lecture`` (or 联系/入户/微宣讲), ``period``
    ``month``/``quarter``/``year`` (or 月/季度/年). Raises :class:`InvalidInput` on anything
    else, :class:`NotAllowed` unless ``admin`` manages the whole area.
    """
    rule = draft_rule(
        admin,
        roles,
        now,
        name=name,
        households=households,
        counts=counts,
        period=period,
        required=required,
        tz=tz,
    )
    session.add(rule)
    await session.flush()
    session.add(_rule_audit(admin, "quota_rule:add", rule, now, {"spec": _spec_data(rule)}))
    return rule


async def change_rule(
    session: AsyncSession,
    admin: Person,
    roles: Sequence[RoleInGrid],
    rule_id: int,
    now: datetime,
    *,
    required: str | int | None = None,
    households: str | None = None,
    counts: str | None = None,
    period: str | None = None,
    name: str | None = None,
    tz: tzinfo = DEFAULT_TZ,
) -> QuotaRule:
    """Change a rule from the current period on; return its successor.

    The rule in force ends where its current period starts (``valid_until``) and a new rule
    with the changes begins at the start of *its* current period, so the periods already past
    keep the rule that applied then. Arguments left ``None`` are kept. Every argument is
    parsed like :func:`add_rule`'s; a change that changes nothing is refused.
    """
    _authorize_rules(admin, roles, now, rule_id)
    old = await session.get(QuotaRule, rule_id)
    if old is None:
        raise NotFound(N_("There is no visit rule number {rule}."), rule=rule_id)
    current = period_of(PeriodKind(old.period), now, tz)
    if not in_force(old, current):
        raise InvalidInput(N_("Visit rule {rule} is no longer in force."), rule=rule_id)
    group, category = (
        (RuleHouseholds(old.households), old.category)
        if households is None
        else parse_households(households)
    )
    spec = RuleSpec(
        households=group,
        category=category,
        counts=RuleCounts(old.counts) if counts is None else parse_counts(counts),
        period=PeriodKind(old.period) if period is None else parse_period(period),
        required=old.required if required is None else parse_required(required),
    )
    new_name = old.name if name is None else parse_rule_name(name)
    if spec == _spec_of(old) and new_name == old.name:
        raise InvalidInput(N_("That is what visit rule {rule} already says."), rule=rule_id)
    old.valid_until = current.start
    session.add(old)
    rule = _new_rule(new_name, spec, now, tz, created_by=admin.id)
    session.add(rule)
    await session.flush()
    audit = _rule_audit(
        admin,
        "quota_rule:change",
        rule,
        now,
        {"replaces": old.id, "before": _spec_data(old), "after": _spec_data(rule)},
    )
    session.add(audit)
    return rule


async def rule_to_retire(
    session: AsyncSession,
    admin: Person,
    roles: Sequence[RoleInGrid],
    rule_id: int,
    now: datetime,
    *,
    tz: tzinfo = DEFAULT_TZ,
) -> QuotaRule:
    """The rule :func:`retire_rule` would end, checked the same way: for the question."""
    _authorize_rules(admin, roles, now, rule_id)
    rule = await session.get(QuotaRule, rule_id)
    if rule is None:
        raise NotFound(N_("There is no visit rule number {rule}."), rule=rule_id)
    current = period_of(PeriodKind(rule.period), now, tz)
    if not in_force(rule, current):
        raise InvalidInput(N_("Visit rule {rule} is no longer in force."), rule=rule_id)
    return rule


async def retire_rule(
    session: AsyncSession,
    admin: Person,
    roles: Sequence[RoleInGrid],
    rule_id: int,
    now: datetime,
    *,
    tz: tzinfo = DEFAULT_TZ,
) -> QuotaRule:
    """End a rule where its current period starts: from this period on it asks nothing."""
    rule = await rule_to_retire(session, admin, roles, rule_id, now, tz=tz)
    rule.valid_until = period_of(PeriodKind(rule.period), now, tz).start
    session.add(rule)
    session.add(_rule_audit(admin, "quota_rule:retire", rule, now, {"spec": _spec_data(rule)}))
    return rule


def _authorize_rules(
    admin: Person, roles: Sequence[RoleInGrid], now: datetime, rule_id: int | None
) -> None:
    """Rules hold for the whole area: only someone who manages a root grid may change them."""
    allowed = admin.active and any(
        Action.MANAGE in ROLE_ACTIONS[r.role]
        and GRID_PATH.fullmatch(r.grid_path) is not None
        and r.grid_path.count("/") == 2
        for r in roles
    )
    if not allowed:
        refusal = AuditLog(
            at=now,
            actor_id=admin.id,
            action=f"refused:{Action.MANAGE.value}",
            object_type="quota_rule",
            object_id=rule_id,
        )
        raise NotAllowed(
            N_("Only an administrator of the whole area can change the visit rules."),
            audit=refusal,
        )


def _new_rule(
    name: str, spec: RuleSpec, now: datetime, tz: tzinfo, created_by: int | None
) -> QuotaRule:
    return QuotaRule(
        name=name,
        households=spec.households.value,
        category=spec.category,
        counts=spec.counts.value,
        period=spec.period.value,
        required=spec.required,
        valid_from=period_of(spec.period, now, tz).start,
        created_by=created_by,
        created_at=now,
    )


def _spec_of(rule: QuotaRule) -> RuleSpec:
    return RuleSpec(
        households=RuleHouseholds(rule.households),
        category=rule.category,
        counts=RuleCounts(rule.counts),
        period=PeriodKind(rule.period),
        required=rule.required,
    )


def _spec_data(rule: QuotaRule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "households": rule.households,
        "category": rule.category,
        "counts": rule.counts,
        "period": rule.period,
        "required": rule.required,
        "valid_from": rule.valid_from.isoformat(),
    }


def _rule_audit(
    admin: Person, action: str, rule: QuotaRule, now: datetime, data: dict[str, Any]
) -> AuditLog:
    return AuditLog(
        at=now,
        actor_id=admin.id,
        action=action,
        object_type="quota_rule",
        object_id=rule.id,
        data=data,
    )


# --- parsing an administrator's words ----------------------------------------------------------

_CONTROL = {"Cc", "Cs", "Co", "Cn"}
_EDGE = {"Cf", "Zs", "Zl", "Zp"}


def clean_text(value: str) -> str:
    """Text as people meant it: no control, surrogate or unassigned characters, no blank
    or invisible edges, Windows line ends made plain. Tabs and line breaks inside stay."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    kept = "".join(ch for ch in value if ch in "\n\t" or unicodedata.category(ch) not in _CONTROL)
    start, end = 0, len(kept)
    while start < end and _blank(kept[start]):
        start += 1
    while end > start and _blank(kept[end - 1]):
        end -= 1
    return kept[start:end]


def _blank(ch: str) -> bool:
    return ch.isspace() or unicodedata.category(ch) in _EDGE


def echo(value: object) -> str:
    """A refused input, short enough to quote back."""
    text = clean_text(str(value)).replace("\n", " ")
    return text if len(text) <= _ECHO else text[: _ECHO - 1] + "…"


def _key(value: str) -> str:
    """Compare words loosely: full-width folded, case-folded, no spaces or dashes, no 户."""
    text = unicodedata.normalize("NFKC", value).casefold()
    text = re.sub(r"[\s\-_/·、,，.。()（）]+", "", text)
    return text.removesuffix("户").removesuffix("戶")


_HOUSEHOLD_WORDS: dict[str, str] = {
    "all": "all every everyone allhouseholds everyhousehold 全部 所有 每户 每戶 联系 聯繫 联系户",
    "key": "key keyhouseholds 重点 重點 重点户 重點戶 六类 六類",
    "ordinary": "ordinary ordinaryhouseholds normal 普通 一般 普通户",
}
_CATEGORY_WORDS: dict[HouseholdCategory, str] = {
    HouseholdCategory.SUBSISTENCE: "低保五保 低保 五保 低保戶 五保戶",
    HouseholdCategory.ILLNESS_DISABILITY: "重病重残 重病重殘 重病 重残 重殘 残疾 殘疾",
    HouseholdCategory.POVERTY_RISK: "易返贫致贫 易返貧致貧 易返贫 易返貧 致贫 致貧 返贫 返貧",
    HouseholdCategory.EMPTY_NEST: "空巢老人 空巢 空巢老人戶",
    HouseholdCategory.LEFT_BEHIND_CHILDREN: "留守儿童 留守兒童 留守",
    HouseholdCategory.MILITARY_MARTYR: "烈属军属 烈屬軍屬 烈属 烈屬 军属 軍屬 军烈属 軍烈屬",
}
_COUNTS_WORDS: dict[RuleCounts, str] = {
    RuleCounts.ANY: "any anycontact contact contacts 任意 任何 联系 聯繫 联络 聯絡 任意联系",
    RuleCounts.IN_PERSON: "inperson homevisit visit 入户 入戶 上门 上門 走访 走訪 入户走访 面访",
    RuleCounts.LECTURE: "lecture microlecture policylecture 微宣讲 微宣講 宣讲 宣講",
    RuleCounts.LECTURE_OR_BROADCAST: (
        "lecture_bc lectureorbroadcast broadcast 微宣讲或群发 微宣講或群發 群发宣传 群發宣傳 "
        "含群发 含群發 群发 群發"
    ),
}
_PERIOD_WORDS: dict[PeriodKind, str] = {
    PeriodKind.MONTH: "month monthly 月 每月 月度 每个月 每個月",
    PeriodKind.QUARTER: "quarter quarterly 季 季度 每季 每季度",
    PeriodKind.YEAR: "year yearly annual annually 年 年度 每年",
}


@cache
def _aliases() -> dict[str, dict[str, Any]]:
    """Every word an administrator may use, keyed loosely, per vocabulary."""

    def words(table: dict[Any, str]) -> dict[str, Any]:
        return {_key(word): value for value, text in table.items() for word in text.split()}

    def labels(table: dict[Any, str]) -> dict[str, Any]:
        return {
            _key(gettext_for(locale, msgid)): value
            for value, msgid in table.items()
            for locale in LOCALES
        }

    categories = {
        **{_key(c.name or ""): c for c in HouseholdCategory},
        **labels(HOUSEHOLD_CATEGORY),
        **words(_CATEGORY_WORDS),
    }
    households: dict[str, Any] = {
        **labels(HOUSEHOLDS_LABEL),
        **words({RuleHouseholds(k): v for k, v in _HOUSEHOLD_WORDS.items()}),
        **{word: (RuleHouseholds.CATEGORY, c) for word, c in categories.items()},
    }
    for word, value in list(households.items()):
        if isinstance(value, RuleHouseholds):
            households[word] = (value, 0)
    return {
        "households": households,
        "counts": {**labels(COUNTS_LABEL), **words(_COUNTS_WORDS)},
        "period": words(_PERIOD_WORDS),
    }


def parse_households(text: str) -> tuple[RuleHouseholds, int]:
    """``all``/``key``/``ordinary`` or a category name → (group, category flag)."""
    found = _aliases()["households"].get(_key(text)) if text.strip() else None
    if found is None:
        raise InvalidInput(
            N_(
                "I do not know the household group “{value}”. Use all, key, ordinary, "
                "or a category such as empty-nest elderly."
            ),
            value=echo(text),
        )
    group, category = found
    return group, int(category)


def parse_counts(text: str) -> RuleCounts:
    found = _aliases()["counts"].get(_key(text)) if text.strip() else None
    if found is None:
        raise InvalidInput(
            N_(
                "I do not know the kind of visit “{value}”. Use any contact, home visit, "
                "micro-lecture, or micro-lecture or broadcast."
            ),
            value=echo(text),
        )
    return RuleCounts(found)


def parse_period(text: str) -> PeriodKind:
    found = _aliases()["period"].get(_key(text)) if text.strip() else None
    if found is None:
        raise InvalidInput(
            N_("I do not know the period “{value}”. Use month, quarter or year."),
            value=echo(text),
        )
    return PeriodKind(found)


_COUNT = re.compile(r"[0-9]{1,6}")


def parse_required(value: str | int) -> int:
    """How many visits a rule asks: a whole number 1–:data:`MAX_REQUIRED` ("3", "３", "3次")."""
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    else:
        text = unicodedata.normalize("NFKC", value).strip().removesuffix("次").strip()
        number = int(text) if _COUNT.fullmatch(text) else None
    if number is None or not 1 <= number <= MAX_REQUIRED:
        raise InvalidInput(
            N_("The number of visits must be a whole number from 1 to {max}, not “{value}”."),
            max=MAX_REQUIRED,
            value=echo(value),
        )
    return number


def parse_rule_name(text: str) -> str:
    name = " ".join(clean_text(text).split())
    if not name:
        raise InvalidInput(N_("Please give the rule a name."))
    if len(name) > MAX_RULE_NAME:
        raise InvalidInput(
            N_("The rule name is too long: {length} characters, at most {limit}."),
            length=len(name),
            limit=MAX_RULE_NAME,
        )
    return name


# --- the engine --------------------------------------------------------------------------------


class DueItem(NamedTuple):
    """A household that still owes a rule something in the current period."""

    household_id: int
    worker_id: int | None
    rule_id: int
    done: int  # visits of the counted kind so far in the period
    required: int
    is_key: bool


@dataclass(frozen=True)
class ProgressCell:
    """One rule's standing over a group of households: how many met it so far."""

    rule_id: int
    rule_name: str  # a msgid for the default rules: translate with :func:`rule_name`
    period: PeriodKind
    period_start: date
    households: int  # households the rule covers
    fulfilled: int  # of those, how many have had the visits it asks

    @property
    def missing(self) -> int:
        return self.households - self.fulfilled


@dataclass(frozen=True)
class Progress:
    """One worker's (or one grid's) row of the /quota table: a cell per rule in force."""

    subject_id: int | None  # worker id (None: households with no worker) or grid id
    subject_name: str | None
    cells: tuple[ProgressCell, ...]


class Suggestion(NamedTuple):
    """A household suggested for today's rounds."""

    household_id: int
    code: str
    head_name: str
    address: str
    is_key: bool
    overdue: bool  # no contact at all in the previous period of a rule it owes
    rule_ids: tuple[int, ...]  # the rules it still owes
    last_visit_at: datetime | None


class Horizon(NamedTuple):
    """Households a worker still owes by one period end, and the working days left for them."""

    last_day: date
    working_days_left: int
    households: int


@dataclass(frozen=True)
class WorkerPlan:
    """Today's task push (每日任务) of one worker."""

    worker_id: int
    local_day: date
    due_households: int  # households still owing something
    target_today: int  # the remaining work spread over the working days left
    horizons: tuple[Horizon, ...]
    suggestions: tuple[Suggestion, ...]  # target_today of them, key and overdue first


@dataclass(frozen=True)
class Shortfall:
    rule_id: int
    rule_name: str
    households: int  # still owing the rule


@dataclass(frozen=True)
class ShortWorker:
    """A worker still short of quota with few working days left (the reminder)."""

    worker_id: int
    last_day: date  # the last day of the period(s) ending
    working_days_left: int
    shortfalls: tuple[Shortfall, ...]


@dataclass
class _Query:
    """The rules in force and the tally rows they read, as SQL pieces over ``household``."""

    rules: list[QuotaRule]
    periods: dict[PeriodKind, Period]
    source: FromClause
    tallies: dict[PeriodKind, FromClause]

    def applies(self, rule: QuotaRule) -> ColumnElement[bool]:
        h = HOUSEHOLD.c
        households = RuleHouseholds(rule.households)
        if households is RuleHouseholds.KEY:
            return h.is_key == true()
        if households is RuleHouseholds.ORDINARY:
            return h.is_key == false()
        if households is RuleHouseholds.CATEGORY:
            return h.categories.op("&")(rule.category) != 0
        return true()

    def counter(self, rule: QuotaRule) -> ColumnElement[int]:
        tally = self.tallies[PeriodKind(rule.period)]
        columns = RuleCounts(rule.counts).tally_columns
        total: ColumnElement[int] = func.coalesce(tally.c[columns[0]], 0)
        for column in columns[1:]:  # a broadcast counted as a lecture (lecture_bc)
            total = total + func.coalesce(tally.c[column], 0)
        return total

    def due(self, rule: QuotaRule) -> ColumnElement[bool]:
        owing = self.counter(rule) < rule.required
        if RuleHouseholds(rule.households) is RuleHouseholds.ALL:
            return owing
        return and_(self.applies(rule), owing)

    def any_due(self) -> ColumnElement[bool]:
        return or_(false(), *(self.due(r) for r in self.rules))

    def owed_mask(self) -> ColumnElement[int]:
        """Bit ``i`` set where the household owes ``rules[i]``: one column for all rules."""
        mask: ColumnElement[int] = literal(0)
        for i, rule in enumerate(self.rules):
            mask = mask + case((self.due(rule), 1 << i), else_=0)
        return mask


def _query(rules: list[QuotaRule], periods: dict[PeriodKind, Period], prefix: str) -> _Query:
    """Join ``household`` to the one tally row per period kind the rules read."""
    source: FromClause = HOUSEHOLD
    tallies: dict[PeriodKind, FromClause] = {}
    for kind in PeriodKind:
        if not any(r.period == kind.value for r in rules):
            continue
        tally = TALLY.alias(f"{prefix}_{kind.value}")
        source = source.outerjoin(
            tally,
            and_(
                tally.c.household_id == HOUSEHOLD.c.id,
                tally.c.period == kind.value,
                tally.c.period_start == periods[kind].start,
            ),
        )
        tallies[kind] = tally
    return _Query(rules, periods, source, tallies)


async def _current(session: AsyncSession, now: datetime, tz: tzinfo) -> _Query:
    rules = await list_rules(session, now, tz=tz)
    return _query(rules, periods_of(now, tz), "t")


def _scope(worker_ids: Sequence[int] | None, grid_path: str | None) -> list[ColumnElement[bool]]:
    h = HOUSEHOLD.c
    where: list[ColumnElement[bool]] = []
    if worker_ids is not None:
        where.append(h.worker_id.in_(list(worker_ids)))
    if grid_path is not None:
        if not re.fullmatch(r"(/[0-9]+)+/", grid_path):
            raise ValueError(f"not a grid path: {grid_path!r}")
        subtree = select(col(Grid.id)).where(col(Grid.path).startswith(grid_path))
        where.append(h.grid_id.in_(subtree))
    return where


async def _engine_connection(session: AsyncSession) -> AsyncConnection:
    """The session's connection, flushed, for one of the engine's set-based reads.

    On PostgreSQL, JIT compilation is switched off for the rest of the transaction: the
    planner's cost estimate for these second-long reads crosses the JIT thresholds, and LLVM
    then spent longer compiling than the query took to run (measured: 8 s of JIT for a 6 s
    plan at 300,000 households).
    """
    await session.flush()
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        await connection.execute(text("SET LOCAL jit = off"))
    return connection


async def due_pairs(
    session: AsyncSession,
    now: datetime,
    *,
    worker_ids: Sequence[int] | None = None,
    grid_path: str | None = None,
    tz: tzinfo = DEFAULT_TZ,
) -> list[DueItem]:
    """Every (household, rule) pair still owing visits in the current periods.

    One query over all households (or those of ``worker_ids`` / the subtree ``grid_path``),
    each joined to its tally row of the current month / quarter / year. Unordered.
    """
    query = await _current(session, now, tz)
    if not query.rules:
        return []
    h = HOUSEHOLD.c
    # which rules a household owes, as bits of one column; the count so far only for rules
    # asking more than one visit (owing a one-visit rule means none was made)
    counted = [rule for rule in query.rules if rule.required > 1]
    statement = (
        select(
            h.id,
            h.worker_id,
            h.is_key,
            query.owed_mask(),
            *(query.counter(rule) for rule in counted),
        )
        .select_from(query.source)
        .where(query.any_due(), *_scope(worker_ids, grid_path))
    )
    connection = await _engine_connection(session)
    # plain tuples, each Row object dropped as soon as it is read: 140,000 Rows held at once
    # cost more in the garbage collector's passes than in making them
    rows = [tuple(row) for row in await connection.execute(statement)]
    items: list[DueItem] = []
    new = tuple.__new__  # DueItem(...) without the Python-level __new__: 200,000 items add up
    for i, rule in enumerate(query.rules):
        bit, rule_id, required = 1 << i, rule.id or 0, rule.required
        if required == 1:
            items.extend(
                [
                    new(DueItem, (row[0], row[1], rule_id, 0, 1, row[2]))
                    for row in rows
                    if row[3] & bit
                ]
            )
        else:
            column = 4 + counted.index(rule)
            items.extend(
                [
                    new(DueItem, (row[0], row[1], rule_id, row[column], required, row[2]))
                    for row in rows
                    if row[3] & bit
                ]
            )
    return items


async def progress(
    session: AsyncSession,
    now: datetime,
    *,
    by: Literal["worker", "grid"],
    scope_path: str,
    worker_ids: Sequence[int] | None = None,
    tz: tzinfo = DEFAULT_TZ,
) -> list[Progress]:
    """The /quota table for the subtree ``scope_path``: per rule in force, households covered
    and households that met it, in the current month / quarter / year.

    ``by="worker"``: one row per worker (a head sees their workers side by side; a worker
    passes ``worker_ids=[own id]``), ordered by name. ``by="grid"``: one row per child grid
    of ``scope_path`` (the centre sees its grids side by side), ordered by grid code; the
    households attached to the scope grid itself form a row of their own.
    """
    query = await _current(session, now, tz)
    h = HOUSEHOLD.c
    group = h.worker_id if by == "worker" else h.grid_id
    columns: list[ColumnElement[Any]] = [group]
    for rule in query.rules:
        applies = query.applies(rule)
        met = query.counter(rule) >= rule.required
        columns.append(func.sum(case((applies, 1), else_=0)))
        columns.append(func.sum(case((and_(applies, met), 1), else_=0)))
    statement = (
        select(*columns)
        .select_from(query.source)
        .where(*_scope(worker_ids, scope_path))
        .group_by(group)
    )
    connection = await _engine_connection(session)
    counts: dict[int | None, list[int]] = {
        row[0]: [int(value or 0) for value in row[1:]]
        for row in await connection.execute(statement)
    }
    if by == "worker":
        names = await _person_names(session, [k for k in counts if k is not None])
        keyed = sorted(
            counts.items(), key=lambda kv: (kv[0] is None, names.get(kv[0]) or "", kv[0] or 0)
        )
        heads = _rule_heads(query)
        return [
            Progress(subject, names.get(subject), _cells(heads, values))
            for subject, values in keyed
        ]
    return await _by_child_grid(session, query, scope_path, counts)


_RuleHead = tuple[int, str, PeriodKind, date]  # a rule's id, name, period, period start


def _rule_heads(query: _Query) -> list[_RuleHead]:
    """What every cell of a rule shares, worked out once (not once a worker)."""
    return [
        (
            rule.id or 0,
            rule.name,
            PeriodKind(rule.period),
            query.periods[PeriodKind(rule.period)].start,
        )
        for rule in query.rules
    ]


def _cells(heads: Sequence[_RuleHead], values: Sequence[int]) -> tuple[ProgressCell, ...]:
    return tuple(
        ProgressCell(rule_id, name, period, start, values[2 * i], values[2 * i + 1])
        for i, (rule_id, name, period, start) in enumerate(heads)
    )


async def _person_names(session: AsyncSession, ids: list[int]) -> dict[int | None, str]:
    if not ids:
        return {}
    rows = await session.exec(orm_select(Person.id, Person.name).where(col(Person.id).in_(ids)))
    return {person_id: name for person_id, name in rows}


async def _by_child_grid(
    session: AsyncSession,
    query: _Query,
    scope_path: str,
    counts: dict[int | None, list[int]],
) -> list[Progress]:
    grids = (
        await session.exec(
            orm_select(Grid.id, Grid.code, Grid.name, Grid.path).where(
                col(Grid.path).startswith(scope_path)
            )
        )
    ).all()
    by_id = {grid_id: (code, name, path) for grid_id, code, name, path in grids}
    width = 2 * len(query.rules)
    totals: dict[int, list[int]] = {}
    for grid_id, values in counts.items():
        if grid_id is None or grid_id not in by_id:
            continue
        below = by_id[grid_id][2][len(scope_path) :].split("/", 1)[0]
        child = int(below) if below else grid_id
        if child not in by_id:  # a gap in the stored paths: count it at the scope grid
            child = grid_id
        row = totals.setdefault(child, [0] * width)
        for i, value in enumerate(values):
            row[i] += value
    ordered = sorted(totals, key=lambda g: (by_id[g][2] == scope_path, by_id[g][0]))
    heads = _rule_heads(query)
    return [Progress(g, by_id[g][1], _cells(heads, totals[g])) for g in ordered]


async def plan_daily_push(
    session: AsyncSession,
    now: datetime,
    calendar_is_workday: IsWorkday | None = None,
    *,
    worker_ids: Sequence[int] | None = None,
    tz: tzinfo = DEFAULT_TZ,
) -> dict[int, WorkerPlan]:
    """Today's suggested visits for every worker who still owes any (每日任务推送).

    Each household still owing a rule is due by the end of the soonest period it owes; the
    households due by each period end, divided by the working days left until then (today
    included; Monday–Friday unless ``calendar_is_workday`` says otherwise), rounded up and
    added, make today's target. The target's households are picked key households first,
    then overdue ones (no contact at all in the previous period of a rule they owe), then
    the soonest deadline, then the longest since the last contact (never first).

    One query over all households, sorted by worker and that priority in the database (the
    target's first rows per worker are taken as they stream by), then one for the names and
    addresses of the chosen households. Workers owing nothing are absent from the
    result; so are households with no worker.
    """
    today = local_day(now, tz)
    every_rule = await list_rules(session, now, tz=tz, history=True)
    query = _query(rules_in_force(every_rule, now, tz), periods_of(now, tz), "t")
    if not query.rules:
        return {}
    check = calendar_is_workday or is_weekday
    ends = sorted({query.periods[PeriodKind(r.period)].end for r in query.rules})
    days = [max(1, working_days_left(_period_ending(query, end), today, check)) for end in ends]
    h = HOUSEHOLD.c
    horizon_cases = [
        (or_(*(query.due(r) for r in query.rules if _end(query, r) == end)), rank)
        for rank, end in enumerate(ends)
    ]
    horizon = case(*horizon_cases, else_=len(ends)) if len(ends) > 1 else literal(0)
    overdue = _overdue(query, every_rule).label("overdue")
    horizon_label = horizon.label("horizon")
    widest = query.tallies[max(query.tallies, key=list(PeriodKind).index)]
    # read as stored, and converted to a datetime for the chosen households only
    last_visit = type_coerce(widest.c.last_visit_at, String).label("last_visit")
    # ``worker_id + 0``: an expression, so that SQLite does not walk the worker index to
    # group the rows and then fetch every household out of order
    worker = (h.worker_id + 0).label("worker")
    statement = (
        select(
            worker,
            h.id,
            h.is_key,
            overdue,
            horizon_label,
            last_visit,
            query.owed_mask().label("owed"),
        )
        .select_from(query.source)
        .where(query.any_due(), *_scope(worker_ids, None))
        .order_by(
            worker,
            h.is_key.desc(),
            overdue.desc(),
            horizon_label,
            last_visit.asc().nulls_first(),
            h.id,
        )
    )
    connection = await _engine_connection(session)
    rows = await connection.execute(statement)
    # Streamed, keeping only plain tuples: the chosen rows, and one entry per worker. The
    # rows not chosen are dropped as they go by, so that the garbage collector's passes do
    # not walk 140,000 Row objects (nor a list per worker): that cost more than the query.
    chosen: list[tuple[Any, ...]] = []
    workers: list[tuple[int, int, tuple[int, ...], int]] = []  # worker, owing, counts, target
    for worker_id, group in groupby(rows, key=itemgetter(0)):
        if worker_id is None:
            continue
        owed = list(group)
        if len(ends) == 1:
            counts: tuple[int, ...] = (len(owed),)
        else:
            horizons = [row[4] for row in owed]
            counts = tuple(horizons.count(i) for i in range(len(ends)))
        target = sum(-(-n // d) for n, d in zip(counts, days, strict=True))
        chosen.extend(tuple(row) for row in owed[:target])
        workers.append((worker_id, len(owed), counts, min(target, len(owed))))
    # the names and addresses of the chosen households only: not sorted along with the rest
    labels = await _household_labels(connection, sorted(row[1] for row in chosen))
    as_time = (
        UTCDateTime().dialect_impl(connection.dialect).result_processor(connection.dialect, None)
    )
    last_days = [end - timedelta(days=1) for end in ends]
    owed_rules = _RuleIds(query.rules)
    plans: dict[int, WorkerPlan] = {}
    at = 0
    for worker_id, owing, counts, target in workers:
        best = chosen[at : at + target]
        at += target
        plans[worker_id] = WorkerPlan(
            worker_id=worker_id,
            local_day=today,
            due_households=owing,
            target_today=target,
            horizons=tuple(
                Horizon(last, d, n)
                for last, d, n in zip(last_days, days, counts, strict=True)
                if n
            ),
            suggestions=tuple(
                Suggestion(
                    row[1],
                    *labels[row[1]],
                    bool(row[2]),
                    bool(row[3]),
                    owed_rules[row[6]],
                    None if row[5] is None or as_time is None else as_time(row[5]),
                )
                for row in best
            ),
        )
    return plans


class _RuleIds(dict[int, tuple[int, ...]]):
    """The ids of the rules a household owes, by its owed-rules bit mask (filled as met)."""

    def __init__(self, rules: list[QuotaRule]) -> None:
        super().__init__()
        self.rules = rules

    def __missing__(self, mask: int) -> tuple[int, ...]:
        ids = tuple(rule.id or 0 for i, rule in enumerate(self.rules) if mask & 1 << i)
        self[mask] = ids
        return ids


async def _household_labels(
    connection: AsyncConnection, ids: list[int]
) -> dict[int, tuple[str, str, str]]:
    """Code, head of household and address of the given households, in one query with one
    parameter however many they are: an array on PostgreSQL, a JSON list on SQLite (no
    statement with tens of thousands of placeholders to render)."""
    h = HOUSEHOLD.c
    statement = select(h.id, h.code, h.head_name, h.address)
    if connection.dialect.name == "postgresql":
        statement = statement.where(h.id == any_(literal(ids, postgresql.ARRAY(Integer))))
    else:
        chosen = func.json_each(literal(json.dumps(ids))).table_valued("value")
        statement = statement.select_from(chosen).join(HOUSEHOLD, h.id == chosen.c.value)
    return {row[0]: (row[1], row[2], row[3]) for row in await connection.execute(statement)}


def _overdue(query: _Query, every_rule: list[QuotaRule]) -> ColumnElement[Any]:
    """1 where a household owes a rule of some kind (monthly, quarterly, yearly) now and had
    no contact at all in the previous such period, while a rule of that kind covered it.

    "No contact at all" is the absence of the tally row: a row exists only while the period
    counts a contact (see :mod:`bot.services.visits`), so this reads the key alone.
    """
    h = HOUSEHOLD.c
    cases: list[ColumnElement[bool]] = []
    for kind, period in query.periods.items():
        owing = [r for r in query.rules if r.period == kind.value]
        before = period.previous()
        covered = [r for r in every_rule if r.period == kind.value and in_force(r, before)]
        if not owing or not covered:
            continue
        earlier = TALLY.alias(f"p_{kind.value}")
        contacted = (
            select(earlier.c.household_id)
            .where(
                earlier.c.household_id == h.id,
                earlier.c.period == kind.value,
                earlier.c.period_start == before.start,
            )
            .exists()
        )
        cases.append(
            and_(
                or_(*(query.due(r) for r in owing)),
                or_(*(query.applies(r) for r in covered)),
                ~contacted,
            )
        )
    return case((or_(*cases), 1), else_=0) if cases else literal(0)


def _end(query: _Query, rule: QuotaRule) -> date:
    return query.periods[PeriodKind(rule.period)].end


def _period_ending(query: _Query, end: date) -> Period:
    """The shortest current period that ends on ``end``."""
    return next(p for p in query.periods.values() if p.end == end)


async def short_workers(
    session: AsyncSession,
    now: datetime,
    calendar_is_workday: IsWorkday | None = None,
    *,
    working_days: int = REMINDER_WORKING_DAYS,
    tz: tzinfo = DEFAULT_TZ,
) -> list[ShortWorker]:
    """Workers still short of a rule whose period has ``working_days`` working days left.

    Meant for a daily job: it answers only on the working day from which exactly that many
    working days remain (today included) in the month, quarter or year of some rule, and then
    lists every worker with households still owing those rules (one grouped query).
    """
    today = local_day(now, tz)
    check = calendar_is_workday or is_weekday
    if not check(today):
        return []
    query = await _current(session, now, tz)
    ending = [
        rule
        for rule in query.rules
        if working_days_left(query.periods[PeriodKind(rule.period)], today, check) == working_days
    ]
    if not ending:
        return []
    h = HOUSEHOLD.c
    statement = (
        select(h.worker_id, *(func.sum(case((query.due(r), 1), else_=0)) for r in ending))
        .select_from(query.source)
        .where(h.worker_id.is_not(None))
        .group_by(h.worker_id)
        .having(or_(*(func.sum(case((query.due(r), 1), else_=0)) > 0 for r in ending)))
        .order_by(h.worker_id)
    )
    connection = await _engine_connection(session)
    last_day = max(_end(query, r) for r in ending)
    return [
        ShortWorker(
            worker_id=row[0],
            last_day=last_day - timedelta(days=1),
            working_days_left=working_days,
            shortfalls=tuple(
                Shortfall(rule.id or 0, rule.name, int(row[i + 1]))
                for i, rule in enumerate(ending)
                if row[i + 1]
            ),
        )
        for row in await connection.execute(statement)
    ]


async def claim_daily_push(
    session: AsyncSession, worker_id: int, local_day: date, now: datetime, outcome: str = "sent"
) -> bool:
    """Mark the morning push of ``worker_id`` on ``local_day``; False if already marked.
    Enqueue the push in the same transaction."""
    claimed = await claim_daily_pushes(session, local_day, now, {worker_id: outcome})
    return worker_id in claimed


async def claim_daily_pushes(
    session: AsyncSession,
    local_day: date,
    now: datetime,
    outcomes: Mapping[int, str],
    contents: Mapping[int, dict[str, Any]] | None = None,
) -> set[int]:
    """Claim the morning push of each worker in ``outcomes`` (worker → outcome) for
    ``local_day``, with what it names (``contents``, worker → :attr:`DailyPush.content`);
    return the workers claimed by this call.

    One ``INSERT … ON CONFLICT DO NOTHING
    RETURNING`` executed for all rows (SQLAlchemy sends them in batches of many VALUES), so
    of two processes claiming the same push exactly one gets it.
    """
    if not outcomes:
        return set()
    table = models.metadata.tables[str(DailyPush.__tablename__)]
    statement = (
        dialect_insert(session, table)
        .on_conflict_do_nothing(index_elements=["worker_id", "day"])
        .returning(table.c.worker_id)
    )
    values = [
        {
            "worker_id": worker_id,
            "day": local_day,
            "created_at": now,
            "outcome": outcome,
            "content": (contents or {}).get(worker_id),
        }
        for worker_id, outcome in outcomes.items()
    ]
    await session.flush()
    connection = await session.connection()
    claimed = set((await connection.execute(statement, values)).scalars())
    return claimed


def dialect_insert(session: AsyncSession, table: Table) -> sqlite.Insert | postgresql.Insert:
    """An INSERT with the ``ON CONFLICT`` clauses of the session's database."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise RuntimeError(f"unsupported database: {name}")
