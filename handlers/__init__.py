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
    casework,
    common,
    departments,
    duty,
    errors,
    fallback,
    grid_admin,
    inspections,
    intake,
    jobs,
    ledgers,
    meetings,
    members,
    onboarding,
    party,
    people_admin,
    places,
    registry,
    rentals,
    report,
    routing,
    supervision,
    tags,
    ticket_list,
    tickets,
    visits,
)


def build_router() -> Router:
    root = Router(name="gridbot")
    root.include_routers(
        # /report from staff (worker, head, centre, department, admin) is staff intake: its
        # filter lets a resident's /report through to the report conversation below
        intake.build_router(),
        # a resident's /report conversation: first, as the commonest conversation (each
        # router passed costs every update its filter checks); its handlers take no command
        # but /report and /cancel, and only its own states, so nothing meant for another
        # router stops here
        report.build_router(),
        rentals.build_router(),  # /start with a landlord's or tenant's link, /rental(s)
        onboarding.build_router(),  # /start with a deep link, and the phone step after it
        registry.build_router(),
        grid_admin.build_router(),  # /grid 新增|改名|移动|公示 by buttons
        people_admin.build_router(),  # /people: a person's card and its buttons
        members.build_router(),  # a household member's card, "show", erasure
        party.build_router(),  # /party: party members' contact households (党员联系户)
        departments.build_router(),  # /departments: 职能部门 by buttons
        assessment.build_router(),  # /indicators, /score
        duty.build_router(),  # /duty, a rota sheet (before the ledgers' files), swaps
        inspections.build_router(),  # /inspect, hazards' "fixed", /export inspections|hazards
        places.build_router(),  # /places: place types, the place register (before ledgers)
        tags.build_router(),  # /tags (a tags file too), /tag, /untag, /followup
        ledgers.build_router(),  # file imports, /template, /export
        boundaries.build_router(),  # a GeoJSON file of grid boundaries
        casework.build_router(),  # 退单, 延期 and 协办 on a department's card: before tickets
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
