"""Scorecards on a month of activity in the demo community: every figure checked against the
database by a query of its own (SQLite, PostgreSQL), the veto, the ranks, who may read what,
the policy file and the period parser with hostile input."""

from __future__ import annotations

import contextlib
import io
import json
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import load_workbook
from sqlalchemy import text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import InvalidInput, NotAllowed
from bot.i18n import gettext_for
from bot.services import (
    assessment_export,
    assessment_policy,
    place_policy,
    quotas,
    score_views,
    scorecards,
    visits,
)
from bot.services.assessment_policy import DEFAULT_POLICY, parse_policy, policy_to_json
from bot.services.demo import DEMO_PERSONAS, load_demo_data
from bot.services.indicators import Ratio
from bot.services.people import roles_of
from bot.services.periods import Period, PeriodKind
from bot.services.ticket_numbers import street_id_of
from models import (
    Grid,
    HandlingKind,
    Household,
    Inspection,
    Meeting,
    MeetingInvite,
    Person,
    Place,
    Role,
    RoleAssignment,
    Ticket,
    TicketCategory,
    TicketEvent,
    TicketState,
    VisitKind,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
MARCH = Period(PeriodKind.MONTH, date(2026, 3, 1))
NOW = datetime(2026, 4, 2, 9, tzinfo=SHANGHAI).astimezone(UTC)
START = datetime(2026, 3, 1, tzinfo=SHANGHAI).astimezone(UTC)
END = datetime(2026, 4, 1, tzinfo=SHANGHAI).astimezone(UTC)


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI).astimezone(UTC)  # type: ignore[misc]


@dataclass
class Month:
    community: Grid
    workers: list[Person]
    vetoed: Person


async def person_by_telegram(session: AsyncSession, name: str) -> Person:
    return (
        await session.exec(select(Person).where(Person.telegram_id == DEMO_PERSONAS[name]))
    ).one()


async def month_of_activity(session: AsyncSession) -> Month:
    """March 2026 in the first demo community: visits logged through the visit service,
    tickets each worker accepted (on time or not, closed or not, rated or not), two meetings
    (one cancelled) and one urgent safety hazard that missed its deadline."""
    await load_demo_data(session, at(2026, 2, 20, 7))
    await quotas.ensure_default_rules(session, at(2026, 2, 20, 7), tz=SHANGHAI)
    community = (
        await session.exec(select(Grid).where(Grid.tier == 1).order_by(col(Grid.code)))
    ).first()
    assert community is not None
    workers = list(
        (
            await session.exec(
                select(Person)
                .join(RoleAssignment, col(RoleAssignment.person_id) == col(Person.id))
                .join(Grid, col(Grid.id) == col(RoleAssignment.grid_id))
                .where(
                    RoleAssignment.role == Role.WORKER,
                    col(Grid.path).startswith(community.path),
                )
                .order_by(col(Person.id))
            )
        ).all()
    )
    assert len(workers) == 9
    rng = random.Random(23)
    kinds = [VisitKind.PHONE, VisitKind.IN_PERSON, VisitKind.LECTURE, VisitKind.OTHER]
    number = 0
    for index, worker in enumerate(workers):
        assert worker.id is not None
        roles = await roles_of(session, worker.id)
        households = (
            await session.exec(
                select(Household).where(Household.worker_id == worker.id).order_by(Household.id)
            )
        ).all()
        # worker i visits a share of their households that falls with i
        for household in households[: max(1, len(households) * (9 - index) // 9)]:
            day = at(2026, 3, rng.randint(2, 27), 10, rng.randint(0, 59))
            await visits.log_visit(
                session,
                worker,
                roles,
                household.id or 0,
                rng.choice(kinds),
                "走访记录",
                day,
                tz=SHANGHAI,
            )
        # an April visit and a February one must not count for March
        await visits.log_visit(
            session,
            worker,
            roles,
            households[-1].id or 0,
            VisitKind.IN_PERSON,
            "四月",
            at(2026, 4, 1, 10),
            tz=SHANGHAI,
        )
        grid_id = roles[0].grid_id
        grid_row = await session.get(Grid, grid_id)
        assert grid_row is not None
        street = street_id_of(grid_row)
        for _ in range(3 + index % 3):
            number += 1
            filed = at(2026, 3, rng.randint(1, 25), 9)
            accepted = filed + timedelta(hours=rng.choice([1, 1, 3]))
            closed = rng.random() < 0.7
            session.add(
                Ticket(
                    number=f"S{number:04d}",
                    street_id=street,
                    short_number=number,
                    grid_id=grid_id,
                    category=TicketCategory.FACILITY,
                    description="路灯坏了",
                    state=TicketState.CLOSED if closed else TicketState.IN_PROGRESS,
                    assignee_id=worker.id,
                    dispatched_at=filed,
                    accept_deadline=filed + timedelta(hours=2),
                    resolve_deadline=filed + timedelta(days=3),
                    accepted_at=accepted,
                    resolved_at=filed + timedelta(days=rng.choice([1, 2, 5])) if closed else None,
                    closed_at=filed + timedelta(days=6) if closed else None,
                    solved=True if closed else None,
                    rating=rng.choice(["satisfied", "unsatisfied", None]) if closed else None,
                    reopen_count=rng.choice([0, 0, 1]) if closed else 0,
                    created_at=filed,
                    updated_at=filed,
                )
            )
    # the veto: an urgent safety hazard the fourth worker accepted and let run past its deadline
    vetoed = workers[3]
    hazard_grid = await session.get(Grid, (await roles_of(session, vetoed.id or 0))[0].grid_id)
    assert hazard_grid is not None and hazard_grid.id is not None
    hazard = Ticket(
        number="S9999",
        street_id=street_id_of(hazard_grid),
        short_number=9999,
        grid_id=hazard_grid.id,
        category=TicketCategory.SAFETY,
        kind=HandlingKind.URGENT,
        description="配电箱冒烟",
        state=TicketState.IN_PROGRESS,
        assignee_id=vetoed.id,
        dispatched_at=at(2026, 3, 12, 9),
        accept_deadline=at(2026, 3, 12, 10),
        resolve_deadline=at(2026, 3, 13, 9),
        accepted_at=at(2026, 3, 12, 9, 30),
        created_at=at(2026, 3, 12, 9),
        updated_at=at(2026, 3, 13, 9),
    )
    session.add(hazard)
    await session.flush()
    session.add(
        TicketEvent(
            ticket_id=hazard.id or 0,
            at=at(2026, 3, 13, 9, 1),
            action="escalated",
            data={"reason": "resolve_overdue", "from_tier": 3, "to_tier": 2},
        )
    )
    # meetings: one held (some checked in), one cancelled, one in April
    organiser = await person_by_telegram(session, "community_head")
    for starts, cancelled in (
        (at(2026, 3, 10, 15), None),
        (at(2026, 3, 20, 15), at(2026, 3, 19, 9)),
        (at(2026, 4, 1, 15), None),
    ):
        meeting = Meeting(
            organiser_id=organiser.id or 0,
            grid_id=community.id or 0,
            title="网格例会",
            starts_at=starts,
            cancelled_at=cancelled,
            created_at=at(2026, 3, 1),
            updated_at=at(2026, 3, 1),
        )
        session.add(meeting)
        await session.flush()
        for index, worker in enumerate(workers):
            session.add(
                MeetingInvite(
                    meeting_id=meeting.id or 0,
                    person_id=worker.id or 0,
                    checked_in_at=starts if index % 3 != 2 else None,
                )
            )
    # inspections (巡查): a third of the community's places inspected in March, a third
    # inspected and the inspection withdrawn, a third last inspected in January
    places = (
        await session.exec(
            select(Place)
            .join(Grid, col(Grid.id) == col(Place.grid_id))
            .where(col(Grid.path).startswith(community.path))
            .order_by(col(Place.id))
        )
    ).all()
    assert places
    for index, place in enumerate(places):
        when = at(2026, 3, 20 + index % 5, 10) if index % 3 != 2 else at(2026, 1, 10, 10)
        session.add(
            Inspection(
                place_id=place.id or 0,
                inspector_id=workers[index % len(workers)].id or 0,
                kind="routine",
                inspected_at=when,
                withdrawn_at=when + timedelta(hours=1) if index % 3 == 1 else None,
                created_at=when,
                updated_at=when,
            )
        )
    await session.flush()
    return Month(community, workers, vetoed)


async def rows(session: AsyncSession, sql: str, **params: Any) -> list[Any]:
    await session.flush()
    return list((await (await session.connection()).execute(text(sql), params)).all())


async def expected_visits(session: AsyncSession, worker_id: int) -> Ratio:
    """March's monthly rules, straight from the visit rows: every household had a contact of
    any kind; every key household had a home visit."""
    households = await rows(
        session, "SELECT id, is_key FROM household WHERE worker_id = :w", w=worker_id
    )
    seen = await rows(
        session,
        "SELECT household_id, kind FROM visit WHERE worker_id = :w AND withdrawn_at IS NULL"
        " AND visited_at >= :s AND visited_at < :e",
        w=worker_id,
        s=START,
        e=END,
    )
    contacted = {h for h, _ in seen}
    at_home = {h for h, kind in seen if kind == "in_person"}
    keys = [h for h, is_key in households if is_key]
    part = sum(1 for h, _ in households if h in contacted) + sum(1 for h in keys if h in at_home)
    return Ratio(part, len(households) + len(keys))


async def expected_tickets(session: AsyncSession, worker_id: int) -> dict[str, Ratio]:
    found = await rows(
        session,
        "SELECT accepted_at <= accept_deadline, state, resolved_at <= resolve_deadline,"
        " rating, reopen_count, resolved_at IS NOT NULL, id FROM ticket"
        " WHERE assignee_id = :w AND created_at >= :s AND created_at < :e",
        w=worker_id,
        s=START,
        e=END,
    )
    escalated = {
        r[0]
        for r in await rows(session, "SELECT ticket_id FROM ticket_event WHERE action='escalated'")
    }
    closed = [r for r in found if r[1] == "closed"]
    rated = [r for r in found if r[3] is not None]
    resolved = [r for r in found if r[5] or r[4] > 0]
    return {
        "response": Ratio(sum(1 for r in found if r[0]), len(found)),
        "on_time_closure": Ratio(
            sum(1 for r in closed if r[2] and r[6] not in escalated), len(closed)
        ),
        "satisfaction": Ratio(sum(1 for r in rated if r[3] == "satisfied"), len(rated)),
        "redo": Ratio(sum(1 for r in resolved if r[4] > 0), len(resolved)),
    }


async def expected_meetings(session: AsyncSession, worker_id: int) -> Ratio:
    [(invited, present)] = await rows(
        session,
        "SELECT count(*), count(i.checked_in_at) FROM meeting_invite i"
        " JOIN meeting m ON m.id = i.meeting_id WHERE i.person_id = :w"
        " AND m.cancelled_at IS NULL AND m.starts_at >= :s AND m.starts_at < :e",
        w=worker_id,
        s=START,
        e=END,
    )
    return Ratio(int(present), int(invited))


async def expected_inspections(session: AsyncSession, path: str) -> Ratio:
    """Places of the subtree not overdue at the end of March, from the inspection rows and
    each type's cadence: a routine inspection, not withdrawn, within the interval before."""
    policy = await place_policy.current_policy(session)
    interval = {}
    for place_type in policy.types:
        cadence = place_type.cadence_of("worker")
        if cadence is not None:
            interval[place_type.key] = cadence.interval
    found = await rows(
        session,
        "SELECT p.id, p.type_key, max(i.inspected_at) FROM place p JOIN grid g ON"
        " g.id = p.grid_id LEFT JOIN inspection i ON i.place_id = p.id AND i.kind = 'routine'"
        " AND i.withdrawn_at IS NULL AND i.inspected_at < :e"
        " WHERE g.path LIKE :p AND p.active AND p.created_at < :e GROUP BY p.id, p.type_key",
        p=path + "%",
        e=END,
    )
    counted = [r for r in found if r[1] in interval]
    done = 0
    for _place, kind, last in counted:
        if last is not None:
            last = last if isinstance(last, datetime) else datetime.fromisoformat(str(last))
            last = last if last.tzinfo else last.replace(tzinfo=UTC)
            done += int(last > END - interval[kind])
    return Ratio(done, len(counted))


async def test_a_month_of_activity_gives_figures_the_database_confirms(
    session: AsyncSession,
) -> None:
    month = await month_of_activity(session)
    ranking = await scorecards.ranking(session, month.community, MARCH, now=NOW, tz=SHANGHAI)
    assert ranking.end == END  # March is over: its figures run to its end
    assert {c.subject_id for c in ranking.workers} == {w.id for w in month.workers}
    for card in ranking.workers:
        assert card.figures["visits"] == await expected_visits(session, card.subject_id)
        tickets = await expected_tickets(session, card.subject_id)
        for key, ratio in tickets.items():
            assert card.figures[key] == ratio, (card.name, key)
        assert card.figures["meetings"] == await expected_meetings(session, card.subject_id)
        assert card.figures["meetings"].whole == 1  # the cancelled and the April ones left out
        worker_grid = (
            await rows(
                session,
                "SELECT g.path FROM grid g JOIN role_assignment r ON r.grid_id = g.id"
                " WHERE r.person_id = :w AND r.role = 'worker' ORDER BY r.id",
                w=card.subject_id,
            )
        )[0][0]
        assert card.figures["inspections"] == await expected_inspections(session, worker_grid)
        assert card.score is not None
    # the visit rules behind the figure add up to it
    for card in ranking.workers:
        assert sum(r.fulfilled for r in card.visit_rules) == card.figures["visits"].part
        assert sum(r.households for r in card.visit_rules) == card.figures["visits"].whole
    # the veto: last, whatever the score; the others by score, best first
    last = ranking.workers[-1]
    assert last.subject_id == month.vetoed.id and last.vetoed
    scores = [c.score or 0.0 for c in ranking.workers[:-1]]
    assert scores == sorted(scores, reverse=True)
    assert [c.rank for c in ranking.workers][0] == 1
    # grids one tier below: their visits are their households', from the household rows
    for card in ranking.grids:
        grid = await session.get(Grid, card.subject_id)
        assert grid is not None
        in_grid = await rows(
            session,
            "SELECT h.worker_id FROM household h JOIN grid g ON g.id = h.grid_id"
            " WHERE g.path LIKE :p AND h.worker_id IS NOT NULL GROUP BY h.worker_id",
            p=grid.path + "%",
        )
        expected = [await expected_visits(session, int(w)) for (w,) in in_grid]
        assert card.figures["visits"] == Ratio(
            sum(r.part for r in expected), sum(r.whole for r in expected)
        )
        assert card.figures["inspections"] == await expected_inspections(session, grid.path)
    in_community = await expected_inspections(session, month.community.path)
    assert 0 < in_community.part < in_community.whole  # some on time, some not
    assert sum(c.figures["inspections"].whole for c in ranking.grids) == in_community.whole
    vetoed_grid = [c for c in ranking.grids if c.vetoed]
    assert len(vetoed_grid) == 1 and ranking.grids[-1] is vetoed_grid[0]


async def test_quarter_and_year_add_the_longer_rules(session: AsyncSession) -> None:
    month = await month_of_activity(session)
    quarter = Period(PeriodKind.QUARTER, date(2026, 1, 1))
    year = Period(PeriodKind.YEAR, date(2026, 1, 1))
    by_period = {
        p: await scorecards.ranking(session, month.community, p, now=NOW, tz=SHANGHAI)
        for p in (MARCH, quarter, year)
    }
    worker = month.workers[0].id
    cards = {p: next(c for c in r.workers if c.subject_id == worker) for p, r in by_period.items()}
    # the quarter counts March's monthly rules and the quarterly ones over the quarter
    names = {r.rule_name for r in cards[quarter].visit_rules}
    assert "Quarterly home visit to ordinary households" in names
    assert "Quarterly home visit to ordinary households" not in {
        r.rule_name for r in cards[MARCH].visit_rules
    }
    assert cards[quarter].figures["visits"].whole > cards[MARCH].figures["visits"].whole
    # the year runs to now: April's visit is in it
    assert by_period[year].end == NOW


def test_the_score_is_the_weighted_mean_of_what_has_something_to_count() -> None:
    figures = {"visits": Ratio(1, 2), "redo": Ratio(1, 4), "meetings": Ratio(0, 0)}
    # visits 40 × 0.5, redo 5 × (1 − 0.25); meetings has nothing to count
    assert scorecards.score_of(figures, DEFAULT_POLICY) == pytest.approx(
        100 * (40 * 0.5 + 5 * 0.75) / 45
    )
    assert scorecards.score_of({"meetings": Ratio(0, 0)}, DEFAULT_POLICY) is None


async def test_who_sees_which_ranking(session: AsyncSession) -> None:
    month = await month_of_activity(session)
    worker = await person_by_telegram(session, "worker")
    worker_roles = await roles_of(session, worker.id or 0)
    [mine] = await scorecards.rankings_for(
        session, worker, worker_roles, args="2026-03", now=NOW, tz=SHANGHAI
    )
    assert mine.peers and mine.grids == ()
    assert mine.own is not None and mine.own.subject_id == worker.id
    own_grid = await session.get(Grid, worker_roles[0].grid_id)
    assert own_grid is not None and mine.root.id == own_grid.parent_id
    # a worker cannot name a grid they do not work in
    with pytest.raises(NotAllowed):
        await scorecards.rankings_for(
            session,
            worker,
            worker_roles,
            args=f"{month.community.code} 2026-03",
            now=NOW,
            tz=SHANGHAI,
        )
    # a community head sees their community, not the next one
    head = await person_by_telegram(session, "community_head")
    head_roles = await roles_of(session, head.id or 0)
    [theirs] = await scorecards.rankings_for(
        session, head, head_roles, args="上月", now=NOW, tz=SHANGHAI
    )
    assert theirs.root.id == month.community.id and len(theirs.workers) == 9
    assert theirs.own is None and theirs.grids
    other = (
        await session.exec(select(Grid).where(Grid.tier == 1).order_by(col(Grid.code).desc()))
    ).first()
    assert other is not None and other.id != month.community.id
    with pytest.raises(NotAllowed):
        await scorecards.rankings_for(
            session, head, head_roles, args=other.code, now=NOW, tz=SHANGHAI
        )
    resident = await person_by_telegram(session, "resident")
    with pytest.raises(NotAllowed):
        await scorecards.rankings_for(
            session,
            resident,
            await roles_of(session, resident.id or 0),
            args=None,
            now=NOW,
            tz=SHANGHAI,
        )


async def test_only_an_admin_changes_the_policy_and_the_newest_applies(
    session: AsyncSession,
) -> None:
    await load_demo_data(session, at(2026, 2, 20, 7))
    admin = await person_by_telegram(session, "admin")
    head = await person_by_telegram(session, "community_head")
    body = policy_to_json(DEFAULT_POLICY)
    body["weights"]["meetings"] = 0
    body["veto"] = []
    raw = json.dumps(body).encode()
    with pytest.raises(NotAllowed):
        await assessment_policy.set_policy(
            session, actor=head, roles=await roles_of(session, head.id or 0), raw=raw, now=NOW
        )
    await assessment_policy.set_policy(
        session, actor=admin, roles=await roles_of(session, admin.id or 0), raw=raw, now=NOW
    )
    policy = await assessment_policy.current_policy(session)
    assert policy.weight("meetings") == 0 and policy.veto == ()


def test_the_default_policy_reads_back_as_itself() -> None:
    assert parse_policy(json.dumps(policy_to_json(DEFAULT_POLICY))) == DEFAULT_POLICY


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xfe not utf-8",
        b"[1, 2]",
        b"{",
        b'{"weights": {"visits": 40, "visitz": 5}}',
        b'{"weights": {"visits": -1}}',
        b'{"weights": {"visits": true}}',
        b'{"weights": {"visits": 0}}',
        b'{"weights": {"visits": 1}, "veto": [{"kind": "bribe"}]}',
        b'{"weights": {"visits": 1}, "veto": [{"kind": "missed_deadline", "categories": []}]}',
        b'{"weights": {"visits": 1}, "veto": ['
        b'{"kind": "missed_deadline", "categories": ["fire"], "handling": ["x"]}]}',
        b'{"version": 2, "weights": {"visits": 1}}',
        b"[" * 100_000,
        b"{}" + b" " * (70 * 1024),
    ],
)
def test_a_bad_policy_file_is_refused_whole(raw: bytes) -> None:
    with pytest.raises(InvalidInput):
        parse_policy(raw)


@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_policy_file_is_either_read_or_refused_with_a_reason(raw: bytes) -> None:
    with contextlib.suppress(InvalidInput):
        parse_policy(raw)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("2026-03", Period(PeriodKind.MONTH, date(2026, 3, 1))),
        ("２０２６年３月", Period(PeriodKind.MONTH, date(2026, 3, 1))),
        ("2026/3", Period(PeriodKind.MONTH, date(2026, 3, 1))),
        ("2026Q1", Period(PeriodKind.QUARTER, date(2026, 1, 1))),
        ("2026年第1季度", Period(PeriodKind.QUARTER, date(2026, 1, 1))),
        ("2025", Period(PeriodKind.YEAR, date(2025, 1, 1))),
        ("上月", Period(PeriodKind.MONTH, date(2026, 3, 1))),
        ("本季度", Period(PeriodKind.QUARTER, date(2026, 4, 1))),
        ("Year", Period(PeriodKind.YEAR, date(2026, 1, 1))),
        ("杏东社区", None),
        ("2026-13", None),
    ],
)
def test_periods_as_people_type_them(typed: str, expected: Period | None) -> None:
    assert scorecards.parse_period(typed, NOW, SHANGHAI) == expected


def test_a_period_not_started_or_too_old_is_refused() -> None:
    for typed in ("2026-05", "2027", "1999", "0000-01"):
        with pytest.raises(InvalidInput):
            scorecards.parse_period(typed, NOW, SHANGHAI)


@given(st.text(max_size=60))
def test_any_text_is_a_grid_and_a_period_or_a_clear_refusal(typed: str) -> None:
    try:
        query, period = scorecards.split_args(typed, NOW, SHANGHAI)
    except InvalidInput:
        return
    assert period.start <= date(2026, 4, 2)
    assert len(query) <= len(typed)


async def test_the_workbook_opens_and_its_totals_match(session: AsyncSession) -> None:
    month = await month_of_activity(session)
    ranking = await scorecards.ranking(session, month.community, MARCH, now=NOW, tz=SHANGHAI)
    head = await person_by_telegram(session, "community_head")
    data, name = await assessment_export.workbook(
        session,
        head,
        ranking,
        DEFAULT_POLICY,
        translate=partial(gettext_for, "zh_Hans"),
        now=NOW,
    )
    assert name.endswith(".xlsx")
    book = load_workbook(io.BytesIO(data))
    assert book.sheetnames == ["汇总", *(c.name for c in ranking.grids), "指标说明"]
    summary = [list(r) for r in book["汇总"].iter_rows(values_only=True)]
    header, body, total = summary[0], summary[1:-1], summary[-1]
    assert book["汇总"].freeze_panes == "C2"
    assert book["汇总"].conditional_formatting  # the score colours and the veto grey
    numbers = [i for i, title in enumerate(header) if str(title).endswith(("完成", "应完成"))]
    assert len(numbers) == 2 * len(assessment_policy.MEASURES)
    for column in numbers:
        assert total[column] == sum(row[column] for row in body)
    visits_done = header.index("走访：完成")
    for row in body:
        sheet = [list(r) for r in book[str(row[1])].iter_rows(values_only=True)]
        worker_column = sheet[0].index("走访：完成")
        assert row[visits_done] == sum(r[worker_column] for r in sheet[1:])
    by_name = {c.name: c for c in ranking.workers}
    for sheet_name in book.sheetnames[1:-1]:
        rows_ = [list(r) for r in book[sheet_name].iter_rows(values_only=True)]
        meetings = rows_[0].index("例会出勤：完成")
        for row in rows_[1:]:
            assert row[meetings] == by_name[str(row[1])].figures["meetings"].part
    definitions = [list(r) for r in book["指标说明"].iter_rows(values_only=True)]
    assert [r[1] for r in definitions[1:8]] == [40, 10, 15, 15, 15, 5, 10]
    # the inspections on time, per community and in the total row
    done = header.index(
        gettext_for("zh_Hans", "{measure}: done").format(
            measure=gettext_for("zh_Hans", "Inspections on time (按期巡查)")
        )
    )
    by_grid = {c.name: c for c in ranking.grids}
    for row in body:
        assert row[done] == by_grid[str(row[1])].figures["inspections"].part
    assert "一票否决" in str(definitions[-1][2])


async def test_a_worker_may_not_take_the_workbook(session: AsyncSession) -> None:
    await month_of_activity(session)
    worker = await person_by_telegram(session, "worker")
    with pytest.raises(NotAllowed):
        await scorecards.rankings_for(
            session,
            worker,
            await roles_of(session, worker.id or 0),
            args=None,
            now=NOW,
            tz=SHANGHAI,
            export=True,
        )


def test_the_card_says_where_the_points_were_lost() -> None:
    card = scorecards.Scorecard(
        subject_id=1,
        name="王芳",
        grid_name="杏东花园一组",
        figures={"visits": Ratio(3, 7), "satisfaction": Ratio(1, 2), "redo": Ratio(0, 3)},
        visit_rules=(
            scorecards.RuleFigure(1, "Monthly home visit to key households", 2, 5),
            scorecards.RuleFigure(2, "Monthly contact with every household", 1, 2),
        ),
    )
    # visits lose 40 × 3/7 on the key households and 40 × 1/7 on the contacts;
    # satisfaction 15 × 1/2; redo nothing (none reopened)
    assert score_views.shortfalls(card, DEFAULT_POLICY, "zh_Hans") == [
        "重点户每月入户走访 2/5",
        "满意度 1/2",
    ]
