"""The catch-all, registered last: anything no other router understood."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from bot.telegram.replies import Replier


async def not_understood(message: Message, reply: Replier) -> None:
    reply.text(_("Sorry, I did not understand that. Send /help to see what I can do."))


async def stale_button(query: CallbackQuery) -> None:
    await query.answer(_("This button is out of date. Send /start to begin again."))


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(not_understood)
    router.callback_query.register(stale_button)
    return router
