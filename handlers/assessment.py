"""Assessment (考核): ``/indicators [grid]`` for heads, the centre, supervisors and admins."""

from __future__ import annotations

from datetime import datetime

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services import indicators
from bot.services.message_size import split_message
from bot.services.people import RoleInGrid
from bot.settings import Settings
from bot.telegram.replies import Replier
from models import Person


async def indicators_command(
    message: Message,
    command: CommandObject,
    reply: Replier,
    person: Person,
    roles: list[RoleInGrid],
    session: AsyncSession,
    settings: Settings,
    locale: str,
    now: datetime,
) -> None:
    """This month so far: the asker's subtrees, or the grid named (code or name) in them."""
    reports = await indicators.reports_for(
        session, person, roles, grid_query=command.args, now=now, tz=settings.tz
    )
    text = "\n\n".join(indicators.render_report(r, locale, settings.tz) for r in reports)
    for part in split_message(text):
        reply.text(part)


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(indicators_command, Command("indicators"))
    return router
