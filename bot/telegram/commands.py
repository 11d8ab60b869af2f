"""The command menu: which commands each role sees, in each language."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.i18n import N_, gettext_for
from bot.services import outbox
from models import Role

EVERYONE: frozenset[Role | None] = frozenset({None, *Role})
STAFF: frozenset[Role | None] = frozenset(
    {Role.WORKER, Role.HEAD, Role.CENTER, Role.DEPARTMENT, Role.SUPERVISOR, Role.ADMIN}
)


@dataclass(frozen=True)
class BotCommandSpec:
    command: str
    description: str  # msgid
    roles: frozenset[Role | None]  # None = a person with no role yet


STAFF_VIEW: frozenset[Role | None] = frozenset(
    {Role.WORKER, Role.HEAD, Role.CENTER, Role.SUPERVISOR, Role.ADMIN}
)
ADMINS: frozenset[Role | None] = frozenset({Role.ADMIN})

COMMANDS: tuple[BotCommandSpec, ...] = (
    BotCommandSpec("start", N_("Main menu"), EVERYONE),
    BotCommandSpec("report", N_("Report a problem"), EVERYONE - {None}),
    BotCommandSpec("my", N_("My reports and how they are going"), EVERYONE - {None}),
    BotCommandSpec("tickets", N_("Open tickets in your grids"), STAFF_VIEW | {Role.DEPARTMENT}),
    BotCommandSpec("ticket", N_("Find a ticket by its number"), EVERYONE - {None}),
    BotCommandSpec(
        "meeting", N_("Convene a meeting (例会)"), frozenset({Role.HEAD, Role.CENTER, Role.ADMIN})
    ),
    BotCommandSpec("meetings", N_("My upcoming meetings"), STAFF),
    BotCommandSpec(
        "broadcast",
        N_("Send a notice or an emergency alert (宣传 / 应急)"),
        frozenset({Role.HEAD, Role.CENTER, Role.ADMIN}),
    ),
    BotCommandSpec(
        "visit", N_("Log a household visit (走访)"), frozenset({Role.WORKER, Role.HEAD})
    ),
    BotCommandSpec("diary", N_("My visit diary (民情日记)"), frozenset({Role.WORKER, Role.HEAD})),
    BotCommandSpec("quota", N_("Visit quota progress (走访任务)"), STAFF_VIEW),
    BotCommandSpec("inspect", N_("Inspect a place (巡查)"), frozenset({Role.WORKER, Role.HEAD})),
    BotCommandSpec("places", N_("Places inspected and their types (场所)"), STAFF_VIEW),
    BotCommandSpec(
        "followup",
        N_("Follow-ups of tagged people (随访)"),
        frozenset({Role.WORKER, Role.HEAD}),
    ),
    BotCommandSpec("tags", N_("Person tags and their follow-ups (人员标签)"), STAFF_VIEW),
    BotCommandSpec("quota_rules", N_("Visit quota rules"), ADMINS),
    BotCommandSpec("mygrid", N_("My grid and who looks after it"), EVERYONE - {None}),
    BotCommandSpec(
        "party", N_("Party members' contact households (党员联系户)"), EVERYONE - {None}
    ),
    BotCommandSpec("grid", N_("The grid tree; add, rename, move grids"), STAFF_VIEW),
    BotCommandSpec("households", N_("The households you look after"), STAFF_VIEW - ADMINS),
    BotCommandSpec(
        "rental",
        N_("Register a rental house; a link for its landlord (出租房屋)"),
        frozenset({Role.WORKER, Role.HEAD, Role.ADMIN}),
    ),
    BotCommandSpec(
        "rentals", N_("Tenants to confirm, lapsed registrations (居住登记)"), STAFF_VIEW
    ),
    BotCommandSpec("check", N_("Span-of-control check of your grids"), STAFF_VIEW),
    BotCommandSpec("qr", N_("QR code for residents to join a grid"), STAFF_VIEW),
    BotCommandSpec("invite", N_("Invitation link for a worker, head or operator"), ADMINS),
    BotCommandSpec("template", N_("Empty household or people sheet to fill in"), ADMINS),
    BotCommandSpec(
        "export",
        N_("Ledgers (Excel): households, people, tickets, visits, meetings"),
        frozenset({Role.HEAD, Role.CENTER, Role.SUPERVISOR, Role.ADMIN}),
    ),
    BotCommandSpec(
        "indicators",
        N_("Assessment indicators (考核) of your grids"),
        frozenset({Role.HEAD, Role.CENTER, Role.SUPERVISOR, Role.ADMIN}),
    ),
    BotCommandSpec(
        "score",
        N_("Assessment scores and ranking (红黑榜)"),
        frozenset({Role.WORKER, Role.HEAD, Role.CENTER, Role.SUPERVISOR, Role.ADMIN}),
    ),
    BotCommandSpec(
        "spotcheck",
        N_("Spot check (抽查): call back a sample of visits and tickets"),
        frozenset({Role.SUPERVISOR, Role.ADMIN}),
    ),
    BotCommandSpec("people", N_("People: find, deactivate, change their grid"), ADMINS),
    BotCommandSpec(
        "duty",
        N_("Who is on duty at the centre (值班); the rota, swaps"),
        frozenset({Role.CENTER, Role.ADMIN, Role.SUPERVISOR, Role.HEAD}),
    ),
    BotCommandSpec("departments", N_("Departments: add, rename, categories, routing"), ADMINS),
    BotCommandSpec("sla", N_("Time limits for handling problems"), STAFF_VIEW | {Role.DEPARTMENT}),
    BotCommandSpec("jobs", N_("Scheduled jobs and how they last ran"), ADMINS),
    BotCommandSpec("status", N_("How the system is doing: backlog, leader, overdue"), ADMINS),
    BotCommandSpec("holidays", N_("Holidays and make-up working days"), ADMINS),
    BotCommandSpec("apikey", N_("Open311 keys for partner apps"), ADMINS),
    BotCommandSpec("help", N_("What I can do for you"), EVERYONE),
    BotCommandSpec("cancel", N_("Stop what you are doing"), EVERYONE - {None}),
    BotCommandSpec("language", N_("Change the language"), EVERYONE),
)

# Telegram keys command menus by a two-letter language code, so Traditional Chinese users get
# their menu per chat (see ``person_menu``).
MENU_LANGUAGES: dict[str | None, str] = {None: "zh_Hans", "zh": "zh_Hans", "en": "en"}


def commands_for(roles: Iterable[Role]) -> list[BotCommandSpec]:
    held: set[Role | None] = set(roles) or {None}
    return [spec for spec in COMMANDS if spec.roles & held]


def menu_payload(specs: Iterable[BotCommandSpec], locale: str) -> list[dict[str, str]]:
    return [
        {"command": spec.command, "description": gettext_for(locale, spec.description)}
        for spec in specs
    ]


def default_menus(default_locale: str) -> list[dict[str, Any]]:
    """``setMyCommands`` payloads for people with no role, per menu language."""
    payloads = []
    for language_code, locale in MENU_LANGUAGES.items():
        chosen = default_locale if language_code is None else locale
        payload: dict[str, Any] = {"commands": menu_payload(commands_for([]), chosen)}
        if language_code is not None:
            payload["language_code"] = language_code
        payloads.append(payload)
    return payloads


def person_menu(
    session: AsyncSession,
    *,
    telegram_id: int,
    roles: Iterable[Role],
    locale: str,
    now: datetime,
) -> None:
    """Give one person the menu of their roles in their language (``BotCommandScopeChat``)."""
    outbox.enqueue(
        session,
        chat_id=telegram_id,
        method="setMyCommands",
        payload={
            "commands": menu_payload(commands_for(roles), locale),
            "scope": {"type": "chat", "chat_id": telegram_id},
        },
        now=now,
        urgent=True,
    )
