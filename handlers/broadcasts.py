"""/broadcast (宣传通知 / 应急通知): a head, centre operator or admin writes a notice, chooses
its audience, previews it and sends it; recipients of an emergency one tap "收到".

    /broadcast [grid] → the notice (text, photo or file) → the draft card:
    audience buttons · 🚨 emergency on/off · 👁 preview · ✅ send / ✖ cancel
    → a progress message, edited as the broadcast goes out

The draft is a database row from the moment it is written, so its buttons work after a
restart; every press is checked again by the service (only its sender, only in their scope).
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from bot.background import BackgroundWork
from bot.clock import Clock
from bot.errors import NotFound
from bot.services import broadcast_delivery, broadcasts, grids
from bot.services.actor import Actor
from bot.services.broadcasts import Notice
from bot.settings import Settings
from bot.telegram.broadcast_views import (
    ASK_NOTICE,
    draft_keyboard,
    draft_text,
    receipt_markup,
)
from bot.telegram.callbacks import BroadcastAudienceCb, BroadcastCb, BroadcastStep, ReceiptCb
from bot.telegram.i18n import t
from bot.telegram.render import esc
from bot.telegram.replies import Replier, pressed
from models import Broadcast, Grid


class Compose(StatesGroup):
    notice = State()  # waiting for the notice's text, photo or file


async def broadcast_command(
    message: Message,
    command: CommandObject,
    reply: Replier,
    actor: Actor,
    state: FSMContext,
) -> None:
    named = await grids.find_grid(actor.session, command.args) if command.args else None
    grid = await broadcasts.broadcast_grid(actor.session, actor.who, actor.roles, named, actor.now)
    await state.set_state(Compose.notice)
    await state.update_data(grid_id=grid.id)
    reply.text(t(ASK_NOTICE, grid=esc(grid.name)))


async def notice_written(
    message: Message, reply: Replier, actor: Actor, state: FSMContext, settings: Settings
) -> None:
    """The notice: text, or a photo (the largest size) or a file, its caption the text."""
    data = await state.get_data()
    grid = await actor.session.get(Grid, int(data.get("grid_id") or 0))
    if grid is None:
        await state.clear()
        raise NotFound()
    photo = message.photo[-1].file_id if message.photo else None
    document = message.document.file_id if message.document and not photo else None
    notice = Notice(message.text or message.caption or "", photo, document)
    draft = await broadcasts.create_draft(
        actor.session, actor.who, actor.roles, grid, notice, actor.now, settings
    )
    await state.clear()
    await _show(reply, actor, draft, grid, settings, None)


async def _show(
    reply: Replier,
    actor: Actor,
    draft: Broadcast,
    grid: Grid,
    settings: Settings,
    message_id: int | None,
) -> None:
    audience = await broadcasts.audience_of(actor.session, draft.audience)
    reach = await broadcasts.reach(actor.session, audience, grid.path)
    choices = await broadcasts.audiences_for(actor.session, actor.roles, grid)
    quiet = settings.quiet_hours
    text = draft_text(
        draft,
        grid,
        audience,
        reach,
        (quiet.start.strftime("%H:%M"), quiet.end.strftime("%H:%M")),
        draft.confirm_minutes,
    )
    if message_id is not None:
        reply.edit(message_id, text, draft_keyboard(draft, choices))
    else:  # the card becomes the progress message once the broadcast is sent
        reply.text(
            text,
            draft_keyboard(draft, choices),
            ref=broadcast_delivery.progress_ref(draft.id or 0),
        )


async def audience_pressed(
    query: CallbackQuery,
    callback_data: BroadcastAudienceCb,
    reply: Replier,
    actor: Actor,
    settings: Settings,
) -> None:
    draft, grid = await broadcasts.set_audience(
        actor.session, actor.who, actor.roles, callback_data.id, callback_data.audience, actor.now
    )
    await query.answer()
    await _show(reply, actor, draft, grid, settings, pressed(query))


async def step_pressed(
    query: CallbackQuery,
    callback_data: BroadcastCb,
    reply: Replier,
    actor: Actor,
    settings: Settings,
) -> None:
    """🚨 on/off, 👁 preview, ✖ cancel."""
    step, ident = callback_data.step, callback_data.id
    session, who, roles, now = actor.session, actor.who, actor.roles, actor.now
    if step == BroadcastStep.EMERGENCY:
        draft, grid = await broadcasts.toggle_emergency(session, who, roles, ident, now)
        await query.answer()
        await _show(reply, actor, draft, grid, settings, pressed(query))
    elif step == BroadcastStep.PREVIEW:
        draft, grid = await broadcasts.own_draft(session, who, roles, ident, now)
        await query.answer()
        reply.text(_("Preview — this is how it will look:"))
        broadcast_delivery.preview(session, draft, grid, who, reply.chat_id, actor.locale, now)
    else:
        await broadcasts.cancel(session, who, roles, ident, now)
        await query.answer(_("Cancelled."))
        reply.show(pressed(query), _("The broadcast draft was cancelled."))


async def send_pressed(
    query: CallbackQuery,
    callback_data: BroadcastCb,
    actor: Actor,
    settings: Settings,
    work: BackgroundWork,
    clock: Clock,
) -> None:
    """✅ send: checked here (refused at once, in the person's language), then started in the
    background in a transaction of its own — the draft card turns into the progress message
    — written out in rounds and followed until done."""
    await broadcasts.check_start(
        actor.session, actor.who, actor.roles, callback_data.id, actor.now
    )
    await query.answer(_("Sending."))
    start = broadcast_delivery.Start(actor.who.id or 0, tuple(actor.roles), callback_data.id)
    work.start(
        f"broadcast-{callback_data.id}",
        lambda: broadcast_delivery.start_and_run(
            work.sessions, clock, settings, start, receipt_markup, work.wake_outbox
        ),
    )


async def receipt_pressed(
    query: CallbackQuery, callback_data: ReceiptCb, reply: Replier, actor: Actor
) -> None:
    """ "收到": recorded once; the button goes."""
    await broadcasts.confirm_receipt(actor.session, actor.who, callback_data.id, actor.now)
    await query.answer(_("Thank you, your confirmation is recorded."))
    message_id = pressed(query)
    if message_id is not None:
        reply.drop_buttons(message_id)


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(broadcast_command, Command("broadcast"))
    router.message.register(
        notice_written, StateFilter(Compose.notice), F.text, ~F.text.startswith("/")
    )
    router.message.register(notice_written, StateFilter(Compose.notice), F.photo | F.document)
    router.callback_query.register(audience_pressed, BroadcastAudienceCb.filter())
    router.callback_query.register(send_pressed, BroadcastCb.filter(F.step == BroadcastStep.SEND))
    router.callback_query.register(step_pressed, BroadcastCb.filter())
    router.callback_query.register(receipt_pressed, ReceiptCb.filter())
    return router
