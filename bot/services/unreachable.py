"""A person the bot can no longer reach (失联): their grid head is told to reach them otherwise.

Telegram answers 403 when someone blocked the bot or never pressed Start. The outbox sender
then marks the person unreachable and, in the same transaction and only when they *turn*
unreachable (not for every message that fails), calls :func:`tell_head`. Writing to the bot
again makes them reachable (``people.get_or_create_by_telegram``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.i18n import N_, gettext_for, resolve_locale
from bot.labels import ROLE
from bot.services import outbox
from bot.services.people import RoleInGrid, roles_of
from bot.settings import LOCALES
from models import Person, Role, RoleAssignment

UNREACHABLE = N_(
    "{name} ({role}) can no longer be reached through the bot (blocked it or never started it); "
    "please contact them another way."
)
PHONE = N_("Phone: {phone}")


async def tell_head(
    session: AsyncSession, chat_id: int, now: datetime, *, default_locale: str = LOCALES[0]
) -> list[Person]:
    """Mark the person behind ``chat_id`` unreachable and queue a message to the heads over
    each grid where they hold a role (the nearest grid, up the tree, that has a head who can
    be reached). Returns the heads told; nobody for a chat that is not a person's."""
    person = (
        await session.exec(select(Person).where(Person.telegram_id == chat_id))
    ).one_or_none()
    if person is None or person.id is None:
        return []
    if person.reachable:
        person.reachable = False
        person.updated_at = now
        session.add(person)
    told = await heads_over(session, person.id, await roles_of(session, person.id))
    for head, role in told:
        assert head.telegram_id is not None
        locale = resolve_locale(head.locale, head.telegram_language, default_locale)
        lines = [
            gettext_for(
                locale, UNREACHABLE, name=person.name, role=gettext_for(locale, ROLE[role])
            )
        ]
        if person.phone:
            lines.append(gettext_for(locale, PHONE, phone=person.phone))
        outbox.send_text(
            session,
            chat_id=head.telegram_id,
            text="\n".join(lines),
            now=now,
            parse_mode=None,  # the name is the person's own Telegram name: plain text
            person_id=head.id,
        )
    return [head for head, _ in told]


async def heads_over(
    session: AsyncSession, person_id: int, roles: list[RoleInGrid]
) -> list[tuple[Person, Role]]:
    """For each role, the reachable heads (网格长) of the nearest grid at or above the role's
    grid that has one, the person aside; each head once, with the first role that led there
    (``roles`` come most senior first)."""
    return (await heads_over_many(session, {person_id: roles})).get(person_id, [])


async def heads_over_many(
    session: AsyncSession, roles_by_person: Mapping[int, Sequence[RoleInGrid]]
) -> dict[int, list[tuple[Person, Role]]]:
    """:func:`heads_over` for many people at once: one query for every grid on their chains."""
    chains = {
        role.grid_id: [int(part) for part in role.grid_path.strip("/").split("/") if part]
        or [role.grid_id]
        for roles in roles_by_person.values()
        for role in roles
    }
    grid_ids = {grid_id for chain in chains.values() for grid_id in chain}
    if not grid_ids:
        return {}
    rows = (
        await session.exec(
            select(RoleAssignment.grid_id, Person)
            .join(Person, col(Person.id) == RoleAssignment.person_id)
            .where(
                RoleAssignment.role == Role.HEAD,
                col(RoleAssignment.active).is_(True),
                col(RoleAssignment.grid_id).in_(grid_ids),
                col(Person.active).is_(True),
                col(Person.reachable).is_(True),
                col(Person.telegram_id).is_not(None),
            )
            .order_by(col(Person.id))
        )
    ).all()
    heads_of: dict[int, list[Person]] = {}
    for grid_id, head in rows:
        heads_of.setdefault(grid_id, []).append(head)
    found: dict[int, list[tuple[Person, Role]]] = {}
    for person_id, roles in roles_by_person.items():
        told: dict[int, tuple[Person, Role]] = {}
        for role in roles:
            nearest = next(
                (
                    others
                    for g in reversed(chains[role.grid_id])
                    if (others := [h for h in heads_of.get(g, ()) if h.id != person_id])
                ),
                [],
            )
            for head in nearest:
                assert head.id is not None
                told.setdefault(head.id, (head, role.role))
        found[person_id] = list(told.values())
    return found
