"""How visits, the diary, quotas and the morning push read in a chat; their callback data.

Every renderer takes ``t(msgid, **params)``: the handler's gettext for the person in the chat,
or ``gettext_for(locale, …)`` for a message to someone else (the morning push).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot import labels
from bot.i18n import N_, gettext_for, join_clauses
from bot.services.daily_push import HouseholdRow, Markup, MorningPush
from bot.services.message_size import split_message, utf16_length
from bot.services.quotas import Progress, ProgressCell, describe_rule, rule_name
from bot.services.ticket_numbers import shown_number
from bot.services.visits import DiaryEntry, RuleProgress
from bot.settings import Settings
from bot.telegram import tag_views
from bot.telegram.callbacks import CancelCb, PageNo, QuotaRuleAction, QuotaRuleCb, RowId
from bot.telegram.cancelling import cancel_only
from bot.telegram.render import bold, code, esc
from bot.telegram.replies import markup_json
from models import Household, QuotaRule, TicketCategory, VisitKind

Translate = Callable[..., str]

PAGE_SIZE = 8  # households per page of /visit
ROW_WIDTH = 2  # "visited" buttons per row in the push
MAX_BUTTONS = 100  # Telegram: buttons in one inline keyboard
MAX_TEXT = 4000  # under Telegram's 4096, room for the joins
BAR_WIDTH = 10
KIND_ICON = {
    VisitKind.PHONE: "📞",
    VisitKind.IN_PERSON: "🚪",
    VisitKind.LECTURE: "📢",
    VisitKind.OTHER: "💬",
}


# --- callback data ------------------------------------------------------------------------------


class VisitPickCb(CallbackData, prefix="vp"):
    """Log a visit to this household (``quick``: from the push, only kind and a line;
    ``again``: yes, log another one although it was visited today)."""

    id: RowId
    quick: bool = False
    again: bool = False


class VisitPageCb(CallbackData, prefix="vg"):
    """A page of /visit's household list (the search words are kept in the conversation)."""

    page: PageNo


class VisitKindCb(CallbackData, prefix="vk"):
    kind: VisitKind


class VisitStep(StrEnum):
    SKIP = "s"  # no (more) photo or location
    PROBLEM = "p"  # found a problem: file a ticket
    NO_PROBLEM = "n"
    CANCEL = "x"


class VisitStepCb(CallbackData, prefix="vs"):
    step: VisitStep


class VisitProblemCb(CallbackData, prefix="vc"):
    """The category of the problem found on a visit."""

    category: TicketCategory


class DiaryAction(StrEnum):
    EDIT = "e"
    WITHDRAW = "w"  # asks first
    CONFIRM_WITHDRAW = "c"
    MORE = "m"  # the next page of the diary, before this visit


class DiaryCb(CallbackData, prefix="vd"):
    """An action on a diary entry (the service re-checks who may change it)."""

    action: DiaryAction
    id: RowId


class HistoryCb(CallbackData, prefix="vh"):
    """A household's visit history."""

    id: RowId


# --- prompts -----------------------------------------------------------------------------------

CHOOSE_HOUSEHOLD = N_(
    "Which household did you visit? Most urgent first (⭐ key household, ⏰ due this period, "
    "✅ visited today). Or type part of a name, an address or a household number to search."
)
NO_MATCH = N_("No household of yours matches “{query}”. Try other words.")
NO_HOUSEHOLDS = N_("You have no households assigned to you.")
CHOOSE_KIND = N_("How did you reach {name}?")
WRITE_NOTE = N_("What did you learn? Write a line or two for the diary (民情日记).")
ADD_EXTRAS = N_(
    "The visit is saved. You may add a photo or your location to it now, or press Skip."
)
ALREADY_VISITED = N_(
    "{name} was already visited today at {time} ({kind}). Log another visit to this household?"
)
GOT_EXTRA = N_("Got it. Send the other one too, or press Done.")
PROBLEM_QUESTION = N_("Did you find a problem that someone must handle?")
CHOOSE_CATEGORY = N_("What kind of problem? The diary note becomes its description.")
USE_BUTTONS = N_("Please choose with the buttons.")
CANCELLED = N_("Cancelled. Nothing was logged.")
CANCELLED_SAVED = N_("Cancelled. The visit stays in your diary.")
NO_PROBLEM = N_("Good. Thank you for the visit!")
TICKET_FILED = N_("Ticket {number} was filed for {name}; it is on its way to whoever handles it.")


def t_for(locale: str) -> Translate:
    def t(message: str, **params: Any) -> str:
        return gettext_for(locale, message, **params)

    return t


def household_label(
    household: Household | Any, *, due: bool = False, visited_today: bool = False
) -> str:
    mark = "⭐" if household.is_key else ("⏰" if due else "🏠")
    if visited_today:
        mark = "✅"
    return f"{mark} {household.head_name} · {household.address}"[:60]


def households_keyboard(
    rows: Sequence[HouseholdRow], page: int, pages: int, t: Translate
) -> InlineKeyboardMarkup:
    """One household per row (tap to log a visit), with ◀ ▶ and Cancel."""
    buttons = [
        [
            InlineKeyboardButton(
                text=household_label(row.household, due=row.due, visited_today=row.visited_today),
                callback_data=VisitPickCb(id=row.household.id or 0).pack(),
            )
        ]
        for row in rows
    ]
    paging = []
    if page > 0:
        paging.append(
            InlineKeyboardButton(
                text=t("◀ Previous"), callback_data=VisitPageCb(page=page - 1).pack()
            )
        )
    if page < pages - 1:
        paging.append(
            InlineKeyboardButton(text=t("Next ▶"), callback_data=VisitPageCb(page=page + 1).pack())
        )
    if paging:
        buttons.append(paging)
    buttons.append([cancel_button(t)])
    return InlineKeyboardMarkup(inline_keyboard=buttons)


def households_text(total: int, page: int, pages: int, query: str, t: Translate) -> str:
    lines = [t(CHOOSE_HOUSEHOLD)]
    if query:
        lines.append(t("Search: {query}", query=esc(query)))
    if pages > 1:
        lines.append(t("Page {page} of {pages}", page=page + 1, pages=pages))
    return "\n".join(lines)


def cancel_button(t: Translate) -> InlineKeyboardButton:
    return InlineKeyboardButton(
        text=t("Cancel"), callback_data=VisitStepCb(step=VisitStep.CANCEL).pack()
    )


def cancel_keyboard(t: Translate) -> InlineKeyboardMarkup:
    return cancel_only(t("Cancel"), VisitStepCb(step=VisitStep.CANCEL))


def kind_keyboard(t: Translate) -> InlineKeyboardMarkup:
    kinds = list(VisitKind)
    buttons = [
        InlineKeyboardButton(
            text=f"{KIND_ICON[kind]} {t(labels.VISIT_KIND[kind])}",
            callback_data=VisitKindCb(kind=kind).pack(),
        )
        for kind in kinds
    ]
    return InlineKeyboardMarkup(inline_keyboard=[buttons[:2], buttons[2:], [cancel_button(t)]])


def again_keyboard(household_id: int, quick: bool, t: Translate) -> InlineKeyboardMarkup:
    """Yes, log another visit to a household visited today — or Cancel."""
    again = VisitPickCb(id=household_id, quick=quick, again=True)
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(text=t("Yes, log another visit"), callback_data=again.pack()),
                cancel_button(t),
            ]
        ]
    )


def extras_keyboard(t: Translate, *, got_one: bool) -> InlineKeyboardMarkup:
    label = t("Done") if got_one else t("Skip")
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=label, callback_data=VisitStepCb(step=VisitStep.SKIP).pack()
                )
            ]
        ]
    )


def problem_keyboard(t: Translate) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=t("⚠️ Yes, report it"),
                    callback_data=VisitStepCb(step=VisitStep.PROBLEM).pack(),
                ),
                InlineKeyboardButton(
                    text=t("No, all fine"),
                    callback_data=VisitStepCb(step=VisitStep.NO_PROBLEM).pack(),
                ),
            ]
        ]
    )


def category_keyboard(t: Translate) -> InlineKeyboardMarkup:
    buttons = [
        InlineKeyboardButton(
            text=t(labels.TICKET_CATEGORY[category]),
            callback_data=VisitProblemCb(category=category).pack(),
        )
        for category in TicketCategory
    ]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    rows.append([cancel_button(t)])
    return InlineKeyboardMarkup(inline_keyboard=rows)


# --- the confirmation ----------------------------------------------------------------------------


def counted_text(counted: Sequence[RuleProgress], t: Translate) -> str:
    """ "计入：重点户每月入户走访（1/1 ✓）" — the rules the visit counted toward."""
    if not counted:
        return t("This visit counts toward no quota rule.")
    parts = [
        t(
            "{rule} ({done}/{required}{mark})",
            rule=t(progress.rule_name),
            done=progress.done,
            required=progress.required,
            mark=" ✓" if progress.met else "",
        )
        for progress in counted
    ]
    return t("Counts toward: {rules}", rules=join_clauses(t, parts))


def logged_text(
    household: Household,
    kind: VisitKind,
    counted: Sequence[RuleProgress],
    t: Translate,
    *,
    then: str = PROBLEM_QUESTION,
) -> str:
    """The visit is in the diary, what it counted toward, and ``then`` (a msgid: the next
    question)."""
    return "\n".join(
        [
            "✅ "
            + t(
                "Visit logged: {name} · {kind}",
                name=bold(household.head_name),
                kind=esc(t(labels.VISIT_KIND[kind])),
            ),
            esc(counted_text(counted, t)),
            "",
            t(then),
        ]
    )


# --- the diary ---------------------------------------------------------------------------------


def local_time(instant: datetime, tz: Any) -> str:
    return instant.astimezone(tz).strftime("%m-%d %H:%M")


def entry_line(entry: DiaryEntry, t: Translate, tz: Any, *, by_household: bool) -> str:
    who = entry.worker_name if by_household else f"{entry.household_name} · {entry.address}"
    note = entry.note if len(entry.note) <= 200 else entry.note[:199] + "…"
    return (
        f"{KIND_ICON[entry.kind]} {code(local_time(entry.visited_at, tz))} {bold(who)}"
        f" · {esc(t(labels.VISIT_KIND[entry.kind]))}\n   {esc(note)}"
    )


def diary_text(
    entries: Sequence[DiaryEntry], t: Translate, tz: Any, *, household: str | None = None
) -> str:
    if household is not None:
        title = t("Visits to {household}", household=household)
        if not entries:
            return bold(title) + "\n" + t("No visits yet.")
    else:
        title = t("Your diary (民情日记)")
        if not entries:
            return bold(title) + "\n" + t("No visits logged yet. Send /visit to log one.")
    lines = [bold(title)]
    lines.extend(
        f"{i}. " + entry_line(e, t, tz, by_household=household is not None)
        for i, e in enumerate(entries, start=1)
    )
    return "\n".join(lines)


def diary_keyboard(
    entries: Sequence[DiaryEntry], t: Translate, *, more: bool
) -> InlineKeyboardMarkup | None:
    """Per entry: ✏️ n and ↩️ n (edit, withdraw), and 📖 for the household's history."""
    rows = [
        [
            InlineKeyboardButton(
                text=f"✏️ {i}",
                callback_data=DiaryCb(action=DiaryAction.EDIT, id=e.visit_id).pack(),
            ),
            InlineKeyboardButton(
                text=f"↩️ {i}",
                callback_data=DiaryCb(action=DiaryAction.WITHDRAW, id=e.visit_id).pack(),
            ),
            InlineKeyboardButton(
                text=f"📖 {e.household_name}"[:30],
                callback_data=HistoryCb(id=e.household_id).pack(),
            ),
        ]
        for i, e in enumerate(entries, start=1)
    ]
    if more and entries:
        rows.append(
            [
                InlineKeyboardButton(
                    text=t("Earlier entries ▶"),
                    callback_data=DiaryCb(action=DiaryAction.MORE, id=entries[-1].visit_id).pack(),
                )
            ]
        )
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


def withdraw_keyboard(visit_id: int, t: Translate) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=t("↩️ Yes, withdraw it"),
                    callback_data=DiaryCb(action=DiaryAction.CONFIRM_WITHDRAW, id=visit_id).pack(),
                ),
                cancel_button(t),
            ]
        ]
    )


# --- quotas -----------------------------------------------------------------------------------


def bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    """``▓▓▓░░ 3/5``: a progress bar readable on any phone."""
    filled = 0 if total <= 0 else min(width, round(width * done / total))
    return "▓" * filled + "░" * (width - filled) + f" {done}/{total}"


PERIOD_TITLE = {"month": N_("This month"), "quarter": N_("This quarter"), "year": N_("This year")}


def progress_text(rows: Sequence[Progress], t: Translate, title: str) -> str:
    """Per row (a worker, or a grid), per period, per rule: households that met it."""
    if not rows or not any(row.cells for row in rows):
        return bold(title) + "\n" + t("No quota rules apply here.")
    lines = [bold(title)]
    for row in rows:
        if len(rows) > 1 or row.subject_name:
            lines.append("")
            lines.append("👤 " + bold(row.subject_name or t("(no worker)")))
        for period in ("month", "quarter", "year"):
            cells = [cell for cell in row.cells if cell.period.value == period]
            if cells:
                lines.append(esc(t(PERIOD_TITLE[period])))
                lines.extend(_cell_line(cell, t) for cell in cells)
    return "\n".join(lines)


def _cell_line(cell: ProgressCell, t: Translate) -> str:
    return f"  {code(bar(cell.fulfilled, cell.households))} {esc(t(cell.rule_name))}"


def rules_text(rules: Sequence[QuotaRule], locale: str, t: Translate) -> str:
    lines = [bold(t("Visit quota rules (走访任务)"))]
    for rule in rules:
        name, sentence = rule_name(rule, locale), describe_rule(rule, locale)
        lines.append(f"{code(rule.id)} {bold(name)}\n   {esc(sentence)}")
    lines.append("")
    # the usage shows "<id>": text, not a tag
    lines.append(esc(t("To change how many visits a rule asks: /quota_rules set <id> <count>")))
    lines.append(esc(t(QUOTA_ADD_USAGE)))
    lines.append(esc(t(QUOTA_RETIRE_USAGE)))
    return "\n".join(lines)


QUOTA_ADD_USAGE = N_(
    "To add a rule: /quota_rules add <households> <kind> <period> <count> <name>, e.g. "
    "/quota_rules add empty-nest home-visit month 2 Empty-nest elderly twice a month"
)
QUOTA_RETIRE_USAGE = N_("To retire a rule from this period on: /quota_rules retire <id>")


def rule_question(rule: QuotaRule, locale: str, t: Translate, *, retire: bool) -> str:
    """The "add this rule?" / "retire this rule?" question, with what the rule asks."""
    name, sentence = rule_name(rule, locale), describe_rule(rule, locale)
    if retire:
        question = t(
            "Retire visit rule {rule}? From this period on it asks nothing; past periods keep it.",
            rule=rule.id,
        )
    else:
        question = t("Add this visit rule? It applies from this period on.")
    return f"{esc(question)}\n{bold(name)}\n   {esc(sentence)}"


def rule_confirm_keyboard(
    action: QuotaRuleAction, rule_id: int, t: Translate
) -> InlineKeyboardMarkup:
    label = t("Yes, retire it") if action is QuotaRuleAction.RETIRE else t("Yes, add it")
    yes = QuotaRuleCb(action=action, rule=rule_id).pack()
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(text=label, callback_data=yes),
                InlineKeyboardButton(text=t("Cancel"), callback_data=CancelCb().pack()),
            ]
        ]
    )


# --- the morning push ---------------------------------------------------------------------------


GREETINGS = (  # by the local hour the push was made: a catch-up after noon is not "good morning"
    (12, N_("Good morning! Today's tasks ({day})")),
    (18, N_("Good afternoon! Today's tasks ({day})")),
    (24, N_("Good evening! Today's tasks ({day})")),
)


def greeting(push: MorningPush, tz: Any) -> str:
    """The push's first line's msgid, for the hour it was made."""
    hour = push.composed_at.astimezone(tz).hour
    return next(msgid for until, msgid in GREETINGS if hour < until)


def render_push(
    push: MorningPush, locale: str, settings: Settings
) -> list[tuple[str, Markup | None]]:
    """The push as messages that fit Telegram: ≤ 4096 characters and ≤ 100 buttons each.

    The suggested households come first, each with a one-tap "visited" button; one visited
    since is struck through and loses its button, and the count of visits done moves. Then
    the open tickets (one closed since is struck through), then today's meetings.
    """
    t = t_for(locale)
    tz = settings.tz
    header = [bold(t(greeting(push, tz), day=push.local_day.strftime("%m-%d")))]
    parts: list[tuple[str, Markup | None]] = []
    if push.plan is not None and push.suggestions:
        header.append(
            t(
                "Suggested visits today: {count} (households still due this period: {due}).",
                count=len(push.suggestions),
                due=push.plan.due_households,
            )
        )
        done = sum(1 for s in push.suggestions if s.household_id in push.visited)
        if done:
            header.append(
                t("Visited so far: {done} of {count}.", done=done, count=len(push.suggestions))
            )
        lines = list(header)
        buttons: list[InlineKeyboardButton] = []
        for number, s in enumerate(push.suggestions, start=1):
            marks = ("⭐" if s.is_key else "") + ("⚠️" if s.overdue else "")
            line = f"{number}. {marks}{bold(s.head_name)} · {esc(s.address)} {code(s.code)}"
            visited = s.household_id in push.visited
            if visited:
                line = f"✅ <s>{line}</s>"
            if utf16_length("\n".join([*lines, line])) > MAX_TEXT or len(buttons) >= MAX_BUTTONS:
                parts.append(("\n".join(lines), _visited_keyboard(buttons)))
                lines, buttons = [], []
            lines.append(line)
            if not visited:
                buttons.append(
                    InlineKeyboardButton(
                        text=f"✅ {number} {s.head_name}"[:40],
                        callback_data=VisitPickCb(id=s.household_id, quick=True).pack(),
                    )
                )
        if done < len(push.suggestions):
            lines.append(t("Tap ✅ when you have visited a household."))
        else:
            lines.append(t("All of today's suggested visits are done. Thank you!"))
        places = _inspection_lines(push, t)
        if places and utf16_length("\n".join([*lines, *places])) <= MAX_TEXT:
            lines += places  # one message, edited in place as visits and inspections are done
            places = []
        parts.append(("\n".join(lines), _visited_keyboard(buttons)))
        header = []
    else:
        places = _inspection_lines(push, t)
    rest = list(header) + places
    if push.tickets:
        rest.append("")
        rest.append(bold(t("Your open tickets, soonest deadline first:")))
        for ticket in push.tickets:
            deadline = ticket.next_deadline_at
            line = (
                f"{code(shown_number(ticket))} {esc(t(labels.TICKET_CATEGORY[ticket.category]))}"
                f" · ⏰ {local_time(deadline, tz) if deadline else '—'}"
            )
            rest.append(f"✅ <s>{line}</s>" if ticket.id in push.closed else f"• {line}")
    if push.meetings:
        rest.append("")
        rest.append(bold(t("Today's meetings:")))
        rest.extend(
            f"• {local_time(m.starts_at, tz)[-5:]} {esc(m.title)}"
            + (f" · {esc(m.place)}" if m.place else "")
            for m in push.meetings
        )
    if any(line.strip() for line in rest):
        parts.extend((part, None) for part in split_message("\n".join(rest)))
    follow_ups = tag_views.push_part(push, t)  # last, with its own buttons
    if follow_ups is not None:
        parts.append(follow_ups)
    return parts


def _inspection_lines(push: MorningPush, t: Callable[..., str]) -> list[str]:
    """The places due today (巡查, 复查); one inspected since is struck through."""
    if not push.inspections:
        return []
    lines = ["", bold(t("Places to inspect today (巡查):"))]
    for item in push.inspections:
        if item.kind == "recheck":
            line = esc(
                t(
                    "🔁 {name}: re-inspection of {count} hazard(s)",
                    name=item.name,
                    count=item.hazards,
                )
            )
        else:
            line = f"{esc(item.name)} · {esc(item.type_name)}"
        lines.append(f"✅ <s>{line}</s>" if item.place_id in push.inspected else f"• {line}")
    more = push.inspections_due - len(push.inspections)
    if more > 0:
        lines.append(esc(t("…and {count} more places due.", count=more)))
    lines.append(esc(t("Send /inspect to start.")))
    return lines


def _visited_keyboard(buttons: list[InlineKeyboardButton]) -> Markup | None:
    if not buttons:
        return None
    rows = [buttons[i : i + ROW_WIDTH] for i in range(0, len(buttons), ROW_WIDTH)]
    return markup_json(InlineKeyboardMarkup(inline_keyboard=rows))
