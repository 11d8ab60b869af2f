"""/sla, /holidays and urgent tickets reaching the whole chain, end to end."""

from __future__ import annotations

import pytest

from bot.services.ticket_numbers import shown_number
from tests.e2e.harness import Harness, file_ticket_for

pytestmark = pytest.mark.e2e


async def test_everyone_reads_the_time_limits_and_an_admin_changes_them(h: Harness) -> None:
    worker = await h.persona("worker")
    await worker.send("/sla")
    sla = await worker.next_message()
    assert "一般事项" in sla.text and "个工作日" in sla.text and "紧急事项" in sla.text

    admin = await h.persona("admin")
    await admin.send("/sla file")
    policy = await admin.next_message()
    assert policy.document is not None
    body = await h.client.download(policy.document["file_id"])
    edited = body.replace(b'"warn_fraction": 0.8', b'"warn_fraction": 0.5')
    assert edited != body
    await admin.send_document(edited, filename="policy.json", caption="/sla")
    saved = await admin.next_message()
    assert "已保存" in saved.text and "50%" in saved.text

    await admin.send_document(b'{"format": 1, "chain": []}', filename="bad.json", caption="/sla")
    refused = await admin.next_message()
    assert "设置" in refused.text, refused.text  # it names the setting that is wrong
    await worker.send_document(edited, filename="policy.json", caption="/sla")
    assert "不在您负责的网格范围内" in (await worker.next_message()).text


async def test_admin_marks_a_day_off(h: Harness) -> None:
    admin = await h.persona("admin")
    await admin.send("/holidays off 2026-03-16 防汛停工")
    assert "2026-03-16" in (await admin.next_message()).text
    await admin.send("/holidays")
    listing = await admin.next_message()
    assert "2026-03-16" in listing.text and "防汛停工" in listing.text
    await admin.send("/holidays off 16th of March")
    assert "2027-02-10" in (await admin.next_message()).text  # the hint shows the format
    await admin.send("/holidays remove 2026-03-16")
    assert "官方日历" in (await admin.next_message()).text


async def test_an_urgent_ticket_reaches_the_whole_chain_at_once(h: Harness) -> None:
    worker, head = await h.persona("worker"), await h.persona("head")
    community_head, center = await h.persona("community_head"), await h.persona("center")
    ticket = await file_ticket_for(h, "resident", "楼下有人打架，有人受伤了", urgent=True)
    card = await worker.next_message()
    assert shown_number(ticket) in card.text and "🚨" in card.text and "✅ 签收" in card.buttons
    for informed in (head, community_head, center):
        copy = await informed.next_message()
        assert shown_number(ticket) in copy.text and copy.buttons == []


async def test_admin_sees_the_scheduled_jobs(h: Harness) -> None:
    admin = await h.persona("admin")
    await admin.send("/jobs")
    jobs = await admin.next_message()
    assert "定时任务" in jobs.text and "tickets.deadlines" in jobs.text
    worker = await h.persona("worker")
    await worker.send("/jobs")
    assert "管理员" in (await worker.next_message()).text


async def test_the_time_limits_read_as_words_in_every_language(h: Harness) -> None:
    """No tier numbers, no role twice, no "当个工作日内": each link in words, each limit a
    phrase of its own language."""
    worker = await h.persona("worker")
    await worker.send("/sla")
    zh = (await worker.next_message()).text
    assert "• 网格员：当天签收，3 个工作日内办结" in zh, zh
    assert "• 二级网格长：2 个工作小时内签收，3 个工作日内办结" in zh
    assert "• 一级网格长：2 个工作小时内签收，5 个工作日内办结" in zh
    assert "• 街道中心：2 个工作小时内签收，5 个工作日内办结" in zh
    assert "• 同时告知：网格员、二级网格长、一级网格长" in zh  # major problems
    assert "当个" not in zh and "级）" not in zh and "(3)" not in zh
    general = zh.split("\n\n")[1]
    assert general.count("• 网格长") == 0 and general.count("二级网格长") == 1

    await h.use_locale(worker, "zh_Hant")
    await worker.send("/sla")
    hant = (await worker.next_message()).text
    assert "• 網格員：當天簽收，3 個工作天內辦結" in hant, hant
    assert "• 二級網格長：2 個工作小時內簽收" in hant

    await h.use_locale(worker, "en")
    await worker.send("/sla")
    en = (await worker.next_message()).text
    assert "• grid worker: accept the same working day, resolve within 3 working days" in en, en
    assert "• second-level grid head: accept within 2 working hours" in en
    assert "• street centre: accept within 2 working hours" in en
    assert not set("，：（）、；。") & set(en)
    assert "tier" not in en, en
