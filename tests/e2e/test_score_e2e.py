"""/score end to end: a month of visits in the demo on the harness's clock; the worker's card
in the chat agrees with a count of the visit rows; the head gets a 红黑榜 PNG for a month, a
quarter and a year; the admin downloads the assessment file and sends it back changed."""

from __future__ import annotations

import io
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlalchemy import text
from sqlmodel import select

from bot.i18n import gettext_for
from bot.sandbox.client import ChatMessage, Persona
from bot.services import assessment_policy, visits
from bot.services.demo import DEMO_PERSONAS
from bot.services.people import roles_of
from models import Household, Person, VisitKind
from tests.e2e.harness import Harness

pytestmark = pytest.mark.e2e

SHANGHAI = ZoneInfo("Asia/Shanghai")
PNG = b"\x89PNG\r\n\x1a\n"
MARCH = (
    datetime(2026, 3, 1, tzinfo=SHANGHAI).astimezone(UTC),
    datetime(2026, 4, 1, tzinfo=SHANGHAI).astimezone(UTC),
)


async def log_visits(h: Harness, share: int, kind: VisitKind) -> None:
    """The demo worker visits one household in ``share`` of theirs, now."""
    async with h.session() as session:
        worker = (
            await session.exec(select(Person).where(Person.telegram_id == DEMO_PERSONAS["worker"]))
        ).one()
        roles = await roles_of(session, worker.id or 0)
        households = (
            await session.exec(
                select(Household).where(Household.worker_id == worker.id).order_by(Household.id)
            )
        ).all()
        for household in households[::share]:
            await visits.log_visit(
                session, worker, roles, household.id or 0, kind, "走访", h.clock.now()
            )
        await session.commit()


async def march_visits_of_the_worker(h: Harness) -> tuple[int, int]:
    """Households that met March's two monthly rules, counted from the visit rows."""
    async with h.session() as session:
        connection = await session.connection()
        worker = DEMO_PERSONAS["worker"]
        households = (
            await connection.execute(
                text(
                    "SELECT h.id, h.is_key FROM household h JOIN person p ON p.id = h.worker_id"
                    " WHERE p.telegram_id = :t"
                ),
                {"t": worker},
            )
        ).all()
        seen = (
            await connection.execute(
                text(
                    "SELECT v.household_id, v.kind FROM visit v JOIN person p ON p.id ="
                    " v.worker_id WHERE p.telegram_id = :t AND v.withdrawn_at IS NULL"
                    " AND v.visited_at >= :s AND v.visited_at < :e"
                ),
                {"t": worker, "s": MARCH[0], "e": MARCH[1]},
            )
        ).all()
    contacted = {h_id for h_id, _ in seen}
    at_home = {h_id for h_id, kind in seen if kind == "in_person"}
    keys = [h_id for h_id, is_key in households if is_key]
    part = sum(1 for h_id, _ in households if h_id in contacted)
    part += sum(1 for h_id in keys if h_id in at_home)
    return part, len(households) + len(keys)


async def photos_after(h: Harness, persona: Persona, command: str) -> list[ChatMessage]:
    """The bot's answers to ``command``: every photo sent after it."""
    sent = await persona.send(command)
    await h.settle()
    messages = (await persona.transcript()).bot_messages
    return [m for m in messages if m.message_id > sent.message_id and m.photo is not None]


async def png_of(h: Harness, message: ChatMessage) -> bytes:
    assert message.photo is not None
    largest = message.photo[-1] if isinstance(message.photo, list) else message.photo
    return await h.client.download(str(largest["file_id"]))


async def test_a_month_of_visits_scores_the_worker_and_ranks_the_grids(h: Harness) -> None:
    await log_visits(h, 2, VisitKind.PHONE)  # 12 March: every other household by phone
    await h.advance(timedelta(days=6), jump=True)
    await log_visits(h, 3, VisitKind.IN_PERSON)  # 18 March: every third at home
    await h.advance(timedelta(days=21), jump=True)  # 8 April
    await log_visits(h, 1, VisitKind.IN_PERSON)  # April: not March's

    worker = await h.persona("worker")
    await worker.send("/score 上月")
    card = await worker.next_message()
    part, whole = await march_visits_of_the_worker(h)
    assert 0 < part < whole
    visits_line = gettext_for(
        "zh_Hans",
        "{measure}: {value}",
        measure=gettext_for("zh_Hans", "Visits (走访)"),
        value=gettext_for(
            "zh_Hans",
            "{part}/{whole} ({percent}%)",
            part=part,
            whole=whole,
            percent=f"{100.0 * part / whole:.0f}",
        ),
    )
    assert visits_line in card.text
    assert "2026年3月得分" in card.text  # the month as its reader says it: March 2026 in English
    async with h.session() as session:
        card_name = (
            await session.exec(
                select(Person.name).where(Person.telegram_id == DEMO_PERSONAS["worker"])
            )
        ).one()
    chart = await worker.next_message()
    assert (await png_of(h, chart)).startswith(PNG)

    head = await h.persona("head")
    for command in ("/score", "/score 上月", "/score 2026Q1", "/score 2026"):
        answer = await photos_after(h, head, command)
        assert len(answer) == 2, command  # workers, and grids one tier below
        for index, message in enumerate(answer):
            png = await png_of(h, message)
            assert png.startswith(PNG) and len(png) > 10_000
            keep = os.environ.get("GRIDBOT_CHART_DIR")  # to look at them: set it to a folder
            if keep:
                (Path(keep) / f"e2e-{command.split()[-1].strip('/')}-{index}.png").write_bytes(png)

    # the workbook for the monthly meeting opens, and its totals are the sum of its rows
    await head.send("/score 导出 上月")
    ledger = await head.next_message()
    assert ledger.document is not None
    book = load_workbook(io.BytesIO(await h.client.download(str(ledger.document["file_id"]))))
    summary = [list(r) for r in book[book.sheetnames[0]].iter_rows(values_only=True)]
    done = summary[0].index("走访：完成")
    assert summary[-1][done] == sum(row[done] for row in summary[1:-1])
    worker_rows = [
        list(r)
        for name in book.sheetnames[1:-1]
        for r in book[name].iter_rows(min_row=2, values_only=True)
    ]
    mine = [r for r in worker_rows if r[1] == card_name]
    assert len(mine) == 1 and mine[0][5:7] == [part, whole]  # the visits, as in the chat
    await worker.send("/score export")
    assert (await worker.next_message()).text == gettext_for(
        "zh_Hans", "The assessment workbook is for grid heads, the centre and supervisors."
    )

    resident = await h.persona("resident")
    await resident.send("/score")
    refusal = await resident.next_message()
    assert refusal.text == gettext_for(
        "zh_Hans", "Scorecards are for grid workers, heads, the centre and supervisors."
    )
    await h.check_language()


async def test_the_admin_changes_the_weights_with_the_file(h: Harness) -> None:
    admin = await h.persona("admin")
    await admin.send("/score 文件")
    file = await admin.next_message()
    assert file.document is not None
    body = json.loads(await h.client.download(str(file.document["file_id"])))
    assert body["weights"]["visits"] == 40
    body["weights"]["meetings"] = 0
    await admin.send_document(
        json.dumps(body).encode(), filename="gridbot-assessment.json", caption="/score"
    )
    saved = await admin.next_message()
    assert saved.text == gettext_for(
        "zh_Hans",
        "New assessment weights saved. Every /score from now on uses them, past periods too.",
    )
    weights = await admin.next_message()  # the weights now in force, and what they mean
    assert gettext_for("zh_Hans", "{measure} (weight {weight})", measure="例会出勤", weight=0) in (
        weights.text
    )
    async with h.session() as session:
        assert (await assessment_policy.current_policy(session)).weight("meetings") == 0

    body["weights"]["visitz"] = 3
    await admin.send_document(
        json.dumps(body).encode(), filename="gridbot-assessment.json", caption="/score"
    )
    refused = await admin.next_message()
    assert "visitz" in refused.text
    async with h.session() as session:  # the bad file changed nothing
        assert (await assessment_policy.current_policy(session)).weight("meetings") == 0
