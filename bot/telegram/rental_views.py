"""How rental houses and their tenants are shown (出租房屋): the landlord's houses, the tenants
a worker still has to confirm, the conversation's prompts and the grid's rental counts."""

from __future__ import annotations

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.i18n import N_
from bot.services.rentals import RentalCounts, RentalView, TenantLine
from bot.telegram.callbacks import RentalAction, RentalCb, TenancyAction, TenancyCb
from bot.telegram.i18n import t
from bot.telegram.render import bold, code, esc

RENTAL_USAGE = N_(
    "How to use: /rental &lt;household code&gt; &lt;landlord's name&gt; [phone] — put a "
    "household's address on the register as a rental house and get a link for its landlord."
)
LANDLORD_LINK = N_(
    "Rental house {address} ({code}), landlord {name}.\n{link}\n\n"
    "Send this link to the landlord only. It works once and expires in 14 days. With it the "
    "landlord registers the tenants in the bot (谁出租、谁负责)."
)
LANDLORD_WELCOME = N_(
    "Welcome! You are registered as the landlord of {address}. Whoever lets a house answers "
    "for registering its tenants: register each tenant with the button below within "
    "{days} days of moving in. Send /rentals at any time to see your houses."
)
TENANT_WELCOME = N_(
    "You are registering yourself as a tenant of {address}. What you write is seen only by "
    "the people who serve this grid, and your ID number is kept encrypted."
)
ASK_NAME = N_("The tenant's full name, as on the ID card? (Send /cancel to stop.)")
ASK_ID = N_("The tenant's resident ID number (18 characters)?")
ASK_PHONE = N_("The tenant's mobile phone number?")
ASK_ORIGIN = N_("Where did the tenant come from (province, city or county)?")
ASK_MOVED_IN = N_("When did the tenant move in? Write the date, like 2026-12-01.")
ASK_STAY = N_(
    "How long will the tenant stay? A number of months (6), years (1年) or the last day "
    "(2027-06-30)."
)
REGISTERED = N_(
    "Tenant {name} is registered. Residence registration must be done by {due}: the grid "
    "worker will confirm it on the next visit."
)
TENANT_LINK = N_(
    "Send this link to your tenants at {address}:\n{link}\n\n"
    "With it each tenant registers themselves. A new link replaces this one."
)
NO_RENTALS = N_(
    "You have no rental house on the register, and no tenant is waiting for your confirmation."
)
STAFF_TITLE = N_("Tenants whose residence registration is still to confirm: {count}")
LAPSED_TITLE = N_("Lapsed residence registrations: {count}")
STAFF_LINE = N_("• {name}, {address} ({code}) — due by {day}")
LAPSED_MARK = N_("⚠️ lapsed")
HOUSE_TITLE = N_("🏠 {address}")
NO_TENANTS = N_("No tenants registered yet.")
TENANT_LINE = N_("• {name} — moved in {moved_in}: {state}")
STATE_CONFIRMED = N_("✅ registration confirmed")
STATE_WAITING = N_("⏳ the worker confirms by {day}")
STATE_LAPSED = N_("⚠️ registration lapsed on {day}")
STATE_MOVED_OUT = N_("moved out")
CONFIRMED = N_("Residence registration of {name} confirmed.")
MOVED_OUT = N_("{name} is recorded as moved out.")
COUNTS = N_(
    "Rental houses: {rentals}, tenants living in them: {tenants}, lapsed residence "
    "registrations: {lapsed}."
)
ADD_BUTTON = N_("➕ Register a tenant")
LINK_BUTTON = N_("🔗 Link for tenants")
CONFIRM_BUTTON = N_("✅ Confirm {name}")
OUT_BUTTON = N_("🚪 {name} moved out")


def _button(text: str, data: RentalCb | TenancyCb) -> list[InlineKeyboardButton]:
    return [InlineKeyboardButton(text=text[:60], callback_data=data.pack())]


def landlord_keyboard(rental_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            _button(t(ADD_BUTTON), RentalCb(action=RentalAction.ADD, rental=rental_id)),
            _button(t(LINK_BUTTON), RentalCb(action=RentalAction.LINK, rental=rental_id)),
        ]
    )


def _state(line: TenantLine) -> str:
    if line.ended:
        return t(STATE_MOVED_OUT)
    if line.confirmed:
        return t(STATE_CONFIRMED)
    if line.lapsed:
        return t(STATE_LAPSED, day=line.due_on.isoformat())
    return t(STATE_WAITING, day=line.due_on.isoformat())


def landlord_text(view: RentalView) -> str:
    lines = [bold(t(HOUSE_TITLE, address=view.address))]
    if not view.tenants:
        lines.append(esc(t(NO_TENANTS)))
    for line in view.tenants:
        moved_in = line.moved_in.isoformat() if line.moved_in else "—"
        lines.append(
            esc(t(TENANT_LINE, name=line.name or "—", moved_in=moved_in, state=_state(line)))
        )
    return "\n".join(lines)


def landlord_rental_keyboard(view: RentalView) -> InlineKeyboardMarkup:
    rows = landlord_keyboard(view.rental_id).inline_keyboard
    rows = [*rows]
    for line in view.tenants:
        if not line.ended:
            rows.append(
                _button(
                    t(OUT_BUTTON, name=line.name),
                    TenancyCb(action=TenancyAction.MOVED_OUT, tenancy=line.tenancy_id),
                )
            )
    return InlineKeyboardMarkup(inline_keyboard=rows)


def staff_text(lines: list[TenantLine], *, lapsed_only: bool) -> str:
    title = LAPSED_TITLE if lapsed_only else STAFF_TITLE
    out = [bold(t(title, count=len(lines)))]
    for line in lines:
        text = t(
            STAFF_LINE,
            name=line.name,
            address=line.address,
            code=line.household_code,
            day=line.due_on.isoformat(),
        )
        if line.lapsed:
            text += " " + t(LAPSED_MARK)
        out.append(esc(text))
    return "\n".join(out)


def staff_keyboard(lines: list[TenantLine], *, can_confirm: bool) -> InlineKeyboardMarkup | None:
    if not can_confirm or not lines:
        return None
    rows = []
    for line in lines:
        rows.append(
            _button(
                t(CONFIRM_BUTTON, name=line.name),
                TenancyCb(action=TenancyAction.CONFIRM, tenancy=line.tenancy_id),
            )
        )
        rows.append(
            _button(
                t(OUT_BUTTON, name=line.name),
                TenancyCb(action=TenancyAction.MOVED_OUT, tenancy=line.tenancy_id),
            )
        )
    return InlineKeyboardMarkup(inline_keyboard=rows[:100])


def link_text(address: str, household_code: str, name: str, link: str) -> str:
    return t(
        LANDLORD_LINK,
        address=bold(address),
        code=code(household_code),
        name=esc(name),
        link=esc(link),
    )


def counts_text(counts: RentalCounts) -> str:
    """The grid's rental houses, their tenants and lapsed registrations (for staff)."""
    return esc(t(COUNTS, rentals=counts.rentals, tenants=counts.tenants, lapsed=counts.lapsed))
