"""The key of resident ID numbers: the sandbox keeps one in its data folder, the bot refuses to
start without the right one once numbers are stored, and a rotation seals every number again.
And the member import's hostile files."""

from __future__ import annotations

import asyncio
import shutil
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import startup
from bot.__main__ import main
from bot.clock import FrozenClock
from bot.db import create_engine, create_session_factory
from bot.services import members
from bot.services.id_numbers import IdVault, new_key
from bot.services.member_import import read_member_file
from bot.services.tabular import FileProblem
from bot.settings import PeopleSettings, Settings
from bot.trial import KEY_FILE, with_sandbox_key
from models import Household, HouseholdMember
from tests.services.test_imports import EAST_A, build_community
from tests.services.test_member_import import GOOD, KEY, VAULT


def settings_with(key: str | None, old: str | None = None, **more: object) -> Settings:
    people = PeopleSettings(
        key=SecretStr(key) if key else None, old_keys=SecretStr(old) if old else None
    )
    return Settings(_env_file=None, people=people, **more)  # type: ignore[call-arg]


def test_the_sandbox_makes_a_key_once_and_keeps_it(tmp_path: Path) -> None:
    first = with_sandbox_key(settings_with(None, data_dir=tmp_path))
    assert first.people.key is not None
    path = tmp_path / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = with_sandbox_key(settings_with(None, data_dir=tmp_path))
    assert again.people.key is not None
    assert again.people.key.get_secret_value() == first.people.key.get_secret_value()
    IdVault(first.people.key.get_secret_value())  # a usable key
    given = with_sandbox_key(settings_with(KEY, data_dir=tmp_path))
    assert given.people.key is not None and given.people.key.get_secret_value() == KEY


@pytest.fixture
async def own_engine(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A migrated SQLite file of this test's own: the start-up check opens its own
    connection, which the rolled-back ``session`` fixture would keep waiting."""
    path = tmp_path / "people.db"
    shutil.copy(sqlite_template, path)
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    yield engine
    await engine.dispose()


async def _one_member(session: AsyncSession, now: object, vault: IdVault) -> HouseholdMember:
    community = await build_community(session, now)  # type: ignore[arg-type]
    household = Household(
        code="K1",
        grid_id=community.grids[EAST_A].id or 0,
        address="1号",
        head_name="户主",
        created_at=community.now,
        updated_at=community.now,
    )
    session.add(household)
    await session.flush()
    sealed = vault.seal(GOOD)
    member = HouseholdMember(
        household_id=household.id or 0,
        name="甲",
        relation="head",  # type: ignore[arg-type]
        status="registered",  # type: ignore[arg-type]
        id_cipher=sealed.cipher,
        id_hash=sealed.digest,
        created_at=community.now,
        updated_at=community.now,
    )
    session.add(member)
    await session.commit()
    return member


async def test_start_up_needs_the_key_the_numbers_were_stored_with(
    own_engine: AsyncEngine, clock: FrozenClock
) -> None:
    engine = own_engine
    await startup.check_people_key(engine, settings_with(None))  # nothing stored: fine
    with pytest.raises(startup.StartupProblem) as bad:
        await startup.check_people_key(engine, settings_with("not a key"))
    assert bad.value.message == startup.PEOPLE_KEY_BAD
    async with create_session_factory(engine)() as session:
        await _one_member(session, clock.now(), VAULT)
    for key, problem in (
        (None, startup.PEOPLE_KEY_MISSING),
        (new_key(), startup.PEOPLE_KEY_WRONG),
        ("c2hvcnQ=", startup.PEOPLE_KEY_BAD),
    ):
        with pytest.raises(startup.StartupProblem) as raised:
            await startup.check_people_key(engine, settings_with(key))
        assert raised.value.message == problem
    await startup.check_people_key(engine, settings_with(KEY))
    await startup.check_people_key(engine, settings_with(new_key(), old=KEY))


async def test_a_rotation_seals_every_number_with_the_new_key(
    session: AsyncSession, clock: FrozenClock
) -> None:
    member = await _one_member(session, clock.now(), VAULT)
    fresh = new_key()
    rotating = members.vault_of(settings_with(fresh, old=KEY).people)
    assert await members.reseal_batch(session, rotating, after_id=0) == member.id
    assert await members.reseal_batch(session, rotating, after_id=member.id or 0) == member.id
    await session.commit()
    stored = (await session.exec(select(HouseholdMember))).one()
    only_new = IdVault(fresh)
    assert only_new.open(stored.id_cipher or "") == GOOD
    assert stored.id_hash == only_new.digest(GOOD)
    found = await members.find_member(session, GOOD, vault=only_new, today=clock.now().date())
    assert found.id == member.id


def test_gridbot_people_key_new_prints_a_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["people-key", "new"]) == 0
    key = capsys.readouterr().out.strip()
    IdVault(key)
    assert key != new_key()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\xff" * 100,
        "姓名,电话\n张三,1\n".encode(),  # the required columns missing
        "户编号,姓名,与户主关系,公民身份号码,人口类别\n".encode(),  # no rows
        b"PK\x03\x04 not really a workbook",
        ("户编号,姓名,与户主关系,公民身份号码,公民身份号码,人口类别\nH,a,b,c,d,e\n").encode(),
    ],
)
def test_member_files_that_cannot_be_used_say_why(data: bytes) -> None:
    with pytest.raises(FileProblem) as raised:
        read_member_file(data)
    assert raised.value.message


async def test_gridbot_people_key_rotate_from_the_command_line(
    own_engine: AsyncEngine,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with create_session_factory(own_engine)() as session:
        await _one_member(session, clock.now(), VAULT)
    await own_engine.dispose()
    fresh = new_key()
    monkeypatch.setenv("DATABASE_URL", str(own_engine.url))
    monkeypatch.setenv("PEOPLE__KEY", fresh)
    monkeypatch.setenv("PEOPLE__OLD_KEYS", "")
    assert await asyncio.to_thread(main, ["people-key", "rotate"]) == 2  # the old key unknown
    assert "PEOPLE__KEY" in capsys.readouterr().err
    monkeypatch.setenv("PEOPLE__OLD_KEYS", KEY)
    assert await asyncio.to_thread(main, ["people-key", "rotate"]) == 0
    async with create_session_factory(own_engine)() as session:
        stored = (await session.exec(select(HouseholdMember))).one()
    assert IdVault(fresh).open(stored.id_cipher or "") == GOOD
    monkeypatch.setenv("PEOPLE__KEY", "not a key")
    assert await asyncio.to_thread(main, ["people-key", "rotate"]) == 2
