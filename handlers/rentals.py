"""Rental houses in the chat (出租房屋, 谁出租、谁负责).

- ``/rental <household code> <landlord> [phone]``: a worker puts an address on the register
  as a rental house and gets a single-use link for its landlord.
- ``/start ll_…``: the landlord opens it; ``/start tn_…``: a tenant registers themselves.
- ``/rentals``: a landlord's houses and tenants (register one, a link for tenants, moved out);
  for staff, the tenants whose residence registration (居住登记) they still have to confirm
  (``/rentals lapsed``: the lapsed ones), with ✅ confirm and 🚪 moved out.

The tenant conversation: name → ID number → phone → where from → move-in day → stay.

```mermaid
stateDiagram-v2
    [*] --> name: ➕ Register a tenant (landlord) / tenant's link
    name --> id_number
    id_number --> phone: checked (cn.ric), kept sealed
    phone --> origin
    origin --> moved_in
    moved_in --> stay
    stay --> [*]: registered; the worker is told to confirm
```
"""

from __future__ import annotations

from datetime import date
from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject, CommandStart, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message

from bot.services import deeplinks, members, rentals
from bot.services.actor import Actor
from bot.services.permissions import Action, scope_paths
from bot.settings import Settings
from bot.telegram import rental_views as views
from bot.telegram.callbacks import RentalAction, RentalCb, TenancyAction, TenancyCb
from bot.telegram.i18n import t
from bot.telegram.render import bold, esc
from bot.telegram.replies import Replier


class TenantFlow(StatesGroup):
    name = State()
    id_number = State()
    phone = State()
    origin = State()
    moved_in = State()
    stay = State()


def _today(actor: Actor, settings: Settings) -> date:
    return actor.now.astimezone(settings.tz).date()


async def rental_command(
    message: Message, command: CommandObject, reply: Replier, actor: Actor, bot: Bot
) -> None:
    parts = (command.args or "").split()
    if len(parts) < 2:
        reply.text(t(views.RENTAL_USAGE))
        return
    phone = None
    if len(parts) > 2 and sum(ch.isdigit() for ch in parts[-1]) >= 7:
        phone = parts.pop()
    issued = await rentals.open_rental(
        actor.session,
        person=actor.who,
        roles=actor.roles,
        household_code=parts[0],
        landlord_name=" ".join(parts[1:]),
        landlord_phone=phone,
        now=actor.now,
    )
    me = await bot.me()
    link = deeplinks.start_link(me.username or "", deeplinks.landlord_payload(issued.token))
    reply.text(
        views.link_text(
            issued.household.address, issued.household.code, issued.rental.landlord_name, link
        )
    )


async def rentals_command(
    message: Message, command: CommandObject, reply: Replier, actor: Actor, settings: Settings
) -> None:
    today = _today(actor, settings)
    shown = False
    for view in await rentals.landlord_rentals(actor.session, actor.who, today):
        reply.text(views.landlord_text(view), views.landlord_rental_keyboard(view))
        shown = True
    if rentals.is_staff(actor.roles):
        lapsed_only = (command.args or "").strip().lower() in {"lapsed", "逾期", "過期", "过期"}
        lines = await rentals.staff_tenancies(
            actor.session, actor.roles, today, lapsed_only=lapsed_only
        )
        can_confirm = bool(scope_paths(actor.roles, Action.VISIT))
        reply.text(
            views.staff_text(lines, lapsed_only=lapsed_only),
            views.staff_keyboard(lines, can_confirm=can_confirm),
        )
        shown = True
    if not shown:
        reply.text(esc(t(views.NO_RENTALS)))


async def start_rental_link(
    message: Message,
    command: CommandObject,
    reply: Replier,
    actor: Actor,
    state: FSMContext,
    settings: Settings,
) -> None:
    link = deeplinks.parse_start_payload(command.args)
    await state.clear()
    if isinstance(link, deeplinks.BecomeLandlord):
        rental, household = await rentals.claim_rental(
            actor.session, person=actor.who, token=link.token, now=actor.now
        )
        assert rental.id is not None
        reply.text(
            t(
                views.LANDLORD_WELCOME,
                address=bold(household.address),
                days=settings.people.residence_registration_days,
            ),
            views.landlord_keyboard(rental.id),
        )
        return
    assert isinstance(link, deeplinks.RegisterAsTenant)
    rental, household = await rentals.rental_of_tenant_link(actor.session, link.token)
    await state.set_state(TenantFlow.name)
    await state.update_data(rental_id=rental.id, tenant=rentals.link_hash(link.token))
    reply.text(
        t(views.TENANT_WELCOME, address=bold(household.address)) + "\n\n" + esc(t(views.ASK_NAME))
    )


async def rental_pressed(
    query: CallbackQuery,
    callback_data: RentalCb,
    reply: Replier,
    actor: Actor,
    state: FSMContext,
    bot: Bot,
) -> None:
    if callback_data.action == RentalAction.LINK:
        token = await rentals.tenant_link(
            actor.session, person=actor.who, rental_id=callback_data.rental, now=actor.now
        )
        rental = await rentals.landlord_rental(actor.session, actor.who, callback_data.rental)
        household = await rentals.household_of(actor.session, rental)
        await query.answer()
        me = await bot.me()
        link = deeplinks.start_link(me.username or "", deeplinks.tenant_payload(token))
        reply.text(t(views.TENANT_LINK, address=bold(household.address), link=esc(link)))
        return
    rental = await rentals.landlord_rental(actor.session, actor.who, callback_data.rental)
    await query.answer()
    await state.clear()
    await state.set_state(TenantFlow.name)
    await state.update_data(rental_id=rental.id, tenant=None)
    reply.text(esc(t(views.ASK_NAME)))


async def tenancy_pressed(
    query: CallbackQuery,
    callback_data: TenancyCb,
    reply: Replier,
    actor: Actor,
    settings: Settings,
) -> None:
    if callback_data.action == TenancyAction.CONFIRM:
        tenancy = await rentals.confirm_tenancy(
            actor.session,
            person=actor.who,
            roles=actor.roles,
            tenancy_id=callback_data.tenancy,
            now=actor.now,
        )
        text = views.CONFIRMED
    else:
        tenancy = await rentals.move_out(
            actor.session,
            person=actor.who,
            roles=actor.roles,
            tenancy_id=callback_data.tenancy,
            today=_today(actor, settings),
            now=actor.now,
        )
        text = views.MOVED_OUT
    name = await rentals.tenant_name(actor.session, actor.who, actor.roles, tenancy)
    await query.answer()
    reply.text(esc(t(text, name=name)))


# --- the tenant conversation ----------------------------------------------------------------


async def name_typed(message: Message, reply: Replier, state: FSMContext) -> None:
    await state.update_data(name=rentals.parse_name(message.text or ""))
    await state.set_state(TenantFlow.id_number)
    reply.text(esc(t(views.ASK_ID)))


async def id_typed(
    message: Message, reply: Replier, actor: Actor, state: FSMContext, settings: Settings
) -> None:
    number = await rentals.seal_number(
        actor.session,
        message.text or "",
        vault=members.vault_of(settings.people),
        today=_today(actor, settings),
    )
    await state.update_data(
        cipher=number.cipher,
        digest=number.digest,
        born=number.birth_date.isoformat(),
        gender=number.gender.value,
    )
    await state.set_state(TenantFlow.phone)
    reply.text(esc(t(views.ASK_PHONE)))


async def phone_typed(message: Message, reply: Replier, state: FSMContext) -> None:
    await state.update_data(phone=rentals.parse_phone(message.text or ""))
    await state.set_state(TenantFlow.origin)
    reply.text(esc(t(views.ASK_ORIGIN)))


async def origin_typed(message: Message, reply: Replier, state: FSMContext) -> None:
    await state.update_data(origin=rentals.parse_origin(message.text or ""))
    await state.set_state(TenantFlow.moved_in)
    reply.text(esc(t(views.ASK_MOVED_IN)))


async def moved_in_typed(
    message: Message, reply: Replier, actor: Actor, state: FSMContext, settings: Settings
) -> None:
    day = rentals.parse_move_in(message.text or "", today=_today(actor, settings))
    await state.update_data(moved_in=day.isoformat())
    await state.set_state(TenantFlow.stay)
    reply.text(esc(t(views.ASK_STAY)))


async def stay_typed(
    message: Message, reply: Replier, actor: Actor, state: FSMContext, settings: Settings
) -> None:
    data: dict[str, Any] = await state.get_data()
    form = rentals.form_of(data, stay=message.text or "")
    tenancy, member = await rentals.register_tenant(
        actor.session,
        person=actor.who,
        rental_id=int(data["rental_id"]),
        form=form,
        tenant_digest=data.get("tenant"),
        settings=settings,
        now=actor.now,
    )
    await state.clear()
    reply.text(esc(t(views.REGISTERED, name=member.name, due=tenancy.due_on.isoformat())))


def build_router() -> Router:
    router = Router(name=__name__)
    router.message.register(
        start_rental_link,
        CommandStart(deep_link=True, magic=F.args.func(deeplinks.is_rental_link)),
    )
    router.message.register(rental_command, Command("rental"))
    router.message.register(rentals_command, Command("rentals"))
    router.callback_query.register(rental_pressed, RentalCb.filter())
    router.callback_query.register(tenancy_pressed, TenancyCb.filter())
    typed = ~F.text.startswith("/")
    for step, handler in (
        (TenantFlow.name, name_typed),
        (TenantFlow.id_number, id_typed),
        (TenantFlow.phone, phone_typed),
        (TenantFlow.origin, origin_typed),
        (TenantFlow.moved_in, moved_in_typed),
        (TenantFlow.stay, stay_typed),
    ):
        router.message.register(handler, StateFilter(step), F.text, typed)
    return router
