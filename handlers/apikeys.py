"""/apikey for admins: the keys partner apps file Open311 reports with (:mod:`bot.open311`).

``/apikey`` lists the keys of the grids the admin runs, ``/apikey new <partner>`` issues one
(shown once: only its SHA-256 is kept), ``/apikey off <id>`` switches one off for good.
"""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from bot.i18n import N_
from bot.services import open311
from bot.services.actor import Actor
from bot.settings import Settings
from bot.telegram.render import bold, code, esc
from bot.telegram.replies import Replier
from bot.telegram.ticket_views import local_time

USAGE = N_(
    "Open311 keys for partner apps:\n/apikey — list the keys\n/apikey new <partner name> — "
    "issue a key\n/apikey off <number> — switch a key off"
)


async def apikey_command(
    message: Message, command: CommandObject, reply: Replier, actor: Actor, settings: Settings
) -> None:
    open311.admin_grids(actor.roles)  # refuses anyone else
    verb, _space, rest = (command.args or "").strip().partition(" ")
    if verb == "new" and rest.strip():
        key, secret = await open311.issue_key(
            actor.session, admin=actor.who, roles=actor.roles, partner=rest, now=actor.now
        )
        reply.text(
            _(
                "Key {id} for {partner} (Open311). It is shown only this once: copy it into "
                "the partner's app now.\n\n{secret}"
            ).format(id=key.id, partner=bold(key.partner), secret=code(secret))
        )
        return
    if verb == "off" and rest.strip().isdigit() and len(rest.strip()) < 10:
        key = await open311.revoke_key(
            actor.session,
            admin=actor.who,
            roles=actor.roles,
            key_id=int(rest.strip()),
            now=actor.now,
        )
        reply.text(
            _("Key {id} for {partner} is switched off.").format(
                id=key.id, partner=bold(key.partner)
            )
        )
        return
    if verb:
        reply.text(esc(_(USAGE)))
        return
    keys = await open311.keys_in_scope(actor.session, actor.roles)
    lines = [bold(_("Open311 keys"))]
    for key in keys:
        state = (
            _("in use, last {when}").format(when=local_time(key.last_used_at, settings.tz))
            if key.active and key.last_used_at is not None
            else _("not used yet")
            if key.active
            else _("switched off")
        )
        lines.append(f"{key.id}. {esc(key.partner)} · {state}")
    if not keys:
        lines.append(_("No keys yet."))
    lines += ["", esc(_(USAGE))]
    reply.text("\n".join(lines))


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(apikey_command, Command("apikey"))
    return router
