"""Deadlines for everyone to read (/sla), and their admin: a new policy file, /holidays."""

from __future__ import annotations

import json
from typing import Literal

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from bot import labels
from bot.i18n import ASIDE, join_list
from bot.routing.policy import ChainLink, Duration, policy_to_json
from bot.routing.summary import PolicySummary, summarize
from bot.routing.wording import LEVELLED_ROLE, duration_msgid, limit_msgid, link_name
from bot.services import sla_admin, tickets
from bot.services.actor import Actor
from bot.settings import Settings
from bot.telegram.args import FILE_WORDS, HOLIDAY_ACTIONS, normalize, parse_word, split_args
from bot.telegram.render import bold, esc
from bot.telegram.replies import Replier
from models import Role

MAX_POLICY_BYTES = 256 * 1024


def _duration(duration: Duration) -> str:
    return _(duration_msgid(duration)).format(n=duration.amount)


def _limit(which: Literal["accept", "resolve"], duration: Duration) -> str:
    """ "1 个工作日内签收", "当天签收"."""
    return _(limit_msgid(which, duration)).format(duration=_duration(duration))


def _link(link: ChainLink, summary: PolicySummary) -> str:
    """ "网格员", "二级网格长", "街道中心": a link of the chain in words."""
    name = link_name(link, summary.chain)
    role = _(name.place) if name.place else _(labels.ROLE[name.role])
    return role if name.level is None else _(LEVELLED_ROLE).format(level=_(name.level), role=role)


def summary_text(summary: PolicySummary) -> str:
    hours = join_list(_, (f"{a:%H:%M}–{b:%H:%M}" for a, b in summary.business_hours))
    lines = [
        bold(_("Time limits (限时办理)")),
        _("Working hours: {hours} ({zone}); public holidays and make-up days count.").format(
            hours=hours, zone=summary.timezone
        ),
    ]
    if summary.warn_percent is not None:
        lines.append(
            _("A reminder comes when {percent}% of a time limit has passed.").format(
                percent=summary.warn_percent
            )
        )
    for kind in summary.kinds:
        lines.append("")
        title = _(labels.HANDLING_KIND[kind.kind])
        extras = []
        if kind.round_the_clock:
            extras.append(_("round the clock"))
        if kind.public_notice:
            extras.append(
                _("result publicly noticed (公示) for {period}").format(
                    period=_duration(kind.notice_period)
                )
            )
        if extras:
            lines.append(_(ASIDE).format(text=bold(title), aside=join_list(_, extras)))
        else:
            lines.append(bold(title))
        for limit in kind.limits:
            lines.append(
                _("• {who}: {accept}, {resolve}").format(
                    who=_link(limit.link, summary),
                    accept=_limit("accept", limit.accept),
                    resolve=_limit("resolve", limit.resolve),
                )
            )
        if kind.cap is not None:
            lines.append(_("• at most {cap} in all").format(cap=_duration(kind.cap)))
        if kind.inform:
            told = join_list(_, (_link(link, summary) for link in kind.inform))
            lines.append(_("• told at once: {links}").format(links=told))
    return "\n".join(lines)


async def sla_command(
    message: Message, command: CommandObject, bot: Bot, reply: Replier, actor: Actor
) -> None:
    policy = await tickets.current_policy(actor.session)
    if normalize(command.args).lower() in FILE_WORDS and any(
        r.role == Role.ADMIN for r in actor.roles
    ):
        body = json.dumps(policy_to_json(policy), ensure_ascii=False, indent=2).encode("utf-8")
        reply.upload(
            "sendDocument",
            "document",
            body,
            "gridbot-policy.json",
            caption=esc(_("Edit this file, then send it back with the caption /sla.")),
        )
        return
    reply.text(summary_text(summarize(policy)))


async def policy_file(message: Message, bot: Bot, reply: Replier, actor: Actor) -> None:
    document = message.document
    assert document is not None
    if (document.file_size or 0) > MAX_POLICY_BYTES:
        reply.text(_("That file is too large for a policy."))
        return
    downloaded = await bot.download(document)
    raw = downloaded.read() if downloaded is not None else b""
    policy = await sla_admin.set_policy(
        actor.session, actor=actor.who, roles=actor.roles, raw=raw, now=actor.now
    )
    reply.text(
        _("New time limits saved. New tickets follow them; open tickets keep theirs.")
        + "\n\n"
        + summary_text(summarize(policy))
    )


async def holidays_command(
    message: Message, command: CommandObject, reply: Replier, actor: Actor, settings: Settings
) -> None:
    args = split_args(command.args, 1)
    action = parse_word(args[0], HOLIDAY_ACTIONS) if args else None
    if action in {"off", "work"} and len(args) >= 2:
        words = split_args(args[1], 1)  # the day, then an optional note
        day = sla_admin.parse_day(words[0])
        note = words[1] if len(words) > 1 else None
        await sla_admin.set_override(
            actor.session,
            actor=actor.who,
            roles=actor.roles,
            day=day,
            is_workday=action == "work",
            note=note,
            now=actor.now,
        )
        kind = _("a working day") if action == "work" else _("a day off")
        reply.text(_("{day} is now {kind}.").format(day=day.isoformat(), kind=kind))
        return
    if action == "remove" and len(args) >= 2:
        day = sla_admin.parse_day(args[1])
        removed = await sla_admin.remove_override(
            actor.session, actor=actor.who, roles=actor.roles, day=day, now=actor.now
        )
        text = (
            _("{day} follows the official calendar again.")
            if removed
            else _("{day} had no change of its own.")
        )
        reply.text(text.format(day=day.isoformat()))
        return
    days = await sla_admin.list_overrides(actor.session, actor.now.astimezone(settings.tz).date())
    lines = [bold(_("Changes to the official calendar"))]
    for override in days:
        kind = _("working day") if override.is_workday else _("day off")
        lines.append(f"• {override.day.isoformat()} {esc(kind)} {esc(override.note or '')}")
    if not days:
        lines.append(_("None: the official calendar (holidays and make-up days) applies."))
    lines.append("")
    lines.append(
        _(
            "Admins: /holidays off 2027-02-10 [note] — a day off; /holidays work 2027-02-07 — "
            "a working day; /holidays remove 2027-02-10."
        )
    )
    reply.text("\n".join(lines))


def build_router() -> Router:
    router = Router(name=__name__)
    # a policy file comes with the caption /sla, which the Command filter would also match
    router.message.register(policy_file, F.document, F.caption.startswith("/sla"))
    router.message.register(sla_command, Command("sla"))
    router.message.register(holidays_command, Command("holidays"))
    return router
