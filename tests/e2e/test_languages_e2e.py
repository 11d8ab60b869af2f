"""The main flows in each language: every text read in the reader's language.

Each demo person chooses the language, then the whole cast goes through a day: the resident
reports a fire hazard with someone in danger, the worker handles it, the resident is not
satisfied and reads the ticket's history; the worker logs a visit, withdraws it from the
diary and reads the quotas; the head, the centre operator and the administrator read what they
read. Nothing is asserted here about wording: the harness checks every text the bot showed
(``tests/e2e/language.py``) — no English sentence in Chinese, no Chinese punctuation in
English, no raw key anywhere.
"""

from __future__ import annotations

from typing import Any

import pytest

from bot import labels
from bot.i18n import gettext_for
from bot.sandbox.client import Persona
from bot.services.ticket_numbers import shown_number
from bot.settings import LOCALES
from bot.telegram import report_views
from models import TicketCategory, VisitKind
from tests.e2e.harness import Harness
from tests.e2e.test_report_e2e import newest_ticket

pytestmark = pytest.mark.e2e

CAST = ("resident", "worker", "head", "center", "admin")


class Tour:
    def __init__(self, h: Harness, locale: str) -> None:
        self.h = h
        self.locale = locale

    def t(self, msgid: str, **params: Any) -> str:
        return gettext_for(self.locale, msgid, **params)

    async def say(self, persona: Persona, text: str) -> None:
        await persona.send(text)
        await self.h.settle()

    async def tap(self, persona: Persona, label: str, **where: Any) -> None:
        await persona.press(label, **where)
        await self.h.settle()

    async def last(self, persona: Persona) -> list[str]:
        """The buttons of the newest message that has any."""
        for message in reversed((await persona.transcript()).bot_messages):
            if message.buttons:
                return message.buttons
        return []


@pytest.mark.parametrize("locale", LOCALES)
async def test_the_main_flows_speak_the_readers_language(h: Harness, locale: str) -> None:
    tour = Tour(h, locale)
    t = tour.t
    cast = {name: await h.persona(name) for name in CAST}
    for persona in cast.values():
        await h.use_locale(persona, locale)
        await tour.say(persona, "/start")
        await tour.say(persona, "/help")
    resident, worker, head = cast["resident"], cast["worker"], cast["head"]

    # a fire hazard, someone in danger: what to call, the summary, sent
    await tour.say(resident, "/report")
    await tour.tap(resident, t(labels.TICKET_CATEGORY[TicketCategory.FIRE]))
    await tour.say(resident, "楼道里电动车在充电，电线冒烟了")
    await tour.tap(resident, t(report_views.NO_PHOTOS))
    await tour.say(resident, "3号楼1单元楼道")
    await tour.tap(resident, t(report_views.DANGER_YES))
    await tour.tap(resident, t(report_views.SEND))
    await tour.say(resident, "/mygrid")

    # the worker takes it to the end; the resident is not satisfied
    await tour.tap(worker, t("✅ Accept"))
    await tour.tap(worker, t("📝 Progress"))
    await tour.say(worker, "已联系物业，正在处理")
    await tour.tap(worker, t("✔️ Resolved"))
    await tour.say(worker, "电线已更换")
    await tour.tap(resident, t("😞 Not satisfied"))
    await tour.say(resident, "楼道里还是有电动车在充电")
    await tour.say(resident, "/my")
    await tour.tap(resident, t("History of {number}", number=shown_number(await newest_ticket(h))))

    # a visit, logged and withdrawn; the quotas
    await tour.say(worker, "/visit")
    await tour.tap(worker, (await tour.last(worker))[0])
    await tour.tap(worker, f"🚪 {t(labels.VISIT_KIND[VisitKind.IN_PERSON])}")
    await tour.say(worker, "老人身体还好")
    if t("Skip") in await tour.last(worker):
        await tour.tap(worker, t("Skip"))
    await tour.tap(worker, t("No, all fine"))
    await tour.say(worker, "/diary")
    await tour.tap(worker, "↩️ 1")
    await tour.tap(worker, t("↩️ Yes, withdraw it"))
    for command in ("/quota", "/tickets", "/households", "/check", "/sla", "/meetings"):
        await tour.say(worker, command)

    for command in ("/quota", "/tickets", "/sla", "/indicators", "/check", "/meetings", "/qr"):
        await tour.say(head, command)
    for command in ("/quota", "/sla", "/indicators", "/households"):
        await tour.say(cast["center"], command)
    for command in (
        *("/sla", "/quota_rules", "/quota_rules set", "/grid", "/grid help", "/jobs", "/status"),
        "/apikey",
        *("/holidays", "/people", "/export", "/template", "/invite", "/check"),
    ):
        await tour.say(cast["admin"], command)
    await tour.say(head, "/meeting")
    await tour.tap(head, t("✏️ Another meeting"))
