"""Follow-ups (随访) of tagged people: what is due, recording one, counting them, reminders.

A tag with a cadence (:mod:`bot.services.tags`) asks ``times`` follow-ups every calendar month,
quarter or year — periods in the community's time zone, exactly as a visit rule's
(:mod:`bot.services.periods`). They are planned for the grid worker of the person's household
(``Household.worker_id``, as the visit engine plans visits), so:

- :func:`due_by_worker` gives each worker the tagged people still owed a follow-up this period
  (⚠️ overdue: the previous period was missed too) — the morning push lists them;
- :func:`record` writes a follow-up with the answers of the tag's short form **and** logs it
  as a home visit (入户走访) to the household, so it is in the diary and counts toward the
  visit quotas like any other visit;
- :func:`current_progress` is the follow-up part of ``/quota``;
- :func:`on_time_counts` counts, for any period (a month, a quarter, a year), the follow-ups
  due and those done on time per worker and grid — for the assessment scorecards;
- :func:`send_reminders` reminds a worker five working days before a period ends of the
  follow-ups still due in it, and on the new period of those missed — once each, by the
  outbox ``ref`` ``fur:`` / ``fuo:``.

A person who moved out or was erased is no longer followed up; their past follow-ups still
count for the periods they applied to.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.i18n import N_, gettext_for, resolve_locale
from bot.services import outbox, tags, tickets, visits
from bot.services.message_size import split_message
from bot.services.outbox import sent_refs
from bot.services.people import RoleInGrid
from bot.services.periods import (
    DEFAULT_TZ,
    IsWorkday,
    Period,
    PeriodKind,
    local_day,
    period_of,
    working_days_left,
)
from bot.services.permissions import Action, authorize
from bot.services.quotas import REMINDER_WORKING_DAYS
from bot.services.schedule import in_quiet_hours
from bot.services.tags import TagDef, TagPolicy
from bot.settings import Settings
from models import (
    FollowUp,
    Grid,
    Household,
    HouseholdMember,
    OutboxLane,
    Person,
    PersonTag,
    VisitKind,
)

MAX_IN_PUSH = 15  # follow-ups named in a morning push
MAX_ANSWER = 60  # characters of a free-text answer
MAX_NOTE = 200
_CHUNK = 500  # ids in one IN (…)
_SPLIT = re.compile(r"[;；\n]")

REMINDER_TITLE = N_(
    "⏳ {days} working days left until {day}. Follow-ups (随访) still due: {count}. "
    "Send /followup to see them."
)
OVERDUE_TITLE = N_(
    "⚠️ Follow-ups (随访) missed in the period that just ended: {count}. They are due again "
    "now; send /followup to see them."
)


class DueFollowUp(NamedTuple):
    """A tagged person still owed follow-ups this period."""

    person_tag_id: int
    member_id: int
    name: str
    household_code: str
    tag: str  # key
    tag_name: str
    done: int
    times: int
    overdue: bool  # the previous period was missed too
    partner: str | None  # a department's code to go with
    sensitive: bool


class _Tracked(NamedTuple):
    person_tag_id: int
    member_id: int
    name: str
    tag: str
    tagged_at: datetime
    ended_at: datetime | None
    moved_out: date | None
    household_code: str
    worker_id: int | None
    grid_path: str


async def _tracked(
    session: AsyncSession,
    where: Iterable[ColumnElement[bool]],
) -> list[_Tracked]:
    statement = (
        sa_select(
            col(PersonTag.id),
            col(PersonTag.member_id),
            col(HouseholdMember.name),
            col(PersonTag.tag),
            col(PersonTag.tagged_at),
            col(PersonTag.ended_at),
            col(HouseholdMember.moved_out),
            col(Household.code),
            col(Household.worker_id),
            col(Grid.path),
        )
        .join(HouseholdMember, col(HouseholdMember.id) == col(PersonTag.member_id))
        .join(Household, col(Household.id) == col(HouseholdMember.household_id))
        .join(Grid, col(Grid.id) == col(Household.grid_id))
        .where(*where)
        .order_by(col(PersonTag.id))
    )
    await session.flush()
    connection = await session.connection()
    rows: list[tuple[Any, ...]] = [tuple(row) for row in await connection.execute(statement)]
    return [_Tracked(*row) for row in rows]


async def _done_times(
    session: AsyncSession, tag_ids: Sequence[int], since: datetime
) -> dict[int, list[datetime]]:
    """When each of these tags was followed up, from ``since`` on."""
    found: dict[int, list[datetime]] = defaultdict(list)
    ids = list(tag_ids)
    for start in range(0, len(ids), _CHUNK):
        rows = await session.exec(
            select(FollowUp.person_tag_id, FollowUp.done_at).where(
                col(FollowUp.person_tag_id).in_(ids[start : start + _CHUNK]),
                col(FollowUp.done_at) >= since,
            )
        )
        for tag_id, done_at in rows.all():
            found[tag_id].append(done_at)
    return found


def _count_in(times: Sequence[datetime], period: Period, tz: tzinfo) -> int:
    begins, ends = period.utc_bounds(tz)
    return sum(1 for at in times if begins <= at < ends)


def _current_where() -> list[ColumnElement[bool]]:
    return [
        col(PersonTag.ended_at).is_(None),
        col(HouseholdMember.forgotten_at).is_(None),
        col(HouseholdMember.moved_out).is_(None),
    ]


def _scoped(scope_path: str | None) -> list[ColumnElement[bool]]:
    if scope_path is None:
        return []
    if not re.fullmatch(r"(/[0-9]+)+/", scope_path):
        raise ValueError(f"not a grid path: {scope_path!r}")
    return [col(Grid.path).startswith(scope_path)]


async def _due(
    session: AsyncSession,
    rows: Sequence[_Tracked],
    policy: TagPolicy,
    now: datetime,
    tz: tzinfo,
) -> list[tuple[_Tracked, DueFollowUp]]:
    """The rows still owed a follow-up in their current period, overdue ones first."""
    followed: list[tuple[_Tracked, TagDef]] = []
    for row in rows:
        tag = policy.tag(row.tag)
        if tag is not None and tag.follow_up is not None:
            followed.append((row, tag))
    if not followed:
        return []
    kinds = {t.follow_up.period for _, t in followed if t.follow_up is not None}
    since = min(period_of(kind, now, tz).previous().utc_bounds(tz)[0] for kind in kinds)
    done = await _done_times(session, [r.person_tag_id for r, _ in followed], since)
    due: list[tuple[_Tracked, DueFollowUp]] = []
    for row, tag in followed:
        cadence = tag.follow_up
        assert cadence is not None
        current = period_of(cadence.period, now, tz)
        times = done.get(row.person_tag_id, [])
        count = _count_in(times, current, tz)
        if count >= cadence.times:
            continue
        previous = current.previous()
        overdue = (
            row.tagged_at < previous.utc_bounds(tz)[0]
            and _count_in(times, previous, tz) < cadence.times
        )
        item = DueFollowUp(
            row.person_tag_id,
            row.member_id,
            row.name,
            row.household_code,
            tag.key,
            tag.name,
            count,
            cadence.times,
            overdue,
            cadence.partner,
            tag.sensitive,
        )
        due.append((row, item))
    due.sort(key=lambda pair: (not pair[1].overdue, pair[1].household_code, pair[1].name))
    return due


async def due_by_worker(
    session: AsyncSession,
    worker_ids: Sequence[int],
    policy: TagPolicy,
    now: datetime,
    *,
    tz: tzinfo = DEFAULT_TZ,
    limit: int | None = None,
    totals: dict[int, int] | None = None,
) -> dict[int, list[DueFollowUp]]:
    """For each worker, the follow-ups still due this period in the households assigned to
    them (up to ``limit`` each; ``totals`` gets every worker's full count)."""
    if not worker_ids:
        return {}
    rows: list[_Tracked] = []
    ids = list(worker_ids)
    for start in range(0, len(ids), _CHUNK):
        rows += await _tracked(
            session,
            [*_current_where(), col(Household.worker_id).in_(ids[start : start + _CHUNK])],
        )
    found: dict[int, list[DueFollowUp]] = defaultdict(list)
    for row, item in await _due(session, rows, policy, now, tz):
        assert row.worker_id is not None
        found[row.worker_id].append(item)
    if totals is not None:
        totals.update({worker: len(items) for worker, items in found.items()})
    return {w: items[:limit] if limit is not None else items for w, items in found.items()}


# --- recording a follow-up ----------------------------------------------------------------------


def parse_answers(tag: TagDef, text: str | None) -> tuple[dict[str, str], str]:
    """The answers of ``tag``'s form from one typed line, in the form's order, separated by
    ``;`` (a choice: its words or its number), then an optional note."""
    parts = [" ".join(p.split()) for p in _SPLIT.split(text or "")]
    while parts and not parts[-1]:
        parts.pop()
    if len(parts) < len(tag.form):
        raise InvalidInput(
            N_("Please give {count} answers separated by “;”: {labels}."),
            count=len(tag.form),
            labels="; ".join(f.label for f in tag.form),
        )
    answers: dict[str, str] = {}
    for field, value in zip(tag.form, parts, strict=False):
        if not value:
            raise InvalidInput(N_("The answer “{label}” is empty."), label=field.label)
        if field.options:
            if value.isdigit() and 1 <= int(value) <= len(field.options):
                value = field.options[int(value) - 1]
            elif value not in field.options:
                raise InvalidInput(
                    N_("For “{label}”, answer one of: {options}."),
                    label=field.label,
                    options=" / ".join(f"{i}. {o}" for i, o in enumerate(field.options, start=1)),
                )
        elif len(value) > MAX_ANSWER:
            raise InvalidInput(
                N_("The answer “{label}” is longer than {limit} characters."),
                label=field.label,
                limit=MAX_ANSWER,
            )
        answers[field.key] = value
    note = "; ".join(parts[len(tag.form) :])
    if len(note) > MAX_NOTE:
        raise InvalidInput(N_("The note is longer than {limit} characters."), limit=MAX_NOTE)
    return answers, note


@dataclass(frozen=True)
class Recorded:
    follow_up: FollowUp
    tag: TagDef
    name: str
    visit: visits.VisitResult
    done: int  # follow-ups in the current period, this one included
    times: int


async def follow_up_target(
    session: AsyncSession,
    actor: Person,
    roles: Sequence[RoleInGrid],
    person_tag_id: int,
    now: datetime,
) -> tuple[PersonTag, TagDef, HouseholdMember, Household]:
    """The tagged person a follow-up is for, refused unless ``actor`` may visit their
    household (the refusal audited); a tag without a form or ended is refused too."""
    row = await session.get(PersonTag, person_tag_id)
    member = await session.get(HouseholdMember, row.member_id) if row else None
    household = await session.get(Household, member.household_id) if member else None
    if row is None or member is None or household is None:
        raise NotFound(N_("There is no follow-up with that number."))
    await authorize(session, actor, roles, Action.VISIT, household, now)
    if row.ended_at is not None or member.forgotten_at is not None or member.moved_out:
        raise InvalidInput(N_("That person is no longer followed up."))
    tag = (await tags.current_policy(session)).tag(row.tag)
    if tag is None or tag.follow_up is None:
        raise InvalidInput(N_("That tag has no follow-ups."))
    return row, tag, member, household


async def record(
    session: AsyncSession,
    actor: Person,
    roles: Sequence[RoleInGrid],
    person_tag_id: int,
    text: str | None,
    visit_note: str,
    now: datetime,
    *,
    tz: tzinfo = DEFAULT_TZ,
) -> Recorded:
    """Record a follow-up made now with the answers typed in ``text``, and log it as a home
    visit to the household with ``visit_note`` (the caller's words for "follow-up"): in
    the diary and the visit quotas like any visit. The answers stay with the follow-up."""
    row, tag, member, household = await follow_up_target(session, actor, roles, person_tag_id, now)
    answers, note = parse_answers(tag, text)
    if actor.id is None or household.id is None or row.id is None:
        raise NotAllowed()
    visit = await visits.log_visit(
        session, actor, roles, household.id, VisitKind.IN_PERSON, visit_note, now, tz=tz
    )
    follow_up = FollowUp(
        person_tag_id=row.id,
        worker_id=actor.id,
        done_at=now,
        answers=answers,
        note=note,
        created_at=now,
    )
    session.add(follow_up)
    await session.flush()
    assert tag.follow_up is not None
    period = period_of(tag.follow_up.period, now, tz)
    done = await _done_times(session, [row.id], period.utc_bounds(tz)[0])
    return Recorded(
        follow_up, tag, member.name, visit, len(done.get(row.id, [])), tag.follow_up.times
    )


# --- counting -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TagProgress:
    """Of the people with one tag, how many got their follow-ups this period."""

    tag: str
    tag_name: str
    period: PeriodKind
    done: int
    total: int


async def current_progress(
    session: AsyncSession,
    now: datetime,
    *,
    tz: tzinfo = DEFAULT_TZ,
    worker_ids: Sequence[int] | None = None,
    scope_path: str | None = None,
) -> list[TagProgress]:
    """Per tag with a cadence: people followed up as often as their current period asks,
    over the people with the tag (in the households of ``worker_ids`` / the subtree)."""
    policy = await tags.current_policy(session)
    where = [*_current_where(), *_scoped(scope_path)]
    if worker_ids is not None:
        where.append(col(Household.worker_id).in_(list(worker_ids)))
    rows = await _tracked(session, where)
    due = {item.person_tag_id for _, item in await _due(session, rows, policy, now, tz)}
    totals: dict[str, list[int]] = {}
    for row in rows:
        tag = policy.tag(row.tag)
        if tag is None or tag.follow_up is None:
            continue
        counts = totals.setdefault(tag.key, [0, 0])
        counts[1] += 1
        if row.person_tag_id not in due:
            counts[0] += 1
    return [
        TagProgress(t.key, t.name, t.follow_up.period, *totals[t.key])
        for t in policy.tags
        if t.key in totals and t.follow_up is not None
    ]


@dataclass(frozen=True)
class FollowUpFigure:
    """Follow-ups due in a period and those done on time, for one worker in one grid."""

    worker_id: int | None
    grid_path: str
    on_time: int
    due: int


_LENGTH = {PeriodKind.MONTH: 1, PeriodKind.QUARTER: 3, PeriodKind.YEAR: 12}


def _cadence_periods(kind: PeriodKind, within: Period, today: date) -> list[Period]:
    """The periods of ``kind`` inside ``within`` that have begun by ``today``."""
    found: list[Period] = []
    current = Period(kind, within.start)
    while current.start < within.end and current.start <= today:
        found.append(current)
        current = current.next()
    return found


async def on_time_counts(
    session: AsyncSession,
    period: Period,
    *,
    scope_path: str,
    now: datetime,
    tz: tzinfo = DEFAULT_TZ,
) -> list[FollowUpFigure]:
    """Follow-ups due and done on time in ``period`` (a month, quarter or year), per worker
    (the household's worker now, as the visits measure) and grid, under ``scope_path``.

    Every tag whose cadence is ``period``'s length or shorter counts once for each of its
    cadence periods within ``period`` that has begun (a running one: up to now), if the tag
    was on the person at that period's end (or now) and the person had not moved out before
    it ended; it is on time when it got its ``times`` follow-ups within that cadence period.
    """
    policy = await tags.current_policy(session)
    begins, ends = period.utc_bounds(tz)
    rows = await _tracked(
        session,
        [
            *_scoped(scope_path),
            col(PersonTag.tagged_at) < ends,
            (col(PersonTag.ended_at).is_(None)) | (col(PersonTag.ended_at) > begins),
        ],
    )
    done = await _done_times(session, [r.person_tag_id for r in rows], begins)
    today = local_day(now, tz)
    figures: dict[tuple[int | None, str], list[int]] = {}
    for row in rows:
        tag = policy.tag(row.tag)
        if tag is None or tag.follow_up is None:
            continue
        cadence = tag.follow_up
        if _LENGTH[cadence.period] > _LENGTH[period.kind]:
            continue
        for cadence_period in _cadence_periods(cadence.period, period, today):
            start, end = cadence_period.utc_bounds(tz)
            judged_at = min(end, now)
            if row.tagged_at > judged_at or (row.ended_at is not None and row.ended_at < end):
                continue
            if row.moved_out is not None and row.moved_out < cadence_period.end:
                continue
            cell = figures.setdefault((row.worker_id, row.grid_path), [0, 0])
            cell[1] += 1
            if _count_in(done.get(row.person_tag_id, []), cadence_period, tz) >= cadence.times:
                cell[0] += 1
    return [
        FollowUpFigure(worker, path, on_time, due)
        for (worker, path), (on_time, due) in sorted(
            figures.items(), key=lambda item: (item[0][1], item[0][0] or 0)
        )
    ]


def summed(
    figures: Iterable[FollowUpFigure], key: Callable[[FollowUpFigure], Any]
) -> dict[Any, tuple[int, int]]:
    """``(on_time, due)`` added up by ``key`` (e.g. the worker, or the child grid)."""
    out: dict[Any, list[int]] = {}
    for figure in figures:
        cell = out.setdefault(key(figure), [0, 0])
        cell[0] += figure.on_time
        cell[1] += figure.due
    return {k: (v[0], v[1]) for k, v in out.items()}


# --- reminders ----------------------------------------------------------------------------------


async def send_reminders(session: AsyncSession, now: datetime, settings: Settings) -> int:
    """Five working days before a cadence period ends, each worker with follow-ups still
    due in it is reminded; on a new period, each worker who missed some in the last is told.
    Once per worker, kind and period; nothing in quiet hours. Only counts are written: no
    name, no tag."""
    if in_quiet_hours(now, settings):
        return 0
    calendar = await tickets.calendar_for(session, await tickets.current_policy(session))
    is_workday: IsWorkday = calendar.is_workday
    tz = settings.tz
    policy = await tags.current_policy(session)
    today = local_day(now, tz)
    rows = await _tracked(session, [*_current_where(), col(Household.worker_id).is_not(None)])
    due = await _due(session, rows, policy, now, tz)
    if not due:
        return 0
    soon: dict[tuple[int, PeriodKind], int] = defaultdict(int)
    missed: dict[tuple[int, PeriodKind], int] = defaultdict(int)
    for row, item in due:
        tag = policy.tag(item.tag)
        assert tag is not None and tag.follow_up is not None and row.worker_id is not None
        kind = tag.follow_up.period
        if (
            0
            < working_days_left(period_of(kind, now, tz), today, is_workday)
            <= (REMINDER_WORKING_DAYS)
        ):
            soon[(row.worker_id, kind)] += 1
        if item.overdue:
            missed[(row.worker_id, kind)] += 1
    refs: dict[str, tuple[int, str, dict[str, Any]]] = {}
    for (worker_id, kind), count in soon.items():
        period = period_of(kind, now, tz)
        refs[f"fur:{worker_id}:{kind.value}:{period.start.isoformat()}"] = (
            worker_id,
            REMINDER_TITLE,
            {
                "days": working_days_left(period, today, is_workday),
                "day": (period.end - timedelta(days=1)).strftime("%m-%d"),
                "count": count,
            },
        )
    for (worker_id, kind), count in missed.items():
        period = period_of(kind, now, tz)
        refs[f"fuo:{worker_id}:{kind.value}:{period.start.isoformat()}"] = (
            worker_id,
            OVERDUE_TITLE,
            {"count": count},
        )
    done = await sent_refs(session, refs.keys())
    people = {
        p.id: p
        for p in (
            await session.exec(
                select(Person).where(col(Person.id).in_({w for w, _, _ in refs.values()}))
            )
        ).all()
    }
    queued = 0
    for ref, (worker_id, msgid, params) in refs.items():
        person = people.get(worker_id)
        if ref in done or person is None or not person.active or not person.reachable:
            continue
        if person.telegram_id is None:
            continue
        locale = resolve_locale(person.locale, person.telegram_language, settings.default_locale)
        text = gettext_for(locale, msgid, **params)
        for index, part in enumerate(split_message(text)):
            outbox.send_text(
                session,
                chat_id=person.telegram_id,
                text=part,
                now=now,
                parse_mode=None,
                person_id=person.id,
                ref=ref if index == 0 else f"{ref}#{index + 1}",
                lane=OutboxLane.BULK,
            )
        queued += 1
    return queued


# --- the morning push, kept current -------------------------------------------------------------


async def named_in_push(
    session: AsyncSession, content: Sequence[Sequence[Any]], policy: TagPolicy
) -> tuple[DueFollowUp, ...]:
    """The follow-ups a push named (``[[person_tag_id, done, overdue], …]`` as stored in its
    content), as they were named, in the same order (ones no longer known are left out)."""
    named = {int(item[0]): (int(item[1]), bool(item[2])) for item in content}
    if not named:
        return ()
    rows = {
        r.person_tag_id: r for r in await _tracked(session, [col(PersonTag.id).in_(list(named))])
    }
    found: list[DueFollowUp] = []
    for tag_id, (done, overdue) in named.items():
        row = rows.get(tag_id)
        tag = policy.tag(row.tag) if row is not None else None
        if row is None or tag is None or tag.follow_up is None:
            continue
        found.append(
            DueFollowUp(
                tag_id,
                row.member_id,
                row.name,
                row.household_code,
                tag.key,
                tag.name,
                done,
                tag.follow_up.times,
                overdue,
                tag.follow_up.partner,
                tag.sensitive,
            )
        )
    return tuple(found)


async def followed_since(
    session: AsyncSession, person_tag_ids: Sequence[int], since: datetime
) -> frozenset[int]:
    """Which of these tags were followed up from ``since`` on."""
    done = await _done_times(session, person_tag_ids, since)
    return frozenset(tag_id for tag_id, times in done.items() if times)
