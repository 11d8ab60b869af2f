"""Hostile and careless administration through the real dispatcher (recording bot, demo data):
department roles without a department, invitations that outlive their issuer, and /people
answers that must not tell who is registered."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.app import App, build_app
from bot.clock import FrozenClock
from bot.services import deeplinks, invites, people
from bot.services.demo import DEMO_PERSONAS, load_demo_data
from bot.services.ticket_numbers import street_id_of
from bot.settings import Settings
from bot.telegram.callbacks import InviteRevokeCb, TicketAction, TicketCb
from models import (
    AuditLog,
    Department,
    Grid,
    OutboxMessage,
    Person,
    Role,
    RoleAssignment,
    Ticket,
    TicketCategory,
)
from tests.fakes import TOKEN, RecordingSession, UpdateFactory, recording_bot

DEPUTY_ID = 880001


UPDATE_IDS = itertools.count(0, 10_000)  # every chat's updates get ids of their own


@dataclass
class Chat:
    """One demo person talking to the bot."""

    app: App
    user: UpdateFactory
    seen: int = 0  # outbox rows already read

    def __post_init__(self) -> None:
        self.user.update_id = next(UPDATE_IDS)  # the bot drops an update id it has seen

    async def say(self, text: str) -> list[str]:
        await self.app.dispatcher.feed_update(self.app.bot, self.user.text(text))
        return await self.new_texts()

    async def press(self, data: str) -> tuple[list[str], list[str]]:
        """The toasts (callback answers) and the new messages a button press brought."""
        session = self.app.bot.session
        assert isinstance(session, RecordingSession)
        before = len(session.answers())
        await self.app.dispatcher.feed_update(self.app.bot, self.user.press(data))
        toasts = [a.text or "" for a in session.answers()[before:]]
        return toasts, await self.new_texts()

    async def new_texts(self) -> list[str]:
        async with self.app.sessions() as session:
            rows = (
                await session.exec(
                    select(OutboxMessage)
                    .where(
                        OutboxMessage.chat_id == self.user.chat.id,
                        OutboxMessage.method.in_(["sendMessage", "editMessageText"]),  # type: ignore[attr-defined]
                    )
                    .order_by(col(OutboxMessage.id))
                )
            ).all()
        texts = [row.payload["text"] for row in rows[self.seen :]]
        self.seen = len(rows)
        return texts


@pytest.fixture
async def app(engine: AsyncEngine, database_url: str, clock: FrozenClock) -> AsyncIterator[App]:
    bot, _ = recording_bot()
    settings = Settings(bot_token=TOKEN, database_url=database_url, _env_file=None)
    app = build_app(settings, clock, engine=engine, bot=bot)
    async with app.sessions() as session:
        await load_demo_data(session, clock.now())
        await session.commit()
    yield app


def chat(app: App, persona: str) -> Chat:
    return Chat(app, UpdateFactory(user_id=DEMO_PERSONAS[persona], language_code="zh-hans"))


async def demo_person(session: AsyncSession, persona: str) -> Person:
    return (
        await session.exec(select(Person).where(Person.telegram_id == DEMO_PERSONAS[persona]))
    ).one()


async def street(session: AsyncSession) -> Grid:
    return (await session.exec(select(Grid).where(Grid.tier == 0))).one()


# -- 6. a department role names its department ----------------------------------------------


async def test_people_set_department_without_a_department_is_refused(app: App) -> None:
    admin = chat(app, "admin")
    async with app.sessions() as session:
        worker = await demo_person(session, "other_worker")
        root = await street(session)
        police = (await session.exec(select(Department).order_by(col(Department.id)))).first()
    assert worker.phone is not None and police is not None

    [refused] = await admin.say(f"/people set {worker.phone} department {root.code}")
    assert "部门" in refused and police.code in refused  # says which departments there are
    async with app.sessions() as session:
        held = (
            await session.exec(
                select(RoleAssignment).where(
                    RoleAssignment.person_id == worker.id, RoleAssignment.role == Role.DEPARTMENT
                )
            )
        ).all()
    assert held == []

    [done] = await admin.say(f"/people set {worker.phone} department {root.code} {police.code}")
    assert worker.name in done
    async with app.sessions() as session:
        department_role = (
            await session.exec(
                select(RoleAssignment).where(
                    RoleAssignment.person_id == worker.id, RoleAssignment.role == Role.DEPARTMENT
                )
            )
        ).one()
    assert department_role.department_id == police.id


async def test_a_stored_department_role_without_a_department_reads_no_ticket(
    app: App, clock: FrozenClock
) -> None:
    """Rows written before the refusal existed: forged card and history buttons are refused."""
    now = clock.now()
    async with app.sessions() as session:
        root = await street(session)
        leaf = (await session.exec(select(Grid).where(Grid.tier == 3))).first()
        nameless = await demo_person(session, "other_worker")
        await session.exec(  # type: ignore[call-overload]
            RoleAssignment.__table__.delete().where(  # type: ignore[attr-defined]
                RoleAssignment.person_id == nameless.id
            )
        )
        assert leaf is not None and leaf.id is not None and root.id is not None
        assert nameless.id is not None
        session.add(
            RoleAssignment(
                person_id=nameless.id, role=Role.DEPARTMENT, grid_id=root.id, created_at=now
            )
        )
        ticket = Ticket(
            number="T-untransferred",
            street_id=street_id_of(leaf),
            short_number=1,
            grid_id=leaf.id,
            category=TicketCategory.FIRE,
            description="楼道堆放杂物，电话 13800000000",
            created_at=now,
            updated_at=now,
        )
        session.add(ticket)
        await session.commit()
        assert ticket.id is not None
    forger = chat(app, "other_worker")
    for action in (TicketAction.OPEN, TicketAction.HISTORY):
        toasts, texts = await forger.press(TicketCb(action=action, id=ticket.id).pack())
        assert any("不在您负责的网格范围内" in t for t in [*toasts, *texts]), (toasts, texts)
        assert not any("13800000000" in t or "T-untransferred" in t for t in texts)
    async with app.sessions() as session:
        refusals = (
            await session.exec(select(AuditLog).where(AuditLog.action == "refused:view"))
        ).all()
    assert [(r.object_type, r.object_id) for r in refusals] == [("ticket", ticket.id)] * 2


# -- 7. invitations end with their issuer, and can be withdrawn -----------------------------


async def second_admin(app: App, now: datetime) -> Person:
    """Another administrator of the whole street (the demo has one)."""
    async with app.sessions() as session:
        root = await street(session)
        deputy = Person(
            telegram_id=DEPUTY_ID,
            name="副管理员",
            phone="+8613900001111",
            created_at=now,
            updated_at=now,
        )
        session.add(deputy)
        await session.flush()
        assert deputy.id is not None and root.id is not None
        session.add(
            RoleAssignment(person_id=deputy.id, role=Role.ADMIN, grid_id=root.id, created_at=now)
        )
        await session.commit()
        return deputy


async def issue(app: App, issuer_id: int, grid_tier: int, now: datetime) -> invites.IssuedInvite:
    async with app.sessions() as session:
        issuer = await session.get(Person, issuer_id)
        grid = (await session.exec(select(Grid).where(Grid.tier == grid_tier))).first()
        assert issuer is not None and grid is not None and issuer.id is not None
        issued = await invites.create_invite(
            session,
            actor=issuer,
            roles=await people.roles_of(session, issuer.id),
            role=Role.WORKER,
            grid=grid,
            now=now,
        )
        await session.commit()
        return issued


async def redeem(app: App, issued: invites.IssuedInvite, user_id: int) -> list[str]:
    newcomer = Chat(app, UpdateFactory(user_id=user_id, language_code="zh-hans"))
    return await newcomer.say(f"/start {deeplinks.invite_payload(issued.token)}")


async def test_deactivating_an_admin_withdraws_the_invitations_they_issued(
    app: App, clock: FrozenClock
) -> None:
    now = clock.now()
    deputy = await second_admin(app, now)
    assert deputy.id is not None
    pending = await issue(app, deputy.id, 3, now)
    admin = chat(app, "admin")
    [done] = await admin.say(f"/people off {deputy.phone}")
    assert deputy.name in done
    [refused] = await redeem(app, pending, 990001)
    assert "已被撤回" in refused
    async with app.sessions() as session:
        joined = (
            await session.exec(
                select(RoleAssignment)
                .join(Person, col(Person.id) == RoleAssignment.person_id)
                .where(Person.telegram_id == 990001)
            )
        ).all()
    assert joined == []


async def test_an_invitation_from_someone_deactivated_earlier_no_longer_works(
    app: App, clock: FrozenClock
) -> None:
    """Issued, then its issuer deactivated before deactivation withdrew invitations."""
    now = clock.now()
    deputy = await second_admin(app, now)
    assert deputy.id is not None
    pending = await issue(app, deputy.id, 3, now)
    async with app.sessions() as session:
        stored = await session.get(Person, deputy.id)
        assert stored is not None
        stored.active = False
        session.add(stored)
        await session.commit()
    [refused] = await redeem(app, pending, 990002)
    assert "已被撤回" in refused


async def test_invite_lists_pending_invitations_and_withdraws_one(
    app: App, clock: FrozenClock
) -> None:
    now = clock.now()
    deputy = await second_admin(app, now)
    assert deputy.id is not None
    first = await issue(app, deputy.id, 3, now)
    second = await issue(app, deputy.id, 2, now)
    admin = chat(app, "admin")
    [listing, roles] = await admin.say("/invite")
    assert "等待使用的邀请（2）" in listing and "副管理员" in listing
    assert "要邀请什么人" in roles  # then the role to invite, with buttons

    toasts, [edited] = await admin.press(InviteRevokeCb(id=first.invite.id or 0).pack())
    assert toasts == ["邀请已撤回，链接已失效。"]
    assert "等待使用的邀请（1）" in edited
    [refused] = await redeem(app, first, 990003)
    assert "已被撤回" in refused
    [welcome] = await redeem(app, second, 990004)
    assert "网格员" in welcome

    toasts, [edited] = await admin.press(InviteRevokeCb(id=second.invite.id or 0).pack())
    assert toasts == ["这个邀请已被使用，无法撤回。"]
    assert "没有等待使用的邀请" in edited


async def test_invite_list_in_english_and_traditional_chinese(
    app: App, clock: FrozenClock
) -> None:
    now = clock.now()
    deputy = await second_admin(app, now)
    assert deputy.id is not None
    await issue(app, deputy.id, 3, now)
    english = Chat(app, UpdateFactory(user_id=DEMO_PERSONAS["admin"], language_code="en"))
    [listing, _roles] = await english.say("/invite")
    assert "Invitations waiting to be used (1)" in listing and "issued by 副管理员" in listing
    traditional = Chat(app, UpdateFactory(user_id=DEMO_PERSONAS["admin"], language_code="zh-TW"))
    traditional.seen = english.seen
    [listing, _roles] = await traditional.say("/invite")
    assert "等待使用的邀請（1）" in listing


async def test_a_forged_withdraw_outside_ones_grids_is_refused(
    app: App, clock: FrozenClock
) -> None:
    now = clock.now()
    deputy = await second_admin(app, now)
    assert deputy.id is not None
    pending = await issue(app, deputy.id, 3, now)
    worker = chat(app, "worker")
    [usage] = await worker.say("/invite")
    assert "副管理员" not in usage  # a worker sees nobody's invitations
    toasts, texts = await worker.press(InviteRevokeCb(id=pending.invite.id or 0).pack())
    assert any("不在您负责的网格范围内" in t for t in toasts), toasts
    assert texts == []
    [welcome] = await redeem(app, pending, 990005)
    assert "网格员" in welcome


# -- 8. /people tells nobody who is registered -----------------------------------------------

UNREGISTERED = "+8613712345678"


async def answers_for(who: Chat, command: str, phones: dict[str, str]) -> set[str]:
    """The replies to ``command`` for each phone, with the phone itself blanked out."""
    seen = set()
    for phone in phones.values():
        replies = await who.say(command.format(phone=phone))
        seen.add("\n".join(replies).replace(phone, "<phone>"))
    return seen


@pytest.mark.parametrize(
    "command",
    [
        "/people off {phone}",
        "/people mute {phone} 24 骚扰",
        "/people mute {phone} 0",
        "/people set {phone} worker 350211001",
    ],
)
async def test_someone_not_allowed_gets_one_answer_for_registered_and_unknown_phones(
    app: App, clock: FrozenClock, command: str
) -> None:
    async with app.sessions() as session:
        resident = await demo_person(session, "other_resident")
        staff_member = await demo_person(session, "head")
    assert resident.phone is not None and staff_member.phone is not None
    phones = {"resident": resident.phone, "staff": staff_member.phone, "nobody": UNREGISTERED}
    for persona in ("worker", "resident", "head"):
        who = chat(app, persona)
        [answer] = await answers_for(who, command, phones)
        assert "管理员" in answer, answer  # the command is for administrators
    async with app.sessions() as session:
        unchanged = await session.get(Person, resident.id)
    assert unchanged is not None and unchanged.active and unchanged.muted_until is None


async def test_an_admin_of_one_community_cannot_probe_another(
    app: App, clock: FrozenClock
) -> None:
    now = clock.now()
    async with app.sessions() as session:
        communities = (
            await session.exec(select(Grid).where(Grid.tier == 1).order_by(col(Grid.id)))
        ).all()
        mine, theirs = communities[0], communities[1]
        local = Person(
            telegram_id=DEPUTY_ID,
            name="社区管理员",
            phone="+8613900002222",
            created_at=now,
            updated_at=now,
        )
        session.add(local)
        await session.flush()
        assert local.id is not None and mine.id is not None
        session.add(
            RoleAssignment(person_id=local.id, role=Role.ADMIN, grid_id=mine.id, created_at=now)
        )
        outsider = (
            await session.exec(
                select(Person)
                .join(RoleAssignment, col(RoleAssignment.person_id) == Person.id)
                .join(Grid, col(Grid.id) == RoleAssignment.grid_id)
                .where(col(Grid.path).startswith(theirs.path), col(Person.phone).is_not(None))
            )
        ).first()
        await session.commit()
    assert outsider is not None and outsider.phone is not None
    admin = Chat(app, UpdateFactory(user_id=DEPUTY_ID, language_code="zh-hans"))
    for command in ("/people off {phone}", "/people mute {phone} 2 骚扰"):
        [answer] = await answers_for(
            admin, command, {"outsider": outsider.phone, "nobody": UNREGISTERED}
        )
        assert "<phone>" in answer
    async with app.sessions() as session:
        unchanged = await session.get(Person, outsider.id)
        refused = (
            await session.exec(select(AuditLog).where(AuditLog.action == "refused:manage"))
        ).all()
    assert unchanged is not None and unchanged.active and unchanged.muted_until is None
    assert {r.actor_id for r in refused} == {local.id}  # the probe is on record
