"""Digests: the weekly one to heads (its figures checked against the database), the half-monthly
dispute screening and the monthly indicators to the centre; exactly once per period and person."""

from __future__ import annotations

import io
import random
import tempfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from openpyxl import load_workbook
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.i18n import gettext_for
from bot.services import digests, quotas
from bot.services.digests import Week
from bot.services.message_size import utf16_length
from bot.services.ticket_numbers import shown_number
from bot.settings import Settings
from models import (
    OPEN_TICKET_STATES,
    Grid,
    Household,
    OutboxMessage,
    Person,
    Place,
    Rating,
    Role,
    RoleAssignment,
    Ticket,
    TicketCategory,
    TicketEvent,
    TicketState,
    VisitTally,
)
from tests.services.test_indicators import SHANGHAI, Builder, Tree, at, build_tree

MONDAY = at(2026, 3, 16, 8, 30)  # the digest of week 11: 9–15 March
WEEK_11 = Week(date(2026, 3, 9))
# the digests' charts and workbooks are staged under data_dir until sent: not in the checkout
SETTINGS = Settings(  # type: ignore[call-arg]
    _env_file=None, data_dir=Path(tempfile.gettempdir()) / "gridbot-test-digests"
)


@dataclass
class People:
    head: Person  # head of the tier-2 grid A1, reads Simplified Chinese
    community_head: Person  # head of community A and of community B, reads English
    unreachable_head: Person  # head of A2, blocked the bot
    centre: Person  # centre operator over the whole street, reads Traditional Chinese
    sub_centre: Person  # centre operator of community B only (分中心)


async def staff(session: AsyncSession, tree: Tree) -> People:
    ids = iter(range(9_100_000_001, 9_100_000_100))

    async def person(name: str, role: Role, *grids: Grid, **fields: object) -> Person:
        row = Person(
            name=name,
            telegram_id=next(ids),
            created_at=at(2026, 1, 1),
            updated_at=at(2026, 1, 1),
            **fields,
        )
        session.add(row)
        await session.flush()
        for grid in grids:
            session.add(
                RoleAssignment(
                    person_id=row.id or 0,
                    role=role,
                    grid_id=grid.id or 0,
                    created_at=row.created_at,
                )
            )
        await session.flush()
        return row

    people = People(
        head=await person("张建国", Role.HEAD, tree.a1, telegram_language="zh-hans"),
        community_head=await person("林海", Role.HEAD, tree.a, tree.b, tree.a1, locale="en"),
        unreachable_head=await person("周敏", Role.HEAD, tree.a2, reachable=False),
        centre=await person("陈静", Role.CENTER, tree.centre, locale="zh_Hant"),
        sub_centre=await person("黄磊", Role.CENTER, tree.b),
    )
    # a former head: the role is no longer active
    former = await person("吴刚", Role.WORKER, tree.a1a)
    session.add(
        RoleAssignment(
            person_id=former.id or 0,
            role=Role.HEAD,
            grid_id=tree.a1.id or 0,
            active=False,
            created_at=former.created_at,
        )
    )
    await session.flush()
    return people


async def random_tickets(session: AsyncSession, tree: Tree, seed: int = 11) -> list[Ticket]:
    """Sixty tickets around week 11 with every state, deadline and escalation mixed."""
    rng = random.Random(seed)
    make = Builder(session)
    places = [tree.a1a, tree.a1a, tree.a1, tree.a2, tree.b, tree.centre]
    made = []
    for _ in range(60):
        created = at(2026, 3, 2) + timedelta(minutes=rng.randrange(0, 14 * 24 * 60))
        state = rng.choice(list(TicketState))
        deadline = created + timedelta(hours=rng.choice([4, 24, 72, 200]))
        closed_at = None
        if state in (TicketState.CLOSED, TicketState.REJECTED, TicketState.DUPLICATE):
            closed_at = min(created + timedelta(hours=rng.randrange(1, 200)), MONDAY)
        paused_at = None
        if state is TicketState.WAITING_REPORTER:
            paused_at = created + timedelta(hours=rng.randrange(1, 100))
        ticket = await make.ticket(
            rng.choice(places),
            created,
            state=state,
            category=rng.choice([TicketCategory.DISPUTE, TicketCategory.FACILITY]),
            dispatched_at=created,
            resolve_deadline=None if state is TicketState.SUBMITTED else deadline,
            closed_at=closed_at,
            paused_at=paused_at,
            solved=state is TicketState.CLOSED,
            rating=Rating.SATISFIED if state is TicketState.CLOSED else None,
        )
        for _ in range(rng.choice([0, 0, 1, 2])):
            when = created + timedelta(hours=rng.randrange(1, 150))
            await make.escalated(ticket, when, rng.choice([2, 1, 0]), "resolve_overdue")
        made.append(ticket)
    return made


async def households_with_visits(session: AsyncSession, tree: Tree) -> None:
    """Five households under A1a and two under B; three contacted this month."""
    now = at(2026, 1, 1)
    for i, (grid, contacted) in enumerate(
        [(tree.a1a, True), (tree.a1a, True), (tree.a1a, False), (tree.a1a, False)]
        + [(tree.a1a, False), (tree.b, True), (tree.b, False)]
    ):
        household = Household(
            code=f"H{i:02d}",
            grid_id=grid.id or 0,
            address="杏东路1号",
            head_name="刘秀英",
            created_at=now,
            updated_at=now,
        )
        session.add(household)
        await session.flush()
        if contacted:
            session.add(
                VisitTally(
                    household_id=household.id or 0,
                    period="month",
                    period_start=date(2026, 3, 1),
                    contacts=1,
                )
            )
    await quotas.ensure_default_rules(session, at(2026, 1, 2), tz=SHANGHAI)
    await session.flush()


# --- the weekly figures, checked against the database ----------------------------------------


async def expected_weekly(session: AsyncSession, grid: Grid, now: datetime) -> tuple[int, ...]:
    """The four counts of ``grid``'s subtree, worked out ticket by ticket in Python."""
    start, end = WEEK_11.utc_bounds(SHANGHAI)
    paths = {g.id: g.path for g in (await session.exec(select(Grid))).all()}
    mine = [
        t
        for t in (await session.exec(select(Ticket))).all()
        if paths[t.grid_id].startswith(grid.path)
    ]
    events = (
        await session.exec(select(TicketEvent).where(TicketEvent.action == "escalated"))
    ).all()
    escalated = {e.ticket_id for e in events if start <= e.at < end}
    opened = sum(1 for t in mine if start <= t.created_at < end and t.state != "duplicate")
    closed = sum(
        1
        for t in mine
        if t.closed_at is not None
        and start <= t.closed_at < end
        and t.state in ("closed", "rejected")
    )
    overdue = sum(
        1
        for t in mine
        if t.state in OPEN_TICKET_STATES
        and t.resolve_deadline is not None
        and t.resolve_deadline < (t.paused_at or now)
    )
    return opened, closed, overdue, sum(1 for t in mine if t.id in escalated)


async def test_weekly_figures_match_the_database(session: AsyncSession) -> None:
    tree = await build_tree(session)
    await random_tickets(session, tree)
    await households_with_visits(session, tree)
    grids = [tree.centre, tree.a, tree.a1, tree.a1a, tree.a2, tree.b]
    figures = await digests.weekly_figures(session, grids, week=WEEK_11, now=MONDAY, tz=SHANGHAI)
    assert [f.grid.id for f in figures] == [g.id for g in grids]
    for grid, figure in zip(grids, figures, strict=True):
        expected = await expected_weekly(session, grid, MONDAY)
        assert (figure.opened, figure.closed, figure.overdue, figure.escalated) == expected
        assert len(figure.oldest_overdue) == min(figure.overdue, digests.MAX_OVERDUE_LISTED)
        deadlines = [t.resolve_deadline for t in figure.oldest_overdue]
        assert deadlines == sorted(deadlines)
    by_name = {f.grid.name: f for f in figures}
    assert sum(by_name[n].opened for n in ("杏东社区", "杏西社区")) < by_name["杏林街道"].opened
    assert by_name["杏林街道"].opened > 0 and by_name["杏林街道"].overdue > 0
    # visit quotas: "monthly contact with every household", straight from the tallies
    contact = "Monthly contact with every household"
    quota = {f.grid.name: {q.rule_name: q for q in f.quota} for f in figures}
    assert (quota["杏东花园"][contact].fulfilled, quota["杏东花园"][contact].households) == (2, 5)
    assert (quota["杏西社区"][contact].fulfilled, quota["杏西社区"][contact].households) == (1, 2)
    assert (quota["杏林街道"][contact].fulfilled, quota["杏林街道"][contact].households) == (3, 7)
    assert quota["杏东新村"][contact].households == 0


async def test_the_week_reported_is_the_last_full_local_week() -> None:
    assert digests.last_full_week(MONDAY, SHANGHAI) == WEEK_11
    assert digests.last_full_week(at(2026, 3, 16, 0, 0), SHANGHAI) == WEEK_11
    assert digests.last_full_week(at(2026, 3, 15, 23, 59), SHANGHAI) == Week(date(2026, 3, 2))
    assert digests.last_full_week(at(2026, 3, 22, 23), SHANGHAI) == WEEK_11
    assert WEEK_11.label == "2026-W11"
    assert Week(date(2026, 12, 28)).label == "2026-W53"
    assert digests.half_month_start(at(2026, 3, 16, 0, 0), SHANGHAI) == date(2026, 3, 16)
    assert digests.half_month_start(at(2026, 3, 15, 23, 59), SHANGHAI) == date(2026, 3, 1)


async def outbox_rows(
    session: AsyncSession, prefix: str, method: str = "sendMessage"
) -> list[OutboxMessage]:
    """The digests' texts (or, with ``method``, their files) queued under ``prefix``."""
    return list(
        (
            await session.exec(
                select(OutboxMessage)
                .where(
                    col(OutboxMessage.ref).startswith(prefix),
                    OutboxMessage.method == method,
                )
                .order_by(col(OutboxMessage.id))
            )
        ).all()
    )


def staged(row: OutboxMessage) -> bytes:
    return Path(row.payload["_upload"]["path"]).read_bytes()


async def test_each_head_gets_the_weekly_digest_once(session: AsyncSession) -> None:
    tree = await build_tree(session)
    people = await staff(session, tree)
    await random_tickets(session, tree)
    await households_with_visits(session, tree)
    assert await digests.send_weekly_digests(session, MONDAY, SETTINGS) == 2
    rows = await outbox_rows(session, "dg:week:")
    assert [row.ref for row in rows] == [
        f"dg:week:{people.head.id}:2026-W11",
        f"dg:week:{people.community_head.id}:2026-W11",
    ]
    assert all(not row.urgent and row.method == "sendMessage" for row in rows)
    chinese, english = (row.payload["text"] for row in rows)
    opened, closed, overdue, escalated = await expected_weekly(session, tree.a1, MONDAY)
    assert "杏东花园" in chinese and "杏西社区" not in chinese
    for message, count in (
        ("New tickets: {count}", opened),
        ("Closed: {count}", closed),
        ("Overdue and still open now: {count}", overdue),
        ("Reported up a tier: {count}", escalated),
    ):
        assert gettext_for("zh_Hans", message, count=count) in chinese
    # the community head: community A (which holds A1) and community B, in English
    assert english.index("杏东社区") < english.index("杏西社区")
    assert "杏东花园" not in english.split("\n")[3:][0]
    a = await expected_weekly(session, tree.a, MONDAY)
    assert f"New tickets: {a[0]}" in english and f"Overdue and still open now: {a[2]}" in english
    assert "Monthly contact with every household: 2 of 5 households (40.0%)" in english
    # the same week again — later that day, or on Sunday — sends nothing more
    assert await digests.send_weekly_digests(session, MONDAY + timedelta(hours=3), SETTINGS) == 0
    assert await digests.send_weekly_digests(session, at(2026, 3, 22, 23), SETTINGS) == 0
    assert len(await outbox_rows(session, "dg:week:")) == 2
    # each carries the 红黑榜 of the head's grids for March so far, staged on disk
    photos = await outbox_rows(session, "dg:week:", "sendPhoto")
    assert {row.ref.split("#")[0] for row in photos if row.ref} == {r.ref for r in rows}
    assert all(not row.urgent and staged(row).startswith(b"\x89PNG") for row in photos)
    # the next Monday is the next week
    assert await digests.send_weekly_digests(session, MONDAY + timedelta(days=7), SETTINGS) == 2


async def test_the_dispute_screening_lists_open_disputes_by_grid_with_their_age(
    session: AsyncSession,
) -> None:
    tree = await build_tree(session)
    people = await staff(session, tree)
    make = Builder(session)
    dispute = TicketCategory.DISPUTE
    old = await make.ticket(tree.a1a, at(2026, 3, 6, 9), category=dispute, state="accepted")
    new = await make.ticket(tree.a1a, at(2026, 3, 15, 20), category=dispute, state="dispatched")
    in_b = await make.ticket(tree.b, at(2026, 2, 20, 9), category=dispute, state="reopened")
    await make.ticket(tree.a1a, at(2026, 3, 1), category=dispute, state="closed")
    await make.ticket(tree.a1a, at(2026, 3, 1), state="accepted")  # not a dispute
    screening = at(2026, 3, 16, 9)
    found = await digests.open_disputes(session, [tree.centre.path])
    assert [(d.number, d.grid.name, d.age_days(screening)) for d in found] == [
        (shown_number(old), "杏东花园一组", 10),
        (shown_number(new), "杏东花园一组", 0),
        (shown_number(in_b), "杏西社区", 24),
    ]
    assert await digests.send_dispute_screenings(session, screening, SETTINGS) == 2
    rows = await outbox_rows(session, "dg:disputes:")
    assert [row.ref for row in rows] == [
        f"dg:disputes:{people.centre.id}:2026-03-16",
        f"dg:disputes:{people.sub_centre.id}:2026-03-16",
    ]
    whole, only_b = (row.payload["text"] for row in rows)
    assert gettext_for("zh_Hant", "Open neighbour disputes: {count}", count=3) in whole
    assert "杏东花园一组" in whole and "杏西社区" in whole and shown_number(old) in whole
    assert shown_number(in_b) in only_b and shown_number(old) not in only_b
    assert gettext_for("zh_Hans", "Open neighbour disputes: {count}", count=1) in only_b
    reopened = gettext_for("zh_Hans", "reopened")
    line = gettext_for(
        "zh_Hans",
        "{number} · {days} d · {state}",
        number=shown_number(in_b),
        days=24,
        state=reopened,
    )
    assert "• " + line in only_b
    assert not any(row.urgent for row in rows)
    # once per half-month; the next half-month gets its own
    assert await digests.send_dispute_screenings(session, at(2026, 3, 31, 9), SETTINGS) == 0
    assert await digests.send_dispute_screenings(session, at(2026, 4, 1, 9), SETTINGS) == 2


async def test_a_screening_with_nothing_open_is_a_zero_report(session: AsyncSession) -> None:
    tree = await build_tree(session)
    await staff(session, tree)
    assert await digests.send_dispute_screenings(session, at(2026, 3, 1, 9), SETTINGS) == 2
    texts = [row.payload["text"] for row in await outbox_rows(session, "dg:disputes:")]
    assert all("✅" in text for text in texts)


async def test_a_long_screening_is_split_on_line_boundaries_and_still_sent_once(
    session: AsyncSession,
) -> None:
    tree = await build_tree(session)
    people = await staff(session, tree)
    make = Builder(session)
    for i in range(250):
        await make.ticket(
            tree.a1a, at(2026, 3, 1) + timedelta(hours=i), category="dispute", state="accepted"
        )
    assert await digests.send_dispute_screenings(session, at(2026, 3, 16, 9), SETTINGS) == 2
    parts = await outbox_rows(session, f"dg:disputes:{people.centre.id}:")
    assert len(parts) > 1
    base = f"dg:disputes:{people.centre.id}:2026-03-16"
    assert [p.ref for p in parts] == [base] + [f"{base}#{n}" for n in range(2, len(parts) + 1)]
    texts = [p.payload["text"] for p in parts]
    assert all(utf16_length(text) <= 4096 for text in texts)
    assert all(text.count("<b>") == text.count("</b>") for text in texts)
    listed = "\n".join(texts)
    numbers = [shown_number(t) for t in (await session.exec(select(Ticket))).all()]
    assert sum(1 for number in numbers if f"• {number} " in listed) == 200  # oldest first
    assert f"• {numbers[0]} " in listed and f"• {numbers[-1]} " not in listed
    more = gettext_for("zh_Hant", "{count} more are not listed here; see /tickets.", count=50)
    assert more in listed
    assert await digests.send_dispute_screenings(session, at(2026, 3, 17, 9), SETTINGS) == 0


async def test_the_centre_gets_last_months_indicators_per_community_once(
    session: AsyncSession,
) -> None:
    tree = await build_tree(session)
    people = await staff(session, tree)
    make = Builder(session)
    await make.ticket(
        tree.a1a, at(2026, 3, 10), state="closed", solved=True, closed_at=at(2026, 3, 11)
    )
    await make.ticket(tree.b, at(2026, 3, 31, 23, 59))
    await make.ticket(tree.b, at(2026, 4, 1, 0, 1))  # April: not in March's figures
    first = at(2026, 4, 1, 9, 30)
    assert await digests.send_monthly_indicators(session, first, SETTINGS) == 2
    rows = await outbox_rows(session, "dg:month:")
    assert [row.ref for row in rows] == [
        f"dg:month:{people.centre.id}:2026-03",
        f"dg:month:{people.sub_centre.id}:2026-03",
    ]
    whole, only_b = (row.payload["text"] for row in rows)
    assert "杏东社区" in whole and "杏西社区" in whole
    assert whole.index("杏东社区") < whole.index("杏西社区")
    assert "2026" in whole and "3/31" in whole.replace("3月31日", "3/31")
    assert "杏东社区" not in only_b
    # with March's charts and workbook: its total row sums the communities' rows
    photos = await outbox_rows(session, "dg:month:", "sendPhoto")
    assert photos and all(staged(row).startswith(b"\x89PNG") for row in photos)
    books = await outbox_rows(session, "dg:month:", "sendDocument")
    assert len(books) == 2  # one workbook per centre operator, after their charts
    assert all(not row.urgent and row.ref and "#file" in row.ref for row in books)
    book = load_workbook(io.BytesIO(staged(books[0])))
    summary = [list(r) for r in book[book.sheetnames[0]].iter_rows(values_only=True)]
    assert [row[1] for row in summary[1:-1]] == ["杏东社区", "杏西社区"]
    for column in range(4, len(summary[0])):
        if summary[-1][column] is not None and "%" not in str(summary[0][column]):
            assert summary[-1][column] == sum(row[column] or 0 for row in summary[1:-1])
    assert await digests.send_monthly_indicators(session, first + timedelta(days=3), SETTINGS) == 0
    assert await digests.send_monthly_indicators(session, at(2026, 5, 1, 9, 30), SETTINGS) == 2


async def test_the_monthly_digest_tells_how_the_places_were_inspected(
    session: AsyncSession,
) -> None:
    tree = await build_tree(session)
    people = await staff(session, tree)
    march = at(2026, 3, 2)
    session.add(
        Place(
            code="P1",
            name="老王饭店",
            type_key="small_venue",
            grid_id=tree.a1a.id or 0,
            address="杏林路1号",
            last_inspected_at=at(2026, 3, 20),
            next_due_at=at(2026, 4, 19),
            created_at=march,
            updated_at=march,
        )
    )
    await session.flush()
    assert await digests.send_monthly_indicators(session, at(2026, 4, 1, 9, 30), SETTINGS) == 2
    texts = {row.ref: row.payload["text"] for row in await outbox_rows(session, "dg:month:")}
    whole = texts[f"dg:month:{people.centre.id}:2026-03"]
    assert "巡查覆蓋率" in whole and "九小场所" in whole and "1 個按期巡查" in whole  # zh_Hant
    assert "巡查覆蓋率" not in texts[f"dg:month:{people.sub_centre.id}:2026-03"]  # no places
