"""Person tags and follow-ups (人员标签, 随访) end to end on the demo community: the admin makes
慢性病 monthly in the tags file and sends it back; the worker tags a person of one of her
households; the next morning's push lists the follow-up with a 📝 button; the short form is
answered in one message; the push strikes it through, and /quota counts it. Hostile input —
a broken tags file, odd /tag arguments, a person of another grid, forged buttons — gets clear
answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, select

from models import FollowUp, Household, HouseholdMember, Person, PersonTag, Visit
from tests.e2e.harness import Harness
from tests.e2e.test_visits_e2e import jump

pytestmark = pytest.mark.e2e

TZ = ZoneInfo("Asia/Shanghai")


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=TZ).astimezone(UTC)  # type: ignore[misc]


async def test_a_monthly_chronic_follow_up_is_pushed_recorded_and_counted(h: Harness) -> None:
    admin = await h.persona("admin")
    worker = await h.persona("worker")
    async with h.session() as session:
        me = (await session.exec(select(Person).where(Person.telegram_id == worker.id))).one()
        mine = (
            await session.exec(
                select(HouseholdMember)
                .join(Household, col(Household.id) == col(HouseholdMember.household_id))
                .where(Household.worker_id == me.id, col(HouseholdMember.moved_out).is_(None))
                .order_by(col(HouseholdMember.id))
            )
        ).first()
        elsewhere = (
            await session.exec(
                select(HouseholdMember)
                .join(Household, col(Household.id) == col(HouseholdMember.household_id))
                .where(Household.worker_id != me.id)
                .order_by(col(HouseholdMember.id).desc())
            )
        ).first()
        assert mine is not None and elsewhere is not None

    # the admin downloads the tags file, makes 慢性病 monthly and sends it back
    await admin.send("/tags 文件")
    document = await admin.next_message()
    assert document.document is not None and "/tags" in document.text
    body = json.loads(await h.client.download(document.document["file_id"]))
    chronic = next(tag for tag in body["tags"] if tag["name"] == "慢性病")
    assert chronic["follow_up"]["period"] == "quarter"
    await admin.send_document(b"{not json", filename="tags.json", caption="/tags")
    await h.settle()
    assert "不是有效的 JSON" in (await admin.transcript()).texts[-1]
    chronic["follow_up"]["period"] = "month"
    data = json.dumps(body, ensure_ascii=False).encode()
    await admin.send_document(data, filename="tags.json", caption="/tags")
    await h.settle()
    saved = "\n".join((await admin.transcript()).texts[-3:])
    assert "新的人员标签已保存" in saved and "每月 1 次" in saved

    # the worker tags a person of her household; odd arguments get clear answers
    await worker.send("/tag")
    assert "/tag 12 慢性病" in (await worker.next_message()).text
    await worker.send("/tag 十二 慢性病")
    assert "不是编号" in (await worker.next_message()).text
    await worker.send(f"/tag {mine.id} 感冒")
    assert "没有标签" in (await worker.next_message()).text
    await worker.send(f"/tag {elsewhere.id} 慢性病")  # another worker's grid
    await h.settle()
    assert "慢性病" not in (await worker.transcript()).texts[-1]
    await worker.send(f"/tag {mine.id} 慢性病")
    tagged = (await worker.next_message()).text
    assert "慢性病" in tagged and "每月 1 次" in tagged and "社区卫生服务站" in tagged
    async with h.session() as session:
        tag_row = (
            await session.exec(select(PersonTag).where(PersonTag.member_id == mine.id))
        ).one()

    # the next working morning: the push lists the follow-up with its button
    await jump(h, local(2026, 3, 16, 8, 30))
    pushed = [m for m in (await worker.transcript()).bot_messages if "本期待随访" in m.text]
    assert pushed, (await worker.transcript()).texts[-3:]
    push = pushed[-1]
    label = f"📝 {mine.name} · 慢性病"
    assert label in push.buttons and "0/1" in push.text

    # 📝: the short form; a wrong answer is refused with the form again; then recorded
    worker.cursor = max(worker.cursor, push.message_id)
    await worker.press(label, message_id=push.message_id)
    prompt = (await worker.next_message()).text
    assert "血压" in prompt and "1.规律服药" in prompt
    await worker.send("135/85")
    assert "请填写 3 项" in (await worker.next_message()).text
    await worker.send("135/85; 6.1; 1; 头晕减轻")
    done = (await worker.next_message()).text
    assert "随访已记录" in done and "规律服药" in done and "1/1" in done
    await h.settle()
    async with h.session() as session:
        follow_up = (await session.exec(select(FollowUp))).one()
        assert follow_up.person_tag_id == tag_row.id and follow_up.answers["bp"] == "135/85"
        visit = (
            await session.exec(select(Visit).where(Visit.household_id == mine.household_id))
        ).all()[-1]
        assert visit.kind == "in_person" and visit.worker_id == me.id
    push = [m for m in (await worker.transcript()).bot_messages if "本期待随访" in m.text][-1]
    assert push.edited and push.has_entity("strikethrough") and label not in push.buttons

    # /quota counts it
    await worker.send("/quota")
    quota = (await worker.next_message()).text
    assert "随访" in quota and "1/1 慢性病" in quota.replace("▓", "").replace("░", "").strip()

    # forged buttons and another grid's follow-up
    await h.forge_press(worker, "fu:999999")
    assert (await worker.transcript()).toast is not None
    await worker.send(f"/followup {tag_row.id} 1; 2; 9")
    assert "请回答以下之一" in (await worker.next_message()).text  # 9 is not a choice
    async with h.session() as session:
        assert len((await session.exec(select(FollowUp))).all()) == 1
    await h.check_language()
