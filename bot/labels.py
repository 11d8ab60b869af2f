"""Display names of the domain's vocabularies, as catalog msgids (translate with gettext)."""

from __future__ import annotations

from bot.i18n import N_
from models import (
    Gender,
    HandlingKind,
    HouseholdCategory,
    PartyKind,
    Rating,
    Relation,
    ResidenceStatus,
    Role,
    TicketCategory,
    TicketSource,
    TicketState,
    VisitKind,
)

ROLE: dict[Role, str] = {
    Role.RESIDENT: N_("resident"),
    Role.WORKER: N_("grid worker"),
    Role.HEAD: N_("grid head"),
    Role.CENTER: N_("centre operator"),
    Role.DEPARTMENT: N_("department"),
    Role.SUPERVISOR: N_("supervisor"),
    Role.ADMIN: N_("administrator"),
}

HOUSEHOLD_CATEGORY: dict[HouseholdCategory, str] = {
    HouseholdCategory.SUBSISTENCE: N_("subsistence / five-guarantee"),
    HouseholdCategory.ILLNESS_DISABILITY: N_("serious illness / disability"),
    HouseholdCategory.POVERTY_RISK: N_("at risk of poverty"),
    HouseholdCategory.EMPTY_NEST: N_("empty-nest elderly"),
    HouseholdCategory.LEFT_BEHIND_CHILDREN: N_("left-behind children"),
    HouseholdCategory.MILITARY_MARTYR: N_("martyr / military family"),
}

RELATION: dict[Relation, str] = {
    Relation.HEAD: N_("head of household"),
    Relation.SPOUSE: N_("spouse"),
    Relation.CHILD: N_("child"),
    Relation.PARENT: N_("parent"),
    Relation.GRANDCHILD: N_("grandchild"),
    Relation.GRANDPARENT: N_("grandparent"),
    Relation.SIBLING: N_("brother or sister"),
    Relation.IN_LAW: N_("son- or daughter-in-law"),
    Relation.TENANT: N_("tenant"),
    Relation.OTHER: N_("other relation"),
}

GENDER: dict[Gender, str] = {Gender.MALE: N_("male"), Gender.FEMALE: N_("female")}

RESIDENCE_STATUS: dict[ResidenceStatus, str] = {
    ResidenceStatus.REGISTERED: N_("registered resident"),
    ResidenceStatus.RESIDENT: N_("permanent resident"),
    ResidenceStatus.FLOATING: N_("floating population"),
}

PARTY_KIND: dict[PartyKind, str] = {
    PartyKind.FULL: N_("full party member"),
    PartyKind.PROBATIONARY: N_("probationary party member"),
    PartyKind.FLOATING: N_("floating party member"),
}

VISIT_KIND: dict[VisitKind, str] = {
    VisitKind.PHONE: N_("phone call"),
    VisitKind.IN_PERSON: N_("home visit"),
    VisitKind.LECTURE: N_("policy micro-lecture"),
    VisitKind.OTHER: N_("other contact"),
}

TICKET_CATEGORY: dict[TicketCategory, str] = {
    TicketCategory.DISPUTE: N_("neighbour dispute"),
    TicketCategory.SAFETY: N_("safety hazard"),
    TicketCategory.FIRE: N_("fire hazard"),
    TicketCategory.FACILITY: N_("damaged public facility"),
    TicketCategory.ILLEGAL_BUILDING: N_("illegal construction"),
    TicketCategory.OUTSIDERS: N_("outsiders moving in"),
    TicketCategory.SANITATION: N_("sanitation / city appearance"),
    TicketCategory.PROPERTY: N_("property management"),
    TicketCategory.WAGES: N_("unpaid wages"),
    TicketCategory.AGRICULTURE: N_("agriculture"),
    TicketCategory.LIVELIHOOD: N_("livelihood help"),
    TicketCategory.POLICY: N_("policy question"),
    TicketCategory.OTHER: N_("other"),
}

TICKET_SOURCE: dict[TicketSource, str] = {
    TicketSource.TELEGRAM: N_("reported in the bot"),
    TicketSource.OPEN311: N_("partner app (Open311)"),
    TicketSource.PATROL: N_("found on patrol"),
    TicketSource.PHONE: N_("incoming call"),
    TicketSource.DESK: N_("visit to the desk"),
    TicketSource.HOTLINE: N_("12345 hotline"),
    TicketSource.HANDED_DOWN: N_("handed down from above"),
}

HANDLING_KIND: dict[HandlingKind, str] = {
    HandlingKind.GENERAL: N_("general"),
    HandlingKind.COORDINATION: N_("needs coordination"),
    HandlingKind.URGENT: N_("urgent"),
    HandlingKind.APPROVAL: N_("needs approval"),
    HandlingKind.MAJOR: N_("major"),
}

# 定性: what each handling kind means, in one plain line (DOMAIN.md §5, 方案8 操作程序)
HANDLING_KIND_HELP: dict[HandlingKind, str] = {
    HandlingKind.GENERAL: N_("the grid worker handles it on the spot and records it"),
    HandlingKind.COORDINATION: N_(
        "taken to the community sub-centre; the result is reported and the person served "
        "hears back"
    ),
    HandlingKind.URGENT: N_("reported up at once; the grid worker follows it on site"),
    HandlingKind.APPROVAL: N_(
        "the worker gathers the facts, the sub-centre accepts and defines it, the centre "
        "reviews it, and the outcome is publicly noticed"
    ),
    HandlingKind.MAJOR: N_("reported to the street centre at once"),
}

TICKET_STATE: dict[TicketState, str] = {
    TicketState.SUBMITTED: N_("submitted"),
    TicketState.DISPATCHED: N_("dispatched"),
    TicketState.ACCEPTED: N_("accepted"),
    TicketState.IN_PROGRESS: N_("in progress"),
    TicketState.WAITING_REPORTER: N_("waiting for your answer"),
    TicketState.RESOLVED: N_("resolved"),
    TicketState.CLOSED: N_("closed"),
    TicketState.REJECTED: N_("rejected"),
    TicketState.DUPLICATE: N_("duplicate"),
    TicketState.TRANSFERRED: N_("transferred to a department"),
    TicketState.REOPENED: N_("reopened"),
    TicketState.VERIFYING: N_("handled, waiting for the on-site check"),
}

RATING: dict[Rating, str] = {
    Rating.SATISFIED: N_("satisfied"),
    Rating.BASICALLY_SATISFIED: N_("basically satisfied"),
    Rating.UNSATISFIED: N_("unsatisfied"),
}

LANGUAGE_NAMES: dict[str, str] = {"zh_Hans": "简体中文", "zh_Hant": "繁體中文", "en": "English"}
