"""The day's push kept current (real database), the push's wording by hour, /visit's search
order and the photo attached to a saved visit."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import InvalidInput
from bot.i18n import gettext_for
from bot.services import daily_push, push_progress, quotas, visits
from bot.services.demo import DEMO_PERSONAS, load_demo_data
from bot.services.people import roles_of
from bot.settings import Settings
from bot.telegram.visit_views import VisitPickCb, render_push
from models import DailyPush, Household, OutboxMessage, OutboxStatus, Person, VisitKind

SHANGHAI = ZoneInfo("Asia/Shanghai")
SETTINGS = Settings(
    _env_file=None, bot_token=SecretStr("200000001:GridBotServiceTestToken_abcdefghijkl")
)  # type: ignore[call-arg]


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI).astimezone(UTC)  # type: ignore[misc]


async def the_worker(session: AsyncSession) -> Person:
    return (
        await session.exec(select(Person).where(Person.telegram_id == DEMO_PERSONAS["worker"]))
    ).one()


async def pushed(session: AsyncSession, now: datetime) -> tuple[Person, DailyPush]:
    await load_demo_data(session, at(2026, 3, 12, 7))
    assert await daily_push.send_daily_pushes(session, now, SETTINGS, render_push) == 27
    worker = await the_worker(session)
    record = await session.get(DailyPush, (worker.id, date(2026, 3, 13)))
    assert record is not None and record.content
    return worker, record


async def rows_of(session: AsyncSession, worker: Person) -> list[OutboxMessage]:
    return list(
        (
            await session.exec(
                select(OutboxMessage)
                .where(OutboxMessage.chat_id == worker.telegram_id)
                .order_by(col(OutboxMessage.id))
            )
        ).all()
    )


def callback_ids(payload: dict[str, object]) -> list[int]:
    keyboard = payload.get("reply_markup") or {}
    assert isinstance(keyboard, dict)
    return [
        VisitPickCb.unpack(button["callback_data"]).id
        for row in keyboard.get("inline_keyboard", [])
        for button in row
    ]


async def test_a_visit_edits_the_push_once_and_an_unchanged_push_is_not_edited(
    session: AsyncSession,
) -> None:
    worker, record = await pushed(session, at(2026, 3, 13, 8))
    first, second = (int(hid) for hid, _ in record.content["households"][:2])  # type: ignore[index]
    roles = await roles_of(session, worker.id or 0)
    [push] = await rows_of(session, worker)
    assert push.method == "sendMessage" and first in callback_ids(push.payload)
    # nothing done yet: nothing to edit
    assert (
        await push_progress.refresh_push(
            session, worker, at(2026, 3, 13, 9), SETTINGS, render_push
        )
        == 0
    )

    result = await push_progress.log_visit(
        session,
        worker,
        roles,
        first,
        VisitKind.IN_PERSON,
        "门口台阶滑",
        at(2026, 3, 13, 9),
        settings=SETTINGS,
        render=render_push,
    )
    [_, edit] = await rows_of(session, worker)
    assert edit.method == "editMessageText" and edit.edit_ref == push.ref
    assert edit.expires_at == push.expires_at and not edit.urgent
    assert first not in callback_ids(edit.payload) and second in callback_ids(edit.payload)
    assert "<s>" in edit.payload["text"]
    # the same state again: the message would not change, so no edit is queued
    assert (
        await push_progress.refresh_push(
            session, worker, at(2026, 3, 13, 10), SETTINGS, render_push
        )
        == 0
    )

    # withdrawn: the household is open again, its button back
    await push_progress.withdraw_visit(
        session,
        worker,
        roles,
        result.visit.id or 0,
        at(2026, 3, 13, 11),
        settings=SETTINGS,
        render=render_push,
    )
    [_, _, back] = await rows_of(session, worker)
    assert back.payload["text"] == push.payload["text"]
    assert back.payload["reply_markup"] == push.payload["reply_markup"]


async def test_a_push_that_was_dropped_or_a_worker_without_one_is_left_alone(
    session: AsyncSession,
) -> None:
    worker, record = await pushed(session, at(2026, 3, 13, 8))
    first = int(record.content["households"][0][0])  # type: ignore[index]
    roles = await roles_of(session, worker.id or 0)
    [push] = await rows_of(session, worker)
    push.status = OutboxStatus.DROPPED  # stale before it could be sent
    session.add(push)
    await push_progress.log_visit(
        session,
        worker,
        roles,
        first,
        VisitKind.PHONE,
        "电话问候",
        at(2026, 3, 13, 9),
        settings=SETTINGS,
        render=render_push,
    )
    assert len(await rows_of(session, worker)) == 1
    # the next day there is no push yet: a visit queues nothing
    await push_progress.log_visit(
        session,
        worker,
        roles,
        first,
        VisitKind.PHONE,
        "电话问候",
        at(2026, 3, 14, 9),
        settings=SETTINGS,
        render=render_push,
    )
    assert len(await rows_of(session, worker)) == 1


async def test_visited_today_is_found_and_listed_last(session: AsyncSession) -> None:
    worker, record = await pushed(session, at(2026, 3, 13, 8))
    first = int(record.content["households"][0][0])  # type: ignore[index]
    roles = await roles_of(session, worker.id or 0)
    target = await push_progress.visit_target(
        session, worker, roles, first, at(2026, 3, 13, 9), tz=SHANGHAI
    )
    assert target.visited_today is None
    await push_progress.log_visit(
        session,
        worker,
        roles,
        first,
        VisitKind.IN_PERSON,
        "看望",
        at(2026, 3, 13, 9),
        settings=SETTINGS,
        render=render_push,
    )
    target = await push_progress.visit_target(
        session, worker, roles, first, at(2026, 3, 13, 10), tz=SHANGHAI
    )
    assert target.visited_today is not None
    tomorrow = await push_progress.visit_target(
        session, worker, roles, first, at(2026, 3, 14, 0, 1), tz=SHANGHAI
    )
    assert tomorrow.visited_today is None  # a local day: after midnight in Shanghai, new
    choice = await daily_push.households_to_visit(
        session, worker, roles, at(2026, 3, 13, 10), page_size=100, tz=SHANGHAI
    )
    assert choice.rows[-1].household.id == first and choice.rows[-1].visited_today
    assert not any(row.visited_today for row in choice.rows[:-1])


async def test_a_photo_and_the_place_attach_to_the_saved_visit(session: AsyncSession) -> None:
    await load_demo_data(session, at(2026, 3, 12, 7))
    worker = await the_worker(session)
    roles = await roles_of(session, worker.id or 0)
    household = (
        await session.exec(select(Household).where(Household.worker_id == worker.id))
    ).first()
    assert household is not None
    logged = await visits.log_visit(
        session,
        worker,
        roles,
        household.id or 0,
        "in_person",
        "看望",
        at(2026, 3, 13, 9),
        tz=SHANGHAI,
    )
    visit_id = logged.visit.id or 0
    for hostile in (
        {},
        {"photo_file_id": " "},
        {"photo_file_id": "x" * 300},
        {"latitude": 91.0, "longitude": 0.0},
        {"latitude": float("nan"), "longitude": 1.0},
        {"latitude": 24.5},
    ):
        with pytest.raises(InvalidInput):
            await visits.add_extras(
                session,
                worker,
                roles,
                visit_id,
                at(2026, 3, 13, 9, 1),
                tz=SHANGHAI,
                **hostile,  # type: ignore[arg-type]
            )
    await visits.add_extras(
        session,
        worker,
        roles,
        visit_id,
        at(2026, 3, 13, 9, 1),
        photo_file_id="AgAD-photo",
        tz=SHANGHAI,
    )
    visit = await visits.add_extras(
        session,
        worker,
        roles,
        visit_id,
        at(2026, 3, 13, 9, 2),
        latitude=24.5,
        longitude=118.1,
        tz=SHANGHAI,
    )
    assert (visit.photo_file_id, visit.latitude, visit.longitude) == ("AgAD-photo", 24.5, 118.1)


# --- pure: the push's words, the search order -----------------------------------------------


def a_push(hour: int, visited: frozenset[int] = frozenset()) -> daily_push.MorningPush:
    suggestions = tuple(
        quotas.Suggestion(i, f"H{i}", f"户主{i}", f"某路 {i}号", i == 1, False, (), None)
        for i in (1, 2)
    )
    worker = Person(id=1, name="王", created_at=at(2026, 1, 1), updated_at=at(2026, 1, 1))
    plan = quotas.WorkerPlan(1, date(2026, 3, 13), 5, 2, (), suggestions)
    return daily_push.MorningPush(
        worker,
        date(2026, 3, 13),
        plan,
        (),
        (),
        composed_at=at(2026, 3, 13, hour, 30),
        visited=visited,
    )


@pytest.mark.parametrize(
    ("hour", "greeting"),
    [
        (8, "早上好"),
        (11, "早上好"),
        (12, "下午好"),
        (17, "下午好"),
        (18, "晚上好"),
        (20, "晚上好"),
    ],
)
def test_the_greeting_fits_the_hour_the_push_was_made(hour: int, greeting: str) -> None:
    [(text, _)] = render_push(a_push(hour), "zh_Hans", SETTINGS)
    assert text.startswith(f"<b>{greeting}！")


def test_visited_households_are_struck_and_lose_their_buttons() -> None:
    [(text, keyboard)] = render_push(a_push(8, frozenset({1})), "zh_Hans", SETTINGS)
    assert "✅ <s>1. ⭐<b>户主1</b>" in text
    assert callback_ids({"reply_markup": keyboard}) == [2]
    assert gettext_for("zh_Hans", "Visited so far: {done} of {count}.", done=1, count=2) in text
    [(done, keyboard)] = render_push(a_push(8, frozenset({1, 2})), "zh_Hans", SETTINGS)
    assert keyboard is None
    assert gettext_for("zh_Hans", "All of today's suggested visits are done. Thank you!") in done


def household(code: str, name: str, address: str) -> Household:
    return Household(
        code=code, grid_id=1, head_name=name, address=address, created_at=at(2026, 1, 1)
    )


def test_search_ranks_exact_then_prefix_then_contains() -> None:
    rooms = [
        household("3502110130299", "姚建平", "杏东花园 2号楼 1单元 702"),  # number contains it
        household("3502110010015", "郑俊杰", "杏东花园 2号楼 2单元 1302"),  # room contains it
        household("3502110010016", "陈立新", "杏东花园 2号楼 2单元 3021"),  # room begins with it
        household("3502110010017", "罗秀梅", "杏东花园2号楼1单元302"),  # the room, no spaces
        household("3502110010018", "罗秀英", "杏东花园 2号楼 1单元 302"),  # the room
    ]
    ranks = [daily_push.match_rank(h, "302") for h in rooms]
    assert ranks == [2, 2, 1, 0, 0]
    assert daily_push.match_rank(rooms[0], "姚建平") == 0
    assert daily_push.match_rank(rooms[0], "姚") == 1
    assert daily_push.match_rank(rooms[0], "建平") == 2
    assert daily_push.match_rank(rooms[0], "h3502") == 3  # not the number's beginning


@given(st.text(max_size=200), st.text(max_size=200))
def test_any_search_ranks_any_household_without_crashing(words: str, address: str) -> None:
    rank = daily_push.match_rank(household("H1", "王", address), daily_push.clean_search(words))
    assert rank in (0, 1, 2, 3)
