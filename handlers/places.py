"""The register of places (场所): ``/places`` (the place types and their cadences),
``/places file`` (admins: the place-types file to edit), ``/places template``,
``/places export [grid]``, and a file sent back with the caption ``/places``: a ``.json``
place-types file, or a CSV/XLSX list of places to import (all or nothing)."""

from __future__ import annotations

import json
from functools import partial

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from bot.errors import NotAllowed
from bot.i18n import N_, gettext_for
from bot.services import place_policy, places
from bot.services.actor import Actor
from bot.services.imports import ImportReport
from bot.services.message_size import split_message
from bot.telegram.args import FILE_WORDS, split_args
from bot.telegram.render import bold, esc
from bot.telegram.replies import Replier
from models import Role

MAX_FILE_BYTES = 20 * 1024 * 1024
SHOWN_ERRORS = 30
PLACES_WORDS: dict[str, str] = {
    **{word: "file" for word in FILE_WORDS},
    "template": "template",
    "模板": "template",
    "范本": "template",
    "範本": "template",
    "export": "export",
    "导出": "export",
    "導出": "export",
    "匯出": "export",
}
INSPECTOR = {
    "worker": N_("grid worker"),
    "head": N_("grid head"),
    "center": N_("centre"),
    "department": N_("department"),
}


def _is_admin(actor: Actor) -> bool:
    return any(r.role == Role.ADMIN for r in actor.roles)


def policy_text(policy: place_policy.PlacePolicy) -> str:
    """The place types, their cadences and checklist sizes, for ``/places``."""
    lines = [bold(_("Place types and how often they are inspected"))]
    for place_type in policy.types:
        cadences = "；".join(
            _("{who}: {times} every {days} days").format(
                who=_(INSPECTOR[c.by]), times=c.times, days=c.days
            )
            for c in place_type.cadence
        )
        lines.append(
            "• "
            + bold(place_type.name)
            + esc(
                " — "
                + cadences
                + " — "
                + _("{count} checklist items").format(count=len(place_type.checklist))
            )
        )
    lines.append(
        esc(
            _("Fix within: minor {minor} days, major {major} days, grave {grave} days.").format(
                **policy.fix_days
            )
        )
    )
    lines.append(
        esc(
            _(
                "/places template — an empty place list; /places export — the place ledger; "
                "/places file — the place-types file to edit (administrators)."
            )
        )
    )
    return "\n".join(lines)


async def places_command(
    message: Message, command: CommandObject, reply: Replier, actor: Actor
) -> None:
    words = split_args(command.args, 1)
    action = PLACES_WORDS.get(words[0].lower()) if words else None
    policy = await place_policy.current_policy(actor.session)
    if action == "file":
        if not _is_admin(actor):
            raise NotAllowed(N_("Only an administrator can change the place types."))
        body = json.dumps(place_policy.policy_to_json(policy), ensure_ascii=False, indent=2)
        reply.upload(
            "sendDocument",
            "document",
            body.encode("utf-8"),
            "gridbot-place-types.json",
            caption=esc(_("Edit this file, then send it back with the caption /places.")),
        )
        return
    translate = partial(gettext_for, actor.locale)
    if action == "template":
        reply.upload(
            "sendDocument",
            "document",
            places.place_template(policy, translate),
            "places.xlsx",
            caption=esc(_("Fill it in and send it back with the caption /places.")),
        )
        return
    if action == "export":
        data = await places.export_places(
            actor.session,
            actor.who,
            actor.roles,
            now=actor.now,
            translate=translate,
            grid_code=words[1] if len(words) > 1 else None,
        )
        stamp = actor.now.strftime("%Y%m%d")
        reply.upload(
            "sendDocument",
            "document",
            data,
            f"places-{stamp}.xlsx",
            caption=esc(_("Ledger as of {day}.").format(day=stamp)),
        )
        return
    for part in split_message(policy_text(policy)):
        reply.text(part)


async def places_file(message: Message, bot: Bot, reply: Replier, actor: Actor) -> None:
    """A file with the caption ``/places``: place types (JSON) or places (CSV, XLSX)."""
    document = message.document
    assert document is not None
    if not _is_admin(actor):
        raise NotAllowed(N_("Only an administrator can import places or change place types."))
    if (document.file_size or 0) > MAX_FILE_BYTES:
        reply.text(_("The file is larger than 20 MB. Please split it into smaller files."))
        return
    name = (document.file_name or "").lower()
    is_policy = name.endswith(".json")
    if is_policy and (document.file_size or 0) > place_policy.MAX_POLICY_BYTES:
        reply.text(_("That file is too large for a place-types file."))
        return
    downloaded = await bot.download(document)
    raw = downloaded.read() if downloaded is not None else b""
    if is_policy:
        policy = await place_policy.set_policy(
            actor.session, actor=actor.who, roles=actor.roles, raw=raw, now=actor.now
        )
        reply.text(esc(_("New place types saved.")))
        for part in split_message(policy_text(policy)):
            reply.text(part)
        return
    report = await places.import_places(actor.session, actor.who, actor.roles, raw, now=actor.now)
    for part in split_message(import_result(report, actor.locale)):
        reply.text(part)


def import_result(report: ImportReport, locale: str) -> str:
    if report.ok:
        return esc(
            _("Places imported: {created} new, {updated} updated, {unchanged} unchanged.").format(
                created=report.created, updated=report.updated, unchanged=report.unchanged
            )
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


def build_router() -> Router:
    router = Router(name=__name__)
    # a file comes with the caption /places, which the Command filter would also match
    router.message.register(places_file, F.document, F.caption.startswith("/places"))
    router.message.register(places_command, Command("places"))
    return router
