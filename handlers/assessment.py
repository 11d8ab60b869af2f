"""Assessment (考核): ``/indicators [grid]`` for heads, the centre, supervisors and admins."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.services import indicators
from bot.services.actor import Actor
from bot.services.message_size import split_message
from bot.settings import Settings
from bot.telegram.replies import Replier


async def indicators_command(
    message: Message,
    command: CommandObject,
    reply: Replier,
    actor: Actor,
    settings: Settings,
) -> None:
    """This month so far: the asker's subtrees, or the grid named (code or name) in them."""
    reports = await indicators.reports_for(
        actor.session,
        actor.who,
        actor.roles,
        grid_query=command.args,
        now=actor.now,
        tz=settings.tz,
    )
    text = "\n\n".join(indicators.render_report(r, actor.locale, settings.tz) for r in reports)
    for part in split_message(text):
        reply.text(part)


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(indicators_command, Command("indicators"))
    return router
