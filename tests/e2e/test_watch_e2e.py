"""What an operator watches: /healthz, /metrics and /status, against the running bot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import select

from bot.watch import Watch, serving
from models import Person
from tests.e2e.harness import DEMO_PERSONAS, Harness, file_ticket_for

pytestmark = pytest.mark.e2e


@pytest.fixture
async def watched(h: Harness) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """An HTTP client of the running bot's /healthz and /metrics."""
    web_app = web.Application()
    web_app.add_routes(Watch(h.app).routes())
    async with TestClient(TestServer(web_app)) as client:
        yield client


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition text, by name and labels (parsed by prometheus-client)."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def test_a_running_bot_is_ready(
    h: Harness, watched: TestClient[web.Request, web.Application]
) -> None:
    answer = await watched.get("/healthz")
    assert answer.status == 200
    assert await answer.json() == {
        "status": "ok",
        "checks": {"database": "ok", "migrations": "ok", "sender": "ok"},
    }


async def test_health_names_what_is_wrong(
    h: Harness, watched: TestClient[web.Request, web.Application]
) -> None:
    assert h.app is not None
    h.app.settings = h.app.settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    for task in h.app.tasks:
        if task.get_name() == "outbox-sender":
            task.cancel()
    answer = await watched.get("/healthz")
    assert answer.status == 503
    body = await answer.json()
    assert body["status"] == "fail"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["sender"] == "not running"
    assert body["checks"]["redis"] not in ("ok", "")
    assert "127.0.0.1:1" not in body["checks"]["redis"]  # no address or secret in the answer


async def test_redis_is_checked_when_configured(
    h: Harness, watched: TestClient[web.Request, web.Application], redis_url: str
) -> None:
    assert h.app is not None
    h.app.settings = h.app.settings.model_copy(update={"redis_url": redis_url})
    body = await (await watched.get("/healthz")).json()
    assert body["checks"]["redis"] == "ok"


async def test_a_process_not_yet_started_is_not_ready() -> None:
    web_app = web.Application()
    web_app.add_routes(Watch().routes())
    async with TestClient(TestServer(web_app)) as client:
        assert (await client.get("/healthz")).status == 503
        assert (await client.get("/metrics")).status == 503


async def test_metrics_count_updates_and_read_the_shared_figures(
    h: Harness, watched: TestClient[web.Request, web.Application]
) -> None:
    resident = await h.persona("resident")
    await resident.send("/help")
    await resident.next_message()
    await file_ticket_for(h, "resident", "路灯不亮了")
    # past the worker's time to accept, before any sweep has escalated it
    h.clock.advance(timedelta(days=3))
    async with h.session() as session:
        worker = (
            await session.exec(select(Person).where(Person.telegram_id == DEMO_PERSONAS["worker"]))
        ).one()
        worker.reachable = False
        session.add(worker)
        await session.commit()

    answer = await watched.get("/metrics")
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    found = samples(await answer.text())
    assert found[("gridbot_updates_total", (("outcome", "ok"),))] >= 1
    assert found[("gridbot_update_seconds_count", ())] >= 1
    assert found[("gridbot_outbox_messages", (("status", "sent"),))] >= 1
    assert ("gridbot_outbox_oldest_due_seconds", ()) in found
    assert found[("gridbot_tickets_overdue", (("role", "worker"),))] == 1
    assert found[("gridbot_unreachable_people", ())] == 1


async def test_an_admin_reads_the_status_in_the_chat(h: Harness) -> None:
    await file_ticket_for(h, "resident", "路灯不亮了")
    h.clock.advance(timedelta(days=3))
    admin = await h.persona("admin")
    await admin.send("/status")
    status = (await admin.next_message()).text
    assert "系统运行状态" in status
    assert "待发消息" in status
    assert "没有进程在执行定时任务" in status  # the harness replays sweeps; nobody leads
    assert "超时未办工单：网格员 1 件" in status
    worker = await h.persona("worker")
    await worker.send("/status")
    assert "管理员" in (await worker.next_message()).text


async def test_a_webhook_process_serves_them_beside_the_webhook(h_webhook: Harness) -> None:
    assert h_webhook.webhook_url is not None and h_webhook.app is not None
    base = h_webhook.webhook_url.removesuffix(h_webhook.app.settings.webhook.path)
    async with ClientSession() as http:
        async with http.get(f"{base}/healthz") as answer:
            assert answer.status == 200
        async with http.get(f"{base}/metrics") as answer:
            assert "gridbot_updates_total" in await answer.text()


async def test_a_polling_process_serves_them_on_their_own_port(h: Harness) -> None:
    async with (
        serving(Watch(h.app), "127.0.0.1", 0) as base,
        ClientSession() as http,
        http.get(f"{base}/healthz") as answer,
    ):
        assert answer.status == 200


async def test_metrics_count_sends_and_429s(
    h: Harness, watched: TestClient[web.Request, web.Application]
) -> None:
    resident = await h.persona("resident")
    await h.client.storm(duration=1.5, retry_after=1)
    await resident.send("/help")
    await resident.next_message(timeout=20)
    found = samples(await (await watched.get("/metrics")).text())
    assert found[("gridbot_telegram_429_total", ())] >= 1
    assert found[("gridbot_telegram_retry_after_seconds_count", ())] >= 1
    assert found[("gridbot_outbox_sends_total", (("result", "sent"),))] >= 1
