"""/start, /help and /language end to end, in polling and webhook modes."""

from __future__ import annotations

import pytest

from tests.e2e.harness import Harness

pytestmark = pytest.mark.e2e


async def test_a_newcomer_is_told_how_to_join(h: Harness) -> None:
    visitor = await h.newcomer("小红")
    await visitor.start()
    reply = await visitor.next_message()
    assert "您还没有加入网格" in reply.text
    await h.settle()
    transcript = await visitor.transcript()
    assert [c["command"] for c in transcript.commands] == ["start", "help", "language"]


async def test_a_chinese_name_is_family_name_first(h: Harness) -> None:
    """Telegram's first name is the given name (名), its last name the family name (姓)."""
    li = await h.newcomer("四", last_name="李")
    await li.start()
    assert "李四，您好" in (await li.next_message()).text
    ada = await h.newcomer("Ada", last_name="Lovelace", language_code="en")
    await ada.start()
    assert "Hello, Ada Lovelace!" in (await ada.next_message()).text


async def test_a_worker_is_greeted_by_role_and_changes_language(h: Harness) -> None:
    worker = await h.persona("worker")
    await worker.start()
    greeting = await worker.next_message()
    assert "网格员" in greeting.text
    await worker.send("/language")
    menu = await worker.next_message()
    assert menu.buttons == ["简体中文", "繁體中文", "English"]
    await worker.press("English")
    await h.settle()
    transcript = await worker.transcript()
    assert transcript.toast is not None and "English" in transcript.toast["text"]
    assert transcript.messages[-1].text == "Language set to English."
    await worker.send("/help")
    help_text = await worker.next_message()
    assert help_text.text.startswith("Here is what I can do for you:")


async def test_restart_keeps_working(h: Harness) -> None:
    resident = await h.persona("resident")
    await h.restart_bot()
    await resident.send("/help")
    assert "/language" in (await resident.next_message()).text


async def test_webhook_mode_answers_too(h_webhook: Harness) -> None:
    resident = await h_webhook.persona("resident")
    await resident.start()
    reply = await resident.next_message()
    assert "您所在的网格" in reply.text
