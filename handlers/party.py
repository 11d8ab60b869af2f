"""Party members and their contact households (党员联系户) in the chat: ``/party`` (a party
member's own list, or the grid's coverage for its staff), ``/party set`` (membership),
``/party assign`` (the contact-household picker), ``/party branches`` and ``/party branch``;
the push's "contacted" buttons. Every press is re-checked by :mod:`bot.services.party`."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from bot.errors import NotAllowed
from bot.i18n import N_
from bot.services import grids, members, party
from bot.services.actor import Actor
from bot.settings import Settings
from bot.telegram.args import parse_word, split_args
from bot.telegram.callbacks import PartyContactCb, PartyContactKind, PartyPickCb
from bot.telegram.i18n import t
from bot.telegram.party_views import (
    KIND_OF,
    PARTY_USAGE,
    branches_text,
    contact_keyboard,
    coverage_text,
    kind_keyboard,
    kind_label,
    picker_keyboard,
    picker_text,
    plans_text,
)
from bot.telegram.render import bold, esc
from bot.telegram.replies import Replier, pressed
from handlers.registry import home_grid

PARTY_ACTIONS: dict[str, str] = {
    "set": "set",
    "设置": "set",
    "設置": "set",
    "assign": "assign",
    "联系户": "assign",
    "聯繫戶": "assign",
    "branches": "branches",
    "支部": "branches",
    "branch": "branch",
    "新增支部": "branch",
    "help": "help",
    "帮助": "help",
    "幫助": "help",
}


async def party_command(
    message: Message, command: CommandObject, reply: Replier, actor: Actor, settings: Settings
) -> None:
    words = split_args(command.args, 1)
    action = parse_word(words[0], PARTY_ACTIONS) if words else None
    rest = words[1] if len(words) > 1 else ""
    if words and action is None or action == "help":
        reply.text(t(PARTY_USAGE))
    elif action == "set":
        await _set(rest, reply, actor, settings)
    elif action == "assign":
        await _assign(rest, reply, actor, settings)
    elif action == "branches":
        reply.text(branches_text(t, await party.branches_in_scope(actor.session, actor.roles)))
    elif action == "branch":
        await _add_branch(rest, reply, actor)
    else:
        await _overview(reply, actor, settings)


async def _overview(reply: Replier, actor: Actor, settings: Settings) -> None:
    """The party member's own households; the grid's coverage for its staff."""
    plans = await party.my_plans(actor.session, actor.who, actor.now, settings)
    shown = False
    if plans:
        reply.text(plans_text(t, plans, settings.tz), contact_keyboard(t, plans))
        shown = True
    try:
        grid = await home_grid(actor)
    except NotAllowed:
        grid = None
    found = None
    if grid is not None:
        found = await party.coverage(actor.session, actor.roles, grid, actor.now, settings)
    if found is not None:
        reply.text(bold(esc(grid.name)) + "\n" + coverage_text(t, found) if grid else "")
        shown = True
    if not shown:
        reply.text(
            t(
                N_(
                    "You have no contact households. If you are a party member, ask your grid "
                    "head to record it with the phone number you use here."
                )
            )
        )


async def _set(args: str, reply: Replier, actor: Actor, settings: Settings) -> None:
    words = split_args(args, 2)
    if len(words) < 2:
        reply.text(t(PARTY_USAGE))
        return
    member = await members.find_member(
        actor.session,
        words[0],
        vault=members.optional_vault(settings.people),
        today=actor.now.date(),
    )
    kind = party.parse_kind(words[1])
    assert member.id is not None
    place, branch = await party.set_party(
        actor.session,
        actor.who,
        actor.roles,
        member.id,
        kind,
        words[2] if len(words) > 2 else None,
        actor.now,
    )
    text = t(
        N_("Resident #{id} {name}: {kind}."),
        id=member.id,
        name=place.member.name,
        kind=kind_label(t, kind),
    )
    if branch is not None:
        text += " " + t(N_("Branch: {name}"), name=branch.name)
    reply.text(esc(text))


async def _assign(args: str, reply: Replier, actor: Actor, settings: Settings) -> None:
    if not args.strip():
        reply.text(t(PARTY_USAGE))
        return
    member = await members.find_member(
        actor.session,
        args,
        vault=members.optional_vault(settings.people),
        today=actor.now.date(),
    )
    assert member.id is not None
    pick = await party.picker(actor.session, actor.who, actor.roles, member.id, 0, actor.now)
    limit = settings.party.max_households
    reply.text(picker_text(t, pick, limit), picker_keyboard(t, pick))


async def _add_branch(args: str, reply: Replier, actor: Actor) -> None:
    words = split_args(args, 1)
    if len(words) < 2:
        reply.text(t(PARTY_USAGE))
        return
    grid = await grids.find_grid(actor.session, words[0])
    branch = await party.add_branch(
        actor.session, actor.who, actor.roles, grid, words[1], actor.now
    )
    reply.text(
        esc(
            t(
                N_("Party branch #{id} {name} added to grid {grid}."),
                id=branch.id,
                name=branch.name,
                grid=grid.name,
            )
        )
    )


async def pick_pressed(
    query: CallbackQuery,
    callback_data: PartyPickCb,
    reply: Replier,
    actor: Actor,
    settings: Settings,
) -> None:
    member_id = callback_data.member
    if callback_data.household:
        assigned = await party.toggle_contact(
            actor.session,
            actor.who,
            actor.roles,
            member_id,
            callback_data.household,
            actor.now,
            settings.party,
        )
        await query.answer(
            t(N_("Added as a contact household.")) if assigned else t(N_("Removed."))
        )
    else:
        await query.answer()
    pick = await party.picker(
        actor.session, actor.who, actor.roles, member_id, callback_data.page, actor.now
    )
    reply.show(
        pressed(query),
        picker_text(t, pick, settings.party.max_households),
        picker_keyboard(t, pick),
    )


async def contact_pressed(
    query: CallbackQuery,
    callback_data: PartyContactCb,
    reply: Replier,
    actor: Actor,
    settings: Settings,
) -> None:
    if callback_data.kind == PartyContactKind.ASK:
        # refuses (and audits) a household that is not hers before asking anything
        await party.record_check(actor.session, actor.who, callback_data.household, actor.now)
        await query.answer()
        reply.text(
            esc(t(N_("How did you contact the household?"))),
            kind_keyboard(t, callback_data.household),
        )
        return
    _member, household = await party.record_contact(
        actor.session,
        actor.who,
        callback_data.household,
        KIND_OF[callback_data.kind],
        actor.now,
    )
    await query.answer(t(N_("Recorded.")))
    plans = await party.my_plans(actor.session, actor.who, actor.now, settings)
    text = esc(t(N_("Contact with {name} recorded."), name=household.head_name))
    reply.show(
        pressed(query),
        text + "\n\n" + plans_text(t, plans, settings.tz),
        contact_keyboard(t, plans),
    )


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(party_command, Command("party"))
    router.callback_query.register(pick_pressed, PartyPickCb.filter())
    router.callback_query.register(contact_pressed, PartyContactCb.filter())
    return router
