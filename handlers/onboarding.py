"""Joining by deep link: a resident scans their grid's QR code, staff use an invitation."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import CommandObject, CommandStart, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import KeyboardButton, Message, ReplyKeyboardMarkup, ReplyKeyboardRemove
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot import labels
from bot.i18n import N_, in_every_locale
from bot.services import deeplinks, invites, onboarding, people
from bot.services.actor import Actor
from bot.services.grids import GridNotFound, find_grid
from bot.telegram.commands import person_menu
from bot.telegram.render import bold
from bot.telegram.replies import Replier
from handlers.common import greeting
from models import Grid

SKIP = N_("Skip")


class Joining(StatesGroup):
    """Waiting for a new resident's phone number (contact button)."""

    phone = State()


def phone_keyboard() -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        keyboard=[
            [KeyboardButton(text=_("📱 Share my phone number"), request_contact=True)],
            [KeyboardButton(text=_(SKIP))],
        ],
        resize_keyboard=True,
        one_time_keyboard=True,
    )


async def start_with_link(
    message: Message,
    command: CommandObject,
    reply: Replier,
    actor: Actor,
    state: FSMContext,
    i18n: I18n,
) -> None:
    link = deeplinks.parse_start_payload(command.args)
    if isinstance(link, deeplinks.JoinGrid):
        try:
            grid = await find_grid(actor.session, link.grid_code)
        except GridNotFound:
            link = None
        else:
            await _join(reply, actor, grid, state)
            return
    if isinstance(link, deeplinks.UseInvite):
        invite, grid = await invites.redeem_invite(
            actor.session, person=actor.who, token=link.token, now=actor.now
        )
        reply.text(
            _("Welcome! You are now {role} of {grid}. Send /help to see your commands.").format(
                role=_(labels.ROLE[invite.role]), grid=bold(grid.name)
            )
        )
        assert actor.who.id is not None and actor.who.telegram_id is not None
        person_menu(
            actor.session,
            telegram_id=actor.who.telegram_id,
            roles=people.role_set(await people.roles_of(actor.session, actor.who.id)),
            locale=i18n.current_locale,
            now=actor.now,
        )
        return
    reply.text(
        _(
            "This link is not valid or has expired. "
            "Ask the person who gave it to you for a new one."
        )
    )
    reply.text(greeting(actor.who, actor.roles))


async def _join(reply: Replier, actor: Actor, grid: Grid, state: FSMContext) -> None:
    joined = await onboarding.join_grid(actor.session, person=actor.who, grid=grid, now=actor.now)
    text = (
        _("Welcome to grid {grid}!") if joined else _("You are already in grid {grid}.")
    ).format(grid=bold(grid.name))
    await state.set_state(Joining.phone)
    await state.update_data(grid_id=grid.id)
    reply.text(
        text
        + "\n\n"
        + _(
            "So that your grid worker knows which household you are, please share your phone "
            "number with the button below. It is only used by the people who serve your grid."
        ),
        phone_keyboard(),
    )


async def phone_shared(message: Message, reply: Replier, actor: Actor, state: FSMContext) -> None:
    contact = message.contact
    assert contact is not None
    if message.from_user is None or contact.user_id != message.from_user.id:
        reply.text(_("Please share your own number with the button below."), phone_keyboard())
        return
    grid = await actor.session.get(Grid, (await state.get_data()).get("grid_id"))
    await state.clear()
    if grid is None:
        reply.text(_("Please scan your grid's QR code again."), ReplyKeyboardRemove())
        return
    household = await onboarding.bind_phone(
        actor.session, person=actor.who, grid=grid, phone=contact.phone_number, now=actor.now
    )
    if household is not None:
        text = _("Thank you! You are registered with the household at {address}.").format(
            address=bold(household.address)
        )
    else:
        text = _(
            "Thank you! No household in this grid is registered with this number yet; "
            "your grid worker will check it with you."
        )
    reply.text(
        text + "\n\n" + _("Send /mygrid to see who looks after your grid."),
        ReplyKeyboardRemove(),
    )


async def phone_skipped(message: Message, reply: Replier, state: FSMContext) -> None:
    await state.clear()
    reply.text(
        _(
            "All right. You can register your phone number later by scanning your grid's "
            "QR code again. Send /mygrid to see who looks after your grid."
        ),
        ReplyKeyboardRemove(),
    )


async def phone_expected(message: Message, reply: Replier) -> None:
    reply.text(_("Please press “📱 Share my phone number” below, or “Skip”."), phone_keyboard())


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(start_with_link, CommandStart(deep_link=True))
    router.message.register(phone_shared, StateFilter(Joining.phone), F.contact)
    router.message.register(
        phone_skipped, StateFilter(Joining.phone), F.text.in_(in_every_locale(SKIP))
    )
    router.message.register(phone_expected, StateFilter(Joining.phone), ~F.text.startswith("/"))
    return router
