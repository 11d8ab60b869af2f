"""/quota_rules add and retire from the chat: asked first, checked again on the press."""

from __future__ import annotations

import pytest
from sqlmodel import col, select

from bot.telegram.callbacks import QuotaRuleAction, QuotaRuleCb
from models import AuditLog, HouseholdCategory, QuotaRule
from tests.e2e.harness import Harness

pytestmark = pytest.mark.e2e

ADD = "/quota_rules 新增 空巢老人 入户 每月 2 空巢老人双月走访"


async def _last_text(h: Harness, persona_name: str) -> str:
    await h.settle()
    persona = await h.persona(persona_name)
    return (await persona.transcript()).bot_messages[-1].text


async def test_an_admin_adds_and_retires_a_rule_with_buttons(h: Harness) -> None:
    admin = await h.persona("admin")
    await admin.send("/quota_rules")
    listing = (await admin.next_message()).text
    assert "/quota_rules 新增" in listing and "/quota_rules 停用" in listing

    await admin.send(ADD)
    question = await admin.next_message()
    assert "新增这条走访任务" in question.text and "空巢老人双月走访" in question.text
    assert "每月至少2次入户走访" in question.text and question.buttons == ["确认新增", "取消"]
    async with h.session() as session:  # nothing is added before the yes
        assert (
            await session.exec(select(QuotaRule).where(QuotaRule.name == "空巢老人双月走访"))
        ).first() is None
    await admin.press("确认新增")
    assert "已新增" in await _last_text(h, "admin")
    async with h.session() as session:
        rule = (
            await session.exec(select(QuotaRule).where(QuotaRule.name == "空巢老人双月走访"))
        ).one()
        assert rule.households == "category" and rule.category == HouseholdCategory.EMPTY_NEST
        assert (rule.counts, rule.period, rule.required) == ("in_person", "month", 2)
        assert rule.valid_until is None
        actions = (
            await session.exec(select(AuditLog.action).where(AuditLog.object_id == rule.id))
        ).all()
        assert "quota_rule:add" in actions
    await admin.send("/quota_rules")
    assert "空巢老人双月走访" in (await admin.next_message()).text

    # the same yes pressed again adds nothing: the typed rule was used
    await h.forge_press(admin, QuotaRuleCb(action=QuotaRuleAction.ADD).pack())
    toast = (await admin.transcript()).toast
    assert toast is not None and "失效" in toast["text"]

    await admin.send(f"/quota_rules 停用 {rule.id}")
    asked = await admin.next_message()
    assert f"停用第 {rule.id} 条" in asked.text and "确认停用" in asked.buttons
    await admin.press("确认停用")
    assert "已停用" in await _last_text(h, "admin")
    async with h.session() as session:
        retired = await session.get(QuotaRule, rule.id)
        assert retired is not None and retired.valid_until is not None
        count = len(
            (
                await session.exec(select(QuotaRule).where(QuotaRule.name == "空巢老人双月走访"))
            ).all()
        )
        assert count == 1
    await admin.send("/quota_rules")
    assert "空巢老人双月走访" not in (await admin.next_message()).text
    await admin.send(f"/quota_rules 停用 {rule.id}")
    assert "已经停用" in (await admin.next_message()).text
    await h.check_language()


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("/quota_rules 新增 外星人 入户 每月 2 名字", "外星人"),
        ("/quota_rules 新增 空巢 入户 每月 999 名字", "999"),
        ("/quota_rules 新增 空巢 入户 每月 0 名字", "1"),
        ("/quota_rules 新增 空巢 跳舞 每月 2 名字", "跳舞"),
        ("/quota_rules 新增 空巢 入户 每世纪 2 名字", "每世纪"),
        ("/quota_rules 新增 空巢 入户 每月 2 " + "长" * 300, "300"),
        ("/quota_rules 新增 空巢 入户", "/quota_rules 新增 <户类>"),
        ("/quota_rules 新增 空巢 入户 每月 2 \u202e\u200b", "名称"),
        ("/quota_rules 停用 abc", "/quota_rules 停用 <编号>"),
        ("/quota_rules 停用 99999999999999999999", "99999999"),
        ("/quota_rules 停用 4242", "4242"),
        ("/quota_rules 删掉 1", "/quota_rules 新增 <户类>"),
    ],
)
async def test_hostile_rule_words_get_a_clear_answer(
    h: Harness, command: str, expected: str
) -> None:
    admin = await h.persona("admin")
    async with h.session() as session:
        before = len((await session.exec(select(QuotaRule))).all())
    await admin.send(command)
    answer = await admin.next_message()
    assert expected in answer.text, answer.text
    assert not answer.buttons
    async with h.session() as session:
        assert len((await session.exec(select(QuotaRule))).all()) == before
    await h.check_language()


async def test_only_an_area_admin_may_and_forged_presses_are_refused(h: Harness) -> None:
    worker, admin = await h.persona("worker"), await h.persona("admin")
    await worker.send(ADD)
    assert "管理员" in (await worker.next_message()).text
    await admin.send("/quota_rules")
    await admin.next_message()
    async with h.session() as session:
        rule = (await session.exec(select(QuotaRule).order_by(col(QuotaRule.id)))).first()
    assert rule is not None and rule.id is not None

    await h.forge_press(worker, QuotaRuleCb(action=QuotaRuleAction.RETIRE, rule=rule.id).pack())
    toast = (await worker.transcript()).toast
    assert toast is not None and "管理员" in toast["text"]
    await h.forge_press(worker, QuotaRuleCb(action=QuotaRuleAction.ADD).pack())
    async with h.session() as session:
        kept = await session.get(QuotaRule, rule.id)
        assert kept is not None and kept.valid_until is None
        refusals = (
            await session.exec(
                select(AuditLog).where(
                    AuditLog.object_type == "quota_rule", AuditLog.action == "refused:manage"
                )
            )
        ).all()
    assert len(refusals) >= 2  # the typed command and the forged press

    for forged in (f"qr:r:+{rule.id}", f"qr:r:{rule.id}.0", "qr:z:1", "qr:r:-1"):
        await h.forge_press(admin, forged)
        toast = (await admin.transcript()).toast
        assert toast is not None and "失效" in toast["text"], forged
    # an admin's "yes, add" with nothing typed before adds nothing
    await h.forge_press(admin, QuotaRuleCb(action=QuotaRuleAction.ADD).pack())
    toast = (await admin.transcript()).toast
    assert toast is not None and "失效" in toast["text"]
    async with h.session() as session:
        kept = await session.get(QuotaRule, rule.id)
        assert kept is not None and kept.valid_until is None
    await h.check_language()
