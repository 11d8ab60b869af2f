"""``reply_markup``: parsing, Telegram's checks and normalisation.

The structure checks and their wording follow the Bot API server (``Object expected as reply
markup``, ``Can't parse inline keyboard button: Text buttons are unallowed in the inline
keyboard``...); the limits follow Telegram's servers (``BUTTON_DATA_INVALID`` for callback data
over 64 bytes, ``reply markup is too long`` past 100 buttons or 8 buttons in a row).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from bot.sandbox.errors import bad_request
from bot.sandbox.formatting import checked_link

JsonObject = dict[str, Any]
MarkupKind = Literal["inline_keyboard", "keyboard", "remove_keyboard", "force_reply"]

MAX_CALLBACK_DATA_BYTES = 64
MAX_INLINE_BUTTONS = 100
MAX_INLINE_BUTTONS_PER_ROW = 8
MAX_REPLY_BUTTONS = 300
MAX_REPLY_BUTTONS_PER_ROW = 12


class _MarkupError(Exception):
    pass


@dataclass
class ReplyMarkup:
    """A parsed ``reply_markup``; ``data`` is the normalised Bot API object."""

    kind: MarkupKind
    data: JsonObject

    @property
    def is_inline(self) -> bool:
        return self.kind == "inline_keyboard"


def _string(obj: JsonObject, name: str, *, required: bool) -> str:
    if name not in obj or obj[name] is None:
        if required:
            raise _MarkupError(f'Can\'t find field "{name}"')
        return ""
    value = obj[name]
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise _MarkupError(f'Field "{name}" must be of type String')


def _bool(obj: JsonObject, name: str) -> bool:
    value = obj.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _MarkupError(f'Field "{name}" must be of type Boolean')
    return value


def _object(obj: JsonObject, name: str) -> JsonObject:
    value = obj.get(name)
    if not isinstance(value, dict):
        raise _MarkupError(f'Field "{name}" must be of type Object')
    return value


def _optional_array(obj: JsonObject, name: str) -> list[Any] | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, list):
        raise _MarkupError(f'Field "{name}" must be of type Array')
    return value


def _inline_button(button: Any) -> JsonObject:
    if not isinstance(button, dict):
        raise _MarkupError("InlineKeyboardButton must be an Object")
    result: JsonObject = {"text": _string(button, "text", required=True)}
    for extra in ("icon_custom_emoji_id", "style"):
        value = _string(button, extra, required=False)
        if value:
            result[extra] = value
    url = _string(button, "url", required=False)
    if url:
        result["url"] = url
        return result
    data = _string(button, "callback_data", required=False)
    if data:
        result["callback_data"] = data
        return result
    for action in ("callback_game", "pay"):
        if action in button:
            result[action] = button[action] if action == "callback_game" else True
            return result
    for action in ("switch_inline_query", "switch_inline_query_current_chat"):
        if action in button:
            result[action] = _string(button, action, required=True)
            return result
    for action in ("switch_inline_query_chosen_chat", "login_url", "web_app", "copy_text"):
        if action in button:
            nested = _object(button, action)
            if action in ("login_url", "web_app"):
                _string(nested, "url", required=True)
            if action == "copy_text":
                _string(nested, "text", required=True)
            result[action] = nested
            return result
    raise _MarkupError("Text buttons are unallowed in the inline keyboard")


def _keyboard_button(button: Any) -> JsonObject:
    if isinstance(button, str):
        return {"text": button}
    if not isinstance(button, dict):
        raise _MarkupError("KeyboardButton must be a String or an Object")
    result: JsonObject = {"text": _string(button, "text", required=True)}
    for extra in ("icon_custom_emoji_id", "style"):
        value = _string(button, extra, required=False)
        if value:
            result[extra] = value
    for action in ("request_contact", "request_location"):
        if _bool(button, action):
            result[action] = True
    for action in ("request_users", "request_chat", "request_managed_bot", "request_poll"):
        if action in button and button[action] is not None:
            result[action] = _object(button, action)
    if "web_app" in button and button["web_app"] is not None:
        web_app = _object(button, "web_app")
        _string(web_app, "url", required=True)
        result["web_app"] = web_app
    return result


def _parse(value: Any) -> ReplyMarkup | None:
    if not isinstance(value, dict):
        raise _MarkupError("Object expected as reply markup")
    rows: list[list[JsonObject]] = []
    for row in _optional_array(value, "keyboard") or []:
        if not isinstance(row, list):
            raise _MarkupError('Field "keyboard" must be an Array of Arrays')
        new_row = []
        for button in row:
            try:
                new_row.append(_keyboard_button(button))
            except _MarkupError as error:
                raise _MarkupError(f"Can't parse keyboard button: {error}") from None
        rows.append(new_row)
    inline_rows: list[list[JsonObject]] = []
    for row in _optional_array(value, "inline_keyboard") or []:
        if not isinstance(row, list):
            raise _MarkupError(
                'Field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays'
            )
        new_row = []
        for button in row:
            try:
                new_row.append(_inline_button(button))
            except _MarkupError as error:
                raise _MarkupError(f"Can't parse inline keyboard button: {error}") from None
        inline_rows.append(new_row)
    hide = _bool(value, "hide_keyboard") or _bool(value, "remove_keyboard")
    selective = _bool(value, "personal_keyboard") or _bool(value, "selective")
    force_reply = _bool(value, "force_reply_keyboard") or _bool(value, "force_reply")
    placeholder = _string(value, "input_field_placeholder", required=False)

    if any(rows):
        data: JsonObject = {"keyboard": rows}
        for flag in ("is_persistent", "resize_keyboard", "one_time_keyboard"):
            if _bool(value, flag):
                data[flag] = True
        if placeholder:
            data["input_field_placeholder"] = placeholder
        if selective:
            data["selective"] = True
        return ReplyMarkup("keyboard", data)
    if any(inline_rows):
        return ReplyMarkup("inline_keyboard", {"inline_keyboard": inline_rows})
    if hide:
        data = {"remove_keyboard": True}
        if selective:
            data["selective"] = True
        return ReplyMarkup("remove_keyboard", data)
    if force_reply:
        data = {"force_reply": True}
        if placeholder:
            data["input_field_placeholder"] = placeholder
        if selective:
            data["selective"] = True
        return ReplyMarkup("force_reply", data)
    return None


def parse_reply_markup(value: Any) -> ReplyMarkup | None:
    """Parse a decoded ``reply_markup`` object; raise a Telegram-shaped :class:`ApiError`."""
    try:
        markup = _parse(value)
    except _MarkupError as error:
        raise bad_request(str(error)) from None
    if markup is not None:
        check_markup_limits(markup)
    return markup


def check_markup_limits(markup: ReplyMarkup, *, private_chat: bool = True) -> None:
    """Telegram's server-side checks of a keyboard."""
    if markup.kind == "inline_keyboard":
        rows = [row for row in markup.data["inline_keyboard"] if row]
        markup.data["inline_keyboard"] = rows
        if sum(len(row) for row in rows) > MAX_INLINE_BUTTONS or any(
            len(row) > MAX_INLINE_BUTTONS_PER_ROW for row in rows
        ):
            raise bad_request("reply markup is too long")
        for row in rows:
            for button in row:
                if not button["text"]:
                    raise bad_request("Inline keyboard button text must be non-empty")
                data = button.get("callback_data")
                if data is not None and len(data.encode("utf-8")) > MAX_CALLBACK_DATA_BYTES:
                    raise bad_request("BUTTON_DATA_INVALID")
                url = button.get("url")
                if url is not None and not checked_link(url):
                    raise bad_request("BUTTON_URL_INVALID")
    elif markup.kind == "keyboard":
        rows = [row for row in markup.data["keyboard"] if row]
        markup.data["keyboard"] = rows
        if sum(len(row) for row in rows) > MAX_REPLY_BUTTONS or any(
            len(row) > MAX_REPLY_BUTTONS_PER_ROW for row in rows
        ):
            raise bad_request("reply markup is too long")
        for row in rows:
            for button in row:
                if not button["text"]:
                    raise bad_request("Keyboard button text must be non-empty")
                if not private_chat and button.get("request_contact"):
                    raise bad_request("Phone number can be requested in private chats only")
                if not private_chat and button.get("request_location"):
                    raise bad_request("Location can be requested in private chats only")


def inline_buttons(markup: JsonObject | None) -> list[JsonObject]:
    """All buttons of an ``InlineKeyboardMarkup`` dict, row by row."""
    if not markup:
        return []
    return [button for row in markup.get("inline_keyboard", []) for button in row]


def reply_buttons(markup: JsonObject | None) -> list[JsonObject]:
    """All buttons of a ``ReplyKeyboardMarkup`` dict, row by row."""
    if not markup:
        return []
    return [button for row in markup.get("keyboard", []) for button in row]


__all__ = [
    "MAX_CALLBACK_DATA_BYTES",
    "ReplyMarkup",
    "check_markup_limits",
    "inline_buttons",
    "parse_reply_markup",
    "reply_buttons",
]
