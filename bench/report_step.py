"""One /report step end to end, against an aiogram echo bot through the same sandbox.

Both bots poll the same sandbox Bot API server (rate limits off: this measures software, not
Telegram's pacing) and a sandbox persona talks to each over the control API, as the
end-to-end tests do. In one run this times, ``--rounds`` times each:

(a) the baseline: an aiogram echo bot — a text in, the same text answered straight away —
    in this process, beside GridBot and the sandbox. It keeps the pydantic models of its
    answers alive (:data:`ECHO_ANSWER_MODELS`): plain aiogram reads every answer through
    ``Response[...]``, which pydantic keeps only in a weak cache, so without them the echo
    builds one again after most garbage collections (milliseconds of CPU per request) — or
    not, whenever GridBot's :class:`bot.app.BotApiSession` happens to hold the same one. The
    baseline is the echo at its best, whatever GridBot does;
(a′) the same echo bot in a process of its own, as it would be deployed. The target is
    judged against (a), the echo that runs where GridBot runs;
(b) GridBot's /report description step — the resident types what happened: the update comes
    in, the FSM draft is read and written, the transaction commits with the next prompt in the
    outbox, the sender delivers it (update in → DB commit → reply out). The resident types once
    the bot is idle, as a person reading the prompt would;
(b′) the same step with GridBot in a process of its own (its own copy of the demo database),
    compared with (a′): whether sharing this process with the sandbox and the personas makes
    GridBot look slower or faster than it is (it makes it look faster);
(c) GridBot's /report opener, for comparison — ``/report`` in, the category prompt out;
(d) the delivery part alone: a reply committed to the outbox until it shows in the chat
    (commit, wake, lease, send);

and prints the median and mean round trip of each and its ratio to (a) (target for (b): ≤ 2×),
then counts the SQL statements of one more description step, from the text sent until the bot
is idle again (the update's transaction, and the sender's after it).
The real bot runs on the demo community, exactly as in the e2e harness (``tests/e2e/harness.py``).

    .venv/bin/python -m bench.report_step                 # 40 rounds, SQLite
    .venv/bin/python -m bench.report_step --rounds 10
    .venv/bin/python -m bench.report_step \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/gridbot_bench
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from aiogram import Bot, Dispatcher, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.methods import Response
from aiogram.types import Message, Update
from pydantic import SecretStr
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from bot import migrate
from bot.app import build_app, running
from bot.clock import FrozenClock
from bot.db import create_engine, create_session_factory
from bot.i18n import gettext_for
from bot.labels import TICKET_CATEGORY
from bot.sandbox.client import Persona
from bot.services import outbox
from bot.services.demo import load_demo_data
from bot.settings import LimitSettings, Settings
from models import TicketCategory
from tests.e2e.harness import Harness, harness

NOW = datetime(2026, 3, 12, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai, a Thursday
ECHO_TOKEN = "300000002:GridBotEchoBaselineToken_abcdefghijk"
ECHO_USERNAME = "echo_baseline_bot"
ALONE_TOKEN = "300000003:GridBotEchoAloneBaselineTok_abcdefghijk"
ALONE_USERNAME = "echo_alone_bot"
GRID_ALONE_TOKEN = "300000004:GridBotAloneInItsOwnProcess_abcdefghijk"
GRID_ALONE_USERNAME = "gridbot_alone_bot"
TARGET = 2.0
READING = (
    0.05  # seconds a resident takes to read a prompt (the bot in its own process is idle by then)
)
DESCRIPTION = "3号楼门口的路灯坏了一个星期，晚上很黑，老人出门不方便"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--echo-alone", metavar="SANDBOX_URL", help=argparse.SUPPRESS)
    parser.add_argument(
        "--gridbot-alone", nargs=2, metavar=("SANDBOX_URL", "DATABASE_URL"), help=argparse.SUPPRESS
    )
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("GRIDBOT_BENCH_DATABASE_URL"),
        help="postgresql+asyncpg://…/gridbot_bench (default: SQLite in a temporary directory)",
    )
    return parser.parse_args()


async def prepare_database(url: str | None, folder: Path, suffix: str = "") -> str:
    if url is None:
        url = f"sqlite+aiosqlite:///{folder / f'bench{suffix}.db'}"
    else:
        if suffix:
            url = make_url(url).set(database=f"{make_url(url).database}{suffix}")
            url = url.render_as_string(hide_password=False)
        name = make_url(url).database
        if name in (None, "test", "postgres"):
            raise SystemExit("use a database of its own, e.g. …/gridbot_bench")
        admin = create_engine(
            make_url(url).set(database="postgres").render_as_string(hide_password=False),
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
        )
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        await admin.dispose()
    await asyncio.to_thread(migrate.upgrade, url)
    return url


ECHO_ANSWER_MODELS = (Response[Message], Response[list[Update]])
"""The models of the echo's answers (``sendMessage``, ``getUpdates``), held while it runs."""


def echo_dispatcher() -> Dispatcher:
    """A plain aiogram bot that answers every text with itself."""
    router = Router(name="echo")

    @router.message()
    async def echo(message: Message) -> None:
        await message.answer(message.text or "…")

    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    return dispatcher


async def echo_alone(sandbox_url: str) -> None:
    """(a′): the echo bot polling the sandbox from a process of its own, until killed."""
    bot = Bot(ALONE_TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(sandbox_url)))
    await echo_dispatcher().start_polling(bot, handle_as_tasks=True, polling_timeout=1)


@contextlib.asynccontextmanager
async def child(*args: str) -> AsyncIterator[None]:
    """``python -m bench.report_step *args`` in a process of its own, killed on leaving."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.report_step",
        *args,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        process.terminate()
        await process.wait()


@contextlib.asynccontextmanager
async def echo_process(h: Harness) -> AsyncIterator[None]:
    h.server.register_bot(ALONE_TOKEN, username=ALONE_USERNAME, first_name="回声")
    async with child("--echo-alone", h.sandbox.url):
        yield


async def gridbot_alone(sandbox_url: str, database_url: str) -> None:
    """(b′): GridBot polling the sandbox from a process of its own (its own database, the
    harness's settings), until killed."""
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        bot_token=SecretStr(GRID_ALONE_TOKEN),
        telegram_api_url=sandbox_url,
        database_url=database_url,
        limits=LimitSettings(per_chat_interval=0.0, retry_base_seconds=0.02),
    )
    app = build_app(settings, FrozenClock(NOW))
    async with running(app):
        await app.bot.delete_webhook(drop_pending_updates=False)
        await app.dispatcher.start_polling(
            app.bot,
            handle_as_tasks=True,
            handle_signals=False,
            polling_timeout=1,
            allowed_updates=app.dispatcher.resolve_used_update_types(),
        )


@contextlib.asynccontextmanager
async def gridbot_process(h: Harness, database_url: str) -> AsyncIterator[None]:
    engine = create_engine(database_url)
    async with create_session_factory(engine)() as session:
        await load_demo_data(session, NOW)
        await session.commit()
    await engine.dispose()
    h.server.register_bot(GRID_ALONE_TOKEN, username=GRID_ALONE_USERNAME, first_name="网格通")
    async with child("--gridbot-alone", h.sandbox.url, database_url):
        yield


@contextlib.asynccontextmanager
async def echo_bot(h: Harness) -> AsyncIterator[Bot]:
    """The baseline bot, polling the same sandbox from this process."""
    h.server.register_bot(ECHO_TOKEN, username=ECHO_USERNAME, first_name="回声")
    dispatcher = echo_dispatcher()
    bot = Bot(ECHO_TOKEN, session=AiohttpSession(api=h.sandbox.telegram_api_server()))
    polling = asyncio.create_task(
        dispatcher.start_polling(
            bot, handle_as_tasks=True, handle_signals=False, polling_timeout=1
        )
    )
    try:
        yield bot
    finally:
        with contextlib.suppress(RuntimeError):
            await dispatcher.stop_polling()
        polling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await polling
        await bot.session.close()


async def round_trip(act: Callable[[], Awaitable[object]], persona: Persona) -> float:
    """Seconds from the person acting to the bot's answer showing in their chat."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    await act()
    await persona.next_message()
    return loop.time() - started


def summary(label: str, times: list[float]) -> str:
    return (
        f"  {label:<44} median {statistics.median(times) * 1000:7.1f} ms, "
        f"mean {statistics.fmean(times) * 1000:7.1f} ms"
    )


async def statements_of_a_step(h: Harness, resident: Persona, category: str) -> list[str]:
    """The SQL of one description step, from the text sent until the bot is idle again."""
    assert h.app is not None
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        seen.append(" ".join(statement.split()[:4]))

    await resident.send("/report")
    await resident.next_message()
    await resident.press(category)
    await resident.next_message()
    await h.settle()
    # the harness's own polling of the outbox (SELECT count(*)) is left out
    event.listen(h.app.engine.sync_engine, "before_cursor_execute", record)
    try:
        await resident.send(DESCRIPTION)
        await resident.next_message()
        await h.settle()
    finally:
        event.remove(h.app.engine.sync_engine, "before_cursor_execute", record)
    kept: list[str] = []
    for statement in seen:
        if statement.startswith("SELECT count(*)"):
            if kept and kept[-1].startswith("BEGIN"):
                kept.pop()  # the transaction of the harness's look at the outbox
            continue
        kept.append(statement)
    return kept


async def main() -> int:
    args = parse_args()
    if args.echo_alone:
        await echo_alone(args.echo_alone)
        return 0
    if args.gridbot_alone:
        await gridbot_alone(*args.gridbot_alone)
        return 0
    category = gettext_for("zh_Hans", TICKET_CATEGORY[TicketCategory.FACILITY])
    with tempfile.TemporaryDirectory() as folder:
        url = await prepare_database(args.database_url, Path(folder))
        own_url = await prepare_database(args.database_url, Path(folder), "_alone")
        async with (
            harness(url, FrozenClock(NOW)) as h,
            echo_bot(h),
            echo_process(h),
            gridbot_process(h, own_url),
        ):
            resident = await h.persona("resident")
            user = h.server.get_user(resident.id)
            for username in (ECHO_USERNAME, ALONE_USERNAME, GRID_ALONE_USERNAME):
                h.server.get_bot(username).relation(user.id).started = True
            echoed = h.client.persona_for(user.to_api(), bot=ECHO_USERNAME)
            alone = h.client.persona_for(user.to_api(), bot=ALONE_USERNAME)
            on_its_own = h.client.persona_for(user.to_api(), bot=GRID_ALONE_USERNAME)
            await round_trip(lambda: alone.send("你好"), alone)  # the child is polling
            await round_trip(lambda: on_its_own.send("/cancel"), on_its_own)  # so is this one
            print(
                f"one /report step vs. an aiogram echo bot, {args.rounds} rounds each "
                f"(after 3 to warm up); {url.split(':')[0]}",
                flush=True,
            )
            echo_times: list[float] = []
            alone_times: list[float] = []
            step_times: list[float] = []
            own_step_times: list[float] = []
            open_times: list[float] = []
            outbox_times: list[float] = []
            assert h.app is not None
            app = h.app

            async def commit_reply(n: int) -> None:
                async with app.sessions() as session:
                    outbox.send_text(session, chat_id=resident.id, text=f"回执 {n}", now=NOW)
                    await session.commit()
                app.sender.wake()

            for n in range(args.rounds + 3):
                echo = await round_trip(lambda n=n: echoed.send(f"你好 {n}"), echoed)
                by_itself = await round_trip(lambda n=n: alone.send(f"你好 {n}"), alone)
                opened = await round_trip(lambda: resident.send("/report"), resident)
                await resident.press(category)
                await resident.next_message()
                await h.settle()  # the resident reads the prompt before typing
                step = await round_trip(lambda: resident.send(DESCRIPTION), resident)
                await resident.send("/cancel")
                await resident.next_message()
                await h.settle()
                delivered = await round_trip(lambda n=n: commit_reply(n), resident)
                await h.settle()
                await on_its_own.send("/report")
                await on_its_own.next_message()
                await on_its_own.press(category)
                await on_its_own.next_message()
                await asyncio.sleep(READING)  # the child is idle again, as after h.settle()
                own_step = await round_trip(lambda: on_its_own.send(DESCRIPTION), on_its_own)
                await on_its_own.send("/cancel")
                await on_its_own.next_message()
                await asyncio.sleep(READING)
                if n >= 3:
                    echo_times.append(echo)
                    alone_times.append(by_itself)
                    step_times.append(step)
                    own_step_times.append(own_step)
                    open_times.append(opened)
                    outbox_times.append(delivered)
            statements = await statements_of_a_step(h, resident, category)
    echo_median = statistics.median(echo_times)
    step_median = statistics.median(step_times)
    print(summary("(a) echo bot: text in, text out", echo_times))
    print(summary("(a′) the echo bot in a process of its own", alone_times))
    print(summary("(b) /report step: description in, prompt out", step_times))
    print(summary("(b′) the step, GridBot in a process of its own", own_step_times))
    print(summary("(c) /report opener: command in, prompt out", open_times))
    print(summary("(d) delivery alone: commit to chat", outbox_times))
    ratio = step_median / echo_median
    print(f"  ratio (b) / (a), medians: {ratio:5.2f} ×")
    print(f"  ratio (b) / (a′), medians: {step_median / statistics.median(alone_times):5.2f} ×")
    own_median = statistics.median(own_step_times)
    print(f"  ratio (b′) / (a′), medians: {own_median / statistics.median(alone_times):5.2f} ×")
    print(f"  ratio (c) / (a), medians: {statistics.median(open_times) / echo_median:5.2f} ×")
    print(f"  ratio (d) / (a), medians: {statistics.median(outbox_times) / echo_median:5.2f} ×")
    print(f"  SQL statements of one description step, until the bot is idle: {len(statements)}")
    for statement in statements:
        print(f"    {statement}")
    met = ratio <= TARGET
    print(f"  target (b) ≤ {TARGET:g} × (a): {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
