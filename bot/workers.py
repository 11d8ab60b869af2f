"""``gridbot run --webhook --workers N``: N webhook processes on one port, kept running.

Each worker is an ordinary ``gridbot run --webhook`` process (``--worker n`` tells it its
number) that binds the webhook's port with ``SO_REUSEPORT``: the Linux kernel spreads the
incoming connections over the N listening sockets, so no proxy is needed between TLS and the
workers. This process only supervises them:

* it starts worker 1 first and the others once it serves (a setting that is wrong stops
  worker 1 at start with its own message, and the supervisor with its status);
* a worker that dies is started again after :data:`RESTART_PAUSE`; when more than
  :data:`RESTARTS_ALLOWED` die within :data:`RESTART_WINDOW` seconds something is wrong that
  restarting will not cure, so it stops them all and exits with status 1;
* SIGTERM or SIGINT is passed on as SIGTERM: each worker stops cleanly (it answers what it
  handles, its outbox sender records what is on the wire), and one that takes longer than
  :data:`STOP_GRACE` is killed;
* on Linux, a worker is told to stop (SIGTERM) if the supervisor itself dies.

Only worker 1 competes for the scheduler's leader lock (``--no-scheduler`` for the others);
when it dies, its lock goes with its database connection and its replacement competes again.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import signal
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.i18n import N_

log = logging.getLogger(__name__)

RESTART_PAUSE = 1.0  # seconds before a dead worker is started again
RESTART_WINDOW = 60.0  # seconds over which deaths are counted
RESTARTS_ALLOWED = 5  # deaths within the window before the supervisor gives up
STOP_GRACE = 30.0  # seconds a worker has to stop after SIGTERM before it is killed
READY_TIMEOUT = 120.0  # seconds worker 1 has to start serving
PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies

KEEP_DYING = N_(
    "The webhook workers keep stopping ({deaths} in {seconds} seconds), so GridBot has "
    "stopped. The lines above say why."
)


def _stop_with_parent() -> None:  # pragma: no cover - runs in the child, between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Running:
    number: int
    process: asyncio.subprocess.Process


@dataclass
class Supervisor:
    """Runs ``count`` processes, ``command(n)`` for n in 1..count, until asked to stop;
    ``ready()`` says whether worker 1 serves."""

    count: int
    command: Callable[[int], list[str]]
    ready: Callable[[], Awaitable[bool]]
    deaths: deque[float] = field(default_factory=deque)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    running: dict[int, Running] = field(default_factory=dict)
    given_up: int | None = None  # deaths counted when the supervisor gave up

    async def run(self) -> int:
        """The exit status: 0 once stopped by a signal; worker 1's when it cannot start;
        1 when workers keep dying."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stopping.set)
        try:
            status = await self._first_ready()
            if status is not None:
                return status
            for number in range(2, self.count + 1):
                await self._start(number)
            return await self._keep_running()
        finally:
            await self._stop_all()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)

    async def _start(self, number: int) -> Running:
        preexec = _stop_with_parent if sys.platform.startswith("linux") else None
        process = await asyncio.create_subprocess_exec(
            *self.command(number),
            preexec_fn=preexec,  # no threads are started before it
        )
        log.info("webhook worker %d started (pid %d)", number, process.pid)
        self.running[number] = Running(number, process)
        return self.running[number]

    async def _first_ready(self) -> int | None:
        """Start worker 1 and wait until it serves; its status if it stopped first (a setting
        is wrong: it said which), 0 if the supervisor was stopped meanwhile."""
        first = await self._start(1)
        deadline = time.monotonic() + READY_TIMEOUT
        while not await self.ready():
            if first.process.returncode is not None:
                return first.process.returncode or 1
            if self.stopping.is_set():
                return 0
            if time.monotonic() > deadline:
                log.error("webhook worker 1 did not serve within %g s", READY_TIMEOUT)
                return 1
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.2):
                    await self.stopping.wait()
        return None

    async def _keep_running(self) -> int:
        stop = asyncio.ensure_future(self.stopping.wait())
        try:
            while True:
                ended = {
                    asyncio.ensure_future(each.process.wait()): each
                    for each in self.running.values()
                }
                done, _ = await asyncio.wait([stop, *ended], return_when=asyncio.FIRST_COMPLETED)
                for waiter in ended:
                    waiter.cancel()
                if stop in done:
                    return 0
                for waiter in done:
                    await self._died(ended[waiter])
                    if self.given_up is not None:
                        return 1
        finally:
            stop.cancel()

    async def _died(self, worker: Running) -> None:
        now = time.monotonic()
        self.deaths.append(now)
        while self.deaths and self.deaths[0] < now - RESTART_WINDOW:
            self.deaths.popleft()
        log.warning(
            "webhook worker %d (pid %d) stopped with status %s",
            worker.number,
            worker.process.pid,
            worker.process.returncode,
        )
        del self.running[worker.number]
        if len(self.deaths) > RESTARTS_ALLOWED:
            self.given_up = len(self.deaths)
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(RESTART_PAUSE):
                await self.stopping.wait()
        if not self.stopping.is_set():
            await self._start(worker.number)

    async def _stop_all(self) -> None:
        workers = [w for w in self.running.values() if w.process.returncode is None]
        for worker in workers:
            with contextlib.suppress(ProcessLookupError):
                worker.process.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                async with asyncio.timeout(STOP_GRACE):
                    await worker.process.wait()
            except TimeoutError:
                log.error("webhook worker %d did not stop within %g s", worker.number, STOP_GRACE)
                with contextlib.suppress(ProcessLookupError):
                    worker.process.kill()
                await worker.process.wait()
        self.running.clear()


def worker_command(number: int, *, scheduler: bool, verbose: bool) -> list[str]:
    """The command line of webhook worker ``number`` (this Python, this ``gridbot``)."""
    return [
        sys.executable,
        "-m",
        "bot",
        *(["--verbose"] if verbose else []),
        "run",
        "--webhook",
        "--worker",
        str(number),
        *([] if scheduler and number == 1 else ["--no-scheduler"]),
    ]


def port_answers(host: str, port: int) -> Callable[[], Awaitable[bool]]:
    """Whether something accepts connections on the webhook's port (worker 1, at first)."""
    target = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)

    async def answers() -> bool:
        try:
            async with asyncio.timeout(1.0):
                _, writer = await asyncio.open_connection(target, port)
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    return answers
