"""Every callback data class of the bot against forged numbers: an id or page the database
cannot hold (``vh:`` with 2**66) must not parse, so the press meets the stale-button answer
("按钮已失效") and never "系统出了点问题"."""

from __future__ import annotations

import typing
from collections.abc import AsyncIterator
from datetime import datetime
from enum import Enum
from typing import Any

import pytest
from aiogram.filters.callback_data import CallbackData
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

import handlers
from bot.app import App, build_app
from bot.clock import FrozenClock
from bot.settings import Settings
from bot.telegram.callbacks import MAX_ROW_ID
from models import AuditLog, Grid, Person, Role, RoleAssignment
from tests.fakes import TOKEN, RecordingSession, UpdateFactory, recording_bot

assert handlers  # every router module imported: every callback data class is defined

STALE = "这个按钮已失效"
CRASHED = "系统出了点问题"


def ours(cls: type[CallbackData]) -> list[type[CallbackData]]:
    found = []
    for sub in cls.__subclasses__():
        if sub.__module__.startswith(("bot.", "handlers.")):
            found.append(sub)
        found.extend(ours(sub))
    return found


CLASSES = sorted(ours(CallbackData), key=lambda cls: cls.__prefix__)


def int_fields(cls: type[CallbackData]) -> list[str]:
    return [name for name, field in cls.model_fields.items() if field.annotation is int]


WITH_INTS = [cls for cls in CLASSES if int_fields(cls)]


def sample(cls: type[CallbackData], **ints: str) -> str:
    """Packed data of ``cls`` with a valid value in every field, ``ints`` as given."""
    parts = [cls.__prefix__]
    for name, field in cls.model_fields.items():
        kind: Any = field.annotation
        if name in ints:
            parts.append(ints[name])
        elif isinstance(kind, type) and issubclass(kind, Enum):
            parts.append(str(next(iter(kind)).value))
        elif kind is bool:
            parts.append("0")
        elif kind is int:
            parts.append("1")
        else:
            parts.append("x")
    return cls.__separator__.join(parts)


def test_every_class_with_a_number_is_found() -> None:
    prefixes = {cls.__prefix__ for cls in WITH_INTS}
    assert {"vh", "tk", "hh", "gp", "mt", "vp", "rp", "ir"} <= prefixes
    for cls in CLASSES:
        for name, field in cls.model_fields.items():
            # a number reaches the database only as a plain int field, bounded by its metadata
            assert field.annotation is not typing.Any, (cls, name)


OUT_OF_RANGE = st.integers(min_value=MAX_ROW_ID + 1) | st.integers(max_value=-1)


@given(cls=st.sampled_from(WITH_INTS), data=st.data(), number=OUT_OF_RANGE)
def test_a_number_the_database_cannot_hold_does_not_parse(
    cls: type[CallbackData], data: st.DataObject, number: int
) -> None:
    field = data.draw(st.sampled_from(int_fields(cls)))
    packed = sample(cls, **{field: str(number)})
    with pytest.raises(ValueError):
        cls.unpack(packed)


@given(
    cls=st.sampled_from(WITH_INTS),
    data=st.data(),
    text=st.text(max_size=30) | st.integers().map(str) | st.just("9" * 40),
)
def test_whatever_fills_a_number_it_parses_in_range_or_not_at_all(
    cls: type[CallbackData], data: st.DataObject, text: str
) -> None:
    field = data.draw(st.sampled_from(int_fields(cls)))
    if cls.__separator__ in text:
        return  # another field's slot: the shape is tested with whole data elsewhere
    try:
        parsed = cls.unpack(sample(cls, **{field: text}))
    except (ValueError, TypeError):
        return
    for name in int_fields(cls):
        assert 0 <= getattr(parsed, name) <= MAX_ROW_ID


# -- through the dispatcher ----------------------------------------------------------------


@pytest.fixture
async def app(engine: AsyncEngine, database_url: str, clock: FrozenClock) -> AsyncIterator[App]:
    bot, _ = recording_bot()
    settings = Settings(bot_token=TOKEN, database_url=database_url, _env_file=None)
    yield build_app(settings, clock, engine=engine, bot=bot)


async def staff_everywhere(app: App, telegram_id: int, now: datetime) -> None:
    """Someone every staff router lets through: worker, head, centre and admin of a grid."""
    async with app.sessions() as session:
        grid = Grid(code="350211001", name="杏林街道", tier=0, created_at=now)
        person = Person(telegram_id=telegram_id, name="全能", created_at=now, updated_at=now)
        session.add_all([grid, person])
        await session.flush()
        assert grid.id is not None and person.id is not None
        grid.path = f"/{grid.id}/"
        session.add_all(
            RoleAssignment(person_id=person.id, role=role, grid_id=grid.id, created_at=now)
            for role in (Role.WORKER, Role.HEAD, Role.CENTER, Role.ADMIN)
        )
        await session.commit()


FORGED_REFUSED = {"dp", "cl", "tp"}  # refused and audited as forged by handlers of their own


@pytest.mark.parametrize("staff", [False, True], ids=["newcomer", "staff"])
@pytest.mark.parametrize("cls", WITH_INTS, ids=[cls.__prefix__ for cls in WITH_INTS])
async def test_a_press_with_a_huge_number_meets_the_stale_button_answer(
    app: App, clock: FrozenClock, cls: type[CallbackData], staff: bool
) -> None:
    if staff:
        await staff_everywhere(app, 8001, clock.now())
    user = UpdateFactory(user_id=8001, language_code="zh-hans")
    recording = app.bot.session
    assert isinstance(recording, RecordingSession)
    for field in int_fields(cls):
        before = len(recording.answers())
        await app.dispatcher.feed_update(app.bot, user.press(sample(cls, **{field: str(2**66)})))
        [answer] = [a.text or "" for a in recording.answers()[before:]]
        assert CRASHED not in answer, (cls, field)
        if cls.__prefix__ not in FORGED_REFUSED:
            assert STALE in answer, (cls, field, answer)
    if cls.__prefix__ in FORGED_REFUSED and not staff:
        # refused and on record, though the presser's first contact was rolled back with it
        async with app.sessions() as session:
            refusals = (
                await session.exec(select(AuditLog).where(AuditLog.object_type == "callback"))
            ).all()
        assert refusals and all(r.data.get("telegram_id") == 8001 for r in refusals)


def test_every_prefix_names_one_class() -> None:
    """Two classes with one prefix: the first router registered takes the other's presses."""
    import bot.telegram.meeting_views  # noqa: F401  (its callback data classes)

    seen: dict[str, str] = {}

    def walk(cls: type[CallbackData]) -> None:
        for sub in cls.__subclasses__():
            prefix = getattr(sub, "__prefix__", None)
            if prefix and prefix != "_":
                assert seen.setdefault(prefix, sub.__name__) == sub.__name__, prefix
            walk(sub)

    walk(CallbackData)
