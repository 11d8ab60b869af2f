"""Words and buttons of /inspect, the hazard notices and the push's inspection lines."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, tzinfo
from enum import StrEnum

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.i18n import N_
from bot.services import inspection_ledgers
from bot.services.exports import mask_phone
from bot.services.hazards import Correction, Finding
from bot.services.inspection_ledgers import Coverage, HazardFigures
from bot.services.inspections import RECHECK, CheckLine, DuePlace
from bot.services.place_policy import PlacePolicy
from bot.services.ticket_numbers import shown_number
from bot.telegram.callbacks import RowId
from bot.telegram.render import bold, esc
from models import Hazard, Place

Translate = Callable[..., str]
MAX_BUTTONS = 30  # places offered at once
MAX_ITEMS = 99  # an item's index in callback data (a checklist has at most 40)

CHOOSE_PLACE = N_(
    "Places due for inspection, most overdue first ({count}). Press one, or type a name to search."
)
NO_PLACES = N_("No place is due for inspection this week. Type a name to find a place.")
NO_MATCH = N_("No place matches “{query}”.")
USE_BUTTONS = N_("Please use the buttons under the checklist.")
SEND_PHOTO = N_("Please send a photo of “{item}”.")
SEND_LOCATION = N_(
    "All items answered. Send your location (📎 → Location) to record where you are, or "
    "press Save."
)
SAVED = N_("Inspection of {place} saved.")
NO_HAZARD = N_("No hazard found.")
HAZARDS_FOUND = N_("Hazards found ({count}):")
HAZARD_LINE = N_("• {item} — fix by {day}")
OWNER_TOLD = N_("{name}, responsible for the place, has been told.")
OWNER_NOT_TOLD = N_(
    "The responsible person does not use GridBot: please tell them the fix-by dates."
)
RECHECK_SAVED = N_("Re-inspection of {place} saved: {fixed} fixed, {unfixed} not fixed.")
TICKET_LINE = N_("• {item}: ticket {number} filed; it escalates if not handled in time.")
REFUSED = N_(
    "The refusal is recorded and ticket {number} has been filed for the department ({department})."
)
OWNER_NOTICE = N_("🔍 {place} was inspected today. Hazards to fix (隐患整改通知):")
OWNER_HINT = N_("When one is fixed, press its button and send a photo.")
FIXED_PHOTO = N_("Please send a photo of the fixed “{item}”.")
FIXED_THANKS = N_("Thank you. The grid worker will check it at the re-inspection on {day}.")
INSPECTOR_TOLD = N_(
    "🔧 {place}: the responsible person says “{item}” is fixed. Check it at the re-inspection."
)
WITHDRAW_ASK = N_("Withdraw this inspection? Its open hazards are withdrawn with it.")
WITHDRAWN = N_("The inspection is withdrawn.")
CORRECT_WHICH = N_("Which answer should be corrected? (within {days} days of the inspection)")
CORRECT_TO = N_("“{item}” reads {answer}. Correct it to:")
CORRECT_PHOTO = N_("Please send a photo of “{item}”, which fails.")
CORRECTED = N_("Corrected: “{item}” {before} → {after}. The old answer is kept in the record.")
CORRECT_OPENED = N_("A hazard is opened: fix by {day}.")
CORRECT_WITHDRAWN = N_("Its hazard is withdrawn.")
CORRECT_GONE = N_("That item is not on this inspection.")
CANCELLED = N_("The inspection was not saved.")

ROUTINE_ANSWERS = (("pass", "✅", N_("Pass")), ("fail", "❌", N_("Fail")), ("na", "➖", N_("N/A")))
RECHECK_ANSWERS = (
    ("pass", "✅", N_("Fixed")),
    ("fail", "❌", N_("Not fixed")),
    ("na", "➖", N_("Later")),
)
ICON = {"pass": "✅", "fail": "❌", "na": "➖"}


# --- callback data ------------------------------------------------------------------------------


class InspectPickCb(CallbackData, prefix="np"):
    """Inspect this place (``recheck``: its open hazards)."""

    id: RowId
    recheck: bool = False


class InspectStep(StrEnum):
    PASS = "p"
    FAIL = "f"
    NA = "n"
    REST_PASS = "a"  # every item not yet answered passes
    REFUSED = "r"  # the place refuses to be inspected
    SAVE = "s"
    CANCEL = "x"


class InspectStepCb(CallbackData, prefix="na"):
    """An answer to item ``item`` (its index in the checklist), or a step of the flow."""

    step: InspectStep
    item: RowId = 0


class HazardFixedCb(CallbackData, prefix="nh"):
    """The responsible person says this hazard is fixed (the service checks it is theirs)."""

    id: RowId


class InspectionAction(StrEnum):
    WITHDRAW = "w"  # asks first
    CONFIRM = "c"
    CORRECT = "e"  # which answer to correct


class CorrectStep(StrEnum):
    CHOOSE = "c"  # the item: offer the other answers
    PASS = "p"
    FAIL = "f"  # asks for the photo first
    NA = "n"


class CorrectCb(CallbackData, prefix="ne"):
    """Correct item ``item`` (its index in the inspection's checklist) of inspection ``id``."""

    id: RowId
    item: RowId
    step: CorrectStep


class InspectionCb(CallbackData, prefix="nw"):
    action: InspectionAction
    id: RowId


STEP_RESULT = {InspectStep.PASS: "pass", InspectStep.FAIL: "fail", InspectStep.NA: "na"}
CORRECT_RESULT = {CorrectStep.PASS: "pass", CorrectStep.FAIL: "fail", CorrectStep.NA: "na"}


# --- the list of places -------------------------------------------------------------------------


def _day(moment: datetime, tz: tzinfo) -> str:
    return moment.astimezone(tz).strftime("%m-%d")


def places_keyboard(
    due: Sequence[DuePlace], policy: PlacePolicy, now: datetime, tz: tzinfo, tr: Translate
) -> InlineKeyboardMarkup:
    rows = []
    for item in due[:MAX_BUTTONS]:
        place = item.place
        place_type = policy.type(place.type_key)
        mark = "⚠️" if item.due_at <= now else "🗓"
        if item.kind == RECHECK:
            label = f"🔁 {place.name} · {tr(N_('re-inspection'))} · {_day(item.due_at, tz)}"
        else:
            kind = place_type.name if place_type is not None else place.type_key
            label = f"{mark} {place.name} · {kind} · {_day(item.due_at, tz)}"
        rows.append(
            [
                InlineKeyboardButton(
                    text=label[:60],
                    callback_data=InspectPickCb(
                        id=place.id or 0, recheck=item.kind == RECHECK
                    ).pack(),
                )
            ]
        )
    return InlineKeyboardMarkup(inline_keyboard=rows)


# --- the checklist ------------------------------------------------------------------------------


def checklist_text(
    place: Place,
    type_name: str,
    recheck: bool,
    lines: Sequence[CheckLine],
    answers: Mapping[str, str],
    photos: Mapping[str, str],
    tr: Translate,
) -> str:
    title = tr(N_("🔁 Re-inspection")) if recheck else tr(N_("🔍 Inspection"))
    head = [
        bold(f"{title}: {place.name}") + esc(f" ({type_name})"),
        esc(place.address),
    ]
    if place.responsible_name or place.responsible_phone:
        who = place.responsible_name or ""
        phone = mask_phone(place.responsible_phone) if place.responsible_phone else ""
        head.append(esc(tr(N_("Responsible: {who} {phone}"), who=who, phone=phone).strip()))
    current = next_item(lines, answers)
    body = []
    for index, line in enumerate(lines):
        answer = answers.get(line.key)
        mark = ICON[answer] if answer else ("▶️" if index == current else "⬜")
        camera = " 📷" if line.key in photos else ""
        body.append(f"{index + 1}. {mark} {esc(line.text)}{camera}")
    return "\n".join(head) + "\n\n" + "\n".join(body)


def next_item(lines: Sequence[CheckLine], answers: Mapping[str, str]) -> int | None:
    for index, line in enumerate(lines):
        if line.key not in answers:
            return index
    return None


def checklist_keyboard(
    lines: Sequence[CheckLine], answers: Mapping[str, str], recheck: bool, tr: Translate
) -> InlineKeyboardMarkup:
    current = next_item(lines, answers)
    rows: list[list[InlineKeyboardButton]] = []
    if current is not None:
        steps = (InspectStep.PASS, InspectStep.FAIL, InspectStep.NA)
        labels = RECHECK_ANSWERS if recheck else ROUTINE_ANSWERS
        rows.append(
            [
                InlineKeyboardButton(
                    text=f"{icon} {tr(label)}",
                    callback_data=InspectStepCb(step=step, item=current).pack(),
                )
                for step, (_, icon, label) in zip(steps, labels, strict=True)
            ]
        )
        if not recheck:
            rows.append(
                [
                    InlineKeyboardButton(
                        text=tr(N_("✅ All the rest pass")),
                        callback_data=InspectStepCb(
                            step=InspectStep.REST_PASS, item=current
                        ).pack(),
                    )
                ]
            )
    else:
        rows.append(
            [
                InlineKeyboardButton(
                    text=tr(N_("💾 Save")),
                    callback_data=InspectStepCb(step=InspectStep.SAVE).pack(),
                )
            ]
        )
    last = [
        InlineKeyboardButton(
            text=tr(N_("Cancel")), callback_data=InspectStepCb(step=InspectStep.CANCEL).pack()
        )
    ]
    if not recheck:
        last.insert(
            0,
            InlineKeyboardButton(
                text=tr(N_("🚫 Refused")),
                callback_data=InspectStepCb(step=InspectStep.REFUSED).pack(),
            ),
        )
    rows.append(last)
    return InlineKeyboardMarkup(inline_keyboard=rows)


# --- after saving -------------------------------------------------------------------------------


def saved_text(finding: Finding, tz: tzinfo, tr: Translate) -> str:
    place = finding.place
    if finding.inspection.kind == RECHECK:
        lines = [
            esc(
                tr(
                    RECHECK_SAVED,
                    place=place.name,
                    fixed=len(finding.fixed),
                    unfixed=len(finding.ticketed),
                )
            )
        ]
        for hazard, ticket in finding.ticketed:
            lines.append(esc(tr(TICKET_LINE, item=hazard.item_text, number=shown_number(ticket))))
        return "\n".join(lines)
    lines = [esc(tr(SAVED, place=place.name))]
    if not finding.opened:
        lines.append(esc(tr(NO_HAZARD)))
        return "\n".join(lines)
    lines.append(esc(tr(HAZARDS_FOUND, count=len(finding.opened))))
    lines += [
        esc(tr(HAZARD_LINE, item=h.item_text, day=_day(h.fix_by, tz))) for h in finding.opened
    ]
    if finding.responsible is not None:
        lines.append(esc(tr(OWNER_TOLD, name=finding.responsible.name)))
    else:
        lines.append(esc(tr(OWNER_NOT_TOLD)))
    return "\n".join(lines)


def withdraw_keyboard(
    inspection_id: int, tr: Translate, *, correct: bool = True
) -> InlineKeyboardMarkup:
    """The saved inspection's buttons: ✏️ correct an answer (routine ones), ↩️ withdraw."""
    row = [
        InlineKeyboardButton(
            text=tr(N_("↩️ Withdraw")),
            callback_data=InspectionCb(action=InspectionAction.WITHDRAW, id=inspection_id).pack(),
        )
    ]
    if correct:
        row.insert(
            0,
            InlineKeyboardButton(
                text=tr(N_("✏️ Correct")),
                callback_data=InspectionCb(
                    action=InspectionAction.CORRECT, id=inspection_id
                ).pack(),
            ),
        )
    return InlineKeyboardMarkup(inline_keyboard=[row])


def answer_name(result: str, tr: Translate) -> str:
    for key, icon, label in ROUTINE_ANSWERS:
        if key == result:
            return f"{icon} {tr(label)}"
    return result


def correct_items_keyboard(
    inspection_id: int, lines: Sequence[CheckLine], results: Mapping[str, str], tr: Translate
) -> InlineKeyboardMarkup:
    """One button per answered item, its answer's icon first."""
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=f"{ICON.get(str(results.get(line.key)), '·')} {line.text}"[:60],
                    callback_data=CorrectCb(
                        id=inspection_id, item=index, step=CorrectStep.CHOOSE
                    ).pack(),
                )
            ]
            for index, line in enumerate(lines[: MAX_ITEMS + 1])
        ]
    )


def correct_to_keyboard(
    inspection_id: int, item: int, current: str, tr: Translate
) -> InlineKeyboardMarkup:
    steps = {"pass": CorrectStep.PASS, "fail": CorrectStep.FAIL, "na": CorrectStep.NA}
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=f"{icon} {tr(label)}",
                    callback_data=CorrectCb(id=inspection_id, item=item, step=steps[key]).pack(),
                )
                for key, icon, label in ROUTINE_ANSWERS
                if key != current
            ]
        ]
    )


def corrected_text(correction: Correction, tz: tzinfo, tr: Translate) -> str:
    lines = [
        esc(
            tr(
                CORRECTED,
                item=correction.line.text,
                before=answer_name(correction.before, tr),
                after=answer_name(correction.after, tr),
            )
        )
    ]
    if correction.opened is not None:
        lines.append(esc(tr(CORRECT_OPENED, day=_day(correction.opened.fix_by, tz))))
        if correction.responsible is not None:
            lines.append(esc(tr(OWNER_TOLD, name=correction.responsible.name)))
        else:
            lines.append(esc(tr(OWNER_NOT_TOLD)))
    if correction.withdrawn is not None:
        lines.append(esc(tr(CORRECT_WITHDRAWN)))
    return "\n".join(lines)


def confirm_withdraw_keyboard(inspection_id: int, tr: Translate) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=tr(N_("Yes, withdraw it")),
                    callback_data=InspectionCb(
                        action=InspectionAction.CONFIRM, id=inspection_id
                    ).pack(),
                )
            ]
        ]
    )


def owner_notice(
    place: Place, opened: Sequence[Hazard], tz: tzinfo, tr: Translate
) -> tuple[str, InlineKeyboardMarkup]:
    """The responsible person's notice (隐患整改通知): each hazard, its fix-by date, a button."""
    lines = [esc(tr(OWNER_NOTICE, place=place.name))]
    lines += [esc(tr(HAZARD_LINE, item=h.item_text, day=_day(h.fix_by, tz))) for h in opened]
    lines.append(esc(tr(OWNER_HINT)))
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=f"✅ {tr(N_('Fixed'))}: {h.item_text}"[:60],
                    callback_data=HazardFixedCb(id=h.id or 0).pack(),
                )
            ]
            for h in opened
        ]
    )
    return "\n".join(lines), keyboard


def coverage_text(
    rows: Sequence[Coverage], figures: HazardFigures, grid_name: str, tr: Translate
) -> str:
    """Inspection coverage by place type, and this month's hazards, for /quota."""
    return inspection_ledgers.coverage_text(rows, figures, grid_name, tr)
