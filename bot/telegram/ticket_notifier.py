"""The Telegram side of :class:`~bot.services.ticket_notices.TicketNotifier`.

Each recipient reads the update in their own language. A handler's card is one message per
person and ticket (outbox ``ref`` ``tc:<ticket>:<person>``) that is edited in place as the
ticket moves, so a chat never holds stale buttons; the reporter gets a message per change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.i18n import N_, gettext_for, resolve_locale
from bot.services import outbox, tickets
from bot.services.ticket_notices import Notice, TicketUpdate
from bot.services.ticket_numbers import shown_number
from bot.services.tickets import ReturnVisitRenderer
from bot.settings import Settings
from bot.telegram.callbacks import (
    AssistCb,
    ExtensionCb,
    ExtensionDecision,
    ReturnVisitCb,
    ReturnVisitOutcome,
    TicketAction,
    TicketCb,
)
from bot.telegram.render import esc
from bot.telegram.replies import markup_json
from bot.telegram.ticket_views import (
    answer_keyboard,
    card_keyboard,
    card_text,
    local_time,
    rating_keyboard,
)
from models import Grid, Person, ReturnVisit, Role, Ticket

REPORTER_TEXT: dict[Notice, str] = {
    Notice.JOINED: N_("You now follow ticket {number}; you will hear when it moves."),
    Notice.ACCEPTED: N_("Your ticket {number} was accepted by {actor}, who is working on it."),
    Notice.NOTE: N_("Progress on ticket {number}: {note}"),
    Notice.QUESTION: N_(
        "About ticket {number}, {actor} asks you:\n{note}\n\nJust send your answer here."
    ),
    Notice.RESOLVED: N_(
        "Ticket {number} is resolved: {note}\n\nAre you satisfied with how it was handled?"
    ),
    Notice.CLOSED: N_("Thank you for your rating. Ticket {number} is closed."),
    Notice.REOPENED: N_("Ticket {number} will be handled again (重办). New deadline: {deadline}."),
    Notice.ESCALATED: N_("Ticket {number} was reported up to {grid} (已上报)."),
    Notice.TRANSFERRED: N_("Ticket {number} was passed to {department}, which will handle it."),
    Notice.DUPLICATE: N_(
        "Ticket {number} is the same problem as ticket {original}; it is handled there, "
        "and you will hear about it."
    ),
    Notice.REJECTED: N_(
        "Ticket {number} cannot be taken up: {note}\nIf you disagree, please call your grid "
        "worker."
    ),
    Notice.SENT_DOWN: N_("Ticket {number} was sent to {grid}, which will handle it (已下派)."),
    Notice.TAKEN_UP: N_("Ticket {number} was taken up by {grid}, which handles it now (已上收)."),
    Notice.RECLASSIFIED: N_(
        "The problem you reported (ticket {number}) has been classified as {kind} (已定性); "
        "{grid} {role} handles it."
    ),
    Notice.VERIFY: N_(
        "Ticket {number} has been handled: {note}\nIt will be checked on site (核查) before it "
        "is closed; then you will be asked to rate it."
    ),
    Notice.VERIFIED: N_(
        "Ticket {number} is resolved and was checked on site: {note}\n\nAre you satisfied with "
        "how it was handled?"
    ),
    Notice.SENT_BACK: N_(
        "Ticket {number} was checked on site and is not finished yet; it is being handled again."
    ),
}
OWNER_TEXT: dict[Notice, str] = {
    Notice.FILED: N_("New ticket {number}."),
    Notice.ANSWER: N_("The reporter of ticket {number} answered: {note}"),
    Notice.ESCALATED: N_("Ticket {number} came up to you from below: {reason}"),
    Notice.TRANSFERRED: N_("Ticket {number} was transferred to your department."),
    Notice.REOPENED: N_("Ticket {number} was rated unsatisfactory and must be handled again."),
    Notice.COMPLAINT: N_("Ticket {number}: the reporter says what is still wrong."),
    Notice.WARNED: N_("⏰ Ticket {number} is due soon: {deadline}."),
    Notice.OVERDUE_AT_TOP: N_("⚠️ Ticket {number} is overdue at the street centre."),
    Notice.SENT_DOWN: N_("Ticket {number} was sent down to you by {actor} (下派)."),
    Notice.TAKEN_UP: N_("Ticket {number} was taken up to you by {actor} (上收)."),
    Notice.RECLASSIFIED: N_("🏷 Ticket {number} was classified as {kind} by {actor} (定性)."),
    Notice.DUTY_WIDENED: N_(
        "📟 Ticket {number} was not accepted by {duty}, on duty, within {minutes} minutes: "
        "every operator of the centre gets it now."
    ),
    Notice.RETURNED: N_(
        "↩️ Ticket {number} was returned by {department} (退单): {note}\nPlease dispatch it "
        "again: transfer it to the right department or send it down."
    ),
    Notice.EXTENSION_APPROVED: N_(
        "⏳ More time for ticket {number} was approved by {actor}. New deadline: {deadline}."
    ),
    Notice.EXTENSION_REFUSED: N_(
        "⏳ More time for ticket {number} was refused by {actor}. The deadline stays {deadline}."
    ),
    Notice.ASSIST_ANSWERED: N_("🤝 {department} answered on ticket {number} (协办): {note}"),
    Notice.VERIFY: N_(
        "🔍 Ticket {number} was resolved by {actor}: {note}\nPlease check it on site (核查): "
        "confirm it with a photo, or send it back with a reason."
    ),
    Notice.VERIFIED: N_("✅ Ticket {number} passed the on-site check by {actor}."),
    Notice.SENT_BACK: N_(
        "Ticket {number} was sent back by {actor} after the on-site check: {note}"
    ),
    Notice.URGED: N_("Ticket {number} is urged by {actor} (督查催办). Please deal with it now."),
    Notice.REMINDED: N_(
        "⏰ Ticket {number} has waited a working day for its on-site check (待核查). Please "
        "check it: confirm it with a photo, or send it back with a reason."
    ),
}
DUTY_FIRST = N_(
    "📟 You are on duty (值班): ticket {number} comes to you first. If it is not accepted "
    "within {duty_minutes} minutes, the whole centre gets it."
)
EXTENSION_ASKED_TEXT = N_(
    "⏳ {department} asks for more time for ticket {number} (延期申请).\nReason: {note}\n"
    "Deadline now: {deadline}\nAsked for: {wanted}"
)
ASSIST_ASKED_TEXT = N_(
    "🤝 Your department is asked to assist (协办) on ticket {number}, led by {lead}. Please "
    "answer by {due}."
)
EXTENSION_BUTTONS = (
    (ExtensionDecision.APPROVE, N_("✅ Approve")),
    (ExtensionDecision.REFUSE, N_("❌ Refuse")),
)
ASSIST_BUTTON = N_("✍️ Answer (协办)")
MORE_TIME_BUTTON = N_("⏳ More time (延期)")
ASSIST_REMINDER = N_("⏰ Reminder: your department has not answered yet.")
# the centre placed the ticket itself (下派 / 上收): the reason, and what the old owners read
MOVED_BY_CENTRE = frozenset({Notice.SENT_DOWN, Notice.TAKEN_UP})
WITH_REASON = MOVED_BY_CENTRE | {Notice.RECLASSIFIED}  # the owners read the person's reason
# 重办: the owners get the card anew, headed by what happened, the reporter's words on it
FRESH_CARD = {
    Notice.REOPENED: "🔁 ",
    Notice.COMPLAINT: "💬 ",
    Notice.SENT_BACK: "↩️ ",  # 核查不通过
    Notice.URGED: "📣 ",  # 催办
    Notice.REMINDED: "",  # 待核查 a working day (its text begins with ⏰)
}
RATED_NOTICES = frozenset({Notice.RESOLVED, Notice.VERIFIED})  # the reporter is asked to rate
MOVED_REASON = N_("Reason: {note}")
MOVED_AWAY = N_("Ticket {number} was moved to {grid} by {actor}; it is no longer with you.")
INFORMED_TEXT = N_("For your information: a new ticket {number} in {grid}.")
# 定性: what the previous owners and the informed links read; the reporter's notice board line
RECLASSIFIED_AWAY = N_(
    "Ticket {number} was classified as {kind} by {actor} and moved to {grid} {role}; it is "
    "no longer with you."
)
RECLASSIFIED_INFORMED = N_(
    "For your information: ticket {number} in {ticket_grid} was classified as {kind}; "
    "{grid} {role} handles it."
)
NOTICE_POSTED = N_(
    "📢 The outcome of ticket {number} is posted on your grid's notice board (公示) until "
    "{until}. Send /mygrid to see it."
)
OUTSIDE_GRIDS_TEXT = N_(
    "📍 Ticket {number} was reported with a location outside every grid's boundary "
    "({latitude}, {longitude}), so it went to the reporter's own grid, {grid}. Please check "
    "where it belongs, and send it down to the right grid if it is elsewhere."
)
UNMAPPED_AREA_TEXT = N_(
    "📍 Ticket {number} was reported with a location in {grid} ({latitude}, {longitude}), "
    "whose smaller grids have no boundary on the map yet. Please send it down to the grid "
    "where it belongs."
)
UNPLACED_TEXT = N_(
    "📍 Ticket {number} came in for {grid} with no place on the map or in the register that "
    "names a smaller grid. Please send it down to the grid where it belongs."
)
PLACED_BY_TEXT = {"area": UNMAPPED_AREA_TEXT, "unplaced": UNPLACED_TEXT}
MSGID_PARAMS = ("reason", "kind", "role")  # parameters that are msgids themselves
REASONS = {
    "accept_overdue": N_("not accepted in time"),
    "resolve_overdue": N_("not resolved in time"),
    "cap_overdue": N_("over the overall time limit"),
    "by_hand": N_("sent up by hand"),
}


class TelegramTicketNotifier:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _locale(self, person: Person) -> str:
        return resolve_locale(
            person.locale, person.telegram_language, self.settings.default_locale
        )

    async def __call__(self, session: AsyncSession, update: TicketUpdate, now: datetime) -> None:
        ticket = update.ticket
        assert ticket.id is not None
        grid_name, reporter_name, holder, photos = await tickets.card_facts(
            session, ticket, photos=update.report_photos
        )
        owner_grid = (
            await session.get(Grid, ticket.owner_grid_id) if ticket.owner_grid_id else None
        )
        params = {
            "number": shown_number(ticket),
            "actor": esc(update.actor.name) if update.actor else "—",
            "note": esc(update.note or ""),
            "deadline": local_time(ticket.resolve_deadline, self.settings.tz),
            "grid": esc(owner_grid.name) if owner_grid else "—",
            **{key: esc(value) for key, value in update.extra.items()},  # names as typed
        }
        if "reason" in params:
            params["reason"] = REASONS.get(params["reason"], params["reason"])
        if update.notice == Notice.WARNED:
            params["deadline"] = local_time(ticket.next_deadline_at, self.settings.tz)
        if "assist_deadline" in update.extra:  # an assisting department's 延期: its own date
            params["deadline"] = local_time(
                datetime.fromisoformat(update.extra["assist_deadline"]), self.settings.tz
            )
        for key in ("wanted", "due"):
            if key in update.extra:
                params[key] = local_time(
                    datetime.fromisoformat(update.extra[key]), self.settings.tz
                )
        if "notice_until" in update.extra:
            until = datetime.fromisoformat(update.extra["notice_until"])
            params["until"] = local_time(until, self.settings.tz)

        if update.notice == Notice.OUTSIDE_GRIDS:  # the street centre, to look at the place
            params["grid"] = esc(grid_name)
            params["latitude"] = f"{ticket.latitude or 0:.5f}"
            params["longitude"] = f"{ticket.longitude or 0:.5f}"
            wording = PLACED_BY_TEXT.get(update.extra.get("placed_by", ""), OUTSIDE_GRIDS_TEXT)
            for person in update.others:
                if _reachable(person):
                    text = self._t(person, wording, **params)
                    self._send(session, person, text, None, now)
            return

        if update.notice in {Notice.EXTENSION_ASKED, Notice.ASSIST_ASKED}:
            self._casework_ask(session, update, params, grid_name, now)
            return

        def card(person: Person) -> tuple[str, dict[str, Any] | None]:
            locale = self._locale(person)

            def t(message: str, **values: Any) -> str:
                return gettext_for(locale, message, **values)

            text = card_text(
                ticket,
                t,
                self.settings.tz,
                grid_name=grid_name,
                reporter_name=reporter_name,
                holder=holder,
                photos=photos,
            )
            # the owners of a ticket at the centre are its operators: they may send it down
            dispatch = ticket.owner_role == Role.CENTER
            keyboard = card_keyboard(ticket, t, dispatch=dispatch, photos=photos)
            return text, markup_json(keyboard)

        for person in update.reporters:
            if update.notice in REPORTER_TEXT:
                self._reporter_message(session, person, update, params, now)
        reporter_ids = {p.id for p in update.reporters}
        owner_ids = {p.id for p in update.owners}
        new_owners = update.notice in {
            Notice.FILED,
            Notice.DUTY_WIDENED,
            Notice.ESCALATED,
            Notice.TRANSFERRED,
            Notice.RETURNED,
            Notice.VERIFY,
            *MOVED_BY_CENTRE,
        } or (update.notice == Notice.RECLASSIFIED and bool(update.extra.get("moved")))
        actor_id = update.actor.id if update.actor else None
        for person in update.owners:
            if person.id in reporter_ids or not _reachable(person):
                continue
            text, keyboard = card(person)
            ref = f"tc:{ticket.id}:{person.id}"
            if update.notice in FRESH_CARD:
                self._fresh_card(
                    session, person, ref, (text, keyboard), update.notice, params, now
                )
                continue
            if new_owners:
                self._send(session, person, text, keyboard, now, ref=ref)
            else:
                self._edit(session, person, ref, text, keyboard, now)
            message = OWNER_TEXT.get(update.notice)
            if update.notice == Notice.RECLASSIFIED and person.id == actor_id:
                message = None  # they did it: their own answer says so
            if message and update.notice != Notice.FILED:
                told = self._t(person, message, **params)
                if update.notice in WITH_REASON and update.note:
                    told += "\n" + self._t(person, MOVED_REASON, note=esc(update.note))
                self._send(session, person, told, None, now)
            if "duty_minutes" in update.extra:
                self._send(session, person, self._t(person, DUTY_FIRST, **params), None, now)
        for person in update.others:
            if person.id in reporter_ids | owner_ids or not _reachable(person):
                continue
            text, _ = card(person)
            if update.notice == Notice.FILED:  # a link above, told at once (urgent, major)
                informed = self._t(person, INFORMED_TEXT, **{**params, "grid": esc(grid_name)})
                self._send(session, person, informed + "\n\n" + text, None, now)
            elif update.notice in {Notice.OVERDUE_AT_TOP, Notice.DUTY_WIDENED} or (
                "assist_deadline" in update.extra  # an assisting department's 延期 decided
            ):
                self._send(
                    session,
                    person,
                    self._t(person, OWNER_TEXT[update.notice], **params),
                    None,
                    now,
                )
            else:  # it moved on from them: their card keeps no buttons
                self._edit(session, person, f"tc:{ticket.id}:{person.id}", text, None, now)
                away = MOVED_AWAY if update.notice in MOVED_BY_CENTRE else None
                if update.notice == Notice.RECLASSIFIED:
                    away = RECLASSIFIED_AWAY
                if away and person.id != actor_id:
                    self._send(session, person, self._t(person, away, **params), None, now)
        for person in update.informed:  # links of the chain told at once (定性: major, urgent)
            if person.id in reporter_ids | owner_ids or not _reachable(person):
                continue
            text, _ = card(person)
            informed = self._t(person, RECLASSIFIED_INFORMED, ticket_grid=esc(grid_name), **params)
            self._send(session, person, informed + "\n\n" + text, None, now)

    def _casework_ask(
        self,
        session: AsyncSession,
        update: TicketUpdate,
        params: dict[str, str],
        grid_name: str,
        now: datetime,
    ) -> None:
        """延期申请 to the centre, with approve / refuse; 协办 to the assisting department's
        staff, with the answer button. Each with the ticket's card below (no card buttons:
        the card's actions are the lead's)."""
        ticket = update.ticket
        for person in update.others:
            if not _reachable(person):
                continue
            locale = self._locale(person)

            def t(message: str, **values: Any) -> str:
                return gettext_for(locale, message, **values)  # noqa: B023 - used at once

            if update.notice == Notice.EXTENSION_ASKED:
                head = self._t(person, EXTENSION_ASKED_TEXT, **params)
                request_id = int(update.extra["request_id"])
                rows = [
                    [
                        InlineKeyboardButton(
                            text=t(label),
                            callback_data=ExtensionCb(id=request_id, decision=decision).pack(),
                        )
                        for decision, label in EXTENSION_BUTTONS
                    ]
                ]
            else:
                head = self._t(person, ASSIST_ASKED_TEXT, **params)
                if update.extra.get("reminder"):
                    head = self._t(person, ASSIST_REMINDER) + "\n" + head
                assist = AssistCb(id=int(update.extra["assist_id"])).pack()
                more_time = TicketCb(action=TicketAction.EXTEND, id=ticket.id or 0).pack()
                rows = [
                    [
                        InlineKeyboardButton(text=t(ASSIST_BUTTON), callback_data=assist),
                        InlineKeyboardButton(text=t(MORE_TIME_BUTTON), callback_data=more_time),
                    ]
                ]
            body = card_text(
                ticket,
                t,
                self.settings.tz,
                grid_name=grid_name,
                reporter_name=None,
                holder=None,
                photos=0,
            )
            keyboard = markup_json(InlineKeyboardMarkup(inline_keyboard=rows))
            self._send(session, person, head + "\n\n" + body, keyboard, now)

    def _fresh_card(
        self,
        session: AsyncSession,
        person: Person,
        ref: str,
        card: tuple[str, dict[str, Any] | None],
        notice: Notice,
        params: dict[str, str],
        now: datetime,
    ) -> None:
        """The card as a new message (it notifies, and is the newest in the chat), headed by
        what happened. After a complaint the card before it gives up its buttons: one card
        per ticket with live buttons."""
        text, keyboard = card
        if notice == Notice.COMPLAINT:
            self._edit(session, person, ref, text, None, now)
        headline = FRESH_CARD[notice] + self._t(person, OWNER_TEXT[notice], **params)
        self._send(session, person, headline + "\n\n" + text, keyboard, now, ref=ref)

    def _t(self, person: Person, message: str, **params: Any) -> str:
        locale = self._locale(person)
        return gettext_for(locale, message, **_localized(locale, params))

    def _reporter_message(
        self,
        session: AsyncSession,
        person: Person,
        update: TicketUpdate,
        params: dict[str, str],
        now: datetime,
    ) -> None:
        if not _reachable(person):
            return
        locale = self._locale(person)

        def t(message: str, **values: Any) -> str:
            return gettext_for(locale, message, **values)

        text = t(REPORTER_TEXT[update.notice], **_localized(locale, params))
        keyboard = None
        if update.notice in RATED_NOTICES and person.id == update.ticket.reporter_id:
            keyboard = rating_keyboard(update.ticket, t)
        elif update.notice == Notice.QUESTION:
            keyboard = answer_keyboard(update.ticket, t)
        if update.photo_file_id:
            outbox.enqueue(
                session,
                chat_id=person.telegram_id or 0,
                method="sendPhoto",
                payload={"chat_id": person.telegram_id, "photo": update.photo_file_id},
                now=now,
                person_id=person.id,
                urgent=True,
            )
        self._send(session, person, text, keyboard, now)
        if update.notice in RATED_NOTICES and "until" in params:  # 公示: where to read it
            self._send(session, person, t(NOTICE_POSTED, **params), None, now)

    def _send(
        self,
        session: AsyncSession,
        person: Person,
        text: str,
        keyboard: dict[str, Any] | None,
        now: datetime,
        *,
        ref: str | None = None,
    ) -> None:
        assert person.telegram_id is not None
        outbox.send_text(
            session,
            chat_id=person.telegram_id,
            text=text,
            now=now,
            reply_markup=keyboard,
            person_id=person.id,
            ref=ref,
            urgent=True,
        )

    def _edit(
        self,
        session: AsyncSession,
        person: Person,
        ref: str,
        text: str,
        keyboard: dict[str, Any] | None,
        now: datetime,
    ) -> None:
        assert person.telegram_id is not None
        payload: dict[str, Any] = {
            "chat_id": person.telegram_id,
            "text": text,
            "parse_mode": "HTML",
            "reply_markup": keyboard or {"inline_keyboard": []},
        }
        outbox.enqueue(
            session,
            chat_id=person.telegram_id,
            method="editMessageText",
            payload=payload,
            now=now,
            person_id=person.id,
            edit_ref=ref,
            urgent=True,
        )


def _localized(locale: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with those that are msgids themselves (a reason, a kind, a role) translated."""
    return {
        key: gettext_for(locale, value) if key in MSGID_PARAMS and value else value
        for key, value in params.items()
    }


def _reachable(person: Person) -> bool:
    return person.telegram_id is not None and person.reachable and person.active


RETURN_VISIT_TEXT = N_(
    "Return visit (回访): ticket {number} was resolved a working day ago and its reporter "
    "{reporter} has not rated it. Please call them and record what they say:"
)
RETURN_VISIT_BUTTONS = (
    (ReturnVisitOutcome.SATISFIED, N_("😊 Satisfied")),
    (ReturnVisitOutcome.BASICALLY, N_("🙂 Basically satisfied")),
    (ReturnVisitOutcome.UNSATISFIED, N_("😞 Not satisfied")),
    (ReturnVisitOutcome.UNREACHABLE, N_("📵 Could not reach them")),
)


def return_visit_renderer(settings: Settings) -> ReturnVisitRenderer:
    """The prompt a worker gets for a return visit, in their language, with outcome buttons."""

    def render(
        person: Person, ticket: Ticket, visit: ReturnVisit, reporter: str
    ) -> tuple[str, dict[str, Any]]:
        locale = resolve_locale(person.locale, person.telegram_language, settings.default_locale)
        text = gettext_for(
            locale, RETURN_VISIT_TEXT, number=shown_number(ticket), reporter=esc(reporter)
        )
        rows = [
            [
                InlineKeyboardButton(
                    text=gettext_for(locale, label),
                    callback_data=ReturnVisitCb(id=visit.id or 0, outcome=outcome).pack(),
                )
            ]
            for outcome, label in RETURN_VISIT_BUTTONS
        ]
        markup = markup_json(InlineKeyboardMarkup(inline_keyboard=rows))
        assert markup is not None
        return text, markup

    return render
