"""The /report conversation in the chat: its draft, buttons, callback data and texts.

The conversation (``handlers.report``) keeps a :class:`Draft` in the FSM data; everything
here renders it or reads what the person sent. Texts are catalog msgids, HTML-escaped where
the person's own words appear.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from aiogram.filters.callback_data import CallbackData
from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
)
from aiogram.utils.i18n import gettext as _

from bot import labels
from bot.errors import DomainError
from bot.i18n import N_, join_list
from bot.routing.policy import EmergencyAdvice, EmergencyCall, EmergencyService
from bot.services import outbox
from bot.services.ticket_numbers import shown_number
from bot.services.tickets import MAX_PHOTOS, PlacedBy, Placement, Report
from bot.telegram.callbacks import RowId
from bot.telegram.cancelling import cancel_only
from bot.telegram.render import bold, esc, italic
from bot.telegram.replies import Markup, Replier, markup_json
from models import HandlingKind, Ticket, TicketCategory

# -- buttons (the same label on inline and reply keyboards) --------------------------------------

CANCEL = N_("✖️ Cancel")
DONE = N_("✅ Done")
NO_PHOTOS = N_("No photos")
SEND_LOCATION = N_("📍 Send my location")
AT_HOME = N_("🏠 At my home")
DANGER_YES = N_("⚠️ Yes, someone is in danger")
DANGER_NO = N_("No, nobody is in danger")
SEND = N_("✅ Send")
CHANGE = N_("✏️ Change something")
BACK = N_("« Back")
SAME = N_("Yes, the same")
NEW = N_("No, a new problem")

STEPS = 5  # category, what happened, photos, where, danger (then the summary)
SUMMARY_EXCERPT = 1000  # characters of the description shown in the summary
DUPLICATE_EXCERPT = 120
ROW_WIDTH = 28  # half-width characters a cheap phone shows across one row of buttons


class ReportAction(StrEnum):
    CANCEL = "x"
    PHOTOS_DONE = "p"
    DANGER_YES = "y"
    DANGER_NO = "n"
    SEND = "s"
    CHANGE = "c"
    BACK = "b"
    SAME = "m"  # the offered likely duplicate is the same problem (id = that ticket)
    NEW = "w"  # it is a new problem after all


class ReportStep(StrEnum):
    """A step the resident can go back to from the summary."""

    CATEGORY = "c"
    DESCRIPTION = "d"
    PHOTOS = "p"
    PLACE = "l"
    DANGER = "u"


STEP_LABEL: dict[ReportStep, str] = {
    ReportStep.CATEGORY: N_("Category"),
    ReportStep.DESCRIPTION: N_("What happened"),
    ReportStep.PHOTOS: N_("Photos"),
    ReportStep.PLACE: N_("Place"),
    ReportStep.DANGER: N_("Danger"),
}


class ReportCb(CallbackData, prefix="rp"):
    """A button of the /report conversation (the handler re-checks the step it is valid in)."""

    action: ReportAction
    id: RowId = 0


class ReportCategoryCb(CallbackData, prefix="rpc"):
    category: TicketCategory


class ReportEditCb(CallbackData, prefix="rpe"):
    """Go back from the summary to one step."""

    step: ReportStep


# -- the draft -----------------------------------------------------------------------------------


@dataclass
class Draft:
    """What the resident has told so far (the FSM data of the conversation)."""

    category: TicketCategory | None = None
    description: str | None = None
    photos: list[str] = field(default_factory=list)  # Telegram file ids, at most MAX_PHOTOS
    albums: dict[str, str] = field(default_factory=dict)  # answered media group → its note
    address: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    household_id: int | None = None  # "at my home"
    urgent: bool | None = None  # None: not asked yet
    editing: bool = False  # came from the summary: go back there after this step
    offered: int | None = None  # the likely duplicate shown
    declined: list[int] = field(default_factory=list)  # duplicates the resident said differ

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Draft:
        """Read the FSM data back, tolerating anything (an older version, a hand edit)."""
        return cls(
            category=_category(data.get("category")),
            description=_str(data.get("description")),
            photos=[p for p in _list(data.get("photos")) if isinstance(p, str)][:MAX_PHOTOS],
            albums=_albums(data.get("albums")),
            address=_str(data.get("address")),
            latitude=_float(data.get("latitude")),
            longitude=_float(data.get("longitude")),
            household_id=_int(data.get("household_id")),
            urgent=data.get("urgent") if isinstance(data.get("urgent"), bool) else None,
            editing=data.get("editing") is True,
            offered=_int(data.get("offered")),
            declined=[i for i in map(_int, _list(data.get("declined"))) if i is not None],
        )

    def to_data(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def has_place(self) -> bool:
        return bool(self.address) or self.latitude is not None or self.household_id is not None

    def missing(self) -> ReportStep | None:
        """The first step not answered yet (photos are optional)."""
        if self.category is None:
            return ReportStep.CATEGORY
        if self.description is None:
            return ReportStep.DESCRIPTION
        if not self.has_place:
            return ReportStep.PLACE
        if self.urgent is None:
            return ReportStep.DANGER
        return None

    def set_place(
        self,
        *,
        address: str | None = None,
        latitude: float | None = None,
        longitude: float | None = None,
        household_id: int | None = None,
    ) -> None:
        self.address, self.household_id = address, household_id
        self.latitude, self.longitude = latitude, longitude

    def report(self) -> Report:
        assert self.category is not None and self.description is not None
        return Report(
            category=self.category,
            description=self.description,
            urgent=bool(self.urgent),
            address=self.address,
            latitude=self.latitude,
            longitude=self.longitude,
            household_id=self.household_id,
            photo_file_ids=tuple(self.photos),
        )


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _albums(value: object) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _category(value: object) -> TicketCategory | None:
    try:
        return TicketCategory(str(value))
    except ValueError:
        return None


# -- reading what the person sent ----------------------------------------------------------------


def typed_text(raw: str | None) -> str | None:
    """Typed text without what no database stores: control characters (but line breaks and
    tabs) and lone surrogates. ``None`` when the message carried no text at all."""
    if raw is None:
        return None
    return "".join(
        ch for ch in raw if ch in "\n\t" or unicodedata.category(ch) not in {"Cc", "Cs"}
    )


def shared_place(message: Message) -> tuple[float, float] | None:
    """The point of a shared location or venue, if it is a real place on Earth."""
    location = message.venue.location if message.venue else message.location
    if location is None:
        return None
    latitude, longitude = location.latitude, location.longitude
    if not (math.isfinite(latitude) and math.isfinite(longitude)):
        return None
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        return None
    return latitude, longitude


def venue_address(message: Message) -> str | None:
    if message.venue is None:
        return None
    text = typed_text(" ".join(p for p in (message.venue.title, message.venue.address) if p))
    return " ".join(text.split())[:300] or None if text else None


def refusal_text(error: DomainError) -> str:
    """A domain refusal in the person's language (as the error router would say it)."""
    # a parameter may itself be a msgid ("hour", a ticket state): translated like the message
    # (never gettext(""): that is the catalog's header)
    params = {key: _(str(value)) if str(value) else "" for key, value in error.params.items()}
    return esc(_(error.message).format(**params))


# -- keyboards -----------------------------------------------------------------------------------


def display_width(text: str) -> int:
    """Half-width cells: a Chinese character takes two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def pack_rows(
    buttons: Sequence[InlineKeyboardButton], *, least: int = 2, most: int = 3
) -> list[list[InlineKeyboardButton]]:
    """Rows of two buttons, or three where their labels fit across a small screen."""
    rows: list[list[InlineKeyboardButton]] = []
    for button in buttons:
        row = rows[-1] if rows else None
        if row is not None and (
            len(row) < least
            or (
                len(row) < most and sum(display_width(b.text) for b in [*row, button]) <= ROW_WIDTH
            )
        ):
            row.append(button)
        else:
            rows.append([button])
    return rows


def _button(label: str, data: CallbackData) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=_(label), callback_data=data.pack())


def cancel_button() -> InlineKeyboardButton:
    return _button(CANCEL, ReportCb(action=ReportAction.CANCEL))


def category_keyboard() -> InlineKeyboardMarkup:
    buttons = [
        InlineKeyboardButton(
            text=_(labels.TICKET_CATEGORY[category]),
            callback_data=ReportCategoryCb(category=category).pack(),
        )
        for category in TicketCategory
    ]
    return InlineKeyboardMarkup(inline_keyboard=[*pack_rows(buttons), [cancel_button()]])


def cancel_keyboard() -> InlineKeyboardMarkup:
    return cancel_only(_(CANCEL), ReportCb(action=ReportAction.CANCEL))


def photos_keyboard(count: int) -> InlineKeyboardMarkup:
    label = DONE if count else NO_PHOTOS
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [_button(label, ReportCb(action=ReportAction.PHOTOS_DONE)), cancel_button()]
        ]
    )


def place_keyboard(home: bool) -> ReplyKeyboardMarkup:
    rows = [[KeyboardButton(text=_(SEND_LOCATION), request_location=True)]]
    if home:
        rows.append([KeyboardButton(text=_(AT_HOME))])
    rows.append([KeyboardButton(text=_(CANCEL))])
    return ReplyKeyboardMarkup(
        keyboard=rows,
        resize_keyboard=True,
        one_time_keyboard=True,
        input_field_placeholder=_("or type the address")[:64],
    )


def danger_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [_button(DANGER_YES, ReportCb(action=ReportAction.DANGER_YES))],
            [_button(DANGER_NO, ReportCb(action=ReportAction.DANGER_NO))],
            [cancel_button()],
        ]
    )


def summary_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [_button(SEND, ReportCb(action=ReportAction.SEND))],
            [_button(CHANGE, ReportCb(action=ReportAction.CHANGE)), cancel_button()],
        ]
    )


def change_keyboard() -> InlineKeyboardMarkup:
    buttons = [_button(STEP_LABEL[step], ReportEditCb(step=step)) for step in ReportStep]
    return InlineKeyboardMarkup(
        inline_keyboard=[
            *pack_rows(buttons),
            [_button(BACK, ReportCb(action=ReportAction.BACK))],
        ]
    )


def duplicate_keyboard(ticket_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [_button(SAME, ReportCb(action=ReportAction.SAME, id=ticket_id))],
            [_button(NEW, ReportCb(action=ReportAction.NEW)), cancel_button()],
        ]
    )


# -- texts ---------------------------------------------------------------------------------------


def _step(number: int, question: str) -> str:
    return bold(_("Step {step} of {steps}").format(step=number, steps=STEPS)) + "\n" + question


def category_prompt() -> str:
    return _step(
        1,
        _("What kind of problem is it? Choose one below.")
        + "\n"
        + _("You can send /cancel at any time to stop."),
    )


def description_prompt() -> str:
    return _step(
        2,
        _(
            "What happened? Please describe it in a few sentences: what, where exactly, "
            "since when, who is affected."
        ),
    )


def photos_prompt(count: int) -> str:
    if count >= MAX_PHOTOS:
        status = _("That makes {limit} photos, the most I can take. Press “{done}” to go on.")
    elif count:
        status = _("Got {count} of at most {limit} photos. Send more, or press “{done}”.")
    else:
        status = _(
            "A photo helps a lot. Send up to {limit} photos (several at once is fine), "
            "or press “{none}”."
        )
    return _step(3, status.format(count=count, limit=MAX_PHOTOS, done=_(DONE), none=_(NO_PHOTOS)))


def place_prompt(home: bool) -> str:
    if home:
        question = _(
            "Where is it? Press “{location}”, press “{home}”, or type the address "
            "(for example: building 3, east gate)."
        )
    else:
        question = _(
            "Where is it? Press “{location}”, or type the address "
            "(for example: building 3, east gate)."
        )
    return _step(4, question.format(location=_(SEND_LOCATION), home=_(AT_HOME)))


def danger_prompt() -> str:
    return _step(5, _("Is anyone in danger right now?"))


# whom to call, as a person in danger reads it (the numbers and which come first per category
# are in the routing policy: ``EmergencyPolicy``)
EMERGENCY_LINES: dict[EmergencyService, tuple[str, str]] = {
    EmergencyService.POLICE: ("🚓", N_("{number} — police")),
    EmergencyService.FIRE: ("🚒", N_("{number} — fire")),
    EmergencyService.AMBULANCE: ("🚑", N_("{number} — ambulance")),
}


DANGER_TITLE = N_("If life or property is in danger, call now:")


def emergency_call(call: EmergencyCall, *, strong: bool = False) -> str:
    icon, line = EMERGENCY_LINES[call.service]
    number = bold(call.number) if strong else esc(call.number)
    return f"{icon} " + _(line).format(number=number)


def emergency_text(advice: EmergencyAdvice) -> str:
    """The answer to "someone is in danger": what to call for this kind of problem first,
    before anything else; then the other numbers; then what happens to the report."""
    lines = [bold(_(DANGER_TITLE))]
    lines += [emergency_call(call, strong=True) for call in advice.first]
    if advice.others:
        others = join_list(_, (emergency_call(call) for call in advice.others))
        lines.append(_("For anything else: {calls}").format(calls=others))
    lines += ["", _("Your report will be marked urgent and goes to your grid at once.")]
    return "\n".join(lines)


def place_text(draft: Draft) -> str:
    if draft.household_id is not None:
        return _("at home: {address}").format(address=esc(draft.address or "—"))
    if draft.address:
        return esc(draft.address)
    if draft.latitude is not None and draft.longitude is not None:
        return _("the location you shared ({latitude}, {longitude})").format(
            latitude=f"{draft.latitude:.5f}", longitude=f"{draft.longitude:.5f}"
        )
    return "—"


def excerpt(text: str, limit: int) -> str:
    """The start of a text, on one line, cut with an ellipsis."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


PLACED_TEXT: dict[PlacedBy, str] = {
    PlacedBy.POINT: N_("Goes to: {grid}, where the location you shared lies."),
    PlacedBy.HOME: N_("Goes to: {grid}, the grid of your home."),
    PlacedBy.ADDRESS: N_("Goes to: {grid}, the grid of the address you typed."),
    PlacedBy.AREA: N_(
        "Goes to: {grid}, where the location you shared lies; the street centre will pass it "
        "on to the right grid."
    ),
    PlacedBy.REPORTER: N_("Goes to: {grid}, your own grid."),
    PlacedBy.OUTSIDE: N_(
        "Goes to: {grid}, your own grid. The location you shared is outside every grid on "
        "the map, so the street centre will check where it belongs."
    ),
    PlacedBy.UNPLACED: N_(
        "Goes to: {grid}; the street centre will pass it on to the grid where it belongs."
    ),
}


def placement_text(placement: Placement) -> str:
    """Which grid the report goes to, and why."""
    return _(PLACED_TEXT[placement.by]).format(grid=bold(placement.grid.name))


def summary_text(draft: Draft, placement: Placement | None = None) -> str:
    category = _(labels.TICKET_CATEGORY[draft.category]) if draft.category else "—"
    lines = [
        bold(_("Please check your report:")),
        _("Category: {category}").format(category=esc(category)),
        _("What happened: {description}").format(
            description=esc(excerpt(draft.description or "—", SUMMARY_EXCERPT))
        ),
        _("Photos: {count}").format(count=len(draft.photos)),
        _("Place: {place}").format(place=place_text(draft)),
    ]
    if placement is not None:
        lines.append(placement_text(placement))
    if draft.urgent:
        lines.append("⚠️ " + _("Someone is in danger: it will be handled as urgent."))
    lines += ["", _("If it is right, press “{send}”.").format(send=_(SEND))]
    return "\n".join(lines)


def change_prompt() -> str:
    return _("What do you want to change?")


def age_text(delta: timedelta) -> str:
    """How long ago, roughly: "40 min", "3 h 5 min", "2 d 4 h"."""
    minutes = max(int(delta.total_seconds() // 60), 1)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return _("{days} d {hours} h").format(days=days, hours=hours)
    if hours:
        return _("{hours} h {minutes} min").format(hours=hours, minutes=minutes)
    return _("{minutes} min").format(minutes=minutes)


def duplicate_text(ticket: Ticket, now: datetime) -> str:
    return "\n".join(
        [
            _(
                "A similar problem was reported in your grid {age} ago and is being handled:"
            ).format(age=age_text(now - ticket.created_at)),
            "",
            f"№ {bold(shown_number(ticket))} · {esc(_(labels.TICKET_CATEGORY[ticket.category]))}",
            italic(excerpt(ticket.description, DUPLICATE_EXCERPT)),
            "",
            bold(_("Is it the same problem?")),
        ]
    )


def filed_text(ticket: Ticket, advice: EmergencyAdvice | None = None) -> str:
    """Sent: its number, who was told. An urgent report says whom to call first."""
    lines = []
    if ticket.kind == HandlingKind.URGENT and advice is not None:
        calls = join_list(_, (emergency_call(call, strong=True) for call in advice.first))
        lines.append(_("🆘 If anyone is in danger, call now: {calls}").format(calls=calls))
    lines.append(
        "✅ "
        + _("Your report has been sent. Its number is {number}.").format(
            number=bold(shown_number(ticket))
        )
    )
    if ticket.kind == HandlingKind.URGENT:
        lines.append(_("It is marked urgent: the people on duty have been told at once."))
    else:
        lines.append(
            _("The people who look after your grid have been told and will get back to you.")
        )
    lines.append(_("Send /report to report another problem."))
    return "\n".join(lines)


def joined_text(ticket: Ticket) -> str:
    return _(
        "Thank you. You now follow ticket {number}: you will hear when it moves on, "
        "so there is no need to report it again."
    ).format(number=bold(shown_number(ticket)))


def cancelled_text() -> str:
    return _("Your report was cancelled; nothing was sent. Send /report to start again.")


# -- albums: several photo messages, one answer --------------------------------------------------


def album_ref(media_group_id: str) -> str:
    return f"report-album:{media_group_id}"[:80]


def edit_by_ref(reply: Replier, ref: str, text: str, markup: Markup | None) -> None:
    """Edit the answer queued under ``ref`` (sent by then: the sender keeps a chat's order)."""
    payload: dict[str, Any] = {"chat_id": reply.chat_id, "text": text, "parse_mode": "HTML"}
    if isinstance(markup, InlineKeyboardMarkup):
        payload["reply_markup"] = markup_json(markup)
    outbox.enqueue(
        reply.session,
        chat_id=reply.chat_id,
        method="editMessageText",
        payload=payload,
        now=reply.now,
        person_id=reply.person_id,
        edit_ref=ref,
        urgent=True,
    )
