"""Inspections and hazards: what is due (set-based, for one worker and for all at once), the
record and its hostile answers, hazards with fix-by dates, the owner's "fixed", the
re-inspection, the ticket of an unfixed hazard, a refusal, and withdrawing under the visit
rules."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from openpyxl import load_workbook
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import FrozenClock
from bot.errors import InvalidInput, NotAllowed
from bot.i18n import gettext_for
from bot.services import departments as dept_admin
from bot.services import hazards, inspection_ledgers, inspections
from bot.services.place_policy import DEFAULT_POLICY
from bot.settings import Settings
from models import AuditLog, Hazard, Inspection, Person, Place, Ticket, TicketCategory
from models.registry import Department
from tests.fakes import RecordingNotifier
from tests.services.test_imports import (
    EAST_A,
    EAST_B,
    WORKER_A,
    WORKER_B,
    Community,
    build_community,
    to_csv,
)
from tests.services.test_places import HEADER, place, run

OWNER_PHONE = "+8613712340001"  # the responsible person of P0001


async def setup(session: AsyncSession, clock: FrozenClock) -> Community:
    community = await build_community(session, clock.now())
    rows = [
        place(1, "九小场所", EAST_A, name="老王饭店"),
        place(2, "涉药单位", EAST_A, name="仁心药房"),
        place(3, "重点单位", EAST_B, name="杏林小学"),
    ]
    assert (await run(session, community, to_csv(rows, HEADER).encode())).ok
    return community


def settings() -> Settings:
    return Settings(_env_file=None)  # type: ignore[call-arg]


async def place_named(session: AsyncSession, name: str) -> Place:
    return (await session.exec(select(Place).where(Place.name == name))).one()


async def inspect(
    session: AsyncSession,
    community: Community,
    worker: Person,
    place_id: int,
    results: dict[str, str],
    photos: dict[str, str],
    *,
    kind: str = "routine",
    notifier: RecordingNotifier | None = None,
) -> hazards.Finding:
    return await hazards.record_inspection(
        session,
        notifier or RecordingNotifier(),
        inspector=worker,
        roles=await community.roles(session, worker),
        place_id=place_id,
        kind=kind,
        results=results,
        photos=photos,
        latitude=24.57,
        longitude=118.03,
        settings=settings(),
        now=community.now,
    )


def restaurant_answers() -> tuple[dict[str, str], dict[str, str]]:
    place_type = DEFAULT_POLICY.type("small_venue")
    assert place_type is not None
    results = {item.key: "pass" for item in place_type.checklist}
    results["exits_clear"] = "fail"
    results["extinguisher_valid"] = "fail"
    results["self_check"] = "na"
    return results, {"exits_clear": "photo-exit", "extinguisher_valid": "photo-ext"}


async def test_due_places_for_one_worker_and_for_all_at_once(
    session: AsyncSession, clock: FrozenClock
) -> None:
    community = await setup(session, clock)
    worker_a = community.workers[WORKER_A]
    roles = await community.roles(session, worker_a)
    paths = inspections.inspector_paths(roles)
    due = await inspections.due_places(session, paths, DEFAULT_POLICY, community.now)
    assert [d.place.name for d in due] == ["仁心药房", "老王饭店"]  # never inspected: due now
    found = await inspections.due_places(
        session, paths, DEFAULT_POLICY, community.now, search="饭店"
    )
    assert [d.place.name for d in found] == ["老王饭店"]
    scopes = {
        w.id or 0: inspections.inspector_paths(await community.roles(session, w))
        for w in community.workers.values()
    }
    everyone = await inspections.due_by_worker(session, scopes, DEFAULT_POLICY, community.now)
    assert {d.name for d in everyone[worker_a.id or 0]} == {"仁心药房", "老王饭店"}
    assert {d.name for d in everyone[community.workers[WORKER_B].id or 0]} == {"杏林小学"}
    # inspected today: not due again until a month on (九小场所: monthly by the worker)
    restaurant = await place_named(session, "老王饭店")
    results, photos = restaurant_answers()
    await inspect(session, community, worker_a, restaurant.id or 0, results, photos)
    due = await inspections.due_places(session, paths, DEFAULT_POLICY, community.now)
    assert [d.place.name for d in due] == ["仁心药房"]
    later = community.now + timedelta(days=30)
    due = await inspections.due_places(session, paths, DEFAULT_POLICY, later)
    assert ("老王饭店", "routine") in [(d.place.name, d.kind) for d in due]
    assert ("老王饭店", "recheck") in [(d.place.name, d.kind) for d in due]


async def test_the_next_due_date_follows_inspections_and_the_push_order_matches_the_list(
    session: AsyncSession, clock: FrozenClock
) -> None:
    community = await setup(session, clock)
    worker = community.workers[WORKER_A]
    restaurant = await place_named(session, "老王饭店")
    assert restaurant.next_due_at == restaurant.created_at  # imported: due from then
    results, photos = restaurant_answers()
    await inspect(session, community, worker, restaurant.id or 0, results, photos)
    assert restaurant.next_due_at == community.now + timedelta(days=30)  # 九小场所: monthly
    # a month and more on: the pharmacy (never inspected), the restaurant's re-inspection
    # (its hazards' fix-by dates) and its routine inspection, soonest first, in one order
    later = community.now + timedelta(days=45)
    paths = inspections.inspector_paths(await community.roles(session, worker))
    listed = await inspections.due_places(session, paths, DEFAULT_POLICY, later)
    pushed = await inspections.due_by_worker(
        session, {worker.id or 0: paths}, DEFAULT_POLICY, later, limit=2, totals=(totals := {})
    )
    assert [(d.place.name, d.kind) for d in listed] == [
        ("仁心药房", "routine"),
        ("老王饭店", "recheck"),
        ("老王饭店", "routine"),
    ]
    assert [(d.name, d.kind) for d in pushed[worker.id or 0]] == [
        (d.place.name, d.kind) for d in listed[:2]
    ]
    assert pushed[worker.id or 0][1].hazards == 2
    assert totals == {worker.id or 0: 3}


async def test_a_scope_over_several_grids_gets_their_places_in_one_order(
    session: AsyncSession, clock: FrozenClock
) -> None:
    community = await setup(session, clock)
    worker_a, worker_b = community.workers[WORKER_A], community.workers[WORKER_B]
    restaurant = await place_named(session, "老王饭店")
    results, photos = restaurant_answers()
    await inspect(session, community, worker_a, restaurant.id or 0, results, photos)
    # the school (the other grid) falls due between the restaurant's re-inspection and its
    # routine inspection: the two grids' places interleave
    fix_by = min(h.fix_by for h in (await session.exec(select(Hazard))).all())
    school = await place_named(session, "杏林小学")
    school.next_due_at = fix_by + timedelta(days=1)
    session.add(school)
    await session.flush()
    later = community.now + timedelta(days=45)  # a re-inspection and three routine ones due
    paths_a = inspections.inspector_paths(await community.roles(session, worker_a))
    paths_b = inspections.inspector_paths(await community.roles(session, worker_b))
    a, b, both = worker_a.id or 0, worker_b.id or 0, -1
    # ``both`` serves the two grids, one of them twice over (its path and its parent's)
    parent = community.grids[EAST_A].path.rstrip("/").rsplit("/", 1)[0] + "/"
    scopes = {a: paths_a, b: paths_b, both: [*paths_a, *paths_b, parent]}
    everyone = await inspections.due_by_worker(
        session, scopes, DEFAULT_POLICY, later, totals=(totals := {})
    )
    merged = everyone[both]
    assert [(d.name, d.kind) for d in merged] == [
        ("仁心药房", "routine"),
        ("老王饭店", "recheck"),
        ("杏林小学", "routine"),
        ("老王饭店", "routine"),
    ]
    assert sorted(merged) == sorted(everyone[a] + everyone[b])  # each place once
    assert totals[both] == totals[a] + totals[b] == len(merged) == 4
    for worker in (a, b):  # each worker's own list is in the merged order
        assert everyone[worker] == [d for d in merged if d in everyone[worker]]
    first = await inspections.due_by_worker(
        session, scopes, DEFAULT_POLICY, later, limit=2, totals=(counted := {})
    )
    assert first[both] == merged[:2]
    assert counted == totals


async def test_a_restaurant_with_two_failures_gets_two_hazards_fixed_and_ticketed(
    session: AsyncSession, clock: FrozenClock
) -> None:
    community = await setup(session, clock)
    worker = community.workers[WORKER_A]
    owner = Person(
        name="老王",
        phone=OWNER_PHONE,
        telegram_id=555,
        created_at=clock.now(),
        updated_at=clock.now(),
    )
    session.add(owner)
    await session.flush()
    restaurant = await place_named(session, "老王饭店")
    results, photos = restaurant_answers()
    finding = await inspect(session, community, worker, restaurant.id or 0, results, photos)
    assert finding.responsible is not None and finding.responsible.id == owner.id
    opened = {h.item_key: h for h in finding.opened}
    assert set(opened) == {"exits_clear", "extinguisher_valid"}
    assert opened["exits_clear"].fix_by == community.now + timedelta(days=1)  # grave
    assert opened["extinguisher_valid"].fix_by == community.now + timedelta(days=3)  # major
    assert opened["exits_clear"].photo_file_id == "photo-exit"
    # the owner says one is fixed, with a photo
    report = await hazards.report_fixed(
        session, owner, opened["extinguisher_valid"].id or 0, "photo-new-ext", community.now
    )
    assert report.hazard.state == "reported" and report.inspector is not None
    assert report.inspector.id == worker.id
    # someone else may not
    with pytest.raises(NotAllowed):
        await hazards.report_fixed(
            session, worker, opened["exits_clear"].id or 0, "x", community.now
        )
    # the re-inspection: the extinguisher is fixed, the exit is not
    lines = await inspections.checklist_of(session, restaurant, DEFAULT_POLICY, "recheck")
    keys = {line.text: line.key for line in lines}
    exit_key = keys[opened["exits_clear"].item_text]
    ext_key = keys[opened["extinguisher_valid"].item_text]
    notifier = RecordingNotifier()
    recheck = await inspect(
        session,
        community,
        worker,
        restaurant.id or 0,
        {exit_key: "fail", ext_key: "pass"},
        {exit_key: "photo-still-blocked"},
        kind="recheck",
        notifier=notifier,
    )
    assert [h.item_key for h in recheck.fixed] == ["extinguisher_valid"]
    [(hazard, ticket)] = recheck.ticketed
    assert hazard.state == "ticket" and hazard.ticket_id == ticket.id
    assert ticket.category == TicketCategory.FIRE and ticket.kind == "urgent"  # grave
    assert "老王饭店" in ticket.description and "filed" in notifier.notices()
    stored = {h.item_key: h.state for h in await session.exec(select(Hazard))}
    assert stored == {"exits_clear": "ticket", "extinguisher_valid": "fixed"}


@pytest.mark.parametrize(
    ("change", "photos"),
    [
        ({"exits_clear": None}, {"exits_clear": "p"}),  # an item unanswered
        ({"bogus": "pass"}, {"exits_clear": "p"}),  # an item not on the checklist
        ({"exits_clear": "maybe"}, {}),  # not a result
        ({"exits_clear": "fail"}, {}),  # a failure without its photo
        ({}, {"wiring": "p"}),  # a photo of a passed item
    ],
)
async def test_hostile_answers_are_refused_and_nothing_is_written(
    session: AsyncSession,
    clock: FrozenClock,
    change: dict[str, str | None],
    photos: dict[str, str],
) -> None:
    community = await setup(session, clock)
    restaurant = await place_named(session, "老王饭店")
    place_type = DEFAULT_POLICY.type("small_venue")
    assert place_type is not None
    results: dict[str, str] = {item.key: "pass" for item in place_type.checklist}
    for key, value in change.items():
        if value is None:
            results.pop(key)
        else:
            results[key] = value
    with pytest.raises(InvalidInput):
        await inspect(
            session, community, community.workers[WORKER_A], restaurant.id or 0, results, photos
        )
    assert (await session.exec(select(Inspection))).first() is None


async def test_a_worker_cannot_inspect_a_place_in_another_grid(
    session: AsyncSession, clock: FrozenClock
) -> None:
    community = await setup(session, clock)
    school = await place_named(session, "杏林小学")  # in EAST_B
    with pytest.raises(NotAllowed):
        await inspect(session, community, community.workers[WORKER_A], school.id or 0, {}, {})


async def test_a_refusal_is_recorded_and_becomes_a_ticket_naming_the_department(
    session: AsyncSession, clock: FrozenClock
) -> None:
    community = await setup(session, clock)
    worker = community.workers[WORKER_A]
    pharmacy = await place_named(session, "仁心药房")
    market = Department(
        name="杏林市场监管所",
        code="market",
        grid_id=community.grids[EAST_A].id or 0,
        created_at=community.now,
    )
    session.add(market)
    await session.flush()
    finding = await hazards.record_refusal(
        session,
        RecordingNotifier(),
        inspector=worker,
        roles=await community.roles(session, worker),
        place_id=pharmacy.id or 0,
        latitude=None,
        longitude=None,
        settings=settings(),
        now=community.now,
    )
    assert finding.inspection.refused and finding.ticket is not None
    assert finding.extra["department"] == "杏林市场监管所"
    ticket = (await session.exec(select(Ticket))).one()
    assert "仁心药房" in ticket.description and "杏林市场监管所" in ticket.description
    assert ticket.owner_department_id == market.id  # 转办: the department the type names
    assert ticket.state == "transferred"
    # a refusal is no inspection: the place is still due
    paths = inspections.inspector_paths(await community.roles(session, worker))
    due = await inspections.due_places(session, paths, DEFAULT_POLICY, community.now)
    assert "仁心药房" in [d.place.name for d in due]


async def test_withdrawing_follows_the_visit_rules_and_takes_the_hazards_along(
    session: AsyncSession, clock: FrozenClock
) -> None:
    community = await setup(session, clock)
    worker = community.workers[WORKER_A]
    restaurant = await place_named(session, "老王饭店")
    results, photos = restaurant_answers()
    finding = await inspect(session, community, worker, restaurant.id or 0, results, photos)
    other = community.workers[WORKER_B]
    with pytest.raises(NotAllowed):
        await inspections.withdraw_inspection(
            session,
            other,
            await community.roles(session, other),
            finding.inspection.id or 0,
            community.now,
        )
    tomorrow = community.now + timedelta(days=1)
    with pytest.raises(NotAllowed):  # the author, the next day: ask the head
        await inspections.withdraw_inspection(
            session,
            worker,
            await community.roles(session, worker),
            finding.inspection.id or 0,
            tomorrow,
        )
    await inspections.withdraw_inspection(
        session,
        community.head,
        await community.roles(session, community.head),
        finding.inspection.id or 0,
        tomorrow,
    )
    states = set((await session.exec(select(col(Hazard.state)))).all())
    assert states == {"withdrawn"}
    await session.refresh(restaurant)
    assert restaurant.last_inspected_at is None
    assert restaurant.next_due_at == restaurant.created_at  # due again, as if never inspected


async def test_coverage_hazard_figures_and_the_two_ledgers(
    session: AsyncSession, clock: FrozenClock
) -> None:
    community = await setup(session, clock)
    worker = community.workers[WORKER_A]
    restaurant = await place_named(session, "老王饭店")
    results, photos = restaurant_answers()
    await inspect(session, community, worker, restaurant.id or 0, results, photos)
    head_paths = inspections.inspector_paths(await community.roles(session, community.head))
    rows = await inspection_ledgers.coverage(session, head_paths, DEFAULT_POLICY, community.now)
    by_type = {r.type_key: (r.covered, r.places) for r in rows}
    assert by_type == {"small_venue": (1, 1), "pharmacy": (0, 1), "key_unit": (0, 1)}
    later = community.now + timedelta(days=2)  # the exit (1 day) is overdue, not the other
    figures = await inspection_ledgers.hazard_figures(
        session, head_paths, community.now - timedelta(days=1), later, later
    )
    assert (figures.found, figures.open, figures.overdue) == (2, 2, 1)
    translate = lambda m: gettext_for("zh_Hans", m)  # noqa: E731
    month = inspection_ledgers.parse_month(None, community.now.date())
    for export, needle in (
        (inspection_ledgers.export_inspections, "老王饭店"),
        (inspection_ledgers.export_hazards, "灭火器配置齐全且在有效期内"),
    ):
        data = await export(
            session,
            community.head,
            await community.roles(session, community.head),
            DEFAULT_POLICY,
            month=month,
            now=community.now,
            tz=settings().tz,
            translate=translate,
        )
        sheet = load_workbook(io.BytesIO(data)).active
        assert sheet is not None
        assert needle in {c.value for r in sheet.iter_rows() for c in r}
    with pytest.raises(NotAllowed):
        await inspection_ledgers.export_hazards(
            session,
            worker,
            await community.roles(session, worker),
            DEFAULT_POLICY,
            month=month,
            now=community.now,
            tz=settings().tz,
            translate=translate,
        )


@pytest.mark.parametrize("text", ["2026-13", "明年", "9999-01", "2026-03-01; drop"])
def test_a_month_that_is_not_one_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        inspection_ledgers.parse_month(text, date(2026, 3, 1))
    assert inspection_ledgers.parse_month("2026年3月", date(2026, 5, 1)) == date(2026, 3, 1)


async def correct(
    session: AsyncSession,
    community: Community,
    person: Person,
    inspection_id: int,
    item: int,
    result: str,
    photo: str | None = None,
    *,
    days: int = 0,
) -> hazards.Correction:
    return await hazards.correct_inspection(
        session,
        person,
        await community.roles(session, person),
        inspection_id,
        item=item,
        result=result,
        photo_file_id=photo,
        now=community.now + timedelta(days=days),
    )


async def test_an_inspection_is_corrected_its_hazards_follow_and_the_old_answer_is_kept(
    session: AsyncSession, clock: FrozenClock
) -> None:
    community = await setup(session, clock)
    worker = community.workers[WORKER_A]
    restaurant = await place_named(session, "老王饭店")
    results, photos = restaurant_answers()
    finding = await inspect(session, community, worker, restaurant.id or 0, results, photos)
    inspection_id = finding.inspection.id or 0
    _inspection, _place, _amended, lines = await hazards.correctable(
        session, worker, await community.roles(session, worker), inspection_id, community.now
    )
    keys = [line.key for line in lines]
    exits, wiring = keys.index("exits_clear"), keys.index("no_loose_wiring")
    # a pass corrected to a failure needs its photo, then opens a hazard
    with pytest.raises(InvalidInput):
        await correct(session, community, worker, inspection_id, wiring, "fail")
    fixed = await correct(session, community, worker, inspection_id, wiring, "fail", "photo-w")
    assert fixed.opened is not None and fixed.opened.item_key == "no_loose_wiring"
    assert fixed.opened.fix_by > community.now
    # a failure corrected away withdraws its hazard
    cleared = await correct(session, community, worker, inspection_id, exits, "pass")
    assert cleared.withdrawn is not None and cleared.withdrawn.state == "withdrawn"
    stored = await session.get(Inspection, inspection_id)
    assert stored is not None
    assert stored.results["exits_clear"] == "pass" and stored.results["no_loose_wiring"] == "fail"
    assert "exits_clear" not in stored.photos and stored.photos["no_loose_wiring"] == "photo-w"
    audit = (
        await session.exec(
            select(AuditLog)
            .where(AuditLog.action == "inspection:correct")
            .order_by(col(AuditLog.id))
        )
    ).all()
    assert [(a.data["item"], a.data["before"], a.data["after"]) for a in audit] == [
        ("no_loose_wiring", "pass", "fail"),
        ("exits_clear", "fail", "pass"),
    ]
    assert audit[1].data["photo_before"] == "photo-exit"
    # hostile: an item not on it, an unknown answer, the same answer again
    for item, result in ((len(lines), "pass"), (-1, "pass"), (exits, "maybe"), (exits, "pass")):
        with pytest.raises(InvalidInput):
            await correct(session, community, worker, inspection_id, item, result)
    # the next day the author must ask the head; the head amends (audited as such); a week on,
    # nobody
    with pytest.raises(NotAllowed):
        await correct(session, community, worker, inspection_id, exits, "na", days=1)
    await correct(session, community, community.head, inspection_id, exits, "na", days=2)
    assert (
        await session.exec(select(AuditLog).where(AuditLog.action == "inspection:amend-correct"))
    ).one().data["before"] == "pass"
    with pytest.raises(InvalidInput):
        await correct(session, community, community.head, inspection_id, exits, "pass", days=8)


async def test_a_hazard_already_ticketed_cannot_be_corrected_away(
    session: AsyncSession, clock: FrozenClock
) -> None:
    community = await setup(session, clock)
    worker = community.workers[WORKER_A]
    restaurant = await place_named(session, "老王饭店")
    results, photos = restaurant_answers()
    finding = await inspect(session, community, worker, restaurant.id or 0, results, photos)
    hazard = finding.opened[0]
    hazard.state = "ticket"
    session.add(hazard)
    await session.flush()
    _inspection, _place, _amended, lines = await hazards.correctable(
        session,
        worker,
        await community.roles(session, worker),
        finding.inspection.id or 0,
        community.now,
    )
    item = [line.key for line in lines].index(hazard.item_key)
    with pytest.raises(InvalidInput):
        await correct(session, community, worker, finding.inspection.id or 0, item, "pass")


async def test_an_unfixed_hazard_goes_to_the_department_the_routing_policy_names(
    session: AsyncSession, clock: FrozenClock
) -> None:
    """消防隐患 routed to the fire station by the casework policy: the ticket of a hazard not
    fixed at its re-inspection lands there (主办, its windows running), not on the chain."""
    community = await setup(session, clock)
    admin, admin_roles = community.admin, await community.roles(session, community.admin)
    station = await dept_admin.create(
        session, actor=admin, roles=admin_roles, text="消防站 xfz", now=community.now
    )
    await dept_admin.toggle_category(
        session,
        actor=admin,
        roles=admin_roles,
        department_id=station.id or 0,
        category=TicketCategory.FIRE,
        now=community.now,
    )
    await dept_admin.route_here(
        session,
        actor=admin,
        roles=admin_roles,
        department_id=station.id or 0,
        on=True,
        now=community.now,
    )
    worker = community.workers[WORKER_A]
    restaurant = await place_named(session, "老王饭店")
    results, photos = restaurant_answers()
    await inspect(session, community, worker, restaurant.id or 0, results, photos)
    lines = await inspections.checklist_of(session, restaurant, DEFAULT_POLICY, "recheck")
    answers = {line.key: "fail" for line in lines}
    recheck = await inspect(
        session,
        community,
        worker,
        restaurant.id or 0,
        answers,
        {key: f"photo-{key}" for key in answers},
        kind="recheck",
    )
    assert len(recheck.ticketed) == 2
    for _hazard, ticket in recheck.ticketed:
        assert ticket.category == TicketCategory.FIRE
        assert ticket.owner_department_id == station.id and ticket.state == "transferred"
        assert ticket.routing_rule == "dept:xfz"
    # a pharmacy's hazard (安全隐患) is not the station's: it stays on the grid's chain
    pharmacy = await place_named(session, "仁心药房")
    place_type = DEFAULT_POLICY.type("pharmacy")
    assert place_type is not None
    failed = {item.key: "pass" for item in place_type.checklist}
    failed["no_expired_drugs"] = "fail"
    await inspect(session, community, worker, pharmacy.id or 0, failed, {"no_expired_drugs": "p"})
    [line] = await inspections.checklist_of(session, pharmacy, DEFAULT_POLICY, "recheck")
    later = await inspect(
        session,
        community,
        worker,
        pharmacy.id or 0,
        {line.key: "fail"},
        {line.key: "p2"},
        kind="recheck",
    )
    [(_hazard, ticket)] = later.ticketed
    assert ticket.category == TicketCategory.SAFETY and ticket.owner_department_id is None
