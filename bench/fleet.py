"""Real ``gridbot run`` processes, and nginx's part in front of webhook workers.

Shared by ``bench/webhooks.py`` and ``tests/e2e/test_multiprocess_e2e.py``: a round-robin
reverse proxy (:func:`proxy`) that forwards each webhook POST to the next worker, and a launcher
(:func:`gridbots`) for ``python -m bot run [--webhook] --no-scheduler`` processes, each with its
own port and log, waited on until ready and stopped (SIGTERM, then SIGKILL) at the end.
Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
WEBHOOK_SECRET = "multi-process-secret"
START_TIMEOUT = 90.0  # seconds for a process to come up


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def gridbot_env(database_url: str, **more: str) -> dict[str, str]:
    """A ``gridbot`` process's environment: this one's, the database, ``more``, and this
    checkout first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(DATABASE_URL=database_url, **more)
    return env


def gridbot_command(folder: Path, env: Mapping[str, str], *args: str) -> None:
    """A ``gridbot`` command run to its end, from ``folder`` (one with no ``.env``)."""
    done = subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=folder,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"gridbot {' '.join(args)}:\n{done.stdout}\n{done.stderr}")


async def forget_fsm_keys(redis_url: str, chats: Iterable[int]) -> None:
    """Remove the private chats' conversation state (``fsm:<chat>:<user>:state|data``)."""
    from redis.asyncio import Redis

    keys = [f"fsm:{chat}:{chat}:{part}" for chat in chats for part in ("state", "data")]
    if not keys:
        return
    redis = Redis.from_url(redis_url)
    try:
        await redis.delete(*keys)
    finally:
        await redis.aclose()


# --- nginx's part: a round-robin proxy ---------------------------------------------------------


@dataclass
class Proxy:
    """Forwards each webhook POST to the next worker in turn; a worker whose connection fails
    gets the sandbox a 502 (nginx does not retry a POST on another upstream by default), and
    the sandbox retries like Telegram. Remembers which worker answered each update."""

    workers: list[str]
    session: aiohttp.ClientSession
    turn: Iterator[int] = field(default_factory=itertools.count)
    answered_by: dict[int, int] = field(default_factory=dict)  # update id → worker index
    chat_of: dict[int, int] = field(default_factory=dict)  # update id → chat id
    in_flight: dict[int, set[int]] = field(default_factory=lambda: defaultdict(set))
    failed: Counter[int] = field(default_factory=Counter)  # worker index → 502s answered

    def history(self, chat: int) -> list[tuple[int, int | None]]:
        """The chat's updates and the worker that answered each (None: none did)."""
        return [(u, self.answered_by.get(u)) for u, c in sorted(self.chat_of.items()) if c == chat]

    async def forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        update = json.loads(body)
        update_id = int(update["update_id"])
        self.chat_of[update_id] = chat_of(update)
        index = next(self.turn) % len(self.workers)
        headers = {
            name: value
            for name, value in request.headers.items()
            if name.lower() in ("content-type", "x-telegram-bot-api-secret-token")
        }
        self.in_flight[index].add(update_id)
        try:
            async with self.session.post(
                self.workers[index], data=body, headers=headers
            ) as response:
                answer = await response.read()
                if 200 <= response.status <= 299:
                    self.answered_by[update_id] = index
                return web.Response(
                    status=response.status,
                    body=answer,
                    headers={"Content-Type": response.headers.get("Content-Type", "text/plain")},
                )
        except (aiohttp.ClientError, TimeoutError):
            self.failed[index] += 1
            return web.Response(status=502, text="502 Bad Gateway")
        finally:
            self.in_flight[index].discard(update_id)


def chat_of(update: dict[str, Any]) -> int:
    if "callback_query" in update:
        return int(update["callback_query"]["from"]["id"])
    for kind, body in update.items():
        if kind != "update_id" and isinstance(body, dict) and "chat" in body:
            return int(body["chat"]["id"])
    return 0


@contextlib.asynccontextmanager
async def proxy(workers: list[str]) -> AsyncIterator[tuple[Proxy, str]]:
    """The proxy on a free port, and its webhook address. ``workers`` may be filled in after
    the proxy starts (the workers need its address to start)."""
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=60)
    ) as session:
        front = Proxy(workers, session)
        app = web.Application()
        app.router.add_post("/telegram/webhook", front.forward)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            yield front, f"http://127.0.0.1:{port}/telegram/webhook"
        finally:
            await runner.cleanup()


# --- the processes -----------------------------------------------------------------------------


@dataclass
class Worker:
    number: int
    port: int  # its webhook port (0 when polling)
    process: asyncio.subprocess.Process
    log: Path

    @property
    def webhook(self) -> str:
        return f"http://127.0.0.1:{self.port}/telegram/webhook"

    def tail(self) -> str:
        lines = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        return f"--- worker {self.number} (port {self.port}) ---\n" + "\n".join(lines[-40:])


class StartFailed(RuntimeError):
    """A process stopped at start or did not come up in time."""


@contextlib.asynccontextmanager
async def gridbots(
    count: int,
    folder: Path,
    env: Mapping[str, str],
    *,
    webhook: bool,
    ready: Callable[[], bool] | None = None,
) -> AsyncIterator[list[Worker]]:
    """``count`` ``python -m bot run --no-scheduler`` processes run from ``folder`` with
    ``env`` (see :func:`gridbot_env`); with ``webhook``, each serves ``--webhook`` on a port of
    its own (``WEBHOOK__PORT``) and is ready when its ``/healthz`` answers; a polling process
    is ready when ``ready()`` says so (e.g. the sandbox saw it poll). Each one's output goes to
    ``folder/worker<n>.log``. Stopped with SIGTERM (SIGKILL after 20 s) at the end."""
    started: list[Worker] = []
    try:
        for number in range(count):
            port = free_port() if webhook else 0
            log = folder / f"worker{number}.log"
            more = {"WEBHOOK__HOST": "127.0.0.1", "WEBHOOK__PORT": str(port)} if webhook else {}
            with log.open("wb") as out:
                process = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "bot",
                    "run",
                    *(["--webhook"] if webhook else []),
                    "--no-scheduler",
                    cwd=folder,
                    env={**env, **more},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            started.append(Worker(number, port, process, log))
        await _all_ready(started, webhook, ready)
        yield started
    finally:
        for worker in started:
            if worker.process.returncode is None:
                worker.process.send_signal(signal.SIGTERM)
        for worker in started:
            try:
                await asyncio.wait_for(worker.process.wait(), 20)
            except TimeoutError:
                worker.process.kill()
                await worker.process.wait()


async def _all_ready(
    started: list[Worker], webhook: bool, ready: Callable[[], bool] | None
) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    async with aiohttp.ClientSession() as session:
        for worker in started:
            while True:
                if worker.process.returncode is not None:
                    raise StartFailed(f"a worker stopped at start:\n{worker.tail()}")
                if time.monotonic() > deadline:
                    raise StartFailed(f"a worker did not come up:\n{worker.tail()}")
                if webhook:
                    with contextlib.suppress(aiohttp.ClientError):
                        async with session.get(f"http://127.0.0.1:{worker.port}/healthz") as got:
                            if got.status == 200:
                                break
                elif ready is None or ready():
                    break
                await asyncio.sleep(0.2)
