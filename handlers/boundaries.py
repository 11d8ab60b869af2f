"""Grid boundaries (网格边界) in the chat: an admin sends a GeoJSON file, all or nothing."""

from __future__ import annotations

import logging

from aiogram import Bot, F, Router
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from bot.background import BackgroundWork
from bot.errors import InvalidInput, NotAllowed
from bot.i18n import N_, gettext_for
from bot.services import boundaries
from bot.services.actor import Actor
from bot.settings import Settings
from bot.telegram.render import bold, esc
from bot.telegram.replies import Replier
from models import Role

log = logging.getLogger(__name__)

SHOWN_PROBLEMS = 30
SHOWN_MISSING = 30
EXTENSIONS = (".geojson", ".json")


async def boundary_file(
    message: Message,
    bot: Bot,
    reply: Replier,
    actor: Actor,
    work: BackgroundWork,
    settings: Settings,
) -> None:
    """Download, check and load in the background; the answer says what was loaded or every
    problem found (then nothing was)."""
    document = message.document
    assert document is not None
    person = actor.person
    assert person is not None
    if not any(r.role == Role.ADMIN for r in actor.roles):
        raise NotAllowed(boundaries.NOT_AN_ADMIN)
    if (document.file_size or 0) > boundaries.MAX_FILE_BYTES:
        limit = boundaries.MAX_FILE_BYTES // (1024 * 1024)
        reply.text(esc(_(boundaries.TOO_BIG).format(limit=limit)))
        return
    reply.text(_("Checking the grid boundaries…"))
    chat_id, locale = message.chat.id, actor.locale

    async def load() -> None:
        downloaded = await bot.download(document)
        data = downloaded.read() if downloaded is not None else b""
        async with work.sessions() as session:
            try:
                report = await boundaries.load_boundaries(
                    session, person, actor.roles, data, now=actor.now
                )
            except InvalidInput as problem:  # the file as a whole cannot be used
                await session.rollback()
                text = esc(gettext_for(locale, problem.message, **problem.params))
            except Exception:
                log.exception("loading boundaries for chat %s failed", chat_id)
                await session.rollback()
                text = _("Sorry, the boundaries could not be loaded. Please try again later.")
            else:
                if not report.ok:
                    await session.rollback()
                text = _report_text(report, locale)
            to_chat = Replier(session, chat_id, actor.now, person.id, settings.outbox_files)
            to_chat.text(text)
            await session.commit()

    work.start(f"boundaries-{chat_id}", load)


MORE = N_("…and {count} more.")


def _report_text(report: boundaries.BoundaryReport, locale: str) -> str:
    def t(message: str, **params: object) -> str:
        return gettext_for(locale, message, **params)

    if not report.ok:
        lines = [
            bold(
                t(
                    N_("Nothing was loaded: the file has {count} problems to fix."),
                    count=len(report.problems),
                )
            )
        ]
        lines += [esc(p.render(locale)) for p in report.problems[:SHOWN_PROBLEMS]]
        hidden = len(report.problems) - SHOWN_PROBLEMS
        if hidden > 0:
            lines.append(t(MORE, count=hidden))
        elif report.more_problems:
            lines.append(t(N_("The check stopped there; fix these and send the file again.")))
        return "\n".join(lines)
    lines = [
        "✅ "
        + t(
            N_("Grid boundaries loaded: {loaded} grids ({replaced} boundaries replaced)."),
            loaded=report.loaded,
            replaced=report.replaced,
        )
    ]
    if report.missing:
        codes = ", ".join(report.missing[:SHOWN_MISSING])
        lines += [
            "",
            t(
                N_("{count} lowest grids have no boundary yet: {codes}"),
                count=len(report.missing),
                codes=esc(codes),
            ),
        ]
        if len(report.missing) > SHOWN_MISSING:
            lines.append(t(MORE, count=len(report.missing) - SHOWN_MISSING))
        lines.append(
            t(
                N_(
                    "A report from there goes by its typed address or to the reporter's own "
                    "grid; a location outside every grid is shown to the street centre."
                )
            )
        )
    return "\n".join(lines)


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(
        boundary_file,
        F.document.file_name.lower().endswith(EXTENSIONS),
        ~F.caption.startswith("/"),  # "/sla" with a policy file is another matter
    )
    return router
