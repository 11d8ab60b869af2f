"""The bot process of ``bench/load.py``, and the parent's handle on it.

``python -m bench.load_bot CONFIG`` runs GridBot (``build_app`` and polling, as the e2e harness
starts it) or an aiogram echo bot against a sandbox, with a probe inside: how late a 10 ms
ticker wakes (event-loop lag), CPU time, RSS and its peak, the database connections opened (a
SQLAlchemy ``connect`` listener) and the errors logged. The parent talks to it on stdin/stdout,
one JSON object a line: ``probe``, ``job`` (a scheduler job, run in this process as
``gridbot run`` runs them), ``due`` (outbox rows due), ``wake`` (the sender) and ``quit``.
Only what the chosen bot needs is imported, so the echo starts light.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("bench.load_bot")

NOW = datetime(2026, 3, 12, 0, 5, tzinfo=UTC)  # Thursday 08:05 in Shanghai: push time
ECHO_TOKEN = "300000005:GridBotLoadEchoBaselineToken_abcdefghij"
TICK = 0.010  # the lag probe's ticker
OURS = ("bot/", "scheduler/", "models/")  # GridBot's code, in a stack
REPO = Path(__file__).resolve().parents[1]


class RunningClock:
    """The bot's clock: :data:`NOW` when the process started, moving on with real time (a
    frozen clock would hold every retry of a 429 back for ever)."""

    def __init__(self, start: datetime = NOW) -> None:
        self._start = start
        self._began = time.monotonic()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=time.monotonic() - self._began)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0–100); NaN of nothing."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


class Probe:
    """Inside the bot process: loop lag, connections opened, errors logged, CPU and memory."""

    def __init__(self, engine: AsyncEngine | None) -> None:
        self.late: list[float] = []
        self.connects = 0
        self.errors = 0
        self.deadlocks = 0
        self.first_errors: list[str] = []
        if engine is not None:
            from sqlalchemy import event

            event.listen(engine.sync_engine, "connect", self._connected)
        self._counter = _ErrorCounter(self)
        logging.getLogger().addHandler(self._counter)
        profile = os.environ.get("BENCH_LAG_PROFILE")
        self.sampler = LagSampler(Path(profile)) if profile else None

    def close(self) -> None:
        logging.getLogger().removeHandler(self._counter)
        if self.sampler is not None:
            self.sampler.close()

    def _connected(self, *_: object) -> None:
        self.connects += 1

    async def tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(TICK)
            self.late.append(max(0.0, loop.time() - started - TICK))
            if self.sampler is not None:
                self.sampler.beat = time.monotonic()

    def read(self, *, reset: bool, reset_memory: bool) -> dict[str, Any]:
        figures = {
            "lag_max": max(self.late, default=0.0),
            "lag_p99": percentile(self.late, 99) if self.late else 0.0,
            "ticks": len(self.late),
            "cpu": time.process_time(),
            "connects": self.connects,
            "errors": self.errors,
            "deadlocks": self.deadlocks,
            "first_errors": self.first_errors[:3],
            **memory(),
        }
        if reset:
            self.late = []
            self.errors = self.deadlocks = 0
            self.first_errors = []
        if reset_memory:
            with contextlib.suppress(OSError):  # Linux: the peak RSS starts again from now
                Path("/proc/self/clear_refs").write_text("5")
        return figures


class _ErrorCounter(logging.Handler):
    def __init__(self, probe: Probe) -> None:
        super().__init__(logging.ERROR)
        self.probe = probe

    def emit(self, record: logging.LogRecord) -> None:
        self.probe.errors += 1
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            message += f" ({record.exc_info[1]!r})"
        if "deadlock" in message.lower():
            self.probe.deadlocks += 1
        self.probe.first_errors.append(f"{record.name}: {message}"[:300])


class LagSampler:
    """Where the loop is when it is late (``BENCH_LAG_PROFILE=FILE``): a thread looks every
    5 ms at the loop thread's stack whenever the probe's ticker has not run for ``STALL``
    seconds, and writes the stacks it saw most often to ``FILE`` when the process ends."""

    STALL = 0.030
    EVERY = 0.005
    DEPTH = 12

    def __init__(self, path: Path) -> None:
        self.path = path
        self.beat = time.monotonic()
        self.stacks: Counter[tuple[str, ...]] = Counter()
        self.ours: Counter[tuple[str, ...]] = Counter()  # the innermost frames of GridBot's code
        self.samples = 0
        self._thread_id = threading.get_ident()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="lag-sampler", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(self.EVERY):
            if time.monotonic() - self.beat < self.STALL:
                continue
            frame = sys._current_frames().get(self._thread_id)
            stack: list[str] = []
            while frame is not None:
                code = frame.f_code
                where = code.co_filename.rsplit("site-packages/", 1)[-1]
                stack.append(
                    f"{where.removeprefix(str(REPO) + '/')}:{frame.f_lineno} {code.co_name}"
                )
                frame = frame.f_back
            ours = [each for each in stack if each.startswith(OURS)]
            self.stacks[tuple(stack[: self.DEPTH])] += 1
            self.ours[tuple(ours[:4])] += 1
            self.samples += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1)
        lines = [
            f"{self.samples} samples ({self.EVERY * 1000:.0f} ms apart) while the loop was late"
        ]
        lines.append("\nby GridBot's innermost frames:")
        for stack, count in self.ours.most_common(30):
            lines.append(f"\n{count} ({count * self.EVERY:.2f} s)")
            lines.extend(f"    {frame}" for frame in stack)
        lines.append("\nwhole stacks (innermost first):")
        for stack, count in self.stacks.most_common(30):
            lines.append(f"\n{count} ({count * self.EVERY:.2f} s)")
            lines.extend(f"    {frame}" for frame in stack)
        self.path.write_text("\n".join(lines) + "\n")


def memory() -> dict[str, float]:
    """RSS now and its peak (MB), from /proc (nothing elsewhere)."""
    found: dict[str, float] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found["rss" if key == "VmRSS" else "rss_peak"] = int(value.split()[0]) / 1024
    return found


JOBS = {"daily_task_push", "monthly_indicators", "escalate_overdue"}


class BotHost:
    """A bot and its probe in the process that runs it: GridBot (``build_app``, polling as the
    e2e harness polls) or an aiogram echo bot, against the sandbox at ``sandbox_url``."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.probe: Probe | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._stack = contextlib.AsyncExitStack()
        self._app: Any = None
        self._context: Any = None
        self._stop_polling: Callable[[], Awaitable[Any]] | None = None

    async def start(self) -> dict[str, Any]:
        """Start polling; what the parent is told (``pool_size``)."""
        if self.config["kind"] == "echo":
            return await self._start_echo()
        from bot.app import build_app, close, running
        from bot.settings import LimitSettings
        from scheduler.context import JobContext
        from tests.e2e.harness import sandbox_settings, start_polling

        settings = sandbox_settings(
            self.config["sandbox_url"],
            self.config["database_url"],
            limits=LimitSettings(**self.config["limits"]),
            data_dir=Path(self.config["data_dir"]),
        )
        clock = RunningClock()
        app = self._app = build_app(settings, clock)
        self._stack.push_async_callback(close, app)
        self.probe = Probe(app.engine)
        self._stack.callback(self.probe.close)
        self._context = JobContext(  # as the scheduler builds it: long reads in readers
            sessions=app.sessions,
            clock=clock,
            settings=settings,
            wake_outbox=app.sender.wake,
            readers=app.work.readers,
        )
        self._tasks.append(asyncio.create_task(self.probe.tick()))
        await self._stack.enter_async_context(running(app))
        self._tasks.append(await start_polling(app))
        self._stop_polling = app.dispatcher.stop_polling
        pool_size = getattr(app.engine.pool, "size", None)
        return {"pool_size": pool_size() if callable(pool_size) else None}

    async def _start_echo(self) -> dict[str, Any]:
        from aiogram import Bot, Dispatcher, Router
        from aiogram.client.session.aiohttp import AiohttpSession
        from aiogram.client.telegram import TelegramAPIServer
        from aiogram.methods import Response
        from aiogram.types import Message, Update

        router = Router(name="echo")

        @router.message()
        async def echo(message: Message) -> None:
            await message.answer(message.text or "…")

        dispatcher = Dispatcher()
        dispatcher.include_router(router)
        # the echo keeps its answers' models alive: pydantic's cache of ``Response[...]`` is
        # weak, and rebuilding one costs milliseconds (GridBot's BotApiSession does the same)
        self._app = (Response[Message], Response[list[Update]])
        api = TelegramAPIServer.from_base(self.config["sandbox_url"])
        bot = Bot(ECHO_TOKEN, session=AiohttpSession(api=api))
        self._stack.push_async_callback(bot.session.close)
        self.probe = Probe(None)
        self._stack.callback(self.probe.close)
        self._tasks.append(asyncio.create_task(self.probe.tick()))
        self._tasks.append(
            asyncio.create_task(
                dispatcher.start_polling(
                    bot, handle_as_tasks=True, handle_signals=False, polling_timeout=1
                )
            )
        )
        self._stop_polling = dispatcher.stop_polling
        return {"pool_size": None}

    async def handle(self, request: dict[str, Any]) -> Any:
        """One request of the parent: ``probe``, ``job``, ``due`` or ``wake``."""
        op = request["op"]
        assert self.probe is not None
        if op == "probe":
            return self.probe.read(
                reset=bool(request.get("reset")), reset_memory=bool(request.get("reset_memory"))
            )
        if self.config["kind"] == "echo":
            raise ValueError(f"the echo bot does not do {op!r}")
        if op == "job":
            return await self._job(str(request["name"]))
        if op == "due":
            return await self._app.sender.due_count()
        if op == "wake":
            self._app.sender.wake()
            return True
        raise ValueError(f"no operation {op!r}")

    async def _job(self, name: str) -> dict[str, Any]:
        """A scheduler job, run here as ``gridbot run`` runs it; its time and CPU."""
        from scheduler import jobs

        if name not in JOBS:
            raise ValueError(f"no job {name!r}")
        loop = asyncio.get_running_loop()
        started, cpu = loop.time(), time.process_time()
        error = None
        try:
            await getattr(jobs, name)(self._context)
        except Exception as failure:
            log.exception("job %s failed", name)
            error = repr(failure)[:300]
        return {"seconds": loop.time() - started, "cpu": time.process_time() - cpu, "error": error}

    async def stop(self) -> None:
        if self._stop_polling is not None:
            with contextlib.suppress(RuntimeError):  # it may not have started yet
                await self._stop_polling()
        for task in reversed(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self._stack.aclose()


async def serve(config: dict[str, Any]) -> None:
    """The bot process: a :class:`BotHost`, and the control channel on stdin/stdout (one JSON
    object a line) until the parent says ``quit`` or goes away."""
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    host = BotHost(config)

    def answer(message: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    async def handle(request: dict[str, Any]) -> None:
        try:
            if request["op"] == "quit":
                done.set()
                result = True
            else:
                result = await host.handle(request)
            answer({"id": request["id"], "result": result})
        except Exception as error:  # the parent sees what went wrong
            log.exception("control operation %s failed", request.get("op"))
            answer({"id": request.get("id"), "error": repr(error)[:500]})

    async def control() -> None:
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        handling: set[asyncio.Task[None]] = set()
        while line := await reader.readline():
            task = asyncio.create_task(handle(json.loads(line)))
            handling.add(task)
            task.add_done_callback(handling.discard)
        done.set()  # the parent went away

    try:
        ready = await host.start()
        controller = asyncio.create_task(control())
        answer({"ready": True, "pid": os.getpid(), **ready})
        await done.wait()
        controller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await controller
    finally:
        await host.stop()


class BotHandle:
    """What the parent asks a bot host, wherever it runs."""

    pid = 0
    pool_size: int | None = None

    async def call(self, op: str, timeout: float = 900, **params: Any) -> Any:  # noqa: ASYNC109
        raise NotImplementedError

    async def probe(self, *, reset: bool = True, reset_memory: bool = False) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("probe", reset=reset, reset_memory=reset_memory)
        return result

    async def drained(self, timeout: float = 900) -> float:  # noqa: ASYNC109
        """Wait until the outbox has nothing due; the seconds it took."""
        started = time.monotonic()
        while True:
            try:
                if await self.call("due") == 0:
                    return time.monotonic() - started
            except RuntimeError as error:  # the count met a busy database: ask again
                log.warning("counting the outbox: %s", error)
            if time.monotonic() - started > timeout:
                raise TimeoutError("the outbox did not drain")
            await asyncio.sleep(0.5)


class InlineBot(BotHandle):
    """The bot host in this very process (``bench.load --bot-in-process``, for its smoke
    test): quick to start, but its figures include the sandbox's and the residents' work."""

    def __init__(self, config: dict[str, Any], log_path: Path | None = None) -> None:
        self.host = BotHost(config)
        self.pid = os.getpid()

    async def __aenter__(self) -> InlineBot:
        try:
            self.pool_size = (await self.host.start())["pool_size"]
        except BaseException:
            await self.host.stop()
            raise
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.host.stop()

    async def call(self, op: str, timeout: float = 900, **params: Any) -> Any:  # noqa: ASYNC109
        return await asyncio.wait_for(self.host.handle({"op": op, **params}), timeout)


class BotProcess(BotHandle):
    """A bot host in a process of its own (``python -m bench.load_bot``): start it, ask it
    things, stop it."""

    def __init__(self, config: dict[str, Any], log_path: Path) -> None:
        self.config = config
        self.log_path = log_path
        self.pid = 0
        self.pool_size: int | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ready: asyncio.Future[dict[str, Any]] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._next = 0

    async def __aenter__(self) -> BotProcess:
        loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        root = REPO
        env = {**os.environ, "PYTHONPATH": str(root)}
        with self.log_path.open("ab") as log_file:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.load_bot",
                json.dumps(self.config),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log_file,
                cwd=root,
                env=env,
            )
        self._reader = asyncio.create_task(self._read())
        try:
            ready = await asyncio.wait_for(self._ready, 120)
        except BaseException:
            await self._stop()
            raise
        self.pid = int(ready["pid"])
        self.pool_size = ready.get("pool_size")
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._stop()

    async def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        while line := await self._process.stdout.readline():
            message = json.loads(line)
            if message.get("ready") and self._ready is not None and not self._ready.done():
                self._ready.set_result(message)
                continue
            future = self._pending.pop(int(message.get("id") or -1), None)
            if future is None or future.done():
                continue
            if "error" in message:
                future.set_exception(RuntimeError(f"bot process: {message['error']}"))
            else:
                future.set_result(message["result"])
        failure = RuntimeError(f"the bot process ended; see {self.log_path}")
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(failure)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(failure)
        self._pending.clear()

    async def call(self, op: str, timeout: float = 900, **params: Any) -> Any:  # noqa: ASYNC109
        assert self._process is not None and self._process.stdin is not None
        self._next += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[self._next] = future
        self._process.stdin.write(
            (json.dumps({"id": self._next, "op": op, **params}) + "\n").encode()
        )
        await self._process.stdin.drain()
        return await asyncio.wait_for(future, timeout)

    async def _stop(self) -> None:
        process = self._process
        if process is None:
            return
        if process.returncode is None:
            with contextlib.suppress(Exception):
                await self.call("quit", timeout=10)
            if process.stdin is not None:
                process.stdin.close()
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 5)
        self._process = None


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if len(arguments) != 1:
        raise SystemExit("usage: python -m bench.load_bot CONFIG_JSON (started by bench.load)")
    asyncio.run(serve(json.loads(arguments[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
