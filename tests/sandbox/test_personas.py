"""The user side: personas acting through the control API, and what they see."""

from __future__ import annotations

import aiohttp
import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramForbiddenError
from aiogram.types import (
    BufferedInputFile,
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

from bot.sandbox.app import RunningSandbox
from bot.sandbox.client import Persona, SandboxClient, SandboxClientError
from bot.sandbox.server import SandboxServer
from tests.sandbox.conftest import BOT_ID, png


@pytest.fixture
async def alice(client: SandboxClient, bot: Bot) -> Persona:
    persona = await client.persona("Alice", bot=BOT_ID, last_name="王", phone_number="13800000000")
    await persona.start()
    return persona


async def updates(bot: Bot) -> list[str]:
    """Drain the bot's queue; return the update types."""
    received = await bot.get_updates()
    if received:
        await bot.get_updates(offset=received[-1].update_id + 1)
    return [str(u.event_type) for u in received]


async def test_start_with_deep_link_payload(client: SandboxClient, bot: Bot) -> None:
    carol = await client.persona("Carol", bot=BOT_ID)
    sent = await carol.start("grid-3_17")
    assert sent.text == "/start grid-3_17"
    assert sent.entities == [{"type": "bot_command", "offset": 0, "length": 6}]
    (update,) = await bot.get_updates()
    assert update.message is not None and update.message.text == "/start grid-3_17"
    for bad in ("x" * 65, "空格 不行", "a+b"):
        with pytest.raises(SandboxClientError) as error:
            await carol.start(bad)
        assert error.value.status == 400


async def test_conversation_with_inline_and_reply_keyboards(
    alice: Persona, bot: Bot, server: SandboxServer
) -> None:
    await updates(bot)
    menu = await bot.send_message(
        alice.id,
        "请选择：",
        reply_markup=InlineKeyboardMarkup(
            inline_keyboard=[
                [InlineKeyboardButton(text="报告问题", callback_data="report")],
                [InlineKeyboardButton(text="帮助", url="https://example.com/help")],
            ]
        ),
    )
    message = await alice.next_message()
    assert message.buttons == ["报告问题", "帮助"]

    pressed = await alice.press("报告问题")
    assert pressed["data"] == "report"
    (update,) = await bot.get_updates(offset=-1)
    query = update.callback_query
    assert query is not None and query.data == "report" and query.chat_instance
    assert query.message is not None and query.message.message_id == menu.message_id
    await bot.answer_callback_query(query.id, text="请描述问题", show_alert=True)
    assert await alice.toast() == {
        "callback_query_id": query.id,
        "message_id": menu.message_id,
        "user_id": alice.id,
        "date": server.unix_now(),
        "text": "请描述问题",
        "show_alert": True,
    }
    assert (await alice.press("帮助"))["url"] == "https://example.com/help"

    with pytest.raises(SandboxClientError) as missing:
        await alice.press("不存在的按钮")
    assert missing.value.status == 409
    forged = await alice.forge_press("admin:delete_all")
    (forged_update,) = await bot.get_updates(offset=-1)
    assert forged_update.callback_query is not None
    assert forged_update.callback_query.data == "admin:delete_all"
    assert forged["message_id"] == menu.message_id

    await bot.send_message(
        alice.id,
        "请分享位置或手机号",
        reply_markup=ReplyKeyboardMarkup(
            keyboard=[
                [KeyboardButton(text="分享手机号", request_contact=True)],
                [KeyboardButton(text="发送位置", request_location=True)],
                [KeyboardButton(text="取消")],
            ],
            resize_keyboard=True,
        ),
    )
    await alice.next_message()
    assert (await alice.transcript()).reply_keyboard == [["分享手机号"], ["发送位置"], ["取消"]]
    here = await alice.press_reply("发送位置", location=(30.5, 114.3))
    assert here.location == {"latitude": 30.5, "longitude": 114.3}
    shared = await alice.press("分享手机号")
    assert shared["contact"] == {
        "phone_number": "13800000000",
        "first_name": "Alice",
        "last_name": "王",
        "user_id": alice.id,
    }
    cancelled = await alice.press("取消")
    assert cancelled["text"] == "取消"

    await bot.send_message(alice.id, "好的", reply_markup=ReplyKeyboardRemove())
    assert (await alice.transcript()).reply_keyboard == []
    with pytest.raises(SandboxClientError):
        await alice.press_reply("取消")


async def test_contact_location_photos_documents(
    alice: Persona, bot: Bot, client: SandboxClient
) -> None:
    await updates(bot)
    contact = await alice.share_contact()
    assert contact.contact is not None and contact.contact["user_id"] == alice.id
    location = await alice.send_location(31.2304, 121.4737)
    assert location.location == {"latitude": 31.2304, "longitude": 121.4737}
    image = png(8, 6)
    album = await alice.send_photos([image, png(2, 2)], caption="楼道堆物")
    assert len({m.raw["media_group_id"] for m in album}) == 1
    assert album[0].photo is not None and album[0].text == "楼道堆物"
    assert await client.download(album[0].photo["url"]) == image
    document = await alice.send_document(b"%PDF-1.4", "照片说明.pdf", mime_type="application/pdf")
    assert document.document is not None and document.document["file_name"] == "照片说明.pdf"

    received = await bot.get_updates()
    kinds = [u.message.content_type for u in received if u.message]
    assert kinds == ["contact", "location", "photo", "photo", "document"]
    first_photo = received[2].message
    assert first_photo is not None and first_photo.caption == "楼道堆物"
    assert first_photo.photo is not None and first_photo.photo[-1].width == 8
    file = await bot.get_file(first_photo.photo[-1].file_id)
    assert file.file_path is not None
    downloaded = await bot.download_file(file.file_path)
    assert downloaded is not None and downloaded.read() == image

    transcript = await alice.transcript()
    photo = transcript.messages[-3].photo
    assert photo is not None
    assert await client.download(photo["url"]) == image

    with pytest.raises(SandboxClientError) as not_image:
        await alice.send_photo(b"plain text")
    assert not_image.value.status == 400


async def test_transcript_after_edits_and_deletions(
    alice: Persona, bot: Bot, client: SandboxClient
) -> None:
    keep = await bot.send_message(alice.id, "<b>保留</b>", parse_mode="HTML")
    gone = await bot.send_message(alice.id, "删除")
    photo = await bot.send_photo(alice.id, BufferedInputFile(png(), "p.png"), caption="图")
    await bot.edit_message_text(text="已修改", chat_id=alice.id, message_id=keep.message_id)
    await bot.delete_message(alice.id, gone.message_id)
    transcript = await alice.transcript()
    assert transcript.texts == ["/start", "已修改", "图"]
    assert transcript.messages[1].edited and transcript.messages[1].entities == []
    image = transcript.messages[2].photo
    assert image is not None and image["file_id"] == photo.photo[-1].file_id  # type: ignore[index]
    assert await client.download(image["url"]) == png()


async def test_next_message_walks_through_bot_messages(alice: Persona, bot: Bot) -> None:
    for text in ("一", "二", "三"):
        await bot.send_message(alice.id, text)
    assert [(await alice.next_message()).text for _ in range(3)] == ["一", "二", "三"]
    with pytest.raises(TimeoutError):
        await alice.next_message(timeout=0.1)
    await alice.no_message(wait=0.05)


async def test_force_reply_makes_the_next_message_a_reply(alice: Persona, bot: Bot) -> None:
    question = await bot.send_message(alice.id, "请输入门牌号", reply_markup=ForceReply())
    await updates(bot)
    await alice.send("3栋2单元")
    (update,) = await bot.get_updates()
    assert update.message is not None and update.message.reply_to_message is not None
    assert update.message.reply_to_message.message_id == question.message_id


async def test_block_and_unblock(alice: Persona, bot: Bot) -> None:
    await updates(bot)
    await alice.block()
    with pytest.raises(TelegramForbiddenError):
        await bot.send_message(alice.id, "还在吗？")
    with pytest.raises(SandboxClientError) as blocked:
        await alice.send("我屏蔽了你")
    assert blocked.value.status == 409
    await alice.unblock()
    await bot.send_message(alice.id, "欢迎回来")
    member_updates = await bot.get_updates()
    changes = [
        (u.my_chat_member.old_chat_member.status, u.my_chat_member.new_chat_member.status)
        for u in member_updates
        if u.my_chat_member
    ]
    assert changes == [("member", "kicked"), ("kicked", "member")]
    assert not (await alice.transcript()).blocked


async def test_user_edits_reach_the_bot(alice: Persona, bot: Bot) -> None:
    sent = await alice.send("路灯坏了")
    await updates(bot)
    await alice.edit(sent.message_id, "路灯坏了，在3栋门口")
    (update,) = await bot.get_updates()
    assert update.edited_message is not None
    assert update.edited_message.text == "路灯坏了，在3栋门口"


async def test_group_chat_with_privacy_mode(
    alice: Persona, bot: Bot, client: SandboxClient, server: SandboxServer
) -> None:
    bob = await client.persona("Bob", bot=BOT_ID)
    group = await client.create_group(BOT_ID, "三号网格", [alice.id, bob.id])
    await updates(bot)
    in_group = bob.in_chat(group["id"])
    await in_group.send("大家好")  # the bot does not see plain talk in groups
    await in_group.send("/report@gridbot_test_bot 楼道堵了")
    await in_group.send("@gridbot_test_bot 你在吗")
    received = await bot.get_updates()
    texts = [u.message.text for u in received if u.message]
    assert texts == ["/report@gridbot_test_bot 楼道堵了", "@gridbot_test_bot 你在吗"]
    assert received[0].message is not None and received[0].message.chat.type == "supergroup"
    await bot.send_message(group["id"], "收到")
    assert (await in_group.next_message()).text == "收到"
    assert [m.text for m in (await in_group.transcript()).messages][0] == "大家好"


async def test_events_long_poll(alice: Persona, bot: Bot, client: SandboxClient) -> None:
    seq = int((await alice.transcript()).raw["seq"])
    await bot.send_message(alice.id, "新消息")
    events = await client.events(BOT_ID, alice.id, after=seq, wait=2)
    assert [e["type"] for e in events] == ["message"]
    assert await client.events(BOT_ID, alice.id, after=events[-1]["seq"], wait=0.05) == []


async def test_server_controls_over_http(
    alice: Persona, bot: Bot, client: SandboxClient, server: SandboxServer
) -> None:
    await client.set_faults(error_rate=1.0, error_codes=[500], methods=["sendMessage"], seed=3)
    assert server.faults.faults.methods == frozenset({"sendmessage"})
    await client.clear_faults()
    await client.storm(duration=5, retry_after=2)
    assert server.faults.storm_retry_after() == 2
    await client.set_rate_limits(enabled=True, scale=2)
    assert server.rate_limiter.limits.chat_per_second == 2
    await client.advance_clock(16)
    stats = await client.stats()
    assert stats["requests"] == dict(server.stats.requests)
    info = await client.info()
    assert "sendMessage" in info["methods"] and info["bot_api_version"].startswith("Bot API")
    assert [u["first_name"] for u in await client.users()] == ["Alice"]
    await client.reset()
    assert await client.users() == []


async def test_web_page_is_served(sandbox: RunningSandbox) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{sandbox.url}/") as response:
            assert response.status == 200
            page = await response.text()
        assert "Noto Sans CJK SC" in page or "app.js" in page
        for asset in ("app.js", "style.css"):
            async with session.get(f"{sandbox.url}/static/{asset}") as response:
                assert response.status == 200


async def test_a_persons_group_and_note_are_for_the_web_page_only(
    client: SandboxClient, bot: Bot
) -> None:
    created = await client.create_user("王晓峰", group="网格员 Grid worker", note="杏东花园2号楼")
    assert (created["group"], created["note"]) == ("网格员 Grid worker", "杏东花园2号楼")
    listed = await client.users()
    assert [(u["group"], u["note"]) for u in listed] == [("网格员 Grid worker", "杏东花园2号楼")]
    plain = await client.create_user("Bob")
    assert "group" not in plain and "note" not in plain

    # the bot never sees them: not in the User of an update
    persona = client.persona_for(created, bot=BOT_ID)
    await persona.start()
    (update,) = await bot.get_updates()
    assert update.message is not None and update.message.from_user is not None
    sent = update.message.from_user.model_dump(exclude_none=True)
    assert sent == {
        "id": created["id"],
        "is_bot": False,
        "first_name": "王晓峰",
        "language_code": "zh-hans",
    }
    chat = update.message.chat.model_dump(exclude_none=True)
    assert "group" not in str(chat) and "杏东花园" not in str(chat)


async def test_a_group_or_note_that_is_not_text_is_refused(client: SandboxClient) -> None:
    with pytest.raises(SandboxClientError, match="group must be a string"):
        await client.request("POST", "/users", json={"first_name": "X", "group": ["a"]})
    with pytest.raises(SandboxClientError, match="note must be a string"):
        await client.request("POST", "/users", json={"first_name": "X", "note": {"a": 1}})
