"""Household visits in the chat: /visit, /diary, /quota, /quota_rules, and the push's buttons.

/visit: household (buttons, most urgent first; typed words search) → kind (buttons) → what was
learnt (typed): logged, with the quota it counted toward → photo and/or location attached, or
Skip → "found a problem?" → a category → a ticket for the household's grid. The "✅ visited"
button of the morning push asks only the kind and the note. A household already visited today
is asked about first. Logging or withdrawing a visit edits the day's push in place. The state
diagram is in ``docs/visits.md``. Every press is re-checked by the services (a forged
household id is refused by :func:`bot.services.daily_push.visitable`; changing a visit by
``edit_visit``).
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from bot import labels
from bot.errors import InvalidInput, NotAllowed
from bot.i18n import N_
from bot.services import daily_push, follow_ups, push_progress, quotas, tickets, visits
from bot.services.actor import Actor
from bot.services.ticket_numbers import shown_number
from bot.settings import Settings
from bot.telegram import tag_views
from bot.telegram import visit_views as views
from bot.telegram.args import QUOTA_RULE_ACTIONS, parse_word, split_args
from bot.telegram.callbacks import QuotaRuleAction, QuotaRuleCb
from bot.telegram.cancelling import end_by_button
from bot.telegram.i18n import t
from bot.telegram.render import esc
from bot.telegram.replies import Replier, pressed
from bot.telegram.ticket_views import card_keyboard, card_text
from bot.telegram.visit_views import (
    QUOTA_ADD_USAGE,
    QUOTA_RETIRE_USAGE,
    DiaryAction,
    DiaryCb,
    HistoryCb,
    VisitKindCb,
    VisitPageCb,
    VisitPickCb,
    VisitProblemCb,
    VisitStep,
    VisitStepCb,
)
from handlers import inspections as inspection_handlers
from models import Role, VisitKind

DIARY_PAGE = 10
QUOTA_USAGE = N_("/quota_rules set <number> <count>")
QUOTA_USAGES = (QUOTA_USAGE, QUOTA_ADD_USAGE, QUOTA_RETIRE_USAGE)


class VisitFlow(StatesGroup):
    """The steps of /visit."""

    household = State()  # choosing; typed words search
    kind = State()
    note = State()
    extras = State()  # optional photo and location
    problem = State()  # logged; "found a problem?"
    category = State()


class DiaryEdit(StatesGroup):
    note = State()  # the new note of a visit being corrected


def _refusal(error: InvalidInput) -> str:
    return t(error.message, **{key: esc(value) for key, value in error.params.items()})


# --- /visit: choosing the household -------------------------------------------------------------


async def _show_households(
    reply: Replier,
    actor: Actor,
    state: FSMContext,
    settings: Settings,
    *,
    query: str,
    page: int,
    edit: int | None = None,
) -> None:
    await quotas.ensure_default_rules(actor.session, actor.now, tz=settings.tz)
    choice = await daily_push.households_to_visit(
        actor.session, actor.who, actor.roles, actor.now, query=query, page=page, tz=settings.tz
    )
    await state.set_state(VisitFlow.household)
    await state.update_data(query=query, page=choice.page)
    if not choice.rows:
        text = t(views.NO_MATCH, query=esc(query)) if query else t(views.NO_HOUSEHOLDS)
        reply.text(text, views.cancel_keyboard(t))
        return
    text = views.households_text(choice.total, choice.page, choice.pages, query, t)
    keyboard = views.households_keyboard(choice.rows, choice.page, choice.pages, t)
    if edit is not None:
        reply.edit(edit, text, keyboard)
    else:
        reply.text(text, keyboard)


async def visit_command(
    message: Message,
    command: CommandObject,
    reply: Replier,
    actor: Actor,
    state: FSMContext,
    settings: Settings,
) -> None:
    await state.clear()
    query = daily_push.clean_search(command.args)
    await _show_households(reply, actor, state, settings, query=query, page=0)


async def search_typed(
    message: Message, reply: Replier, actor: Actor, state: FSMContext, settings: Settings
) -> None:
    query = daily_push.clean_search(message.text)
    await _show_households(reply, actor, state, settings, query=query, page=0)


async def page_pressed(
    query: CallbackQuery,
    callback_data: VisitPageCb,
    reply: Replier,
    actor: Actor,
    state: FSMContext,
    settings: Settings,
) -> None:
    await query.answer()
    words = str((await state.get_data()).get("query", ""))
    edit = query.message.message_id if query.message is not None else None
    await _show_households(
        reply, actor, state, settings, query=words, page=callback_data.page, edit=edit
    )


async def household_picked(
    query: CallbackQuery,
    callback_data: VisitPickCb,
    reply: Replier,
    actor: Actor,
    state: FSMContext,
    settings: Settings,
) -> None:
    target = await push_progress.visit_target(
        actor.session, actor.who, actor.roles, callback_data.id, actor.now, tz=settings.tz
    )
    household = target.household
    await query.answer()
    earlier = target.visited_today
    if earlier is not None and not callback_data.again:  # a second visit today: ask first
        reply.text(
            t(
                views.ALREADY_VISITED,
                name=esc(household.head_name),
                time=earlier.visited_at.astimezone(settings.tz).strftime("%H:%M"),
                kind=esc(t(labels.VISIT_KIND[VisitKind(earlier.kind)])),
            ),
            views.again_keyboard(household.id or 0, callback_data.quick, t),
        )
        return
    await state.clear()
    await state.set_state(VisitFlow.kind)
    await state.update_data(household_id=household.id, quick=callback_data.quick)
    reply.text(t(views.CHOOSE_KIND, name=esc(household.head_name)), views.kind_keyboard(t))


# --- kind, note, photo and location -------------------------------------------------------------


async def kind_chosen(
    query: CallbackQuery, callback_data: VisitKindCb, reply: Replier, state: FSMContext
) -> None:
    await query.answer()
    await state.update_data(kind=callback_data.kind.value)
    await state.set_state(VisitFlow.note)
    reply.text(t(views.WRITE_NOTE), views.cancel_keyboard(t))


async def use_the_buttons(message: Message, reply: Replier, state: FSMContext) -> None:
    """Typed text where a button is expected: say so, and show the buttons again."""
    step = await state.get_state()
    if step == VisitFlow.kind.state:
        reply.text(t(views.USE_BUTTONS), views.kind_keyboard(t))
    elif step == VisitFlow.category.state:
        reply.text(t(views.USE_BUTTONS), views.category_keyboard(t))
    elif step == VisitFlow.problem.state:
        reply.text(t(views.USE_BUTTONS), views.problem_keyboard(t))
    else:
        data = await state.get_data()
        got_one = bool(data.get("photo") or data.get("place"))
        reply.text(t(views.ADD_EXTRAS), views.extras_keyboard(t, got_one=got_one))


async def note_typed(
    message: Message, reply: Replier, actor: Actor, state: FSMContext, settings: Settings
) -> None:
    try:
        note = visits.parse_note(message.text or "")
    except InvalidInput as error:
        reply.text(f"{_refusal(error)}\n\n{t(views.WRITE_NOTE)}", views.cancel_keyboard(t))
        return
    data = await state.get_data()
    result = await push_progress.log_visit(
        actor.session,
        actor.who,
        actor.roles,
        int(data.get("household_id", 0)),
        str(data.get("kind", "")),
        note,
        actor.now,
        settings=settings,
        render=views.render_push,
    )
    await state.set_data({"visit_id": result.visit.id})
    kind = VisitKind(result.visit.kind)
    if data.get("quick"):  # from the push: straight to "found a problem?"
        await state.set_state(VisitFlow.problem)
        reply.text(
            views.logged_text(result.household, kind, result.counted, t),
            views.problem_keyboard(t),
        )
        return
    await state.set_state(VisitFlow.extras)  # saved already; a photo or the place may follow
    reply.text(
        views.logged_text(result.household, kind, result.counted, t, then=views.ADD_EXTRAS),
        views.extras_keyboard(t, got_one=False),
    )


async def not_typed(message: Message, reply: Replier) -> None:
    """A photo, sticker or voice message where the diary note is expected."""
    reply.text(t(views.WRITE_NOTE), views.cancel_keyboard(t))


async def extra_sent(
    message: Message, reply: Replier, actor: Actor, state: FSMContext, settings: Settings
) -> None:
    """A photo or the place, attached to the visit already saved."""
    data = await state.get_data()
    photo = message.photo[-1].file_id if message.photo else None
    place = message.location
    await visits.add_extras(
        actor.session,
        actor.who,
        actor.roles,
        int(data.get("visit_id", 0)),
        actor.now,
        photo_file_id=photo,
        latitude=place.latitude if place is not None else None,
        longitude=place.longitude if place is not None else None,
        tz=settings.tz,
    )
    got = {"photo": bool(data.get("photo") or photo), "place": bool(data.get("place") or place)}
    await state.update_data(got)
    if all(got.values()):
        _ask_problem(reply)
        await state.set_state(VisitFlow.problem)
        return
    reply.text(t(views.GOT_EXTRA), views.extras_keyboard(t, got_one=True))


async def extras_done(query: CallbackQuery, reply: Replier, state: FSMContext) -> None:
    await query.answer()
    await state.set_state(VisitFlow.problem)
    _ask_problem(reply)


def _ask_problem(reply: Replier) -> None:
    reply.text(t(views.PROBLEM_QUESTION), views.problem_keyboard(t))


# --- "found a problem?" --------------------------------------------------------------------------


async def problem_answered(
    query: CallbackQuery, callback_data: VisitStepCb, reply: Replier, state: FSMContext
) -> None:
    await query.answer()
    if callback_data.step == VisitStep.PROBLEM:
        await state.set_state(VisitFlow.category)
        reply.text(t(views.CHOOSE_CATEGORY), views.category_keyboard(t))
        return
    await state.clear()
    reply.text(t(views.NO_PROBLEM))


async def category_chosen(
    query: CallbackQuery,
    callback_data: VisitProblemCb,
    reply: Replier,
    actor: Actor,
    state: FSMContext,
    settings: Settings,
) -> None:
    visit_id = int((await state.get_data()).get("visit_id", 0))
    ticket = await daily_push.report_problem(
        actor.session,
        actor.notifier,
        worker=actor.who,
        visit_id=visit_id,
        category=callback_data.category,
        settings=settings,
        now=actor.now,
    )
    await query.answer()
    await state.clear()
    grid_name, reporter_name, holder, photos = await tickets.card_facts(actor.session, ticket)
    owners = {owner.id for owner in await tickets.owners(actor.session, ticket)}
    filed = t(views.TICKET_FILED, number=shown_number(ticket), name=esc(grid_name))
    if actor.who.id in owners:  # the card reaches them as an owner already
        reply.text(filed)
        return
    card = card_text(
        ticket,
        t,
        settings.tz,
        grid_name=grid_name,
        reporter_name=reporter_name,
        holder=holder,
        photos=photos,
    )
    reply.text(
        f"{filed}\n\n{card}", card_keyboard(ticket, t), ref=f"tc:{ticket.id}:{actor.who.id}"
    )


async def cancelled(query: CallbackQuery, reply: Replier, state: FSMContext) -> None:
    saved = (await state.get_data()).get("visit_id") is not None
    await end_by_button(
        query, reply, state, t(views.CANCELLED_SAVED if saved else views.CANCELLED)
    )


# --- /diary --------------------------------------------------------------------------------------


async def diary_command(
    message: Message, command: CommandObject, reply: Replier, actor: Actor, settings: Settings
) -> None:
    if command.args and command.args.strip():
        household = await daily_push.household_by_code(actor.session, command.args)
        await _history(reply, actor, settings, household.id or 0)
        return
    await _diary_page(reply, actor, settings, before=None)


async def _diary_page(
    reply: Replier, actor: Actor, settings: Settings, *, before: int | None
) -> None:
    assert actor.who.id is not None
    entries = await visits.diary(actor.session, actor.who.id, limit=DIARY_PAGE, before=before)
    reply.text(
        views.diary_text(entries, t, settings.tz),
        views.diary_keyboard(entries, t, more=len(entries) == DIARY_PAGE),
    )


async def _history(reply: Replier, actor: Actor, settings: Settings, household_id: int) -> None:
    entries = await visits.household_history(
        actor.session, actor.who, actor.roles, household_id, actor.now
    )
    household = await daily_push.household_named(actor.session, household_id)
    label = f"{household.head_name} · {household.address}"
    reply.text(views.diary_text(entries, t, settings.tz, household=label))


async def history_pressed(
    query: CallbackQuery,
    callback_data: HistoryCb,
    reply: Replier,
    actor: Actor,
    settings: Settings,
) -> None:
    await _history(reply, actor, settings, callback_data.id)
    await query.answer()


async def diary_pressed(
    query: CallbackQuery,
    callback_data: DiaryCb,
    reply: Replier,
    actor: Actor,
    state: FSMContext,
    settings: Settings,
) -> None:
    action, visit_id = callback_data.action, callback_data.id
    if action == DiaryAction.MORE:
        await query.answer()
        await _diary_page(reply, actor, settings, before=visit_id)
        return
    if action == DiaryAction.EDIT:
        await query.answer()
        await state.set_state(DiaryEdit.note)
        await state.update_data(visit_id=visit_id)
        reply.text(t("Write the corrected diary note for this visit:"), views.cancel_keyboard(t))
        return
    if action == DiaryAction.WITHDRAW:
        await query.answer()
        reply.text(
            t("Withdraw this visit? It will no longer count toward any quota."),
            views.withdraw_keyboard(visit_id, t),
        )
        return
    await push_progress.withdraw_visit(
        actor.session,
        actor.who,
        actor.roles,
        visit_id,
        actor.now,
        settings=settings,
        render=views.render_push,
    )
    await query.answer(t("Withdrawn."))
    if query.message is not None:
        reply.edit(query.message.message_id, t("The visit was withdrawn."))


async def edited_note(
    message: Message, reply: Replier, actor: Actor, state: FSMContext, settings: Settings
) -> None:
    visit_id = int((await state.get_data()).get("visit_id", 0))
    try:
        result = await visits.edit_visit(
            actor.session,
            actor.who,
            actor.roles,
            visit_id,
            actor.now,
            note=message.text or "",
            tz=settings.tz,
        )
    except InvalidInput as error:
        reply.text(_refusal(error), views.cancel_keyboard(t))
        return
    await state.clear()
    reply.text(t("The visit was corrected.") + "\n" + esc(views.counted_text(result.counted, t)))


# --- /quota and /quota_rules ---------------------------------------------------------------------


async def quota_command(
    message: Message, reply: Replier, actor: Actor, settings: Settings
) -> None:
    await quotas.ensure_default_rules(actor.session, actor.now, tz=settings.tz)
    wide = [r for r in actor.roles if r.role in {Role.CENTER, Role.SUPERVISOR, Role.ADMIN}]
    heads = [r for r in actor.roles if r.role == Role.HEAD]
    workers = [r for r in actor.roles if r.role == Role.WORKER]
    if wide:
        rows = await quotas.progress(
            actor.session, actor.now, by="grid", scope_path=wide[0].grid_path, tz=settings.tz
        )
        title = t("Visit quotas by grid: {grid}", grid=wide[0].grid_name)
    elif heads:
        rows = await quotas.progress(
            actor.session, actor.now, by="worker", scope_path=heads[0].grid_path, tz=settings.tz
        )
        rows = [row for row in rows if row.subject_id is not None]
        title = t("Visit quotas of your workers: {grid}", grid=heads[0].grid_name)
    elif workers:
        rows = await quotas.progress(
            actor.session,
            actor.now,
            by="worker",
            scope_path=workers[0].grid_path,
            worker_ids=[actor.who.id or 0],
            tz=settings.tz,
        )
        title = t("Your visit quotas: households that got their visits")
    else:
        raise NotAllowed(N_("This command is for grid staff."))
    # follow-ups of tagged people (随访) count too: per tag, people followed up this period
    followed = await follow_ups.current_progress(
        actor.session,
        actor.now,
        tz=settings.tz,
        worker_ids=None if (wide or heads) else [actor.who.id or 0],
        scope_path=(wide or heads or workers)[0].grid_path,
    )
    reply.text(
        "\n".join([views.progress_text(rows, t, title), *tag_views.progress_lines(followed, t)])
    )
    if wide or heads:  # and how the places of the grid are inspected (巡查覆盖率)
        await inspection_handlers.coverage_reply(reply, actor, (wide or heads)[0], settings)


async def quota_rules_command(
    message: Message,
    command: CommandObject,
    reply: Replier,
    actor: Actor,
    state: FSMContext,
    settings: Settings,
) -> None:
    words = split_args(command.args, maxsplit=5)
    if words:
        action = parse_word(words[0], QUOTA_RULE_ACTIONS)
        if action == "add":
            await _ask_add_rule(words, reply, actor, state, settings)
        elif action == "retire" and len(words) == 2 and words[1].isdigit():
            rule = await quotas.rule_to_retire(
                actor.session, actor.who, actor.roles, int(words[1][:9]), actor.now, tz=settings.tz
            )
            reply.text(
                views.rule_question(rule, actor.locale, t, retire=True),
                views.rule_confirm_keyboard(QuotaRuleAction.RETIRE, rule.id or 0, t),
            )
        elif action == "set" and len(words) == 3 and words[1].isdigit():
            rule = await quotas.change_rule(
                actor.session,
                actor.who,
                actor.roles,
                int(words[1][:9]),
                actor.now,
                required=words[2],
                tz=settings.tz,
            )
            reply.text(
                t(
                    "Changed from this period on: {rule}",
                    rule=esc(quotas.describe_rule(rule, actor.locale)),
                )
            )
        else:
            usages = {"set": (QUOTA_USAGE,), "retire": (QUOTA_RETIRE_USAGE,)}.get(
                action or "", QUOTA_USAGES
            )
            usage = "\n".join(_(msgid) for msgid in usages)
            raise InvalidInput(N_("Please write it like this: {usage}"), usage=usage)
        return
    if not any(r.role == Role.ADMIN for r in actor.roles):
        raise NotAllowed(N_("This command is for administrators."))
    await quotas.ensure_default_rules(actor.session, actor.now, tz=settings.tz)
    rules = await quotas.list_rules(actor.session, actor.now, tz=settings.tz)
    reply.text(views.rules_text(rules, actor.locale, t))


async def _ask_add_rule(
    words: list[str],
    reply: Replier,
    actor: Actor,
    state: FSMContext,
    settings: Settings,
) -> None:
    """/quota_rules add: parse and check the words, keep them, and ask "add this rule?"."""
    if len(words) < 6:
        raise InvalidInput(N_("Please write it like this: {usage}"), usage=_(QUOTA_ADD_USAGE))
    typed = {
        "households": words[1],
        "counts": words[2],
        "period": words[3],
        "required": words[4],
        "name": words[5],
    }
    draft = quotas.draft_rule(actor.who, actor.roles, actor.now, tz=settings.tz, **typed)
    await state.update_data(quota_rule=typed)
    reply.text(
        views.rule_question(draft, actor.locale, t, retire=False),
        views.rule_confirm_keyboard(QuotaRuleAction.ADD, 0, t),
    )


async def quota_rule_confirmed(
    query: CallbackQuery,
    callback_data: QuotaRuleCb,
    reply: Replier,
    actor: Actor,
    state: FSMContext,
    settings: Settings,
) -> None:
    """The "yes" of /quota_rules add or retire; the service checks the presser again."""
    locale = actor.locale
    if callback_data.action is QuotaRuleAction.RETIRE:
        rule = await quotas.retire_rule(
            actor.session, actor.who, actor.roles, callback_data.rule, actor.now, tz=settings.tz
        )
        text = t("Retired from this period on: {rule}", rule=esc(quotas.rule_name(rule, locale)))
    else:
        data = await state.get_data()
        typed = data.get("quota_rule")
        if not isinstance(typed, dict) or not all(
            isinstance(typed.get(key), str) for key in RULE_WORDS
        ):
            await query.answer(_("This button is out of date. Send /start to begin again."))
            return
        rule = await quotas.add_rule(
            actor.session,
            actor.who,
            actor.roles,
            actor.now,
            tz=settings.tz,
            **{key: typed[key] for key in RULE_WORDS},
        )
        await state.update_data(quota_rule=None)
        text = t(
            "Added from this period on (number {id}): {rule}",
            id=rule.id,
            rule=esc(quotas.describe_rule(rule, locale)),
        )
    await query.answer()
    reply.show(pressed(query), text)


RULE_WORDS = ("households", "counts", "period", "required", "name")


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(visit_command, Command("visit"))
    router.message.register(diary_command, Command("diary"))
    router.message.register(quota_command, Command("quota"))
    router.message.register(quota_rules_command, Command("quota_rules"))
    router.callback_query.register(quota_rule_confirmed, QuotaRuleCb.filter())
    router.callback_query.register(household_picked, VisitPickCb.filter())
    router.callback_query.register(page_pressed, VisitPageCb.filter())
    router.callback_query.register(kind_chosen, StateFilter(VisitFlow.kind), VisitKindCb.filter())
    router.callback_query.register(
        extras_done, StateFilter(VisitFlow.extras), VisitStepCb.filter(F.step == VisitStep.SKIP)
    )
    router.callback_query.register(
        problem_answered,
        StateFilter(VisitFlow.problem),
        VisitStepCb.filter(F.step.in_({VisitStep.PROBLEM, VisitStep.NO_PROBLEM})),
    )
    router.callback_query.register(cancelled, VisitStepCb.filter(F.step == VisitStep.CANCEL))
    router.callback_query.register(
        category_chosen, StateFilter(VisitFlow.category), VisitProblemCb.filter()
    )
    router.callback_query.register(history_pressed, HistoryCb.filter())
    router.callback_query.register(diary_pressed, DiaryCb.filter())
    not_a_command = F.text & ~F.text.startswith("/")
    router.message.register(search_typed, StateFilter(VisitFlow.household), not_a_command)
    router.message.register(note_typed, StateFilter(VisitFlow.note), not_a_command)
    router.message.register(not_typed, StateFilter(VisitFlow.note), ~F.text)
    router.message.register(extra_sent, StateFilter(VisitFlow.extras), F.photo | F.location)
    router.message.register(edited_note, StateFilter(DiaryEdit.note), not_a_command)
    router.message.register(
        use_the_buttons,
        StateFilter(VisitFlow.kind, VisitFlow.extras, VisitFlow.problem, VisitFlow.category),
        ~F.text.startswith("/"),
    )
    return router
