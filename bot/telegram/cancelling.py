"""Cancel buttons under a conversation's prompts, and ending a conversation by one, shared by
the handler modules (each flow keeps its own callback data, so a press is routed to it)."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup

from bot.telegram.replies import Replier


def cancel_only(text: str, data: CallbackData) -> InlineKeyboardMarkup:
    """A keyboard of one button, ``text`` (a translated "Cancel"), pressing which sends
    ``data``."""
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=text, callback_data=data.pack())]]
    )


async def end_by_button(
    query: CallbackQuery, reply: Replier, state: FSMContext, text: str
) -> None:
    """A Cancel button pressed: the conversation ends, the press is answered with ``text``
    and the message that carried the button says it instead."""
    await state.clear()
    await query.answer(text)
    if query.message is not None:
        reply.edit(query.message.message_id, text)
