"""The /report conversation through the real dispatcher, middlewares and outbox (recording bot),
its idle expiry service, and the pure pieces it is made of; Hypothesis on every free-text step."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.state import State
from aiogram.fsm.storage.base import StorageKey
from aiogram.types import (
    Location,
    Message,
    PhotoSize,
    Sticker,
    Update,
    Venue,
    Voice,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.app import App, build_app
from bot.clock import FrozenClock
from bot.db import create_engine
from bot.i18n import gettext_for
from bot.services import conversations
from bot.services.ticket_notices import Notice
from bot.services.ticket_numbers import shown_number
from bot.services.tickets import MAX_PHOTOS, MAX_TEXT
from bot.settings import Settings
from bot.telegram.callbacks import MAX_ROW_ID
from bot.telegram.fsm_storage import record_key
from bot.telegram.i18n import CatalogI18n
from bot.telegram.report_views import (
    Draft,
    ReportAction,
    ReportCategoryCb,
    ReportCb,
    ReportEditCb,
    ReportStep,
    age_text,
    display_width,
    excerpt,
    pack_rows,
    typed_text,
)
from handlers.report import NewReport
from models import (
    FsmRecord,
    Grid,
    HandlingKind,
    Household,
    OutboxMessage,
    Person,
    Role,
    RoleAssignment,
    Ticket,
    TicketCategory,
    TicketEvent,
    TicketPhoto,
    TicketState,
)
from tests.fakes import TOKEN, RecordingNotifier, RecordingSession, UpdateFactory, recording_bot

RESIDENT_ID, WORKER_ID, NEWCOMER_ID, NEIGHBOUR_ID = 5001, 6001, 5002, 5003
CRASHED = "Sorry, something went wrong on our side. Please try again in a moment."
UPDATE_IDS = itertools.count(0, 10_000)
FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# -- the world and a chat with the bot ---------------------------------------------------------


@dataclass
class World:
    grid: Grid
    worker: Person
    resident: Person
    neighbour: Person
    household: Household


async def build_world(session: AsyncSession, now: datetime) -> World:
    """A street centre → community → tier-2 → tier-3 grid, its worker, and two residents."""
    parent: Grid | None = None
    for tier, (code, name) in enumerate(
        [
            ("350211001", "杏林街道"),
            ("350211001001", "杏东社区"),
            ("350211001001001", "第一片区"),
            ("350211001001001001", "一组"),
        ]
    ):
        grid = Grid(
            code=code,
            name=name,
            tier=tier,
            parent_id=parent.id if parent else None,
            created_at=now,
        )
        session.add(grid)
        await session.flush()
        grid.path = f"{parent.path if parent else '/'}{grid.id}/"
        parent = grid
    assert parent is not None and parent.id is not None
    worker = Person(telegram_id=WORKER_ID, name="李网格", created_at=now, updated_at=now)
    session.add(worker)
    await session.flush()
    household = Household(
        code="H-001",
        grid_id=parent.id,
        worker_id=worker.id,
        address="杏东路 3 号 2 单元 501",
        head_name="王小明",
        created_at=now,
        updated_at=now,
    )
    session.add(household)
    await session.flush()
    resident = Person(
        telegram_id=RESIDENT_ID,
        name="王小明",
        household_id=household.id,
        created_at=now,
        updated_at=now,
    )
    neighbour = Person(telegram_id=NEIGHBOUR_ID, name="赵阿姨", created_at=now, updated_at=now)
    session.add_all([resident, neighbour])
    await session.flush()
    for person, role in (
        (worker, Role.WORKER),
        (resident, Role.RESIDENT),
        (neighbour, Role.RESIDENT),
    ):
        assert person.id is not None
        session.add(
            RoleAssignment(person_id=person.id, role=role, grid_id=parent.id, created_at=now)
        )
    await session.commit()
    return World(parent, worker, resident, neighbour, household)


@pytest.fixture
async def app(engine: AsyncEngine, database_url: str, clock: FrozenClock) -> AsyncIterator[App]:
    """The bot on a pooled engine of the test database (``engine`` empties it afterwards)."""
    bot, _ = recording_bot()
    settings = Settings(bot_token=TOKEN, database_url=database_url, _env_file=None)
    pooled = create_engine(database_url)
    app = build_app(settings, clock, engine=pooled, bot=bot)
    app.dispatcher["notifier"] = RecordingNotifier()
    yield app
    await pooled.dispose()


@pytest.fixture
async def world(app: App, clock: FrozenClock) -> World:
    async with app.sessions() as session:
        return await build_world(session, clock.now())


def notifier(app: App) -> RecordingNotifier:
    recorder = app.dispatcher["notifier"]
    assert isinstance(recorder, RecordingNotifier)
    return recorder


class Chat:
    """One person writing to the bot; reads what the bot queued for them."""

    def __init__(self, app: App, user_id: int = RESIDENT_ID, language_code: str = "en") -> None:
        self.app = app
        self.updates = UpdateFactory(user_id=user_id, language_code=language_code)
        self.updates.update_id = next(UPDATE_IDS)  # every chat's updates are new to the bot
        self.key = StorageKey(bot_id=app.bot.id, chat_id=user_id, user_id=user_id)

    # doing
    async def feed(self, update: Update) -> None:
        await self.app.dispatcher.feed_update(self.app.bot, update)

    async def send(self, text: str) -> None:
        await self.feed(self.updates.text(text))

    async def press(self, data: CallbackData | str) -> None:
        await self.feed(self.updates.press(data if isinstance(data, str) else data.pack()))

    async def post(self, **content: Any) -> None:
        """A message with any content (photo, location, sticker …)."""
        self.updates.message_id += 1
        self.updates.update_id += 1
        message = Message(
            message_id=self.updates.message_id,
            date=datetime(2026, 3, 12, 9, 0),
            chat=self.updates.chat,
            from_user=self.updates.user,
            **content,
        )
        await self.feed(Update(update_id=self.updates.update_id, message=message))

    async def photo(
        self, file_id: str, *, group: str | None = None, caption: str | None = None
    ) -> None:
        size = PhotoSize(file_id=file_id, file_unique_id=f"u-{file_id}", width=800, height=600)
        await self.post(photo=[size], media_group_id=group, caption=caption)

    async def location(self, latitude: float, longitude: float) -> None:
        await self.post(location=Location(latitude=latitude, longitude=longitude))

    # seeing
    async def outbox(self) -> list[OutboxMessage]:
        async with self.app.sessions() as session:
            rows = await session.exec(
                select(OutboxMessage)
                .where(OutboxMessage.chat_id == self.updates.chat.id)
                .order_by(col(OutboxMessage.id))
            )
            return list(rows)

    async def texts(self) -> list[str]:
        return [row.payload["text"] for row in await self.outbox() if "text" in row.payload]

    async def last(self) -> str:
        return (await self.texts())[-1]

    async def buttons(self) -> list[str]:
        """The labels of the newest message's keyboard (inline or reply)."""
        markup = (await self.outbox())[-1].payload.get("reply_markup") or {}
        rows = markup.get("inline_keyboard") or markup.get("keyboard") or []
        return [button["text"] for row in rows for button in row]

    async def step(self) -> str | None:
        return await self.app.dispatcher.storage.get_state(self.key)

    async def draft(self) -> Draft:
        return Draft.from_data(await self.app.dispatcher.storage.get_data(self.key))

    async def put(self, step: State, draft: Draft) -> None:
        """Place the person at ``step`` with ``draft`` (as if they had got there by hand)."""
        await self.app.dispatcher.storage.set_state(self.key, step)
        await self.app.dispatcher.storage.set_data(self.key, draft.to_data())

    def toasts(self) -> list[str | None]:
        session = self.app.bot.session
        assert isinstance(session, RecordingSession)
        return [answer.text for answer in session.answers()]


async def tickets_of(app: App) -> list[Ticket]:
    async with app.sessions() as session:
        return list((await session.exec(select(Ticket).order_by(col(Ticket.id)))).all())


def ready(**changes: Any) -> Draft:
    """A draft with every step answered."""
    values: dict[str, Any] = {
        "category": TicketCategory.FACILITY,
        "description": "The street lamp at the east gate has been dark for three nights.",
        "address": "East gate, building 3",
        "urgent": False,
    }
    return Draft(**{**values, **changes})


# -- the happy paths ---------------------------------------------------------------------------


async def test_a_resident_reports_step_by_step_and_sees_the_number_at_once(
    app: App, world: World
) -> None:
    chat = Chat(app)
    await chat.send("/report")
    assert "Step 1 of 5" in await chat.last()
    labels = await chat.buttons()
    assert "damaged public facility" in labels and "policy question" in labels
    assert labels[-1] == "✖️ Cancel" and len(labels) == len(TicketCategory) + 1

    await chat.press(ReportCategoryCb(category=TicketCategory.FACILITY))
    assert await chat.step() == NewReport.description.state
    await chat.send("东门的路灯坏了三天，晚上很黑，老人走路不安全。")
    assert await chat.step() == NewReport.photos.state
    assert await chat.buttons() == ["No photos", "✖️ Cancel"]
    await chat.press(ReportCb(action=ReportAction.PHOTOS_DONE))
    assert await chat.step() == NewReport.place.state
    assert await chat.buttons() == ["📍 Send my location", "🏠 At my home", "✖️ Cancel"]
    await chat.send("3号楼东门")
    assert "Place noted: 3号楼东门" in (await chat.texts())[-2]
    assert await chat.step() == NewReport.danger.state
    await chat.press(ReportCb(action=ReportAction.DANGER_NO))

    summary = await chat.last()
    assert await chat.step() == NewReport.confirm.state
    assert "damaged public facility" in summary and "东门的路灯坏了三天" in summary
    assert "Photos: 0" in summary and "3号楼东门" in summary and "danger" not in summary
    await chat.press(ReportCb(action=ReportAction.SEND))

    [ticket] = await tickets_of(app)
    assert ticket.number.startswith(world.grid.code + "-20260312-")
    assert ticket.kind == HandlingKind.GENERAL and ticket.address == "3号楼东门"
    assert ticket.reporter_id == world.resident.id
    assert ticket.state == TicketState.DISPATCHED
    done = await chat.last()
    assert shown_number(ticket) in done and "Your report has been sent" in done
    assert await chat.step() is None
    [filed] = notifier(app).updates
    assert filed.notice == Notice.FILED
    assert [p.id for p in filed.owners] == [world.worker.id]


async def test_photos_location_and_danger_make_an_urgent_ticket_with_photos(
    app: App, world: World
) -> None:
    chat = Chat(app)
    await chat.put(NewReport.photos, ready(urgent=None, address=None))
    await chat.photo("p1", group="album-1")
    await chat.photo("p2", group="album-1")
    rows = await chat.outbox()
    assert [row.method for row in rows] == ["sendMessage", "editMessageText"]
    assert rows[1].edit_ref == rows[0].ref == "report-album:album-1"  # one answer, edited
    assert "Got 2 of at most 5 photos" in rows[1].payload["text"]
    assert (await chat.draft()).photos == ["p1", "p2"]

    await chat.press(ReportCb(action=ReportAction.PHOTOS_DONE))
    await chat.location(24.5801, 118.0902)
    assert await chat.step() == NewReport.danger.state
    await chat.press(ReportCb(action=ReportAction.DANGER_YES))
    emergency, summary = (await chat.texts())[-2:]
    assert all(number in emergency for number in ("110", "119", "120"))
    assert "urgent" in summary and "Photos: 2" in summary and "24.58010" in summary

    await chat.press(ReportCb(action=ReportAction.SEND))
    [ticket] = await tickets_of(app)
    assert ticket.kind == HandlingKind.URGENT
    assert (ticket.latitude, ticket.longitude) == (24.5801, 118.0902)
    assert "marked urgent" in await chat.last() and shown_number(ticket) in await chat.last()
    async with app.sessions() as session:
        photos = (
            await session.exec(
                select(TicketPhoto.file_id).where(TicketPhoto.ticket_id == ticket.id)
            )
        ).all()
    assert sorted(photos) == ["p1", "p2"]


async def test_at_my_home_binds_the_ticket_to_the_household(app: App, world: World) -> None:
    chat = Chat(app)
    await chat.put(NewReport.place, ready(address=None))
    await chat.send("🏠 At my home")
    assert world.household.address in (await chat.texts())[-2]
    assert (await chat.outbox())[-2].payload["reply_markup"] == {"remove_keyboard": True}
    await chat.press(ReportCb(action=ReportAction.DANGER_NO))
    await chat.press(ReportCb(action=ReportAction.SEND))
    [ticket] = await tickets_of(app)
    assert ticket.household_id == world.household.id
    assert ticket.address == world.household.address


async def test_at_my_home_is_offered_only_to_a_resident_bound_to_a_household(
    app: App, world: World
) -> None:
    chat = Chat(app, NEIGHBOUR_ID)
    await chat.put(NewReport.place, ready(address=None))
    await chat.send("🏠 At my home")  # an old keyboard, or typed by hand
    assert "No home is registered for you" in await chat.last()
    assert await chat.step() == NewReport.place.state
    assert "🏠 At my home" not in await chat.buttons()


async def test_a_photo_with_a_caption_at_the_description_step_says_what_happened(
    app: App, world: World
) -> None:
    chat = Chat(app)
    await chat.put(NewReport.description, Draft(category=TicketCategory.SANITATION))
    await chat.photo("p1", caption="楼道里堆满了垃圾，已经一个星期没人清理")
    draft = await chat.draft()
    assert draft.description == "楼道里堆满了垃圾，已经一个星期没人清理"
    assert draft.photos == ["p1"]
    assert await chat.step() == NewReport.photos.state
    await chat.photo("p2", caption="气味很大")  # a comment, added to the description
    assert (await chat.draft()).description == "楼道里堆满了垃圾，已经一个星期没人清理\n气味很大"


async def test_a_photo_without_words_is_kept_and_the_question_asked_again(
    app: App, world: World
) -> None:
    chat = Chat(app)
    await chat.put(NewReport.description, Draft(category=TicketCategory.SANITATION))
    await chat.photo("p1")
    assert await chat.step() == NewReport.description.state
    assert "Photo kept (1 of at most 5)" in await chat.last()
    assert "What happened?" in await chat.last()


async def test_no_more_than_five_photos_are_kept(app: App, world: World) -> None:
    chat = Chat(app)
    await chat.put(NewReport.photos, ready(urgent=None, address=None))
    for index in range(MAX_PHOTOS + 5):
        await chat.photo(f"p{index}", group="big-album")
    assert (await chat.draft()).photos == [f"p{i}" for i in range(MAX_PHOTOS)]
    rows = await chat.outbox()
    assert [r.method for r in rows].count("sendMessage") == 1
    answer = rows[-1].payload["text"]
    # once, not once per extra photo
    assert answer.count("the rest of this album was not kept") == 1, answer
    assert "this one was not kept" not in answer
    await chat.photo("one-more")  # a photo on its own is answered on its own
    assert "the most I can take; this one was not kept" in await chat.last()


async def test_a_typed_caption_that_is_too_long_is_refused_but_the_photo_kept(
    app: App, world: World
) -> None:
    chat = Chat(app)
    await chat.put(NewReport.photos, ready(urgent=None, address=None))
    await chat.photo("p1", caption="很" * (MAX_TEXT + 1))
    draft = await chat.draft()
    assert draft.photos == ["p1"] and draft.description == ready().description
    assert "The words with the photo were not kept" in await chat.last()


# -- changing, cancelling, refusing ------------------------------------------------------------


async def test_the_summary_goes_back_to_a_chosen_step_and_returns(app: App, world: World) -> None:
    chat = Chat(app)
    await chat.put(NewReport.confirm, ready(photos=["p1"]))
    await chat.press(ReportCb(action=ReportAction.CHANGE))
    assert await chat.buttons() == [
        "Category",
        "What happened",
        "Photos",
        "Place",
        "Danger",
        "« Back",
    ]
    await chat.press(ReportEditCb(step=ReportStep.DESCRIPTION))
    assert await chat.step() == NewReport.description.state
    await chat.send("The lamp at the west gate, not the east gate.")
    assert await chat.step() == NewReport.confirm.state
    assert "west gate" in await chat.last()

    await chat.press(ReportEditCb(step=ReportStep.PHOTOS))
    assert (await chat.draft()).photos == []  # sent again
    await chat.photo("p9")
    await chat.press(ReportCb(action=ReportAction.PHOTOS_DONE))
    assert await chat.step() == NewReport.confirm.state
    assert (await chat.draft()).photos == ["p9"]

    await chat.press(ReportCb(action=ReportAction.CHANGE))
    await chat.press(ReportCb(action=ReportAction.BACK))
    assert await chat.step() == NewReport.confirm.state
    assert "Please check your report" in await chat.last()


@pytest.mark.parametrize("step", [NewReport.category, NewReport.description, NewReport.place])
@pytest.mark.parametrize("how", ["command", "button", "keyboard"])
async def test_cancel_leaves_at_any_step(app: App, world: World, step: State, how: str) -> None:
    chat = Chat(app)
    await chat.put(step, ready())
    if how == "command":
        await chat.send("/cancel")
    elif how == "button":
        await chat.press(ReportCb(action=ReportAction.CANCEL))
    else:
        await chat.send("✖️ Cancel")
    assert await chat.step() is None
    assert "Your report was cancelled; nothing was sent." in await chat.last()
    assert (await chat.outbox())[-1].payload["reply_markup"] == {"remove_keyboard": True}
    assert await tickets_of(app) == []


async def test_a_newcomer_who_has_not_joined_is_told_how_to_join(app: App, world: World) -> None:
    chat = Chat(app, NEWCOMER_ID)
    await chat.send("/report")
    assert "Scan the QR code" in await chat.last()
    assert await chat.step() is None


async def test_a_muted_resident_is_told_politely_at_the_start(
    app: App, world: World, clock: FrozenClock
) -> None:
    async with app.sessions() as session:
        resident = await session.get(Person, world.resident.id)
        assert resident is not None
        resident.muted_until = clock.now() + timedelta(days=1)
        resident.muted_reason = "repeated false reports"
        session.add(resident)
        await session.commit()
    chat = Chat(app)
    await chat.send("/report")
    assert "cannot report problems through the bot at the moment" in await chat.last()
    assert "repeated false reports" in await chat.last()
    assert await chat.step() is None


async def test_a_resident_over_the_hourly_limit_is_told_at_the_start(
    app: App, world: World, clock: FrozenClock
) -> None:
    chat = Chat(app)
    for _ in range(app.dispatcher["settings"].reports.per_hour):
        await chat.put(NewReport.confirm, ready())
        await chat.press(ReportCb(action=ReportAction.SEND))
        await chat.press(ReportCb(action=ReportAction.NEW))  # later ones look like duplicates
    await chat.send("/report")
    assert "You have reported 5 problems in the last hour" in await chat.last()
    assert await chat.step() is None


async def test_report_in_a_group_chat_asks_for_a_private_chat(app: App, world: World) -> None:
    chat = Chat(app)
    update = chat.updates.text("/report")
    assert update.message is not None
    group = update.message.chat.model_copy(update={"id": -100123, "type": "group"})
    await chat.feed(
        update.model_copy(update={"message": update.message.model_copy(update={"chat": group})})
    )
    async with app.sessions() as session:
        [row] = (
            await session.exec(select(OutboxMessage).where(OutboxMessage.chat_id == -100123))
        ).all()
    assert "private chat" in row.payload["text"]


@pytest.mark.parametrize(
    "content",
    [
        {
            "sticker": Sticker(
                file_id="s",
                file_unique_id="s",
                type="regular",
                width=1,
                height=1,
                is_animated=False,
                is_video=False,
            )
        },
        {"voice": Voice(file_id="v", file_unique_id="v", duration=3)},
        {"text": "a bus stop"},
    ],
    ids=["sticker", "voice", "text"],
)
@pytest.mark.parametrize(
    "step",
    [
        NewReport.category,
        NewReport.description,
        NewReport.photos,
        NewReport.place,
        NewReport.danger,
        NewReport.confirm,
    ],
)
async def test_anything_unexpected_is_answered_and_the_step_kept(
    app: App, world: World, step: State, content: dict[str, Any]
) -> None:
    chat = Chat(app)
    await chat.put(step, ready())
    await chat.post(**content)
    texts = await chat.texts()
    assert texts and CRASHED not in texts
    advanced = "text" in content and step in (NewReport.description, NewReport.place)
    if not advanced:
        assert await chat.step() == step.state
        assert await chat.draft() == ready()


async def test_a_location_off_the_earth_is_asked_again(app: App, world: World) -> None:
    chat = Chat(app)
    await chat.put(NewReport.place, ready(address=None))
    await chat.post(
        venue=Venue(
            location=Location(latitude=0.0, longitude=0.0), title="门卫室", address="杏东路"
        ),
        location=Location(latitude=0.0, longitude=0.0),
    )
    assert (await chat.draft()).address == "门卫室 杏东路"
    await chat.put(NewReport.place, ready(address=None))
    await chat.location(95.0, 200.0)
    assert "could not be read" in await chat.last()
    assert await chat.step() == NewReport.place.state


# -- duplicates ----------------------------------------------------------------------------------


async def test_a_likely_duplicate_is_offered_and_joined(
    app: App, world: World, clock: FrozenClock
) -> None:
    neighbour = Chat(app, NEIGHBOUR_ID)
    await neighbour.put(NewReport.confirm, ready())
    await neighbour.press(ReportCb(action=ReportAction.SEND))
    [original] = await tickets_of(app)
    clock.advance(timedelta(hours=2, minutes=5))

    chat = Chat(app)
    await chat.put(NewReport.confirm, ready(description="路灯不亮了，晚上看不见路"))
    await chat.press(ReportCb(action=ReportAction.SEND))
    offer = await chat.last()
    assert await chat.step() == NewReport.duplicate.state
    assert shown_number(original) in offer and "2 h 5 min" in offer
    assert "street lamp at the east gate" in offer and "Is it the same problem?" in offer

    await chat.press(ReportCb(action=ReportAction.SAME, id=original.id or 0))
    assert await chat.step() is None
    assert (
        shown_number(original) in await chat.last()
        and "You now follow ticket" in await chat.last()
    )
    assert len(await tickets_of(app)) == 1
    async with app.sessions() as session:
        joined = (
            await session.exec(select(TicketEvent).where(TicketEvent.action == "joined"))
        ).one()
    assert joined.actor_id == world.resident.id and joined.ticket_id == original.id
    assert notifier(app).notices() == ["filed", "joined"]


async def test_a_new_problem_after_all_is_filed_and_a_forged_ticket_is_never_joined(
    app: App, world: World
) -> None:
    neighbour = Chat(app, NEIGHBOUR_ID)
    await neighbour.put(NewReport.confirm, ready())
    await neighbour.press(ReportCb(action=ReportAction.SEND))
    [original] = await tickets_of(app)

    chat = Chat(app)
    await chat.put(NewReport.confirm, ready())
    await chat.press(ReportCb(action=ReportAction.SEND))
    await chat.press(ReportCb(action=ReportAction.SAME, id=(original.id or 0) + 1000))
    assert chat.toasts()[-1] == (
        "This button is no longer active. Send /report to start a new report."
    )
    assert await chat.step() == NewReport.duplicate.state

    await chat.press(ReportCb(action=ReportAction.NEW))
    first, second = await tickets_of(app)
    assert second.reporter_id == world.resident.id and shown_number(second) in await chat.last()
    assert notifier(app).notices() == ["filed", "filed"]


async def test_a_second_tap_on_send_files_once_and_old_buttons_are_out_of_date(
    app: App, world: World
) -> None:
    chat = Chat(app)
    await chat.put(NewReport.confirm, ready())
    await chat.press(ReportCb(action=ReportAction.SEND))
    await chat.press(ReportCb(action=ReportAction.SEND))
    await chat.press(ReportCategoryCb(category=TicketCategory.FIRE))
    assert len(await tickets_of(app)) == 1
    assert (
        chat.toasts()[-2:]
        == ["This button is no longer active. Send /report to start a new report."] * 2
    )


async def test_the_conversation_is_in_the_database_and_another_process_continues_it(
    app: App, world: World, clock: FrozenClock
) -> None:
    chat = Chat(app)
    await chat.send("/report")
    await chat.press(ReportCategoryCb(category=TicketCategory.FIRE))
    bot, _ = recording_bot()
    restarted = build_app(app.settings, clock, engine=app.engine, bot=bot)
    restarted.dispatcher["notifier"] = RecordingNotifier()
    again = Chat(restarted)
    assert await again.step() == NewReport.description.state
    await again.send("楼道里电动车在充电，电线拖了一地")
    assert (await again.draft()).category == TicketCategory.FIRE
    assert await again.step() == NewReport.photos.state


# -- Hypothesis: every free-text step -------------------------------------------------------------

HOSTILE = st.one_of(
    st.text(max_size=300),
    st.text(st.characters(exclude_categories=()), min_size=1, max_size=40),  # surrogates too
    st.text(alphabet=" \t\n\u3000\u200b\xa0", max_size=20),  # only white space
    st.text(alphabet="😀🔥🚒👍🏻‍♀️️", min_size=1, max_size=30),  # only emoji
    st.text(alphabet="０１２３４５６７８９ＡＢＣ号楼", min_size=1, max_size=30),  # full width
    st.builds(str.__mul__, st.sampled_from(["a", "好", "😀", " ", "<b>"]), st.integers(1, 10_000)),
)


def hostile_texts() -> st.SearchStrategy[str]:
    return HOSTILE.filter(lambda text: not text.startswith("/"))  # commands leave the step


async def assert_answered_without_error(chat: Chat, before: int, step: State) -> str | None:
    texts = await chat.texts()
    assert CRASHED not in texts
    assert len(texts) > before, "the bot must answer every message"
    after = await chat.step()
    assert after in {step.state, _next(step).state}
    return after


def _next(step: State) -> State:
    return {
        NewReport.description: NewReport.photos,
        NewReport.place: NewReport.danger,
        NewReport.photos: NewReport.photos,
    }[step]


@FUZZ
@given(text=hostile_texts())
async def test_any_description_advances_or_is_asked_again(
    app: App, world: World, text: str
) -> None:
    chat = Chat(app)
    await chat.put(NewReport.description, Draft(category=TicketCategory.OTHER))
    before = len(await chat.texts())
    await chat.post(text=text)
    if await assert_answered_without_error(chat, before, NewReport.description) == (
        NewReport.photos.state
    ):
        description = (await chat.draft()).description
        assert description is not None and 1 <= len(description) <= MAX_TEXT


@FUZZ
@given(text=hostile_texts())
async def test_any_address_advances_or_is_asked_again(app: App, world: World, text: str) -> None:
    chat = Chat(app)
    await chat.put(NewReport.place, ready(address=None, urgent=None))
    before = len(await chat.texts())
    await chat.post(text=text)
    if await assert_answered_without_error(chat, before, NewReport.place) == (
        NewReport.danger.state
    ):
        draft = await chat.draft()
        assert draft.has_place and len(draft.address or "") <= 300


@FUZZ
@given(caption=hostile_texts())
async def test_any_comment_with_a_photo_is_kept_or_explained(
    app: App, world: World, caption: str
) -> None:
    chat = Chat(app)
    await chat.put(NewReport.photos, ready(urgent=None, address=None))
    before = len(await chat.texts())
    await chat.photo("p1", caption=caption)
    await assert_answered_without_error(chat, before, NewReport.photos)
    draft = await chat.draft()
    assert draft.photos == ["p1"]
    assert draft.description is not None and len(draft.description) <= MAX_TEXT


@FUZZ
@given(data=st.text(max_size=64))
async def test_any_callback_data_is_answered(app: App, world: World, data: str) -> None:
    chat = Chat(app)
    await chat.put(NewReport.confirm, ready())
    await chat.press(data)
    assert CRASHED not in await chat.texts()
    assert chat.toasts()


# -- idle conversations -------------------------------------------------------------------------


def test_the_expiry_prefix_names_the_conversations_states() -> None:
    assert all(
        state.startswith(conversations.REPORT_STATE_PREFIX)
        for state in NewReport.__all_states_names__
    )


async def put_record(
    session: AsyncSession, user_id: int, state: str | None, updated_at: datetime
) -> str:
    key = record_key(StorageKey(bot_id=1, chat_id=user_id, user_id=user_id))
    session.add(FsmRecord(key=key, state=state, data={"x": 1}, updated_at=updated_at))
    await session.flush()
    return key


async def test_idle_report_conversations_end_with_a_message_in_the_persons_language(
    session: AsyncSession, clock: FrozenClock
) -> None:
    now = clock.now()
    for telegram_id, locale, language in (
        (501, "en", None),
        (502, None, "zh-TW"),
        (503, None, None),
    ):
        session.add(
            Person(
                telegram_id=telegram_id,
                name=str(telegram_id),
                locale=locale,
                telegram_language=language,
                created_at=now,
                updated_at=now,
            )
        )
    idle = timedelta(minutes=60)
    old = now - idle - timedelta(seconds=1)
    expired = [
        await put_record(session, 501, NewReport.description.state, old),
        await put_record(session, 502, NewReport.place.state, old - timedelta(days=3)),
        await put_record(session, 503, NewReport.confirm.state, old),
        await put_record(session, 504, NewReport.photos.state, old),  # nobody we know
    ]
    kept = [
        await put_record(session, 505, NewReport.category.state, now - idle),  # not yet
        await put_record(session, 506, "Joining:phone", old),  # another conversation
        await put_record(session, 507, "Reporting:answer", old),  # the ticket flow's states
        await put_record(session, 508, None, old),
    ]

    assert await conversations.expire_idle(session, now, idle, "zh_Hans") == 4
    left = set((await session.exec(select(FsmRecord.key))).all())
    assert left == set(kept) and not left & set(expired)
    rows = (await session.exec(select(OutboxMessage).order_by(col(OutboxMessage.chat_id)))).all()
    assert [row.chat_id for row in rows] == [501, 502, 503, 504]
    texts = [row.payload["text"] for row in rows]
    assert texts == [
        gettext_for("en", conversations.EXPIRED),
        gettext_for("zh_Hant", conversations.EXPIRED),
        gettext_for("zh_Hans", conversations.EXPIRED),
        gettext_for("zh_Hans", conversations.EXPIRED),
    ]
    assert texts[0].startswith("Your report was not sent") and "/report" in texts[0]
    assert all(row.payload["reply_markup"] == {"remove_keyboard": True} for row in rows)
    assert rows[0].person_id is not None and rows[3].person_id is None

    assert await conversations.expire_idle(session, now, idle, "zh_Hans") == 0


async def test_an_unreadable_key_is_expired_without_a_message(
    session: AsyncSession, clock: FrozenClock
) -> None:
    now = clock.now()
    session.add(
        FsmRecord(key="garbage", state=NewReport.photos.state, updated_at=now - timedelta(days=1))
    )
    await session.flush()
    assert await conversations.expire_idle(session, now, timedelta(hours=1), "en") == 1
    assert (await session.exec(select(OutboxMessage))).all() == []


async def test_hold_locks_nothing_for_a_missing_record(session: AsyncSession) -> None:
    await conversations.hold(session, "1:2:3:::default")  # no row: nothing to lock, no error


# -- the pure pieces ---------------------------------------------------------------------------


@given(
    st.dictionaries(
        st.text(max_size=12),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(st.text(max_size=4), inner, max_size=3)
            ),
            max_leaves=8,
        ),
        max_size=14,
    )
)
def test_any_fsm_data_reads_as_a_draft(data: dict[str, Any]) -> None:
    draft = Draft.from_data(data)
    assert len(draft.photos) <= MAX_PHOTOS
    assert Draft.from_data(draft.to_data()) == draft


def test_a_draft_reads_back_what_it_wrote() -> None:
    draft = ready(photos=["a", "b"], albums={"g": ""}, latitude=1.5, longitude=2.5, declined=[3])
    assert Draft.from_data(draft.to_data()) == draft
    assert draft.missing() is None and Draft().missing() == ReportStep.CATEGORY
    assert ready(urgent=None).missing() == ReportStep.DANGER
    assert ready(address=None).missing() == ReportStep.PLACE


@given(st.text(st.characters(exclude_categories=())))
def test_typed_text_keeps_only_what_a_database_stores(raw: str) -> None:
    text = typed_text(raw)
    assert text is not None
    text.encode("utf-8")  # no lone surrogates
    assert "\x00" not in text
    assert typed_text(None) is None


@pytest.mark.parametrize(
    "delta,expected",
    [
        (timedelta(seconds=5), "1 min"),
        (timedelta(minutes=40), "40 min"),
        (timedelta(hours=3, minutes=5), "3 h 5 min"),
        (timedelta(days=2, hours=4, minutes=59), "2 d 4 h"),
    ],
)
def test_age_reads_like_a_person_would_say_it(delta: timedelta, expected: str) -> None:
    i18n = CatalogI18n("en")
    with i18n.context(), i18n.use_locale("en"):
        assert age_text(delta) == expected


def test_category_buttons_fit_two_or_three_to_a_row() -> None:
    from aiogram.types import InlineKeyboardButton

    def buttons(*labels: str) -> list[InlineKeyboardButton]:
        return [InlineKeyboardButton(text=label, callback_data="x") for label in labels]

    rows = pack_rows(buttons("矛盾纠纷", "安全隐患", "消防隐患", "环境卫生 / 市容环境", "其他"))
    assert [len(row) for row in rows] == [3, 2]
    rows = pack_rows(buttons("neighbour dispute", "safety hazard", "fire hazard", "other"))
    assert [len(row) for row in rows] == [2, 2]
    assert display_width("好a") == 3
    assert excerpt("a  b\nc", 10) == "a b c" and excerpt("abcdef", 4) == "abc…"


def test_callback_data_stays_far_below_64_bytes() -> None:
    longest = [
        ReportCb(action=ReportAction.SAME, id=MAX_ROW_ID).pack(),  # the largest id there is
        ReportCategoryCb(category=TicketCategory.ILLEGAL_BUILDING).pack(),
        ReportEditCb(step=ReportStep.DESCRIPTION).pack(),
    ]
    assert all(len(data.encode()) < 40 for data in longest)
