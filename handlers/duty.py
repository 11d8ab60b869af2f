"""The centre's duty rota (值班): /duty, typed changes, a rota sheet, swaps by buttons.

``/duty`` shows who is on duty now and next, and one's own shifts with a button each to hand
it to a colleague (a swap: the colleague gets two buttons, and only their "yes" moves it).
Centre operators and the street's administrators add and remove shifts (``/duty add`` /
``remove``) or send the whole rota as a sheet with the caption ``/duty``. Every press is
checked again by :mod:`bot.services.duty` (a forged one is refused and audited).
"""

from __future__ import annotations

import re

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from bot.errors import InvalidInput
from bot.i18n import N_
from bot.services.actor import Actor
from bot.services.duty import rota, sheet, swaps
from bot.settings import Settings
from bot.telegram import duty_views as views
from bot.telegram.args import DUTY_ACTIONS, parse_word, split_args
from bot.telegram.callbacks import DutyAction, DutyAnswer, DutyCb, DutySwapCb
from bot.telegram.render import esc
from bot.telegram.replies import Replier, pressed

CAPTION = re.compile(r"\s*(/duty|值班)", re.IGNORECASE)


def _usage() -> InvalidInput:
    return InvalidInput(N_("Please write it like this: {usage}"), usage=_(views.USAGE))


async def duty_command(
    message: Message, command: CommandObject, reply: Replier, actor: Actor, settings: Settings
) -> None:
    words = split_args(command.args)
    tz = settings.tz
    if not words:
        view = await rota.duty_now(actor.session, actor.who, actor.roles, actor.now)
        reply.text(views.duty_text(view, tz), views.duty_keyboard(view, tz))
        return
    action = parse_word(words[0], DUTY_ACTIONS)
    if action == "add" and len(words) in (4, 6):
        times = words[2:]
        starts, ends = (
            (times[0], times[1]) if len(times) == 2 else (" ".join(times[:2]), " ".join(times[2:]))
        )
        shift = await rota.add_shift(
            actor.session,
            actor.who,
            actor.roles,
            actor.now,
            phone=words[1],
            starts=starts,
            ends=ends,
            tz=tz,
        )
        reply.text(esc(_("Added to the duty rota:")) + "\n" + views.shift_line(shift, tz))
    elif action == "remove" and len(words) == 2 and words[1].isdigit():
        shift = await rota.remove_shift(
            actor.session, actor.who, actor.roles, int(words[1][:9]), actor.now
        )
        reply.text(esc(_("Taken off the duty rota:")) + "\n" + views.shift_line(shift, tz))
    else:
        raise _usage()


async def rota_sheet(
    message: Message, bot: Bot, reply: Replier, actor: Actor, settings: Settings
) -> None:
    """A rota sent as a sheet with the caption /duty: every row checked, all or nothing."""
    document = message.document
    assert document is not None
    await rota.editable_centre(actor.session, actor.who, actor.roles, actor.now)
    if (document.file_size or 0) > sheet.MAX_SHEET_BYTES:
        raise InvalidInput(sheet.TOO_LARGE, limit=sheet.MAX_SHEET_BYTES // 1024)
    downloaded = await bot.download(document)
    data = downloaded.read() if downloaded is not None else b""
    report = await sheet.import_rota(
        actor.session, actor.who, actor.roles, data, actor.now, tz=settings.tz
    )
    reply.text(views.import_text(report, actor.locale))


async def duty_pressed(
    query: CallbackQuery, callback_data: DutyCb, reply: Replier, actor: Actor, settings: Settings
) -> None:
    if callback_data.action is DutyAction.SWAP:
        people = await swaps.colleagues(actor.session, actor.who, callback_data.shift, actor.now)
        await query.answer()
        if not people:
            reply.show(pressed(query), esc(_("There is no other operator to take it.")))
            return
        reply.show(
            pressed(query),
            esc(_("Who should take this shift? They will be asked first.")),
            views.colleagues_keyboard(callback_data.shift, people),
        )
        return
    facts = await swaps.ask_swap(
        actor.session,
        actor.who,
        actor.roles,
        callback_data.shift,
        callback_data.person,
        actor.now,
    )
    views.swap_request(actor.session, facts, settings, actor.now)
    await query.answer()
    text = _("Asked {name}; the shift is yours until they agree.").format(
        name=esc(facts.colleague.name)
    )
    reply.show(pressed(query), text)


async def swap_answered(
    query: CallbackQuery,
    callback_data: DutySwapCb,
    reply: Replier,
    actor: Actor,
    settings: Settings,
) -> None:
    agree = callback_data.answer is DutyAnswer.AGREE
    facts = await swaps.answer_swap(actor.session, actor.who, callback_data.swap, agree, actor.now)
    tz = settings.tz
    times = {
        "start": views.local(facts.shift.starts_at, tz),
        "end": views.local(facts.shift.ends_at, tz),
    }
    message = views.SWAP_AGREED if agree else views.SWAP_DECLINED
    told = {"name": actor.who.name, **times}
    views.tell(actor.session, facts.asker, settings, actor.now, message, told)
    await query.answer()
    if agree:
        text = _("The shift from {start} to {end} is yours now.").format(**times)
    else:
        text = _("You said no; {name} keeps the shift.").format(name=esc(facts.asker.name))
    reply.show(pressed(query), text)


def build_router() -> Router:
    router = Router(name=__name__)
    # a sheet first: its caption "/duty" would match the command too
    router.message.register(rota_sheet, F.document, F.caption.regexp(CAPTION))
    router.message.register(duty_command, Command("duty"))
    router.callback_query.register(duty_pressed, DutyCb.filter())
    router.callback_query.register(swap_answered, DutySwapCb.filter())
    return router
