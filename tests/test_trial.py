"""``gridbot sandbox``: every demo person gets a sandbox account the web page lists by role."""

from __future__ import annotations

import shutil
from pathlib import Path

from pydantic import SecretStr

from bot.clock import FrozenClock
from bot.db import create_engine, create_session_factory
from bot.sandbox.server import SandboxServer
from bot.services.demo import DEMO_PERSONAS, load_demo_data
from bot.services.people import RoleInGrid
from bot.settings import Settings
from bot.trial import (
    SANDBOX_TOKEN,
    SANDBOX_USERNAME,
    page_labels,
    role_heading,
    sandbox_accounts,
)
from models import Role


async def test_demo_people_are_listed_under_their_most_senior_role_with_their_grids(
    sqlite_template: Path, tmp_path: Path, clock: FrozenClock
) -> None:
    path = tmp_path / "trial.db"
    shutil.copy(sqlite_template, path)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        bot_token=SecretStr(SANDBOX_TOKEN),
        database_url=f"sqlite+aiosqlite:///{path}",
    )
    engine = create_engine(settings.database_url)
    async with create_session_factory(engine)() as session:
        await load_demo_data(session, clock.now())
        await session.commit()
    await engine.dispose()
    server = SandboxServer(clock=clock.now)
    server.register_bot(SANDBOX_TOKEN, username=SANDBOX_USERNAME)

    assert await sandbox_accounts(server, settings) == 74
    assert await sandbox_accounts(server, settings) == 0  # once only

    users = list(server.users.values())
    order = [
        Role.ADMIN,
        Role.CENTER,
        Role.SUPERVISOR,
        Role.DEPARTMENT,
        Role.HEAD,
        Role.WORKER,
        Role.RESIDENT,
    ]
    groups = list(dict.fromkeys(user.group for user in users))
    assert groups == [role_heading(role) for role in order]
    assert role_heading(Role.WORKER) == "网格员 Grid worker"
    admin = server.users[DEMO_PERSONAS["admin"]]
    assert admin.group == "系统管理员 Administrator"
    assert admin.phone_number == "8616622041617"  # as Telegram shares it; the page formats it
    worker = server.users[DEMO_PERSONAS["worker"]]
    assert worker.group == "网格员 Grid worker" and worker.note == "杏东花园2号楼"
    # the role stays out of the Telegram name the bot sees
    assert all(user.last_name is None for user in users)
    assert "网格员" not in str(worker.to_api())
    assert all(server.get_bot(SANDBOX_USERNAME).relation(u.id).started for u in users)


def test_someone_with_several_roles_is_listed_under_the_most_senior_and_the_note_names_each() -> (
    None
):
    def role(kind: Role, grid: str) -> RoleInGrid:
        return RoleInGrid(role=kind, grid_id=1, grid_name=grid, grid_code="1", grid_tier=3)

    group, note, rank = page_labels(
        [
            role(Role.WORKER, "杏东花园2号楼"),
            role(Role.HEAD, "杏东花园片区"),
            role(Role.WORKER, "杏东花园4号楼"),
        ]
    )
    assert group == "网格长 Grid head" and rank == 4
    assert note == "网格员 杏东花园2号楼 · 杏东花园片区 · 网格员 杏东花园4号楼"
    assert page_labels([]) == (None, None, 7)
