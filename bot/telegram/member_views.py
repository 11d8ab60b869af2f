"""How household members are shown: on a household's card, their own card, and the buttons
that show a masked field in full. Only what :class:`bot.services.members.MemberView` holds is
ever rendered — the service has already masked or left out what the reader may not see."""

from __future__ import annotations

from datetime import date

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from bot import labels
from bot.i18n import N_
from bot.services.members import MemberCounts, MemberView
from bot.services.personal_fields import FIELD_LABEL, Access, PersonalField
from bot.services.phones import display_phone
from bot.telegram.callbacks import (
    MemberAction,
    MemberCb,
    MemberRevealCb,
    RevealField,
    RevealPurpose,
)
from bot.telegram.render import bold, code, esc
from models import Gender, PartyKind, Relation, ResidenceStatus

REVEAL_FIELDS: dict[PersonalField, RevealField] = {
    PersonalField.ID_NUMBER: RevealField.ID_NUMBER,
    PersonalField.PHONE: RevealField.PHONE,
    PersonalField.BIRTH_DATE: RevealField.BIRTH_DATE,
    PersonalField.NAME: RevealField.NAME,
    PersonalField.TAGS: RevealField.TAGS,
}
FIELD_OF: dict[RevealField, PersonalField] = {v: k for k, v in REVEAL_FIELDS.items()}
PURPOSE_LABEL: dict[RevealPurpose, str] = {
    RevealPurpose.VISIT: N_("Checking at a home visit"),
    RevealPurpose.CASE: N_("Handling a request or case"),
    RevealPurpose.REGISTER: N_("Checking the register"),
}
ERASED = N_("(data erased)")
MOVED_OUT = N_("moved out")
MAX_LISTED = 30  # members on a household's card (a household rarely has more)


def field_text(name: PersonalField, value: object) -> str:
    """One field's value as a reader sees it (plain text: escape it for HTML)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, Relation):
        return _(labels.RELATION[value])
    if isinstance(value, Gender):
        return _(labels.GENDER[value])
    if isinstance(value, ResidenceStatus):
        return _(labels.RESIDENCE_STATUS[value])
    if isinstance(value, PartyKind):
        return _(labels.PARTY_KIND[value])
    if isinstance(value, date):
        return value.isoformat()
    if name == PersonalField.PHONE and str(value).startswith("+"):
        return display_phone(str(value))
    return str(value)


def _label(view: MemberView) -> str:
    if view.forgotten:
        return _(ERASED)
    parts = [
        field_text(f, view.shown(f))
        for f in (PersonalField.NAME, PersonalField.RELATION, PersonalField.BIRTH_DATE)
        if f in view.fields
    ]
    if view.moved_out:
        parts.append(_(MOVED_OUT))
    return " · ".join(parts)


def members_section(views: list[MemberView]) -> str:
    """The lines a household's card gets for its members (empty if none may be shown)."""
    if not views:
        return ""
    lines = [bold(_("People registered: {count}").format(count=len(views)))]
    for view in views[:MAX_LISTED]:
        status = view.shown(PersonalField.STATUS)
        aside = f" ({field_text(PersonalField.STATUS, status)})" if status else ""
        lines.append("• " + esc(_label(view) + aside))
    if len(views) > MAX_LISTED:
        lines.append(esc(_("…and {count} more.").format(count=len(views) - MAX_LISTED)))
    return "\n".join(lines)


def members_keyboard(views: list[MemberView]) -> list[list[InlineKeyboardButton]]:
    """A button per member who has a card to open."""
    return [
        [
            InlineKeyboardButton(
                text=("👤 " + _label(view))[:60],
                callback_data=MemberCb(action=MemberAction.OPEN, member=view.id).pack(),
            )
        ]
        for view in views[:MAX_LISTED]
        if not view.forgotten
    ]


def member_text(view: MemberView) -> str:
    lines = [bold(_("Resident #{id}").format(id=view.id)) + " " + code(view.household_code)]
    if view.forgotten:
        lines.append(esc(_(ERASED)))
    for name, shown in view.fields.items():
        text = field_text(name, shown.value)
        if shown.access == Access.ON_REQUEST and shown.value:
            text += " 🔒"
        lines.append(f"{esc(_(FIELD_LABEL[name]))}: {esc(text)}")
    return "\n".join(lines)


def member_keyboard(view: MemberView, *, can_forget: bool) -> InlineKeyboardMarkup:
    """ "Show" for each field the reader may ask to see in full; erase for an administrator."""
    rows = [
        [
            InlineKeyboardButton(
                text=_("👁 Show {field}").format(field=_(FIELD_LABEL[name])),
                callback_data=MemberRevealCb(
                    member=view.id, field=REVEAL_FIELDS[name], purpose=RevealPurpose.ASK
                ).pack(),
            )
        ]
        for name in view.revealable
        if name in REVEAL_FIELDS
    ]
    if can_forget and not view.forgotten:
        rows.append(
            [
                InlineKeyboardButton(
                    text=_("🗑 Erase personal data"),
                    callback_data=MemberCb(action=MemberAction.FORGET, member=view.id).pack(),
                )
            ]
        )
    return InlineKeyboardMarkup(inline_keyboard=rows)


def purpose_keyboard(member_id: int, field: RevealField) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=_(label),
                    callback_data=MemberRevealCb(
                        member=member_id, field=field, purpose=purpose
                    ).pack(),
                )
            ]
            for purpose, label in PURPOSE_LABEL.items()
        ]
    )


def forget_keyboard(member_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=_("Yes, erase it"),
                    callback_data=MemberCb(
                        action=MemberAction.FORGET_YES, member=member_id
                    ).pack(),
                ),
                InlineKeyboardButton(
                    text=_("No"),
                    callback_data=MemberCb(action=MemberAction.OPEN, member=member_id).pack(),
                ),
            ]
        ]
    )


def counts_text(counts: MemberCounts) -> str:
    """The grid's people by status (户籍/常住/流动), for heads and staff."""
    return esc(
        _(
            "People living here: {total} — registered {registered}, permanent {resident}, "
            "floating {floating}."
        ).format(
            total=counts.total,
            registered=counts.registered,
            resident=counts.resident,
            floating=counts.floating,
        )
    )
