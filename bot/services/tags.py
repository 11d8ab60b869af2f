"""Person tags (人员标签): the groups that need follow-up, as data, and tagging people.

Tags are **data**, like the deadline, place-types and assessment policies: a JSON file an admin
downloads with ``/tags file``, edits and sends back with the caption ``/tags``. The newest
stored version applies; without one, :data:`DEFAULT_POLICY` does. The defaults follow the
seed: 方案13 and 方案5 (special groups followed by the grid with the police and the justice
office, 矫正帮教: 社区矫正, 刑满释放, 吸毒人员, 严重精神障碍), 方案14 (case management with
regular home visits for chronic disease, mild mental illness, rehabilitation and pregnant
women: 慢性病, 孕产妇, 残疾) and DOMAIN.md §3 (高龄独居 for empty-nest elderly, 留守儿童,
低保 — 民政 data collected regularly).

The file::

    {"version": 1,
     "tags": [
       {"key": "chronic", "name": "慢性病", "group": "health", "sensitivity": "sensitive",
        "follow_up": {"by": "worker", "with": "health", "period": "quarter", "times": 1},
        "form": [{"key": "bp", "label": "血压(mmHg)"},
                 {"key": "medication", "label": "服药", "options": ["规律", "间断", "未服"]}]},
       …]}

- ``group``: ``special`` (特殊人群), ``health`` (健康), ``minor`` (未成年人), ``welfare`` (民政).
- ``sensitivity``: ``sensitive`` (敏感个人信息: health, criminal record, minors, hardship) or
  ``personal``. Who sees a person's tags at all is the ``tags`` row of the personal-field
  table (:mod:`bot.services.personal_fields`); a ``sensitive`` tag is never named in the
  morning push or a reminder to anyone but the person who follows it up.
- ``follow_up``: who follows it up — ``worker``, the grid worker of the person's household
  (the one the visit engine plans for), with an optional partner department's code in
  ``with`` (``police`` 派出所/社区民警, ``justice`` 司法所, ``health`` 社区卫生服务站,
  ``civil_affairs`` 民政所), named on the worker's screens — and how often: ``times``
  follow-ups every calendar ``period`` (``month``, ``quarter``, ``year``), like a visit rule.
  ``null``: a marker only, nothing scheduled.
- ``form``: the tag's short record form, 1 to 5 answers; an answer with ``options`` is one of
  them (a number picks it), otherwise short free text.

Keys are short ASCII names and unique; unknown entries are refused, so a typo never silently
drops a cadence. The file is refused whole, with the reason, if any part of it is wrong; a tag
still on a person cannot be dropped.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.i18n import N_
from bot.services import policy_fields
from bot.services.people import RoleInGrid
from bot.services.periods import PeriodKind
from bot.services.permissions import Action, authorize
from models import (
    AuditLog,
    Grid,
    Household,
    HouseholdMember,
    Person,
    PersonTag,
    TagPolicyVersion,
)

MAX_POLICY_BYTES = 64 * 1024
MAX_TAGS = 40
MAX_FORM = 5
MAX_OPTIONS = 6
MAX_TIMES = 10
MAX_NAME = 20
MAX_LABEL = 30
MAX_OPTION = 20

GROUPS: tuple[str, ...] = ("special", "health", "minor", "welfare")
SENSITIVITIES: tuple[str, ...] = ("sensitive", "personal")
FOLLOWERS: tuple[str, ...] = ("worker",)
PERIODS: tuple[str, ...] = tuple(kind.value for kind in PeriodKind)


@dataclass(frozen=True)
class FormField:
    """One answer of a tag's short record form; ``options`` empty: free text."""

    key: str
    label: str
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class FollowUpCadence:
    """``times`` follow-ups by ``by`` every calendar ``period``, with ``partner`` named."""

    by: str
    period: PeriodKind
    times: int = 1
    partner: str | None = None  # a department's code (派出所, 司法所, 卫生服务站 …)


@dataclass(frozen=True)
class TagDef:
    """A kind of person tag (人员标签) with its cadence and short record form."""

    key: str
    name: str
    group: str
    sensitivity: str
    follow_up: FollowUpCadence | None
    form: tuple[FormField, ...]

    @property
    def sensitive(self) -> bool:
        return self.sensitivity == "sensitive"


@dataclass(frozen=True)
class TagPolicy:
    tags: tuple[TagDef, ...]

    def tag(self, key: str) -> TagDef | None:
        for tag in self.tags:
            if tag.key == key:
                return tag
        return None


def _form(*rows: tuple[str, str] | tuple[str, str, tuple[str, ...]]) -> tuple[FormField, ...]:
    return tuple(FormField(row[0], row[1], row[2] if len(row) == 3 else ()) for row in rows)


_SEEN = ("seen", "见面情况", ("见到本人", "未见到本人"))
_M, _Q = PeriodKind.MONTH, PeriodKind.QUARTER

DEFAULT_POLICY = TagPolicy(
    tags=(
        # 方案13 / 方案5: special groups, with the police and the justice office (矫正帮教)
        TagDef(
            "correction",
            "社区矫正",
            "special",
            "sensitive",
            FollowUpCadence("worker", _M, 1, "justice"),
            _form(
                ("present", "在位情况", ("在位", "外出已报备", "未见到本人")), ("mood", "思想动态")
            ),
        ),
        TagDef(
            "released",
            "刑满释放",
            "special",
            "sensitive",
            FollowUpCadence("worker", _Q, 1, "police"),
            _form(_SEEN, ("living", "就业和生活情况")),
        ),
        TagDef(
            "drug",
            "吸毒人员",
            "special",
            "sensitive",
            FollowUpCadence("worker", _M, 1, "police"),
            _form(_SEEN, ("state", "现实表现")),
        ),
        TagDef(
            "mental",
            "严重精神障碍",
            "special",
            "sensitive",
            FollowUpCadence("worker", _M, 1, "health"),
            _form(
                ("visit", "面访", ("入户见面，病情稳定", "入户见面，病情不稳定", "未见到本人")),
                ("medication", "服药", ("规律服药", "间断服药", "未服药")),
            ),
        ),
        # 方案14: case management with regular home visits (专案管理, 定期上门访视)
        TagDef(
            "chronic",
            "慢性病",
            "health",
            "sensitive",
            FollowUpCadence("worker", _Q, 1, "health"),
            _form(
                ("bp", "血压(mmHg)"),
                ("sugar", "血糖(mmol/L)"),
                ("medication", "服药", ("规律服药", "间断服药", "未服药")),
            ),
        ),
        TagDef(
            "maternal",
            "孕产妇",
            "health",
            "sensitive",
            FollowUpCadence("worker", _M, 1, "health"),
            _form(("stage", "孕周或产后天数"), ("state", "情况", ("正常", "需医生关注"))),
        ),
        TagDef(
            "elderly_alone",
            "高龄独居",
            "health",
            "personal",
            FollowUpCadence("worker", _M, 1, None),
            _form(("state", "情况", ("安好", "需要帮助")), ("needs", "需求")),
        ),
        TagDef(
            "disabled",
            "残疾",
            "health",
            "sensitive",
            FollowUpCadence("worker", _Q, 1, "civil_affairs"),
            _form(("state", "情况", ("稳定", "需要帮助")), ("needs", "需求")),
        ),
        # DOMAIN.md §3: 六类户 people — minors and hardship are sensitive
        TagDef(
            "left_behind",
            "留守儿童",
            "minor",
            "sensitive",
            FollowUpCadence("worker", _M, 1, "civil_affairs"),
            _form(("state", "情况", ("正常", "需要关注")), ("guardian", "监护人情况")),
        ),
        TagDef(
            "subsistence",
            "低保",
            "welfare",
            "sensitive",
            FollowUpCadence("worker", _Q, 1, "civil_affairs"),
            _form(("change", "家庭情况", ("无变化", "有变化需复核"))),
        ),
    )
)


def policy_to_json(policy: TagPolicy) -> dict[str, Any]:
    def form(field: FormField) -> dict[str, Any]:
        out: dict[str, Any] = {"key": field.key, "label": field.label}
        if field.options:
            out["options"] = list(field.options)
        return out

    return {
        "version": 1,
        "tags": [
            {
                "key": t.key,
                "name": t.name,
                "group": t.group,
                "sensitivity": t.sensitivity,
                "follow_up": None
                if t.follow_up is None
                else {
                    "by": t.follow_up.by,
                    "with": t.follow_up.partner or "",
                    "period": t.follow_up.period.value,
                    "times": t.follow_up.times,
                },
                "form": [form(f) for f in t.form],
            }
            for t in policy.tags
        ],
    }


# --- reading a file ------------------------------------------------------------------------------

TAGS_FILE = policy_fields.PolicyFile(
    too_large=N_("That file is too large for a tags file."),
    not_utf8=N_("The tags file must be UTF-8 text (JSON)."),
    not_json=N_("The tags file is not valid JSON."),
    unknown_version=N_("I only know version 1 of the tags file."),
)


def _keys(data: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
    for key in data:
        if key not in allowed:
            raise InvalidInput(
                N_("The tags file has an entry “{key}” I do not know ({where})."),
                key=policy_fields.echo(key),
                where=where,
            )


def _choice(value: Any, allowed: Sequence[str], what: str, where: str) -> str:
    if value not in allowed:
        raise InvalidInput(
            N_("In {where}, “{what}” must be one of: {allowed} (not {value})."),
            where=where,
            what=what,
            allowed=", ".join(allowed),
            value=policy_fields.echo(value),
        )
    return str(value)


def _cadence(data: Any, where: str) -> FollowUpCadence | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise InvalidInput(
            N_("In {where}, “follow_up” must be written in braces, or null."), where=where
        )
    _keys(data, ("by", "with", "period", "times"), where)
    by = _choice(data.get("by", "worker"), FOLLOWERS, "by", where)
    period = PeriodKind(_choice(data.get("period"), PERIODS, "period", where))
    times = data.get("times", 1)
    if isinstance(times, bool) or not isinstance(times, int) or not 1 <= times <= MAX_TIMES:
        raise InvalidInput(
            N_("In {where}, “times” must be a whole number from 1 to {high}, not {value}."),
            where=where,
            high=MAX_TIMES,
            value=policy_fields.echo(times),
        )
    partner = data.get("with") or None
    if partner is not None:
        partner = policy_fields.key(partner, where)
    return FollowUpCadence(by, period, times, partner)


def _form_of(data: Any, where: str) -> tuple[FormField, ...]:
    if not isinstance(data, list) or not 1 <= len(data) <= MAX_FORM:
        raise InvalidInput(
            N_("In {where}, “form” must be a list of 1 to {count} answers."),
            where=where,
            count=MAX_FORM,
        )
    fields: list[FormField] = []
    for entry in data:
        if not isinstance(entry, dict):
            raise InvalidInput(
                N_("In {where}, each answer must be written in braces."), where=where
            )
        _keys(entry, ("key", "label", "options"), where)
        key = policy_fields.key(entry.get("key"), where)
        if any(f.key == key for f in fields):
            raise InvalidInput(
                N_("In {where}, the answer key “{value}” is used twice."), where=where, value=key
            )
        label = policy_fields.text(entry.get("label"), MAX_LABEL, "label", where)
        options_in = entry.get("options", [])
        if not isinstance(options_in, list) or len(options_in) > MAX_OPTIONS:
            raise InvalidInput(
                N_("In {where}, “options” must be a list of at most {count} choices."),
                where=where,
                count=MAX_OPTIONS,
            )
        options = tuple(policy_fields.text(o, MAX_OPTION, "options", where) for o in options_in)
        if len(set(options)) != len(options):
            raise InvalidInput(N_("In {where}, a choice is given twice."), where=where)
        fields.append(FormField(key, label, options))
    return tuple(fields)


def parse_policy(raw: bytes | str) -> TagPolicy:
    """Read and check a tags file; refuse it whole, with the reason, if anything is wrong."""
    data = policy_fields.read_object(raw, MAX_POLICY_BYTES, TAGS_FILE)
    _keys(data, ("version", "tags"), N_("the file"))
    tags_in = data.get("tags")
    if not isinstance(tags_in, list) or not 1 <= len(tags_in) <= MAX_TAGS:
        raise InvalidInput(N_("“tags” must be a list of 1 to {count} tags."), count=MAX_TAGS)
    tags: list[TagDef] = []
    for entry in tags_in:
        if not isinstance(entry, dict):
            raise InvalidInput(N_("Each tag must be written in braces {{ }}."))
        key = policy_fields.key(entry.get("key"), "tags")
        name = entry.get("name")
        where = f"“{name.strip()}”" if isinstance(name, str) and name.strip() else key
        _keys(entry, ("key", "name", "group", "sensitivity", "follow_up", "form"), where)
        name_text = policy_fields.text(name, MAX_NAME, "name", where)
        if any(t.key == key or t.name == name_text for t in tags):
            raise InvalidInput(N_("The tag “{value}” is given twice."), value=where)
        tags.append(
            TagDef(
                key=key,
                name=name_text,
                group=_choice(entry.get("group"), GROUPS, "group", where),
                sensitivity=_choice(
                    entry.get("sensitivity", "sensitive"), SENSITIVITIES, "sensitivity", where
                ),
                follow_up=_cadence(entry.get("follow_up"), where),
                form=_form_of(entry.get("form"), where),
            )
        )
    return TagPolicy(tags=tuple(tags))


async def current_policy(session: AsyncSession) -> TagPolicy:
    """The newest stored version, else the defaults."""
    row = (
        await session.exec(
            select(TagPolicyVersion).order_by(col(TagPolicyVersion.id).desc()).limit(1)
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
) -> TagPolicy:
    """Store a new version. Tags are street-wide: only an admin of the street centre may
    change them. A tag still on a person cannot be dropped."""
    root = (await session.exec(select(Grid).where(Grid.tier == 0).order_by(col(Grid.id)))).first()
    if root is None:
        raise NotAllowed(N_("Set up the street centre grid first."))
    await authorize(session, actor, roles, Action.MANAGE, root, now)
    policy = parse_policy(raw)
    used = (  # on someone still followed up (not moved out, not erased)
        await session.exec(
            select(col(PersonTag.tag))
            .join(HouseholdMember, col(HouseholdMember.id) == col(PersonTag.member_id))
            .where(
                col(PersonTag.ended_at).is_(None),
                col(HouseholdMember.forgotten_at).is_(None),
                col(HouseholdMember.moved_out).is_(None),
            )
            .distinct()
        )
    ).all()
    missing = sorted(set(used) - {t.key for t in policy.tags})
    if missing:
        raise InvalidInput(
            N_("The tag “{value}” is still on people; keep it in the file."),
            value=policy_fields.echo(missing[0]),
        )
    session.add(TagPolicyVersion(body=policy_to_json(policy), created_by=actor.id, created_at=now))
    session.add(AuditLog(at=now, actor_id=actor.id, action="tag_policy_set", object_type="policy"))
    return policy


# --- tagging people ------------------------------------------------------------------------------


def _fold(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split()).casefold()


def tag_by_word(policy: TagPolicy, word: str) -> TagDef:
    """The tag a typed word names: its key or its name (慢性病, chronic)."""
    wanted = _fold(word)
    for tag in policy.tags:
        if wanted in (tag.key, _fold(tag.name)):
            return tag
    raise InvalidInput(
        N_("There is no tag “{value}”. Tags: {names}."),
        value=policy_fields.echo(word),
        names="、".join(t.name for t in policy.tags),
    )


async def _member_in_reach(
    session: AsyncSession,
    actor: Person,
    roles: Sequence[RoleInGrid],
    member_id: int,
    now: datetime,
) -> tuple[HouseholdMember, Household]:
    """The member, refused (and the refusal audited) unless ``actor`` may visit the
    household (its worker, head or an admin over its grid); a forgotten or moved-out person
    is not tagged."""
    member = await session.get(HouseholdMember, member_id)
    household = await session.get(Household, member.household_id) if member else None
    if member is None or household is None:
        raise NotFound(N_("There is no resident with that number."))
    await authorize(session, actor, roles, Action.VISIT, household, now)
    if member.forgotten_at is not None or member.moved_out is not None:
        raise InvalidInput(N_("That resident has moved out or was erased: nothing to follow up."))
    return member, household


async def active_tags(session: AsyncSession, member_ids: Sequence[int]) -> list[PersonTag]:
    """The tags on these members now, oldest first."""
    if not member_ids:
        return []
    return list(
        (
            await session.exec(
                select(PersonTag)
                .where(
                    col(PersonTag.member_id).in_(list(member_ids)),
                    col(PersonTag.ended_at).is_(None),
                )
                .order_by(col(PersonTag.id))
            )
        ).all()
    )


def tag_names(policy: TagPolicy, tags: Sequence[PersonTag]) -> str | None:
    """The tags' names, as the personal-field table's ``tags`` value (None: no tag)."""
    defs = [policy.tag(t.tag) for t in tags]
    names = [d.name if d is not None else t.tag for d, t in zip(defs, tags, strict=True)]
    return "、".join(names) if names else None


async def tag_member(
    session: AsyncSession,
    actor: Person,
    roles: Sequence[RoleInGrid],
    member_id: int,
    word: str,
    now: datetime,
) -> tuple[PersonTag, TagDef, bool]:
    """Put a tag on a member; returns the tag row, its definition and whether it is new
    (tagging twice changes nothing). Audited: a tag is sensitive personal information."""
    policy = await current_policy(session)
    tag = tag_by_word(policy, word)
    member, _household = await _member_in_reach(session, actor, roles, member_id, now)
    for held in await active_tags(session, [member_id]):
        if held.tag == tag.key:
            return held, tag, False
    row = PersonTag(member_id=member_id, tag=tag.key, tagged_by=actor.id, tagged_at=now)
    session.add(row)
    await session.flush()
    session.add(
        AuditLog(
            at=now,
            actor_id=actor.id,
            action="tag:add",
            object_type="member",
            object_id=member.id,
            data={"tag": tag.key, "sensitive": tag.sensitive},
        )
    )
    return row, tag, True


async def untag_member(
    session: AsyncSession,
    actor: Person,
    roles: Sequence[RoleInGrid],
    member_id: int,
    word: str,
    now: datetime,
) -> TagDef:
    """Take a tag off a member (ended, kept for the counts of the periods it applied)."""
    policy = await current_policy(session)
    tag = tag_by_word(policy, word)
    member = await session.get(HouseholdMember, member_id)
    household = await session.get(Household, member.household_id) if member else None
    if member is None or household is None:
        raise NotFound(N_("There is no resident with that number."))
    await authorize(session, actor, roles, Action.VISIT, household, now)
    held = [t for t in await active_tags(session, [member_id]) if t.tag == tag.key]
    if not held:
        raise InvalidInput(N_("That resident does not have the tag “{value}”."), value=tag.name)
    for row in held:
        row.ended_at, row.ended_by = now, actor.id
        session.add(row)
    session.add(
        AuditLog(
            at=now,
            actor_id=actor.id,
            action="tag:end",
            object_type="member",
            object_id=member_id,
            data={"tag": tag.key},
        )
    )
    return tag


async def tags_in_use(session: AsyncSession, grid_path: str) -> set[str]:
    """The tags on someone living in the subtree at ``grid_path`` (not moved out)."""
    rows = await session.exec(
        select(PersonTag.tag)
        .join(HouseholdMember, col(HouseholdMember.id) == PersonTag.member_id)
        .join(Household, col(Household.id) == HouseholdMember.household_id)
        .join(Grid, col(Grid.id) == Household.grid_id)
        .where(
            col(PersonTag.ended_at).is_(None),
            col(Grid.path).startswith(grid_path, autoescape=True),
            col(HouseholdMember.forgotten_at).is_(None),
            col(HouseholdMember.moved_out).is_(None),
        )
        .distinct()
    )
    return set(rows)


def tagged_people(tag: str, grid_path: str) -> SelectOfScalar[int]:
    """The ids of the bot users (matched by phone) who carry ``tag`` and live in the subtree
    at ``grid_path``, not moved out or forgotten: a broadcast audience (e.g. 慢性病 residents
    told of a free check-up)."""
    phones = (
        select(HouseholdMember.phone)
        .join(PersonTag, col(PersonTag.member_id) == HouseholdMember.id)
        .join(Household, col(Household.id) == HouseholdMember.household_id)
        .join(Grid, col(Grid.id) == Household.grid_id)
        .where(
            col(PersonTag.tag) == tag,
            col(PersonTag.ended_at).is_(None),
            col(Grid.path).startswith(grid_path, autoescape=True),
            col(HouseholdMember.phone).is_not(None),
            col(HouseholdMember.forgotten_at).is_(None),
            col(HouseholdMember.moved_out).is_(None),
        )
    )
    return select(col(Person.id)).where(col(Person.phone).in_(phones))  # type: ignore[return-value]
