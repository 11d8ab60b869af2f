"""aiogram routers, one module per audience or flow.

Each module has a ``build_router()`` that returns a fresh router, so that several applications
can live in one process (tests, the sandbox restarting the bot). Order matters: the first
router whose filters match handles the update, so specific flows come first, ``common`` after
them, and the catch-all ``fallback`` last. ``errors`` only sees exceptions.
"""

from __future__ import annotations

from aiogram import Router

from handlers import (
    apikeys,
    assessment,
    boundaries,
    broadcasts,
    common,
    duty,
    errors,
    fallback,
    grid_admin,
    jobs,
    ledgers,
    meetings,
    onboarding,
    people_admin,
    registry,
    report,
    routing,
    supervision,
    ticket_list,
    tickets,
    visits,
)


def build_router() -> Router:
    root = Router(name="gridbot")
    root.include_routers(
        # a resident's /report conversation: first, as the commonest conversation (each
        # router passed costs every update its filter checks); its handlers take no command
        # but /report and /cancel, and only its own states, so nothing meant for another
        # router stops here
        report.build_router(),
        onboarding.build_router(),  # /start with a deep link, and the phone step after it
        registry.build_router(),
        grid_admin.build_router(),  # /grid 新增|改名|移动|公示 by buttons
        people_admin.build_router(),  # /people: a person's card and its buttons
        assessment.build_router(),  # /indicators, /score
        duty.build_router(),  # /duty, a rota sheet (before the ledgers' files), swaps
        ledgers.build_router(),  # file imports, /template, /export
        boundaries.build_router(),  # a GeoJSON file of grid boundaries
        ticket_list.build_router(),  # /tickets: pages and filters
        supervision.build_router(),  # /spotcheck (督查抽查)
        tickets.build_router(),  # card actions, answers, ratings, /ticket, /my
        visits.build_router(),  # /visit, /diary, /quota, /quota_rules, the push's buttons
        broadcasts.build_router(),  # /broadcast: notices and emergency alerts, "收到"
        meetings.build_router(),  # /meeting, /meetings, invitations, check-in, minutes
        routing.build_router(),  # /sla, /holidays
        jobs.build_router(),  # /jobs
        apikeys.build_router(),  # /apikey: Open311 keys
        common.build_router(),
        errors.build_router(),
        fallback.build_router(),  # always last
    )
    return root
