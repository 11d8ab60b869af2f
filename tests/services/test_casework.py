"""Casework with departments on a real database: an admin creates a department and routes its
categories to it; a report goes there directly; 延期 asked and decided; 退单 and re-dispatch;
a lead and an assisting department (主办 / 协办)."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import FrozenClock
from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.routing.policy import policy_to_json
from bot.services import departments as dept_admin
from bot.services import indicators, intake, sla_admin, tickets
from bot.services.demo import DEMO_PERSONAS, TELEGRAM_ID_BASE, load_demo_data
from bot.services.notice_board import resident_grid
from bot.services.people import RoleInGrid, roles_of
from bot.services.ticket_notices import Notice
from bot.services.tickets import casework, reminders
from bot.services.tickets.deadlines import current_policy, policy_of
from bot.settings import Settings
from models import (
    AuditLog,
    Department,
    Grid,
    Person,
    Role,
    RoleAssignment,
    Ticket,
    TicketCategory,
    TicketEvent,
    TicketSource,
    TicketState,
)
from tests.fakes import RecordingNotifier

SHANGHAI = ZoneInfo("Asia/Shanghai")
POLICE, URBAN, PROPERTY, FIRE = (TELEGRAM_ID_BASE + 11 + i for i in range(4))


class Office:
    def __init__(self, session: AsyncSession, now: datetime) -> None:
        self.session = session
        self.now = now
        self.notifier = RecordingNotifier()

    async def person(self, telegram_id: int) -> tuple[Person, list[RoleInGrid]]:
        person = (
            await self.session.exec(select(Person).where(Person.telegram_id == telegram_id))
        ).one()
        assert person.id is not None
        return person, await roles_of(self.session, person.id)

    async def named(self, name: str) -> tuple[Person, list[RoleInGrid]]:
        return await self.person(DEMO_PERSONAS[name])

    async def file(
        self, category: TicketCategory, text: str = "楼道堆放杂物，堵塞消防通道"
    ) -> Ticket:
        reporter, _ = await self.named("resident")
        assert reporter.id is not None
        grid = await resident_grid(self.session, reporter.id)
        assert grid is not None
        return await tickets.file_ticket(
            self.session,
            self.notifier,
            reporter=reporter,
            grid=grid,
            report=tickets.Report(category, text),
            settings=Settings(_env_file=None),  # type: ignore[call-arg]
            now=self.now,
        )

    async def events(self, ticket: Ticket, action: str) -> list[TicketEvent]:
        return list(
            (
                await self.session.exec(
                    select(TicketEvent)
                    .where(TicketEvent.ticket_id == ticket.id, TicketEvent.action == action)
                    .order_by(col(TicketEvent.id))
                )
            ).all()
        )

    async def join(self, department: Department, name: str = "李消防") -> Person:
        """A new person on ``department``'s staff (as an accepted invite makes one)."""
        street = (await self.session.exec(select(Grid).where(Grid.tier == 0))).first()
        assert street is not None and street.id is not None
        person = Person(
            name=name,
            telegram_id=TELEGRAM_ID_BASE + 9000,
            created_at=self.now,
            updated_at=self.now,
        )
        self.session.add(person)
        await self.session.flush()
        assert person.id is not None
        self.session.add(
            RoleAssignment(
                person_id=person.id,
                role=Role.DEPARTMENT,
                grid_id=street.id,
                department_id=department.id,
                created_at=self.now,
            )
        )
        await self.session.flush()
        return person


@pytest.fixture
async def office(session: AsyncSession, clock: FrozenClock) -> Office:
    await load_demo_data(session, clock.now())
    await session.flush()
    return Office(session, clock.now())


async def test_an_admin_creates_a_fire_station_and_fire_reports_go_there(office: Office) -> None:
    admin, admin_roles = await office.named("admin")
    station = await dept_admin.create(
        office.session, actor=admin, roles=admin_roles, text="消防站 xfz", now=office.now
    )
    assert (station.name, station.code) == ("消防站", "xfz")
    with pytest.raises(InvalidInput):  # no categories yet: nothing to route
        await dept_admin.route_here(
            office.session,
            actor=admin,
            roles=admin_roles,
            department_id=station.id or 0,
            on=True,
            now=office.now,
        )
    await dept_admin.toggle_category(
        office.session,
        actor=admin,
        roles=admin_roles,
        department_id=station.id or 0,
        category=TicketCategory.FIRE,
        now=office.now,
    )
    await dept_admin.route_here(
        office.session,
        actor=admin,
        roles=admin_roles,
        department_id=station.id or 0,
        on=True,
        now=office.now,
    )
    policy = await current_policy(office.session)
    assert policy.routes[0].name == "dept:xfz" and policy.routes[0].department == "xfz"

    staffer = await office.join(station)
    office.notifier.updates.clear()
    ticket = await office.file(TicketCategory.FIRE)

    assert ticket.owner_department_id == station.id
    assert ticket.state == TicketState.TRANSFERRED and ticket.routing_rule == "dept:xfz"
    dispatched = await office.events(ticket, "dispatched")
    assert dispatched[0].data["department"] == "xfz"
    assert dispatched[0].data["rule"] == "dept:xfz"
    filed = office.notifier.updates[0]
    assert filed.notice == Notice.FILED and staffer.id in {p.id for p in filed.owners}
    assert ticket.resolve_deadline is not None and ticket.resolve_deadline > office.now

    # a sanitation report is not the station's: it follows the other rules
    other = await office.file(TicketCategory.SANITATION, "垃圾桶满了没人清理")
    assert other.owner_department_id is None


async def test_only_a_street_admin_runs_departments(office: Office) -> None:
    worker, worker_roles = await office.named("worker")
    with pytest.raises(NotAllowed) as refused:
        await dept_admin.create(
            office.session, actor=worker, roles=worker_roles, text="消防站", now=office.now
        )
    assert refused.value.audit is not None


@pytest.mark.parametrize("text", ["", "消", "x" * 101, "\u200b\u200b", "杏林派出所"])
async def test_bad_or_taken_department_names_are_refused(office: Office, text: str) -> None:
    admin, roles = await office.named("admin")
    with pytest.raises(InvalidInput):
        await dept_admin.create(
            office.session, actor=admin, roles=roles, text=text, now=office.now
        )


async def test_a_taken_code_is_refused(office: Office) -> None:
    admin, roles = await office.named("admin")
    with pytest.raises(InvalidInput):
        await dept_admin.create(
            office.session, actor=admin, roles=roles, text="新派出所 police", now=office.now
        )


async def test_a_department_with_open_tickets_is_not_retired(office: Office) -> None:
    admin, roles = await office.named("admin")
    fire = (await office.session.exec(select(Department).where(Department.code == "fire"))).one()
    ticket = await office.file(TicketCategory.FIRE)
    centre, centre_roles = await office.named("center")
    await tickets.transfer(
        office.session,
        office.notifier,
        actor=centre,
        roles=centre_roles,
        ticket_id=ticket.id or 0,
        department_id=fire.id or 0,
        now=office.now,
    )
    with pytest.raises(InvalidInput):
        await dept_admin.retire(
            office.session, actor=admin, roles=roles, department_id=fire.id or 0, now=office.now
        )


async def _at_department(office: Office, code: str, category: TicketCategory) -> Ticket:
    centre, centre_roles = await office.named("center")
    department = (
        await office.session.exec(select(Department).where(Department.code == code))
    ).one()
    ticket = await office.file(category)
    await tickets.transfer(
        office.session,
        office.notifier,
        actor=centre,
        roles=centre_roles,
        ticket_id=ticket.id or 0,
        department_id=department.id or 0,
        now=office.now,
    )
    return ticket


async def test_more_time_is_asked_and_approved_and_the_deadline_moves(office: Office) -> None:
    ticket = await _at_department(office, "fire", TicketCategory.FIRE)
    staffer, staff_roles = await office.person(FIRE)
    old = ticket.resolve_deadline
    assert old is not None
    text = f"{(old + timedelta(days=7)).astimezone(SHANGHAI):%Y-%m-%d}"
    asked = await casework.ask_extension(
        office.session,
        office.notifier,
        actor=staffer,
        roles=staff_roles,
        ticket_id=ticket.id or 0,
        reason="需要协调供电部门停电检修",
        wanted_text=text,
        now=office.now,
    )
    assert ticket.resolve_deadline == old  # not before approval
    told = office.notifier.updates[-1]
    centre, centre_roles = await office.named("center")
    assert told.notice == Notice.EXTENSION_ASKED and centre.id in {p.id for p in told.others}
    with pytest.raises(InvalidInput):  # one open request at a time
        await casework.ask_extension(
            office.session,
            office.notifier,
            actor=staffer,
            roles=staff_roles,
            ticket_id=ticket.id or 0,
            reason="再延一次",
            wanted_text=text,
            now=office.now,
        )
    # the department cannot approve its own request
    with pytest.raises(NotAllowed):
        await casework.decide_extension(
            office.session,
            office.notifier,
            actor=staffer,
            roles=staff_roles,
            request_id=asked.request.id or 0,
            approve=True,
            now=office.now,
        )
    decided, request = await casework.decide_extension(
        office.session,
        office.notifier,
        actor=centre,
        roles=centre_roles,
        request_id=asked.request.id or 0,
        approve=True,
        now=office.now,
    )
    assert request.approved is True
    assert decided.resolve_deadline == request.wanted and request.wanted > old
    approved = await office.events(ticket, "extension_approved")
    assert approved[0].data["old"] == old.isoformat()
    assert office.notifier.updates[-1].notice == Notice.EXTENSION_APPROVED
    with pytest.raises(InvalidInput):  # decided once
        await casework.decide_extension(
            office.session,
            office.notifier,
            actor=centre,
            roles=centre_roles,
            request_id=asked.request.id or 0,
            approve=False,
            now=office.now,
        )


@pytest.mark.parametrize(
    ("reason", "date_text"),
    [
        ("需要更多时间", "明天"),
        ("需要更多时间", "2026-02-30"),
        ("需要更多时间", "1999-01-01"),
        ("需要更多时间", "9" * 100),
        ("x" * 5000, "2026-12-20"),
        ("", "2026-12-20"),
    ],
)
async def test_bad_dates_and_reasons_are_refused(
    office: Office, reason: str, date_text: str
) -> None:
    ticket = await _at_department(office, "fire", TicketCategory.FIRE)
    staffer, staff_roles = await office.person(FIRE)
    with pytest.raises(InvalidInput):
        await casework.ask_extension(
            office.session,
            office.notifier,
            actor=staffer,
            roles=staff_roles,
            ticket_id=ticket.id or 0,
            reason=reason,
            wanted_text=date_text,
            now=office.now,
        )


async def test_a_date_before_the_deadline_or_too_far_is_refused(office: Office) -> None:
    ticket = await _at_department(office, "fire", TicketCategory.FIRE)
    staffer, staff_roles = await office.person(FIRE)
    for when in (office.now, office.now + timedelta(days=120)):
        when = when.astimezone(SHANGHAI)
        with pytest.raises(InvalidInput):
            await casework.ask_extension(
                office.session,
                office.notifier,
                actor=staffer,
                roles=staff_roles,
                ticket_id=ticket.id or 0,
                reason="需要更多时间",
                wanted_text=f"{when:%Y-%m-%d}",
                now=office.now,
            )


async def test_a_department_returns_a_ticket_and_the_centre_redispatches_it(
    office: Office,
) -> None:
    ticket = await _at_department(office, "police", TicketCategory.PROPERTY)
    police, police_roles = await office.person(POLICE)
    returned = await casework.return_ticket(
        office.session,
        office.notifier,
        actor=police,
        roles=police_roles,
        ticket_id=ticket.id or 0,
        reason="物业服务纠纷不属于派出所职责，请转物业公司",
        now=office.now,
    )
    assert returned.ticket.owner_department_id is None
    assert returned.ticket.owner_role == Role.CENTER
    assert returned.ticket.state == TicketState.DISPATCHED
    event = (await office.events(ticket, "returned"))[0]
    assert event.note and "物业" in event.note and event.data["department"] == "police"
    told = office.notifier.updates[-1]
    centre, centre_roles = await office.named("center")
    assert told.notice == Notice.RETURNED and centre.id in {p.id for p in told.owners}
    # the centre transfers it to the property company
    company = (
        await office.session.exec(select(Department).where(Department.code == "property"))
    ).one()
    again = await tickets.transfer(
        office.session,
        office.notifier,
        actor=centre,
        roles=centre_roles,
        ticket_id=ticket.id or 0,
        department_id=company.id or 0,
        now=office.now,
    )
    assert again.owner_department_id == company.id
    # the police cannot return it any more: it is not theirs
    with pytest.raises(NotAllowed):
        await casework.return_ticket(
            office.session,
            office.notifier,
            actor=police,
            roles=police_roles,
            ticket_id=ticket.id or 0,
            reason="再退一次",
            now=office.now,
        )


async def test_a_lead_resolves_only_after_the_assisting_department_answers(
    office: Office, session: AsyncSession
) -> None:
    admin, admin_roles = await office.named("admin")
    body = copy.deepcopy(policy_to_json(await current_policy(session)))
    body["routes"].insert(
        0,
        {
            "name": "building-to-urban",
            "categories": ["illegal_building"],
            "department": "urban_construction",
            "assist": ["police"],
        },
    )
    await sla_admin.set_policy(
        session, actor=admin, roles=admin_roles, raw=json.dumps(body), now=office.now
    )
    ticket = await office.file(TicketCategory.ILLEGAL_BUILDING, "楼顶私自搭建彩钢棚")
    urban = (
        await session.exec(select(Department).where(Department.code == "urban_construction"))
    ).one()
    assert ticket.owner_department_id == urban.id
    assists = await casework.assists_of(session, ticket.id or 0)
    assert len(assists) == 1
    asked = [u for u in office.notifier.updates if u.notice == Notice.ASSIST_ASKED]
    police, police_roles = await office.person(POLICE)
    assert police.id in {p.id for p in asked[0].others}

    # the assisting department reads the ticket it is asked about; another department does not
    seen = await tickets.viewable(
        session, person=police, roles=police_roles, ticket_id=ticket.id or 0, now=office.now
    )
    assert seen.id == ticket.id
    company, company_roles = await office.person(PROPERTY)
    with pytest.raises(NotAllowed):
        await tickets.viewable(
            session, person=company, roles=company_roles, ticket_id=ticket.id or 0, now=office.now
        )

    lead, lead_roles = await office.person(URBAN)
    await tickets.accept(
        session,
        office.notifier,
        actor=lead,
        roles=lead_roles,
        ticket_id=ticket.id or 0,
        now=office.now,
    )
    with pytest.raises(InvalidInput):
        await tickets.resolve(
            session,
            office.notifier,
            actor=lead,
            roles=lead_roles,
            ticket_id=ticket.id or 0,
            text="已拆除",
            now=office.now,
        )
    # someone not in the assisting department cannot answer for it (audited)
    with pytest.raises(NotAllowed) as refused:
        await casework.answer_assist(
            session,
            office.notifier,
            actor=lead,
            roles=lead_roles,
            assist_id=assists[0].id or 0,
            text="冒充派出所答复",
            now=office.now,
        )
    assert isinstance(refused.value.audit, AuditLog)
    await casework.answer_assist(
        session,
        office.notifier,
        actor=police,
        roles=police_roles,
        assist_id=assists[0].id or 0,
        text="已派民警到场维持秩序",
        now=office.now,
    )
    assert office.notifier.updates[-1].notice == Notice.ASSIST_ANSWERED
    resolved = await tickets.resolve(
        session,
        office.notifier,
        actor=lead,
        roles=lead_roles,
        ticket_id=ticket.id or 0,
        text="违建已拆除，恢复原状",
        now=office.now,
    )
    assert resolved.state == TicketState.RESOLVED


# --- staff intake ------------------------------------------------------------------------------


async def test_a_worker_files_a_patrol_finding_and_a_call_for_an_elderly_caller(
    office: Office,
) -> None:
    worker, roles = await office.named("worker")
    resident, _ = await office.named("resident")
    assert resident.id is not None
    home = await resident_grid(office.session, resident.id)
    assert home is not None and home.id is not None
    patrol = await intake.file_for(
        office.session,
        office.notifier,
        staff=worker,
        roles=roles,
        grid_id=home.id,
        source=TicketSource.PATROL,
        category=TicketCategory.FACILITY,
        description="3号楼路灯不亮",
        settings=Settings(_env_file=None),  # type: ignore[call-arg]
        now=office.now,
    )
    assert patrol.source == TicketSource.PATROL and patrol.filed_by_id == worker.id
    assert patrol.reporter_id is None and patrol.caller_name is None
    assert patrol.state == TicketState.DISPATCHED

    name, phone = intake.parse_caller("王秀英 138-1234-1234")
    assert name == "王秀英" and phone == "+8613812341234"
    call = await intake.file_for(
        office.session,
        office.notifier,
        staff=worker,
        roles=roles,
        grid_id=home.id,
        source=TicketSource.PHONE,
        category=TicketCategory.LIVELIHOOD,
        description="独居老人家中水管漏水，需要帮忙",
        settings=Settings(_env_file=None),  # type: ignore[call-arg]
        now=office.now,
        caller_name=name,
        caller_phone=phone,
    )
    assert (call.caller_name, call.caller_phone) == ("王秀英", "+8613812341234")
    assert call.reporter_id is None  # not a GridBot user: nobody is messaged but the handlers
    assert all(not u.reporters for u in office.notifier.updates)

    report = await indicators.indicator_report(
        office.session,
        (await office.session.exec(select(Grid).where(Grid.tier == 0))).one(),
        start=office.now - timedelta(days=1),
        end=office.now + timedelta(seconds=1),
        now=office.now + timedelta(seconds=1),
    )
    assert (report.total.from_patrol, report.total.from_phone) == (1, 1)


async def test_a_caller_who_uses_gridbot_follows_the_ticket(office: Office) -> None:
    worker, roles = await office.named("worker")
    resident, _ = await office.named("resident")
    assert resident.phone and resident.id is not None
    home = await resident_grid(office.session, resident.id)
    assert home is not None and home.id is not None
    ticket = await intake.file_for(
        office.session,
        office.notifier,
        staff=worker,
        roles=roles,
        grid_id=home.id,
        source=TicketSource.HOTLINE,
        category=TicketCategory.SANITATION,
        description="小区门口垃圾堆放",
        settings=Settings(_env_file=None),  # type: ignore[call-arg]
        now=office.now,
        caller_name=resident.name,
        caller_phone=resident.phone,
        hotline_number="2026120700123",
    )
    assert ticket.reporter_id == resident.id and ticket.hotline_number == "2026120700123"


async def test_intake_outside_ones_grids_is_refused_and_audited(office: Office) -> None:
    worker, roles = await office.named("worker")
    other, _ = await office.named("other_resident")
    assert other.id is not None
    elsewhere = await resident_grid(office.session, other.id)
    assert elsewhere is not None and elsewhere.id is not None
    with pytest.raises(NotAllowed) as refused:
        await intake.file_for(
            office.session,
            office.notifier,
            staff=worker,
            roles=roles,
            grid_id=elsewhere.id,
            source=TicketSource.PATROL,
            category=TicketCategory.OTHER,
            description="别的网格的事",
            settings=Settings(_env_file=None),  # type: ignore[call-arg]
            now=office.now,
        )
    assert refused.value.audit is not None and refused.value.audit.action == "refused:intake"
    resident, resident_roles = await office.named("resident")
    assert not intake.is_staff(resident_roles)


@pytest.mark.parametrize("text", ["", "138", "张三 12345", "x" * 200, "13812341234"])
async def test_bad_callers_are_refused(text: str) -> None:
    if text == "13812341234":  # a phone alone is fine: the name is unknown
        assert intake.parse_caller(text) == (None, "+8613812341234")
        return
    with pytest.raises(InvalidInput):
        intake.parse_caller(text)


@pytest.mark.parametrize("text", ["", "abc", "12345 678", "x" * 41, "一二三四五"])
async def test_bad_hotline_numbers_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        intake.clean_hotline_number(text)


# --- a sheet of departments ----------------------------------------------------------------------


async def test_a_department_sheet_is_imported_all_or_nothing(office: Office) -> None:
    admin, roles = await office.named("admin")
    bad = (
        "部门名称,部门编码,负责类别,电话\n"
        "消防站,xfz,消防隐患,0592-5550119\n"
        "城管队,cgd,不存在的类别,\n"
        "城管队,cgd2,环境卫生,\n"
        "派出所二,BAD!,,\n"
        "环保站,hbz,,not-a-phone\n"
    )
    report = await dept_admin.import_departments(
        office.session, admin, roles, bad.encode("utf-8"), now=office.now
    )
    assert not report.ok and report.bad_rows == (3, 4, 5, 6)
    codes = set((await office.session.exec(select(Department.code))).all())
    assert "xfz" not in codes  # nothing was written
    good = (
        "部门名称,部门编码,负责类别\n消防站,xfz,消防隐患、安全隐患\n杏林派出所,police,矛盾纠纷\n"
    )
    report = await dept_admin.import_departments(
        office.session, admin, roles, good.encode("utf-8"), now=office.now
    )
    assert report.ok and (report.created, report.updated) == (1, 1)
    station = (await office.session.exec(select(Department).where(Department.code == "xfz"))).one()
    assert station.categories == ["safety", "fire"]


@pytest.mark.parametrize(
    "data", [b"", b"\x00\xff" * 5000, b"PK\x03\x04" + b"\x00" * 100, ("x" * 3000).encode()]
)
async def test_nonsense_instead_of_a_sheet_is_refused(office: Office, data: bytes) -> None:
    admin, roles = await office.named("admin")
    with pytest.raises(InvalidInput):
        await dept_admin.import_departments(office.session, admin, roles, data, now=office.now)


async def test_only_a_street_admin_imports_departments(office: Office) -> None:
    worker, roles = await office.named("worker")
    with pytest.raises(NotAllowed):
        await dept_admin.import_departments(
            office.session, worker, roles, "部门名称\n消防站\n".encode(), now=office.now
        )


async def test_the_centre_adds_an_assisting_department_by_hand(
    office: Office, session: AsyncSession
) -> None:
    """协办 by hand: the centre over a ticket at its lead asks one more department, which is
    told and has its own deadline; the lead waits for it. Others, a department twice, the
    lead itself, one that does not exist: refused."""
    ticket = await _at_department(office, "urban_construction", TicketCategory.ILLEGAL_BUILDING)
    centre, centre_roles = await office.named("center")
    police = (await session.exec(select(Department).where(Department.code == "police"))).one()
    urban = (
        await session.exec(select(Department).where(Department.code == "urban_construction"))
    ).one()
    _ticket, candidates = await casework.assist_candidates(
        session, actor=centre, roles=centre_roles, ticket_id=ticket.id or 0, now=office.now
    )
    assert police.id in {d.id for d in candidates} and urban.id not in {d.id for d in candidates}
    # a worker, or the lead's own staff, may not
    lead, lead_roles = await office.person(URBAN)
    with pytest.raises(NotAllowed):
        await casework.add_assist(
            session,
            office.notifier,
            actor=lead,
            roles=lead_roles,
            ticket_id=ticket.id or 0,
            department_id=police.id or 0,
            now=office.now,
        )
    office.notifier.updates.clear()
    _ticket, assist, helper = await casework.add_assist(
        session,
        office.notifier,
        actor=centre,
        roles=centre_roles,
        ticket_id=ticket.id or 0,
        department_id=police.id or 0,
        now=office.now,
    )
    assert helper.id == police.id and assist.due_at > office.now
    officer, _roles = await office.person(POLICE)
    asked = [u for u in office.notifier.updates if u.notice == Notice.ASSIST_ASKED]
    assert officer.id in {p.id for p in asked[0].others}
    [event] = await office.events(ticket, "assist_asked")
    assert event.actor_id == centre.id and event.data["department"] == "police"
    for department_id, error in (
        (police.id or 0, InvalidInput),  # twice
        (urban.id or 0, InvalidInput),  # the lead
        (2**31 - 1, NotFound),  # no such department
    ):
        with pytest.raises(error):
            await casework.add_assist(
                session,
                office.notifier,
                actor=centre,
                roles=centre_roles,
                ticket_id=ticket.id or 0,
                department_id=department_id,
                now=office.now,
            )
    await tickets.accept(
        session,
        office.notifier,
        actor=lead,
        roles=lead_roles,
        ticket_id=ticket.id or 0,
        now=office.now,
    )
    with pytest.raises(InvalidInput):  # the lead waits for the assisting answer
        await tickets.resolve(
            session,
            office.notifier,
            actor=lead,
            roles=lead_roles,
            ticket_id=ticket.id or 0,
            text="已拆除",
            now=office.now,
        )


async def test_an_assisting_department_cannot_be_added_to_a_ticket_without_a_lead(
    office: Office, session: AsyncSession
) -> None:
    ticket = await office.file(TicketCategory.SANITATION, "垃圾桶满了没人清理")
    centre, centre_roles = await office.named("center")
    with pytest.raises(InvalidInput):
        await casework.assist_candidates(
            session, actor=centre, roles=centre_roles, ticket_id=ticket.id or 0, now=office.now
        )


async def test_an_unanswered_assist_and_a_waiting_check_are_reminded_once(
    office: Office, session: AsyncSession
) -> None:
    """A working day with no answer to a 协办 ask, or no on-site check (待核查): asked again,
    once, by the reminder sweep; an answered ask is not."""
    ticket = await _at_department(office, "urban_construction", TicketCategory.ILLEGAL_BUILDING)
    centre, centre_roles = await office.named("center")
    police = (await session.exec(select(Department).where(Department.code == "police"))).one()
    _ticket, assist, _helper = await casework.add_assist(
        session,
        office.notifier,
        actor=centre,
        roles=centre_roles,
        ticket_id=ticket.id or 0,
        department_id=police.id or 0,
        now=office.now,
    )
    _policy, calendar = await policy_of(session, ticket)
    due = calendar.add(assist.created_at, reminders.REMIND_AFTER)
    assert due < assist.due_at
    office.notifier.updates.clear()
    assert await reminders.remind_idle(session, office.notifier, due - timedelta(minutes=1)) == 0
    assert await reminders.remind_idle(session, office.notifier, due) == 1
    [update] = office.notifier.updates
    officer, _roles = await office.person(POLICE)
    assert update.notice == Notice.ASSIST_ASKED and update.extra["reminder"] == "1"
    assert officer.id in {p.id for p in update.others}
    assert await reminders.remind_idle(session, office.notifier, due + timedelta(hours=1)) == 0
    [event] = await office.events(ticket, "reminded")
    assert event.data["assist"] == assist.id

    # a ticket waiting for its on-site check a working day: its verifiers are asked again
    waiting = await office.file(TicketCategory.SANITATION, "垃圾桶满了没人清理")
    waiting.state = TicketState.VERIFYING
    waiting.resolved_at = office.now
    session.add(waiting)
    await session.flush()
    office.notifier.updates.clear()
    later = calendar.add(office.now, reminders.REMIND_AFTER)
    assert await reminders.remind_idle(session, office.notifier, later) == 1
    [update] = office.notifier.updates
    assert update.notice == Notice.REMINDED and update.owners
    assert await reminders.remind_idle(session, office.notifier, later) == 0


async def test_an_assisting_department_asks_for_more_time_for_its_answer(
    office: Office, session: AsyncSession
) -> None:
    """延期 by an assisting department: its answer deadline, not the ticket's, and only once the
    centre approves; someone of no department on the ticket is refused."""
    ticket = await _at_department(office, "urban_construction", TicketCategory.ILLEGAL_BUILDING)
    centre, centre_roles = await office.named("center")
    police = (await session.exec(select(Department).where(Department.code == "police"))).one()
    _ticket, assist, _helper = await casework.add_assist(
        session,
        office.notifier,
        actor=centre,
        roles=centre_roles,
        ticket_id=ticket.id or 0,
        department_id=police.id or 0,
        now=office.now,
    )
    officer, officer_roles = await office.person(POLICE)
    deadline = ticket.resolve_deadline
    asked_for = (assist.due_at + timedelta(days=3)).astimezone(SHANGHAI).strftime("%Y-%m-%d")

    async def ask(who: Person, roles: list[RoleInGrid], day: str) -> casework.ExtensionAsked:
        return await casework.ask_extension(
            session,
            office.notifier,
            actor=who,
            roles=roles,
            ticket_id=ticket.id or 0,
            reason="需调取监控核实",
            wanted_text=day,
            now=office.now,
        )

    too_early = assist.due_at.astimezone(SHANGHAI).strftime("%Y-%m-%d")
    with pytest.raises(InvalidInput):  # not later than the answer deadline
        await ask(officer, officer_roles, too_early)
    company, company_roles = await office.person(PROPERTY)
    with pytest.raises(NotAllowed):  # not a department on this ticket
        await ask(company, company_roles, asked_for)
    asked = await ask(officer, officer_roles, asked_for)
    assert asked.request.department_id == police.id and asked.request.old_deadline == assist.due_at
    with pytest.raises(InvalidInput):  # one request open at a time
        await ask(officer, officer_roles, asked_for)
    old_due = assist.due_at
    _ticket, request = await casework.decide_extension(
        session,
        office.notifier,
        actor=centre,
        roles=centre_roles,
        request_id=asked.request.id or 0,
        approve=True,
        now=office.now,
    )
    await session.refresh(assist)
    assert request.approved and assist.due_at == request.wanted and assist.due_at > old_due
    assert ticket.resolve_deadline == deadline  # the ticket's own deadline did not move
    [event] = await office.events(ticket, "extension_approved")
    assert event.data["assist"] == assist.id
    told = office.notifier.updates[-1]
    assert told.notice == Notice.EXTENSION_APPROVED and officer.id in {p.id for p in told.others}
