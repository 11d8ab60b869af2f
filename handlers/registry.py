"""The registry: /grid, /check, /invite, /qr, /people, /households for staff; /mygrid for all."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _

from bot import labels
from bot.errors import InvalidInput, NotAllowed
from bot.i18n import ASIDE, N_
from bot.services import deeplinks, grids, households, invites, members, party, rentals, staff
from bot.services.actor import Actor
from bot.services.notice_board import notice_board, posted_outcomes, resident_grid
from bot.services.permissions import Action, authorize
from bot.services.qr import qr_png
from bot.settings import Settings
from bot.telegram.admin_views import (
    department_keyboard,
    grid_picker_keyboard,
    grid_picker_text,
    people_keyboard,
    role_keyboard,
)
from bot.telegram.args import (
    GRID_ACTIONS,
    NOTICE_FIELD_WORDS,
    PEOPLE_ACTIONS,
    parse_role,
    parse_word,
    split_args,
)
from bot.telegram.callbacks import (
    GridOp,
    GridPageCb,
    HouseholdCb,
    HouseholdPageCb,
    InviteDepartmentCb,
    InviteGridCb,
    InviteRevokeCb,
    InviteRoleCb,
    PeoplePageCb,
    PickStep,
)
from bot.telegram.i18n import t
from bot.telegram.member_views import counts_text, members_keyboard, members_section
from bot.telegram.party_views import mygrid_party_text
from bot.telegram.render import bold, code, esc
from bot.telegram.rental_views import counts_text as rental_counts_text
from bot.telegram.replies import Replier, pressed
from bot.telegram.ticket_views import posted_outcomes_text
from bot.telegram.views import (
    grid_page_text,
    household_text,
    households_keyboard,
    households_text,
    invites_keyboard,
    invites_text,
    notice_text,
    pager,
    people_text,
    warnings_text,
)
from handlers import grid_admin
from handlers import members as members_handlers
from models import Department, Grid, Role

# TRANSLATORS: the words after /grid may be written in Chinese too: the bot reads 新增, 改名,
# 移动/移動, 公示 and 服务范围, 服务事项, 投诉流程, 投诉电话 (and their Traditional forms) —
# bot/telegram/args.py lists them
GRID_USAGE = N_(
    "/grid — {tree}\n/grid <code> — {subtree}\n/grid add <parent> <name>\n"
    "/grid rename <code> <name>\n/grid move <code> <new parent>\n"
    "/grid notice <code> area|services|process|phone <text>"
)


GRID_OPS = {
    "add": GridOp.ADD,
    "rename": GridOp.RENAME,
    "move": GridOp.MOVE,
    "notice": GridOp.NOTICE,
}


async def home_grid(actor: Actor) -> Grid:
    """The widest grid a person serves in (roles come ordered by tier)."""
    for held in actor.roles:
        if held.role != Role.RESIDENT:
            grid = await actor.session.get(Grid, held.grid_id)
            if grid is not None:
                return grid
    raise NotAllowed(N_("This command is for grid staff."))


async def named_or_home_grid(actor: Actor, args: str | None) -> Grid:
    """The grid a command's argument names, or without one the widest grid the person serves."""
    return await grids.find_grid(actor.session, args) if args else await home_grid(actor)


async def grid_command(
    message: Message, command: CommandObject, reply: Replier, actor: Actor
) -> None:
    words = split_args(command.args, 1)
    action = parse_word(words[0], GRID_ACTIONS) if words else None
    rest = words[1] if len(words) > 1 else ""
    if action in GRID_OPS and not rest:  # no arguments: pick the grid with buttons
        await grid_admin.start(GRID_OPS[action], reply, actor)
        return
    if action in GRID_OPS:
        await _change_grid(action, rest, reply, actor)
        return
    if action == "help":
        reply.text(_grid_usage())
        return
    root = (
        await grids.find_grid(actor.session, " ".join(words)) if words else await home_grid(actor)
    )
    await authorize(actor.session, actor.who, actor.roles, Action.VIEW, root, actor.now)
    page = await grids.grid_tree(actor.session, root)
    reply.text(grid_page_text(page), pager(page.page, page.pages, GridPageCb, root=root.id or 0))


def _grid_usage() -> str:
    return (
        bold(_("How to use /grid"))
        + "\n"
        + esc(
            _(GRID_USAGE).format(
                tree=_("the grids you look after"), subtree=_("one grid and those below it")
            )
        )
    )


async def _change_grid(action: str, rest: str, reply: Replier, actor: Actor) -> None:
    args = split_args(rest, 2 if action == "notice" else 1)
    if len(args) < 2 or (action == "notice" and len(args) < 3):
        reply.text(_grid_usage())
        return
    grid = await grids.find_grid(actor.session, args[0])
    if action == "add":
        new = await grids.create_grid(
            actor.session,
            actor=actor.who,
            roles=actor.roles,
            parent=grid,
            name=args[1],
            now=actor.now,
        )
        text = _("Grid {name} added with the code {code}.").format(
            name=bold(new.name), code=code(new.code)
        )
    elif action == "rename":
        await grids.rename_grid(
            actor.session,
            actor=actor.who,
            roles=actor.roles,
            grid=grid,
            name=args[1],
            now=actor.now,
        )
        text = _("Grid {code} is now called {name}.").format(
            code=code(grid.code), name=bold(grid.name)
        )
    elif action == "move":
        parent = await grids.find_grid(actor.session, args[1])
        await grids.move_grid(
            actor.session,
            actor=actor.who,
            roles=actor.roles,
            grid=grid,
            new_parent=parent,
            now=actor.now,
        )
        text = _("Grid {name} moved under {parent}; its new code is {code}.").format(
            name=bold(grid.name), parent=bold(parent.name), code=code(grid.code)
        )
    else:
        await grids.set_notice(
            actor.session,
            actor=actor.who,
            roles=actor.roles,
            grid=grid,
            field_name=parse_word(args[1], NOTICE_FIELD_WORDS) or args[1],
            value=args[2],
            now=actor.now,
        )
        text = _("Notice board of {name} updated.").format(name=bold(grid.name))
    reply.text(text)


async def grid_page(
    query: CallbackQuery, callback_data: GridPageCb, reply: Replier, actor: Actor
) -> None:
    root = await actor.session.get(Grid, callback_data.root)
    if root is None:
        await query.answer(_("This button is out of date. Send /start to begin again."))
        return
    await authorize(actor.session, actor.who, actor.roles, Action.VIEW, root, actor.now)
    page = await grids.grid_tree(actor.session, root, page=callback_data.page)
    await query.answer()
    if isinstance(query.message, Message):
        reply.edit(
            query.message.message_id,
            grid_page_text(page),
            pager(page.page, page.pages, GridPageCb, root=root.id or 0),
        )


async def check_command(
    message: Message, command: CommandObject, reply: Replier, actor: Actor
) -> None:
    root = await named_or_home_grid(actor, command.args)
    await authorize(actor.session, actor.who, actor.roles, Action.VIEW, root, actor.now)
    reply.text(warnings_text(await grids.span_warnings(actor.session, root)))


async def invite_command(
    message: Message,
    command: CommandObject,
    bot: Bot,
    reply: Replier,
    actor: Actor,
    settings: Settings,
) -> None:
    """``/invite``: the pending invitations, then pick the role and the grid with buttons;
    ``/invite <role> <grid code> [department code]`` issues it at once."""
    args = split_args(command.args, 2)
    role = parse_role(args[0]) if args else None
    if role is None or len(args) < 2:
        roles = invites.invitable_roles(actor.roles)
        if not roles:
            raise NotAllowed(N_("Only an administrator can invite staff."))
        if role is not None and role not in roles:
            raise InvalidInput(N_("Residents join with their grid's QR code, not an invitation."))
        if role in roles:  # the role typed without a grid: on to the grid
            choices = await grids.grid_choices(
                actor.session, actor.who, actor.roles, Action.MANAGE, actor.now
            )
            reply.text(*_invite_grid_page(role, choices))
            return
        pending = await invites.pending_invites(actor.session, actor.roles, actor.now)
        if pending:  # an administrator's invitations still waiting, each with its withdraw
            reply.text(invites_text(pending, settings.tz), invites_keyboard(pending))
        question = _("Whom do you want to invite? Choose the role.")
        if args:
            question = _("There is no role called {word}.").format(word=esc(args[0]))
            question += "\n" + _("Whom do you want to invite? Choose the role.")
        shortcut = _("You can also type it: /invite worker and the grid code.")
        reply.text(question + "\n" + esc(shortcut), role_keyboard(roles))
        return
    grid = await grids.find_grid(actor.session, args[1])
    department = None
    if role == Role.DEPARTMENT:
        department = await staff.find_department(actor.session, args[2] if len(args) > 2 else "")
    reply.text(await _issue(bot, actor, role, grid, department))


async def _issue(
    bot: Bot, actor: Actor, role: Role, grid: Grid, department: Department | None
) -> str:
    """Issue the invitation (the service checks the asker manages ``grid``); its text."""
    issued = await invites.create_invite(
        actor.session,
        actor=actor.who,
        roles=actor.roles,
        role=role,
        grid=grid,
        now=actor.now,
        department=department,
    )
    me = await bot.me()
    link = deeplinks.start_link(me.username or "", deeplinks.invite_payload(issued.token))
    return _(
        "Invitation for a {role} of {grid}:\n{link}\n\n"
        "Send this link to that person only. It works once and expires in 72 hours."
    ).format(role=_(labels.ROLE[role]), grid=bold(grid.name), link=esc(link))


def _invite_grid_page(role: Role, choices: grids.GridChoices) -> tuple[str, InlineKeyboardMarkup]:
    question = _("Which grid will the {role} look after?").format(role=_(labels.ROLE[role]))

    def pack(grid_id: int, page: int, step: PickStep) -> str:
        return InviteGridCb(role=role, grid=grid_id, page=page, step=step).pack()

    return esc(grid_picker_text(question, choices)), grid_picker_keyboard(choices, pack)


def _departments(page: staff.DepartmentPage, grid_id: int) -> InlineKeyboardMarkup:
    def pack(department_id: int, page_no: int) -> str:
        return InviteDepartmentCb(grid=grid_id, department=department_id, page=page_no).pack()

    return department_keyboard(page, pack)


def _invitable(actor: Actor, role: Role) -> None:
    if role not in invites.invitable_roles(actor.roles):
        raise NotAllowed(N_("You cannot invite someone to this role."))


async def invite_role_pressed(
    query: CallbackQuery, callback_data: InviteRoleCb, reply: Replier, actor: Actor
) -> None:
    _invitable(actor, callback_data.role)
    choices = await grids.grid_choices(
        actor.session, actor.who, actor.roles, Action.MANAGE, actor.now
    )
    await query.answer()
    reply.show(pressed(query), *_invite_grid_page(callback_data.role, choices))


async def invite_grid_pressed(
    query: CallbackQuery,
    callback_data: InviteGridCb,
    bot: Bot,
    reply: Replier,
    actor: Actor,
) -> None:
    """A level of the grid tree (checked to be in the asker's scope), or the grid chosen."""
    role = callback_data.role
    _invitable(actor, role)
    if callback_data.step == PickStep.OPEN:
        choices = await grids.grid_choices(
            actor.session,
            actor.who,
            actor.roles,
            Action.MANAGE,
            actor.now,
            parent_id=callback_data.grid,
            page=callback_data.page,
        )
        await query.answer()
        reply.show(pressed(query), *_invite_grid_page(role, choices))
        return
    grid = await actor.session.get(Grid, callback_data.grid)
    if grid is None:
        await query.answer(_("This button is out of date. Send /start to begin again."))
        return
    if role == Role.DEPARTMENT:  # which department, before anything is issued
        await authorize(actor.session, actor.who, actor.roles, Action.MANAGE, grid, actor.now)
        await query.answer()
        page = await staff.department_page(actor.session)
        reply.show(pressed(query), esc(_("Which department?")), _departments(page, grid.id or 0))
        return
    text = await _issue(bot, actor, role, grid, None)
    await query.answer()
    reply.show(pressed(query), text)


async def invite_department_pressed(
    query: CallbackQuery,
    callback_data: InviteDepartmentCb,
    bot: Bot,
    reply: Replier,
    actor: Actor,
) -> None:
    _invitable(actor, Role.DEPARTMENT)
    grid = await actor.session.get(Grid, callback_data.grid)
    department = (
        await actor.session.get(Department, callback_data.department)
        if callback_data.department
        else None
    )
    if grid is None or (callback_data.department and department is None):
        await query.answer(_("This button is out of date. Send /start to begin again."))
        return
    if department is None:  # another page of departments
        await authorize(actor.session, actor.who, actor.roles, Action.MANAGE, grid, actor.now)
        await query.answer()
        page = await staff.department_page(actor.session, callback_data.page)
        reply.show(pressed(query), esc(_("Which department?")), _departments(page, grid.id or 0))
        return
    text = await _issue(bot, actor, Role.DEPARTMENT, grid, department)
    await query.answer()
    reply.show(pressed(query), text)


async def invite_revoke_pressed(
    query: CallbackQuery,
    callback_data: InviteRevokeCb,
    reply: Replier,
    actor: Actor,
    settings: Settings,
) -> None:
    invite = await invites.revoke_invite(
        actor.session,
        actor=actor.who,
        roles=actor.roles,
        invite_id=callback_data.id,
        now=actor.now,
    )
    if invite.used_at is not None:
        await query.answer(_("That invitation was already used; it cannot be withdrawn."))
    else:
        await query.answer(_("Invitation withdrawn: its link no longer works."))
    if isinstance(query.message, Message):
        pending = await invites.pending_invites(actor.session, actor.roles, actor.now)
        reply.edit(
            query.message.message_id,
            invites_text(pending, settings.tz),
            invites_keyboard(pending),
        )


async def qr_command(
    message: Message, command: CommandObject, bot: Bot, reply: Replier, actor: Actor
) -> None:
    grid = await named_or_home_grid(actor, command.args)
    await authorize(actor.session, actor.who, actor.roles, Action.VIEW, grid, actor.now)
    if not any(r.role != Role.RESIDENT for r in actor.roles):
        raise NotAllowed(N_("This command is for grid staff."))
    me = await bot.me()
    link = deeplinks.start_link(me.username or "", deeplinks.join_payload(grid.code))
    caption = _("Scan to join grid {name} ({code}) and reach your grid worker.").format(
        name=bold(grid.name), code=esc(grid.code)
    )
    reply.upload("sendPhoto", "photo", qr_png(link), f"qr-{grid.code}.png", caption=caption)


async def people_command(
    message: Message, command: CommandObject, reply: Replier, actor: Actor, settings: Settings
) -> None:
    words = split_args(command.args, 1)
    action = parse_word(words[0], PEOPLE_ACTIONS) if words else None
    if action == "forget":  # a resident of the register, not a member of staff
        await members_handlers.forget_command(
            words[1] if len(words) > 1 else "", reply, actor, settings
        )
        return
    if action is not None and len(words) < 2:  # no phone: pick the person with buttons
        page = await staff.list_people(actor.session, actor.roles)
        hint = esc(_("Tap a person to see what you can do."))
        reply.text(people_text(page, "") + "\n\n" + hint, people_keyboard(page))
        return
    if action == "mute":
        args = split_args(words[1] if len(words) > 1 else "", 2)
        await _mute(args, reply, actor)
        return
    if action in {"off", "set"}:
        args = split_args(words[1] if len(words) > 1 else "", 2)
        await _change_person(action, args, reply, actor)
        return
    query = command.args or ""
    page = await staff.list_people(actor.session, actor.roles, query=query)
    reply.text(people_text(page, query), people_keyboard(page))


async def _change_person(action: str, args: list[str], reply: Replier, actor: Actor) -> None:
    usage = _(
        "How to use: /people off &lt;phone&gt; — deactivate someone who left;\n"
        "/people set &lt;phone&gt; &lt;role&gt; &lt;grid code&gt; [department code] — give them "
        "a role over another grid (department staff: with their department)."
    )
    if not args or (action == "set" and len(args) < 3):
        reply.text(usage)
        return
    target = await staff.find_managed(
        actor.session, actor=actor.who, roles=actor.roles, phone=args[0], now=actor.now
    )
    if action == "off":
        await staff.deactivate(
            actor.session, actor=actor.who, roles=actor.roles, person=target, now=actor.now
        )
        reply.text(_("{name} is deactivated.").format(name=bold(target.name)))
        return
    role = parse_role(args[1])
    if role is None:
        reply.text(usage)
        return
    grid_word, department = args[2], None
    if role == Role.DEPARTMENT:  # the department's code comes last
        grid_word, *department_word = args[2].rsplit(None, 1)
        department = await staff.find_department(actor.session, "".join(department_word))
    grid = await grids.find_grid(actor.session, grid_word)
    await staff.rescope(
        actor.session,
        actor=actor.who,
        roles=actor.roles,
        person=target,
        role=role,
        grid=grid,
        now=actor.now,
        department=department,
    )
    reply.text(
        _("{name} is now {role} of {grid}.").format(
            name=bold(target.name), role=_(labels.ROLE[role]), grid=bold(grid.name)
        )
    )


async def _mute(args: list[str], reply: Replier, actor: Actor) -> None:
    if len(args) < 2 or not args[1].isdecimal() or len(args[1]) > 5:
        reply.text(
            _(
                "How to use: /people mute &lt;phone&gt; &lt;hours&gt; &lt;reason&gt; — "
                "stop someone from reporting for a while; hours 0 lifts it."
            )
        )
        return
    target = await staff.find_managed(
        actor.session, actor=actor.who, roles=actor.roles, phone=args[0], now=actor.now
    )
    hours = int(args[1])
    await staff.mute(
        actor.session,
        actor=actor.who,
        roles=actor.roles,
        person=target,
        hours=hours,
        reason=args[2] if len(args) > 2 else "",
        now=actor.now,
    )
    if hours:
        reply.text(
            _("{name} cannot report through the bot for {hours} hours.").format(
                name=bold(target.name), hours=hours
            )
        )
    else:
        reply.text(_("{name} can report again.").format(name=bold(target.name)))


async def people_page(
    query: CallbackQuery, callback_data: PeoplePageCb, reply: Replier, actor: Actor
) -> None:
    page = await staff.list_people(actor.session, actor.roles, page=callback_data.page)
    await query.answer()
    if isinstance(query.message, Message):
        reply.edit(
            query.message.message_id,
            people_text(page, ""),
            people_keyboard(page),
        )


async def mygrid_command(
    message: Message, reply: Replier, actor: Actor, settings: Settings
) -> None:
    assert actor.who.id is not None
    grid = await resident_grid(actor.session, actor.who.id)
    if grid is None:
        staff_grids = [r for r in actor.roles if r.role != Role.RESIDENT]
        grid = await actor.session.get(Grid, staff_grids[-1].grid_id) if staff_grids else None
    if grid is None:
        reply.text(
            _(
                "You have not joined a grid yet. Scan the QR code on your grid's notice board, "
                "or ask your grid worker for the link to join."
            )
        )
        return
    board = await notice_board(actor.session, grid)
    text = notice_text(board)
    counts = await members.counts_for_staff(actor.session, actor.roles, grid)
    if counts is not None:  # staff of the grid see how many people live there
        text += "\n\n" + counts_text(counts)
        let = await rentals.counts_for_staff(
            actor.session, actor.roles, grid, actor.now.astimezone(settings.tz).date()
        )
        if let is not None:  # rental houses, tenants, lapsed residence registrations
            text += "\n" + rental_counts_text(let)
    party_text = mygrid_party_text(  # 党员联系户: coverage, the household's contact, one's own
        t,
        await party.coverage(actor.session, actor.roles, grid, actor.now, settings),
        await party.contact_of_household(actor.session, actor.who.household_id),
        await party.my_plans(actor.session, actor.who, actor.now, settings),
    )
    if party_text:
        text += "\n\n" + party_text
    outcomes = await posted_outcomes(actor.session, grid, actor.now)
    if outcomes:  # publicly noticed outcomes (公示) while they last
        text += "\n\n" + posted_outcomes_text(outcomes, t, settings.tz)
    reply.text(text)
    for worker in board.workers:
        if worker.phone:
            name = _(ASIDE).format(text=worker.name, aside=_(labels.ROLE[Role.WORKER]))
            reply.contact(worker.phone, name)


async def households_command(
    message: Message, command: CommandObject, reply: Replier, actor: Actor, settings: Settings
) -> None:
    query = command.args or ""
    page = await households.list_households(
        actor.session, actor.roles, query=query, vault=members.optional_vault(settings.people)
    )
    reply.text(households_text(page, query), households_keyboard(page))


async def households_page(
    query: CallbackQuery, callback_data: HouseholdPageCb, reply: Replier, actor: Actor
) -> None:
    page = await households.list_households(actor.session, actor.roles, page=callback_data.page)
    await query.answer()
    if isinstance(query.message, Message):
        reply.edit(query.message.message_id, households_text(page, ""), households_keyboard(page))


async def household_opened(
    query: CallbackQuery,
    callback_data: HouseholdCb,
    reply: Replier,
    actor: Actor,
    settings: Settings,
) -> None:
    card = await households.household_card(
        actor.session,
        person=actor.who,
        roles=actor.roles,
        household_id=callback_data.id,
        now=actor.now,
        vault=members.optional_vault(settings.people),
    )
    await query.answer()
    text = household_text(card)
    section = members_section(card.members)
    keyboard = members_keyboard(card.members)
    reply.text(
        text + ("\n\n" + section if section else ""),
        InlineKeyboardMarkup(inline_keyboard=keyboard) if keyboard else None,
    )


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(grid_command, Command("grid"))
    router.message.register(check_command, Command("check"))
    router.message.register(invite_command, Command("invite"))
    router.message.register(qr_command, Command("qr"))
    router.message.register(people_command, Command("people"))
    router.message.register(mygrid_command, Command("mygrid"))
    router.message.register(households_command, Command("households"))
    router.callback_query.register(grid_page, GridPageCb.filter())
    router.callback_query.register(households_page, HouseholdPageCb.filter())
    router.callback_query.register(household_opened, HouseholdCb.filter())
    router.callback_query.register(people_page, PeoplePageCb.filter())
    router.callback_query.register(invite_revoke_pressed, InviteRevokeCb.filter())
    router.callback_query.register(invite_role_pressed, InviteRoleCb.filter())
    router.callback_query.register(invite_grid_pressed, InviteGridCb.filter())
    router.callback_query.register(invite_department_pressed, InviteDepartmentCb.filter())
    return router
