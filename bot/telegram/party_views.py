"""How party members' contact households (党员联系户) look in the chat: a party member's own
list and push, the picker a head or worker assigns them with, coverage, branches.

Every function takes ``t`` (msgid, **params) -> text, so the same words serve a handler (the
update's language) and the morning push (the party member's)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import tzinfo
from typing import Any

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot import labels
from bot.i18n import N_, gettext_for
from bot.services.message_size import split_message
from bot.services.party import BranchRow, Coverage, PartyPlan, PartyPush, Picker
from bot.settings import Settings
from bot.telegram.callbacks import PartyContactCb, PartyContactKind, PartyPickCb
from bot.telegram.render import bold, code, esc
from models import PartyKind, VisitKind

Translate = Callable[..., str]
Markup = dict[str, Any]

KIND_OF: dict[PartyContactKind, VisitKind] = {
    PartyContactKind.PHONE: VisitKind.PHONE,
    PartyContactKind.IN_PERSON: VisitKind.IN_PERSON,
    PartyContactKind.LECTURE: VisitKind.LECTURE,
    PartyContactKind.OTHER: VisitKind.OTHER,
}
MAX_BUTTONS = 30

PARTY_USAGE = N_(
    "/party — your contact households (党员联系户), or your grid's coverage\n"
    "/party set &lt;#number or ID number&gt; full|probationary|floating|masses [branch] — "
    "record someone's party membership (grid head, administrator)\n"
    "/party assign &lt;#number or ID number&gt; — choose a party member's contact households "
    "(grid worker, head, administrator)\n"
    "/party branches — the party branches (党支部)\n"
    "/party branch &lt;grid code&gt; &lt;name&gt; — add a branch (administrator)"
)


def kind_label(t: Translate, kind: PartyKind | None) -> str:
    return t(labels.PARTY_KIND[kind]) if kind is not None else t(N_("not a party member"))


def plans_text(t: Translate, plans: Sequence[PartyPlan], tz: tzinfo) -> str:
    """A party member's contact households, what is due marked."""
    lines: list[str] = []
    for plan in plans:
        member = plan.member
        title = t(
            N_("🚩 {name} ({kind}) — contact households: {count}"),
            name=member.name,
            kind=kind_label(t, member.party),
            count=len(plan.households),
        )
        lines.append(bold(title))
        if plan.branch:
            lines.append(esc(t(N_("Branch: {name}"), name=plan.branch)))
        if not plan.households:
            lines.append(esc(t(N_("No contact households yet: your grid head assigns them."))))
        for number, due in enumerate(plan.households, start=1):
            h = due.household
            marks = []
            if due.contact_due:
                marks.append(t(N_("contact due")))
            if due.lecture_due:
                marks.append(t(N_("micro-lecture due")))
            last = (
                t(N_("last {day}"), day=due.last.astimezone(tz).strftime("%m-%d"))
                if due.last
                else t(N_("never contacted"))
            )
            state = "⏳ " + "、".join(marks) if marks else "✅"
            lines.append(
                f"{number}. {bold(h.head_name)} · {esc(h.address)} {code(h.code)}\n"
                f"   {esc(state)} · {esc(last)}"
            )
    return "\n".join(lines)


def contact_keyboard(t: Translate, plans: Sequence[PartyPlan]) -> InlineKeyboardMarkup | None:
    """One "record a contact" button per household still due."""
    rows = [
        [
            InlineKeyboardButton(
                text=t(N_("📝 Contacted {name}"), name=due.household.head_name)[:60],
                callback_data=PartyContactCb(
                    household=due.household.id or 0, kind=PartyContactKind.ASK
                ).pack(),
            )
        ]
        for plan in plans
        for due in plan.due
    ][:MAX_BUTTONS]
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


def kind_keyboard(t: Translate, household_id: int) -> InlineKeyboardMarkup:
    choices = [
        (PartyContactKind.PHONE, labels.VISIT_KIND[VisitKind.PHONE]),
        (PartyContactKind.IN_PERSON, labels.VISIT_KIND[VisitKind.IN_PERSON]),
        (PartyContactKind.LECTURE, labels.VISIT_KIND[VisitKind.LECTURE]),
        (PartyContactKind.OTHER, labels.VISIT_KIND[VisitKind.OTHER]),
    ]
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=t(label),
                    callback_data=PartyContactCb(household=household_id, kind=kind).pack(),
                )
            ]
            for kind, label in choices
        ]
    )


def render_party_push(
    push: PartyPush, locale: str, settings: Settings
) -> list[tuple[str, Markup | None]]:
    """The party member's morning push: the households still due, a button each."""

    def t(message: str, **params: Any) -> str:
        return gettext_for(locale, message, **params)

    due = sum(len(plan.due) for plan in push.plans)
    head = bold(
        t(
            N_("🚩 Contact households still due ({day}): {count}"),
            day=push.day.strftime("%m-%d"),
            count=due,
        )
    )
    text = head + "\n" + plans_text(t, push.plans, settings.tz)
    keyboard = contact_keyboard(t, push.plans)
    markup = keyboard.model_dump(mode="json", exclude_none=True) if keyboard else None
    parts = split_message(text)  # each line closes its own tags: cut between lines
    return [(part, markup if n == len(parts) - 1 else None) for n, part in enumerate(parts)]


def picker_text(t: Translate, pick: Picker, limit: int) -> str:
    member = pick.place.member
    return "\n".join(
        [
            bold(
                t(
                    N_("Contact households of {name} ({kind}), grid {grid}"),
                    name=member.name,
                    kind=kind_label(t, member.party),
                    grid=pick.place.grid.name,
                )
            ),
            esc(
                t(
                    N_("Chosen: {count} of at most {limit}. Tap a household to add or remove it."),
                    count=pick.chosen,
                    limit=limit,
                )
            ),
        ]
    )


def picker_keyboard(t: Translate, pick: Picker) -> InlineKeyboardMarkup:
    member_id = pick.place.member.id or 0
    rows: list[list[InlineKeyboardButton]] = []
    for row in pick.rows:
        h = row.household
        mark = "✅ " if row.mine else ("👤 " if row.other else "")
        aside = f" ({row.other})" if row.other else ""
        rows.append(
            [
                InlineKeyboardButton(
                    text=(f"{mark}{h.head_name} · {h.address}{aside}")[:60],
                    callback_data=PartyPickCb(
                        member=member_id, household=h.id or 0, page=pick.page
                    ).pack(),
                )
            ]
        )
    nav = []
    if pick.page > 0:
        nav.append(
            InlineKeyboardButton(
                text="◀",
                callback_data=PartyPickCb(
                    member=member_id, household=0, page=pick.page - 1
                ).pack(),
            )
        )
    if pick.page + 1 < pick.pages:
        nav.append(
            InlineKeyboardButton(
                text="▶",
                callback_data=PartyPickCb(
                    member=member_id, household=0, page=pick.page + 1
                ).pack(),
            )
        )
    if nav:
        rows.append(nav)
    return InlineKeyboardMarkup(inline_keyboard=rows)


def coverage_text(t: Translate, coverage: Coverage) -> str:
    """党员联系户 coverage, for a grid's staff."""
    return esc(
        t(
            N_(
                "Party contact households: {covered} of {households} households have a party "
                "contact ({contacted} contacted this period); party members living here: "
                "{members}."
            ),
            covered=coverage.covered,
            households=coverage.households,
            contacted=coverage.contacted,
            members=coverage.party_members,
        )
    )


def household_contact_text(t: Translate, name: str) -> str:
    return esc(t(N_("Your household's party contact (党员联系户): {name}"), name=name))


def mygrid_party_text(
    t: Translate,
    coverage: Coverage | None,
    contact: str | None,
    plans: Sequence[PartyPlan],
) -> str:
    """What /mygrid adds about party contacts: coverage for staff, the household's party
    contact for its people, her own contact households for a party member."""
    lines = []
    if coverage is not None:
        lines.append(coverage_text(t, coverage))
    if contact is not None:
        lines.append(household_contact_text(t, contact))
    count = sum(len(plan.households) for plan in plans)
    if plans:
        due = sum(len(plan.due) for plan in plans)
        lines.append(
            esc(
                t(
                    N_(
                        "You are the party contact of {count} households; {due} still due "
                        "this period. Send /party to see them."
                    ),
                    count=count,
                    due=due,
                )
            )
        )
    return "\n".join(lines)


def branches_text(t: Translate, rows: Sequence[BranchRow]) -> str:
    if not rows:
        return esc(t(N_("No party branches yet. An administrator adds one with /party branch.")))
    lines = [bold(t(N_("Party branches (党支部)")))]
    lines.extend(
        esc(
            t(
                N_("#{id} {name} — grid {grid}, party members: {count}"),
                id=row.branch.id,
                name=row.branch.name,
                grid=row.grid.name,
                count=row.members,
            )
        )
        for row in rows
    )
    return "\n".join(lines)
