"""Ledgers (台账) in the chat: import by sending a file, /template, /export."""

from __future__ import annotations

import asyncio
import logging
import unicodedata
from functools import partial

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.background import BackgroundWork
from bot.errors import InvalidInput, NotAllowed
from bot.i18n import N_, gettext_for
from bot.services import (
    departments,
    exports,
    grids,
    imports,
    member_export,
    member_import,
    members,
    period_ledgers,
)
from bot.services.actor import Actor
from bot.services.message_size import MAX_MESSAGE, cut_to_fit, visible_length
from bot.services.periods import local_day
from bot.services.permissions import Action
from bot.services.spans import Span, grid_and_span, parse_span
from bot.services.tabular import Sheet, write_workbook
from bot.settings import Settings
from bot.telegram.admin_views import (
    TEMPLATE_LABELS,
    export_keyboard,
    grid_picker_keyboard,
    grid_picker_text,
    ledger_keyboard,
    span_keyboard,
)
from bot.telegram.args import split_args
from bot.telegram.callbacks import (
    PERIOD_LEDGERS,
    ExportCb,
    ExportGridCb,
    ExportPeriodCb,
    Ledger,
    PickStep,
    SpanChoice,
    TemplateCb,
)
from bot.telegram.render import bold, esc
from bot.telegram.replies import Replier
from models import Grid, Role

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 20 * 1024 * 1024  # what a bot may download
SHOWN_ERRORS = 30
PEOPLE_WORDS = {"people", "person", "staff", "人员", "人員"}
MEMBER_WORDS = {"residents", "members", "人口", "居民", "成员", "成員", "家庭成员", "家庭成員"}
DEPARTMENT_WORDS = {"departments", "department", "部门", "部門", "职能部门", "職能部門"}
LEDGER_WORDS: dict[Ledger, frozenset[str]] = {
    Ledger.HOUSEHOLDS: frozenset({"households", "household", "住户", "住戶", "户", "戶"}),
    Ledger.PEOPLE: frozenset(PEOPLE_WORDS),
    Ledger.MEMBERS: frozenset(MEMBER_WORDS),
    Ledger.TICKETS: frozenset({"tickets", "ticket", "工单", "工單", "事件", "诉求", "訴求"}),
    Ledger.VISITS: frozenset({"visits", "visit", "走访", "走訪", "民情日记", "民情日記"}),
    Ledger.MEETINGS: frozenset({"meetings", "meeting", "例会", "例會", "会议", "會議"}),
}
UNKNOWN_LEDGER = N_(
    "There is no ledger called “{value}”. Write households, people, residents, tickets, "
    "visits or meetings (住户、人员、人口、工单、走访、例会)."
)
PERIOD_EXPORTS = {
    Ledger.TICKETS: (period_ledgers.export_tickets, "tickets"),
    Ledger.VISITS: (period_ledgers.export_visits, "visits"),
    Ledger.MEETINGS: (period_ledgers.export_meetings, "meetings"),
}


def _ledger_named(word: str) -> Ledger:
    """The ledger a word after /export names; anything else is refused (never a guess)."""
    folded = unicodedata.normalize("NFKC", word).strip().lower()
    for ledger, words in LEDGER_WORDS.items():
        if folded in words:
            return ledger
    shown = "".join(ch for ch in word if ch.isprintable())[:30]
    raise InvalidInput(UNKNOWN_LEDGER, value=shown)


def _which(text: str | None) -> Ledger:
    words = {w.lower() for w in split_args(text)}
    if words & MEMBER_WORDS:
        return Ledger.MEMBERS
    return Ledger.PEOPLE if words & PEOPLE_WORDS else Ledger.HOUSEHOLDS


async def template_command(
    message: Message, command: CommandObject, reply: Replier, i18n: I18n
) -> None:
    """``/template``: a button per empty sheet; ``/template people`` (人员) sends it at once."""
    if not command.args:
        reply.text(
            esc(_("Which empty sheet do you need?")),
            ledger_keyboard(TEMPLATE_LABELS, lambda ledger: TemplateCb(ledger=ledger)),
        )
        return
    _send_template(reply, i18n.current_locale, _which(command.args))


async def template_pressed(
    query: CallbackQuery, callback_data: TemplateCb, reply: Replier, i18n: I18n
) -> None:
    await query.answer()
    _send_template(reply, i18n.current_locale, callback_data.ledger)


def _send_template(reply: Replier, locale: str, ledger: Ledger) -> None:
    def translate(msgid: str) -> str:
        return gettext_for(locale, msgid)

    caption = esc(
        _(
            "Fill it in and send it back to me. For the people sheet, write “people” as the "
            "caption when you send it; for the residents sheet, “residents”."
        )
    )
    if ledger == Ledger.PEOPLE:
        data, name = imports.people_template(translate), "people.xlsx"
    elif ledger == Ledger.MEMBERS:
        data, name = member_import.member_template(translate), "residents.xlsx"
    else:
        data, name = imports.household_template(translate), "households.xlsx"
    reply.upload("sendDocument", "document", data, name, caption=caption)


async def export_command(
    message: Message,
    command: CommandObject,
    reply: Replier,
    actor: Actor,
    work: BackgroundWork,
    settings: Settings,
) -> None:
    """``/export``: a button per ledger this person may export; ``/export households|people
    [grid]`` (住户 / 人员) starts it at once, and ``/export tickets|visits|meetings [grid]
    [period]`` (工单 / 走访 / 例会; this month unless a period is given) too."""
    words = split_args(command.args, 1)
    if not words:
        person = actor.person
        assert person is not None
        await exports.check_scope(actor.session, person, actor.roles, None, actor.now)
        reply.text(
            esc(_("Which ledger? It covers every grid you look after."))
            + "\n"
            + esc(_("To export one grid only, type /export people (or households) and its code."))
            + "\n"
            + esc(
                _(
                    "Tickets, visits and meetings go by period: /export visits 上月, "
                    "/export tickets 2026Q3, /export meetings 2026-10-01 2026-10-31."
                )
            ),
            export_keyboard(),
        )
        return
    ledger = _ledger_named(words[0])
    rest = words[1] if len(words) > 1 else None
    if ledger in PERIOD_LEDGERS:
        grid_code, span = grid_and_span(rest, local_day(actor.now, settings.tz))
        await _export(message.chat.id, ledger, grid_code, reply, actor, work, settings, span)
        return
    await _export(message.chat.id, ledger, rest, reply, actor, work, settings)


async def export_pressed(
    query: CallbackQuery,
    callback_data: ExportCb,
    reply: Replier,
    actor: Actor,
    work: BackgroundWork,
    settings: Settings,
) -> None:
    """A ledger's button: the same as typing ``/export`` and its name (a ledger of a period
    asks which period first)."""
    await exports.check_scope(actor.session, actor.who, actor.roles, None, actor.now)
    await query.answer()  # after the check: a refusal answers the press itself
    if callback_data.ledger in PERIOD_LEDGERS:
        _ask_span(query, reply, callback_data.ledger, 0)
        return
    chat_id = query.message.chat.id if query.message is not None else query.from_user.id
    await _export(chat_id, callback_data.ledger, None, reply, actor, work, settings)


async def export_grid_pressed(
    query: CallbackQuery,
    callback_data: ExportGridCb,
    reply: Replier,
    actor: Actor,
    work: BackgroundWork,
    settings: Settings,
) -> None:
    """📂 one grid: a level of one's own grids, or the grid chosen and its ledger started."""
    ledger = callback_data.ledger
    if callback_data.step == PickStep.OPEN:
        choices = await grids.grid_choices(
            actor.session,
            actor.who,
            actor.roles,
            Action.EXPORT,
            actor.now,
            parent_id=callback_data.grid,
            page=callback_data.page,
        )
        await query.answer()

        def pack(grid_id: int, page: int, step: PickStep) -> str:
            return ExportGridCb(ledger=ledger, grid=grid_id, page=page, step=step).pack()

        question = esc(grid_picker_text(_("Which grid's ledger?"), choices))
        keyboard = grid_picker_keyboard(choices, pack)
        if isinstance(query.message, Message):
            reply.edit(query.message.message_id, question, keyboard)
        else:
            reply.text(question, keyboard)
        return
    grid = await actor.session.get(Grid, callback_data.grid)
    if grid is None:
        await query.answer(_("This button is out of date. Send /start to begin again."))
        return
    await exports.check_scope(actor.session, actor.who, actor.roles, grid.code, actor.now)
    await query.answer()  # after the check: a refusal answers the press itself
    if ledger in PERIOD_LEDGERS:
        _ask_span(query, reply, ledger, grid.id or 0)
        return
    chat_id = query.message.chat.id if query.message is not None else query.from_user.id
    await _export(chat_id, ledger, grid.code, reply, actor, work, settings)


def _ask_span(query: CallbackQuery, reply: Replier, ledger: Ledger, grid_id: int) -> None:
    question = esc(_("Which period? (Or type it: /export visits 2026-10)"))
    if isinstance(query.message, Message):
        reply.edit(query.message.message_id, question, span_keyboard(ledger, grid_id))
    else:
        reply.text(question, span_keyboard(ledger, grid_id))


SPAN_WORDS = {
    SpanChoice.THIS_MONTH: "this month",
    SpanChoice.LAST_MONTH: "last month",
    SpanChoice.THIS_QUARTER: "this quarter",
    SpanChoice.LAST_QUARTER: "last quarter",
}


async def export_period_pressed(
    query: CallbackQuery,
    callback_data: ExportPeriodCb,
    reply: Replier,
    actor: Actor,
    work: BackgroundWork,
    settings: Settings,
) -> None:
    """A period's button: that ledger of that period, over one's grids or the grid chosen."""
    if callback_data.ledger not in PERIOD_LEDGERS:
        await query.answer(_("This button is out of date. Send /start to begin again."))
        return
    grid_code = None
    if callback_data.grid:
        grid = await actor.session.get(Grid, callback_data.grid)
        if grid is None:
            await query.answer(_("This button is out of date. Send /start to begin again."))
            return
        grid_code = grid.code
    await exports.check_scope(actor.session, actor.who, actor.roles, grid_code, actor.now)
    span = parse_span(SPAN_WORDS[callback_data.span], local_day(actor.now, settings.tz))
    await query.answer()
    chat_id = query.message.chat.id if query.message is not None else query.from_user.id
    await _export(chat_id, callback_data.ledger, grid_code, reply, actor, work, settings, span)


async def _export(
    chat_id: int,
    ledger: Ledger,
    grid_code: str | None,
    reply: Replier,
    actor: Actor,
    work: BackgroundWork,
    settings: Settings,
    span: Span | None = None,
) -> None:
    """Refused at once if out of scope, else built in the background (no write lock held
    meanwhile) and sent when ready. A ledger of a period (``span``) says which in its name
    and caption."""
    person = actor.person
    assert person is not None
    await exports.check_scope(actor.session, person, actor.roles, grid_code, actor.now)
    reply.text(_("Preparing the ledger; it will be sent here in a moment."))
    file_name = {Ledger.MEMBERS: "residents", Ledger.PEOPLE: "people"}.get(ledger, "households")
    translate = partial(gettext_for, actor.locale)

    async def build(reading: AsyncSession, writing: AsyncSession) -> bytes:
        if ledger in PERIOD_EXPORTS:
            assert span is not None
            return await PERIOD_EXPORTS[ledger][0](
                reading,
                person,
                actor.roles,
                span=span,
                tz=settings.tz,
                now=actor.now,
                translate=translate,
                grid_code=grid_code,
                audit_into=writing,
            )
        export: exports.Exporter
        if ledger == Ledger.MEMBERS:
            vault = members.optional_vault(settings.people)
            export = partial(member_export.export_members, vault=vault)
        elif ledger == Ledger.PEOPLE:
            export = exports.export_people
        else:
            export = exports.export_households
        return await export(
            reading,
            person,
            actor.roles,
            now=actor.now,
            translate=translate,
            grid_code=grid_code,
            audit_into=writing,
        )

    async def send_ledger() -> None:
        stamp = actor.now.strftime("%Y%m%d")
        async with work.sessions() as writing:
            to_chat = Replier(writing, chat_id, actor.now, person.id, settings.outbox_files)
            try:
                async with work.readers() as reading:
                    data = await build(reading, writing)
            except Exception:
                log.exception("the %s ledger for chat %s failed", ledger.name, chat_id)
                writing.expunge_all()  # not the audit of an export that was never sent
                to_chat.text(_("Sorry, the ledger could not be made. Please try again later."))
            else:
                if ledger in PERIOD_EXPORTS and span is not None:
                    first, last = span.start.strftime("%Y%m%d"), span.last.strftime("%Y%m%d")
                    name = f"{PERIOD_EXPORTS[ledger][1]}-{first}-{last}.xlsx"
                    caption = esc(_("Ledger of {span}.").format(span=span.label()))
                else:
                    name = f"{file_name}-{stamp}.xlsx"
                    caption = esc(_("Ledger as of {day}.").format(day=stamp))
                to_chat.upload("sendDocument", "document", data, name, caption=caption)
            await writing.commit()

    work.start(f"export-{chat_id}", send_ledger)


async def ledger_file(
    message: Message,
    bot: Bot,
    reply: Replier,
    actor: Actor,
    work: BackgroundWork,
    settings: Settings,
) -> None:
    """An admin sends a filled-in sheet: all rows are checked, and all or nothing imported.

    It runs in the background, outside the update's transaction: the download and the parse
    (in a thread) hold no lock, and only the check and the write are one transaction. The
    progress message is sent and edited directly, not through the outbox: it is a passing
    display while the import runs, not a record.
    """
    document = message.document
    assert document is not None
    person = actor.person
    assert person is not None
    if not any(r.role == Role.ADMIN for r in actor.roles):
        raise NotAllowed(N_("Only an administrator can import households and people."))
    if (document.file_size or 0) > MAX_FILE_BYTES:
        reply.text(_("The file is larger than 20 MB. Please split it into smaller files."))
        return
    chat_id = message.chat.id
    ledger = _which(message.caption)
    run: imports.Importer
    if ledger == Ledger.MEMBERS:
        run = partial(member_import.import_members, vault=members.vault_of(settings.people))
    elif ledger == Ledger.PEOPLE:
        run = imports.import_people
    else:
        run = imports.import_households
    if {w.lower() for w in split_args(message.caption)} & DEPARTMENT_WORDS:
        run = departments.import_departments  # a sheet of departments (职能部门)

    async def import_file() -> None:
        status = await bot.send_message(chat_id, _("Reading the file…"))

        async def show(text: str, *, final: bool = True) -> None:
            """Edit the status message; the final word is sent anew if the edit fails."""
            try:
                await bot.edit_message_text(
                    text, chat_id=chat_id, message_id=status.message_id, parse_mode="HTML"
                )
            except TelegramAPIError as error:
                log.warning("import status for chat %s not edited: %s", chat_id, error)
                if final:
                    await bot.send_message(chat_id, text, parse_mode="HTML")

        async def progress(done: int, total: int) -> None:
            text = _("Checked {done} of {total} rows…").format(done=done, total=total)
            await show(text, final=False)  # a progress line is not worth failing for

        downloaded = await bot.download(document)
        data = downloaded.read() if downloaded is not None else b""
        async with work.sessions() as session:
            try:
                report = await run(
                    session, person, actor.roles, data, now=actor.now, progress=progress
                )
            except InvalidInput as problem:  # the file as a whole cannot be used
                await show(esc(_(problem.message).format(**problem.params)))
                return
            except Exception:
                log.exception("importing a file for chat %s failed", chat_id)
                await show(_("Sorry, the file could not be imported. Please try again later."))
                return
            if report.ok:
                await session.commit()
        text = _import_result(report, actor.locale)
        if not report.ok and (
            len(report.errors) > SHOWN_ERRORS or visible_length(text, "HTML") > MAX_MESSAGE
        ):
            async with work.sessions() as session:
                to_chat = Replier(session, chat_id, actor.now, person.id, settings.outbox_files)
                to_chat.upload(
                    "sendDocument",
                    "document",
                    await asyncio.to_thread(_errors_workbook, report, actor.locale),
                    "rows-to-fix.xlsx",
                    caption=esc(_("Every row to fix, and what is wrong with it.")),
                )
                await session.commit()
            text = cut_to_fit(text, "HTML", MAX_MESSAGE)
        await show(text)

    work.start(f"import-{chat_id}", import_file)


def _import_result(report: imports.ImportReport, locale: str) -> str:
    if report.ok:
        return _("Imported: {created} new, {updated} updated, {unchanged} unchanged.").format(
            created=report.created, updated=report.updated, unchanged=report.unchanged
        )
    lines = [
        bold(
            _("Nothing was imported: {count} rows need fixing.").format(count=len(report.bad_rows))
        )
    ]
    lines += [esc(error.render(locale)) for error in report.errors[:SHOWN_ERRORS]]
    if len(report.errors) > SHOWN_ERRORS:
        lines.append(_("…and {count} more.").format(count=len(report.errors) - SHOWN_ERRORS))
    return "\n".join(lines)


def _errors_workbook(report: imports.ImportReport, locale: str) -> bytes:
    """Every bad cell of an import, one a row: the row, the column, what is wrong."""
    headers = [N_("Row"), N_("Column"), N_("What is wrong")]
    return write_workbook(
        [
            Sheet(
                title=gettext_for(locale, N_("Rows to fix")),
                headers=[gettext_for(locale, h) for h in headers],
                rows=(
                    [e.row, e.column, gettext_for(locale, e.reason, **e.params)]
                    for e in report.errors
                ),
                widths=[8, 20, 60],
            )
        ]
    )


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(template_command, Command("template"))
    router.message.register(export_command, Command("export"))
    router.callback_query.register(template_pressed, TemplateCb.filter())
    router.callback_query.register(export_pressed, ExportCb.filter())
    router.callback_query.register(export_grid_pressed, ExportGridCb.filter())
    router.callback_query.register(export_period_pressed, ExportPeriodCb.filter())
    router.message.register(
        ledger_file,
        F.document.file_name.lower().endswith((".csv", ".xlsx", ".txt")),
    )
    return router
