"""Digests (工作简报): the weekly one to heads, the dispute screening and the monthly indicators.

- **Weekly**, Monday morning, to each grid head (网格长): for their subtree, the tickets filed,
  closed and escalated in the past local ISO week (Monday to Sunday), those overdue now (open,
  past their resolve deadline — for a ticket waiting for the reporter, past it when the clock
  stopped), the oldest overdue ones by number, and the visit quota progress of the current
  periods (:func:`bot.services.quotas.progress`).
- **Half-monthly**, on the 1st and the 16th, to the centre operators (半月一排查一上报): the
  open neighbour disputes (``TicketCategory.DISPUTE``) in their scope by grid, with their age
  in days. A screening with nothing open is sent too: a zero report is a report.
- **Monthly**, on the 1st, to the centre operators: the indicators of the month before
  (:mod:`bot.services.indicators`), per grid one tier below their scope (the communities),
  with the month's 红黑榜 charts and assessment workbook (:mod:`bot.services.digest_files`);
  the weekly digest carries the charts of the head's grids for the month so far.

Each digest is one message, split on line boundaries only when it exceeds Telegram's 4,096
characters. It goes through the outbox as a non-urgent message (quiet hours hold it), in the
recipient's language, and exactly once per period and person: its first part carries the
outbox ``ref`` ``dg:<kind>:<person id>:<period>`` and a person whose ref exists is skipped (on
PostgreSQL a transaction-scoped advisory lock keeps two runs from both missing it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from functools import partial

from sqlalchemy import ColumnElement, and_, case, exists, func, or_, select
from sqlmodel import col
from sqlmodel import select as orm_select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.i18n import N_, gettext_for, resolve_locale
from bot.labels import TICKET_STATE
from bot.services import digest_files, inspection_ledgers, outbox, place_policy, quotas
from bot.services.indicators import (
    CLOSED_STATES,
    GridRef,
    Ratio,
    day_text,
    esc,
    grid_ref,
    in_subtrees,
    indicator_report,
    percent_text,
    render_report,
    window_text,
)
from bot.services.message_size import split_message
from bot.services.outbox import sent_refs
from bot.services.periods import Period, PeriodKind, local_midnight, period_of
from bot.services.ticket_numbers import shown_number, spoken
from bot.settings import Settings
from models import (
    OPEN_TICKET_STATES,
    Grid,
    OutboxLane,
    OutboxMessage,
    Person,
    QuotaRule,
    Role,
    RoleAssignment,
    Ticket,
    TicketCategory,
    TicketEvent,
    TicketState,
)

DIGEST_LOCK = 0x67726964_64696773  # "griddigs": one digest run at a time on PostgreSQL
MAX_OVERDUE_LISTED = 5  # per grid head: the oldest overdue tickets named
MAX_DISPUTES_LISTED = 200  # per screening; beyond it, only the count per grid
OPEN = tuple(state.value for state in OPEN_TICKET_STATES)


@dataclass(frozen=True)
class Recipient:
    """A person who gets a digest, with the subtrees it covers (none inside another)."""

    person: Person
    grids: tuple[Grid, ...]


async def recipients(session: AsyncSession, role: Role) -> list[Recipient]:
    """Everyone reachable holding ``role``, with the widest grids they hold it over."""
    rows = await session.exec(
        orm_select(Person, Grid)
        .join(RoleAssignment, col(RoleAssignment.person_id) == col(Person.id))
        .join(Grid, col(Grid.id) == col(RoleAssignment.grid_id))
        .where(
            RoleAssignment.role == role,
            col(RoleAssignment.active).is_(True),
            col(Person.active).is_(True),
            col(Person.reachable).is_(True),
            col(Person.telegram_id).is_not(None),
        )
        .order_by(col(Person.id), col(Grid.path))
    )
    people: dict[int, Person] = {}
    held: dict[int, list[Grid]] = {}
    for person, grid in rows:
        assert person.id is not None
        people[person.id] = person
        widest = held.setdefault(person.id, [])
        if not any(grid.path.startswith(other.path) for other in widest):
            widest.append(grid)
    return [Recipient(people[pid], tuple(grids)) for pid, grids in held.items()]


def locale_of(person: Person, settings: Settings) -> str:
    return resolve_locale(person.locale, person.telegram_language, settings.default_locale)


async def _lock(session: AsyncSession) -> None:
    if session.get_bind().dialect.name == "postgresql":
        connection = await session.connection()
        await connection.execute(select(func.pg_advisory_xact_lock(DIGEST_LOCK)))


def deliver(
    session: AsyncSession, person: Person, text: str, *, ref: str, now: datetime
) -> list[OutboxMessage]:
    """Enqueue a digest (split if it must be): not urgent, the first part named ``ref``."""
    assert person.telegram_id is not None
    return [
        outbox.send_text(
            session,
            chat_id=person.telegram_id,
            text=part,
            now=now,
            person_id=person.id,
            ref=ref if index == 0 else f"{ref}#{index + 1}",
            urgent=False,
            lane=OutboxLane.BULK,
        )
        for index, part in enumerate(split_message(text))
    ]


@dataclass(frozen=True)
class PlannedDigest:
    """A digest read, rendered and its files staged; queued by :func:`queue_digests`."""

    person: Person
    ref: str  # the first part's outbox ref: once per period and person
    text: str
    attachments: Sequence[digest_files.Attachment] = ()
    period: Period | None = None  # the assessment period its charts and workbook show


async def queue_digests(
    session: AsyncSession, planned: Sequence[PlannedDigest], now: datetime
) -> int:
    """Queue the planned digests not sent meanwhile (checked under the digest lock), the
    text first and then its files; returns how many. The short writing part of a run: the
    figures were read and the files built before it, outside the write transaction."""
    if not planned:
        return 0
    await _lock(session)
    done = await sent_refs(session, (p.ref for p in planned))
    queued = 0
    for digest in planned:
        if digest.ref in done:  # another run sent it: its staged files are not needed
            for file in digest.attachments:
                await asyncio.to_thread(file.path.unlink, missing_ok=True)
            continue
        deliver(session, digest.person, digest.text, ref=digest.ref, now=now)
        if digest.period is not None:
            digest_files.deliver(
                session,
                digest.person,
                digest.attachments,
                ref=digest.ref,
                now=now,
                period=digest.period,
            )
        queued += 1
    return queued


def _rolled_up(paths: dict[int, str], per_grid: dict[int, list[int]]) -> dict[int, list[int]]:
    """Each grid's counts summed into itself and every grid above it (by ``Grid.path``)."""
    totals: dict[int, list[int]] = {}
    for grid_id, counts in per_grid.items():
        for part in paths.get(grid_id, "").strip("/").split("/"):
            if part.isdigit():
                row = totals.setdefault(int(part), [0] * len(counts))
                for i, value in enumerate(counts):
                    row[i] += value
    return totals


async def _grid_paths(session: AsyncSession) -> dict[int, str]:
    rows = await session.exec(orm_select(Grid.id, Grid.path))
    return {grid_id: path for grid_id, path in rows if grid_id is not None}


# --- the weekly digest to heads ---------------------------------------------------------------


@dataclass(frozen=True)
class Week:
    """A local ISO week, Monday to Monday."""

    first_day: date

    @property
    def label(self) -> str:
        year, week, _ = self.first_day.isocalendar()
        return f"{year}-W{week:02d}"

    def utc_bounds(self, tz: tzinfo) -> tuple[datetime, datetime]:
        return local_midnight(self.first_day, tz), local_midnight(
            self.first_day + timedelta(days=7), tz
        )

    def month(self) -> Period:
        """The calendar month the week's Sunday falls in."""
        sunday = self.first_day + timedelta(days=6)
        return Period(PeriodKind.MONTH, sunday.replace(day=1))


def last_full_week(now: datetime, tz: tzinfo) -> Week:
    """The local Monday-to-Sunday week before the one ``now`` falls in."""
    today = now.astimezone(tz).date()
    return Week(today - timedelta(days=today.weekday() + 7))


@dataclass(frozen=True)
class OverdueTicket:
    number: str
    resolve_deadline: datetime


@dataclass(frozen=True)
class QuotaLine:
    """One visit quota rule over a subtree: households it covers, and those that met it."""

    rule_name: str  # a msgid for the default rules
    households: int
    fulfilled: int


@dataclass(frozen=True)
class WeeklyFigures:
    """A head's subtree in one week."""

    grid: GridRef
    opened: int
    closed: int
    overdue: int  # open now and past the resolve deadline
    escalated: int  # tickets escalated at least once in the week
    oldest_overdue: tuple[OverdueTicket, ...]
    quota: tuple[QuotaLine, ...]


def _overdue(now: datetime) -> ColumnElement[bool]:
    """Open and past the resolve deadline (at the moment the clock stopped, if it is paused)."""
    return and_(
        col(Ticket.state).in_(OPEN),
        col(Ticket.resolve_deadline) < func.coalesce(col(Ticket.paused_at), now),
    )


async def weekly_figures(
    session: AsyncSession,
    grids: Sequence[Grid],
    *,
    week: Week,
    now: datetime,
    tz: tzinfo,
) -> list[WeeklyFigures]:
    """The figures of each of ``grids``' subtrees: ticket counts from one query grouped by
    grid for the whole tree, the overdue tickets from another, quota progress per grid."""
    start, end = week.utc_bounds(tz)
    opened = and_(
        col(Ticket.created_at) >= start,
        col(Ticket.created_at) < end,
        col(Ticket.state) != TicketState.DUPLICATE.value,
    )
    closed = and_(
        col(Ticket.closed_at) >= start,
        col(Ticket.closed_at) < end,
        col(Ticket.state).in_(CLOSED_STATES),
    )
    overdue = _overdue(now)
    escalated = exists().where(
        col(TicketEvent.ticket_id) == col(Ticket.id),
        col(TicketEvent.action) == "escalated",
        col(TicketEvent.at) >= start,
        col(TicketEvent.at) < end,
    )
    flags = (opened, closed, overdue, escalated)
    mine = in_subtrees([grid.path for grid in grids])
    statement = (
        select(col(Ticket.grid_id), *(func.sum(case((flag, 1), else_=0)) for flag in flags))
        .where(mine, or_(*flags))
        .group_by(col(Ticket.grid_id))
    )
    await session.flush()
    connection = await session.connection()
    per_grid = {
        int(row[0]): [int(value or 0) for value in row[1:]]
        for row in await connection.execute(statement)
    }
    paths = await _grid_paths(session)
    totals = _rolled_up(paths, per_grid)
    late = await connection.execute(
        select(col(Ticket.grid_id), col(Ticket.short_number), col(Ticket.resolve_deadline))
        .where(mine, overdue)
        .order_by(col(Ticket.resolve_deadline), col(Ticket.id))
    )
    oldest: dict[int, list[OverdueTicket]] = {}
    wanted = {grid.id for grid in grids}
    for grid_id, number, deadline in late:
        assert deadline is not None  # overdue means past a deadline
        for part in paths.get(int(grid_id), "").strip("/").split("/"):
            if part.isdigit() and int(part) in wanted:
                listed = oldest.setdefault(int(part), [])
                if len(listed) < MAX_OVERDUE_LISTED:
                    listed.append(OverdueTicket(spoken(number), deadline))
    rules = await quotas.list_rules(session, now, tz=tz)
    figures = []
    for grid in grids:
        assert grid.id is not None
        counts = totals.get(grid.id, [0, 0, 0, 0])
        figures.append(
            WeeklyFigures(
                grid=grid_ref(grid),
                opened=counts[0],
                closed=counts[1],
                overdue=counts[2],
                escalated=counts[3],
                oldest_overdue=tuple(oldest.get(grid.id, [])),
                quota=await quota_lines(session, grid, rules, now=now, tz=tz),
            )
        )
    return figures


async def quota_lines(
    session: AsyncSession,
    grid: Grid,
    rules: Sequence[QuotaRule],
    *,
    now: datetime,
    tz: tzinfo,
) -> tuple[QuotaLine, ...]:
    """Visit quota progress of the subtree in the current periods, per rule in force
    (``rules``: :func:`bot.services.quotas.list_rules` at ``now``); a rule covering no
    household of the subtree shows as 0 of 0."""
    households = {rule.id or 0: 0 for rule in rules}
    fulfilled = {rule.id or 0: 0 for rule in rules}
    for row in await quotas.progress(session, now, by="grid", scope_path=grid.path, tz=tz):
        for cell in row.cells:
            households[cell.rule_id] = households.get(cell.rule_id, 0) + cell.households
            fulfilled[cell.rule_id] = fulfilled.get(cell.rule_id, 0) + cell.fulfilled
    return tuple(
        QuotaLine(rule.name, households[rule.id or 0], fulfilled[rule.id or 0]) for rule in rules
    )


def render_weekly(figures: Sequence[WeeklyFigures], week: Week, locale: str, tz: tzinfo) -> str:
    def t(message: str, **params: object) -> str:
        return esc(gettext_for(locale, message, **params))

    start, end = week.utc_bounds(tz)
    year, number, _ = week.first_day.isocalendar()
    lines = [
        "📋 <b>" + t(N_("Weekly digest (每周简报)")) + "</b>",
        t(
            N_("Week {week} of {year}, {dates}"),
            week=number,
            year=year,
            dates=window_text(start, end, tz, locale),
        ),
    ]
    for figure in figures:
        lines += ["", "<b>" + esc(figure.grid.name) + "</b>"]
        lines.append(t(N_("New tickets: {count}"), count=figure.opened))
        lines.append(t(N_("Closed: {count}"), count=figure.closed))
        lines.append(t(N_("Reported up a tier: {count}"), count=figure.escalated))
        lines.append("⏰ " + t(N_("Overdue and still open now: {count}"), count=figure.overdue))
        for ticket in figure.oldest_overdue:
            lines.append(
                "• "
                + t(
                    N_("{number}: due {date}"),
                    number=ticket.number,
                    date=day_text(ticket.resolve_deadline.astimezone(tz).date(), locale),
                )
            )
        if figure.overdue > len(figure.oldest_overdue):
            lines.append(
                "• "
                + t(N_("… and {count} more"), count=figure.overdue - len(figure.oldest_overdue))
            )
        if not figure.quota:
            lines.append(t(N_("No visit quotas are set.")))
            continue
        lines.append(t(N_("Visit quotas, this period so far:")))
        for line in figure.quota:
            lines.append(
                "• "
                + t(
                    N_("{rule}: {fulfilled} of {households} households ({percent})"),
                    rule=gettext_for(locale, line.rule_name),
                    fulfilled=line.fulfilled,
                    households=line.households,
                    percent=percent_text(Ratio(line.fulfilled, line.households)),
                )
            )
    return "\n".join(lines)


async def plan_weekly_digests(
    session: AsyncSession, now: datetime, settings: Settings
) -> list[PlannedDigest]:
    """The weekly digests still owed (read only: pass a reader session), with the charts of
    each head's grids for the month the week ended in, drawn and staged on disk."""
    week = last_full_week(now, settings.tz)
    heads = await recipients(session, Role.HEAD)
    refs = {r.person.id: f"dg:week:{r.person.id}:{week.label}" for r in heads}
    done = await sent_refs(session, refs.values())
    due = [r for r in heads if refs[r.person.id] not in done]
    if not due:
        return []
    every_grid = {grid.id: grid for r in due for grid in r.grids}
    figures = {
        f.grid.id: f
        for f in await weekly_figures(
            session, list(every_grid.values()), week=week, now=now, tz=settings.tz
        )
    }
    month = week.month()
    files = await digest_files.build(
        session,
        list(every_grid.values()),
        month,
        {locale_of(r.person, settings) for r in due},
        now=now,
        tz=settings.tz,
        workbook=False,
    )
    planned = []
    for recipient in due:
        locale = locale_of(recipient.person, settings)
        text = render_weekly(
            [figures[grid.id or 0] for grid in recipient.grids], week, locale, settings.tz
        )
        attachments = await digest_files.stage(
            files, recipient.grids, locale, settings.outbox_files
        )
        planned.append(
            PlannedDigest(recipient.person, refs[recipient.person.id], text, attachments, month)
        )
    return planned


async def send_weekly_digests(session: AsyncSession, now: datetime, settings: Settings) -> int:
    """The weekly digest to every head who has not had this week's: returns how many (planned
    and queued in one session; the scheduler plans in a reader session)."""
    return await queue_digests(session, await plan_weekly_digests(session, now, settings), now)


# --- the half-monthly dispute screening -------------------------------------------------------


@dataclass(frozen=True)
class OpenDispute:
    number: str
    grid: GridRef
    state: TicketState
    created_at: datetime

    def age_days(self, now: datetime) -> int:
        return max((now - self.created_at).days, 0)


def half_month_start(now: datetime, tz: tzinfo) -> date:
    """The 1st or the 16th: the first day of the local half-month ``now`` falls in."""
    today = now.astimezone(tz).date()
    return today.replace(day=1 if today.day < 16 else 16)


async def open_disputes(session: AsyncSession, paths: Sequence[str]) -> list[OpenDispute]:
    """Open neighbour disputes (矛盾纠纷) in the subtrees, by grid code, oldest first."""
    if not paths:
        return []
    rows = await session.exec(
        orm_select(Ticket, Grid)
        .join(Grid, col(Grid.id) == col(Ticket.grid_id))
        .where(
            Ticket.category == TicketCategory.DISPUTE,
            col(Ticket.state).in_(OPEN),
            or_(*(col(Grid.path).startswith(path) for path in paths)),
        )
        .order_by(col(Grid.code), col(Ticket.created_at), col(Ticket.id))
    )
    return [
        OpenDispute(
            shown_number(ticket), grid_ref(grid), TicketState(ticket.state), ticket.created_at
        )
        for ticket, grid in rows
    ]


def render_dispute_screening(
    disputes: Sequence[OpenDispute], now: datetime, locale: str, tz: tzinfo
) -> str:
    def t(message: str, **params: object) -> str:
        return esc(gettext_for(locale, message, **params))

    lines = [
        "⚖️ <b>" + t(N_("Dispute screening (半月一排查一上报)")) + "</b>",
        t(N_("As of {date}"), date=day_text(now.astimezone(tz).date(), locale)),
        "",
    ]
    if not disputes:
        lines.append(t(N_("No open neighbour disputes. ✅")))
        return "\n".join(lines)
    lines.append(t(N_("Open neighbour disputes: {count}"), count=len(disputes)))
    by_grid: dict[GridRef, list[OpenDispute]] = {}
    for dispute in disputes:
        by_grid.setdefault(dispute.grid, []).append(dispute)
    listed = 0
    for grid, found in by_grid.items():
        oldest = max(d.age_days(now) for d in found)
        lines += [
            "",
            "📍 "
            + t(
                N_("{grid} ({code}): {count}, the oldest {days} d"),
                grid=grid.name,
                code=grid.code,
                count=len(found),
                days=oldest,
            ),
        ]
        for dispute in found:
            if listed >= MAX_DISPUTES_LISTED:
                break
            listed += 1
            lines.append(
                "• "
                + t(
                    N_("{number} · {days} d · {state}"),
                    number=dispute.number,
                    days=dispute.age_days(now),
                    state=gettext_for(locale, TICKET_STATE[dispute.state]),
                )
            )
    if listed < len(disputes):
        lines += [
            "",
            t(N_("{count} more are not listed here; see /tickets."), count=len(disputes) - listed),
        ]
    return "\n".join(lines)


async def send_dispute_screenings(session: AsyncSession, now: datetime, settings: Settings) -> int:
    """The half-month's dispute screening to every centre operator who has not had it."""
    return await queue_digests(session, await plan_dispute_screenings(session, now, settings), now)


async def plan_dispute_screenings(
    session: AsyncSession, now: datetime, settings: Settings
) -> list[PlannedDigest]:
    """The half-month's screening for every centre operator who has not had it (reads only)."""
    half = half_month_start(now, settings.tz)
    centre = await recipients(session, Role.CENTER)
    refs = {r.person.id: f"dg:disputes:{r.person.id}:{half.isoformat()}" for r in centre}
    done = await sent_refs(session, refs.values())
    planned = []
    for recipient in (r for r in centre if refs[r.person.id] not in done):
        disputes = await open_disputes(session, [grid.path for grid in recipient.grids])
        text = render_dispute_screening(
            disputes, now, locale_of(recipient.person, settings), settings.tz
        )
        planned.append(PlannedDigest(recipient.person, refs[recipient.person.id], text))
    return planned


# --- the monthly indicators to the centre -------------------------------------------------------


def month_title(first_day: date, locale: str) -> str:
    month = gettext_for(locale, N_("{year}/{month}"), year=first_day.year, month=first_day.month)
    return gettext_for(locale, N_("Monthly assessment (月度考核) for {month}"), month=month)


async def plan_monthly_indicators(
    session: AsyncSession, now: datetime, settings: Settings
) -> list[PlannedDigest]:
    """Last month's indicators still owed to centre operators (read only: pass a reader
    session), with the month's charts and workbook of their grids, built and staged."""
    month = period_of(PeriodKind.MONTH, now, settings.tz).previous()
    start, end = month.utc_bounds(settings.tz)
    centre = await recipients(session, Role.CENTER)
    refs = {r.person.id: f"dg:month:{r.person.id}:{month.start:%Y-%m}" for r in centre}
    done = await sent_refs(session, refs.values())
    due = [r for r in centre if refs[r.person.id] not in done]
    if not due:
        return []
    reports = {}
    for grid in {grid.id: grid for r in due for grid in r.grids}.values():
        reports[grid.id] = await indicator_report(session, grid, start=start, end=end, now=now)
    places_of = await _inspections_of(session, [g for r in due for g in r.grids], start, end, now)
    files = await digest_files.build(
        session,
        [g for r in due for g in r.grids],
        month,
        {locale_of(r.person, settings) for r in due},
        now=now,
        tz=settings.tz,
        workbook=True,
    )
    planned = []
    for recipient in due:
        locale = locale_of(recipient.person, settings)
        header = "🗓 <b>" + esc(month_title(month.start, locale)) + "</b>"
        sections = [
            render_report(reports[grid.id], locale, settings.tz) for grid in recipient.grids
        ]
        for grid in recipient.grids:  # and how its places were inspected (巡查, 隐患)
            places = places_of.get(grid.id or 0)
            if places is not None:
                sections.append(
                    inspection_ledgers.coverage_text(
                        *places, grid.name, partial(gettext_for, locale)
                    )
                )
        attachments = await digest_files.stage(
            files, recipient.grids, locale, settings.outbox_files
        )
        planned.append(
            PlannedDigest(
                recipient.person,
                refs[recipient.person.id],
                "\n\n".join([header, *sections]),
                attachments,
                month,
            )
        )
    return planned


async def send_monthly_indicators(session: AsyncSession, now: datetime, settings: Settings) -> int:
    """Last month's indicators, per community, to every centre operator who has not had them
    (planned and queued in one session; the scheduler plans in a reader session)."""
    return await queue_digests(session, await plan_monthly_indicators(session, now, settings), now)


async def _inspections_of(
    session: AsyncSession, grids: Sequence[Grid], start: datetime, end: datetime, now: datetime
) -> dict[int, tuple[list[inspection_ledgers.Coverage], inspection_ledgers.HazardFigures]]:
    """Each grid's inspection coverage now and its hazards of the month, for grids with
    places."""
    policy = await place_policy.current_policy(session)
    found = {}
    for grid in {g.id: g for g in grids if g.id is not None}.values():
        rows = await inspection_ledgers.coverage(session, [grid.path], policy, now)
        if rows and grid.id is not None:
            figures = await inspection_ledgers.hazard_figures(
                session, [grid.path], start, end, now
            )
            found[grid.id] = (rows, figures)
    return found
