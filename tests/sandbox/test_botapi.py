"""Bot API methods through a real aiogram ``Bot``: shapes aiogram parses, Telegram's errors."""

from __future__ import annotations

import aiohttp
import pytest
from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramRetryAfter,
)
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    KeyboardButton,
    MenuButtonCommands,
    MenuButtonDefault,
    MessageEntity,
    ReplyKeyboardMarkup,
    ReplyParameters,
)

from bot.sandbox.app import RunningSandbox
from bot.sandbox.clock import ManualClock
from bot.sandbox.errors import MESSAGE_NOT_MODIFIED
from bot.sandbox.server import SandboxServer
from bot.sandbox.state import SandboxUser
from tests.sandbox.conftest import BOT_ID, TOKEN, png
from tests.sandbox.helpers import raw_call


def buttons(*labels: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=label, callback_data=label)] for label in labels
        ]
    )


async def test_get_me_and_case_insensitive_methods(bot: Bot, sandbox: RunningSandbox) -> None:
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot) == (BOT_ID, "gridbot_test_bot", True)
    status, body = await raw_call(sandbox, "GETME", http_method="GET")
    assert status == 200 and body["result"]["id"] == BOT_ID


async def test_unknown_method_and_bad_token_answer_like_telegram(sandbox: RunningSandbox) -> None:
    expected = {"ok": False, "error_code": 404, "description": "Not Found"}
    assert await raw_call(sandbox, "sendTelepathy") == (404, expected)
    assert await raw_call(sandbox, "getMe", token="not-a-token") == (404, expected)


async def test_any_well_formed_token_is_a_bot(sandbox: RunningSandbox) -> None:
    token = "555:" + "x" * 35
    status, body = await raw_call(sandbox, "getMe", token=token)
    assert status == 200
    assert body["result"]["username"] == "sandbox_555_bot"


async def test_send_to_people_who_never_started_or_blocked(
    bot: Bot, server: SandboxServer, alice: SandboxUser, bob: SandboxUser
) -> None:
    with pytest.raises(TelegramForbiddenError) as never:
        await bot.send_message(bob.id, "你好")
    assert never.value.message == "Forbidden: bot can't initiate conversation with a user"

    server.block_bot(BOT_ID, alice.id)
    with pytest.raises(TelegramForbiddenError) as blocked:
        await bot.send_message(alice.id, "你好")
    assert blocked.value.message == "Forbidden: bot was blocked by the user"

    with pytest.raises(TelegramBadRequest) as missing:
        await bot.send_message(424242, "你好")
    assert missing.value.message == "Bad Request: chat not found"


async def test_send_message_with_html(bot: Bot, server: SandboxServer, alice: SandboxUser) -> None:
    sent = await bot.send_message(
        alice.id,
        "<b>您好</b>，请选择 /help",
        parse_mode="HTML",
        reply_markup=buttons("报告问题"),
    )
    assert sent.text == "您好，请选择 /help"
    assert sent.entities is not None
    assert [(e.type, e.offset, e.length) for e in sent.entities] == [
        ("bold", 0, 2),
        ("bot_command", 7, 5),
    ]
    assert sent.from_user is not None and sent.from_user.id == BOT_ID
    assert sent.reply_markup is not None
    assert sent.reply_markup.inline_keyboard[0][0].callback_data == "报告问题"
    assert sent.date.timestamp() == server.unix_now()


async def test_parse_errors_and_lengths(
    bot: Bot, sandbox: RunningSandbox, alice: SandboxUser
) -> None:
    with pytest.raises(TelegramBadRequest) as bad_html:
        await bot.send_message(alice.id, "<p>段落</p>", parse_mode="HTML")
    assert bad_html.value.message == (
        'Bad Request: can\'t parse entities: Unsupported start tag "p" at byte offset 0'
    )
    with pytest.raises(TelegramBadRequest) as bad_markdown:
        await bot.send_message(alice.id, "完成.", parse_mode="MarkdownV2")
    assert bad_markdown.value.message.startswith("Bad Request: can't parse entities: Character")

    with pytest.raises(TelegramBadRequest) as empty:
        await bot.send_message(alice.id, "<b> </b>", parse_mode="HTML")
    assert empty.value.message == "Bad Request: message text is empty"
    status, body = await raw_call(sandbox, "sendMessage", json={"chat_id": alice.id, "text": ""})
    assert (status, body["description"]) == (400, "Bad Request: message text is empty")

    # 4096 UTF-16 code units after parsing is the limit; an emoji counts twice
    await bot.send_message(alice.id, "😀" * 2048)
    await bot.send_message(alice.id, "<b>" + "网" * 4096 + "</b>", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest) as too_long:
        await bot.send_message(alice.id, "😀" * 2048 + "x")
    assert too_long.value.message == "Bad Request: message is too long"


async def test_callback_data_is_limited_in_bytes(bot: Bot, alice: SandboxUser) -> None:
    await bot.send_message(alice.id, "ok", reply_markup=buttons("网" * 21))
    with pytest.raises(TelegramBadRequest) as error:
        await bot.send_message(alice.id, "x", reply_markup=buttons("网" * 22))
    assert error.value.message == "Bad Request: BUTTON_DATA_INVALID"


async def test_edit_message_text(bot: Bot, server: SandboxServer, alice: SandboxUser) -> None:
    sent = await bot.send_message(alice.id, "待处理", reply_markup=buttons("受理"))
    with pytest.raises(TelegramBadRequest) as same:
        await bot.edit_message_text(
            text="待处理",
            chat_id=alice.id,
            message_id=sent.message_id,
            reply_markup=buttons("受理"),
        )
    assert same.value.message == f"Bad Request: {MESSAGE_NOT_MODIFIED}"

    edited = await bot.edit_message_text(
        text="<i>已受理</i>", chat_id=alice.id, message_id=sent.message_id, parse_mode="HTML"
    )
    assert not isinstance(edited, bool)
    assert edited.text == "已受理" and edited.edit_date is not None
    assert edited.reply_markup is None  # no reply_markup given: the keyboard goes away
    view = server.transcript(BOT_ID, alice.id)["messages"][-1]
    assert (view["text"], view["inline_keyboard"]) == ("已受理", None)

    with pytest.raises(TelegramBadRequest) as missing:
        await bot.edit_message_text(text="x", chat_id=alice.id, message_id=999)
    assert missing.value.message == "Bad Request: message to edit not found"
    with pytest.raises(TelegramBadRequest) as users_own:
        await bot.edit_message_text(text="x", chat_id=alice.id, message_id=1)
    assert users_own.value.message == "Bad Request: message can't be edited"


async def test_edit_reply_markup_and_caption(bot: Bot, alice: SandboxUser) -> None:
    text = await bot.send_message(alice.id, "选择", reply_markup=buttons("一", "二"))
    changed = await bot.edit_message_reply_markup(
        chat_id=alice.id, message_id=text.message_id, reply_markup=buttons("三")
    )
    assert not isinstance(changed, bool) and changed.reply_markup is not None
    assert changed.reply_markup.inline_keyboard[0][0].text == "三"
    with pytest.raises(TelegramBadRequest, match="there is no caption in the message to edit"):
        await bot.edit_message_caption(chat_id=alice.id, message_id=text.message_id, caption="x")

    photo = await bot.send_photo(alice.id, BufferedInputFile(png(), "a.png"), caption="旧")
    recaptioned = await bot.edit_message_caption(
        chat_id=alice.id, message_id=photo.message_id, caption="<b>新</b>", parse_mode="HTML"
    )
    assert not isinstance(recaptioned, bool) and recaptioned.caption == "新"
    with pytest.raises(TelegramBadRequest, match="there is no text in the message to edit"):
        await bot.edit_message_text(text="x", chat_id=alice.id, message_id=photo.message_id)


async def test_delete_message(bot: Bot, server: SandboxServer, alice: SandboxUser) -> None:
    sent = await bot.send_message(alice.id, "临时")
    assert await bot.delete_message(alice.id, sent.message_id)
    texts = [m.get("text") for m in server.transcript(BOT_ID, alice.id)["messages"]]
    assert "临时" not in texts
    with pytest.raises(TelegramBadRequest) as again:
        await bot.delete_message(alice.id, sent.message_id)
    assert again.value.message == "Bad Request: message to delete not found"


async def test_delete_window_is_48_hours(
    bot: Bot, sandbox_clock: ManualClock, alice: SandboxUser
) -> None:
    sent = await bot.send_message(alice.id, "旧消息")
    sandbox_clock.advance(48 * 3600 + 1)
    with pytest.raises(TelegramBadRequest, match="message can't be deleted"):
        await bot.delete_message(alice.id, sent.message_id)


async def test_answer_callback_query(
    bot: Bot, server: SandboxServer, sandbox_clock: ManualClock, alice: SandboxUser
) -> None:
    sent = await bot.send_message(alice.id, "确认？", reply_markup=buttons("是", "否"))
    pressed = server.press_button(BOT_ID, alice.id, text="是")
    assert pressed["message_id"] == sent.message_id
    with pytest.raises(TelegramBadRequest, match="MESSAGE_TOO_LONG"):
        await bot.answer_callback_query(pressed["callback_query_id"], text="长" * 201)
    assert await bot.answer_callback_query(pressed["callback_query_id"], text="已确认")
    assert server.transcript(BOT_ID, alice.id)["toast"]["text"] == "已确认"

    late = server.press_button(BOT_ID, alice.id, text="否")
    sandbox_clock.advance(16)
    with pytest.raises(TelegramBadRequest) as too_old:
        await bot.answer_callback_query(late["callback_query_id"])
    assert too_old.value.message == (
        "Bad Request: query is too old and response timeout expired or query ID is invalid"
    )


async def test_photos_documents_albums_and_files(
    bot: Bot, sandbox: RunningSandbox, alice: SandboxUser
) -> None:
    image = png(40, 30)
    photo = await bot.send_photo(alice.id, BufferedInputFile(image, "p.png"), caption="现场")
    assert photo.photo is not None
    size = photo.photo[-1]
    assert (size.width, size.height, size.file_size) == (40, 30, len(image))
    file = await bot.get_file(size.file_id)
    assert file.file_path is not None
    downloaded = await bot.download_file(file.file_path)
    assert downloaded is not None and downloaded.read() == image

    again = await bot.send_photo(alice.id, size.file_id)  # by file_id, no upload
    assert again.photo is not None and again.photo[-1].file_id == size.file_id

    document = await bot.send_document(
        alice.id, BufferedInputFile(b"a,b\n1,2\n", "台账.csv"), caption="台账"
    )
    assert document.document is not None
    assert (document.document.file_name, document.document.mime_type) == ("台账.csv", "text/csv")

    album = await bot.send_media_group(
        alice.id,
        [
            InputMediaPhoto(media=BufferedInputFile(png(), "1.png"), caption="一"),
            InputMediaPhoto(media=BufferedInputFile(png(), "2.png")),
        ],
    )
    assert len(album) == 2
    assert album[0].media_group_id is not None
    assert album[0].media_group_id == album[1].media_group_id

    with pytest.raises(TelegramBadRequest, match="IMAGE_PROCESS_FAILED"):
        await bot.send_photo(alice.id, BufferedInputFile(b"not an image", "x.png"))
    with pytest.raises(TelegramBadRequest, match="wrong file identifier/HTTP URL specified"):
        await bot.send_photo(alice.id, "AgACAgUAAxkBAAnonexistent")
    with pytest.raises(TelegramBadRequest, match="wrong file_id"):
        await bot.get_file("nonexistent")


async def test_file_size_limits(
    bot: Bot, sandbox: RunningSandbox, server: SandboxServer, alice: SandboxUser
) -> None:
    big_photo = png() + b"\0" * (10 * 1024 * 1024)
    with pytest.raises(TelegramBadRequest, match="PHOTO_SAVE_FILE_INVALID"):
        await bot.send_photo(alice.id, BufferedInputFile(big_photo, "big.png"))
    stored = server.files.add("document", b"\0" * (20 * 1024 * 1024 + 1), file_name="big.bin")
    with pytest.raises(TelegramBadRequest) as too_big:
        await bot.get_file(stored.file_id)
    assert too_big.value.message == "Bad Request: file is too big"


async def test_location_contact_chat_action(
    bot: Bot, sandbox: RunningSandbox, server: SandboxServer, alice: SandboxUser
) -> None:
    location = await bot.send_location(alice.id, latitude=31.2304, longitude=121.4737)
    assert location.location is not None and location.location.latitude == 31.2304
    contact = await bot.send_contact(alice.id, phone_number="+8613800000000", first_name="网格员")
    assert contact.contact is not None and contact.contact.first_name == "网格员"
    assert await bot.send_chat_action(alice.id, "typing")
    assert server.transcript(BOT_ID, alice.id)["chat_action"]["action"] == "typing"
    status, body = await raw_call(
        sandbox, "sendChatAction", json={"chat_id": alice.id, "action": "dancing"}
    )
    assert (status, body["description"]) == (400, "Bad Request: wrong parameter action in request")


async def test_reply_parameters(bot: Bot, alice: SandboxUser) -> None:
    first = await bot.send_message(alice.id, "原消息")
    reply = await bot.send_message(
        alice.id, "回复", reply_parameters=ReplyParameters(message_id=first.message_id)
    )
    assert reply.reply_to_message is not None
    assert reply.reply_to_message.message_id == first.message_id
    with pytest.raises(TelegramBadRequest, match="message to be replied not found"):
        await bot.send_message(alice.id, "x", reply_parameters=ReplyParameters(message_id=999))


async def test_commands_per_scope_and_language(
    bot: Bot, server: SandboxServer, alice: SandboxUser
) -> None:
    default = [BotCommand(command="start", description="开始")]
    english = [BotCommand(command="start", description="Start")]
    private = [BotCommand(command="report", description="报告问题")]
    assert await bot.set_my_commands(default)
    assert await bot.set_my_commands(english, language_code="en")
    assert await bot.set_my_commands(private, scope=BotCommandScopeAllPrivateChats())
    assert [c.description for c in await bot.get_my_commands()] == ["开始"]
    assert [c.description for c in await bot.get_my_commands(language_code="en")] == ["Start"]
    scoped = await bot.get_my_commands(scope=BotCommandScopeAllPrivateChats())
    assert [c.command for c in scoped] == ["report"]
    assert await bot.get_my_commands(scope=BotCommandScopeChat(chat_id=alice.id)) == []
    # what alice's app shows: the most specific scope that has commands
    assert server.transcript(BOT_ID, alice.id)["commands"] == [
        {"command": "report", "description": "报告问题"}
    ]
    assert await bot.delete_my_commands(scope=BotCommandScopeAllPrivateChats())
    assert server.transcript(BOT_ID, alice.id)["commands"][0]["command"] == "start"


@pytest.mark.parametrize(
    ("commands", "message"),
    [
        ([BotCommand(command="Start", description="x")], "BOT_COMMAND_INVALID"),
        ([BotCommand(command="a" * 33, description="x")], "BOT_COMMAND_INVALID"),
        ([BotCommand(command="报告", description="x")], "BOT_COMMAND_INVALID"),
        ([BotCommand(command="ok", description="x" * 257)], "BOT_COMMAND_DESCRIPTION_INVALID"),
        (
            [BotCommand(command=f"c{i}", description="x") for i in range(101)],
            "BOT_COMMANDS_TOO_MUCH",
        ),
    ],
)
async def test_command_limits(bot: Bot, commands: list[BotCommand], message: str) -> None:
    with pytest.raises(TelegramBadRequest) as error:
        await bot.set_my_commands(commands)
    assert error.value.message == f"Bad Request: {message}"


async def test_empty_command_description_is_refused(sandbox: RunningSandbox, bot: Bot) -> None:
    status, body = await raw_call(
        sandbox, "setMyCommands", json={"commands": [{"command": "a", "description": " "}]}
    )
    assert (status, body["description"]) == (400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")


async def test_pin_menu_button_and_get_chat(
    bot: Bot, server: SandboxServer, alice: SandboxUser
) -> None:
    sent = await bot.send_message(alice.id, "公告")
    assert await bot.pin_chat_message(alice.id, sent.message_id)
    transcript = server.transcript(BOT_ID, alice.id)
    assert transcript["pinned_message_id"] == sent.message_id
    assert transcript["messages"][-1]["service"] == "pinned_message"
    chat = await bot.get_chat(alice.id)
    assert chat.first_name == "Alice" and chat.pinned_message is not None

    assert await bot.set_chat_menu_button(chat_id=alice.id, menu_button=MenuButtonCommands())
    assert isinstance(await bot.get_chat_menu_button(chat_id=alice.id), MenuButtonCommands)
    assert isinstance(await bot.get_chat_menu_button(), MenuButtonDefault)
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.get_chat(777)


async def test_reply_keyboard_shows_until_removed(
    bot: Bot, server: SandboxServer, alice: SandboxUser
) -> None:
    keyboard = ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text="分享手机号", request_contact=True)]],
        resize_keyboard=True,
        one_time_keyboard=True,
    )
    sent = await bot.send_message(alice.id, "请分享手机号", reply_markup=keyboard)
    assert sent.reply_markup is None  # Message.reply_markup only ever holds inline keyboards
    shared = server.press_reply_button(BOT_ID, alice.id, "分享手机号")
    assert shared["contact"]["user_id"] == alice.id
    assert server.transcript(BOT_ID, alice.id)["reply_keyboard"]["keyboard"][0][0]["text"] == (
        "分享手机号"
    )


async def test_close_and_log_out(
    bot: Bot, sandbox: RunningSandbox, sandbox_clock: ManualClock
) -> None:
    with pytest.raises(TelegramRetryAfter) as early:
        await bot.close()
    assert 0 < early.value.retry_after <= 601
    sandbox_clock.advance(601)
    assert await bot.close()
    assert await bot.log_out()
    with pytest.raises(TelegramRetryAfter):
        await bot.get_me()
    sandbox_clock.advance(601)
    assert (await bot.get_me()).id == BOT_ID


async def test_form_query_string_and_multipart_bodies(
    sandbox: RunningSandbox, alice: SandboxUser, bot: Bot
) -> None:
    status, body = await raw_call(
        sandbox, "sendMessage", params={"chat_id": str(alice.id), "text": "查询串"}
    )
    assert status == 200 and body["result"]["text"] == "查询串"
    status, body = await raw_call(
        sandbox,
        "sendMessage",
        data={
            "chat_id": str(alice.id),
            "text": "表单",
            "reply_markup": '{"inline_keyboard":[[{"text":"a","callback_data":"b"}]]}',
        },
    )
    assert status == 200 and body["result"]["reply_markup"]["inline_keyboard"][0][0]["text"] == "a"
    status, body = await raw_call(sandbox, "sendMessage", data=b"\xff\xfe", http_method="POST")
    assert status == 400


async def test_unknown_parameter_over_http(sandbox: RunningSandbox, alice: SandboxUser) -> None:
    status, body = await raw_call(
        sandbox, "sendMessage", json={"chat_id": alice.id, "text": "x", "colour": "red"}
    )
    assert (status, body) == (
        400,
        {"ok": False, "error_code": 400, "description": 'Bad Request: unknown parameter "colour"'},
    )


async def test_unimplemented_real_method(sandbox: RunningSandbox, bot: Bot) -> None:
    status, body = await raw_call(sandbox, "sendDice", json={"chat_id": 1})
    assert status == 501 and body["description"].startswith("Not Implemented")


async def test_token_of_other_bot_sees_its_own_world(
    sandbox: RunningSandbox, server: SandboxServer, alice: SandboxUser
) -> None:
    status, body = await raw_call(
        sandbox,
        "sendMessage",
        token=TOKEN.replace("1", "2", 1),
        json={"chat_id": alice.id, "text": "x"},
    )
    assert status == 403
    assert body["description"] == "Forbidden: bot can't initiate conversation with a user"


async def test_explicit_entities_are_checked(
    bot: Bot, sandbox: RunningSandbox, alice: SandboxUser
) -> None:
    sent = await bot.send_message(
        alice.id,
        "粗体 链接 未知",
        entities=[
            MessageEntity(type="bold", offset=0, length=2),
            MessageEntity(type="text_link", offset=3, length=2, url="not a url"),
            MessageEntity(type="sparkle", offset=6, length=2),
        ],
    )
    assert sent.entities is not None
    assert [e.type for e in sent.entities] == ["bold"]
    status, body = await raw_call(
        sandbox,
        "sendMessage",
        json={
            "chat_id": alice.id,
            "text": "x",
            "entities": [{"type": "bold", "offset": -1, "length": 1}],
        },
    )
    assert (status, body["description"]) == (
        400,
        "Bad Request: receive an entity with incorrect offset -1",
    )


async def test_deeply_nested_json_is_a_bad_request(
    sandbox: RunningSandbox, alice: SandboxUser
) -> None:
    deep = f'{{"chat_id": {alice.id}, "text": "x", "x": {"[" * 5000 + "]" * 5000}}}'
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{sandbox.url}/bot{TOKEN}/sendMessage",
            data=deep,
            headers={"Content-Type": "application/json"},
        ) as response,
    ):
        assert response.status == 400
        assert (await response.json())["description"] == "Bad Request: can't parse JSON object"
    status, body = await raw_call(
        sandbox, "sendMessage", json={"chat_id": alice.id, "text": "\ud800"}
    )
    assert (status, body["description"]) == (400, "Bad Request: strings must be encoded in UTF-8")


async def test_caption_and_upload_limits(bot: Bot, alice: SandboxUser) -> None:
    await bot.send_photo(alice.id, BufferedInputFile(png(), "a.png"), caption="说" * 1024)
    with pytest.raises(TelegramBadRequest) as caption:
        await bot.send_photo(alice.id, BufferedInputFile(png(), "a.png"), caption="说" * 1025)
    assert caption.value.message == "Bad Request: message caption is too long"
    with pytest.raises(TelegramEntityTooLarge) as upload:
        await bot.send_document(alice.id, BufferedInputFile(b"\0" * (50 * 1024 * 1024 + 1), "x"))
    assert upload.value.message == "Request Entity Too Large"
