"""Inspections (巡查) in the chat: /inspect, the checklist as buttons, the hazard notices.

/inspect [words]: the places due, most overdue first (re-inspections 🔁 among them); typed
words search by name or code → the checklist, one item at a time: ✅ pass / ❌ fail / ➖ n/a
(or "all the rest pass"); a failure asks for its photo → all answered: send the location or
press Save → saved, hazards opened with fix-by dates, the responsible person told (a button
per hazard: "fixed" → a photo). 🚫 records a refusal, which becomes a ticket. A saved
inspection can be withdrawn by its button under the visit rules, and a routine one's answers
corrected (✏️: the item, its new answer, a photo for a new failure). The state diagram is in
``docs/inspections.md``; every press is re-checked by the services.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message

from bot.errors import InvalidInput
from bot.i18n import gettext_for
from bot.services import (
    hazards,
    inspection_ledgers,
    inspections,
    outbox,
    place_policy,
    push_progress,
)
from bot.services.actor import Actor
from bot.services.daily_push import locale_of
from bot.services.inspections import RECHECK, ROUTINE, WEEK
from bot.services.people import RoleInGrid
from bot.services.ticket_numbers import shown_number
from bot.settings import Settings
from bot.telegram import inspection_views as views
from bot.telegram import visit_views
from bot.telegram.cancelling import end_by_button
from bot.telegram.i18n import t
from bot.telegram.inspection_views import (
    STEP_RESULT,
    CorrectCb,
    CorrectStep,
    HazardFixedCb,
    InspectionAction,
    InspectionCb,
    InspectPickCb,
    InspectStep,
    InspectStepCb,
)
from bot.telegram.render import esc
from bot.telegram.replies import Replier, markup_json
from models import Grid, Place


class InspectFlow(StatesGroup):
    place = State()  # choosing; typed words search
    checking = State()  # the checklist's buttons; a location saves once all are answered
    photo = State()  # the photo of a failed item


class CorrectFlow(StatesGroup):
    photo = State()  # the photo of an item corrected to a failure


class HazardFix(StatesGroup):
    photo = State()  # the responsible person's photo of a fixed hazard


async def _show_places(
    reply: Replier, actor: Actor, state: FSMContext, settings: Settings, query: str
) -> None:
    policy = await place_policy.current_policy(actor.session)
    paths = inspections.inspector_paths(actor.roles)
    if not paths:
        raise InvalidInput(views.NO_PLACES)
    due = await inspections.due_places(
        actor.session, paths, policy, actor.now + WEEK, search=query
    )
    await state.set_state(InspectFlow.place)
    if not due:
        text = t(views.NO_MATCH, query=esc(query)) if query else t(views.NO_PLACES)
        reply.text(text)
        return
    reply.text(
        t(views.CHOOSE_PLACE, count=len(due)),
        views.places_keyboard(due, policy, actor.now, settings.tz, t),
    )


async def inspect_command(
    message: Message,
    command: CommandObject,
    reply: Replier,
    actor: Actor,
    state: FSMContext,
    settings: Settings,
) -> None:
    await state.clear()
    await _show_places(reply, actor, state, settings, inspections.clean_search(command.args))


async def search_typed(
    message: Message, reply: Replier, actor: Actor, state: FSMContext, settings: Settings
) -> None:
    await _show_places(reply, actor, state, settings, inspections.clean_search(message.text))


async def _lines(actor: Actor, place: Place, kind: str) -> tuple[list[inspections.CheckLine], str]:
    policy = await place_policy.current_policy(actor.session)
    place_type = policy.type(place.type_key)
    lines = await inspections.checklist_of(actor.session, place, policy, kind)
    return lines, place_type.name if place_type is not None else place.type_key


async def place_picked(
    query: CallbackQuery,
    callback_data: InspectPickCb,
    reply: Replier,
    actor: Actor,
    state: FSMContext,
) -> None:
    place, _grid = await inspections.place_to_inspect(
        actor.session, actor.who, actor.roles, callback_data.id, actor.now
    )
    kind = RECHECK if callback_data.recheck else ROUTINE
    lines, type_name = await _lines(actor, place, kind)
    await query.answer()
    if not lines:
        reply.text(t("There is nothing to re-inspect at this place."))
        return
    await state.clear()
    await state.set_state(InspectFlow.checking)
    await state.update_data(place_id=place.id, kind=kind, answers={}, photos={})
    reply.text(
        views.checklist_text(place, type_name, kind == RECHECK, lines, {}, {}, t),
        views.checklist_keyboard(lines, {}, kind == RECHECK, t),
    )


async def _flow(
    actor: Actor, state: FSMContext
) -> tuple[Place, str, list[Any], str, dict[str, str], dict[str, str]]:
    data = await state.get_data()
    place, _grid = await inspections.place_to_inspect(
        actor.session, actor.who, actor.roles, int(data.get("place_id", 0)), actor.now
    )
    kind = str(data.get("kind", ROUTINE))
    lines, type_name = await _lines(actor, place, kind)
    answers = {str(k): str(v) for k, v in dict(data.get("answers", {})).items()}
    photos = {str(k): str(v) for k, v in dict(data.get("photos", {})).items()}
    return place, kind, lines, type_name, answers, photos


def _checklist(
    reply: Replier,
    message_id: int | None,
    place: Place,
    type_name: str,
    kind: str,
    lines: list[Any],
    answers: dict[str, str],
    photos: dict[str, str],
) -> None:
    text = views.checklist_text(place, type_name, kind == RECHECK, lines, answers, photos, t)
    if views.next_item(lines, answers) is None:
        text += "\n\n" + esc(t(views.SEND_LOCATION))
    reply.show(message_id, text, views.checklist_keyboard(lines, answers, kind == RECHECK, t))


async def step_pressed(
    query: CallbackQuery,
    callback_data: InspectStepCb,
    reply: Replier,
    actor: Actor,
    state: FSMContext,
    settings: Settings,
) -> None:
    step = callback_data.step
    if step == InspectStep.CANCEL:
        await end_by_button(query, reply, state, t(views.CANCELLED))
        return
    place, kind, lines, type_name, answers, photos = await _flow(actor, state)
    message_id = query.message.message_id if query.message is not None else None
    pending = (await state.get_data()).get("pending")
    if pending and step != InspectStep.REFUSED:  # the failed item's photo comes first
        item = next((line.text for line in lines if line.key == pending), "")
        await query.answer(t(views.SEND_PHOTO, item=item)[:200])
        return
    if step == InspectStep.REFUSED:
        finding = await hazards.record_refusal(
            actor.session,
            actor.notifier,
            inspector=actor.who,
            roles=actor.roles,
            place_id=place.id or 0,
            latitude=None,
            longitude=None,
            settings=settings,
            now=actor.now,
        )
        await query.answer()
        await state.clear()
        assert finding.ticket is not None
        await push_progress.refresh_push(
            actor.session, actor.who, actor.now, settings, visit_views.render_push
        )
        reply.show(
            message_id,
            esc(
                t(
                    views.REFUSED,
                    number=shown_number(finding.ticket),
                    department=finding.extra.get("department", "—"),
                )
            ),
        )
        return
    if step == InspectStep.SAVE:
        await query.answer()
        await _save(reply, actor, state, settings, None, None)
        return
    current = views.next_item(lines, answers)
    if current is None or callback_data.item != current:
        await query.answer(t(views.USE_BUTTONS))  # an old button, or a forged index
        return
    if step == InspectStep.REST_PASS:
        for line in lines:
            answers.setdefault(line.key, "pass")
    else:
        answers[lines[current].key] = STEP_RESULT[step]
    await state.update_data(answers=answers)
    await query.answer()
    if step == InspectStep.FAIL:
        await state.set_state(InspectFlow.photo)
        await state.update_data(pending=lines[current].key)
        _checklist(reply, message_id, place, type_name, kind, lines, answers, photos)
        reply.text(esc(t(views.SEND_PHOTO, item=lines[current].text)))
        return
    _checklist(reply, message_id, place, type_name, kind, lines, answers, photos)


async def photo_sent(message: Message, reply: Replier, actor: Actor, state: FSMContext) -> None:
    place, kind, lines, type_name, answers, photos = await _flow(actor, state)
    pending = str((await state.get_data()).get("pending", ""))
    if message.photo is None:
        item = next((line.text for line in lines if line.key == pending), "")
        reply.text(esc(t(views.SEND_PHOTO, item=item)))
        return
    photos[pending] = message.photo[-1].file_id
    await state.update_data(photos=photos, pending=None)
    await state.set_state(InspectFlow.checking)
    _checklist(reply, None, place, type_name, kind, lines, answers, photos)


async def location_sent(
    message: Message, reply: Replier, actor: Actor, state: FSMContext, settings: Settings
) -> None:
    _place, _kind, lines, _name, answers, _photos = await _flow(actor, state)
    if views.next_item(lines, answers) is not None or message.location is None:
        reply.text(esc(t(views.USE_BUTTONS)))
        return
    await _save(
        reply, actor, state, settings, message.location.latitude, message.location.longitude
    )


async def use_the_buttons(message: Message, reply: Replier) -> None:
    reply.text(esc(t(views.USE_BUTTONS)))


async def _save(
    reply: Replier,
    actor: Actor,
    state: FSMContext,
    settings: Settings,
    latitude: float | None,
    longitude: float | None,
) -> None:
    place, kind, _lines, _name, answers, photos = await _flow(actor, state)
    finding = await hazards.record_inspection(
        actor.session,
        actor.notifier,
        inspector=actor.who,
        roles=actor.roles,
        place_id=place.id or 0,
        kind=kind,
        results=answers,
        photos=photos,
        latitude=latitude,
        longitude=longitude,
        settings=settings,
        now=actor.now,
    )
    await state.clear()
    await push_progress.refresh_push(
        actor.session, actor.who, actor.now, settings, visit_views.render_push
    )
    reply.text(
        views.saved_text(finding, settings.tz, t),
        views.withdraw_keyboard(finding.inspection.id or 0, t, correct=kind == ROUTINE),
    )
    owner = finding.responsible
    if owner is not None and owner.telegram_id is not None and finding.opened:
        tr = partial(gettext_for, locale_of(owner, settings))
        text, keyboard = views.owner_notice(place, finding.opened, settings.tz, tr)
        outbox.send_text(
            actor.session,
            chat_id=owner.telegram_id,
            text=text,
            now=actor.now,
            reply_markup=markup_json(keyboard),
            person_id=owner.id,
        )


async def inspection_pressed(
    query: CallbackQuery,
    callback_data: InspectionCb,
    reply: Replier,
    actor: Actor,
    settings: Settings,
) -> None:
    message_id = query.message.message_id if query.message is not None else None
    if callback_data.action == InspectionAction.CORRECT:
        inspection, _place, _amended, lines = await hazards.correctable(
            actor.session, actor.who, actor.roles, callback_data.id, actor.now, settings.tz
        )
        await query.answer()
        reply.text(
            esc(t(views.CORRECT_WHICH, days=hazards.CORRECTION_WINDOW.days)),
            views.correct_items_keyboard(callback_data.id, lines, inspection.results, t),
        )
        return
    if callback_data.action == InspectionAction.WITHDRAW:
        await inspections.changeable(
            actor.session, actor.who, actor.roles, callback_data.id, actor.now, settings.tz
        )
        await query.answer()
        reply.text(
            esc(t(views.WITHDRAW_ASK)), views.confirm_withdraw_keyboard(callback_data.id, t)
        )
        return
    await inspections.withdraw_inspection(
        actor.session, actor.who, actor.roles, callback_data.id, actor.now, tz=settings.tz
    )
    await query.answer()
    reply.show(message_id, esc(t(views.WITHDRAWN)))


async def correct_pressed(
    query: CallbackQuery,
    callback_data: CorrectCb,
    reply: Replier,
    actor: Actor,
    state: FSMContext,
    settings: Settings,
) -> None:
    """✏️: an item (offer the other answers), then its new answer (a failure: the photo)."""
    inspection, _place, _amended, lines = await hazards.correctable(
        actor.session, actor.who, actor.roles, callback_data.id, actor.now, settings.tz
    )
    if callback_data.item >= len(lines):
        raise InvalidInput(views.CORRECT_GONE)
    line = lines[callback_data.item]
    await query.answer()
    if callback_data.step == CorrectStep.CHOOSE:
        current = str(inspection.results.get(line.key))
        reply.text(
            esc(t(views.CORRECT_TO, item=line.text, answer=views.answer_name(current, t))),
            views.correct_to_keyboard(callback_data.id, callback_data.item, current, t),
        )
        return
    if callback_data.step == CorrectStep.FAIL:
        await state.clear()
        await state.set_state(CorrectFlow.photo)
        await state.update_data(inspection_id=callback_data.id, item=callback_data.item)
        reply.text(esc(t(views.CORRECT_PHOTO, item=line.text)))
        return
    await _correct(
        reply,
        actor,
        settings,
        callback_data.id,
        callback_data.item,
        views.CORRECT_RESULT[callback_data.step],
        None,
    )


async def correct_photo_sent(
    message: Message, reply: Replier, actor: Actor, state: FSMContext, settings: Settings
) -> None:
    data = await state.get_data()
    inspection_id, item = int(data.get("inspection_id", 0)), int(data.get("item", 0))
    if not message.photo:
        _inspection, _place, _amended, lines = await hazards.correctable(
            actor.session, actor.who, actor.roles, inspection_id, actor.now, settings.tz
        )
        text = lines[item].text if item < len(lines) else ""
        reply.text(esc(t(views.CORRECT_PHOTO, item=text)))
        return
    await state.clear()
    await _correct(reply, actor, settings, inspection_id, item, "fail", message.photo[-1].file_id)


async def _correct(
    reply: Replier,
    actor: Actor,
    settings: Settings,
    inspection_id: int,
    item: int,
    result: str,
    photo: str | None,
) -> None:
    correction = await hazards.correct_inspection(
        actor.session,
        actor.who,
        actor.roles,
        inspection_id,
        item=item,
        result=result,
        photo_file_id=photo,
        now=actor.now,
        tz=settings.tz,
    )
    reply.text(views.corrected_text(correction, settings.tz, t))
    owner = correction.responsible
    if owner is not None and owner.telegram_id is not None and correction.opened is not None:
        tr = partial(gettext_for, locale_of(owner, settings))
        text, keyboard = views.owner_notice(correction.place, [correction.opened], settings.tz, tr)
        outbox.send_text(
            actor.session,
            chat_id=owner.telegram_id,
            text=text,
            now=actor.now,
            reply_markup=markup_json(keyboard),
            person_id=owner.id,
        )


# --- the responsible person -------------------------------------------------------------------


async def fixed_pressed(
    query: CallbackQuery,
    callback_data: HazardFixedCb,
    reply: Replier,
    actor: Actor,
    state: FSMContext,
) -> None:
    hazard, _place = await hazards.hazard_of_responsible(
        actor.session, actor.who, callback_data.id, actor.now
    )
    await query.answer()
    await state.clear()
    await state.set_state(HazardFix.photo)
    await state.update_data(hazard_id=hazard.id)
    reply.text(esc(t(views.FIXED_PHOTO, item=hazard.item_text)))


async def fixed_photo_sent(
    message: Message, reply: Replier, actor: Actor, state: FSMContext, settings: Settings
) -> None:
    hazard_id = int((await state.get_data()).get("hazard_id", 0))
    if not message.photo:
        hazard, _place = await hazards.hazard_of_responsible(
            actor.session, actor.who, hazard_id, actor.now
        )
        reply.text(esc(t(views.FIXED_PHOTO, item=hazard.item_text)))
        return
    fixed = await hazards.report_fixed(
        actor.session, actor.who, hazard_id, message.photo[-1].file_id, actor.now
    )
    await state.clear()
    day = fixed.hazard.fix_by.astimezone(settings.tz).strftime("%m-%d")
    reply.text(esc(t(views.FIXED_THANKS, day=day)))
    inspector = fixed.inspector
    if inspector is not None and inspector.telegram_id is not None:
        tr = partial(gettext_for, locale_of(inspector, settings))
        outbox.send_text(
            actor.session,
            chat_id=inspector.telegram_id,
            text=esc(
                tr(views.INSPECTOR_TOLD, place=fixed.place.name, item=fixed.hazard.item_text)
            ),
            now=actor.now,
            person_id=inspector.id,
        )


# --- counting: /quota's coverage, /export inspections|hazards ---------------------------------

EXPORT_WORDS = {
    "inspections": "inspections",
    "inspection": "inspections",
    "巡查": "inspections",
    "hazards": "hazards",
    "hazard": "hazards",
    "隐患": "hazards",
    "隱患": "hazards",
}
EXPORT_ARGS = r"(?i)^\s*(inspections?|hazards?|巡查|隐患|隱患)(\s|$)"


async def coverage_reply(
    reply: Replier, actor: Actor, held: RoleInGrid, settings: Settings
) -> None:
    """Inspection coverage of the grid a head or the centre looks after, when it has places."""
    first, end = inspection_ledgers.month_bounds(
        actor.now.astimezone(settings.tz).date().replace(day=1), settings.tz
    )
    await _coverage(reply, actor, held.grid_path, held.grid_name, first, end)


async def indicators_reply(
    reply: Replier, actor: Actor, grid_id: int, start: datetime, end: datetime
) -> None:
    """The same under ``/indicators``' report of one grid (its window for the hazards)."""
    grid = await actor.session.get(Grid, grid_id)
    if grid is not None:
        await _coverage(reply, actor, grid.path, grid.name, start, end)


async def _coverage(
    reply: Replier, actor: Actor, path: str, name: str, start: datetime, end: datetime
) -> None:
    policy = await place_policy.current_policy(actor.session)
    rows = await inspection_ledgers.coverage(actor.session, [path], policy, actor.now)
    if not rows:
        return
    figures = await inspection_ledgers.hazard_figures(actor.session, [path], start, end, actor.now)
    reply.text(views.coverage_text(rows, figures, name, t))


async def export_command(
    message: Message, command: CommandObject, reply: Replier, actor: Actor, settings: Settings
) -> None:
    """``/export inspections|hazards [month]`` (巡查 / 隐患台账): the month's ledger."""
    words = (command.args or "").split(None, 1)
    which = EXPORT_WORDS[words[0].lower()]
    today = actor.now.astimezone(settings.tz).date()
    month = inspection_ledgers.parse_month(words[1] if len(words) > 1 else None, today)
    policy = await place_policy.current_policy(actor.session)
    export = (
        inspection_ledgers.export_inspections
        if which == "inspections"
        else inspection_ledgers.export_hazards
    )
    data = await export(
        actor.session,
        actor.who,
        actor.roles,
        policy,
        month=month,
        now=actor.now,
        tz=settings.tz,
        translate=partial(gettext_for, actor.locale),
    )
    stamp = month.strftime("%Y%m")
    reply.upload(
        "sendDocument",
        "document",
        data,
        f"{which}-{stamp}.xlsx",
        caption=esc(t("Ledger of {month}.", month=month.strftime("%Y-%m"))),
    )


def build_router() -> Router:
    router = Router(name=__name__)
    not_a_command = F.text & ~F.text.startswith("/")
    router.message.register(inspect_command, Command("inspect"))
    # before ledgers' /export, and only for these two words: the other ledgers stay there
    router.message.register(export_command, Command("export", magic=F.args.regexp(EXPORT_ARGS)))
    router.callback_query.register(place_picked, InspectPickCb.filter())
    router.callback_query.register(
        step_pressed, StateFilter(InspectFlow.checking, InspectFlow.photo), InspectStepCb.filter()
    )
    router.callback_query.register(inspection_pressed, InspectionCb.filter())
    router.callback_query.register(fixed_pressed, HazardFixedCb.filter())
    router.callback_query.register(correct_pressed, CorrectCb.filter())
    router.message.register(search_typed, StateFilter(InspectFlow.place), not_a_command)
    router.message.register(photo_sent, StateFilter(InspectFlow.photo), ~F.text.startswith("/"))
    router.message.register(location_sent, StateFilter(InspectFlow.checking), F.location)
    router.message.register(use_the_buttons, StateFilter(InspectFlow.checking), not_a_command)
    router.message.register(
        fixed_photo_sent, StateFilter(HazardFix.photo), ~F.text.startswith("/")
    )
    router.message.register(
        correct_photo_sent, StateFilter(CorrectFlow.photo), ~F.text.startswith("/")
    )
    return router
