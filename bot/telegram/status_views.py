"""/status as an administrator reads it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiogram.utils.i18n import gettext as _

from bot.i18n import LIST_SEPARATOR
from bot.labels import ROLE
from bot.services.jobs import JOB_STATE_LABEL, JobState, JobStatus
from bot.services.status import SystemStatus
from bot.telegram.render import bold, code, esc
from bot.telegram.ticket_views import local_time
from models import OutboxStatus


def status_text(
    status: SystemStatus, leader: str | None, job_names: Mapping[str, str], tz: Any
) -> str:
    separator = _(LIST_SEPARATOR)
    pending = status.backlog.get(OutboxStatus.PENDING, 0)
    lines = [bold(_("System status")), ""]
    if status.oldest_pending_seconds:
        minutes = max(1, round(status.oldest_pending_seconds / 60))
        lines.append(
            _("Messages waiting to be sent: {count} (the oldest for {minutes} min)").format(
                count=pending, minutes=minutes
            )
        )
    else:
        lines.append(_("Messages waiting to be sent: {count}").format(count=pending))
    if status.gave_up:
        lines.append(_("Not delivered in the last 24 hours: {count}").format(count=status.gave_up))
    if leader is not None:
        lines.append(_("Scheduled jobs run in: {holder}").format(holder=code(leader)))
    else:
        lines.append(
            "⚠️ " + _("No process runs the scheduled jobs: reminders and escalation stop.")
        )
    if status.overdue_by_role:
        parts = separator.join(
            _("{role} {count}").format(role=_(ROLE[role]), count=count)
            for role, count in sorted(status.overdue_by_role.items())
        )
        lines.append(_("Tickets past a deadline: {parts}").format(parts=parts))
    else:
        lines.append(_("Tickets past a deadline: none"))
    if status.unreachable_count:
        names = separator.join(esc(name) for name in status.unreachable_names)
        more = status.unreachable_count - len(status.unreachable_names)
        if more > 0:
            names += _(" and {more} more").format(more=more)
        lines.append(
            _("People the bot cannot reach: {count} ({names})").format(
                count=status.unreachable_count, names=names
            )
        )
    finished = [job for job in status.jobs if job.seconds is not None]
    if finished:
        lines += ["", bold(_("Last runs"))]
    for job in finished:
        state = JobState.ERROR if job.status == JobStatus.ERROR else JobState.OK
        name = job_names.get(job.job_id)
        lines.append(
            _("{name}: {when}, took {seconds} s · {state}").format(
                name=esc(_(name)) if name else code(job.job_id),
                when=local_time(job.started_at, tz),
                seconds=f"{job.seconds:.1f}",
                state=_(JOB_STATE_LABEL[state]),
            )
        )
    return "\n".join(lines)
