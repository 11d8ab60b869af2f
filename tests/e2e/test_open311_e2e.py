"""Open311 GeoReport v2 against the running bot: read with ``georeport`` (a client from PyPI
that no one here wrote, synchronous, so it runs in a thread), filed with ``requests``, in
JSON and XML; bad keys and bad parameters answered in the spec's error format; and nothing
personal in any answer."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import requests
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from georeport import GeoReport
from sqlmodel import select

from bot.clock import FrozenClock
from bot.open311 import Open311
from bot.services.ticket_numbers import shown_number
from bot.settings import Open311Settings, Settings
from bot.trial import run_trial
from models import Open311Request, Person, Ticket, TicketSource
from tests.e2e.harness import DEMO_PERSONAS, Harness, file_ticket_for

pytestmark = pytest.mark.e2e

PHONE = "13812345678"
ID_NUMBER = "110101199003071234"


@pytest.fixture
async def base(h: Harness) -> AsyncIterator[str]:
    """The running bot's Open311 root, on a free port."""
    web_app = web.Application()
    web_app.add_routes(Open311(h.app).routes())
    server = TestServer(web_app, host="127.0.0.1")
    await server.start_server()
    try:
        yield f"http://127.0.0.1:{server.port}/open311/v2"
    finally:
        await server.close()


async def issue_key(h: Harness, partner: str = "FixMyStreet") -> tuple[int, str]:
    """An admin issues a key in the chat; returns its number and the key shown once."""
    admin = await h.persona("admin")
    await admin.send(f"/apikey new {partner}")
    text = (await admin.next_message()).text
    found = re.search(r"第 (\d+) 号密钥.*\n\n(\S+)$", text, re.S)
    assert found is not None, text
    return int(found.group(1)), found.group(2)


def post(base: str, fmt: str = "json", **form: Any) -> requests.Response:
    return requests.post(f"{base}/requests.{fmt}", data=form, timeout=30)


def report_form(key: str, **extra: Any) -> dict[str, Any]:
    return {
        "api_key": key,
        "service_code": "facility",
        "lat": "30.274084",
        "long": "120.155070",
        "description": f"路灯坏了，请联系我 {PHONE}，身份证 {ID_NUMBER}",
        "email": "li.lei@example.org",
        "first_name": "Lei",
        "last_name": "Li",
        "phone": PHONE,
        **extra,
    }


def assert_spec_error(answer: requests.Response, code: int, fmt: str = "json") -> str:
    """The spec's error format, with ``code`` also the HTTP status; returns the description."""
    assert answer.status_code == code, answer.text
    if fmt == "xml":
        assert answer.headers["Content-Type"] == "text/xml; charset=utf-8"
        assert answer.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
        root = ElementTree.fromstring(answer.content)
        assert root.tag == "errors"
        (error,) = list(root)
        assert error.tag == "error" and error.findtext("code") == str(code)
        description = error.findtext("description")
    else:
        assert answer.headers["Content-Type"].startswith("application/json")
        ((error),) = answer.json()
        assert set(error) == {"code", "description"} and error["code"] == code
        description = error["description"]
    assert description
    return str(description)


async def test_the_client_reads_every_endpoint_in_json_and_xml(h: Harness, base: str) -> None:
    ticket = await file_ticket_for(
        h, "resident", f"3号楼路灯不亮，电话 {PHONE}", latitude=30.2741234, longitude=120.1551234
    )
    for fmt in ("json", "xml"):
        client = GeoReport(base, output_format=fmt)
        services = await asyncio.to_thread(client.get_service_list)
        codes = {s["service_code"]: s for s in services}
        assert codes["facility"]["service_name"] == "公共设施损坏"
        assert str(codes["facility"]["metadata"]).lower() == "false"
        definition = await asyncio.to_thread(client.get_service_definition, "facility")
        assert definition["service_code"] == "facility"

        listed = await asyncio.to_thread(client.get_service_requests)
        listed = listed if isinstance(listed, list) else [listed]
        assert [r["service_request_id"] for r in listed] == [ticket.number]
        one = await asyncio.to_thread(client.get_service_request, ticket.number)
        assert one["service_request_id"] == ticket.number
        assert one["status"] == "open"
        assert one["service_code"] == "facility"
        assert one["service_name"] == "公共设施损坏"
        assert one["requested_datetime"].endswith("+08:00")
        assert float(one["lat"]) == 30.274 and float(one["long"]) == 120.155
        assert PHONE not in one["description"] and "3号楼路灯不亮" in one["description"]
        assert one["agency_responsible"] and one["address"]
        # none closed: JSON [], XML an empty <service_requests/> (which georeport 0.3.1
        # cannot read: it indexes into it, so the raw answer is read here)
        query = f"{base}/requests.{fmt}?status=closed&service_code=facility,fire"
        filtered = await asyncio.to_thread(requests.get, query, timeout=30)
        assert filtered.status_code == 200
        if fmt == "json":
            assert filtered.json() == []
        else:
            assert list(ElementTree.fromstring(filtered.content)) == []

    async with ClientSession() as http:
        async with http.get(f"{base}/discovery.json") as answer:
            discovery = await answer.json()
        assert discovery["endpoints"][0]["specification"] == "http://wiki.open311.org/GeoReport_v2"
        assert discovery["endpoints"][0]["url"] == base
        assert "text/xml" in discovery["endpoints"][0]["formats"]
        async with http.get(f"{base}/discovery.xml") as answer:
            root = ElementTree.fromstring(await answer.read())
        assert root.tag == "discovery"
        formats = [f.text for f in root.iterfind("endpoints/endpoint/formats/format")]
        assert formats == ["application/json", "text/xml"]


async def test_a_partner_files_a_report_that_enters_the_normal_flow(h: Harness, base: str) -> None:
    _, key = await issue_key(h)
    center = await h.persona("center")  # the street centre's operator: where it lands
    answer = await asyncio.to_thread(post, base, **report_form(key))
    assert answer.status_code == 200, answer.text
    ((created),) = answer.json()
    number = created["service_request_id"]
    assert "受理" in created["service_notice"]
    # a point off the demo's map and no household there: it lands in the key's grid, the
    # street's, and the centre is told at once (as for a chat report off the map); the shipped
    # policy's owner there (a worker of that grid) is nobody, so the centre has the card when
    # the first deadline passes (2 working hours), as any ticket of that grid would
    told = (await center.next_message()).text
    assert "不在任何网格边界内" in told
    await h.advance(timedelta(hours=3), jump=True)
    card = (await center.next_message()).text
    async with h.session() as session:
        ticket = (await session.exec(select(Ticket).where(Ticket.number == number))).one()
    assert shown_number(ticket) in card and "路灯坏了" in card  # the card, as for any report
    assert f"工单 {shown_number(ticket)}，" in created["service_notice"]  # the number people say
    async with h.session() as session:
        ticket = (await session.exec(select(Ticket).where(Ticket.number == number))).one()
        caller = (
            await session.exec(select(Open311Request).where(Open311Request.ticket_id == ticket.id))
        ).one()
        reporter = await session.get(Person, ticket.reporter_id)
    assert ticket.source == TicketSource.OPEN311
    assert ticket.state == "dispatched" and ticket.next_deadline_at is not None
    assert (ticket.latitude, ticket.longitude) == (30.274084, 120.15507)
    assert (caller.phone, caller.email, caller.last_name) == (PHONE, "li.lei@example.org", "Li")
    assert reporter is not None and reporter.telegram_id is None
    await h.settle()

    # the same report in XML, by address: a registered household's address puts it in its grid
    async with h.session() as session:
        resident = (
            await session.exec(
                select(Person).where(Person.telegram_id == DEMO_PERSONAS["resident"])
            )
        ).one()
        from models import Household

        home = await session.get(Household, resident.household_id)
        assert home is not None
    form = report_form(key, address_string=f" {home.address} ")
    del form["lat"], form["long"]
    answer = await asyncio.to_thread(post, base, "xml", **form)
    assert answer.status_code == 200, answer.text
    root = ElementTree.fromstring(answer.content)
    assert root.tag == "service_requests"
    second = root.findtext("request/service_request_id")
    async with h.session() as session:
        placed = (await session.exec(select(Ticket).where(Ticket.number == second))).one()
    assert placed.grid_id == home.grid_id

    # what anyone reads back holds no phone, ID number, name or e-mail, in either format
    for fmt in ("json", "xml"):
        for url in (f"{base}/requests.{fmt}", f"{base}/requests/{number}.{fmt}"):
            text = (await asyncio.to_thread(requests.get, url, timeout=30)).text
            for secret in (PHONE, "1381234", ID_NUMBER, "li.lei", "Lei", resident.name):
                assert secret not in text, (url, secret)
            assert number in text


async def test_bad_keys_are_refused_in_the_spec_error_format(h: Harness, base: str) -> None:
    key_id, key = await issue_key(h)
    for fmt in ("json", "xml"):
        no_key = {k: v for k, v in report_form(key).items() if k != "api_key"}
        assert_spec_error(await asyncio.to_thread(post, base, fmt, **no_key), 403, fmt)
        wrong = report_form(key + "x")
        assert_spec_error(await asyncio.to_thread(post, base, fmt, **wrong), 403, fmt)
    admin = await h.persona("admin")
    await admin.send(f"/apikey off {key_id}")
    assert "已停用" in (await admin.next_message()).text
    await admin.send("/apikey")
    listing = (await admin.next_message()).text
    assert "FixMyStreet" in listing and "已停用" in listing and key not in listing
    assert_spec_error(await asyncio.to_thread(post, base, **report_form(key)), 403)
    async with h.session() as session:
        assert (await session.exec(select(Ticket))).first() is None

    worker = await h.persona("worker")
    await worker.send("/apikey new Someone")
    assert "管理员" in (await worker.next_message()).text


@pytest.mark.parametrize(
    "query",
    [
        "status=pending",
        "status=open,,closed",
        "service_code=no_such_thing",
        "start_date=yesterday",
        "start_date=2026-01-01T00:00:00Z&end_date=2026-06-01T00:00:00Z",  # over 90 days
        "start_date=2026-12-01T00:00:00Z&end_date=2026-11-01T00:00:00Z",
        "status=open&status=closed",
        "service_request_id=" + ",".join(["x"] * 101),
        "start_date=" + "9" * 500,
        "start_date=2026-12-01%00",
    ],
)
async def test_bad_parameters_are_answered_400(h: Harness, base: str, query: str) -> None:
    for fmt in ("json", "xml"):
        answer = await asyncio.to_thread(
            requests.get, f"{base}/requests.{fmt}?{query}", timeout=30
        )
        assert_spec_error(answer, 400, fmt)


async def test_bad_reports_and_unknown_things_are_refused(h: Harness, base: str) -> None:
    _, key = await issue_key(h)
    bad_forms = [
        report_form(key, service_code=""),
        report_form(key, lat="nan"),
        report_form(key, lat="91"),
        report_form(key, long="east"),
        {k: v for k, v in report_form(key).items() if k != "long"},
        {k: v for k, v in report_form(key).items() if k not in ("lat", "long")},
        report_form(key, description=""),
        report_form(key, description="！！！"),
        report_form(key, description="x" * 5000),
        report_form(key, email="not an address"),
        report_form(key, phone="call me"),
    ]
    for form in bad_forms:
        for fmt in ("json", "xml"):
            assert_spec_error(await asyncio.to_thread(post, base, fmt, **form), 400, fmt)
    huge = report_form(key, description="灯" * 1_000_000)  # over aiohttp's 1 MiB body
    assert_spec_error(await asyncio.to_thread(post, base, "xml", **huge), 413, "xml")
    unknown = report_form(key, service_code="dragons")
    assert_spec_error(await asyncio.to_thread(post, base, **unknown), 404)
    for path in (
        *("requests/NOPE-1.json", "requests/NOPE-1.xml", "services/dragons.xml"),
        *("requests/%00.json", "requests/" + "9" * 41 + ".xml", "requests/%E2%80%AE.json"),
    ):
        answer = await asyncio.to_thread(requests.get, f"{base}/{path}", timeout=30)
        assert_spec_error(answer, 404, path.rsplit(".", 1)[1])
    answer = await asyncio.to_thread(requests.get, f"{base}/services.csv", timeout=30)
    assert_spec_error(answer, 404)
    async with h.session() as session:
        assert (await session.exec(select(Ticket))).first() is None


async def test_a_key_over_its_limit_gets_429(h: Harness, base: str) -> None:
    assert h.app is not None
    h.app.settings = h.app.settings.model_copy(
        update={"open311": Open311Settings(per_hour=2, per_day=10)}
    )
    _, key = await issue_key(h)
    for _ in range(2):
        assert (await asyncio.to_thread(post, base, **report_form(key))).status_code == 200
    for fmt in ("json", "xml"):
        described = assert_spec_error(
            await asyncio.to_thread(post, base, fmt, **report_form(key)), 429, fmt
        )
        assert "2 problems in the last hour" in described
    _, other = await issue_key(h, "SeeClickFix")  # each key has its own limit
    assert (await asyncio.to_thread(post, base, **report_form(other))).status_code == 200


async def test_a_webhook_process_serves_open311_beside_health(h_webhook: Harness) -> None:
    assert h_webhook.webhook_url is not None and h_webhook.app is not None
    root = h_webhook.webhook_url.removesuffix(h_webhook.app.settings.webhook.path)
    async with ClientSession() as http:
        async with http.get(f"{root}/open311/v2/services.xml") as answer:
            assert answer.status == 200
            assert ElementTree.fromstring(await answer.read()).tag == "services"
        async with http.get(f"{root}/healthz") as answer:
            assert answer.status == 200


async def test_a_process_not_yet_started_answers_503_in_the_error_format() -> None:
    web_app = web.Application()
    web_app.add_routes(Open311().routes())
    server = TestServer(web_app, host="127.0.0.1")
    await server.start_server()
    try:
        url = f"http://127.0.0.1:{server.port}/open311/v2/services.json"
        answer = await asyncio.to_thread(requests.get, url, timeout=30)
        assert_spec_error(answer, 503)
    finally:
        await server.close()


async def test_the_sandbox_serves_open311_beside_its_chat_page(
    tmp_path: Path, clock: FrozenClock
) -> None:
    """``gridbot sandbox``: the chat page, /healthz and Open311 at one address."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'sandbox.db'}",
        data_dir=tmp_path,
    )
    trial = asyncio.create_task(run_trial(settings, clock, host="127.0.0.1", port=port))
    root = f"http://127.0.0.1:{port}"
    try:
        async with ClientSession() as http:
            status = 0
            for _ in range(600):  # until the sandbox is up and the bot attached to it
                with contextlib.suppress(OSError):
                    async with http.get(f"{root}/open311/v2/services.json") as answer:
                        status = answer.status
                if status == 200 or trial.done():
                    break
                await asyncio.sleep(0.1)
            assert status == 200
            async with http.get(f"{root}/open311/v2/requests.xml?status=nope") as answer:
                assert answer.status == 400
                assert ElementTree.fromstring(await answer.read()).tag == "errors"
            async with http.get(f"{root}/healthz") as answer:
                assert answer.status in (200, 503)  # served; the sender may still be starting
            async with http.get(f"{root}/") as answer:
                assert answer.status == 200  # the chat page
    finally:
        trial.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await trial
