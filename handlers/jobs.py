"""/jobs and /status for admins: what the scheduler will do next and did last; how the system
is doing (the outbox backlog, the scheduler's leader, overdue tickets, unreachable people)."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from bot.errors import NotAllowed
from bot.i18n import N_
from bot.services.actor import Actor
from bot.services.jobs import JOB_STATE_LABEL, OVERDUE_LABEL, jobs_overview, outbox_gave_up
from bot.services.status import system_status
from bot.settings import Settings
from bot.telegram.render import bold, code, esc
from bot.telegram.replies import Replier
from bot.telegram.status_views import status_text
from bot.telegram.ticket_views import local_time
from models import Role
from scheduler.leader import current_leader
from scheduler.registry import default_registry

FOR_ADMINS = N_("This command is for administrators.")


def _require_admin(actor: Actor) -> None:
    if not any(r.role == Role.ADMIN for r in actor.roles):
        raise NotAllowed(FOR_ADMINS)


async def jobs_command(message: Message, reply: Replier, actor: Actor, settings: Settings) -> None:
    _require_admin(actor)
    lines = [bold(_("Scheduled jobs"))]
    for job in await jobs_overview(actor.session, default_registry(settings), actor.now):
        lines.append("")
        lines.append(f"{bold(_(job.name))} {code(job.id)}")
        lines.append(
            _("next: {next} · last: {last} · {state}").format(
                next=local_time(job.next_fire_at, settings.tz),
                last=local_time(job.last_started_at, settings.tz),
                state=_(JOB_STATE_LABEL[job.state]),
            )
        )
        if job.overdue:
            lines.append("⚠️ " + _(OVERDUE_LABEL))
        if job.last_error:
            lines.append(esc(job.last_error[:200]))
    if gave_up := await outbox_gave_up(actor.session, actor.now):
        lines += ["", bold(_("Not delivered in the last 24 hours"))]
        lines += [f"{code(method)}: {count}" for method, count in gave_up.items()]
    reply.text("\n".join(lines))


async def status_command(
    message: Message, reply: Replier, actor: Actor, settings: Settings
) -> None:
    """``/status``: the figures an operator would otherwise read off ``/metrics``."""
    _require_admin(actor)
    status = await system_status(actor.session, actor.now)
    leader = await current_leader(actor.session, actor.now)
    job_names = {job.id: job.name for job in default_registry(settings)}
    reply.text(status_text(status, leader, job_names, settings.tz))


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(jobs_command, Command("jobs"))
    router.message.register(status_command, Command("status"))
    return router
