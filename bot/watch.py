"""What an operator watches: ``/healthz`` and ``/metrics`` of one bot process, over HTTP.

- ``GET /healthz`` — ready or not, as JSON: the database answers, its migrations are current,
  Redis answers (when configured) and the outbox sender is running. 200 when all hold, 503
  otherwise, naming what failed — what a load balancer, systemd or Kubernetes probe reads.
- ``GET /metrics`` — Prometheus' text format (:mod:`bot.metrics`).

``gridbot run`` serves them on the webhook's own server in webhook mode and on
``WATCH__HOST``:``WATCH__PORT`` when polling; ``gridbot sandbox`` serves them beside its chat
page. The routes answer 503 until a bot is attached (the sandbox starts its server first).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import cache
from typing import TYPE_CHECKING

from aiohttp import web
from redis.asyncio import Redis

from bot import migrate
from bot.metrics import CONTENT_TYPE
from bot.services.status import system_status

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

CHECK_SECONDS = 3.0  # each health check's time limit: a probe must not hang
SENDER_TASK = "outbox-sender"


@cache
def _head_revision() -> str | None:
    return migrate.head_revision()


class Watch:
    """The routes of one bot process, bound to its :class:`~bot.app.App` once it exists."""

    def __init__(self, app: App | None = None) -> None:
        self.app = app

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/healthz", self.healthz), web.get("/metrics", self.metrics)]

    async def checks(self) -> dict[str, str]:
        """Each readiness check by name: ``ok``, or what is wrong."""
        app = self.app
        if app is None:
            return {"bot": "starting"}
        found: dict[str, str] = {}
        try:
            async with asyncio.timeout(CHECK_SECONDS):
                revision = await migrate.current_revision(app.engine)
        except Exception as exc:  # unreachable, timed out, refused: all say "not ready"
            found["database"] = _failure(exc)
        else:
            found["database"] = "ok"
            head = _head_revision()
            found["migrations"] = (
                "ok"
                if revision == head
                else f"at {revision}, code needs {head}: gridbot db upgrade"
            )
        if app.settings.redis_url:
            found["redis"] = await _redis_check(app.settings.redis_url)
        found["sender"] = "ok" if app.task_alive(SENDER_TASK) else "not running"
        return found

    async def healthz(self, request: web.Request) -> web.Response:
        checks = await self.checks()
        ready = all(value == "ok" for value in checks.values())
        return web.json_response(
            {"status": "ok" if ready else "fail", "checks": checks}, status=200 if ready else 503
        )

    async def metrics(self, request: web.Request) -> web.Response:
        app = self.app
        if app is None:
            return web.Response(status=503, text="starting\n")
        try:
            async with app.work.readers() as session:
                async with asyncio.timeout(CHECK_SECONDS * 3):
                    status = await system_status(session, app.clock.now())
        except Exception:
            log.warning("the shared figures could not be read for /metrics", exc_info=True)
            status = None  # this process's own figures are still worth a scrape
        leading = app.scheduler.leading if app.scheduler is not None else None
        body = app.metrics.render(status, leading=leading)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def _redis_check(url: str) -> str:
    client = Redis.from_url(
        url, socket_connect_timeout=CHECK_SECONDS, socket_timeout=CHECK_SECONDS
    )
    try:
        async with asyncio.timeout(CHECK_SECONDS):
            await client.ping()
    except Exception as exc:
        return _failure(exc)
    finally:
        await client.aclose()
    return "ok"


def _failure(exc: BaseException) -> str:
    """A check's failure in one line, without the URL or anything secret it might hold."""
    if isinstance(exc, TimeoutError):
        return f"no answer within {CHECK_SECONDS:g} s"
    return type(exc).__name__


@asynccontextmanager
async def serving(
    watch: Watch, host: str, port: int, *, more: Sequence[web.RouteDef] = ()
) -> AsyncIterator[str]:
    """Serve the routes (and ``more``: Open311's) on their own port (polling mode); yields
    the base URL."""
    web_app = web.Application()
    web_app.add_routes([*watch.routes(), *more])
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
        bound = runner.addresses[0][1]
        log.info("health and metrics at http://%s:%s/healthz and /metrics", host, bound)
        yield f"http://{host}:{bound}"
    finally:
        await runner.cleanup()
