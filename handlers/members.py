"""The people of a household (实有人口) in the chat: a member's card from the household's
card, "show" buttons that ask why and then show one field in a pop-up (never in the chat's
history; the read is audited), and erasure on request (删除权): ``/people forget <#number or
ID number>`` or the card's button, asked first. Every press is re-checked by the service.
"""

from __future__ import annotations

from aiogram import Router
from aiogram.types import CallbackQuery
from aiogram.utils.i18n import gettext as _

from bot.i18n import N_
from bot.services import members
from bot.services.actor import Actor
from bot.services.members import Purpose
from bot.services.personal_fields import FIELD_LABEL
from bot.settings import Settings
from bot.telegram.callbacks import MemberAction, MemberCb, MemberRevealCb, RevealPurpose
from bot.telegram.member_views import (
    FIELD_OF,
    forget_keyboard,
    member_keyboard,
    member_text,
    purpose_keyboard,
)
from bot.telegram.render import esc
from bot.telegram.replies import Replier, pressed

PURPOSES = {
    RevealPurpose.VISIT: Purpose.VISIT,
    RevealPurpose.CASE: Purpose.CASE,
    RevealPurpose.REGISTER: Purpose.REGISTER,
}
FORGET_USAGE = N_(
    "How to use: /people forget &lt;#number or ID number&gt; — erase a resident's personal "
    "data at their request; counts keep counting them."
)
FORGET_QUESTION = N_(
    "Erase the name, ID number, phone and birth date of resident #{id}? This cannot be undone."
)


async def member_pressed(
    query: CallbackQuery,
    callback_data: MemberCb,
    reply: Replier,
    actor: Actor,
    settings: Settings,
) -> None:
    member_id = callback_data.member
    if callback_data.action == MemberAction.FORGET_YES:
        await members.forget(
            actor.session,
            person=actor.who,
            roles=actor.roles,
            member_id=member_id,
            now=actor.now,
        )
        await query.answer()
        text = _(
            "The personal data of resident #{id} is erased. They still count in the "
            "household and the grid's figures."
        ).format(id=member_id)
        reply.show(pressed(query), esc(text))
        return
    view = await members.member_card(
        actor.session,
        person=actor.who,
        roles=actor.roles,
        member_id=member_id,
        vault=members.optional_vault(settings.people),
        now=actor.now,
    )
    await query.answer()
    if callback_data.action == MemberAction.FORGET:
        if not members.may_erase(actor.roles, view):
            reply.show(pressed(query), esc(_("Only an administrator can erase a person's data.")))
            return
        question = _(FORGET_QUESTION).format(id=member_id)
        reply.show(pressed(query), esc(question), forget_keyboard(member_id))
        return
    can_forget = members.may_erase(actor.roles, view)
    reply.show(pressed(query), member_text(view), member_keyboard(view, can_forget=can_forget))


async def reveal_pressed(
    query: CallbackQuery,
    callback_data: MemberRevealCb,
    reply: Replier,
    actor: Actor,
    settings: Settings,
) -> None:
    name = FIELD_OF[callback_data.field]
    label = _(FIELD_LABEL[name])
    if callback_data.purpose == RevealPurpose.ASK:
        await members.member_card(  # refuses (and audits) a member out of reach at once
            actor.session,
            person=actor.who,
            roles=actor.roles,
            member_id=callback_data.member,
            vault=None,
            now=actor.now,
        )
        await query.answer()
        question = _("Why do you need the {field} in full? Your answer is recorded.").format(
            field=label
        )
        reply.text(esc(question), purpose_keyboard(callback_data.member, callback_data.field))
        return
    value = await members.reveal(
        actor.session,
        person=actor.who,
        roles=actor.roles,
        member_id=callback_data.member,
        name=name,
        purpose=PURPOSES[callback_data.purpose],
        vault=members.optional_vault(settings.people),
        now=actor.now,
    )
    # a pop-up, not a message: the value stays out of the chat's history and the outbox
    text = _("{field}: {value}\nThis read is recorded.").format(field=label, value=value)
    await query.answer(text[:200], show_alert=True)


async def forget_command(args: str, reply: Replier, actor: Actor, settings: Settings) -> None:
    """``/people forget <#number | ID number>``: the member's card with the question."""
    if not args.strip():
        reply.text(_(FORGET_USAGE))
        return
    member = await members.find_member(
        actor.session,
        args,
        vault=members.optional_vault(settings.people),
        today=actor.now.date(),
    )
    await members.managed_member(
        actor.session, person=actor.who, roles=actor.roles, member=member, now=actor.now
    )
    assert member.id is not None
    view = await members.member_card(
        actor.session,
        person=actor.who,
        roles=actor.roles,
        member_id=member.id,
        vault=members.optional_vault(settings.people),
        now=actor.now,
    )
    question = _(FORGET_QUESTION).format(id=member.id)
    reply.text(member_text(view) + "\n\n" + esc(question), forget_keyboard(member.id))


def build_router() -> Router:
    router = Router(name=__name__)
    router.callback_query.register(member_pressed, MemberCb.filter())
    router.callback_query.register(reveal_pressed, MemberRevealCb.filter())
    return router
