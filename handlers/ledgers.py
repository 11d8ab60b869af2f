"""Ledgers (台账) in the chat: import by sending a file, /template, /export."""

from __future__ import annotations

import contextlib
from datetime import datetime

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.i18n import N_, gettext_for
from bot.services import exports, imports
from bot.services.errors import InvalidInput, NotAllowed
from bot.services.people import RoleInGrid
from bot.telegram.args import split_args
from bot.telegram.render import bold, esc
from bot.telegram.replies import Replier
from models import Person, Role

MAX_FILE_BYTES = 20 * 1024 * 1024  # what a bot may download
SHOWN_ERRORS = 30
PEOPLE_WORDS = {"people", "person", "staff", "人员", "人員"}
USAGE = N_(
    "How to use: /template households or /template people gives an empty sheet; "
    "send it back filled in (caption “people” for the people list); "
    "/export households [grid] or /export people [grid] gives the ledger."
)


def _which(text: str | None) -> str:
    words = {w.lower() for w in split_args(text)}
    return "people" if words & PEOPLE_WORDS else "households"


async def template_command(
    message: Message, command: CommandObject, reply: Replier, i18n: I18n
) -> None:
    locale = i18n.current_locale

    def translate(msgid: str) -> str:
        return gettext_for(locale, msgid)

    if not command.args:
        reply.text(esc(_(USAGE)))
        return
    if _which(command.args) == "people":
        reply.upload("sendDocument", "document", imports.people_template(translate), "people.xlsx")
    else:
        reply.upload(
            "sendDocument", "document", imports.household_template(translate), "households.xlsx"
        )


async def export_command(
    message: Message,
    command: CommandObject,
    reply: Replier,
    person: Person,
    roles: list[RoleInGrid],
    session: AsyncSession,
    now: datetime,
    i18n: I18n,
) -> None:
    words = split_args(command.args, 1)
    if not words:
        reply.text(esc(_(USAGE)))
        return
    locale = i18n.current_locale

    def translate(msgid: str) -> str:
        return gettext_for(locale, msgid)

    grid_code = words[1] if len(words) > 1 else None
    stamp = now.strftime("%Y%m%d")
    if _which(words[0]) == "people":
        data = await exports.export_people(
            session, person, roles, now=now, translate=translate, grid_code=grid_code
        )
        name = f"people-{stamp}.xlsx"
    else:
        data = await exports.export_households(
            session, person, roles, now=now, translate=translate, grid_code=grid_code
        )
        name = f"households-{stamp}.xlsx"
    reply.upload(
        "sendDocument",
        "document",
        data,
        name,
        caption=esc(_("Ledger as of {day}.").format(day=stamp)),
    )


async def ledger_file(
    message: Message,
    bot: Bot,
    reply: Replier,
    person: Person,
    roles: list[RoleInGrid],
    session: AsyncSession,
    now: datetime,
    i18n: I18n,
) -> None:
    """An admin sends a filled-in sheet: all rows are checked, and all or nothing imported.

    The progress message is sent and edited directly, not through the outbox: it is a
    passing display while the import holds the update's transaction, not a record.
    """
    document = message.document
    assert document is not None
    if not any(r.role == Role.ADMIN for r in roles):
        raise NotAllowed(N_("Only an administrator can import households and people."))
    if (document.file_size or 0) > MAX_FILE_BYTES:
        reply.text(_("The file is larger than 20 MB. Please split it into smaller files."))
        return
    chat_id = message.chat.id
    status = await bot.send_message(chat_id, _("Reading the file…"))

    async def show(text: str) -> None:
        with contextlib.suppress(TelegramAPIError):  # a progress line is not worth failing for
            await bot.edit_message_text(
                text, chat_id=chat_id, message_id=status.message_id, parse_mode="HTML"
            )

    async def progress(done: int, total: int) -> None:
        await show(_("Checked {done} of {total} rows…").format(done=done, total=total))

    downloaded = await bot.download(document)
    data = downloaded.read() if downloaded is not None else b""
    which = _which(message.caption)
    run = imports.import_people if which == "people" else imports.import_households
    try:
        report = await run(session, person, roles, data, now=now, progress=progress)
    except InvalidInput as problem:  # the file as a whole cannot be used
        await show(esc(_(problem.message).format(**problem.params)))
        return
    if report.ok:
        await show(
            _("Imported: {created} new, {updated} updated, {unchanged} unchanged.").format(
                created=report.created, updated=report.updated, unchanged=report.unchanged
            )
        )
        return
    locale = i18n.current_locale
    lines = [
        bold(
            _("Nothing was imported: {count} rows need fixing.").format(count=len(report.bad_rows))
        )
    ]
    lines += [esc(error.render(locale)) for error in report.errors[:SHOWN_ERRORS]]
    if len(report.errors) > SHOWN_ERRORS:
        lines.append(_("…and {count} more.").format(count=len(report.errors) - SHOWN_ERRORS))
    text = "\n".join(lines)
    await show(text[:4000])


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(template_command, Command("template"))
    router.message.register(export_command, Command("export"))
    router.message.register(
        ledger_file,
        F.document.file_name.lower().endswith((".csv", ".xlsx", ".txt")),
    )
    return router
