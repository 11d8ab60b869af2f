"""Assessment (考核): ``/indicators [grid]`` for heads, the centre, supervisors and admins;
``/score [grid] [period]`` — the 红黑榜 charts and a worker's own card — for them and for
workers; ``/score export [grid] [period]`` — the workbook for the monthly meeting (here, not
in ``/export``, so the two menus stay apart); ``/score help``; ``/score file`` and a file
sent back with the caption ``/score`` (admins: the weights and veto rules)."""

from __future__ import annotations

import json
from functools import partial

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from bot.i18n import gettext_for
from bot.services import (
    assessment_export,
    assessment_policy,
    charts,
    indicators,
    score_views,
    scorecards,
)
from bot.services.actor import Actor
from bot.services.message_size import split_message
from bot.settings import Settings
from bot.telegram.args import FILE_WORDS, parse_word, split_args
from bot.telegram.render import esc
from bot.telegram.replies import Replier
from handlers import inspections as inspection_handlers
from models import Role

# /score's first word, as typed in any of the three languages
SCORE_WORDS: dict[str, str] = {
    "help": "help",
    "帮助": "help",
    "幫助": "help",
    "说明": "help",
    "說明": "help",
    "export": "export",
    "导出": "export",
    "導出": "export",
    "匯出": "export",
    **{word: "file" for word in FILE_WORDS},
}


async def indicators_command(
    message: Message,
    command: CommandObject,
    reply: Replier,
    actor: Actor,
    settings: Settings,
) -> None:
    """This month so far: the asker's subtrees, or the grid named (code or name) in them."""
    reports = await indicators.reports_for(
        actor.session,
        actor.who,
        actor.roles,
        grid_query=command.args,
        now=actor.now,
        tz=settings.tz,
    )
    text = "\n\n".join(indicators.render_report(r, actor.locale, settings.tz) for r in reports)
    for part in split_message(text):
        reply.text(part)
    for report in reports:  # and how its places are inspected (巡查覆盖率, 隐患)
        await inspection_handlers.indicators_reply(
            reply, actor, report.root.id, report.start, report.end
        )


async def score_command(
    message: Message,
    command: CommandObject,
    reply: Replier,
    actor: Actor,
    settings: Settings,
) -> None:
    """``/score [grid] [period]``, ``/score help``, ``/score file``, ``/score export``."""
    words = split_args(command.args, 1)
    action = parse_word(words[0], SCORE_WORDS) if words else None
    if action == "help":
        policy = await assessment_policy.current_policy(actor.session)
        for part in split_message(score_views.help_text(policy, actor.locale)):
            reply.text(part)
        return
    if action == "file" and any(r.role == Role.ADMIN for r in actor.roles):
        policy = await assessment_policy.current_policy(actor.session)
        body = json.dumps(assessment_policy.policy_to_json(policy), ensure_ascii=False, indent=2)
        reply.upload(
            "sendDocument",
            "document",
            body.encode("utf-8"),
            "gridbot-assessment.json",
            caption=esc(_("Edit this file, then send it back with the caption /score.")),
        )
        return
    if action == "export":
        await export_command(words[1] if len(words) > 1 else "", reply, actor, settings)
        return
    rankings = await scorecards.rankings_for(
        actor.session, actor.who, actor.roles, args=command.args, now=actor.now, tz=settings.tz
    )
    policy = await assessment_policy.current_policy(actor.session)
    for ranking in rankings:
        card = score_views.own_card_text(ranking, policy, actor.locale, settings.tz)
        if card is not None:
            reply.text(card)
        caption = score_views.caption(ranking, actor.locale, settings.tz)
        for chart in score_views.charts_for(ranking, actor.locale, settings.tz):
            png = await charts.render(chart)
            reply.upload("sendPhoto", "photo", png, "score.png", caption=caption)


async def export_command(args: str, reply: Replier, actor: Actor, settings: Settings) -> None:
    """``/score export [grid] [period]``: the assessment workbook of each ranking the asker
    may read (the same scopes as ``/score``)."""
    rankings = await scorecards.rankings_for(
        actor.session,
        actor.who,
        actor.roles,
        args=args,
        now=actor.now,
        tz=settings.tz,
        export=True,
    )
    policy = await assessment_policy.current_policy(actor.session)
    for ranking in rankings:
        data, name = await assessment_export.workbook(
            actor.session,
            actor.who,
            ranking,
            policy,
            translate=partial(gettext_for, actor.locale),
            now=actor.now,
        )
        caption = score_views.caption(ranking, actor.locale, settings.tz)
        reply.upload("sendDocument", "document", data, name, caption=caption)


async def policy_file(message: Message, bot: Bot, reply: Replier, actor: Actor) -> None:
    """An assessment file sent back with the caption ``/score``."""
    document = message.document
    assert document is not None
    if (document.file_size or 0) > assessment_policy.MAX_POLICY_BYTES:
        reply.text(_("That file is too large for an assessment policy."))
        return
    downloaded = await bot.download(document)
    raw = downloaded.read() if downloaded is not None else b""
    policy = await assessment_policy.set_policy(
        actor.session, actor=actor.who, roles=actor.roles, raw=raw, now=actor.now
    )
    reply.text(
        _("New assessment weights saved. Every /score from now on uses them, past periods too.")
    )
    for part in split_message(score_views.help_text(policy, actor.locale)):
        reply.text(part)


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(indicators_command, Command("indicators"))
    # a policy file comes with the caption /score, which the Command filter would also match
    router.message.register(policy_file, F.document, F.caption.startswith("/score"))
    router.message.register(score_command, Command("score"))
    return router
