"""``gridbot backup`` and ``gridbot restore`` on SQLite, the nightly backup job and its
rotation: a backup taken while reports are being filed restores every ticket committed before
it, consistently; restore refuses, in one translated line, while a bot serves the database and
for any file that is not a sound GridBot database this code can run."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import backup
from bot.__main__ import main
from bot.clock import FrozenClock
from bot.db import create_engine, create_session_factory
from bot.i18n import gettext_for
from bot.services import tickets
from bot.services.demo import DEMO_PERSONAS, load_demo_data
from bot.services.notice_board import resident_grid
from bot.settings import BackupSettings, ReportLimits, Settings
from bot.startup import StartupProblem
from models import Person, TicketCategory
from scheduler import jobs
from scheduler.context import JobContext
from scheduler.registry import NIGHTLY_BACKUP, SWEEPS, default_registry
from tests.fakes import RecordingNotifier

SHANGHAI = Settings(_env_file=None).tz  # type: ignore[call-arg]
SETTINGS = Settings(
    _env_file=None,  # type: ignore[call-arg]
    reports=ReportLimits(per_hour=1000, per_day=1000),
)
WRITERS = 4
PER_WRITER = 12


def url_of(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
def live(sqlite_template: Path, tmp_path: Path) -> Path:
    """A migrated database in a folder of its own."""
    path = tmp_path / "live" / "gridbot.db"
    path.parent.mkdir()
    shutil.copy(sqlite_template, path)
    return path


async def file_one(session: AsyncSession, persona: str, n: int, now: datetime) -> str:
    reporter = (
        await session.exec(select(Person).where(Person.telegram_id == DEMO_PERSONAS[persona]))
    ).one()
    assert reporter.id is not None
    grid = await resident_grid(session, reporter.id)
    assert grid is not None
    ticket = await tickets.file_ticket(
        session,
        RecordingNotifier(),
        reporter=reporter,
        grid=grid,
        report=tickets.Report(TicketCategory.FACILITY, f"第{n}号路灯不亮了"),
        settings=SETTINGS,
        now=now,
    )
    return ticket.number


def ticket_numbers(database: Path) -> set[str]:
    with closing(sqlite3.connect(database)) as connection:
        return {number for (number,) in connection.execute("SELECT number FROM ticket")}


def files_in(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def check_consistent(database: Path) -> None:
    """Sound, and no ticket without the two events filed in its own transaction."""
    with closing(sqlite3.connect(database)) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert connection.execute("PRAGMA foreign_key_check").fetchall() == []
        torn = connection.execute(
            "SELECT count(*) FROM ticket t WHERE "
            "(SELECT count(*) FROM ticket_event e WHERE e.ticket_id = t.id) < 2"
        ).fetchone()
        assert torn == (0,)


async def test_a_backup_during_a_burst_of_reports_restores_every_committed_ticket(
    live: Path, tmp_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(url_of(live))
    sessions = create_session_factory(engine)
    async with sessions() as session:
        await load_demo_data(session, clock.now())
        await session.commit()
    committed: list[str] = []
    started = asyncio.Event()
    # The copy is fast; to be sure writers commit while it reads, the backup's read
    # transaction is opened first and the copy waits until writers committed more tickets.
    snapshot = threading.Event()
    went_on = threading.Event()
    at_snapshot: set[str] = set()
    copy_into_place = backup._copy_into_place

    def while_writers_go_on(source: sqlite3.Connection, target: Path) -> None:
        at_snapshot.update(committed)  # committed before the snapshot: all in the copy
        source.execute("BEGIN")
        source.execute("SELECT count(*) FROM ticket").fetchone()  # the snapshot starts here
        snapshot.set()
        assert went_on.wait(120)
        copy_into_place(source, target)

    async def writer(persona: str) -> None:
        for n in range(PER_WRITER):
            async with sessions() as session:
                number = await file_one(session, persona, n, clock.now())
                await session.commit()
            committed.append(number)
            if len(committed) >= WRITERS:
                started.set()
            if snapshot.is_set() and len(committed) >= len(at_snapshot) + WRITERS:
                went_on.set()
            await asyncio.sleep(0)  # let the others take turns

    personas = ["resident", "other_resident"] * (WRITERS // 2)
    burst = [asyncio.create_task(writer(p)) for p in personas]
    await started.wait()
    folder = tmp_path / "backups"
    folder.mkdir()
    with monkeypatch.context() as patch:
        patch.setattr(backup, "_copy_into_place", while_writers_go_on)
        during = await asyncio.to_thread(
            backup.backup, url_of(live), folder, clock.now(), SHANGHAI
        )
    await asyncio.gather(*burst)
    after = await asyncio.to_thread(
        backup.backup, url_of(live), tmp_path / "after.sqlite3", clock.now(), SHANGHAI
    )
    await engine.dispose()

    assert during.parent == folder and backup.BACKUP_NAME.fullmatch(during.name)
    assert len(committed) == WRITERS * PER_WRITER
    assert at_snapshot and len(at_snapshot) < len(committed)
    for copy, expected in ((during, at_snapshot), (after, set(committed))):
        assert not copy.with_name(copy.name + "-wal").exists()  # one self-contained file
        fresh = tmp_path / f"fresh-{copy.stem}" / "gridbot.db"
        fresh.parent.mkdir()
        restored = backup.restore(url_of(fresh), copy, clock.now())
        assert restored.kept is None and not restored.older
        check_consistent(fresh)
        assert expected <= ticket_numbers(fresh) <= set(committed)
    assert ticket_numbers(tmp_path / "fresh-after" / "gridbot.db") == set(committed)
    assert not [name for name in files_in(folder) + files_in(tmp_path) if "partial" in name]


async def test_restore_keeps_the_database_it_replaces(
    live: Path, tmp_path: Path, clock: FrozenClock
) -> None:
    copy = backup.backup(url_of(live), tmp_path / "empty.sqlite3", clock.now(), SHANGHAI)
    engine = create_engine(url_of(live))
    async with create_session_factory(engine)() as session:
        await load_demo_data(session, clock.now())
        number = await file_one(session, "resident", 1, clock.now())
        await session.commit()
    await engine.dispose()  # leaves the WAL behind on some systems; the copy must include it
    restored = await asyncio.to_thread(backup.restore, url_of(live), copy, clock.now())
    assert ticket_numbers(live) == set()
    assert restored.kept is not None and ticket_numbers(restored.kept) == {number}
    for suffix in ("-wal", "-shm"):
        assert not live.with_name(live.name + suffix).exists()


# -- refusals -------------------------------------------------------------------------------


def refusal(database: Path, backup_path: Path, now: datetime) -> StartupProblem:
    with pytest.raises(StartupProblem) as refused:
        backup.restore(url_of(database), backup_path, now)
    return refused.value


@pytest.fixture
def good_copy(live: Path, tmp_path: Path, clock: FrozenClock) -> Path:
    return backup.backup(url_of(live), tmp_path / "good.sqlite3", clock.now(), SHANGHAI)


def test_restore_refuses_while_a_bot_serves_the_database(
    live: Path, good_copy: Path, clock: FrozenClock
) -> None:
    before = live.read_bytes()
    with backup.database_in_use(url_of(live)):  # what gridbot run, scheduler and sandbox hold
        problem = refusal(live, good_copy, clock.now())
    assert problem.message == backup.BOT_RUNNING
    assert live.read_bytes() == before
    backup.restore(url_of(live), good_copy, clock.now())  # once it stopped


def test_restore_refuses_while_a_scheduler_lease_is_live(
    live: Path, good_copy: Path, clock: FrozenClock
) -> None:
    with closing(sqlite3.connect(live)) as connection, connection:
        connection.execute(
            "INSERT INTO scheduler_lease (name, holder, expires_at) VALUES (?, ?, ?)",
            ("scheduler", "host:42:abcd", (clock.now() + timedelta(seconds=30)).isoformat(" ")),
        )
    problem = refusal(live, good_copy, clock.now())
    assert problem.message == backup.SCHEDULER_LEASE and problem.params["holder"] == "host:42:abcd"
    later = clock.now() + timedelta(minutes=1)  # the lease ran out: its holder is gone
    assert backup.restore(url_of(live), good_copy, later).kept is not None


def test_a_bot_does_not_start_while_a_restore_holds_the_database(live: Path) -> None:
    with backup._exclusive(live), pytest.raises(StartupProblem) as refused:  # noqa: SIM117
        with backup.database_in_use(url_of(live)):
            pass
    assert refused.value.message == backup.RESTORING


def not_gridbot(path: Path) -> Path:
    with closing(sqlite3.connect(path)) as connection, connection:
        connection.execute("CREATE TABLE notes (body TEXT)")
    return path


def future_revision(path: Path) -> Path:
    with closing(sqlite3.connect(path)) as connection, connection:
        connection.execute("UPDATE alembic_version SET version_num = '0099_from_the_future'")
    return path


def truncated(path: Path) -> Path:
    with path.open("r+b") as file:
        file.truncate(4096 + 100)  # a header that promises pages that are not there
        file.seek(4096)
        file.write(os.urandom(100))
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p, good: p.write_bytes(os.urandom(5000)) and p, backup.NOT_SQLITE),
        (lambda p, good: p.write_bytes(b"") is not None and p, backup.NOT_SQLITE),
        (lambda p, good: p.write_text("SQLite format 3 but not really") and p, backup.NOT_SQLITE),
        (lambda p, good: not_gridbot(p), backup.NOT_GRIDBOT),
        (lambda p, good: future_revision(Path(shutil.copy(good, p))), backup.UNKNOWN_REVISION),
        (lambda p, good: truncated(Path(shutil.copy(good, p))), backup.DAMAGED),
        (lambda p, good: p.mkdir() or p, backup.NO_BACKUP_FILE),
        (lambda p, good: p, backup.NO_BACKUP_FILE),
    ],
    ids=["garbage", "empty", "text", "not-gridbot", "future", "damaged", "folder", "missing"],
)
def test_restore_refuses_what_is_not_a_gridbot_backup_and_changes_nothing(
    live: Path, good_copy: Path, tmp_path: Path, clock: FrozenClock, make: object, message: str
) -> None:
    candidate = make(tmp_path / "candidate.sqlite3", good_copy)  # type: ignore[operator]
    before = live.read_bytes()
    problem = refusal(live, candidate, clock.now())
    assert problem.message == message
    assert live.read_bytes() == before
    assert not list(live.parent.glob("*.before-restore-*"))


# -- the command line -----------------------------------------------------------------------


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, live: Path) -> Iterator[pytest.MonkeyPatch]:
    monkeypatch.setenv("DATABASE_URL", url_of(live))
    monkeypatch.setenv("DEFAULT_LOCALE", "zh_Hans")
    yield monkeypatch


def one_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    status = main(argv)
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    return err.strip()


@pytest.mark.usefixtures("cli")
def test_the_command_line_says_each_refusal_in_one_translated_line(
    capsys: pytest.CaptureFixture[str], live: Path, good_copy: Path, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(os.urandom(3000))
    assert one_line(capsys, ["restore", str(junk)]) == gettext_for(
        "zh_Hans", backup.NOT_SQLITE, path=str(junk)
    )
    other = not_gridbot(tmp_path / "other.sqlite3")
    assert "不是 GridBot 的" in one_line(capsys, ["restore", str(other)])
    future = future_revision(Path(shutil.copy(good_copy, tmp_path / "future.sqlite3")))
    assert "0099_from_the_future" in one_line(capsys, ["restore", str(future)])
    with backup.database_in_use(url_of(live)):
        assert one_line(capsys, ["restore", str(good_copy)]) == gettext_for(
            "zh_Hans", backup.BOT_RUNNING, path=str(live)
        )
    assert "不存在" in one_line(capsys, ["backup", str(tmp_path / "nowhere" / "x.sqlite3")])


@pytest.mark.usefixtures("cli")
def test_the_command_line_backs_up_and_restores(
    capsys: pytest.CaptureFixture[str], live: Path, tmp_path: Path
) -> None:
    target = tmp_path / "copy.sqlite3"
    assert main(["backup", str(target)]) == 0
    assert capsys.readouterr().out.strip() == gettext_for(
        "zh_Hans", backup.BACKUP_WRITTEN, path=str(target)
    )
    assert main(["restore", str(target)]) == 0
    said = capsys.readouterr().out.splitlines()
    assert said[0] == gettext_for("zh_Hans", backup.RESTORED, backup=str(target), path=str(live))
    assert said[1].startswith("被替换的原数据库已保留为")


@pytest.mark.parametrize("command", ["backup", "restore"])
def test_on_postgresql_the_command_line_prints_the_pg_command_without_the_password(
    cli: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    cli.setenv("DATABASE_URL", "postgresql+asyncpg://grid:s3cret@db.example:5433/city")
    cli.setenv("DEFAULT_LOCALE", "en")
    line = one_line(capsys, [command, "/srv/backups/city.dump"])
    tool = "pg_dump" if command == "backup" else "pg_restore"
    assert line.startswith("On PostgreSQL,") and f": {tool} " in line
    assert "--host=db.example --port=5433 --username=grid" in line
    assert "s3cret" not in line and "city" in line and "/srv/backups/city.dump" in line


def test_on_postgresql_a_backup_folder_gets_a_time_named_dump(
    cli: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cli.setenv("DATABASE_URL", "postgresql+asyncpg://grid@db.example/city")
    folder = tmp_path / "dumps"
    folder.mkdir()
    line = one_line(capsys, ["backup", str(folder)])
    assert f"--file={folder}/gridbot-" in line and ".dump city" in line
    assert files_in(folder) == []


# -- the nightly job ------------------------------------------------------------------------


def test_backup_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKUP__DIR", "")  # as .env.example leaves it: off
    assert Settings(_env_file=None).backup.dir is None  # type: ignore[call-arg]
    monkeypatch.setenv("BACKUP__DIR", "/srv/backups")
    monkeypatch.setenv("BACKUP__KEEP", "7")
    configured = Settings(_env_file=None).backup  # type: ignore[call-arg]
    assert configured == BackupSettings(dir=Path("/srv/backups"), keep=7)
    monkeypatch.setenv("BACKUP__KEEP", "0")
    with pytest.raises(ValidationError):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_the_nightly_backup_is_declared_only_when_a_folder_is_configured(tmp_path: Path) -> None:
    off = default_registry(Settings(_env_file=None))  # type: ignore[call-arg]
    assert [job.id for job in off] == [s.id for s in SWEEPS]
    on = default_registry(
        Settings(_env_file=None, backup=BackupSettings(dir=tmp_path))  # type: ignore[call-arg]
    )
    assert [job.id for job in on] == [s.id for s in SWEEPS] + [NIGHTLY_BACKUP.id]
    fire = on[NIGHTLY_BACKUP.id].next_fire_after(datetime(2026, 12, 7, 12, tzinfo=UTC))
    assert fire is not None and fire.astimezone(SHANGHAI).strftime("%H:%M") == "03:00"


async def test_the_nightly_backup_writes_time_named_files_and_keeps_the_newest(
    live: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "nightly"  # made by the first run
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url_of(live),
        backup=BackupSettings(dir=folder, keep=3),
    )
    night = datetime(2026, 12, 1, 19, 0, tzinfo=UTC)  # 03:00 in Shanghai
    clock = FrozenClock(night)
    engine = create_engine(settings.database_url)
    ctx = JobContext(sessions=create_session_factory(engine), clock=clock, settings=settings)
    for _ in range(5):
        await jobs.nightly_backup(ctx)
        clock.advance(timedelta(days=1))
    await engine.dispose()
    (folder / "notes.txt").write_text("kept: not a backup")
    assert files_in(folder) == [
        "gridbot-20261204-0300.sqlite3",
        "gridbot-20261205-0300.sqlite3",
        "gridbot-20261206-0300.sqlite3",
        "notes.txt",
    ]
    assert backup.check_backup(folder / "gridbot-20261206-0300.sqlite3")
    assert backup.rotate(folder, 1) == [
        folder / "gridbot-20261204-0300.sqlite3",
        folder / "gridbot-20261205-0300.sqlite3",
    ]
    assert (folder / "notes.txt").exists()


async def test_the_nightly_backup_on_postgresql_fails_saying_pg_dump(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url="postgresql+asyncpg://grid@db.example/city",
        backup=BackupSettings(dir=tmp_path),
    )
    clock = FrozenClock(datetime(2026, 12, 1, 19, 0, tzinfo=UTC))
    ctx = JobContext(sessions=None, clock=clock, settings=settings)  # type: ignore[arg-type]
    with pytest.raises(StartupProblem) as refused:
        await jobs.nightly_backup(ctx)
    assert refused.value.message == backup.PG_BACKUP
    assert files_in(tmp_path) == []
