"""Supervisors (督查) in the chat: /spotcheck draws a sample of a period's visits and closed
tickets to call back, each marked 属实 / 不属实 with a button. (Their read-only /tickets and
催办 are in :mod:`handlers.ticket_list` and :mod:`handlers.tickets`.)"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _

from bot import labels
from bot.services import spot_checks
from bot.services.actor import Actor
from bot.services.periods import local_day
from bot.services.spans import grid_and_span
from bot.settings import Settings
from bot.telegram.callbacks import SpotCheckCb
from bot.telegram.render import bold, esc
from bot.telegram.replies import Replier
from bot.telegram.ticket_views import local_time
from models import SpotCheckKind, SpotCheckResult


def _result_label(result: SpotCheckResult) -> str:
    if result == SpotCheckResult.CONFIRMED:
        return _("✅ Confirmed (属实)")
    return _("❌ False (不属实)")


def _item_text(item: spot_checks.SpotItem, index: int, count: int, settings: Settings) -> str:
    kind = _("visit") if item.check.kind == SpotCheckKind.VISIT else _("closed ticket")
    lines = [
        bold(
            _("Spot check {index} of {count}: {kind}").format(index=index, count=count, kind=kind)
        )
    ]
    lines.append(_("Grid: {grid}").format(grid=esc(item.grid_name)))
    lines.append(_("Worker: {name}").format(name=esc(item.worker_name or "—")))
    when = local_time(item.at, settings.tz)
    if item.visit_kind is not None:
        lines.append(
            _("Visited: {when} ({kind})").format(
                when=when, kind=esc(_(labels.VISIT_KIND[item.visit_kind]))
            )
        )
        lines.append(_("Household: {address}").format(address=esc(item.subject)))
    else:
        lines.append(_("Closed: {when}").format(when=when))
        lines.append(_("Ticket: {number}").format(number=esc(item.subject)))
    contact = " ".join(p for p in (item.contact_name, item.contact_phone) if p) or "—"
    lines.append(_("Call back: {contact}").format(contact=esc(contact)))
    if item.note:
        lines.append(_("Record: {note}").format(note=esc(item.note)))
    return "\n".join(lines)


def _keyboard(check_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=_result_label(result),
                    callback_data=SpotCheckCb(id=check_id, result=result).pack(),
                )
                for result in SpotCheckResult
            ]
        ]
    )


async def spotcheck_command(
    message: Message, command: CommandObject, reply: Replier, actor: Actor, settings: Settings
) -> None:
    """``/spotcheck [grid code] [period]``: this month's sample unless a period is given."""
    grid_code, span = grid_and_span(command.args, local_day(actor.now, settings.tz))
    items = await spot_checks.draw(
        actor.session,
        actor.who,
        actor.roles,
        span=span,
        tz=settings.tz,
        now=actor.now,
        grid_code=grid_code,
    )
    if not items:
        reply.text(
            _(
                "Nothing to spot-check in {span}: no visits or closed tickets not drawn before."
            ).format(span=span.label())
        )
        return
    visits = sum(1 for i in items if i.check.kind == SpotCheckKind.VISIT)
    reply.text(
        _(
            "Spot check (抽查) of {span}: {visits} visits and {tickets} closed tickets, drawn at "
            "random. Call each back and press what you found."
        ).format(span=span.label(), visits=visits, tickets=len(items) - visits)
    )
    for index, item in enumerate(items, start=1):
        reply.text(_item_text(item, index, len(items), settings), _keyboard(item.check.id or 0))


async def spotcheck_marked(
    query: CallbackQuery, callback_data: SpotCheckCb, reply: Replier, actor: Actor
) -> None:
    await spot_checks.mark(
        actor.session,
        actor.who,
        actor.roles,
        check_id=callback_data.id,
        result=callback_data.result,
        now=actor.now,
    )
    label = _result_label(callback_data.result)
    await query.answer(_("Recorded: {result}").format(result=label))
    if isinstance(query.message, Message):
        text = query.message.html_text if query.message.text else ""
        reply.edit(
            query.message.message_id,
            (text + "\n\n" if text else "")
            + bold(_("Result: {result}").format(result=esc(label))),
        )


async def spotcheck_forged(query: CallbackQuery) -> None:
    await query.answer(_("This button is out of date. Send /start to begin again."))


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(spotcheck_command, Command("spotcheck"))
    router.callback_query.register(spotcheck_marked, SpotCheckCb.filter())
    router.callback_query.register(
        spotcheck_forged, F.data.startswith(f"{SpotCheckCb.__prefix__}:")
    )
    return router
