"""How the duty rota (值班) reads in a chat: /duty, the swap buttons, the answers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.i18n import N_, gettext_for, resolve_locale
from bot.services import outbox
from bot.services.duty.rota import DutyNow, Shift
from bot.services.duty.swaps import SwapFacts
from bot.services.imports import ImportReport
from bot.settings import Settings
from bot.telegram.callbacks import DutyAction, DutyAnswer, DutyCb, DutySwapCb
from bot.telegram.render import bold, code, esc
from bot.telegram.replies import markup_json
from models import Person

USAGE = N_(
    "/duty — who is on duty now and next\n"
    "/duty add <phone> <start> <end> — e.g. /duty add 13800000000 2026-12-08 08:00 "
    "2026-12-08 20:00\n"
    "/duty remove <shift number>\n"
    "Or send the rota as a sheet (CSV or XLSX: phone, name, start, end) with the caption /duty."
)
SWAP_ASK = N_(
    "🔁 {name} asks you to take their duty shift (值班) from {start} to {end}. Will you?"
)
SWAP_AGREED = N_("✅ {name} agreed: the shift from {start} to {end} is theirs now.")
SWAP_DECLINED = N_("{name} cannot take the shift from {start} to {end}.")


def local(moment: datetime, tz: tzinfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def shift_line(shift: Shift, tz: tzinfo) -> str:
    return (
        f"{code(shift.id)} {bold(shift.name)} "
        f"{esc(local(shift.starts_at, tz))} – {esc(local(shift.ends_at, tz))}"
    )


def duty_text(view: DutyNow, tz: tzinfo) -> str:
    lines = [bold(_("Duty rota (值班): {centre}").format(centre=esc(view.grid.name)))]
    if view.current is not None:
        lines.append(esc(_("On duty now:")) + " " + shift_line(view.current, tz))
    else:
        lines.append(esc(_("Nobody is on duty now: urgent tickets go to every operator.")))
    if view.upcoming:
        lines.append(esc(_("Next:")))
        lines.extend(shift_line(shift, tz) for shift in view.upcoming)
    if view.mine:
        lines.append("")
        lines.append(esc(_("Your shifts (tap one to hand it to a colleague):")))
        lines.extend(shift_line(shift, tz) for shift in view.mine)
    if view.may_edit:
        lines.append("")
        lines.append(esc(_(USAGE)))
    return "\n".join(lines)


def duty_keyboard(view: DutyNow, tz: tzinfo) -> InlineKeyboardMarkup | None:
    if not view.mine:
        return None
    rows = [
        [
            InlineKeyboardButton(
                text="🔁 " + local(shift.starts_at, tz),
                callback_data=DutyCb(action=DutyAction.SWAP, shift=shift.id).pack(),
            )
        ]
        for shift in view.mine
    ]
    return InlineKeyboardMarkup(inline_keyboard=rows)


def colleagues_keyboard(shift_id: int, people: Sequence[Person]) -> InlineKeyboardMarkup:
    buttons = [
        InlineKeyboardButton(
            text=person.name,
            callback_data=DutyCb(
                action=DutyAction.ASK, shift=shift_id, person=person.id or 0
            ).pack(),
        )
        for person in people[:98]
    ]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    return InlineKeyboardMarkup(inline_keyboard=rows)


def tell(
    session: AsyncSession,
    person: Person,
    settings: Settings,
    now: datetime,
    message: str,
    params: dict[str, str],
    keyboard: InlineKeyboardMarkup | None = None,
) -> None:
    """A message to someone other than the presser, in their own language."""
    if person.telegram_id is None or not person.reachable:
        return
    locale = resolve_locale(person.locale, person.telegram_language, settings.default_locale)
    outbox.send_text(
        session,
        chat_id=person.telegram_id,
        text=gettext_for(locale, message, **{k: esc(v) for k, v in params.items()}),
        now=now,
        reply_markup=markup_json(keyboard),
        person_id=person.id,
        urgent=True,
    )


def swap_request(
    session: AsyncSession, facts: SwapFacts, settings: Settings, now: datetime
) -> None:
    """Ask the colleague, with the two buttons, in their language."""
    colleague = facts.colleague
    locale = resolve_locale(colleague.locale, colleague.telegram_language, settings.default_locale)
    swap_id = facts.swap.id or 0
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=gettext_for(locale, N_("✅ Yes, I take it")),
                    callback_data=DutySwapCb(swap=swap_id, answer=DutyAnswer.AGREE).pack(),
                ),
                InlineKeyboardButton(
                    text=gettext_for(locale, N_("✖ I can't take it")),
                    callback_data=DutySwapCb(swap=swap_id, answer=DutyAnswer.DECLINE).pack(),
                ),
            ]
        ]
    )
    tell(
        session,
        colleague,
        settings,
        now,
        SWAP_ASK,
        {
            "name": facts.asker.name,
            "start": local(facts.shift.starts_at, settings.tz),
            "end": local(facts.shift.ends_at, settings.tz),
        },
        keyboard,
    )


def import_text(report: ImportReport, locale: str, shown: int = 20) -> str:
    if report.ok:
        return esc(_("The duty rota is saved: {count} shifts.").format(count=report.created))
    lines = [
        bold(_("Nothing was saved: {count} rows need fixing.").format(count=len(report.bad_rows)))
    ]
    lines += [esc(error.render(locale)) for error in report.errors[:shown]]
    if len(report.errors) > shown:
        lines.append(esc(_("…and {count} more.").format(count=len(report.errors) - shown)))
    return "\n".join(lines)
