"""Every object the sandbox returns has the fields the Bot API specification requires."""

from __future__ import annotations

from typing import Any

from aiogram import Bot
from aiogram.types import (
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaDocument,
)

from bot.sandbox.app import RunningSandbox
from bot.sandbox.server import SandboxServer
from bot.sandbox.spec import PRIMITIVES, load_spec
from bot.sandbox.state import SandboxUser
from tests.sandbox.conftest import BOT_ID, png
from tests.sandbox.helpers import raw_call

SPEC = load_spec()


def shape_errors(type_name: str, value: Any, path: str = "") -> list[str]:
    """Required fields missing anywhere in ``value`` (an object of ``type_name``)."""
    if type_name.startswith("Array of "):
        if not isinstance(value, list):
            return [f"{path}: expected an array"]
        inner = type_name[len("Array of ") :]
        return [
            e for i, item in enumerate(value) for e in shape_errors(inner, item, f"{path}[{i}]")
        ]
    if type_name in PRIMITIVES:
        return []
    type_spec = SPEC.types[type_name]
    if type_spec.fields is None:
        # a union: check against the member its discriminator (or its fields) points at
        members = [SPEC.types[m] for m in type_spec.subtypes if m in SPEC.types]
        for member in members:
            if (
                member.discriminator
                and value.get(member.discriminator[0]) == member.discriminator[1]
            ):
                return shape_errors(member.name, value, path)
        for member in members:
            if not shape_errors(member.name, value, path):
                return []
        return [f"{path}: matches no member of {type_name}"]
    if not isinstance(value, dict):
        return [f"{path}: expected an object"]
    errors = []
    for field in type_spec.fields.values():
        if field.name not in value:
            if field.required:
                errors.append(f"{path}.{field.name}: missing")
            continue
        errors += shape_errors(field.types[0], value[field.name], f"{path}.{field.name}")
    return errors


async def call(sandbox: RunningSandbox, method: str, **params: Any) -> Any:
    status, body = await raw_call(sandbox, method, json=params)
    assert status == 200, body
    return body["result"]


async def test_results_and_updates_have_the_required_fields(
    bot: Bot, sandbox: RunningSandbox, server: SandboxServer, alice: SandboxUser
) -> None:
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="好", callback_data="ok")]]
    )
    menu = await bot.send_message(
        alice.id, "<b>菜单</b>", parse_mode="HTML", reply_markup=keyboard
    )
    await bot.send_photo(alice.id, BufferedInputFile(png(), "p.png"), caption="图")
    await bot.send_media_group(
        alice.id,
        [
            InputMediaDocument(media=BufferedInputFile(b"1", "a.txt")),
            InputMediaDocument(media=BufferedInputFile(b"2", "b.txt")),
        ],
    )
    server.press_button(BOT_ID, alice.id, text="好")
    server.send_location(BOT_ID, alice.id, 31.2, 121.5)
    server.share_contact(BOT_ID, alice.id)
    server.send_photos(BOT_ID, alice.id, [png(), png()], caption="相册")
    server.block_bot(BOT_ID, alice.id)
    server.unblock_bot(BOT_ID, alice.id)

    checks: list[tuple[str, Any]] = [
        ("User", await call(sandbox, "getMe")),
        ("Array of Update", await call(sandbox, "getUpdates")),
        ("WebhookInfo", await call(sandbox, "getWebhookInfo")),
        ("ChatFullInfo", await call(sandbox, "getChat", chat_id=alice.id)),
        ("ChatMember", await call(sandbox, "getChatMember", chat_id=alice.id, user_id=alice.id)),
        ("MenuButton", await call(sandbox, "getChatMenuButton")),
        (
            "Message",
            await call(sandbox, "sendLocation", chat_id=alice.id, latitude=1, longitude=2),
        ),
        (
            "Message",
            await call(
                sandbox,
                "sendVenue",
                chat_id=alice.id,
                latitude=1,
                longitude=2,
                title="社区服务中心",
                address="幸福路1号",
            ),
        ),
        (
            "Message",
            await call(sandbox, "sendContact", chat_id=alice.id, phone_number="1", first_name="a"),
        ),
        (
            "Message",
            await call(
                sandbox,
                "editMessageText",
                chat_id=alice.id,
                message_id=menu.message_id,
                text="新菜单",
            ),
        ),
    ]
    photo_id = server.transcript(BOT_ID, alice.id)["messages"][2]["photo"]["file_id"]
    checks.append(("File", await call(sandbox, "getFile", file_id=photo_id)))
    updates = checks[1][1]
    assert {next(k for k in u if k != "update_id") for u in updates} == {
        "message",
        "callback_query",
        "my_chat_member",
    }
    for type_name, value in checks:
        assert shape_errors(type_name, value, type_name) == []
