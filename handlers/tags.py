"""Person tags and follow-ups (人员标签, 随访) in the chat.

``/tags`` (the tags, who follows each up and how often), ``/tags file`` (administrators: the
tags file to edit) and a ``.json`` file sent back with the caption ``/tags``;
``/tag <resident number> <tag>`` and ``/untag …`` (the household's worker, its head, an
administrator); ``/followup`` (the follow-ups due in my households, a 📝 button each) →
pressed: the tag's short form is asked → the answers typed in one message, separated by
``;`` → recorded, and logged as a home visit; ``/followup <number> <answers>`` records at
once. The morning push carries the same 📝 buttons. Every press is re-checked by the services.

```mermaid
stateDiagram-v2
    [*] --> answers: 📝 pressed (push, /followup)
    answers --> answers: answers refused (the reason, the form again)
    answers --> [*]: answers typed → recorded (+ home visit)
    answers --> [*]: /cancel
```
"""

from __future__ import annotations

import json

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message

from bot.errors import InvalidInput, NotAllowed
from bot.i18n import N_
from bot.services import follow_ups, push_progress, tags
from bot.services.actor import Actor
from bot.services.message_size import split_message
from bot.settings import Settings
from bot.telegram import tag_views as views
from bot.telegram.args import FILE_WORDS, split_args
from bot.telegram.i18n import t
from bot.telegram.render import esc
from bot.telegram.replies import Replier
from bot.telegram.visit_views import render_push
from models import Household, Role

TAG_USAGE = N_("Send: /tag <resident number> <tag>, e.g. /tag 12 慢性病. /tags lists the tags.")
UNTAG_USAGE = N_("Send: /untag <resident number> <tag>, e.g. /untag 12 慢性病.")
FOLLOW_UP_NOTE = N_("Follow-up (随访)")


class FollowUpFlow(StatesGroup):
    answers = State()  # the tag's short form, typed in one message


def _refusal(error: InvalidInput) -> str:
    return t(error.message, **{key: esc(value) for key, value in error.params.items()})


def _is_admin(actor: Actor) -> bool:
    return any(r.role == Role.ADMIN for r in actor.roles)


def _number(word: str) -> int:
    if not word.isdigit() or len(word) > 9:
        raise InvalidInput(N_("“{value}” is not a number."), value=word[:24])
    return int(word)


# --- the tags -----------------------------------------------------------------------------------


async def tags_command(
    message: Message, command: CommandObject, reply: Replier, actor: Actor
) -> None:
    words = split_args(command.args, 1)
    policy = await tags.current_policy(actor.session)
    if words and words[0].lower() in FILE_WORDS:
        if not _is_admin(actor):
            raise NotAllowed(N_("Only an administrator can change the tags."))
        body = json.dumps(tags.policy_to_json(policy), ensure_ascii=False, indent=2)
        reply.upload(
            "sendDocument",
            "document",
            body.encode("utf-8"),
            "gridbot-tags.json",
            caption=esc(t("Edit this file, then send it back with the caption /tags.")),
        )
        return
    for part in split_message(views.policy_text(policy, t)):
        reply.text(part)


async def tags_file(message: Message, bot: Bot, reply: Replier, actor: Actor) -> None:
    """A ``.json`` file with the caption ``/tags``: a new version of the tags."""
    document = message.document
    assert document is not None
    if not _is_admin(actor):
        raise NotAllowed(N_("Only an administrator can change the tags."))
    if (document.file_size or 0) > tags.MAX_POLICY_BYTES:
        reply.text(esc(t("That file is too large for a tags file.")))
        return
    downloaded = await bot.download(document)
    raw = downloaded.read() if downloaded is not None else b""
    policy = await tags.set_policy(
        actor.session, actor=actor.who, roles=actor.roles, raw=raw, now=actor.now
    )
    reply.text(esc(t("New tags saved.")))
    for part in split_message(views.policy_text(policy, t)):
        reply.text(part)


async def tag_command(
    message: Message, command: CommandObject, reply: Replier, actor: Actor
) -> None:
    words = split_args(command.args, 1)
    if len(words) < 2:
        reply.text(esc(t(TAG_USAGE)))
        return
    row, tag, new = await tags.tag_member(
        actor.session, actor.who, actor.roles, _number(words[0]), words[1], actor.now
    )
    text = (
        t(
            "Tagged resident #{id}: {tag} — follow-ups {cadence}.",
            id=row.member_id,
            tag=tag.name,
            cadence=views.cadence_text(tag.follow_up, t),
        )
        if new
        else t("Resident #{id} already has the tag {tag}.", id=row.member_id, tag=tag.name)
    )
    reply.text(esc(text))


async def untag_command(
    message: Message, command: CommandObject, reply: Replier, actor: Actor
) -> None:
    words = split_args(command.args, 1)
    if len(words) < 2:
        reply.text(esc(t(UNTAG_USAGE)))
        return
    member_id = _number(words[0])
    tag = await tags.untag_member(
        actor.session, actor.who, actor.roles, member_id, words[1], actor.now
    )
    reply.text(esc(t("Resident #{id} no longer has the tag {tag}.", id=member_id, tag=tag.name)))


# --- follow-ups ---------------------------------------------------------------------------------


async def followup_command(
    message: Message,
    command: CommandObject,
    reply: Replier,
    actor: Actor,
    state: FSMContext,
    settings: Settings,
) -> None:
    await state.clear()
    words = split_args(command.args, 1)
    if words:  # /followup <number> [answers]: the form, or recorded at once
        person_tag_id = _number(words[0])
        if len(words) == 1:
            await _ask(reply, actor, state, person_tag_id)
            return
        await _record(reply, actor, state, settings, person_tag_id, words[1])
        return
    policy = await tags.current_policy(actor.session)
    due = await follow_ups.due_by_worker(
        actor.session, [actor.who.id or 0], policy, actor.now, tz=settings.tz
    )
    items = due.get(actor.who.id or 0, [])
    reply.text(views.due_text(items, t), views.due_keyboard(items))


async def _ask(reply: Replier, actor: Actor, state: FSMContext, person_tag_id: int) -> None:
    _row, tag, member, _household = await follow_ups.follow_up_target(
        actor.session, actor.who, actor.roles, person_tag_id, actor.now
    )
    await state.set_state(FollowUpFlow.answers)
    await state.update_data(person_tag_id=person_tag_id)
    reply.text(views.form_prompt(tag, member.name, t))


async def _record(
    reply: Replier,
    actor: Actor,
    state: FSMContext,
    settings: Settings,
    person_tag_id: int,
    text: str,
) -> None:
    recorded = await follow_ups.record(
        actor.session,
        actor.who,
        actor.roles,
        person_tag_id,
        text,
        t(FOLLOW_UP_NOTE),
        actor.now,
        tz=settings.tz,
    )
    await state.clear()
    household = await actor.session.get(Household, recorded.visit.household.id)
    if household is not None:
        await push_progress.refresh_push_of(
            actor.session, household, actor.now, settings, render_push
        )
    reply.text(views.recorded_text(recorded, t))


async def follow_up_pressed(
    query: CallbackQuery,
    callback_data: views.FollowUpCb,
    reply: Replier,
    actor: Actor,
    state: FSMContext,
) -> None:
    await state.clear()
    await _ask(reply, actor, state, callback_data.id)
    await query.answer()


async def answers_typed(
    message: Message, reply: Replier, actor: Actor, state: FSMContext, settings: Settings
) -> None:
    data = await state.get_data()
    person_tag_id = int(data.get("person_tag_id", 0))
    try:
        await _record(reply, actor, state, settings, person_tag_id, message.text or "")
    except InvalidInput as error:  # stay in the form: the reason, then the form again
        _row, tag, member, _household = await follow_ups.follow_up_target(
            actor.session, actor.who, actor.roles, person_tag_id, actor.now
        )
        reply.text(f"{_refusal(error)}\n\n{views.form_prompt(tag, member.name, t)}")


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(tags_file, F.document, F.caption.startswith("/tags"))
    router.message.register(tags_command, Command("tags"))
    router.message.register(tag_command, Command("tag"))
    router.message.register(untag_command, Command("untag"))
    router.message.register(followup_command, Command("followup"))
    router.callback_query.register(follow_up_pressed, views.FollowUpCb.filter())
    not_a_command = F.text & ~F.text.startswith("/")
    router.message.register(answers_typed, StateFilter(FollowUpFlow.answers), not_a_command)
    return router
