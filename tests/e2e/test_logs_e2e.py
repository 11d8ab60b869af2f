"""Logs hold no token, no phone number and no ID number — even at DEBUG, even when things fail.

A day of the demo community runs with the bot's own logging configuration at DEBUG (aiogram,
aiohttp and APScheduler included): residents share their phone and report, workers get cards
that carry the reporter's phone, an admin exports the ledger, Telegram answers 5xx and drops
connections, someone blocks the bot. Then the log is searched for every phone the database
holds and for the bot token.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest
from sqlmodel import select

from bot.logs import configure_logging, redact
from models import Household, Person
from tests.e2e.harness import Harness, file_ticket_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def debug_log() -> Iterator[io.StringIO]:
    """Everything logged meanwhile, through GridBot's logging configuration, as JSON lines."""
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure_logging(level=logging.DEBUG, fmt="json", stream=stream)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def digits(text: str) -> str:
    return re.sub(r"[^0-9]", "", text)


async def test_nothing_personal_or_secret_reaches_the_log(
    h: Harness, debug_log: io.StringIO
) -> None:
    resident = await h.persona("resident")
    await resident.send("/start")
    await resident.share_contact()
    await file_ticket_for(h, "resident", "楼道灯坏了，电话 13912345678，身份证 110101199003071234")
    worker = await h.persona("worker")
    await worker.send("/tickets")
    admin = await h.persona("admin")
    await admin.send("/export households")
    await h.settle()
    await h.client.set_faults(error_rate=0.3, drop_rate=0.2)
    await worker.send("/tickets")
    await resident.send("/my")
    await h.client.clear_faults()
    head = await h.persona("head")
    await head.block()
    await file_ticket_for(h, "resident", "井盖松了")
    await h.settle()

    log = debug_log.getvalue()
    lines = [json.loads(line) for line in log.splitlines() if line.strip()]
    assert len(lines) > 50 and any(line["level"] == "debug" for line in lines)
    token = h.settings.bot_token
    assert token is not None
    assert token.get_secret_value() not in log
    assert token.get_secret_value().split(":")[1] not in log
    async with h.session() as session:
        phones = {p for p in (await session.exec(select(Person.phone))).all() if p}
        phones |= {p for p in (await session.exec(select(Household.phone))).all() if p}
    phones |= {"13912345678"}
    assert len(phones) > 100
    flat = digits(log)
    leaked = sorted(p for p in phones if digits(p)[-11:] in flat)
    assert leaked == []
    assert "110101199003071234" not in log


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("call +8613812345678 now", "call 138****5678 now"),
        ("call 86 138 1234 5678", "call 138****5678"),
        ("13812345678", "138****5678"),
        ("order 213812345678901", "order 213812345678901"),  # longer numbers are not phones
        ("id 11010119900307123X.", "id <id-number>."),
        ("GET /bot123456:AAbbccddeeffgghhiijjkkllmmnnooppqq/getMe", "GET /bot<token>/getMe"),
        ("chat 7000000001 update 123456789", "chat 7000000001 update 123456789"),
        ("", ""),
    ],
)
def test_redact(text: str, shown: str) -> None:
    assert redact(text) == shown
