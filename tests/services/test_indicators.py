"""Assessment indicators on a hand-built set of tickets with known answers (SQLite, PostgreSQL)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import DomainError, NotAllowed
from bot.services import indicators
from bot.services.indicators import Indicators, Ratio
from bot.services.message_size import split_message, utf16_length
from bot.services.people import RoleInGrid
from bot.services.ticket_numbers import street_id_of
from models import (
    Grid,
    Person,
    Rating,
    ReturnVisit,
    Role,
    SpotCheck,
    SpotCheckKind,
    SpotCheckResult,
    Ticket,
    TicketCategory,
    TicketEvent,
    TicketState,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(*args: int) -> datetime:
    """A local (Shanghai) wall time as an aware UTC instant."""
    return datetime(*args, tzinfo=SHANGHAI).astimezone(UTC)  # type: ignore[misc]


LONG = st.builds(str.__mul__, st.text(min_size=1, max_size=5), st.integers(2_000, 10_000))
MARCH = (at(2026, 3, 1), at(2026, 4, 1))
FEBRUARY = (at(2026, 2, 1), at(2026, 3, 1))
NOW = at(2026, 4, 3, 9)


@dataclass
class Tree:
    centre: Grid
    a: Grid  # community A (tier 1)
    a1: Grid  # tier 2 under A
    a1a: Grid  # tier 3 under A1
    a2: Grid  # another tier 2 under A, with no tickets
    b: Grid  # community B (tier 1)


async def build_tree(session: AsyncSession) -> Tree:
    async def grid(code: str, name: str, tier: int, parent: Grid | None) -> Grid:
        row = Grid(
            code=code,
            name=name,
            tier=tier,
            parent_id=None if parent is None else parent.id,
            created_at=at(2026, 1, 1),
        )
        session.add(row)
        await session.flush()
        row.path = f"{'/' if parent is None else parent.path}{row.id}/"
        session.add(row)
        return row

    centre = await grid("350211001", "杏林街道", 0, None)
    a = await grid("350211001001", "杏东社区", 1, centre)
    a1 = await grid("350211001001001", "杏东花园", 2, a)
    a1a = await grid("350211001001001001", "杏东花园一组", 3, a1)
    a2 = await grid("350211001001002", "杏东新村", 2, a)
    b = await grid("350211001002", "杏西社区", 1, centre)
    await session.flush()
    return Tree(centre, a, a1, a1a, a2, b)


class Builder:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.count = 0

    async def ticket(self, grid: Grid, created: datetime, **fields: Any) -> Ticket:
        self.count += 1
        row = Ticket(
            number=f"T{self.count:03d}",
            street_id=street_id_of(grid),
            short_number=2047 + self.count,  # four digits, told apart from the rest
            grid_id=grid.id or 0,
            category=fields.pop("category", TicketCategory.FACILITY),
            description="路灯坏了",
            state=fields.pop("state", TicketState.SUBMITTED),
            created_at=created,
            updated_at=created,
            **fields,
        )
        self.session.add(row)
        await self.session.flush()
        return row

    async def escalated(self, ticket: Ticket, when: datetime, to_tier: int, reason: str) -> None:
        self.session.add(
            TicketEvent(
                ticket_id=ticket.id or 0,
                at=when,
                action="escalated",
                data={"reason": reason, "from_tier": to_tier + 1, "to_tier": to_tier},
            )
        )
        await self.session.flush()

    async def return_visit(
        self, ticket: Ticket, done: datetime | None, rating: Rating | None
    ) -> None:
        self.session.add(
            ReturnVisit(
                ticket_id=ticket.id or 0,
                due_at=at(2026, 3, 18),
                done_at=done,
                rating=rating,
                created_at=at(2026, 3, 15),
            )
        )
        await self.session.flush()


def handled(
    dispatched: datetime,
    *,
    accept_in: timedelta = timedelta(hours=2),
    accepted_after: timedelta | None = timedelta(hours=1),
    resolve_in: timedelta = timedelta(days=3),
    resolved_after: timedelta | None = None,
    closed_after: timedelta | None = None,
) -> dict[str, Any]:
    """The clock fields of a ticket dispatched at ``dispatched``."""
    fields: dict[str, Any] = {
        "dispatched_at": dispatched,
        "accept_deadline": dispatched + accept_in,
        "resolve_deadline": dispatched + resolve_in,
    }
    if accepted_after is not None:
        fields["accepted_at"] = dispatched + accepted_after
    if resolved_after is not None:
        fields["resolved_at"] = dispatched + resolved_after
    if closed_after is not None:
        fields["closed_at"] = dispatched + closed_after
    return fields


async def hand_built(session: AsyncSession) -> tuple[Tree, dict[str, Ticket]]:
    """Sixteen tickets whose every figure is worked out by hand in the tests below."""
    tree = await build_tree(session)
    make = Builder(session)
    t: dict[str, Ticket] = {}
    day = timedelta(days=1)
    # on time all the way; the rating came after the deadline, which is not the handler's fault
    t["on_time"] = await make.ticket(
        tree.a1a,
        at(2026, 3, 2, 10),
        state=TicketState.CLOSED,
        solved=True,
        rating=Rating.SATISFIED,
        **handled(at(2026, 3, 2, 10), resolved_after=2 * day, closed_after=4 * day),
    )
    # nobody accepted in time: escalated, accepted within the next tier's window; resolved late
    t["late_accept"] = await make.ticket(
        tree.a1a,
        at(2026, 3, 3, 10),
        state=TicketState.CLOSED,
        solved=True,
        rating=Rating.BASICALLY_SATISFIED,
        **handled(
            at(2026, 3, 3, 10),
            accept_in=day + timedelta(hours=2),
            accepted_after=day,
            resolve_in=5 * day,
            resolved_after=6 * day,
            closed_after=6 * day,
        ),
    )
    await make.escalated(t["late_accept"], at(2026, 3, 3, 12), 2, "accept_overdue")
    # rejected (不予受理) without being accepted: closed, not solved, nothing to accept
    t["rejected"] = await make.ticket(
        tree.a1,
        at(2026, 3, 5, 10),
        state=TicketState.REJECTED,
        solved=False,
        **handled(at(2026, 3, 5, 10), accepted_after=None, closed_after=timedelta(hours=1)),
    )
    # rated unsatisfied, reopened (重办), accepted again in its new window, still open
    t["reopened"] = await make.ticket(
        tree.a1a,
        at(2026, 3, 10, 10),
        state=TicketState.IN_PROGRESS,
        rating=Rating.UNSATISFIED,
        reopen_count=1,
        **handled(
            at(2026, 3, 10, 10), accept_in=10 * day, accepted_after=9 * day, resolve_in=15 * day
        ),
    )
    # resolved, never rated; a return visit (回访) found the reporter satisfied
    t["visited"] = await make.ticket(
        tree.a1a,
        at(2026, 3, 12, 10),
        state=TicketState.RESOLVED,
        **handled(at(2026, 3, 12, 10), resolved_after=day),
    )
    await make.return_visit(t["visited"], at(2026, 3, 20), Rating.SATISFIED)
    # resolved, never rated, its return visit not done yet; accepted late
    t["unvisited"] = await make.ticket(
        tree.a1a,
        at(2026, 3, 15, 10),
        state=TicketState.RESOLVED,
        **handled(at(2026, 3, 15, 10), accepted_after=day, resolved_after=2 * day),
    )
    await make.return_visit(t["unvisited"], None, None)
    # filed on the last evening: still inside its accept window at NOW, so not judged yet
    t["fresh"] = await make.ticket(
        tree.a1a,
        at(2026, 3, 31, 23),
        state=TicketState.DISPATCHED,
        **handled(at(2026, 3, 31, 23), accept_in=timedelta(hours=59), accepted_after=None),
    )
    # past its accept deadline, never accepted
    t["ignored"] = await make.ticket(
        tree.a1a,
        at(2026, 3, 20, 10),
        state=TicketState.DISPATCHED,
        **handled(at(2026, 3, 20, 10), accepted_after=None),
    )
    # the same problem as another: counted nowhere
    t["duplicate"] = await make.ticket(
        tree.a1a,
        at(2026, 3, 10, 11),
        state=TicketState.DUPLICATE,
        closed_at=at(2026, 3, 10, 12),
        **{k: v for k, v in handled(at(2026, 3, 10, 11)).items() if k != "closed_at"},
    )
    # escalated because it was not resolved in time; finished inside the new tier's window
    t["late_resolve"] = await make.ticket(
        tree.a1a,
        at(2026, 3, 15, 9),
        state=TicketState.CLOSED,
        solved=True,
        rating=Rating.SATISFIED,
        **handled(at(2026, 3, 15, 9), resolve_in=10 * day, resolved_after=7 * day),
        closed_at=at(2026, 3, 22, 12),
    )
    await make.escalated(t["late_resolve"], at(2026, 3, 18), 1, "resolve_overdue")
    # community B: sent up by hand (not a missed deadline), closed on time
    t["b"] = await make.ticket(
        tree.b,
        at(2026, 3, 14, 10),
        state=TicketState.CLOSED,
        solved=True,
        rating=Rating.SATISFIED,
        **handled(at(2026, 3, 14, 10), resolve_in=11 * day, resolved_after=6 * day),
        closed_at=at(2026, 3, 21),
    )
    await make.escalated(t["b"], at(2026, 3, 15), 1, "by_hand")
    # the boundaries: filed a minute before March, escalated a moment before and at its start
    t["february"] = await make.ticket(
        tree.a1a,
        at(2026, 2, 28, 23, 59),
        state=TicketState.DISPATCHED,
        **handled(at(2026, 2, 28, 23, 59), accept_in=timedelta(seconds=20), accepted_after=None),
    )
    await make.escalated(t["february"], at(2026, 2, 28, 23, 59, 30), 2, "accept_overdue")
    await make.escalated(t["february"], at(2026, 3, 1), 1, "accept_overdue")
    t["first_moment"] = await make.ticket(tree.a2, at(2026, 3, 1))
    t["april"] = await make.ticket(tree.a1a, at(2026, 4, 1))
    await make.escalated(t["april"], at(2026, 4, 1, 1), 2, "by_hand")
    # filed at the street centre itself
    t["centre"] = await make.ticket(tree.centre, at(2026, 3, 5))
    return tree, t


COMMUNITY_A = Indicators(
    filed=10,  # on_time late_accept rejected reopened visited unvisited fresh ignored
    # late_resolve first_moment
    due_for_acceptance=7,  # on_time late_accept reopened visited unvisited ignored late_resolve
    accepted_on_time=4,  # on_time reopened visited late_resolve
    closed=4,  # on_time late_accept rejected late_resolve
    closed_on_time=2,  # on_time rejected
    solved=3,  # on_time late_accept late_resolve
    rated=5,  # on_time late_accept reopened visited(return visit) late_resolve
    satisfied=4,  # on_time late_accept visited late_resolve
    resolved=6,  # on_time late_accept reopened visited unvisited late_resolve
    reopened=1,
    unrated_resolved=2,  # visited unvisited
    return_visited=1,  # visited
    escalations={2: 1, 1: 2},  # late_accept → 2, late_resolve → 1, february at 3/1 → 1
)
COMMUNITY_B = Indicators(
    filed=1,
    due_for_acceptance=1,
    accepted_on_time=1,
    closed=1,
    closed_on_time=1,
    solved=1,
    rated=1,
    satisfied=1,
    resolved=1,
    escalations={1: 1},
)
CENTRE_ITSELF = Indicators(filed=1)


async def test_march_on_a_hand_built_set(session: AsyncSession) -> None:
    tree, _ = await hand_built(session)
    start, end = MARCH
    report = await indicators.indicator_report(session, tree.centre, start=start, end=end, now=NOW)
    assert [(grid.name, values) for grid, values in report.children] == [
        ("杏东社区", COMMUNITY_A),
        ("杏西社区", COMMUNITY_B),
    ]
    assert report.own == CENTRE_ITSELF
    assert report.total == COMMUNITY_A + COMMUNITY_B + CENTRE_ITSELF
    assert report.total.response == Ratio(5, 8)
    assert report.total.closure == Ratio(5, 12)
    assert report.total.on_time_closure == Ratio(3, 5)
    assert report.total.resolution == Ratio(4, 5)
    assert report.total.satisfaction == Ratio(5, 6)
    assert report.total.return_visits == Ratio(1, 2)
    assert report.total.redo == Ratio(1, 7)
    assert report.total.escalations == {2: 1, 1: 3}


async def test_the_subtree_below_a_community(session: AsyncSession) -> None:
    tree, _ = await hand_built(session)
    start, end = MARCH
    report = await indicators.indicator_report(session, tree.a, start=start, end=end, now=NOW)
    assert report.total == COMMUNITY_A
    rows = {grid.name: values for grid, values in report.children}
    assert rows["杏东新村"] == Indicators(filed=1)  # first_moment, on the boundary
    assert rows["杏东花园"] + Indicators(filed=1) == COMMUNITY_A
    assert report.own is None
    by_grid = await indicators.indicators_by_grid(
        session, paths=[tree.a1.path], start=start, end=end, now=NOW
    )
    assert by_grid[tree.a1.id or 0] == Indicators(filed=1, closed=1, closed_on_time=1)
    assert set(by_grid) == {tree.a1.id, tree.a1a.id}


async def test_february_sees_only_its_own_side_of_the_boundary(session: AsyncSession) -> None:
    tree, _ = await hand_built(session)
    start, end = FEBRUARY
    report = await indicators.indicator_report(session, tree.centre, start=start, end=end, now=NOW)
    # filed at 23:59 on the last day; its accept deadline has passed; escalated once in February
    assert report.total == Indicators(filed=1, due_for_acceptance=1, escalations={2: 1})
    assert report.total.response == Ratio(0, 1)
    assert report.total.closure == Ratio(0, 1)
    assert report.total.satisfaction.percent is None


async def test_a_ticket_still_in_its_accept_window_is_judged_once_the_window_passes(
    session: AsyncSession,
) -> None:
    tree, _ = await hand_built(session)
    start, end = MARCH
    later = NOW + timedelta(days=1)
    report = await indicators.indicator_report(session, tree.a, start=start, end=end, now=later)
    assert report.total.response == Ratio(4, 8)  # "fresh" is now due, and was not accepted


async def test_no_tickets_means_no_share(session: AsyncSession) -> None:
    tree = await build_tree(session)
    start, end = MARCH
    report = await indicators.indicator_report(session, tree.b, start=start, end=end, now=NOW)
    assert report.total == Indicators()
    assert report.children == ()
    text = indicators.render_report(report, "zh_Hans", SHANGHAI)
    assert "杏西社区" in text and "—" in text


async def test_the_report_reads_in_each_language(session: AsyncSession) -> None:
    tree, _ = await hand_built(session)
    start, end = MARCH
    report = await indicators.indicator_report(session, tree.centre, start=start, end=end, now=NOW)
    english = indicators.render_report(report, "en", SHANGHAI)
    assert "Accepted on time (及时签收率): 62.5% (5 of 8)" in english
    assert "Closed (结案率): 41.7% (5 of 12)" in english
    assert "Return visits to unrated tickets (回访率): 50.0% (1 of 2)" in english
    assert "杏东社区" in english and "杏西社区" in english and "杏林街道" in english
    assert "3/1 to 3/31" in english or "1/3 to 31/3" in english
    for locale in ("zh_Hans", "zh_Hant"):
        text = indicators.render_report(report, locale, SHANGHAI)
        assert "62.5%" in text and "杏东社区" in text
    assert all(utf16_length(part) <= 4096 for part in split_message(english))


def roles_over(role: Role, grid: Grid) -> list[RoleInGrid]:
    return [RoleInGrid(role, grid.id or 0, grid.name, grid.code, grid.tier, grid.path)]


async def person(session: AsyncSession) -> Person:
    row = Person(name="张建国", created_at=at(2026, 1, 1), updated_at=at(2026, 1, 1))
    session.add(row)
    await session.flush()
    return row


async def test_reports_follow_the_askers_scope(session: AsyncSession) -> None:
    tree, _ = await hand_built(session)
    head = await person(session)
    now = at(2026, 3, 20, 9)  # this month, up to and including today
    mine = await indicators.reports_for(
        session, head, roles_over(Role.HEAD, tree.a), grid_query=None, now=now, tz=SHANGHAI
    )
    assert [r.root.name for r in mine] == ["杏东社区"]
    assert mine[0].start == at(2026, 3, 1) and mine[0].end == at(2026, 3, 21)
    assert mine[0].total.filed == 9  # all but "fresh", filed on the 31st
    one = await indicators.reports_for(
        session, head, roles_over(Role.HEAD, tree.a), grid_query=tree.a1.code, now=now, tz=SHANGHAI
    )
    assert [r.root.name for r in one] == ["杏东花园"]
    with pytest.raises(NotAllowed):
        await indicators.reports_for(
            session,
            head,
            roles_over(Role.HEAD, tree.a),
            grid_query="杏西社区",
            now=now,
            tz=SHANGHAI,
        )
    with pytest.raises(NotAllowed):
        await indicators.reports_for(
            session, head, roles_over(Role.WORKER, tree.a1a), grid_query=None, now=now, tz=SHANGHAI
        )
    supervisor = await indicators.reports_for(
        session,
        head,
        roles_over(Role.SUPERVISOR, tree.centre),
        grid_query=None,
        now=now,
        tz=SHANGHAI,
    )
    assert [r.root.name for r in supervisor] == ["杏林街道"]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    query=st.one_of(
        st.text(max_size=300),
        LONG,
        st.just(" \t\u3000\n"),
        st.just("a\x00b"),
        st.just("\ud800"),
        st.just("３５０２１１００１００１"),
    )
)
async def test_any_grid_query_gets_a_report_or_a_clear_refusal(
    session: AsyncSession, query: str
) -> None:
    community = (await session.exec(select(Grid).where(Grid.code == "350211001001"))).first()
    if community is None:  # the first example builds the tree; the others reuse it
        community = (await build_tree(session)).a
    head = await person(session)
    try:
        reports = await indicators.reports_for(
            session, head, roles_over(Role.HEAD, community), grid_query=query, now=NOW, tz=SHANGHAI
        )
    except DomainError as refusal:
        assert refusal.message
    else:
        assert len(reports) == 1


@given(st.one_of(st.none(), st.text(), LONG))
def test_a_grid_query_is_cleaned_of_what_no_name_holds(raw: str | None) -> None:
    query = indicators.clean_grid_query(raw)
    assert len(query) <= 100 and query == query.strip()
    assert "\x00" not in query and "  " not in query
    query.encode("utf-8")  # no lone surrogates


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("３５０２１１００１", "350211001"),
        ("  杏东\u3000社区 \n", "杏东 社区"),
        ("杏\x00东\u200b社区", "杏东社区"),
        ("\ud800", ""),
        (" \t\n", ""),
        (None, ""),
        ("🏠" * 200, "🏠" * 100),
    ],
)
def test_grid_query_examples(raw: str | None, expected: str) -> None:
    assert indicators.clean_grid_query(raw) == expected


@given(
    lines=st.lists(
        st.text(alphabet=st.characters(exclude_characters="\n"), max_size=5000), max_size=30
    ),
    limit=st.integers(min_value=2, max_value=5000),
)
def test_split_message_keeps_every_line_within_the_limit(lines: list[str], limit: int) -> None:
    text = "\n".join(lines)
    parts = split_message(text, limit)
    assert all(0 < utf16_length(part) <= limit for part in parts)
    if all(utf16_length(line) <= limit for line in lines):
        # nothing is lost but blank lines at the cuts
        assert [x for x in "\n".join(parts).split("\n") if x.strip()] == [
            x for x in lines if x.strip()
        ]


def test_split_message_cuts_between_lines() -> None:
    text = "\n".join(f"第{i}行：" + "字" * 50 for i in range(300))
    parts = split_message(text)
    assert len(parts) > 1
    assert all(utf16_length(p) <= 4096 for p in parts)
    assert "\n".join(parts) == text


async def test_supervision_flows_are_counted_in_the_period(session: AsyncSession) -> None:
    """On-site checks (confirmed, sent back), urges and spot checks: events and marks of the
    period, by the grid of the ticket or the spot-checked item, and by the worker drawn."""
    tree = await build_tree(session)
    make = Builder(session)
    worker = Person(name="网格员甲", created_at=at(2026, 1, 1), updated_at=at(2026, 1, 1))
    boss = Person(name="督查乙", created_at=at(2026, 1, 1), updated_at=at(2026, 1, 1))
    session.add_all([worker, boss])
    await session.flush()
    old = await make.ticket(tree.a1a, at(2026, 2, 10), assignee_id=worker.id)  # filed before
    new = await make.ticket(tree.a1a, at(2026, 3, 5), assignee_id=worker.id)
    other = await make.ticket(tree.b, at(2026, 3, 6))
    for ticket, when, action in (
        (old, at(2026, 3, 2), "sent_back"),
        (old, at(2026, 3, 3), "verified"),
        (new, at(2026, 3, 7), "urged"),
        (new, at(2026, 3, 8), "urged"),
        (new, at(2026, 2, 20), "verified"),  # February: not this period
        (other, at(2026, 3, 9), "urged"),
    ):
        session.add(TicketEvent(ticket_id=ticket.id or 0, at=when, action=action))
    for grid, result, checked in (
        (tree.a1a, SpotCheckResult.FALSE, at(2026, 3, 10)),
        (tree.a1a, SpotCheckResult.CONFIRMED, at(2026, 3, 11)),
        (tree.a1a, None, None),  # drawn, not called back yet
        (tree.a1a, SpotCheckResult.CONFIRMED, at(2026, 2, 11)),  # February
    ):
        session.add(
            SpotCheck(
                supervisor_id=boss.id or 0,
                kind=SpotCheckKind.VISIT,
                worker_id=worker.id,
                grid_id=grid.id or 0,
                period_start=at(2026, 3, 1).date(),
                period_end=at(2026, 4, 1).date(),
                drawn_at=at(2026, 3, 10),
                result=result,
                checked_at=checked,
            )
        )
    await session.flush()

    report = await indicators.indicator_report(
        session, tree.centre, start=MARCH[0], end=MARCH[1], now=NOW
    )
    total = report.total
    assert (total.verified, total.sent_back, total.urged) == (1, 1, 3)
    assert (total.spot_confirmed, total.spot_false) == (1, 1)
    assert total.send_backs == Ratio(1, 2) and total.spot_checks == Ratio(1, 2)
    assert total.urged_share == Ratio(2, 2)  # both March tickets were urged
    by_child = {ref.code: values for ref, values in report.children}
    assert by_child["350211001001"].urged == 2 and by_child["350211001002"].urged == 1
    mine = await indicators.indicators_by_assignee(
        session, paths=[tree.centre.path], start=MARCH[0], end=MARCH[1], now=NOW
    )
    assert mine[worker.id or 0].spot_false == 1 and mine[worker.id or 0].urged == 2
    text = indicators.render_report(report, "zh_Hans", SHANGHAI)
    assert "督查催办：3 次" in text and "不属实 1 条" in text and "退回 1 次" in text
