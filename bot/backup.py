"""Keeping the data: backups and restores of the SQLite database (PostgreSQL: pg_dump).

``gridbot backup PATH`` copies the database while the bot runs, with SQLite's online backup
API: one read transaction, so the copy is the database as of one moment even while writers
commit (the database is in WAL mode, where a reader holds no writer up). The copy is written
under a temporary name in the target's folder and renamed into place, so a half-written
backup never carries the backup's name. It is one self-contained file (rollback journal, no
``-wal`` beside it). On PostgreSQL the tool is ``pg_dump``; the command says so and prints the
exact command line for the configured database.

``gridbot restore PATH`` replaces the database with a backup, and refuses while a bot runs on
it. How it knows: every process that serves the database (``gridbot run``, ``scheduler``,
``sandbox``) holds a shared ``flock`` on ``<database>.lock`` for as long as it runs
(:func:`database_in_use`); restore takes the same lock exclusively, without waiting, and
holds it while it replaces the file, so a bot started meanwhile stops with a line saying a
restore is under way. The kernel drops a dead process's lock at once, so a crash never
leaves the database "in use". As a second signal, a scheduler lease still valid in
``scheduler_lease`` (renewed every 15 s by the SQLite leader) also refuses. The backup must be
an SQLite database with an ``alembic_version`` this code knows; the database it replaces is
kept beside it (``<database>.before-restore-<time>``), and the stale ``-wal``/``-shm`` files
go before the new file is renamed into place.

The nightly job (:func:`nightly_backup`) writes ``gridbot-YYYYMMDD-HHMM.sqlite3`` (local time,
so the names sort by time) into ``BACKUP__DIR`` and keeps the newest ``BACKUP__KEEP``.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shlex
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import IO

from sqlalchemy.engine import make_url

from bot.i18n import N_
from bot.startup import LOCK_WAIT_SECONDS, StartupProblem, sqlite_file

SQLITE_HEADER = b"SQLite format 3\x00"
BACKUP_NAME = re.compile(r"gridbot-\d{8}-\d{4}\.sqlite3")
PARTIAL = ".partial"

PG_BACKUP = N_(
    "On PostgreSQL, back up with pg_dump (gridbot backup copies only SQLite databases): {command}"
)
PG_RESTORE = N_(
    "On PostgreSQL, stop the bot, then restore with pg_restore (gridbot restore replaces only "
    "SQLite databases): {command}"
)
BACKUP_WRITTEN = N_("Backup written: {path}")
BACKUP_ONTO_DATABASE = N_(
    "The backup cannot be written over the database itself. Choose another path."
)
NO_TARGET_FOLDER = N_(
    "The folder {folder} does not exist. Create it, or choose a path in an existing folder."
)
BACKUP_FAILED = N_(
    "The backup could not be written to {path} ({reason}). Check the free space and that the "
    "folder can be written."
)
NO_DATABASE = N_("There is no database file {path} to back up. Check DATABASE_URL.")
NO_BACKUP_FILE = N_("There is no backup file {path}.")
NOT_SQLITE = N_("{path} is not a GridBot backup: it is not an SQLite database file.")
DAMAGED = N_("The backup {path} is damaged ({reason}). Choose another backup.")
NOT_GRIDBOT = N_(
    "{path} is an SQLite database, but not GridBot's (it has no migration record). Choose a "
    "backup made by gridbot backup."
)
UNKNOWN_REVISION = N_(
    "The backup {path} is at migration {revision}, which this GridBot does not know (it was "
    "made by a newer version). Restore it with that version."
)
RESTORE_ONTO_ITSELF = N_("The backup is the database itself. Choose another file.")
BOT_RUNNING = N_(
    "GridBot is running on {path}. Stop every gridbot run, scheduler and sandbox using it, "
    "then restore again."
)
SCHEDULER_LEASE = N_(
    "A GridBot scheduler ({holder}) ran on {path} less than a minute ago. Stop it (or, if it "
    "is stopped, wait a minute), then restore again."
)
RESTORING = N_(
    "The database {path} is being restored right now. Start GridBot again when the restore "
    "has finished."
)
CANNOT_LOCK = N_(
    "Cannot open the lock file {path} ({reason}). Check that the database's folder can be "
    "written by this user."
)
RESTORED = N_("Restored {backup} into {path}.")
KEPT = N_("The database it replaced is kept as {kept}.")
RESTORED_OLDER = N_(
    "The backup is from an older GridBot: run gridbot db upgrade before starting the bot."
)


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:200]


# -- who uses the database ------------------------------------------------------------------


def lock_file(database: Path) -> Path:
    """The file every process serving ``database`` holds a shared lock on."""
    return database.with_name(database.name + ".lock")


def _open_lock(database: Path) -> IO[bytes]:
    path = lock_file(database)
    try:
        return path.open("ab")
    except OSError as error:
        raise StartupProblem(CANNOT_LOCK, path=str(path), reason=_reason(error)) from None


def _try_lock(handle: IO[bytes], *, exclusive: bool) -> bool:
    if sys.platform == "win32":  # no flock: the scheduler lease is the only signal there
        return True
    import fcntl

    mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
    try:
        fcntl.flock(handle.fileno(), mode)
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def database_in_use(database_url: str) -> Iterator[None]:
    """Mark the database as in use for as long as this process serves it (a shared lock on
    ``<database>.lock``; nothing on PostgreSQL). Raises :class:`StartupProblem` while a restore
    holds it."""
    database = sqlite_file(database_url)
    if database is None or not database.parent.is_dir():
        yield
        return
    handle = _open_lock(database)
    try:
        if not _try_lock(handle, exclusive=False):
            raise StartupProblem(RESTORING, path=str(database))
        yield
    finally:
        handle.close()  # closing the file gives the lock up


@contextlib.contextmanager
def _exclusive(database: Path) -> Iterator[None]:
    handle = _open_lock(database)
    try:
        if not _try_lock(handle, exclusive=True):
            raise StartupProblem(BOT_RUNNING, path=str(database))
        yield
    finally:
        handle.close()


def _live_lease(database: Path, now: datetime) -> str | None:
    """The holder of a scheduler lease on ``database`` still valid at ``now``, if any."""
    if not database.exists():
        return None
    try:
        with contextlib.closing(_connect(database, read_only=True)) as connection:
            rows = connection.execute("SELECT holder, expires_at FROM scheduler_lease").fetchall()
    except sqlite3.Error:  # no such table, or not a database: nothing runs on it
        return None
    for holder, expires_at in rows:
        try:
            expires = datetime.fromisoformat(str(expires_at))
        except ValueError:
            continue
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)  # stored as naive UTC (UTCDateTime)
        if expires > now:
            return str(holder)
    return None


# -- copying ----------------------------------------------------------------------------------


def _connect(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    mode = "ro" if read_only else "rw"
    return sqlite3.connect(f"{path.as_uri()}?mode={mode}", uri=True, timeout=LOCK_WAIT_SECONDS)


def _fsync_folder(folder: Path) -> None:
    if sys.platform == "win32":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _copy_into_place(source: sqlite3.Connection, target: Path) -> None:
    """Copy the database open in ``source`` to ``target`` through a temporary file in the same
    folder, checked and synced, then renamed over ``target`` (stale ``-wal``/``-shm`` of
    ``target`` removed first, as they would be replayed into the new file)."""
    partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}{PARTIAL}")
    try:
        with contextlib.closing(sqlite3.connect(partial)) as copy:
            source.backup(copy)  # every page in one step: one consistent read transaction
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            check = copy.execute("PRAGMA quick_check").fetchone()
            if check is None or check[0] != "ok":
                raise sqlite3.DatabaseError(str(check[0] if check else "no answer"))
        with partial.open("rb+") as written:
            os.fsync(written.fileno())
        for suffix in ("-wal", "-shm", "-journal"):
            target.with_name(target.name + suffix).unlink(missing_ok=True)
        os.replace(partial, target)
        _fsync_folder(target.parent)
    finally:
        partial.unlink(missing_ok=True)
        partial.with_name(partial.name + "-journal").unlink(missing_ok=True)


def backup_file(database: Path, target: Path) -> None:
    """Write a consistent copy of the SQLite ``database`` to ``target`` (blocking: run it in a
    thread from async code)."""
    if not database.is_file():
        raise StartupProblem(NO_DATABASE, path=str(database))
    if not target.parent.is_dir():
        raise StartupProblem(NO_TARGET_FOLDER, folder=str(target.parent))
    if target.exists() and target.resolve() == database.resolve():
        raise StartupProblem(BACKUP_ONTO_DATABASE)
    try:
        with contextlib.closing(_connect(database)) as source:
            _copy_into_place(source, target)
    except (sqlite3.Error, OSError) as error:
        raise StartupProblem(BACKUP_FAILED, path=str(target), reason=_reason(error)) from None


def backup_name(now: datetime, tz: tzinfo) -> str:
    """``gridbot-YYYYMMDD-HHMM.sqlite3`` in local time: names sort by time."""
    return now.astimezone(tz).strftime("gridbot-%Y%m%d-%H%M.sqlite3")


def backup_target(path: Path, now: datetime, tz: tzinfo) -> Path:
    """``path`` itself, or a time-named file inside it when it is a folder."""
    path = path.expanduser().absolute()
    return path / backup_name(now, tz) if path.is_dir() else path


def pg_command(database_url: str, tool: str, path: Path) -> str:
    """The ``pg_dump``/``pg_restore`` command line for a PostgreSQL URL, with no password (the
    tools ask for it, or read ``PGPASSWORD`` or ``~/.pgpass``)."""
    url = make_url(database_url)
    words = [tool]
    if url.host:
        words.append(f"--host={url.host}")
    if url.port:
        words.append(f"--port={url.port}")
    if url.username:
        words.append(f"--username={url.username}")
    if tool == "pg_dump":
        words += ["--format=custom", f"--file={path}", url.database or ""]
    else:
        words += ["--clean", "--if-exists", "--no-owner", f"--dbname={url.database or ''}"]
        words.append(str(path))
    return shlex.join(words)


def backup(database_url: str, path: Path, now: datetime, tz: tzinfo) -> Path:
    """``gridbot backup PATH``: the file written, or :class:`StartupProblem` saying why not."""
    database = sqlite_file(database_url)
    target = backup_target(path, now, tz)
    if database is None:
        if make_url(database_url).get_backend_name() == "postgresql":
            dump = target.with_suffix(".dump") if target.parent == path.absolute() else target
            raise StartupProblem(PG_BACKUP, command=pg_command(database_url, "pg_dump", dump))
        raise StartupProblem(NO_DATABASE, path=database_url)
    backup_file(database, target)
    return target


def rotate(folder: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` nightly backups in ``folder`` (only files named
    like one); the deleted paths, oldest first."""
    names = sorted(p.name for p in folder.iterdir() if BACKUP_NAME.fullmatch(p.name))
    doomed = [folder / name for name in names[: max(len(names) - keep, 0)]]
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed


def nightly_backup(database_url: str, folder: Path, keep: int, now: datetime, tz: tzinfo) -> Path:
    """The nightly job's work: a time-named backup in ``folder``, then rotation."""
    database = sqlite_file(database_url)
    if database is None:
        raise StartupProblem(
            PG_BACKUP, command=pg_command(database_url, "pg_dump", folder / "gridbot.dump")
        )
    folder.mkdir(parents=True, exist_ok=True)
    target = folder.absolute() / backup_name(now, tz)
    backup_file(database, target)
    rotate(folder, keep)
    return target


# -- restoring --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Restored:
    database: Path
    revision: str
    kept: Path | None
    older: bool  # the backup's migration is behind this code's head: upgrade before running


def known_revisions() -> tuple[set[str], str | None]:
    """Every migration revision this code knows, and its head."""
    from alembic.script import ScriptDirectory

    from bot.migrate import alembic_config

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return {rev.revision for rev in script.walk_revisions()}, script.get_current_head()


def check_backup(path: Path) -> str:
    """The backup's migration revision, if it is a sound GridBot SQLite database this code can
    run; :class:`StartupProblem` saying what is wrong with it otherwise."""
    if not path.is_file():
        raise StartupProblem(NO_BACKUP_FILE, path=str(path))
    try:
        with path.open("rb") as file:
            header = file.read(len(SQLITE_HEADER))
    except OSError as error:
        raise StartupProblem(DAMAGED, path=str(path), reason=_reason(error)) from None
    if header != SQLITE_HEADER:
        raise StartupProblem(NOT_SQLITE, path=str(path))
    try:
        with contextlib.closing(_connect(path, read_only=True)) as connection:
            check = connection.execute("PRAGMA quick_check").fetchone()
            if check is None or check[0] != "ok":
                raise StartupProblem(DAMAGED, path=str(path), reason=str(check and check[0]))
            has_version = connection.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
            ).fetchone()
            if has_version is None:
                raise StartupProblem(NOT_GRIDBOT, path=str(path))
            found = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.Error as error:
        raise StartupProblem(DAMAGED, path=str(path), reason=_reason(error)) from None
    if len(found) != 1:
        raise StartupProblem(NOT_GRIDBOT, path=str(path))
    revision = str(found[0][0])
    if revision not in known_revisions()[0]:
        raise StartupProblem(UNKNOWN_REVISION, path=str(path), revision=revision[:40])
    return revision


def restore(database_url: str, path: Path, now: datetime) -> Restored:
    """``gridbot restore PATH``: replace the SQLite database with the backup at ``path``."""
    database = sqlite_file(database_url)
    backup_path = path.expanduser().absolute()
    if database is None:
        if make_url(database_url).get_backend_name() == "postgresql":
            raise StartupProblem(
                PG_RESTORE, command=pg_command(database_url, "pg_restore", backup_path)
            )
        raise StartupProblem(NO_DATABASE, path=database_url)
    if not database.parent.is_dir():
        raise StartupProblem(NO_TARGET_FOLDER, folder=str(database.parent))
    if backup_path.exists() and database.exists() and backup_path.samefile(database):
        raise StartupProblem(RESTORE_ONTO_ITSELF)
    revision = check_backup(backup_path)
    with _exclusive(database):
        holder = _live_lease(database, now)
        if holder is not None:
            raise StartupProblem(SCHEDULER_LEASE, holder=holder, path=str(database))
        kept = _keep(database, now)
        try:
            with contextlib.closing(_connect(backup_path, read_only=True)) as source:
                _copy_into_place(source, database)
        except (sqlite3.Error, OSError) as error:
            raise StartupProblem(
                BACKUP_FAILED, path=str(database), reason=_reason(error)
            ) from None
    return Restored(database, revision, kept, older=revision != known_revisions()[1])


def _keep(database: Path, now: datetime) -> Path | None:
    """Keep the database about to be replaced beside it (a consistent copy when it is a
    sound database, the raw file otherwise)."""
    if not database.exists():
        return None
    stamp = now.astimezone(UTC).strftime("%Y%m%d-%H%M%S")
    kept = database.with_name(f"{database.name}.before-restore-{stamp}")
    try:
        with contextlib.closing(_connect(database)) as source:
            _copy_into_place(source, kept)
    except (sqlite3.Error, OSError):
        import shutil

        try:
            shutil.copyfile(database, kept)
        except OSError as error:
            raise StartupProblem(BACKUP_FAILED, path=str(kept), reason=_reason(error)) from None
    return kept
