"""What everyone can do: /start, /help, /language."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyKeyboardRemove,
)
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot import labels
from bot.services import people
from bot.services.actor import Actor
from bot.services.people import RoleInGrid
from bot.telegram.callbacks import LanguageCb, LanguageCode
from bot.telegram.commands import commands_for, person_menu
from bot.telegram.render import bold, esc
from bot.telegram.replies import Replier
from models import Person, Role


def greeting(person: Person, roles: list[RoleInGrid]) -> str:
    lines = [
        _("Hello, {name}! I am GridBot, your community's grid assistant.").format(
            name=bold(person.name)
        )
    ]
    staff = [r for r in roles if r.role != Role.RESIDENT]
    residences = [r for r in roles if r.role == Role.RESIDENT]
    for held in staff:
        lines.append(
            _("You are {role} of {grid}.").format(
                role=_(labels.ROLE[held.role]), grid=bold(held.grid_name)
            )
        )
    for held in residences:
        lines.append(_("You live in grid {grid}.").format(grid=bold(held.grid_name)))
    if not roles:
        lines.append(
            _(
                "You have not joined a grid yet. Scan the QR code on your grid's notice board, "
                "or ask your grid worker for the link to join."
            )
        )
    lines.append(_("Send /help to see what I can do for you."))
    return "\n\n".join(lines)


async def start(message: Message, reply: Replier, actor: Actor, i18n: I18n) -> None:
    reply.text(greeting(actor.who, actor.roles))
    assert actor.who.telegram_id is not None
    person_menu(
        actor.session,
        telegram_id=actor.who.telegram_id,
        roles=people.role_set(actor.roles),
        locale=i18n.current_locale,
        now=actor.now,
    )


async def help_(message: Message, reply: Replier, actor: Actor) -> None:
    specs = commands_for(people.role_set(actor.roles))
    lines = [bold(_("Here is what I can do for you:"))]
    lines += [f"/{spec.command} — {esc(_(spec.description))}" for spec in specs]
    reply.text("\n".join(lines))


async def cancel(message: Message, reply: Replier, state: FSMContext) -> None:
    """/cancel outside any conversation step that handles it itself."""
    if await state.get_state() is None:
        reply.text(_("There is nothing to cancel."), ReplyKeyboardRemove())
        return
    await state.clear()
    reply.text(_("Cancelled."), ReplyKeyboardRemove())


def language_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=labels.LANGUAGE_NAMES[code.value],
                    callback_data=LanguageCb(code=code).pack(),
                )
            ]
            for code in LanguageCode
        ]
    )


async def language(message: Message, reply: Replier) -> None:
    reply.text(_("Choose your language:"), language_keyboard())


async def language_chosen(
    query: CallbackQuery, callback_data: LanguageCb, reply: Replier, actor: Actor, i18n: I18n
) -> None:
    locale = callback_data.code.value
    await people.set_locale(actor.session, actor.who, locale, actor.now)
    with i18n.use_locale(locale):
        text = _("Language set to {language}.").format(language=labels.LANGUAGE_NAMES[locale])
        await query.answer(text)
        if isinstance(query.message, Message):
            reply.edit(query.message.message_id, text)
        else:
            reply.text(text)
    assert actor.who.telegram_id is not None
    person_menu(
        actor.session,
        telegram_id=actor.who.telegram_id,
        roles=people.role_set(actor.roles),
        locale=locale,
        now=actor.now,
    )


def build_router() -> Router:
    """A fresh router per application (tests and the sandbox build several in one process)."""
    router = Router(name=__name__)
    router.message.register(start, CommandStart())
    router.message.register(help_, Command("help"))
    router.message.register(language, Command("language"))
    router.message.register(cancel, Command("cancel"))
    router.callback_query.register(language_chosen, LanguageCb.filter())
    return router
